"""A node following several hubs (ADR 20): two real hubs on loopback, one real node.

Hub A is the node's ``default`` hub (a ``node.toml`` of one hub, as ``init`` writes
it); hub B (another name, other keys) is added with ``hashhub-node hub add`` as hub
``b``, under another node id. Both publish ``MD5_LIST``: md5 of 0..4 in each, so a
hash both list is one of those, and each publishes one hash of its own. Checked:

- a match names the (hub, list) it hit, and a hash both list is a match in each;
- a tampered body from one hub is rejected and recorded against its lists only,
  while the other hub's lists update;
- each hub receives acks for its own lists only, numbered from 1 (read back from
  each hub's ``GET /v1/admin/acks``);
- a hub added to and removed from a running node is followed, then dropped from
  matching, its evidence kept;
- a ``node.toml`` of one hub is read as hub ``default``, and an old database's rows
  become ``default``'s;
- every rule of a ``[[hubs]]`` table refuses bad input with a clear error, and
  changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import aiohttp
import pytest
import sqlite_utils
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.api.keys import NODE, SESSION
from node.app import SCHEDULER, create_app
from node.cli import EXIT_FAILED, EXIT_REJECTED
from node.config import NodeConfig, hubs_of, read_secret, write_secret
from node.errors import NodeConfigError
from node.hubs import HubSettings
from node.service import Node, run_sync
from node.store import NodeStore, migrations
from protocol import checkpoint_path
from tests.node.conftest import (
    MD5_LIST,
    NODE_ID,
    PDQ_LIST,
    HubServer,
    init_hub,
    init_node_home,
    md5,
    serving_hub,
    sync,
)
from tests.node.hostile import HostileServer, Tamper, flip_byte
from tests.node.test_cli import invoke, mistake, ok
from tests.test_configuration_doc import table_under

Client = TestClient[web.Request, web.Application]
T = TypeVar("T")

B_NODE_ID = "platform-a-at-b"
"""The id hub B enrolled the node under: not the one hub A did."""


@pytest.fixture
async def hub_b(tmp_path: Path) -> AsyncIterator[HubServer]:
    home = tmp_path / "hub-b"
    init_hub(home, "hub-b.test")
    async with serving_hub(home) as served:
        yield served


def token_file(home: Path, hub: HubServer, node_id: str, lists: list[str]) -> Path:
    """Enrol the node's key at ``hub`` under ``node_id``; the token in a file."""
    path = home.parent / f"token-{node_id}"
    write_secret(path, hub.enrol(node_id, home / "node.pub.pem", lists))
    return path


async def add_b(home: Path, hub: HubServer, url: str | None = None) -> None:
    """``hashhub-node hub add b``: hub B, for ``MD5_LIST``, under ``B_NODE_ID``."""
    token = token_file(home, hub, B_NODE_ID, [MD5_LIST])
    ok(
        await invoke(
            "hub",
            "add",
            "b",
            url or hub.url,
            "--pin",
            hub.pinned().upper(),  # normalised on the way in
            "--token-file",
            str(token),
            "--node-id",
            B_NODE_ID,
            "--list",
            MD5_LIST,
            "--home",
            str(home),
        )
    )


@pytest.fixture
async def two_hub_home(tmp_path: Path, hub_server: HubServer, hub_b: HubServer) -> Path:
    """A node of hub A (``default``) to which hub B was added as ``b``; each hub lists
    one hash of its own beside the five both list."""
    home = init_node_home(tmp_path / "node", hub_server)
    await add_b(home, hub_b)
    await hub_server.publish(MD5_LIST, adds=[md5("only-a")])
    await hub_b.publish(MD5_LIST, adds=[md5("only-b")])
    return home


def found(body: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(m["hash"], m["hub"], m["list"]) for m in body["matches"]}


async def post_match(client: Client, home: Path, *hashes: bytes) -> dict[str, Any]:
    response = await client.post(
        "/v1/match",
        json={"hashes": [{"type": "md5", "hash": h.hex()} for h in hashes]},
        headers={"Authorization": f"Bearer {read_secret(home / 'api-token')}"},
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def admin_acks(hub: HubServer, node_id: str) -> list[dict[str, Any]]:
    """The acks ``hub`` holds from ``node_id``, oldest first, as its admin API says."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{hub.url}/v1/admin/acks",
            params={"node": node_id},
            headers={"Authorization": f"Bearer {hub.admin_token}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        acks = (await response.json())["acks"]
    return list(reversed(acks))


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 20.0) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value is not None:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"nothing after {timeout} s")
        await asyncio.sleep(0.1)


# -- matching across hubs ----------------------------------------------------------------


async def test_each_match_names_its_hub_and_a_hash_both_list_matches_both(
    two_hub_home: Path, hub_server: HubServer, hub_b: HubServer
) -> None:
    app = create_app(two_hub_home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        node = app[NODE]
        assert [h.name for h in node.hubs.values()] == ["default", "b"]
        assert node.hub("b").settings.node_id == B_NODE_ID
        a = {o.list_id: o.status for o in await run_sync(node, app[SESSION], "default")}
        b = {o.list_id: o.status for o in await run_sync(node, app[SESSION], "b")}
        assert a == {MD5_LIST: "updated", PDQ_LIST: "updated"}
        assert b == {MD5_LIST: "updated"}

        body = await post_match(client, two_hub_home, md5("only-a"), md5("only-b"), md5(1))
        assert found(body) == {
            (md5("only-a").hex(), "default", MD5_LIST),
            (md5("only-b").hex(), "b", MD5_LIST),
            (md5(1).hex(), "default", MD5_LIST),
            (md5(1).hex(), "b", MD5_LIST),
        }
        listed = await client.get(
            "/v1/matches",
            headers={"Authorization": f"Bearer {read_secret(two_hub_home / 'api-token')}"},
        )
        events = (await listed.json())["matches"]
        assert {(e["hash"], e["hub"], e["list"]) for e in events} == found(body)

        status = await client.get(
            "/v1/status",
            headers={"Authorization": f"Bearer {read_secret(two_hub_home / 'api-token')}"},
        )
        assert status.status == 200
        lines = {(e["hub"], e["list"]): e for e in (await status.json())["lists"]}
        assert set(lines) == {("default", MD5_LIST), ("default", PDQ_LIST), ("b", MD5_LIST)}
        assert lines[("default", MD5_LIST)]["counts"]["matched"] == 2
        assert lines[("b", MD5_LIST)]["counts"]["matched"] == 2
        assert lines[("b", MD5_LIST)]["version"] == 2


# -- one hub's failure is its own ----------------------------------------------------------


async def test_a_tampered_body_from_one_hub_is_recorded_against_its_lists_only(
    tmp_path: Path, hub_server: HubServer, hub_b: HubServer
) -> None:
    proxy = await HostileServer.proxy(hub_b.url).start()
    try:
        home = init_node_home(tmp_path / "node", hub_server)
        await add_b(home, hub_b, url=proxy.url)
        ok(await invoke("sync", "--home", str(home)))
        await hub_server.publish(MD5_LIST, adds=[md5("new-a")])
        await hub_b.publish(MD5_LIST, adds=[md5("new-b")])
        proxy.on(checkpoint_path(MD5_LIST) + "$", Tamper(flip_byte))

        result = await invoke("sync", "--home", str(home))

        assert result.exit_code == EXIT_REJECTED, result.output
        assert f"{MD5_LIST}: updated v1 -> v2" in result.stdout
        assert f"{PDQ_LIST}: current at v1" in result.stdout
        assert f"b/{MD5_LIST}: REJECTED, still enforcing v1" in result.stdout
        node = Node.open(home)
        try:
            rows = {
                (hub.name, row["id"]): row
                for hub in node.hubs.values()
                for row in hub.store.list_rows()
            }
            assert rows[("b", MD5_LIST)]["last_error"]
            assert json.loads(rows[("b", MD5_LIST)]["trust"])["version"] == 1
            assert rows[("default", MD5_LIST)]["last_error"] is None
            assert json.loads(rows[("default", MD5_LIST)]["trust"])["version"] == 2
            evidence = node.store.evidence()
            assert evidence, "the rejection is kept as evidence"
            assert {(e["hub"], e["list_id"]) for e in evidence} == {("b", MD5_LIST)}
            looked = node.matching.look({"md5": [md5("new-a"), md5("new-b")]})
            assert {(m.hub, m.hash) for m in looked} == {("default", md5("new-a"))}
            status = node.status()
            by_hub = {h["name"]: h for h in status["hubs"]}
            assert (by_hub["default"]["node_id"], by_hub["b"]["node_id"]) == (NODE_ID, B_NODE_ID)
            assert by_hub["b"]["url"] == proxy.url
        finally:
            node.close()
        listed = ok(await invoke("evidence", "--home", str(home)))
        assert f"b/{MD5_LIST}" in listed

        proxy.behave()  # the other hub's lists were never touched: B alone catches up
        again = ok(await invoke("sync", "--home", str(home)))
        assert f"b/{MD5_LIST}: updated v1 -> v2" in again
        assert f"{MD5_LIST}: current at v2" in again
    finally:
        await proxy.close()


async def test_acks_reach_each_hub_for_its_own_lists_only(
    two_hub_home: Path, hub_server: HubServer, hub_b: HubServer
) -> None:
    out = ok(await invoke("sync", "--home", str(two_hub_home)))
    assert "acks: 3 confirmed, 0 failed" in out
    matched = ok(await invoke("match", md5(1).hex(), "--home", str(two_hub_home)))
    assert f"MATCH {MD5_LIST} v2" in matched
    assert f"MATCH b/{MD5_LIST} v2" in matched
    decided = await _one_open_match(two_hub_home, "b")
    ok(await invoke("outcome", *decided, "--home", str(two_hub_home)))
    ok(await invoke("acks", "flush", "--sign", "--hub", "b", "--home", str(two_hub_home)))

    at_a = await admin_acks(hub_server, NODE_ID)
    at_b = await admin_acks(hub_b, B_NODE_ID)
    assert [(a["list"], a["seq"]) for a in at_a] == [(PDQ_LIST, 1), (MD5_LIST, 2)]
    assert [(a["list"], a["seq"]) for a in at_b] == [(MD5_LIST, 1), (MD5_LIST, 2)]
    assert await admin_acks(hub_server, B_NODE_ID) == []
    assert await admin_acks(hub_b, NODE_ID) == []
    # What hub B was told is what was matched and decided against its list only.
    told = json.loads(_ack_bytes(at_b[-1]))
    assert told["node"] == B_NODE_ID
    assert told["counts"]["matched"] == 1
    assert told["counts"]["actioned"] == 1
    told_a = json.loads(_ack_bytes(at_a[0]))
    assert told_a["counts"]["matched"] == 0  # hub A hears of its match with its next ack

    shown = ok(await invoke("status", "--home", str(two_hub_home)))
    assert f"node {NODE_ID}  hub {hub_server.url} (default)  root v" in shown
    assert f"node {B_NODE_ID}  hub {hub_b.url} (b)  root v" in shown
    assert re.search(rf"^{MD5_LIST} +2 +6 ", shown, re.MULTILINE), shown
    assert re.search(rf"^b/{MD5_LIST} +2 +6 ", shown, re.MULTILINE), shown


async def _one_open_match(home: Path, hub: str) -> list[str]:
    """The id of the one open match of ``hub``'s list, and the outcome to give it."""
    listed = json.loads(ok(await invoke("matches", "--json", "--home", str(home))))
    [event] = [e for e in listed["matches"] if e["hub"] == hub]
    return [event["match_id"], "actioned"]


def _ack_bytes(stored: dict[str, Any]) -> bytes:
    return base64.b64decode(stored["bytes"])


# -- a hub added to and removed from a running node ---------------------------------------


async def test_a_hub_added_and_removed_on_a_running_node(
    tmp_path: Path, hub_server: HubServer, hub_b: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server)
    await hub_b.publish(MD5_LIST, adds=[md5("only-b")])
    app = create_app(home)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        scheduler = app[SCHEDULER]

        async def synced() -> bool | None:
            return True if scheduler.hubs["default"].last_outcomes else None

        await eventually(synced)
        assert (await post_match(client, home, md5("only-b")))["matches"] == []

        await add_b(home, hub_b)
        listed = ok(await invoke("hub", "list", "--home", str(home)))
        assert f"b        {hub_b.url}" in listed or ("b" in listed and hub_b.url in listed)
        assert B_NODE_ID in listed

        async def b_matches() -> dict[str, Any] | None:
            body = await post_match(client, home, md5("only-b"))
            return body if body["matches"] else None

        body = await eventually(b_matches)  # taken up by the running node on its own
        assert found(body) == {(md5("only-b").hex(), "b", MD5_LIST)}
        assert {job.id for job in scheduler.jobs()} >= {"sync", "sync:b"}

        async def acked() -> list[dict[str, Any]] | None:
            return await admin_acks(hub_b, B_NODE_ID) or None

        assert {a["list"] for a in await eventually(acked)} == {MD5_LIST}

        ok(await invoke("hub", "remove", "b", "--home", str(home)))
        await scheduler.flush()  # the outbox job's run, every few seconds
        assert (await post_match(client, home, md5("only-b")))["matches"] == []
        assert "sync:b" not in {job.id for job in scheduler.jobs()}
        assert list(app[NODE].hubs) == ["default"]
        assert not (home / "hub-token.b").exists()
        events = await client.get(
            "/v1/matches",
            headers={"Authorization": f"Bearer {read_secret(home / 'api-token')}"},
        )
        kept = {(e["hub"], e["list"]) for e in (await events.json())["matches"]}
        assert ("b", MD5_LIST) in kept, "what it matched under hub b is kept"
    store = NodeStore(home / "node.db", hub="b")
    try:
        assert [row["id"] for row in store.list_rows()] == [MD5_LIST], "its store rows stay"
    finally:
        store.close()


# -- a node of before ----------------------------------------------------------------------


def test_a_single_hub_node_toml_of_before_is_read_as_hub_default(
    tmp_path: Path, hub_server: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server)
    text = (home / "node.toml").read_text(encoding="utf-8")
    assert "[[hubs]]" not in text
    assert "hub_url" in text
    (hub,) = hubs_of(home, NodeConfig.load(home))
    assert hub == HubSettings(
        name="default",
        url=hub_server.url,
        pinned_root_sha256=hub_server.pinned(),
        node_id=NODE_ID,
        lists=(MD5_LIST, PDQ_LIST),
        mirrors=(),
        poll_interval=300,
    )
    node = Node.open(home)
    try:
        assert list(node.hubs) == ["default"]
        assert node.hub().name == "default"
    finally:
        node.close()


def test_a_store_of_before_gives_every_row_to_hub_default(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    old = sqlite_utils.Database(path)
    migrations.apply(old, stop_before="m011_hubs")
    old.execute(
        "INSERT INTO lists (id, hash_type, trust, state, count, sha256) "
        "VALUES (?, 'md5', '{\"version\": 4}', x'', 0, '')",
        [MD5_LIST],
    )
    old.execute(
        "INSERT INTO ack_outbox (seq, list_id, bytes, sig, created, next_attempt) "
        "VALUES (7, ?, x'00', x'00', 't', 't')",
        [MD5_LIST],
    )
    old.execute(
        "INSERT INTO counters (list_id, hash, name, value) VALUES (?, '', 'checked', 5)",
        [MD5_LIST],
    )
    old.conn.commit()
    old.close()

    store = NodeStore(path)
    try:
        assert [(r["hub"], r["id"]) for r in store.list_rows()] == [("default", MD5_LIST)]
        assert store.list_versions() == {MD5_LIST: 4}
        assert [(r["hub"], r["seq"]) for r in store.acks.queued()] == [("default", 7)]
        assert store.acks.next_seq() == 8
        assert store.matches.counters(MD5_LIST)[0]["value"] == 5
        other = store.view("b")
        assert other.list_rows() == []
        assert other.acks.next_seq() == 1, "a seq space per hub"
        assert other.list_versions() == {}
        store.db.execute(
            "INSERT INTO lists (hub, id, hash_type, trust, state, count, sha256) "
            "VALUES ('b', ?, 'md5', '{}', x'', 0, '')",
            [MD5_LIST],
        )
        with pytest.raises(sqlite3.IntegrityError):  # (hub, list id) is unique
            store.db.execute(
                "INSERT INTO lists (hub, id, hash_type, trust, state, count, sha256) "
                "VALUES ('b', ?, 'md5', '{}', x'', 0, '')",
                [MD5_LIST],
            )
    finally:
        store.close()


# -- bad input ---------------------------------------------------------------------------------

PIN = "ab" * 32


def b_table(**settings: str) -> str:
    """One ``[[hubs]]`` table, ``b`` at a loopback URL, with ``settings`` replacing its
    lines (a value ``None`` leaves the line out)."""
    lines = {
        "name": '"b"',
        "url": '"http://127.0.0.1:9"',
        "pinned_root_sha256": f'"{PIN}"',
        "lists": f'["{MD5_LIST}"]',
    } | settings
    return "\n[[hubs]]\n" + "".join(f"{k} = {v}\n" for k, v in lines.items() if v != "None")


@pytest.mark.parametrize(
    ("tables", "says"),
    [
        (b_table() + b_table(), "two hubs are named 'b'"),
        (b_table(name='"default"'), "two hubs are named 'default'"),
        (b_table(name='"b c"'), "hub name 'b c' is not a name"),
        (b_table(name='"-b"'), "hub name '-b' is not a name"),
        (b_table(pinned_root_sha256="None"), "missing setting(s) ['pinned_root_sha256']"),
        (b_table(pinned_root_sha256='"abc"'), "pinned_root_sha256 must be 64 hex digits"),
        (b_table(lists=f'["{MD5_LIST}", "{MD5_LIST}"]'), f"list '{MD5_LIST}' is named twice"),
        (b_table(lists="[]"), "follow at least one list"),
        (b_table(url='"ftp://127.0.0.1"'), "is not an http(s) URL"),
        (b_table(colour='"blue"'), "unknown setting(s) ['colour']"),
        (b_table(poll_interval="0"), "poll_interval must be a positive number of seconds"),
        ('\nhubs = "b"\n', "hubs must be [[hubs]] tables"),
    ],
)
def test_a_bad_hubs_table_is_refused_naming_the_file_and_the_rule(
    tmp_path: Path, hub_server: HubServer, tables: str, says: str
) -> None:
    home = init_node_home(tmp_path / "node", hub_server, enrol=False)
    config = home / "node.toml"
    config.write_text(config.read_text(encoding="utf-8") + tables, encoding="utf-8")
    with pytest.raises(NodeConfigError) as refused:
        NodeConfig.load(home)
    assert says in str(refused.value)
    assert str(config) in str(refused.value) or "node.toml" in str(refused.value)


def test_a_node_toml_of_hubs_tables_only_follows_them(tmp_path: Path) -> None:
    home = tmp_path / "node"
    home.mkdir()
    (home / "node.toml").write_text(
        'node_id = "platform-a"\n' + b_table() + b_table(name='"c"', node_id='"platform-c"'),
        encoding="utf-8",
    )
    hubs = hubs_of(home, NodeConfig.load(home))
    assert [(h.name, h.node_id, h.pinned_root_sha256) for h in hubs] == [
        ("b", "platform-a", PIN),
        ("c", "platform-c", PIN),
    ]
    (home / "node.toml").write_text('node_id = "platform-a"\n', encoding="utf-8")
    with pytest.raises(NodeConfigError, match=r"missing setting\(s\)"):
        NodeConfig.load(home)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["b c", "http://127.0.0.1:9", "--pin", PIN, "--list", MD5_LIST], "is not a name"),
        (["default", "http://127.0.0.1:9", "--pin", PIN, "--list", MD5_LIST], "already follows"),
        (["b", "http://127.0.0.1:9", "--pin", "abc", "--list", MD5_LIST], "64 hex digits"),
        (
            ["b", "http://127.0.0.1:9", "--pin", PIN, "--list", MD5_LIST, "--list", MD5_LIST],
            "is named twice",
        ),
        (["b", "http://127.0.0.1:9", "--pin", PIN, "--list", "No Such"], "list"),
        (["b", "127.0.0.1:9", "--pin", PIN, "--list", MD5_LIST], "not an http(s) URL"),
    ],
)
async def test_hub_add_refuses_bad_input_and_changes_nothing(
    tmp_path: Path, hub_server: HubServer, args: list[str], says: str
) -> None:
    home = init_node_home(tmp_path / "node", hub_server)
    before = (home / "node.toml").read_bytes()
    mistake(await invoke("hub", "add", *args, "--home", str(home)), says)
    assert (home / "node.toml").read_bytes() == before
    assert sorted(p.name for p in home.glob("hub-token*")) == ["hub-token"]


async def test_hub_add_without_a_pin_is_a_usage_error(
    tmp_path: Path, hub_server: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server)
    result = await invoke(
        "hub", "add", "b", hub_server.url, "--list", MD5_LIST, "--home", str(home)
    )
    assert result.exit_code == 2
    assert "--pin" in result.stderr


async def test_hub_remove_refuses_an_unknown_hub_and_the_last_one(
    tmp_path: Path, hub_server: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server)
    before = (home / "node.toml").read_bytes()
    mistake(await invoke("hub", "remove", "b", "--home", str(home)), "no hub named 'b'", "default")
    mistake(await invoke("hub", "remove", "default", "--home", str(home)), "the only hub")
    assert (home / "node.toml").read_bytes() == before


async def test_removing_the_default_hub_leaves_the_others(
    two_hub_home: Path, hub_b: HubServer
) -> None:
    ok(await invoke("hub", "remove", "default", "--home", str(two_hub_home)))
    assert not (two_hub_home / "hub-token").exists()
    (hub,) = hubs_of(two_hub_home, NodeConfig.load(two_hub_home))
    assert (hub.name, hub.url, hub.node_id) == ("b", hub_b.url, B_NODE_ID)
    out = ok(await invoke("sync", "--home", str(two_hub_home)))
    assert f"b/{MD5_LIST}: updated v0 -> v2" in out


@pytest.mark.parametrize(
    "command",
    [
        ["token", "set", "hht_x"],
        ["policy", "distance", MD5_LIST, "3", "--by", "rev-1"],
        ["contribution", "list"],
    ],
)
async def test_naming_a_list_with_several_hubs_and_no_hub_is_an_error_naming_them(
    two_hub_home: Path, command: list[str]
) -> None:
    mistake(
        await invoke(*command, "--home", str(two_hub_home)),
        "follows 2 hubs (default, b)",
        "--hub NAME",
    )
    mistake(
        await invoke(*command, "--hub", "c", "--home", str(two_hub_home)),
        "no hub named 'c'",
    )


async def test_token_set_and_contributions_go_to_the_named_hub(two_hub_home: Path) -> None:
    ok(await invoke("token", "set", "hht_new", "--hub", "b", "--home", str(two_hub_home)))
    assert read_secret(two_hub_home / "hub-token.b") == "hht_new"
    assert read_secret(two_hub_home / "hub-token") != "hht_new"
    assert ok(await invoke("contribution", "list", "--hub", "b", "--home", str(two_hub_home))) == (
        "No contribution yet.\n"
    )


# -- the reference --------------------------------------------------------------------------


def test_the_configuration_reference_documents_every_hubs_setting_both_ways() -> None:
    """``docs/configuration.md``'s ``[[hubs]]`` table against ``HubSettings``: the same
    settings in the same order, each type, and which are required (the others say
    their default)."""
    rows = table_under("Node hubs")
    documented = [cells[0].strip("`") for cells in rows]
    assert documented == [f.name for f in fields(HubSettings)]
    types = get_type_hints(HubSettings)
    words = {str: "string", int: "integer", tuple[str, ...]: "list of strings"}
    required = {"name", "url", "pinned_root_sha256", "lists"}
    for setting, kind, default, _meaning in rows:
        name = setting.strip("`")
        assert kind == words[types[name]], name
        assert (default == "required") == (name in required), name


async def test_a_retroactive_match_names_the_hub_whose_list_grew(
    tmp_path: Path, hub_server: HubServer, hub_b: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server, webhook_url="http://127.0.0.1:9/hook")
    await add_b(home, hub_b)
    node = Node.open(home)
    try:
        await sync(node, "default")
        await sync(node, "b")
        node.registry.register("post-7", {"md5": [md5("later")]})
        await hub_b.publish(MD5_LIST, adds=[md5("later")])
        await hub_server.publish(MD5_LIST, adds=[md5("elsewhere")])
        await sync(node, "default")
        assert node.webhooks.due() == [], "hub A's update lists nothing hosted"
        await sync(node, "b")
        (row,) = node.webhooks.due()
        body = json.loads(bytes(row["body"]))
        assert (body["hub"], body["list"], body["content_id"]) == ("b", MD5_LIST, "post-7")
        assert row["idempotency_key"].startswith(f"b:{MD5_LIST}:2:")
        (event,) = [e for e in node.matching.recent_matches() if e["source"] == "registry"]
        assert (event["hub"], event["list"], event["content_id"]) == ("b", MD5_LIST, "post-7")
    finally:
        node.close()


async def test_sync_updates_the_hubs_with_a_token_and_names_the_one_without(
    tmp_path: Path, hub_server: HubServer, hub_b: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server)
    pin = hub_b.pinned()
    args = ["b", hub_b.url, "--pin", pin, "--node-id", B_NODE_ID, "--list", MD5_LIST]
    added = ok(await invoke("hub", "add", *args, "--home", str(home)))
    assert "Next: hashhub-node token set --hub b TOKEN" in added

    result = await invoke("sync", "--home", str(home))

    assert result.exit_code == EXIT_FAILED, result.output
    assert f"{MD5_LIST}: updated v0 -> v1" in result.stdout
    assert "hub b: not updated, no token yet" in result.stdout
    mistake(
        await invoke("sync", "--hub", "b", "--home", str(home)),
        "no hub token yet for b",
        "token set --hub b TOKEN",
    )
