"""Disputes of entries: opened by the platforms' disputes, decided by an operator.

Real hub app on loopback, real SQLite, signed acks from real node keys. Two platforms
disputing an entry (threshold 2) open a dispute the next summary shows ``open``; an
operator dismisses it (the summary names who) or upholds it (the entry leaves every
list of its collection as ``disputed``, as a node following the lists sees); disputes
falling below the threshold withdraw it. A bad request changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from hub.app import create_app
from hub.cli import main as hub_main
from hub.services.entries import EntryDraft
from protocol import Opinion, SigningKey
from tests.hub.conftest import Client, bearer, count_rows, init_hub, opened, pinned
from tests.hub.node_view import follow_entries, from_hub
from tests.hub.test_entry_opinions import ENTRIES, enrol, post, signed_ack
from tests.hub.test_http import assert_error
from tests.hub.test_opinion_summary import summary_over_http

SIBLING = "ncii-sha256"
"""The other list of the collection ``ncii``."""


def draft(n: int) -> EntryDraft:
    return EntryDraft(
        ((ENTRIES, f"{n:032x}"), (SIBLING, f"{n:064x}")), "ncii", "confirmed", "import"
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A hub with the collection ``ncii`` (an md5 and a sha256 entries list), two entries."""
    home = tmp_path / "hub"
    init_hub(home)
    with opened(home) as hub:
        hub.roots.create_list(ENTRIES, "md5", label="ncii", list_format="entries")
        hub.roots.create_list(SIBLING, "sha256", label="ncii", list_format="entries")
        hub.entries.add_many([draft(1), draft(2)])
        hub.publishing.publish([ENTRIES])
    return home


@pytest.fixture
async def client(home: Path) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as c:
        yield c


@pytest.fixture
def tokens(home: Path) -> dict[str, str]:
    with opened(home) as hub:
        return {
            role: hub.access.create_operator_token(role, f"test-{role}")
            for role in ("publisher", "viewer")
        }


class Platforms:
    """Platforms A and B, one node each, saying things of entries in signed acks."""

    def __init__(self, home: Path, client: Client) -> None:
        self.home, self.client = home, client
        self.nodes: dict[str, tuple[SigningKey, str]] = {
            name: enrol(home, name, name) for name in ("platform-a", "platform-b")
        }
        self.seq = 0

    async def say(self, platform: str, entry_id: str, opinion: Opinion) -> None:
        key, token = self.nodes[platform]
        self.seq += 1
        ack = signed_ack(self.home, key, platform, ENTRIES, self.seq, {entry_id: opinion})
        status, answer = await post(self.client, token, *ack)
        assert status == 200, answer


def entries_of(home: Path) -> list[str]:
    with opened(home) as hub:
        return [v.entry for v in hub.entries.listed(ENTRIES)]


def publish(home: Path, n: int | None = None) -> int:
    """Publish the collection (staging entry ``n`` first, so a version is made)."""
    with opened(home) as hub:
        if n is not None:
            hub.entries.add(draft(n))
        hub.publishing.publish([ENTRIES])
        return hub.entries.head(ENTRIES).version


def cli(home: Path, *args: str) -> Any:
    return CliRunner().invoke(hub_main, [*args, "--home", str(home)])


def disputes(home: Path, state: str | None = None) -> list[dict[str, Any]]:
    ran = cli(home, "dispute", "list", "--json", *(["--state", state] if state else []))
    assert ran.exit_code == 0, ran.output
    return list(json.loads(ran.output))


async def decide(client: Client, token: str, entry_id: str, body: object) -> tuple[int, Any]:
    response = await client.post(f"/v1/admin/disputes/{entry_id}", json=body, headers=bearer(token))
    return response.status, await response.json()


async def test_two_platforms_open_a_dispute_an_operator_dismisses(
    home: Path, client: Client, tokens: dict[str, str]
) -> None:
    first, second = entries_of(home)
    platforms = Platforms(home, client)
    await platforms.say("platform-a", first, Opinion("disputed", "benign"))
    assert disputes(home) == []
    summary = await summary_over_http(client, home, publish(home, 3))
    assert summary.entries[first].dispute is None, "one platform never marks an entry disputed"
    assert disputes(home) == []

    await platforms.say("platform-b", first, Opinion("disputed", "not_the_content"))
    summary = await summary_over_http(client, home, publish(home, 4))
    dispute = summary.entries[first].dispute
    assert dispute is not None
    assert dispute.state == "open"
    assert dispute.by is None
    [row] = disputes(home, "open")
    assert (row["entry"], row["state"], row["closed"], row["by"]) == (first, "open", None, None)
    listed = cli(home, "dispute", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.output.split()[:6] == ["ENTRY", "STATE", "OPENED", "CLOSED", "BY", "NOTE"]
    assert f"{first}  open   {row['opened']}  -" in listed.output
    assert cli(home, "dispute", "list", "--state", "upheld").output == "No upheld dispute.\n"

    shown = cli(home, "entry", "show", first)
    assert shown.exit_code == 0, shown.output
    assert f"dispute         open, opened {row['opened']}" in shown.output
    response = await client.get(
        f"/v1/admin/entries?entry={first}", headers=bearer(tokens["viewer"])
    )
    [view] = (await response.json())["entries"]
    assert view["dispute"]["state"] == "open"
    response = await client.get(
        f"/v1/admin/entries?entry={second}", headers=bearer(tokens["viewer"])
    )
    assert (await response.json())["entries"][0]["dispute"] is None

    status, answer = await decide(client, tokens["viewer"], first, {"decision": "dismiss"})
    assert_error(status, answer, 403)
    status, answer = await decide(
        client, tokens["publisher"], first, {"decision": "dismiss", "note": "the hash is right"}
    )
    assert status == 200, answer
    assert (answer["state"], answer["by"], answer["note"]) == (
        "dismissed",
        "test-publisher",
        "the hash is right",
    )
    summary = await summary_over_http(client, home, publish(home, 5))
    dispute = summary.entries[first].dispute
    assert dispute is not None
    assert (dispute.state, dispute.by) == ("dismissed", "test-publisher")
    assert dispute.dismissed is not None
    assert dispute.dismissed >= dispute.opened
    assert b"the hash is right" not in summary.to_bytes(), "the note is never published"
    status, answer = await decide(client, tokens["publisher"], first, {"decision": "dismiss"})
    assert_error(status, answer, 409)

    # Platform B takes its dispute back: below the threshold, the dispute is withdrawn.
    await platforms.say("platform-b", first, Opinion("none"))
    summary = await summary_over_http(client, home, publish(home, 6))
    assert summary.entries[first].dispute is None
    assert set(summary.entries[first].disputed) == {"platform-a"}
    [row] = disputes(home, "withdrawn")
    assert (row["entry"], row["by"]) == (first, "test-publisher")
    assert disputes(home, "open") == []
    assert disputes(home, "dismissed") == []

    with opened(home) as hub:
        actions = [r["action"] for r in hub.db.query("SELECT action FROM actions ORDER BY rowid")]
    assert "dispute.dismiss" in actions
    assert actions.count("dispute.refresh") == 2, "opened once, withdrawn once"


async def test_an_upheld_dispute_retracts_the_entry_from_every_list_of_its_collection(
    home: Path, client: Client
) -> None:
    first, second = entries_of(home)
    platforms = Platforms(home, client)
    await platforms.say("platform-a", second, Opinion("disputed", "benign"))
    await platforms.say("platform-b", second, Opinion("disputed", "other"))
    await platforms.say("platform-a", first, Opinion("confirmed", "blocked"))
    summary = await summary_over_http(client, home, publish(home, 3))
    dispute = summary.entries[second].dispute
    assert dispute is not None
    assert dispute.state == "open"

    ran = cli(home, "dispute", "uphold", second, "--note", "two platforms showed it benign")
    assert ran.exit_code == 0, ran.output
    assert f"Dispute of {second} upheld" in ran.output
    version = publish(home)
    summary = await summary_over_http(client, home, version)
    assert second not in summary.entries, "a retracted entry leaves the summary"
    assert first in summary.entries
    [row] = disputes(home, "upheld")
    assert row["entry"] == second
    assert row["note"] == "two platforms showed it benign"
    assert row["by"] is not None

    with opened(home) as hub:
        for list_id in (ENTRIES, SIBLING):
            last = follow_entries(
                from_hub(hub), list_id, pinned_sha256=pinned(home), now=hub.now()
            )[-1]
            assert [(r.entry.entry_id, r.reason) for r in last.body.removes] == [
                (second, "disputed")
            ], list_id
            assert second not in last.state.entry_ids()
        assert hub.entries.show(second).retracted == "disputed"

    again = cli(home, "dispute", "uphold", second)
    assert again.exit_code == 1
    assert f"entry {second} has no open or dismissed dispute to uphold" in again.output


async def test_a_dispute_ends_with_an_entry_retracted_for_another_reason(
    home: Path, client: Client
) -> None:
    """An entry retracted while disputed (here by the operator; a person's withdrawal or
    an expiry alike) takes its dispute with it: ended, not left open for no entry."""
    first, _ = entries_of(home)
    platforms = Platforms(home, client)
    await platforms.say("platform-a", first, Opinion("disputed", "benign"))
    await platforms.say("platform-b", first, Opinion("disputed", "other"))
    publish(home, 3)
    [row] = disputes(home, "open")
    assert row["entry"] == first

    retracted = cli(home, "entry", "retract", first, "--reason", "retracted")
    assert retracted.exit_code == 0, retracted.output
    summary = await summary_over_http(client, home, publish(home))
    assert first not in summary.entries
    assert disputes(home, "open") == []
    [row] = disputes(home, "ended")
    assert (row["entry"], row["by"]) == (first, None)
    assert row["closed"] is not None
    refused = cli(home, "dispute", "dismiss", first)
    assert refused.exit_code == 1, refused.output


async def test_bad_decisions_are_refused_in_the_one_error_shape_and_change_nothing(
    home: Path, client: Client, tokens: dict[str, str]
) -> None:
    first, second = entries_of(home)
    platforms = Platforms(home, client)
    for platform in ("platform-a", "platform-b"):
        await platforms.say(platform, first, Opinion("disputed", "benign"))
    publish(home, 3)
    before = disputes(home)
    actions = count_rows(home, "actions")
    publisher = tokens["publisher"]

    cases: list[tuple[str, object, int, str]] = [
        ("e-00000000000000000000000000", {"decision": "dismiss"}, 404, "no entry"),
        ("not an entry", {"decision": "dismiss"}, 400, "entry id"),
        (first, {"decision": "forget"}, 400, "'decision' is dismiss or uphold"),
        (first, {"decision": 5}, 400, "'decision' must be a string"),
        (first, {"decision": "dismiss", "note": 7}, 400, "'note' must be a string"),
        (first, {"decision": "dismiss", "note": "x" * 1001}, 400, "'note' must be a string"),
        (first, {"decision": "dismiss", "note": "\ud800"}, 400, "UTF-8"),
        (first, {"decision": "dismiss", "who": "me"}, 400, "unknown field"),
        (first, ["dismiss"], 400, "JSON object"),
        (second, {"decision": "dismiss"}, 409, "no open dispute"),
        (second, {"decision": "uphold"}, 409, "no open or dismissed dispute"),
    ]
    for entry_id, body, expected, words in cases:
        status, answer = await decide(client, publisher, entry_id, body)
        assert_error(status, answer, expected)
        assert words in answer["error"]["message"], (entry_id, body, answer)

    for raw, words in ((b"{not json", "not JSON"), (b'{"decision": "\xff"}', "not JSON")):
        response = await client.post(
            f"/v1/admin/disputes/{first}",
            data=raw,
            headers={**bearer(publisher), "Content-Type": "application/json"},
        )
        answer = await response.json()
        assert_error(response.status, answer, 400)
        assert words in answer["error"]["message"]

    response = await client.get("/v1/admin/disputes?state=closed", headers=bearer(publisher))
    assert_error(response.status, await response.json(), 400)
    response = await client.get("/v1/admin/disputes?state=open", headers=bearer(publisher))
    assert [d["entry"] for d in (await response.json())["disputes"]] == [first]

    unknown = cli(home, "dispute", "dismiss", "e-00000000000000000000000000")
    assert unknown.exit_code == 1
    assert "no entry e-00000000000000000000000000" in unknown.output
    undecodable = cli(home, "dispute", "dismiss", first, "--note", "bad \udcff byte")
    assert undecodable.exit_code == 1
    assert "a note must be UTF-8 text" in undecodable.output
    wrong_state = cli(home, "dispute", "list", "--state", "closed")
    assert wrong_state.exit_code == 2

    assert disputes(home) == before
    assert count_rows(home, "actions") == actions
    with opened(home) as hub:
        assert hub.entries.show(first).retracted is None


async def test_dispute_threshold_in_the_config_goes_into_the_next_root(
    home: Path, client: Client
) -> None:
    with opened(home) as hub:
        assert "dispute_threshold" not in hub.keys.root().to_dict()["policy"]
        assert hub.keys.root().policy.disputes_at == 2
    config = home / "hub.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("dispute_threshold = 0", "dispute_threshold = 3"), encoding="utf-8"
    )
    with opened(home) as hub:
        root = hub.roots.add_term("categories", "fraud")
        assert root.to_dict()["policy"]["dispute_threshold"] == 3
        assert "max_withdrawal_delay" not in root.to_dict()["policy"]

    first, _ = entries_of(home)
    platforms = Platforms(home, client)
    for platform in ("platform-a", "platform-b"):
        await platforms.say(platform, first, Opinion("disputed", "benign"))
    summary = await summary_over_http(client, home, publish(home, 3))
    assert summary.threshold == 3
    assert summary.entries[first].dispute is None, "two of three disputing platforms"
    assert disputes(home) == []

    config.write_text(
        text.replace("dispute_threshold = 0", "dispute_threshold = -1"), encoding="utf-8"
    )
    ran = cli(home, "dispute", "list")
    assert ran.exit_code == 1
    assert "dispute_threshold must be 0 (not set) or at least 1" in ran.output
