"""Accepting members' contributions by policy (docs/adr/0020): trusted platforms, and a
quorum of distinct platforms sending the same hash, against the real hub on loopback.

Contributions are real signed documents sent to ``POST /v1/contributions`` by enrolled
nodes, made and sent as ``tests.hub.test_contributions`` makes them; a trusted
platform's contribution is followed from arrival to a real node matching the picture
it hashed. Every refused
policy change is checked to change nothing, and a quorum setting that names no
entries list keeps the server from starting.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import create_app
from hub.config import CONFIG_NAME, HubConfig
from hub.errors import InvalidRequest, NotFound
from hub.services.entries import EntryDraft
from hub.store import migrations
from node.api.keys import NODE, SESSION
from node.app import create_app as create_node_app
from node.service import run_sync
from protocol import SigningKey
from protocol.contribution import ContributedHash, sign_contribution
from tests.hub.conftest import (
    LIST,
    NODE_ID,
    Client,
    bearer,
    count_rows,
    md5,
    opened,
    sha256,
)
from tests.hub.test_cli import Operator
from tests.hub.test_contributions import PDQ_OK, contribute, contribution, stored
from tests.hub.test_entries_api import MD5_LIST, SHA_LIST, entries_home  # noqa: F401 (a fixture)
from tests.hub.test_http import assert_error
from tests.node.conftest import ORIGINAL
from tests.node.test_contribute import run as node_run
from tests.web.test_case_withdrawal import ENTRIES_MD5, ENTRIES_PDQ, make_home
from tests.web.test_entries_story import enrol, match_picture

pytestmark = pytest.mark.usefixtures("entries_home")
"""Every test runs on the test hub with the collection ``ncii`` (its md5 and sha256 lists)."""

TRUST = "/v1/admin/contributions/trust"

Node = tuple[str, str, SigningKey]
"""An enrolled node: its id, its token, its key."""


def enrol_node(home: Path, node_id: str, platform: str | None = None) -> Node:
    key = SigningKey.generate()
    with opened(home) as hub:
        token = hub.access.enrol_node(node_id, key.public, [], platform=platform)
    return node_id, token, key


async def offer(client: Client, node: Node, seq: int, n: object = 1, **changes: Any) -> Any:
    """Node ``node`` contributes item ``n``; the hub's 200 answer."""
    node_id, token, key = node
    status, _, body = await contribute(
        client, token, key, contribution(seq, n, node=node_id, **changes)
    )
    assert status == 200, body
    return body


async def node_status(client: Client, node: Node, seq: int) -> Any:
    response = await client.get(f"/v1/contributions/{seq}", headers=bearer(node[1]))
    assert response.status == 200
    return await response.json()


def trust_rows(home: Path) -> list[dict[str, Any]]:
    with opened(home) as hub:
        return [t.to_dict() for t in hub.contributions.policy.trusted()]


def actions(home: Path, prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
    with opened(home) as hub:
        return [
            (r["action"], r["who"], json.loads(r["detail"]))
            for r in hub.db.query("SELECT * FROM actions ORDER BY id")
            if r["action"].startswith(prefix)
        ]


def contribution_rows(home: Path) -> list[dict[str, Any]]:
    with opened(home) as hub:
        return list(hub.db.query("SELECT * FROM contributions ORDER BY node, seq"))


def entry_rows(home: Path) -> list[dict[str, Any]]:
    with opened(home) as hub:
        return list(hub.db.query("SELECT * FROM entry_items ORDER BY rowid"))


def configure(home: Path, **settings: Any) -> None:
    """Write ``settings`` into the hub's ``hub.toml``, as an operator edits it."""
    config = replace(HubConfig.load(home, {}), **settings)
    (home / CONFIG_NAME).write_text(config.to_toml(), encoding="utf-8")


@pytest.fixture
async def quorum_client(hub_home: Path) -> AsyncIterator[Client]:
    """The hub with ``contribution_quorum = 2`` into the ``ncii`` collection."""
    configure(hub_home, contribution_quorum=2, contribution_quorum_list=MD5_LIST)
    app = create_app(hub_home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as test_client:
        yield test_client


# -- trusted platforms -----------------------------------------------------------------


async def test_a_trusted_platform_is_accepted_on_arrival_published_and_matched(
    tmp_path: Path,
) -> None:
    """A real node hashes a picture and contributes it; the hub trusts its platform, so
    the entry is staged at once, published at the next publish, and the node matches."""
    web_home = make_home(tmp_path / "web-hub")
    async with TestClient(TestServer(create_app(web_home, schedule=False))) as hub:
        url = str(hub.make_url("")).rstrip("/")
        home = tmp_path / "node"
        enrol(web_home, url, home, "platform-a")
        trusted = Operator(web_home).ok(
            "contribution", "trust", "platform-a", "--list", ENTRIES_PDQ, "--category", "ncii"
        )
        assert "Platform platform-a trusted" in trusted

        sent = await node_run(
            home, "contribute", str(ORIGINAL),
            "--category", "ncii", "--classification", "confirmed",
            "--reviewed-by", "person", "--action", "actioned",
        )  # fmt: skip
        assert sent.exit_code == 0, sent.output
        assert "contribution 1: delivered — HTTP 200: accepted" in sent.output
        [row] = contribution_rows(web_home)
        assert (row["status"], row["who"]) == ("accepted", "policy:trusted")
        assert row["decided"] is not None
        decided = await node_run(home, "contribution", "status", "1")
        assert decided.output.startswith(f"contribution 1: accepted, entry {row['entry_id']}")

        with opened(web_home) as hub_obj:
            view = hub_obj.entries.show(row["entry_id"])
            assert view.source == "member:platform-a"
            hub_obj.publishing.publish()

        app = create_node_app(home, schedule=False)
        async with TestClient(TestServer(app, host="127.0.0.1")) as node:
            node_app = node.app
            assert node_app is not None
            outcomes = {
                o.list_id: o.status for o in await run_sync(node_app[NODE], node_app[SESSION])
            }
            assert outcomes[ENTRIES_PDQ] == "updated", outcomes
            found = await match_picture(node, home)
        # The picture's bytes (md5) and its PDQ both match the one entry, with its metadata.
        assert sorted(m["list"] for m in found) == [ENTRIES_MD5, ENTRIES_PDQ]
        for match in found:
            assert match["entry"] == row["entry_id"]
            assert (match["category"], match["classification"], match["source"]) == (
                "ncii",
                "confirmed",
                "member:platform-a",
            )


async def test_a_platform_trusted_for_ncii_only_sends_csam_to_review_and_untrusted_waits(
    client: Client,
    hub_home: Path,
    node_token: str,
    node_key: SigningKey,
    role_tokens: dict[str, str],
) -> None:
    node = (NODE_ID, node_token, node_key)
    admin = bearer(role_tokens["admin"])
    response = await client.post(
        TRUST, json={"platform": NODE_ID, "list": SHA_LIST, "categories": ["ncii"]}, headers=admin
    )
    trusted = await response.json()
    assert response.status == 200, trusted
    assert (trusted["platform"], trusted["list"], trusted["categories"]) == (
        NODE_ID,
        SHA_LIST,
        ["ncii"],
    )
    viewer = bearer(role_tokens["viewer"])
    listed = await (await client.get(TRUST, headers=viewer)).json()
    assert listed == {"trusted": [trusted]}

    first = await offer(client, node, 1, n=1)
    assert (first["status"], first["duplicate"]) == ("accepted", False)
    status = await node_status(client, node, 1)
    assert status["status"] == "accepted"
    assert status["who"] == "policy:trusted"
    assert status["decided"] is not None
    entry = status["entry"]
    with opened(hub_home) as hub:
        view = hub.entries.show(entry)
    assert view.source == f"member:{NODE_ID}"
    assert sorted((i["list"], i["hash"]) for i in view.lists) == [
        (MD5_LIST, md5(1).hex()),
        (SHA_LIST, sha256(1).hex()),
    ]
    # A retry of the accepted contribution is a duplicate, still accepted.
    again = await offer(client, node, 1, n=1)
    assert (again["status"], again["duplicate"]) == ("accepted", True)

    # Trusted for ncii only: its csam contribution waits for an operator.
    csam = await offer(client, node, 2, n=2, category="csam")
    assert csam["status"] == "received"
    assert (await node_status(client, node, 2)) == {
        "node": NODE_ID,
        "seq": 2,
        "status": "received",
        "entry": None,
        "decided": None,
    }

    # No longer trusted: the next ncii contribution waits too.
    response = await client.delete(f"{TRUST}/{NODE_ID}", headers=admin)
    assert response.status == 200
    assert (await response.json())["platform"] == NODE_ID
    assert (await (await client.get(TRUST, headers=viewer)).json()) == {"trusted": []}
    later = await offer(client, node, 3, n=3)
    assert later["status"] == "received"
    assert stored(hub_home) == [
        (NODE_ID, 1, "accepted"),
        (NODE_ID, 2, "received"),
        (NODE_ID, 3, "received"),
    ]

    # The operators' record says who accepted it; the log has every step.
    queue = await (
        await client.get("/v1/admin/contributions?status=accepted", headers=viewer)
    ).json()
    [record] = queue["contributions"]
    assert (record["seq"], record["who"], record["entry"]) == (1, "policy:trusted", entry)
    assert [(a, w) for a, w, _ in actions(hub_home, "contribution.")] == [
        ("contribution.trust", "test-admin"),
        ("contribution.accept", "policy:trusted"),
        ("contribution.untrust", "test-admin"),
    ]
    assert [d for a, _, d in actions(hub_home, "entry.add")] == [{"entries": [entry]}]

    # A publisher reads who is trusted but may not change it.
    publisher = bearer(role_tokens["publisher"])
    denied = await client.post(
        TRUST, json={"platform": NODE_ID, "list": SHA_LIST}, headers=publisher
    )
    assert_error(denied.status, await denied.json(), 403)


async def test_a_hash_already_listed_is_accepted_onto_its_entry(
    client: Client,
    hub_home: Path,
    node_token: str,
    node_key: SigningKey,
) -> None:
    with opened(hub_home) as hub:
        standing = hub.entries.add(
            _draft({MD5_LIST: md5(1).hex()}, classification="severe"), "operator"
        ).entry
        hub.contributions.policy.trust(NODE_ID, MD5_LIST, (), "operator")
    answer = await offer(client, (NODE_ID, node_token, node_key), 1, n=1)
    assert answer["status"] == "accepted"
    status = await node_status(client, (NODE_ID, node_token, node_key), 1)
    assert (status["status"], status["entry"], status["who"]) == (
        "accepted",
        standing,
        "policy:trusted",
    )
    [entry] = entry_rows(hub_home)  # no new entry
    assert (entry["id"], entry["classification"], entry["source"]) == (
        standing,
        "severe",
        "import",
    )


async def test_a_trusted_contribution_of_no_type_the_collection_holds_waits(
    client: Client, hub_home: Path, node_token: str, node_key: SigningKey
) -> None:
    with opened(hub_home) as hub:
        hub.contributions.policy.trust(NODE_ID, MD5_LIST, (), "operator")
    pdq_only = {"pdq": ContributedHash(PDQ_OK, 90)}
    answer = await offer(client, (NODE_ID, node_token, node_key), 1, hashes=pdq_only)
    assert answer["status"] == "received"
    assert stored(hub_home) == [(NODE_ID, 1, "received")]
    assert entry_rows(hub_home) == []


# -- a quorum of platforms -------------------------------------------------------------


async def test_a_quorum_of_two_platforms_makes_one_entry_and_a_platform_counts_once(
    quorum_client: Client, hub_home: Path
) -> None:
    a1 = enrol_node(hub_home, "a-1", platform="platform-a")
    a2 = enrol_node(hub_home, "a-2", platform="platform-a")
    b = enrol_node(hub_home, "b-1", platform="platform-b")
    client = quorum_client

    # Two nodes of one platform are one platform: both wait.
    assert (await offer(client, a1, 1, n=1, classification="severe"))["status"] == "received"
    assert (await offer(client, a2, 1, n=1, classification="severe"))["status"] == "received"
    assert entry_rows(hub_home) == []

    # A second platform, with another sha256: the md5 makes the quorum.
    other_sha = {"md5": ContributedHash(md5(1).hex()), "sha256": ContributedHash(sha256(9).hex())}
    answer = await offer(client, b, 1, hashes=other_sha, classification="confirmed")
    assert answer["status"] == "accepted"
    [entry] = entry_rows(hub_home)
    assert (entry["category"], entry["source"], entry["who"]) == (
        "ncii",
        "member:platform-a",  # the first received: a-1 (then by node and seq)
        "policy:quorum",
    )
    assert entry["classification"] == "confirmed"  # the least severe the platforms said
    with opened(hub_home) as hub:
        view = hub.entries.show(entry["id"])
    # Only the hash both platforms vouch for: b-1's sha256 is its word alone, and
    # platform-a's sha256 is one platform's word too.
    assert [(i["list"], i["hash"]) for i in view.lists] == [(MD5_LIST, md5(1).hex())]
    for node in (a1, a2, b):
        status = await node_status(client, node, 1)
        assert (status["status"], status["entry"], status["who"]) == (
            "accepted",
            entry["id"],
            "policy:quorum",
        )
    assert stored(hub_home) == [
        ("a-1", 1, "accepted"),
        ("a-2", 1, "accepted"),
        ("b-1", 1, "accepted"),
    ]

    # Once accepted, the same hash from two more platforms goes onto the standing entry.
    c = enrol_node(hub_home, "c-1")
    d = enrol_node(hub_home, "d-1")
    assert (await offer(client, c, 1, n=1))["status"] == "received"
    assert (await offer(client, d, 1, n=1))["status"] == "accepted"
    assert [e["id"] for e in entry_rows(hub_home)] == [entry["id"]]
    assert (await node_status(client, c, 1))["entry"] == entry["id"]


async def test_different_categories_do_not_make_a_quorum(
    quorum_client: Client, hub_home: Path
) -> None:
    a = enrol_node(hub_home, "a-1")
    b = enrol_node(hub_home, "b-1")
    assert (await offer(quorum_client, a, 1, n=1, category="ncii"))["status"] == "received"
    assert (await offer(quorum_client, b, 1, n=1, category="csam"))["status"] == "received"
    # Nor do different hashes of one category.
    assert (await offer(quorum_client, b, 2, n=2))["status"] == "received"
    assert entry_rows(hub_home) == []
    assert {s for _, _, s in stored(hub_home)} == {"received"}


async def test_a_quorum_list_that_is_not_an_entries_list_stops_the_start(
    hub_home: Path,
) -> None:
    for list_id, error, words in (
        (LIST, InvalidRequest, "holds bare hashes"),
        ("no-such-list", NotFound, "no-such-list"),
        ("", InvalidRequest, "names no list"),
    ):
        configure(hub_home, contribution_quorum=2, contribution_quorum_list=list_id)
        server = TestServer(create_app(hub_home, schedule=False), host="127.0.0.1", port=0)
        try:
            with pytest.raises(error, match=words) as refused:
                await server.start_server()
        finally:
            await server.close()
        assert "contribution_quorum" in str(refused.value)
    with pytest.raises(InvalidRequest, match="at least 2 distinct platforms"):
        configure(hub_home, contribution_quorum=1, contribution_quorum_list=MD5_LIST)


def test_hashhub_serve_refuses_a_quorum_list_of_bare_hashes(hub_home: Path) -> None:
    configure(hub_home, contribution_quorum=3, contribution_quorum_list=LIST)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    result = Operator(hub_home).run("serve", "--port", port)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: contribution_quorum_list: list tid-md5 holds bare")
    assert "Traceback" not in result.output


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"platform": "no-such-platform", "list": MD5_LIST}, 404, "no enrolled node"),
        ({"platform": NODE_ID, "list": "no-such-list"}, 404, "no-such-list"),
        ({"platform": NODE_ID, "list": LIST}, 400, "holds bare hashes"),
        ({"platform": NODE_ID, "list": MD5_LIST, "categories": ["spam"]}, 400, "'spam'"),
        ({"platform": NODE_ID, "list": MD5_LIST, "categories": "ncii"}, 400, "list of strings"),
        ({"platform": "Platform A", "list": MD5_LIST}, 400, "platform id"),
        ({"platform": NODE_ID, "list": "../x"}, 400, "list"),
        ({"platform": NODE_ID}, 400, "'list'"),
        ({"platform": NODE_ID, "list": MD5_LIST, "quorum": 2}, 400, "unknown field"),
    ],
)
async def test_a_bad_trust_is_refused_and_changes_nothing(
    client: Client,
    hub_home: Path,
    node_token: str,
    role_tokens: dict[str, str],
    body: dict[str, Any],
    status: int,
    words: str,
) -> None:
    response = await client.post(TRUST, json=body, headers=bearer(role_tokens["admin"]))
    answer = await response.json()
    assert_error(response.status, answer, status)
    assert words in answer["error"]["message"]
    assert trust_rows(hub_home) == []
    assert actions(hub_home, "contribution.") == []


async def test_untrusting_a_platform_not_trusted_is_refused(
    client: Client, hub_home: Path, role_tokens: dict[str, str]
) -> None:
    admin = bearer(role_tokens["admin"])
    for path, status, words in (
        (f"{TRUST}/{NODE_ID}", 404, "not trusted"),
        (f"{TRUST}/Not.A.Platform", 400, "platform id"),
    ):
        response = await client.delete(path, headers=admin)
        answer = await response.json()
        assert_error(response.status, answer, status)
        assert words in answer["error"]["message"]
    assert actions(hub_home, "contribution.") == []


def test_the_cli_trusts_lists_and_untrusts_and_refuses_bad_input(
    hub_home: Path, node_token: str
) -> None:
    op = Operator(hub_home)
    assert op.ok("contribution", "trusted") == "No platform is trusted.\n"
    for args, words in (
        (("trust", "no-such-platform", "--list", MD5_LIST), "no enrolled node serves"),
        (("trust", NODE_ID, "--list", "no-such-list"), "no-such-list"),
        (("trust", NODE_ID, "--list", LIST), "holds bare hashes"),
        (("trust", NODE_ID, "--list", MD5_LIST, "--category", "spam"), "'spam' is not in"),
        (("untrust", NODE_ID), "is not trusted"),
    ):
        result = op.run("contribution", *args)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("Error: ")
        assert words in result.stderr
    assert trust_rows(hub_home) == []

    out = op.ok(
        "contribution", "trust", NODE_ID, "--list", SHA_LIST, "--category", "ncii",
        "--category", "csam",
    )  # fmt: skip
    assert out == (
        f"Platform {NODE_ID} trusted: its contributions (ncii, csam) are accepted on "
        f"arrival into the collection of {SHA_LIST}.\n"
    )
    [row] = json.loads(op.ok("contribution", "trusted", "--json"))
    assert (row["platform"], row["list"], row["categories"]) == (
        NODE_ID,
        SHA_LIST,
        ["ncii", "csam"],
    )
    assert row["who"].startswith("cli")
    assert f"{NODE_ID}  {SHA_LIST}  ncii,csam" in op.ok("contribution", "trusted")
    # Trusting again replaces the list and the categories.
    op.ok("contribution", "trust", NODE_ID, "--list", MD5_LIST)
    [row] = trust_rows(hub_home)
    assert (row["list"], row["categories"]) == (MD5_LIST, [])
    assert "no longer trusted" in op.ok("contribution", "untrust", NODE_ID)
    assert trust_rows(hub_home) == []
    assert [a for a, _, _ in actions(hub_home, "contribution.")] == [
        "contribution.trust",
        "contribution.trust",
        "contribution.untrust",
    ]


def test_contributions_stored_before_the_policy_are_indexed_by_hash(
    hub_home: Path, node_key: SigningKey, node_token: str
) -> None:
    """m013 fills the hash index from the contributions stored before it."""
    with opened(hub_home) as hub:
        principal = hub.access.authenticate(node_token)
        hub.contributions.receive(principal, *sign_contribution(contribution(1, 1), node_key))
        hub.db.execute("DROP TABLE contribution_hashes")
        hub.db.execute("DROP TABLE contribution_trust")
        hub.db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm013_contribution_policy'")
        migrations.apply(hub.db)
        indexed = sorted(
            (r["node"], r["seq"], r["hash_type"], bytes(r["hash"]))
            for r in hub.db.query("SELECT * FROM contribution_hashes")
        )
    assert indexed == [(NODE_ID, 1, "md5", md5(1)), (NODE_ID, 1, "sha256", sha256(1))]
    assert count_rows(hub_home, "contribution_trust") == 0


def _draft(hashes: dict[str, str], **changes: Any) -> EntryDraft:
    values: dict[str, Any] = {
        "category": "ncii",
        "classification": "confirmed",
        "source": "import",
        **changes,
    }
    return EntryDraft(tuple(hashes.items()), **values)
