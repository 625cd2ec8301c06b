"""``edge.cli``: the errors a command expects as one line and exit 1, never a traceback.

A small click group stands for a role's command line, so each case goes through
click's own handling of ``ClickException``: the status and standard error a user sees.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import ClassVar

import click
import pytest
from click.testing import CliRunner

from edge.cli import (
    echo_json,
    home_option,
    json_option,
    locked_hint,
    one_line,
    opened,
    reported,
    table,
)
from protocol import HashhubError, KeyFileError, ProtocolError


class Home:
    """What a role's ``open`` returns: something to close whatever the command did."""

    opened: ClassVar[list[Home]] = []

    def __init__(self, path: Path) -> None:
        self.path = path
        self.closed = False
        Home.opened.append(self)

    def close(self) -> None:
        self.closed = True


def busy() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
    return error


RAISED: dict[str, BaseException] = {
    "hashhub": HashhubError("list x:\n  no such list"),
    "protocol": ProtocolError("bad signature"),
    "key": KeyFileError("node.key: permissions too open"),
    "busy": busy(),
    "corrupt": sqlite3.DatabaseError("file is not a database"),
    "os": FileNotFoundError(errno.ENOENT, "No such file or directory", "/nowhere/hub.toml"),
    "os-bare": OSError("the disk said no"),
}


@click.group()
def role() -> None:
    """A role with a database (the hub, the node)."""


@role.command()
@click.argument("what")
@home_option("TEST_HOME", "The home.")
def fail(what: str, home: Path) -> None:
    with opened(lambda: Home(home), busy_timeout=0.5):
        raise RAISED[what]


@role.command()
@click.argument("what")
def audit(what: str) -> None:
    """A role without a database that expects only some errors (the auditor)."""
    with reported((KeyFileError,)):
        raise RAISED[what]


@role.command()
@json_option
@home_option("TEST_HOME", "The home.")
def show(as_json: bool, home: Path) -> None:
    if as_json:
        echo_json({"home": str(home)})
    else:
        click.echo(table(["setting", "value"], [["home", home], ["name", None]]))


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("hashhub", "list x: no such list"),
        ("protocol", "bad signature"),
        ("key", "node.key: permissions too open"),
        (
            "busy",
            "database: database is locked (another process held its write lock for over "
            "0.5 s); run the command again",
        ),
        ("corrupt", "database: file is not a database"),
        ("os", "/nowhere/hub.toml: No such file or directory"),
        ("os-bare", "the disk said no"),
    ],
)
def test_an_expected_error_is_one_line_and_exit_1(what: str, message: str) -> None:
    Home.opened.clear()
    result = CliRunner().invoke(role, ["fail", what, "--home", "somewhere"])
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: {message}\n"
    assert result.exc_info is not None
    assert result.exc_info[0] is SystemExit
    assert [h.closed for h in Home.opened] == [True], "the home is closed after the error"
    assert Home.opened[0].path == Path("somewhere")


def test_a_role_expects_only_the_errors_it_names() -> None:
    """The auditor turns a key file's error into a message, never a rule a tree broke."""
    mistake = CliRunner().invoke(role, ["audit", "key"])
    assert (mistake.exit_code, mistake.stderr) == (1, "Error: node.key: permissions too open\n")
    assert CliRunner().invoke(role, ["audit", "os"]).exit_code == 1
    for unexpected in ("protocol", "busy"):
        result = CliRunner().invoke(role, ["audit", unexpected])
        assert result.exit_code == 1
        assert result.exc_info is not None
        assert result.exc_info[1] is RAISED[unexpected], "raised as is, not as a message"


def test_the_home_option_reads_the_roles_variable() -> None:
    runner = CliRunner()
    from_env = runner.invoke(role, ["show", "--json"], env={"TEST_HOME": "/srv/home"})
    assert from_env.exit_code == 0, from_env.output
    assert from_env.stdout == '{\n  "home": "/srv/home"\n}\n'
    missing = runner.invoke(role, ["show"], env={"TEST_HOME": None})
    assert missing.exit_code == 2
    assert "--home" in missing.stderr
    assert "TEST_HOME" in runner.invoke(role, ["show", "--help"]).stdout


def test_table_aligns_columns_and_shows_none_as_a_dash() -> None:
    result = CliRunner().invoke(role, ["show", "--home", "/h"])
    assert result.stdout == "setting  value\nhome     /h\nname     -\n"


def test_one_line_and_the_locked_hint() -> None:
    assert one_line("  a\n\n  b  \r\nc ") == "a b c"
    assert locked_hint(busy(), 30.0).startswith(
        " (another process held its write lock for over 30 s)"
    )
    assert locked_hint(sqlite3.OperationalError("no such table: x"), 30.0) == ""
