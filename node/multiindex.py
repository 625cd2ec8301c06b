"""Exact multi-index hashing: the perceptual matcher's index for large lists.

A hash of ``16 × m`` bits is cut into ``m`` slots of 16 bits; a hash within ``d``
bits of a query agrees with it to within ``d // m`` bits in at least one slot
(pigeonhole), so probing the buckets that near in every slot finds every match:
the answer is exact, not approximate (Norouzi, Punjani and Fleet, 2012). It lives
apart from the list's bookkeeping because it indexes one immutable main array and
is rebuilt, never edited, when that array changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from node.packed import WORD_BYTES, Words, row_popcount
from protocol.lists import HashType

__all__ = ["PROBE_BATCH", "SLOT_BITS", "MultiIndex", "multi_radius", "probe"]

SLOT_BITS = 16
"""Width of one multi-index slot: 2**16 buckets, about 15 hashes each at 1M."""
PROBE_BATCH = 16
"""Queries probed together: their candidate pairs (about 4,000 each at 1M) stay in cache."""


def probe_masks(radius: int) -> NDArray[np.uint16]:
    """Every 16-bit mask with at most ``radius`` bits set (0 first)."""
    masks = [0]
    if radius >= 1:
        masks += [1 << b for b in range(SLOT_BITS)]
    if radius >= 2:
        masks += [(1 << a) | (1 << b) for a in range(SLOT_BITS) for b in range(a)]
    return np.array(masks, dtype=np.uint16)


def slot_values(words: Words) -> NDArray[np.uint16]:
    """The 16-bit slots of each hash, shape ``(slots, count)``: word 0's top 16 bits first."""
    per_word = WORD_BYTES * 8 // SLOT_BITS
    out = np.empty((words.shape[0] * per_word, words.shape[1]), dtype=np.uint16)
    for w in range(words.shape[0]):
        for j in range(per_word):
            shift = np.uint64(WORD_BYTES * 8 - SLOT_BITS * (j + 1))
            out[w * per_word + j] = (words[w] >> shift) & np.uint64(0xFFFF)
    return out


@dataclass(frozen=True)
class MultiIndex:
    """Multi-index hashing (Norouzi, Punjani and Fleet, 2012) over one main array.

    A hash of ``16 × m`` bits is cut into ``m`` slots of 16 bits. If two hashes are
    within ``d`` bits, at least one slot differs by at most ``d // m`` bits (were every
    slot ``d // m + 1`` apart or more, the total would exceed ``d``). So probing, in
    each slot, every bucket within ``radius = d // m`` bits of the query's slot value
    finds every hash within ``d``: the index is exact, not approximate. For PDQ
    (``m`` = 16) at ``d`` = 31 the radius is 1: 17 buckets per slot, 272 in all,
    about 4,200 candidates per query at 1M uniform hashes instead of 1M.

    Per slot the row numbers of the main array are stored sorted by slot value
    (``order``, ``uint32``) with bucket boundaries (``bounds``): a bucket is one
    contiguous run, and all probes of a batch are gathered with a few numpy calls.
    Memory: 4 bytes per slot per hash (64 bytes per PDQ hash) plus 256 KiB of
    boundaries per slot.
    """

    order: NDArray[np.uint32]  # (slots * count,): slot s occupies [s*count, (s+1)*count)
    bounds: NDArray[np.int64]  # (slots, 65537): global start of each bucket, then the end
    radius: int
    masks: NDArray[np.uint16]  # every 16-bit mask within ``radius`` bits, probed per slot

    @classmethod
    def build(cls, rows: Words, radius: int) -> MultiIndex:
        """Index ``rows`` (shape ``(count, words)``, C-contiguous, native ``uint64``).

        Each slot is read in place through a ``uint16`` view of the rows (no copy of
        all slots at once: one slot's keys are in memory at a time).
        """
        n, n_words = rows.shape
        per_word = WORD_BYTES * 8 // SLOT_BITS
        halves = np.ascontiguousarray(rows).view(np.uint16)  # (count, words * per_word)
        little = np.little_endian
        slots = n_words * per_word
        order = np.empty(slots * n, dtype=np.uint32)
        bounds = np.empty((slots, (1 << SLOT_BITS) + 1), dtype=np.int64)
        for s in range(slots):
            w, j = divmod(s, per_word)
            # Slot j of word w is its j-th 16 bits from the top: in memory, the
            # (per_word - 1 - j)-th uint16 of the word on a little-endian machine.
            values = halves[:, w * per_word + (per_word - 1 - j if little else j)]
            # A stable sort of 16-bit keys is a radix sort in numpy: linear time.
            order[s * n : (s + 1) * n] = np.argsort(values, kind="stable")
            bounds[s, 0] = s * n
            np.cumsum(np.bincount(values, minlength=1 << SLOT_BITS), out=bounds[s, 1:])
            bounds[s, 1:] += s * n
        return cls(order, bounds, radius, probe_masks(radius))

    @property
    def nbytes(self) -> int:
        return int(self.order.nbytes + self.bounds.nbytes)

    def candidates(self, queries: Words) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """``(query, row)`` pairs to check: a superset of every pair within the radius.

        A row can appear several times for one query (once per slot it is near in).
        """
        masks = self.masks
        q_slots = slot_values(queries)  # (slots, q)
        slots, nq = q_slots.shape
        probes = (q_slots[:, :, None] ^ masks[None, None, :]).astype(np.intp)
        slot_of = np.broadcast_to(np.arange(slots)[:, None, None], probes.shape)
        starts = self.bounds[slot_of, probes].ravel()
        lengths = self.bounds[slot_of, probes + 1].ravel() - starts
        query_of = np.broadcast_to(np.arange(nq)[None, :, None], probes.shape).ravel()
        total = int(lengths.sum())
        if total == 0:
            empty = np.empty(0, dtype=np.intp)
            return empty, empty
        # The concatenation of the ranges [start, start + length): one arange, shifted
        # at each range's beginning by the gap to its start.
        ends = np.cumsum(lengths)
        shift = np.repeat(starts - (ends - lengths), lengths)
        at = np.arange(total, dtype=np.int64) + shift
        rows = self.order[at].astype(np.intp)
        return np.repeat(query_of, lengths), rows


def multi_radius(kind: HashType, max_distance: int) -> int | None:
    """The per-slot probe radius that keeps a multi-index exact, or None for a full scan.

    With ``m`` slots the radius is ``max_distance // m``. Radius 0 or 1 keeps the
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
) -> None:
    """Append ``(distance, hash)`` for every live hash of ``main`` within ``limit``.

    ``main`` is the row-major array ``multi`` indexes (seen as ``(words, count)``):
    each candidate is checked by gathering its whole row, one cache line.
    """
    rows_major = main.T  # (count, words): one cache line per candidate hash
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
        dk = dist[keep][first]
        for i, a, d in zip(qk.tolist(), rk.tolist(), dk.tolist(), strict=True):
            found[q0 + i].append((d, rows_major[a].astype(">u8").tobytes()))
