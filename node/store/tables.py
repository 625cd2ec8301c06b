"""What every group of the node's tables shares: the connection and two query helpers.

Each group (``ListTables``, ``MatchTables``, ``AckTables``, ``WebhookTables``)
holds the one connection ``NodeStore`` opened, so that writes through any of them
take part in the same ``NodeStore.atomic()`` block, and the hub it is scoped to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Sequence
from typing import Any

import sqlite_utils

__all__ = ["DEFAULT_HUB", "Tables"]

DEFAULT_HUB = "default"
"""The hub of a ``node.toml`` without ``[[hubs]]`` tables, and of every row a store
held before it followed several hubs."""


class Tables:
    """A group of the node's tables, read and written through the store's connection.

    ``hub`` scopes every table keyed by a list (or by a hub's ``seq``) to one followed
    hub: a list is named by the pair (hub, list id), so each hub's roots, lists, acks
    and counters are read and written through a view of its own over the one
    connection. Tables that span the hubs (content, webhooks, exemptions) ignore it.
    """

    def __init__(self, db: sqlite_utils.Database, hub: str = DEFAULT_HUB) -> None:
        self.db = db
        self.hub = hub

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

    def _count(self, sql: str, params: Sequence[Any] = ()) -> int:
        row = self._one(sql, params)
        return 0 if row is None else int(row["n"])
