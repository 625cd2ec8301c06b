"""Roots, list states and evidence: what a sync reads and writes.

- ``roots``: every verified root's bytes and signature, so each run re-verifies
  the chain from the pinned root instead of trusting a cached parse.
- ``lists``: per subscribed list, the ``ListTrust`` record (JSON), its ``format``
  and the list's state as one blob in snapshot form (sorted hashes, or sorted
  entry records: ``node.store.records``): the digest is one SHA-256 pass and
  ``verify`` can recompute it at any time. State and trust change together in
  one transaction, or not at all.
- ``state_changes``: small updates logged beside the blob instead of rewriting
  it (ADR 13), hashes or record lines as the list holds.
- ``frames``: a ``vpdq`` list's frames per record (``node.store.frames``), changed
  with the records in the same transaction.
- ``evidence``: every rejected update: which list, the error class and message,
  and the bytes that caused it where there are some (both notes of an
  equivocation).

``NodeStore`` is a ``ListTables``: the follower's store (``follow.store.FollowerStore``,
whose ``StoredList`` and ``StoredEntries`` it returns), as the bridge's in-memory
``CheckpointStore`` is, so ``follow.Syncer`` runs against either.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from follow.errors import describe
from follow.outcome import hash_changes
from follow.store import StoredEntries, StoredList
from node.store import frames as frame_rows
from node.store import opinions as summary_rows
from node.store import record_table
from node.store.records import find_record, join_lines, replay, split_lines
from node.store.tables import Tables
from protocol import (
    Entry,
    EntryState,
    ListState,
    ListTrust,
    OpinionSummary,
    ProtocolError,
    StateDigest,
    format_time,
)
from protocol.lists import HashType, hash_type
from protocol.video import Frame

__all__ = ["STATE_LOG_FRACTION", "ListTables", "State"]

STATE_LOG_FRACTION = 16
"""Changes are logged beside the state blob until they reach 1/16 of its size; then
the blob is written whole again and the log cleared."""


State: TypeAlias = ListState | EntryState
"""A list's state: bare hashes (``hashes`` format) or entry records (``entries``)."""


class ListTables(Tables):
    """The roots, lists, their logged changes and the evidence of rejected updates."""

    # -- roots ---------------------------------------------------------------------

    def roots(self) -> list[tuple[bytes, bytes]]:
        return [
            (bytes(r["bytes"]), bytes(r["sig"]))
            for r in self.db.query(
                "SELECT bytes, sig FROM roots WHERE hub = ? ORDER BY version", [self.hub]
            )
        ]

    def _save_roots(self, roots: Iterable[tuple[int, bytes, bytes]]) -> None:
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO roots (hub, version, bytes, sig) VALUES (?, ?, ?, ?)",
            [(self.hub, *root) for root in roots],
        )

    def save_roots(self, roots: Iterable[tuple[int, bytes, bytes]]) -> None:
        with self.db.atomic():
            self._save_roots(roots)

    # -- reading lists ---------------------------------------------------------------

    def stored_list(self, list_id: str, type_name: str) -> StoredList | StoredEntries:
        """The list as stored (``StoredEntries`` for a list stored in the ``entries``
        format), or an empty ``StoredList`` (version 0) if never applied."""
        row = self._one("SELECT * FROM lists WHERE hub = ? AND id = ?", [self.hub, list_id])
        width = hash_type(type_name).length
        if row is None:
            return StoredList(list_id, type_name, ListTrust(list_id), ListState(width))
        trust = ListTrust.from_dict(json.loads(row["trust"]))
        state = self._stored_state(list_id, row["hash_type"], row["format"], bytes(row["state"]))
        if isinstance(state, EntryState):
            return StoredEntries(list_id, row["hash_type"], trust, state)
        return StoredList(list_id, row["hash_type"], trust, state)

    def _stored_state(self, list_id: str, type_name: str, list_format: str, blob: bytes) -> State:
        if list_format == "entries":
            return self._entry_state(list_id, type_name, blob)
        return self._state(list_id, hash_type(type_name).length, blob)

    def _entry_state(self, list_id: str, type_name: str, blob: bytes) -> EntryState:
        """An ``entries`` list's blob with its logged changes replayed (the blob's state
        when the log does not apply: the list is then damaged, as ``_state`` says)."""
        kind = hash_type(type_name)
        changes = [
            (bytes(c["removes"]), bytes(c["adds"]))
            for c in self.db.query(
                "SELECT removes, adds FROM state_changes "
                "WHERE hub = ? AND list_id = ? ORDER BY seq",
                [self.hub, list_id],
            )
        ]
        state = replay(kind, blob, changes)
        return EntryState(kind, split_lines(blob)) if state is None else state

    def entry(self, list_id: str, h: bytes) -> Entry | None:
        """The current record of hash ``h`` in the ``entries`` list ``list_id``, or None."""
        return self.entries(list_id, [h]).get(h)

    def entries(self, list_id: str, hashes: Sequence[bytes]) -> dict[bytes, Entry]:
        """The current records of ``hashes`` in the ``entries`` list ``list_id``, by hash
        (a hash without one is left out; the caller knows the list's format: a
        ``hashes`` list is not asked).

        Read from the list's rows keyed by hash (``node.store.record_table``), one
        probe each, when they hold the trusted state; rows missing or stale are first
        rebuilt from the stored state (outside any enclosing transaction: inside one,
        the state is read instead, as when the stored state itself is damaged). A
        hash the rows lack is looked for in the state as well, so a row lost from
        the table never hides a listed record.
        """
        wanted = list(dict.fromkeys(hashes))
        if not wanted:
            return {}
        found = self._entries_from_rows(list_id, wanted)
        if isinstance(found, dict) and len(found) < len(wanted):
            # A match asks for hashes its index holds, so a miss is rare (an update
            # removed the hash since): the state is asked too, and if it holds one
            # the rows lost it.
            lost = self._entries_from_state(list_id, [h for h in wanted if h not in found])
            if not lost:
                return found
            found = _STALE
        if found is _STALE and not self.db.conn.in_transaction:
            self._rebuild_rows(list_id)
            found = self._entries_from_rows(list_id, wanted)
        if isinstance(found, dict) and len(found) == len(wanted):
            return found
        return self._entries_from_state(list_id, wanted)

    def _entries_from_rows(self, list_id: str, hashes: Sequence[bytes]) -> _RowsAnswer:
        """The records from the rows; ``_STALE`` when the rows are not of the trusted
        state (or one of them does not parse), ``_DAMAGED`` when they are of the
        stored state but that state is not the trusted one."""
        with self.snapshot():
            kind = self._rows_kind(list_id)
            if kind is None:
                return {}
            if isinstance(kind, _RowsUnusable):
                return kind
            lines = record_table.lookup(self.db, self.hub, list_id, kind, hashes)
        try:
            return {h: Entry.from_line(line, kind) for h, line in lines.items()}
        except ProtocolError:
            return _STALE

    def _rows_kind(self, list_id: str) -> HashType | _RowsUnusable | None:
        """The list's hash type when its rows hold its trusted state (None: no such
        list), else why they cannot be read."""
        # Only columns stored before the state blob: reading one after it would walk
        # the blob's overflow pages.
        row = self._one(
            "SELECT hash_type, trust FROM lists WHERE hub = ? AND id = ?", [self.hub, list_id]
        )
        if row is None:
            return None
        trusted = ListTrust.from_dict(json.loads(row["trust"])).state
        held = record_table.rows_state(self.db, self.hub, list_id)
        if held is None or held.trusted != trusted.sha256:
            return _STALE
        if held.held != trusted:
            return _DAMAGED
        return hash_type(row["hash_type"])

    def entries_expiring(self, list_id: str, now: datetime, within: timedelta) -> int:
        """How many entries of the ``entries`` list ``list_id`` stop matching after
        ``now`` and by ``now + within`` (those already expired are not counted).

        Counted over the rows (a scan of their ends, no record parsed); over the
        stored state when the rows cannot be trusted and cannot be rebuilt here."""
        start, end = format_time(now).encode(), format_time(now + within).encode()
        with self.snapshot():
            kind = self._rows_kind(list_id)
            if kind is None:
                return 0
            if not isinstance(kind, _RowsUnusable):
                return record_table.expiring(self.db, self.hub, list_id, start, end)
        if kind is _STALE and not self.db.conn.in_transaction:
            self._rebuild_rows(list_id)
            with self.snapshot():
                if isinstance(self._rows_kind(list_id), HashType):
                    return record_table.expiring(self.db, self.hub, list_id, start, end)
        row = self._one(
            "SELECT hash_type, format, state FROM lists WHERE hub = ? AND id = ?",
            [self.hub, list_id],
        )
        if row is None or row["format"] != "entries":
            return 0
        state = self._entry_state(list_id, row["hash_type"], bytes(row["state"]))
        return sum(start < line[-20:] <= end for line in state.lines())

    def _rebuild_rows(self, list_id: str) -> None:
        """The list's rows built again from its stored state (blob and log)."""
        with self.db.atomic():
            row = self._one(
                "SELECT hash_type, format, trust, state FROM lists WHERE hub = ? AND id = ?",
                [self.hub, list_id],
            )
            if row is None or row["format"] != "entries":
                return
            trust = ListTrust.from_dict(json.loads(row["trust"]))
            state = self._entry_state(list_id, row["hash_type"], bytes(row["state"]))
            record_table.write_all(
                self.db, self.hub, list_id, state.kind, state.lines(), trust.state, state.digest()
            )

    def _entries_from_state(self, list_id: str, hashes: Sequence[bytes]) -> dict[bytes, Entry]:
        """The records read from the stored state without loading it: the logged
        changes that mention a hash, newest first, then a binary search of the blob,
        all in one read transaction. The blob is read through one handle for all
        ``hashes``: SQLite walks a large blob's overflow pages once per handle (tens
        of milliseconds for 1M records, 100 MB), so a request's hits cost one walk."""
        found: dict[bytes, Entry] = {}
        with self.snapshot():
            row = self._one(
                "SELECT rowid, hash_type FROM lists WHERE hub = ? AND id = ?", [self.hub, list_id]
            )
            if row is None:
                return found
            kind = hash_type(row["hash_type"])
            in_blob = []
            logged_records = self._logged_records(list_id, hashes)
            for h in hashes:
                logged = logged_records.get(h)
                if logged is None:
                    in_blob.append(h)
                elif logged:
                    found[h] = Entry.from_line(logged, kind)
            if not in_blob:
                return found
            with self.db.conn.blobopen("lists", "state", row["rowid"], readonly=True) as blob:

                def read(offset: int, length: int) -> bytes:
                    blob.seek(offset)
                    return blob.read(length)

                for h in in_blob:
                    line = find_record(read, len(blob), kind, h)
                    if line is not None:
                        found[h] = Entry.from_line(line, kind)
        return found

    def _logged_records(self, list_id: str, hashes: Sequence[bytes]) -> dict[bytes, bytes]:
        """What the newest logged change that mentions each of ``hashes`` says of it:
        its record line as added, ``b""`` if it was removed; a hash no change mentions
        is left out. The log is read once, oldest change first, so a later change
        overwrites an earlier one (within a change the removals come first, so an
        addition is the newer)."""
        wanted = {h.hex().encode(): h for h in hashes}
        width = len(next(iter(wanted), b""))
        said: dict[bytes, bytes] = {}
        if not wanted:
            return said
        for change in self.db.query(
            "SELECT removes, adds FROM state_changes WHERE hub = ? AND list_id = ? ORDER BY seq",
            [self.hub, list_id],
        ):
            for line in bytes(change["removes"]).split(b"\n"):
                h = wanted.get(line[:width])
                if h is not None and line[width : width + 1] == b" ":
                    said[h] = b""
            for line in bytes(change["adds"]).split(b"\n"):
                h = wanted.get(line[:width])
                if h is not None and line[width : width + 1] == b" ":
                    said[h] = line
        return said

    def _state(self, list_id: str, width: int, blob: bytes) -> ListState:
        """The stored blob with the logged changes replayed in order.

        A change that does not apply (a damaged log) leaves the blob's state as it
        is: its digest then differs from the trust record, and the list is treated
        as damaged and repaired from a snapshot, as a damaged blob is.
        """
        state = ListState(width, blob)
        changes = self.db.query(
            "SELECT removes, adds FROM state_changes WHERE hub = ? AND list_id = ? ORDER BY seq",
            [self.hub, list_id],
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
        row = self._one("SELECT trust FROM lists WHERE hub = ? AND id = ?", [self.hub, list_id])
        return 0 if row is None else ListTrust.from_dict(json.loads(row["trust"])).version

    def list_ids(self) -> list[str]:
        return [
            r["id"]
            for r in self.db.query("SELECT id FROM lists WHERE hub = ? ORDER BY id", [self.hub])
        ]

    def list_rows(self) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in r.items() if k != "state"}
            for r in self.db.query("SELECT * FROM lists WHERE hub = ? ORDER BY id", [self.hub])
        ]

    def verify(self) -> list[tuple[str, bool, StateDigest, StateDigest]]:
        """Recompute every stored state's digest against its trust record; an
        ``entries`` list's rows keyed by hash are compared with its state and rebuilt
        from it when they differ."""
        out = []
        for row in list(
            self.db.query(
                "SELECT id, hash_type, format, trust, state FROM lists WHERE hub = ? ORDER BY id",
                [self.hub],
            )
        ):
            trust = ListTrust.from_dict(json.loads(row["trust"]))
            state = self._stored_state(
                row["id"], row["hash_type"], row["format"], bytes(row["state"])
            )
            actual = state.digest()
            out.append((row["id"], actual == trust.state, actual, trust.state))
            if isinstance(state, EntryState):
                record_table.check(
                    self.db, self.hub, row["id"], state.kind, state.lines(), trust.state, actual
                )
        return out

    def list_versions(self) -> dict[str, int]:
        """The applied version of every stored list (another process may have applied one)."""
        return {
            row["id"]: json.loads(row["trust"])["version"]
            for row in self.db.query("SELECT id, trust FROM lists WHERE hub = ?", [self.hub])
        }

    # -- committing an update ----------------------------------------------------------

    def commit_update(
        self,
        list_id: str,
        type_name: str,
        state: State | None,
        trust: ListTrust,
        roots: Iterable[tuple[int, bytes, bytes]],
        now: datetime,
        changes: tuple[Sequence[bytes], Sequence[bytes]] | None = None,
        opinions: OpinionSummary | None = None,
        frames: Mapping[bytes, bytes] | None = None,
    ) -> None:
        """Store a verified update: new roots, trust record and (if changed) state, atomically.

        ``state`` None keeps the stored state (a checkpoint that only refreshed the time).
        ``changes`` (removed, added) are the net changes from the stored state to
        ``state``: hashes, or record lines for an ``EntryState``. While the logged
        changes stay under ``1/STATE_LOG_FRACTION`` of the state they are appended to
        ``state_changes`` instead of writing the whole blob again (10k changes to a
        1M-hash list: 320 KB instead of 32 MB under ``synchronous=FULL``). Either way
        the trust record and the state it names change in one transaction.

        For an ``EntryState``, ``opinions`` is the verified opinion summary of the
        newest version applied: the list's ``summary_opinions`` rows become its; without
        one, the rows of entries the state no longer holds are dropped
        (``node.store.opinions``). Same transaction.

        For a list of a frames type (``vpdq``), ``frames`` are the verified frames
        files of the records the update adds, by record hash; the frames of the
        records it removes are dropped. When ``changes`` is None (a rebuild), the
        frames held of records that still stand are kept and those given added for
        the others (the follower fetched only what ``frames_held`` said was missing);
        the rest go (``node.store.frames``). Same transaction.
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
            before = self._trusted_state(list_id)
            if changes is not None and self._log_changes(list_id, state, changes):
                self._update_logged(list_id, trust, digest, stamp)
            else:
                self._write_state(list_id, type_name, trust, state, digest, stamp)
            if isinstance(state, EntryState):
                self._update_rows(list_id, state, changes, before, digest)
                if opinions is not None:
                    summary_rows.replace_summary(self.db, self.hub, opinions)
                else:
                    summary_rows.keep_held(self.db, self.hub, list_id, state.entry_ids)
            else:
                record_table.drop(self.db, self.hub, list_id)
            self._update_frames(list_id, state, changes, frames)

    def _update_frames(
        self,
        list_id: str,
        state: State,
        changes: tuple[Sequence[bytes], Sequence[bytes]] | None,
        frames: Mapping[bytes, bytes] | None,
    ) -> None:
        """The list's frames rows brought to ``state``'s records: only the frames of
        records that stand are ever kept, so a frames file given for a record the
        state does not hold is not."""
        if not isinstance(state, EntryState) or not state.kind.frames:
            frame_rows.drop(self.db, self.hub, list_id)
            return
        given = frames or {}
        if changes is None:
            # A rebuild: the frames held of records that still stand stay (the follower
            # fetched only the others), the rest go.
            standing = set(_split(state.hashes(), state.kind.length))
            held = frame_rows.held_hashes(self.db, self.hub, list_id)
            frame_rows.forget(self.db, self.hub, list_id, [h for h in held if h not in standing])
            frame_rows.keep(
                self.db, self.hub, list_id, {h: d for h, d in given.items() if h in standing}
            )
            return
        removed, added = hash_changes(state.kind.length, list(changes[0]), list(changes[1]))
        frame_rows.forget(self.db, self.hub, list_id, removed)
        new = set(added)
        frame_rows.keep(self.db, self.hub, list_id, {h: d for h, d in given.items() if h in new})

    def frames_held(self, list_id: str, hashes: Sequence[bytes]) -> frozenset[bytes]:
        """Which of ``hashes`` the list holds the frames of (``follow.FollowerStore``)."""
        return frozenset(frame_rows.held_among(self.db, self.hub, list_id, hashes))

    def frame_hashes(self, list_id: str) -> list[bytes]:
        """The record hashes of ``list_id`` whose frames the store holds, in order."""
        return frame_rows.held_hashes(self.db, self.hub, list_id)

    def standing_frames(self, list_id: str, state: EntryState) -> dict[Entry, Sequence[Frame]]:
        """The frames of each record standing in ``state`` (the list's stored state),
        by its entry: what a video index of the list is built from."""
        with self.snapshot():
            return frame_rows.standing_frames(self.db, self.hub, list_id, state)

    def listed_frames(self, list_id: str, hashes: Iterable[bytes]) -> dict[bytes, bytes]:
        """The frames files the list holds of some of its records (those an update
        added), by record hash: what the registry's videos are matched against."""
        return frame_rows.frames_of(self.db, self.hub, list_id, hashes)

    def _trusted_state(self, list_id: str) -> StateDigest | None:
        row = self._one("SELECT trust FROM lists WHERE hub = ? AND id = ?", [self.hub, list_id])
        return None if row is None else ListTrust.from_dict(json.loads(row["trust"])).state

    def _update_rows(
        self,
        list_id: str,
        state: EntryState,
        changes: tuple[Sequence[bytes], Sequence[bytes]] | None,
        before: StateDigest | None,
        digest: StateDigest,
    ) -> None:
        """The list's rows brought to ``state`` in the same transaction: by the net
        ``changes`` when the rows held the state before them (whether the changes
        were logged or the blob written whole), else written whole from ``state``."""
        held = record_table.rows_state(self.db, self.hub, list_id)
        if (
            changes is not None
            and before is not None
            and held == record_table.RowsState(before.sha256, before)
        ):
            record_table.apply_changes(self.db, self.hub, list_id, state.kind, *changes, digest)
        else:
            record_table.write_all(
                self.db, self.hub, list_id, state.kind, state.lines(), digest, digest
            )

    def _refresh_trust(self, list_id: str, trust: ListTrust, stamp: str) -> bool:
        """A new trust record for the stored state; False if the list was never stored."""
        updated = self.db.execute(
            "UPDATE lists SET trust = ?, last_attempt = ?, last_success = ?, "
            "last_error = NULL WHERE hub = ? AND id = ?",
            [json.dumps(trust.to_dict()), stamp, stamp, self.hub, list_id],
        ).rowcount
        return bool(updated == 1)

    def _log_changes(
        self, list_id: str, state: State, changes: tuple[Sequence[bytes], Sequence[bytes]]
    ) -> bool:
        """Append ``changes`` to the list's log if it stays small; False to write the blob."""
        removes, adds = (_blob(state, sorted(side)) for side in changes)
        logged = self._one(
            "SELECT count(*) AS n, coalesce(sum(length(removes) + length(adds)), 0) AS bytes, "
            "coalesce(max(seq), 0) AS last FROM state_changes WHERE hub = ? AND list_id = ?",
            [self.hub, list_id],
        )
        stored = self._one("SELECT format FROM lists WHERE hub = ? AND id = ?", [self.hub, list_id])
        if logged is None or stored is None or stored["format"] != _format(state):
            return False
        if (logged["bytes"] + len(removes) + len(adds)) * STATE_LOG_FRACTION > _size(state):
            return False
        self.db.execute(
            "INSERT INTO state_changes (hub, list_id, seq, removes, adds) VALUES (?, ?, ?, ?, ?)",
            [self.hub, list_id, logged["last"] + 1, removes, adds],
        )
        return True

    def _update_logged(
        self, list_id: str, trust: ListTrust, digest: StateDigest, stamp: str
    ) -> None:
        """The trust record of a state whose changes went to the log: the blob stays."""
        self.db.execute(
            "UPDATE lists SET trust = ?, count = ?, sha256 = ?, applied = ?, "
            "last_attempt = ?, last_success = ?, last_error = NULL WHERE hub = ? AND id = ?",
            [
                json.dumps(trust.to_dict()),
                digest.count,
                digest.sha256,
                stamp,
                stamp,
                stamp,
                self.hub,
                list_id,
            ],
        )

    def _write_state(
        self,
        list_id: str,
        type_name: str,
        trust: ListTrust,
        state: State,
        digest: StateDigest,
        stamp: str,
    ) -> None:
        """The whole state as one blob with its trust record; the log it replaces goes."""
        self.db.execute(
            "DELETE FROM state_changes WHERE hub = ? AND list_id = ?", [self.hub, list_id]
        )
        self.db.execute(
            "INSERT INTO lists (hub, id, hash_type, format, trust, state, count, sha256, "
            "applied, last_attempt, last_success) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(hub, id) DO UPDATE SET format = excluded.format, trust = excluded.trust, "
            "state = excluded.state, count = excluded.count, sha256 = excluded.sha256, "
            "applied = excluded.applied, last_attempt = excluded.last_attempt, "
            "last_success = excluded.last_success, last_error = NULL",
            [
                self.hub,
                list_id,
                type_name,
                _format(state),
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
                "UPDATE lists SET last_attempt = ?, last_error = ? WHERE hub = ? AND id = ?",
                [stamp, message, self.hub, list_id],
            )
            if evidence:
                self.db.table("evidence").insert(
                    {
                        "hub": self.hub,
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
                    "hub": self.hub,
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


class _RowsUnusable(enum.Enum):
    STALE = "stale"
    DAMAGED = "damaged"


_STALE = _RowsUnusable.STALE
"""The rows are missing or not of the trusted state: rebuild them from the state."""
_DAMAGED = _RowsUnusable.DAMAGED
"""The rows are of the stored state, whose digest is not the trusted one: read the
state (as before the rows existed) until a snapshot repairs it."""

_RowsAnswer: TypeAlias = dict[bytes, Entry] | _RowsUnusable


def _format(state: State) -> str:
    return "entries" if isinstance(state, EntryState) else "hashes"


def _size(state: State) -> int:
    """The bytes of the state's blob (counted, not built)."""
    if isinstance(state, EntryState):
        return sum(map(len, state.lines())) + len(state)
    return state.count * state.width


def _blob(state: State, items: Sequence[bytes]) -> bytes:
    """One side of a logged change: hashes end to end, or record lines with their feeds."""
    return join_lines(items) if isinstance(state, EntryState) else b"".join(items)


def _split(data: bytes, width: int) -> list[bytes]:
    return [data[i : i + width] for i in range(0, len(data), width)]
