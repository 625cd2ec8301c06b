"""An ``entries`` list's records also kept one row each, keyed by (list, hash): the
lookup a match makes.

Why a table. The state blob (``node.store.records``) is the record of what the
node enforces, but a large blob is slow to read at an offset: SQLite reaches byte
``n`` of a blob by walking its overflow-page chain from the start, so a binary
search over the 126 MB blob of 1M PDQ records took 18 ms a lookup (median), almost
all of it the walk. With this table (``WITHOUT ROWID``, the raw hash as key, the
rest of the record as value) a lookup is one B-tree probe: 0.047 ms median, 0.49 ms
the slowest of 200, at 1M records (``bench/node_bench.py --sections entries``).
The price, measured at the same size: the file grows from 126 MB to 254 MB (a
second copy of the records, a little smaller than the blob since the key is the
hash's bytes, not its hex), and writing the whole state takes about 4 s instead of
0.9 s (the rows go in beside the blob): a bootstrap or a resync from a snapshot.
An update applied as changes (logged, or folded into a blob written whole) changes
only its rows. The two other ways were ruled out without building them:

- byte offsets per list beside the blob: the blob would still be read at an
  offset, and the walk to the offset is the cost, not finding it;
- a memory map: SQLite lays a blob's overflow pages out in its file as it pleases,
  so there is no contiguous run to map; a copy of the blob in a file of its own
  would be a second store outside the transaction that keeps state and trust one.

The rows hold the state with its logged changes already applied (they are
changed in the same transaction as the log, from the changes' record lines), so a
lookup reads neither the blob nor the log. ``entry_records_state`` says which
state the rows are: ``trusted``, the digest of the trust record they were built
for, and ``count``/``sha256``, the digest of the records they hold. A lookup uses
the rows only when both equal the list's trust record; otherwise the rows are
rebuilt from the stored state (never the other way round), and if the stored state
itself is damaged, its digest not the trusted one, the lookup reads the state as
before until a snapshot repairs it. ``check`` compares the rows with the state
record by record (``ListTables.verify`` calls it) and rebuilds them when they
differ: a row lost or changed by hand is caught there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlite_utils

from protocol import StateDigest
from protocol.lists import HashType

__all__ = [
    "RowsState",
    "apply_changes",
    "check",
    "drop",
    "expiring",
    "lookup",
    "rows_state",
    "write_all",
]

_BATCH = 50_000
"""Rows inserted per ``executemany``: the generator of a million rows stays lazy."""


@dataclass(frozen=True)
class RowsState:
    """Which state a list's rows hold: the trusted digest they were built for and the
    digest of the records in them."""

    trusted: str
    held: StateDigest


def rows_state(db: sqlite_utils.Database, hub: str, list_id: str) -> RowsState | None:
    """What the rows of ``list_id`` say they hold; None when there are none."""
    row = db.execute(
        "SELECT trusted, count, sha256 FROM entry_records_state WHERE hub = ? AND list_id = ?",
        [hub, list_id],
    ).fetchone()
    if row is None:
        return None
    return RowsState(str(row[0]), StateDigest(int(row[1]), str(row[2])))


def _split(line: bytes, kind: HashType) -> tuple[bytes, bytes]:
    """A record line as (hash, the rest after its space)."""
    width = 2 * kind.length
    return bytes.fromhex(line[:width].decode("ascii")), line[width + 1 :]


def _mark(
    db: sqlite_utils.Database, hub: str, list_id: str, trusted: StateDigest, held: StateDigest
) -> None:
    db.execute(
        "INSERT INTO entry_records_state (hub, list_id, trusted, count, sha256) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(hub, list_id) DO UPDATE SET "
        "trusted = excluded.trusted, count = excluded.count, sha256 = excluded.sha256",
        [hub, list_id, trusted.sha256, held.count, held.sha256],
    )


def drop(db: sqlite_utils.Database, hub: str, list_id: str) -> None:
    """No rows for ``list_id`` (its state is written whole, or it holds bare hashes)."""
    db.execute("DELETE FROM entry_records WHERE hub = ? AND list_id = ?", [hub, list_id])
    db.execute("DELETE FROM entry_records_state WHERE hub = ? AND list_id = ?", [hub, list_id])


def write_all(
    db: sqlite_utils.Database,
    hub: str,
    list_id: str,
    kind: HashType,
    lines: Sequence[bytes],
    trusted: StateDigest,
    held: StateDigest,
) -> None:
    """The rows of ``list_id`` replaced by ``lines`` (sorted, so the B-tree is filled
    in key order), holding the state of digest ``held``; the caller's transaction."""
    drop(db, hub, list_id)
    conn = db.conn
    for start in range(0, len(lines), _BATCH):
        conn.executemany(
            "INSERT INTO entry_records (hub, list_id, hash, rest) VALUES (?, ?, ?, ?)",
            ((hub, list_id, *_split(line, kind)) for line in lines[start : start + _BATCH]),
        )
    _mark(db, hub, list_id, trusted, held)


def apply_changes(
    db: sqlite_utils.Database,
    hub: str,
    list_id: str,
    kind: HashType,
    removes: Iterable[bytes],
    adds: Iterable[bytes],
    digest: StateDigest,
) -> None:
    """One logged change applied to the rows (removals first: a changed entry is its
    old record removed and its new one added under the same hash)."""
    conn = db.conn
    conn.executemany(
        "DELETE FROM entry_records WHERE hub = ? AND list_id = ? AND hash = ?",
        ((hub, list_id, _split(line, kind)[0]) for line in removes),
    )
    conn.executemany(
        "INSERT INTO entry_records (hub, list_id, hash, rest) VALUES (?, ?, ?, ?)",
        ((hub, list_id, *_split(line, kind)) for line in adds),
    )
    _mark(db, hub, list_id, digest, digest)


def lookup(
    db: sqlite_utils.Database, hub: str, list_id: str, kind: HashType, hashes: Sequence[bytes]
) -> dict[bytes, bytes]:
    """The record lines of ``hashes`` held in the rows, by hash (one probe each)."""
    found: dict[bytes, bytes] = {}
    conn = db.conn
    for h in hashes:
        row = conn.execute(
            "SELECT rest FROM entry_records WHERE hub = ? AND list_id = ? AND hash = ?",
            [hub, list_id, h],
        ).fetchone()
        if row is not None:
            found[h] = h.hex().encode() + b" " + bytes(row[0])
    return found


def expiring(db: sqlite_utils.Database, hub: str, list_id: str, start: bytes, end: bytes) -> int:
    """How many rows' ``expires`` is after ``start`` and at or before ``end`` (record
    times, compared as the text they are). A record ends with its ``expires``, 20
    bytes when it has one; one without ends in `` -``, which no time equals."""
    row = db.execute(
        "SELECT count(*) FROM entry_records WHERE hub = ? AND list_id = ? "
        "AND substr(rest, -20) > ? AND substr(rest, -20) <= ? AND substr(rest, -2) != ?",
        [hub, list_id, start, end, b" -"],
    ).fetchone()
    return int(row[0])


def _held(db: sqlite_utils.Database, hub: str, list_id: str, kind: HashType) -> StateDigest:
    """The digest of the records the rows hold, recomputed (the state's own rule)."""
    sha = hashlib.sha256()
    count = 0
    for h, rest in db.conn.execute(
        "SELECT hash, rest FROM entry_records WHERE hub = ? AND list_id = ? ORDER BY hash",
        [hub, list_id],
    ):
        sha.update(bytes(h).hex().encode() + b" " + bytes(rest) + b"\n")
        count += 1
    return StateDigest(count, sha.hexdigest())


def check(
    db: sqlite_utils.Database,
    hub: str,
    list_id: str,
    kind: HashType,
    lines: Sequence[bytes],
    trusted: StateDigest,
    state: StateDigest,
) -> bool:
    """Whether the rows hold exactly the stored state ``lines`` (digest ``state``) for
    the trust record ``trusted``; when not, they are rebuilt from ``lines``."""
    if rows_state(db, hub, list_id) == RowsState(trusted.sha256, state) and (
        _held(db, hub, list_id, kind) == state
    ):
        return True
    with db.atomic():
        write_all(db, hub, list_id, kind, lines, trusted, state)
    return False
