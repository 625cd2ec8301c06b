"""What the operator reads: the hub's status and its action log.

Read from maintained tables (``counter_totals``, each node's list counters), so
the work does not grow with the number of acks or per-hash rows, and every number
is bounded (ADR 0010): no node can make a report fail.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from hub.services.access import Access, NodeRecord
from hub.services.context import HubContext
from hub.services.keys import Keys
from hub.services.ledger import FlaggedHash, Ledger
from hub.services.lists import Lists
from protocol import format_time

__all__ = ["ActionRecord", "HubStatus", "ListStatus", "NodeStatus", "Reports"]


@dataclass(frozen=True)
class NodeStatus:
    """A node on one list: what it last applied, how far behind it is, what it counted."""

    node: str
    revoked: str | None
    applied_version: int | None
    lag: int
    last_ack: str | None
    counts: dict[str, int]
    withheld: dict[str, int]
    """Counter growth not counted as an implausible jump (ADR 10)."""


@dataclass(frozen=True)
class ListStatus:
    """One list: its head, its totals over nodes, its nodes and its flagged hashes."""

    id: str
    hash_type: str
    label: str
    public: bool
    version: int
    count: int
    staged: int
    nodes: list[NodeStatus]
    totals: dict[str, int]
    flagged: list[FlaggedHash]


@dataclass(frozen=True)
class HubStatus:
    """What the operator sees first: the hub, its root, and every list."""

    hub: str
    root_version: int
    root_expires: str
    lists: list[ListStatus]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ActionRecord:
    """One line of the action log: who did what, when, with what detail."""

    id: int
    at: str
    who: str
    action: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Reports:
    """Status across lists and nodes, and the ``actions`` log."""

    def __init__(
        self, ctx: HubContext, keys: Keys, lists: Lists, access: Access, ledger: Ledger
    ) -> None:
        self.ctx = ctx
        self.keys = keys
        self.lists = lists
        self.access = access
        self.ledger = ledger

    def status(self) -> HubStatus:
        """What the operator sees: lists, nodes per list with lag and counts, flagged hashes.

        Per node, ``withheld`` is the growth not counted as an implausible jump.
        """
        root = self.keys.root()
        nodes = self.access.nodes()
        return HubStatus(
            hub=root.name,
            root_version=root.version,
            root_expires=format_time(root.expires),
            lists=[
                self._list_status(row, nodes)
                for row in self.ctx.db.query("SELECT * FROM lists ORDER BY id")
            ],
        )

    def _list_status(self, row: dict[str, Any], nodes: list[NodeRecord]) -> ListStatus:
        """One list's part of ``status``: its head, totals, nodes and flagged hashes."""
        list_id = row["id"]
        spec = self.keys.root().lists[list_id]
        return ListStatus(
            id=list_id,
            hash_type=spec.hash_type,
            label=spec.label,
            public=bool(row["public"]),
            version=row["version"],
            count=self.lists.count(list_id),
            staged=self.lists.staged_count(list_id),
            nodes=[
                self._node_status(node, list_id, row["version"])
                for node in nodes
                if list_id in node.lists
            ],
            totals=self.ledger.list_totals(list_id),
            flagged=self.ledger.flagged_hashes(list_id),
        )

    def _node_status(self, node: NodeRecord, list_id: str, version: int) -> NodeStatus:
        """A node on one list: what it last applied, how far behind it is, what it counted."""
        last = self.ctx.one(
            "SELECT version, received, seq FROM acks WHERE node = ? AND list_id = ? "
            "ORDER BY seq DESC LIMIT 1",
            [node.id, list_id],
        )
        counts, withheld = self.ledger.node_totals(node.id, list_id)
        return NodeStatus(
            node=node.id,
            revoked=node.revoked,
            applied_version=last["version"] if last else None,
            lag=version - last["version"] if last else version,
            last_ack=last["received"] if last else None,
            counts=counts,
            withheld=withheld,
        )

    def actions(self, limit: int = 100) -> list[ActionRecord]:
        """The newest ``limit`` lines of the action log, newest first."""
        return [
            ActionRecord(r["id"], r["at"], r["who"], r["action"], json.loads(r["detail"]))
            for r in self.ctx.db.query("SELECT * FROM actions ORDER BY id DESC LIMIT ?", [limit])
        ]
