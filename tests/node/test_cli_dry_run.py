"""Looking without counting: ``match --dry-run``, ``scan --dry-run``, and scanning twice.

The counts a node sends the hub are of what the platform checked and matched. A
person's quick look (``--dry-run``) must record nothing — no match event, no
counter, no registration — and scanning the same content again must not count it
twice: no second match event for a listed hash the content already matched.
``POST /v1/content`` registers through the same code, so a repeated registration
over the API counts nothing twice either; a repeated upload (``POST /v1/match``)
is a second upload and still counts.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from node.app import create_app
from node.config import read_secret
from tests.node.conftest import (
    BRIDGE_MODS,
    MD5_LIST,
    ORIGINAL,
    PDQ_LIST,
    HubServer,
    init_node_home,
    md5,
)
from tests.node.test_cli import invoke, ok


def stored(home: Path) -> dict[str, Any]:
    """Everything a match or a registration writes."""
    conn = sqlite3.connect(home / "node.db")
    try:
        return {
            "events": conn.execute("SELECT * FROM match_events ORDER BY id").fetchall(),
            "counters": conn.execute("SELECT * FROM counters ORDER BY 1, 2, 3").fetchall(),
            "content": conn.execute("SELECT * FROM content ORDER BY 1, 2, 3").fetchall(),
        }
    finally:
        conn.close()


@pytest.fixture
async def synced_home(tmp_path: Path, hub_server: HubServer) -> Path:
    home = init_node_home(tmp_path / "node", hub_server)
    ok(await invoke("sync", "--home", str(home)))
    return home


async def test_match_dry_run_prints_the_matches_and_records_nothing(synced_home: Path) -> None:
    home = str(synced_home)
    before = stored(synced_home)
    out = ok(await invoke("match", "--dry-run", "--home", home, md5(1).hex(), str(ORIGINAL)))
    assert f"{md5(1).hex()}: MATCH {MD5_LIST} v1  md5 distance 0" in out
    assert f"{ORIGINAL}: MATCH {PDQ_LIST} v1  pdq distance 0" in out
    assert out.count("not recorded (dry run)") == 2
    assert "match id" not in out
    answer = json.loads(
        ok(await invoke("match", "--dry-run", "--json", "--home", home, md5(2).hex()))
    )
    [found] = answer[md5(2).hex()]
    assert found["match_id"] is None
    assert found["list"] == MD5_LIST
    assert stored(synced_home) == before

    ok(await invoke("match", "--home", home, md5(1).hex()))  # without it: recorded, counted
    after = stored(synced_home)
    assert len(after["events"]) == 1
    assert after["counters"] != before["counters"]


async def test_match_and_scan_help_say_which_mode_counts() -> None:
    for command in ("match", "scan"):
        text = ok(await invoke(command, "--help"))
        assert "--dry-run" in text
        assert "counted in the acks sent to the hub" in " ".join(text.split())


async def test_scan_dry_run_registers_and_records_nothing(synced_home: Path) -> None:
    before = stored(synced_home)
    out = ok(await invoke("scan", "--dry-run", "--home", str(synced_home), str(BRIDGE_MODS)))
    assert (
        "Scanned 12 file(s) (12 picture(s)); would register 48 hash(es) (dry run: nothing recorded)"
    ) in out
    assert out.count("not recorded (dry run)") == 12
    assert out.splitlines()[-1] == "12 match(es)"
    answer = json.loads(
        ok(
            await invoke(
                "scan", "--dry-run", "--json", "--home", str(synced_home), str(BRIDGE_MODS)
            )
        )
    )
    assert answer["dry_run"] is True
    assert answer["registered_hashes"] == 0
    assert answer["new_matches"] == 0
    assert {m["match_id"] for m in answer["matches"]} == {None}
    assert stored(synced_home) == before


async def test_a_dry_run_refuses_what_the_real_scan_refuses(
    synced_home: Path, tmp_path: Path
) -> None:
    """A file name that is no UTF-8 is no content id: both modes say so, store nothing."""
    files = tmp_path / "hosted"
    files.mkdir()
    (files / "ok.bin").write_bytes(b"1")
    with open(os.fsencode(files) + b"/bad-\xff-name.bin", "wb") as f:
        f.write(b"2")
    before = stored(synced_home)
    for mode in (["--dry-run"], []):
        result = await invoke("scan", *mode, "--home", str(synced_home), str(files))
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert result.stderr.endswith(  # after the progress bar
            "Error: bad-\\udcff-name.bin: content id must be 1-256 printable characters\n"
        )
        assert stored(synced_home) == before  # the bad name sorts first: nothing registered


async def test_scanning_the_same_files_twice_counts_them_once(synced_home: Path) -> None:
    home = str(synced_home)
    first = json.loads(ok(await invoke("scan", "--json", "--home", home, str(BRIDGE_MODS))))
    assert first["new_matches"] == len(first["matches"]) == 12
    once = stored(synced_home)

    out = ok(await invoke("scan", "--home", home, str(BRIDGE_MODS)))
    assert out.splitlines()[-1] == "12 match(es), 0 new (the rest recorded before)"
    assert out.count("(recorded before, not counted again)") == 12
    second = json.loads(ok(await invoke("scan", "--json", "--home", home, str(BRIDGE_MODS))))
    assert second["new_matches"] == 0
    assert all(m["earlier"] for m in second["matches"])
    ids = {(m["content_id"], m["match_id"]) for m in first["matches"]}
    assert {(m["content_id"], m["match_id"]) for m in second["matches"]} == ids
    assert stored(synced_home) == once  # no event, no counter, no registration more

    # The same bytes under another content id are other content: counted.
    copy = synced_home.parent / "copy"
    copy.mkdir()
    (copy / "again.jpg").write_bytes(ORIGINAL.read_bytes())
    out = ok(await invoke("scan", "--home", home, str(copy)))
    assert out.splitlines()[-1] == "1 match(es)"
    assert len(stored(synced_home)["events"]) == len(once["events"]) + 1


async def test_a_repeated_registration_over_the_api_counts_once(synced_home: Path) -> None:
    headers = {"Authorization": f"Bearer {read_secret(synced_home / 'api-token')}"}
    body = {"content_id": "post/1", "hashes": [{"type": "md5", "hash": md5(4).hex()}]}
    app = create_app(synced_home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as api:
        first = await (await api.post("/v1/content", json=body, headers=headers)).json()
        once = stored(synced_home)
        response = await api.post("/v1/content", json=body, headers=headers)
        assert response.status == 201
        again = await response.json()
        assert again["matches"] == first["matches"]  # the same match id, reported again
        assert stored(synced_home) == once
        metrics = await (await api.get("/metrics", headers=headers)).text()
        registry = [
            line.rsplit(" ", 1)[1]
            for line in metrics.splitlines()
            if line.startswith("hashhub_node_matches_total{") and 'source="registry"' in line
        ]
        assert registry == ["1.0"], "the node's own metric counts the match once too"

        upload = {"hashes": [{"type": "md5", "hash": md5(4).hex()}]}
        for _ in range(2):  # two uploads of the same file are two uploads
            await api.post("/v1/match", json=upload, headers=headers)
        assert len(stored(synced_home)["events"]) == len(once["events"]) + 2
