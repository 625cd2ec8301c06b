"""Faults from outside the code: the hub down, a full disk, a locked database, a clock that jumps.

Each fault ends the same way: a clear error (an outcome ``failed`` or ``rejected``,
an exit status, a one-line message or a JSON error; never a traceback), the node
still enforcing its last good list, nothing lost, and a recovery once the fault
is gone. The parts are real: the hub's HTTP app on loopback, real nodes and their
SQLite files, the ``hashhub-node`` and ``hashhub`` commands; the faults are real
too (a closed port, SQLite's own ``SQLITE_FULL`` from ``PRAGMA max_page_count``, a
process whose writes the kernel refuses past ``RLIMIT_FSIZE``,
another process holding ``BEGIN EXCLUSIVE``, a clock set elsewhere).

The disk-full and locked-database answers are ADR 0016's: an update the disk refuses
is ``failed`` (exit 4), an API request 507; a transaction begins ``IMMEDIATE`` and so
waits for another process's write lock, up to the busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner, Result

from hub import store as hub_store
from hub.cli import main as hub_main
from hub.intake import Intake
from node import store as node_store
from node.api.keys import NODE
from node.app import create_app as create_node_app
from node.cli import EXIT_FAILED
from node.cli import main as node_main
from node.config import read_secret
from node.service import Node, flush_acks
from protocol import HashhubError, parse_time
from tests.node.fixtures_sync import (
    NODE_ID,
    Clock,
    HubApp,
    StoreImage,
    make_node,
    md5,
    statuses,
    sync_once,
)

LIST = "tid-md5"
MAX_CHECKPOINT_AGE = 86_400
"""The hub's default policy: a checkpoint co-signed longer ago than this is stale."""

HOLD_SECONDS = 1.5
"""How long another process keeps a database locked."""

LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
conn.close()
"""


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubApp]:
    app = HubApp.init(tmp_path / "hub", Clock())
    app.create_list(LIST, "md5")
    app.publish(LIST, adds=[md5(i) for i in range(5)])
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
def node(tmp_path: Path, hub: HubApp) -> Iterator[Node]:
    made = make_node(tmp_path / "node", hub, [LIST])
    try:
        yield made
    finally:
        made.close()


async def invoke(command: Any, *args: str) -> Result:
    """Run a command line on a worker thread, so the hub on this loop can answer it."""
    return await asyncio.to_thread(CliRunner().invoke, command, list(args))


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )


def enforced(node: Node, label: object) -> int | None:
    """The version under which ``node`` matches md5(label), or None (the match is recorded)."""
    found = node.matching.match_hashes({"md5": [md5(label)]})
    return found[0].version if found else None


@contextmanager
def fresh(node: Node) -> Iterator[Node]:
    """The node as a new process would open it (its indexes built from the store)."""
    opened = Node.open(node.home, now=node.now)
    try:
        yield opened
    finally:
        opened.close()


def outbox_seqs(node: Node) -> list[int]:
    return [r["seq"] for r in node.store.db.query("SELECT seq FROM ack_outbox ORDER BY seq")]


def checkpoint_time_of(node: Node) -> str:
    return str(StoreImage.of(node).trust(LIST)["checkpoint_time"])


# -- the hub down for a while ---------------------------------------------------------------


async def test_hub_down_sync_fails_cleanly_acks_wait_and_arrive_once_when_it_is_back(
    hub: HubApp, node: Node
) -> None:
    home = str(node.home)
    first = await invoke(node_main, "sync", "--home", home)
    assert first.exit_code == 0, first.output
    assert "updated v0 -> v1" in first.stdout
    assert "acks: 1 confirmed, 0 failed" in first.stdout
    hub.publish(LIST, adds=[md5("v2")])
    with fresh(node) as running:
        assert enforced(running, 1) == 1  # a match, so the next ack carries counters
        running.acks.enqueue()
    await hub.stop()
    before = StoreImage.of(node)

    down = await invoke(node_main, "sync", "--home", home)

    assert down.exit_code == EXIT_FAILED, down.output
    no_traceback(down)
    assert f"{LIST}: failed, still enforcing v1: could not fetch" in down.stdout, down.stdout
    assert "acks: 0 confirmed, 1 failed" in down.stdout
    assert StoreImage.of(node).lists == before.lists, "the stored lists are untouched"
    assert outbox_seqs(node) == [2], "the ack waits in the outbox"
    (row,) = node.store.db.query("SELECT last_error FROM lists WHERE id = ?", [LIST])
    assert row["last_error"].startswith("could not fetch: cannot connect to "), row
    with fresh(node) as running:
        assert enforced(running, 1) == 1, "the last good list is still enforced"
        assert enforced(running, "v2") is None

    await hub.start()  # a new app on the same home and port
    await asyncio.sleep(3)  # the failed ack's back-off (2 s on the system clock) runs out
    back = await invoke(node_main, "sync", "--home", home)

    assert back.exit_code == 0, back.output
    assert "updated v1 -> v2" in back.stdout
    assert "acks: 2 confirmed, 0 failed" in back.stdout, "the waiting ack and the new one"
    with fresh(node) as running:
        assert enforced(running, "v2") == 2
    assert outbox_seqs(node) == []
    assert [a.seq for a in hub.acks(NODE_ID)] == [1, 2, 3], "every ack, exactly once"
    again = await invoke(node_main, "sync", "--home", home)
    assert again.exit_code == 0, again.output
    assert [a.seq for a in hub.acks(NODE_ID)] == [1, 2, 3], "no ack sent twice"


# -- the node's disk full --------------------------------------------------------------------


def fill_disk(conn: sqlite3.Connection) -> None:
    """Let the database grow no more: SQLite answers SQLITE_FULL for any new page."""
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    conn.execute(f"PRAGMA max_page_count = {pages}")


def free_disk(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA max_page_count = 1073741823")


async def test_a_full_disk_fails_the_update_changes_nothing_and_the_next_sync_completes(
    hub: HubApp, node: Node
) -> None:
    await sync_once(node)
    big = [md5(f"big-{i}") for i in range(20_000)]
    hub.publish(LIST, adds=big)
    fill_disk(node.store.db.conn)
    before = StoreImage.of(node)

    outcomes, _ = await sync_once(node)  # the update's commit does not fit

    assert statuses(outcomes) == {LIST: ("failed", 1, 1)}, outcomes
    assert outcomes[0].error == "disk full: database or disk is full"
    before.unchanged(node)
    assert enforced(node, 1) == 1
    assert enforced(node, "big-7") is None
    (row,) = node.store.db.query("SELECT last_error FROM lists WHERE id = ?", [LIST])
    assert row["last_error"] == outcomes[0].error, "the failure is noted (it fits in place)"

    free_disk(node.store.db.conn)
    outcomes, _ = await sync_once(node)

    assert statuses(outcomes) == {LIST: ("updated", 1, 2)}
    assert enforced(node, "big-7") == 2
    assert all(ok for _, ok, _, _ in node.store.verify())


FILE_SIZE_LIMITED = """
import os, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
os.execv(sys.argv[2], sys.argv[2:])
"""


async def run_with_file_size_limit(limit: int, *args: str) -> tuple[int, str, str]:
    """Run a command in a process that can grow no file beyond ``limit`` bytes.

    The kernel refuses the write (``RLIMIT_FSIZE``), as a full disk would; it is the one
    way to run out of room in another process (``PRAGMA max_page_count`` only holds
    on the connection that sets it) without a small file system of its own.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FILE_SIZE_LIMITED,
        str(limit),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.slow  # two runs of the command, each its own process
async def test_a_full_disk_ends_the_sync_command_with_one_clear_line_then_it_works(
    hub: HubApp, node: Node
) -> None:
    await sync_once(node)
    hub.publish(LIST, adds=[md5(f"big-{i}") for i in range(20_000)])
    before = StoreImage.of(node)
    room = max(f.stat().st_size for f in node.home.iterdir() if f.is_file()) + 64 * 1024
    command = str(Path(sys.executable).parent / "hashhub-node")

    code, out, err = await run_with_file_size_limit(room, command, "sync", "--home", str(node.home))

    assert code == EXIT_FAILED, (out, err)
    assert "Traceback" not in err
    assert err == "", err
    # EFBIG reaches SQLite as an I/O error (ENOSPC would read "database or disk is full").
    assert out.splitlines()[0] == (
        f"{LIST}: failed, still enforcing v1: disk full or failing: disk I/O error"
    ), out
    before.unchanged(node)
    with fresh(node) as running:
        assert enforced(running, 1) == 1, "the last good list is still enforced"

    code, out, err = await run_with_file_size_limit(
        1 << 40, command, "sync", "--home", str(node.home)
    )

    assert code == 0, (out, err)
    assert "updated v1 -> v2" in out
    with fresh(node) as running:
        assert enforced(running, "big-7") == 2


def match_rows(node: Node) -> tuple[int, list[tuple[Any, ...]]]:
    (events,) = node.store.db.query("SELECT count(*) AS n FROM match_events")
    counters = [tuple(r.values()) for r in node.store.db.query("SELECT * FROM counters")]
    return events["n"], sorted(counters)


def content_rows(node: Node) -> int:
    (row,) = node.store.db.query("SELECT count(*) AS n FROM content")
    return int(row["n"])


async def insufficient_storage(response: aiohttp.ClientResponse) -> None:
    """The full-disk answer: 507 in the one JSON error shape, a message that says so."""
    assert response.status == 507, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"]["status"] == 507
    assert body["error"]["code"] == "insufficient_storage"
    message = body["error"]["message"]
    assert "disk full: database or disk is full" in message, message
    assert "nothing was recorded" in message, message
    assert "Traceback" not in message


@pytest.fixture
async def node_api(hub: HubApp, node: Node) -> AsyncIterator[tuple[TestClient[Any, Any], Node]]:
    """The node's real API app on loopback (after one sync), and the ``Node`` it serves."""
    await sync_once(node)
    server = TestServer(create_node_app(node.home, now=hub.clock, schedule=False))
    async with TestClient(server) as api:
        api.session.headers["Authorization"] = f"Bearer {read_secret(node.home / 'api-token')}"
        yield api, server.app[NODE]


async def test_a_full_disk_answers_a_match_with_507_and_writes_nothing_half(
    node_api: tuple[TestClient[Any, Any], Node],
) -> None:
    api, served = node_api
    fill_disk(served.store.db.conn)
    query = {"hashes": [{"type": "md5", "hash": md5(1).hex()}]}
    for _ in range(2_000):
        written = match_rows(served)
        response = await api.post("/v1/match", json=query)
        if response.status != 200:
            break
    else:
        pytest.fail("the database never filled up")

    await insufficient_storage(response)
    assert match_rows(served) == written, "no match event or counter half-written"

    free_disk(served.store.db.conn)
    response = await api.post("/v1/match", json=query)
    assert response.status == 200, await response.text()
    events, _ = match_rows(served)
    assert events == written[0] + 1


async def test_a_full_disk_answers_content_and_outcomes_with_507_and_stores_nothing_half(
    node_api: tuple[TestClient[Any, Any], Node],
) -> None:
    """A registration is stored with its match events or not at all; so is an outcome."""
    api, served = node_api
    many = {"hashes": [{"type": "md5", "hash": md5(1).hex()}] * 256}
    response = await api.post("/v1/match", json=many)
    assert response.status == 200, await response.text()
    match_ids = [m["match_id"] for m in (await response.json())["matches"]]
    assert len(match_ids) == 256
    fill_disk(served.store.db.conn)
    for n in range(2_000):
        written = match_rows(served), content_rows(served)
        content = {"content_id": f"post-{n}", "hashes": [{"type": "md5", "hash": md5(1).hex()}]}
        response = await api.post("/v1/content", json=content)
        if response.status != 201:
            break
    else:
        pytest.fail("the database never filled up")

    await insufficient_storage(response)
    assert (match_rows(served), content_rows(served)) == written, "nothing of it stored"

    # Each outcome makes its match event longer: the pages left fill up within 256.
    for match_id in match_ids:
        before = match_rows(served)
        response = await api.post(f"/v1/matches/{match_id}/outcome", json={"outcome": "blocked"})
        if response.status != 200:
            break
    else:
        pytest.fail("every outcome fitted")

    await insufficient_storage(response)
    assert match_rows(served) == before, "neither the outcome nor its counters stored"
    (event,) = served.store.db.query("SELECT outcome FROM match_events WHERE id = ?", [match_id])
    assert event["outcome"] is None

    free_disk(served.store.db.conn)
    response = await api.post(f"/v1/matches/{match_id}/outcome", json={"outcome": "blocked"})
    assert response.status == 200, await response.text()
    assert (await response.json())["duplicate"] is False
    response = await api.post("/v1/content", json=content)
    assert response.status == 201, await response.text()
    assert content_rows(served) == written[1] + 1


# -- a database locked by another process ----------------------------------------------------


async def hold_lock(database: Path) -> asyncio.subprocess.Process:
    """Another process holding ``BEGIN EXCLUSIVE`` on ``database`` for ``HOLD_SECONDS``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOCKER,
        str(database),
        str(HOLD_SECONDS),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert await process.stdout.readline() == b"locked\n"
    return process


async def test_a_node_database_locked_by_another_process_makes_sync_wait_then_succeed(
    hub: HubApp, node: Node
) -> None:
    await sync_once(node)
    hub.publish(LIST, adds=[md5("v2")])
    locker = await hold_lock(node.home / node.config.database)

    started = time.monotonic()
    result = await invoke(node_main, "sync", "--home", str(node.home))
    waited = time.monotonic() - started

    assert await locker.wait() == 0
    assert result.exit_code == 0, result.output
    no_traceback(result)
    assert "updated v1 -> v2" in result.stdout
    assert "acks: 2 confirmed, 0 failed" in result.stdout
    assert waited >= HOLD_SECONDS - 0.3, "it waited for the lock (busy timeout), not failed"
    with fresh(node) as running:
        assert enforced(running, "v2") == 2
        assert enforced(running, 1) == 2
    assert [a.seq for a in hub.acks(NODE_ID)] == [1, 2]


async def test_a_node_database_locked_by_another_process_makes_signing_an_ack_wait(
    hub: HubApp, node: Node
) -> None:
    """Queuing an ack reads the last ``seq``, then writes: it waits for the lock too."""
    await sync_once(node)
    async with aiohttp.ClientSession() as session:
        await flush_acks(node, session)
    locker = await hold_lock(node.home / node.config.database)

    started = time.monotonic()
    result = await invoke(node_main, "acks", "flush", "--sign", "--home", str(node.home))
    waited = time.monotonic() - started

    assert await locker.wait() == 0
    assert result.exit_code == 0, result.output
    no_traceback(result)
    assert "signed 1 ack(s) (seq 2)" in result.stdout, result.stdout
    assert "acks: 1 confirmed, 0 failed, 0 pending" in result.stdout
    assert waited >= HOLD_SECONDS - 0.3, "it waited for the lock (busy timeout), not failed"
    assert [a.seq for a in hub.acks(NODE_ID)] == [1, 2]


async def test_a_node_database_locked_past_the_busy_timeout_fails_clearly_then_it_works(
    hub: HubApp, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the busy timeout (shortened from 30 s) a command gives up: one line, exit 1."""
    await sync_once(node)
    async with aiohttp.ClientSession() as session:
        await flush_acks(node, session)
    monkeypatch.setattr(node_store, "BUSY_TIMEOUT", 0.3)
    locker = await hold_lock(node.home / node.config.database)

    locked = await invoke(node_main, "acks", "flush", "--sign", "--home", str(node.home))
    still_held = locker.returncode is None

    assert still_held, "the command ended while the other process still held the lock"
    assert locked.exit_code == 1, locked.output
    no_traceback(locked)
    assert locked.stderr.strip() == (
        "Error: database: database is locked (another process held its write lock for over "
        "0.3 s); run the command again"
    ), locked.stderr
    assert await locker.wait() == 0
    assert outbox_seqs(node) == [], "no ack was queued"

    retried = await invoke(node_main, "acks", "flush", "--sign", "--home", str(node.home))

    assert retried.exit_code == 0, retried.output
    assert "signed 1 ack(s) (seq 2)" in retried.stdout, retried.stdout
    assert [a.seq for a in hub.acks(NODE_ID)] == [1, 2]


def staged_hub(tmp_path: Path) -> HubApp:
    """A hub with three hashes staged for its first publish."""
    hub = HubApp.init(tmp_path / "hub", Clock())
    hub.create_list(LIST, "md5")
    with hub.opened() as opened:
        opened.lists.stage(LIST, adds=[Intake(md5(i)) for i in range(3)])
    return hub


async def test_a_hub_database_locked_by_another_process_makes_publish_wait_then_succeed(
    tmp_path: Path,
) -> None:
    """``hashhub publish`` reads, then writes: it takes the write lock first, and waits."""
    hub = staged_hub(tmp_path)
    locker = await hold_lock(hub.home / "hub.db")

    started = time.monotonic()
    published = await invoke(hub_main, "publish", "--home", str(hub.home))
    waited = time.monotonic() - started

    assert await locker.wait() == 0
    assert published.exit_code == 0, published.output
    no_traceback(published)
    assert f"{LIST}: v1  +3 -0" in published.stdout, "every staged hash, none lost"
    assert waited >= HOLD_SECONDS - 0.3, "it waited for the lock (busy timeout), not failed"
    assert hub.status(LIST).version == 1


async def test_a_hub_database_locked_past_the_busy_timeout_fails_publish_clearly_then_it_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the busy timeout the command gives up: one clear line, exit 1, nothing lost.

    The timeout (30 s in production) is shortened so that the lock outlasts it.
    """
    hub = staged_hub(tmp_path)
    monkeypatch.setattr(hub_store, "BUSY_TIMEOUT", 0.3)
    locker = await hold_lock(hub.home / "hub.db")

    started = time.monotonic()
    locked = await invoke(hub_main, "publish", "--home", str(hub.home))
    waited = time.monotonic() - started
    still_held = locker.returncode is None

    assert still_held, "the command ended while the other process still held the lock"
    assert locked.exit_code == 1, locked.output
    no_traceback(locked)
    assert locked.stderr.strip() == (
        "Error: database: database is locked (another process held its write lock for over "
        "0.3 s); run the command again"
    ), locked.stderr
    assert waited >= 0.3, "it waited for the busy timeout"
    assert await locker.wait() == 0
    assert hub.status(LIST).version == 0, "nothing was published"

    retried = await invoke(hub_main, "publish", "--home", str(hub.home))

    assert retried.exit_code == 0, retried.output
    assert f"{LIST}: v1  +3 -0" in retried.stdout, "every staged hash, none lost"
    assert hub.status(LIST).version == 1


PUBLISHER = """
import sys, time
from pathlib import Path
from hub.core import Hub
hub = Hub.open(Path(sys.argv[1]))
def hold(step):
    if step == "head":  # inside the transaction, its files written, its head not yet
        print("inside", flush=True)
        time.sleep(float(sys.argv[2]))
hub.fault_hook = hold
print(" ".join(f"v{r.version}" for r in hub.publishing.publish(who="other")), flush=True)
hub.close()
"""


async def test_two_publishes_at_once_from_two_processes_publish_each_change_once(
    tmp_path: Path,
) -> None:
    """A publish that waited for another process's publish builds on its version.

    What a publish builds on (head, staged rows) is read inside its transaction,
    after the write lock: read before it, the second publish would build version 1
    again on version 0 and be refused by the first one's files.
    """
    hub = staged_hub(tmp_path)
    other = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PUBLISHER,
        str(hub.home),
        str(HOLD_SECONDS),
        stdout=asyncio.subprocess.PIPE,
    )
    assert other.stdout is not None
    assert await other.stdout.readline() == b"inside\n"

    second = await invoke(hub_main, "publish", "--home", str(hub.home))

    assert await other.stdout.readline() == b"v1\n", "the other process published v1"
    assert await other.wait() == 0
    assert second.exit_code == 0, second.output
    no_traceback(second)
    assert "+3" not in second.stdout, "the staged hashes were published once, not twice"
    assert hub.status(LIST).version == 1
    with hub.opened() as opened:
        assert opened.db.table("staged").count == 0


# -- a clock that jumps ----------------------------------------------------------------------


async def test_a_node_clock_jumping_forward_and_back_refuses_then_recovers(
    hub: HubApp, node: Node
) -> None:
    own = Clock(hub.clock())
    node.now = own
    await sync_once(node)
    hub.publish(LIST, adds=[md5("v2")])

    own.advance(MAX_CHECKPOINT_AGE + 60)  # forward: every checkpoint looks stale
    assert node.status()["stale"], "the stale alarm is up"
    before = StoreImage.of(node)
    outcomes, _ = await sync_once(node)
    assert statuses(outcomes) == {LIST: ("rejected", 1, 1)}
    assert outcomes[0].kind == "FreezeError", outcomes
    before.unchanged(node, new_evidence=1)
    assert enforced(node, 1) == 1, "the last good list is still enforced"

    own.t = hub.clock() - timedelta(hours=1)  # back, behind the trusted checkpoint
    outcomes, _ = await sync_once(node)
    assert statuses(outcomes) == {LIST: ("rejected", 1, 1)}, "a checkpoint from the future"
    assert "in the future" in (outcomes[0].error or ""), outcomes
    assert enforced(node, 1) == 1

    own.t = hub.clock()  # the node's clock is right again: the update applies
    outcomes, _ = await sync_once(node)
    assert statuses(outcomes) == {LIST: ("updated", 1, 2)}
    assert not node.status()["stale"]

    hub.clock.advance(MAX_CHECKPOINT_AGE + 60)  # the hub stops publishing for a day…
    own.t = hub.clock()
    assert node.status()["stale"]
    hub.refresh()  # …and re-signs
    outcomes, _ = await sync_once(node)
    assert statuses(outcomes) == {LIST: ("current", 2, 2)}
    assert not node.status()["stale"], "the node recovers once the hub re-signs"
    assert enforced(node, "v2") == 2


async def publish_after_the_hub_clock_went_back(hub: HubApp, node: Node) -> tuple[bool, Clock]:
    """Publish v2 an hour before v1 by the hub's clock.

    Returns whether the hub refused to, and the node's own clock (still right).
    """
    own = Clock(hub.clock())
    node.now = own
    await sync_once(node)
    trusted = parse_time(checkpoint_time_of(node), "checkpoint_time")
    hub.clock.t = trusted - timedelta(hours=1)
    try:
        hub.publish(LIST, adds=[md5("v2")])
    except (HashhubError, ValueError):
        assert hub.status(LIST).version == 1, "a refused publish publishes nothing"
        return True, own
    return False, own


async def test_the_hub_clock_going_back_never_publishes_a_checkpoint_nodes_must_refuse(
    hub: HubApp, node: Node
) -> None:
    """The hub co-signs no earlier than its last co-signature, so nodes take v2 at once."""
    refused, _ = await publish_after_the_hub_clock_went_back(hub, node)
    assert not refused
    outcomes, _ = await sync_once(node)
    assert statuses(outcomes) == {LIST: ("updated", 1, 2)}, outcomes
    hub.refresh()  # a refresh with the clock still behind is accepted too
    outcomes, _ = await sync_once(node)
    assert statuses(outcomes) == {LIST: ("current", 2, 2)}, outcomes


async def test_after_the_hub_clock_went_back_nodes_recover_once_it_is_right_and_re_signs(
    hub: HubApp, node: Node
) -> None:
    published_then = hub.clock()
    _, own = await publish_after_the_hub_clock_went_back(hub, node)
    outcomes, _ = await sync_once(node)
    assert outcomes[0].status in ("updated", "rejected"), outcomes
    if outcomes[0].status == "rejected":  # a clear error, the evidence kept
        assert outcomes[0].kind == "RollbackError", outcomes
    assert enforced(node, 1) is not None, "a list is enforced all along"

    hub.clock.t = published_then + timedelta(seconds=5)  # the hub's clock is put right
    own.t = hub.clock()
    hub.refresh()
    outcomes, _ = await sync_once(node)

    assert outcomes[0].status in ("updated", "current"), outcomes
    assert outcomes[0].to_version == 2
    assert enforced(node, "v2") == 2
    assert not node.status()["stale"]
    async with aiohttp.ClientSession() as session:
        assert (await flush_acks(node, session))[1] == 0
