"""What ``hashhub-node sync`` tells a person when it cannot update, through the real CLI.

Every scenario runs against the real hub on loopback (or a port where nothing
listens): the hub's own reason reaches the user, a refusal that only the hub
operator can lift has its own exit status and says whom to ask, a list the hub
does not declare is the node's configuration (no evidence), and an ack the hub
refused shows why.
"""

from __future__ import annotations

import secrets
import socket
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from node.cli import EXIT_CONFIG, EXIT_DENIED, EXIT_FAILED, main
from node.config import write_secret
from tests.node.conftest import MD5_LIST, PDQ_LIST, HubServer, init_node_home
from tests.node.test_cli import GUIDE, invoke, invoke_now, ok


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _evidence(home: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(home / "node.db")
    try:
        return list(conn.execute("SELECT list_id, kind FROM evidence"))
    finally:
        conn.close()


# -- the hub refusing the node ------------------------------------------------------------


async def test_a_refused_token_prints_the_hubs_reason_and_whom_to_ask(
    tmp_path: Path, hub_server: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server)
    write_secret(home / "hub-token", "hhn_" + secrets.token_urlsafe(32))
    result = await invoke("sync", "--home", str(home))
    assert result.exit_code == EXIT_DENIED, result.output
    for list_id in (MD5_LIST, PDQ_LIST):
        line = next(x for x in result.stdout.splitlines() if x.startswith(f"{list_id}:"))
        assert line.startswith(f"{list_id}: ACCESS DENIED, still enforcing v0: "), line
        assert line.endswith("HTTP 401 unauthorized: unknown or revoked token"), line
        assert "FetchError" not in line
    assert "Ask the hub operator to enrol node.pub.pem as platform-a or issue a new token" in (
        result.stdout
    )
    assert "will not pass by itself" in result.stdout
    assert _evidence(home) == []


async def test_a_list_the_token_may_not_read_is_denied_and_the_others_update(
    tmp_path: Path, hub_server: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server, enrol=False)
    write_secret(
        home / "hub-token", hub_server.enrol("platform-a", home / "node.pub.pem", [MD5_LIST])
    )
    result = await invoke("sync", "--home", str(home))
    assert result.exit_code == EXIT_DENIED, result.output
    assert f"{MD5_LIST}: updated v0 -> v1" in result.stdout
    assert f"{PDQ_LIST}: ACCESS DENIED, still enforcing v0: " in result.stdout
    assert f"HTTP 403 forbidden: this token may not read list {PDQ_LIST}" in result.stdout
    assert "Ask the hub operator to grant node platform-a that list." in result.stdout


async def test_a_throttled_node_is_told_how_long_to_wait_and_tries_again_later(
    tmp_path: Path, hub_server: HubServer
) -> None:
    """Wrong tokens from the node's address spent its allowance: a 429, which passes."""
    home = init_node_home(tmp_path / "node", hub_server)
    write_secret(home / "hub-token", "hhn_" + secrets.token_urlsafe(32))
    async with aiohttp.ClientSession() as session:
        for i in range(10):
            async with session.get(
                f"{hub_server.url}/v1/admin/status", headers={"Authorization": f"Bearer hhn_g{i}"}
            ) as response:
                assert response.status == 401
    result = await invoke("sync", "--home", str(home))
    assert result.exit_code == EXIT_FAILED, result.output
    assert f"{MD5_LIST}: failed, still enforcing v0: " in result.stdout
    assert "HTTP 429 too_many_requests: too many wrong tokens" in result.stdout
    assert "try again in " in result.stdout


# -- a hub URL that is wrong ----------------------------------------------------------------


async def test_a_hub_url_without_a_tree_says_to_check_the_url(
    tmp_path: Path, hub_server: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server, hub_url=hub_server.url + "/wrong")
    result = await invoke("sync", "--home", str(home))
    assert result.exit_code == EXIT_FAILED, result.output
    assert (
        f"{MD5_LIST}: failed, still enforcing v0: {hub_server.url}/wrong does not serve a "
        "hashhub tree (no root/1.json there): check the hub URL"
    ) in result.stdout
    assert "NotPublishedError" not in result.stdout


async def test_a_refused_connection_says_so_in_words(tmp_path: Path, hub_server: HubServer) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    home = init_node_home(tmp_path / "node", hub_server, hub_url=url)
    result = await invoke("sync", "--home", str(home))
    assert result.exit_code == EXIT_FAILED, result.output
    assert (
        f"{MD5_LIST}: failed, still enforcing v0: could not fetch: cannot connect to {url}: "
        "connection refused\n"
    ) in result.stdout
    assert "ClientConnectorError" not in result.stdout
    assert "ssl:default" not in result.stdout


# -- the node's own configuration -----------------------------------------------------------


async def test_a_list_the_hub_does_not_declare_is_a_configuration_error(
    tmp_path: Path, hub_server: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server, lists=(MD5_LIST,))
    config = home / "node.toml"
    config.write_text(
        config.read_text().replace(f'"{MD5_LIST}"', f'"{MD5_LIST}", "no-such-list"'),
        encoding="utf-8",
    )
    result = await invoke("sync", "--home", str(home))
    assert result.exit_code == EXIT_CONFIG, result.output
    assert f"{MD5_LIST}: updated v0 -> v1" in result.stdout
    assert (
        "no-such-list: CONFIGURATION ERROR, not followed: the hub's root v3 does not declare "
        "list 'no-such-list': correct or remove it in lists in node.toml"
    ) in result.stdout
    assert "REJECTED" not in result.stdout
    assert _evidence(home) == []  # nothing the hub did wrong
    status = ok(await invoke("status", "--home", str(home), "--json"))
    assert "no-such-list" in status
    # Never trusted: nothing about it was fetched or stored.
    conn = sqlite3.connect(home / "node.db")
    try:
        assert conn.execute("SELECT id FROM lists").fetchall() == [(MD5_LIST,)]
    finally:
        conn.close()


# -- acks -----------------------------------------------------------------------------------


async def test_an_ack_the_hub_refuses_shows_the_hubs_reason(
    tmp_path: Path, hub_server: HubServer
) -> None:
    home = init_node_home(tmp_path / "node", hub_server)
    ok(await invoke("sync", "--home", str(home)))
    conn = sqlite3.connect(home / "node.db")
    try:
        # A signed ack whose bytes were altered after signing: the hub answers 400.
        with conn:
            conn.execute(
                "INSERT INTO ack_outbox (seq, list_id, bytes, sig, created, next_attempt) "
                "VALUES (3, ?, ?, ?, '2000-01-01T00:00:00Z', '2000-01-01T00:00:00Z')",
                [MD5_LIST, b'{"not": "an ack"}', b"\0" * 64],
            )
    finally:
        conn.close()
    result = await invoke("sync", "--home", str(home))
    assert result.exit_code == 0, result.output
    assert "acks: 0 confirmed, 1 failed\n" in result.stdout
    reason = result.stdout.split("acks: 0 confirmed, 1 failed\n", 1)[1].splitlines()[0]
    assert reason.startswith(
        f"  ack seq 3 ({MD5_LIST}): refused for good: HTTP 400: invalid_request: "
    ), reason
    assert "{" not in reason  # the hub's code and message, not its JSON
    assert [kind for _, kind in _evidence(home)] == ["AckRefused"]


async def test_acks_flush_shows_the_hubs_reason_too(tmp_path: Path, hub_server: HubServer) -> None:
    home = init_node_home(tmp_path / "node", hub_server)
    ok(await invoke("sync", "--home", str(home)))
    conn = sqlite3.connect(home / "node.db")
    try:
        with conn:  # a signed ack whose bytes were altered after signing
            conn.execute(
                "INSERT INTO ack_outbox (seq, list_id, bytes, sig, created, next_attempt) "
                "VALUES (9, ?, ?, ?, '2000-01-01T00:00:00Z', '2000-01-01T00:00:00Z')",
                [MD5_LIST, b'{"not": "an ack"}', b"\0" * 64],
            )
    finally:
        conn.close()
    result = await invoke("acks", "flush", "--home", str(home))
    assert result.exit_code == 4, result.output
    lines = result.stdout.splitlines()
    at = lines.index("acks: 0 confirmed, 1 failed, 0 pending")
    assert lines[at + 1].startswith(
        f"  ack seq 9 ({MD5_LIST}): refused for good: HTTP 400: invalid_request: "
    ), lines


# -- documentation ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [EXIT_DENIED, EXIT_CONFIG])
def test_the_new_exit_statuses_are_in_help_and_the_guide(status: int) -> None:
    help_text = invoke_now("sync", "--help").stdout
    assert f"  {status}  " in help_text
    guide = GUIDE.read_text(encoding="utf-8")
    assert f"| {status} |" in guide
    assert main is not None
