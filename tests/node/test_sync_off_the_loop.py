"""A large update keeps the node's event loop free: the match API answers meanwhile.

``run_sync`` gives the update's store work and heavy trust steps (reading and
replaying a snapshot, applying bodies, the commit) a thread and a connection of
their own (``edge.database.DatabaseThread``). This file measures the longest
stall of the loop while one large bootstrap runs both ways — in place, as the
command line and the bridge run it, and on the thread, as the daemon does — and
holds the daemon's way to a small fraction of the other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from edge.database import DatabaseThread
from follow import Fetcher, ListOutcome
from node.service import Node
from node.store import NodeStore
from node.sync import NodeSyncer
from tests.node.fixtures_sync import Clock, HubApp, make_node, md5, state_of, statuses

LIST = "big-md5"
SIZE = 300_000
TICK = 0.002


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubApp]:
    """A hub whose list holds ``SIZE`` hashes at version 1, with a snapshot there."""
    app = HubApp.init(tmp_path / "hub", Clock())
    app.create_list(LIST, "md5", snapshot_every=1)
    app.publish(LIST, adds=[md5(i) for i in range(SIZE)])
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@pytest.fixture
def nodes(tmp_path: Path, hub: HubApp) -> Iterator[tuple[Node, Node]]:
    made = (
        make_node(tmp_path / "in-place", hub, [LIST], node_id="platform-a"),
        make_node(tmp_path / "threaded", hub, [LIST], node_id="platform-b"),
    )
    try:
        yield made
    finally:
        for node in made:
            node.close()


async def longest_stall(work: Awaitable[list[ListOutcome]]) -> tuple[list[ListOutcome], float]:
    """Run ``work`` while a ticker wakes every ``TICK`` s; the longest gap between wakes."""
    done = asyncio.Event()
    gaps = [0.0]

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    try:
        outcomes = await work
    finally:
        done.set()
        await ticking
    return outcomes, max(gaps)


async def update(
    node: Node, store: Callable[[Node], NodeStore | DatabaseThread[NodeStore]]
) -> list[ListOutcome]:
    """One update of ``node`` (no ``absorb``: only the update itself is measured)."""
    async with aiohttp.ClientSession() as session:
        fetcher = Fetcher(session, node.config.hub_url, token=node.token)
        syncer = NodeSyncer(
            store(node),
            fetcher,
            node.config.lists,
            pinned_root_sha256=node.config.pinned_root_sha256,
        )
        return await syncer.sync(node.now())


async def test_a_large_bootstrap_on_the_sync_thread_barely_stalls_the_loop(
    nodes: tuple[Node, Node],
) -> None:
    in_place, threaded = nodes
    outcomes, stall_in_place = await longest_stall(update(in_place, lambda n: n.store))
    assert statuses(outcomes) == {LIST: ("updated", 0, 1)}

    path = threaded.home / threaded.config.database
    worker = DatabaseThread(lambda: NodeStore(path), name="test-sync")
    try:
        outcomes, stall_threaded = await longest_stall(update(threaded, lambda _: worker))
    finally:
        worker.close(NodeStore.close)
    assert statuses(outcomes) == {LIST: ("updated", 0, 1)}

    # The same update, committed by the other connection, is what the node reads.
    assert state_of(threaded, LIST) == state_of(in_place, LIST)
    assert len(state_of(threaded, LIST)) == SIZE * 16
    print(
        f"longest loop stall: in place {stall_in_place:.3f} s, on the thread {stall_threaded:.3f} s"
    )
    assert stall_in_place > 0.05, "the bootstrap is heavy enough to measure"
    assert stall_threaded < stall_in_place / 4
