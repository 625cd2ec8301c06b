"""Operator tokens can be listed without revealing them, and revoked at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.core import Hub
from hub.errors import NotFound, Unauthorized


@pytest.fixture
def home(tmp_path: Path) -> Path:
    Hub.init(tmp_path / "hub", "hub.example.org", root_keys=1, root_threshold=1).close()
    return tmp_path / "hub"


def test_a_revoked_operator_token_no_longer_authenticates(home: Path) -> None:
    hub = Hub.open(home)
    token = hub.access.create_operator_token("viewer", "dashboard")
    assert hub.access.authenticate(token).role == "viewer"
    assert hub.access.revoke_operator_tokens("dashboard") == 1
    with pytest.raises(Unauthorized):
        hub.access.authenticate(token)
    assert hub.reports.actions(limit=1)[0].action == "token.revoke"
    hub.close()


def test_revoking_a_holder_without_live_tokens_is_not_found(home: Path) -> None:
    hub = Hub.open(home)
    with pytest.raises(NotFound):
        hub.access.revoke_operator_tokens("nobody")
    hub.close()


def test_token_list_shows_holders_and_never_a_token(home: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(
        main, ["token", "create", "--role", "auditor", "--name", "watchdog", "--home", str(home)]
    )
    token = created.output.split()[-1]
    listed = runner.invoke(main, ["token", "list", "--json", "--home", str(home)])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert ("watchdog", "auditor", None) in [(r["name"], r["role"], r["revoked"]) for r in rows]
    assert token not in listed.output


def test_token_revoke_command_reports_and_mistakes_exit_one(home: Path) -> None:
    runner = CliRunner()
    runner.invoke(
        main, ["token", "create", "--role", "viewer", "--name", "dash", "--home", str(home)]
    )
    done = runner.invoke(main, ["token", "revoke", "dash", "--home", str(home)])
    assert (done.exit_code, done.output.strip()) == (0, "Revoked 1 token(s) of dash.")
    again = runner.invoke(main, ["token", "revoke", "dash", "--home", str(home)])
    assert again.exit_code == 1
    assert "no live operator token for 'dash'" in again.output
    assert "Traceback" not in again.output
