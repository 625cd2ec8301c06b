"""A list index's state as segments, and the bookkeeping that keeps it current.

An index's state is a ``Segments``: the main array (sorted, maybe multi-indexed),
a tombstone mask over it, and a small sorted segment of additions. ``updated``
follows a delta without a rebuild: removals set tombstones, additions go to the
segment. ``LiveSegments`` holds the current state and folds pending changes into
a new main array once they pass a fraction of it (an eighth, or a sixty-fourth
with a multi-index, whose queries are cheaper than the scan of the additions),
on a thread when asked, replaying changes made meanwhile. Nothing is edited in
place: each change builds new arrays and swaps them in with one assignment, so a
query in another thread sees the state before or after, never a mixture.

This is the list's bookkeeping, apart from how queries are answered
(``node.scan``, ``node.multiindex``) and from ``ListIndex``, which ties them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from node.multiindex import MultiIndex
from node.packed import Words, hash_at, locate, search
from protocol.errors import StateMismatchError

__all__ = [
    "COMPACT_FRACTION",
    "COMPACT_MIN",
    "MULTI_INDEX_COMPACT_FRACTION",
    "LiveSegments",
    "Segments",
    "merge",
    "present",
    "updated",
]

COMPACT_MIN = 4096
"""Fewest pending changes (tombstones + additions) that make a compaction worth it."""
COMPACT_FRACTION = 8
"""Compact when pending changes exceed 1/``COMPACT_FRACTION`` of the main array."""
MULTI_INDEX_COMPACT_FRACTION = 64
"""With a multi-index, fold pending changes in sooner: the additions are scanned in
full on every query, so they should stay a small fraction of the main array."""

log = logging.getLogger("node.matcher")
"""Reported under the matcher's name: an operator reads about the index, not its parts."""


@dataclass(frozen=True)
class Segments:
    """One consistent state of an index: swapped in whole by ``apply``."""

    main: Words
    alive: NDArray[np.bool_] | None  # None: no tombstones
    dead: int
    adds: Words
    multi: MultiIndex | None = field(default=None, compare=False)  # over ``main``

    @property
    def count(self) -> int:
        """Hashes held: the live part of the main array plus the additions."""
        return int(self.main.shape[1] - self.dead + self.adds.shape[1])

    def main_alive(self) -> Words:
        """The main array without its removed hashes (a copy once any was removed)."""
        return self.main if self.alive is None else self.main[:, self.alive]


def present(seg: Segments, keys: Words) -> NDArray[np.bool_]:
    """Whether each of the sorted ``keys`` is held by ``seg`` (removed ones are not)."""
    in_main = locate(seg.main, keys)
    hit = in_main >= 0
    if seg.alive is not None:
        hit[hit] = seg.alive[in_main[hit]]
    return hit | (locate(seg.adds, keys) >= 0)


def updated(seg: Segments, rem: Words, add: Words) -> Segments:
    """``seg`` with sorted ``rem`` removed and sorted ``add`` added (checked first)."""
    in_main = locate(seg.main, rem)
    if seg.alive is not None:
        dead_hit = in_main >= 0
        dead_hit[dead_hit] = ~seg.alive[in_main[dead_hit]]
        in_main[dead_hit] = -1
    in_adds = locate(seg.adds, rem)
    absent = (in_main < 0) & (in_adds < 0)
    if absent.any():
        i = int(np.nonzero(absent)[0][0])
        raise StateMismatchError(f"removal {hash_at(rem, i).hex()} is not in the list")
    listed = present(seg, add)
    if listed.any():
        i = int(np.nonzero(listed)[0][0])
        raise StateMismatchError(f"addition {hash_at(add, i).hex()} is already listed")

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
    merged_adds = insert_sorted(kept, add)
    return Segments(seg.main, alive, dead, merged_adds, seg.multi)


def insert_sorted(words: Words, keys: Words) -> Words:
    """Sorted ``words`` with sorted, absent ``keys`` merged in (one linear pass)."""
    if keys.shape[1] == 0:
        return words
    if words.shape[1] == 0:
        return np.ascontiguousarray(keys)
    at = search(words, keys)
    return np.ascontiguousarray(np.insert(words, at, keys, axis=1))


def merge(seg: Segments) -> Words:
    """One sorted array of everything ``seg`` holds, in the main array's layout.

    A row-major main array (multi-indexed) is merged row by row, so the rebuild does
    not hold a column copy and a row copy of the whole list at once.
    """
    if seg.main.shape[1] and seg.main.T.flags.c_contiguous:
        rows = seg.main.T if seg.alive is None else seg.main.T[seg.alive]
        if seg.adds.shape[1] == 0:
            return rows.T
        at = search(rows.T, seg.adds)
        merged: Words = np.insert(rows, at, seg.adds.T, axis=0).T
        return merged
    return insert_sorted(np.ascontiguousarray(seg.main_alive()), seg.adds)


class LiveSegments:
    """One index's current ``Segments`` and the compaction that folds changes into it.

    Kept apart from ``ListIndex`` because it is the one part with a lock and a
    thread: queries read ``current`` without either, and only ``apply`` and the
    rebuild take the lock to swap a new state in.
    """

    __slots__ = (
        "_background",
        "_compact_min",
        "_lock",
        "_multi_min",
        "_name",
        "_radius",
        "_rebuilder",
        "_since_rebuild",
        "current",
    )

    def __init__(
        self,
        segments: Segments,
        *,
        name: str,
        radius: int | None,
        multi_min: int,
        compact_min: int,
        background: bool,
    ) -> None:
        """``radius`` None: the list gets no multi-index (see ``multi_radius``)."""
        self._name = name
        self._radius = radius
        self._multi_min = multi_min
        self._compact_min = compact_min
        self._background = background
        self._lock = threading.Lock()
        self._rebuilder: threading.Thread | None = None
        self._since_rebuild: list[tuple[Words, Words]] = []
        self.current = self._indexed(segments)

    def _indexed(self, seg: Segments) -> Segments:
        """``seg`` with a multi-index over its main array, if the list wants one."""
        if seg.multi is None and self._radius is not None and seg.main.shape[1] >= self._multi_min:
            # Probing gathers whole hashes at random rows: store them row by row and
            # keep ``main`` as the (words, count) view of that, not a second copy.
            main = seg.main if seg.main.T.flags.c_contiguous else np.ascontiguousarray(seg.main.T).T
            multi = MultiIndex.build(main.T, self._radius)
            return Segments(main, seg.alive, seg.dead, seg.adds, multi)
        return seg

    def apply(self, rem: Words, add: Words) -> None:
        """Swap in the state with sorted ``rem`` removed and ``add`` added (checked
        first, so a refused change leaves the state as it was), then compact if due."""
        with self._lock:
            new = updated(self.current, rem, add)
            self.current = new
            if self._rebuilder is not None:
                # A rebuild is under way from an earlier state: it replays this change.
                self._since_rebuild.append((rem, add))
            elif self._due(new):
                if self._background:
                    self._start_rebuild(new)
                else:
                    self.current = self._rebuilt(new)

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
        seg = self.current
        return seg.dead + int(seg.adds.shape[1])

    def _due(self, seg: Segments) -> bool:
        """Whether the pending changes are many enough, absolutely and relatively, that
        queries would gain more from a compaction than it costs."""
        pending = seg.dead + int(seg.adds.shape[1])
        fraction = COMPACT_FRACTION if seg.multi is None else MULTI_INDEX_COMPACT_FRACTION
        return pending >= self._compact_min and pending * fraction > seg.main.shape[1]

    def _rebuilt(self, seg: Segments) -> Segments:
        """One main array holding everything in ``seg``, with a fresh multi-index."""
        merged = merge(seg)
        empty = np.empty((merged.shape[0], 0), dtype=np.uint64)
        return self._indexed(Segments(merged, None, 0, empty))

    def _start_rebuild(self, base: Segments) -> None:
        """Rebuild from ``base`` on a thread; queries meanwhile use the current state."""
        self._since_rebuild = []
        thread = threading.Thread(
            target=self._rebuild, args=(base,), name=f"rebuild-{self._name}", daemon=True
        )
        # Called with the lock held, which the thread needs before it can finish: it
        # is started before it is published, so no one ever joins an unstarted thread.
        thread.start()
        self._rebuilder = thread

    def _rebuild(self, base: Segments) -> None:
        """The thread's work: compact ``base``, replay what changed since, swap it in."""
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
                    fresh = updated(fresh, rem, add)
            except StateMismatchError:  # cannot happen; if it did, keep what is known good
                log.exception("replaying changes onto a rebuilt %s index failed", self)
                self._since_rebuild = []
                self._rebuilder = None
                return
            self.current = fresh
            self._since_rebuild = []
            self._rebuilder = None
            if self._due(fresh):
                self._start_rebuild(fresh)

    def __repr__(self) -> str:
        return f"{self._name} (count={self.current.count})"
