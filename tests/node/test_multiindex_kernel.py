"""The multi-index's compiled kernel against its numpy reference and a full scan.

Both engines must give the same answer, and that answer must be every live hash
within the limit (a full scan's), on uniform and clustered lists, in both layouts
(16-bit slots, and the wide 22/21/21-bit slots of large PDQ lists), at radius 0, 1
and 2, with tombstones, for empty lists, a list of one, and hashes whose differing
bits sit on the slots' edges, where a wrong shift or mask would lose them.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from bench.matcher_bench import clustered_words
from node import multiindex, multiindex_kernel
from node.matcher import ListIndex, Match
from node.multiindex import WIDE_SLOT_BITS, MultiIndex, engine, probe, select_engine
from node.packed import Words

NARROW = (16, 16, 16, 16)
LAYOUTS = {"16-bit slots": NARROW, "wide slots": WIDE_SLOT_BITS}
COMPILER = shutil.which("cc") or shutil.which("gcc")

needs_kernel = pytest.mark.skipif(
    multiindex_kernel.KERNEL is None, reason="the multi-index kernel is not built here"
)

Found = list[list[tuple[int, bytes]]]


@pytest.fixture(autouse=True)
def default_engine() -> Iterator[None]:
    """Each test starts, and leaves the process, with the default engine."""
    select_engine(None)
    yield
    select_engine(None)


def rows_of(words: Words) -> NDArray[np.uint64]:
    """``(words, n)`` → the row-major ``(n, words)`` array the index is built over."""
    return np.ascontiguousarray(words.T)


def uniform(n: int, seed: int, n_words: int = 4) -> NDArray[np.uint64]:
    return np.random.default_rng(seed).integers(0, 2**64, size=(n, n_words), dtype=np.uint64)


def clustered(n: int, seed: int) -> NDArray[np.uint64]:
    return rows_of(clustered_words(n, np.random.default_rng(seed)))


def flipped(row: NDArray[np.uint64], bits: list[int]) -> NDArray[np.uint64]:
    """``row`` with ``bits`` flipped; bit 0 is word 0's most significant."""
    out = row.copy()
    for bit in bits:
        out[bit // 64] ^= np.uint64(1 << (63 - bit % 64))
    return out


def slot_start(multi: MultiIndex, s: int) -> int:
    """The position of slot ``s``'s first (most significant) bit in the hash."""
    word, shift, width = (
        int(multi.slot_word[s]),
        int(multi.slot_shift[s]),
        int(multi.slot_width[s]),
    )
    return word * 64 + 64 - shift - width


def near_queries(rows: NDArray[np.uint64], count: int, max_flips: int, seed: int) -> Words:
    """Half listed hashes with up to ``max_flips`` bits flipped, half random: ``(words, q)``."""
    rng = np.random.default_rng(seed)
    width = rows.shape[1] * 64
    out: list[NDArray[np.uint64]] = []
    for i in range(count):
        if i % 2 or rows.shape[0] == 0:
            out.append(rng.integers(0, 2**64, size=(rows.shape[1],), dtype=np.uint64))
            continue
        base = rows[int(rng.integers(0, rows.shape[0]))]
        flips = int(rng.integers(0, max_flips + 1))
        out.append(flipped(base, [int(b) for b in rng.choice(width, flips, replace=False)]))
    return np.ascontiguousarray(np.array(out, dtype=np.uint64).reshape(count, -1).T)


def answer(
    multi: MultiIndex,
    rows: NDArray[np.uint64],
    alive: NDArray[np.bool_] | None,
    queries: Words,
    limit: int,
    use: str,
) -> Found:
    found: Found = [[] for _ in range(queries.shape[1])]
    probe(multi, rows.T, alive, queries, limit, found, use=use)
    return found


def full_scan(
    rows: NDArray[np.uint64], alive: NDArray[np.bool_] | None, queries: Words, limit: int
) -> Found:
    """Every live row within ``limit`` of each query, in row order: the truth."""
    found: Found = []
    for q in queries.T:
        dist = np.bitwise_count(rows ^ q).sum(axis=1) if rows.shape[0] else np.zeros(0, int)
        keep = dist <= limit
        if alive is not None:
            keep &= alive
        found.append(
            [(int(dist[i]), rows[i].astype(">u8").tobytes()) for i in np.flatnonzero(keep)]
        )
    return found


def check_engines(
    multi: MultiIndex,
    rows: NDArray[np.uint64],
    alive: NDArray[np.bool_] | None,
    queries: Words,
    limit: int,
) -> Found:
    """Assert numpy == full scan (and kernel == numpy where built); returns the answer."""
    truth = full_scan(rows, alive, queries, limit)
    assert answer(multi, rows, alive, queries, limit, "numpy") == truth
    if multiindex_kernel.KERNEL is not None:
        assert answer(multi, rows, alive, queries, limit, "kernel") == truth
    return truth


# -- the build -----------------------------------------------------------------------


@needs_kernel
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n", [0, 1, 2, 3000])
def test_kernel_sorts_the_buckets_as_numpy_does(layout: str, n: int) -> None:
    rows = clustered(n, 11) if n else uniform(0, 11)
    compiled = MultiIndex.build(rows, 1, slot_bits=LAYOUTS[layout])
    select_engine("numpy")
    reference = MultiIndex.build(rows, 1, slot_bits=LAYOUTS[layout])
    assert compiled.order.dtype == reference.order.dtype == np.uint32
    assert np.array_equal(compiled.order, reference.order)
    assert compiled.bounds.dtype == reference.bounds.dtype
    assert np.array_equal(compiled.bounds, reference.bounds)


def test_layouts_cut_every_bit_once_and_stay_exact() -> None:
    rows = uniform(10, 1)
    for bits, slots, radius in ((NARROW, 16, 1), (WIDE_SLOT_BITS, 12, 2)):
        multi = MultiIndex.build(rows, 1, slot_bits=bits)
        assert (multi.slots, multi.radius) == (slots, radius)
        assert multi.max_distance >= 31
        covered = np.zeros(256, dtype=int)
        for s in range(multi.slots):
            start = slot_start(multi, s)
            covered[start : start + int(multi.slot_width[s])] += 1
        assert (covered == 1).all()
    # Radius 0 for 16-bit slots (distances up to 15): the wide layout probes radius 1.
    assert MultiIndex.build(rows, 0, slot_bits=WIDE_SLOT_BITS).radius == 1
    # Wide bounds are 32-bit and relative to the whole order array.
    wide = MultiIndex.build(rows, 1, slot_bits=WIDE_SLOT_BITS)
    assert wide.bounds.dtype == np.uint32
    assert wide.bounds.size == 4 * (2**22 + 1) + 8 * (2**21 + 1)
    assert int(wide.bounds[-1]) == wide.order.size


def test_the_wide_layout_is_for_large_pdq_lists_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multiindex, "WIDE_MIN", 50)
    assert MultiIndex.build(uniform(50, 2), 1).slots == 12
    assert MultiIndex.build(uniform(49, 2), 1).slots == 16
    assert MultiIndex.build(uniform(50, 2, n_words=1), 1).slots == 4  # pHash


# -- the answers -----------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["uniform", "clustered"])
@pytest.mark.parametrize(("radius", "limit"), [(0, 15), (0, 9), (1, 31), (1, 24)])
@pytest.mark.parametrize("tombstones", [False, True])
def test_engines_equal_a_full_scan(
    layout: str, kind: str, radius: int, limit: int, tombstones: bool
) -> None:
    rows = uniform(4000, 3) if kind == "uniform" else clustered(4000, 3)
    alive: NDArray[np.bool_] | None = None
    if tombstones:
        alive = np.asarray(np.random.default_rng(4).random(rows.shape[0]) > 0.3, dtype=np.bool_)
    multi = MultiIndex.build(rows, radius, slot_bits=LAYOUTS[layout])
    queries = near_queries(rows, 60, limit + 3, seed=5)
    truth = check_engines(multi, rows, alive, queries, limit)
    assert sum(map(len, truth)) >= 8  # the queries do find something


@pytest.mark.parametrize("layout", LAYOUTS)
def test_empty_list_and_list_of_one(layout: str) -> None:
    empty = uniform(0, 1)
    multi = MultiIndex.build(empty, 1, slot_bits=LAYOUTS[layout])
    queries = near_queries(uniform(3, 1), 6, 10, seed=1)
    assert check_engines(multi, empty, None, queries, 31) == [[]] * 6
    one = uniform(1, 2)
    multi = MultiIndex.build(one, 1, slot_bits=LAYOUTS[layout])
    queries = np.ascontiguousarray(
        np.stack([one[0], flipped(one[0], list(range(0, 256, 9))), uniform(1, 3)[0]]).T
    )
    found = check_engines(multi, one, None, queries, 31)
    assert [len(f) for f in found] == [1, 1, 0]
    assert found[1][0][0] == 29
    dead = np.zeros(1, dtype=bool)
    assert check_engines(multi, one, dead, queries, 31) == [[], [], []]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_differences_on_the_slot_edges_are_found_to_the_bit(layout: str) -> None:
    """Flipped bits at the first and last two bits of slots: found at the limit, not past it."""
    rows = uniform(3000, 6)
    multi = MultiIndex.build(rows, 1, slot_bits=LAYOUTS[layout])
    edges = sorted(
        {
            slot_start(multi, s) + offset
            for s in range(multi.slots)
            for offset in (0, 1, int(multi.slot_width[s]) - 2, int(multi.slot_width[s]) - 1)
        }
    )
    rng = np.random.default_rng(7)
    listed = rows[:40]
    at_limit = [flipped(r, [int(b) for b in rng.choice(edges, 31, replace=False)]) for r in listed]
    past = [flipped(r, [int(b) for b in rng.choice(edges, 32, replace=False)]) for r in listed]
    queries = np.ascontiguousarray(np.array(at_limit + past).T)
    found = check_engines(multi, rows, None, queries, 31)
    for i, r in enumerate(listed):
        assert (31, r.astype(">u8").tobytes()) in found[i]
        assert r.astype(">u8").tobytes() not in [h for _, h in found[40 + i]]


def test_worst_spread_at_the_limit_is_found() -> None:
    """31 bits spread so that every slot but one is past the radius (ADR 0012)."""
    rows = uniform(2000, 8)
    listed = rows[5]
    # Wide: 10 slots differ by 3 bits, one by 1, one not at all.
    wide = MultiIndex.build(rows, 1, slot_bits=WIDE_SLOT_BITS)
    bits: list[int] = []
    for s in range(11):
        start = slot_start(wide, s)
        bits += [start, start + 5, start + 9][: 3 if s < 10 else 1]
    query = np.ascontiguousarray(flipped(listed, bits)[:, None])
    found = check_engines(wide, rows, None, query, 31)
    assert found == [[(31, listed.astype(">u8").tobytes())]]


def test_one_word_hashes_as_phash() -> None:
    rows = np.unique(uniform(3000, 9, n_words=1)[:, 0])[:, None].copy()
    multi = MultiIndex.build(rows, 1)
    assert multi.slots == 4
    check_engines(multi, rows, None, near_queries(rows, 30, 9, seed=9), 7)


@needs_kernel
def test_kernel_returns_more_hits_than_its_first_buffer() -> None:
    """One query near 3,000 listed hashes: more than the 1,088 first allotted."""
    base = uniform(1, 10)[0]
    rng = np.random.default_rng(10)
    rows = np.array([flipped(base, [int(b) for b in rng.choice(256, 12)]) for _ in range(3000)])
    rows = np.unique(rows, axis=0)
    multi = MultiIndex.build(rows, 1)
    found = check_engines(multi, rows, None, np.ascontiguousarray(base[:, None]), 31)
    assert len(found[0]) == rows.shape[0]


def test_a_limit_beyond_the_index_is_refused() -> None:
    rows = uniform(100, 1)
    multi = MultiIndex.build(rows, 0)
    with pytest.raises(ValueError, match="beyond"):
        answer(multi, rows, None, near_queries(rows, 2, 3, seed=1), 16, "numpy")


# -- which engine runs ------------------------------------------------------------------


def test_the_kernel_is_built_wherever_there_is_a_compiler() -> None:
    if COMPILER is None:
        pytest.skip("no C compiler here: the numpy path is the one that runs")
    assert multiindex_kernel.KERNEL is not None, "reinstall: pip install -e ."
    assert engine() == "kernel"


def test_the_engine_can_be_chosen_and_a_missing_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    select_engine("numpy")
    assert engine() == "numpy"
    with pytest.raises(ValueError, match="unknown"):
        select_engine("gpu")
    assert engine() == "numpy"
    monkeypatch.setattr(multiindex_kernel, "KERNEL", None)
    select_engine(None)
    assert engine() == "numpy"
    with pytest.raises(ValueError, match="not built"):
        select_engine("kernel")


def test_a_missing_or_foreign_library_is_not_loaded(tmp_path: Path) -> None:
    assert multiindex_kernel.load(tmp_path / "absent.so") is None
    if COMPILER is None:
        pytest.skip("no C compiler to build a foreign library with")
    source = tmp_path / "other.c"
    source.write_text(f"int mi_abi(void) {{ return {multiindex_kernel.ABI + 1}; }}\n")
    library = tmp_path / "other.so"
    subprocess.run([COMPILER, "-shared", "-fPIC", "-o", library, source], check=True)
    assert int(ctypes.CDLL(str(library)).mi_abi()) == multiindex_kernel.ABI + 1
    assert multiindex_kernel.load(library) is None
    (tmp_path / "junk.so").write_bytes(b"not a library")
    assert multiindex_kernel.load(tmp_path / "junk.so") is None


def test_list_index_answers_alike_with_either_engine() -> None:
    rows = clustered(5000, 12)
    rows = np.unique(rows, axis=0)  # sorted ascending and distinct: a snapshot
    data = rows.astype(">u8").tobytes()
    index = ListIndex.from_snapshot("pdq", 31, data, multi_index_min=1)
    assert index.multi_indexed
    queries = [q.astype(">u8").tobytes() for q in near_queries(rows, 50, 31, seed=12).T]
    scanned = ListIndex.from_snapshot("pdq", 31, data, multi_index_min=10**9).match(queries)
    answers: dict[str, list[list[Match]]] = {}
    for name in ("numpy", "kernel") if multiindex_kernel.KERNEL is not None else ("numpy",):
        select_engine(name)
        answers[name] = index.match(queries)
        assert answers[name] == scanned
    assert sum(map(len, scanned)) >= 25
