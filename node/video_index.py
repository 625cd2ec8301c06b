"""Matching a video against many listed videos: their frames in one multi-index.

PROTOCOL.md §6.4 decides a match between two videos by counts of agreeing frames
(``protocol.video.match_video``, which compares every pair of frames). Against a
list of 100,000 videos that is millions of frame pairs per listed video's worth of
work, so the node indexes the frames instead (docs/adr/0021): every listed video's
distinct good frames (quality ≥ ``MIN_QUALITY``, one per PDQ hash) go into one main
array of packed 256-bit rows under the node's exact multi-index
(``node.multiindex``), each row naming the entries it is a frame of. A query's
distinct good frames are probed in one batch; the frame hits, grouped by entry,
give each candidate entry's four counts exactly as §6.4 defines them:

- *q*: distinct query frames within ``MAX_FRAME_DISTANCE`` of a frame of the entry;
- *l*: distinct frames of the entry within that distance of a query frame;
- *Q*, *L*: the distinct good frame counts of the query and of the entry.

An entry no query frame comes near has *q* = *l* = 0 and cannot match (a share that
counts needs at least 3 of ≥ 3 frames), so only the entries the probe finds are
decided, and each exactly as ``match_video`` would decide it: the index narrows the
candidates, it never changes an answer. The multi-index is exact (pigeonhole, not
approximate), so no agreeing pair is missed.

A PDQ hash that is a frame of several entries (a shared intro, a black frame of
good quality) is stored once; its row's entries are a run of ``owners`` (a
compressed sparse row layout), so a hit on it counts for each of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from node.multiindex import MultiIndex, multi_radius, probe
from node.packed import Words, lex_order, words_of
from protocol.lists import hash_type
from protocol.video import (
    MAX_FRAME_DISTANCE,
    MIN_FRAMES_FOR_SHARE,
    MIN_QUALITY,
    MIN_SHARE,
    Frame,
    encode_frames,
    share_counts,
)

__all__ = ["VideoIndex", "VideoMatchResult", "VideoQueries", "distinct_good_frames"]

PDQ_BYTES = 32


def _probe_radius() -> int:
    """The multi-index radius that finds every frame within ``MAX_FRAME_DISTANCE``:
    1 (31 bits over 16 slots of 16 bits), as the PDQ matcher probes."""
    radius = multi_radius(hash_type("pdq"), MAX_FRAME_DISTANCE)
    if radius is None:
        raise AssertionError("PDQ at distance 31 is always multi-indexed")
    return radius


_RADIUS = _probe_radius()


class VideoQueries(list[bytes]):
    """Videos to match, as a query list of the ``vpdq`` type: each item is the
    video's frames digest (``protocol.video.frames_digest``, what a ``vpdq`` record
    of it would hold, and what an answer shows), ``frames[i]`` its frames and
    ``encodings[i]`` their one encoding (what the registry keeps of a video).

    A list, so that it goes wherever a query list goes (the API's ``hashes``, a
    match's ``query``), as ``node.matching.DihedralQueries`` does for a picture's
    turns; a ``vpdq`` list matches the frames, never the digest (PROTOCOL.md §6.4).
    """

    def __init__(self, videos: Sequence[Sequence[Frame]]) -> None:
        self.frames: list[tuple[Frame, ...]] = [tuple(v) for v in videos]
        self.encodings: list[bytes] = [encode_frames(v) for v in self.frames]
        super().__init__(hashlib.sha256(e).digest() for e in self.encodings)

    def add(self, encoded: bytes, frames: tuple[Frame, ...]) -> None:
        """One more video: its frames and their encoding, as the caller decoded
        them (``node.video_hashes.frames_from_hex``), so neither is done again."""
        self.frames.append(frames)
        self.encodings.append(encoded)
        self.append(hashlib.sha256(encoded).digest())


@dataclass(frozen=True)
class VideoMatchResult:
    """A listed entry the query matches, with both shares as exact counts.

    Attributes:
        entry: the entry's id, as ``VideoIndex.build`` was given it.
        query_share: ``(q, Q)``: distinct query frames agreeing with a frame of the
            entry, of all the query's distinct good frames.
        listed_share: ``(l, L)``: distinct frames of the entry agreeing with a query
            frame, of all its distinct good frames.
    """

    entry: str
    query_share: tuple[int, int]
    listed_share: tuple[int, int]

    @property
    def best_share(self) -> Fraction:
        """The larger of the shares that count (§6.4 rule 6): what decided the match."""
        return max(
            (Fraction(*share) for share in (self.query_share, self.listed_share) if _counts(share)),
            default=Fraction(0),
        )


def _counts(share: tuple[int, int]) -> bool:
    return share[1] >= MIN_FRAMES_FOR_SHARE


def distinct_good_frames(frames: Sequence[Frame]) -> list[bytes]:
    """The distinct PDQ hashes of the frames of quality ``MIN_QUALITY`` or more, in the
    order they first occur (§6.4 rules 1 and 2)."""
    return list(dict.fromkeys(f.pdq for f in frames if f.quality >= MIN_QUALITY))


@dataclass(frozen=True)
class VideoIndex:
    """Every listed video's distinct good frames, indexed for §6.4 matching.

    Memory, per distinct frame hash: 32 bytes of hash in the main array, the
    multi-index's row numbers (64 bytes with 16-bit slots; 48 from
    ``node.multiindex.WIDE_MIN`` rows on, plus 128 MB of bucket bounds), 8 bytes of
    ``owners_at`` and 4 of ``owners`` (one per entry the hash is a frame of): about
    108 bytes a frame, 92 above 3M frames. Per entry, 4 bytes of frame count and
    its id.

    Attributes:
        entries: the entry ids; an entry's number is its place here.
        frame_counts: ``L`` of each entry, its distinct good frames (``uint32``).
        main: the distinct frame hashes of all entries, sorted, as words
            ``(4, rows)``, the transpose of a C-contiguous ``(rows, 4)`` array, which is
            what ``probe`` and the kernel read.
        owners_at: row ``r``'s entries are ``owners[owners_at[r]:owners_at[r + 1]]``.
        owners: entry numbers, ascending within each row (``uint32``).
        multi: the multi-index over ``main``, or None when no entry has a good frame.
    """

    entries: tuple[str, ...]
    frame_counts: NDArray[np.uint32]
    main: Words
    owners_at: NDArray[np.int64]
    owners: NDArray[np.uint32]
    multi: MultiIndex | None

    @classmethod
    def build(cls, entries: Mapping[str, Sequence[Frame]]) -> VideoIndex:
        """Index the listed videos ``entries`` (entry id → its frames).

        An entry without a good frame is kept (it can never match); one with 1 or 2
        good frames is indexed like any other, since a query of 3 or more frames may
        still match it by the query's share (§6.4 rule 6).
        """
        ids = tuple(entries)
        chunks: list[bytes] = []
        counts = np.zeros(len(ids), dtype=np.uint32)
        for number, entry in enumerate(ids):
            good = distinct_good_frames(entries[entry])
            counts[number] = len(good)
            chunks.extend(good)
        pairs = len(chunks)
        words = words_of(b"".join(chunks), PDQ_BYTES)  # (4, pairs): one per entry's frame
        del chunks
        entry_of = np.repeat(np.arange(len(ids), dtype=np.uint32), counts)
        if pairs == 0:
            empty_rows = np.empty((0, PDQ_BYTES // 8), dtype=np.uint64)
            return cls(
                ids,
                counts,
                empty_rows.T,
                np.zeros(1, dtype=np.int64),
                np.empty(0, dtype=np.uint32),
                None,
            )
        # Sort by hash (then entry, the sort being stable): equal hashes of several
        # entries become one row whose owners are a run.
        order = lex_order(words)
        words = words[:, order]
        owners = entry_of[order]
        del order, entry_of
        new_row = np.ones(pairs, dtype=bool)
        same = np.ones(pairs - 1, dtype=bool)
        for row in words:
            same &= row[1:] == row[:-1]
        new_row[1:] = ~same
        del same
        starts = np.flatnonzero(new_row)
        owners_at = np.append(starts, pairs).astype(np.int64)
        rows_major = np.ascontiguousarray(words[:, new_row].T)  # (rows, 4)
        del words, new_row
        multi = MultiIndex.build(rows_major, _RADIUS)
        return cls(ids, counts, rows_major.T, owners_at, owners, multi)

    @property
    def rows(self) -> int:
        """Distinct frame hashes indexed."""
        return int(self.main.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays the index keeps (entry ids aside)."""
        multi = self.multi.nbytes if self.multi is not None else 0
        arrays = (self.frame_counts, self.main, self.owners_at, self.owners)
        return multi + sum(int(a.nbytes) for a in arrays)

    def match(self, query: Sequence[Frame]) -> list[VideoMatchResult]:
        """The listed entries ``query`` matches (§6.4), the best share first.

        Ties are in entry order. Each result's shares are those
        ``protocol.video.match_video(query, frames of the entry)`` gives.
        """
        distinct = distinct_good_frames(query)
        total = len(distinct)
        if total == 0 or self.multi is None:
            return []
        queries = words_of(b"".join(distinct), PDQ_BYTES)
        found: list[list[tuple[int, bytes]]] = [[] for _ in range(total)]
        probe(self.multi, self.main, None, queries, MAX_FRAME_DISTANCE, found)
        per_query = np.fromiter((len(f) for f in found), dtype=np.int64, count=total)
        if not per_query.any():
            return []
        hits = words_of(b"".join(h for f in found for _, h in f), PDQ_BYTES)
        rows = _rows_of(self.main, hits)
        query_of = np.repeat(np.arange(total, dtype=np.int64), per_query)
        # Each (query frame, row) hit counts for every entry the row is a frame of.
        first = self.owners_at[rows]
        width = self.owners_at[rows + 1] - first
        ends = np.cumsum(width)
        at = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(first - (ends - width), width)
        entry = self.owners[at].astype(np.int64)
        query_of = np.repeat(query_of, width)
        row_of = np.repeat(rows.astype(np.int64), width)
        # q: distinct (entry, query frame) pairs per entry; l: distinct (entry, row).
        q_keys = np.unique(entry * total + query_of)
        l_keys = np.unique(entry * self.rows + row_of)
        candidates, q = np.unique(q_keys // total, return_counts=True)
        l_entries, l_counts = np.unique(l_keys // self.rows, return_counts=True)
        assert np.array_equal(candidates, l_entries)  # each hit is one of each
        listed_total = self.frame_counts[candidates].astype(np.int64)
        num, den = MIN_SHARE.numerator, MIN_SHARE.denominator
        by_query = (q * den >= num * total) & (total >= MIN_FRAMES_FOR_SHARE)
        by_listed = (listed_total >= MIN_FRAMES_FOR_SHARE) & (l_counts * den >= num * listed_total)
        results = []
        for i in np.flatnonzero(by_query | by_listed).tolist():
            result = VideoMatchResult(
                entry=self.entries[int(candidates[i])],
                query_share=(int(q[i]), total),
                listed_share=(int(l_counts[i]), int(listed_total[i])),
            )
            assert share_counts(result.query_share) or share_counts(result.listed_share)
            results.append((int(candidates[i]), result))
        results.sort(key=lambda pair: (-pair[1].best_share, pair[0]))
        return [result for _, result in results]


def _rows_of(main: Words, keys: Words) -> NDArray[np.intp]:
    """The row of sorted, distinct ``main`` that holds each of ``keys`` (all present:
    the probe read them from it).

    ``node.packed.locate`` narrows hashes that share their first word one at a time,
    and a video's frames often do (a frame is its neighbour with a few bits
    changed); here every key is narrowed at once, a vectorised binary search over
    the other words within its first word's run.
    """
    lo: NDArray[np.intp] = np.searchsorted(main[0], keys[0], side="left")
    hi: NDArray[np.intp] = np.searchsorted(main[0], keys[0], side="right")
    open_ = lo + 1 < hi
    while open_.any():
        at = np.flatnonzero(open_)
        mid = (lo[at] + hi[at]) // 2
        # Is row ``mid`` at or below the key, lexicographically on words 1.. (word 0
        # is the key's in this run)? Then the key's row is at or after it.
        below = np.zeros(at.size, dtype=bool)
        undecided = np.ones(at.size, dtype=bool)
        for w in range(1, main.shape[0]):
            row, key = main[w, mid], keys[w, at]
            below |= undecided & (row < key)
            undecided &= row == key
        not_after = below | undecided
        lo[at] = np.where(not_after, mid, lo[at])
        hi[at] = np.where(not_after, hi[at], mid)
        open_[at] = lo[at] + 1 < hi[at]
    return lo
