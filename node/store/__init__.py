"""The node's SQLite store: trust state, list states, evidence, events and outboxes.

The only part of the node that holds SQL, split by the tables each part keeps:

- here: ``NodeStore``, the connection and ``atomic()``, and ``storage_error``
  (the follower's, ``follow.errors``: the node's API answers with it too);
- ``node.store.lists``: ``ListTables``, what a sync reads and writes (``roots``,
  ``lists``, ``state_changes``, ``evidence``), which ``NodeStore`` is;
- ``node.store.matches``: ``MatchTables`` (``store.matches``): ``content``,
  ``match_events`` and ``counters``;
- ``node.store.outbox``: ``AckTables`` (``store.acks``) and ``WebhookTables``
  (``store.webhooks``): the durable outboxes;
- ``node.store.opinions``: ``OpinionTables`` (``store.opinions``): what the hub's
  newest verified opinion summary of each list says of its entries;
- ``node.store.policy``: ``PolicyTables`` (``store.policy``): the platform's own
  policy (``node.policy``) and the decisions it made;
- ``node.store.schema``: the migrations.

One file, WAL mode, ``synchronous=FULL`` (a trust record that survives a crash
only half-written is worse than none). docs/design.md §5.2 describes the tables.

Two faults from outside (ADR 0016): every ``db.atomic()`` begins with ``BEGIN
IMMEDIATE`` (``edge.database.ImmediateDatabase``, the hub's too), so a transaction
waits up to ``BUSY_TIMEOUT`` for another process's write lock instead of failing at
once; and a write the disk refuses (SQLite's "database or disk is full" or "disk
I/O error") is told apart from other database errors by ``storage_error``: the
transaction is rolled back, the update ends ``failed``, and the API answers 507.
``NodeStore`` lives here, not in a submodule, so that it reads ``BUSY_TIMEOUT``
from this module when it connects: the command line reads the same name, and a
test or tool that lowers it changes both.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator
from pathlib import Path

import sqlite_utils

from edge.database import BUSY_TIMEOUT, connect
from follow.errors import storage_error
from node.store.contributions import ContributionTables
from node.store.lists import STATE_LOG_FRACTION, ListTables
from node.store.matches import ContentRows, MatchSource, MatchTables, Outcome
from node.store.opinions import NO_STANCE, OpinionTables, Stance
from node.store.outbox import AckTables, WebhookTables
from node.store.policy import PolicyTables
from node.store.schema import migrations
from node.store.tables import DEFAULT_HUB

__all__ = [
    "BUSY_TIMEOUT",
    "DEFAULT_HUB",
    "NO_STANCE",
    "STATE_LOG_FRACTION",
    "AckTables",
    "ContentRows",
    "ListTables",
    "MatchSource",
    "MatchTables",
    "NodeStore",
    "OpinionTables",
    "Outcome",
    "PolicyTables",
    "Stance",
    "WebhookTables",
    "migrations",
    "storage_error",
]


class NodeStore(ListTables):
    """Typed access to the node's database. One instance per thread.

    The list and root methods are the store's own (``ListTables``: a sync uses
    them throughout); the rest are grouped by what they keep, over the same
    connection: ``matches``, ``acks``, ``webhooks``, ``policy`` and ``opinions``.
    Each instance is scoped to one followed hub (``hub``, ``DEFAULT_HUB`` unless
    given; ``view`` gives another hub's over the same connection).
    """

    def __init__(
        self, path: Path, *, hub: str = DEFAULT_HUB, db: sqlite_utils.Database | None = None
    ) -> None:
        if db is None:
            if not path.exists():
                # The registry says what content the platform hosts: owner-only, like the keys.
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            db = connect(path, timeout=BUSY_TIMEOUT)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            migrations.apply(db)
        self.path = path
        super().__init__(db, hub)
        self.matches = MatchTables(db, hub)
        self.acks = AckTables(db, hub)
        self.webhooks = WebhookTables(db, hub)
        self.policy = PolicyTables(db, hub)
        self.opinions = OpinionTables(db, hub)
        self.contributions = ContributionTables(db, hub)

    def view(self, hub: str) -> NodeStore:
        """This store scoped to another followed hub, over the same connection: what
        its syncer, ack outbox and counters read and write (``Tables``). Closing a
        view closes the connection, so only the store that opened it is closed."""
        return self if hub == self.hub else NodeStore(self.path, hub=hub, db=self.db)

    def hubs(self) -> list[str]:
        """Every hub the store holds lists or roots of, followed now or not."""
        return [
            r["hub"]
            for r in self.db.query("SELECT hub FROM lists UNION SELECT hub FROM roots ORDER BY hub")
        ]

    def close(self) -> None:
        self.db.close()

    def commits_elsewhere(self) -> int:
        """SQLite's count of commits by other connections to the file (``PRAGMA
        data_version``): read without touching a table, so a process serving beside
        the one that syncs can ask every half second whether anything changed."""
        row = self.db.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    @contextlib.contextmanager
    def atomic(self) -> Generator[None, None, None]:
        """One write transaction (``BEGIN IMMEDIATE``); nested blocks are savepoints.

        Every write of the store and its groups takes part in an enclosing block, so
        a caller makes several of them one transaction by wrapping them in this.
        """
        with self.db.atomic():
            yield
