"""The node's schedule: ``NodeScheduler``, on APScheduler 3.11's ``AsyncIOScheduler``.

- ``sync`` (``sync:<hub>`` for each followed hub but ``default``): one update of
  the hub's lists (docs/design.md §4.2) at start, then every ``max(policy
  min_poll_interval, poll_interval)`` seconds plus up to ``poll_jitter``; after a
  failed or rejected update the wait doubles per failure up to ``max_backoff`` (never
  below the policy minimum, ``next_poll_delay``). Each hub has its own job, interval
  and back-off. Each update that applied something is followed by its acks and
  webhooks at once.
- ``outbox``: every few seconds, take up a changed ``node.toml`` (a hub added or
  removed), send due acks (each hub's in ``seq`` order, to it) and deliver due
  webhooks; both outboxes are durable and retried with back-off by ``Node``.
- ``ack``: every ``ack_interval`` seconds, one fresh ack per list with the totals.
- ``stale``: every minute, the stale alarm: a list whose last verified checkpoint
  is older than the root's ``max_checkpoint_age`` is logged (once, when it turns
  stale), flagged in ``/v1/status`` and in the ``hashhub_node_list_stale`` gauge.
  The node keeps enforcing the last good list all the while. The same job (and
  every update) reloads the match indexes when another process — ``hashhub-node
  sync`` run beside the daemon — applied a version the daemon has not indexed.

Every job runs with ``max_instances=1``, ``coalesce=True`` and
``misfire_grace_time=None``. Stopping pauses the scheduler, lets a running job
finish (APScheduler's own ``shutdown`` would cancel it mid-update), then shuts down
(``edge.scheduler.GuardedScheduler``, as the hub's).
``node.app`` starts one per app (its cleanup context) and keeps it under
``node.app.SCHEDULER``; the status pages (``node.web``) read its ``snapshot()``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from apscheduler.triggers.interval import IntervalTrigger

from edge.scheduler import GuardedScheduler, Job
from follow import ListOutcome
from node.errors import NodeConfigError
from node.hubs import shown_list
from node.metrics import NodeMetrics
from node.service import Node, deliver_webhooks, flush_acks, run_sync
from node.store import DEFAULT_HUB

__all__ = [
    "OUTBOX_INTERVAL",
    "STALE_CHECK_INTERVAL",
    "HubSchedule",
    "NodeScheduler",
    "next_poll_delay",
    "sync_job_id",
]

log = logging.getLogger("hashhub.node")

OUTBOX_INTERVAL = 5
STALE_CHECK_INTERVAL = 60


def next_poll_delay(interval: int, failures: int, max_backoff: int) -> int:
    """Seconds until the next update: ``interval`` after a success, doubling per failure.

    The back-off is capped at ``max_backoff`` but never shorter than ``interval``
    (which already includes the policy minimum).
    """
    if failures <= 0:
        return interval
    backoff: int = interval << min(failures - 1, 32)
    return max(interval, min(max_backoff, backoff))


def sync_job_id(hub: str) -> str:
    """The id of a hub's sync job: ``sync`` for the ``default`` hub (as before there
    were several), ``sync:<hub>`` for another."""
    return "sync" if hub == DEFAULT_HUB else f"sync:{hub}"


@dataclass
class HubSchedule:
    """One followed hub's place in the schedule: its failures in a row (its own
    back-off), its last run and what that run did."""

    failures: int = 0
    last_run: datetime | None = None
    last_outcomes: list[ListOutcome] = field(default_factory=list)


class NodeScheduler(GuardedScheduler):
    """Runs the sync (one job per followed hub), outbox, ack and stale-alarm jobs of
    one node on the running loop.

    Each hub is polled on its own schedule (its ``poll_interval``, its root's
    minimum, its own back-off), so one hub that is down or tampered with slows no
    other. The outbox job also takes up ``node.toml`` when another process changed
    it (``hashhub-node hub add|remove``): a new hub gets its sync job and is polled
    at once, a removed one loses its job and its lists stop matching.

    Args:
        node: the node (used from the event loop's thread only).
        session: the HTTP client session for the hubs and the webhook.
        metrics: where outcomes are counted.
        outbox_interval: seconds between sends of due acks and webhooks.
        stale_interval: seconds between stale checks.
    """

    def __init__(
        self,
        node: Node,
        session: aiohttp.ClientSession,
        metrics: NodeMetrics,
        *,
        outbox_interval: int = OUTBOX_INTERVAL,
        stale_interval: int = STALE_CHECK_INTERVAL,
    ) -> None:
        self.node = node
        self.session = session
        self.metrics = metrics
        self.outbox_interval = outbox_interval
        self.stale_interval = stale_interval
        self.hubs: dict[str, HubSchedule] = {name: HubSchedule() for name in node.hubs}
        self.stale_lists: set[str] = set()
        self._outbox_lock = asyncio.Lock()
        super().__init__(log)

    # -- the first hub's, for a node of one ------------------------------------------

    def _first(self) -> HubSchedule:
        return self.hubs[next(iter(self.node.hubs))]

    @property
    def failures(self) -> int:
        """The first hub's failed updates in a row."""
        return self._first().failures

    @property
    def last_run(self) -> datetime | None:
        return self._first().last_run

    @property
    def last_outcomes(self) -> list[ListOutcome]:
        return self._first().last_outcomes

    # -- settings ----------------------------------------------------------------------

    def poll_interval(self, hub: str | None = None) -> int:
        """``max(policy min_poll_interval, the hub's poll_interval)``, in seconds."""
        followed = self.node.hub(hub) if hub is not None else next(iter(self.node.hubs.values()))
        root = followed.newest_root()
        policy_minimum = root.policy.min_poll_interval if root is not None else 0
        return max(policy_minimum, followed.settings.poll_interval, 1)

    def _sync_trigger(self, hub: str) -> IntervalTrigger:
        delay = next_poll_delay(
            self.poll_interval(hub), self.hubs[hub].failures, self.node.config.max_backoff
        )
        return IntervalTrigger(seconds=delay, jitter=self.node.config.poll_jitter, timezone=UTC)

    def snapshot(self) -> dict[str, Any]:
        """The schedule's state, for ``/v1/status``: the first hub's at the top (a node
        of one hub has no other), every hub's under ``hubs``."""
        hubs = {name: self._hub_snapshot(name) for name in self.node.hubs if name in self.hubs}
        first = hubs[next(iter(hubs))]
        return {"running": self.running, **first, "stale_lists": sorted(self.stale_lists)} | {
            "hubs": hubs
        }

    def _hub_snapshot(self, hub: str) -> dict[str, Any]:
        schedule = self.hubs[hub]
        sync_job = self._scheduler.get_job(sync_job_id(hub))
        next_run = getattr(sync_job, "next_run_time", None)
        return {
            "poll_interval": self.poll_interval(hub),
            "consecutive_failures": schedule.failures,
            "last_run": schedule.last_run.isoformat() if schedule.last_run else None,
            "next_run": next_run.astimezone(UTC).isoformat() if next_run else None,
            "last_outcomes": {o.list_id: o.status for o in schedule.last_outcomes},
        }

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Add the jobs and start; needs a running event loop. The first updates run now."""
        config = self.node.config
        jobs: list[tuple[str, IntervalTrigger, Job]] = [
            ("outbox", IntervalTrigger(seconds=self.outbox_interval, timezone=UTC), self.flush),
            ("stale", IntervalTrigger(seconds=self.stale_interval, timezone=UTC), self.check_stale),
        ]
        if config.ack_interval > 0:  # 0: acks only after each applied version
            jobs.append(
                ("ack", IntervalTrigger(seconds=config.ack_interval, timezone=UTC), self.ack)
            )
        for name in self.node.hubs:
            self._add_sync_job(name)
        for name, trigger, job in jobs:
            self._scheduler.add_job(
                self.guarded,
                trigger,
                args=[name, job],
                id=name,
                name=f"hashhub-node {name}",
                **_COMMON,
            )
        self._scheduler.start()
        log.info(
            "scheduler started: %s, acks every %ss",
            ", ".join(
                f"sync{'' if name == DEFAULT_HUB else ' ' + name} every "
                f"{self.poll_interval(name)}s (+ up to {config.poll_jitter}s)"
                for name in self.node.hubs
            ),
            config.ack_interval,
        )

    def _add_sync_job(self, hub: str) -> None:
        job_id = sync_job_id(hub)

        async def sync_hub() -> None:
            await self.sync(hub)

        self._scheduler.add_job(
            self.guarded,
            self._sync_trigger(hub),
            args=[job_id, sync_hub],
            id=job_id,
            name=f"hashhub-node {job_id}",
            next_run_time=datetime.now(UTC),
            **_COMMON,
        )

    # -- jobs --------------------------------------------------------------------------

    async def sync(self, hub: str | None = None) -> list[ListOutcome]:
        """One update of every list of one hub (None: the only one), then acks and
        webhooks, that hub's back-off and the stale check."""
        name = self.node.hub(hub).name
        schedule = self.hubs.setdefault(name, HubSchedule())
        schedule.last_run = datetime.now(UTC)
        if self.node.follow_credentials():
            log.info("took up the node's key and hub tokens as they are now on disk")
        followed = self.node.hub(name)
        try:
            if not followed.token:
                log.warning(
                    "no token for hub %s yet: run 'hashhub-node token set' after enrolment", name
                )
                outcomes = [
                    ListOutcome(list_id, "failed", 0, 0, "no hub token")
                    for list_id in followed.settings.lists
                ]
            else:
                outcomes = await run_sync(self.node, self.session, name)
                self.follow_store()
        except Exception:
            schedule.failures += 1
            self._after_sync(name)
            raise
        schedule.last_outcomes = outcomes
        ok = all(o.status in ("updated", "current") for o in outcomes)
        schedule.failures = 0 if ok else schedule.failures + 1
        for o in outcomes:
            self.metrics.syncs.labels(shown_list(name, o.list_id), o.status).inc()
            if o.status == "updated":
                log.info(
                    "%s/%s: applied version %d (was %d)",
                    name,
                    o.list_id,
                    o.to_version,
                    o.from_version,
                )
            elif o.status in ("rejected", "failed"):
                log.warning("%s/%s: update %s: %s", name, o.list_id, o.status, o.error)
        self._after_sync(name)
        if any(o.status == "updated" for o in outcomes):
            await self.flush()
        return outcomes

    def _after_sync(self, hub: str) -> None:
        self.metrics.sync_failures.set(max(s.failures for s in self.hubs.values()))
        job_id = sync_job_id(hub)
        if self._scheduler.running and self._scheduler.get_job(job_id) is not None:
            self._scheduler.reschedule_job(job_id, trigger=self._sync_trigger(hub))
        self.check_stale_now()

    async def flush(self) -> None:
        """Take up a changed ``node.toml``, then send due acks (each hub's to it) and
        deliver due webhooks (one flush at a time)."""
        async with self._outbox_lock:
            self.follow_config()
            self.node.follow_credentials()
            self.node.matching.write_checked()  # misses' checks, at most this job's interval old
            for name, hub in list(self.node.hubs.items()):
                if hub.token:
                    confirmed, failed = await flush_acks(self.node, self.session, hub=name)
                    self.metrics.acks_sent.labels("confirmed").inc(confirmed)
                    self.metrics.acks_sent.labels("failed").inc(failed)
            if self.node.config.webhook_url:
                delivered, failed = await deliver_webhooks(self.node, self.session)
                self.metrics.webhooks_sent.labels("delivered").inc(delivered)
                self.metrics.webhooks_sent.labels("failed").inc(failed)
        self.metrics.refresh(self.node.status())

    async def ack(self) -> None:
        """Sign one ack per applied list with the current totals, then send."""
        self.node.follow_credentials()
        for hub in self.node.hubs.values():
            hub.acks.enqueue()
        await self.flush()

    async def check_stale(self) -> None:
        self.follow_store()
        self.check_stale_now()

    # -- following what other processes wrote -------------------------------------------

    def follow_config(self) -> tuple[list[str], list[str]]:
        """Take up the hubs ``node.toml`` names, if it changed since last read
        (``hashhub-node hub add|remove``): a new hub's sync job is added and runs at
        once, a removed hub's job goes and its lists stop matching. A file that no
        longer reads is logged and changes nothing. Returns (added, removed)."""
        try:
            self.node.follow_config()
        except NodeConfigError as e:
            log.error("node.toml changed but cannot be read; following the hubs as before: %s", e)
        # Against the node's hubs, whoever took the change up (a serving worker's loop
        # may have: ``node.workers``).
        added = [name for name in self.node.hubs if name not in self.hubs]
        removed = [name for name in self.hubs if name not in self.node.hubs]
        for name in removed:
            self.hubs.pop(name, None)
            if self._scheduler.get_job(sync_job_id(name)) is not None:
                self._scheduler.remove_job(sync_job_id(name))
            log.info("stopped following hub %s: its lists no longer match", name)
        for name in added:
            self.hubs[name] = HubSchedule()
            if self._scheduler.get_job(sync_job_id(name)) is not None:
                self._scheduler.remove_job(sync_job_id(name))
            if self._scheduler.running:
                self._add_sync_job(name)
            log.info("following hub %s (%s)", name, self.node.hubs[name].settings.url)
        return added, removed

    def follow_store(self) -> list[str]:
        """Reload the match indexes if another process (``hashhub-node sync``) applied updates.

        Returns the lists whose stored version differed from the indexed one (a list
        of a hub other than ``default`` as ``hub/list``).
        """
        behind: list[str] = []
        for name, hub in self.node.hubs.items():
            stale = hub.matching.stale_lists()
            if stale:
                hub.matching.load_indexes(stale)
                behind += [shown_list(name, list_id) for list_id in stale]
        if behind:
            log.info("reloaded the indexes of %s from the store", ", ".join(behind))
        return behind

    def check_stale_now(self) -> set[str]:
        """Raise (or clear) the stale alarm; returns the lists that are stale now (a
        list of a hub other than ``default`` as ``hub/list``)."""
        status = self.node.status()
        self.metrics.refresh(status)
        stale = {
            shown_list(entry["hub"], entry["list"]) for entry in status["lists"] if entry["stale"]
        }
        for entry in status["lists"]:
            shown = shown_list(entry["hub"], entry["list"])
            if shown not in stale - self.stale_lists:
                continue
            if entry["version"] == 0:
                log.warning(
                    "STALE: %s has no verified version yet (last error %s)",
                    shown,
                    entry["last_error"],
                )
            else:
                log.warning(
                    "STALE: %s has no verified checkpoint newer than the root's maximum age "
                    "(last checkpoint %s, last success %s, last error %s); "
                    "still enforcing version %d",
                    shown,
                    entry["checkpoint_time"],
                    entry["last_success"],
                    entry["last_error"],
                    entry["version"],
                )
        for shown in self.stale_lists - stale:
            log.info("%s is fresh again", shown)
        self.stale_lists = stale
        return stale


_COMMON: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
"""Every job: one at a time, a missed run once, never dropped."""
