"""Reviewing from the command line: ``outcome``, ``matches`` and ``evidence``.

Each command runs through click against a node home synced from the real hub on
loopback, and the test reads the store itself: an outcome is recorded and counted
once, by the same rules (and with the same messages) as
``POST /v1/matches/{id}/outcome``; every refusal (an unknown or hostile id, an
outcome that is none of the four, a second, different outcome) changes nothing;
``matches`` and ``evidence`` only read, and print text from outside (content ids,
messages quoting published data) escaped, one row per line.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import Result

from edge.clock import utcnow
from node.app import create_app
from node.cli import EXIT_CONFLICT
from node.config import read_secret
from node.store import NodeStore
from protocol import checkpoint_path
from tests.node.conftest import MD5_LIST, ORIGINAL, PDQ_LIST, HubServer, init_node_home, md5
from tests.node.hostile import HostileServer, Status, Tamper, flip_byte
from tests.node.test_cli import SCRIPT, init_with, invoke, invoke_now, mistake, ok

OUTCOME_NAMES = "actioned, blocked, false_positive, kept"


def stored(home: Path) -> dict[str, Any]:
    """Everything an outcome could change: the events with their outcomes, the counters."""
    conn = sqlite3.connect(home / "node.db")
    try:
        return {
            "events": conn.execute(
                "SELECT id, outcome, outcome_at FROM match_events ORDER BY id"
            ).fetchall(),
            "counters": conn.execute("SELECT * FROM counters ORDER BY 1, 2, 3").fetchall(),
            "content": conn.execute("SELECT * FROM content ORDER BY 1, 2, 3").fetchall(),
            "evidence": conn.execute("SELECT * FROM evidence ORDER BY id").fetchall(),
        }
    finally:
        conn.close()


def counter(home: Path, list_id: str, name: str) -> int:
    conn = sqlite3.connect(home / "node.db")
    try:
        row = conn.execute(
            "SELECT value FROM counters WHERE list_id = ? AND hash = '' AND name = ?",
            [list_id, name],
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else 0


def one_clean_line(result: Result) -> None:
    """An error a hostile value cannot spread or dress up: one line, no control bytes."""
    assert result.stderr.count("\n") == 1, result.stderr
    assert len(result.stderr) < 300, result.stderr
    assert all(c.isprintable() for c in result.stderr.rstrip("\n")), repr(result.stderr)


@pytest.fixture
async def synced_home(tmp_path: Path, hub_server: HubServer) -> Path:
    home = init_node_home(tmp_path / "node", hub_server)
    ok(await invoke("sync", "--home", str(home)))
    return home


async def matched(home: Path, *items: str) -> list[str]:
    """The match ids ``match`` recorded for ``items``, in order."""
    answer = json.loads(ok(await invoke("match", "--home", str(home), "--json", *items)))
    return [m["match_id"] for item in items for m in answer[item]]


# -- outcome ----------------------------------------------------------------------------------


async def test_outcome_is_recorded_once_counted_and_repeatable(synced_home: Path) -> None:
    home = str(synced_home)
    [match_id] = await matched(synced_home, md5(1).hex())
    out = ok(await invoke("outcome", match_id, "blocked", "--home", home))
    assert out == f"Recorded match {match_id} as blocked (counted as blocked in the next ack)\n"
    assert counter(synced_home, MD5_LIST, "blocked") == 1
    after = stored(synced_home)
    [(_, outcome, outcome_at)] = after["events"]
    assert (outcome, bool(outcome_at)) == ("blocked", True)

    out = ok(await invoke("outcome", match_id, "blocked", "--home", home))
    assert out == f"match {match_id} already has outcome blocked; nothing changed\n"
    assert stored(synced_home) == after

    [kept_id] = await matched(synced_home, md5(2).hex())
    before = stored(synced_home)
    answer = json.loads(ok(await invoke("outcome", kept_id, "kept", "--json", "--home", home)))
    assert answer == {"match_id": kept_id, "outcome": "kept", "duplicate": False}
    assert stored(synced_home)["counters"] == before["counters"]  # kept counts toward nothing


async def test_a_second_different_outcome_is_a_conflict_that_changes_nothing(
    synced_home: Path,
) -> None:
    [match_id] = await matched(synced_home, md5(1).hex())
    ok(await invoke("outcome", match_id, "actioned", "--home", str(synced_home)))
    before = stored(synced_home)
    result = await invoke("outcome", match_id, "false_positive", "--home", str(synced_home))
    assert result.exit_code == EXIT_CONFLICT, result.output
    assert result.stderr == f"Error: match {match_id} already has outcome actioned\n"
    assert result.stdout == ""
    assert stored(synced_home) == before


async def test_an_unknown_match_or_outcome_is_a_mistake_that_changes_nothing(
    synced_home: Path,
) -> None:
    [match_id] = await matched(synced_home, md5(1).hex())
    before = stored(synced_home)
    unknown = str(uuid.uuid4())
    home = str(synced_home)
    mistake(await invoke("outcome", unknown, "blocked", "--home", home), f"no match {unknown}\n")
    mistake(
        await invoke("outcome", match_id, "deleted", "--home", home),
        f"unknown outcome 'deleted'; one of {OUTCOME_NAMES}",
    )
    mistake(await invoke("outcome", match_id, "", "--home", home), "unknown outcome ''")
    mistake(await invoke("outcome", match_id.upper(), "blocked", "--home", home), "no match '")
    assert stored(synced_home) == before


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc/passwd",
        "\x1b[2J\x1b[31mowned",
        "line one\nError: forged second line",
        "\u202etxt.exe",
        "\udcff\udcfe",  # bytes that are no UTF-8, as Python hands them over
        "f" * 100_000,
    ],
)
async def test_a_hostile_match_id_or_outcome_is_refused_on_one_clean_line(
    synced_home: Path, hostile: str
) -> None:
    [match_id] = await matched(synced_home, md5(1).hex())
    before = stored(synced_home)
    home = str(synced_home)
    result = await invoke("outcome", hostile, "blocked", "--home", home)
    mistake(result, "Error: no match '")
    one_clean_line(result)
    result = await invoke("outcome", match_id, hostile, "--home", home)
    mistake(result, "Error: unknown outcome '")
    one_clean_line(result)
    assert stored(synced_home) == before


def test_the_installed_script_refuses_an_id_that_is_no_utf_8(tmp_path: Path) -> None:
    """Raw bytes on the real command line (not through click's test runner)."""
    home = tmp_path / "offline"
    ok(invoke_now(*init_with(home)))
    done = subprocess.run(
        [SCRIPT, "outcome", b"\xff\xfe\x1b[2J", "blocked", "--home", home],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == b""
    assert done.stderr == b"Error: no match '\\udcff\\udcfe\\x1b[2J'\n"


async def test_outcome_refuses_what_the_api_refuses_with_the_same_message(
    synced_home: Path,
) -> None:
    """The command and ``POST /v1/matches/{id}/outcome`` apply one rule: 404 is exit 1,
    409 exit 5, a success exit 0, and the messages are the API's."""
    [first, second] = await matched(synced_home, md5(1).hex(), md5(2).hex())
    headers = {"Authorization": f"Bearer {read_secret(synced_home / 'api-token')}"}
    unknown = str(uuid.uuid4())
    app = create_app(synced_home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as api:

        async def post(match_id: str, outcome: str) -> tuple[int, str]:
            response = await api.post(
                f"/v1/matches/{match_id}/outcome", json={"outcome": outcome}, headers=headers
            )
            body = await response.json()
            return response.status, body["error"]["message"] if "error" in body else ""

        assert await post(first, "blocked") == (200, "")
        home = str(synced_home)
        cases = [
            (first, "blocked", 200, 0),
            (first, "actioned", 409, EXIT_CONFLICT),
            (unknown, "blocked", 404, 1),
            ("not-a-match-id", "blocked", 404, 1),
            (first.upper(), "blocked", 404, 1),
            (second, "deleted", 400, 1),
        ]
        for match_id, outcome, status, exit_code in cases:
            api_status, api_message = await post(match_id, outcome)
            result = await invoke("outcome", match_id, outcome, "--home", home)
            assert (api_status, result.exit_code) == (status, exit_code), result.output
            if status in (404, 409):
                assert result.stderr == f"Error: {api_message}\n"


# -- matches ----------------------------------------------------------------------------------


async def test_matches_lists_open_events_newest_first(synced_home: Path) -> None:
    home = str(synced_home)
    [first] = await matched(synced_home, md5(1).hex())
    [second] = await matched(synced_home, str(ORIGINAL))
    [third] = await matched(synced_home, md5(2).hex())
    ok(await invoke("outcome", first, "actioned", "--home", home))
    before = stored(synced_home)

    lines = ok(await invoke("matches", "--home", home)).splitlines()
    assert lines[0].split() == [
        "MATCH", "ID", "WHEN", "LIST", "TYPE", "DISTANCE", "SOURCE", "CONTENT", "ID",
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[1:3]] == [third, second]
    assert lines[1].split()[2:6] == [MD5_LIST, "md5", "0", "upload"]
    assert lines[2].split()[2:6] == [PDQ_LIST, "pdq", "0", "upload"]
    assert lines[3] == "2 match event(s) awaiting an outcome; showing 2"

    lines = ok(await invoke("matches", "--all", "--home", home)).splitlines()
    assert lines[0].endswith("OUTCOME")
    assert [line.split()[0] for line in lines[1:4]] == [third, second, first]
    assert lines[3].split()[-1] == "actioned"
    assert lines[4] == "3 match event(s), 2 awaiting an outcome; showing 3"

    out = ok(await invoke("matches", "--all", "--limit", "1", "--home", home))
    assert out.splitlines()[1].split()[0] == third
    assert "showing 1" in out

    answer = json.loads(ok(await invoke("matches", "--json", "--home", home)))
    assert answer["awaiting_outcome"] == 2
    assert answer["total"] == 3
    assert [(m["match_id"], m["list"], m["hash_type"]) for m in answer["matches"]] == [
        (third, MD5_LIST, "md5"),
        (second, PDQ_LIST, "pdq"),
    ]
    assert answer["matches"][0]["hash"] == md5(2).hex()
    assert answer["matches"][0]["outcome"] is None
    assert stored(synced_home) == before  # only read


async def test_matches_shows_registered_content_and_escapes_its_id(
    synced_home: Path, tmp_path: Path
) -> None:
    files = tmp_path / "hosted"
    (files / "posts").mkdir(parents=True)
    (files / "posts" / "listed.bin").write_bytes(b"3")  # its MD5 is listed
    ok(await invoke("scan", "--home", str(synced_home), str(files)))
    store = NodeStore(synced_home / "node.db")
    try:  # an id no route accepts today, as an older node may have stored it
        store.matches.record(
            str(uuid.uuid4()), MD5_LIST, md5(4), md5(4), 0, 1, "registry",
            "evil\x1b[2J\nError: forged", utcnow(),
        )  # fmt: skip
    finally:
        store.close()
    out = ok(await invoke("matches", "--home", str(synced_home)))
    assert "\x1b" not in out
    assert "evil\\x1b[2J\\nError: forged" in out
    rows = out.splitlines()[1:-1]
    assert len(rows) == 2
    assert rows[1].split()[5:] == ["registry", "posts/listed.bin"]


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten", "1e3"])
async def test_matches_refuses_a_limit_out_of_range(synced_home: Path, limit: str) -> None:
    await matched(synced_home, md5(1).hex())
    result = await invoke("matches", "--limit", limit, "--home", str(synced_home))
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--limit'" in result.stderr
    assert "Traceback" not in result.output


# -- evidence ---------------------------------------------------------------------------------


async def test_evidence_lists_rejected_updates_and_failures(
    tmp_path: Path, hub_server: HubServer
) -> None:
    proxy = await HostileServer.proxy(hub_server.url).start()
    try:
        home = init_node_home(tmp_path / "node", hub_server, hub_url=proxy.url)
        assert ok(await invoke("evidence", "--home", str(home))) == "0 evidence row(s)\n"
        ok(await invoke("sync", "--home", str(home)))
        await hub_server.publish(MD5_LIST, adds=[md5("new")])
        proxy.on(checkpoint_path(MD5_LIST) + "$", Tamper(flip_byte))
        await invoke("sync", "--home", str(home))
        before = stored(home)

        out = ok(await invoke("evidence", "--home", str(home)))
        [row, total, failure] = out.splitlines()
        assert row.startswith("#1  20")
        assert f"  {MD5_LIST}  " in row
        assert "from update: " in row
        assert row.endswith("[bytes kept]")
        assert total == "1 evidence row(s)"
        assert failure.startswith(f"{MD5_LIST}: last update attempt 20")
        answer = json.loads(ok(await invoke("evidence", "--json", "--home", str(home))))
        [kept] = answer["evidence"]
        assert (kept["list"], kept["source"], kept["bytes_kept"]) == (MD5_LIST, "update", True)
        assert kept["kind"] in row
        assert kept["message"] in row
        [failed] = answer["failures"]
        assert failed["list"] == MD5_LIST
        assert failed["error"] == f"malformed: {kept['message']}", (failed, kept)

        proxy.behave()
        proxy.on(".*", Status(503))
        await invoke("sync", "--home", str(home))  # a failure: no evidence, only the error
        answer = json.loads(ok(await invoke("evidence", "--json", "--home", str(home))))
        assert len(answer["evidence"]) == 1
        assert {f["list"] for f in answer["failures"]} == {MD5_LIST, PDQ_LIST}
        assert all("503" in f["error"] for f in answer["failures"])
        assert stored(home)["evidence"] == before["evidence"]
    finally:
        await proxy.close()


async def test_evidence_prints_a_hostile_message_escaped_on_one_line(synced_home: Path) -> None:
    store = NodeStore(synced_home / "node.db")
    try:
        store.add_evidence("x\x1b]0;t\x07", "AckRefused", "a\nb\r\x1b[1Ac\u202ed", utcnow())
        store.add_evidence(MD5_LIST, "RejectedSource", "bytes that failed: a/b", utcnow())
    finally:
        store.close()
    out = ok(await invoke("evidence", "--home", str(synced_home)))
    [mirror, ack, total] = out.splitlines()
    assert "RejectedSource  from mirror: bytes that failed: a/b" in mirror
    assert "x\\x1b]0;t\\x07  AckRefused  from hub (ack): a\\nb\\r\\x1b[1Ac\\u202ed" in ack
    assert total == "2 evidence row(s)"
