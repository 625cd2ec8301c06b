"""``edge.database``: transactions that take the write lock first, on a real SQLite file.

Two connections to one WAL file stand for two processes (``hashhub publish`` beside
``hashhub serve``). The second one's transaction reads, then writes; with
sqlite-utils' deferred ``BEGIN`` it would fail at once with "database is locked"
whatever the busy timeout, while ``BEGIN IMMEDIATE`` waits for the lock, up to the
timeout, and then reads what the first committed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import click
import pytest

from edge.cli import reported
from edge.database import BUSY_TIMEOUT, ImmediateDatabase, connect

HOLD = 0.4


def open_db(path: Path, timeout: float = BUSY_TIMEOUT) -> ImmediateDatabase:
    db = connect(path, timeout=timeout)
    db.execute("PRAGMA journal_mode=WAL")
    return db


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "shared.db"
    db = open_db(path)
    db.execute("CREATE TABLE counts (n INTEGER NOT NULL)")
    db.close()
    return path


def counts(path: Path) -> list[int]:
    db = open_db(path)
    try:
        return [row["n"] for row in db.query("SELECT n FROM counts ORDER BY n")]
    finally:
        db.close()


def add_next(db: ImmediateDatabase) -> int:
    """Read the highest count, then write the next: a read before the first write."""
    with db.atomic():
        (highest,) = db.execute("SELECT coalesce(max(n), 0) FROM counts").fetchone()
        db.execute("INSERT INTO counts (n) VALUES (?)", [highest + 1])
    return int(highest)


def test_a_second_writer_waits_for_the_lock_then_reads_what_the_first_committed(
    path: Path,
) -> None:
    first = open_db(path)
    first.conn.execute("BEGIN IMMEDIATE")
    first.execute("INSERT INTO counts (n) VALUES (1)")
    outcome: dict[str, object] = {}

    def second_process() -> None:
        db = open_db(path, timeout=10)
        started = time.monotonic()
        try:
            outcome["read"] = add_next(db)
        except sqlite3.Error as e:  # reported by the assertions below
            outcome["error"] = e
        finally:
            outcome["waited"] = time.monotonic() - started
            db.close()

    thread = threading.Thread(target=second_process)
    thread.start()
    time.sleep(HOLD)
    first.conn.execute("COMMIT")
    first.close()
    thread.join(10)

    assert "error" not in outcome, outcome
    assert outcome["read"] == 1, "it read after the first writer committed"
    assert isinstance(outcome["waited"], float)
    assert outcome["waited"] >= HOLD - 0.1
    assert counts(path) == [1, 2], "both writes, none lost"


def test_past_the_busy_timeout_the_second_writer_gives_up_with_the_locked_error(
    path: Path,
) -> None:
    first = open_db(path)
    first.conn.execute("BEGIN IMMEDIATE")
    second = open_db(path, timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked") as caught:
            add_next(second)
        assert time.monotonic() - started >= 0.15, "it waited for the busy timeout"
        assert caught.value.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
        assert not second.conn.in_transaction

        with pytest.raises(click.ClickException) as message, reported(busy_timeout=0.2):
            add_next(second)
        assert message.value.message == (
            "database: database is locked (another process held its write lock for over "
            "0.2 s); run the command again"
        )
    finally:
        first.conn.execute("ROLLBACK")
        first.close()
    assert add_next(second) == 0, "once the lock is free the same write succeeds"
    second.close()
    assert counts(path) == [1]


def insert_then_fail(db: ImmediateDatabase, n: int) -> None:
    with db.atomic():
        db.execute("INSERT INTO counts (n) VALUES (?)", [n])
        raise ValueError(f"after {n}")


def test_an_error_rolls_the_whole_transaction_back(path: Path) -> None:
    db = open_db(path)
    with pytest.raises(ValueError, match="after 1"):
        insert_then_fail(db, 1)
    assert not db.conn.in_transaction
    db.close()
    assert counts(path) == []


def test_a_nested_block_is_a_savepoint(path: Path) -> None:
    db = open_db(path)
    with db.atomic():
        db.execute("INSERT INTO counts (n) VALUES (1)")
        with pytest.raises(ValueError, match="after 2"):
            insert_then_fail(db, 2)
        db.execute("INSERT INTO counts (n) VALUES (3)")
    db.close()
    assert counts(path) == [1, 3], "the inner block alone was undone"


def test_a_commit_that_fails_leaves_no_transaction_open(path: Path) -> None:
    """A deferred foreign key that does not hold refuses the COMMIT: rolled back, not stuck."""
    db = open_db(path)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute(
        "CREATE TABLE child (parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(sqlite3.IntegrityError), db.atomic():
        db.execute("INSERT INTO child (parent) VALUES (42)")
    assert not db.conn.in_transaction
    assert list(db.query("SELECT * FROM child")) == []
    db.close()
