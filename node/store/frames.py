"""The frames of a ``vpdq`` list's records (PROTOCOL.md §6.3): ``frames``.

A ``vpdq`` record's hash is the SHA-256 of a video's frames, which travel beside the
records, one file per record; the follower fetches and verifies the file of every
record an update adds (``follow.update.Syncer.frames``). Here they are kept by list
and record hash, as the file's bytes, and they change only with a committed update,
in its transaction (``ListTables.commit_update``), so that the rows are always the
frames of the records standing:

- a delta inserts the frames of the records it adds and drops those of the records
  it removes; a record replaced by one of the same hash (its entry's metadata
  changed) keeps its frames, since the file is the same;
- a rebuild from a snapshot keeps the frames held of records that still stand
  and adds those given (the follower fetches only what ``frames_held`` says is
  missing), dropping the rest;
- a list that is no longer of a frames type loses its rows.

The matcher reads them back by entry (``standing_frames``) to build its
``node.video_index.VideoIndex``; the content registry reads those of the records
an update added (``frames_of``) to find the hosted videos they match.

A lookup by record hash goes ``_BATCH`` hashes to a query (``WHERE hash IN``),
under SQLite's limit of bound parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import sqlite_utils

from protocol import Entry, EntryState
from protocol.video import Frame, decode_frames

__all__ = [
    "drop",
    "forget",
    "frames_of",
    "held_among",
    "held_hashes",
    "keep",
    "standing_frames",
]


_BATCH = 500
"""Record hashes looked up by one query."""


def keep(db: sqlite_utils.Database, hub: str, list_id: str, frames: Mapping[bytes, bytes]) -> None:
    """Hold ``frames`` of records the list adds (the same file again is no change)."""
    db.conn.executemany(
        "INSERT OR REPLACE INTO frames (hub, list_id, hash, frames) VALUES (?, ?, ?, ?)",
        [(hub, list_id, h, data) for h, data in sorted(frames.items())],
    )


def forget(db: sqlite_utils.Database, hub: str, list_id: str, hashes: Iterable[bytes]) -> None:
    """Drop the frames of records the list removed."""
    db.conn.executemany(
        "DELETE FROM frames WHERE hub = ? AND list_id = ? AND hash = ?",
        [(hub, list_id, h) for h in hashes],
    )


def drop(db: sqlite_utils.Database, hub: str, list_id: str) -> None:
    """Every frames row of the list."""
    db.execute("DELETE FROM frames WHERE hub = ? AND list_id = ?", [hub, list_id])


def held_hashes(db: sqlite_utils.Database, hub: str, list_id: str) -> list[bytes]:
    """The record hashes whose frames the list holds, in order."""
    return [
        bytes(r["hash"])
        for r in db.query(
            "SELECT hash FROM frames WHERE hub = ? AND list_id = ? ORDER BY hash", [hub, list_id]
        )
    ]


def held_among(
    db: sqlite_utils.Database, hub: str, list_id: str, hashes: Iterable[bytes]
) -> set[bytes]:
    """Which of ``hashes`` the list holds the frames of: only those are read, not
    every hash the list holds (a follower asks of the few an update adds)."""
    return {bytes(r["hash"]) for r in _rows_of(db, hub, list_id, "hash", hashes)}


def frames_of(
    db: sqlite_utils.Database, hub: str, list_id: str, hashes: Iterable[bytes]
) -> dict[bytes, bytes]:
    """The held frames files of some of the list's records (those an update added,
    for the registry's retroactive pass), by record hash."""
    return {
        bytes(r["hash"]): bytes(r["frames"])
        for r in _rows_of(db, hub, list_id, "hash, frames", hashes)
    }


def _rows_of(
    db: sqlite_utils.Database,
    hub: str,
    list_id: str,
    columns: Literal["hash", "hash, frames"],
    hashes: Iterable[bytes],
) -> Iterator[dict[str, Any]]:
    """The held rows of ``hashes`` (``columns`` of each), ``_BATCH`` hashes a query."""
    wanted = sorted(set(hashes))
    for start in range(0, len(wanted), _BATCH):
        batch = wanted[start : start + _BATCH]
        marks = ", ".join("?" * len(batch))  # only placeholders and this module's columns
        yield from db.query(
            f"SELECT {columns} FROM frames "  # noqa: S608
            f"WHERE hub = ? AND list_id = ? AND hash IN ({marks})",
            [hub, list_id, *batch],
        )


def standing_frames(
    db: sqlite_utils.Database, hub: str, list_id: str, state: EntryState
) -> dict[Entry, Sequence[Frame]]:
    """The frames of each record standing in ``state``, by its entry.

    A record whose frames the store lacks is left out (it matches no video): the
    follower commits a record only with its frames, so that is a store damaged by
    hand, and the next snapshot repairs it.
    """
    held = {
        bytes(r["hash"]): bytes(r["frames"])
        for r in db.query(
            "SELECT hash, frames FROM frames WHERE hub = ? AND list_id = ?", [hub, list_id]
        )
    }
    found: dict[Entry, Sequence[Frame]] = {}
    for entry in state.entries():
        data = held.get(entry.hash)
        if data is not None:
            found[entry] = decode_frames(data)
    return found
