"""The content index (``node.content_index``): the registered PDQ hashes on disk.

Every answer is compared with a brute-force scan of every registered hash against
every added one (numpy, all pairs), on random and on clustered registries, and an
index grown by journal entries and merges with one rebuilt from the database.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from follow import ListOutcome
from node.content_index import MERGE_MIN, ContentIndex
from node.matcher import MULTI_INDEX_MIN
from node.service import Node
from protocol import ListSpec
from protocol.lists import HASH_TYPES
from tests.node.conftest import offline_node
from tests.node.test_cli import ok
from tests.node.test_content_import import run

PDQ = HASH_TYPES["pdq"]
LIMIT = 31


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    opened = offline_node(tmp_path / "node", ["ncii-pdq"])
    try:
        yield opened
    finally:
        opened.close()


def flip(h: bytes, bits: int, rng: random.Random) -> bytes:
    """``h`` with ``bits`` distinct bits flipped."""
    value = int.from_bytes(h, "big")
    for bit in rng.sample(range(256), bits):
        value ^= 1 << bit
    return value.to_bytes(32, "big")


def random_hashes(n: int, rng: random.Random) -> list[bytes]:
    return [rng.randbytes(32) for _ in range(n)]


def clustered_hashes(n: int, rng: random.Random) -> list[bytes]:
    """Families of near-duplicates: a tenth are centres, the rest 1-30 bits from one."""
    centres = random_hashes(max(1, n // 10), rng)
    members = [flip(rng.choice(centres), rng.randint(1, 30), rng) for _ in range(n - len(centres))]
    return centres + members


def queries_near(hosted: list[bytes], rng: random.Random, count: int = 200) -> list[bytes]:
    """Half near a hosted hash (0-31 bits), half random; some exactly at 31 and 32."""
    out = [flip(rng.choice(hosted), rng.randint(0, 31), rng) for _ in range(count // 2)]
    out += [flip(rng.choice(hosted), 31, rng), flip(rng.choice(hosted), 32, rng)]
    return out + random_hashes(count - len(out), rng)


def brute_force(
    hosted: list[bytes], added: list[bytes], limit: int
) -> set[tuple[bytes, bytes, int]]:
    """Every (added, hosted, distance) pair within ``limit``: all pairs, in numpy."""
    rows = np.frombuffer(b"".join(sorted(set(hosted))), dtype=">u8").reshape(-1, 4)
    unique = sorted(set(hosted))
    found = set()
    for query in sorted(set(added)):
        q = np.frombuffer(query, dtype=">u8")
        dist = np.bitwise_count(rows ^ q).sum(axis=1)
        for i in np.nonzero(dist <= limit)[0]:
            found.add((query, unique[int(i)], int(dist[i])))
    return found


def register(node: Node, hashes: list[bytes], prefix: str) -> None:
    node.registry.register_batch([(f"{prefix}-{i}", "pdq", h) for i, h in enumerate(hashes)])


@pytest.mark.parametrize("make", [random_hashes, clustered_hashes], ids=["random", "clustered"])
def test_the_index_finds_what_a_full_scan_finds(node: Node, make: object) -> None:
    rng = random.Random(7)
    hosted = make(MULTI_INDEX_MIN + 5_000, rng)  # type: ignore[operator]
    register(node, hosted, "item")
    index = node.registry.content_index("pdq")
    index.rebuild()
    assert index.current().multi is not None, "a registry this size is multi-indexed"
    added = queries_near(hosted, rng)
    expected = brute_force(hosted, added, LIMIT)
    assert len(expected) > 100, "the queries must find something"
    assert set(index.near(added, LIMIT)) == expected
    # A stricter list's distance probes the same files with another radius.
    assert set(index.near(added, 15)) == {t for t in expected if t[2] <= 15}


def test_a_small_registry_is_scanned_and_still_exact(node: Node) -> None:
    rng = random.Random(8)
    hosted = clustered_hashes(3_000, rng)
    register(node, hosted, "item")
    index = node.registry.content_index("pdq")
    added = queries_near(hosted, rng)
    assert set(index.near(added, LIMIT)) == brute_force(hosted, added, LIMIT)
    assert index.current().multi is None


def test_an_index_grown_by_journal_and_merges_equals_one_rebuilt(node: Node) -> None:
    """Registrations land in the journal (read on the spot), merges fold them in; at
    every step the answer is the full scan's, and equals a rebuild from the table."""
    rng = random.Random(9)
    hosted: list[bytes] = []
    index = node.registry.content_index("pdq")
    added = []
    for step in range(4):
        batch = clustered_hashes(12_000, rng)
        hosted += batch
        register(node, batch, f"step{step}")
        added = queries_near(hosted, rng, 120)
        expected = brute_force(hosted, added, LIMIT)
        assert set(index.near(added, LIMIT)) == expected, f"journal, step {step}"
        if step % 2:
            index.merge()
            assert node.store.matches.journal_size("pdq", 0) == 0, "the merge dropped the journal"
            assert set(index.near(added, LIMIT)) == expected, f"merged, step {step}"
    grown = index.current()
    assert grown.count == len(set(hosted)), "the last step merged: every hash in the files"
    index.merge()
    merged_rows = np.array(index.current().rows)
    index.rebuild()
    assert np.array_equal(merged_rows, np.array(index.current().rows))
    assert set(index.near(added, LIMIT)) == brute_force(hosted, added, LIMIT)


def test_a_merge_comes_when_the_journal_passes_its_share(node: Node) -> None:
    rng = random.Random(10)
    index = node.registry.content_index("pdq")
    first = index.current()  # empty: built before anything is registered
    assert first.count == 0
    register(node, random_hashes(MERGE_MIN, rng), "a")
    assert not index.merge_due(), "at the threshold, not past it"
    register(node, random_hashes(1, rng), "b")
    assert index.merge_due()
    index.near([rng.randbytes(32)], LIMIT)  # a query merges first when one is due
    assert index.current().name != first.name
    assert index.current().count == MERGE_MIN + 1
    assert node.store.matches.journal_size("pdq", index.current().covered) == 0


def test_the_index_survives_a_restart_and_rebuilds_broken_files(node: Node, tmp_path: Path) -> None:
    rng = random.Random(11)
    hosted = random_hashes(MULTI_INDEX_MIN, rng)
    register(node, hosted, "item")
    index = node.registry.content_index("pdq")
    index.merge()
    name = index.current().name
    added = queries_near(hosted, rng)
    expected = brute_force(hosted, added, LIMIT)

    for directory in (index.directory, index.directory / "pdq", index.directory / "pdq" / name):
        assert directory.stat().st_mode & 0o777 == 0o700, "what the platform hosts: owner only"
    again = ContentIndex(index.directory, PDQ, node.store.matches)
    assert again.current().name == name, "the files on disk are used, not rebuilt"
    assert set(again.near(added, LIMIT)) == expected

    rows = index.directory / "pdq" / name / "rows.npy"
    rows.write_bytes(rows.read_bytes()[:1000])  # a torn file
    broken = ContentIndex(index.directory, PDQ, node.store.matches)
    assert set(broken.near(added, LIMIT)) == expected, "rebuilt from the database"
    assert broken.current().name != name
    assert not (index.directory / "pdq" / name).exists(), "the broken generation is gone"


def test_removed_content_is_found_by_nobody_and_a_rebuild_drops_it(node: Node) -> None:
    rng = random.Random(12)
    hosted = random_hashes(2_000, rng)
    register(node, hosted, "item")
    node.registry.content_index("pdq").merge()  # the files hold every hash
    gone = hosted[5]
    node.registry.remove([("item-5", None)])
    outcome = ListOutcome("ncii-pdq", "updated", 1, 2, added=[flip(gone, 3, rng), hosted[6]])
    spec = ListSpec("ncii-pdq", "pdq", LIMIT)
    hits = node.registry._near(outcome, spec)
    assert [(c, d) for c, _, _, d in hits] == [("item-6", 0)], hits
    index = node.registry.content_index("pdq")
    assert any(h == gone for _, h, _ in index.near([gone], 0)), "still in the files"
    index.rebuild()
    assert index.near([gone], 0) == []


def test_a_retroactive_pass_reports_every_content_id_of_a_shared_hash(node: Node) -> None:
    """Two pieces of content with one hash: one index entry, two matches."""
    rng = random.Random(13)
    hosted = random_hashes(100, rng)
    register(node, hosted, "item")
    node.registry.register_batch([("copy-of-item-3", "pdq", hosted[3])])
    listed = flip(hosted[3], 4, rng)
    outcome = ListOutcome("ncii-pdq", "updated", 1, 2, added=[listed])
    spec = ListSpec("ncii-pdq", "pdq", LIMIT)
    hits = sorted(node.registry._near(outcome, spec))
    assert hits == [
        ("copy-of-item-3", listed, hosted[3], 4),
        ("item-3", listed, hosted[3], 4),
    ]
    assert node.registry.content_index("pdq").current().count == 100


def test_import_indexes_and_reindex_drops_removed_content(tmp_path: Path) -> None:
    """The commands a platform runs: ``content import`` leaves the index ready on disk,
    ``content reindex`` rebuilds it from the registry without what was removed."""
    home = tmp_path / "node"
    offline_node(home, ["ncii-pdq"]).close()
    rng = random.Random(14)
    hosted = random_hashes(300, rng)
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("".join(f"post-{i},pdq,{h.hex()}\n" for i, h in enumerate(hosted)))
    out = ok(run("content", "import", str(corpus), "--home", str(home)))
    assert "Content index: 300 distinct pdq hash(es) on disk" in out
    assert sorted((home / "content-index" / "pdq").iterdir())  # a generation is there

    removal = tmp_path / "removal.csv"
    removal.write_text("".join(f"post-{i}\n" for i in range(100)))
    ok(run("content", "remove", str(removal), "--home", str(home)))
    out = ok(run("content", "reindex", "--home", str(home)))
    assert "Content index: 200 distinct pdq hash(es) on disk, rebuilt" in out
    node = Node.open(home)
    try:
        index = node.registry.content_index("pdq")
        assert index.near([hosted[0]], 0) == [], "removed: gone from the files"
        assert index.near([hosted[150]], 0) == [(hosted[150], hosted[150], 0)]
    finally:
        node.close()
