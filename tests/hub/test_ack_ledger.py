"""The hub's ack ledger against hostile nodes: evidence, per-hash keys, bounded counters, flags.

Each test runs the real hub over HTTP on loopback (real keys, real SQLite) and
reproduces, at a scale that keeps it fast, one attack of an outside security
review: a replayed evidence ack (D3), per-hash counters for made-up hashes
(D4), counter reset cycles that overflowed SQLite (D5), and one node getting a
listed hash flagged on its own.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from audit.cli import EXIT_INCOMPLETE
from hub.app import create_app
from hub.cli import main as hub_main
from hub.core import ACK_PAGE_BYTES
from hub.intake import Intake
from hub.store import MAX_TOTAL
from hub.web.pages import SECTIONS
from protocol import AppliedVersion, Counts, SigningKey, StateDigest, sign_ack
from tests.audit.support import audit_async, base_url, pin_of
from tests.hub.conftest import (
    LIST,
    NODE_ID,
    Client,
    Follower,
    ack_headers,
    bearer,
    count_rows,
    md5,
    opened,
    pinned,
)
from tests.web.hub_support import OperatorSession

OTHER_NODE = "platform-b"


async def post(client: Client, token: str, data: bytes, sig: bytes) -> tuple[int, Any]:
    response = await client.post("/v1/acks", data=data, headers=ack_headers(token, sig))
    return response.status, json.loads(await response.read())


async def get_json(client: Client, path: str, token: str, **params: str) -> Any:
    response = await client.get(path, params=params, headers=bearer(token))
    assert response.status == 200, await response.text()
    return json.loads(await response.read())


def configure(home: Path, **settings: int) -> None:
    """Change settings in ``hub.toml`` (``init`` wrote every one of them)."""
    path = home / "hub.toml"
    text = path.read_text(encoding="utf-8")
    for name, value in settings.items():
        text, n = re.subn(rf"(?m)^{name} = .*$", f"{name} = {value}", text)
        assert n == 1, name
    path.write_text(text, encoding="utf-8")


@asynccontextmanager
async def serving(home: Path) -> AsyncIterator[Client]:
    app = create_app(home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client


async def unpublished_ack(
    follower: Follower, key: SigningKey, seq: int, *, version: int = 9, hashes: int = 100
) -> tuple[bytes, bytes]:
    """An ack co-signing version ``version`` of ``LIST``, which the hub never published."""
    trusted = await follower.trusted_hub()
    _, trust = follower.lists[LIST]
    per_hash = {f"{i:032x}": {"matched": 1} for i in range(hashes)}
    return sign_ack(
        key=key,
        node=NODE_ID,
        list_id=LIST,
        seq=seq,
        sent=trusted.now,
        origin=trusted.root.origin(LIST),
        applied=AppliedVersion(version, trust.compact.root(), StateDigest(0, "0" * 64)),
        counts=Counts(checked=1, hashes=per_hash),
    )


def actions(home: Path, action: str) -> int:
    with opened(home) as hub:
        return sum(1 for a in hub.reports.actions(1000) if a.action == action)


@pytest.fixture
async def follower(client: Client, hub_home: Path, node_token: str) -> Follower:
    node = Follower(client, pinned(hub_home), node_token)
    await node.update(LIST)
    return node


@pytest.fixture
async def second(client: Client, hub_home: Path) -> tuple[Follower, SigningKey, str]:
    """Another node granted ``LIST``: its follower, key and token."""
    key = SigningKey.generate()
    with opened(hub_home) as hub:
        token = hub.access.enrol_node(OTHER_NODE, key.public, [LIST])
    node = Follower(client, pinned(hub_home), token)
    await node.update(LIST)
    return node, key, token


# -- D3: evidence is stored once, capped per node, paged --------------------------------------


async def test_an_evidence_ack_replayed_20_times_is_stored_once(
    client: Client,
    hub_home: Path,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    role_tokens: dict[str, str],
) -> None:
    data, sig = await unpublished_ack(follower, node_key, 1, hashes=1000)
    answers = [await post(client, node_token, data, sig) for _ in range(20)]
    assert {status for status, _ in answers} == {422}
    messages = {body["error"]["message"] for _, body in answers}
    assert messages == {f"list {LIST} has no published version 9; the ack is kept as evidence #1"}
    assert count_rows(hub_home, "evidence") == 1
    assert actions(hub_home, "evidence") == 1
    page = await get_json(client, "/v1/admin/evidence", role_tokens["auditor"])
    [kept] = page["evidence"]
    assert (kept["id"], kept["kind"], base64.b64decode(kept["bytes"])) == (
        1,
        "unpublished_version",
        data,
    )
    assert (page["next"], page["dropped"]) == (None, {})


async def test_evidence_per_node_is_capped_and_the_cap_is_on_record(
    hub_home: Path, node_key: SigningKey, node_token: str, role_tokens: dict[str, str]
) -> None:
    configure(hub_home, max_evidence_per_node=3)
    async with serving(hub_home) as client:
        follower = Follower(client, pinned(hub_home), node_token)
        await follower.update(LIST)
        bodies = []
        for seq in range(1, 6):  # five different acks of versions never published
            data, sig = await unpublished_ack(follower, node_key, seq, version=10 + seq)
            status, body = await post(client, node_token, data, sig)
            assert status == 422
            bodies.append(body["error"]["message"])
        assert [m.endswith(f"evidence #{i}") for i, m in enumerate(bodies[:3], 1)] == [True] * 3
        assert all(
            f"node {NODE_ID} has reached the cap of 3 evidence items" in m for m in bodies[3:]
        )
        page = await get_json(client, "/v1/admin/evidence", role_tokens["auditor"])
        assert [e["detail"]["version"] for e in page["evidence"]] == [13, 12, 11]
        assert page["cap"] == 3
        assert page["dropped"][NODE_ID]["dropped"] == 2
    assert count_rows(hub_home, "evidence") == 3
    assert actions(hub_home, "evidence") == 3
    assert actions(hub_home, "evidence.cap") == 1  # the first drop is logged, not every one
    out = CliRunner().invoke(hub_main, ["evidence", "--home", str(hub_home)])
    assert out.exit_code == 0, out.output
    assert f"{NODE_ID}: at the cap of 3 evidence items; 2 more not kept" in out.output


async def test_admin_evidence_pages_like_admin_acks(
    client: Client,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    role_tokens: dict[str, str],
) -> None:
    for seq in range(1, 6):
        data, sig = await unpublished_ack(follower, node_key, seq, version=10 + seq)
        assert (await post(client, node_token, data, sig))[0] == 422
    auditor = role_tokens["auditor"]
    seen, params = [], {"limit": "2"}
    while True:
        page = await get_json(client, "/v1/admin/evidence", auditor, **params)
        seen += [e["id"] for e in page["evidence"]]
        if page["next"] is None:
            break
        params = {"limit": "2", "before": str(page["next"])}
    assert seen == [5, 4, 3, 2, 1]
    for bad in ({"before": "0"}, {"limit": "0"}, {"limt": "2"}, {"node": "../x"}):
        response = await client.get("/v1/admin/evidence", params=bad, headers=bearer(auditor))
        assert response.status == 400, bad


async def test_admin_acks_of_1_mib_each_come_in_pages_of_a_few_mib(
    hub_home: Path, node_key: SigningKey, node_token: str, role_tokens: dict[str, str]
) -> None:
    """Ten acks of about 940 KB (10,000 per-hash entries): no page holds all of them."""
    listed = [md5(f"listed-{i}") for i in range(10_000)]
    with opened(hub_home) as hub:
        hub.lists.stage(LIST, adds=[Intake(h) for h in listed])
        hub.publishing.publish([LIST])
    async with serving(hub_home) as client:
        follower = Follower(client, pinned(hub_home), node_token)
        await follower.update(LIST)
        sizes = []
        for seq in range(1, 11):
            every = dict.fromkeys(("matched", "actioned", "blocked", "false_positive"), seq)
            hashes = {h.hex(): every for h in listed}
            data, sig = await follower.ack(node_key, LIST, seq, counts=Counts(hashes=hashes))
            sizes.append(len(data))
            assert (await post(client, node_token, data, sig))[0] == 200
        assert min(sizes) > 900_000
        auditor = role_tokens["auditor"]
        pages, seen, params = [], [], {"limit": "1000"}
        while True:
            response = await client.get("/v1/admin/acks", params=params, headers=bearer(auditor))
            body = await response.read()
            page = json.loads(body)
            pages.append((len(page["acks"]), len(body)))
            seen += [a["seq"] for a in page["acks"]]
            if page["next"] is None:
                break
            params = {"limit": "1000", "before": str(page["next"])}
    assert seen == list(range(10, 0, -1))
    assert len(pages) >= 2
    assert all(n * min(sizes) <= ACK_PAGE_BYTES + max(sizes) for n, _ in pages)
    assert max(size for _, size in pages) < 2 * ACK_PAGE_BYTES


async def test_the_auditor_reports_an_answer_over_its_cap_as_a_finding(
    client: Client,
    hub_home: Path,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    role_tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The review's crash: an evidence answer over the auditor's cap was an uncaught error."""
    data, sig = await unpublished_ack(follower, node_key, 1, hashes=1000)
    assert (await post(client, node_token, data, sig))[0] == 422
    monkeypatch.setattr("audit.acks._API_CAP", 64 * 1024)  # the ~40 KB ack, base64, is over
    out = await audit_async(
        "acks",
        base_url(client),
        "--root-sha256",
        pin_of(hub_home),
        "--json",
        "--token",
        role_tokens["auditor"],
    )
    assert out.code == EXIT_INCOMPLETE, out.stdout + out.stderr
    findings = out.json()["acks"]["findings"]
    unreadable = [f for f in findings if f["rule"] == "Unreadable"]
    assert [f["file"] for f in unreadable] == ["v1/admin/evidence?limit=1000"]
    assert "cap" in unreadable[0]["message"]


# -- D4: per-hash keys must be hashes the list held ------------------------------------------


async def test_made_up_per_hash_keys_are_refused_with_422_and_nothing_is_stored(
    client: Client,
    hub_home: Path,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    role_tokens: dict[str, str],
) -> None:
    short = {f"{i:016x}": {"matched": 1} for i in range(1000)}  # 16 hex digits: not md5
    data, sig = await follower.ack(node_key, LIST, 1, counts=Counts(checked=1, hashes=short))
    status, body = await post(client, node_token, data, sig)
    assert status == 422
    assert body["error"]["code"] == "unprocessable"
    assert body["error"]["message"] == (
        f"ack refused: per-hash key {0:016x} is not a md5 hash (32 hex digits) of list {LIST}; "
        "1000 of 1000 keys are of another width"
    )
    made_up = {f"{i:032x}": {"matched": 1} for i in range(999)}
    made_up[md5(1).hex()] = {"matched": 1}  # one listed hash does not carry the rest
    data, sig = await follower.ack(node_key, LIST, 1, counts=Counts(checked=1, hashes=made_up))
    status, body = await post(client, node_token, data, sig)
    assert status == 422
    assert body["error"]["message"] == (
        f"ack refused: per-hash key {0:032x} is not a hash list {LIST} held at or before "
        "version 2 (999 of 1000 keys are not); per-hash counters are for listed hashes only"
    )
    assert (count_rows(hub_home, "acks"), count_rows(hub_home, "counters")) == (0, 0)
    assert count_rows(hub_home, "evidence") == 0
    counts = await get_json(client, f"/v1/admin/lists/{LIST}/counts", role_tokens["viewer"])
    assert (counts["hashes"], counts["withheld"], counts["flagged"]) == ({}, {}, [])
    assert [(p["platform"], p["counts"]) for p in counts["platforms"]] == [(NODE_ID, {})]
    # The same node's honest ack, with seq 1 still free, is taken.
    data, sig = await follower.ack(
        node_key, LIST, 1, counts=Counts(checked=3, hashes={md5(1).hex(): {"matched": 2}})
    )
    assert (await post(client, node_token, data, sig))[0] == 200


async def test_a_hash_retracted_before_the_acked_version_still_takes_its_counts(
    client: Client, follower: Follower, node_key: SigningKey, node_token: str
) -> None:
    """md5(0) was listed at v1 and retracted at v2: its false positives still count at v2."""
    hashes = {md5(0).hex(): {"matched": 4, "false_positive": 4}}
    data, sig = await follower.ack(node_key, LIST, 1, counts=Counts(hashes=hashes))
    assert (await post(client, node_token, data, sig))[0] == 200


async def test_status_counts_and_the_dashboard_read_aggregates_not_stored_acks(
    client: Client,
    hub_home: Path,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    role_tokens: dict[str, str],
    second: tuple[Follower, SigningKey, str],
) -> None:
    """Ten acks of every listed hash from two nodes; then the stored acks are made unreadable.

    Status, counts and the dashboard's chart come from the maintained tables, so
    they answer the same sums without parsing a single stored ack.
    """
    listed = [md5(i).hex() for i in range(1, 5)] + [md5("late").hex()]
    for seq in range(1, 11):
        hashes = {h: {"matched": seq, "actioned": seq} for h in listed}
        counts = Counts(checked=10 * seq, matched=5 * seq, actioned=5 * seq, hashes=hashes)
        data, sig = await follower.ack(node_key, LIST, seq, counts=counts)
        assert (await post(client, node_token, data, sig))[0] == 200
    other, key_b, token_b = second
    data, sig = await other.ack(
        key_b, LIST, 1, node=OTHER_NODE, counts=Counts(checked=7, matched=1, blocked=1)
    )
    assert (await post(client, token_b, data, sig))[0] == 200
    conn = sqlite3.connect(hub_home / "hub.db", isolation_level=None)
    try:
        conn.execute("UPDATE acks SET counts = 'not json'")
    finally:
        conn.close()
    status = await get_json(client, "/v1/admin/status", role_tokens["viewer"])
    [entry] = [e for e in status["lists"] if e["id"] == LIST]
    assert entry["totals"] == {
        "checked": 107,
        "matched": 51,
        "actioned": 50,
        "blocked": 1,
        "false_positive": 0,
    }
    nodes = {n["node"]: n for n in entry["nodes"]}
    assert nodes[NODE_ID]["counts"]["checked"] == 100
    assert nodes[NODE_ID]["withheld"] == {}
    counts = await get_json(client, f"/v1/admin/lists/{LIST}/counts", role_tokens["viewer"])
    assert counts["hashes"] == {h: {"matched": 10, "actioned": 10} for h in listed}
    await OperatorSession.login(client, role_tokens["viewer"])
    page = await client.get("/dashboard/counts")
    assert page.status == 200
    html = await page.text()
    assert re.search(rf'<span class="mono">{LIST}</span>: 51</li>', html), "actioned + blocked"


# -- D5: bounded counters ---------------------------------------------------------------------


async def test_reset_cycles_cannot_overflow_and_every_view_still_answers(
    client: Client,
    hub_home: Path,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    role_tokens: dict[str, str],
    second: tuple[Follower, SigningKey, str],
) -> None:
    """20 reset cycles (2^53-1 then 0), then another node's honest matched=1 on the hash."""
    target = md5(1).hex()
    seq = 0
    for _ in range(20):
        for value in (MAX_TOTAL, 0):
            seq += 1
            counts = Counts(checked=value, matched=value, hashes={target: {"matched": value}})
            data, sig = await follower.ack(node_key, LIST, seq, counts=counts)
            status, body = await post(client, node_token, data, sig)
            assert status == 200, body
    other, key_b, token_b = second
    data, sig = await other.ack(
        key_b,
        LIST,
        1,
        node=OTHER_NODE,
        counts=Counts(checked=5, matched=1, hashes={target: {"matched": 1}}),
    )
    assert (await post(client, token_b, data, sig))[0] == 200

    status = await get_json(client, "/v1/admin/status", role_tokens["viewer"])
    [entry] = [e for e in status["lists"] if e["id"] == LIST]
    nodes = {n["node"]: n for n in entry["nodes"]}
    # Every jump of 2^53-1 was withheld (not counted); the honest node's counts stand.
    assert nodes[NODE_ID]["counts"]["checked"] == 0
    assert nodes[NODE_ID]["withheld"] == {"checked": MAX_TOTAL, "matched": MAX_TOTAL}
    assert nodes[OTHER_NODE]["counts"] == {
        "checked": 5,
        "matched": 1,
        "actioned": 0,
        "blocked": 0,
        "false_positive": 0,
    }
    assert (entry["totals"]["checked"], entry["totals"]["matched"]) == (5, 1)
    counts = await get_json(client, f"/v1/admin/lists/{LIST}/counts", role_tokens["viewer"])
    # The per-hash jumps were withheld too: the honest node's match is what counts.
    assert counts["hashes"][target]["matched"] == 1
    assert counts["withheld"][target]["matched"] == MAX_TOTAL  # bounded, not an overflow
    assert counts["flagged"] == []
    page = await get_json(client, "/v1/admin/evidence", role_tokens["auditor"])
    withheld = [e for e in page["evidence"] if e["kind"] == "withheld_counts"]
    assert len(withheld) == 20  # one per jump, each naming the ack it came in
    assert withheld[-1]["detail"]["withheld"] == {"checked": MAX_TOTAL, "matched": MAX_TOTAL}
    assert withheld[-1]["detail"]["withheld_hashes"] == {target: {"matched": MAX_TOTAL}}
    await OperatorSession.login(client, role_tokens["viewer"])
    for path in ("/dashboard", *(f"/dashboard/{name}" for name, _ in SECTIONS)):
        assert (await client.get(path)).status == 200, path
    out = CliRunner().invoke(hub_main, ["status", "--home", str(hub_home)])
    assert out.exit_code == 0, out.output
    assert "withheld as implausible jumps (not counted)" in out.output


async def test_growth_within_the_window_cap_counts_and_past_it_is_withheld(
    hub_home: Path, node_key: SigningKey, node_token: str, role_tokens: dict[str, str]
) -> None:
    configure(hub_home, max_counter_growth=100)
    async with serving(hub_home) as client:
        follower = Follower(client, pinned(hub_home), node_token)
        await follower.update(LIST)
        for seq, checked in enumerate([60, 100, 1_000_000, 1_000_040], start=1):
            data, sig = await follower.ack(node_key, LIST, seq, counts=Counts(checked=checked))
            assert (await post(client, node_token, data, sig))[0] == 200
        status = await get_json(client, "/v1/admin/status", role_tokens["viewer"])
    [entry] = [e for e in status["lists"] if e["id"] == LIST]
    [node] = entry["nodes"]
    # 60 + 40 = 100 counted, the window's cap; the jump of 999,900 is withheld; +40 is
    # over the cap too in the same hour.
    assert node["counts"]["checked"] == 100
    assert node["withheld"] == {"checked": 999_900 + 40}


def test_a_database_overflowed_before_the_fix_is_repaired_when_opened(hub_home: Path) -> None:
    """A hub poisoned by reset cycles (last + offset past 2^63) opens and answers status."""
    with opened(hub_home) as hub:
        hub.access.enrol_node(NODE_ID, SigningKey.generate().public, [LIST])
    conn = sqlite3.connect(hub_home / "hub.db", isolation_level=None)
    try:
        conn.executescript(
            """
            DROP TABLE counters; DROP TABLE counter_totals; DROP TABLE count_points;
            DROP TABLE evidence_dropped; DROP INDEX entries_hash; DROP INDEX evidence_node;
            ALTER TABLE evidence DROP COLUMN sha256;
            DELETE FROM _sqlite_migrations WHERE name = 'm003_ack_ledger';
            CREATE TABLE counters (
                node TEXT NOT NULL, list_id TEXT NOT NULL, hash TEXT NOT NULL DEFAULT '',
                name TEXT NOT NULL, last INTEGER NOT NULL, offset INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (node, list_id, hash, name)
            );
            """
        )
        big = 2**63 - 1
        conn.executemany(
            "INSERT INTO counters VALUES (?, ?, ?, ?, ?, ?)",
            [
                (NODE_ID, LIST, "", "checked", 3, big),
                (NODE_ID, LIST, md5(1).hex(), "matched", 0, big),
                ("platform-b", LIST, md5(1).hex(), "matched", 1, 0),
            ],
        )
        with pytest.raises(sqlite3.OperationalError, match="integer overflow"):
            conn.execute("SELECT sum(last + offset) FROM counters WHERE hash != ''").fetchall()
    finally:
        conn.close()
    with opened(hub_home) as hub:
        [entry] = [e for e in hub.reports.status().lists if e.id == LIST]
        assert entry.totals["checked"] == MAX_TOTAL
        assert hub.ledger.hash_counts(LIST)[md5(1).hex()]["matched"] == MAX_TOTAL


# -- flagging needs several nodes -------------------------------------------------------------


async def test_one_node_alone_cannot_get_a_listed_hash_flagged(
    client: Client,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    role_tokens: dict[str, str],
    second: tuple[Follower, SigningKey, str],
) -> None:
    target = md5(2).hex()
    alone = Counts(
        matched=3, false_positive=3, hashes={target: {"matched": 3, "false_positive": 3}}
    )
    data, sig = await follower.ack(node_key, LIST, 1, counts=alone)
    assert (await post(client, node_token, data, sig))[0] == 200
    viewer = role_tokens["viewer"]
    counts = await get_json(client, f"/v1/admin/lists/{LIST}/counts", viewer)
    assert counts["hashes"][target] == {"matched": 3, "false_positive": 3}
    assert counts["flagged"] == []

    other, key_b, token_b = second
    # One more report from another node is not enough while the first node's numbers
    # alone make the rule: without them, one false positive is left.
    also = Counts(matched=1, false_positive=1, hashes={target: {"matched": 1, "false_positive": 1}})
    data, sig = await other.ack(key_b, LIST, 1, node=OTHER_NODE, counts=also)
    assert (await post(client, token_b, data, sig))[0] == 200
    counts = await get_json(client, f"/v1/admin/lists/{LIST}/counts", viewer)
    assert counts["hashes"][target] == {"matched": 4, "false_positive": 4}
    assert counts["flagged"] == []
    # The second node sees the same on its own: now either node's reports flag it.
    also = Counts(matched=3, false_positive=3, hashes={target: {"matched": 3, "false_positive": 3}})
    data, sig = await other.ack(key_b, LIST, 2, node=OTHER_NODE, counts=also)
    assert (await post(client, token_b, data, sig))[0] == 200
    counts = await get_json(client, f"/v1/admin/lists/{LIST}/counts", viewer)
    assert counts["flagged"] == [
        {
            "hash": target,
            "counts": {"matched": 6, "false_positive": 6},
            "reasons": ["false positives"],
            "nodes": {"matched": 2, "false_positive": 2},
        }
    ]
    status = await get_json(client, "/v1/admin/status", viewer)
    [entry] = [e for e in status["lists"] if e["id"] == LIST]
    assert [f["nodes"]["false_positive"] for f in entry["flagged"]] == [2]
    await OperatorSession.login(client, viewer)
    html = await (await client.get("/dashboard/counts")).text()
    assert "false positives (2 nodes reported)" in html


async def test_one_node_inflating_a_hash_an_honest_node_matched_cannot_get_it_flagged(
    client: Client,
    follower: Follower,
    node_key: SigningKey,
    node_token: str,
    role_tokens: dict[str, str],
    second: tuple[Follower, SigningKey, str],
) -> None:
    """Two nodes report the hash, but one node's numbers alone make it stand out: no flag."""
    target, quiet = md5(3).hex(), [md5(i).hex() for i in (0, 1)]
    other, key_b, token_b = second
    honest = Counts(matched=3, hashes={h: {"matched": 1} for h in [target, *quiet]})
    data, sig = await other.ack(key_b, LIST, 1, node=OTHER_NODE, counts=honest)
    assert (await post(client, token_b, data, sig))[0] == 200
    inflated = Counts(matched=1_000_000, hashes={target: {"matched": 1_000_000}})
    data, sig = await follower.ack(node_key, LIST, 1, counts=inflated)
    assert (await post(client, node_token, data, sig))[0] == 200
    viewer = role_tokens["viewer"]
    counts = await get_json(client, f"/v1/admin/lists/{LIST}/counts", viewer)
    assert counts["hashes"][target]["matched"] == 1_000_001
    assert counts["flagged"] == []
    # Matches that many nodes see do flag it: each of two nodes 60 on its own.
    data, sig = await other.ack(
        key_b, LIST, 2, node=OTHER_NODE, counts=Counts(matched=62, hashes={target: {"matched": 60}})
    )
    assert (await post(client, token_b, data, sig))[0] == 200
    counts = await get_json(client, f"/v1/admin/lists/{LIST}/counts", viewer)
    assert [(f["hash"], f["reasons"], f["nodes"]["matched"]) for f in counts["flagged"]] == [
        (target, ["matches far above the list's median"], 2)
    ]


async def test_a_per_hash_jump_past_the_window_cap_is_withheld_and_named(
    hub_home: Path, node_key: SigningKey, node_token: str, role_tokens: dict[str, str]
) -> None:
    configure(hub_home, max_counter_growth=100)
    target = md5(1).hex()
    async with serving(hub_home) as client:
        follower = Follower(client, pinned(hub_home), node_token)
        await follower.update(LIST)
        for seq, matched in enumerate([60, 100, 1_000_000], start=1):
            counts = Counts(matched=min(matched, 100), hashes={target: {"matched": matched}})
            data, sig = await follower.ack(node_key, LIST, seq, counts=counts)
            assert (await post(client, node_token, data, sig))[0] == 200
        answer = await get_json(client, f"/v1/admin/lists/{LIST}/counts", role_tokens["viewer"])
        evidence = await get_json(client, "/v1/admin/evidence", role_tokens["auditor"])
    assert answer["hashes"][target] == {"matched": 100}
    assert answer["withheld"] == {target: {"matched": 999_900}}
    [kept] = [e for e in evidence["evidence"] if e["kind"] == "withheld_counts"]
    assert kept["detail"]["withheld"] == {}
    assert kept["detail"]["withheld_hashes"] == {target: {"matched": 999_900}}
