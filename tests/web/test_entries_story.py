"""The life of a listed item, told end to end with every part real.

A person submits the hash of a picture on the hub's public page and is shown a case
number and a withdrawal code; an operator accepts the case into the NCII collection
(an ``entries`` PDQ list and its MD5 sibling) with a category and a classification and
publishes; two platforms' nodes follow the hub over HTTP, and each matches the
picture's bytes with the entry's metadata; one reviewer calls the match a false
positive (the content is not what it is said to be), the other blocks it, and each
node's next ack carries that position, signed, to the hub; the next publish makes a
version that changes no record but carries the signed opinion summary, which shows
one confirmation and one dispute, and each node's match then says so; the person
withdraws with the case number and the code; after the next publish neither node
matches the picture; an auditor verifies the hub's whole history from root v1, the
withdrawal among it, and every ack the hub stored, folding the summaries again from
them.

The hub is its real app on loopback with a real SQLite file; the nodes are real
node homes (keys, stores) whose sync, match and ack code runs as their daemons run
it; the auditor is ``hashhub-audit``.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from hub.app import create_app as create_hub_app
from hub.core import Hub
from node.api.keys import NODE, SESSION
from node.app import create_app as create_node_app
from node.config import read_secret, write_secret
from node.service import Node, flush_acks, run_sync
from protocol import (
    Ack,
    DeltaHeader,
    Opinion,
    OpinionSummary,
    Voice,
    header_opinions,
    header_path,
    opinions_path,
)
from protocol.keyfile import load_public_key
from tests.audit.support import audit, audit_async, export
from tests.node.conftest import ORIGINAL, original_pdq
from tests.web.hub_support import case_number, operator_token
from tests.web.test_case_withdrawal import _CODE as CODE
from tests.web.test_case_withdrawal import ENTRIES_MD5, ENTRIES_PDQ, make_home, withdraw

Client = TestClient[Any, Any]


def enrol(hub_home: Path, hub_url: str, node_home: Path, node_id: str) -> None:
    """A platform joins: its node pinned to root v1, its key enrolled for the collection."""
    hub = Hub.open(hub_home)
    try:
        pin = hub.keys.root_sha256(1)
    finally:
        hub.close()
    Node.init(
        node_home,
        node_id=node_id,
        hub_url=hub_url,
        lists=[ENTRIES_PDQ, ENTRIES_MD5],
        pinned_root_sha256=pin,
    ).close()
    hub = Hub.open(hub_home)
    try:
        token = hub.access.enrol_node(
            node_id, load_public_key(node_home / "node.pub.pem"), [ENTRIES_PDQ, ENTRIES_MD5]
        )
    finally:
        hub.close()
    write_secret(node_home / "hub-token", token)


async def operator(hub: Client, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await hub.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    answer: dict[str, Any] = await response.json()
    assert response.status in (200, 201), answer
    return answer


async def match_picture(node: Client, home: Path) -> list[dict[str, Any]]:
    response = await node.post(
        "/v1/match",
        data=ORIGINAL.read_bytes(),
        headers={
            "Authorization": f"Bearer {read_secret(home / 'api-token')}",
            "Content-Type": "image/jpeg",
        },
    )
    body = await response.json()
    assert response.status == 200, body
    return [m for m in body["matches"] if m["list"] in (ENTRIES_PDQ, ENTRIES_MD5)]


async def outcome(node: Client, home: Path, match_id: str, body: dict[str, str]) -> None:
    response = await node.post(
        f"/v1/matches/{match_id}/outcome",
        json=body,
        headers={"Authorization": f"Bearer {read_secret(home / 'api-token')}"},
    )
    assert response.status == 200, await response.text()


def stored_opinions(hub_home: Path, node_id: str) -> dict[str, Opinion]:
    """What the newest ack the hub stored from ``node_id`` for the PDQ list says."""
    conn = sqlite3.connect(hub_home / "hub.db")
    try:
        rows = conn.execute(
            "SELECT bytes FROM acks WHERE node = ? AND list_id = ? ORDER BY seq",
            [node_id, ENTRIES_PDQ],
        ).fetchall()
    finally:
        conn.close()
    said: dict[str, Opinion] = {}
    for (data,) in rows:
        said.update(Ack.from_bytes(bytes(data)).opinions)
    return said


async def published_summary(hub: Client, token: str, list_id: str, version: int) -> OpinionSummary:
    """The opinion summary header ``version`` names, as any reader of the tree gets it."""
    auth = {"Authorization": f"Bearer {token}"}
    header = DeltaHeader.from_bytes(
        await (await hub.get("/" + header_path(list_id, version), headers=auth)).read()
    )
    ref = header_opinions(header)
    assert ref is not None, f"v{version} names no summary"
    answer = await hub.get("/" + opinions_path(list_id, ref.sha256), headers=auth)
    assert answer.status == 200, await answer.text()
    return OpinionSummary.from_bytes(await answer.read())


async def test_a_listed_picture_from_submission_to_withdrawal(tmp_path: Path) -> None:
    hub_home = make_home(tmp_path / "hub")
    token = operator_token(hub_home, "admin")
    hub_app = create_hub_app(hub_home, schedule=False)
    async with TestClient(TestServer(hub_app, host="127.0.0.1")) as hub:
        hub_url = str(hub.make_url("")).rstrip("/")

        # 1. A person submits the picture's PDQ (the page hashes it on their device).
        answer = await hub.post(
            "/submit", data={"type": "pdq", "hash": original_pdq().hex(), "quality": "100"}
        )
        page = await answer.text()
        assert answer.status == 200, page
        case = case_number(page).replace("-", "")
        shown = CODE.search(page)
        assert shown is not None, page
        code = shown.group(1)
        assert len(code.replace("-", "")) == 32

        # 2. The operator accepts it into the NCII collection and publishes.
        accepted = await operator(
            hub,
            token,
            f"/v1/admin/cases/{case}/accept",
            {"list": ENTRIES_PDQ, "category": "ncii", "classification": "confirmed"},
        )
        assert accepted["status"] == "accepted", accepted
        await operator(hub, token, "/v1/admin/publish", {})

        # 3. Two platforms follow the hub and match the picture, with its metadata.
        platforms: dict[str, tuple[Client, Path]] = {}
        for node_id in ("platform-a", "platform-b"):
            home = tmp_path / node_id
            enrol(hub_home, hub_url, home, node_id)
            app = create_node_app(home, schedule=False)
            client = TestClient(TestServer(app, host="127.0.0.1"))
            await client.start_server()
            platforms[node_id] = (client, home)
        try:
            entry_ids = set()
            match_ids = {}
            for node_id, (client, home) in platforms.items():
                app = client.app
                assert app is not None
                statuses = {o.list_id: o.status for o in await run_sync(app[NODE], app[SESSION])}
                assert statuses[ENTRIES_PDQ] == "updated", statuses
                [found] = await match_picture(client, home)
                assert found["list"] == ENTRIES_PDQ
                assert (found["category"], found["classification"], found["source"]) == (
                    "ncii",
                    "confirmed",
                    "submission",
                )
                entry_ids.add(found["entry"])
                match_ids[node_id] = found["match_id"]
            [entry_id] = entry_ids

            # 4. One platform disputes the entry, the other confirms it; their acks say so.
            a, home_a = platforms["platform-a"]
            b, home_b = platforms["platform-b"]
            await outcome(
                a,
                home_a,
                match_ids["platform-a"],
                {"outcome": "false_positive", "reason": "not_the_content"},
            )
            await outcome(b, home_b, match_ids["platform-b"], {"outcome": "blocked"})
            for client, _ in platforms.values():
                app = client.app
                assert app is not None
                app[NODE].acks.enqueue()
                reasons: list[str] = []
                async with aiohttp.ClientSession() as session:
                    sent, failed = await flush_acks(app[NODE], session, reasons=reasons)
                assert (sent > 0, failed) == (True, 0), reasons
            assert stored_opinions(hub_home, "platform-a") == {
                entry_id: Opinion("disputed", "not_the_content")
            }
            assert stored_opinions(hub_home, "platform-b") == {
                entry_id: Opinion("confirmed", "blocked")
            }
            # The hub counts them by platform: one of each, each naming its signed ack.
            listed = await hub.get(
                f"/v1/admin/entries?entry={entry_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
            [view] = (await listed.json())["entries"]
            said = view["opinions"]
            assert (said["confirmed"], said["disputed"]) == (1, 1)
            assert [(p["platform"], p["position"], p["reason"]) for p in said["platforms"]] == [
                ("platform-a", "disputed", "not_the_content"),
                ("platform-b", "confirmed", "blocked"),
            ]

            # 5. The next publish makes a version that changes no record of the list: the
            #    signed summary it names shows one of each, and each node's match says so.
            published = await operator(hub, token, "/v1/admin/publish", {})
            [made] = published["published"]
            assert (made["list"], made["adds"], made["removes"]) == (ENTRIES_PDQ, 0, 0)
            summary = await published_summary(hub, token, ENTRIES_PDQ, made["version"])
            said_of = summary.entries[entry_id]
            assert dict(said_of.confirmed) == {
                "platform-b": Voice("platform-b", said_of.confirmed["platform-b"].seq, "blocked")
            }
            assert dict(said_of.disputed) == {
                "platform-a": Voice(
                    "platform-a", said_of.disputed["platform-a"].seq, "not_the_content"
                )
            }
            assert said_of.dispute is None, "one platform alone never marks an entry disputed"
            for client, home in platforms.values():
                app = client.app
                assert app is not None
                statuses = {o.list_id: o.status for o in await run_sync(app[NODE], app[SESSION])}
                assert statuses[ENTRIES_PDQ] == "updated", statuses
                [found] = await match_picture(client, home)
                assert found["opinions"] == {"confirmed": 1, "disputed": 1, "dispute": None}

            # 6. The person withdraws; after the next publish neither platform matches.
            status, page = await withdraw(hub, case, code)
            assert status == 200, page
            assert "withdrawn" in page
            published = await operator(hub, token, "/v1/admin/publish", {})
            assert [p["list"] for p in published["published"]] == [ENTRIES_PDQ]
            for client, home in platforms.values():
                app = client.app
                assert app is not None
                statuses = {o.list_id: o.status for o in await run_sync(app[NODE], app[SESSION])}
                assert statuses[ENTRIES_PDQ] == "updated", statuses
                assert await match_picture(client, home) == []

            # 7. The auditor folds every summary again from the acks the hub stored,
            #    each checked under the key the platform gave, and finds nothing.
            auditor = operator_token(hub_home, "auditor")
            keys = [
                f"--node-key={node_id}={load_public_key(home / 'node.pub.pem').raw.hex()}"
                for node_id, (_, home) in platforms.items()
            ]
            pin = Hub.open(hub_home)
            try:
                root_sha256 = pin.keys.root_sha256(1)
            finally:
                pin.close()
            acks = await audit_async(
                "acks", hub_url, "--root-sha256", root_sha256, "--token", auditor, *keys, "--json"
            )
            assert acks.code == 0, acks.stdout
            report = acks.json()["acks"]
            assert report["findings"] == [], report["findings"]
            assert made["version"] in report["summaries"][ENTRIES_PDQ]
            assert report["withdrawals"]["granted"][0]["removed"] == {
                ENTRIES_PDQ: made["version"] + 1
            }
        finally:
            for client, _ in platforms.values():
                await client.close()

    # 8. The auditor verifies the whole history, the withdrawal among it, from the files.
    tree = export(hub_home, tmp_path / "tree")
    verified = audit(
        "verify", tree, "--root", tree / "root/1.json", "--witness", tmp_path / "w.json", "--json"
    )
    assert verified.code == 0, verified.stdout
    pdq = next(lst for lst in verified.json()["lists"] if lst["list"] == ENTRIES_PDQ)
    assert (pdq["format"], pdq["status"], pdq["removed"]) == (
        "entries",
        "verified",
        {"withdrawn": 1},
    )
    shutil.rmtree(tree)
