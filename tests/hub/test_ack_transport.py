"""PROTOCOL.md §10.6 against the real hub: an ack sent as the spec says, each answer as written.

The hub here is the vectors' hub: named ``hashhub.example``, with a list
``demo-md5`` and node ``node-1`` enrolled with the public test key of
``docs/vectors``. So the ``ack`` vector and the ``neg-ack-*`` vectors can be
posted byte for byte, exactly as §10.6 says a node sends them.

The acks the hub accepts are built by ``SpecNode`` from the spec alone — RFC 8785
by the independent ``rfc8785`` package, Ed25519 by ``cryptography``, the
co-signature's 76 bytes by hand from §10.3 — not by ``protocol.sign_ack``, so this
also shows that a node written from PROTOCOL.md can talk to the hub. What it
co-signs it reads from the hub over HTTP, as a node does: the checkpoint's size and
root, and the ``result_state`` of that header.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hub.app import create_app
from hub.core import Hub
from hub.intake import Intake
from protocol import PublicKey

PROJECT = Path(__file__).resolve().parents[2]
VECTORS = PROJECT / "docs" / "vectors"
HUB_NAME = "hashhub.example"
LIST = "demo-md5"
NODE = "node-1"
MAX_ACK_BYTES = 16 * 1024
SENT = "2026-01-01T06:11:00Z"

Client = TestClient[web.Request, web.Application]


def vector(name: str) -> dict[str, Any]:
    value = json.loads((VECTORS / "cases" / f"{name}.json").read_text("utf-8"))
    assert isinstance(value, dict)
    return value


def seed(label: str) -> bytes:
    for line in (VECTORS / "keys" / "SEEDS.txt").read_text("utf-8").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == label:
            return bytes.fromhex(parts[1])
    raise AssertionError(f"no seed for {label} in docs/vectors/keys/SEEDS.txt")


def md5(label: object) -> bytes:
    return hashlib.md5(str(label).encode(), usedforsecurity=False).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class SpecNode:
    """Builds acks from PROTOCOL.md §10.1 and §10.3, with no code of the project's own."""

    key: Ed25519PrivateKey
    node: str = NODE

    @property
    def public(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def ack(
        self,
        *,
        seq: int,
        version: int,
        root: bytes,
        state: dict[str, Any],
        list_id: str = LIST,
        checked: int = 1200,
        hashes: dict[str, dict[str, int]] | None = None,
        t: int = 1_767_247_860,
    ) -> tuple[bytes, bytes]:
        """The ack bytes and the sidecar bytes."""
        text = f"{HUB_NAME}/lists/{list_id}\n{version}\n{b64(root)}\n".encode()
        key_id = hashlib.sha256(self.node.encode() + b"\n" + b"\x04" + self.public).digest()[:4]
        cosig = self.key.sign(f"cosignature/v1\ntime {t}\n".encode() + text)
        blob = key_id + t.to_bytes(8, "big") + cosig
        assert len(blob) == 76
        document: dict[str, Any] = {
            "_type": "hashhub.ack.v1",
            "node": self.node,
            "list": list_id,
            "seq": seq,
            "sent": SENT,
            "applied": {"version": version, "checkpoint_root": b64(root), "state": state},
            "cosignature": f"\u2014 {self.node} {b64(blob)}",
            "counts": {
                "checked": checked,
                "matched": 1,
                "actioned": 1,
                "blocked": 0,
                "false_positive": 0,
                "hashes": hashes or {},
            },
        }
        data = rfc8785.dumps(document)
        keyid = hashlib.sha256(self.public).hexdigest()
        sidecar = rfc8785.dumps({"signatures": [{"keyid": keyid, "sig": b64(self.key.sign(data))}]})
        return data, sidecar


@dataclass
class Setup:
    client: Client
    token: str
    operator: str
    node: SpecNode
    version: int
    root: bytes
    state: dict[str, Any]

    def ack(self, **changes: Any) -> tuple[bytes, bytes]:
        args: dict[str, Any] = {"version": self.version, "root": self.root, "state": self.state}
        args.update(changes)
        return self.node.ack(**args)


def request_headers(token: str | None, sidecar: bytes | None) -> dict[str, str]:
    """§10.6: the node's token, the content type, the sidecar in base64."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if sidecar is not None:
        headers["Hashhub-Signature"] = b64(sidecar)
    return headers


async def post(
    client: Client, data: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any], Any]:
    response = await client.post("/v1/acks", data=data, headers=headers)
    return response.status, await response.json(), response.headers


def assert_error(
    answer: tuple[int, dict[str, Any], Any], status: int, code: str, message: str = ""
) -> str:
    """§10.6: every answer but a 200 is the one error shape, not to be cached."""
    got, body, headers = answer
    assert got == status, body
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message"}
    assert (body["error"]["status"], body["error"]["code"]) == (status, code)
    assert headers["Cache-Control"] == "no-store"
    assert re.search(message, body["error"]["message"]), body["error"]["message"]
    text = body["error"]["message"]
    assert isinstance(text, str)
    return text


def init(home: Path, **settings: Any) -> tuple[str, str]:
    """The vectors' hub name and list, three versions, node-1 enrolled: (node, operator) tokens."""
    hub = Hub.init(
        home,
        HUB_NAME,
        publish_interval=0,
        timestamp_interval=0,
        max_ack_bytes=MAX_ACK_BYTES,
        **settings,
    )
    try:
        hub.roots.create_list(LIST, "md5", label="demo")
        for version in range(3):
            hub.lists.stage(LIST, adds=[Intake(md5((version, i))) for i in range(2)])
            hub.publishing.publish([LIST])
        node_public = PublicKey(bytes.fromhex(vector("ack")["input"]["node_public_hex"]))
        token = hub.access.enrol_node(NODE, node_public, [LIST])
        return token, hub.access.create_operator_token("admin", "test-admin")
    finally:
        hub.close()


async def started(client: Client, token: str, operator: str) -> Setup:
    """Read what to co-sign from the hub, as a node does: checkpoint size and root, state."""
    auth = {"Authorization": f"Bearer {token}"}
    note = await (await client.get(f"/lists/{LIST}/checkpoint", headers=auth)).text()
    _, size, root = note.split("\n")[:3]
    header = await (await client.get(f"/lists/{LIST}/delta/{size}.json", headers=auth)).json()
    node = SpecNode(Ed25519PrivateKey.from_private_bytes(seed(NODE)))
    assert node.public.hex() == vector("ack")["input"]["node_public_hex"]
    return Setup(
        client, token, operator, node, int(size), base64.b64decode(root), header["result_state"]
    )


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    token, operator = init(tmp_path / "hub")
    app = create_app(tmp_path / "hub", schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield await started(client, token, operator)


# -- the ack vector, byte for byte --------------------------------------------------------


async def test_the_ack_vector_sent_as_written_is_a_split_view_kept_as_evidence(
    setup: Setup,
) -> None:
    """The vector co-signs the vectors' demo-md5 v3; this hub published another v3."""
    want = vector("ack")["expected"]
    data, sidecar = want["ack_text"].encode(), want["sig_text"].encode()
    answer = await post(setup.client, data, request_headers(setup.token, sidecar))
    assert_error(
        answer,
        422,
        "unprocessable",
        rf"^ack from {NODE} co-signs a checkpoint root .*never published for {LIST} v3; "
        r"kept as evidence #\d+$",
    )
    # Refused, so not stored: seq 7 is still free for an ack of what the hub published.
    status, body, _ = await post(setup.client, *_sent(setup.ack(seq=7), setup.token))
    assert (status, body["seq"], body["duplicate"]) == (200, 7, False)


def _sent(ack: tuple[bytes, bytes], token: str) -> tuple[bytes, dict[str, str]]:
    data, sidecar = ack
    return data, request_headers(token, sidecar)


@pytest.mark.parametrize(
    "name",
    sorted(
        p.stem
        for p in (VECTORS / "cases").glob("neg-ack-*.json")
        # The key-period vectors give a node's key history of their own (§10.4.1);
        # tests/node/test_node_changes.py makes one on a real hub.
        if json.loads(p.read_text(encoding="utf-8"))["check"] == "verify_ack"
    ),
)
async def test_every_ack_vector_the_spec_refuses_is_refused_by_the_hub(
    setup: Setup, name: str
) -> None:
    """§10.4 failures are 422 naming the error class; a sidecar that is not one is 400."""
    spec = vector(name)
    data, sidecar = spec["input"]["ack_text"].encode(), spec["input"]["sig_text"].encode()
    answer = await post(setup.client, data, request_headers(setup.token, sidecar))
    if name == "neg-ack-sidecar-malformed":
        assert_error(
            answer, 400, "invalid_request", "^Hashhub-Signature is not a signature sidecar"
        )
    else:
        assert_error(answer, 422, "unprocessable", rf"^ack refused \({spec['error']}\): ")


# -- 200, a retry, 409 and re-signing ------------------------------------------------------


async def test_accepted_then_retried_then_conflicting_then_resigned(setup: Setup) -> None:
    first = setup.ack(seq=7)
    status, body, _ = await post(setup.client, *_sent(first, setup.token))
    assert status == 200
    assert body == {"accepted": True, "node": NODE, "list": LIST, "seq": 7, "duplicate": False}

    # A lost answer: the same bytes and seq again.
    status, body, _ = await post(setup.client, *_sent(first, setup.token))
    assert status == 200
    assert body == {"accepted": True, "node": NODE, "list": LIST, "seq": 7, "duplicate": True}

    # The same seq with other bytes, and a seq below the last: 409 with the last seq.
    for ack, message in (
        (setup.ack(seq=7, checked=1201), f"^seq 7 was already used by node {NODE} with other"),
        (setup.ack(seq=3), f"^seq 3 is not above node {NODE}'s last seq 7"),
    ):
        answer = await post(setup.client, *_sent(ack, setup.token))
        assert_error(answer, 409, "seq_conflict", message)
        assert answer[2]["Hashhub-Last-Seq"] == "7"

    # Re-signed above Hashhub-Last-Seq, the same content is accepted.
    status, body, _ = await post(setup.client, *_sent(setup.ack(seq=8, checked=1201), setup.token))
    assert (status, body["seq"], body["duplicate"]) == (200, 8, False)


# -- the hub's own rules (§10.5) ------------------------------------------------------------


async def test_per_hash_keys_must_be_the_lists_width_and_listed(setup: Setup) -> None:
    """A 64-digit key parses (§10.2.9) but is not an md5 hash (§10.5.4); seq stays free."""
    listed = md5((0, 0)).hex()
    wide = setup.ack(seq=5, hashes={"ab" * 32: {"matched": 1}})
    assert_error(
        await post(setup.client, *_sent(wide, setup.token)),
        422,
        "unprocessable",
        rf"^ack refused: per-hash key {'ab' * 32} is not a md5 hash \(32 hex digits\) of list "
        rf"{LIST}; 1 of 1 keys",
    )
    unlisted = setup.ack(seq=5, hashes={md5("never").hex(): {"matched": 1}, listed: {}})
    assert_error(
        await post(setup.client, *_sent(unlisted, setup.token)),
        422,
        "unprocessable",
        rf"^ack refused: per-hash key {md5('never').hex()} is not a hash list {LIST} held",
    )
    good = setup.ack(seq=5, hashes={listed: {"matched": 1, "false_positive": 1}})
    status, body, _ = await post(setup.client, *_sent(good, setup.token))
    assert (status, body["seq"]) == (200, 5)


async def test_an_ack_for_a_list_not_granted_or_another_node_is_403(setup: Setup) -> None:
    other = setup.ack(seq=2, list_id="other-md5")
    assert_error(
        await post(setup.client, *_sent(other, setup.token)),
        403,
        "forbidden",
        f"^node {NODE} is not granted list other-md5",
    )
    stranger = SpecNode(setup.node.key, node="node-2").ack(
        seq=2, version=setup.version, root=setup.root, state=setup.state
    )
    assert_error(
        await post(setup.client, *_sent(stranger, setup.token)),
        403,
        "forbidden",
        f"^ack names node 'node-2', token is for '{NODE}'",
    )


# -- the request's form, the token ---------------------------------------------------------


async def test_every_refusal_of_the_request_itself(setup: Setup) -> None:
    data, sidecar = setup.ack(seq=9)
    client = setup.client

    answer = await post(client, data, request_headers(None, sidecar))
    assert_error(answer, 401, "unauthorized", "bearer token")
    assert answer[2]["WWW-Authenticate"] == 'Bearer realm="hashhub"'

    answer = await post(client, data, request_headers("hhn_not-a-token", sidecar))
    assert_error(answer, 401, "unauthorized", "unknown or revoked token")
    assert answer[2]["WWW-Authenticate"] == 'Bearer realm="hashhub", error="invalid_token"'

    answer = await post(client, data, request_headers(setup.operator, sidecar))
    assert_error(answer, 403, "forbidden", "node token")

    headers = {**request_headers(setup.token, sidecar), "Content-Type": "text/plain"}
    assert_error(await post(client, data, headers), 415, "unsupported_media_type", "json")

    big = data + b" " * (MAX_ACK_BYTES + 1 - len(data))
    answer = await post(client, big, request_headers(setup.token, sidecar))
    assert_error(answer, 413, "payload_too_large", f"cap is {MAX_ACK_BYTES}")

    assert_error(
        await post(client, data, request_headers(setup.token, None)),
        400,
        "invalid_request",
        "Hashhub-Signature",
    )
    for value, message in (
        ("!!not base64!!", "is not base64"),
        ("A" * 4100, "over 4096 characters"),
        (b64(b'{"signatures":"none"}'), "is not a signature sidecar"),
    ):
        headers = {**request_headers(setup.token, None), "Hashhub-Signature": value}
        assert_error(await post(client, data, headers), 400, "invalid_request", message)

    # None of these used up seq 9; and a charset parameter is allowed.
    charset = {
        **request_headers(setup.token, sidecar),
        "Content-Type": "application/json; charset=utf-8",
    }
    status, body, _ = await post(client, data, charset)
    assert (status, body["seq"], body["duplicate"]) == (200, 9, False)


async def test_a_rate_limited_ack_is_429_with_retry_after(tmp_path: Path) -> None:
    token, operator = init(tmp_path / "hub", credential_rate_burst=2, credential_rate_per_hour=1)
    app = create_app(tmp_path / "hub", schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        setup = await started(client, token, operator)  # the checkpoint and the header: 2
        answer = await post(client, *_sent(setup.ack(seq=1), token))
        assert_error(answer, 429, "too_many_requests", "too many requests from this credential")
        assert int(answer[2]["Retry-After"]) >= 1
