"""Exact multi-index hashing: the perceptual matcher's index for large lists.

A hash is cut into ``m`` slots; a hash within ``d`` bits of a query agrees with it
to within ``d // m`` bits in at least one slot (pigeonhole), so probing the buckets
that near in every slot finds every match: the answer is exact, not approximate
(Norouzi, Punjani and Fleet, 2012). It lives apart from the list's bookkeeping
because it indexes one immutable main array and is rebuilt, never edited, when that
array changes.

Queries run through the compiled kernel (``node.multiindex_kernel``) when it is
built, else through the numpy path here, which is the reference: both give the same
answer (tests check it), the kernel several times faster. ``engine()`` says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from node import multiindex_kernel
from node.packed import WORD_BYTES, Words, row_popcount
from protocol.lists import HashType

__all__ = [
    "ENGINES",
    "PROBE_BATCH",
    "SLOT_BITS",
    "WIDE_MIN",
    "WIDE_SLOT_BITS",
    "MultiIndex",
    "engine",
    "multi_radius",
    "probe",
    "select_engine",
]

SLOT_BITS = 16
"""Width of one multi-index slot: 2**16 buckets, about 15 hashes each at 1M."""
WIDE_SLOT_BITS = (22, 21, 21)
"""The slots of each 64-bit word in the wide layout, for large 256-bit lists.

Twelve slots: a hash within 31 bits agrees with the query to within 2 bits in one
of them (12 × 3 > 31), so radius 2 is exact. At 10M hashes a bucket holds 2 to 5
hashes instead of 150, and a query checks about 11,000 candidates instead of
42,000, for 128 MB of bucket bounds and 16 bytes per hash less of row numbers."""
WIDE_MIN = 3_000_000
"""Fewest hashes from which a 256-bit list gets the wide layout.

Measured with the kernel on uniform lists: the 16-bit slots answer twice as fast at
1M (most of the wide layout's 2,900 probes find an empty bucket), the two are even
at 2M, and the wide slots are 1.5 times as fast at 3M and twice at 4M. Below it the
16-bit slots' bounds (8 MB, not 128 MB) also keep the index small."""
PROBE_BATCH = 16
"""Queries probed together by the numpy path: their candidate pairs stay in cache."""
ENGINES = ("kernel", "numpy")
"""How queries are answered: the compiled kernel, or the numpy reference."""

_selected: str | None = None  # None: the kernel when it is built


def engine() -> str:
    """The engine ``probe`` uses unless told otherwise: ``kernel`` when it is built."""
    if _selected is not None:
        return _selected
    return "kernel" if multiindex_kernel.KERNEL is not None else "numpy"


def select_engine(name: str | None) -> None:
    """Make ``probe`` use ``name`` (one of ``ENGINES``) in this process; None: the default.

    Raises:
        ValueError: an unknown engine, or the kernel when it is not built.
    """
    global _selected
    if name is not None and name not in ENGINES:
        raise ValueError(f"unknown multi-index engine {name!r}: one of {', '.join(ENGINES)}")
    if name == "kernel" and multiindex_kernel.KERNEL is None:
        raise ValueError("the multi-index kernel is not built (reinstall with a C compiler)")
    _selected = name


def probe_masks(radius: int, bits: int = SLOT_BITS) -> NDArray[np.uint32]:
    """Every ``bits``-bit mask with at most ``radius`` bits set (0 first)."""
    if radius > 2:
        raise ValueError(f"probe radius {radius} is more than 2")
    masks = [0]
    if radius >= 1:
        masks += [1 << b for b in range(bits)]
    if radius >= 2:
        masks += [(1 << a) | (1 << b) for a in range(bits) for b in range(a)]
    return np.array(masks, dtype=np.uint32)


def slot_values(words: Words) -> NDArray[np.uint16]:
    """The 16-bit slots of each hash, shape ``(slots, count)``: word 0's top 16 bits first.

    The 16-bit layout only; ``MultiIndex.slot_values`` cuts any layout."""
    per_word = WORD_BYTES * 8 // SLOT_BITS
    out = np.empty((words.shape[0] * per_word, words.shape[1]), dtype=np.uint16)
    for w in range(words.shape[0]):
        for j in range(per_word):
            shift = np.uint64(WORD_BYTES * 8 - SLOT_BITS * (j + 1))
            out[w * per_word + j] = (words[w] >> shift) & np.uint64(0xFFFF)
    return out


def _layout(n_words: int, per_word: Sequence[int]) -> list[tuple[int, int, int]]:
    """``(word, shift, width)`` of every slot: each word cut from its top bits down."""
    if sum(per_word) != WORD_BYTES * 8 or not all(1 <= b <= 24 for b in per_word):
        raise ValueError(f"slot widths {tuple(per_word)} do not cut a 64-bit word")
    slots = []
    for w in range(n_words):
        shift = WORD_BYTES * 8
        for bits in per_word:
            shift -= bits
            slots.append((w, shift, bits))
    return slots


def _radius_for(slots: int, reach: int) -> int:
    """The least per-slot radius with which ``slots`` slots find everything within ``reach``."""
    return (reach + slots) // slots - 1


def default_slot_bits(count: int, n_words: int, radius: int) -> tuple[int, ...]:
    """The layout ``MultiIndex.build`` picks: wide slots for large 256-bit lists."""
    narrow = (SLOT_BITS,) * (WORD_BYTES * 8 // SLOT_BITS)
    slots = n_words * len(WIDE_SLOT_BITS)
    reach = n_words * len(narrow) * (radius + 1) - 1
    if n_words == 4 and count >= WIDE_MIN and _radius_for(slots, reach) <= 2:
        return WIDE_SLOT_BITS
    return narrow


@dataclass(frozen=True)
class MultiIndex:
    """Multi-index hashing (Norouzi, Punjani and Fleet, 2012) over one main array.

    A hash is cut into ``m`` slots. If two hashes are within ``d`` bits, at least one
    slot differs by at most ``d // m`` bits (were every slot ``d // m + 1`` apart or
    more, the total would exceed ``d``). So probing, in each slot, every bucket within
    ``radius = d // m`` bits of the query's slot value finds every hash within ``d``:
    the index is exact, not approximate. Two layouts:

    - 16-bit slots (16 for PDQ, 4 for pHash): for PDQ at ``d`` = 31 the radius is 1,
      17 buckets per slot, about 4,200 candidates per query at 1M uniform hashes;
    - for 256-bit lists of ``WIDE_MIN`` hashes or more, 12 slots of 21 or 22 bits
      (``WIDE_SLOT_BITS``) probed within 2 bits: 232 or 254 buckets per slot but few
      hashes in each, about 11,000 candidates at 10M instead of 42,000.

    Per slot the row numbers of the main array are stored sorted by slot value
    (``order``, ``uint32``) with bucket boundaries (``bounds``, one flat array: slot
    ``s``'s ``2**width + 1`` entries start at ``bounds_at[s]``, each the position of a
    bucket's first row number in ``order``, then the end). Memory: 4 bytes per slot per
    hash (64 bytes per PDQ hash with 16-bit slots, 48 with wide ones) plus the bounds:
    8 bytes per bucket with 16-bit slots (512 KiB per slot), 4 with wide ones (128 MB).
    """

    order: NDArray[np.uint32]  # (slots * count,): slot s occupies [s*count, (s+1)*count)
    bounds: NDArray[np.int64] | NDArray[np.uint32]
    radius: int  # per slot, in this layout
    masks: NDArray[np.uint32]  # every mask probed, slot s's at [mask_at[s], mask_at[s+1])
    mask_at: NDArray[np.int64]
    bounds_at: NDArray[np.int64]
    slot_word: NDArray[np.int32]
    slot_shift: NDArray[np.int32]
    slot_width: NDArray[np.int32]

    @classmethod
    def build(
        cls, rows: Words, radius: int, *, slot_bits: Sequence[int] | None = None
    ) -> MultiIndex:
        """Index ``rows`` (shape ``(count, words)``, C-contiguous, native ``uint64``).

        Args:
            rows: the main array, row by row.
            radius: the probe radius 16-bit slots need (``multi_radius``). The index
                finds everything within ``max_distance`` = 16-bit slots × (radius + 1)
                − 1 bits, whatever its layout; a layout of wider slots probes the
                radius that covers as much.
            slot_bits: the slot widths of each 64-bit word, from its top bits
                (default: ``default_slot_bits``).
        """
        n, n_words = rows.shape
        per_word = tuple(slot_bits or default_slot_bits(n, n_words, radius))
        slots = _layout(n_words, per_word)
        reach = n_words * (WORD_BYTES * 8 // SLOT_BITS) * (radius + 1) - 1
        radius = _radius_for(len(slots), reach)
        buckets = np.array([(1 << width) + 1 for _, _, width in slots], dtype=np.int64)
        bounds_at = np.concatenate([[0], np.cumsum(buckets)[:-1]]).astype(np.int64)
        # Positions in ``order`` fit in 32 bits at 10M hashes; 16-bit slots keep 64
        # (their bounds are small either way).
        narrow = all(width == SLOT_BITS for _, _, width in slots)
        big = narrow or len(slots) * n >= 1 << 32
        bounds: NDArray[np.int64] | NDArray[np.uint32] = (
            np.empty(int(buckets.sum()), dtype=np.int64)
            if big
            else np.empty(int(buckets.sum()), dtype=np.uint32)
        )
        order = np.empty(len(slots) * n, dtype=np.uint32)
        rows = np.ascontiguousarray(rows)
        kernel = multiindex_kernel.KERNEL if engine() == "kernel" else None
        for s, slot in enumerate(slots):
            part = order[s * n : (s + 1) * n]
            edges = bounds[bounds_at[s] : bounds_at[s] + buckets[s]]
            if kernel is not None:
                kernel.build_slot(rows, slot, part, edges, s * n)
            else:
                _sort_slot(rows, slot, part, edges, s * n)
        masks = [probe_masks(radius, width) for _, _, width in slots]
        mask_at = np.concatenate([[0], np.cumsum([m.size for m in masks])]).astype(np.int64)
        return cls(
            order,
            bounds,
            radius,
            np.concatenate(masks),
            mask_at,
            bounds_at,
            np.array([w for w, _, _ in slots], dtype=np.int32),
            np.array([shift for _, shift, _ in slots], dtype=np.int32),
            np.array([width for _, _, width in slots], dtype=np.int32),
        )

    @property
    def nbytes(self) -> int:
        return int(self.order.nbytes + self.bounds.nbytes)

    @property
    def slots(self) -> int:
        return int(self.slot_width.size)

    @property
    def max_distance(self) -> int:
        """The largest distance the index is exact for: slots × (radius + 1) − 1."""
        return self.slots * (self.radius + 1) - 1

    def slot_values(self, words: Words) -> NDArray[np.uint32]:
        """The slots of each hash in this layout, shape ``(slots, count)``."""
        out = np.empty((self.slots, words.shape[1]), dtype=np.uint32)
        for s in range(self.slots):
            shift, mask = np.uint64(self.slot_shift[s]), np.uint64((1 << self.slot_width[s]) - 1)
            out[s] = (words[self.slot_word[s]] >> shift) & mask
        return out

    def candidates(self, queries: Words) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """``(query, row)`` pairs to check: a superset of every pair within the radius.

        A row can appear several times for one query (once per slot it is near in).
        """
        q_slots = self.slot_values(queries)  # (slots, q)
        nq = q_slots.shape[1]
        probe_slot = np.repeat(np.arange(self.slots), np.diff(self.mask_at))
        at = self.bounds_at[probe_slot][:, None] + (
            q_slots[probe_slot] ^ self.masks[:, None]
        ).astype(np.int64)  # (probes, q): each probed bucket's place in ``bounds``
        starts = self.bounds[at].astype(np.int64).ravel()
        lengths = self.bounds[at + 1].astype(np.int64).ravel() - starts
        query_of = np.broadcast_to(np.arange(nq)[None, :], at.shape).ravel()
        total = int(lengths.sum())
        if total == 0:
            empty = np.empty(0, dtype=np.intp)
            return empty, empty
        # The concatenation of the ranges [start, start + length): one arange, shifted
        # at each range's beginning by the gap to its start.
        ends = np.cumsum(lengths)
        shift = np.repeat(starts - (ends - lengths), lengths)
        positions = np.arange(total, dtype=np.int64) + shift
        rows = self.order[positions].astype(np.intp)
        return np.repeat(query_of, lengths), rows


def _sort_slot(
    rows: Words,
    slot: tuple[int, int, int],
    order: NDArray[np.uint32],
    bounds: NDArray[np.int64] | NDArray[np.uint32],
    base: int,
) -> None:
    """numpy's version of the kernel's counting sort of one slot (same arrays out).

    A 16-bit slot is read in place through a ``uint16`` view of the rows (no copy of
    all slots at once: one slot's keys are in memory at a time).
    """
    word, shift, width = slot
    if width == SLOT_BITS and shift % SLOT_BITS == 0:
        per_word = WORD_BYTES * 8 // SLOT_BITS
        halves = rows.view(np.uint16)  # (count, words * per_word)
        # Slot j of word w, from the top, is its (per_word - 1 - j)-th uint16 in memory
        # on a little-endian machine.
        j = per_word - 1 - shift // SLOT_BITS
        values: NDArray[np.unsignedinteger] = halves[
            :, word * per_word + (per_word - 1 - j if np.little_endian else j)
        ]
    else:
        column = rows[:, word] >> np.uint64(shift)
        column &= np.uint64((1 << width) - 1)
        values = column.astype(np.uint32)
        del column
    # A stable sort of 16-bit keys is a radix sort in numpy: linear time.
    order[:] = np.argsort(values, kind="stable")
    bounds[0] = base
    np.cumsum(np.bincount(values, minlength=1 << width), out=bounds[1:])
    bounds[1:] += base


def multi_radius(kind: HashType, max_distance: int) -> int | None:
    """The per-slot probe radius that keeps a multi-index exact, or None for a full scan.

    With ``m`` 16-bit slots the radius is ``max_distance // m``. Radius 0 or 1 keeps the
    probes few (1 or 17 buckets per slot); at 2 (137 per slot, PDQ beyond 47 bits) the
    candidates approach a large share of the list and a full scan is as fast.
    """
    if not kind.perceptual or max_distance == 0 or (kind.length * 8) % SLOT_BITS:
        return None
    radius = max_distance // (kind.length * 8 // SLOT_BITS)
    return radius if radius <= 1 else None


def probe(
    multi: MultiIndex,
    main: Words,
    alive: NDArray[np.bool_] | None,
    queries: Words,
    limit: int,
    found: list[list[tuple[int, bytes]]],
    *,
    use: str | None = None,
) -> None:
    """Append ``(distance, hash)`` for every live hash of ``main`` within ``limit``.

    ``main`` is the row-major array ``multi`` indexes (seen as ``(words, count)``):
    each candidate is checked by gathering its whole row, one cache line. Each query's
    hashes are appended in the order of their rows. ``use``: an engine of ``ENGINES``
    (default ``engine()``).

    Raises:
        ValueError: ``limit`` is beyond what ``multi`` is exact for.
    """
    if limit > multi.max_distance:
        raise ValueError(f"limit {limit} is beyond the index's {multi.max_distance} bits")
    rows_major = main.T  # (count, words): one cache line per candidate hash
    kernel = multiindex_kernel.KERNEL
    # The kernel reads the rows in place; a main array stored column by column (never
    # so when the index was built for it) stays with numpy rather than be copied.
    if (use or engine()) == "kernel" and kernel is not None and rows_major.flags.c_contiguous:
        queries_major = np.ascontiguousarray(queries.T, dtype=np.uint64)
        live = None if alive is None else np.ascontiguousarray(alive, dtype=np.bool_)
        qk, rk, dk = kernel.probe(rows_major, live, queries_major, multi, limit)
        if qk.size:
            by_row = np.lexsort((rk, qk))
            _report(rows_major, qk[by_row], rk[by_row], dk[by_row], 0, found)
        return
    n = rows_major.shape[0]
    queries_major = np.ascontiguousarray(queries.T)
    for q0 in range(0, queries.shape[1], PROBE_BATCH):
        chunk = queries[:, q0 : q0 + PROBE_BATCH]
        qi, at = multi.candidates(chunk)
        if at.size == 0:
            continue
        diff = np.take(rows_major, at, axis=0)
        diff ^= np.take(queries_major[q0 : q0 + PROBE_BATCH], qi, axis=0)
        dist = row_popcount(diff)
        keep = dist <= limit
        if alive is not None:
            keep &= alive[at]
        if not keep.any():
            continue
        # A near hash is found through several slots: report each pair once.
        pairs, first = np.unique(qi[keep] * n + at[keep], return_index=True)
        qk, rk = np.divmod(pairs, n)
        _report(rows_major, qk, rk, dist[keep][first], q0, found)


def _report(
    rows_major: Words,
    qk: NDArray[np.integer],
    rk: NDArray[np.integer],
    dk: NDArray[np.integer],
    q0: int,
    found: list[list[tuple[int, bytes]]],
) -> None:
    """Append each hit ``(query q0 + qk, row rk, distance dk)`` to ``found``."""
    hashes = rows_major[rk].astype(">u8")
    for i, a, d in zip(qk.tolist(), range(len(hashes)), dk.tolist(), strict=True):
        found[q0 + i].append((d, hashes[a].tobytes()))
