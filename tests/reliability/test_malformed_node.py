"""The node's parsers, fed almost-valid input: refused with a clear error, nothing stored.

Two sides of the node take outside input:

- its API (``node.app.create_app`` on 127.0.0.1, real SQLite, synced once from a
  real hub): ``POST /v1/match`` and ``POST /v1/content`` with corrupted JSON hash
  queries, pictures that are not pictures (corrupted JPEG, PNG, GIF, WebP, random
  bytes, a decompression bomb), multipart bodies with broken boundaries and other
  content types; ``POST /v1/matches/{id}/outcome`` with corrupted bodies. A refused
  request is a 4xx in the one JSON error shape and the node's database dump is
  exactly as before. A corrupted picture that still decodes is a picture: it is
  hashed and answered, and it is not counted as refused.
- its update from the hub: a hostile hub (``tests.node.hostile.HostileServer``)
  serves a corrupted checkpoint note, delta header, header signature or delta
  body. The update is rejected, the store is unchanged (``StoreImage``) and the
  rejection is on record: the outcome names the error, and the offending bytes
  are kept as evidence.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from node.service import OUTCOMES, Node
from protocol import body_path, checkpoint_path, header_path, sig_path
from tests.node.fixtures_sync import (
    Clock,
    HubApp,
    StoreImage,
    evidence_rows,
    make_node,
    md5,
    sync_once,
)
from tests.node.hostile import HostileServer, Tamper
from tests.reliability.malformed_support import (
    FUZZ,
    assert_json_error,
    database_dump,
    json_mutations,
    mutations,
    random_bytes,
)
from tests.reliability.test_malformed_parsers import PICTURES, bomb_png
from tests.web.node_support import MD5_LIST, api_headers, node_of, start_hub, start_node_site

Client = TestClient[web.Request, web.Application]

SETTINGS = settings(
    max_examples=50,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    **FUZZ,
)
REFUSALS = (400, 404, 409, 413, 415)


@dataclass
class NodeWorld:
    """The node's real app on loopback, its API token, one real match, its database."""

    client: Client
    headers: dict[str, str]
    match_id: str
    database: Path
    before: list[str] = field(repr=False)

    def unchanged(self) -> None:
        now = database_dump(self.database)
        added = [line for line in now if line not in self.before]
        removed = [line for line in self.before if line not in now]
        assert now == self.before, (added[:3], removed[:3])

    def accepted(self) -> None:
        """A corrupted request that was still valid was answered; it may store what it says."""
        self.before = database_dump(self.database)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[NodeWorld]:
    hub = await start_hub(tmp_path / "hub")
    try:
        client = await start_node_site(tmp_path / "node", hub)
        try:
            headers = api_headers(client)
            response = await client.post(
                "/v1/match",
                json={"hashes": [{"type": "md5", "hash": md5(0).hex()}]},
                headers=headers,
            )
            assert response.status == 200, await response.text()
            (found,) = (await response.json())["matches"]
            node = node_of(client)
            database = node.home / node.config.database
            yield NodeWorld(client, headers, found["match_id"], database, database_dump(database))
        finally:
            await client.close()
    finally:
        await hub.stop()


_QUERY_SEED = {"hashes": [{"type": "md5", "hash": md5("unlisted").hex()}]}
_CONTENT_SEED = {"content_id": "post-1", **_QUERY_SEED}
_NOT_JSON = (
    b"",
    b"\xff\xfe{}",
    b'{"hashes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"hashes": [{"type": "md5", "hash": ' + b"1" * 5000 + b"}]}",
    b'{"hashes": NaN}',
    b'{"hashes": [], "hashes": []}',
)


def _examples(values: tuple[bytes, ...]) -> Callable[[Any], Any]:
    """Always send each of ``values`` to both routes, besides the generated examples."""

    def decorate(test: Any) -> Any:
        for value in values:
            for route in ("/v1/match", "/v1/content"):
                test = example(route=route, data=value)(test)
        return test

    return decorate


@SETTINGS
@given(
    route=st.sampled_from(["/v1/match", "/v1/content"]),
    data=st.one_of(
        json_mutations(_CONTENT_SEED),
        mutations(json.dumps(_CONTENT_SEED).encode()),
        st.sampled_from(_NOT_JSON),
    ),
)
@_examples(_NOT_JSON)
async def test_malformed_hash_query_is_refused_and_nothing_is_stored(
    world: NodeWorld, route: str, data: bytes
) -> None:
    if route == "/v1/match":  # the match route takes no content id
        data = data.replace(b'"content_id":"post-1",', b"")
    response = await world.client.post(
        route, data=data, headers={**world.headers, "Content-Type": "application/json"}
    )
    body = await response.read()
    if response.status in (200, 201):
        event(f"{route}: the corruption left a valid query")
        world.accepted()
        return
    assert_json_error(response.status, body, REFUSALS)
    world.unchanged()


_BOUNDARY = "hashhubboundary"
_JPEG = PICTURES["JPEG"]
_MULTIPART = (
    (
        f"--{_BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    + _JPEG
    + f"\r\n--{_BOUNDARY}--\r\n".encode()
)
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff")
_OTHER_TYPES = (
    f"multipart/form-data; boundary={_BOUNDARY}",
    "multipart/form-data; boundary=",
    "multipart/form-data",
    "text/plain",
    "application/x-www-form-urlencoded",
    "image/svg+xml",
    "image/",
)


@SETTINGS
@given(
    route=st.sampled_from(["/v1/match", "/v1/content?content_id=upload-1"]),
    upload=st.one_of(
        st.tuples(
            st.sampled_from(_IMAGE_TYPES),
            st.one_of(
                st.sampled_from(sorted(PICTURES.values())).flatmap(
                    lambda p: mutations(p, noise=False)
                ),
                random_bytes(),
                st.just(bomb_png()),
                st.just(_MULTIPART),
            ),
        ),
        st.tuples(st.sampled_from(_OTHER_TYPES), st.one_of(mutations(_MULTIPART), st.just(_JPEG))),
    ),
)
async def test_upload_that_is_not_a_picture_is_refused_and_nothing_is_stored(
    world: NodeWorld, route: str, upload: tuple[str, bytes]
) -> None:
    content_type, data = upload
    response = await world.client.post(
        route, data=data, headers={**world.headers, "Content-Type": content_type}
    )
    body = await response.read()
    if response.status in (200, 201):
        world.accepted()
        assert content_type in _IMAGE_TYPES, (content_type, body[:200])
        event("upload: the corruption left a decodable picture")
        return
    error = assert_json_error(response.status, body, REFUSALS)
    if data == bomb_png() and content_type == "image/png":
        assert error["code"] == "decompression_bomb", error
    world.unchanged()


@SETTINGS
@given(
    data=st.one_of(
        json_mutations({"outcome": "actioned"}),
        mutations(b'{"outcome": "actioned"}'),
        st.sampled_from(_NOT_JSON),
    ),
    match_id=st.one_of(st.none(), st.text(min_size=1, max_size=80)),
)
async def test_malformed_outcome_is_refused_and_nothing_is_recorded(
    world: NodeWorld, data: bytes, match_id: str | None
) -> None:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        value = None
    valid = isinstance(value, dict) and set(value) == {"outcome"} and value["outcome"] in OUTCOMES
    if match_id is None and valid:
        event("outcome: the corruption left a valid outcome; not sent")
        return
    target = world.match_id if match_id is None else match_id
    response = await world.client.post(
        f"/v1/matches/{target.replace('/', '%2F').replace('?', '%3F').replace('#', '%23')}/outcome",
        data=data,
        headers={**world.headers, "Content-Type": "application/json"},
    )
    assert_json_error(response.status, await response.read(), (*REFUSALS, 405))
    world.unchanged()


async def test_the_seeds_are_requests_the_node_accepts(world: NodeWorld) -> None:
    """What the tests above corrupt is valid to begin with."""
    client, headers = world.client, world.headers
    assert (await client.post("/v1/match", json=_QUERY_SEED, headers=headers)).status == 200
    assert (await client.post("/v1/content", json=_CONTENT_SEED, headers=headers)).status == 201
    for kind, picture in PICTURES.items():
        answer = await client.post(
            "/v1/match", data=picture, headers={**headers, "Content-Type": f"image/{kind.lower()}"}
        )
        assert answer.status == 200, (kind, await answer.text())
    answer = await client.post(
        f"/v1/matches/{world.match_id}/outcome", json={"outcome": "actioned"}, headers=headers
    )
    assert answer.status == 200, await answer.text()


# -- the update from a hostile hub -----------------------------------------------------------


@dataclass
class SyncWorld:
    hub: HubApp
    node: Node
    evil: HostileServer
    paths: dict[str, str]


@pytest.fixture
async def sync_world(tmp_path: Path) -> AsyncIterator[SyncWorld]:
    hub = HubApp.init(tmp_path / "hub", Clock())
    hub.create_list(MD5_LIST, "md5")
    hub.publish(MD5_LIST, adds=[md5(i) for i in range(5)])
    await hub.start()
    evil = await HostileServer.serving(hub.home).start()
    node = make_node(tmp_path / "node", hub, [MD5_LIST])
    try:
        await sync_once(node)
        hub.publish(MD5_LIST, adds=[md5("late")], removes=[md5(0)])
        body_sha256 = json.loads(hub.file(header_path(MD5_LIST, 2)))["body"]["sha256"]
        paths = {
            "checkpoint": checkpoint_path(MD5_LIST),
            "header": header_path(MD5_LIST, 2),
            "signature": sig_path(header_path(MD5_LIST, 2)),
            "body": body_path(MD5_LIST, body_sha256),
        }
        yield SyncWorld(hub, node, evil, paths)
    finally:
        node.close()
        await evil.close()
        await hub.stop()


@settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    **FUZZ,
)
@given(target=st.sampled_from(["checkpoint", "header", "signature", "body"]), data=st.data())
async def test_node_rejects_corrupted_files_from_its_hub_and_keeps_its_store(
    sync_world: SyncWorld, target: str, data: st.DataObject
) -> None:
    world = sync_world
    path = world.paths[target]
    corrupted = data.draw(mutations(world.hub.file(path)), label=target)
    world.evil.rules.clear()
    world.evil.on("/" + path + "$", Tamper(lambda _: corrupted))
    before = StoreImage.of(world.node)
    evidence = len(evidence_rows(world.node))

    outcomes, _ = await sync_once(world.node, hub_url=world.evil.url)

    (outcome,) = outcomes
    assert outcome.status == "rejected", outcome
    assert outcome.error, outcome
    before.unchanged(world.node, new_evidence=1)
    kept = evidence_rows(world.node)[evidence]
    assert kept["kind"] == outcome.kind, (kept["kind"], outcome.error)
    if target == "checkpoint":  # the note itself is kept, to show what was served
        assert bytes(kept["bytes"]) == corrupted, (kept, outcome)


async def test_an_empty_checkpoint_is_kept_as_what_was_served(sync_world: SyncWorld) -> None:
    """Zero bytes are what the server sent, not "nothing kept": the evidence holds b""."""
    world = sync_world
    world.evil.rules.clear()
    world.evil.on("/" + world.paths["checkpoint"] + "$", Tamper(lambda _: b""))
    before = StoreImage.of(world.node)
    evidence = len(evidence_rows(world.node))
    (outcome,) = (await sync_once(world.node, hub_url=world.evil.url))[0]
    assert (outcome.status, outcome.kind) == ("rejected", "MalformedError"), outcome
    before.unchanged(world.node, new_evidence=1)
    kept = evidence_rows(world.node)[evidence]
    assert kept["bytes"] is not None, kept
    assert bytes(kept["bytes"]) == b""
