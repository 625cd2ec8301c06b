"""An entries list's records looked up by hash through their rows (``node.store.record_table``).

The hub is the loopback one of ``tests.node.test_entries`` (real keys, real
snapshots and bodies), the node real, its store real SQLite. The rows must hold
the list's current state whichever way it got there (a snapshot, a logged change,
a restart, a repair) and are rebuilt from the stored state when missing or
damaged. How fast a lookup is belongs to the benchmark, not here:
``python bench/node_bench.py --sections entries`` (0.047 ms median a lookup at
1M PDQ records, against 18 ms for the binary search of the blob).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from node.service import Node
from node.store import NodeStore, record_table
from protocol import Entry, Removal
from tests.node.entries_hub import EntriesHub, md5, record
from tests.node.fixtures_sync import Clock, raw_db, sync_once
from tests.node.test_entries import LIST, lists_row, logged_changes, make_node


@pytest.fixture
async def hub() -> AsyncIterator[EntriesHub]:
    published = await EntriesHub(Clock()).start()
    try:
        yield published
    finally:
        await published.close()


@pytest.fixture
def node(tmp_path: Path, hub: EntriesHub) -> Iterator[Node]:
    made = make_node(tmp_path / "node", hub)
    try:
        yield made
    finally:
        made.close()


def rows(node: Node) -> dict[bytes, bytes]:
    """The list's rows as stored: hash to the rest of its record."""
    conn = raw_db(node)
    try:
        return {
            bytes(h): bytes(rest)
            for h, rest in conn.execute(
                "SELECT hash, rest FROM entry_records WHERE list_id = ?", [LIST]
            )
        }
    finally:
        conn.close()


def rows_of(entries: list[Entry]) -> dict[bytes, bytes]:
    return {e.hash: e.line.split(b" ", 1)[1] for e in entries}


def current(hub: EntriesHub) -> list[Entry]:
    return hub.heads[LIST].state.entries()


def statements(node: Node) -> list[str]:
    """Every SQL statement the node's connection runs from now on."""
    seen: list[str] = []
    node.store.db.conn.set_trace_callback(seen.append)
    return seen


async def test_rows_hold_the_snapshot_then_each_logged_change(hub: EntriesHub, node: Node) -> None:
    t = hub.clock()
    kept = record("kept", t, classification="reported")
    hub.publish(LIST, adds=[record(f"item-{i}", t) for i in range(60)])
    hub.publish(LIST, adds=[kept, record("gone", t)])  # v2: a snapshot
    await sync_once(node)
    assert rows(node) == rows_of(current(hub))

    changed = record("kept", t, classification="confirmed")
    new = record("new", t, category="extremism")
    hub.publish(LIST, adds=[changed, new], removes=[Removal(kept, "changed")])
    hub.publish(LIST, removes=[Removal(record("gone", t), "withdrawn")])
    await sync_once(node)
    assert len(logged_changes(node.home)) == 1  # v3 and v4's net change, not yet in the blob
    assert b"e-new" not in bytes(lists_row(node.home)["state"])
    assert rows(node) == rows_of(current(hub))

    seen = statements(node)
    found = node.store.entries(LIST, [changed.hash, new.hash, md5("item-7")])
    assert found == {changed.hash: changed, new.hash: new, md5("item-7"): record("item-7", t)}
    # Neither the log nor the blob was read: one probe of the rows a hash.
    assert not [s for s in seen if "state_changes" in s or "state FROM" in s], seen
    assert sum("FROM entry_records WHERE" in s for s in seen) == 3
    # A hash the rows lack is asked of the state too (the index said it was listed).
    assert node.store.entries(LIST, [md5("gone")]) == {}

    # Past 1/16 of the list the blob is written whole and the log cleared: the rows
    # take the same net changes.
    hub.publish(LIST, adds=[record(f"more-{i}", t) for i in range(20)])
    await sync_once(node)
    assert logged_changes(node.home) == []
    assert rows(node) == rows_of(current(hub))
    assert node.store.entry(LIST, md5("more-3")) == record("more-3", t)


async def test_rows_survive_a_restart_and_are_not_rebuilt(hub: EntriesHub, tmp_path: Path) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record("a", t), record("b", t)])
    hub.publish(LIST, adds=[record("c", t)])
    home = tmp_path / "node"
    first = make_node(home, hub)
    try:
        await sync_once(first)
    finally:
        first.close()

    store = NodeStore(home / "node.db")
    try:
        seen: list[str] = []
        store.db.conn.set_trace_callback(seen.append)
        assert store.entry(LIST, md5("c")) == record("c", t)
        assert not [s for s in seen if "INSERT" in s or "DELETE" in s], seen
    finally:
        store.close()


async def test_a_resync_from_a_snapshot_rewrites_the_rows(hub: EntriesHub, node: Node) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record("a", t), record("b", t)])
    await sync_once(node)
    conn = raw_db(node)
    conn.execute("UPDATE lists SET state = CAST(replace(state, 'e-a', 'e-z') AS BLOB)")
    conn.close()
    # The state is damaged: verify says so and the rows follow the state, not the trust.
    assert not node.store.verify()[0][1]
    assert node.store.entry(LIST, md5("a")) == record("a", t, entry_id="e-z")

    hub.publish(LIST, adds=[record("c", t)])  # v2: a snapshot is due
    (outcome,), _ = await sync_once(node)
    assert (outcome.status, outcome.rebuilt) == ("updated", True)
    assert rows(node) == rows_of(current(hub))
    assert node.store.entry(LIST, md5("a")) == record("a", t)
    held = record_table.rows_state(node.store.db, node.store.hub, LIST)
    digest = hub.heads[LIST].state.digest()
    assert held == record_table.RowsState(digest.sha256, digest)


@pytest.mark.parametrize(
    "damage",
    [
        "DELETE FROM entry_records",
        "DELETE FROM entry_records_state",
        "DROP TABLE entry_records_state; CREATE TABLE entry_records_state "
        "(hub TEXT NOT NULL, list_id TEXT NOT NULL, trusted TEXT NOT NULL, "
        "count INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (hub, list_id))",
        "UPDATE entry_records_state SET trusted = 'x'",
        "UPDATE entry_records SET rest = CAST('not a record' AS BLOB)",
    ],
)
async def test_missing_or_damaged_rows_are_rebuilt_from_the_state(
    hub: EntriesHub, node: Node, damage: str
) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record(f"k{i}", t) for i in range(40)])
    await sync_once(node)
    hub.publish(LIST, removes=[Removal(record("k3", t), "withdrawn")])
    await sync_once(node)
    assert logged_changes(node.home)
    conn = raw_db(node)
    conn.executescript(damage)
    conn.close()

    assert node.store.entries(LIST, [md5("k5"), md5("k3")]) == {md5("k5"): record("k5", t)}
    assert rows(node) == rows_of(current(hub))


async def test_a_row_lost_or_changed_by_hand_is_caught_by_verify(
    hub: EntriesHub, node: Node
) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record(f"k{i}", t) for i in range(40)])
    await sync_once(node)
    conn = raw_db(node)
    conn.execute("DELETE FROM entry_records WHERE hash = ?", [md5("k1")])
    conn.execute(
        "UPDATE entry_records SET rest = CAST(replace(rest, 'e-k2', 'e-kz') AS BLOB) "
        "WHERE hash = ?",
        [md5("k2")],
    )
    conn.close()
    # The state is intact, so verify passes it, and puts the rows right from it.
    assert all(ok for _, ok, _, _ in node.store.verify())
    assert rows(node) == rows_of(current(hub))
    assert node.store.entry(LIST, md5("k1")) == record("k1", t)
    assert node.store.entry(LIST, md5("k2")) == record("k2", t)


async def test_a_lookup_inside_a_transaction_reads_the_state_when_the_rows_are_stale(
    hub: EntriesHub, node: Node
) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record("a", t), record("b", t)])
    await sync_once(node)
    conn = raw_db(node)
    conn.execute("DELETE FROM entry_records")
    conn.close()
    with node.store.atomic():
        assert node.store.entry(LIST, md5("b")) == record("b", t)
    assert rows(node) == {}  # not rebuilt inside the caller's transaction
    assert node.store.entry(LIST, md5("b")) == record("b", t)
    assert rows(node) == rows_of(current(hub))


async def test_with_the_rows_gone_a_lookup_reads_the_log_once_for_every_hash(
    hub: EntriesHub, node: Node
) -> None:
    """Rows missing inside a transaction: the records come from the logged changes
    (the newest change that names a hash wins) and the blob, the log read once for
    all the hashes asked."""
    t = hub.clock()
    kept = record("kept", t, classification="reported")
    hub.publish(LIST, adds=[record(f"item-{i}", t) for i in range(60)])
    hub.publish(LIST, adds=[kept, record("gone", t)])
    await sync_once(node)
    changed = record("kept", t, classification="confirmed")
    new = record("new", t, category="extremism")
    hub.publish(LIST, adds=[changed, new], removes=[Removal(kept, "changed")])
    await sync_once(node)
    hub.publish(LIST, removes=[Removal(record("gone", t), "withdrawn")])
    await sync_once(node)
    assert len(logged_changes(node.home)) == 2
    conn = raw_db(node)
    conn.execute("DELETE FROM entry_records")
    conn.close()

    def log_reads(hashes: list[bytes]) -> tuple[dict[bytes, Entry], int]:
        seen = statements(node)
        with node.store.atomic():
            found = node.store.entries(LIST, hashes)
        return found, sum("FROM state_changes" in s for s in seen)

    found, reads = log_reads([changed.hash, new.hash, md5("gone"), md5("item-7"), md5("never")])
    assert found == {changed.hash: changed, new.hash: new, md5("item-7"): record("item-7", t)}
    assert log_reads([changed.hash]) == ({changed.hash: changed}, reads)  # not one a hash
