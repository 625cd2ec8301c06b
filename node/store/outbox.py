"""The durable outboxes: signed acks for the hub, webhook calls for the platform.

- ``ack_outbox``: signed ack bytes, removed only when the hub confirms (then noted
  in ``acks_confirmed``, so ``seq`` keeps growing) or refuses them for good;
- ``webhook_outbox``: one row per idempotency key, marked delivered on a 2xx.

A retry sends the very same bytes, so the rows keep them as signed.
``node.outboxes`` decides what to send and when; this only stores, as
``NodeStore.acks`` and ``NodeStore.webhooks``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from node.store.tables import Tables
from protocol import format_time

__all__ = ["AckTables", "WebhookTables"]


class AckTables(Tables):
    """Queued acks in ``seq`` order, and the ``seq`` numbers the hub confirmed: of the
    view's hub only, since each hub numbers the acks it receives on its own."""

    def next_seq(self) -> int:
        """One above every ``seq`` queued or confirmed."""
        row = self._one(
            "SELECT max((SELECT coalesce(max(seq), 0) FROM ack_outbox WHERE hub = ?), "
            "(SELECT coalesce(max(seq), 0) FROM acks_confirmed WHERE hub = ?)) AS last",
            [self.hub, self.hub],
        )
        return 1 + (row["last"] if row else 0)

    def queue(
        self, seq: int, list_id: str, data: bytes, sig: bytes, created: str, now: datetime
    ) -> None:
        """Queue signed ack bytes, due at once."""
        self.db.table("ack_outbox").insert(
            {
                "hub": self.hub,
                "seq": seq,
                "list_id": list_id,
                "bytes": data,
                "sig": sig,
                "created": created,
                "next_attempt": format_time(now),
            }
        )

    def queued(self) -> list[dict[str, Any]]:
        """Every queued ack in ``seq`` order."""
        return list(
            self.db.query("SELECT * FROM ack_outbox WHERE hub = ? ORDER BY seq", [self.hub])
        )

    def get(self, seq: int) -> dict[str, Any] | None:
        """The queued ack ``seq``, or None (confirmed or dropped meanwhile)."""
        return self._one("SELECT * FROM ack_outbox WHERE hub = ? AND seq = ?", [self.hub, seq])

    def due(self, now: datetime) -> list[dict[str, Any]]:
        """The acks to send now, in ``seq`` order.

        Acks go strictly in order, since the hub refuses a ``seq`` below one it has:
        while the oldest waits out its back-off, none is due (the rest follow it).
        """
        rows = self.queued()
        if rows and rows[0]["next_attempt"] > format_time(now):
            return []
        return rows

    def confirmed(self, seq: int, list_id: str, version: int, now: datetime) -> None:
        """The hub accepted ack ``seq``: remember it as confirmed, free the queue."""
        self.db.table("acks_confirmed").insert(
            {
                "hub": self.hub,
                "seq": seq,
                "list_id": list_id,
                "version": version,
                "confirmed": format_time(now),
            },
            replace=True,
        )
        self.drop(seq)

    def retry_later(self, seq: int, attempts: int, next_attempt: datetime, error: str) -> None:
        self.db.execute(
            "UPDATE ack_outbox SET attempts = ?, next_attempt = ?, last_error = ? "
            "WHERE hub = ? AND seq = ?",
            [attempts, format_time(next_attempt), error, self.hub, seq],
        )

    def drop(self, seq: int) -> None:
        self.db.execute("DELETE FROM ack_outbox WHERE hub = ? AND seq = ?", [self.hub, seq])

    def drop_all(self) -> None:
        self.db.execute("DELETE FROM ack_outbox WHERE hub = ?", [self.hub])

    def pending(self) -> int:
        return self._count("SELECT count(*) AS n FROM ack_outbox WHERE hub = ?", [self.hub])


class WebhookTables(Tables):
    """Webhook calls, once per idempotency key, until the platform answers 2xx."""

    def queue(self, key: str, body: bytes, now: datetime) -> int:
        """Queue a webhook call once per idempotency key; 1 if queued, 0 if already known."""
        stamp = format_time(now)
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO webhook_outbox (idempotency_key, body, created, next_attempt) "
            "VALUES (?, ?, ?, ?)",
            [key, body, stamp, stamp],
        )
        return int(cursor.rowcount)

    def due(self, now: datetime) -> list[dict[str, Any]]:
        """Undelivered webhook calls whose back-off has passed, oldest first."""
        return list(
            self.db.query(
                "SELECT * FROM webhook_outbox WHERE delivered IS NULL AND next_attempt <= ? "
                "ORDER BY id",
                [format_time(now)],
            )
        )

    def delivered(self, row_id: int, now: datetime) -> None:
        self.db.execute(
            "UPDATE webhook_outbox SET delivered = ?, last_error = NULL WHERE id = ?",
            [format_time(now), row_id],
        )

    def attempts(self, row_id: int) -> int:
        row = self._one("SELECT attempts FROM webhook_outbox WHERE id = ?", [row_id])
        if row is None:
            raise LookupError(f"no queued webhook {row_id}")
        return int(row["attempts"])

    def retry_later(self, row_id: int, attempts: int, next_attempt: datetime, error: str) -> None:
        self.db.execute(
            "UPDATE webhook_outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?",
            [attempts, format_time(next_attempt), error, row_id],
        )

    def pending(self) -> int:
        return self._count("SELECT count(*) AS n FROM webhook_outbox WHERE delivered IS NULL")
