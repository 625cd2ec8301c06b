"""The node's schedule: ``NodeScheduler``, on APScheduler 3.11's ``AsyncIOScheduler``.

- ``sync``: one update (docs/design.md §4.2) at start, then every ``max(policy
  min_poll_interval, poll_interval)`` seconds plus up to ``poll_jitter``; after a
  failed or rejected update the wait doubles per failure up to ``max_backoff`` (never
  below the policy minimum, ``next_poll_delay``). Each update that applied something
  is followed by its acks and webhooks at once.
- ``outbox``: every few seconds, send due acks (in ``seq`` order) and deliver due
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
from datetime import UTC, datetime
from typing import Any

import aiohttp
from apscheduler.triggers.interval import IntervalTrigger

from edge.scheduler import GuardedScheduler, Job
from follow import ListOutcome
from node.metrics import NodeMetrics
from node.service import Node, deliver_webhooks, flush_acks, run_sync

__all__ = ["OUTBOX_INTERVAL", "STALE_CHECK_INTERVAL", "NodeScheduler", "next_poll_delay"]

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


class NodeScheduler(GuardedScheduler):
    """Runs the sync, outbox, ack and stale-alarm jobs of one node on the running loop.

    Args:
        node: the node (used from the event loop's thread only).
        session: the HTTP client session for the hub and the webhook.
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
        self.failures = 0
        self.last_run: datetime | None = None
        self.last_outcomes: list[ListOutcome] = []
        self.stale_lists: set[str] = set()
        self._outbox_lock = asyncio.Lock()
        super().__init__(log)

    # -- settings ----------------------------------------------------------------------

    def poll_interval(self) -> int:
        """``max(policy min_poll_interval, configured poll_interval)``, in seconds."""
        root = self.node.newest_root()
        policy_minimum = root.policy.min_poll_interval if root is not None else 0
        return max(policy_minimum, self.node.config.poll_interval, 1)

    def _sync_trigger(self) -> IntervalTrigger:
        delay = next_poll_delay(self.poll_interval(), self.failures, self.node.config.max_backoff)
        return IntervalTrigger(seconds=delay, jitter=self.node.config.poll_jitter, timezone=UTC)

    def snapshot(self) -> dict[str, Any]:
        """The schedule's state, for ``/v1/status``."""
        sync_job = self._scheduler.get_job("sync")
        next_run = getattr(sync_job, "next_run_time", None)
        return {
            "running": self.running,
            "poll_interval": self.poll_interval(),
            "consecutive_failures": self.failures,
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "next_run": next_run.astimezone(UTC).isoformat() if next_run else None,
            "last_outcomes": {o.list_id: o.status for o in self.last_outcomes},
            "stale_lists": sorted(self.stale_lists),
        }

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Add the jobs and start; needs a running event loop. The first update runs now."""
        config = self.node.config
        common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        jobs: list[tuple[str, IntervalTrigger, Job, bool]] = [
            ("sync", self._sync_trigger(), self.sync, True),
            (
                "outbox",
                IntervalTrigger(seconds=self.outbox_interval, timezone=UTC),
                self.flush,
                False,
            ),
            (
                "stale",
                IntervalTrigger(seconds=self.stale_interval, timezone=UTC),
                self.check_stale,
                False,
            ),
        ]
        if config.ack_interval > 0:  # 0: acks only after each applied version
            jobs.append(
                ("ack", IntervalTrigger(seconds=config.ack_interval, timezone=UTC), self.ack, False)
            )
        for name, trigger, job, at_once in jobs:
            extra = {"next_run_time": datetime.now(UTC)} if at_once else {}
            self._scheduler.add_job(
                self.guarded,
                trigger,
                args=[name, job],
                id=name,
                name=f"hashhub-node {name}",
                **common,
                **extra,
            )
        self._scheduler.start()
        log.info(
            "scheduler started: sync every %ss (+ up to %ss), acks every %ss",
            self.poll_interval(),
            config.poll_jitter,
            config.ack_interval,
        )

    # -- jobs --------------------------------------------------------------------------

    async def sync(self) -> list[ListOutcome]:
        """One update of every list, then acks and webhooks, back-off and the stale check."""
        self.last_run = datetime.now(UTC)
        if self.node.follow_credentials():
            log.info("took up the node's key and hub token as they are now on disk")
        try:
            if not self.node.token:
                log.warning("no hub token yet: run 'hashhub-node token set' after enrolment")
                outcomes = [
                    ListOutcome(list_id, "failed", 0, 0, "no hub token")
                    for list_id in self.node.config.lists
                ]
            else:
                outcomes = await run_sync(self.node, self.session)
                self.follow_store()
        except Exception:
            self.failures += 1
            self._after_sync()
            raise
        self.last_outcomes = outcomes
        ok = all(o.status in ("updated", "current") for o in outcomes)
        self.failures = 0 if ok else self.failures + 1
        for o in outcomes:
            self.metrics.syncs.labels(o.list_id, o.status).inc()
            if o.status == "updated":
                log.info("%s: applied version %d (was %d)", o.list_id, o.to_version, o.from_version)
            elif o.status in ("rejected", "failed"):
                log.warning("%s: update %s: %s", o.list_id, o.status, o.error)
        self._after_sync()
        if any(o.status == "updated" for o in outcomes):
            await self.flush()
        return outcomes

    def _after_sync(self) -> None:
        self.metrics.sync_failures.set(self.failures)
        if self._scheduler.running and self._scheduler.get_job("sync") is not None:
            self._scheduler.reschedule_job("sync", trigger=self._sync_trigger())
        self.check_stale_now()

    async def flush(self) -> None:
        """Send due acks and deliver due webhooks (one flush at a time)."""
        async with self._outbox_lock:
            self.node.follow_credentials()
            self.node.matching.write_checked()  # misses' checks, at most this job's interval old
            if self.node.token:
                confirmed, failed = await flush_acks(self.node, self.session)
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
        self.node.acks.enqueue()
        await self.flush()

    async def check_stale(self) -> None:
        self.follow_store()
        self.check_stale_now()

    def follow_store(self) -> list[str]:
        """Reload the match indexes if another process (``hashhub-node sync``) applied updates.

        Returns the lists whose stored version differed from the indexed one.
        """
        behind = self.node.matching.stale_lists()
        if behind:
            self.node.matching.load_indexes(behind)
            log.info("reloaded the indexes of %s from the store", ", ".join(behind))
        return behind

    def check_stale_now(self) -> set[str]:
        """Raise (or clear) the stale alarm; returns the lists that are stale now."""
        status = self.node.status()
        self.metrics.refresh(status)
        stale = {entry["list"] for entry in status["lists"] if entry["stale"]}
        for entry in status["lists"]:
            if entry["list"] not in stale - self.stale_lists:
                continue
            if entry["version"] == 0:
                log.warning(
                    "STALE: %s has no verified version yet (last error %s)",
                    entry["list"],
                    entry["last_error"],
                )
            else:
                log.warning(
                    "STALE: %s has no verified checkpoint newer than the root's maximum age "
                    "(last checkpoint %s, last success %s, last error %s); "
                    "still enforcing version %d",
                    entry["list"],
                    entry["checkpoint_time"],
                    entry["last_success"],
                    entry["last_error"],
                    entry["version"],
                )
        for list_id in self.stale_lists - stale:
            log.info("%s is fresh again", list_id)
        self.stale_lists = stale
        return stale
