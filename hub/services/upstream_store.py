"""The follower's store of one upstream hub: what ``follow.Syncer`` verified, kept.

A hub follows an upstream as a node follows its hub (``follow``), into tables of
its own (m014) rather than the node's store, which the hub may not import. It keeps
more than a node does, because what it re-publishes must carry proof of where it
came from (PROTOCOL.md §7.5):

- every verified header of each upstream list (``upstream_headers``), with its leaf
  hash: the inclusion proof of any of them at the trusted size is computed from
  these, so the provenance of a record names the upstream version that added it
  and proves that header is in the upstream's log;
- every record with the version that added it and the one that removed it, and
  why (``upstream_records``): the provenance quotes the line, and an upstream
  removal becomes this hub's retraction with reason ``upstream``.

To know the version that added each record, the follower reads every body and no
snapshot (``Syncer(snapshots=False)``): the bodies of one update are handed over,
version by version, by ``UpstreamSyncer.opinion_summary`` (``note_update``) before
the commit that stores them. Only ``entries`` lists are followed: provenance is entry
metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from follow import StorageError, StoredEntries, StoredList
from hub.services.context import HubContext
from hub.services.frames import Frames
from protocol import (
    EntriesBody,
    EntryState,
    ListState,
    ListTrust,
    OpinionSummary,
    format_time,
)
from protocol.delta import DeltaHeader
from protocol.lists import hash_type
from protocol.merkle import inclusion_proof, leaf_hash, root_from_leaf_hashes
from protocol.video import FRAME_BYTES

__all__ = ["UpstreamProof", "UpstreamStore", "UpstreamVersions"]


@dataclass(frozen=True)
class UpstreamVersions:
    """What one update of an upstream list verified, version by version: the headers
    (bytes) and each version's body, so the commit keeps which version added what."""

    headers: tuple[bytes, ...]
    bodies: tuple[tuple[int, EntriesBody], ...]


@dataclass(frozen=True)
class UpstreamProof:
    """An upstream header and its inclusion in the upstream's log at a trusted size."""

    header: bytes
    size: int
    root: bytes
    proof: tuple[bytes, ...]


def header_version(data: bytes) -> int:
    """The version of a verified header's bytes."""
    return DeltaHeader.from_bytes(data).version


class UpstreamStore:
    """``follow.FollowerStore`` over the ``upstream_*`` tables of one upstream."""

    def __init__(self, ctx: HubContext, upstream: str) -> None:
        self.ctx = ctx
        self.upstream = upstream
        self._pending: dict[str, UpstreamVersions] = {}

    # -- what the follower asks ---------------------------------------------------------

    def roots(self) -> list[tuple[bytes, bytes]]:
        return [
            (bytes(r["bytes"]), bytes(r["sig"]))
            for r in self.ctx.db.query(
                "SELECT bytes, sig FROM upstream_roots WHERE upstream = ? ORDER BY version",
                [self.upstream],
            )
        ]

    def save_roots(self, roots: Iterable[tuple[int, bytes, bytes]]) -> None:
        with self.ctx.db.atomic():
            self._save_roots(roots)

    def _save_roots(self, roots: Iterable[tuple[int, bytes, bytes]]) -> None:
        self.ctx.db.conn.executemany(
            "INSERT OR IGNORE INTO upstream_roots (upstream, version, bytes, sig) "
            "VALUES (?, ?, ?, ?)",
            [(self.upstream, v, data, sig) for v, data, sig in roots],
        )

    def stored_list(self, list_id: str, type_name: str) -> StoredList | StoredEntries:
        row = self._list(list_id)
        kind = hash_type(type_name)
        if row is None:
            return StoredEntries(list_id, type_name, ListTrust(list_id), EntryState(kind))
        trust = ListTrust.from_dict(json.loads(row["trust"]))
        return StoredEntries(list_id, row["hash_type"], trust, self.state(list_id, kind))

    def state(self, list_id: str, kind: Any) -> EntryState:
        """The standing records of ``list_id``, as the upstream's state."""
        lines = sorted(
            bytes(r["line"])
            for r in self.ctx.db.query(
                "SELECT line FROM upstream_records WHERE upstream = ? AND list_id = ? "
                "AND removed_version IS NULL",
                [self.upstream, list_id],
            )
        )
        return EntryState(kind, lines)

    def frames_held(self, list_id: str, hashes: Sequence[bytes]) -> frozenset[bytes]:
        """Which of ``hashes`` the hub holds the frames of, from any list or source:
        frames are kept by their SHA-256, once (``hub.services.frames``)."""
        del list_id  # one table for every list
        return Frames(self.ctx).held(hashes)

    def applied_version(self, list_id: str) -> int:
        row = self._list(list_id)
        return 0 if row is None else int(json.loads(row["trust"])["version"])

    def note_update(self, list_id: str, versions: UpstreamVersions) -> None:
        """What the update of ``list_id`` about to be committed verified (kept until
        its commit: an update that fails before it leaves nothing behind)."""
        self._pending[list_id] = versions

    def commit_update(
        self,
        list_id: str,
        type_name: str,
        state: ListState | EntryState | None,
        trust: ListTrust,
        roots: Iterable[tuple[int, bytes, bytes]],
        now: datetime,
        changes: tuple[Sequence[bytes], Sequence[bytes]] | None = None,
        opinions: OpinionSummary | None = None,
        frames: Mapping[bytes, bytes] | None = None,
    ) -> None:
        """Keep the roots, the trust record, and each version's headers and records, in
        one transaction; the records kept must be ``state``, or nothing is. The frames
        of a ``vpdq`` list's records go to the hub's own (``hub.services.frames``):
        an entry re-published from them publishes its frames file from there."""
        del changes, opinions  # the versions' bodies say more; summaries are not re-published
        versions = self._pending.pop(list_id, None)
        if isinstance(state, ListState):
            raise StorageError(f"upstream list {list_id} holds bare hashes: only entries follow")
        with self.ctx.db.atomic():
            self._save_roots(roots)
            videos = Frames(self.ctx)
            for record, data in (frames or {}).items():
                videos.keep(record, data, len(data) // FRAME_BYTES)  # read by the follower
            if state is not None:
                if versions is not None:
                    self._keep_versions(list_id, versions)
                elif trust.version != self.applied_version(list_id):
                    # Only a list stored for the first time at the version it has (0:
                    # declared, nothing published yet) comes without versions.
                    raise StorageError(f"upstream list {list_id}: an update without its versions")
                kept = self.state(list_id, state.kind)
                if kept.digest() != trust.state:
                    raise StorageError(
                        f"upstream list {list_id}: the records kept are not the verified state"
                    )
            self.ctx.db.execute(
                "INSERT INTO upstream_lists (upstream, list_id, hash_type, trust, applied) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (upstream, list_id) DO UPDATE SET "
                "hash_type = excluded.hash_type, trust = excluded.trust, "
                "applied = excluded.applied, last_error = NULL",
                [
                    self.upstream,
                    list_id,
                    type_name,
                    json.dumps(trust.to_dict()),
                    format_time(now),
                ],
            )

    def _keep_versions(self, list_id: str, versions: UpstreamVersions) -> None:
        conn = self.ctx.db.conn
        conn.executemany(
            "INSERT INTO upstream_headers (upstream, list_id, version, bytes, leaf) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (
                    self.upstream,
                    list_id,
                    DeltaHeader.from_bytes(data).version,
                    data,
                    leaf_hash(data),
                )
                for data in versions.headers
            ],
        )
        for version, body in versions.bodies:
            conn.executemany(
                "UPDATE upstream_records SET removed_version = ?, reason = ? "
                "WHERE upstream = ? AND list_id = ? AND line = ? AND removed_version IS NULL",
                [(version, r.reason, self.upstream, list_id, r.entry.line) for r in body.removes],
            )
            conn.executemany(
                "INSERT INTO upstream_records (upstream, list_id, entry_id, hash, line, "
                "added_version) VALUES (?, ?, ?, ?, ?, ?)",
                [(self.upstream, list_id, e.entry_id, e.hash, e.line, version) for e in body.adds],
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
        self._pending.pop(list_id, None)
        message = f"{type(error).__name__}: {error}"[:2000]
        with self.ctx.db.atomic():
            # A list that never applied a version gets a row for its error alone (no
            # ``applied``: ``_list`` does not see it), so the status shows why.
            self.ctx.db.execute(
                "INSERT INTO upstream_lists (upstream, list_id, hash_type, trust, last_error, "
                "last_failure) VALUES (?, ?, '', ?, ?, ?) ON CONFLICT (upstream, list_id) "
                "DO UPDATE SET last_error = excluded.last_error, "
                "last_failure = excluded.last_failure",
                [self.upstream, list_id, json.dumps(ListTrust(list_id).to_dict()), message,
                 format_time(now)],
            )  # fmt: skip
            if evidence:
                self._evidence(list_id, type(error).__name__, message, now, data, other)

    def add_evidence(self, list_id: str, kind: str, message: str, now: datetime) -> None:
        with self.ctx.db.atomic():
            self._evidence(list_id, kind, message, now, None, None)

    def _evidence(
        self,
        list_id: str,
        kind: str,
        message: str,
        now: datetime,
        data: bytes | None,
        other: bytes | None,
    ) -> None:
        self.ctx.db.table("upstream_evidence").insert(
            {
                "upstream": self.upstream,
                "list_id": list_id,
                "kind": kind,
                "message": message,
                "data": data,
                "other": other,
                "at": format_time(now),
            }
        )

    # -- what the hub reads -------------------------------------------------------------

    def _list(self, list_id: str) -> dict[str, Any] | None:
        """The row of an upstream list this hub applied a version of; a list that only
        ever failed has a row for its error (``record_failure``), and no trust."""
        return self.ctx.one(
            "SELECT * FROM upstream_lists WHERE upstream = ? AND list_id = ? "
            "AND applied IS NOT NULL",
            [self.upstream, list_id],
        )

    def trust(self, list_id: str) -> ListTrust | None:
        """The trusted record of ``list_id`` (None: never applied)."""
        row = self._list(list_id)
        return None if row is None else ListTrust.from_dict(json.loads(row["trust"]))

    def standing(
        self, list_id: str, entry_ids: Iterable[str] | None = None
    ) -> list[tuple[bytes, int]]:
        """Every standing record line of ``list_id`` (of ``entry_ids`` only, when given)
        and the version that added it."""
        if entry_ids is None:
            rows = self.ctx.db.query(
                "SELECT line, added_version FROM upstream_records WHERE upstream = ? "
                "AND list_id = ? AND removed_version IS NULL ORDER BY line",
                [self.upstream, list_id],
            )
        else:
            rows = self.ctx.db.query(
                "SELECT line, added_version FROM upstream_records WHERE upstream = ? "
                "AND list_id = ? AND removed_version IS NULL "
                "AND entry_id IN (SELECT value FROM json_each(?)) ORDER BY line",
                [self.upstream, list_id, json.dumps(sorted(entry_ids))],
            )
        return [(bytes(r["line"]), int(r["added_version"])) for r in rows]

    def count(self, list_id: str) -> int:
        """How many records of ``list_id`` stand."""
        row = self.ctx.one(
            "SELECT count(*) AS n FROM upstream_records WHERE upstream = ? AND list_id = ? "
            "AND removed_version IS NULL",
            [self.upstream, list_id],
        )
        return int(row["n"]) if row else 0

    def touched(self, list_id: str, since: int) -> set[str]:
        """The entry ids whose records of ``list_id`` a version after ``since`` added or
        removed: what a carry-over from ``since`` on must look at, and nothing else."""
        return {
            str(r["entry_id"])
            for r in self.ctx.db.query(
                "SELECT entry_id FROM upstream_records WHERE upstream = ? AND list_id = ? "
                "AND added_version > ? UNION SELECT entry_id FROM upstream_records "
                "WHERE upstream = ? AND list_id = ? AND removed_version > ?",
                [self.upstream, list_id, since, self.upstream, list_id, since],
            )
        }

    def removal(self, list_id: str, line: bytes) -> tuple[int, str] | None:
        """The version that removed the record ``line`` and why; None while it stands."""
        row = self.ctx.one(
            "SELECT removed_version, reason FROM upstream_records WHERE upstream = ? "
            "AND list_id = ? AND line = ? AND removed_version IS NOT NULL "
            "ORDER BY removed_version DESC LIMIT 1",
            [self.upstream, list_id, line],
        )
        return None if row is None else (int(row["removed_version"]), str(row["reason"]))

    def proofs(self, list_id: str, versions: Iterable[int]) -> dict[int, UpstreamProof]:
        """Each of ``versions``' header with its inclusion proof in the upstream's log at
        the trusted size: the leaves are every header kept, read once."""
        trust = self.trust(list_id)
        wanted = sorted(set(versions))
        if trust is None or not wanted:
            return {}
        rows = list(
            self.ctx.db.query(
                "SELECT version, leaf FROM upstream_headers WHERE upstream = ? AND list_id = ? "
                "AND version <= ? ORDER BY version",
                [self.upstream, list_id, trust.version],
            )
        )
        leaves = [bytes(r["leaf"]) for r in rows]
        if len(leaves) != trust.version:
            raise StorageError(
                f"upstream list {list_id}: {len(leaves)} headers kept for {trust.version} versions"
            )
        root = root_from_leaf_hashes(leaves)
        if root != trust.compact.root():
            raise StorageError(f"upstream list {list_id}: the headers kept are not the trusted log")
        out = {}
        for version in wanted:
            header = self.ctx.one(
                "SELECT bytes FROM upstream_headers WHERE upstream = ? AND list_id = ? "
                "AND version = ?",
                [self.upstream, list_id, version],
            )
            assert header is not None  # every version up to the trusted one is kept
            out[version] = UpstreamProof(
                bytes(header["bytes"]),
                trust.version,
                root,
                tuple(inclusion_proof(leaves, version - 1)),
            )
        return out
