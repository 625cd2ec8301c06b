"""The hub's schedule: publish staged changes, re-issue checkpoint co-signatures, follow
the upstream hubs.

Three interval jobs on APScheduler 3.11's ``AsyncIOScheduler`` (4.0 is still a
pre-release), started inside the HTTP app's event loop:

- ``publish``: every ``publish_interval`` seconds, publish every list with staged
  changes (``Publishing.publish``);
- ``timestamp``: every ``timestamp_interval`` seconds, re-sign every checkpoint's
  timestamp co-signature (``Checkpoints.refresh``), even when nothing changed,
  so nodes can tell a live hub from a frozen one (PROTOCOL.md §13.3);
- ``upstreams``: every ``upstream_interval`` seconds, follow each upstream hub this
  hub follows, carry the selected entries over and publish them
  (``hub.following``), then read each exchange (``hub.bridging``); the job is the
  app's, which holds the HTTP session.

An interval of 0 leaves that job out. Each job runs with ``max_instances=1`` (a
slow publish is never overlapped by the next), ``coalesce=True`` (runs missed
while the loop was busy collapse into one), ``misfire_grace_time=None`` (a late
run still runs) and a jitter of a tenth of its interval (at most 30 s) so hubs
started together do not publish in lockstep.

The work itself runs on the database thread (``edge.database.DatabaseThread``), where it is one
SQLite transaction per list. Stopping (``edge.scheduler.GuardedScheduler``, as the
node's) pauses the scheduler, waits for a job that is already running to finish,
and only then shuts the scheduler down: APScheduler's own ``shutdown`` would cancel
the running coroutine, and although the database thread would still finish the
transaction, whatever the job does afterwards (clearing the HTTP caches, counting
the publish) would be lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC

from apscheduler.triggers.interval import IntervalTrigger

from edge.database import DatabaseThread
from edge.scheduler import FailedHook, GuardedScheduler, Job
from hub.core import Hub
from hub.services.publishing import PublishResult

__all__ = ["HubScheduler", "jitter_for"]

log = logging.getLogger("hashhub.scheduler")

MAX_JITTER_SECONDS = 30.0

PublishedHook = Callable[[list[PublishResult]], None]
RefreshedHook = Callable[[int], None]
FollowJob = Callable[[], Awaitable[object]]


def jitter_for(interval: int) -> float:
    """The jitter of a job that runs every ``interval`` seconds: a tenth, at most 30 s."""
    return min(interval / 10, MAX_JITTER_SECONDS)


def _ignore(*_args: object) -> None:
    return None


class HubScheduler(GuardedScheduler):
    """Runs the publish and timestamp jobs of one hub on the running event loop.

    Args:
        owner: the database thread holding the ``Hub``.
        publish_interval: seconds between scheduled publishes (0: no such job).
        timestamp_interval: seconds between re-issued co-signatures (0: no such job).
        on_published: called on the event loop with the results of a publish that
            published something.
        on_refreshed: called with the number of checkpoints re-signed.
        on_failed: called with the job's name when a job raised (it is logged too).
    """

    def __init__(
        self,
        owner: DatabaseThread[Hub],
        *,
        publish_interval: int,
        timestamp_interval: int,
        on_published: PublishedHook = _ignore,
        on_refreshed: RefreshedHook = _ignore,
        on_failed: FailedHook = _ignore,
        upstream_interval: int = 0,
        follow: FollowJob | None = None,
    ) -> None:
        if min(publish_interval, timestamp_interval, upstream_interval) < 0:
            raise ValueError("scheduler intervals are seconds ≥ 0 (0 turns a job off)")
        self._owner = owner
        self._intervals = {
            "publish": publish_interval,
            "timestamp": timestamp_interval,
            "upstreams": upstream_interval if follow is not None else 0,
        }
        self._follow = follow
        self._on_published = on_published
        self._on_refreshed = on_refreshed
        super().__init__(log, on_failed)

    def job_ids(self) -> list[str]:
        return [job.id for job in self.jobs()]

    def start(self) -> None:
        """Add the jobs whose interval is not 0 and start; needs a running event loop."""
        jobs: dict[str, Job] = {
            "publish": self.publish_staged,
            "timestamp": self.refresh_checkpoints,
            "upstreams": self.follow_upstreams,
        }
        for name, job in jobs.items():
            interval = self._intervals[name]
            if interval == 0:
                continue
            self._scheduler.add_job(
                self.guarded,
                IntervalTrigger(seconds=interval, jitter=jitter_for(interval), timezone=UTC),
                args=[name, job],
                id=name,
                name=f"hashhub {name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        self._scheduler.start()
        log.info(
            "scheduler started: publish every %ss, timestamp every %ss, upstreams every %ss "
            "(0 = off)",
            self._intervals["publish"],
            self._intervals["timestamp"],
            self._intervals["upstreams"],
        )

    async def publish_staged(self) -> list[PublishResult]:
        """Publish every list with staged changes, as the scheduler."""
        results = await self._owner.call(lambda hub: hub.publishing.publish(who="scheduler"))
        if results:
            log.info(
                "published %s",
                ", ".join(f"{r.list} v{r.version} (+{r.adds} -{r.removes})" for r in results),
            )
            self._on_published(results)
        return results

    async def refresh_checkpoints(self) -> int:
        """Re-issue every checkpoint's timestamp co-signature, as the scheduler."""
        n = await self._owner.call(lambda hub: hub.checkpoints.refresh(who="scheduler"))
        self._on_refreshed(n)
        return n

    async def follow_upstreams(self) -> None:
        """Follow the upstream hubs once, as the scheduler (the app's job)."""
        if self._follow is not None:
            await self._follow()
