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

- *Multi-index hashing* (``node.multiindex``) for lists of ``MULTI_INDEX_MIN`` hashes or
  more whose threshold keeps it exact with few probes: the hash is cut into 16-bit
  slots (16 for PDQ, 4 for pHash); a hash within ``d`` bits of the query agrees with
  it to within ``d // slots`` bits in at least one slot (pigeonhole), so probing the
  buckets that near in every slot finds all of them. PDQ at the usual 31 bits needs
  17 buckets per slot and checks about 4,200 candidates per query at 1M hashes
  instead of 1M. PDQ lists of ``WIDE_MIN`` (3M) hashes or more get 12 wider slots
  probed within 2 bits instead, a quarter of the candidates at 10M. The main array
  is then stored row by row, so that checking a candidate touches one cache line;
  a compiled kernel generates and checks the candidates where it was built, numpy
  otherwise (the same answer; ``node.multiindex.engine()`` says which).
- *A blocked full scan* (``node.scan``) otherwise: XOR and ``numpy.bitwise_count`` over
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
are folded into a new main array with a new multi-index (``node.segments``). With
``background=True`` (the node's setting) that rebuild runs on a thread: ``apply``
returns at once, and changes applied while it runs are replayed onto its result
before it is swapped in. An index updated by ``apply`` answers exactly as one
rebuilt from the resulting snapshot (a property test checks it). Nothing is edited
in place: each change builds new arrays and swaps them in with one assignment, so a
``match`` running in another thread sees either the state before or the state
after, never a mixture, and never waits.

**Memory**: 8 bytes per word per hash, so 32 bytes per PDQ or SHA-256 hash, 16 per
MD5 and 8 per pHash, plus one byte per hash for the tombstone mask once a removal
has happened. A multi-index adds 4 bytes per slot per hash (64 per PDQ hash, 16 per
pHash) and 512 KiB of bucket bounds per slot: 96 bytes per PDQ hash in all, about
100 MB at 1M. From 3M PDQ hashes on, 12 slots: 80 bytes per hash plus 128 MB of
bounds, about 930 MB at 10M. A rebuild needs the new arrays while the old ones
still serve queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from node.multiindex import multi_radius, probe
from node.packed import (
    WORD_BYTES,
    HashWidthError,
    Words,
    bytes_of,
    has_adjacent_equal,
    hash_at,
    lex_order,
    strictly_ascending,
    words_from_bytes,
    words_of,
)
from node.scan import DEFAULT_BLOCK_ROWS, scan
from node.segments import COMPACT_MIN, LiveSegments, Segments, merge, present
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

MULTI_INDEX_MIN = 32768
"""Fewest hashes in the main array before a perceptual list gets a multi-index.

Below it a full scan costs well under a millisecond per batch and the multi-index
would only add build time and memory."""


@dataclass(frozen=True)
class Match:
    """One listed hash that matched a query.

    Attributes:
        hash: the listed hash, as stored in the list.
        distance: Hamming distance in bits to the query (0 for an exact match).
    """

    hash: bytes
    distance: int


class ListIndex:
    """The hashes of one list, ready to match queries.

    Build one with ``from_snapshot`` (or ``empty``), query it with ``match`` or
    ``match_any``, and keep it in step with ``apply``. It checks and dispatches;
    the state and its compaction are ``LiveSegments``, the searches ``node.scan``
    and ``node.multiindex``.
    """

    __slots__ = ("_block_rows", "_kind", "_live", "_max_distance", "_width_words")

    def __init__(
        self,
        kind: HashType,
        max_distance: int,
        segments: Segments,
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
        self._live = LiveSegments(
            segments,
            name=kind.name,
            radius=multi_radius(kind, max_distance),
            multi_min=multi_index_min,
            compact_min=compact_min,
            background=background,
        )

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
        radius = multi_radius(kind, max_distance)
        if radius is not None and len(data) // kind.length >= multi_index_min:
            # It will be multi-indexed, hence stored row by row: build that layout at
            # once instead of a column copy and then a row copy (320 MB less at 10M).
            big_endian = np.frombuffer(data, dtype=">u8").reshape(-1, kind.length // WORD_BYTES)
            words = big_endian.astype(np.uint64).T
        else:
            words = words_of(data, kind.length)
        if not strictly_ascending(words):
            raise MalformedError("snapshot hashes are not strictly ascending")
        empty = np.empty((words.shape[0], 0), dtype=np.uint64)
        segments = Segments(words, None, 0, empty)
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

    @property
    def multi_indexed(self) -> bool:
        """True when queries probe a multi-index instead of scanning the main array."""
        return self._live.current.multi is not None

    @property
    def hash_type(self) -> HashType:
        return self._kind

    @property
    def max_distance(self) -> int:
        return self._max_distance

    def __len__(self) -> int:
        return self._live.current.count

    def __repr__(self) -> str:
        return f"ListIndex({self._kind.name}, max_distance={self._max_distance}, count={len(self)})"

    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays."""
        seg = self._live.current
        alive = 0 if seg.alive is None else seg.alive.nbytes
        multi = 0 if seg.multi is None else seg.multi.nbytes
        return int(seg.main.nbytes + seg.adds.nbytes + alive + multi)

    def to_bytes(self) -> bytes:
        """The hashes as snapshot bytes: sorted ascending, concatenated."""
        return bytes_of(merge(self._live.current))

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, bytes) or len(item) != self._kind.length:
            return False
        keys = words_of(item, self._kind.length)
        return bool(present(self._live.current, keys)[0])

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
        seg = self._live.current  # one consistent state for the whole call
        if self._max_distance == 0:
            return self._match_exact(seg, queries)
        found: list[list[tuple[int, bytes]]] = [[] for _ in range(queries.shape[1])]
        limit, rows = self._max_distance, self._block_rows
        if seg.multi is not None:
            probe(seg.multi, seg.main, seg.alive, queries, limit, found)
        else:
            scan(seg.main, seg.alive, queries, limit, rows, found)
        scan(seg.adds, None, queries, limit, rows, found)
        return [_sorted(Match(h, d) for d, h in per_query) for per_query in found]

    def _match_exact(self, seg: Segments, queries: Words) -> list[list[Match]]:
        """Exact lists need no distance: a query matches if it is held."""
        hit = present(seg, queries)
        return [[Match(hash_at(queries, i), 0)] if hit[i] else [] for i in range(queries.shape[1])]

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
        rem = rem[:, lex_order(rem)]
        add = add[:, lex_order(add)]
        if has_adjacent_equal(rem) or has_adjacent_equal(add):
            raise StateMismatchError("a hash is listed twice in one update")
        self._live.apply(rem, add)

    def wait_for_rebuild(self, timeout: float | None = None) -> bool:
        """Wait until no background rebuild runs (one may chain another); False on timeout."""
        return self._live.wait_for_rebuild(timeout)

    @property
    def pending(self) -> int:
        """Tombstones plus additions not yet folded into the main array."""
        return self._live.pending


def _sorted(matches: Iterable[Match]) -> list[Match]:
    return sorted(matches, key=lambda m: (m.distance, m.hash))
