"""What every group of the node's tables shares: the connection and two query helpers.

Each group (``ListTables``, ``MatchTables``, ``AckTables``, ``WebhookTables``)
holds the one connection ``NodeStore`` opened, so that writes through any of them
take part in the same ``NodeStore.atomic()`` block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Sequence
from typing import Any

import sqlite_utils

__all__ = ["Tables"]


class Tables:
    """A group of the node's tables, read and written through the store's connection."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    @contextlib.contextmanager
    def snapshot(self) -> Generator[None, None, None]:
        """One read transaction (a deferred ``BEGIN``: no write lock), so that several
        reads see one state of the database; nothing when a transaction is already
        open, since its reads agree already."""
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = list(self.db.query(sql, params))
        return rows[0] if rows else None

    def _count(self, sql: str) -> int:
        row = self._one(sql)
        return 0 if row is None else int(row["n"])
