"""``hashhub-node run --workers 2``: two processes serving one node home that follows a real hub.

The installed script runs as the platform runs it, over a node home initialised
against the real hub of ``conftest``; requests go to the one port over fresh
connections, which the kernel spreads over the workers, and each answer's
``Hashhub-Worker`` header says which worker served it. Worker 0 syncs; the other
takes up what it applied within about a second, and so do both of a version that
``hashhub-node sync`` applies beside them. Concurrent matches to both workers are
each recorded once, with exact ``checked`` totals once the fleet has stopped;
SIGTERM stops every worker (exit 0); a worker that dies stops the other (exit 1);
workers whose parent was killed stop on their own. The last test holds
``take_up`` (what a worker's loop does) to rebuilding only the lists that moved.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.config import read_secret
from node.service import Node
from node.workers import take_up
from tests.node.conftest import MD5_LIST, PDQ_LIST, HubServer, init_node_home, md5, sync
from tests.node.test_cli import SCRIPT, free_port

WORKERS = 2


@dataclass
class Fleet:
    """One ``hashhub-node run --workers 2`` process and how to reach its workers."""

    home: Path
    process: asyncio.subprocess.Process
    base: str
    headers: dict[str, str]
    log: Path

    async def ask(
        self, method: str, path: str, json: Any = None
    ) -> tuple[int, dict[str, Any], aiohttp.typedefs.LooseHeaders]:
        """One request on a connection of its own: (worker, body, headers)."""
        connector = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.request(method, self.base + path, json=json, headers=self.headers) as r,
        ):
            body = await r.json()
            assert r.status == 200, body
            return int(r.headers["Hashhub-Worker"]), body, r.headers

    async def on_worker(self, worker: int, method: str, path: str, json: Any = None) -> Any:
        """The answer of ``worker`` (new connections until the kernel gives it one)."""
        for _ in range(200):
            served_by, body, _ = await self.ask(method, path, json)
            if served_by == worker:
                return body
        raise AssertionError(f"worker {worker} never answered")

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


async def start_fleet(home: Path, tmp_path: Path) -> Fleet:
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            str(SCRIPT),
            "run",
            "--workers",
            str(WORKERS),
            "--port",
            str(port),
            "--home",
            str(home),
            stdout=out,
            stderr=out,
        )
    headers = {"Authorization": f"Bearer {read_secret(home / 'api-token')}"}
    fleet = Fleet(home, process, f"http://127.0.0.1:{port}", headers, log)
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        try:
            await fleet.ask("GET", "/healthz")
            return fleet
        except aiohttp.ClientConnectionError:
            assert process.returncode is None, fleet.stderr()
            assert asyncio.get_running_loop().time() < deadline, "the workers never answered"
            await asyncio.sleep(0.1)


async def stop(fleet: Fleet) -> int:
    fleet.process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(fleet.process.wait(), 60)


@pytest.fixture
async def fleet(tmp_path: Path, hub_server: HubServer) -> AsyncIterator[Fleet]:
    """A fleet over a node home that has never synced: worker 0's first sync is its own."""
    home = init_node_home(tmp_path / "node", hub_server, replica="fleet-a")
    started = await start_fleet(home, tmp_path)
    try:
        yield started
    finally:
        if started.process.returncode is None:
            started.process.kill()
            await started.process.wait()


def md5_query(*labels: object) -> dict[str, Any]:
    return {"hashes": [{"type": "md5", "hash": md5(label).hex()} for label in labels]}


async def matched_by(fleet: Fleet, worker: int, label: object) -> list[Any]:
    body = await fleet.on_worker(worker, "POST", "/v1/match", md5_query(label))
    return list(body["matches"])


async def within(seconds: float, fleet: Fleet, worker: int, label: object) -> float:
    """Seconds until ``worker`` matches ``label`` (failing after ``seconds``)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not await matched_by(fleet, worker, label):
        assert loop.time() - start < seconds, f"worker {worker} did not take it up"
        await asyncio.sleep(0.05)
    return loop.time() - start


def store_counts(home: Path) -> tuple[int, int, list[str]]:
    """(checked, matched) of the md5 list as stored, and every match event's id."""
    with sqlite3.connect(home / "node.db") as db:
        counters = dict(
            db.execute(
                "SELECT name, value FROM counters WHERE list_id = ? AND hash = ''", [MD5_LIST]
            ).fetchall()
        )
        ids = [row[0] for row in db.execute("SELECT id FROM match_events").fetchall()]
    return counters.get("checked", 0), counters.get("matched", 0), ids


async def test_both_workers_answer_and_take_up_each_version_within_two_seconds(
    fleet: Fleet, hub_server: HubServer
) -> None:
    loop = asyncio.get_running_loop()
    while True:  # worker 0's first sync: the status (either worker) reads the store
        _, status, _ = await fleet.ask("GET", "/v1/status")
        if {e["list"]: e["version"] for e in status["lists"]}[MD5_LIST] == 1:
            break
        await asyncio.sleep(0.05)
    synced_at = loop.time()
    for worker in range(WORKERS):
        await within(2.0 - (loop.time() - synced_at), fleet, worker, 1)

    statuses = [await fleet.on_worker(w, "GET", "/v1/status") for w in range(WORKERS)]
    assert [s["worker"]["index"] for s in statuses] == [0, 1]
    assert all(s["worker"]["workers"] == WORKERS for s in statuses)
    assert len({s["worker"]["pid"] for s in statuses}) == WORKERS
    assert statuses[0]["schedule"]["running"] is True  # worker 0 syncs
    assert statuses[1]["schedule"] is None  # the other only serves
    assert {s["replica"] for s in statuses} == {"fleet-a"}

    # A version applied beside the fleet ('hashhub-node sync'): both take it up.
    assert await hub_server.publish(MD5_LIST, adds=[md5("new")], removes=[md5(1)]) == 2
    beside = Node.open(fleet.home)
    try:
        assert {o.list_id: o.status for o in await sync(beside)}[MD5_LIST] == "updated"
    finally:
        beside.close()
    applied_at = loop.time()
    for worker in range(WORKERS):
        await within(2.0 - (loop.time() - applied_at), fleet, worker, "new")
        assert await matched_by(fleet, worker, 1) == []  # removed in version 2
        [match] = await matched_by(fleet, worker, "new")
        assert match["version"] == 2
        assert match["match_id"].startswith("fleet-a.")
    assert await stop(fleet) == 0, fleet.stderr()


async def test_concurrent_matches_are_each_recorded_once_and_checked_counts_are_exact(
    fleet: Fleet,
) -> None:
    while True:
        _, status, _ = await fleet.ask("GET", "/v1/status")
        if all(e["version"] == 1 for e in status["lists"]):
            break
        await asyncio.sleep(0.05)
    # Until both workers match version 1: every probe counts, as the burst's requests do.
    answers: list[tuple[int, dict[str, Any], Any]] = []
    while {w for w, body, _ in answers if body["matches"]} != set(range(WORKERS)):
        answers.append(await fleet.ask("POST", "/v1/match", md5_query(0)))
    probes = len(answers)
    probe_hits = sum(len(body["matches"]) for _, body, _ in answers)

    hits, misses = 120, 180
    labels: list[object] = [i % 5 for i in range(hits)] + [f"miss-{i}" for i in range(misses)]
    burst = await asyncio.gather(
        *(fleet.ask("POST", "/v1/match", md5_query(label)) for label in labels)
    )
    assert {worker for worker, _, _ in burst} == set(range(WORKERS)), "every worker served some"
    assert [len(body["matches"]) for _, body, _ in burst] == [1] * hits + [0] * misses
    answers += burst
    issued = [m["match_id"] for _, body, _ in answers for m in body["matches"]]
    assert len(issued) == len(set(issued)) == probe_hits + hits
    assert all(i.startswith("fleet-a.") for i in issued)

    assert await stop(fleet) == 0, fleet.stderr()
    checked, matched, recorded = store_counts(fleet.home)
    assert sorted(recorded) == sorted(issued)  # each recorded once, none unanswered
    # Every match is counted once. A probe that missed was answered by a worker that had
    # not yet taken up version 1: checked against no list (no index yet), or against
    # the list as it stood at version 0 (empty), so each counts as checked at most once;
    # the burst, once both workers hold version 1, counts exactly.
    assert matched == probe_hits + hits
    assert probe_hits + hits + misses <= checked <= probes + hits + misses
    assert probes >= probe_hits


async def test_sigterm_stops_every_worker_and_a_worker_that_dies_stops_the_node(
    fleet: Fleet, tmp_path: Path
) -> None:
    pids = [
        (await fleet.on_worker(w, "GET", "/v1/status"))["worker"]["pid"] for w in range(WORKERS)
    ]
    assert await stop(fleet) == 0, fleet.stderr()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "Traceback" not in fleet.stderr()
    assert "all 2 workers stopped" in fleet.stderr()

    again = await start_fleet(fleet.home, tmp_path)
    try:
        first, second = [
            (await again.on_worker(w, "GET", "/v1/status"))["worker"]["pid"] for w in range(WORKERS)
        ]
        os.kill(second, signal.SIGKILL)
        assert await asyncio.wait_for(again.process.wait(), 60) == 1
    finally:
        if again.process.returncode is None:
            again.process.kill()
            await again.process.wait()
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)
    assert f"worker 1 (pid {second}) exited with signal 9" in again.stderr()
    assert "Error: worker 1" in again.stderr()


def gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


async def test_workers_whose_parent_was_killed_stop_on_their_own(fleet: Fleet) -> None:
    pids = [
        (await fleet.on_worker(w, "GET", "/v1/status"))["worker"]["pid"] for w in range(WORKERS)
    ]
    fleet.process.kill()  # SIGKILL: the parent cannot stop them
    await fleet.process.wait()
    deadline = asyncio.get_running_loop().time() + 20
    while not all(gone(pid) for pid in pids):
        assert asyncio.get_running_loop().time() < deadline, "orphaned workers kept running"
        await asyncio.sleep(0.1)
    assert "the parent process is gone; stopping" in fleet.stderr()


async def test_a_serving_worker_rebuilds_only_the_lists_another_process_moved(
    node_home: Path, hub_server: HubServer
) -> None:
    syncing, serving = Node.open(node_home), Node.open(node_home)
    try:
        await sync(syncing)
        assert await take_up(serving) == [f"{MD5_LIST} v1", f"{PDQ_LIST} v1"]
        pdq_index = serving.hub().matching.indexes[PDQ_LIST]
        assert await take_up(serving) == []  # nothing moved: nothing read

        await hub_server.publish(MD5_LIST, adds=[md5("new")])
        await sync(syncing)
        assert serving.matching.look({"md5": [md5("new")]}) == []  # still version 1
        assert await take_up(serving) == [f"{MD5_LIST} v2"]
        assert serving.hub().matching.indexes[PDQ_LIST] is pdq_index  # untouched
        [hit] = serving.matching.look({"md5": [md5("new")]})
        assert hit.version == 2
    finally:
        syncing.close()
        serving.close()
