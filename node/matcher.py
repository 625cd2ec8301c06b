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
``max_distance`` bits, by brute force: XOR and ``numpy.bitwise_count`` over the
whole index. DESIGN §6 sizes lists at up to a few hundred thousand hashes, where a
full scan takes about a millisecond; multi-index hashing (16 × 16-bit slots, exact
for distance ≤ 31) is the plan beyond that and is not built yet. The scan runs over
blocks of ``block_rows`` hashes so that everything it touches stays in the CPU
cache, and it checks a batch of queries against one block before moving on. For
types of two words or more it first computes a cheap bound on the first two words
only: ``popcount((a0 ^ q0) | (a1 ^ q1))`` is at most ``d(a0, q0) + d(a1, q1)``,
which is at most the full distance, so a hash whose bound exceeds the threshold
cannot match. For unrelated 256-bit hashes the bound averages 48 bits (every bit is
set with probability 3/4), so at the usual threshold of 31 almost nothing passes,
and the few that do get their exact distance. The result is exact: the bound only
skips work. (The bound says nothing at thresholds of 64 and above, where the scan
computes every distance in full.)

**Updates** follow each applied delta without a rebuild: removals set a tombstone
in a mask over the main array, additions go to a small sorted segment that the
scan and lookups read as well. When tombstones and additions together pass an
eighth of the main array (and number at least ``compact_min``, 4096 by default),
both are merged into a new main array in one linear pass. An index updated by ``apply`` answers
exactly as one rebuilt from the resulting snapshot (a property test checks it).
``apply`` never edits an array in place: it builds the new arrays and swaps them in
with one assignment, so a ``match`` running in another thread sees either the state
before or the state after, never a mixture.

**Memory**: 8 bytes per word per hash, so 32 bytes per PDQ or SHA-256 hash, 16 per
MD5 and 8 per pHash (320 MB for 10 million PDQ hashes), plus one byte per hash for
the tombstone mask once a removal has happened. Building from a snapshot needs the
snapshot bytes once more while it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from node.errors import NodeError
from protocol.errors import MalformedError, StateMismatchError
from protocol.lists import HashType, hash_type

__all__ = [
    "COMPACT_MIN",
    "DEFAULT_BLOCK_ROWS",
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


@dataclass(frozen=True)
class _Segments:
    """One consistent state of an index: swapped in whole by ``apply``."""

    main: Words
    alive: NDArray[np.bool_] | None  # None: no tombstones
    dead: int
    adds: Words

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
        "_block_rows",
        "_compact_min",
        "_kind",
        "_max_distance",
        "_segments",
        "_width_words",
    )

    def __init__(
        self,
        kind: HashType,
        max_distance: int,
        segments: _Segments,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        compact_min: int = COMPACT_MIN,
    ) -> None:
        """Use ``from_snapshot`` or ``empty``."""
        if not 0 <= max_distance <= kind.length * 8:
            raise ValueError(f"max_distance {max_distance} out of range for {kind.name}")
        if not kind.perceptual and max_distance != 0:
            raise ValueError(f"exact type {kind.name} needs max_distance 0")
        if block_rows < 1 or compact_min < 1:
            raise ValueError("block_rows and compact_min must be positive")
        self._kind = kind
        self._max_distance = max_distance
        self._width_words = kind.length // WORD_BYTES
        self._segments = segments
        self._block_rows = block_rows
        self._compact_min = compact_min

    @classmethod
    def from_snapshot(
        cls,
        hash_type_name: str,
        max_distance: int,
        data: bytes,
        *,
        block_rows: int = DEFAULT_BLOCK_ROWS,
        compact_min: int = COMPACT_MIN,
    ) -> ListIndex:
        """Build the index from a list's snapshot bytes (``ListState.to_bytes()``).

        Args:
            hash_type_name: the list's hash type (``pdq``, ``phash``, ``md5``, ``sha256``).
            max_distance: the largest Hamming distance that counts as a match
                (0 for exact types).
            data: the hashes, sorted ascending and concatenated.
            block_rows: hashes per scan block (a tuning knob; results do not depend on it).
            compact_min: fewest pending changes that may trigger a compaction (likewise).

        Raises:
            MalformedError: an unknown hash type, a length that is not a multiple of the
                width, or hashes not strictly ascending.
        """
        kind = hash_type(hash_type_name)
        if len(data) % kind.length:
            raise MalformedError(
                f"snapshot of {len(data)} bytes is not a multiple of {kind.length}"
            )
        words = _words(data, kind.length)
        if not _strictly_ascending(words):
            raise MalformedError("snapshot hashes are not strictly ascending")
        empty = np.empty((words.shape[0], 0), dtype=np.uint64)
        segments = _Segments(words, None, 0, empty)
        return cls(kind, max_distance, segments, block_rows, compact_min)

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
        return int(seg.main.nbytes + seg.adds.nbytes + alive)

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
        for words, alive in ((seg.main, seg.alive), (seg.adds, None)):
            self._scan(words, alive, queries, found)
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
        seg = self._segments
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
        new = _Segments(seg.main, alive, dead, merged_adds)
        pending = new.dead + new.adds.shape[1]
        if pending >= self._compact_min and pending * COMPACT_FRACTION > new.main.shape[1]:
            merged = _merge(new)
            new = _Segments(merged, None, 0, np.empty((merged.shape[0], 0), dtype=np.uint64))
        self._segments = new


def _insert_sorted(words: Words, keys: Words) -> Words:
    """Sorted ``words`` with sorted, absent ``keys`` merged in (one linear pass)."""
    if keys.shape[1] == 0:
        return words
    if words.shape[1] == 0:
        return np.ascontiguousarray(keys)
    at = _search(words, keys)
    return np.ascontiguousarray(np.insert(words, at, keys, axis=1))


def _merge(seg: _Segments) -> Words:
    return _insert_sorted(np.ascontiguousarray(seg.main_alive()), seg.adds)


def _sorted(matches: Iterable[Match]) -> list[Match]:
    return sorted(matches, key=lambda m: (m.distance, m.hash))
