"""A node as one replica of a platform's fleet: match ids that name it, content shards.

A replica with a ``replica`` name issues match ids ``<replica>.<uuid>``, names
itself in ``Hashhub-Replica`` on every answer and in ``/v1/status``, and refuses
(421, naming the issuer, nothing stored) an outcome for another replica's match;
ids issued before it had a name (bare UUIDs) keep working. A replica with
``content_shard = "i/n"`` registers only its shard's content ids: ``POST
/v1/content`` refuses another shard's (421, naming it, nothing stored), and
``content import`` / ``content remove`` skip other shards' lines and say how many,
so that one corpus file fed to every replica registers each id on exactly one. A
bad name or shard stops every command with one clear line.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.api.keys import NODE, SESSION
from node.app import create_app
from node.fleet import shard_of
from node.matching import MisdirectedMatchError, is_match_id
from node.service import Node, run_sync
from tests.node.conftest import MD5_LIST, HubServer, init_node_home, md5, offline_node
from tests.node.test_api import assert_error, bearer, stored
from tests.node.test_cli import invoke_now, mistake, ok
from tests.node.test_config_env import rewrite
from tests.web.node_support import log_in

Client = TestClient[web.Request, web.Application]

TAGGED = re.compile(r"east-1\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture
async def served(tmp_path: Path, hub_server: HubServer) -> AsyncIterator[tuple[Client, Path]]:
    """Replica ``east-1`` of shard 1 of 3, synced once from the real hub."""
    home = init_node_home(tmp_path / "east", hub_server, replica="east-1", content_shard="1/3")
    app = create_app(home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        outcomes = await run_sync(app[NODE], app[SESSION])
        assert [o.status for o in outcomes] == ["updated", "updated"], outcomes
        yield client, home


async def match_md5(client: Client, home: Path, label: object) -> list[dict[str, Any]]:
    response = await client.post(
        "/v1/match",
        json={"hashes": [{"type": "md5", "hash": md5(label).hex()}]},
        headers=bearer(home),
    )
    assert response.status == 200, await response.text()
    assert response.headers["Hashhub-Replica"] == "east-1"
    return list((await response.json())["matches"])


# -- match ids and outcomes ------------------------------------------------------------------


async def test_a_replica_tags_its_match_ids_and_names_itself_everywhere(
    served: tuple[Client, Path],
) -> None:
    client, home = served
    [match] = await match_md5(client, home, 1)
    assert TAGGED.fullmatch(match["match_id"]), match["match_id"]
    assert is_match_id(match["match_id"])
    [event] = (await (await client.get("/v1/matches", headers=bearer(home))).json())["matches"]
    assert event["match_id"] == match["match_id"]

    response = await client.get("/v1/status", headers=bearer(home))
    status = await response.json()
    assert (status["replica"], status["content_shard"]) == ("east-1", "1/3")
    assert status["worker"]["index"] == 0
    assert status["worker"]["workers"] == 1
    for method, path, auth in [
        ("GET", "/v1/status", True),
        ("GET", "/healthz", False),
        ("GET", "/openapi.yaml", True),
        ("GET", "/metrics", True),
        ("GET", "/v1/status", False),  # a 401 too
        ("GET", "/no/such/route", True),  # and a 404
    ]:
        response = await client.request(method, path, headers=bearer(home) if auth else {})
        assert response.headers["Hashhub-Replica"] == "east-1", (method, path)
        assert response.headers["Hashhub-Worker"] == "0", (method, path)


async def test_an_outcome_for_another_replicas_match_is_421_naming_it(
    served: tuple[Client, Path],
) -> None:
    client, home = served
    [match] = await match_md5(client, home, 2)
    before = stored(home)
    foreign = f"west-2.{uuid.uuid4()}"
    response = await client.post(
        f"/v1/matches/{foreign}/outcome", json={"outcome": "blocked"}, headers=bearer(home)
    )
    error = await assert_error(response, 421, "misdirected_match")
    assert "'west-2'" in error["message"]
    assert "'east-1'" in error["message"]
    assert response.headers["Hashhub-Replica"] == "east-1"
    assert stored(home) == before

    response = await client.post(
        f"/v1/matches/{match['match_id']}/outcome",
        json={"outcome": "blocked"},
        headers=bearer(home),
    )
    assert response.status == 200, await response.text()
    assert await response.json() == {
        "match_id": match["match_id"],
        "outcome": "blocked",
        "duplicate": False,
    }
    for malformed in ("East-1." + str(uuid.uuid4()), "east_1." + str(uuid.uuid4()), "east-1."):
        response = await client.post(
            f"/v1/matches/{malformed}/outcome", json={"outcome": "kept"}, headers=bearer(home)
        )
        await assert_error(response, 404, "not_found")


async def test_the_status_page_records_an_outcome_for_a_tagged_match_id(
    served: tuple[Client, Path],
) -> None:
    client, home = served
    [match] = await match_md5(client, home, 4)
    csrf = await log_in(client)
    response = await client.post(
        f"/status/matches/{match['match_id']}/outcome",
        data={"csrf": csrf, "outcome": "kept"},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    assert response.headers["Hashhub-Replica"] == "east-1"
    event = client.app[NODE].store.matches.event(match["match_id"])
    assert event is not None
    assert event["outcome"] == "kept"


async def test_ids_issued_before_the_replica_had_a_name_still_take_outcomes(
    tmp_path: Path, hub_server: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server)
    node = Node.open(home)
    try:
        await run_sync_once(node)
        [old] = node.matching.match_hashes({"md5": [md5(3)]})
        assert uuid.UUID(old.match_id).version == 4  # a bare UUID, as before fleets
        assert node.status()["replica"] is None
        tagged = f"east-1.{uuid.uuid4()}"
        with pytest.raises(
            MisdirectedMatchError, match="issued by replica 'east-1', not by a node without"
        ):
            node.matching.record_outcome(tagged, "kept")
    finally:
        node.close()
    rewrite(home, replica='"east-1"')
    node = Node.open(home)
    try:
        assert node.matching.record_outcome(old.match_id, "actioned")["duplicate"] is False
        [new] = node.matching.match_hashes({"md5": [md5(3)]})
        assert TAGGED.fullmatch(new.match_id)
    finally:
        node.close()
    result = invoke_now("outcome", f"west-2.{uuid.uuid4()}", "kept", "--home", str(home))
    mistake(result, "issued by replica 'west-2'", "send its outcome there")


async def run_sync_once(node: Node) -> None:
    async with aiohttp.ClientSession() as session:
        outcomes = await run_sync(node, session)
    assert all(o.status == "updated" for o in outcomes), outcomes


async def test_a_node_without_a_name_sends_no_replica_header(
    tmp_path: Path, hub_server: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server)
    async with TestClient(TestServer(create_app(home, schedule=False))) as client:
        response = await client.get("/v1/status", headers=bearer(home))
        assert "Hashhub-Replica" not in response.headers
        assert response.headers["Hashhub-Worker"] == "0"
        status = await response.json()
        assert (status["replica"], status["content_shard"]) == (None, None)


# -- content shards --------------------------------------------------------------------------


def test_the_shard_of_a_content_id_is_sha256_of_its_utf8_first_8_bytes_mod_n() -> None:
    ids = [f"post-{i}" for i in range(12)] + ["é", "内容"]
    for content_id in ids:
        digest = hashlib.sha256(content_id.encode("utf-8")).digest()
        for n in (1, 2, 3, 7, 1000):
            assert shard_of(content_id, n) == int.from_bytes(digest[:8], "big") % n
    # Pinned: a change here re-shards every platform's corpus.
    assert [shard_of(f"post-{i}", 3) for i in range(12)] == [0, 2, 0, 0, 2, 1, 2, 0, 0, 0, 1, 1]


async def test_content_of_another_shard_is_refused_with_421_naming_its_shard(
    served: tuple[Client, Path],
) -> None:
    client, home = served
    hashes = [{"type": "md5", "hash": md5(1).hex()}]
    before = stored(home)
    response = await client.post(
        "/v1/content", json={"content_id": "post-1", "hashes": hashes}, headers=bearer(home)
    )
    error = await assert_error(response, 421, "misdirected_content")
    assert "belongs to shard 2/3" in error["message"]
    assert "shard 1/3" in error["message"]
    response = await client.post(
        "/v1/content?content_id=post-0",
        data=b"some file",
        headers=bearer(home) | {"Content-Type": "application/octet-stream"},
    )
    error = await assert_error(response, 421, "misdirected_content")
    assert "belongs to shard 0/3" in error["message"]
    assert stored(home) == before

    response = await client.post(
        "/v1/content", json={"content_id": "post-5", "hashes": hashes}, headers=bearer(home)
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["registered"] == 1
    assert [m["match_id"][:7] for m in body["matches"]] == ["east-1."]
    assert stored(home)["content"] == 1


def registered_ids(home: Path) -> set[str]:
    with sqlite3.connect(home / "node.db") as db:
        return {row[0] for row in db.execute("SELECT content_id FROM content")}


def shard_home(tmp_path: Path, name: str, shard: str) -> Path:
    """A replica following no published list (registration only) of ``shard``."""
    home = tmp_path / name
    offline_node(
        home, [MD5_LIST], node_id=f"platform-{name}", replica=name, content_shard=shard
    ).close()
    return home


def test_one_corpus_fed_to_every_replica_registers_each_id_on_exactly_one(
    tmp_path: Path,
) -> None:
    ids = [f"post-{i}" for i in range(12)]
    corpus = tmp_path / "corpus.csv"
    corpus.write_text(
        "content_id,hash_type,hash\n" + "".join(f"{c},md5,{md5(c).hex()}\n" for c in ids)
    )
    homes = [shard_home(tmp_path, f"r{i}", f"{i}/3") for i in range(3)]
    expected = [[c for c in ids if shard_of(c, 3) == i] for i in range(3)]
    assert all(expected)  # every replica has some
    for i, home in enumerate(homes):
        out = ok(invoke_now("content", "import", str(corpus), "--home", str(home)))
        mine = len(expected[i])
        assert f"{mine} hash(es) registered" in out, out
        assert f"{len(ids) - mine} line(s) skipped: other shards' content" in out, out
        assert f"this replica holds {i}/3" in out, out
        assert registered_ids(home) == set(expected[i])

    dry = ok(invoke_now("content", "import", "--dry-run", str(corpus), "--home", str(homes[0])))
    assert f"{len(ids) - len(expected[0])} line(s) skipped" in dry, dry

    removal = tmp_path / "remove.csv"
    removal.write_text("".join(f"{c}\n" for c in ids[:6]))
    out = ok(invoke_now("content", "remove", str(removal), "--home", str(homes[0])))
    gone = [c for c in ids[:6] if shard_of(c, 3) == 0]
    assert f"Removed {len(gone)} registered hash(es)" in out, out
    assert f"{6 - len(gone)} line(s) skipped" in out, out
    assert registered_ids(homes[0]) == set(expected[0]) - set(gone)
    assert registered_ids(homes[1]) == set(expected[1])  # the others untouched


def test_without_a_shard_an_import_registers_everything_and_says_nothing_of_shards(
    tmp_path: Path,
) -> None:
    home = shard_home(tmp_path, "all", "")
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("".join(f"post-{i},md5,{md5(i).hex()}\n" for i in range(6)))
    out = ok(invoke_now("content", "import", str(corpus), "--home", str(home)))
    assert "6 hash(es) registered" in out
    assert "skipped" not in out
    assert len(registered_ids(home)) == 6


# -- bad settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("content_shard", "2-4", "write it as i/n"),
        ("content_shard", "3/3", "i must be from 0 to n-1 (here 0 to 2)"),
        ("content_shard", "0/0", "n (the number of shards) must be 1 or more"),
        ("content_shard", "-1/4", "write it as i/n"),
        ("replica", "East_1", "a replica name is 1-32 lowercase letters"),
        ("replica", "east.1", "a replica name is 1-32 lowercase letters"),
        ("replica", "-east", "a replica name is 1-32 lowercase letters"),
        ("replica", "e" * 33, "a replica name is 1-32 lowercase letters"),
    ],
)
def test_a_bad_replica_name_or_shard_stops_every_command_with_one_line(
    tmp_path: Path, setting: str, value: str, said: str
) -> None:
    home = shard_home(tmp_path, "bad", "")
    corpus = tmp_path / "corpus.csv"
    corpus.write_text(f"post-1,md5,{md5(1).hex()}\n")
    variable = {f"HASHHUB_NODE_{setting.upper()}": value}
    for args in (["status"], ["content", "import", str(corpus)], ["run", "--workers", "2"]):
        result = invoke_now(*args, "--home", str(home), env=variable)
        mistake(result, said)
        assert result.stderr.count("\n") == 1, result.stderr
    rewrite(home, **{setting: f'"{value}"'})
    mistake(invoke_now("status", "--home", str(home)), said)
    assert registered_ids(home) == set()
