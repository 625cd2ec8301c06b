"""End to end: the real hub on loopback, the node's daemon (node/app.py) following it.

enrol → sync → match → outcome → ack → the hub's counts; the stale alarm; the
schedule's back-off; a rejected update that leaves the node's store exactly as
it was.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.api.keys import NODE, SCHEDULER
from node.app import create_app
from node.config import read_secret, write_secret
from node.scheduler import NodeScheduler, next_poll_delay
from node.service import Node, utcnow
from protocol import body_path, checkpoint_path, header_path, sig_path, verify_ack_by_periods
from protocol.keyfile import load_public_key
from tests.node.conftest import (
    BRIDGE_MODS,
    DIHEDRAL,
    HUB_NAME,
    MD5_LIST,
    NODE_ID,
    PDQ_LIST,
    UNRELATED,
    HubServer,
    init_node_home,
    md5,
    opened_hub,
    original_pdq,
    sync,
)
from tests.node.hostile import HostileServer, Status, Tamper, Trickle, flip_byte

Client = TestClient[web.Request, web.Application]
T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 20.0) -> T:
    """Poll ``check`` until it returns something other than None (or fail after ``timeout``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value is not None:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"nothing after {timeout} s")
        await asyncio.sleep(0.1)


def sync_job(scheduler: NodeScheduler) -> Any:
    [job] = [job for job in scheduler.jobs() if job.id == "sync"]
    return job


def bearer(home: Path) -> dict[str, str]:
    return {"Authorization": f"Bearer {read_secret(home / 'api-token')}"}


async def status_of(client: Client, home: Path) -> dict[str, Any]:
    response = await client.get("/v1/status", headers=bearer(home))
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def synced(client: Client, home: Path, version: int = 1) -> dict[str, Any] | None:
    status = await status_of(client, home)
    return status if all(e["version"] >= version for e in status["lists"]) else None


async def match_image(client: Client, home: Path, path: Path, *, dihedral: bool) -> list[Any]:
    response = await client.post(
        f"/v1/match?dihedral={int(dihedral)}",
        data=path.read_bytes(),
        headers=bearer(home) | {"Content-Type": "image/jpeg"},
    )
    assert response.status == 200, await response.text()
    return [m for m in (await response.json())["matches"] if m["list"] == PDQ_LIST]


@pytest.fixture
async def daemon(tmp_path: Path, hub_server: HubServer) -> AsyncIterator[tuple[Client, Path]]:
    """enrol → run: a node initialised without a token, enrolled, then its daemon started."""
    home = init_node_home(tmp_path / "node", hub_server, enrol=False, ack_interval=1)
    assert not (home / "hub-token").exists()
    token = hub_server.enrol(NODE_ID, home / "node.pub.pem", [MD5_LIST, PDQ_LIST])
    write_secret(home / "hub-token", token)
    async with TestClient(TestServer(create_app(home), host="127.0.0.1", port=0)) as client:
        await eventually(lambda: synced(client, home))
        yield client, home


# -- enrol → sync → match → outcome → ack ------------------------------------------------


async def test_every_bridge_modification_matches_the_listed_original_within_31(
    daemon: tuple[Client, Path],
) -> None:
    client, home = daemon
    distances = {}
    for path in sorted(BRIDGE_MODS.glob("*.jpg")):
        found = await match_image(client, home, path, dihedral=False)
        assert [m["hash"] for m in found] == [original_pdq().hex()], path.name
        distances[path.name] = found[0]["distance"]
    print("PDQ distance to the listed original:", distances)
    assert len(distances) == 12
    assert all(0 <= d <= 31 for d in distances.values())


async def test_rotated_and_mirrored_copies_match_with_a_dihedral_query_only(
    daemon: tuple[Client, Path],
) -> None:
    client, home = daemon
    turned = sorted(p for p in DIHEDRAL.glob("*.jpg") if "original" not in p.name)
    assert len(turned) == 7
    for path in turned:
        assert await match_image(client, home, path, dihedral=False) == [], path.name
        found = await match_image(client, home, path, dihedral=True)
        assert [m["hash"] for m in found] == [original_pdq().hex()], path.name
        assert found[0]["distance"] <= 31
    original = DIHEDRAL / "bridge-1-original.jpg"
    assert len(await match_image(client, home, original, dihedral=False)) == 1


async def test_unrelated_photos_do_not_match_even_with_a_dihedral_query(
    daemon: tuple[Client, Path],
) -> None:
    client, home = daemon
    photos = sorted(UNRELATED.glob("*.jpg"))
    assert photos
    for path in photos:
        assert await match_image(client, home, path, dihedral=True) == [], path.name


async def test_outcomes_reach_the_hub_in_signed_acks(
    daemon: tuple[Client, Path], hub_server: HubServer
) -> None:
    client, home = daemon
    ids = []
    for name in ("aaa-orig.jpg", "blur-a-little.jpg", "shrink-a-lot.jpg"):
        [found] = await match_image(client, home, BRIDGE_MODS / name, dihedral=False)
        ids.append(found["match_id"])
    for match_id, outcome in zip(ids, ("actioned", "blocked", "false_positive"), strict=True):
        response = await client.post(
            f"/v1/matches/{match_id}/outcome", json={"outcome": outcome}, headers=bearer(home)
        )
        assert response.status == 200, await response.text()

    async def counted() -> dict[str, int] | None:
        [entry] = hub_server.list_status(PDQ_LIST).nodes
        counts: dict[str, int] = entry.counts
        return counts if counts.get("false_positive") == 1 else None

    counts = await eventually(counted)
    assert counts["matched"] == 3
    assert counts["actioned"] == 1
    assert counts["blocked"] == 1
    assert counts["checked"] == 3
    [entry] = hub_server.list_status(PDQ_LIST).nodes
    assert entry.node == NODE_ID
    assert entry.applied_version == 1
    assert entry.lag == 0
    await eventually(lambda: _acks_settled(client, home))


async def _acks_settled(client: Client, home: Path) -> bool | None:
    return True if (await status_of(client, home))["acks_pending"] == 0 else None


async def test_the_daemon_follows_a_new_version_on_its_next_poll(
    daemon: tuple[Client, Path], hub_server: HubServer
) -> None:
    client, home = daemon
    version = await hub_server.publish(MD5_LIST, adds=[md5("new")], removes=[md5(0)])
    assert version == 2
    scheduler = client.app[SCHEDULER]
    await scheduler.sync()  # what the next scheduled poll does
    status = await status_of(client, home)
    assert {e["list"]: e["version"] for e in status["lists"]} == {MD5_LIST: 2, PDQ_LIST: 1}
    response = await client.post(
        "/v1/match",
        json={"hashes": [{"type": "md5", "hash": h.hex()} for h in (md5("new"), md5(0))]},
        headers=bearer(home),
    )
    assert [m["hash"] for m in (await response.json())["matches"]] == [md5("new").hex()]


async def test_the_daemon_follows_an_update_applied_by_another_process(
    daemon: tuple[Client, Path], hub_server: HubServer
) -> None:
    client, home = daemon
    await hub_server.publish(MD5_LIST, adds=[md5("new")])
    beside = Node.open(home)  # what 'hashhub-node sync' run next to the daemon does
    try:
        assert {o.list_id: o.status for o in await sync(beside)}[MD5_LIST] == "updated"
    finally:
        beside.close()
    query = {"hashes": [{"type": "md5", "hash": md5("new").hex()}]}

    async def matched() -> list[Any]:
        response = await client.post("/v1/match", json=query, headers=bearer(home))
        return list((await response.json())["matches"])

    assert await matched() == []  # the daemon's index is still at version 1
    assert client.app[SCHEDULER].follow_store() == [MD5_LIST]  # the minutely job
    assert [m["version"] for m in await matched()] == [2]
    assert client.app[SCHEDULER].follow_store() == []


async def test_the_daemon_takes_up_a_key_rotated_and_a_token_set_beside_it(
    daemon: tuple[Client, Path], hub_server: HubServer
) -> None:
    """'hashhub-node key rotate' and 'token set' run while the daemon runs: its next
    send signs with the new key and carries the new token; the hub takes both."""
    client, home = daemon
    scheduler = client.app[SCHEDULER]
    running = client.app[NODE]
    beside = Node.open(home)  # what the command line opens next to the daemon
    try:
        _, new_keyid, _ = beside.rotate_key()
    finally:
        beside.close()
    hub = opened_hub(hub_server.home)
    try:
        hub.access.rekey(NODE_ID, load_public_key(home / "node.pub.pem"))
        token = hub.access.reissue_token(NODE_ID)
    finally:
        hub.close()
    write_secret(home / "hub-token", token)  # 'hashhub-node token set -'
    assert running.key.keyid != new_keyid, "nothing taken up before the next job"

    await scheduler.ack()  # the ack job: sign with the current totals, then send
    assert (running.key.keyid, running.token) == (new_keyid, token)
    assert (await status_of(client, home))["acks_pending"] == 0
    hub = opened_hub(hub_server.home)
    try:
        periods = hub.access.key_periods(NODE_ID)
        (last,) = hub.evidence.acks(node=NODE_ID, limit=1)  # the newest
    finally:
        hub.close()
    assert periods[-1].key.keyid == new_keyid
    ack = verify_ack_by_periods(last.bytes, last.sig, periods=periods, origin_prefix=HUB_NAME)
    assert ack.seq >= periods[-1].first_seq


# -- the schedule -----------------------------------------------------------------------


async def test_the_jobs_are_single_instance_coalesced_never_dropped_and_jittered(
    daemon: tuple[Client, Path],
) -> None:
    client, _home = daemon
    scheduler = client.app[SCHEDULER]
    jobs = {job.id: job for job in scheduler.jobs()}
    assert set(jobs) == {"sync", "outbox", "ack", "stale"}
    for job in jobs.values():
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time is None
    config = client.app[NODE].config
    assert jobs["sync"].trigger.jitter == config.poll_jitter
    assert jobs["sync"].trigger.interval == timedelta(seconds=300)  # max(policy 60, config 300)
    assert jobs["ack"].trigger.interval == timedelta(seconds=1)


def test_the_poll_interval_never_undercuts_the_policy_minimum_and_backs_off_to_the_cap() -> None:
    assert [next_poll_delay(300, n, 3600) for n in range(7)] == [
        300,
        300,
        600,
        1200,
        2400,
        3600,
        3600,
    ]
    assert next_poll_delay(60, 1000, 3600) == 3600
    assert next_poll_delay(600, 3, 300) == 600  # a cap below the interval never shortens it


async def test_the_policy_minimum_wins_over_a_shorter_configured_interval(
    tmp_path: Path, hub_server: HubServer
) -> None:
    home = init_node_home(tmp_path / "eager", hub_server, node_id="platform-eager", poll_interval=5)
    async with TestClient(TestServer(create_app(home), host="127.0.0.1", port=0)) as client:
        await eventually(lambda: synced(client, home))
        scheduler = client.app[SCHEDULER]
        assert scheduler.poll_interval() == 60  # the hub's policy min_poll_interval
        assert sync_job(scheduler).trigger.interval == timedelta(seconds=60)


async def test_failed_updates_back_off_exponentially_and_a_success_resets(
    tmp_path: Path, hub_server: HubServer
) -> None:
    proxy = await HostileServer.proxy(hub_server.url).start()
    try:
        proxy.on(".*", Status(503))
        home = init_node_home(
            tmp_path / "node", hub_server, hub_url=proxy.url, poll_interval=100, max_backoff=350
        )
        async with TestClient(TestServer(create_app(home), host="127.0.0.1", port=0)) as client:
            scheduler = client.app[SCHEDULER]

            async def failed_once() -> bool | None:
                return True if scheduler.failures == 1 else None

            await eventually(failed_once)
            intervals = [sync_job(scheduler).trigger.interval.total_seconds()]
            for _ in range(3):
                outcomes = await scheduler.sync()
                assert {o.status for o in outcomes} == {"failed"}
                intervals.append(sync_job(scheduler).trigger.interval.total_seconds())
            assert intervals == [100, 200, 350, 350]
            status = await status_of(client, home)
            assert status["schedule"]["consecutive_failures"] == 4
            metrics = await (await client.get("/metrics", headers=bearer(home))).text()
            assert "hashhub_node_sync_consecutive_failures 4.0" in metrics
            proxy.behave()
            outcomes = await scheduler.sync()
            assert {o.status for o in outcomes} == {"updated"}
            assert scheduler.failures == 0
            assert sync_job(scheduler).trigger.interval.total_seconds() == 100
    finally:
        await proxy.close()


async def test_stopping_lets_a_running_update_finish(tmp_path: Path, hub_server: HubServer) -> None:
    proxy = await HostileServer.proxy(hub_server.url).start()
    try:
        proxy.on("/checkpoint$", Trickle(0.002))
        home = init_node_home(tmp_path / "node", hub_server, hub_url=proxy.url)
        async with TestClient(TestServer(create_app(home), host="127.0.0.1", port=0)):

            async def started() -> bool | None:
                return True if proxy.count("/checkpoint") >= 1 else None

            await eventually(started)
            assert lists_table(home) == []  # nothing applied yet as we stop
        node = Node.open(home)
        try:
            assert {e["list"]: e["version"] for e in node.status()["lists"]} == {
                MD5_LIST: 1,
                PDQ_LIST: 1,
            }
        finally:
            node.close()
    finally:
        await proxy.close()


# -- the stale alarm --------------------------------------------------------------------


async def test_a_stale_hub_raises_the_alarm_and_the_last_good_list_stays_enforced(
    node_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = Node.open(node_home)
    try:
        assert {o.status for o in await sync(node)} == {"updated"}
    finally:
        node.close()

    def two_days_on() -> Any:
        return utcnow() + timedelta(days=2)  # past the policy's max_checkpoint_age of 1 day

    caplog.set_level(logging.WARNING, logger="hashhub.node")
    app = create_app(node_home, now=two_days_on)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        scheduler = app[SCHEDULER]

        async def ran() -> bool | None:
            return True if scheduler.last_outcomes else None

        await eventually(ran)
        assert {o.status for o in scheduler.last_outcomes} == {"rejected"}
        status = await status_of(client, node_home)
        assert status["stale"] is True
        assert all(e["stale"] and e["version"] == 1 for e in status["lists"])
        assert status["schedule"]["stale_lists"] == sorted([MD5_LIST, PDQ_LIST])
        metrics = await (await client.get("/metrics", headers=bearer(node_home))).text()
        assert "hashhub_node_stale 1.0" in metrics
        assert f'hashhub_node_list_stale{{list="{MD5_LIST}"}} 1.0' in metrics
        stale_lines = [r.getMessage() for r in caplog.records if "STALE" in r.getMessage()]
        assert len(stale_lines) == 2  # once per list, when it turned stale
        response = await client.post(
            "/v1/match",
            json={"hashes": [{"type": "md5", "hash": md5(1).hex()}]},
            headers=bearer(node_home),
        )
        assert [m["list"] for m in (await response.json())["matches"]] == [MD5_LIST]


# -- a rejected update changes nothing --------------------------------------------------


def lists_table(home: Path, list_id: str | None = None) -> list[tuple[Any, ...]]:
    """The lists table's rows (all, or one list's) with every column an update may change.

    Left out: ``last_attempt`` and ``last_error``, the notes of a failed attempt.
    """
    conn = sqlite3.connect(home / "node.db")
    try:
        return conn.execute(
            "SELECT id, hash_type, trust, state, count, sha256, applied, last_success "
            "FROM lists WHERE ? IS NULL OR id = ? ORDER BY id",
            [list_id, list_id],
        ).fetchall()
    finally:
        conn.close()


def roots_table(home: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(home / "node.db")
    try:
        return conn.execute("SELECT * FROM roots ORDER BY version").fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize(
    "pattern",
    [
        re.escape(checkpoint_path(MD5_LIST)) + "$",
        re.escape(header_path(MD5_LIST, 2)) + "$",
        re.escape(sig_path(header_path(MD5_LIST, 2))) + "$",
        re.escape(body_path(MD5_LIST, "0" * 64).rsplit("/", 1)[0]) + "/",
    ],
    ids=["checkpoint", "header", "header-signature", "body"],
)
async def test_a_tampered_update_leaves_the_store_unchanged(
    tmp_path: Path, hub_server: HubServer, pattern: str
) -> None:
    proxy = await HostileServer.proxy(hub_server.url).start()
    try:
        home = init_node_home(tmp_path / "node", hub_server, hub_url=proxy.url)
        node = Node.open(home)
        try:
            assert {o.status for o in await sync(node)} == {"updated"}
            await hub_server.publish(MD5_LIST, adds=[md5("new")], removes=[md5(0)])
            before = lists_table(home, MD5_LIST)
            roots = roots_table(home)
            digests = node.store.verify()
            evidence = len(node.store.evidence())
            proxy.on(pattern, Tamper(lambda data: flip_byte(data, len(data) // 2)))

            outcomes = {o.list_id: o for o in await sync(node)}
            assert outcomes[MD5_LIST].status == "rejected"
            assert outcomes[PDQ_LIST].status == "current"
            assert lists_table(home, MD5_LIST) == before
            assert roots_table(home) == roots
            assert node.store.verify() == digests
            assert len(node.store.evidence()) == evidence + 1
            enforced = node.matching.match_hashes({"md5": [md5(0), md5("new")]})
            assert [m.hash for m in enforced] == [md5(0)]  # still version 1

            proxy.behave()
            outcomes = {o.list_id: o for o in await sync(node)}
            assert (outcomes[MD5_LIST].status, outcomes[MD5_LIST].to_version) == ("updated", 2)
        finally:
            node.close()
    finally:
        await proxy.close()
