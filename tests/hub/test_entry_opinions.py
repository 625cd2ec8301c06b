"""The hub counts what platforms say of an entry, from the opinions in their signed acks.

Real hub app on loopback, real SQLite, acks signed with real node keys and sent to
``POST /v1/acks`` as a node sends them. A platform's position is its newest signed
one across its nodes (a fleet is one voice); an opinion on a list of bare hashes, or
on an entry the list never held, refuses the whole ack and keeps nothing of it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from hub.app import create_app
from hub.cli import main as hub_main
from hub.core import utcnow
from protocol import AppliedVersion, Counts, Opinion, SigningKey, sign_ack
from tests.hub.conftest import LIST, Client, ack_headers, bearer, count_rows, init_hub, opened

ENTRIES = "ncii-md5"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A hub with the md5 test lists and an entries list holding two entries."""
    home = tmp_path / "hub"
    init_hub(home)
    with opened(home) as hub:
        hub.roots.create_list(ENTRIES, "md5", label="ncii", list_format="entries")
    for n in (1, 2):
        ran = CliRunner().invoke(
            hub_main,
            [
                "entry",
                "add",
                "--list",
                ENTRIES,
                "--hash",
                f"{n:032x}",
                "--category",
                "ncii",
                "--classification",
                "confirmed",
                "--source",
                "import:batch-1",
                "--home",
                str(home),
            ],
        )
        assert ran.exit_code == 0, ran.output
    with opened(home) as hub:
        hub.publishing.publish([ENTRIES])
    return home


@pytest.fixture
async def client(home: Path) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as c:
        yield c


def entry_ids(home: Path) -> list[str]:
    with opened(home) as hub:
        return [v.entry for v in hub.entries.listed(ENTRIES)]


def enrol(home: Path, node_id: str, platform: str) -> tuple[SigningKey, str]:
    key = SigningKey.generate()
    with opened(home) as hub:
        token = hub.access.enrol_node(node_id, key.public, [ENTRIES, LIST], platform=platform)
    return key, token


def signed_ack(
    home: Path, key: SigningKey, node_id: str, list_id: str, seq: int, opinions: dict[str, Opinion]
) -> tuple[bytes, bytes]:
    with opened(home) as hub:
        head = hub.entries.head(list_id) if list_id == ENTRIES else hub.lists.head(list_id)
        origin = hub.keys.root().origin(list_id)
    return sign_ack(
        key=key,
        node=node_id,
        list_id=list_id,
        seq=seq,
        sent=utcnow() + timedelta(seconds=seq),
        origin=origin,
        applied=AppliedVersion(head.version, head.compact.root(), head.state.digest()),
        counts=Counts(checked=1),
        opinions=opinions,
    )


async def post(client: Client, token: str, data: bytes, sig: bytes) -> tuple[int, Any]:
    response = await client.post("/v1/acks", data=data, headers=ack_headers(token, sig))
    return response.status, json.loads(await response.read())


async def opinions_of(client: Client, home: Path, entry: str) -> dict[str, Any]:
    with opened(home) as hub:
        token = hub.access.create_operator_token("viewer", "test-viewer")
    response = await client.get(f"/v1/admin/entries?entry={entry}", headers=bearer(token))
    [view] = (await response.json())["entries"]
    return dict(view["opinions"])


async def test_platforms_are_counted_once_each_by_their_newest_position(
    home: Path, client: Client
) -> None:
    first, second = entry_ids(home)
    key_a1, token_a1 = enrol(home, "platform-a-1", "platform-a")
    key_a2, token_a2 = enrol(home, "platform-a-2", "platform-a")
    key_b, token_b = enrol(home, "platform-b", "platform-b")

    said = [
        (key_a1, "platform-a-1", token_a1, 1, {first: Opinion("disputed", "benign")}),
        (key_a2, "platform-a-2", token_a2, 2, {first: Opinion("confirmed", "actioned")}),
        (key_b, "platform-b", token_b, 3, {first: Opinion("confirmed", "blocked")}),
        (key_b, "platform-b", token_b, 4, {second: Opinion("disputed", "not_the_content")}),
    ]
    for key, node_id, token, seq, opinions in said:
        status, answer = await post(
            client, token, *signed_ack(home, key, node_id, ENTRIES, seq, opinions)
        )
        assert status == 200, answer

    on_first = await opinions_of(client, home, first)
    assert (on_first["confirmed"], on_first["disputed"]) == (2, 0), (
        "platform-a's two nodes are one voice, its newest (confirmed) speaking"
    )
    assert [
        (p["platform"], p["position"], p["reason"], p["node"], p["seq"])
        for p in on_first["platforms"]
    ] == [
        ("platform-a", "confirmed", "actioned", "platform-a-2", 2),
        ("platform-b", "confirmed", "blocked", "platform-b", 3),
    ]
    on_second = await opinions_of(client, home, second)
    assert (on_second["confirmed"], on_second["disputed"]) == (0, 1)

    # An older ack of platform-a (sent before its newest) changes nothing; "none" takes
    # platform-b's position back and counts for neither.
    status, _ = await post(
        client,
        token_a1,
        *signed_ack(home, key_a1, "platform-a-1", ENTRIES, 5, {first: Opinion("none")}),
    )
    assert status == 200
    status, _ = await post(
        client,
        token_b,
        *signed_ack(home, key_b, "platform-b", ENTRIES, 6, {first: Opinion("none")}),
    )
    assert status == 200
    on_first = await opinions_of(client, home, first)
    assert (on_first["confirmed"], on_first["disputed"]) == (0, 0)
    assert {p["platform"]: p["position"] for p in on_first["platforms"]} == {
        "platform-a": "none",
        "platform-b": "none",
    }

    shown = CliRunner().invoke(hub_main, ["entry", "show", second, "--home", str(home)])
    assert shown.exit_code == 0, shown.output
    assert "opinions        confirmed by 0 platform(s), disputed by 1" in shown.output
    assert "  platform-b  disputed (not_the_content)  ack platform-b seq 4 of ncii-md5" in (
        shown.output
    )


async def test_an_opinion_off_an_entries_list_or_on_an_unheld_entry_refuses_the_ack(
    home: Path, client: Client
) -> None:
    [first, _] = entry_ids(home)
    key, token = enrol(home, "platform-c", "platform-c")
    before = count_rows(home, "acks")

    on_hashes = signed_ack(
        home, key, "platform-c", LIST, 1, {first: Opinion("confirmed", "blocked")}
    )
    status, answer = await post(client, token, *on_hashes)
    assert status == 422
    assert (
        "opinions are on entries, and tid-md5 is a list of bare hashes"
        in (answer["error"]["message"])
    )

    unheld = signed_ack(
        home, key, "platform-c", ENTRIES, 2, {"e-never-listed": Opinion("disputed", "other")}
    )
    status, answer = await post(client, token, *unheld)
    assert status == 422
    assert (
        "an opinion on entry e-never-listed, which list ncii-md5 did not hold"
        in (answer["error"]["message"])
    )
    assert count_rows(home, "acks") == before
    assert count_rows(home, "entry_opinions") == 0
