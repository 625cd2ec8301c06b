"""The schedule: staged changes publish and checkpoints are re-co-signed with no manual call.

Each test runs the real app with its scheduler (1-second intervals) on loopback and
watches what it publishes over HTTP.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hub.app import create_app
from hub.appkeys import HUB, METRICS, SCHEDULER
from hub.core import Hub
from hub.scheduler import jitter_for
from protocol import checkpoint_path
from tests.hub.conftest import LIST, Client, Follower, bearer, init_hub, md5, need, opened, pinned

WAIT = 15.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT} s: {what}")
        await asyncio.sleep(0.1)


def scheduled_home(
    tmp_path: Path, *, publish: int = 1, timestamp: int = 1, upstream: int = 300
) -> Path:
    home = tmp_path / "hub"
    init_hub(home, publish_interval=publish, timestamp_interval=timestamp)
    with opened(home) as hub:
        hub.ctx.home.joinpath("hub.toml").write_text(
            replace(hub.config, upstream_interval=upstream).to_toml()
        )
    return home


def admin_of(home: Path) -> str:
    with opened(home) as hub:
        return hub.access.create_operator_token("admin", "test-admin")


async def started(app: web.Application) -> Client:
    client: Client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    return client


async def checkpoint_size(client: Client, token: str) -> int:
    note = await need(client, checkpoint_path(LIST), token)
    return int(note.split(b"\n")[1])


async def cosigned_at(client: Client, home: Path, token: str) -> datetime:
    trusted = await Follower(client, pinned(home), token).trusted_hub()
    note = await need(client, checkpoint_path(LIST), token)
    return trusted.verify_checkpoint(LIST, note).timestamp


def sample(app: web.Application, name: str, **labels: str) -> float:
    return app[METRICS].registry.get_sample_value(name, labels) or 0.0


def test_each_job_runs_alone_coalesced_never_skipped_and_jittered() -> None:
    assert jitter_for(1) == pytest.approx(0.1)
    assert jitter_for(60) == pytest.approx(6.0)
    assert jitter_for(3600) == 30.0


async def test_staged_changes_publish_and_the_cosignature_advances_on_their_own(
    tmp_path: Path,
) -> None:
    home = scheduled_home(tmp_path)
    token = admin_of(home)
    app = create_app(home)
    client = await started(app)
    try:
        for job in app[SCHEDULER].jobs():
            assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, None)
        assert app[SCHEDULER].job_ids() == ["publish", "timestamp", "upstreams"]
        staged = await client.post(
            f"/v1/admin/lists/{LIST}/stage",
            json={"adds": [{"hash": md5("scheduled").hex()}]},
            headers=bearer(token),
        )
        assert staged.status == 200

        async def published() -> bool:
            return await checkpoint_size(client, token) == 3

        await eventually(published, "the staged change is published")
        state = await Follower(client, pinned(home), token).update(LIST)
        assert md5("scheduled") in state
        assert sample(app, "hashhub_publishes_total", list=LIST, trigger="scheduler") == 1.0

        first = await cosigned_at(client, home, token)

        async def recosigned() -> bool:
            return await cosigned_at(client, home, token) > first

        await eventually(recosigned, "the checkpoint's co-signature time advances")
        assert sample(app, "hashhub_checkpoint_refreshes_total") >= 1.0
    finally:
        await client.close()


async def test_an_interval_of_zero_leaves_its_job_out(tmp_path: Path) -> None:
    app = create_app(scheduled_home(tmp_path, publish=0, timestamp=3600, upstream=0))
    client = await started(app)
    try:
        assert app[SCHEDULER].job_ids() == ["timestamp"]
    finally:
        await client.close()


async def test_the_app_shuts_down_cleanly_with_nothing_left_running(tmp_path: Path) -> None:
    home = scheduled_home(tmp_path)
    app = create_app(home)
    client = await started(app)
    scheduler = app[SCHEDULER]

    async def ran() -> bool:
        return sample(app, "hashhub_checkpoint_refreshes_total") >= 1.0

    try:
        await eventually(ran, "a scheduled job runs")
        assert scheduler.running
    finally:
        await client.close()
    assert not scheduler.running
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with opened(home) as hub:  # the database was closed cleanly and opens again
        assert hub.keys.root().version >= 1


async def test_shutdown_waits_for_a_running_publish_to_finish(tmp_path: Path) -> None:
    home = scheduled_home(tmp_path, timestamp=0)
    token = admin_of(home)
    app = create_app(home)
    client = await started(app)
    publishing = threading.Event()

    def slow_step(step: str) -> None:
        if not publishing.is_set():
            publishing.set()
            time.sleep(0.5)  # on the database thread, in the middle of the publish

    def install(hub: Hub) -> None:
        hub.fault_hook = slow_step

    try:
        await app[HUB].call(install)
        staged = await client.post(
            f"/v1/admin/lists/{LIST}/stage",
            json={"adds": [{"hash": md5("during shutdown").hex()}]},
            headers=bearer(token),
        )
        assert staged.status == 200
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, publishing.wait, WAIT), "no publish started"
    finally:
        await client.close()
    # The job finished, including what it does after the database work.
    assert sample(app, "hashhub_publishes_total", list=LIST, trigger="scheduler") == 1.0
    with opened(home) as hub:
        assert hub.lists.row(LIST)["version"] == 3
        assert hub.lists.staged_count(LIST) == 0


async def test_a_failed_scheduled_publish_is_counted_and_the_next_run_publishes(
    tmp_path: Path,
) -> None:
    home = scheduled_home(tmp_path, timestamp=0)
    token = admin_of(home)
    delta_key = next((home / "keys").glob("delta-*.key"))
    shutil.move(delta_key, home / "away.key")
    app = create_app(home)
    client = await started(app)
    try:
        staged = await client.post(
            f"/v1/admin/lists/{LIST}/stage",
            json={"adds": [{"hash": md5("retry").hex()}]},
            headers=bearer(token),
        )
        assert staged.status == 200

        async def failed() -> bool:
            return sample(app, "hashhub_scheduled_job_failures_total", job="publish") >= 1.0

        await eventually(failed, "the publish job fails without its delta key")
        assert await checkpoint_size(client, token) == 2
        shutil.move(home / "away.key", delta_key)

        async def published() -> bool:
            return await checkpoint_size(client, token) == 3

        await eventually(published, "the next run publishes")
    finally:
        await client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_serves_until_sigterm_then_exits_cleanly_without_logging_tokens(
    tmp_path: Path,
) -> None:
    home = scheduled_home(tmp_path)
    token = admin_of(home)
    port = free_port()
    code = (
        "import sys; from pathlib import Path; from hub.app import run; "
        "run(Path(sys.argv[1]), '127.0.0.1', int(sys.argv[2]))"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        str(home),
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:

            async def up() -> bool:
                try:
                    async with session.get("/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await eventually(up, "the hub answers")
            async with session.get(f"/lists/{LIST}/checkpoint", headers=bearer(token)) as r:
                assert r.status == 200
            async with session.get("/v1/admin/status", headers=bearer(token)) as r:
                assert r.status == 200
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), WAIT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, output.decode()
    text = output.decode()
    assert "/v1/admin/status" in text  # requests are logged …
    assert token not in text  # … but never their token
    assert token.split("_", 1)[1][:12] not in text
    assert "Traceback" not in text
    assert "scheduler stopped" in text
