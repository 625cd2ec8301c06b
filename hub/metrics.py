"""The hub app's Prometheus metrics: one registry per app, so two apps in one process
never share a counter (``create_app`` makes one, under ``hub.appkeys.METRICS``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["HubMetrics"]


class HubMetrics:
    """The app's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hashhub_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.acks_accepted = Counter(
            "hashhub_acks_accepted",
            "Acks accepted (duplicate: an idempotent retry of a stored ack).",
            ["duplicate"],
            registry=self.registry,
        )
        self.acks_refused = Counter(
            "hashhub_acks_refused",
            "Acks refused, by error code.",
            ["code"],
            registry=self.registry,
        )
        self.publishes = Counter(
            "hashhub_publishes",
            "List versions published, by list and trigger (api or scheduler).",
            ["list", "trigger"],
            registry=self.registry,
        )
        self.checkpoint_refreshes = Counter(
            "hashhub_checkpoint_refreshes",
            "Checkpoints re-issued with a fresh timestamp co-signature.",
            registry=self.registry,
        )
        self.job_failures = Counter(
            "hashhub_scheduled_job_failures",
            "Scheduled jobs that raised, by job.",
            ["job"],
            registry=self.registry,
        )
        self.list_version = Gauge(
            "hashhub_list_version",
            "The latest published version of each list.",
            ["list"],
            registry=self.registry,
        )
