"""The node's matcher: one in-memory index per list, exact or by Hamming distance.

A ``ListIndex`` holds one list's hashes as packed ``uint64`` words, never one Python
object per hash. Each hash is split into big-endian 64-bit words (pdq: 4, sha256: 4,
md5: 2, phash: 1) stored column by column: ``words[w, i]`` is word ``w`` of hash
``i``. Hashes are kept in the snapshot's order (ascending bytes, which is ascending
lexicographic order of the words), so one ``numpy.searchsorted`` on the first word
finds any hash.

**Exact types** (md5, sha256, and any list whose ``max_distance`` is 0) match by
lookup: a binary search per query on the first word, then a comparison of the rest.

**Perceptual types** (pdq, phash) match every listed hash within the list's
``max_distance`` bits. Two strategies give the same, exact answer:

- *Multi-index hashing* (``_MultiIndex``) for lists of ``MULTI_INDEX_MIN`` hashes or
  more whose threshold keeps it exact with few probes: the hash is cut into 16-bit
  slots (16 for PDQ, 4 for pHash); a hash within ``d`` bits of the query agrees with
  it to within ``d // slots`` bits in at least one slot (pigeonhole), so probing the
  buckets that near in every slot finds all of them. PDQ at the usual 31 bits needs
  17 buckets per slot and checks about 4,200 candidates per query at 1M hashes
  instead of 1M. The main array is then stored row by row, so that checking a
  candidate touches one cache line.
- *A blocked full scan* (``_scan``) otherwise: XOR and ``numpy.bitwise_count`` over
  blocks of ``block_rows`` hashes that stay in the CPU cache, a batch of queries per
  block. For types of two words or more it first computes a cheap bound on the first
  two words: ``popcount((a0 ^ q0) | (a1 ^ q1))`` is at most the full distance, so a
  hash whose bound exceeds the threshold cannot match; for unrelated 256-bit hashes
  the bound averages 48 bits, so at 31 almost nothing passes to the exact check.

**Updates** follow each applied delta without a rebuild: removals set a tombstone
in a mask over the main array, additions go to a small sorted segment that every
query scans in full. When tombstones and additions together pass a fraction of the
main array (an eighth, or a sixty-fourth with a multi-index, whose queries are
cheaper than the scan of the additions) and number at least ``compact_min``, both
are folded into a new main array with a new multi-index. With ``background=True``
(the node's setting) that rebuild runs on a thread: ``apply`` returns at once, and
changes applied while it runs are replayed onto its result before it is swapped in.
An index updated by ``apply`` answers exactly as one rebuilt from the resulting
snapshot (a property test checks it). Nothing is edited in place: each change
builds new arrays and swaps them in with one assignment, so a ``match`` running in
another thread sees either the state before or the state after, never a mixture,
and never waits.

**Memory**: 8 bytes per word per hash, so 32 bytes per PDQ or SHA-256 hash, 16 per
MD5 and 8 per pHash, plus one byte per hash for the tombstone mask once a removal
has happened. A multi-index adds 4 bytes per slot per hash (64 per PDQ hash, 16 per
pHash) and 512 KiB of bucket bounds per slot: 96 bytes per PDQ hash in all, about
100 MB at 1M and 970 MB at 10M. A rebuild needs the new arrays while the old ones
still serve queries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from node.errors import NodeError
from protocol.errors import MalformedError, StateMismatchError
from protocol.lists import HashType, hash_type

__all__ = [
    "COMPACT_MIN",
    "DEFAULT_BLOCK_ROWS",
    "MULTI_INDEX_MIN",
    "HashWidthError",
    "ListIndex",
    "Match",
    "words_from_bytes",
]

WORD_BYTES = 8
DEFAULT_BLOCK_ROWS = 16384
"""Hashes per scan block: two 128 KiB word slices and their temporaries fit in L2."""
QUERY_BATCH = 32
"""Queries checked against one block before the scan moves to the next block."""
COMPACT_MIN = 4096
"""Fewest pending changes (tombstones + additions) that make a compaction worth it."""
COMPACT_FRACTION = 8
"""Compact when pending changes exceed 1/``COMPACT_FRACTION`` of the main array."""

MULTI_INDEX_MIN = 32768
"""Fewest hashes in the main array before a perceptual list gets a multi-index.

Below it a full scan costs well under a millisecond per batch and the multi-index
would only add build time and memory."""
SLOT_BITS = 16
"""Width of one multi-index slot: 2**16 buckets, about 15 hashes each at 1M."""
PROBE_BATCH = 16
"""Queries probed together: their candidate pairs (about 4,000 each at 1M) stay in cache."""
MULTI_INDEX_COMPACT_FRACTION = 64
"""With a multi-index, fold pending changes in sooner: the additions are scanned in
full on every query, so they should stay a small fraction of the main array."""

log = logging.getLogger(__name__)

Words = NDArray[np.uint64]
"""Hashes as words: shape ``(words_per_hash, count)``, native ``uint64``."""


class HashWidthError(NodeError, ValueError):
    """A hash whose length is not the list's width (the caller's mistake)."""


@dataclass(frozen=True)
class Match:
    """One listed hash that matched a query.

    Attributes:
        hash: the listed hash, as stored in the list.
        distance: Hamming distance in bits to the query (0 for an exact match).
    """

    hash: bytes
    distance: int


def words_from_bytes(hashes: Sequence[bytes], width: int) -> Words:
    """Pack hashes of ``width`` bytes into a ``(width // 8, len(hashes))`` word array.

    Raises:
        HashWidthError: a hash is not exactly ``width`` bytes long.
    """
    for h in hashes:
        if not isinstance(h, bytes | bytearray | memoryview) or len(h) != width:
            size = len(h) if isinstance(h, bytes | bytearray | memoryview) else "?"
            raise HashWidthError(f"hash of {size} bytes where {width} are required")
    return _words(b"".join(hashes), width)


def _words(data: bytes, width: int) -> Words:
    n = len(data) // width
    big_endian = np.frombuffer(data, dtype=">u8").reshape(n, width // WORD_BYTES)
    return np.ascontiguousarray(big_endian.T, dtype=np.uint64)


def _bytes_of(words: Words) -> bytes:
    return words.T.astype(">u8").tobytes()


def _hash_at(words: Words, i: int) -> bytes:
    return words[:, i].astype(">u8").tobytes()


def _lex_order(words: Words) -> NDArray[np.intp]:
    """Indices that sort the hashes ascending (word 0 is the primary key)."""
    return np.lexsort(words[::-1])


def _has_adjacent_equal(sorted_words: Words) -> bool:
    if sorted_words.shape[1] < 2:
        return False
    equal = np.ones(sorted_words.shape[1] - 1, dtype=bool)
    for row in sorted_words:
        equal &= row[1:] == row[:-1]
    return bool(equal.any())


def _strictly_ascending(words: Words) -> bool:
    """True if each hash is greater than the one before it (lexicographic on words)."""
    n = words.shape[1]
    if n < 2:
        return True
    greater = np.zeros(n - 1, dtype=bool)
    undecided = np.ones(n - 1, dtype=bool)
    for row in words:
        later, earlier = row[1:], row[:-1]
        greater |= undecided & (later > earlier)
        undecided &= later == earlier
    return bool(greater.all())


def _search(words: Words, keys: Words) -> NDArray[np.intp]:
    """Leftmost insertion points of ``keys`` in sorted ``words`` (lexicographic)."""
    n = words.shape[1]
    lo: NDArray[np.intp] = np.searchsorted(words[0], keys[0], side="left")
    if words.shape[0] == 1 or n == 0:
        return lo
    hi = np.searchsorted(words[0], keys[0], side="right")
    span = hi - lo
    # One hash shares the key's first word: the key goes before it or after it.
    one = np.nonzero(span == 1)[0]
    if one.size:
        at = lo[one]
        after = np.zeros(one.size, dtype=bool)
        undecided = np.ones(one.size, dtype=bool)
        for w in range(1, words.shape[0]):
            key, row = keys[w, one], words[w, at]
            after |= undecided & (key > row)
            undecided &= key == row
        lo[one] = at + after
    # Several share it (rare: hashes equal in their first 8 bytes): narrow word by word.
    for i in np.nonzero(span > 1)[0]:
        left, right = int(lo[i]), int(hi[i])
        for w in range(1, words.shape[0]):
            row = words[w, left:right]
            key = keys[w, i]
            left, right = (
                left + int(np.searchsorted(row, key, side="left")),
                left + int(np.searchsorted(row, key, side="right")),
            )
            if left == right:
                break
        lo[i] = left
    return lo


def _locate(words: Words, keys: Words) -> NDArray[np.intp]:
    """Position of each key in sorted ``words``, or -1 where it is absent."""
    n = words.shape[1]
    pos = _search(words, keys)
    found = pos < n
    at = np.minimum(pos, max(n - 1, 0))
    if n:
        for w in range(words.shape[0]):
            found &= words[w, at] == keys[w]
    located: NDArray[np.intp] = np.where(found, pos, -1)
    return located


def _row_popcount(diff: Words) -> NDArray[np.uint32]:
    """Bits set in each row of ``diff`` (shape ``(k, words)``), as ``uint32``.

    ``bitwise_count`` gives one byte per word; a sum across a short axis is slow in
    numpy, so the bytes are added as lanes of one wider integer instead.
    """
    counts = np.ascontiguousarray(np.bitwise_count(diff))  # (k, words) uint8, each <= 64
    width = counts.shape[1]
    if width == 1:
        return counts[:, 0].astype(np.uint32)
    if width == 2:
        pair = counts.view(np.uint16)[:, 0].astype(np.uint32)
        return (pair & 0xFF) + (pair >> 8)
    # Four words (256 bits): a row's four counts are the four bytes of one uint32.
    lanes = counts.view(np.uint32)[:, 0]
    halves = (lanes & 0x00FF00FF) + ((lanes >> 8) & 0x00FF00FF)  # two sums, each <= 128
    total: NDArray[np.uint32] = (halves & 0xFFFF) + (halves >> 16)  # <= 256
    return total


def _probe_masks(radius: int) -> NDArray[np.uint16]:
    """Every 16-bit mask with at most ``radius`` bits set (0 first)."""
    masks = [0]
    if radius >= 1:
        masks += [1 << b for b in range(SLOT_BITS)]
    if radius >= 2:
        masks += [(1 << a) | (1 << b) for a in range(SLOT_BITS) for b in range(a)]
    return np.array(masks, dtype=np.uint16)


def _slot_values(words: Words) -> NDArray[np.uint16]:
    """The 16-bit slots of each hash, shape ``(slots, count)``: word 0's top 16 bits first."""
    per_word = WORD_BYTES * 8 // SLOT_BITS
    out = np.empty((words.shape[0] * per_word, words.shape[1]), dtype=np.uint16)
    for w in range(words.shape[0]):
        for j in range(per_word):
            shift = np.uint64(WORD_BYTES * 8 - SLOT_BITS * (j + 1))
            out[w * per_word + j] = (words[w] >> shift) & np.uint64(0xFFFF)
    return out


@dataclass(frozen=True)
class _MultiIndex:
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
    def build(cls, rows: Words, radius: int) -> _MultiIndex:
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
        return cls(order, bounds, radius, _probe_masks(radius))

    @property
    def nbytes(self) -> int:
        return int(self.order.nbytes + self.bounds.nbytes)

    def candidates(self, queries: Words) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """``(query, row)`` pairs to check: a superset of every pair within the radius.

        A row can appear several times for one query (once per slot it is near in).
        """
        masks = self.masks
        q_slots = _slot_values(queries)  # (slots, q)
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


@dataclass(frozen=True)
class _Segments:
    """One consistent state of an index: swapped in whole by ``apply``."""

    main: Words
    alive: NDArray[np.bool_] | None  # None: no tombstones
    dead: int
    adds: Words
    multi: _MultiIndex | None = field(default=None, compare=False)  # over ``main``

    @property
    def count(self) -> int:
        return int(self.main.shape[1] - self.dead + self.adds.shape[1])

    def main_alive(self) -> Words:
        return self.main if self.alive is None else self.main[:, self.alive]


class ListIndex:
    """The hashes of one list, ready to match queries.

    Build one with ``from_snapshot`` (or ``empty``), query it with ``match`` or
    ``match_any``, and keep it in step with ``apply``.
    """

    __slots__ = (
        "_background",
        "_block_rows",
        "_compact_min",
        "_kind",
        "_lock",
        "_max_distance",
        "_multi_min",
        "_multi_radius",
        "_rebuilder",
        "_segments",
        "_since_rebuild",
        "_width_words",
    )

    def __init__(
        self,
        kind: HashType,
        max_distance: int,
        segments: _Segments,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        compact_min: int = COMPACT_MIN,
        multi_index_min: int = MULTI_INDEX_MIN,
        background: bool = False,
    ) -> None:
        """Use ``from_snapshot`` or ``empty``."""
        if not 0 <= max_distance <= kind.length * 8:
            raise ValueError(f"max_distance {max_distance} out of range for {kind.name}")
        if not kind.perceptual and max_distance != 0:
            raise ValueError(f"exact type {kind.name} needs max_distance 0")
        if block_rows < 1 or compact_min < 1 or multi_index_min < 1:
            raise ValueError("block_rows, compact_min and multi_index_min must be positive")
        self._kind = kind
        self._max_distance = max_distance
        self._width_words = kind.length // WORD_BYTES
        self._block_rows = block_rows
        self._compact_min = compact_min
        self._multi_min = multi_index_min
        self._multi_radius = _multi_radius(kind, max_distance)
        self._background = background
        self._lock = threading.Lock()
        self._rebuilder: threading.Thread | None = None
        self._since_rebuild: list[tuple[Words, Words]] = []
        self._segments = self._indexed(segments)

    @classmethod
    def from_snapshot(
        cls,
        hash_type_name: str,
        max_distance: int,
        data: bytes,
        *,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        compact_min: int = COMPACT_MIN,
        multi_index_min: int = MULTI_INDEX_MIN,
        background: bool = False,
    ) -> ListIndex:
        """Build the index from a list's snapshot bytes (``ListState.to_bytes()``).

        Args:
            hash_type_name: the list's hash type (``pdq``, ``phash``, ``md5``, ``sha256``).
            max_distance: the largest Hamming distance that counts as a match
                (0 for exact types).
            data: the hashes, sorted ascending and concatenated.
            block_rows: hashes per scan block (a tuning knob; results do not depend on it).
            compact_min: fewest pending changes that may trigger a compaction (likewise).
            multi_index_min: fewest hashes for which a perceptual list gets a
                multi-index (likewise).
            background: fold pending changes in on a background thread, so that
                ``apply`` returns at once and queries never wait for a rebuild.

        Raises:
            MalformedError: an unknown hash type, a length that is not a multiple of the
                width, or hashes not strictly ascending.
        """
        kind = hash_type(hash_type_name)
        if len(data) % kind.length:
            raise MalformedError(
                f"snapshot of {len(data)} bytes is not a multiple of {kind.length}"
            )
        radius = _multi_radius(kind, max_distance)
        if radius is not None and len(data) // kind.length >= multi_index_min:
            # It will be multi-indexed, hence stored row by row: build that layout at
            # once instead of a column copy and then a row copy (320 MB less at 10M).
            big_endian = np.frombuffer(data, dtype=">u8").reshape(-1, kind.length // WORD_BYTES)
            words = big_endian.astype(np.uint64).T
        else:
            words = _words(data, kind.length)
        if not _strictly_ascending(words):
            raise MalformedError("snapshot hashes are not strictly ascending")
        empty = np.empty((words.shape[0], 0), dtype=np.uint64)
        segments = _Segments(words, None, 0, empty)
        return cls(
            kind, max_distance, segments, block_rows, compact_min, multi_index_min, background
        )

    @classmethod
    def empty(
        cls,
        hash_type_name: str,
        max_distance: int,
        *,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        compact_min: int = COMPACT_MIN,
    ) -> ListIndex:
        """An index of a list that holds nothing yet."""
        return cls.from_snapshot(
            hash_type_name, max_distance, b"", block_rows=block_rows, compact_min=compact_min
        )

    def _indexed(self, seg: _Segments) -> _Segments:
        """``seg`` with a multi-index over its main array, if the list wants one."""
        if (
            seg.multi is None
            and self._multi_radius is not None
            and seg.main.shape[1] >= self._multi_min
        ):
            # Probing gathers whole hashes at random rows: store them row by row and
            # keep ``main`` as the (words, count) view of that, not a second copy.
            main = seg.main if seg.main.T.flags.c_contiguous else np.ascontiguousarray(seg.main.T).T
            multi = _MultiIndex.build(main.T, self._multi_radius)
            return _Segments(main, seg.alive, seg.dead, seg.adds, multi)
        return seg

    @property
    def multi_indexed(self) -> bool:
        """True when queries probe a multi-index instead of scanning the main array."""
        return self._segments.multi is not None

    @property
    def hash_type(self) -> HashType:
        return self._kind

    @property
    def max_distance(self) -> int:
        return self._max_distance

    def __len__(self) -> int:
        return self._segments.count

    def __repr__(self) -> str:
        return f"ListIndex({self._kind.name}, max_distance={self._max_distance}, count={len(self)})"

    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays."""
        seg = self._segments
        alive = 0 if seg.alive is None else seg.alive.nbytes
        multi = 0 if seg.multi is None else seg.multi.nbytes
        return int(seg.main.nbytes + seg.adds.nbytes + alive + multi)

    def to_bytes(self) -> bytes:
        """The hashes as snapshot bytes: sorted ascending, concatenated."""
        return _bytes_of(_merge(self._segments))

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, bytes) or len(item) != self._kind.length:
            return False
        keys = _words(item, self._kind.length)
        return bool(self._present(self._segments, keys)[0])

    # -- queries ---------------------------------------------------------------------

    def match(self, hashes: Sequence[bytes]) -> list[list[Match]]:
        """Match each query hash; one list of matches per query, nearest first.

        Raises:
            HashWidthError: a query is not the list's hash width.
        """
        return self.match_words(words_from_bytes(hashes, self._kind.length))

    def match_any(self, hashes: Sequence[bytes]) -> list[Match]:
        """Listed hashes that match any of ``hashes``, each once at its least distance.

        For the eight dihedral PDQ hashes of one image (``imaging.dihedral_pdq``): a
        rotated or mirrored copy of a listed picture matches through one of them.
        """
        best: dict[bytes, int] = {}
        for matches in self.match(hashes):
            for m in matches:
                if m.distance < best.get(m.hash, m.distance + 1):
                    best[m.hash] = m.distance
        return _sorted(Match(h, d) for h, d in best.items())

    def match_words(self, queries: Words) -> list[list[Match]]:
        """Match queries already packed as words, shape ``(words_per_hash, q)``.

        Raises:
            HashWidthError: ``queries`` does not have the list's number of words.
        """
        if queries.ndim != 2 or queries.shape[0] != self._width_words:
            raise HashWidthError(
                f"queries of shape {queries.shape}: {self._width_words} words per hash needed"
            )
        queries = np.ascontiguousarray(queries, dtype=np.uint64)
        seg = self._segments  # one consistent state for the whole call
        if self._max_distance == 0:
            return self._match_exact(seg, queries)
        found: list[list[tuple[int, bytes]]] = [[] for _ in range(queries.shape[1])]
        if seg.multi is not None:
            self._probe(seg, queries, found)
        else:
            self._scan(seg.main, seg.alive, queries, found)
        self._scan(seg.adds, None, queries, found)
        return [_sorted(Match(h, d) for d, h in per_query) for per_query in found]

    def _present(self, seg: _Segments, keys: Words) -> NDArray[np.bool_]:
        in_main = _locate(seg.main, keys)
        hit = in_main >= 0
        if seg.alive is not None:
            hit[hit] = seg.alive[in_main[hit]]
        return hit | (_locate(seg.adds, keys) >= 0)

    def _match_exact(self, seg: _Segments, queries: Words) -> list[list[Match]]:
        hit = self._present(seg, queries)
        return [[Match(_hash_at(queries, i), 0)] if hit[i] else [] for i in range(queries.shape[1])]

    def _probe(self, seg: _Segments, queries: Words, found: list[list[tuple[int, bytes]]]) -> None:
        """Append ``(distance, hash)`` for every main-array hash within the threshold."""
        assert seg.multi is not None
        limit = self._max_distance
        rows_major = seg.main.T  # (count, words): one cache line per candidate hash
        n = rows_major.shape[0]
        queries_major = np.ascontiguousarray(queries.T)
        for q0 in range(0, queries.shape[1], PROBE_BATCH):
            chunk = queries[:, q0 : q0 + PROBE_BATCH]
            qi, at = seg.multi.candidates(chunk)
            if at.size == 0:
                continue
            diff = np.take(rows_major, at, axis=0)
            diff ^= np.take(queries_major[q0 : q0 + PROBE_BATCH], qi, axis=0)
            dist = _row_popcount(diff)
            keep = dist <= limit
            if seg.alive is not None:
                keep &= seg.alive[at]
            if not keep.any():
                continue
            # A near hash is found through several slots: report each pair once.
            pairs, first = np.unique(qi[keep] * n + at[keep], return_index=True)
            qk, rk = np.divmod(pairs, n)
            dk = dist[keep][first]
            for i, a, d in zip(qk.tolist(), rk.tolist(), dk.tolist(), strict=True):
                found[q0 + i].append((d, rows_major[a].astype(">u8").tobytes()))

    def _scan(
        self,
        words: Words,
        alive: NDArray[np.bool_] | None,
        queries: Words,
        found: list[list[tuple[int, bytes]]],
    ) -> None:
        """Append ``(distance, hash)`` for every hash in ``words`` within the threshold."""
        n = words.shape[1]
        nq = queries.shape[1]
        if n == 0 or nq == 0:
            return
        limit = self._max_distance
        n_words = words.shape[0]
        # With two words or more and a threshold under 64, a two-word bound filters;
        # otherwise every distance is computed in full (exact, one word or many).
        bounded = n_words >= 2 and limit < 64
        rows = min(self._block_rows, n)
        batch = min(QUERY_BATCH, nq)
        x = np.empty(rows, dtype=np.uint64)
        y = np.empty(rows, dtype=np.uint64)
        acc_type = np.uint8 if (bounded or n_words == 1) else np.uint16
        acc = np.empty((batch, rows), dtype=acc_type)
        ones = np.empty(rows, dtype=np.uint8)
        xor, bit_or, count, add = np.bitwise_xor, np.bitwise_or, np.bitwise_count, np.add
        for q0 in range(0, nq, batch):
            q1 = min(q0 + batch, nq)
            # Each query word as a 1-element array: the cheapest operand for a ufunc.
            operands = [[queries[w, i : i + 1] for w in range(n_words)] for i in range(q0, q1)]
            outs = [acc[j] for j in range(q1 - q0)]
            for start in range(0, n, rows):
                stop = min(start + rows, n)
                k = stop - start
                cols = [words[w, start:stop] for w in range(n_words)]
                xk, yk, ok = x[:k], y[:k], ones[:k]
                if k < rows:
                    outs = [out[:k] for out in outs]
                if bounded:
                    c0, c1 = cols[0], cols[1]
                    for q, out in zip(operands, outs, strict=True):
                        xor(c0, q[0], out=xk)
                        xor(c1, q[1], out=yk)
                        bit_or(xk, yk, out=xk)
                        count(xk, out=out)
                else:
                    for q, out in zip(operands, outs, strict=True):
                        xor(cols[0], q[0], out=xk)
                        count(xk, out=out)
                        for w in range(1, n_words):
                            xor(cols[w], q[w], out=xk)
                            count(xk, out=ok)
                            add(out, ok, out=out)
                scores = acc[: q1 - q0, :k]
                if scores.min() > limit:
                    continue
                # flatnonzero, not nonzero: a 2-D nonzero costs 20 times more here.
                qi, ji = np.divmod(np.flatnonzero(scores <= limit), k)
                at = ji + start
                if alive is not None:
                    keep = alive[at]
                    qi, at = qi[keep], at[keep]
                if bounded:
                    dist = np.zeros(at.size, dtype=np.int64)
                    for w in range(n_words):
                        dist += np.bitwise_count(words[w, at] ^ queries[w, qi + q0])
                    keep = dist <= limit
                    qi, at, dist = qi[keep], at[keep], dist[keep]
                else:
                    dist = scores[qi, at - start].astype(np.int64)
                for i, a, d in zip(qi.tolist(), at.tolist(), dist.tolist(), strict=True):
                    found[q0 + i].append((d, _hash_at(words, a)))

    # -- updates ---------------------------------------------------------------------

    def apply(self, removes: Sequence[bytes], adds: Sequence[bytes]) -> None:
        """Remove ``removes`` and add ``adds``, as the applied delta did to the list.

        The same rules as ``ListState.apply``: every removal must be present, every
        addition absent, and no hash may appear twice. Checked before anything
        changes: a refused update leaves the index as it was.

        Raises:
            HashWidthError: a hash of the wrong width.
            StateMismatchError: a removal is absent, an addition present, or a hash
                listed twice.
        """
        width = self._kind.length
        rem = words_from_bytes(removes, width)
        add = words_from_bytes(adds, width)
        rem = rem[:, _lex_order(rem)]
        add = add[:, _lex_order(add)]
        if _has_adjacent_equal(rem) or _has_adjacent_equal(add):
            raise StateMismatchError("a hash is listed twice in one update")
        with self._lock:
            new = self._updated(self._segments, rem, add)
            self._segments = new
            if self._rebuilder is not None:
                # A rebuild is under way from an earlier state: it replays this change.
                self._since_rebuild.append((rem, add))
            elif self._due(new):
                if self._background:
                    self._start_rebuild(new)
                else:
                    self._segments = self._rebuilt(new)

    def wait_for_rebuild(self, timeout: float | None = None) -> bool:
        """Wait until no background rebuild runs (one may chain another); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (rebuilder := self._rebuilder) is not None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            rebuilder.join(left)
            if rebuilder.is_alive():
                return False
        return True

    @property
    def pending(self) -> int:
        """Tombstones plus additions not yet folded into the main array."""
        seg = self._segments
        return seg.dead + int(seg.adds.shape[1])

    def _due(self, seg: _Segments) -> bool:
        pending = seg.dead + int(seg.adds.shape[1])
        fraction = COMPACT_FRACTION if seg.multi is None else MULTI_INDEX_COMPACT_FRACTION
        return pending >= self._compact_min and pending * fraction > seg.main.shape[1]

    def _rebuilt(self, seg: _Segments) -> _Segments:
        """One main array holding everything in ``seg``, with a fresh multi-index."""
        merged = _merge(seg)
        empty = np.empty((merged.shape[0], 0), dtype=np.uint64)
        return self._indexed(_Segments(merged, None, 0, empty))

    def _start_rebuild(self, base: _Segments) -> None:
        """Rebuild from ``base`` on a thread; queries meanwhile use the current state."""
        self._since_rebuild = []
        thread = threading.Thread(
            target=self._rebuild, args=(base,), name=f"rebuild-{self._kind.name}", daemon=True
        )
        # Called with the lock held, which the thread needs before it can finish: it
        # is started before it is published, so no one ever joins an unstarted thread.
        thread.start()
        self._rebuilder = thread

    def _rebuild(self, base: _Segments) -> None:
        try:
            fresh = self._rebuilt(base)
        except Exception:  # the unmerged state stays correct; only slower
            log.exception("rebuilding a %s index failed; it keeps its pending changes", self)
            with self._lock:
                self._rebuilder = None
                self._since_rebuild = []
            return
        with self._lock:
            # Changes applied while the rebuild ran were checked against the state of
            # their time, which holds the same hashes as ``fresh`` plus earlier changes:
            # replaying them in order cannot fail.
            try:
                for rem, add in self._since_rebuild:
                    fresh = self._updated(fresh, rem, add)
            except StateMismatchError:  # cannot happen; if it did, keep what is known good
                log.exception("replaying changes onto a rebuilt %s index failed", self)
                self._since_rebuild = []
                self._rebuilder = None
                return
            self._segments = fresh
            self._since_rebuild = []
            self._rebuilder = None
            if self._due(fresh):
                self._start_rebuild(fresh)

    def _updated(self, seg: _Segments, rem: Words, add: Words) -> _Segments:
        """``seg`` with sorted ``rem`` removed and sorted ``add`` added (checked first)."""
        in_main = _locate(seg.main, rem)
        if seg.alive is not None:
            dead_hit = in_main >= 0
            dead_hit[dead_hit] = ~seg.alive[in_main[dead_hit]]
            in_main[dead_hit] = -1
        in_adds = _locate(seg.adds, rem)
        absent = (in_main < 0) & (in_adds < 0)
        if absent.any():
            i = int(np.nonzero(absent)[0][0])
            raise StateMismatchError(f"removal {_hash_at(rem, i).hex()} is not in the list")
        present = self._present(seg, add)
        if present.any():
            i = int(np.nonzero(present)[0][0])
            raise StateMismatchError(f"addition {_hash_at(add, i).hex()} is already listed")

        alive = seg.alive
        dead = seg.dead
        from_main = in_main[in_main >= 0]
        if from_main.size:
            alive = np.ones(seg.main.shape[1], dtype=bool) if alive is None else alive.copy()
            alive[from_main] = False
            dead += int(from_main.size)
        kept = seg.adds
        from_adds = in_adds[in_adds >= 0]
        if from_adds.size:
            kept = np.delete(kept, from_adds, axis=1)
        merged_adds = _insert_sorted(kept, add)
        return _Segments(seg.main, alive, dead, merged_adds, seg.multi)


def _insert_sorted(words: Words, keys: Words) -> Words:
    """Sorted ``words`` with sorted, absent ``keys`` merged in (one linear pass)."""
    if keys.shape[1] == 0:
        return words
    if words.shape[1] == 0:
        return np.ascontiguousarray(keys)
    at = _search(words, keys)
    return np.ascontiguousarray(np.insert(words, at, keys, axis=1))


def _merge(seg: _Segments) -> Words:
    """One sorted array of everything ``seg`` holds, in the main array's layout.

    A row-major main array (multi-indexed) is merged row by row, so the rebuild does
    not hold a column copy and a row copy of the whole list at once.
    """
    if seg.main.shape[1] and seg.main.T.flags.c_contiguous:
        rows = seg.main.T if seg.alive is None else seg.main.T[seg.alive]
        if seg.adds.shape[1] == 0:
            return rows.T
        at = _search(rows.T, seg.adds)
        merged: Words = np.insert(rows, at, seg.adds.T, axis=0).T
        return merged
    return _insert_sorted(np.ascontiguousarray(seg.main_alive()), seg.adds)


def _multi_radius(kind: HashType, max_distance: int) -> int | None:
    """The per-slot probe radius that keeps a multi-index exact, or None for a full scan.

    With ``m`` slots the radius is ``max_distance // m``. Radius 0 or 1 keeps the
    probes few (1 or 17 buckets per slot); at 2 (137 per slot, PDQ beyond 47 bits) the
    candidates approach a large share of the list and a full scan is as fast.
    """
    if not kind.perceptual or max_distance == 0 or (kind.length * 8) % SLOT_BITS:
        return None
    radius = max_distance // (kind.length * 8 // SLOT_BITS)
    return radius if radius <= 1 else None


def _sorted(matches: Iterable[Match]) -> list[Match]:
    return sorted(matches, key=lambda m: (m.distance, m.hash))
