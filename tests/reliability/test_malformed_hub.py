"""The hub's HTTP parsers, fed almost-valid requests: a 4xx in the JSON error shape, nothing stored.

One real hub (``hub.app.create_app``, real SQLite, real keys, on 127.0.0.1) serves
every example of a test; after each answer the whole database is dumped and
compared with the dump taken before the first request. The routes:

- ``POST /v1/acks``: corrupted ack bytes (sent with the original signature, or
  re-signed by the node's own key so that the ack parser, not the signature
  check, has to refuse them), corrupted or missing signature headers, other
  content types and bearer headers;
- ``POST /v1/admin/lists/{id}/stage``: JSON bodies with a wrong value in every
  field, numbers past any integer type, ``NaN``, deep nesting, duplicate keys,
  bytes that are not UTF-8 or not JSON;
- ``POST /v1/admin/lists/{id}/import``: corrupted NDJSON, CSV and plain files
  (sent only when the import parser refuses them: a corruption that leaves a
  valid file would be staged, rightly);
- ``POST /submit`` (the public form): corrupted form bodies, multipart bodies
  with broken boundaries, other content types; ``POST /case`` and ``POST /login``
  with corrupted forms. The pages answer errors as HTML pages, so there the check
  is a 4xx HTML page.

A refused ack that is validly signed by the node and names a version the hub
never published is kept as evidence on purpose (PROTOCOL.md §10.5): for that one case
the comparison allows new ``evidence`` rows (holding exactly the bytes sent) and
their ``actions`` entries, and nothing else.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from hub.api.acks import SIGNATURE_HEADER
from hub.app import create_app
from hub.intake import make_intake, parse_hash, parse_import
from hub.limits import LIMITS
from hub.web.limits import RateLimiter
from hub.web.pages import LIMITER
from protocol import (
    PublicKey,
    SigningKey,
    sign_bytes,
    verify_ack,
)
from protocol.errors import HashhubError
from tests.hub.conftest import (
    HUB_NAME,
    LIST,
    NODE_ID,
    Follower,
    bearer,
    init_hub,
    md5,
    opened,
    pinned,
)
from tests.reliability.malformed_support import (
    FUZZ,
    assert_json_error,
    database_dump,
    json_mutations,
    mutations,
)

Client = TestClient[web.Request, web.Application]

HTTP_EXAMPLES = 50
SETTINGS = settings(
    max_examples=HTTP_EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    **FUZZ,
)
NODE_KEY = SigningKey.from_seed(b"n" * 32)


@dataclass
class HubWorld:
    """The real hub on loopback, one node and one publisher, and a valid ack to corrupt."""

    client: Client
    home: Path
    node_token: str
    publisher_token: str
    ack: bytes
    ack_sig: bytes
    before: list[str] = field(repr=False)

    def unchanged(self, *, evidence_of: bytes | None = None) -> None:
        """Assert the database is as before (``evidence_of``: but for evidence of those bytes)."""
        now = database_dump(self.home / "hub.db")
        if now == self.before:
            return
        added = [line for line in now if line not in self.before]
        removed = [line for line in self.before if line not in now]
        assert evidence_of is not None, (added[:3], removed[:3])
        assert not removed, removed[:3]
        for line in added:
            assert line.startswith(('INSERT INTO "evidence"', 'INSERT INTO "actions"')), line
        with opened(self.home) as hub:
            kept = [bytes(r["bytes"]) for r in hub.db.query("SELECT bytes FROM evidence")]
        assert evidence_of in kept
        self.before = now


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[HubWorld]:
    home = tmp_path / "hub"
    init_hub(home)
    with opened(home) as hub:
        node_token = hub.access.enrol_node(NODE_ID, NODE_KEY.public, [LIST])
        publisher = hub.access.create_operator_token("publisher", "fuzz-publisher")
    app = create_app(home, schedule=False)
    # Every example comes from 127.0.0.1; the public form's per-address limit, and the
    # limit on refused tokens (a malformed Authorization header counts), are tests of
    # their own (tests/reliability/test_rate_limits.py).
    app[LIMITER] = RateLimiter(burst=100_000, per_hour=100_000)
    app[LIMITS].failures = None
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        follower = Follower(client, pinned(home), token=node_token)
        await follower.update(LIST)
        ack, sig = await follower.ack(NODE_KEY, LIST, seq=5)
        yield HubWorld(
            client, home, node_token, publisher, ack, sig, database_dump(home / "hub.db")
        )


def _refused_by_parser(data: bytes, sig: bytes, key: PublicKey) -> bool:
    try:
        verify_ack(data, sig, node_key=key, origin_prefix=HUB_NAME)
    except HashhubError:
        return True
    return False


# -- acks ---------------------------------------------------------------------------------


@SETTINGS
@given(choice=st.data(), resign=st.booleans())
async def test_corrupted_ack_is_refused_and_nothing_is_stored(
    world: HubWorld, choice: st.DataObject, resign: bool
) -> None:
    data = choice.draw(
        st.one_of(mutations(world.ack), json_mutations(json.loads(world.ack))), label="ack"
    )
    sig = sign_bytes(data, [NODE_KEY]).to_bytes() if resign else world.ack_sig
    if not _refused_by_parser(data, sig, NODE_KEY.public):
        event("ack: the corruption left a valid signed ack; not sent")
        return
    response = await world.client.post(
        "/v1/acks",
        data=data,
        headers={
            **bearer(world.node_token),
            "Content-Type": "application/json",
            SIGNATURE_HEADER: base64.b64encode(sig).decode(),
        },
    )
    assert_json_error(response.status, await response.read(), (400, 403, 413, 415, 422))
    # Signed by the node, a well-formed ack for a version never published is evidence.
    world.unchanged(evidence_of=data if resign else None)


_HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=200
)


_SIDECAR_SEED = sign_bytes(b"an ack", [NODE_KEY]).to_bytes()
_CONTENT_TYPES = (
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=",
    "application/jsonx",
    "application/json; charset=latin-1; charset=utf-8",
)


@SETTINGS
@given(
    part=st.sampled_from(["sidecar", "header", "content-type", "authorization"]),
    sidecar=st.one_of(mutations(_SIDECAR_SEED), json_mutations(json.loads(_SIDECAR_SEED))).filter(
        lambda b: len(b) < 5000
    ),
    text=st.one_of(
        _HEADER_TEXT,
        mutations(base64.b64encode(_SIDECAR_SEED), noise=False).map(lambda b: b.decode("latin-1")),
        st.just("A" * 5000),
        st.just("Bearer"),
        st.just("Basic dXNlcjpwYXNz"),
    ),
    content_type=st.sampled_from(_CONTENT_TYPES),
)
async def test_corrupted_ack_signature_or_headers_are_refused(
    world: HubWorld, part: str, sidecar: bytes, text: str, content_type: str
) -> None:
    headers = {
        **bearer(world.node_token),
        "Content-Type": "application/json",
        SIGNATURE_HEADER: base64.b64encode(world.ack_sig).decode(),
    }
    if part == "sidecar":
        headers[SIGNATURE_HEADER] = base64.b64encode(sidecar).decode()
    elif part == "header":
        headers[SIGNATURE_HEADER] = text
    elif part == "content-type":
        headers["Content-Type"] = content_type
    else:
        headers["Authorization"] = text
    if any(ord(c) < 0x20 or c == "\x7f" for value in headers.values() for c in value):
        event("ack: a control character in a header; no client sends one")
        return
    response = await world.client.post("/v1/acks", data=world.ack, headers=headers)
    body = await response.read()
    if response.status == 200:
        # Only a Content-Type with parameters is still JSON; every other part is corrupt.
        assert part == "content-type", part
        assert headers["Content-Type"].startswith("application/json;"), headers
        event("ack: a Content-Type with parameters is still JSON; accepted")
        world.before = database_dump(world.home / "hub.db")
        return
    assert_json_error(response.status, body, (400, 401, 403, 415, 422))
    world.unchanged()


# -- stage and import ----------------------------------------------------------------------

_INTAKE_FIELDS = {"hash", "quality", "category", "source", "submission_id"}
_STAGE_SEED = {
    "adds": [{"hash": md5("new").hex(), "quality": 90, "category": "c", "source": "s"}],
    "removes": [md5(1).hex()],
}
_NOT_JSON = (
    b"",
    b"\xff\xfe{}",
    b'{"adds": [',
    b'{"adds": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"adds": [{"hash": ' + b"1" * 5000 + b"}]}",
    b'{"adds": [{"hash": "' + md5("x").hex().encode() + b'", "quality": NaN}]}',
    b'{"adds": [{"hash": "' + md5("x").hex().encode() + b'", "category": "\\ud800"}]}',
    b'{"adds": [{"hash": "' + md5("x").hex().encode() + b'", "quality": "\xc2\xb2"}]}',
)


def _examples(values: tuple[bytes, ...]) -> Callable[[Any], Any]:
    """Always try each of ``values`` (as ``data``) besides the generated examples."""

    def decorate(test: Any) -> Any:
        for value in values:
            test = example(data=value)(test)
        return test

    return decorate


def _stage_body_valid(data: bytes) -> bool:
    """Whether the hub may accept ``data`` as a stage body (a corrupted seed may stay valid).

    Read by the intake rules the hub applies; when in doubt, valid: such a body is
    not sent, so a doubt never makes a test fail.
    """
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return False
    if not isinstance(value, dict) or not set(value) <= {"adds", "removes"}:
        return False
    adds, removes = value.get("adds", []), value.get("removes", [])
    if not isinstance(adds, list) or not isinstance(removes, list) or not (adds or removes):
        return False
    try:
        for item in adds:
            if not isinstance(item, dict) or not set(item) <= _INTAKE_FIELDS:
                return False
            make_intake("md5", item)
        for text in removes:
            if not isinstance(text, str):
                return False
            parse_hash(text, "md5")
    except HashhubError:
        return False
    return True


@SETTINGS
@given(
    data=st.one_of(
        json_mutations(_STAGE_SEED),
        mutations(json.dumps(_STAGE_SEED).encode()),
        st.sampled_from(_NOT_JSON),
    )
)
@_examples(_NOT_JSON)
async def test_malformed_stage_request_is_refused_and_nothing_is_staged(
    world: HubWorld, data: bytes
) -> None:
    if _stage_body_valid(data):
        event("stage: the corruption left a valid body; not sent")
        return
    response = await world.client.post(
        f"/v1/admin/lists/{LIST}/stage",
        data=data,
        headers={**bearer(world.publisher_token), "Content-Type": "application/json"},
    )
    assert_json_error(response.status, await response.read(), (400, 413, 415))
    world.unchanged()


_BAD_IMPORTS = (
    b"hash,quality\n" + md5("q").hex().encode() + b",\xc2\xb2\n",
    b'hash\n"' + b"a" * 200_000 + b'"\n',
    b'{"hash":"' + md5("d").hex().encode() + b'","hash":"' + md5("e").hex().encode() + b'"}',
    b'{"hash":"' + md5("s").hex().encode() + b'","source":"\\udfff"}',
)
"""Found by the tests here: each once answered 500 or was taken ambiguously."""

_IMPORT_SEEDS = (
    "\n".join(json.dumps({"hash": md5(i).hex(), "quality": 90}) for i in "abc").encode(),
    ("hash,quality,category\n" + "".join(f"{md5(i).hex()},80,c\n" for i in "abc")).encode(),
    ("# plain\n" + "".join(f"{md5(i).hex()}\n" for i in "abc")).encode(),
)


@SETTINGS
@given(
    data=st.one_of(
        st.sampled_from(_IMPORT_SEEDS).flatmap(mutations),
        st.sampled_from(_NOT_JSON[1:]),
        st.sampled_from(_IMPORT_SEEDS).map(lambda seed: seed + b"\n" + b"1" * 5000),
    ),
)
@_examples(_NOT_JSON[1:] + _BAD_IMPORTS)
async def test_malformed_import_is_refused_and_nothing_is_staged(
    world: HubWorld, data: bytes
) -> None:
    try:
        parse_import(data, "md5")
    except HashhubError:
        pass
    else:
        event("import: the corruption left a valid file; not sent")
        return
    response = await world.client.post(
        f"/v1/admin/lists/{LIST}/import",
        data=data,
        headers={**bearer(world.publisher_token), "Content-Type": "text/plain"},
    )
    error = assert_json_error(response.status, await response.read(), (400, 413))
    assert error["code"] == "invalid_import", error
    world.unchanged()


# -- the public submission form --------------------------------------------------------------

_FORM_SEED = f"type=md5&hash={md5('submitted').hex()}&quality=".encode()
_BOUNDARY = "hashhubboundary"
_MULTIPART_SEED = (
    f"--{_BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="type"\r\n\r\nmd5\r\n'
    f"--{_BOUNDARY}\r\n"
    f'Content-Disposition: form-data; name="hash"\r\n\r\n{md5("submitted").hex()}\r\n'
    f"--{_BOUNDARY}--\r\n"
).encode()


def _form_valid(data: bytes) -> bool:
    """Whether the hub may accept ``data`` as a submission (when in doubt, valid: not sent)."""
    try:
        pairs = urllib.parse.parse_qsl(
            data.decode("ascii"), keep_blank_values=True, strict_parsing=True
        )
    except (UnicodeDecodeError, ValueError):
        return False
    fields = dict(pairs)
    if len(fields) != len(pairs) or not set(fields) <= {"type", "hash", "quality"}:
        return False
    kind, quality = fields.get("type"), fields.get("quality", "")
    if kind not in ("md5", "pdq"):
        return False
    try:
        parse_hash(fields.get("hash", ""), kind)
    except HashhubError:
        return False
    if kind == "md5":
        return quality == ""
    return re.fullmatch(r"[0-9]{1,3}", quality) is not None and int(quality) <= 100


_CASE_SEED = b"case=" + md5("case").hex().encode()
_LOGIN_SEED = b"token=hho_" + b"A" * 43 + b"&csrf=" + b"B" * 43


@SETTINGS
@given(
    choice=st.sampled_from(["form", "multipart", "case", "login"]),
    data=st.data(),
)
async def test_malformed_public_form_is_refused_and_nothing_is_stored(
    world: HubWorld, choice: str, data: st.DataObject
) -> None:
    """The submission form, and the case lookup and login forms next to it."""
    route, content_type = "/submit", "application/x-www-form-urlencoded"
    if choice == "form":
        body = data.draw(st.one_of(mutations(_FORM_SEED), st.just(b"type=md5&type=md5")))
        if _form_valid(body):
            event("submit: the corruption left a valid form; not sent")
            return
    elif choice == "multipart":
        body = data.draw(mutations(_MULTIPART_SEED))
        content_type = data.draw(
            st.sampled_from(
                [
                    f"multipart/form-data; boundary={_BOUNDARY}",
                    "multipart/form-data; boundary=other",
                    "multipart/form-data",
                    "image/jpeg",
                ]
            )
        )
    else:  # a case no one opened, or a login without its nonce: refused either way
        route = "/" + choice
        body = data.draw(mutations(_CASE_SEED if choice == "case" else _LOGIN_SEED))
    response = await world.client.post(
        route, data=body, headers={"Content-Type": content_type}, allow_redirects=False
    )
    text = await response.text()
    assert 400 <= response.status < 500, (response.status, text[:300])
    assert response.headers["Content-Type"].startswith("text/html"), response.headers
    world.unchanged()


async def test_the_seeds_are_requests_the_hub_accepts(world: HubWorld) -> None:
    """What the tests above corrupt is valid to begin with: each seed is accepted."""
    client, publisher = world.client, bearer(world.publisher_token)
    response = await client.post(
        "/v1/acks",
        data=world.ack,
        headers={
            **bearer(world.node_token),
            "Content-Type": "application/json",
            SIGNATURE_HEADER: base64.b64encode(world.ack_sig).decode(),
        },
    )
    assert response.status == 200, await response.text()
    assert _stage_body_valid(json.dumps(_STAGE_SEED).encode())
    response = await client.post(
        f"/v1/admin/lists/{LIST}/stage", json=_STAGE_SEED, headers=publisher
    )
    assert response.status == 200, await response.text()
    for seed in _IMPORT_SEEDS:
        response = await client.post(f"/v1/admin/lists/{LIST}/import", data=seed, headers=publisher)
        assert response.status == 200, await response.text()
    assert _form_valid(_FORM_SEED)
    response = await client.post(
        "/submit",
        data=_FORM_SEED,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200, await response.text()
    assert world.before != database_dump(world.home / "hub.db")
