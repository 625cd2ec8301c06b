"""The node's state-change log: small deltas are logged beside the state blob.

Writing a 1M-hash state (32 MB) again under ``synchronous=FULL`` for every 10k-hash
delta cost half of the update's time; the store logs the net changes instead until
they reach a sixteenth of the state (``node.store.STATE_LOG_FRACTION``), then writes
the blob whole and clears the log. What is read back is always the blob with the
log replayed, checked against the trust record's digest like the blob alone was.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from node.service import Node
from node.store import STATE_LOG_FRACTION
from tests.node.fixtures_sync import (
    Clock,
    HubApp,
    make_node,
    md5,
    raw_db,
    state_of,
    statuses,
    sync_once,
)

LIST = "tid-md5"
FIRST = 160  # hashes in v1: ten changes are within a sixteenth


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubApp]:
    app = HubApp.init(tmp_path / "hub", Clock())
    app.create_list(LIST, "md5", snapshot_every=3)
    app.publish(LIST, adds=[md5(i) for i in range(FIRST)])
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
def node(tmp_path: Path, hub: HubApp) -> Iterator[Node]:
    made = make_node(tmp_path / "node", hub, [LIST])
    try:
        yield made
    finally:
        made.close()


def blob(node: Node) -> bytes:
    row = next(iter(node.store.db.query("SELECT state FROM lists WHERE id = ?", [LIST])))
    return bytes(row["state"])


def logged(node: Node) -> list[dict[str, Any]]:
    return list(node.store.db.query("SELECT * FROM state_changes ORDER BY seq"))


def expected_state(hashes: set[bytes]) -> bytes:
    return b"".join(sorted(hashes))


async def test_a_small_delta_is_logged_and_read_back_with_the_blob(hub: HubApp, node: Node) -> None:
    await sync_once(node)
    v1 = blob(node)
    listed = {md5(i) for i in range(FIRST)}
    hub.publish(LIST, adds=[md5("a"), md5("b")], removes=[md5(0)])

    outcomes, _ = await sync_once(node)

    assert statuses(outcomes) == {LIST: ("updated", 1, 2)}
    assert blob(node) == v1  # the 2.5 KB blob was not written again
    [change] = logged(node)
    assert change["removes"] == md5(0)
    assert change["adds"] == b"".join(sorted([md5("a"), md5("b")]))
    listed = (listed - {md5(0)}) | {md5("a"), md5("b")}
    assert state_of(node, LIST) == expected_state(listed)
    assert all(ok for _, ok, _, _ in node.store.verify())
    assert node.matching.match_hashes({"md5": [md5("a")]})

    # A restart reads the same state back and finds nothing damaged.
    home = node.home
    node.close()
    reopened = Node.open(home, now=hub.clock)
    try:
        assert reopened.matching.damaged == set()
        assert reopened.matching.match_hashes({"md5": [md5("b")]})
        assert not reopened.matching.match_hashes({"md5": [md5(0)]})
    finally:
        reopened.close()


async def test_the_log_is_folded_into_the_blob_once_it_passes_a_sixteenth(
    hub: HubApp, node: Node
) -> None:
    await sync_once(node)
    hub.publish(LIST, adds=[md5(f"a{i}") for i in range(FIRST // STATE_LOG_FRACTION - 2)])
    await sync_once(node)
    assert len(logged(node)) == 1
    hub.publish(LIST, adds=[md5(f"b{i}") for i in range(4)])  # now past a sixteenth

    await sync_once(node)

    assert logged(node) == []
    assert blob(node) == state_of(node, LIST)
    assert len(blob(node)) == (FIRST + FIRST // STATE_LOG_FRACTION + 2) * 16
    assert all(ok for _, ok, _, _ in node.store.verify())


async def test_a_damaged_log_is_reported_and_repaired_from_the_next_snapshot(
    hub: HubApp, node: Node
) -> None:
    await sync_once(node)
    hub.publish(LIST, adds=[md5("a")])  # v2: logged
    await sync_once(node)
    db = raw_db(node)
    db.execute("UPDATE state_changes SET adds = ? WHERE list_id = ?", [md5("forged"), LIST])
    db.close()
    home = node.home
    node.close()

    reopened = Node.open(home, now=hub.clock)
    try:
        assert reopened.matching.damaged == {LIST}
        ((_, ok, _, _),) = reopened.store.verify()
        assert not ok
        hub.publish(LIST, adds=[md5("b")])  # v3, with a snapshot

        outcomes, _ = await sync_once(reopened)

        assert statuses(outcomes) == {LIST: ("updated", 2, 3)}
        assert outcomes[0].rebuilt
        assert logged(reopened) == []
        assert all(ok for _, ok, _, _ in reopened.store.verify())
        assert reopened.matching.match_hashes({"md5": [md5("a"), md5("b")]})
        assert not reopened.matching.match_hashes({"md5": [md5("forged")]})
    finally:
        reopened.close()
