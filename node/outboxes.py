"""The node's durable outboxes: signed acks for the hub, webhook calls for the platform.

Both wait in the store until the other side confirms, and a retry sends the very
same bytes (same ``seq``, same idempotency key), after a back-off that doubles up
to ``max_backoff``. Acks carry the cumulative counters of ``Matching``, and the
matches the platform's policy kept up, cumulative per reason (``kept``, only once
there are some: ``node.policy``), so a lost ack loses nothing; they are sent in
``seq`` order. The sending itself is
``node.service.flush_acks`` and ``deliver_webhooks``: these classes only decide
what to send and record what happened.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from node.matching import newest_root
from node.store import NodeStore
from protocol import SigningKey, format_time
from protocol.ack import (
    COUNTER_NAMES,
    MAX_HASH_ENTRIES,
    MAX_OPINIONS,
    Ack,
    AppliedVersion,
    Counts,
    Opinion,
    sign_ack,
)

__all__ = ["AckOutbox", "WebhookOutbox", "retry_at"]


def retry_at(now: datetime, max_backoff: int, attempts: int, at_least: int = 0) -> datetime:
    """When to try again: doubling up to ``max_backoff``, and no sooner than ``at_least``
    seconds (a hub's ``Retry-After``, PROTOCOL.md §10.6)."""
    delay = max(min(max_backoff, 2 ** min(attempts, 20)), at_least)
    when: datetime = now + timedelta(seconds=delay)
    return when


class AckOutbox:
    """Signs one ack per list with the current totals, queues it, and follows the
    hub's answers (confirmed, retried, refused, or renumbered after a lost database)."""

    def __init__(
        self,
        store: NodeStore,
        key: SigningKey,
        *,
        node_id: str,
        lists: Sequence[str],
        max_backoff: int,
        now: Callable[[], datetime],
        before_counting: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.key = key
        self.node_id = node_id
        self.lists = tuple(lists)
        self.max_backoff = max_backoff
        self.now = now
        self.before_counting = before_counting
        """Writes counts kept in memory (the misses' ``checked``) before an ack reads them."""

    def counts(self, list_id: str) -> Counts:
        """The list's cumulative totals, and the per-hash counters changed since the last
        ack (at most ``MAX_HASH_ENTRIES``: an ack holds so many)."""
        self.before_counting()
        totals = dict.fromkeys(COUNTER_NAMES, 0)
        per_hash: dict[str, dict[str, int]] = {}
        for row in self.store.matches.counters(list_id):
            if row["hash"] == "":
                totals[row["name"]] = row["value"]
            elif row["changed"] and row["name"] != "checked":
                per_hash.setdefault(row["hash"], {})[row["name"]] = row["value"]
        if len(per_hash) > MAX_HASH_ENTRIES:  # an ack holds so many; the rest go in the next
            per_hash = {h: per_hash[h] for h in sorted(per_hash)[:MAX_HASH_ENTRIES]}
        return Counts(**totals, hashes=per_hash)

    def opinions(self, list_id: str) -> dict[str, Opinion]:
        """The platform's positions on entries of the list that changed since its last
        ack (at most ``MAX_OPINIONS``: the rest go in a further ack)."""
        return {
            entry: Opinion(position, reason)
            for entry, (position, reason) in self.store.matches.changed_opinions(
                list_id, MAX_OPINIONS
            ).items()
        }

    def enqueue(self, list_ids: Iterable[str] | None = None) -> list[int]:
        """Sign one ack per applied list with the current totals and queue it.

        An ack carries at most ``MAX_HASH_ENTRIES`` changed per-hash counters; when
        more hashes changed, further acks (same totals) carry the rest; so with the
        platform's changed positions on entries (``opinions``, ``MAX_OPINIONS``).
        """
        root = newest_root(self.store)
        if root is None:
            return []
        queued = []
        pending = []
        for list_id in sorted(set(list_ids or self.lists)):
            spec = root.lists.get(list_id)
            if spec is None:
                continue
            trust = self.store.stored_list(list_id, spec.hash_type).trust
            if trust.version > 0:
                pending.append((list_id, trust))
        while pending:
            list_id, trust = pending.pop(0)
            with self.store.atomic():
                seq = self.store.acks.next_seq()
                data, sig = sign_ack(
                    key=self.key,
                    node=self.node_id,
                    list_id=list_id,
                    seq=seq,
                    sent=self.now(),
                    origin=root.origin(list_id),
                    applied=AppliedVersion(trust.version, trust.compact.root(), trust.state),
                    counts=(counts := self.counts(list_id)),
                    opinions=(opinions := self.opinions(list_id)),
                    kept=self.store.policy.kept(list_id),
                )
                self.store.acks.queue(seq, list_id, data, sig, format_time(self.now()), self.now())
                self.store.matches.counters_sent(list_id, counts.hashes)
                self.store.matches.opinions_sent(list_id, opinions)
            queued.append(seq)
            if len(counts.hashes) == MAX_HASH_ENTRIES or len(opinions) == MAX_OPINIONS:
                pending.insert(0, (list_id, trust))
        return queued

    def due(self) -> list[dict[str, Any]]:
        """The acks to send now, in ``seq`` order (none while the oldest waits out its
        back-off: ``AckTables.due``)."""
        return self.store.acks.due(self.now())

    def sent(self, seq: int, ok: bool, error: str = "", *, retry_after: int = 0) -> None:
        """Note the hub's answer to ack ``seq``: confirmed, or tried again after a back-off."""
        with self.store.atomic():
            row = self.store.acks.get(seq)
            if row is None:
                return
            if ok:
                version = json.loads(bytes(row["bytes"]))["applied"]["version"]
                self.store.acks.confirmed(seq, row["list_id"], version, self.now())
            else:
                attempts = row["attempts"] + 1
                self.store.acks.retry_later(
                    seq,
                    attempts,
                    retry_at(self.now(), self.max_backoff, attempts, retry_after),
                    error[:500],
                )

    def refused(self, seq: int, error: str) -> None:
        """The hub will never accept these bytes: keep them as evidence, free the queue.

        A split-view refusal (422) is the most important evidence a node can hold; a
        replayed ``seq`` (409) or a malformed ack (400) would block every later ack if
        it stayed at the head of the queue. The counters are cumulative, so the next
        ack carries everything this one did.
        """
        with self.store.atomic():
            row = self.store.acks.get(seq)
            if row is None:
                return
            self.store.add_evidence(
                row["list_id"],
                "AckRefused",
                f"seq {seq}: {error[:500]}",
                self.now(),
                bytes(row["bytes"]),
            )
            self.store.acks.drop(seq)

    def resign(self, key: SigningKey) -> list[int]:
        """Sign every queued ack again with ``key``, the node's new key, same ``seq``.

        After ``hashhub-node key rotate`` the hub verifies the node's acks from its
        next ``seq`` on by the new key (PROTOCOL.md §10.4.1); acks queued but not yet
        delivered were signed by the old one and would be refused. Returns their seqs.
        """
        self.key = key
        return self._sign_queue_again(lambda old, _: old.seq, None)

    def renumber(self, last_seq: int) -> list[int]:
        """Re-sign every queued ack above the hub's ``last_seq``, keeping their order.

        A node that lost its database counts ``seq`` from 1 again, and the hub, which
        has the old node's acks, refuses each with 409 ``seq_conflict`` and its last
        ``seq``. The queued acks say nothing that depends on ``seq`` (their counters
        are cumulative), so they are signed again as ``last_seq + 1``, ``+ 2``, … and
        the old bytes are kept as evidence. Returns the new numbers.
        """
        return self._sign_queue_again(
            lambda _, n: last_seq + 1 + n, f"the hub's last seq is {last_seq}"
        )

    def _sign_queue_again(
        self, seq_of: Callable[[Ack, int], int], evidence: str | None
    ) -> list[int]:
        """Sign the queued acks again with ``self.key``, the n-th as ``seq_of(ack, n)``,
        in one transaction; with ``evidence``, the old bytes are kept, saying why."""
        root = newest_root(self.store)
        if root is None:
            return []
        signed = []
        with self.store.atomic():
            rows = self.store.acks.queued()
            self.store.acks.drop_all()
            for n, row in enumerate(rows):
                old = Ack.from_bytes(bytes(row["bytes"]))
                seq = seq_of(old, n)
                data, sig = sign_ack(
                    key=self.key,
                    node=old.node,
                    list_id=old.list_id,
                    seq=seq,
                    sent=self.now(),
                    origin=root.origin(old.list_id),
                    applied=old.applied,
                    counts=old.counts,
                    opinions=old.opinions,
                    kept=old.kept,
                )
                self.store.acks.queue(seq, old.list_id, data, sig, row["created"], self.now())
                if evidence is not None:
                    self.store.add_evidence(
                        old.list_id,
                        "AckRenumbered",
                        f"seq {old.seq} re-signed as {seq}: {evidence}",
                        self.now(),
                        bytes(row["bytes"]),
                    )
                signed.append(seq)
        return signed


class WebhookOutbox:
    """Webhook calls to the platform: queued once per key, signed, retried until 2xx."""

    def __init__(
        self,
        store: NodeStore,
        *,
        url: str,
        secret: str,
        max_backoff: int,
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.url = url
        self.secret = secret
        self.max_backoff = max_backoff
        self.now = now

    def queue(self, key: str, body: dict[str, Any]) -> int:
        """Queue one call under its idempotency ``key``; returns how many were queued
        (0 without a webhook URL, or when the key was queued before)."""
        if not self.url:
            return 0
        return self.store.webhooks.queue(key, json.dumps(body, sort_keys=True).encode(), self.now())

    def due(self) -> list[dict[str, Any]]:
        """The webhook calls whose back-off has passed."""
        return self.store.webhooks.due(self.now())

    def signature(self, body: bytes) -> str:
        """``sha256=<hex HMAC-SHA256 of the body with the shared webhook secret>``."""
        mac = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return f"sha256={mac}"

    def sent(self, row_id: int, ok: bool, error: str = "") -> None:
        """Note the platform's answer: delivered, or tried again after a back-off."""
        with self.store.atomic():
            if ok:
                self.store.webhooks.delivered(row_id, self.now())
                return
            attempts = self.store.webhooks.attempts(row_id) + 1
            when = retry_at(self.now(), self.max_backoff, attempts)
            self.store.webhooks.retry_later(row_id, attempts, when, error[:500])
