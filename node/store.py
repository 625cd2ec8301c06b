"""The node's SQLite store: trust state, list states, evidence, events and outboxes.

One file, WAL mode, ``synchronous=FULL`` (a trust record that survives a crash
only half-written is worse than none). What it keeps:

- ``roots``: every verified root's bytes and signature, so each run re-verifies
  the chain from the pinned root instead of trusting a cached parse.
- ``lists``: per subscribed list, the ``ListTrust`` record (JSON) and the list's
  state as one blob in snapshot form (sorted hashes): the digest is one SHA-256
  pass and ``verify`` can recompute it at any time. State and trust change
  together in one transaction, or not at all.
- ``evidence``: every rejected update: which list, the error class and message,
  and the bytes that caused it where there are some (both notes of an
  equivocation).
- ``match_events`` and ``counters``: what matched, what the platform did about it,
  and cumulative counters for acks.
- ``ack_outbox`` and ``webhook_outbox``: durable queues, removed from only when
  the other side confirms.
- ``content``: the platform's registry of hashes of content it hosts, for
  retroactive takedowns.

Two faults from outside (ADR 0016): every ``db.atomic()`` begins with ``BEGIN
IMMEDIATE`` (``edge.database.ImmediateDatabase``, the hub's too), so a transaction
waits up to ``BUSY_TIMEOUT`` for another process's write lock instead of failing at
once; and a write the disk refuses (SQLite's "database or disk is full" or "disk
I/O error") is told apart from other database errors by ``storage_error``: the
transaction is rolled back, the update ends ``failed``, and the API answers 507.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from edge.database import BUSY_TIMEOUT, connect
from node.errors import StorageError
from protocol import ListState, ListTrust, ProtocolError, StateDigest, format_time
from protocol.lists import hash_type

__all__ = [
    "BUSY_TIMEOUT",
    "NodeStore",
    "StoredList",
    "migrations",
    "storage_error",
]

migrations = Migrations("hashhub.node")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE roots (
            version INTEGER PRIMARY KEY,
            bytes BLOB NOT NULL,
            sig BLOB NOT NULL
        );
        CREATE TABLE lists (
            id TEXT PRIMARY KEY,
            hash_type TEXT NOT NULL,
            trust TEXT NOT NULL,
            state BLOB NOT NULL,
            count INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            applied TEXT,
            last_attempt TEXT,
            last_success TEXT,
            last_error TEXT
        );
        CREATE TABLE evidence (
            id INTEGER PRIMARY KEY,
            list_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            bytes BLOB,
            other BLOB,
            created TEXT NOT NULL
        );
        CREATE TABLE match_events (
            id TEXT PRIMARY KEY,
            list_id TEXT NOT NULL,
            hash BLOB NOT NULL,
            query BLOB NOT NULL,
            distance INTEGER NOT NULL,
            version INTEGER NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('upload', 'registry')),
            content_id TEXT,
            created TEXT NOT NULL,
            outcome TEXT,
            outcome_at TEXT
        );
        CREATE INDEX match_events_open ON match_events(outcome, created);
        CREATE TABLE counters (
            list_id TEXT NOT NULL,
            hash TEXT NOT NULL DEFAULT '',
            name TEXT NOT NULL,
            value INTEGER NOT NULL,
            changed INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (list_id, hash, name)
        );
        CREATE TABLE ack_outbox (
            seq INTEGER PRIMARY KEY,
            list_id TEXT NOT NULL,
            bytes BLOB NOT NULL,
            sig BLOB NOT NULL,
            created TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            last_error TEXT
        );
        CREATE TABLE acks_confirmed (
            seq INTEGER PRIMARY KEY,
            list_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            confirmed TEXT NOT NULL
        );
        CREATE TABLE webhook_outbox (
            id INTEGER PRIMARY KEY,
            idempotency_key TEXT NOT NULL UNIQUE,
            body BLOB NOT NULL,
            created TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            delivered TEXT,
            last_error TEXT
        );
        CREATE TABLE content (
            content_id TEXT NOT NULL,
            hash_type TEXT NOT NULL,
            hash BLOB NOT NULL,
            registered TEXT NOT NULL,
            PRIMARY KEY (hash_type, hash, content_id)
        ) WITHOUT ROWID;
        """
    )


@migrations()
def m002_state_changes(db: sqlite_utils.Database) -> None:
    """Net changes applied since the state blob was last written (see ``commit_update``)."""
    db.executescript(
        """
        CREATE TABLE state_changes (
            list_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            removes BLOB NOT NULL,
            adds BLOB NOT NULL,
            PRIMARY KEY (list_id, seq)
        );
        """
    )


def storage_error(error: sqlite3.Error) -> StorageError | None:
    """The node's disk refusing a write, as a ``StorageError``; None for any other error.

    SQLITE_FULL ("database or disk is full": no space left, or the page limit) and
    SQLITE_IOERR ("disk I/O error": a write the kernel refused, such as one past a
    file size limit, or a failing disk) are faults of the machine, not of the data:
    SQLite rolls the transaction back and the same write succeeds once there is room.
    Anything else (a corrupt file, a bug) is left to propagate.
    """
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == sqlite3.SQLITE_FULL:
        return StorageError(f"disk full: {error}")
    if primary == sqlite3.SQLITE_IOERR:
        return StorageError(f"disk full or failing: {error}")
    return None


STATE_LOG_FRACTION = 16
"""Changes are logged beside the state blob until they reach 1/16 of its size; then
the blob is written whole again and the log cleared."""


@dataclass(frozen=True)
class StoredList:
    """One subscribed list as stored: its trust record and state."""

    list_id: str
    hash_type: str
    trust: ListTrust
    state: ListState


class NodeStore:
    """Typed access to the node's database. One instance per thread."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            # The registry says what content the platform hosts: owner-only, like the keys.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.db = connect(path, timeout=BUSY_TIMEOUT)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        migrations.apply(self.db)

    def close(self) -> None:
        self.db.close()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = list(self.db.query(sql, params))
        return rows[0] if rows else None

    # -- roots ---------------------------------------------------------------------

    def roots(self) -> list[tuple[bytes, bytes]]:
        return [
            (bytes(r["bytes"]), bytes(r["sig"]))
            for r in self.db.query("SELECT bytes, sig FROM roots ORDER BY version")
        ]

    def _save_roots(self, roots: Iterable[tuple[int, bytes, bytes]]) -> None:
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO roots (version, bytes, sig) VALUES (?, ?, ?)", list(roots)
        )

    def save_roots(self, roots: Iterable[tuple[int, bytes, bytes]]) -> None:
        with self.db.atomic():
            self._save_roots(roots)

    # -- lists ---------------------------------------------------------------------

    def stored_list(self, list_id: str, type_name: str) -> StoredList:
        """The list as stored, or an empty one (version 0) if never applied."""
        row = self._one("SELECT * FROM lists WHERE id = ?", [list_id])
        width = hash_type(type_name).length
        if row is None:
            return StoredList(list_id, type_name, ListTrust(list_id), ListState(width))
        return StoredList(
            list_id,
            row["hash_type"],
            ListTrust.from_dict(json.loads(row["trust"])),
            self._state(list_id, width, bytes(row["state"])),
        )

    def _state(self, list_id: str, width: int, blob: bytes) -> ListState:
        """The stored blob with the logged changes replayed in order.

        A change that does not apply (a damaged log) leaves the blob's state as it
        is: its digest then differs from the trust record, and the list is treated
        as damaged and repaired from a snapshot, as a damaged blob is.
        """
        state = ListState(width, blob)
        changes = self.db.query(
            "SELECT removes, adds FROM state_changes WHERE list_id = ? ORDER BY seq", [list_id]
        )
        try:
            for change in changes:
                state = state.apply(
                    _split(bytes(change["removes"]), width), _split(bytes(change["adds"]), width)
                )
        except ProtocolError:
            return ListState(width, blob)
        return state

    def _log_changes(
        self, list_id: str, state: ListState, changes: tuple[Sequence[bytes], Sequence[bytes]]
    ) -> bool:
        """Append ``changes`` to the list's log if it stays small; False to write the blob."""
        removes, adds = changes
        size = (len(removes) + len(adds)) * state.width
        logged = self._one(
            "SELECT count(*) AS n, coalesce(sum(length(removes) + length(adds)), 0) AS bytes, "
            "coalesce(max(seq), 0) AS last FROM state_changes WHERE list_id = ?",
            [list_id],
        )
        if logged is None or self._one("SELECT 1 FROM lists WHERE id = ?", [list_id]) is None:
            return False
        if (logged["bytes"] + size) * STATE_LOG_FRACTION > len(state) * state.width:
            return False
        self.db.execute(
            "INSERT INTO state_changes (list_id, seq, removes, adds) VALUES (?, ?, ?, ?)",
            [list_id, logged["last"] + 1, b"".join(sorted(removes)), b"".join(sorted(adds))],
        )
        return True

    def applied_version(self, list_id: str) -> int:
        """The version of ``list_id`` the node enforces (0 if none was ever applied)."""
        row = self._one("SELECT trust FROM lists WHERE id = ?", [list_id])
        return 0 if row is None else ListTrust.from_dict(json.loads(row["trust"])).version

    def list_ids(self) -> list[str]:
        return [r["id"] for r in self.db.query("SELECT id FROM lists ORDER BY id")]

    def commit_update(
        self,
        list_id: str,
        type_name: str,
        state: ListState | None,
        trust: ListTrust,
        roots: Iterable[tuple[int, bytes, bytes]],
        now: datetime,
        changes: tuple[Sequence[bytes], Sequence[bytes]] | None = None,
    ) -> None:
        """Store a verified update: new roots, trust record and (if changed) state, atomically.

        ``state`` None keeps the stored state (a checkpoint that only refreshed the time).
        ``changes`` (removed, added) are the net changes from the stored state to
        ``state``: while the logged changes stay under ``1/STATE_LOG_FRACTION`` of the
        state they are appended to ``state_changes`` instead of writing the whole
        blob again (10k changes to a 1M-hash list: 320 KB instead of 32 MB under
        ``synchronous=FULL``). Either way the trust record and the state it names
        change in one transaction.
        """
        stamp = format_time(now)
        with self.db.atomic():
            self._save_roots(roots)
            if state is None:
                updated = self.db.execute(
                    "UPDATE lists SET trust = ?, last_attempt = ?, last_success = ?, "
                    "last_error = NULL WHERE id = ?",
                    [json.dumps(trust.to_dict()), stamp, stamp, list_id],
                ).rowcount
                if updated == 1:
                    return
                state = ListState(hash_type(type_name).length)
            digest = state.digest()
            if digest != trust.state:
                raise ValueError("refusing to store a state whose digest is not the trusted one")
            if changes is not None and self._log_changes(list_id, state, changes):
                self.db.execute(
                    "UPDATE lists SET trust = ?, count = ?, sha256 = ?, applied = ?, "
                    "last_attempt = ?, last_success = ?, last_error = NULL WHERE id = ?",
                    [
                        json.dumps(trust.to_dict()),
                        digest.count,
                        digest.sha256,
                        stamp,
                        stamp,
                        stamp,
                        list_id,
                    ],
                )
                return
            self.db.execute("DELETE FROM state_changes WHERE list_id = ?", [list_id])
            self.db.execute(
                "INSERT INTO lists (id, hash_type, trust, state, count, sha256, applied, "
                "last_attempt, last_success) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET trust = excluded.trust, state = excluded.state, "
                "count = excluded.count, sha256 = excluded.sha256, applied = excluded.applied, "
                "last_attempt = excluded.last_attempt, last_success = excluded.last_success, "
                "last_error = NULL",
                [
                    list_id,
                    type_name,
                    json.dumps(trust.to_dict()),
                    state.to_bytes(),
                    digest.count,
                    digest.sha256,
                    stamp,
                    stamp,
                    stamp,
                ],
            )

    def record_failure(
        self,
        list_id: str,
        now: datetime,
        error: Exception,
        *,
        evidence: bool,
        data: bytes | None = None,
        other: bytes | None = None,
    ) -> None:
        """Note a failed attempt; keep evidence for protocol rejections."""
        stamp = format_time(now)
        message = f"{type(error).__name__}: {error}"
        with self.db.atomic():
            self.db.execute(
                "UPDATE lists SET last_attempt = ?, last_error = ? WHERE id = ?",
                [stamp, message, list_id],
            )
            if evidence:
                self.db.table("evidence").insert(
                    {
                        "list_id": list_id,
                        "kind": type(error).__name__,
                        "message": str(error),
                        "bytes": data,
                        "other": other,
                        "created": stamp,
                    }
                )

    def add_evidence(
        self, list_id: str, kind: str, message: str, now: datetime, data: bytes | None = None
    ) -> None:
        """Keep evidence that does not come with a failed update (e.g. a bad mirror)."""
        with self.db.atomic():
            self.db.table("evidence").insert(
                {
                    "list_id": list_id,
                    "kind": kind,
                    "message": message,
                    "bytes": data,
                    "other": None,
                    "created": format_time(now),
                }
            )

    def evidence(self) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in r.items() if k not in ("bytes", "other")}
            | {"has_bytes": r["bytes"] is not None}
            for r in self.db.query("SELECT * FROM evidence ORDER BY id")
        ]

    def list_rows(self) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in r.items() if k != "state"}
            for r in self.db.query("SELECT * FROM lists ORDER BY id")
        ]

    def verify(self) -> list[tuple[str, bool, StateDigest, StateDigest]]:
        """Recompute every stored state's digest against its trust record."""
        out = []
        for row in self.db.query("SELECT id, hash_type, trust, state FROM lists ORDER BY id"):
            trust = ListTrust.from_dict(json.loads(row["trust"]))
            width = hash_type(row["hash_type"]).length
            actual = self._state(row["id"], width, bytes(row["state"])).digest()
            out.append((row["id"], actual == trust.state, actual, trust.state))
        return out

    def list_versions(self) -> dict[str, int]:
        """The applied version of every stored list (another process may have applied one)."""
        return {
            row["id"]: json.loads(row["trust"])["version"]
            for row in self.db.query("SELECT id, trust FROM lists")
        }

    # -- transactions ----------------------------------------------------------------

    @contextlib.contextmanager
    def atomic(self) -> Generator[None, None, None]:
        """One write transaction (``BEGIN IMMEDIATE``); nested blocks are savepoints.

        The store's methods below that write take part in an enclosing block, so a
        caller makes several of them one transaction by wrapping them in this.
        """
        with self.db.atomic():
            yield

    # -- content registry ------------------------------------------------------------

    def register_content(
        self, content_id: str, hashes: Iterable[tuple[str, bytes]], now: datetime
    ) -> None:
        """Register hashes (type, bytes) of content the platform hosts; known ones stay."""
        stamp = format_time(now)
        with self.db.atomic():
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO content (content_id, hash_type, hash, registered) "
                "VALUES (?, ?, ?, ?)",
                [(content_id, type_name, h, stamp) for type_name, h in hashes],
            )

    def registered_content(self, type_name: str) -> list[tuple[str, bytes]]:
        """Every registered (content id, hash) of one hash type."""
        return [
            (r["content_id"], bytes(r["hash"]))
            for r in self.db.query(
                "SELECT content_id, hash FROM content WHERE hash_type = ?", [type_name]
            )
        ]

    # -- match events and counters ---------------------------------------------------

    def record_match(
        self,
        match_id: str,
        list_id: str,
        listed: bytes,
        query: bytes,
        distance: int,
        version: int,
        source: str,
        content_id: str | None,
        now: datetime,
    ) -> None:
        """Store one match event (its counters are the caller's: ``bump_counter``)."""
        self.db.table("match_events").insert(
            {
                "id": match_id,
                "list_id": list_id,
                "hash": listed,
                "query": query,
                "distance": distance,
                "version": version,
                "source": source,
                "content_id": content_id,
                "created": format_time(now),
            }
        )

    def match_event(self, match_id: str) -> dict[str, Any] | None:
        """One match event as stored, or None."""
        return self._one("SELECT * FROM match_events WHERE id = ?", [match_id])

    def match_events(self, limit: int, *, open_only: bool = False) -> list[dict[str, Any]]:
        """The newest match events first; with ``open_only`` those awaiting an outcome."""
        where = "WHERE outcome IS NULL " if open_only else ""
        return list(
            self.db.query(
                f"SELECT * FROM match_events {where}ORDER BY created DESC LIMIT ?",  # noqa: S608
                [limit],
            )
        )

    def set_outcome(self, match_id: str, outcome: str, now: datetime) -> None:
        """Record what the platform did about a match."""
        self.db.execute(
            "UPDATE match_events SET outcome = ?, outcome_at = ? WHERE id = ?",
            [outcome, format_time(now), match_id],
        )

    def bump_counter(self, list_id: str, hex_hash: str, name: str, by: int = 1) -> None:
        """Add ``by`` to a cumulative counter (``hex_hash`` '' for the list's total)."""
        self.db.execute(
            "INSERT INTO counters (list_id, hash, name, value, changed) VALUES (?, ?, ?, ?, 1) "
            "ON CONFLICT(list_id, hash, name) DO UPDATE SET value = value + ?, changed = 1",
            [list_id, hex_hash, name, by, by],
        )

    def counters(self, list_id: str) -> list[dict[str, Any]]:
        """The list's counters: rows of ``hash`` ('' for the totals), ``name``, ``value``
        and ``changed``."""
        return list(
            self.db.query(
                "SELECT hash, name, value, changed FROM counters WHERE list_id = ?", [list_id]
            )
        )

    def counters_sent(self, list_id: str, hex_hashes: Iterable[str]) -> None:
        """Per-hash counters an ack now carries: no longer changed since the last ack."""
        self.db.conn.executemany(
            "UPDATE counters SET changed = 0 WHERE list_id = ? AND hash = ?",
            [(list_id, h) for h in hex_hashes],
        )

    # -- ack outbox ------------------------------------------------------------------

    def next_ack_seq(self) -> int:
        """One above every ``seq`` queued or confirmed."""
        row = self._one(
            "SELECT max((SELECT coalesce(max(seq), 0) FROM ack_outbox), "
            "(SELECT coalesce(max(seq), 0) FROM acks_confirmed)) AS last"
        )
        return 1 + (row["last"] if row else 0)

    def queue_ack(
        self, seq: int, list_id: str, data: bytes, sig: bytes, created: str, now: datetime
    ) -> None:
        """Queue signed ack bytes, due at once."""
        self.db.table("ack_outbox").insert(
            {
                "seq": seq,
                "list_id": list_id,
                "bytes": data,
                "sig": sig,
                "created": created,
                "next_attempt": format_time(now),
            }
        )

    def queued_acks(self) -> list[dict[str, Any]]:
        """Every queued ack in ``seq`` order."""
        return list(self.db.query("SELECT * FROM ack_outbox ORDER BY seq"))

    def queued_ack(self, seq: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM ack_outbox WHERE seq = ?", [seq])

    def outbox_due(self, now: datetime) -> list[dict[str, Any]]:
        """The acks to send now, in ``seq`` order.

        Acks go strictly in order, since the hub refuses a ``seq`` below one it has:
        while the oldest waits out its back-off, none is due (the rest follow it).
        """
        rows = self.queued_acks()
        if rows and rows[0]["next_attempt"] > format_time(now):
            return []
        return rows

    def ack_confirmed(self, seq: int, list_id: str, version: int, now: datetime) -> None:
        """The hub accepted ack ``seq``: remember it as confirmed, free the queue."""
        self.db.table("acks_confirmed").insert(
            {"seq": seq, "list_id": list_id, "version": version, "confirmed": format_time(now)},
            replace=True,
        )
        self.drop_ack(seq)

    def ack_retry_later(self, seq: int, attempts: int, next_attempt: datetime, error: str) -> None:
        self.db.execute(
            "UPDATE ack_outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE seq = ?",
            [attempts, format_time(next_attempt), error, seq],
        )

    def drop_ack(self, seq: int) -> None:
        self.db.execute("DELETE FROM ack_outbox WHERE seq = ?", [seq])

    def drop_all_acks(self) -> None:
        self.db.execute("DELETE FROM ack_outbox")

    def acks_pending(self) -> int:
        return self._count("SELECT count(*) AS n FROM ack_outbox")

    # -- webhook outbox --------------------------------------------------------------

    def queue_webhook(self, key: str, body: bytes, now: datetime) -> int:
        """Queue a webhook call once per idempotency key; 1 if queued, 0 if already known."""
        stamp = format_time(now)
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO webhook_outbox (idempotency_key, body, created, next_attempt) "
            "VALUES (?, ?, ?, ?)",
            [key, body, stamp, stamp],
        )
        return int(cursor.rowcount)

    def webhooks_due(self, now: datetime) -> list[dict[str, Any]]:
        """Undelivered webhook calls whose back-off has passed, oldest first."""
        return list(
            self.db.query(
                "SELECT * FROM webhook_outbox WHERE delivered IS NULL AND next_attempt <= ? "
                "ORDER BY id",
                [format_time(now)],
            )
        )

    def webhook_delivered(self, row_id: int, now: datetime) -> None:
        self.db.execute(
            "UPDATE webhook_outbox SET delivered = ?, last_error = NULL WHERE id = ?",
            [format_time(now), row_id],
        )

    def webhook_attempts(self, row_id: int) -> int:
        row = self._one("SELECT attempts FROM webhook_outbox WHERE id = ?", [row_id])
        if row is None:
            raise LookupError(f"no queued webhook {row_id}")
        return int(row["attempts"])

    def webhook_retry_later(
        self, row_id: int, attempts: int, next_attempt: datetime, error: str
    ) -> None:
        self.db.execute(
            "UPDATE webhook_outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?",
            [attempts, format_time(next_attempt), error, row_id],
        )

    def webhooks_pending(self) -> int:
        return self._count("SELECT count(*) AS n FROM webhook_outbox WHERE delivered IS NULL")

    def matches_awaiting_outcome(self) -> int:
        return self._count("SELECT count(*) AS n FROM match_events WHERE outcome IS NULL")

    def _count(self, sql: str) -> int:
        row = self._one(sql)
        return 0 if row is None else int(row["n"])


def _split(data: bytes, width: int) -> list[bytes]:
    return [data[i : i + width] for i in range(0, len(data), width)]
