"""What the hub's and the node's schedules share: guarded jobs and a stop that lets them finish.

Both run their jobs on APScheduler 3.11's ``AsyncIOScheduler`` inside the HTTP
app's event loop. ``GuardedScheduler`` is the part that does not depend on which
jobs those are:

- ``guarded`` runs one job: a job that raises is logged with its traceback and
  reported to ``on_failed`` (the hub counts it in a metric), and the scheduler
  goes on; APScheduler would otherwise log it under its own name only.
- ``stop`` pauses the scheduler, waits for a job that is already running to
  finish, and only then shuts it down. APScheduler's own ``shutdown`` would cancel
  the running coroutine: a publish or an update would be cut off after its
  transaction and before what follows it (clearing caches, sending acks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

__all__ = ["FailedHook", "GuardedScheduler", "Job"]

Job = Callable[[], Awaitable[object]]
"""A scheduled job: a coroutine function without arguments."""
FailedHook = Callable[[str], None]
"""Called with a job's name when the job raised."""


def _ignore(_name: str) -> None:
    return None


class GuardedScheduler:
    """An ``AsyncIOScheduler`` whose jobs run through ``guarded``, and a ``stop`` that waits.

    Args:
        log: where a failed job, the start and the stop are logged.
        on_failed: called with the job's name when a job raised (it is logged too).
    """

    def __init__(self, log: logging.Logger, on_failed: FailedHook = _ignore) -> None:
        self._log = log
        self._on_failed = on_failed
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._running: set[asyncio.Task[Any]] = set()

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def jobs(self) -> list[Any]:
        """The scheduled APScheduler ``Job``s, by id (to inspect their settings)."""
        return sorted(self._scheduler.get_jobs(), key=lambda job: job.id)

    async def guarded(self, name: str, job: Job) -> None:
        """Run ``job``, logging and reporting a failure instead of raising it."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await job()
        except Exception:
            self._log.exception("scheduled %s job failed", name)
            self._on_failed(name)
        finally:
            if task is not None:
                self._running.discard(task)

    async def stop(self) -> None:
        """Pause, let a job that is running finish, then shut the scheduler down."""
        if not self._scheduler.running:
            return
        self._scheduler.pause()
        # A job the scheduler handed to its executor just now starts on the next turn.
        await asyncio.sleep(0)
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        self._scheduler.shutdown(wait=False)
        # AsyncIOScheduler shuts down in a callback on the loop: let it run.
        while self._scheduler.running:
            await asyncio.sleep(0)
        self._log.info("scheduler stopped")
