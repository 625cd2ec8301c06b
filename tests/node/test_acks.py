"""The node's signed acks (docs/design.md §4.4, §4.2 step 9) against the real hub app.

An ack per list after each applied version, with cumulative counters and the
per-hash counters that changed since the last ack; kept in a durable outbox
until the hub confirms; sent in ``seq`` order; a retry sends the very same
bytes. The hub's totals (``Reports.status``) and its ``acks`` table are the
judges: every ack arrives once, none is counted twice, and a node whose
counters reset never makes the totals go down.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge.ratelimit import RateLimiter
from hub.limits import LIMITS
from node.service import Node, flush_acks
from protocol import Ack, parse_time, verify_ack
from protocol.ack import MAX_HASH_ENTRIES
from protocol.keyfile import load_public_key
from tests.node.fixtures_sync import (
    HUB_NAME,
    NODE_ID,
    Clock,
    HubApp,
    evidence_rows,
    fork_hub,
    make_node,
    md5,
    statuses,
    sync_once,
)
from tests.node.hostile import Drop, HostileServer, Status

LIST = "tid-md5"
COUNTERS = ("checked", "matched", "actioned", "blocked", "false_positive")


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


async def flush(node: Node) -> tuple[int, int]:
    async with aiohttp.ClientSession() as session:
        return await flush_acks(node, session)


def outbox(node: Node) -> list[dict[str, Any]]:
    return list(node.store.db.query("SELECT * FROM ack_outbox ORDER BY seq"))


def read_ack(node: Node, row: dict[str, Any]) -> Ack:
    """An outbox row's ack, verified with the node's public key as the hub does."""
    key = load_public_key(node.home / "node.pub.pem")
    return verify_ack(bytes(row["bytes"]), bytes(row["sig"]), node_key=key, origin_prefix=HUB_NAME)


def hub_totals(hub: HubApp) -> dict[str, int]:
    return dict(hub.status(LIST).totals)


def node_totals(node: Node) -> dict[str, int]:
    counts = node.status()["lists"][0]["counts"]
    return {name: counts[name] for name in COUNTERS}


def match_and_decide(node: Node, decisions: dict[bytes, str | None], misses: int = 0) -> None:
    """Check ``decisions``' hashes plus ``misses`` unlisted ones; record each decision."""
    queries = list(decisions) + [md5(f"unlisted-{i}") for i in range(misses)]
    for match in node.matching.match_hashes({"md5": queries}):
        decision = decisions[match.hash]
        if decision is not None:
            node.matching.record_outcome(match.match_id, decision)


async def test_each_applied_version_is_acked_with_cumulative_and_changed_counters(
    hub: HubApp, node: Node
) -> None:
    await sync_once(node)
    match_and_decide(node, {md5(1): "actioned", md5(2): "false_positive"}, misses=1)
    hub.publish(LIST, adds=[md5("v2")])
    await sync_once(node)
    match_and_decide(node, {md5(3): "blocked"})
    hub.publish(LIST, adds=[md5("v3")])
    await sync_once(node)

    acks = [read_ack(node, row) for row in outbox(node)]

    assert [(a.seq, a.list_id, a.applied.version) for a in acks] == [
        (1, LIST, 1),
        (2, LIST, 2),
        (3, LIST, 3),
    ]
    assert all(a.node == NODE_ID for a in acks)
    first, second, third = (a.counts.to_dict() for a in acks)
    assert first == dict.fromkeys(COUNTERS, 0) | {"hashes": {}}
    assert second == {
        "checked": 3,
        "matched": 2,
        "actioned": 1,
        "blocked": 0,
        "false_positive": 1,
        "hashes": {
            md5(1).hex(): {"matched": 1, "actioned": 1},
            md5(2).hex(): {"matched": 1, "false_positive": 1},
        },
    }
    assert third == {
        "checked": 4,
        "matched": 3,
        "actioned": 1,
        "blocked": 1,
        "false_positive": 1,
        "hashes": {md5(3).hex(): {"matched": 1, "blocked": 1}},
    }, "totals stay cumulative; only the hash that changed since the last ack is listed"

    assert await flush(node) == (3, 0)
    assert hub_totals(hub) == node_totals(node) == {k: v for k, v in third.items() if k in COUNTERS}
    assert hub.status(LIST).nodes[0].applied_version == 3
    with hub.opened() as opened:
        per_hash = opened.ledger.hash_counts(LIST)
    assert per_hash[md5(1).hex()] == {"matched": 1, "actioned": 1}
    assert per_hash[md5(3).hex()] == {"matched": 1, "blocked": 1}


async def test_acks_wait_while_the_hub_is_down_then_arrive_once_in_seq_order(
    hub: HubApp, node: Node
) -> None:
    clock = hub.clock
    await sync_once(node)  # seq 1, queued
    match_and_decide(node, {md5(1): "actioned"}, misses=2)
    node.acks.enqueue()  # seq 2, as the schedule would
    await hub.stop()

    assert await flush(node) == (0, 1)
    head, second = outbox(node)
    assert (head["seq"], head["attempts"]) == (1, 1)
    assert "cannot connect to" in head["last_error"]
    assert parse_time(head["next_attempt"], "t") == clock() + timedelta(seconds=2)
    assert second["attempts"] == 0, "acks after a failed one wait: seq order is kept"
    assert await flush(node) == (0, 0), "backing off: nothing is due yet"

    clock.advance(2)
    assert await flush(node) == (0, 1)
    assert outbox(node)[0]["attempts"] == 2
    assert parse_time(outbox(node)[0]["next_attempt"], "t") == clock() + timedelta(seconds=4)
    match_and_decide(node, {md5(2): "blocked"})
    node.acks.enqueue()  # seq 3
    sent = {row["seq"]: bytes(row["bytes"]) for row in outbox(node)}

    await hub.start()  # a new app on the same home and port
    assert await flush(node) == (0, 0), "the head of the queue is still backing off"
    clock.advance(4)
    assert await flush(node) == (3, 0)

    stored = hub.acks(NODE_ID)
    assert [a.seq for a in stored] == [1, 2, 3], "arrived in seq order"
    assert {a.seq: a.bytes for a in stored} == sent, "the very bytes queued"
    assert outbox(node) == []
    confirmed = list(node.store.db.query("SELECT seq FROM acks_confirmed ORDER BY seq"))
    assert [r["seq"] for r in confirmed] == [1, 2, 3]
    assert (
        hub_totals(hub)
        == node_totals(node)
        == {
            "checked": 4,
            "matched": 2,
            "actioned": 1,
            "blocked": 1,
            "false_positive": 0,
        }
    )
    assert await flush(node) == (0, 0)
    assert len(hub.acks(NODE_ID)) == 3


async def test_later_acks_never_overtake_one_that_is_backing_off(hub: HubApp, node: Node) -> None:
    """Once the hub has a higher seq it refuses a lower one for good: order is everything."""
    await sync_once(node)  # seq 1
    await hub.stop()
    assert await flush(node) == (0, 1)
    node.acks.enqueue()  # seq 2: due at once, while seq 1 waits
    await hub.start()

    assert await flush(node) == (0, 0)
    hub.clock.advance(2)
    assert await flush(node) == (2, 0)
    assert [a.seq for a in hub.acks(NODE_ID)] == [1, 2]


async def test_retry_after_a_lost_answer_reuses_seq_and_bytes_and_hub_says_duplicate(
    tmp_path: Path, hub: HubApp
) -> None:
    proxy = await HostileServer.proxy(hub.url).start()
    node = make_node(tmp_path / "proxied", hub, [LIST], hub_url=proxy.url)
    try:
        # The hub stores the ack, then the connection drops before its answer arrives.
        proxy.on("/v1/acks", Drop(forward=True), times=1)
        assert statuses((await sync_once(node))[0]) == {LIST: ("updated", 0, 1)}
        match_and_decide(node, {md5(1): "actioned"})
        node.acks.enqueue()

        assert await flush(node) == (0, 1)
        assert [a.seq for a in hub.acks(NODE_ID)] == [1], "the hub got it"
        assert [row["seq"] for row in outbox(node)] == [1, 2], "the node does not know"

        hub.clock.advance(2)
        assert await flush(node) == (2, 0)

        posted = [body for path, body in proxy.bodies if path == "/v1/acks"]
        assert len(posted) == 3
        assert posted[0] == posted[1], "the retry is the same seq, byte for byte"
        answers = [json.loads(body) for path, _, body in proxy.answers if path == "/v1/acks"]
        assert [(a["seq"], a["duplicate"]) for a in answers] == [(1, False), (1, True), (2, False)]
        assert [a.seq for a in hub.acks(NODE_ID)] == [1, 2]
        assert hub_totals(hub)["actioned"] == 1
        assert hub_totals(hub) == node_totals(node)
    finally:
        node.close()
        await proxy.close()


async def test_a_rate_limited_ack_waits_as_long_as_the_hubs_retry_after(
    hub: HubApp, node: Node
) -> None:
    """The hub's 429 says when to come back (PROTOCOL.md §10.6); doubling would say 2 s."""
    await sync_once(node)  # seq 1, queued
    assert hub.app is not None
    limiter = RateLimiter(burst=1, per_hour=36, clock=lambda: 0.0)  # one token per 100 s
    limiter.take(f"node:{NODE_ID}")  # this node's allowance is spent
    hub.app[LIMITS].credential = limiter
    assert await flush(node) == (0, 1)
    (row,) = outbox(node)
    assert row["last_error"].startswith("HTTP 429")
    assert parse_time(row["next_attempt"], "t") == hub.clock() + timedelta(seconds=100)
    hub.clock.advance(99)
    assert await flush(node) == (0, 0), "not before the hub said"
    hub.app[LIMITS].credential = None
    hub.clock.advance(1)
    assert await flush(node) == (1, 0)
    assert [a.seq for a in hub.acks(NODE_ID)] == [1]


async def test_hub_errors_keep_the_ack_in_the_outbox(tmp_path: Path, hub: HubApp) -> None:
    proxy = await HostileServer.proxy(hub.url).start()
    node = make_node(tmp_path / "proxied", hub, [LIST], hub_url=proxy.url)
    try:
        await sync_once(node)
        proxy.on("/v1/acks", Status(503))
        assert await flush(node) == (0, 1)
        (row,) = outbox(node)
        assert row["attempts"] == 1
        assert row["last_error"].startswith("HTTP 503")
        assert hub.acks(NODE_ID) == []
        proxy.behave()
        hub.clock.advance(2)
        assert await flush(node) == (1, 0)
        assert [a.seq for a in hub.acks(NODE_ID)] == [1]
    finally:
        node.close()
        await proxy.close()


async def test_node_whose_counters_reset_never_lowers_the_hub_totals(
    hub: HubApp, node: Node
) -> None:
    await sync_once(node)
    match_and_decide(node, {md5(1): "actioned", md5(2): None}, misses=1)
    node.acks.enqueue()
    assert await flush(node) == (2, 0)
    before = hub_totals(hub)
    assert before == {"checked": 3, "matched": 2, "actioned": 1, "blocked": 0, "false_positive": 0}

    node.store.db.execute("DELETE FROM counters")  # e.g. a restored backup of the node
    match_and_decide(node, {md5(3): "blocked"})
    assert node_totals(node)["checked"] == 1
    node.acks.enqueue()
    assert await flush(node) == (1, 0)

    after = hub_totals(hub)
    assert all(after[name] >= before[name] for name in COUNTERS), (before, after)
    assert after == {"checked": 4, "matched": 3, "actioned": 1, "blocked": 1, "false_positive": 0}
    with hub.opened() as opened:
        assert opened.ledger.hash_counts(LIST)[md5(3).hex()] == {"matched": 1, "blocked": 1}


async def test_node_shown_another_history_is_caught_by_its_ack(
    tmp_path: Path, hub: HubApp, node: Node
) -> None:
    """Every node is a witness: an ack co-signing a root the hub never published is evidence."""
    fork = await fork_hub(hub, tmp_path / "fork")
    fork.publish(LIST, adds=[md5("shown only to this node")])
    hub.publish(LIST, adds=[md5("what everyone else sees")])
    split = await HostileServer.serving(fork.home).start()
    try:
        outcomes, _ = await sync_once(node, hub_url=split.url)
        assert statuses(outcomes) == {LIST: ("updated", 0, 2)}, "validly signed: accepted"

        assert await flush(node) == (0, 1)

        # The refused ack leaves the queue (it would block every later one) and the
        # node keeps it, bytes and all, as evidence of the split view it was shown.
        assert outbox(node) == []
        (kept,) = [e for e in evidence_rows(node) if e["kind"] == "AckRefused"]
        assert kept["message"].startswith("seq 1: HTTP 422")
        assert "split" in kept["message"] or "never published" in kept["message"]
        ack_bytes = node.store.db.execute(
            "SELECT bytes FROM evidence WHERE id = ?", [kept["id"]]
        ).fetchone()[0]
        with hub.opened() as opened:
            (evidence,) = opened.evidence.items(include_bytes=True)
        assert (evidence.kind, evidence.node, evidence.list) == (
            "split_view",
            NODE_ID,
            LIST,
        )
        assert evidence.bytes == bytes(ack_bytes)
        assert hub.acks(NODE_ID) == []
    finally:
        await split.close()


async def test_more_changed_hashes_than_one_ack_holds_go_in_further_acks(
    hub: HubApp, node: Node
) -> None:
    bulk = [md5(f"bulk-{i}") for i in range(MAX_HASH_ENTRIES + 1)]
    hub.publish(LIST, adds=bulk)
    await sync_once(node)  # seq 1
    match_and_decide(node, dict.fromkeys(bulk))  # matched: one transaction for all

    queued = node.acks.enqueue()

    assert queued == [2, 3]
    acks = [read_ack(node, row) for row in outbox(node)]
    assert [len(a.counts.hashes) for a in acks] == [0, MAX_HASH_ENTRIES, 1]
    assert acks[1].counts.matched == acks[2].counts.matched == len(bulk), "same totals"
    assert await flush(node) == (3, 0)
    with hub.opened() as opened:
        per_hash = opened.ledger.hash_counts(LIST)
    assert len(per_hash) == len(bulk)
    assert all(c == {"matched": 1} for c in per_hash.values())
    assert hub_totals(hub)["matched"] == len(bulk)
    assert node.acks.enqueue() == [4]
    assert read_ack(node, outbox(node)[-1]).counts.hashes == {}


async def test_an_ack_the_hub_refuses_for_good_is_kept_and_does_not_block_later_acks(
    hub: HubApp, node: Node
) -> None:
    await sync_once(node)  # seq 1
    assert await flush(node) == (1, 0)
    # Bytes the hub can never accept (an altered copy of seq 1 with a broken sidecar):
    # the hub answers 400 however often it is asked.
    first = hub.acks(NODE_ID)[0]
    node.store.db.execute(
        "INSERT INTO ack_outbox (seq, list_id, bytes, sig, created, next_attempt) "
        "VALUES (2, ?, ?, ?, '2000-01-01T00:00:00Z', '2000-01-01T00:00:00Z')",
        [LIST, bytes(first.bytes).replace(b'"checked":', b'"checked": '), b"{}"],
    )
    node.acks.enqueue()  # seq 3, behind the bad one

    assert await flush(node) == (1, 1)

    assert outbox(node) == []
    assert [a.seq for a in hub.acks(NODE_ID)] == [1, 3]
    assert [e["kind"] for e in evidence_rows(node)] == ["AckRefused"]


async def test_node_that_lost_its_database_resigns_its_acks_above_the_hubs_last_seq(
    hub: HubApp, node: Node
) -> None:
    await sync_once(node)
    match_and_decide(node, {md5(0): "actioned", md5(1): "blocked"})
    node.acks.enqueue()
    assert await flush(node) == (2, 0)
    assert [a.seq for a in hub.acks(NODE_ID)] == [1, 2]
    before = hub_totals(hub)
    assert before["actioned"] == 1

    # The platform loses the node's database (keys, token and config survive) and
    # starts again: its seq counts from 1, which the hub already holds.
    home = node.home
    node.close()
    for leftover in home.glob("node.db*"):
        leftover.unlink()
    hub.clock.advance(60)
    fresh = Node.open(home, now=hub.clock)
    try:
        await sync_once(fresh)
        match_and_decide(fresh, {md5(2): "actioned"})
        fresh.acks.enqueue()
        assert [row["seq"] for row in outbox(fresh)] == [1, 2]

        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{hub.url}/v1/acks",
                data=bytes(outbox(fresh)[0]["bytes"]),
                headers={
                    "Authorization": f"Bearer {fresh.token}",
                    "Hashhub-Signature": base64.b64encode(bytes(outbox(fresh)[0]["sig"])).decode(),
                    "Content-Type": "application/json",
                },
            ) as resp,
        ):
            assert resp.status == 409
            assert resp.headers["Hashhub-Last-Seq"] == "2"
            assert (await resp.json())["error"]["code"] == "seq_conflict"

        assert await flush(fresh) == (2, 0)

        assert outbox(fresh) == []
        assert [a.seq for a in hub.acks(NODE_ID)] == [1, 2, 3, 4]
        assert [e["kind"] for e in evidence_rows(fresh)] == ["AckRenumbered"] * 2
        # The fresh counters restarted at zero: the hub's totals only grow.
        after = hub_totals(hub)
        assert after["actioned"] == 2
        assert after["blocked"] == before["blocked"]
    finally:
        fresh.close()


async def test_a_hub_claiming_an_absurd_last_seq_is_not_believed(hub: HubApp, node: Node) -> None:
    """A 409 whose last seq lies beyond any plausible jump is a refusal, not a renumbering."""
    await sync_once(node)
    assert await flush(node) == (1, 0)
    with hub.opened() as opened:
        opened.db.execute("UPDATE nodes SET last_seq = ? WHERE id = ?", [2**40, NODE_ID])
    match_and_decide(node, {md5(0): "actioned"})
    node.acks.enqueue()  # seq 2

    assert await flush(node) == (0, 1)

    assert outbox(node) == []
    assert [e["kind"] for e in evidence_rows(node)] == ["AckRefused"]
