"""A platform's fleet for real: three node replicas behind nginx, one hub, counted as one platform.

A real hub app on loopback publishes a list. The platform runs three real node
replicas (each its own home, its own key, enrolled by ``hashhub node enrol …
--platform shop``, each following the hub on its own) behind a real nginx load
balancer, round robin over the three. The platform's services know one address,
the balancer's, and one API token (the platform's secret, the same on every
replica).

A version adds a hash: each replica applies it on its own, and each matches it,
asked directly and through the balancer (several requests, so every replica
answers at least once; the balancer names the replica that answered, and each
replica's ``/v1/status`` names its node). The hub counts one platform with 3 of 3
replicas on that version, three nodes in its per-node view, and the platform's
counts are its replicas' summed. Then a retraction reaches every replica as a
delta (the header and body of the new version, never a snapshot, although one is
published for it), and no replica matches the hash any more.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from follow import Fetcher
from node.api.keys import NODE, SESSION
from node.app import create_app as create_node_app
from node.config import write_secret
from node.service import Node, flush_acks
from protocol import DeltaHeader, body_path, header_path, snapshot_path
from tests.deploy.nginx import HASHHUB, UPSTREAM_HEADER, LoadBalancer
from tests.node.fixtures_sync import Clock, HubApp, md5, statuses, sync_once

LIST = "tid-md5"
PLATFORM = "shop"
REPLICAS = ("shop-1", "shop-2", "shop-3")
API_TOKEN = "hhl_" + "fleet" * 9
"""The platform's one API token, deployed to every replica behind the balancer."""
SNAPSHOT_EVERY = 2
BALANCED_REQUESTS = 9
"""Requests sent through the balancer per check: three rounds of three replicas."""
NEW = md5("new")


@dataclass
class Replica:
    """One node replica: its home and its real app on a loopback port."""

    name: str
    home: Path
    app: web.Application
    runner: web.AppRunner
    port: int

    @property
    def node(self) -> Node:
        return self.app[NODE]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Fleet:
    hub: HubApp
    replicas: list[Replica]
    balancer: LoadBalancer

    def by_upstream(self, upstream: str) -> str:
        """The replica an ``X-Upstream`` of the balancer names (``127.0.0.1:PORT``)."""
        (name,) = [r.name for r in self.replicas if upstream == f"127.0.0.1:{r.port}"]
        return name


async def enrol(hub: HubApp, name: str, public_key: Path) -> str:
    """``hashhub node enrol NAME … --platform shop``, as the operator runs it; the token."""
    process = await asyncio.create_subprocess_exec(
        str(HASHHUB),
        "node",
        "enrol",
        name,
        "--public-key",
        str(public_key),
        "--lists",
        LIST,
        "--platform",
        PLATFORM,
        "--url",
        hub.url,
        "--home",
        str(hub.home),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    assert process.returncode == 0, output
    assert output.startswith(f"Enrolled node {name} of platform {PLATFORM} for {LIST} "), output
    found = re.search(r"^  node token +(hhn_[A-Za-z0-9_-]{43})$", output, re.MULTILINE)
    assert found, output
    return found[1]


async def start_replica(hub: HubApp, name: str, home: Path) -> Replica:
    """A node home of its own (its own key), enrolled for ``PLATFORM``, served on loopback."""
    node = Node.init(
        home,
        node_id=name,
        hub_url=hub.url,
        lists=[LIST],
        pinned_root_sha256=hub.pinned(),
        now=hub.clock,
    )
    node.close()
    write_secret(home / "hub-token", await enrol(hub, name, home / "node.pub.pem"))
    write_secret(home / "api-token", API_TOKEN)
    app = create_node_app(home, now=hub.clock, schedule=False)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return Replica(name, home, app, runner, runner.addresses[0][1])


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    """``LIST`` at version 2 (a snapshot at 2); three replicas of ``PLATFORM`` behind nginx."""
    hub = HubApp.init(tmp_path / "hub", Clock())
    hub.create_list(LIST, "md5", snapshot_every=SNAPSHOT_EVERY)
    hub.publish(LIST, adds=[md5(i) for i in range(5)])
    hub.publish(LIST, adds=[md5("x")], removes=[md5(1)])
    await hub.start()
    replicas: list[Replica] = []
    balancer = None
    try:
        for name in REPLICAS:
            replicas.append(await start_replica(hub, name, tmp_path / name))
        balancer = await LoadBalancer.start([r.port for r in replicas], tmp_path / "nginx")
        yield Fleet(hub, replicas, balancer)
    finally:
        if balancer is not None:
            balancer.stop()
        for replica in replicas:
            await replica.runner.cleanup()
        await hub.stop()


async def follow(replica: Replica) -> tuple[Any, Fetcher]:
    """One update of the replica on its own, then its acks sent; (outcome, fetcher)."""
    outcomes, fetcher = await sync_once(replica.node)
    (outcome,) = outcomes
    assert outcome.list_id == LIST
    assert not outcome.error, outcome.error
    sent = await flush_acks(replica.node, replica.app[SESSION])
    assert sent == (1, 0), sent
    return outcome, fetcher


def asked(fetcher: Fetcher, hub: HubApp) -> list[str]:
    """The paths the replica asked the hub for, in order."""
    prefix = f"{hub.url}/"
    return [u.removeprefix(prefix) for u in fetcher.requested if u.startswith(prefix)]


async def match(session: aiohttp.ClientSession, url: str, value: bytes) -> tuple[str, Any]:
    """``POST /v1/match`` for one md5 at ``url``; (the balancer's upstream or '', the answer)."""
    async with session.post(
        f"{url}/v1/match",
        json={"hashes": [{"type": "md5", "hash": value.hex()}]},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    ) as response:
        assert response.status == 200, await response.text()
        return response.headers.get(UPSTREAM_HEADER, ""), await response.json()


async def status_of(session: aiohttp.ClientSession, url: str) -> tuple[str, Any]:
    async with session.get(
        f"{url}/v1/status", headers={"Authorization": f"Bearer {API_TOKEN}"}
    ) as response:
        assert response.status == 200, await response.text()
        return response.headers.get(UPSTREAM_HEADER, ""), await response.json()


def listed(answer: Any) -> list[tuple[str, str, int]]:
    return [(m["list"], m["hash"], m["version"]) for m in answer["matches"]]


async def test_three_replicas_behind_nginx_follow_the_hub_and_count_as_one_platform(
    fleet: Fleet,
) -> None:
    hub = fleet.hub
    for replica in fleet.replicas:
        outcome, _ = await follow(replica)
        assert (outcome.status, outcome.to_version) == ("updated", 2)

    version = hub.publish(LIST, adds=[NEW])
    assert version == 3
    for replica in fleet.replicas:
        outcome, _ = await follow(replica)
        assert statuses([outcome]) == {LIST: ("updated", 2, 3)}

    async with aiohttp.ClientSession() as session:
        # Each replica, asked directly, matches the new hash at version 3.
        for replica in fleet.replicas:
            upstream, answer = await match(session, replica.url, NEW)
            assert upstream == ""
            assert listed(answer) == [(LIST, NEW.hex(), 3)], (replica.name, answer)
            _, status = await status_of(session, replica.url)
            assert status["node"] == replica.name
            assert [(s["list"], s["version"]) for s in status["lists"]] == [(LIST, 3)]
        # Through the balancer: every answer matches, and every replica gave some.
        answered = []
        for _ in range(BALANCED_REQUESTS):
            upstream, answer = await match(session, fleet.balancer.url, NEW)
            assert listed(answer) == [(LIST, NEW.hex(), 3)], answer
            answered.append(fleet.by_upstream(upstream))
        assert sorted(set(answered)) == list(REPLICAS), answered
        named = set()
        for _ in range(BALANCED_REQUESTS):
            upstream, status = await status_of(session, fleet.balancer.url)
            assert status["node"] == fleet.by_upstream(upstream)
            named.add(status["node"])
        assert sorted(named) == list(REPLICAS)

    # The hub: one platform, 3 of 3 replicas on version 3; three nodes per node.
    entry = hub.status(LIST)
    (shop,) = entry.platforms
    assert (shop.platform, shop.nodes) == (PLATFORM, list(REPLICAS))
    assert (shop.replicas_on_version, shop.replicas, shop.applied) == (3, 3, True)
    assert (entry.platforms_applied, entry.version) == (1, 3)
    assert [(n.node, n.platform, n.applied_version) for n in entry.nodes] == [
        (name, PLATFORM, 3) for name in REPLICAS
    ]
    assert entry.nodes_applied == 3

    # The retraction reaches every replica as a delta, though a snapshot of it exists.
    assert hub.publish(LIST, removes=[NEW]) == 4
    assert hub.file(snapshot_path(LIST, 4))
    body = body_path(LIST, DeltaHeader.from_bytes(hub.file(header_path(LIST, 4))).body.sha256)
    for replica in fleet.replicas:
        outcome, fetcher = await follow(replica)
        assert statuses([outcome]) == {LIST: ("updated", 3, 4)}
        assert not outcome.rebuilt, f"{replica.name} rebuilt from a snapshot"
        paths = asked(fetcher, hub)
        assert header_path(LIST, 4) in paths, paths
        assert body in paths, paths
        assert not [p for p in paths if "/snapshot/" in p], paths
    async with aiohttp.ClientSession() as session:
        for replica in fleet.replicas:
            _, answer = await match(session, replica.url, NEW)
            assert answer["matches"] == [], (replica.name, answer)
        for _ in range(BALANCED_REQUESTS):
            _, answer = await match(session, fleet.balancer.url, NEW)
            assert answer["matches"] == [], answer

    # Every replica acked version 4; the platform's counts are its replicas' summed.
    entry = hub.status(LIST)
    (shop,) = entry.platforms
    assert (shop.replicas_on_version, shop.applied, shop.applied_version) == (3, True, 4)
    matched = [n.counts.get("matched", 0) for n in entry.nodes]
    assert sum(matched) == len(REPLICAS) + BALANCED_REQUESTS, matched
    assert all(m >= 2 for m in matched), "each replica matched directly and for the balancer"
    assert shop.counts["matched"] == sum(matched) == entry.totals["matched"]
