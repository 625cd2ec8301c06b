"""The mirror path for real (issue 8 §2): nginx serving ``hashhub export``, a node syncing.

A real hub app on loopback publishes a list; ``hashhub export`` writes its tree; Debian's
nginx serves that tree with ``docker/nginx/mirror.conf`` (the server block the compose
stack mounts); real nodes list nginx as their mirror. The node must take every
immutable file (roots, headers, signatures, bodies, snapshots) from nginx and only the
checkpoint from the hub — nginx's own access log and the node's ``Fetcher.requested``
both say so. Then nginx serves a body with one byte changed and a truncated snapshot:
the node passes over nginx's bytes, applies the hub's (its state is the hub's, byte for
byte) and keeps ``RejectedSource`` evidence naming the nginx URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from protocol import DeltaHeader, body_path, checkpoint_path, header_path, snapshot_path
from protocol.layout import root_path, sig_path
from tests.deploy.nginx import NginxMirror, export_tree
from tests.node.fixtures_sync import (
    Clock,
    HubApp,
    evidence_rows,
    make_node,
    md5,
    state_of,
    statuses,
    sync_once,
)
from tests.node.hostile import flip_byte

LIST = "tid-md5"
SNAPSHOT_EVERY = 2


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubApp]:
    """``LIST`` at version 3 (a snapshot at 2, so a new node needs a snapshot and a body)."""
    app = HubApp.init(tmp_path / "hub", Clock())
    app.create_list(LIST, "md5", snapshot_every=SNAPSHOT_EVERY)
    app.publish(LIST, adds=[md5(i) for i in range(5)])
    app.publish(LIST, adds=[md5("x")], removes=[md5(1)])
    app.publish(LIST, adds=[md5("y")])
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
async def mirror(tmp_path: Path, hub: HubApp) -> AsyncIterator[NginxMirror]:
    """nginx serving what ``hashhub export`` wrote of ``hub``."""
    tree = tmp_path / "tree"
    await export_tree(hub.home, tree)
    running = await NginxMirror.start(tree, tmp_path / "nginx")
    try:
        yield running
    finally:
        running.stop()


def paths_at(requested: list[str], base: str) -> list[str]:
    """The paths, in order, that were asked of the server at ``base``."""
    return [url.removeprefix(f"{base}/") for url in requested if url.startswith(f"{base}/")]


def header(hub: HubApp, version: int) -> DeltaHeader:
    """Header ``version`` as the hub signed it."""
    return DeltaHeader.from_bytes(hub.file(header_path(LIST, version)))


def hub_state(hub: HubApp) -> bytes:
    with hub.opened() as opened:
        return opened.lists.state(LIST).to_bytes()


async def test_immutable_files_come_from_nginx_and_checkpoints_from_the_hub(
    tmp_path: Path, hub: HubApp, mirror: NginxMirror
) -> None:
    node = make_node(tmp_path / "node", hub, [LIST], mirrors=[mirror.url])

    outcomes, fetcher = await sync_once(node)

    assert statuses(outcomes) == {LIST: ("updated", 0, 3)}
    assert state_of(node, LIST) == hub_state(hub)
    # The hub was asked for the checkpoint, and for root v3 only after nginx had none.
    assert paths_at(fetcher.requested, hub.url) == [root_path(3), checkpoint_path(LIST)]
    from_mirror = paths_at(fetcher.requested, mirror.url)
    body_v3 = body_path(LIST, header(hub, 3).body.sha256)
    immutable = [
        root_path(1),
        sig_path(root_path(1)),
        root_path(2),
        sig_path(root_path(2)),
        *(p for v in (1, 2, 3) for p in (header_path(LIST, v), sig_path(header_path(LIST, v)))),
        snapshot_path(LIST, 2),
        body_v3,
    ]
    assert sorted(p for p in from_mirror if p != root_path(3)) == sorted(immutable)
    # nginx's own log: it served each of them, whole, and never a checkpoint.
    served = {r.path: r for r in mirror.served()}
    for path in immutable:
        assert served[path].status == 200, path
        assert served[path].size == len(hub.file(path)), path
    assert served[root_path(3)].status == 404
    assert not [p for p in served if p.endswith("/checkpoint")]
    node.close()


async def test_tampered_body_and_truncated_snapshot_on_nginx_fall_back_to_the_hub(
    tmp_path: Path, hub: HubApp, mirror: NginxMirror
) -> None:
    following = make_node(tmp_path / "following", hub, [LIST], mirrors=[mirror.url])
    assert statuses((await sync_once(following))[0]) == {LIST: ("updated", 0, 3)}
    # Version 4 is published and exported; then the mirror's copies go bad: one byte of
    # the new body changed, the new snapshot cut short.
    assert hub.publish(LIST, adds=[md5("z")], removes=[md5(0)]) == 4
    await export_tree(hub.home, mirror.tree)
    signed = header(hub, 4)
    body = body_path(LIST, signed.body.sha256)
    snapshot = snapshot_path(LIST, 4)
    (mirror.tree / body).write_bytes(flip_byte((mirror.tree / body).read_bytes()))
    whole = (mirror.tree / snapshot).read_bytes()
    (mirror.tree / snapshot).write_bytes(whole[: len(whole) // 2])
    expected = hub_state(hub)
    assert hashlib.sha256(expected).hexdigest() == signed.result_state.sha256

    # A node that follows the list needs the body; a new node bootstraps from the snapshot.
    outcomes, fetcher = await sync_once(following)
    newcomer = make_node(
        tmp_path / "newcomer", hub, [LIST], node_id="platform-b", mirrors=[mirror.url]
    )
    new_outcomes, new_fetcher = await sync_once(newcomer)

    for node, done, bad, fetched in (
        (following, outcomes, body, fetcher),
        (newcomer, new_outcomes, snapshot, new_fetcher),
    ):
        assert statuses(done) == {LIST: ("updated", done[0].from_version, 4)}
        # Nothing of nginx's bytes was applied: the state is the hub's, byte for byte.
        assert state_of(node, LIST) == expected
        assert node.store.verify()[0][1]
        # nginx served its bad copy (logged 200); the node then fetched the hub's.
        assert f"{mirror.url}/{bad}" in fetched.requested
        assert f"{hub.url}/{bad}" in fetched.requested
        assert fetched.requested.index(f"{mirror.url}/{bad}") < fetched.requested.index(
            f"{hub.url}/{bad}"
        )
        evidence = evidence_rows(node)[-1]
        assert evidence["kind"] == "RejectedSource"
        assert f"{mirror.url}/{bad}" in evidence["message"], evidence["message"]
        node.close()
    assert statuses(outcomes) == {LIST: ("updated", 3, 4)}
    assert statuses(new_outcomes) == {LIST: ("updated", 0, 4)}
    assert new_outcomes[0].rebuilt, "the newcomer bootstrapped from the (hub's) snapshot"
    logged = [(r.path, r.status) for r in mirror.served()]
    assert (body, 200) in logged
    assert (snapshot, 200) in logged


async def test_nginx_serves_only_the_published_tree_with_the_hubs_cache_lifetimes(
    hub: HubApp, mirror: NginxMirror
) -> None:
    """The shipped config: immutable files cached for a year, the checkpoint for seconds,
    and nothing else — a half-written export file, a stray file, a listing, a write."""
    (mirror.tree / "lists" / LIST / "checkpoint.tmp").write_bytes(b"half written")
    (mirror.tree / "notes.txt").write_bytes(b"not published")
    async with aiohttp.ClientSession() as session:

        async def get(path: str, method: str = "GET") -> tuple[int, str]:
            async with session.request(method, f"{mirror.url}/{path}") as response:
                await response.read()
                return response.status, response.headers.get("Cache-Control", "")

        for path in (header_path(LIST, 3), snapshot_path(LIST, 2), root_path(1)):
            assert await get(path) == (200, "public, max-age=31536000, immutable"), path
        assert await get(checkpoint_path(LIST)) == (200, "public, max-age=5")
        for path in (f"lists/{LIST}/checkpoint.tmp", "notes.txt", "", f"lists/{LIST}/"):
            assert (await get(path))[0] == 404, path
        assert (await get(root_path(9)))[0] == 404
        assert (await get(header_path(LIST, 3), "POST"))[0] == 405
        assert (await get(header_path(LIST, 3), "PUT"))[0] == 405
