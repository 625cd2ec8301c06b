"""The matcher: exact lookups, Hamming matching, dihedral queries, incremental updates.

Real pictures come from ``../shared/testdata/pdq``: Meta's bridge photo with edits
(``bridge-mods/``), its eight rotations and flips (``reg-test-input/dih/``), unrelated
photos (``reg-test-input/labelme-subset/``), and the needle/haystack hash set of
Meta's C++ matching tool (``reg-test-input/*.txt``).
"""

from __future__ import annotations

import hashlib
import random
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.imaging import dihedral_pdq, hash_image
from node.matcher import MULTI_INDEX_MIN, HashWidthError, ListIndex, Match, words_from_bytes
from protocol.errors import MalformedError, StateMismatchError
from protocol.state import ListState
from tests.node.test_pdq_conformance import expected_rows

PDQ = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "pdq"
BRIDGE = PDQ / "bridge-mods" / "aaa-orig.jpg"
DIH = PDQ / "reg-test-input" / "dih"
LABELME = PDQ / "reg-test-input" / "labelme-subset"
PDQ_THRESHOLD = 31


def distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def flip_bits(h: bytes, bits: list[int]) -> bytes:
    value = int.from_bytes(h, "big")
    for bit in bits:
        value ^= 1 << bit
    return value.to_bytes(len(h), "big")


@cache
def reference_pdq() -> dict[str, bytes]:
    """The reference hasher's PDQ of each test picture (``expected.csv``), by path under PDQ."""
    return {row.file: row.expected for row in expected_rows()}


def snapshot(hashes: list[bytes]) -> bytes:
    return b"".join(sorted(set(hashes)))


@cache
def pdq_of(path: Path) -> bytes:
    return hash_image(path.read_bytes()).pdq


@cache
def bridge_list() -> ListIndex:
    return ListIndex.from_snapshot("pdq", PDQ_THRESHOLD, pdq_of(BRIDGE))


# -- real pictures ---------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((PDQ / "bridge-mods").glob("*.jpg")), ids=lambda p: p.name)
def test_edited_bridge_photos_match_the_original_within_31_bits(path: Path) -> None:
    [matches] = bridge_list().match([pdq_of(path)])
    assert [m.hash for m in matches] == [pdq_of(BRIDGE)]
    assert matches[0].distance <= PDQ_THRESHOLD


def test_bridge_mods_folder_has_the_edits() -> None:
    """The pictures the test above matches are edits of the original: each another file,
    and by the reference hasher (not ours) within the threshold of the original."""
    paths = sorted((PDQ / "bridge-mods").glob("*.jpg"))
    assert len(paths) >= 12
    assert len({hashlib.sha256(p.read_bytes()).digest() for p in paths}) == len(paths)
    reference = reference_pdq()
    original = reference[BRIDGE.relative_to(PDQ).as_posix()]
    for path in paths:
        edit = reference[path.relative_to(PDQ).as_posix()]
        assert distance(edit, original) <= PDQ_THRESHOLD, path.name


ROTATIONS = sorted(p for p in DIH.glob("*.jpg") if "original" not in p.name)


@pytest.mark.parametrize("path", ROTATIONS, ids=lambda p: p.name)
def test_rotated_or_mirrored_copy_does_not_match_a_plain_query(path: Path) -> None:
    index = ListIndex.from_snapshot("pdq", PDQ_THRESHOLD, pdq_of(DIH / "bridge-1-original.jpg"))
    assert index.match([pdq_of(path)]) == [[]]


@pytest.mark.parametrize("path", ROTATIONS, ids=lambda p: p.name)
def test_rotated_or_mirrored_copy_matches_a_dihedral_query(path: Path) -> None:
    original = pdq_of(DIH / "bridge-1-original.jpg")
    index = ListIndex.from_snapshot("pdq", PDQ_THRESHOLD, original)
    matches = index.match_any(dihedral_pdq(path.read_bytes()))
    assert [m.hash for m in matches] == [original]
    assert matches[0].distance <= PDQ_THRESHOLD


def test_dih_folder_has_seven_transformed_copies() -> None:
    """The seven copies are the original's seven other dihedral transforms, in
    ``dihedral_pdq``'s order: by the reference hasher, copy k is near transform k and
    too far from the original for a plain query to find it."""
    assert len(ROTATIONS) == 7
    reference = reference_pdq()
    original = DIH / "bridge-1-original.jpg"
    transforms = dihedral_pdq(original.read_bytes())
    plain = reference[original.relative_to(PDQ).as_posix()]
    for k, path in enumerate(ROTATIONS, start=1):
        copy = reference[path.relative_to(PDQ).as_posix()]
        assert distance(copy, plain) > PDQ_THRESHOLD, path.name
        nearest = min(range(8), key=lambda i: distance(copy, transforms[i]))
        assert nearest == k, path.name
        assert distance(copy, transforms[k]) <= PDQ_THRESHOLD, path.name


@pytest.mark.parametrize("path", sorted(LABELME.glob("*.jpg")), ids=lambda p: p.name)
def test_unrelated_photo_does_not_match_the_bridge_plain_or_dihedral(path: Path) -> None:
    assert bridge_list().match([pdq_of(path)]) == [[]]
    assert bridge_list().match_any(dihedral_pdq(path.read_bytes())) == []


def test_labelme_folder_has_photos() -> None:
    """Unrelated photos: by the reference hasher, each is far from the bridge in every
    orientation and from each other, so the test above cannot pass by accident."""
    paths = sorted(LABELME.glob("*.jpg"))
    assert len(paths) >= 5
    reference = reference_pdq()
    photos = [reference[p.relative_to(PDQ).as_posix()] for p in paths]
    bridges = [reference[p.relative_to(PDQ).as_posix()] for p in DIH.glob("*.jpg")]
    bridges.append(reference[BRIDGE.relative_to(PDQ).as_posix()])
    for i, (path, photo) in enumerate(zip(paths, photos, strict=True)):
        others = photos[:i] + photos[i + 1 :] + bridges
        assert min(distance(photo, h) for h in others) > PDQ_THRESHOLD, path.name


# -- the C++ tool's needle/haystack set, against a naive scan ----------------------------


def read_hex_lines(name: str) -> list[bytes]:
    text = (PDQ / "reg-test-input" / name).read_text()
    return [bytes.fromhex(line.strip()) for line in text.split("\n") if line.strip()]


@cache
def naive_matches(limit: int) -> list[list[Match]]:
    """Every (needle, hay) pair compared in plain Python integers: the reference."""
    needles = read_hex_lines("needles.txt")
    haystack = read_hex_lines("haystack.txt")
    out = []
    for needle in needles:
        found = [Match(h, distance(needle, h)) for h in haystack if distance(needle, h) <= limit]
        out.append(sorted(found, key=lambda m: (m.distance, m.hash)))
    return out


@pytest.mark.parametrize("limit", [0, 10, 31, 63, 64, 100, 256])
@pytest.mark.parametrize("block_rows", [7, 1000, 16384])
def test_matches_equal_a_naive_scan_on_the_reference_tool_set(limit: int, block_rows: int) -> None:
    needles = read_hex_lines("needles.txt")
    haystack = read_hex_lines("haystack.txt")
    assert len(needles) == 100
    assert len(haystack) == 1350
    index = ListIndex.from_snapshot("pdq", limit, snapshot(haystack), block_rows=block_rows)
    got = index.match(needles)
    assert got == naive_matches(limit)


@pytest.mark.parametrize("limit", [1, 10, 15, 16, 30, 31])
def test_multi_index_matches_equal_a_naive_scan_on_the_reference_tool_set(limit: int) -> None:
    needles = read_hex_lines("needles.txt")
    haystack = read_hex_lines("haystack.txt")
    index = ListIndex.from_snapshot("pdq", limit, snapshot(haystack), multi_index_min=1)
    assert index.multi_indexed
    assert index.match(needles) == naive_matches(limit)


def test_reference_tool_set_has_matches_at_31_bits() -> None:
    needles = read_hex_lines("needles.txt")
    index = ListIndex.from_snapshot("pdq", 31, snapshot(read_hex_lines("haystack.txt")))
    assert sum(len(m) for m in index.match(needles)) >= 200


# -- exact types -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "digest"), [("md5", hashlib.md5), ("sha256", hashlib.sha256)])
def test_exact_lookup_finds_listed_digests_only(name: str, digest: type) -> None:
    listed = [digest(str(i).encode()).digest() for i in range(1000)]
    absent = [digest(f"x{i}".encode()).digest() for i in range(200)]
    index = ListIndex.from_snapshot(name, 0, snapshot(listed))
    results = index.match(listed[:300] + absent)
    assert results[:300] == [[Match(h, 0)] for h in listed[:300]]
    assert results[300:] == [[] for _ in absent]


def test_exact_lookup_tells_apart_hashes_sharing_their_first_eight_bytes() -> None:
    prefix = bytes(8)
    listed = [prefix + bytes([0] * 7 + [i]) for i in range(0, 200, 2)]
    index = ListIndex.from_snapshot("md5", 0, snapshot(listed))
    queries = [prefix + bytes([0] * 7 + [i]) for i in range(200)]
    assert index.match(queries) == [[Match(q, 0)] if q in listed else [] for q in queries]
    assert all(h in index for h in listed)
    assert prefix + bytes([0] * 7 + [1]) not in index


def test_exact_list_needs_max_distance_zero() -> None:
    with pytest.raises(ValueError, match="max_distance 0"):
        ListIndex.from_snapshot("sha256", 1, b"")


# -- perceptual distances ----------------------------------------------------------------


def test_phash_distance_is_the_number_of_differing_bits() -> None:
    listed = bytes.fromhex("aca29c1c33dc23d7")
    index = ListIndex.from_snapshot("phash", 8, listed)
    for bits in range(12):
        query = flip_bits(listed, list(range(0, 64, 5))[:bits])
        expected = [Match(listed, bits)] if bits <= 8 else []
        assert index.match([query]) == [expected], bits


def test_pdq_match_at_exactly_the_threshold_and_not_one_bit_beyond() -> None:
    rng = random.Random(7)
    listed = rng.randbytes(32)
    index = ListIndex.from_snapshot("pdq", 31, listed)
    at_limit = flip_bits(listed, rng.sample(range(256), 31))
    beyond = flip_bits(listed, rng.sample(range(256), 32))
    assert index.match([at_limit, beyond]) == [[Match(listed, 31)], []]


def test_matches_come_nearest_first() -> None:
    rng = random.Random(3)
    center = rng.randbytes(32)
    listed = [flip_bits(center, rng.sample(range(256), k)) for k in (20, 3, 11, 0, 7)]
    index = ListIndex.from_snapshot("pdq", 31, snapshot(listed))
    [matches] = index.match([center])
    assert [m.distance for m in matches] == [0, 3, 7, 11, 20]


def test_match_any_keeps_each_listed_hash_once_at_its_least_distance() -> None:
    rng = random.Random(5)
    listed = rng.randbytes(32)
    index = ListIndex.from_snapshot("pdq", 31, listed)
    queries = [flip_bits(listed, rng.sample(range(256), k)) for k in (9, 2, 40, 5)]
    assert index.match_any(queries) == [Match(listed, 2)]


# -- shape of the API ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pdq", "phash", "md5", "sha256"])
def test_empty_index_matches_nothing(name: str) -> None:
    width = {"pdq": 32, "phash": 8, "md5": 16, "sha256": 32}[name]
    limit = {"pdq": 31, "phash": 8}.get(name, 0)
    index = ListIndex.empty(name, limit)
    assert len(index) == 0
    assert index.match([bytes(width), b"\xff" * width]) == [[], []]
    assert index.match([]) == []
    assert index.to_bytes() == b""


@pytest.mark.parametrize("query", [b"", bytes(31), bytes(33), bytes(8)])
def test_query_of_the_wrong_width_is_rejected(query: bytes) -> None:
    index = bridge_list()
    with pytest.raises(HashWidthError):
        index.match([pdq_of(BRIDGE), query])


def test_word_array_of_the_wrong_shape_is_rejected() -> None:
    with pytest.raises(HashWidthError):
        bridge_list().match_words(words_from_bytes([bytes(8)], 8))


def test_snapshot_out_of_order_is_refused() -> None:
    a, b = bytes(31) + b"\x01", bytes(31) + b"\x02"
    with pytest.raises(MalformedError):
        ListIndex.from_snapshot("pdq", 31, b + a)
    with pytest.raises(MalformedError):
        ListIndex.from_snapshot("pdq", 31, a + a)
    with pytest.raises(MalformedError):
        ListIndex.from_snapshot("pdq", 31, a + b"\x00")


def test_memory_is_32_bytes_per_pdq_hash() -> None:
    rng = random.Random(1)
    index = ListIndex.from_snapshot("pdq", 31, snapshot([rng.randbytes(32) for _ in range(5000)]))
    assert len(index) == 5000
    assert index.memory_bytes() == 32 * 5000


@pytest.mark.parametrize(
    ("name", "limit", "indexed"),
    [
        ("pdq", 31, True),  # 16 slots, radius 1: exact
        ("pdq", 15, True),  # radius 0
        ("pdq", 32, False),  # radius 2: a full scan is as fast
        ("phash", 7, True),  # 4 slots, radius 1
        ("phash", 8, False),
        ("md5", 0, False),  # exact types are looked up, never scanned
        ("sha256", 0, False),
    ],
)
def test_multi_index_only_where_it_is_exact_and_worth_it(
    name: str, limit: int, indexed: bool
) -> None:
    rng = random.Random(4)
    width = WIDTHS.get(name, 32)
    data = snapshot([rng.randbytes(width) for _ in range(100)])
    assert ListIndex.from_snapshot(name, limit, data, multi_index_min=1).multi_indexed is indexed
    assert not ListIndex.from_snapshot(name, limit, data, multi_index_min=101).multi_indexed


def test_multi_index_memory_is_96_bytes_per_pdq_hash_plus_bucket_bounds() -> None:
    rng = random.Random(1)
    index = ListIndex.from_snapshot(
        "pdq", 31, snapshot([rng.randbytes(32) for _ in range(5000)]), multi_index_min=1
    )
    bounds = 16 * (2**16 + 1) * 8
    assert index.memory_bytes() == (32 + 16 * 4) * 5000 + bounds


def test_multi_index_finds_a_hash_differing_in_every_slot() -> None:
    """31 bits spread so that 15 slots differ by 2 and one by 1: only one probe hits."""
    rng = random.Random(5)
    listed = rng.randbytes(32)
    bits = [s * 16 + b for s in range(15) for b in (0, 7)] + [15 * 16 + 3]
    query = flip_bits(listed, bits)
    others = [rng.randbytes(32) for _ in range(2000)]
    index = ListIndex.from_snapshot("pdq", 31, snapshot([listed, *others]), multi_index_min=1)
    assert index.match([query]) == [[Match(listed, 31)]]
    one_more = flip_bits(query, [15 * 16 + 9])  # that slot now differs by 2 as well
    assert index.match([one_more]) == [[]]


def test_snapshot_round_trips_through_the_index() -> None:
    rng = random.Random(2)
    data = snapshot([rng.randbytes(32) for _ in range(3000)])
    assert ListIndex.from_snapshot("pdq", 31, data).to_bytes() == data


# -- incremental updates -----------------------------------------------------------------


def test_removal_of_an_absent_hash_is_refused_and_changes_nothing() -> None:
    rng = random.Random(4)
    listed = [rng.randbytes(32) for _ in range(50)]
    index = ListIndex.from_snapshot("pdq", 31, snapshot(listed))
    before = index.to_bytes()
    with pytest.raises(StateMismatchError):
        index.apply([listed[0], rng.randbytes(32)], [rng.randbytes(32)])
    assert index.to_bytes() == before
    assert index.match([listed[0]]) == [[Match(listed[0], 0)]]


def test_addition_of_a_listed_hash_is_refused_and_changes_nothing() -> None:
    rng = random.Random(4)
    listed = [rng.randbytes(32) for _ in range(50)]
    index = ListIndex.from_snapshot("pdq", 31, snapshot(listed))
    before = index.to_bytes()
    fresh = rng.randbytes(32)
    with pytest.raises(StateMismatchError):
        index.apply([listed[1]], [fresh, listed[2]])
    assert index.to_bytes() == before
    assert fresh not in index
    assert listed[1] in index


def test_hash_listed_twice_in_one_update_is_refused() -> None:
    index = ListIndex.empty("md5", 0)
    with pytest.raises(StateMismatchError):
        index.apply([], [bytes(16), bytes(16)])
    assert len(index) == 0


def test_update_with_a_hash_of_the_wrong_width_is_refused() -> None:
    index = ListIndex.empty("md5", 0)
    with pytest.raises(HashWidthError):
        index.apply([], [bytes(32)])
    assert len(index) == 0


def test_removed_hash_stops_matching_and_readded_hash_matches_again() -> None:
    rng = random.Random(6)
    listed = [rng.randbytes(32) for _ in range(100)]
    index = ListIndex.from_snapshot("pdq", 31, snapshot(listed))
    near = flip_bits(listed[5], [1, 2, 3])
    index.apply([listed[5]], [])
    assert index.match([near]) == [[]]
    assert listed[5] not in index
    index.apply([], [listed[5]])
    assert index.match([near]) == [[Match(listed[5], 3)]]


def test_many_changes_compact_into_one_array_with_the_same_answers() -> None:
    rng = random.Random(8)
    listed = [rng.randbytes(32) for _ in range(4000)]
    index = ListIndex.from_snapshot("pdq", 31, snapshot(listed), compact_min=100)
    state = ListState.from_hashes(32, listed)
    adds = sorted({rng.randbytes(32) for _ in range(700)})
    removes = sorted(rng.sample(listed, 300))
    index.apply(removes, adds)
    state = state.apply(removes, adds)
    assert index.memory_bytes() == 32 * len(state)  # compacted: no mask, no extra segment
    assert index.to_bytes() == state.to_bytes()
    assert index.match(adds[:5] + removes[:5]) == [[Match(h, 0)] for h in adds[:5]] + [[]] * 5


# Hashes drawn near a few centers, so that queries (the centers) match many of them.
CENTERS = [random.Random(i).randbytes(32) for i in range(4)]
WIDTHS = {"pdq": 32, "phash": 8, "md5": 16}
LIMITS = {"pdq": [31, 40], "phash": [7, 10], "md5": [0]}
"""Thresholds per type: the first is exact with a multi-index, the second is not."""


def near_center(name: str) -> st.SearchStrategy[bytes]:
    width = WIDTHS[name]
    return st.builds(
        lambda c, bits: flip_bits(CENTERS[c][:width], bits),
        st.integers(0, len(CENTERS) - 1),
        st.lists(st.integers(0, width * 8 - 1), max_size=24),
    )


@st.composite
def histories(
    draw: st.DrawFn, name: str
) -> tuple[list[bytes], list[tuple[list[bytes], list[bytes]]]]:
    """A starting list and a few valid deltas (removals present, additions absent)."""
    pool = near_center(name)
    base = sorted(set(draw(st.lists(pool, max_size=40))))
    current = set(base)
    deltas = []
    for _ in range(draw(st.integers(1, 6))):
        removes = sorted(draw(st.sets(st.sampled_from(sorted(current)))) if current else set())
        adds = sorted(set(draw(st.lists(pool, max_size=25))) - current)
        current = (current - set(removes)) | set(adds)
        deltas.append((removes, adds))
    return base, deltas


@pytest.mark.parametrize("name", ["pdq", "phash", "md5"])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_incremental_updates_answer_exactly_as_a_rebuild(name: str, data: st.DataObject) -> None:
    base, deltas = data.draw(histories(name))
    limit = data.draw(st.sampled_from(LIMITS[name]))
    width = WIDTHS[name]
    compact_min = data.draw(st.sampled_from([1, 5, 4096]))
    index = ListIndex.from_snapshot(
        name,
        limit,
        b"".join(base),
        block_rows=data.draw(st.sampled_from([3, 64])),
        compact_min=compact_min,
        multi_index_min=data.draw(st.sampled_from([1, 8, MULTI_INDEX_MIN])),
    )
    state = ListState(width, b"".join(base))
    queries = [c[:width] for c in CENTERS] + [flip_bits(CENTERS[0][:width], [0, 9])]
    for removes, adds in deltas:
        index.apply(removes, adds)
        state = state.apply(removes, adds)
        rebuilt = ListIndex.from_snapshot(
            name, limit, state.to_bytes(), multi_index_min=MULTI_INDEX_MIN
        )
        assert index.to_bytes() == state.to_bytes()
        assert len(index) == len(state)
        assert index.match(queries) == rebuilt.match(queries)
        assert index.match(adds + removes) == rebuilt.match(adds + removes)


def test_words_are_big_endian_uint64() -> None:
    words = words_from_bytes([bytes(range(16))], 16)
    assert words.dtype == np.uint64
    assert words.shape == (2, 1)
    assert int(words[0, 0]) == int.from_bytes(bytes(range(8)), "big")
    assert int(words[1, 0]) == int.from_bytes(bytes(range(8, 16)), "big")


# -- background rebuilds -------------------------------------------------------------------


def test_background_rebuild_folds_changes_in_and_replays_those_made_meanwhile() -> None:
    rng = random.Random(6)
    base = sorted(rng.randbytes(32) for _ in range(3000))
    index = ListIndex.from_snapshot(
        "pdq", 31, b"".join(base), multi_index_min=1, compact_min=10, background=True
    )
    state = ListState(32, b"".join(base))
    applied = 0
    for step in range(6):
        adds = [rng.randbytes(32) for _ in range(200)]
        removes = base[100 + step * 10 : 110 + step * 10]
        index.apply(removes, adds)  # the first starts a rebuild; the rest are replayed
        applied += len(adds) + len(removes)
        state = state.apply(removes, sorted(adds))
        # Visible at once, whether or not a rebuild is running.
        assert index.match(adds[:3] + removes[:3]) == [[Match(a, 0)] for a in adds[:3]] + [[]] * 3
    assert index.wait_for_rebuild(timeout=60)
    assert index.multi_indexed
    assert index.pending < applied  # at least one rebuild folded changes into the main array
    assert index.to_bytes() == state.to_bytes()
    rebuilt = ListIndex.from_snapshot("pdq", 31, state.to_bytes())
    queries = [flip_bits(h, [1, 40, 200]) for h in base[:200:7]] + CENTERS
    assert index.match(queries) == rebuilt.match(queries)


def test_queries_keep_answering_while_deltas_apply_and_rebuilds_run() -> None:
    import threading

    rng = random.Random(7)
    stable = sorted(rng.randbytes(32) for _ in range(2000))
    index = ListIndex.from_snapshot(
        "pdq", 31, b"".join(stable), multi_index_min=1, compact_min=50, background=True
    )
    probes = [flip_bits(h, [3, 100]) for h in stable[::50]]
    expected = [[Match(h, 2)] for h in stable[::50]]
    wrong: list[object] = []
    done = threading.Event()

    def query_loop() -> None:
        while not done.is_set():
            got = index.match(probes)
            if got != expected:
                wrong.append(got)

    worker = threading.Thread(target=query_loop)
    worker.start()
    try:
        churn: list[bytes] = []
        for _ in range(30):
            adds = [rng.randbytes(32) for _ in range(100)]
            index.apply(churn[:50], adds)
            churn = churn[50:] + adds
    finally:
        done.set()
        worker.join(timeout=60)
    assert index.wait_for_rebuild(timeout=60)
    assert not wrong
    assert len(index) == 2000 + len(churn)
