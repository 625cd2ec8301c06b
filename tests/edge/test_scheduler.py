"""``edge.scheduler.GuardedScheduler``: a failed job is logged and reported; stop waits."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from edge.scheduler import GuardedScheduler

log = logging.getLogger("tests.edge.scheduler")


async def test_a_failing_job_is_logged_reported_and_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failed: list[str] = []
    scheduler = GuardedScheduler(log, failed.append)

    async def broken() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger=log.name):
        await scheduler.guarded("publish", broken)
    assert failed == ["publish"]
    [record] = [r for r in caplog.records if r.name == log.name]
    assert record.getMessage() == "scheduled publish job failed"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


async def test_a_job_that_succeeds_reports_nothing() -> None:
    failed: list[str] = []
    ran: list[str] = []
    scheduler = GuardedScheduler(log, failed.append)

    async def job() -> None:
        ran.append("yes")

    await scheduler.guarded("sync", job)
    assert (ran, failed) == (["yes"], [])


async def test_stop_lets_a_running_job_finish_then_shuts_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = GuardedScheduler(log)
    started = asyncio.Event()
    finished: list[str] = []

    async def slow() -> None:
        started.set()
        await asyncio.sleep(0.2)
        finished.append("done")

    scheduler._scheduler.add_job(
        scheduler.guarded,
        IntervalTrigger(seconds=3600, timezone=UTC),
        args=["slow", slow],
        id="slow",
        next_run_time=datetime.now(UTC),
    )
    scheduler._scheduler.start()
    assert scheduler.running
    assert [job.id for job in scheduler.jobs()] == ["slow"]
    await asyncio.wait_for(started.wait(), 5)

    with caplog.at_level(logging.INFO, logger=log.name):
        await scheduler.stop()
    assert finished == ["done"], "the running job was not cancelled"
    assert not scheduler.running
    assert "scheduler stopped" in [r.getMessage() for r in caplog.records if r.name == log.name]
    await scheduler.stop()  # a second stop is a no-op
