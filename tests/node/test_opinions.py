"""A platform's position on an entry, from a reviewer's outcome to the signed ack.

For a match of an entries list, the outcome a reviewer records is also what the
platform says of the entry (PROTOCOL.md §10.1 ``opinions``): ``actioned`` and
``blocked`` confirm it, ``false_positive`` disputes it with a reason. The next ack of
the list carries every position that changed since the last one, signed by the node;
an ack after nothing changed carries none. The node here follows a real published
tree over HTTP (``tests/node/entries_hub.py``), its API is served on loopback, and
the acks are read from its outbox and verified with its own public key.

The other way round, what the platforms say reaches the node in the hub's opinion
summary (PROTOCOL.md §10.7), published here with ``Publisher.publish_entries(...,
opinions=...)`` and, where a hub would publish one the publisher refuses, forged
with the same delta key (``EntriesHub.forge``): the node verifies it with the
version or rejects the whole update, and its matches, its policy on disputed
entries and the ``kept`` counts of its acks use it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
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
from node.store import Stance
from protocol import (
    Dispute,
    EntriesBody,
    EntryOpinions,
    EntryState,
    NodeCut,
    Opinion,
    OpinionSummary,
    Removal,
    Voice,
    verify_ack,
)
from protocol.keyfile import load_public_key
from tests.node.entries_hub import EntriesHub, md5, record
from tests.node.fixtures_sync import Clock, StoreImage, evidence_rows, sync_once
from tests.node.test_entries import api_client, make_node, match, recent, synced
from tests.web.node_support import log_in
from tests.web.test_node_page_entries import field, match_row

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


# -- the hub's opinion summary, verified and used ------------------------------------------

CUT = {
    "node-b": NodeCut("platform-b", 9),
    "node-c": NodeCut("platform-c", 9),
    "node-d": NodeCut("platform-d", 9),
}
"""The nodes a summary counts: three other platforms, one node each."""


def said_of(created: datetime, dispute: str = "open") -> dict[str, EntryOpinions]:
    """``e-a`` confirmed by two platforms; ``e-b`` confirmed by one and disputed by two
    (the root's default threshold: a dispute, ``open`` unless told); ``e-c`` disputed by
    one, which makes no dispute."""
    return {
        "e-a": EntryOpinions(
            confirmed={
                "platform-b": Voice("node-b", 3, "blocked"),
                "platform-c": Voice("node-c", 2, "actioned"),
            }
        ),
        "e-b": EntryOpinions(
            confirmed={"platform-b": Voice("node-b", 3, "actioned")},
            disputed={
                "platform-c": Voice("node-c", 4, "benign"),
                "platform-d": Voice("node-d", 1, "not_the_content"),
            },
            dispute=Dispute("open", created)
            if dispute == "open"
            else Dispute("dismissed", created, created, "operator"),
        ),
        "e-c": EntryOpinions(disputed={"platform-c": Voice("node-c", 4, "other")}),
    }


def summary(
    said: Callable[[datetime], Mapping[str, EntryOpinions]] = said_of,
) -> Callable[[int, datetime, EntryState], OpinionSummary]:
    """What ``Publisher.publish_entries(opinions=...)`` calls: the version's summary,
    speaking only of the entries the version holds."""

    def make(version: int, created: datetime, state: EntryState) -> OpinionSummary:
        held = state.entry_ids()
        entries = {e: o for e, o in said(created).items() if e in held}
        return OpinionSummary(LIST, version, created, 2, CUT, entries)

    return make


def summary_rows(node: Node) -> list[dict[str, Any]]:
    return node.store.opinions.rows(LIST)


def held_rows(node: Node) -> list[tuple[Any, ...]]:
    """The summary's rows and the records' rows, as stored: compared before and after."""
    db = node.store.db
    return [
        tuple(r.values())
        for table in ("summary_opinions", "entry_records", "entry_records_state")
        for r in db.query(f"SELECT * FROM {table} ORDER BY 1, 2")
    ]


async def test_a_summary_signed_with_the_version_reaches_every_match_answer(
    hub: EntriesHub, tmp_path: Path
) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record(x, t) for x in "abcd"], opinions=summary())
    home = tmp_path / "node"
    make_node(home, hub).close()
    async with api_client(home, hub) as (client, app):
        [outcome] = await synced(app)
        assert (outcome.status, outcome.to_version) == ("updated", 1), outcome
        found = {m["entry"]: m for m in await match(client, home, "a", "b", "c", "d")}
        assert {e: m["opinions"] for e, m in found.items()} == {
            "e-a": {"confirmed": 2, "disputed": 0, "dispute": None},
            "e-b": {"confirmed": 1, "disputed": 2, "dispute": "open"},
            "e-c": {"confirmed": 0, "disputed": 1, "dispute": None},
            "e-d": {"confirmed": 0, "disputed": 0, "dispute": None},
        }
        assert found["e-b"]["decision"] == "block", "an open dispute blocks by default"
        events = {e["entry"]: e for e in await recent(client, home)}
        assert {e: m["opinions"] for e, m in events.items()} == {
            e: m["opinions"] for e, m in found.items()
        }
        node = app[NODE]
        rows = {r["entry"]: r for r in summary_rows(node)}
        assert sorted(rows) == ["e-a", "e-b", "e-c"], "an entry nobody spoke of has no row"
        assert rows["e-b"]["reasons"] == {
            "confirmed": {"actioned": 1},
            "disputed": {"benign": 1, "not_the_content": 1},
        }
        assert (rows["e-b"]["dispute"], rows["e-b"]["version"]) == ("open", 1)

        # A version without a summary keeps the rows of the entries still held.
        hub.clock.advance(60)
        hub.publish(LIST, removes=[Removal(record("a", t), "withdrawn")])
        [outcome] = await synced(app)
        assert (outcome.status, outcome.to_version) == ("updated", 2), outcome
        assert [r["entry"] for r in summary_rows(node)] == ["e-b", "e-c"]
        [b] = await match(client, home, "b")
        assert b["opinions"] == {"confirmed": 1, "disputed": 2, "dispute": "open"}

        # The next summary replaces the rows whole: e-b's dispute dismissed, e-c unsaid.
        hub.clock.advance(60)
        hub.publish(
            LIST,
            adds=[record("e", t)],
            opinions=summary(lambda at: {"e-b": said_of(at, "dismissed")["e-b"]}),
        )
        [outcome] = await synced(app)
        assert (outcome.status, outcome.to_version) == ("updated", 3), outcome
        assert [(r["entry"], r["dispute"], r["version"]) for r in summary_rows(node)] == [
            ("e-b", "dismissed", 3)
        ]
        found = {m["entry"]: m["opinions"] for m in await match(client, home, "b", "c")}
        assert found == {
            "e-b": {"confirmed": 1, "disputed": 2, "dispute": "dismissed"},
            "e-c": {"confirmed": 0, "disputed": 0, "dispute": None},
        }

    ran = CliRunner().invoke(main, ["match", "--json", md5("b").hex(), "--home", str(home)])
    assert ran.exit_code == 0, ran.output
    [shown] = json.loads(ran.output)[md5("b").hex()]
    assert shown["opinions"] == {"confirmed": 1, "disputed": 2, "dispute": "dismissed"}
    ran = CliRunner().invoke(main, ["match", md5("b").hex(), "--home", str(home)])
    assert "  platforms: 1 confirm, 2 dispute, dispute dismissed  match id " in ran.output


def _wrong_bytes(hub: EntriesHub) -> str:
    """The header signs one summary; the server sends other bytes of the same length."""
    t = hub.clock()
    publication = hub.publish(LIST, adds=[record("c", t)], opinions=summary())
    [path] = [p for p in publication.files if "/opinions/" in p]
    data = hub.files[path]
    hub.files[path] = data.replace(b'"reason":"benign"', b'"reason":"benigN"')
    assert hub.files[path] != data
    assert len(hub.files[path]) == len(data)
    return "ConsistencyError"


def _missing(hub: EntriesHub) -> str:
    """The header names a summary no source serves."""
    publication = hub.publish(LIST, adds=[record("c", hub.clock())], opinions=summary())
    [path] = [p for p in publication.files if "/opinions/" in p]
    del hub.files[path]
    return "MissingFileError"


def _forged(hub: EntriesHub, threshold: int, said: Mapping[str, EntryOpinions]) -> None:
    """A version adding ``c`` whose header names a summary the publisher would refuse."""
    body = EntriesBody.build("md5", adds=[record("c", hub.clock())])
    hub.forge(
        LIST,
        body,
        hub.heads[LIST].state.apply(body),
        opinions=lambda version, created: OpinionSummary(
            LIST, version, created, threshold, CUT, said
        ).to_bytes(),
    )


def _an_entry_not_held(hub: EntriesHub) -> str:
    confirmed = EntryOpinions(confirmed={"platform-b": Voice("node-b", 1, "blocked")})
    _forged(hub, 2, {"e-a": confirmed, "e-never-listed": confirmed})
    return "ConsistencyError"


def _not_the_roots_threshold(hub: EntriesHub) -> str:
    confirmed = EntryOpinions(confirmed={"platform-b": Voice("node-b", 1, "blocked")})
    _forged(hub, 3, {"e-a": confirmed})
    return "ConsistencyError"


@pytest.mark.parametrize(
    "bad_summary", [_wrong_bytes, _missing, _an_entry_not_held, _not_the_roots_threshold]
)
async def test_a_bad_summary_rejects_the_update_and_changes_nothing(
    hub: EntriesHub, tmp_path: Path, bad_summary: Callable[[EntriesHub], str]
) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record("a", t), record("b", t)], opinions=summary())
    node = make_node(tmp_path / "node", hub)
    try:
        [outcome], _ = await sync_once(node)
        assert outcome.status == "updated", outcome
        before, rows = StoreImage.of(node), held_rows(node)
        assert [r["entry"] for r in summary_rows(node)] == ["e-a", "e-b"]

        hub.clock.advance(60)
        kind = bad_summary(hub)
        [outcome], _ = await sync_once(node)
        assert (outcome.status, outcome.kind) == ("rejected", kind), outcome
        before.unchanged(node, new_evidence=1)
        assert held_rows(node) == rows
        assert evidence_rows(node)[-1]["kind"] == kind
        assert node.matching.look({"md5": [md5("c")]}) == [], "v2 is not enforced"
        [b] = node.matching.look({"md5": [md5("b")]})
        assert b.opinions == Stance(1, 2, "open")
    finally:
        node.close()


async def test_disputed_entries_are_held_or_blocked_as_the_platform_chose(
    hub: EntriesHub, tmp_path: Path
) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record(x, t) for x in "abc"], opinions=summary())
    home = tmp_path / "node"
    make_node(home, hub).close()
    held = CliRunner().invoke(
        main, ["policy", "disputed", "hold", "--by", "rev", "--home", str(home)]
    )
    assert (held.exit_code, held.output) == (0, "disputed entries: hold\n")
    refused = CliRunner().invoke(main, ["policy", "disputed", "maybe", "--home", str(home)])
    assert refused.exit_code == 2
    async with api_client(home, hub) as (client, app):
        await synced(app)
        synced_acks = acks_of(home)
        assert synced_acks
        assert all(not a.kept for a in synced_acks), "nothing kept yet"
        found = {m["entry"]: m for m in await match(client, home, "a", "b", "c")}
        assert {e: m["decision"] for e, m in found.items()} == {
            "e-a": "block",
            "e-b": "held",
            "e-c": "block",
        }, "only an open dispute holds; one platform's dispute is none"
        reason = found["e-b"]["decision_reason"]
        assert (reason["reason"], reason["by"]) == ("disputed", "rev")
        events = {e["entry"]: e for e in await recent(client, home)}
        assert (events["e-b"]["outcome"], events["e-b"]["decision"], events["e-b"]["reason"]) == (
            "kept",
            "held",
            "disputed",
        )

        app[NODE].acks.enqueue()
        [ack] = [a for a in acks_of(home)[len(synced_acks) :] if a.list_id == LIST]
        assert dict(ack.kept) == {"disputed": 1}
        allowed = CliRunner().invoke(
            main,
            [
                "policy",
                "allow",
                "--entry",
                "e-a",
                "--by",
                "rev",
                "--why",
                "ours",
                "--home",
                str(home),
            ],
        )
        assert allowed.exit_code == 0, allowed.output
        await match(client, home, "a", "b")
        app[NODE].acks.enqueue()
        assert dict(acks_of(home)[-1].kept) == {"allowlist": 1, "disputed": 2}, "cumulative"

        back = CliRunner().invoke(main, ["policy", "disputed", "block", "--home", str(home)])
        assert back.exit_code == 0, back.output
        [b] = await match(client, home, "b")
        assert (b["decision"], b["decision_reason"]) == ("block", None)

        # Held again, until the hub dismisses the dispute: then it blocks by itself.
        CliRunner().invoke(main, ["policy", "disputed", "hold", "--home", str(home)])
        [b] = await match(client, home, "b")
        assert b["decision"] == "held"
        hub.clock.advance(60)
        hub.publish(
            LIST, adds=[record("d", t)], opinions=summary(lambda at: said_of(at, "dismissed"))
        )
        await synced(app)
        [b] = await match(client, home, "b")
        assert (b["decision"], b["opinions"]["dispute"]) == ("block", "dismissed")

    ran = CliRunner().invoke(main, ["policy", "show", "--json", "--home", str(home)])
    assert json.loads(ran.output)["disputed"]["choice"] == "hold"
    text = CliRunner().invoke(main, ["policy", "show", "--home", str(home)])
    assert "disputed entries: hold  by - at " in text.output
    assert dict(acks_of(home)[-1].kept) == {"allowlist": 1, "disputed": 3}


async def test_a_registered_hit_reports_the_decision_recorded(
    hub: EntriesHub, tmp_path: Path
) -> None:
    """Recording decides again and may hold (the quarantine rule counts recorded
    events): the answer of a batch of registered content says what was recorded."""
    hub.publish(LIST, adds=[record("a", hub.clock())])
    node = make_node(tmp_path / "node", hub, quarantine_matches_per_hour=1)
    try:
        await sync_once(node)
        result = node.registry.register_batch(
            [("post-1", "md5", md5("a")), ("post-2", "md5", md5("a"))]
        )
        recorded = {e["match_id"]: e for e in node.matching.recent_matches()}
        reported = [
            (content_id, m.verdict.decision, recorded[m.match_id]["decision"])
            for content_id, m in result.matches
        ]
        assert reported == [("post-1", "block", "block"), ("post-2", "held", "held")]
        node.acks.enqueue()
        assert dict(acks_of(node.home)[-1].kept) == {"quarantine": 1}
    finally:
        node.close()


async def test_a_retroactive_match_and_the_status_page_say_the_opinions(
    hub: EntriesHub, tmp_path: Path
) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record("a", t)], opinions=summary())
    home = tmp_path / "node"
    make_node(home, hub, webhook_url="http://127.0.0.1:9/hook").close()
    async with api_client(home, hub) as (client, app):
        await synced(app)
        node = app[NODE]
        node.registry.register("post-1", {"md5": [md5("b")]})
        hub.clock.advance(60)
        hub.publish(LIST, adds=[record("b", t)], opinions=summary())
        await synced(app)
        [row] = node.store.db.query("SELECT body FROM webhook_outbox")
        body = json.loads(bytes(row["body"]))
        assert (body["entry"], body["opinions"]) == (
            "e-b",
            {"confirmed": 1, "disputed": 2, "dispute": "open"},
        )

        await log_in(client)
        html = await (await client.get("/status/")).text()
        shown = match_row(html, body["match_id"])
        assert field(html, "confirmed", shown) == "1"
        assert field(html, "disputed", shown) == "2"
        assert field(html, "dispute", shown) == "dispute open"
