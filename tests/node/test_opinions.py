"""A platform's position on an entry, from a reviewer's outcome to the signed ack.

For a match of an entries list, the outcome a reviewer records is also what the
platform says of the entry (PROTOCOL.md §10.1 ``opinions``): ``actioned`` and
``blocked`` confirm it, ``false_positive`` disputes it with a reason. The next ack of
the list carries every position that changed since the last one, signed by the node;
an ack after nothing changed carries none. The node here follows a real published
tree over HTTP (``tests/node/entries_hub.py``), its API is served on loopback, and
the acks are read from its outbox and verified with its own public key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from node.api.keys import NODE, SESSION
from node.app import create_app
from node.cli import main
from node.config import read_secret
from node.service import Node, run_sync
from protocol import Opinion, verify_ack
from protocol.keyfile import load_public_key
from tests.node.entries_hub import EntriesHub, md5, record
from tests.node.fixtures_sync import Clock

LIST = "tid-entries-md5"


@pytest.fixture
async def hub() -> AsyncIterator[EntriesHub]:
    published = await EntriesHub(Clock()).start()
    try:
        yield published
    finally:
        await published.close()


def acks_of(home: Path) -> list[Any]:
    """Every ack in the node's outbox, verified by the node's public key, oldest first."""
    key = load_public_key(home / "node.pub.pem")
    node = Node.open(home)
    try:
        rows = list(node.store.db.query("SELECT bytes, sig FROM ack_outbox ORDER BY seq"))
    finally:
        node.close()
    return [
        verify_ack(bytes(r["bytes"]), bytes(r["sig"]), node_key=key, origin_prefix="hub.test")
        for r in rows
    ]


async def test_outcomes_become_the_platforms_signed_positions_on_entries(
    hub: EntriesHub, tmp_path: Path
) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record("a", t), record("b", t), record("c", t)])
    home = tmp_path / "node"
    Node.init(
        home,
        node_id="platform-a",
        hub_url=hub.url,
        lists=[LIST],
        pinned_root_sha256=hub.pinned,
        now=hub.clock,
    ).close()
    app = create_app(home, now=hub.clock, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        await run_sync(app[NODE], app[SESSION])
        auth = {"Authorization": f"Bearer {read_secret(home / 'api-token')}"}
        answer = await client.post(
            "/v1/match",
            json={"hashes": [{"type": "md5", "hash": md5(x).hex()} for x in "abc"]},
            headers=auth,
        )
        assert answer.status == 200, await answer.text()
        ids = {m["entry"]: m["match_id"] for m in (await answer.json())["matches"]}
        assert sorted(ids) == ["e-a", "e-b", "e-c"]

        told = await client.post(
            f"/v1/matches/{ids['e-a']}/outcome", json={"outcome": "blocked"}, headers=auth
        )
        assert (await told.json()) == {
            "match_id": ids["e-a"],
            "outcome": "blocked",
            "duplicate": False,
        }
        disputed = await client.post(
            f"/v1/matches/{ids['e-b']}/outcome",
            json={"outcome": "false_positive", "reason": "benign"},
            headers=auth,
        )
        assert (await disputed.json())["reason"] == "benign"
        wrong = await client.post(
            f"/v1/matches/{ids['e-c']}/outcome",
            json={"outcome": "blocked", "reason": "benign"},
            headers=auth,
        )
        assert wrong.status == 400
        assert "reason" in (await wrong.json())["error"]["message"]
        kept = await client.post(
            f"/v1/matches/{ids['e-c']}/outcome", json={"outcome": "kept"}, headers=auth
        )
        assert kept.status == 200

        synced_acks = acks_of(home)
        assert all(not a.opinions for a in synced_acks), "no outcome yet: no position"
        app[NODE].acks.enqueue()
        first = acks_of(home)[len(synced_acks)]
        assert dict(first.opinions) == {
            "e-a": Opinion("confirmed", "blocked"),
            "e-b": Opinion("disputed", "benign"),
        }, "kept takes no position"

        app[NODE].acks.enqueue()
        assert dict(acks_of(home)[-1].opinions) == {}, "nothing changed: nothing carried"

    # The command line: another match of e-b, actioned, takes the platform's position back
    # to confirmed — the newest outcome on any match of an entry speaks for the platform.
    node = Node.open(home, now=hub.clock)
    try:
        found = node.matching.match_hashes({"md5": [md5("b")]}, one_item=True)
        [again] = [m for m in found if m.entry is not None]
    finally:
        node.close()
    ran = CliRunner().invoke(main, ["outcome", again.match_id, "actioned", "--home", str(home)])
    assert ran.exit_code == 0, ran.output
    refused = CliRunner().invoke(
        main,
        ["outcome", again.match_id, "false_positive", "--reason", "nonsense", "--home", str(home)],
    )
    assert refused.exit_code == 2
    node = Node.open(home, now=hub.clock)
    try:
        node.acks.enqueue()
    finally:
        node.close()
    assert dict(acks_of(home)[-1].opinions) == {"e-b": Opinion("confirmed", "actioned")}


async def test_a_requeued_ack_keeps_its_opinions(hub: EntriesHub, tmp_path: Path) -> None:
    """Re-signing queued acks (a key rotation, a renumbering) keeps what they said."""
    t = hub.clock()
    hub.publish(LIST, adds=[record("a", t)])
    home = tmp_path / "node"
    Node.init(
        home,
        node_id="platform-a",
        hub_url=hub.url,
        lists=[LIST],
        pinned_root_sha256=hub.pinned,
        now=hub.clock,
    ).close()
    node = Node.open(home, now=hub.clock)
    try:
        async with aiohttp.ClientSession() as session:
            await run_sync(node, session)
        [hit] = node.matching.match_hashes({"md5": [md5("a")]}, one_item=True)
        node.matching.record_outcome(hit.match_id, "false_positive", "not_the_content")
        node.acks.enqueue()
        before = [a.seq for a in acks_of(home)]
        renumbered = node.acks.renumber(100)
    finally:
        node.close()
    acks = acks_of(home)
    assert before
    assert [a.seq for a in acks] == renumbered
    assert renumbered[0] == 101
    assert dict(acks[-1].opinions) == {"e-a": Opinion("disputed", "not_the_content")}
