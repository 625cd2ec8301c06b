"""A node following lists of the ``entries`` format, end to end.

The tree is published by ``protocol.Publisher.publish_entries`` (real keys, a root
with a vocabulary) and served over loopback HTTP (``tests.node.entries_hub``); the
node is the real one, its API on loopback, its store real SQLite. The server takes
no acks: the node's acks wait in its outbox, where the tests read what they say.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from follow import ListOutcome
from node.api.keys import NODE, SESSION
from node.app import create_app
from node.cli import main
from node.config import read_secret
from node.service import Node, run_sync
from node.store.records import join_lines, replay
from protocol import EntriesBody, Entry, EntryState, Removal, format_time
from protocol.lists import hash_type
from tests.node.conftest import HubServer
from tests.node.conftest import md5 as hub_md5
from tests.node.entries_hub import EntriesHub, md5, record
from tests.node.fixtures_sync import Clock, StoreImage, evidence_rows, raw_db, sync_once
from tests.node.hostile import Tamper, flip_byte

Client = TestClient[web.Request, web.Application]
LIST = "tid-entries-md5"


@pytest.fixture
async def hub() -> AsyncIterator[EntriesHub]:
    published = await EntriesHub(Clock()).start()
    try:
        yield published
    finally:
        await published.close()


def make_node(home: Path, hub: EntriesHub, **settings: Any) -> Node:
    return Node.init(
        home,
        node_id="platform-a",
        hub_url=hub.url,
        lists=[LIST],
        pinned_root_sha256=hub.pinned,
        now=hub.clock,
        **settings,
    )


@pytest.fixture
def node(tmp_path: Path, hub: EntriesHub) -> Iterator[Node]:
    made = make_node(tmp_path / "node", hub, webhook_url="http://127.0.0.1:9/hook")
    try:
        yield made
    finally:
        made.close()


@contextlib.asynccontextmanager
async def api_client(home: Path, hub: EntriesHub) -> AsyncIterator[tuple[Client, web.Application]]:
    """The node in ``home`` served on loopback with the hub's clock, and its app."""
    app = create_app(home, now=hub.clock, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client, app


async def synced(app: web.Application) -> list[ListOutcome]:
    return await run_sync(app[NODE], app[SESSION])


async def match(client: Client, home: Path, *labels: str) -> list[dict[str, Any]]:
    body = {"hashes": [{"type": "md5", "hash": md5(label).hex()} for label in labels]}
    token = read_secret(home / "api-token")
    response = await client.post(
        "/v1/match", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200, await response.text()
    return list((await response.json())["matches"])


async def recent(client: Client, home: Path) -> list[dict[str, Any]]:
    token = read_secret(home / "api-token")
    response = await client.get("/v1/matches", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, await response.text()
    return list((await response.json())["matches"])


def members(entry: Entry) -> dict[str, Any]:
    return {
        "entry": entry.entry_id,
        "category": entry.category,
        "classification": entry.classification,
        "source": entry.source,
        "first_seen": format_time(entry.first_seen),
        "expires": None if entry.expires is None else format_time(entry.expires),
    }


def event_members(entry: Entry) -> dict[str, Any]:
    """``members`` as a recorded match event shows them (``source`` is the event's)."""
    shown = members(entry)
    shown["entry_source"] = shown.pop("source")
    return shown


def lists_row(home: Path) -> dict[str, Any]:
    conn = sqlite3.connect(home / "node.db")
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM lists WHERE id = ?", [LIST]).fetchone()
        return dict(row)
    finally:
        conn.close()


def logged_changes(home: Path) -> list[tuple[bytes, bytes]]:
    conn = sqlite3.connect(home / "node.db")
    try:
        return [
            (bytes(r[0]), bytes(r[1]))
            for r in conn.execute(
                "SELECT removes, adds FROM state_changes WHERE list_id = ? ORDER BY seq", [LIST]
            )
        ]
    finally:
        conn.close()


# -- following an entries list ----------------------------------------------------------


async def test_bootstrap_from_snapshot_then_deltas_logged_as_record_lines(
    hub: EntriesHub, node: Node
) -> None:
    t = hub.clock()
    many = [record(f"item-{i}", t, source="import:batch-7") for i in range(300)]
    hub.publish(LIST, adds=many)
    kept = record("kept", t, classification="reported", source="member:platform-b")
    hub.publish(LIST, adds=[kept, record("gone", t)])  # v2: a snapshot is due

    outcomes, fetcher = await sync_once(node)
    (outcome,) = outcomes
    assert (outcome.status, outcome.to_version, outcome.rebuilt) == ("updated", 2, True)
    assert any(url.endswith(f"/lists/{LIST}/snapshot/2.bin") for url in fetcher.requested)
    assert not any("/body/" in url for url in fetcher.requested)
    row = lists_row(node.home)
    assert row["format"] == "entries"
    assert bytes(row["state"]) == hub.heads[LIST].state.to_bytes()
    assert (row["count"], row["sha256"]) == (302, hub.heads[LIST].state.digest().sha256)

    # v3: one entry's metadata changes (same hash), one is withdrawn, one added.
    v2 = hub.heads[LIST].state
    hub.clock.advance(60)
    changed = record("kept", t, classification="confirmed", source="member:platform-b")
    new = record("new", hub.clock(), category="extremism")
    hub.publish(
        LIST,
        adds=[changed, new],
        removes=[Removal(kept, "changed"), Removal(record("gone", t), "withdrawn")],
    )
    (outcome,), fetcher = await sync_once(node)
    assert (outcome.status, outcome.to_version, outcome.rebuilt) == ("updated", 3, False)
    assert outcome.added == [md5("new")]
    assert outcome.removed == [md5("gone")]  # "kept" changed its metadata, not its hash
    assert not any("/snapshot/" in url for url in fetcher.requested)
    # The blob stays as v2 wrote it; v3's record lines went to the log.
    row = lists_row(node.home)
    assert bytes(row["state"]) == v2.to_bytes()
    (change,) = logged_changes(node.home)
    assert change == (
        b"".join(sorted([kept.line + b"\n", record("gone", t).line + b"\n"])),
        b"".join(sorted([changed.line + b"\n", new.line + b"\n"])),
    )
    stored = node.store.stored_list(LIST, "md5")
    assert stored.state == hub.heads[LIST].state
    assert row["sha256"] == hub.heads[LIST].state.digest().sha256
    assert all(ok for _, ok, _, _ in node.store.verify())

    # Each record is found by its hash in the store: in the blob and in the log.
    for entry in [*many[::37], changed, new]:
        assert node.store.entry(LIST, entry.hash) == entry
    assert node.store.entry(LIST, md5("gone")) is None
    assert node.store.entry(LIST, md5("never listed")) is None

    # The ack names the entries state the node applied (its format does not change).
    acks = node.store.db.query("SELECT bytes FROM ack_outbox ORDER BY seq")
    applied = [json.loads(bytes(a["bytes"]))["applied"] for a in acks]
    assert applied[-1]["version"] == 3
    assert applied[-1]["state"] == hub.heads[LIST].state.digest().to_dict()


async def test_a_restart_reads_the_records_from_the_store(hub: EntriesHub, tmp_path: Path) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record("a", t), record("b", t)])
    hub.publish(LIST, adds=[record("c", t)])
    hub.publish(LIST, removes=[Removal(record("a", t), "retracted")])
    home = tmp_path / "node"
    make_node(home, hub).close()
    async with api_client(home, hub) as (_, app):
        assert [o.status for o in await synced(app)] == ["updated"]
    assert hub.server is not None
    served = len(hub.server.requests)

    async with api_client(home, hub) as (client, app):
        assert app[NODE].hub().matching.versions == {LIST: 3}
        assert len(hub.server.requests) == served  # nothing fetched to enforce the list
        found = await match(client, home, "b", "c", "a")
        assert [(m["hash"], m["entry"]) for m in found] == [
            (md5("b").hex(), "e-b"),
            (md5("c").hex(), "e-c"),
        ]
        (outcome,) = await synced(app)
        assert outcome.status == "current"
        assert not [r for r in hub.server.requests[served:] if "/snapshot/" in r or "/body/" in r]


async def test_a_large_delta_writes_the_blob_a_small_one_the_log(
    hub: EntriesHub, node: Node
) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record(f"x{i}", t) for i in range(160)])
    await sync_once(node)
    hub.publish(LIST, adds=[record("one-more", t)])  # 1/161 of the list: logged
    await sync_once(node)
    assert len(logged_changes(node.home)) == 1
    hub.publish(LIST, adds=[record(f"y{i}", t) for i in range(40)])  # past 1/16: the blob
    await sync_once(node)
    assert logged_changes(node.home) == []
    assert bytes(lists_row(node.home)["state"]) == hub.heads[LIST].state.to_bytes()
    assert node.store.entry(LIST, md5("one-more")) == record("one-more", t)


async def test_a_damaged_record_blob_is_repaired_from_the_next_snapshot(
    hub: EntriesHub, node: Node
) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record("a", t), record("b", t)])
    await sync_once(node)
    conn = raw_db(node)
    conn.execute("UPDATE lists SET state = CAST(replace(state, 'e-a', 'e-z') AS BLOB)")
    conn.close()
    assert not node.store.verify()[0][1]
    hub.publish(LIST, adds=[record("c", t)])  # v2: a snapshot is due
    (outcome,), fetcher = await sync_once(node)
    assert (outcome.status, outcome.to_version, outcome.rebuilt) == ("updated", 2, True)
    assert any("/snapshot/2.bin" in url for url in fetcher.requested)
    assert node.store.verify()[0][1]
    assert node.store.entry(LIST, md5("a")) == record("a", t)


# -- a refused version changes nothing ----------------------------------------------------


def _tampered(hub: EntriesHub) -> str:
    t = hub.clock()
    hub.publish(LIST, adds=[record("c", t)])
    assert hub.server is not None
    hub.server.on(r"/body/", Tamper(flip_byte))
    return "ConsistencyError"


def _outside_vocabulary(hub: EntriesHub) -> str:
    t = hub.clock()
    rogue = record("c", t, category="rumour")
    body = EntriesBody.build("md5", adds=[rogue])
    hub.forge(LIST, body, hub.heads[LIST].state.apply(body))
    return "VocabularyError"


def _removes_what_the_node_lacks(hub: EntriesHub) -> str:
    t = hub.clock()
    absent = record("never-listed", t)
    body = EntriesBody.build("md5", removes=[Removal(absent, "retracted")])
    # What the forger claims the result is: one record fewer, as the body's counts say.
    state = hub.heads[LIST].state
    hub.forge(LIST, body, EntryState.from_entries(state.kind, state.entries()[1:]))
    return "StateMismatchError"


@pytest.mark.parametrize(
    "bad_version", [_tampered, _outside_vocabulary, _removes_what_the_node_lacks]
)
async def test_a_refused_body_leaves_the_store_exactly_as_it_was(
    hub: EntriesHub, node: Node, bad_version: Any
) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record("a", t), record("b", t)])
    hub.publish(LIST, adds=[record(f"b{i}", t) for i in range(40)])
    await sync_once(node)
    hub.publish(LIST, removes=[Removal(record("a", t), "withdrawn")])  # v3: logged change
    await sync_once(node)
    assert logged_changes(node.home)
    before = StoreImage.of(node)
    acks = node.store.acks.pending()

    kind = bad_version(hub)
    (outcome,), _ = await sync_once(node)
    assert (outcome.status, outcome.kind) == ("rejected", kind), outcome
    before.unchanged(node, new_evidence=1)
    assert evidence_rows(node)[-1]["kind"] == kind
    assert node.store.acks.pending() == acks
    assert [m.entry for m in node.matching.look({"md5": [md5("b")]})] == [record("b", t)]
    assert node.matching.look({"md5": [md5("c")]}) == []


# -- matches carry their entry --------------------------------------------------------------


async def test_a_match_carries_its_entry_in_the_api_and_the_events(
    hub: EntriesHub, tmp_path: Path
) -> None:
    t = hub.clock()
    expiring = record("b", t, expires=t + timedelta(days=30), source="member:platform-b")
    hub.publish(LIST, adds=[record("a", t, classification="reported"), expiring])
    home = tmp_path / "node"
    make_node(home, hub).close()
    async with api_client(home, hub) as (client, app):
        await synced(app)
        found = await match(client, home, "a", "b", "unlisted")
        assert [{k: m[k] for k in ("list", "hash", "query", "distance")} for m in found] == [
            {"list": LIST, "hash": md5(x).hex(), "query": md5(x).hex(), "distance": 0}
            for x in ("a", "b")
        ]
        assert [{k: m[k] for k in members(expiring)} for m in found] == [
            members(record("a", t, classification="reported")),
            members(expiring),
        ]
        assert found[1]["expires"] == format_time(t + timedelta(days=30))
        events = {e["match_id"]: e for e in await recent(client, home)}
        listed = [record("a", t, classification="reported"), expiring]
        for m, entry in zip(found, listed, strict=True):
            event = events[m["match_id"]]
            assert event["source"] == "upload"
            assert {k: event[k] for k in event_members(entry)} == event_members(entry)


async def test_a_match_of_a_hashes_list_has_a_null_entry(
    hub_server: HubServer, node_home: Path
) -> None:
    app = create_app(node_home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        await run_sync(app[NODE], app[SESSION])
        token = read_secret(node_home / "api-token")
        response = await client.post(
            "/v1/match",
            json={"hashes": [{"type": "md5", "hash": hub_md5(1).hex()}]},
            headers={"Authorization": f"Bearer {token}"},
        )
        (found,) = (await response.json())["matches"]
        assert found["entry"] is None
        assert "category" not in found
        events = await client.get("/v1/matches", headers={"Authorization": f"Bearer {token}"})
        (event,) = (await events.json())["matches"]
        assert event["entry"] is None


async def test_the_match_command_shows_the_entry(hub: EntriesHub, tmp_path: Path) -> None:
    t = hub.clock()
    listed = record("a", t, category="extremism", source="member:platform-b")
    hub.publish(LIST, adds=[listed, record("b", t, expires=t + timedelta(days=400))])
    node = make_node(tmp_path / "node", hub)
    try:
        await sync_once(node)
    finally:
        node.close()
    runner = CliRunner()
    home = str(tmp_path / "node")
    text = await asyncio.to_thread(runner.invoke, main, ["match", "--home", home, md5("a").hex()])
    assert text.exit_code == 0, text.output
    assert (
        f"  entry e-a extremism confirmed  source member:platform-b  first seen "
        f"{format_time(listed.first_seen)}  expires never  match id "
    ) in text.output
    as_json = await asyncio.to_thread(
        runner.invoke, main, ["match", "--home", home, "--json", md5("b").hex(), md5("a").hex()]
    )
    assert as_json.exit_code == 0, as_json.output
    answer = json.loads(as_json.output)
    assert {k: answer[md5("a").hex()][0][k] for k in members(listed)} == members(listed)
    assert answer[md5("b").hex()][0]["expires"] == format_time(t + timedelta(days=400))


async def test_a_retroactive_match_webhook_carries_the_entry(hub: EntriesHub, node: Node) -> None:
    t = hub.clock()
    hub.publish(LIST, adds=[record("a", t)])
    await sync_once(node)
    node.registry.register("post-1", {"md5": [md5("hosted")]})
    listed = record("hosted", t, classification="reported", source="member:platform-c")
    hub.publish(LIST, adds=[listed])
    await sync_once(node)
    (row,) = node.store.db.query("SELECT body FROM webhook_outbox")
    body = json.loads(bytes(row["body"]))
    assert body["type"] == "hashhub.retroactive_match.v1"
    assert (body["content_id"], body["hash"], body["version"]) == ("post-1", md5("hosted").hex(), 2)
    assert {k: body[k] for k in members(listed)} == members(listed)


# -- expiry and retraction ------------------------------------------------------------------


async def test_an_expired_entry_stops_matching_before_its_retraction(
    hub: EntriesHub, tmp_path: Path
) -> None:
    t = hub.clock()
    expiring = record("x", t, expires=t + timedelta(hours=1))
    sibling = record("y", t)
    hub.publish(LIST, adds=[expiring, sibling])
    home = tmp_path / "node"
    make_node(home, hub, webhook_url="http://127.0.0.1:9/hook").close()
    async with api_client(home, hub) as (client, app):
        node = app[NODE]
        await synced(app)
        before = await match(client, home, "x", "y")
        assert [m["entry"] for m in before] == ["e-x", "e-y"]

        hub.clock.advance(2 * 3600)  # the node's clock: past x's expires, no update yet
        assert [m["entry"] for m in await match(client, home, "x", "y")] == ["e-y"]
        assert node.matching.look({"md5": [md5("x")]}) == []

        # Registered content with an expired entry's hash matches nothing either.
        _, found = node.registry.register_and_match("post-x", {"md5": [md5("x")]}, one_item=True)
        assert found == []

        # The hub's retraction for "expired" arrives: nothing changes.
        hub.publish(LIST, removes=[Removal(expiring, "expired")])
        (outcome,) = await synced(app)
        assert (outcome.status, outcome.removed) == ("updated", [md5("x")])
        assert [m["entry"] for m in await match(client, home, "x", "y")] == ["e-y"]
        events = [e for e in await recent(client, home) if e["entry"] == "e-x"]
        assert [e["match_id"] for e in events] == [before[0]["match_id"]]


@pytest.mark.parametrize("reason", ["withdrawn", "retracted", "disputed", "upstream"])
async def test_a_removed_entry_stops_matching_and_its_events_stay(
    hub: EntriesHub, tmp_path: Path, reason: Any
) -> None:
    t = hub.clock()
    gone = record("gone", t, classification="reported")
    hub.publish(LIST, adds=[gone, record("stays", t)])
    home = tmp_path / "node"
    make_node(home, hub).close()
    async with api_client(home, hub) as (client, app):
        await synced(app)
        (first,) = await match(client, home, "gone")
        hub.publish(LIST, removes=[Removal(gone, reason)])
        (outcome,) = await synced(app)
        assert outcome.status == "updated"
        assert await match(client, home, "gone") == []
        assert [m["entry"] for m in await match(client, home, "stays")] == ["e-stays"]
        (event,) = [e for e in await recent(client, home) if e["match_id"] == first["match_id"]]
        assert {k: event[k] for k in event_members(gone)} == event_members(gone)
        assert event["source"] == "upload"


def test_entry_state_round_trip_is_what_the_store_replays() -> None:
    """The store's replay of logged record lines and the protocol's apply agree."""
    clock = Clock()
    t = clock()
    kind = hash_type("md5")
    base = EntryState.from_entries(kind, [record(f"r{i}", t) for i in range(50)])
    old = record("r7", t)
    new = record("r7", t, classification="reported")
    body = EntriesBody.build("md5", removes=[Removal(old, "changed")], adds=[new])
    after = base.apply(body)
    replayed = replay(kind, base.to_bytes(), [(join_lines([old.line]), join_lines([new.line]))])
    assert replayed == after
    assert replay(kind, base.to_bytes(), [(join_lines([record("zz", t).line]), b"")]) is None


async def test_an_index_missing_at_a_delta_is_built_from_the_stored_records(
    hub: EntriesHub, node: Node
) -> None:
    """A delta of an entries list gives the index its hashes only; a process without
    the list's index (another worker built it) reads the records from the store."""
    t = hub.clock()
    hub.publish(LIST, adds=[record(f"k{i}", t) for i in range(40)])
    await sync_once(node)
    del node.hub().matching.indexes[LIST]
    del node.hub().matching.versions[LIST]
    hub.publish(LIST, adds=[record("late", t)])
    (outcome,), _ = await sync_once(node)
    assert (outcome.status, outcome.rebuilt, outcome.state) == ("updated", False, None)
    assert node.hub().matching.versions[LIST] == 2
    found = node.matching.look({"md5": [md5("late"), md5("k3")]})
    assert [m.entry for m in found] == [record("late", t), record("k3", t)]
