"""How matches are counted: one image is one check, whatever its dihedral variants."""

from __future__ import annotations

from pathlib import Path

from node.matcher import ListIndex
from node.service import Node
from tests.node.conftest import offline_node

LIST = "tid-pdq"


def _node(tmp_path: Path, listed: list[bytes]) -> Node:
    node = offline_node(tmp_path / "node", [LIST], node_id="node-a")
    node.hub().matching.indexes[LIST] = ListIndex.from_snapshot("pdq", 31, b"".join(sorted(listed)))
    node.hub().matching.versions[LIST] = 1
    return node


def _totals(node: Node) -> dict[str, int]:
    return {
        r["name"]: r["value"]
        for r in node.store.db.query("SELECT name, value FROM counters WHERE hash = ''")
    }


def test_variants_of_one_image_count_as_one_check_and_one_event_per_listed_hash(
    tmp_path: Path,
) -> None:
    listed = bytes(32)
    node = _node(tmp_path, [listed])
    near = bytes(31) + b"\x03"  # distance 2
    exact = bytes(32)
    results = node.matching.match_hashes({"pdq": [near, exact, bytes(31) + b"\xff"]}, one_item=True)
    assert [(r.hash, r.distance) for r in results] == [(listed, 0)]
    assert _totals(node) == {"checked": 1, "matched": 1}


def test_independent_hashes_count_one_check_each(tmp_path: Path) -> None:
    listed = bytes(32)
    node = _node(tmp_path, [listed])
    results = node.matching.match_hashes({"pdq": [bytes(32), bytes(31) + b"\x03", b"\xff" * 32]})
    assert sorted(r.distance for r in results) == [0, 2]
    assert _totals(node) == {"checked": 3, "matched": 2}


def test_node_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    node = _node(tmp_path, [])
    assert (node.home / node.config.database).stat().st_mode & 0o077 == 0


def test_a_state_damaged_on_disk_is_reported_when_the_node_opens(tmp_path: Path) -> None:
    from protocol import ListState, ListTrust, StateDigest
    from protocol.root import ListSpec, Role, Root

    node = _node(tmp_path, [])
    key = node.key
    root = Root(
        1,
        "hub.example.org",
        node.now() + __import__("datetime").timedelta(days=1),
        {key.keyid: key.public},
        {r: Role((key.keyid,), 1) for r in ("root", "delta", "checkpoint", "timestamp")},
        {LIST: ListSpec(LIST, "pdq", 31)},
    )
    data, sig = root.sign([key])
    node.store.save_roots([(1, data, sig)])
    state = ListState.from_hashes(32, [bytes(32), b"\x01" * 32])
    trust = ListTrust(LIST, state=state.digest())
    node.store.commit_update(LIST, "pdq", state, trust, [], node.now())
    node.store.db.execute("UPDATE lists SET state = ? WHERE id = ?", [b"\x02" * 64, LIST])
    node.close()

    reopened = Node.open(tmp_path / "node")

    assert reopened.status()["damaged"] == [LIST]
    kinds = [e["kind"] for e in reopened.store.evidence()]
    assert kinds == ["LocalCorruption"]
    assert StateDigest.of_bytes(b"\x02" * 64, 32) != trust.state
    reopened.close()


def test_a_miss_writes_nothing_and_its_check_is_counted_before_anything_reads_it(
    tmp_path: Path,
) -> None:
    """The upload path's common case costs no database write; no check is lost to a
    reader: an ack, ``status`` and a later hit each see every miss counted."""
    listed = bytes(32)
    node = _node(tmp_path, [listed])
    writes = node.store.db.conn.total_changes
    for _ in range(3):
        assert node.matching.match_hashes({"pdq": [b"\xff" * 32]}) == []
    assert node.store.db.conn.total_changes == writes, "a miss wrote to the database"
    assert _totals(node) == {}
    assert node.acks.counts(LIST).checked == 3  # what the next ack carries
    assert _totals(node) == {"checked": 3}
    node.matching.match_hashes({"pdq": [b"\xff" * 32]})
    node.matching.match_hashes({"pdq": [listed]})  # a hit writes the pending miss too
    assert _totals(node) == {"checked": 5, "matched": 1}
    node.matching.match_hashes({"pdq": [b"\xff" * 32]})
    node.close()  # a clean stop writes what is pending
    reopened = Node.open(node.home)
    try:
        assert _totals(reopened) == {"checked": 6, "matched": 1}
    finally:
        reopened.close()
