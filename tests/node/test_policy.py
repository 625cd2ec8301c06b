"""The platform's own policy at the node (``node.policy``), end to end.

Real lists (``tests.node.entries_hub``'s published entries list, and the real hub
of ``tests.node.conftest`` for a perceptual list), the real node with its API on
loopback and its clock injected, real SQLite; the policy is changed with the
``hashhub-node policy`` commands, as a reviewer would, and read back from the
answers, the recorded events, ``policy show`` and ``status``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from node.api.keys import NODE
from node.cli import main
from node.policy import MAX_WHY, QuarantineRule, Target
from node.service import Node
from protocol import format_time
from tests.node.conftest import PDQ_LIST, HubServer, original_pdq, sync
from tests.node.entries_hub import EntriesHub, md5, record
from tests.node.fixtures_sync import Clock, sync_once
from tests.node.test_entries import LIST, api_client, make_node, match, recent

POLICY_TABLES = (
    "policy_exemptions",
    "policy_distances",
    "policy_holds",
    "policy_decisions",
    "policy_counters",
)


@pytest.fixture
async def hub() -> AsyncIterator[EntriesHub]:
    published = await EntriesHub(Clock()).start()
    try:
        yield published
    finally:
        await published.close()


async def cli(home: Path, *args: str) -> Result:
    """``hashhub-node ARGS --home HOME``, off the event loop (it opens the store)."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, main, [*args, "--home", str(home)])


async def cli_ok(home: Path, *args: str) -> str:
    result = await cli(home, *args)
    assert result.exit_code == 0, result.output
    return result.output


async def shown(home: Path) -> dict[str, Any]:
    return dict(json.loads(await cli_ok(home, "policy", "show", "--json")))


def policy_rows(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(home / "node.db")
    try:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}")) for t in POLICY_TABLES}
    finally:
        conn.close()


async def listed_home(hub: EntriesHub, tmp_path: Path, **settings: Any) -> Path:
    """A node home following ``LIST`` with entries ``a``, ``b`` and ``c``, synced."""
    t = hub.clock()
    hub.publish(LIST, adds=[record(x, t) for x in ("a", "b", "c")])
    home = tmp_path / "node"
    node = make_node(home, hub, **settings)
    try:
        await sync_once(node)
    finally:
        node.close()
    return home


def by_hash(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["hash"]: m for m in found}


# -- the allowlist ---------------------------------------------------------------------------


async def test_an_allowlisted_hash_is_answered_allowed_and_recorded_kept(
    hub: EntriesHub, tmp_path: Path
) -> None:
    home = await listed_home(hub, tmp_path)
    await cli_ok(
        home, "policy", "allow", "--hash", f"md5:{md5('a').hex()}",
        "--by", "rev-1", "--why", "our own logo, reviewed",
    )  # fmt: skip
    async with api_client(home, hub) as (client, _):
        found = by_hash(await match(client, home, "a", "b"))
        allowed, blocked = found[md5("a").hex()], found[md5("b").hex()]
        assert allowed["decision"] == "allowed"
        assert allowed["decision_reason"] == {
            "reason": "allowlist",
            "by": "rev-1",
            "why": "our own logo, reviewed",
            "since": allowed["decision_reason"]["since"],
            "until": None,
        }
        assert (blocked["decision"], blocked["decision_reason"]) == ("block", None)
        events = {e["match_id"]: e for e in await recent(client, home)}
        kept = events[allowed["match_id"]]
        assert (kept["outcome"], kept["decision"], kept["reason"]) == (
            "kept",
            "allowed",
            "allowlist",
        )
        open_event = events[blocked["match_id"]]
        assert (open_event["outcome"], open_event["decision"], open_event["reason"]) == (
            None,
            "block",
            None,
        )
    counters = (await shown(home))["counters"]
    assert counters == {"block": 1, "allowed": 1, "disabled": 0, "held": 0}
    status = json.loads(await cli_ok(home, "status", "--json"))
    assert status["policy"] == counters
    assert "decisions: block 1, allowed 1, disabled 0, held 0" in await cli_ok(home, "status")


async def test_an_allowlisted_entry_is_allowed_until_it_is_taken_off(
    hub: EntriesHub, tmp_path: Path
) -> None:
    home = await listed_home(hub, tmp_path)
    await cli_ok(home, "policy", "allow", "--entry", "e-b", "--by", "rev-2", "--why", "parody")
    async with api_client(home, hub) as (client, _):
        (found,) = await match(client, home, "b")
        assert (found["entry"], found["decision"]) == ("e-b", "allowed")
        assert found["decision_reason"]["why"] == "parody"
        await cli_ok(home, "policy", "unallow", "--entry", "e-b")
        # The daemon reads the policy at each match: the change holds at once.
        (again,) = await match(client, home, "b")
        assert again["decision"] == "block"
    assert (await shown(home))["allowlist"] == []


async def test_the_match_command_and_a_dry_run_say_the_decision(
    hub: EntriesHub, tmp_path: Path
) -> None:
    home = await listed_home(hub, tmp_path)
    await cli_ok(home, "policy", "allow", "--entry", "e-a", "--by", "rev", "--why", "checked")
    line = await cli_ok(home, "match", md5("a").hex())
    assert "  ALLOWED (allowlist: checked)" in line
    answer = json.loads(await cli_ok(home, "match", "--dry-run", "--json", md5("a").hex()))
    (found,) = answer[md5("a").hex()]
    assert (found["match_id"], found["decision"]) == (None, "allowed")
    # The look counted nothing; the recorded match did.
    assert (await shown(home))["counters"]["allowed"] == 1


async def test_a_retroactive_match_is_decided_too(hub: EntriesHub, tmp_path: Path) -> None:
    home = await listed_home(hub, tmp_path, webhook_url="http://127.0.0.1:9/hook")
    await cli_ok(home, "policy", "allow", "--entry", "e-hosted", "--by", "rev", "--why", "ours")
    node = Node.open(home, now=hub.clock)
    try:
        node.registry.register("post-1", {"md5": [md5("hosted"), md5("other")]})
        hub.publish(LIST, adds=[record("hosted", hub.clock()), record("other", hub.clock())])
        await sync_once(node)
        bodies = {
            json.loads(bytes(r["body"]))["hash"]: json.loads(bytes(r["body"]))
            for r in node.store.db.query("SELECT body FROM webhook_outbox")
        }
        allowed = bodies[md5("hosted").hex()]
        assert allowed["decision"] == "allowed"
        assert allowed["decision_reason"]["reason"] == "allowlist"
        assert "decision" not in bodies[md5("other").hex()]  # a block keeps the v1 body
        event = node.store.matches.event(allowed["match_id"])
        assert event is not None
        assert event["outcome"] == "kept"
    finally:
        node.close()


# -- disabling an entry until a time -----------------------------------------------------------


async def test_a_disabled_entry_blocks_again_by_itself_at_its_time(
    hub: EntriesHub, tmp_path: Path
) -> None:
    home = await listed_home(hub, tmp_path)
    until = format_time(hub.clock() + timedelta(hours=1))
    output = await cli_ok(
        home, "policy", "disable", "--entry", "e-c", "--until", until,
        "--by", "rev-3", "--why", "appeal pending",
    )  # fmt: skip
    assert f"until {until}" in output
    async with api_client(home, hub) as (client, _):
        (found,) = await match(client, home, "c")
        assert found["decision"] == "disabled"
        assert found["decision_reason"]["until"] == until
        (event,) = [e for e in await recent(client, home) if e["match_id"] == found["match_id"]]
        assert (event["outcome"], event["reason"]) == ("kept", "disabled")

        hub.clock.advance(3600 - 1)  # one second before: still disabled
        assert (await match(client, home, "c"))[0]["decision"] == "disabled"
        hub.clock.advance(1)  # the node's clock reaches --until: it blocks, with no command
        (after,) = await match(client, home, "c")
        assert (after["decision"], after["decision_reason"]) == ("block", None)
    (disable,) = (await shown(home))["disabled"]
    assert (disable["target"], disable["until"]) == ("entry:e-c", until)


# -- stricter distances ---------------------------------------------------------------------


def flipped(h: bytes, bits: int) -> bytes:
    """``h`` with its first ``bits`` bits flipped: at distance ``bits``."""
    value = int.from_bytes(h) ^ (((1 << bits) - 1) << (len(h) * 8 - bits))
    return value.to_bytes(len(h))


async def test_a_list_is_made_stricter_never_looser(
    hub_server: HubServer, node_home: Path, node: Node
) -> None:
    before_sync = await cli(node_home, "policy", "distance", PDQ_LIST, "5", "--by", "rev")
    assert before_sync.exit_code == 1
    assert "not declared by the hub's root" in before_sync.output
    await sync(node)
    root = node.newest_root()
    assert root is not None
    signed = root.lists[PDQ_LIST].max_distance
    assert signed > 12

    looser = await cli(node_home, "policy", "distance", PDQ_LIST, str(signed + 1), "--by", "rev")
    assert looser.exit_code == 1
    assert (
        f"only a stricter distance may be set, from 0 to the list's signed max_distance {signed}"
        in looser.output
    )
    assert (await shown(node_home))["distances"] == []

    near = flipped(original_pdq(), 10)
    assert [m.distance for m in node.matching.look({"pdq": [near]})] == [10]
    await cli_ok(node_home, "policy", "distance", PDQ_LIST, "8", "--by", "rev")
    assert node.matching.look({"pdq": [near]}) == []
    assert node.matching.match_hashes({"pdq": [near]}) == []
    closer = node.matching.match_hashes({"pdq": [flipped(original_pdq(), 8)]})
    assert [m.distance for m in closer] == [8]
    assert node.hub().matching.stricter(root.lists[PDQ_LIST]).max_distance == 8

    await cli_ok(node_home, "policy", "distance", PDQ_LIST, "--reset")
    assert [m.distance for m in node.matching.look({"pdq": [near]})] == [10]


# -- quarantine -------------------------------------------------------------------------------


def test_the_quarantine_rule_weighs_the_hour_against_the_week() -> None:
    rule = QuarantineRule(matches_per_hour=100, factor=10)
    assert not rule.exceeded(100, 0)  # not more than N
    assert rule.exceeded(101, 0)  # no history: past N is a surge
    assert rule.exceeded(101, 168 * 10 - 1)  # an average just under 10 an hour
    assert not rule.exceeded(101, 168 * 11)  # usual for this hash: 11 an hour, 101 < 110
    assert not QuarantineRule(matches_per_hour=0).exceeded(10**6, 0)


async def test_a_surge_is_held_until_a_reviewer_releases_it(
    hub: EntriesHub, tmp_path: Path
) -> None:
    home = await listed_home(hub, tmp_path, quarantine_matches_per_hour=3, quarantine_factor=10.0)
    async with api_client(home, hub) as (client, app):
        decisions = []
        for _ in range(5):
            (found,) = await match(client, home, "a")
            decisions.append(found["decision"])
            hub.clock.advance(60)
        assert decisions == ["block", "block", "block", "held", "held"]
        assert found["decision_reason"]["reason"] == "quarantine"
        assert found["decision_reason"]["why"].startswith("4 matches in an hour")
        events = [e for e in await recent(client, home) if e["entry"] == "e-a"]
        assert [(e["outcome"], e["reason"]) for e in events[:2]] == [("kept", "quarantine")] * 2
        (other,) = await match(client, home, "b")  # only that hash is held
        assert other["decision"] == "block"

        (hold,) = (await shown(home))["holds"]
        assert (hold["entry"], hold["last_hour"], hold["released_at"]) == ("e-a", 4, None)
        # Released (by the node's clock, which the hour is counted by): it blocks again,
        # and the hour is counted from the release.
        assert app[NODE].matching.policy.release(Target.of_entry("e-a"), "rev-4") == 1
        assert [(await match(client, home, "a"))[0]["decision"] for _ in range(3)] == ["block"] * 3
        assert (await match(client, home, "a"))[0]["decision"] == "held"  # a new surge
        await cli_ok(
            home, "policy", "confirm", "--hash", f"md5:{md5('a').hex()}",
            "--by", "rev-4", "--why", "a meme, not the listed item",
        )  # fmt: skip
        assert (await match(client, home, "a"))[0]["decision"] == "allowed"
    state = await shown(home)
    assert state["counters"] == {"block": 7, "allowed": 1, "disabled": 0, "held": 3}
    assert [r["target"] for r in state["allowlist"]] == [f"hash:md5:{md5('a').hex()}"]
    assert (await cli(home, "policy", "release", "--entry", "e-a", "--by", "x")).exit_code == 1


async def test_the_release_command_ends_a_hold(hub: EntriesHub, tmp_path: Path) -> None:
    home = await listed_home(hub, tmp_path, quarantine_matches_per_hour=1)
    async with api_client(home, hub) as (client, _):
        assert [(await match(client, home, "b"))[0]["decision"] for _ in range(2)] == [
            "block",
            "held",
        ]
    output = await cli_ok(
        home, "policy", "release", "--hash", f"md5:{md5('b').hex()}", "--by", "rev-5"
    )
    assert output == f"released 1 hold(s) of hash:md5:{md5('b').hex()}\n"
    (hold,) = (await shown(home))["holds"]
    assert (hold["entry"], hold["released_by"]) == ("e-b", "rev-5")
    assert "released" in await cli_ok(home, "policy", "show")


# -- the policy outlives a restart ----------------------------------------------------------


async def test_a_restart_keeps_the_policy(hub: EntriesHub, tmp_path: Path) -> None:
    home = await listed_home(hub, tmp_path)
    until = format_time(hub.clock() + timedelta(days=2))
    await cli_ok(home, "policy", "allow", "--entry", "e-a", "--by", "r", "--why", "w")
    await cli_ok(
        home, "policy", "disable", "--entry", "e-b", "--until", until, "--by", "r", "--why", "w"
    )
    async with api_client(home, hub) as (client, _):
        first = [m["decision"] for m in await match(client, home, "a", "b", "c")]
    async with api_client(home, hub) as (client, app):
        assert app[NODE].matching.policy.counters()["allowed"] == 1
        again = [m["decision"] for m in await match(client, home, "a", "b", "c")]
    assert first == again == ["allowed", "disabled", "block"]


# -- bad input changes nothing ----------------------------------------------------------------

BY_WHY = ("--by", "rev", "--why", "reviewed")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("allow", "--entry", "Bad ID!", *BY_WHY), "an entry id matches"),
        (("allow", "--entry", "e-" + "x" * 70, *BY_WHY), "an entry id matches"),
        (("allow", "--hash", "md5:" + "zz" * 16, *BY_WHY), "a md5 hash is 32 hex digits"),
        (("allow", "--hash", "md5:abcd", *BY_WHY), "a md5 hash is 32 hex digits"),
        (("allow", "--hash", "crc32:abcd", *BY_WHY), "not TYPE:HEX"),
        (("allow", "--entry", "e-a", "--by", "rev", "--why", "w" * (MAX_WHY + 1)), "at most 500"),
        (("allow", "--entry", "e-a", "--by", "rev", "--why", "bad \udcff bytes"), "not UTF-8"),
        (("allow", "--entry", "e-a", "--by", "rev\x1b[2J", "--why", "w"), "control characters"),
        (("allow", "--entry", "e-a", "--by", " ", "--why", "w"), "--by is empty"),
        (("disable", "--entry", "e-a", "--until", "tomorrow", *BY_WHY), "not a time"),
        (("disable", "--entry", "e-a", "--until", "2001-01-01T00:00:00Z", *BY_WHY), "not after"),
        (("unallow", "--entry", "e-never"), "not on the allowlist"),
        (("distance", LIST, "1", "--by", "rev"), "only a stricter distance"),
        (("distance", "no-such-list", "0", "--by", "rev"), "not declared"),
        (("release", "--hash", "md5:" + "00" * 16, "--by", "rev"), "is not held"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    hub: EntriesHub, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    home = await listed_home(hub, tmp_path)
    await cli_ok(home, "policy", "allow", "--entry", "e-c", "--by", "rev", "--why", "kept one")
    before = policy_rows(home)
    result = await cli(home, "policy", *args)
    assert result.exit_code == 1, result.output
    assert says in result.output
    assert "Traceback" not in result.output
    assert policy_rows(home) == before


async def test_a_target_is_one_of_hash_or_entry(hub: EntriesHub, tmp_path: Path) -> None:
    home = await listed_home(hub, tmp_path)
    both = await cli(
        home, "policy", "allow", "--hash", f"md5:{md5('a').hex()}", "--entry", "e-a", *BY_WHY
    )
    neither = await cli(home, "policy", "allow", *BY_WHY)
    assert (both.exit_code, neither.exit_code) == (2, 2)
    assert policy_rows(home)["policy_exemptions"] == []


async def test_a_retroactive_match_keeps_to_the_stricter_distance(
    hub_server: HubServer, node_home: Path, node: Node
) -> None:
    await sync(node)
    await cli_ok(node_home, "policy", "distance", PDQ_LIST, "8", "--by", "rev")
    listed = hashlib.sha256(b"listed later").digest()
    node.registry.register("near", {"pdq": [flipped(listed, 6)]})
    node.registry.register("far", {"pdq": [flipped(listed, 10)]})
    await hub_server.publish(PDQ_LIST, adds=[listed])
    await sync(node)
    events = [e for e in node.matching.recent_matches() if e["source"] == "registry"]
    assert [(e["content_id"], e["distance"], e["decision"]) for e in events] == [
        ("near", 6, "block")
    ]
