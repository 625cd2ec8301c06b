"""The lists a hub publishes: what each one declares, holds, and has staged.

A list is declared in the root (``protocol.ListSpec``: type, distance, label,
snapshot interval) and kept in the ``lists`` table (its head: version, compact
range, last leaf), ``entries`` (every hash it held, with provenance and the
versions that added and removed it) and ``staged`` (changes for the next
publish). Declaring a list is a root change (``hub.services.roots``); publishing
staged changes is ``hub.services.publishing``. A list of the ``entries`` format
holds entry records instead (``hub.services.entries``): its count and its pending
changes are read from those tables, and bare hashes are never staged to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from hub.errors import InvalidRequest, NotFound
from hub.intake import Intake
from hub.services.context import HubContext
from hub.services.keys import Keys
from protocol import (
    HASH_TYPES,
    ListHead,
    ListSpec,
    ListState,
    ProtocolError,
    format_time,
    parse_time,
)
from protocol.hashes import degenerate_reason
from protocol.lists import validate_list_id
from protocol.merkle import CompactRange

__all__ = ["ListSummary", "Lists", "StagedChange"]


@dataclass(frozen=True)
class ListSummary:
    """One list as the API, the CLI and the dashboard show it: declaration and head."""

    id: str
    hash_type: str
    max_distance: int
    label: str
    public: bool
    version: int
    count: int
    staged: int
    snapshot_every: int
    first_version: int
    created: str
    format: str = "hashes"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StagedChange:
    """One staged row waiting for the next publish, with its provenance."""

    list: str
    op: Literal["add", "remove"]
    hash: str
    source: str | None
    submission_id: str | None
    who: str
    created: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Cached:
    version: int
    state: ListState


class Lists:
    """The ``lists``, ``entries`` and ``staged`` tables."""

    def __init__(self, ctx: HubContext, keys: Keys) -> None:
        self.ctx = ctx
        self.keys = keys
        self._states: dict[str, _Cached] = {}

    def spec(self, list_id: str) -> ListSpec:
        """The newest root's declaration of ``list_id``.

        Raises:
            InvalidRequest: not a valid list id.
            NotFound: no list has that id.
        """
        try:
            validate_list_id(list_id)
        except ProtocolError as e:
            raise InvalidRequest(str(e)) from e
        spec = self.keys.root().lists.get(list_id)
        if spec is None:
            raise NotFound(f"no list {list_id!r}")
        return spec

    def row(self, list_id: str) -> dict[str, Any]:
        """The list's row of the ``lists`` table (its head and settings)."""
        self.spec(list_id)
        row = self.ctx.one("SELECT * FROM lists WHERE id = ?", [list_id])
        if row is None:
            raise NotFound(f"no list {list_id!r}")
        return row

    def is_public(self, list_id: str) -> bool:
        """Whether anyone may read the list's files without a token."""
        row = self.ctx.one("SELECT public FROM lists WHERE id = ?", [list_id])
        return bool(row and row["public"])

    def count(self, list_id: str) -> int:
        """How many hashes (or entry records) the list holds now."""
        sql = (
            "SELECT count(*) AS n FROM entry_records WHERE list_id = ? AND removed_version IS NULL"
            if self._holds_entries(list_id)
            else "SELECT count(*) AS n FROM entries WHERE list_id = ? AND removed_version IS NULL"
        )
        row = self.ctx.one(sql, [list_id])
        return int(row["n"]) if row else 0

    def summary(self, list_id: str) -> ListSummary:
        """The list's declaration in the newest root and its head, in one record."""
        spec = self.spec(list_id)
        row = self.row(list_id)
        return ListSummary(
            id=list_id,
            hash_type=spec.hash_type,
            max_distance=spec.max_distance,
            label=spec.label,
            snapshot_every=spec.snapshot_every,
            first_version=spec.first_version,
            public=bool(row["public"]),
            version=int(row["version"]),
            count=self.count(list_id),
            staged=self.staged_count(list_id),
            created=row["created"],
            format=spec.format,
        )

    def _holds_entries(self, list_id: str) -> bool:
        spec = self.keys.root().lists.get(list_id)
        return spec is not None and spec.entries

    def summaries(self) -> list[ListSummary]:
        """Every list the newest root declares, by id."""
        return [self.summary(list_id) for list_id in sorted(self.keys.root().lists)]

    def state(self, list_id: str) -> ListState:
        """The list's current state, from the cache or rebuilt from the entries."""
        row = self.row(list_id)
        cached = self._states.get(list_id)
        if cached is not None and cached.version == row["version"]:
            return cached.state
        width = HASH_TYPES[row["hash_type"]].length
        data = b"".join(
            r[0]
            for r in self.ctx.db.execute(
                "SELECT hash FROM entries WHERE list_id = ? AND removed_version IS NULL "
                "ORDER BY hash",
                [list_id],
            ).fetchall()
        )
        state = ListState(width, data)
        self._states[list_id] = _Cached(row["version"], state)
        return state

    def remember(self, list_id: str, version: int, state: ListState) -> None:
        """Cache the state a publish just built, so the next read need not rebuild it."""
        self._states[list_id] = _Cached(version, state)

    def head(self, list_id: str) -> ListHead[ListState]:
        """What the next publish of ``list_id`` builds on."""
        return ListHead(state=self.state(list_id), **self.position(list_id))

    def position(self, list_id: str) -> dict[str, Any]:
        """A list's place in its log, as ``ListHead`` takes it (all but the state,
        which is hashes here and records for an entries list, ``Entries.head``)."""
        row = self.row(list_id)
        hashes = [bytes.fromhex(h) for h in json.loads(row["compact"])]
        return {
            "list_id": list_id,
            "version": row["version"],
            "compact": CompactRange(row["version"], hashes),
            "last_leaf": row["last_leaf"],
            "last_created": (
                parse_time(row["last_created"], "list") if row["last_created"] else None
            ),
        }

    def stage(
        self,
        list_id: str,
        *,
        adds: Iterable[Intake] = (),
        removes: Iterable[bytes] = (),
        who: str = "operator",
    ) -> int:
        """Stage changes for the next publish; returns how many rows were staged.

        Every addition must be a hash of the list's width that is not degenerate
        (``protocol.hashes.degenerate_reason``), however it came in: intake, a
        reviewed case, a script. Removals are checked for width only.

        Raises:
            InvalidRequest: a hash of the wrong width or a degenerate addition;
                nothing is staged.
        """
        spec = self.spec(list_id)
        if spec.entries:
            raise InvalidRequest(
                f"list {list_id} holds entries: stage them with 'hashhub entry add'"
            )
        width = HASH_TYPES[spec.hash_type].length
        created = format_time(self.ctx.now())
        rows: list[dict[str, Any]] = [
            {
                "list_id": list_id,
                "op": "add",
                "hash": item.hash,
                "quality": item.quality,
                "source": item.source,
                "category": item.category,
                "submission_id": item.submission_id,
            }
            for item in adds
        ]
        rows += [{"list_id": list_id, "op": "remove", "hash": h} for h in removes]
        for row in rows:
            value = row["hash"]
            if not isinstance(value, bytes) or len(value) != width:
                raise InvalidRequest(f"a {spec.hash_type} hash is {width} bytes")
            # Additions only: a degenerate entry listed before the rule can still be removed.
            reason = degenerate_reason(spec.hash_type, value) if row["op"] == "add" else None
            if reason is not None:
                raise InvalidRequest(reason)
        if not rows:
            return 0
        columns = ("list_id", "op", "hash", "quality", "source", "category", "submission_id")
        with self.ctx.db.atomic():
            self.ctx.db.conn.executemany(
                "INSERT INTO staged (list_id, op, hash, quality, source, category, "
                "submission_id, who, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((*(row.get(c) for c in columns), who, created) for row in rows),
            )
            self.ctx.log("stage", who, {"list": list_id, "rows": len(rows)})
        return len(rows)

    def staged_count(self, list_id: str) -> int:
        """How many staged rows (or pending entries) wait for ``list_id``'s next publish."""
        sql = (
            "SELECT count(*) AS n FROM entry_pending WHERE list_id = ?"
            if self._holds_entries(list_id)
            else "SELECT count(*) AS n FROM staged WHERE list_id = ?"
        )
        row = self.ctx.one(sql, [list_id])
        return int(row["n"]) if row else 0

    def staged_changes(self, limit: int = 100) -> list[StagedChange]:
        """Staged rows waiting for the next publish, oldest first, with their provenance."""
        return [
            StagedChange(
                list=r["list_id"],
                op=r["op"],
                hash=bytes(r["hash"]).hex(),
                source=r["source"],
                submission_id=r["submission_id"],
                who=r["who"],
                created=r["created"],
            )
            for r in self.ctx.db.query("SELECT * FROM staged ORDER BY id LIMIT ?", [limit])
        ]
