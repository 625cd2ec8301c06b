"""A platform contributes what its reviewers confirmed (PROTOCOL.md §10.8), end to end.

A real hub on loopback with an entries collection (PDQ and MD5 lists) and a node enrolled
for it: ``hashhub-node contribute`` hashes a picture here and sends only its hashes,
signed; the hub queues it; an operator accepts it into the collection; the node asks
how its review went. A hub that cannot be reached, a stale ``seq`` and a refusal each
end as PROTOCOL.md §10.6 says an ack's would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner, Result

from hub.app import create_app as create_hub_app
from hub.core import Hub
from node.cli import EXIT_FAILED, main
from protocol import Contribution, SigningKey, sign_contribution
from protocol.contribution import ContributedHash, Review
from protocol.keyfile import load_private_key
from tests.node.conftest import ORIGINAL, original_pdq
from tests.web.test_case_withdrawal import ENTRIES_PDQ, make_home
from tests.web.test_entries_story import enrol

Client = TestClient[Any, Any]


def node_cli(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--home", str(home)])


async def run(home: Path, *args: str) -> Result:
    """The command on a worker thread: it runs its own event loop, the hub is on ours."""
    return await asyncio.to_thread(node_cli, home, *args)


def contributions(hub_home: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(hub_home / "hub.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM contributions ORDER BY node, seq")]
    finally:
        conn.close()


async def test_a_picture_contributed_is_reviewed_and_becomes_an_entry(tmp_path: Path) -> None:
    hub_home = make_home(tmp_path / "hub")
    async with TestClient(TestServer(create_hub_app(hub_home, schedule=False))) as hub:
        url = str(hub.make_url("")).rstrip("/")
        home = tmp_path / "node"
        enrol(hub_home, url, home, "platform-a")

        sent = await run(
            home, "contribute", str(ORIGINAL), "--category", "ncii",
            "--classification", "confirmed", "--reviewed-by", "person", "--action", "actioned",
        )  # fmt: skip
        assert sent.exit_code == 0, sent.output
        assert "contribution 1 signed (md5, pdq, phash, sha256)" in sent.output
        assert "contribution 1: delivered — HTTP 200: received" in sent.output
        [row] = contributions(hub_home)
        offered = Contribution.from_bytes(bytes(row["bytes"]))
        assert offered.hashes["pdq"].hex == original_pdq().hex()
        assert offered.hashes["pdq"].quality is not None
        assert offered.review == Review("person", "actioned")
        assert ORIGINAL.read_bytes() not in bytes(row["bytes"])  # hashes only

        waiting = await run(home, "contribution", "status", "1", "--json")
        assert json.loads(waiting.output)["status"] == "received"

        hub_obj = Hub.open(hub_home)
        try:
            hub_obj.contributions.accept("platform-a", 1, ENTRIES_PDQ, who="alice")
            hub_obj.publishing.publish()
        finally:
            hub_obj.close()
        decided = await run(home, "contribution", "status", "1")
        assert decided.exit_code == 0, decided.output
        assert decided.output.startswith("contribution 1: accepted, entry e-")
        listed = await run(home, "contribution", "list", "--json")
        assert [(r["seq"], r["state"]) for r in json.loads(listed.output)] == [(1, "delivered")]


async def test_unreached_then_sent_a_stale_seq_re_signed_a_refusal_kept(tmp_path: Path) -> None:
    hub_home = make_home(tmp_path / "hub")
    server = TestServer(create_hub_app(hub_home, schedule=False))
    async with TestClient(server) as hub:
        url = str(hub.make_url("")).rstrip("/")
        port = server.port
        home = tmp_path / "node"
        enrol(hub_home, url, home, "platform-a")
        key: SigningKey = load_private_key(home / "node.key")

        # The hub already holds this node's contribution seq 4 (made elsewhere, say a
        # node restored from an older backup): the node's seq 1 is stale.
        stale = Contribution(
            "platform-a", 4, _now(hub_home), {"md5": ContributedHash("ab" * 16)},
            "ncii", "confirmed", Review("automated", "blocked"),
        )  # fmt: skip
        data, sig = sign_contribution(stale, key)
        answer = await hub.post(
            "/v1/contributions",
            data=data,
            headers={
                "Authorization": f"Bearer {(home / 'hub-token').read_text().strip()}",
                "Hashhub-Signature": base64.b64encode(sig).decode(),
                "Content-Type": "application/json",
            },
        )
        assert answer.status == 200, await answer.text()

        md5_hex = "cd" * 16
        again = await run(
            home, "contribute", "--hash", f"md5:{md5_hex}", "--category", "ncii",
            "--classification", "confirmed", "--reviewed-by", "automated", "--action", "none",
        )  # fmt: skip
        assert again.exit_code == 0, again.output
        assert "contribution 5: delivered" in again.output  # re-signed above the hub's 4
        assert [r["seq"] for r in contributions(hub_home)] == [4, 5]

        refused = await run(
            home, "contribute", "--hash", f"md5:{'ef' * 16}", "--category", "spam",
            "--classification", "confirmed", "--reviewed-by", "person", "--action", "none",
        )  # fmt: skip
        assert refused.exit_code == 0, refused.output
        assert "refused — HTTP 422" in refused.output  # 'spam' is no term of the vocabulary
        assert len(contributions(hub_home)) == 2

    # The hub is gone: the contribution is kept, and sent once it is back.
    kept = await run(
        home, "contribute", "--hash", f"md5:{'12' * 16}", "--category", "ncii",
        "--classification", "confirmed", "--reviewed-by", "person", "--action", "blocked",
    )  # fmt: skip
    assert kept.exit_code == EXIT_FAILED, kept.output
    assert ": pending — " in kept.output
    async with TestClient(TestServer(create_hub_app(hub_home, schedule=False), port=port)):
        sent = await run(home, "contribution", "send")
        assert sent.exit_code == 0, sent.output
        assert "contribution 7: delivered" in sent.output
    assert [r["seq"] for r in contributions(hub_home)] == [4, 5, 7]


def _now(hub_home: Path) -> datetime:
    hub = Hub.open(hub_home)
    try:
        return hub.now()
    finally:
        hub.close()
