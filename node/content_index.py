"""The content index: every hash of a perceptual type the platform hosts, on disk.

When a delta adds hashes to a PDQ list, the node must find the registered content
within the list's distance of each of them: the *retroactive* pass. A platform hosts
millions of items, so neither reading every registered hash out of SQLite for each
delta, nor holding one Python object per item, can last. This index keeps the
registered hashes of one type as the list matcher keeps a list (``node.multiindex``:
exact multi-index hashing), but in files the node memory-maps, so a delta's few
hundred or thousand added hashes are the *queries* and the registry is the indexed
side: the cost is what the delta adds, not what the platform hosts.

**Two parts.** A *generation* is a directory of ``.npy`` files, written once and
never edited: the distinct registered hashes, sorted, row by row (``rows.npy``),
and the multi-index over them (one file per array of ``MultiIndex``), with
``meta.json`` saying which *journal* entries it covers. The *journal*
(``content_journal`` in the node's database, written in the same transaction as
the registration) holds the hashes registered since, one row per registering
batch; a query reads the entries past the generation's and indexes them in memory
on the spot (they are few: they are folded into a new generation, a *merge*, once
they pass a sixteenth of it). So the database stays the one truth: the files are a
cache that can always be rebuilt from it (``rebuild``), and a crash between a
registration and a merge loses nothing.

**A superset, checked by key.** Removing content does not touch the files: the
index may still hold a hash nobody hosts any more. It says only *which hashes* are
near; the caller (``ContentRegistry``) looks each such hash up by key in
``content`` for the content ids, so a removed hash finds nothing. ``rebuild``
(``hashhub-node content reindex``) drops them.

**Several processes.** A node serving from several worker processes registers
from any of them (journal rows, in SQLite's transactions); merges and rebuilds are
serialised by a lock file, and a new generation becomes current with one atomic
rename of the ``current`` pointer, so a reader sees the old generation or the new
one, never a mixture.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from node.matcher import MULTI_INDEX_MIN, ListIndex
from node.multiindex import MultiIndex, multi_radius, probe
from node.packed import (
    WORD_BYTES,
    bytes_of,
    has_adjacent_equal,
    lex_order,
    locate,
    search,
    words_of,
)
from node.store.matches import MatchTables
from protocol.lists import HashType

__all__ = ["FORMAT", "MERGE_FRACTION", "MERGE_MIN", "ContentIndex", "Near"]

FORMAT = 1
"""The layout of a generation's files; another value is rebuilt from the database."""
MERGE_MIN = 65_536
"""Journal hashes below which a merge is never due (a small registry stays in memory)."""
MERGE_FRACTION = 16
"""A merge is due once the journal holds more than 1/16 of the generation's hashes."""
READ_CHUNK = 65_536
"""Rows read from the database per fetch while rebuilding."""

Near = tuple[bytes, bytes, int]
"""(added hash, registered hash, distance): one registered hash near one query."""


@dataclass(frozen=True)
class Generation:
    """One immutable set of index files, memory-mapped.

    ``rows`` is ``(count, words)``: the hashes sorted and distinct, one row of
    native ``uint64`` words per hash (word 0 the hash's first 8 bytes, big-endian).
    ``multi`` is None when there are too few hashes for a multi-index to pay.
    ``covered`` is the last journal ``seq`` folded in.
    """

    name: str
    rows: NDArray[np.uint64]
    multi: MultiIndex | None
    covered: int

    @property
    def count(self) -> int:
        return int(self.rows.shape[0])


class ContentIndex:
    """The registered hashes of one perceptual hash type, for the retroactive pass."""

    def __init__(self, directory: Path, kind: HashType, tables: MatchTables) -> None:
        self.directory = directory
        self.kind = kind
        self.tables = tables
        self._generation: Generation | None = None
        self._lock_depth = 0

    # -- queries ---------------------------------------------------------------------

    def near(self, added: Sequence[bytes], max_distance: int) -> list[Near]:
        """Every indexed hash within ``max_distance`` of an added one, once each pair.

        A superset of what is registered now (see the module docstring); what the
        journal holds past the current generation is included. Merges the journal
        into a new generation first when one is due.
        """
        queries = sorted(set(added))
        if not queries:
            return []
        self.merge_if_due()
        generation = self.current()
        found = self._near_main(generation, queries, max_distance)
        journal = self._journal_words(generation.covered)
        if journal.shape[1]:
            found |= self._scan(bytes_of(journal), queries, max_distance)
        return sorted(found)

    def _near_main(self, generation: Generation, queries: list[bytes], limit: int) -> set[Near]:
        if generation.count == 0:
            return set()
        multi = generation.multi
        if multi is None or limit > multi.max_distance:
            # Few hashes, or a distance beyond what the index is exact for: scan them.
            return self._scan(generation.rows.astype(">u8").tobytes(), queries, limit)
        found: list[list[tuple[int, bytes]]] = [[] for _ in queries]
        words = words_of(b"".join(queries), self.kind.length)
        probe(multi, generation.rows.T, None, words, limit, found)
        return {(query, h, d) for query, hits in zip(queries, found, strict=True) for d, h in hits}

    def _scan(self, snapshot: bytes, queries: list[bytes], limit: int) -> set[Near]:
        """The queries against ``snapshot`` (sorted, distinct hashes) indexed in memory."""
        index = ListIndex.from_snapshot(self.kind.name, limit, snapshot)
        return {
            (query, m.hash, m.distance)
            for query, matches in zip(queries, index.match(queries), strict=True)
            for m in matches
        }

    # -- generations -----------------------------------------------------------------

    @property
    def _home(self) -> Path:
        return self.directory / self.kind.name

    def current(self) -> Generation:
        """The current generation, loaded once and reloaded when another process
        has made a newer one current; built from the database if there is none
        or its files cannot be read."""
        name = self._current_name()
        if self._generation is not None and self._generation.name == name:
            return self._generation
        loaded = self._load(name) if name else None
        if loaded is None:
            with self._locked():
                name = self._current_name()
                loaded = self._load(name) if name else None
                if loaded is None:
                    loaded = self._publish(*self._from_table())
        self._generation = loaded
        return loaded

    def _current_name(self) -> str:
        try:
            return (self._home / "current").read_text(encoding="ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return ""

    def _load(self, name: str) -> Generation | None:
        """The generation ``name``, or None if its files are missing, of another
        format or type, or inconsistent (then it is rebuilt)."""
        path = self._home / name
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT or meta.get("hash_type") != self.kind.name:
                return None
            rows = np.load(path / "rows.npy", mmap_mode="r")
            width = self.kind.length // WORD_BYTES
            if rows.dtype != np.uint64 or rows.ndim != 2 or rows.shape[1] != width:
                return None
            if rows.shape[0] != meta["count"]:
                return None
            multi = None
            if meta["multi"] is not None:
                arrays = {
                    part: np.load(path / f"{part}.npy", mmap_mode="r")
                    for part in meta["multi"]["arrays"]
                }
                multi = MultiIndex(**arrays, **meta["multi"]["values"])
            return Generation(name, rows, multi, int(meta["covered"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _publish(self, rows: NDArray[np.uint64], covered: int) -> Generation:
        """Write ``rows`` (sorted, distinct) and their multi-index as a new generation,
        make it current, and drop the journal entries and generations it replaces.
        Called with the lock held."""
        name = f"g{covered}-{uuid.uuid4().hex[:12]}"
        path = self._home / name
        self._make_home()
        path.mkdir(mode=0o700)
        radius = multi_radius(self.kind, self.kind.default_max_distance)
        multi = (
            MultiIndex.build(rows, radius)
            if radius is not None and rows.shape[0] >= MULTI_INDEX_MIN
            else None
        )
        meta: dict[str, Any] = {
            "format": FORMAT,
            "hash_type": self.kind.name,
            "count": int(rows.shape[0]),
            "covered": covered,
            "multi": None,
        }
        _save(path / "rows.npy", rows)
        if multi is not None:
            arrays, values = {}, {}
            for part in dataclasses.fields(multi):
                value = getattr(multi, part.name)
                if isinstance(value, np.ndarray):
                    _save(path / f"{part.name}.npy", value)
                    arrays[part.name] = True
                else:
                    values[part.name] = value
            meta["multi"] = {"arrays": sorted(arrays), "values": values}
        (path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        _fsync_dir(path)
        pointer = self._home / "current.tmp"
        pointer.write_text(name, encoding="ascii")
        with pointer.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(pointer, self._home / "current")
        _fsync_dir(self._home)
        self.tables.drop_journal(self.kind.name, covered)
        for old in self._home.iterdir():
            if old.is_dir() and old.name != name:
                # A process still reading the old files keeps them until it lets go.
                shutil.rmtree(old, ignore_errors=True)
        del multi
        loaded = self._load(name)
        if loaded is None:
            raise OSError(f"the content index just written to {path} cannot be read back")
        return loaded

    def _make_home(self) -> None:
        """The index's directories, owner-only: they say what the platform hosts, as
        the registry in the database does (which is 0600 for the same reason)."""
        for directory in (self.directory, self._home):
            directory.mkdir(mode=0o700, exist_ok=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise merges and rebuilds between processes (readers never wait).

        Re-entrant within this object: a merge that finds no generation builds one
        under the lock it holds (a second ``flock`` on a new descriptor would wait
        for itself)."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self._make_home()
        with (self._home / "lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- merges and rebuilds ---------------------------------------------------------

    def merge_due(self) -> bool:
        """Whether the journal has grown past ``max(MERGE_MIN, count / MERGE_FRACTION)``."""
        generation = self.current()
        pending = self.tables.journal_size(self.kind.name, generation.covered)
        return pending > max(MERGE_MIN, generation.count // MERGE_FRACTION)

    def merge_if_due(self) -> bool:
        """Fold the journal into a new generation if a merge is due; True if it was."""
        if not self.merge_due():
            return False
        self.merge()
        return True

    def merge(self) -> int:
        """Fold every journal entry into a new generation; returns its hash count.

        Rows already in the generation are merged with the journal's by one sorted
        merge (no re-sort of what is there), then the multi-index is built anew.
        """
        with self._locked():
            self._generation = None
            generation = self.current()
            covered, journal = self.tables.journal_since(self.kind.name, generation.covered)
            if covered == generation.covered:
                return generation.count
            fresh = _distinct(words_of(journal, self.kind.length))
            rows = _union(np.asarray(generation.rows), fresh.T)
            del fresh, journal
            self._generation = self._publish(rows, covered)
            return self._generation.count

    def rebuild(self) -> int:
        """Build a new generation from ``content`` itself: what is registered now,
        no removed hash. Returns its hash count."""
        with self._locked():
            self._generation = None
            self._generation = self._publish(*self._from_table())
            return self._generation.count

    def _from_table(self) -> tuple[NDArray[np.uint64], int]:
        """Every distinct registered hash of the type, sorted, and the journal ``seq``
        the read covers (one read transaction: the two agree)."""
        width = self.kind.length
        chunks: list[NDArray[np.uint64]] = []
        with self.tables.snapshot():
            covered = self.tables.journal_head()
            for blob in self.tables.registered_hashes(self.kind.name, READ_CHUNK):
                big_endian = np.frombuffer(blob, dtype=">u8").reshape(-1, width // WORD_BYTES)
                chunks.append(big_endian.astype(np.uint64))
        if not chunks:
            return np.empty((0, width // WORD_BYTES), dtype=np.uint64), covered
        rows = np.concatenate(chunks)
        del chunks
        # Rows come in key order (type, hash, content id): a hash held by several
        # pieces of content comes several times, next to itself.
        return np.ascontiguousarray(_once_each(rows.T).T), covered

    def _journal_words(self, covered: int) -> NDArray[np.uint64]:
        _, journal = self.tables.journal_since(self.kind.name, covered)
        return _distinct(words_of(journal, self.kind.length))


def _distinct(words: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Hashes (``(words, count)``) sorted, each once."""
    if words.shape[1] == 0:
        return words
    return np.ascontiguousarray(_once_each(words[:, lex_order(words)]))


def _once_each(ordered: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Sorted hashes (``(words, count)``, perhaps a view) with repeats dropped."""
    if not has_adjacent_equal(ordered):
        return ordered
    keep = np.ones(ordered.shape[1], dtype=bool)
    keep[1:] = (ordered[:, 1:] != ordered[:, :-1]).any(axis=0)
    return ordered[:, keep]


def _union(rows: NDArray[np.uint64], fresh: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Two sorted, distinct row arrays (``(count, words)``) as one, sorted and distinct."""
    if fresh.shape[0] == 0:
        return np.ascontiguousarray(rows)
    if rows.shape[0] == 0:
        return np.ascontiguousarray(fresh)
    # The sorted-array searches work on columns: a transposed view, not a copy.
    new_only = fresh.T[:, locate(rows.T, fresh.T) < 0]
    merged = np.insert(rows, search(rows.T, new_only), new_only.T, axis=0)
    return np.ascontiguousarray(merged)


def _save(path: Path, array: NDArray[Any]) -> None:
    with path.open("wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
