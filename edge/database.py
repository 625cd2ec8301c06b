"""The SQLite database of the hub and of the node: transactions that take the write lock first.

Both keep one SQLite file in WAL mode that another process may write at the same
time (``hashhub publish`` beside ``hashhub serve``, ``hashhub-node sync`` beside
the daemon). ``ImmediateDatabase`` makes every ``atomic()`` block wait its turn
for the write lock, up to the busy timeout, instead of failing at once (ADR 16);
``connect`` opens a file that way. ``DatabaseThread`` runs the calls of one
connection on one thread of its own, so an event loop never waits on the disk.
What each role's database holds, and its pragmas and migrations, stay with the
role.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Generic, TypeVar

import sqlite_utils

__all__ = ["BUSY_TIMEOUT", "DatabaseThread", "ImmediateDatabase", "connect"]

T = TypeVar("T")
R = TypeVar("R")

BUSY_TIMEOUT = 30.0
"""Seconds a transaction waits for another connection's write lock before giving up."""


class ImmediateDatabase(sqlite_utils.Database):
    """A ``sqlite_utils.Database`` whose transactions take the write lock first.

    sqlite-utils begins ``atomic()`` with a plain (deferred) ``BEGIN``: the write lock
    is asked for only at the first write. In WAL mode a transaction that has already
    read and then finds the write lock held by another connection gets SQLITE_BUSY at
    once, without the busy timeout (its snapshot would be out of date by the time the
    lock is free), so ``hashhub publish`` failed whenever another process was writing.
    ``BEGIN IMMEDIATE`` asks for the lock before the first read, where the busy
    timeout applies: the transaction waits its turn, then reads what the other writer
    committed. Every ``atomic()`` of the hub and of the node writes, so none is slowed
    for nothing. Nested blocks are savepoints, as in sqlite-utils.
    """

    @contextlib.contextmanager
    def atomic(self) -> Generator[sqlite_utils.Database, None, None]:
        if self.conn.in_transaction:
            with super().atomic() as db:
                yield db
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.rollback()  # a no-op if the error already ended the transaction
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise


def connect(path: Path, timeout: float = BUSY_TIMEOUT) -> ImmediateDatabase:
    """Open ``path`` (created if missing) with a busy timeout of ``timeout`` seconds.

    ``isolation_level=None`` leaves transactions to ``atomic()``: Python's sqlite3
    would otherwise open its own deferred one before a write.
    """
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=timeout)
    return ImmediateDatabase(conn)


class DatabaseThread(Generic[T]):
    """Runs every call on one connection on one dedicated thread (datasette's pattern).

    ``factory`` is called on that thread to build the object that owns the
    connection (the hub's ``Hub``, the node's sync ``NodeStore``); ``call`` then runs
    ``fn(owned)`` there and awaits it. SQLite connections belong to the thread that
    made them, and one thread serialises the calls, so no transaction interleaves
    with another's; the event loop goes on serving while a call waits on the disk or
    a busy lock.
    """

    def __init__(self, factory: Callable[[], T], *, name: str = "hashhub-db") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._owned = self._executor.submit(factory).result()

    async def call(self, fn: Callable[[T], R]) -> R:
        """``fn(owned)`` on the thread; its exception is raised here."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._owned)

    def close(self, closer: Callable[[T], None]) -> None:
        """Run ``closer(owned)`` on the thread, then end the thread."""
        self._executor.submit(closer, self._owned).result()
        self._executor.shutdown(wait=True)
