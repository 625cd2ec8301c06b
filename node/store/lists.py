"""Roots, list states and evidence: what a sync reads and writes.

- ``roots``: every verified root's bytes and signature, so each run re-verifies
  the chain from the pinned root instead of trusting a cached parse.
- ``lists``: per subscribed list, the ``ListTrust`` record (JSON) and the list's
  state as one blob in snapshot form (sorted hashes): the digest is one SHA-256
  pass and ``verify`` can recompute it at any time. State and trust change
  together in one transaction, or not at all.
- ``state_changes``: small updates logged beside the blob instead of rewriting
  it (ADR 13).
- ``evidence``: every rejected update: which list, the error class and message,
  and the bytes that caused it where there are some (both notes of an
  equivocation).

``NodeStore`` is a ``ListTables``: ``node.sync.Syncer`` and the bridge's in-memory
``CheckpointStore`` offer the same methods, so a sync runs against either.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from node.errors import describe
from node.store.tables import Tables
from protocol import ListState, ListTrust, ProtocolError, StateDigest, format_time
from protocol.lists import hash_type

__all__ = ["STATE_LOG_FRACTION", "ListTables", "StoredList"]

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


class ListTables(Tables):
    """The roots, lists, their logged changes and the evidence of rejected updates."""

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

    # -- reading lists ---------------------------------------------------------------

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

    def applied_version(self, list_id: str) -> int:
        """The version of ``list_id`` the node enforces (0 if none was ever applied)."""
        row = self._one("SELECT trust FROM lists WHERE id = ?", [list_id])
        return 0 if row is None else ListTrust.from_dict(json.loads(row["trust"])).version

    def list_ids(self) -> list[str]:
        return [r["id"] for r in self.db.query("SELECT id FROM lists ORDER BY id")]

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

    # -- committing an update ----------------------------------------------------------

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
                if self._refresh_trust(list_id, trust, stamp):
                    return
                state = ListState(hash_type(type_name).length)  # never stored: store it empty
            digest = state.digest()
            if digest != trust.state:
                raise ValueError("refusing to store a state whose digest is not the trusted one")
            if changes is not None and self._log_changes(list_id, state, changes):
                self._update_logged(list_id, trust, digest, stamp)
            else:
                self._write_state(list_id, type_name, trust, state, digest, stamp)

    def _refresh_trust(self, list_id: str, trust: ListTrust, stamp: str) -> bool:
        """A new trust record for the stored state; False if the list was never stored."""
        updated = self.db.execute(
            "UPDATE lists SET trust = ?, last_attempt = ?, last_success = ?, "
            "last_error = NULL WHERE id = ?",
            [json.dumps(trust.to_dict()), stamp, stamp, list_id],
        ).rowcount
        return bool(updated == 1)

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

    def _update_logged(
        self, list_id: str, trust: ListTrust, digest: StateDigest, stamp: str
    ) -> None:
        """The trust record of a state whose changes went to the log: the blob stays."""
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

    def _write_state(
        self,
        list_id: str,
        type_name: str,
        trust: ListTrust,
        state: ListState,
        digest: StateDigest,
        stamp: str,
    ) -> None:
        """The whole state as one blob with its trust record; the log it replaces goes."""
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

    # -- failures and evidence ---------------------------------------------------------

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
        message = describe(error)
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


def _split(data: bytes, width: int) -> list[bytes]:
    return [data[i : i + width] for i in range(0, len(data), width)]
