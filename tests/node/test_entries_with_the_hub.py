"""Entries from end to end: the real hub lists an item, a real node matches it with its
metadata, the item is withdrawn, the node stops matching it, the auditor agrees.

The hub is the real app on loopback (its operator API declares the collection and
stages the entry); the node follows it over HTTP and answers ``POST /v1/match`` on
loopback with the picture's bytes; the auditor reads the hub's exported tree from
the pinned root v1. Nothing is built by hand between them: every record a node or
the auditor sees was made by the hub's own publish.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.api.keys import NODE, SESSION
from node.app import create_app
from node.config import read_secret
from node.service import run_sync
from tests.audit.support import audit, export
from tests.node.conftest import ORIGINAL, HubServer, init_node_home, original_pdq

Client = TestClient[web.Request, web.Application]

PDQ_ENTRIES, MD5_ENTRIES = "ncii-entries-pdq", "ncii-entries-md5"


async def admin(hub: HubServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One call of the hub's operator API as its admin; the answer's JSON."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{hub.url}{path}", json=body, headers={"Authorization": f"Bearer {hub.admin_token}"}
        ) as response,
    ):
        answer: dict[str, Any] = await response.json()
        assert response.status in (200, 201), answer
        return answer


@pytest.fixture
async def collection(hub_server: HubServer) -> str:
    """An NCII collection of two entries lists with the bridge photo listed once in it."""
    for list_id, hash_type in ((PDQ_ENTRIES, "pdq"), (MD5_ENTRIES, "md5")):
        await admin(
            hub_server,
            "/v1/admin/lists",
            {"id": list_id, "hash_type": hash_type, "label": "ncii", "format": "entries"},
        )
    entry = await admin(
        hub_server,
        "/v1/admin/entries",
        {
            "hashes": {
                PDQ_ENTRIES: original_pdq().hex(),
                MD5_ENTRIES: hashlib.md5(ORIGINAL.read_bytes()).hexdigest(),
            },
            "category": "ncii",
            "classification": "confirmed",
            "source": "submission",
        },
    )
    await admin(hub_server, "/v1/admin/publish", {"lists": [PDQ_ENTRIES, MD5_ENTRIES]})
    return str(entry["entry"])


@pytest.fixture
async def node_client(
    tmp_path: Path, hub_server: HubServer, collection: str
) -> AsyncIterator[tuple[Client, Path]]:
    home = init_node_home(
        tmp_path / "node", hub_server, node_id="platform-e", lists=[PDQ_ENTRIES, MD5_ENTRIES]
    )
    app = create_app(home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client, home


async def sync_node(client: Client) -> dict[str, str]:
    """One sync by the served node itself (as its scheduler runs it): each list's status."""
    app = client.app
    assert app is not None
    return {o.list_id: o.status for o in await run_sync(app[NODE], app[SESSION])}


async def match_photo(client: Client, home: Path) -> list[dict[str, Any]]:
    response = await client.post(
        "/v1/match",
        data=ORIGINAL.read_bytes(),
        headers={
            "Authorization": f"Bearer {read_secret(home / 'api-token')}",
            "Content-Type": "image/jpeg",
        },
    )
    body = await response.json()
    assert response.status == 200, body
    return sorted(body["matches"], key=lambda m: str(m["list"]))


async def test_an_entry_listed_at_the_hub_is_matched_with_its_metadata_then_withdrawn(
    hub_server: HubServer, node_client: tuple[Client, Path], collection: str, tmp_path: Path
) -> None:
    client, home = node_client
    assert await sync_node(client) == {PDQ_ENTRIES: "updated", MD5_ENTRIES: "updated"}

    matches = await match_photo(client, home)
    assert [m["list"] for m in matches] == [MD5_ENTRIES, PDQ_ENTRIES]
    for m in matches:
        assert m["entry"] == collection
        assert (m["category"], m["classification"], m["source"], m["expires"]) == (
            "ncii",
            "confirmed",
            "submission",
            None,
        )
    assert matches[0]["first_seen"] == matches[1]["first_seen"]

    await admin(
        hub_server, "/v1/admin/entries/retract", {"entry": collection, "reason": "withdrawn"}
    )
    published = await admin(hub_server, "/v1/admin/publish", {})
    assert sorted(p["list"] for p in published["published"]) == [MD5_ENTRIES, PDQ_ENTRIES]
    assert await sync_node(client) == {PDQ_ENTRIES: "updated", MD5_ENTRIES: "updated"}
    assert await match_photo(client, home) == []

    tree = export(hub_server.home, tmp_path / "tree")
    verified = audit(
        "verify", tree, "--root", tree / "root/1.json", "--witness", tmp_path / "w.json", "--json"
    )
    assert verified.code == 0, verified.stdout
    lists = {lst["list"]: lst for lst in verified.json()["lists"]}
    for list_id in (PDQ_ENTRIES, MD5_ENTRIES):
        assert lists[list_id]["format"] == "entries"
        assert lists[list_id]["status"] == "verified"
        assert lists[list_id]["removed"] == {"withdrawn": 1}
        assert lists[list_id]["state"]["count"] == 0
