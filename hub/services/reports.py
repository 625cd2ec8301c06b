"""What the operator reads: the hub's status and its action log.

Read from maintained tables (``counter_totals``, each node's list counters), so
the work does not grow with the number of acks or per-hash rows, and every number
is bounded (ADR 0010): no node can make a report fail.

A list's status has two views of who follows it. Per node, as each node acks.
Per platform (``platform_view``), since a platform may run several nodes
(replicas behind its own load balancer, each following the hub and acking on its
own) and what matters is whether the platform enforces a version:

- a platform has *applied* version v of a list when every one of its *active*
  nodes on the list (neither revoked nor suspended) has acked v or a later
  version; ``replicas_on_version`` of ``replicas`` says how many have. A platform
  with no active node has applied nothing. One replica behind is enough to say
  no: the load balancer may send any upload to it.
- a platform counts once toward the platforms that applied v, however many
  replicas it runs;
- its counts are the sums of its nodes' counts (a revoked or suspended node's
  too: what it counted was counted), clamped like every total.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from hub.errors import NotFound
from hub.services.access import Access, NodeRecord
from hub.services.context import HubContext
from hub.services.keys import Keys
from hub.services.ledger import FlaggedHash, Ledger
from hub.services.lists import Lists
from protocol import format_time
from protocol.counters import clamp_total

__all__ = [
    "ActionRecord",
    "HubStatus",
    "ListStatus",
    "NodeStatus",
    "PlatformStatus",
    "Reports",
    "platform_view",
]


@dataclass(frozen=True)
class NodeStatus:
    """A node on one list: what it last applied, how far behind it is, what it counted."""

    node: str
    platform: str
    revoked: str | None
    suspended: str | None
    applied_version: int | None
    lag: int
    last_ack: str | None
    counts: dict[str, int]
    withheld: dict[str, int]
    """Counter growth not counted as an implausible jump (ADR 10)."""


@dataclass(frozen=True)
class PlatformStatus:
    """A platform on one list: its nodes counted together (the rule: the module docstring)."""

    platform: str
    nodes: list[str]
    """Every node of the platform on the list, revoked and suspended ones too, by id."""
    replicas: int
    """Its active nodes on the list: neither revoked nor suspended."""
    replicas_on_version: int
    """How many of those have acked the list's version (or a later one)."""
    applied: bool
    """Every active node has acked the list's version (and there is at least one)."""
    applied_version: int | None
    """The newest version every active node has acked; ``None`` if one never acked."""
    counts: dict[str, int]
    """Its nodes' counted totals, summed."""
    withheld: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _summed(parts: Sequence[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in parts:
        for name, value in part.items():
            out[name] = clamp_total(out.get(name, 0) + value)
    return out


def _active(node: NodeStatus) -> bool:
    """Neither revoked nor suspended: a node whose acks say what its platform enforces."""
    return not node.revoked and not node.suspended


def _acked(node: NodeStatus, version: int) -> bool:
    """The node's last ack is of ``version`` or a later one."""
    return node.applied_version is not None and node.applied_version >= version


def platform_view(nodes: Sequence[NodeStatus], version: int) -> list[PlatformStatus]:
    """The per-platform view of one list at ``version`` (the rule: the module docstring)."""
    by_platform: dict[str, list[NodeStatus]] = {}
    for node in nodes:
        by_platform.setdefault(node.platform, []).append(node)
    out = []
    for platform, members in sorted(by_platform.items()):
        members.sort(key=lambda n: n.node)
        active = [n for n in members if _active(n)]
        applied = [n.applied_version for n in active]
        on_version = sum(1 for n in active if _acked(n, version))
        out.append(
            PlatformStatus(
                platform=platform,
                nodes=[n.node for n in members],
                replicas=len(active),
                replicas_on_version=on_version,
                applied=bool(active) and on_version == len(active),
                applied_version=(
                    min(v for v in applied if v is not None)
                    if active and None not in applied
                    else None
                ),
                counts=_summed([n.counts for n in members]),
                withheld=_summed([n.withheld for n in members]),
            )
        )
    return out


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
    nodes_applied: int
    """Active nodes (neither revoked nor suspended) that acked ``version``."""
    platforms: list[PlatformStatus]
    platforms_applied: int
    """Platforms that applied ``version``: each once, however many nodes it runs."""
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

    def list_status(self, list_id: str) -> ListStatus:
        """One list's part of ``status`` (``NotFound`` for a list the hub does not have)."""
        self.lists.spec(list_id)
        row = self.ctx.one("SELECT * FROM lists WHERE id = ?", [list_id])
        if row is None:  # declared by the root, not yet in the table: no list yet
            raise NotFound(f"no list {list_id!r}")
        return self._list_status(row, self.access.nodes())

    def _list_status(self, row: dict[str, Any], nodes: list[NodeRecord]) -> ListStatus:
        """One list's part of ``status``: its head, totals, nodes and flagged hashes."""
        list_id = row["id"]
        version = row["version"]
        spec = self.keys.root().lists[list_id]
        followers = [
            self._node_status(node, list_id, version) for node in nodes if list_id in node.lists
        ]
        platforms = platform_view(followers, version)
        return ListStatus(
            id=list_id,
            hash_type=spec.hash_type,
            label=spec.label,
            public=bool(row["public"]),
            version=version,
            count=self.lists.count(list_id),
            staged=self.lists.staged_count(list_id),
            nodes=followers,
            nodes_applied=sum(1 for n in followers if _active(n) and _acked(n, version)),
            platforms=platforms,
            platforms_applied=sum(1 for p in platforms if p.applied),
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
            platform=node.platform,
            revoked=node.revoked,
            suspended=node.suspended,
            applied_version=last["version"] if last else None,
            lag=version - last["version"] if last else version,
            last_ack=last["received"] if last else None,
            counts=counts,
            withheld=withheld,
        )

    def actions(self, limit: int = 100, *, before: int | None = None) -> list[ActionRecord]:
        """The newest ``limit`` lines of the action log (older than line ``before``, when
        given: the next page), newest first."""
        return [
            ActionRecord(r["id"], r["at"], r["who"], r["action"], json.loads(r["detail"]))
            for r in self.ctx.db.query(
                "SELECT * FROM actions WHERE (:before IS NULL OR id < :before) "
                "ORDER BY id DESC LIMIT :limit",
                {"before": before, "limit": limit},
            )
        ]
