"""One hub a node follows, as the running node holds it: ``FollowedHub``.

Everything that is one hub's and not another's (ADR 20): its settings
(``node.hubs.HubSettings``), a store view scoped to it (its roots, lists, counters,
acks), the ``Matching`` of its lists, its ack outbox with its own ``seq`` space, and
the token it issued. A failure of the hub (a refused root, a tampered body, no
answer) is recorded in its view, against its lists only. What spans the hubs (the
content registry, webhooks, match events, the policy's exemptions) stays on ``Node``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from node.hubs import HubSettings
from node.matching import Matching, newest_root
from node.outboxes import AckOutbox
from node.store import NodeStore
from protocol import Root, parse_time

__all__ = ["FollowedHub"]


@dataclass
class FollowedHub:
    """One followed hub's settings and services (see the module docstring)."""

    settings: HubSettings
    store: NodeStore
    matching: Matching
    acks: AckOutbox
    token: str

    @property
    def name(self) -> str:
        return self.settings.name

    def newest_root(self) -> Root | None:
        """The newest verified root of this hub (None before its first update)."""
        return newest_root(self.store)

    def status(self, now: datetime) -> dict[str, Any]:
        """This hub's part of ``Node.status``: where it is, its root, its acks waiting,
        and one line per list it is followed for."""
        root = self.newest_root()
        rows = {r["id"]: r for r in self.store.list_rows()}
        lists = [
            self.list_status(list_id, rows.get(list_id), root, now)
            for list_id in self.settings.lists
        ]
        return {
            "name": self.name,
            "url": self.settings.url,
            "node_id": self.settings.node_id,
            "root_version": root.version if root else None,
            "enrolled": bool(self.token),
            "acks_pending": self.store.acks.pending(),
            "stale": any(entry["stale"] for entry in lists),
            "damaged": sorted(self.matching.damaged),
            "lists": lists,
        }

    def list_status(
        self, list_id: str, row: Any, root: Root | None, now: datetime
    ) -> dict[str, Any]:
        """One list's line of ``status``. Stale: no verified checkpoint, or one older
        than the hub's root's ``max_checkpoint_age`` (the list is still enforced)."""
        trust = json.loads(row["trust"]) if row else None
        max_age = root.policy.max_checkpoint_age if root else 0
        checkpoint_time = trust.get("checkpoint_time") if trust else None
        stale = checkpoint_time is None or now - parse_time(checkpoint_time, "status") > timedelta(
            seconds=max_age
        )
        return {
            "hub": self.name,
            "list": list_id,
            "version": trust["version"] if trust else 0,
            "count": row["count"] if row else 0,
            "state_sha256": row["sha256"] if row else None,
            "last_success": row["last_success"] if row else None,
            "last_attempt": row["last_attempt"] if row else None,
            "last_error": row["last_error"] if row else None,
            "checkpoint_time": checkpoint_time,
            "stale": stale,
            "counts": self.acks.counts(list_id).to_dict() | {"hashes": None},
        }
