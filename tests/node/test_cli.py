"""The ``hashhub-node`` command: a participant's session against the real hub, and mistakes.

Commands run in process through click's ``CliRunner`` — on a worker thread while
the hub answers on the test's event loop — and once as the installed script in a
subprocess (``run``, the daemon). Every user mistake is one line and exit status
1, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import click
import pytest
from click.testing import CliRunner, Result

from hub.core import Hub
from node.cli import EXIT_FAILED, EXIT_NO_MATCH, EXIT_REJECTED, main
from node.config import NodeConfig, read_secret
from protocol import checkpoint_path
from protocol.keyfile import load_public_key
from tests.node.conftest import (
    BRIDGE_MODS,
    DIHEDRAL,
    MD5_LIST,
    NODE_ID,
    ORIGINAL,
    PDQ_LIST,
    UNRELATED,
    HubServer,
    init_node_home,
    md5,
    original_pdq,
)
from tests.node.hostile import HostileServer, Status, Tamper, flip_byte

SCRIPT = Path(sys.executable).parent / "hashhub-node"
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "participant-guide.md"
LISTS = f"{MD5_LIST},{PDQ_LIST}"


def invoke_now(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


async def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run a command on a worker thread, so the hub on this loop can answer it."""
    return await asyncio.to_thread(invoke_now, *args, env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def no_match(result: Result) -> str:
    """``match`` found nothing: its own exit status, the output as usual."""
    assert result.exit_code == EXIT_NO_MATCH, result.output
    return result.stdout


def mistake(result: Result, *fragments: str) -> None:
    """A user mistake: exit status 1, an 'Error:' line naming it, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.stderr.startswith("Error: ")
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


PIN = "ab" * 32


def test_a_directory_that_is_no_node_home_is_a_mistake(tmp_path: Path) -> None:
    for args in (
        ["status"],
        ["sync"],
        ["run"],
        ["verify"],
        ["match", "00" * 16],
        ["acks", "flush"],
    ):
        mistake(invoke_now(*args, "--home", str(tmp_path)), "not a node home")
    mistake(invoke_now("token", "set", "hhn_x", "--home", str(tmp_path)), "not a node home")


def test_a_second_init_is_a_mistake(tmp_path: Path) -> None:
    ok(invoke_now(*init_with(tmp_path / "n")))
    mistake(invoke_now(*init_with(tmp_path / "n")), "already holds")


def init_with(home: Path, **overrides: str | None) -> list[str]:
    """``init`` arguments for a hub that is nowhere; an override of None leaves one out."""
    options: dict[str, str | None] = {
        "--hub": "http://127.0.0.1:9",
        "--node-id": NODE_ID,
        "--lists": LISTS,
        "--pin": PIN,
    }
    options.update({"--" + k.replace("_", "-"): v for k, v in overrides.items()})
    args = ["init", "--home", str(home)]
    for option, value in options.items():
        if value is not None:
            args += [option, value]
    return args


# -- a session ----------------------------------------------------------------------------


async def test_init_enrol_token_sync_status_session(tmp_path: Path, hub_server: HubServer) -> None:
    home = tmp_path / "node"
    out = ok(await invoke(*init_with(home, hub=hub_server.url, pin=hub_server.pinned())))
    key = load_public_key(home / "node.pub.pem")
    assert str(home / "node.pub.pem") in out
    assert key.keyid in out
    assert "token set" in out
    assert not (home / "hub-token").exists()
    for secret in ("node.key", "api-token", "webhook-secret"):
        assert (home / secret).stat().st_mode & 0o777 == 0o600, secret

    mistake(await invoke("sync", "--home", str(home)), "no hub token yet")

    token = hub_server.enrol(NODE_ID, home / "node.pub.pem", [MD5_LIST, PDQ_LIST])
    env = {"HASHHUB_NODE_HOME": str(home)}
    ok(await invoke("token", "set", token, env=env))
    assert read_secret(home / "hub-token") == token

    out = ok(await invoke("sync", env=env))
    assert f"{MD5_LIST}: updated v0 -> v1" in out
    assert f"{PDQ_LIST}: updated v0 -> v1" in out
    assert "acks: 2 confirmed, 0 failed" in out
    out = ok(await invoke("sync", env=env))
    assert f"{MD5_LIST}: current at v1" in out

    out = ok(await invoke("status", env=env))
    assert MD5_LIST in out
    assert "fresh" in out
    assert "STALE" not in out
    status = json.loads(ok(await invoke("status", "--json", env=env)))
    assert {e["list"]: (e["version"], e["count"]) for e in status["lists"]} == {
        MD5_LIST: (1, 5),
        PDQ_LIST: (1, 1),
    }
    assert status["acks_pending"] == 0
    [entry] = hub_server.list_status(MD5_LIST).nodes
    assert entry.applied_version == 1


async def test_init_can_pin_the_root_file_itself(tmp_path: Path, hub_server: HubServer) -> None:
    hub = Hub.open(hub_server.home)
    try:
        found = hub.files.get("root/1.json")
        assert found is not None
        (tmp_path / "root-1.json").write_bytes(found[0])
    finally:
        hub.close()
    home = tmp_path / "node"
    root_file = str(tmp_path / "root-1.json")
    args = init_with(home, hub=hub_server.url, pin=None, pinned_root=root_file, token="hhn_later")
    ok(await invoke(*args))
    assert NodeConfig.load(home).pinned_root_sha256 == hub_server.pinned()
    assert read_secret(home / "hub-token") == "hhn_later"


@pytest.fixture
async def synced_home(tmp_path: Path, hub_server: HubServer) -> Path:
    home = init_node_home(tmp_path / "node", hub_server)
    ok(await invoke("sync", "--home", str(home)))
    return home


async def test_match_prints_the_matches_of_files_and_hashes(synced_home: Path) -> None:
    home = str(synced_home)
    out = ok(await invoke("match", "--home", home, str(ORIGINAL)))
    assert f"MATCH {PDQ_LIST} v1  pdq distance 0  listed {original_pdq().hex()}" in out
    out = ok(await invoke("match", "--home", home, md5(2).hex(), md5("nope").hex()))
    assert f"{md5(2).hex()}: MATCH {MD5_LIST} v1  md5 distance 0" in out
    assert f"{md5('nope').hex()}: no match" in out
    out = ok(await invoke("match", "--home", home, "--type", "pdq", original_pdq().hex()))
    assert f"MATCH {PDQ_LIST}" in out
    photo = sorted(UNRELATED.glob("*.jpg"))[0]
    assert no_match(await invoke("match", "--home", home, str(photo))).strip().endswith("no match")
    rotated = str(DIHEDRAL / "bridge-2-rotate-90.jpg")
    assert "no match" in no_match(await invoke("match", "--home", home, rotated))
    assert f"MATCH {PDQ_LIST}" in ok(await invoke("match", "--home", home, "--dihedral", rotated))
    answer = json.loads(ok(await invoke("match", "--home", home, "--json", str(ORIGINAL))))
    assert [m["list"] for m in answer[str(ORIGINAL)]] == [PDQ_LIST]


async def test_scan_registers_every_file_and_reports_its_matches(synced_home: Path) -> None:
    out = ok(await invoke("scan", "--home", str(synced_home), str(BRIDGE_MODS)))
    assert "Scanned 12 file(s) (12 picture(s)); registered 48 hash(es)" in out
    assert "12 match(es)" in out
    assert f"square-128x128.jpg: MATCH {PDQ_LIST}" in out
    conn = sqlite3.connect(synced_home / "node.db")
    try:
        ids = {row[0] for row in conn.execute("SELECT DISTINCT content_id FROM content")}
    finally:
        conn.close()
    assert ids == {p.name for p in BRIDGE_MODS.glob("*.jpg")}
    answer = json.loads(
        ok(await invoke("scan", "--home", str(synced_home), "--json", str(UNRELATED)))
    )
    assert answer["matches"] == []
    assert answer["files"] == answer["images"] > 0


async def test_scan_registers_a_file_with_its_matches_or_not_at_all(
    synced_home: Path, tmp_path: Path
) -> None:
    """A file is registered and matched in one transaction, as ``POST /v1/content``.

    The database itself refuses every match event (a trigger), so the failure falls
    between registering the file and storing its match: nothing stays registered.
    """
    conn = sqlite3.connect(synced_home / "node.db")
    try:
        conn.execute(
            "CREATE TRIGGER refuse_matches BEFORE INSERT ON match_events "
            "BEGIN SELECT RAISE(ABORT, 'match events refused'); END"
        )
        conn.commit()
        files = tmp_path / "files"
        files.mkdir()
        (files / "listed.txt").write_bytes(b"2")  # its MD5 is on the MD5 list
        result = await invoke("scan", "--home", str(synced_home), str(files))
        assert result.exit_code == 1, result.output
        assert "Error: database: match events refused" in result.stderr  # after the progress bar
        assert conn.execute("SELECT count(*) FROM content").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM match_events").fetchone() == (0,)
    finally:
        conn.close()


async def test_verify_recomputes_digests_and_fails_on_a_corrupted_state(
    synced_home: Path,
) -> None:
    out = ok(await invoke("verify", "--home", str(synced_home)))
    assert f"{MD5_LIST}: ok (5 hashes" in out
    assert f"{PDQ_LIST}: ok (1 hashes" in out
    conn = sqlite3.connect(synced_home / "node.db")
    try:
        with conn:
            conn.execute("UPDATE lists SET state = substr(state, 17) WHERE id = ?", [MD5_LIST])
    finally:
        conn.close()
    result = await invoke("verify", "--home", str(synced_home))
    mistake(result, "differ from their trust record")
    assert f"{MD5_LIST}: MISMATCH: the stored state has 4 hashes" in result.stdout
    assert f"{PDQ_LIST}: ok" in result.stdout


async def test_acks_flush_signs_and_sends_the_current_counts(
    synced_home: Path, hub_server: HubServer
) -> None:
    home = str(synced_home)
    ok(await invoke("match", "--home", home, md5(1).hex()))
    out = ok(await invoke("acks", "flush", "--home", home, "--sign"))
    assert "signed 2 ack(s)" in out
    assert "acks: 2 confirmed, 0 failed, 0 pending" in out
    [entry] = hub_server.list_status(MD5_LIST).nodes
    assert entry.counts["matched"] == 1
    assert entry.counts["checked"] == 1


# -- sync's exit status ---------------------------------------------------------------------


async def test_sync_exits_3_when_an_update_is_rejected(
    tmp_path: Path, hub_server: HubServer
) -> None:
    proxy = await HostileServer.proxy(hub_server.url).start()
    try:
        home = init_node_home(tmp_path / "node", hub_server, hub_url=proxy.url)
        ok(await invoke("sync", "--home", str(home)))
        await hub_server.publish(MD5_LIST, adds=[md5("new")])
        proxy.on(checkpoint_path(MD5_LIST) + "$", Tamper(flip_byte))
        result = await invoke("sync", "--home", str(home))
        assert result.exit_code == EXIT_REJECTED, result.output
        assert f"{MD5_LIST}: REJECTED, still enforcing v1" in result.stdout
        assert f"{PDQ_LIST}: current at v1" in result.stdout
    finally:
        await proxy.close()


async def test_sync_exits_4_when_the_hub_cannot_be_reached(
    tmp_path: Path, hub_server: HubServer
) -> None:
    proxy = await HostileServer.proxy(hub_server.url).start()
    try:
        proxy.on(".*", Status(503))
        home = init_node_home(tmp_path / "node", hub_server, hub_url=proxy.url)
        result = await invoke("sync", "--home", str(home))
        assert result.exit_code == EXIT_FAILED, result.output
        assert f"{MD5_LIST}: failed, still enforcing v0" in result.stdout
        assert "HTTP 503" in result.stdout
    finally:
        await proxy.close()


# -- the installed script -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_installed_script_runs_the_daemon_and_stops_on_sigterm(
    tmp_path: Path, hub_server: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server)
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        "run",
        "--home",
        str(home),
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        headers = {"Authorization": f"Bearer {read_secret(home / 'api-token')}"}
        async with aiohttp.ClientSession() as session:
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                try:
                    async with session.get(
                        f"http://127.0.0.1:{port}/v1/status", headers=headers
                    ) as r:
                        status = await r.json()
                    if all(e["version"] == 1 for e in status["lists"]):
                        break
                except aiohttp.ClientConnectionError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, "the daemon never synced"
                await asyncio.sleep(0.2)
            async with session.post(
                f"http://127.0.0.1:{port}/v1/match",
                data=ORIGINAL.read_bytes(),
                headers=headers | {"Content-Type": "image/jpeg"},
            ) as r:
                assert [m["list"] for m in (await r.json())["matches"]] == [PDQ_LIST]
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
    assert b"scheduler stopped" in stderr


# -- user mistakes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"pin": "abc"}, "64 hex digits"),
        ({"lists": "../etc"}, "list id"),
        ({"lists": ","}, "at least one list"),
        ({"node_id": "Bad Id"}, "invalid node id"),
        ({"hub": "ftp://hub.example"}, "not an http(s) URL"),
        ({"webhook": "hooks.example/x"}, "not an http(s) URL"),
        ({"mirror": "file:///srv/tree"}, "not an http(s) URL"),
        ({"token": "has space"}, "a hub token is"),
        ({"pin": None, "pinned_root": "/nonexistent/root.json"}, "No such file"),
        ({"token": "t", "token_file": "/nonexistent"}, "at most one of --token"),
        ({"token_file": "/nonexistent/token"}, "No such file"),
        ({"pin": None}, "exactly one of --pin"),
        ({"pinned_root": "/nonexistent/root.json"}, "exactly one of --pin"),
    ],
)
def test_init_mistakes_are_explained(
    tmp_path: Path, overrides: dict[str, str | None], fragment: str
) -> None:
    mistake(invoke_now(*init_with(tmp_path / "n", **overrides)), fragment)
    assert not (tmp_path / "n" / "node.toml").exists()


def test_a_pinned_root_file_that_is_no_root_is_a_mistake(tmp_path: Path) -> None:
    (tmp_path / "root.json").write_bytes(b'{"_type": "not a root"}')
    args = init_with(tmp_path / "n", pin=None, pinned_root=str(tmp_path / "root.json"))
    mistake(invoke_now(*args))
    assert not (tmp_path / "n" / "node.toml").exists()


@pytest.fixture
def offline_home(tmp_path: Path) -> Path:
    """A node home whose hub is nowhere (for mistakes that never reach the network)."""
    home = tmp_path / "offline"
    ok(invoke_now(*init_with(home)))
    return home


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["no-such-file.jpg"], "no such file, and not a hex hash"),
        (["abcd"], "no hash type's width"),
        (["ab" * 32], "say which with --type"),
        (["--type", "md5", "ab" * 32], "a md5 hash is 32 hex digits"),
    ],
)
def test_match_mistakes_are_explained(
    offline_home: Path, arguments: Sequence[str], fragment: str
) -> None:
    mistake(invoke_now("match", "--home", str(offline_home), *arguments), fragment)


def test_a_damaged_image_given_to_match_is_a_mistake(offline_home: Path, tmp_path: Path) -> None:
    data = ORIGINAL.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    mistake(invoke_now("match", "--home", str(offline_home), str(tmp_path / "cut.jpg")), "corrupt")


def test_token_set_refuses_a_malformed_token(offline_home: Path) -> None:
    mistake(invoke_now("token", "set", "two words", "--home", str(offline_home)), "a hub token")
    assert not (offline_home / "hub-token").exists()


def test_a_secret_file_others_can_read_is_a_mistake(offline_home: Path) -> None:
    os.chmod(offline_home / "api-token", 0o644)
    mistake(invoke_now("status", "--home", str(offline_home)), "too open", "chmod 600")


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('fetch_timeout = "fast"', "fetch_timeout must be a number"),
        ("fetch_timeout = 0", "from 0 to 3600"),
        ("fetch_timeout = 86400", "from 0 to 3600"),
        ("fetch_timeout = true", "fetch_timeout must be a number"),
        ("fetch_deadline = 5", "unknown setting"),
        ("fetch_timeout = ", "node.toml"),
    ],
)
def test_a_bad_setting_in_node_toml_is_a_mistake(offline_home: Path, line: str, says: str) -> None:
    toml = offline_home / "node.toml"
    kept = [ln for ln in toml.read_text().splitlines() if not ln.startswith("fetch_timeout")]
    toml.write_text("\n".join([*kept, line]) + "\n")
    mistake(invoke_now("status", "--home", str(offline_home)), says)


def test_usage_errors_exit_2_without_a_traceback(offline_home: Path) -> None:
    result = invoke_now("scan", "--home", str(offline_home), "/nonexistent-dir")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "does not exist" in result.output


# -- the guide ------------------------------------------------------------------------------


def commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found |= commands(command, f"{prefix}{name} ")
        else:
            found[prefix + name] = command
    return found


def test_the_participant_guide_covers_every_command_and_option() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    for name, command in commands(main).items():
        assert f"hashhub-node {name}" in guide, name
        for param in command.params:
            for option in getattr(param, "opts", []):
                if option.startswith("--") and option not in ("--home", "--help"):
                    assert option in guide, f"{name} {option}"
