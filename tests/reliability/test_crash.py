"""Crash consistency: SIGKILL at random points during sync, publish and ack ingestion.

Every kill is real: a worker process forked by ``ForkServer`` is sent SIGKILL
after a delay drawn from a seeded generator. The delays cover the whole run of
the operation, as measured by runs that are not killed, with half of them
around its end, where the commit is. After each kill the test opens what the
worker left on disk, as a restarted process would, and checks that it is
exactly a published version (for acks: every confirmed ack stored once and the
counters they add up to), then that the next normal run completes.

The seeds are fixed (``HASHHUB_CRASH_SEED`` sets another) and printed with
every delay, so a failure names the iteration and the delay to try again (the
same delay lands at nearly, not exactly, the same point of a run).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from hub.core import AckReceipt, Hub, utcnow
from hub.intake import Intake
from node.config import NodeConfig
from node.store import NodeStore
from protocol import AppliedVersion, Counts, SigningKey, StateDigest, sign_ack, snapshot_path
from tests.hub.conftest import ack_headers
from tests.hub.node_view import NodeView, from_hub
from tests.node.fixtures_sync import Clock, HubApp, make_node, md5, sync_once
from tests.reliability.crash_support import ForkServer, JobResult

LIST = "tid-md5"
SEED = int(os.environ.get("HASHHUB_CRASH_SEED", "20261125"))


def published_states(hub: Hub, list_id: str = LIST) -> dict[int, StateDigest]:
    """Every version the hub published of ``list_id``, with its result state."""
    return {
        r["size"]: StateDigest(r["result_count"], r["result_sha256"])
        for r in hub.db.query(
            "SELECT size, result_count, result_sha256 FROM log_roots WHERE list_id = ?",
            [list_id],
        )
    }


def delays(rng: random.Random, longest: float, count: int) -> list[float]:
    """``count`` kill delays: half anywhere in the run, half around its end (the commit)."""
    return [
        round(rng.uniform(0.0, longest * 1.1), 4)
        if rng.random() < 0.5
        else round(rng.uniform(longest * 0.8, longest * 1.2), 4)
        for _ in range(count)
    ]


async def calibrate(
    server: ForkServer, kind: str, home: Path, check: Callable[[Path], object], *args: str
) -> float:
    """How long one job takes unkilled: the shortest of three runs on copies of ``home``.

    The shortest, so that a busy machine during calibration does not push the
    delays past the end of every later run. ``check`` looks at each copy
    afterwards: an unkilled run must end complete.
    """
    shortest = float("inf")
    for run in range(3):
        copy = home.with_name(f"{home.name}-calibrate-{run}")
        shutil.copytree(home, copy)
        result = await server.run(kind, 600, str(copy), *args)
        assert not result.killed
        check(copy)
        shortest = min(shortest, result.seconds)
        shutil.rmtree(copy)
    return shortest


# -- the node, killed during sync -------------------------------------------------------

BOOT = 50_000  # md5 hashes in version 1
DELTA = 2_000  # adds per later version (and DELTA // 10 removes)
BEHIND_AT = 3  # the "behind" node applied up to here
NEAR_AT = 7  # the "near" node applied 6, then 7 (logged as changes beside the blob)
LATEST = 8


def delta(version: int) -> tuple[list[bytes], list[bytes]]:
    adds = [md5(f"v{version}-{i}") for i in range(DELTA)]
    removes = [md5(i) for i in range(version * DELTA, version * DELTA + DELTA // 10)]
    return adds, removes


def node_store_version(home: Path, published: dict[int, StateDigest]) -> int:
    """Open the node's store as a restarted node would; check it is at a published version."""
    store = NodeStore(home / NodeConfig.load(home).database)
    try:
        if LIST not in store.list_ids():
            return 0  # nothing applied yet: the node enforces no list, and says so
        stored = store.stored_list(LIST, "md5")
        version = stored.trust.version
        assert version in published, f"trust version {version} was never published"
        assert stored.trust.state == published[version], f"v{version}: not the published state"
        assert stored.state.digest() == stored.trust.state, f"v{version}: stored state ≠ trust"
        assert all(ok for _, ok, _, _ in store.verify()), store.verify()
        return version
    finally:
        store.close()


async def node_crashes(tmp_path: Path, iterations: int) -> None:
    rng = random.Random(SEED)
    print(f"node sync crash test: seed {SEED}, {iterations} iterations")
    # Every iteration syncs the same node twice, a few hundred requests a second from one
    # credential: the hub's rate limits are not what is tested here, so they are off.
    hub = HubApp.init(tmp_path / "hub", Clock(), rate_burst=0, credential_rate_burst=0)
    await hub.start()
    server = await ForkServer(tmp_path).start()
    try:
        hub.create_list(LIST, "md5", snapshot_every=5)
        hub.publish(LIST, [md5(i) for i in range(BOOT)])
        for version in range(2, BEHIND_AT + 1):
            hub.publish(LIST, *delta(version))
        behind = tmp_path / "behind"
        node = make_node(behind, hub, [LIST], node_id="platform-behind")
        await sync_once(node)
        node.close()
        fresh = tmp_path / "fresh"
        make_node(fresh, hub, [LIST], node_id="platform-fresh").close()
        near = tmp_path / "near"
        node = make_node(near, hub, [LIST], node_id="platform-near")
        for version in range(BEHIND_AT + 1, NEAR_AT + 1):
            hub.publish(LIST, *delta(version))
            if version >= NEAR_AT - 1:
                await sync_once(node)
        assert node.store.applied_version(LIST) == NEAR_AT
        assert node.store.db.table("state_changes").count > 0, "v7 was not logged as changes"
        node.close()
        for version in range(NEAR_AT + 1, LATEST + 1):
            hub.publish(LIST, *delta(version))
        with hub.opened() as opened:
            published = published_states(opened)
        assert max(published) == LATEST
        templates = {"fresh": fresh, "behind": behind, "near": near}

        def complete(home: Path) -> None:
            assert node_store_version(home, published) == LATEST

        longest = {
            name: await calibrate(server, "sync", template, complete)
            for name, template in templates.items()
        }
        print("full sync: " + ", ".join(f"{k} {v:.3f} s" for k, v in longest.items()))

        seen: dict[int, int] = {}
        killed = 0
        started = time.monotonic()
        for i in range(iterations):
            name = rng.choice(sorted(templates))
            [delay] = delays(rng, longest[name], 1)
            home = tmp_path / f"run-{i}"
            shutil.copytree(templates[name], home)
            result = await server.run("sync", delay, str(home))
            killed += result.killed
            version = node_store_version(home, published)
            seen[version] = seen.get(version, 0) + 1
            print(f"  {i:3d} {name:6s} kill at {delay:.4f} s: killed={result.killed} v{version}")
            again = await server.run("sync", 600, str(home))
            assert not again.killed
            assert node_store_version(home, published) == LATEST, f"iteration {i}: no recovery"
            shutil.rmtree(home)
        print(
            f"node: {iterations} iterations, {killed} killed mid-sync, versions found after "
            f"the kill {dict(sorted(seen.items()))}, {time.monotonic() - started:.1f} s"
        )
        assert killed > 0, "no kill landed inside a sync: the delays are wrong"
    finally:
        await server.stop()
        await hub.stop()


async def test_a_node_killed_during_sync_is_at_a_published_version(tmp_path: Path) -> None:
    await node_crashes(tmp_path, 10)


@pytest.mark.slow
async def test_a_node_killed_100_times_during_sync(tmp_path: Path) -> None:
    await node_crashes(tmp_path, 100)


# -- the hub, killed during publish ------------------------------------------------------

HUB_BOOT = 10_000  # hashes in the published v1
STAGED_ADDS = 3_000  # the staged v2
STAGED_REMOVES = 300


def make_publishing_hub(home: Path) -> None:
    """v1 of HUB_BOOT hashes published; a big v2 staged (a snapshot is written every version)."""
    hub = Hub.init(home, "hub.test", root_keys=1, root_threshold=1, publish_interval=0)
    try:
        hub.roots.create_list(LIST, "md5", snapshot_every=1)
        hub.lists.stage(LIST, adds=[Intake(md5(i)) for i in range(HUB_BOOT)])
        hub.publishing.publish([LIST])
        hub.lists.stage(
            LIST,
            adds=[Intake(md5(f"staged-{i}")) for i in range(STAGED_ADDS)],
            removes=[md5(i) for i in range(STAGED_REMOVES)],
        )
    finally:
        hub.close()


def hub_published_version(home: Path) -> int:
    """Open the hub after the kill; its published tree is one whole version, checked as a node."""
    hub = Hub.open(home)
    try:
        version = int(hub.lists.row(LIST)["version"])
        assert version in (1, 2), version
        published = published_states(hub)
        assert sorted(published) == list(range(1, version + 1))
        view = NodeView(from_hub(hub), hub.keys.root_sha256(1))
        state = view.update(LIST, now=utcnow())
        assert state == hub.lists.state(LIST)
        assert state.digest() == published[version]
        snapshot = hub.files.get(snapshot_path(LIST, version))
        assert snapshot is not None, f"v{version} has no snapshot"
        assert hashlib.sha256(snapshot[0]).hexdigest() == published[version].sha256
        beyond = list(
            hub.db.query(
                "SELECT path FROM files WHERE path LIKE ? OR path LIKE ?",
                [f"lists/{LIST}/delta/{version + 1}.%", f"lists/{LIST}/snapshot/{version + 1}.%"],
            )
        )
        assert beyond == [], f"files of an unpublished version are served: {beyond}"
        expected_staged = STAGED_ADDS + STAGED_REMOVES if version == 1 else 0
        assert hub.lists.staged_count(LIST) == expected_staged
        return version
    finally:
        hub.close()


def publish_next(home: Path, version: int) -> None:
    """The next publish works: the staged v2 if the kill lost it, else one more version."""
    hub = Hub.open(home)
    try:
        if version == 2:
            hub.lists.stage(LIST, adds=[Intake(md5("after-the-crash"))])
        [result] = hub.publishing.publish([LIST])
        assert result.version == version + 1
        view = NodeView(from_hub(hub), hub.keys.root_sha256(1))
        assert view.update(LIST, now=utcnow()) == hub.lists.state(LIST)
    finally:
        hub.close()


async def hub_publish_crashes(tmp_path: Path, iterations: int) -> None:
    rng = random.Random(SEED + 1)
    print(f"hub publish crash test: seed {SEED + 1}, {iterations} iterations")
    template = tmp_path / "template"
    make_publishing_hub(template)
    server = await ForkServer(tmp_path).start()
    try:

        def complete(home: Path) -> None:
            assert hub_published_version(home) == 2

        longest = await calibrate(server, "publish", template, complete)
        print(f"full publish: {longest:.3f} s")
        seen = {1: 0, 2: 0}
        killed = 0
        started = time.monotonic()
        for i, delay in enumerate(delays(rng, longest, iterations)):
            home = tmp_path / f"run-{i}"
            shutil.copytree(template, home)
            outcome = await server.run("publish", delay, str(home))
            killed += outcome.killed
            version = hub_published_version(home)
            seen[version] += 1
            print(f"  {i:3d} kill at {delay:.4f} s: killed={outcome.killed} v{version}")
            publish_next(home, version)
            shutil.rmtree(home)
        print(
            f"hub publish: {iterations} iterations, {killed} killed mid-publish, "
            f"versions found {seen}, {time.monotonic() - started:.1f} s"
        )
        assert killed > 0, "no kill landed inside a publish: the delays are wrong"
    finally:
        await server.stop()


async def test_a_hub_killed_during_publish_serves_one_whole_version(tmp_path: Path) -> None:
    await hub_publish_crashes(tmp_path, 10)


@pytest.mark.slow
async def test_a_hub_killed_100_times_during_publish(tmp_path: Path) -> None:
    await hub_publish_crashes(tmp_path, 100)


# -- the hub, killed while taking in acks -------------------------------------------------

NODES = 4
ACKS_PER_NODE = 40
BATCH = 4


@dataclass(frozen=True)
class SignedAck:
    node: str
    seq: int
    token: str
    data: bytes
    sig: bytes
    increments: dict[str, int]


def make_ack_hub(home: Path) -> list[list[SignedAck]]:
    """A hub with one published list and NODES enrolled nodes; their signed acks, in batches.

    Each node's acks carry cumulative counters: ack ``seq`` holds the sum of the
    increments of acks 1 … ``seq``, so a stored counter must equal the sum of the
    increments of the acks stored for it.
    """
    hub = Hub.init(home, "hub.test", root_keys=1, root_threshold=1, publish_interval=0)
    try:
        hub.roots.create_list(LIST, "md5")
        hub.lists.stage(LIST, adds=[Intake(md5(i)) for i in range(100)])
        hub.publishing.publish([LIST])
        view = NodeView(from_hub(hub), hub.keys.root_sha256(1))
        view.update(LIST, now=utcnow())
        _, trust = view.lists[LIST]
        origin = hub.keys.root().origin(LIST)
        applied = AppliedVersion(trust.version, trust.compact.root(), trust.state)
        rng = random.Random(SEED + 2)
        per_node: list[list[SignedAck]] = []
        for n in range(NODES):
            node_id = f"platform-{n}"
            key = SigningKey.generate()
            token = hub.access.enrol_node(node_id, key.public, [LIST])
            totals = {"checked": 0, "matched": 0, "actioned": 0}
            acks = []
            for seq in range(1, ACKS_PER_NODE + 1):
                increments = {name: rng.randrange(0, 50) for name in totals}
                totals = {name: totals[name] + increments[name] for name in totals}
                data, sig = sign_ack(
                    key=key,
                    node=node_id,
                    list_id=LIST,
                    seq=seq,
                    sent=utcnow(),
                    origin=origin,
                    applied=applied,
                    counts=Counts(
                        checked=totals["checked"],
                        matched=totals["matched"],
                        actioned=totals["actioned"],
                    ),
                )
                acks.append(SignedAck(node_id, seq, token, data, sig, increments))
            per_node.append(acks)
    finally:
        hub.close()
    interleaved = [a for group in zip(*per_node, strict=True) for a in group]
    return [interleaved[i : i + BATCH] for i in range(0, len(interleaved), BATCH)]


def write_batches(path: Path, batches: Sequence[Sequence[SignedAck]]) -> None:
    path.write_text(
        json.dumps(
            [
                [
                    [a.token, base64.b64encode(a.data).decode(), base64.b64encode(a.sig).decode()]
                    for a in batch
                ]
                for batch in batches
            ]
        ),
        encoding="utf-8",
    )


def stored_acks(hub: Hub) -> dict[tuple[str, int], int]:
    """How many times each (node, seq) is stored."""
    return {
        (r["node"], r["seq"]): r["n"]
        for r in hub.db.query("SELECT node, seq, count(*) AS n FROM acks GROUP BY node, seq")
    }


def check_counters(hub: Hub, acks: Sequence[SignedAck], stored: set[tuple[str, int]]) -> None:
    """Each node's counters are the sum of the increments of its stored acks."""
    for node_id in sorted({a.node for a in acks}):
        expected: dict[str, int] = {}
        for a in acks:
            if a.node == node_id and (a.node, a.seq) in stored:
                for name, value in a.increments.items():
                    expected[name] = expected.get(name, 0) + value
        actual = {
            r["name"]: r["total"]
            for r in hub.db.query(
                "SELECT name, total FROM counters "
                "WHERE node = ? AND list_id = ? AND hash = '' AND name IN "
                "('checked', 'matched', 'actioned')",
                [node_id, LIST],
            )
        }
        assert actual == expected, (node_id, actual, expected)


def check_acks_after_kill(
    home: Path, acks: Sequence[SignedAck], confirmed: set[tuple[str, int]]
) -> int:
    """Confirmed acks stored once, counters match; re-sending everything stores the rest once."""
    hub = Hub.open(home)
    try:
        stored = stored_acks(hub)
        assert all(n == 1 for n in stored.values()), "an ack is stored twice"
        assert confirmed <= set(stored), f"confirmed acks lost: {sorted(confirmed - set(stored))}"
        for node_id in {a.node for a in acks}:
            seqs = sorted(seq for node, seq in stored if node == node_id)
            assert seqs == list(range(1, len(seqs) + 1)), f"{node_id}: a hole in {seqs}"
        check_counters(hub, acks, set(stored))
        answers = hub.acks.receive_batch([(a.token, a.data, a.sig, None) for a in acks])
        for a, answer in zip(acks, answers, strict=True):
            assert isinstance(answer, AckReceipt), (a.node, a.seq, answer)
            assert answer.duplicate == ((a.node, a.seq) in stored), (a.node, a.seq)
        resent = [a for a in acks if (a.node, a.seq) not in stored]
        again = hub.acks.receive_batch([(a.token, a.data, a.sig, None) for a in resent])
        assert all(isinstance(r, AckReceipt) and r.duplicate for r in again)
        everything = stored_acks(hub)
        assert everything == {(a.node, a.seq): 1 for a in acks}
        check_counters(hub, acks, set(everything))
        return len(stored)
    finally:
        hub.close()


async def ack_crashes(tmp_path: Path, iterations: int) -> None:
    rng = random.Random(SEED + 3)
    print(f"hub ack crash test: seed {SEED + 3}, {iterations} iterations")
    template = tmp_path / "template"
    batches = make_ack_hub(template)
    acks = [a for batch in batches for a in batch]
    batches_file = tmp_path / "batches.json"
    write_batches(batches_file, batches)
    server = await ForkServer(tmp_path).start()
    try:
        home = tmp_path / "calibrate"
        shutil.copytree(template, home)
        result = await server.run("acks", 600, str(home), str(batches_file))
        assert not result.killed
        assert len(result.lines) == len(acks)
        assert all(x.startswith("ok ") for x in result.lines)
        assert check_acks_after_kill(home, acks, set()) == len(acks)

        def complete(home: Path) -> None:
            assert check_acks_after_kill(home, acks, {(a.node, a.seq) for a in acks}) == len(acks)

        longest = await calibrate(server, "acks", template, complete, str(batches_file))
        print(f"full ingestion of {len(acks)} acks: {longest:.3f} s")
        killed = 0
        started = time.monotonic()
        for i, delay in enumerate(delays(rng, longest, iterations)):
            home = tmp_path / f"run-{i}"
            shutil.copytree(template, home)
            outcome = await server.run("acks", delay, str(home), str(batches_file))
            killed += outcome.killed
            confirmed = set()
            for line in outcome.lines:
                word, node_id, seq = line.split()
                assert word == "ok", line
                confirmed.add((node_id, int(seq)))
            stored = check_acks_after_kill(home, acks, confirmed)
            print(
                f"  {i:3d} kill at {delay:.4f} s: killed={outcome.killed} "
                f"confirmed {len(confirmed)}, stored {stored}"
            )
            shutil.rmtree(home)
        print(
            f"hub acks: {iterations} iterations, {killed} killed mid-ingestion, "
            f"{time.monotonic() - started:.1f} s"
        )
        assert killed > 0, "no kill landed inside the ingestion: the delays are wrong"
    finally:
        await server.stop()


async def test_a_hub_killed_taking_in_acks_keeps_every_confirmed_ack_once(
    tmp_path: Path,
) -> None:
    await ack_crashes(tmp_path, 10)


@pytest.mark.slow
async def test_a_hub_killed_100_times_taking_in_acks(tmp_path: Path) -> None:
    await ack_crashes(tmp_path, 100)


# -- the hub's HTTP app, killed while nodes post acks -------------------------------------


async def post_acks(url: str, acks: Sequence[SignedAck]) -> set[tuple[str, int]]:
    """Every node posts its acks in ``seq`` order, all nodes at once, as real nodes do.

    A node stops at the first ack the hub does not answer (the hub died); any
    answer other than 200 fails the test. Returns the acks the hub confirmed.
    """
    confirmed: set[tuple[str, int]] = set()
    by_node: dict[str, list[SignedAck]] = {}
    for a in acks:
        by_node.setdefault(a.node, []).append(a)

    async def one_node(session: aiohttp.ClientSession, mine: list[SignedAck]) -> None:
        for a in mine:
            try:
                async with session.post(
                    f"{url}/v1/acks",
                    data=a.data,
                    headers=ack_headers(a.token, a.sig),
                    timeout=aiohttp.ClientTimeout(total=30),
                ) as resp:
                    text = await resp.text()
            except (aiohttp.ClientError, TimeoutError):
                return
            assert resp.status == 200, (a.node, a.seq, resp.status, text)
            confirmed.add((a.node, a.seq))

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one_node(session, mine) for mine in by_node.values()))
    return confirmed


async def serve_and_post(
    server: ForkServer, home: Path, acks: Sequence[SignedAck], delay: float
) -> tuple[JobResult, set[tuple[str, int]], float]:
    """Serve ``home`` in a worker killed after ``delay``; post every ack to it meanwhile.

    Returns how the worker ended, the confirmed acks, and the seconds from the
    start of the worker until every ack was confirmed (0 if some were not).
    """
    started = time.monotonic()
    await server.begin("serve", delay, str(home))
    line = await server.line()
    if line.startswith("exit "):  # killed before it listened
        return server.ended(line), set(), 0.0
    assert line.startswith("port "), line
    confirmed = await post_acks(f"http://127.0.0.1:{line.split()[1]}", acks)
    took = time.monotonic() - started if len(confirmed) == len(acks) else 0.0
    (home / "stop-serving").touch()
    return await server.finish(), confirmed, took


async def http_ack_crashes(tmp_path: Path, iterations: int) -> None:
    rng = random.Random(SEED + 4)
    print(f"hub app ack crash test: seed {SEED + 4}, {iterations} iterations")
    template = tmp_path / "template"
    acks = [a for batch in make_ack_hub(template) for a in batch]
    server = await ForkServer(tmp_path).start()
    try:
        longest = float("inf")  # the shortest of three runs, as ``calibrate`` takes
        for run in range(3):
            home = tmp_path / f"calibrate-{run}"
            shutil.copytree(template, home)
            result, confirmed, took = await serve_and_post(server, home, acks, 600)
            assert not result.killed
            assert len(confirmed) == len(acks)
            assert check_acks_after_kill(home, acks, confirmed) == len(acks)
            longest = min(longest, took)
        print(f"serving and posting {len(acks)} acks: {longest:.3f} s")
        killed = 0
        started = time.monotonic()
        for i, delay in enumerate(delays(rng, longest, iterations)):
            home = tmp_path / f"run-{i}"
            shutil.copytree(template, home)
            outcome, confirmed, _ = await serve_and_post(server, home, acks, delay)
            killed += outcome.killed
            stored = check_acks_after_kill(home, acks, confirmed)
            print(
                f"  {i:3d} kill at {delay:.4f} s: killed={outcome.killed} "
                f"confirmed {len(confirmed)}, stored {stored}"
            )
            shutil.rmtree(home)
        print(
            f"hub app acks: {iterations} iterations, {killed} killed while serving, "
            f"{time.monotonic() - started:.1f} s"
        )
        assert killed > 0, "no kill landed while the hub was serving: the delays are wrong"
    finally:
        await server.stop()


async def test_a_hub_app_killed_while_nodes_post_acks_keeps_every_confirmed_ack_once(
    tmp_path: Path,
) -> None:
    await http_ack_crashes(tmp_path, 10)


@pytest.mark.slow
async def test_a_hub_app_killed_50_times_while_nodes_post_acks(tmp_path: Path) -> None:
    await http_ack_crashes(tmp_path, 50)
