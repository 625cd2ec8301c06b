"""The node's Prometheus metrics: one registry per app, so two apps in one process
never share a counter (``node.app.create_app`` makes one; ``NodeScheduler`` counts
into it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from node.hubs import shown_list

__all__ = ["NodeMetrics"]


class NodeMetrics:
    """The node's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        """Register every metric, in groups (and in the order they are exposed)."""
        self.registry = CollectorRegistry()
        self._api_metrics(self.registry)
        self._list_metrics(self.registry)
        self._match_metrics(self.registry)
        self._outbox_metrics(self.registry)

    def _api_metrics(self, r: CollectorRegistry) -> None:
        """The local API's load, apart from what it found: a busy API is not a problem."""
        self.requests = Counter(
            "hashhub_node_http_requests",
            "API requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )

    def _list_metrics(self, r: CollectorRegistry) -> None:
        """Whether the lists are current: what an operator alerts on first."""
        self.syncs = Counter(
            "hashhub_node_syncs",
            "List updates, by list and outcome (updated, current, rejected, failed).",
            ["list", "outcome"],
            registry=r,
        )
        self.list_version = Gauge(
            "hashhub_node_list_version", "The applied version of each list.", ["list"], registry=r
        )
        self.list_hashes = Gauge(
            "hashhub_node_list_hashes", "Hashes in each applied list.", ["list"], registry=r
        )
        self.list_stale = Gauge(
            "hashhub_node_list_stale",
            "1 when a list's last verified checkpoint is older than the root's maximum age.",
            ["list"],
            registry=r,
        )
        self.stale = Gauge("hashhub_node_stale", "1 when any subscribed list is stale.", registry=r)
        self.sync_failures = Gauge(
            "hashhub_node_sync_consecutive_failures",
            "Update runs in a row that failed or were rejected (0 after a success).",
            registry=r,
        )

    def _match_metrics(self, r: CollectorRegistry) -> None:
        """What the platform's checks found: the rate a list's effect is judged by."""
        self.checked = Counter(
            "hashhub_node_checks",
            "Uploads and hash queries checked through the API, "
            "by kind (image, video, file, hashes).",
            ["kind"],
            registry=r,
        )
        self.matches = Counter(
            "hashhub_node_matches",
            "Match events, by list and source (upload, registry).",
            ["list", "source"],
            registry=r,
        )

    def _outbox_metrics(self, r: CollectorRegistry) -> None:
        """What waits for the other side: acks for the hub, webhooks and outcomes for
        the platform. A growing backlog is a delivery problem, not a matching one."""
        self.acks_pending = Gauge(
            "hashhub_node_acks_pending", "Acks waiting for the hub's confirmation.", registry=r
        )
        self.acks_sent = Counter(
            "hashhub_node_acks_sent",
            "Ack deliveries, by result (confirmed, failed).",
            ["result"],
            registry=r,
        )
        self.webhooks_pending = Gauge(
            "hashhub_node_webhooks_pending", "Webhook calls not yet delivered.", registry=r
        )
        self.webhooks_sent = Counter(
            "hashhub_node_webhooks_sent",
            "Webhook deliveries, by result (delivered, failed).",
            ["result"],
            registry=r,
        )
        self.open_matches = Gauge(
            "hashhub_node_matches_awaiting_outcome",
            "Match events the platform has not reported an outcome for.",
            registry=r,
        )

    def refresh(self, status: Mapping[str, Any]) -> None:
        """Set the gauges from ``Node.status()``. A list's label is its id, or
        ``hub/list`` for a hub other than ``default`` (``node.hubs.shown_list``)."""
        for entry in status["lists"]:
            shown = shown_list(entry["hub"], entry["list"])
            self.list_version.labels(shown).set(entry["version"])
            self.list_hashes.labels(shown).set(entry["count"])
            self.list_stale.labels(shown).set(1 if entry["stale"] else 0)
        self.stale.set(1 if status["stale"] else 0)
        self.acks_pending.set(status["acks_pending"])
        self.webhooks_pending.set(status["webhooks_pending"])
        self.open_matches.set(status["matches_awaiting_outcome"])
