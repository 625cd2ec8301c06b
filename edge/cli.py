"""The command-line plumbing of ``hashhub``, ``hashhub-node`` and ``hashhub-audit``.

A mistake by the person at the keyboard (an unknown list, a key file others can
read, a database another process keeps locked) is one line on standard error and
exit status 1, never a traceback: ``reported`` turns the errors a command expects
into ``click.ClickException``. Which errors those are is the role's to say: the
hub and the node expect every ``HashhubError`` and their database's errors, the
auditor only the errors of what it reads (a source, a witness file, a key file),
so that a rule a tree breaks stays a finding rather than a message. The
role-specific exit statuses (a rejected update, a failed check) are outcomes, not
mistakes, and stay with each role's commands.

Also here: ``opened`` (a role's home opened for one command and always closed),
``home_option`` (``--home`` with the role's variable), ``json_option``,
``echo_json`` and ``table``, which every role's commands print with.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click

from protocol.errors import HashhubError

__all__ = [
    "echo_json",
    "home_option",
    "json_option",
    "locked_hint",
    "one_line",
    "opened",
    "reported",
    "shell_user",
    "table",
]

F = TypeVar("F", bound=Callable[..., Any])


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


def shell_user() -> str:
    """Who an action log names for a command run from this shell: ``cli:<user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def one_line(text: str) -> str:
    """``text`` on one line: a message spread over lines would read as several on a terminal."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def locked_hint(error: sqlite3.Error, busy_timeout: float) -> str:
    """What a lock held past the busy timeout means (each transaction waits that long).

    "database is locked" alone reads like damage; the hint says another process
    held the lock, for how long this one waited, and that trying again is safe.
    """
    code = getattr(error, "sqlite_errorcode", None)
    if not isinstance(code, int) or code & 0xFF != sqlite3.SQLITE_BUSY:
        return ""
    return (
        f" (another process held its write lock for over {busy_timeout:g} s); run the command again"
    )


@contextmanager
def reported(
    expected: tuple[type[Exception], ...] = (HashhubError,),
    *,
    busy_timeout: float | None = None,
) -> Iterator[None]:
    """Turn the errors a command expects into one-line messages (exit 1).

    Args:
        expected: the errors whose message is the whole story.
        busy_timeout: the seconds the role's database waits for a lock; None for a
            role without a database, whose ``sqlite3`` errors are then not expected.
    """
    try:
        yield
    except expected as e:
        raise click.ClickException(one_line(str(e))) from e
    except sqlite3.Error as e:
        if busy_timeout is None:
            raise
        hint = locked_hint(e, busy_timeout)
        raise click.ClickException(f"database: {one_line(str(e))}{hint}") from e
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise click.ClickException(one_line(f"{where}{e.strerror or e}")) from e


@contextmanager
def opened(open_home: Callable[[], C], *, busy_timeout: float) -> Iterator[C]:
    """A role's home, opened with its errors ``reported``, and closed whatever happens."""
    with reported(busy_timeout=busy_timeout):
        home = open_home()
        try:
            yield home
        finally:
            home.close()


def home_option(envvar: str, help: str) -> Callable[[F], F]:
    """``--home DIR``, required, or from the role's environment variable ``envvar``."""

    def decorate(command: F) -> F:
        return click.option(
            "--home",
            type=click.Path(file_okay=False, path_type=Path),
            envvar=envvar,
            show_envvar=True,
            required=True,
            help=help,
        )(command)

    return decorate


def json_option(command: F) -> F:
    """``--json``: the command prints JSON (``as_json``) instead of lines for people."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns, two spaces apart; None shows as '-'."""
    cells = [list(headers)] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )
