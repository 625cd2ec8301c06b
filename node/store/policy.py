"""The tables of the platform's own policy (``node.policy``): what it exempts, how
strict it is per list, what it holds for review, and what it decided.

- ``policy_exemptions``: one row per (``allow`` | ``disable``, target), the target
  ``hash:<type>:<hex>`` or ``entry:<id>``, with who, why, when, and for a disable
  the time it ends (``until``);
- ``policy_distances``: a list's stricter maximum distance;
- ``policy_holds``: a listed hash held by the quarantine rule, until released;
- ``policy_decisions``: the decision a match event got when it was not ``block``;
- ``policy_counters``: one cumulative count per decision, local;
- ``policy_kept``: per list and reason, the recorded matches kept up: what the
  list's acks carry as ``kept``;
- ``policy_settings``: the platform's choices by name (``disputed``: ``hold`` or
  ``block``), with who set each and when.

The rules (what may be written, when a hold begins) are ``node.policy``'s; this
module only reads and writes rows, in the caller's transaction.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from node.store.tables import Tables
from protocol import format_time

__all__ = ["PolicyTables"]


class PolicyTables(Tables):
    """The policy's rows, over the store's connection (``store.policy``)."""

    # -- exemptions -------------------------------------------------------------------

    def put_exemption(
        self, kind: str, target: str, by: str, why: str, now: datetime, until: datetime | None
    ) -> None:
        """Add an exemption, or replace the one of the same kind and target."""
        self.db.execute(
            "INSERT OR REPLACE INTO policy_exemptions (kind, target, by, why, at, until) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                kind,
                target,
                by,
                why,
                format_time(now),
                None if until is None else format_time(until),
            ],
        )

    def drop_exemption(self, kind: str, target: str) -> bool:
        """Remove an exemption; whether there was one."""
        cursor = self.db.execute(
            "DELETE FROM policy_exemptions WHERE kind = ? AND target = ?", [kind, target]
        )
        return cursor.rowcount > 0

    def exemptions_of(self, targets: list[str]) -> list[dict[str, Any]]:
        """Every exemption of any of ``targets``."""
        return list(
            self.db.query(
                "SELECT * FROM policy_exemptions "
                "WHERE target IN (SELECT value FROM json_each(?)) ORDER BY kind, target",
                [json.dumps(targets)],
            )
        )

    def exemptions(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM policy_exemptions ORDER BY kind, target"))

    # -- distances --------------------------------------------------------------------

    def put_distance(self, list_id: str, max_distance: int, by: str, now: datetime) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO policy_distances (hub, list_id, max_distance, by, at) "
            "VALUES (?, ?, ?, ?, ?)",
            [self.hub, list_id, max_distance, by, format_time(now)],
        )

    def drop_distance(self, list_id: str) -> bool:
        cursor = self.db.execute(
            "DELETE FROM policy_distances WHERE hub = ? AND list_id = ?", [self.hub, list_id]
        )
        return cursor.rowcount > 0

    def distances(self) -> dict[str, int]:
        """Each list's stricter maximum distance (the view's hub's lists)."""
        return {
            r["list_id"]: int(r["max_distance"])
            for r in self.db.query(
                "SELECT list_id, max_distance FROM policy_distances WHERE hub = ?", [self.hub]
            )
        }

    def distance_rows(self) -> list[dict[str, Any]]:
        """Every hub's stricter distances (each row names its ``hub``)."""
        return list(self.db.query("SELECT * FROM policy_distances ORDER BY hub, list_id"))

    # -- quarantine -------------------------------------------------------------------

    def events_between(self, list_id: str, listed: bytes, start: datetime, end: datetime) -> int:
        """Match events of one listed hash created in [start, end)."""
        row = self._one(
            "SELECT count(*) AS n FROM match_events "
            "WHERE hub = ? AND list_id = ? AND hash = ? AND created >= ? AND created < ?",
            [self.hub, list_id, listed, format_time(start), format_time(end)],
        )
        return 0 if row is None else int(row["n"])

    def hold(self, list_id: str, listed: bytes) -> dict[str, Any] | None:
        return self._one(
            "SELECT * FROM policy_holds WHERE hub = ? AND list_id = ? AND hash = ?",
            [self.hub, list_id, listed],
        )

    def put_hold(
        self,
        list_id: str,
        listed: bytes,
        entry_id: str | None,
        now: datetime,
        last_hour: int,
        week_average: float,
    ) -> None:
        """Hold a listed hash (a released hold of it begins again)."""
        self.db.execute(
            "INSERT OR REPLACE INTO policy_holds "
            "(hub, list_id, hash, entry_id, held_at, last_hour, week_average) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [self.hub, list_id, listed, entry_id, format_time(now), last_hour, week_average],
        )

    def release_holds(
        self, listed: bytes | None, entry_id: str | None, by: str, now: datetime
    ) -> int:
        """Release the unreleased holds of hash ``listed`` (or of ``entry_id``); how many."""
        cursor = self.db.execute(
            "UPDATE policy_holds SET released_at = ?, released_by = ? "
            "WHERE released_at IS NULL AND (hash = ? OR entry_id = ?)",
            [format_time(now), by, listed, entry_id],
        )
        return cursor.rowcount

    def holds(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM policy_holds ORDER BY held_at, list_id"))

    # -- decisions --------------------------------------------------------------------

    def record_decision(self, match_id: str, decision: str, reason: str) -> None:
        """The decision of a match event that was not blocked, and its count."""
        self.db.execute(
            "INSERT INTO policy_decisions (match_id, decision, reason) VALUES (?, ?, ?)",
            [match_id, decision, reason],
        )

    def count(self, decision: str) -> None:
        self.db.execute(
            "INSERT INTO policy_counters (decision, value) VALUES (?, 1) "
            "ON CONFLICT(decision) DO UPDATE SET value = value + 1",
            [decision],
        )

    def decisions_of(self, match_ids: list[str]) -> dict[str, tuple[str, str]]:
        """(decision, reason) of each of ``match_ids`` that was not blocked."""
        if not match_ids:
            return {}
        return {
            r["match_id"]: (r["decision"], r["reason"])
            for r in self.db.query(
                "SELECT * FROM policy_decisions WHERE match_id IN (SELECT value FROM json_each(?))",
                [json.dumps(match_ids)],
            )
        }

    def counters(self) -> dict[str, int]:
        return {
            r["decision"]: int(r["value"])
            for r in self.db.query("SELECT decision, value FROM policy_counters")
        }

    def count_kept(self, list_id: str, reason: str) -> None:
        self.db.execute(
            "INSERT INTO policy_kept (hub, list_id, reason, value) VALUES (?, ?, ?, 1) "
            "ON CONFLICT(hub, list_id, reason) DO UPDATE SET value = value + 1",
            [self.hub, list_id, reason],
        )

    def kept(self, list_id: str) -> dict[str, int]:
        """The list's kept matches by reason, those counted at least once."""
        return {
            r["reason"]: int(r["value"])
            for r in self.db.query(
                "SELECT reason, value FROM policy_kept WHERE hub = ? AND list_id = ? AND value > 0 "
                "ORDER BY reason",
                [self.hub, list_id],
            )
        }

    # -- settings ---------------------------------------------------------------------

    def put_setting(self, name: str, value: str, by: str | None, now: datetime) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO policy_settings (name, value, by, at) VALUES (?, ?, ?, ?)",
            [name, value, by, format_time(now)],
        )

    def setting(self, name: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM policy_settings WHERE name = ?", [name])
