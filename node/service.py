"""The node: keys, store, per-list match indexes, match events, acks and webhooks.

``Node`` is synchronous and owns one ``NodeStore`` connection; the daemon uses it
from its event-loop thread only (every call is milliseconds, except applying a
large update, which runs between polls). The network parts — sync, sending acks,
delivering webhooks — are ``async`` functions here that read what to send from
the store, send it, and write the result back.

Counters are cumulative per list (``checked``, ``matched``, ``actioned``,
``blocked``, ``false_positive``) and per listed hash; an ack carries the totals,
so a lost ack loses nothing. Acks and webhook calls wait in durable outboxes
until the other side confirms; a retry sends the very same bytes (same ``seq``,
same idempotency key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from node.config import CONFIG_NAME, NodeConfig, read_secret, write_secret
from node.errors import (
    InvalidContentError,
    InvalidOutcomeError,
    NodeConfigError,
    OutcomeConflictError,
    UnknownMatchError,
)
from node.imaging import ImageLimits, dihedral_pdq, file_digests, hash_image
from node.matcher import ListIndex
from node.store import NodeStore
from node.sync import Fetcher, ListOutcome, Syncer
from protocol import Limits, ListState, ProtocolError, Root, SigningKey, format_time, parse_time
from protocol.ack import (
    ACK_LAST_SEQ_HEADER,
    ACK_REFUSALS,
    ACK_SIGNATURE_HEADER,
    COUNTER_NAMES,
    MAX_HASH_ENTRIES,
    NODE_ID_PATTERN,
    Ack,
    AppliedVersion,
    Counts,
    sign_ack,
)
from protocol.keyfile import load_private_key, write_private_key, write_public_key
from protocol.lists import HASH_TYPES, validate_list_id

__all__ = [
    "OUTCOMES",
    "MatchResult",
    "Node",
    "deliver_webhooks",
    "flush_acks",
    "run_sync",
    "utcnow",
]

OUTCOMES = ("actioned", "blocked", "false_positive", "kept")
"""What a platform did about a match. ``kept`` (reviewed, left up) counts toward no counter."""

_OUTCOME_COUNTER = {
    "actioned": "actioned",
    "blocked": "blocked",
    "false_positive": "false_positive",
}


MAX_SEQ_JUMP = 1 << 32
"""A hub's claimed last ``seq`` beyond the node's own by more than this is not believed."""
"""Hub answers after which the same ack bytes can never be accepted (see ``ack_refused``)."""


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class MatchResult:
    """One listed hash that a query matched."""

    match_id: str
    list_id: str
    hash_type: str
    hash: bytes
    query: bytes
    distance: int
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "match_id": self.match_id,
            "list": self.list_id,
            "hash_type": self.hash_type,
            "hash": self.hash.hex(),
            "query": self.query.hex(),
            "distance": self.distance,
            "version": self.version,
        }


class Node:
    """One participating platform's node (see the module docstring)."""

    def __init__(self, home: Path, config: NodeConfig, *, now: Any = utcnow) -> None:
        self.home = home
        self.config = config
        self.now = now
        self.store = NodeStore(home / config.database)
        self.key = load_private_key(home / "node.key")
        token_file = home / "hub-token"
        self.token = read_secret(token_file) if token_file.exists() else ""
        self.api_token = read_secret(home / "api-token")
        self.webhook_secret = read_secret(home / "webhook-secret")
        self.indexes: dict[str, ListIndex] = {}
        self.damaged: set[str] = set()
        self.versions: dict[str, int] = {}
        self.image_limits = ImageLimits(max_bytes=config.max_upload_bytes)
        self.load_indexes()

    # -- setup ---------------------------------------------------------------------

    @classmethod
    def init(
        cls,
        home: Path,
        *,
        node_id: str,
        hub_url: str,
        lists: Sequence[str],
        pinned_root_sha256: str,
        token: str = "",
        mirrors: Sequence[str] = (),
        webhook_url: str = "",
        now: Any = utcnow,
        **settings: Any,
    ) -> Node:
        """Create a node home: configuration, a new Ed25519 key, and the secret files."""
        if (home / CONFIG_NAME).exists():
            raise NodeConfigError(f"{home} already holds a node")
        if not NODE_ID_PATTERN.fullmatch(node_id) or ".." in node_id:
            raise NodeConfigError(f"invalid node id {node_id!r}")
        for list_id in lists:
            try:
                validate_list_id(list_id)
            except ProtocolError as e:
                raise NodeConfigError(str(e)) from e
        if not lists:
            raise NodeConfigError("subscribe to at least one list")
        pin = pinned_root_sha256.strip().lower()
        if len(pin) != 64 or any(c not in "0123456789abcdef" for c in pin):
            raise NodeConfigError("the pinned root SHA-256 must be 64 hex digits")
        for url in (hub_url, *mirrors, *([webhook_url] if webhook_url else [])):
            if not url.startswith(("http://", "https://")):
                raise NodeConfigError(f"{url!r} is not an http(s) URL")
        config = NodeConfig(
            node_id=node_id,
            hub_url=hub_url.rstrip("/"),
            lists=tuple(lists),
            pinned_root_sha256=pin,
            mirrors=tuple(m.rstrip("/") for m in mirrors),
            webhook_url=webhook_url,
            **settings,
        )
        home.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only, as the keys
        key = SigningKey.generate()
        write_private_key(home / "node.key", key)
        write_public_key(home / "node.pub.pem", key.public)
        if token:  # else later, once the hub operator has enrolled the node's key
            write_secret(home / "hub-token", token)
        write_secret(home / "api-token", "hhl_" + secrets.token_urlsafe(32))
        write_secret(home / "webhook-secret", secrets.token_urlsafe(32))
        (home / CONFIG_NAME).write_text(config.to_toml(), encoding="utf-8")
        return cls(home, config, now=now)

    @classmethod
    def open(cls, home: Path, *, now: Any = utcnow) -> Node:
        return cls(home, NodeConfig.load(home), now=now)

    def close(self) -> None:
        self.store.close()

    def newest_root(self) -> Root | None:
        roots = self.store.roots()
        return Root.from_bytes(roots[-1][0]) if roots else None

    def load_indexes(self) -> None:
        """Build one match index per applied list from its stored (verified) state."""
        root = self.newest_root()
        if root is None:
            return
        for list_id in self.config.lists:
            spec = root.lists.get(list_id)
            if spec is None:
                continue
            stored = self.store.stored_list(list_id, spec.hash_type)
            # One SHA-256 pass (about 20 ms for 1M PDQ hashes) before enforcing a list:
            # a state damaged on disk is reported, and repaired by the next update.
            if stored.state.digest() != stored.trust.state:
                if list_id not in self.damaged:
                    self.store.add_evidence(
                        list_id,
                        "LocalCorruption",
                        f"stored state of v{stored.trust.version} does not match its digest",
                        self.now(),
                    )
                self.damaged.add(list_id)
            else:
                self.damaged.discard(list_id)
            data = stored.state.to_bytes()
            if list_id in self.damaged:
                # Enforce what is left, in order, until the next update repairs it.
                data = ListState.from_hashes(stored.state.width, stored.state).to_bytes()
            self.indexes[list_id] = ListIndex.from_snapshot(
                spec.hash_type, spec.max_distance, data, background=True
            )
            self.versions[list_id] = stored.trust.version

    # -- after a sync ----------------------------------------------------------------

    def absorb(self, outcomes: Iterable[ListOutcome]) -> int:
        """Follow applied updates: indexes, retroactive matches, acks. Returns new webhooks."""
        root = self.newest_root()
        if root is None:  # not even root v1 verified yet: the first update failed
            return 0
        webhooks = 0
        updated = []
        for outcome in outcomes:
            if outcome.status != "updated":
                continue
            spec = root.list_spec(outcome.list_id)
            index = self.indexes.get(outcome.list_id)
            if index is None or outcome.rebuilt or outcome.state is None:
                data = outcome.state.to_bytes() if outcome.state is not None else b""
                self.indexes[outcome.list_id] = ListIndex.from_snapshot(
                    spec.hash_type, spec.max_distance, data, background=True
                )
            else:
                index.apply(outcome.removed, outcome.added)
            self.versions[outcome.list_id] = outcome.to_version
            webhooks += self._retroactive(
                outcome.list_id, spec.hash_type, spec.max_distance, outcome
            )
            updated.append(outcome.list_id)
        if updated:
            self.enqueue_acks(updated)
        return webhooks

    def _retroactive(
        self, list_id: str, type_name: str, max_distance: int, outcome: ListOutcome
    ) -> int:
        """Search the content registry for newly listed hashes; queue one webhook per hit."""
        if not outcome.added:
            return 0
        registered = self.store.registered_content(type_name)
        if not registered:
            return 0
        added = ListIndex.from_snapshot(type_name, max_distance, b"".join(sorted(outcome.added)))
        results = added.match([content_hash for _, content_hash in registered])
        queued = 0
        for (content_id, content_hash), matches in zip(registered, results, strict=True):
            for m in matches:
                event = self._event(
                    list_id, m.hash, content_hash, m.distance, "registry", content_id
                )
                key = f"{list_id}:{outcome.to_version}:{m.hash.hex()}:{content_id}"
                body = {
                    "type": "hashhub.retroactive_match.v1",
                    "node": self.config.node_id,
                    "match_id": event,
                    "content_id": content_id,
                    "list": list_id,
                    "hash_type": type_name,
                    "hash": m.hash.hex(),
                    "content_hash": content_hash.hex(),
                    "distance": m.distance,
                    "version": outcome.to_version,
                }
                queued += self._queue_webhook(key, body)
        return queued

    # -- matching --------------------------------------------------------------------

    def _event(
        self,
        list_id: str,
        listed: bytes,
        query: bytes,
        distance: int,
        source: str,
        content_id: str | None = None,
    ) -> str:
        match_id = str(uuid.uuid4())
        self.store.record_match(
            match_id,
            list_id,
            listed,
            query,
            distance,
            self.versions.get(list_id, 0),
            source,
            content_id,
            self.now(),
        )
        self._bump(list_id, "", "matched")
        self._bump(list_id, listed.hex(), "matched")
        return match_id

    def _bump(self, list_id: str, hex_hash: str, name: str, by: int = 1) -> None:
        self.store.bump_counter(list_id, hex_hash, name, by)

    def match_hashes(
        self,
        queries: Mapping[str, Sequence[bytes]],
        *,
        content_id: str | None = None,
        one_item: bool = False,
    ) -> list[MatchResult]:
        """Match hashes (by type) against every subscribed list of that type.

        Every query counts as ``checked`` once per list it was checked against; every
        listed hash it matched is a match event and counts as ``matched``. With a
        ``content_id`` the events are of registered content (source ``registry``),
        else of an upload.

        With ``one_item`` the hashes of each type describe one piece of content (an
        image's eight dihedral PDQ hashes): it counts as checked once per list, and
        each listed hash it matches is one event at its least distance.
        """
        source = "upload" if content_id is None else "registry"
        results: list[MatchResult] = []
        with self.store.atomic():
            for list_id, index in sorted(self.indexes.items()):
                type_name = index.hash_type.name
                hashes = list(queries.get(type_name, ()))
                if not hashes:
                    continue
                if one_item:
                    self._bump(list_id, "", "checked")
                    pairs = [(hashes[0], index.match_any(hashes))]
                else:
                    self._bump(list_id, "", "checked", len(hashes))
                    pairs = list(zip(hashes, index.match(hashes), strict=True))
                for query, matches in pairs:
                    for m in matches:
                        match_id = self._event(
                            list_id, m.hash, query, m.distance, source, content_id
                        )
                        results.append(
                            MatchResult(
                                match_id,
                                list_id,
                                type_name,
                                m.hash,
                                query,
                                m.distance,
                                self.versions.get(list_id, 0),
                            )
                        )
        return results

    def image_queries(self, data: bytes, *, dihedral: bool | None = None) -> dict[str, list[bytes]]:
        """The hashes an uploaded file is matched by (images: PDQ, pHash, MD5, SHA-256)."""
        hashes = hash_image(data, self.image_limits)
        queries = {t: [h] for t, h in hashes.by_type().items()}
        if dihedral if dihedral is not None else self.config.dihedral:
            queries["pdq"] = list(dict.fromkeys(dihedral_pdq(data, self.image_limits)))
        return queries

    @staticmethod
    def file_queries(data: bytes) -> dict[str, list[bytes]]:
        digests = file_digests(data)
        return {"md5": [digests.md5], "sha256": [digests.sha256]}

    def record_outcome(self, match_id: str, outcome: str) -> dict[str, Any]:
        """Record what the platform did about a match; once per match.

        Raises ``InvalidOutcomeError``, ``UnknownMatchError`` (no such match) or
        ``OutcomeConflictError`` (the match already has another outcome).
        """
        if outcome not in OUTCOMES:
            raise InvalidOutcomeError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        event = self.store.match_event(match_id)
        if event is None:
            raise UnknownMatchError(match_id)
        if event["outcome"] is not None:
            if event["outcome"] == outcome:
                return {"match_id": match_id, "outcome": outcome, "duplicate": True}
            raise OutcomeConflictError(f"match {match_id} already has outcome {event['outcome']}")
        with self.store.atomic():
            self.store.set_outcome(match_id, outcome, self.now())
            counter = _OUTCOME_COUNTER.get(outcome)
            if counter is not None:
                self._bump(event["list_id"], "", counter)
                self._bump(event["list_id"], bytes(event["hash"]).hex(), counter)
        return {"match_id": match_id, "outcome": outcome, "duplicate": False}

    def register_content(self, content_id: str, queries: Mapping[str, Sequence[bytes]]) -> int:
        """Register hashes of content the platform hosts, for retroactive matching."""
        if not content_id or len(content_id) > 256 or not content_id.isprintable():
            raise InvalidContentError("content id must be 1-256 printable characters")
        rows = []
        for type_name, hashes in queries.items():
            width = HASH_TYPES[type_name].length
            for h in hashes:
                if len(h) != width:
                    raise InvalidContentError(f"a {type_name} hash is {width} bytes")
                rows.append((type_name, h))
        self.store.register_content(content_id, rows, self.now())
        return len(rows)

    def register_and_match(
        self, content_id: str, queries: Mapping[str, Sequence[bytes]], *, one_item: bool
    ) -> tuple[int, list[MatchResult]]:
        """Register content and match it in one transaction: stored with its matches or
        not at all. Returns (hashes registered, matches). A bad content id or hash raises
        ``InvalidContentError`` before anything is written."""
        with self.store.atomic():
            registered = self.register_content(content_id, queries)
            results = self.match_hashes(queries, content_id=content_id, one_item=one_item)
        return registered, results

    # -- acks ------------------------------------------------------------------------

    def _counts(self, list_id: str) -> Counts:
        totals = dict.fromkeys(COUNTER_NAMES, 0)
        per_hash: dict[str, dict[str, int]] = {}
        for row in self.store.counters(list_id):
            if row["hash"] == "":
                totals[row["name"]] = row["value"]
            elif row["changed"] and row["name"] != "checked":
                per_hash.setdefault(row["hash"], {})[row["name"]] = row["value"]
        if len(per_hash) > MAX_HASH_ENTRIES:  # an ack holds so many; the rest go in the next
            per_hash = {h: per_hash[h] for h in sorted(per_hash)[:MAX_HASH_ENTRIES]}
        return Counts(**totals, hashes=per_hash)

    def enqueue_acks(self, list_ids: Iterable[str] | None = None) -> list[int]:
        """Sign one ack per applied list with the current totals and queue it.

        An ack carries at most ``MAX_HASH_ENTRIES`` changed per-hash counters; when
        more hashes changed, further acks (same totals) carry the rest.
        """
        root = self.newest_root()
        if root is None:
            return []
        queued = []
        pending = []
        for list_id in sorted(set(list_ids or self.config.lists)):
            spec = root.lists.get(list_id)
            if spec is None:
                continue
            trust = self.store.stored_list(list_id, spec.hash_type).trust
            if trust.version > 0:
                pending.append((list_id, trust))
        while pending:
            list_id, trust = pending.pop(0)
            with self.store.atomic():
                seq = self.store.next_ack_seq()
                data, sig = sign_ack(
                    key=self.key,
                    node=self.config.node_id,
                    list_id=list_id,
                    seq=seq,
                    sent=self.now(),
                    origin=root.origin(list_id),
                    applied=AppliedVersion(trust.version, trust.compact.root(), trust.state),
                    counts=(counts := self._counts(list_id)),
                )
                self.store.queue_ack(seq, list_id, data, sig, format_time(self.now()), self.now())
                self.store.counters_sent(list_id, counts.hashes)
            queued.append(seq)
            if len(counts.hashes) == MAX_HASH_ENTRIES:
                pending.insert(0, (list_id, trust))
        return queued

    def acks_due(self) -> list[dict[str, Any]]:
        """The acks to send now, in ``seq`` order (none while the oldest waits out its
        back-off: ``NodeStore.outbox_due``)."""
        return self.store.outbox_due(self.now())

    def webhooks_due(self) -> list[dict[str, Any]]:
        """The webhook calls whose back-off has passed."""
        return self.store.webhooks_due(self.now())

    def _backoff(self, attempts: int, at_least: int = 0) -> datetime:
        """When to try again: doubling up to ``max_backoff``, and no sooner than ``at_least``
        seconds (a hub's ``Retry-After``, PROTOCOL.md §10.6)."""
        delay = max(min(self.config.max_backoff, 2 ** min(attempts, 20)), at_least)
        when: datetime = self.now() + timedelta(seconds=delay)
        return when

    def ack_sent(self, seq: int, ok: bool, error: str = "", *, retry_after: int = 0) -> None:
        with self.store.atomic():
            row = self.store.queued_ack(seq)
            if row is None:
                return
            if ok:
                version = json.loads(bytes(row["bytes"]))["applied"]["version"]
                self.store.ack_confirmed(seq, row["list_id"], version, self.now())
            else:
                attempts = row["attempts"] + 1
                self.store.ack_retry_later(
                    seq, attempts, self._backoff(attempts, retry_after), error[:500]
                )

    def ack_refused(self, seq: int, error: str) -> None:
        """The hub will never accept these bytes: keep them as evidence, free the queue.

        A split-view refusal (422) is the most important evidence a node can hold; a
        replayed ``seq`` (409) or a malformed ack (400) would block every later ack if
        it stayed at the head of the queue. The counters are cumulative, so the next
        ack carries everything this one did.
        """
        with self.store.atomic():
            row = self.store.queued_ack(seq)
            if row is None:
                return
            self.store.add_evidence(
                row["list_id"],
                "AckRefused",
                f"seq {seq}: {error[:500]}",
                self.now(),
                bytes(row["bytes"]),
            )
            self.store.drop_ack(seq)

    def renumber_acks(self, last_seq: int) -> list[int]:
        """Re-sign every queued ack above the hub's ``last_seq``, keeping their order.

        A node that lost its database counts ``seq`` from 1 again, and the hub, which
        has the old node's acks, refuses each with 409 ``seq_conflict`` and its last
        ``seq``. The queued acks say nothing that depends on ``seq`` (their counters
        are cumulative), so they are signed again as ``last_seq + 1``, ``+ 2``, … and
        the old bytes are kept as evidence. Returns the new numbers.
        """
        root = self.newest_root()
        if root is None:
            return []
        renumbered = []
        with self.store.atomic():
            rows = self.store.queued_acks()
            self.store.drop_all_acks()
            for seq, row in enumerate(rows, start=last_seq + 1):
                old = Ack.from_bytes(bytes(row["bytes"]))
                data, sig = sign_ack(
                    key=self.key,
                    node=old.node,
                    list_id=old.list_id,
                    seq=seq,
                    sent=self.now(),
                    origin=root.origin(old.list_id),
                    applied=old.applied,
                    counts=old.counts,
                )
                self.store.queue_ack(seq, old.list_id, data, sig, row["created"], self.now())
                self.store.add_evidence(
                    old.list_id,
                    "AckRenumbered",
                    f"seq {old.seq} re-signed as {seq}: the hub's last seq is {last_seq}",
                    self.now(),
                    bytes(row["bytes"]),
                )
                renumbered.append(seq)
        return renumbered

    # -- webhooks --------------------------------------------------------------------

    def _queue_webhook(self, key: str, body: dict[str, Any]) -> int:
        if not self.config.webhook_url:
            return 0
        return self.store.queue_webhook(key, json.dumps(body, sort_keys=True).encode(), self.now())

    def webhook_signature(self, body: bytes) -> str:
        """``sha256=<hex HMAC-SHA256 of the body with the shared webhook secret>``."""
        mac = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        return f"sha256={mac}"

    def webhook_sent(self, row_id: int, ok: bool, error: str = "") -> None:
        with self.store.atomic():
            if ok:
                self.store.webhook_delivered(row_id, self.now())
                return
            attempts = self.store.webhook_attempts(row_id) + 1
            self.store.webhook_retry_later(row_id, attempts, self._backoff(attempts), error[:500])

    # -- status ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        root = self.newest_root()
        now = self.now()
        lists = []
        rows = {r["id"]: r for r in self.store.list_rows()}
        for list_id in self.config.lists:
            row = rows.get(list_id)
            trust = json.loads(row["trust"]) if row else None
            last_success = row["last_success"] if row else None
            max_age = root.policy.max_checkpoint_age if root else 0
            checkpoint_time = trust.get("checkpoint_time") if trust else None
            stale = checkpoint_time is None or now - parse_time(
                checkpoint_time, "status"
            ) > timedelta(seconds=max_age)
            lists.append(
                {
                    "list": list_id,
                    "version": trust["version"] if trust else 0,
                    "count": row["count"] if row else 0,
                    "state_sha256": row["sha256"] if row else None,
                    "last_success": last_success,
                    "last_attempt": row["last_attempt"] if row else None,
                    "last_error": row["last_error"] if row else None,
                    "checkpoint_time": checkpoint_time,
                    "stale": stale,
                    "counts": self._counts(list_id).to_dict() | {"hashes": None},
                }
            )
        pending = self.store.acks_pending()
        hooks = self.store.webhooks_pending()
        open_matches = self.store.matches_awaiting_outcome()
        return {
            "node": self.config.node_id,
            "hub": self.config.hub_url,
            "root_version": root.version if root else None,
            "lists": lists,
            "stale": any(entry["stale"] for entry in lists),
            "damaged": sorted(self.damaged),
            "acks_pending": pending,
            "webhooks_pending": hooks,
            "matches_awaiting_outcome": open_matches,
            "evidence": len(self.store.evidence()),
        }

    def recent_matches(self, limit: int = 50, *, open_only: bool = False) -> list[dict[str, Any]]:
        return [
            {
                "match_id": r["id"],
                "list": r["list_id"],
                "hash": bytes(r["hash"]).hex(),
                "query": bytes(r["query"]).hex(),
                "distance": r["distance"],
                "version": r["version"],
                "source": r["source"],
                "content_id": r["content_id"],
                "created": r["created"],
                "outcome": r["outcome"],
            }
            for r in self.store.match_events(limit, open_only=open_only)
        ]


# -- the network parts -----------------------------------------------------------------


async def run_sync(node: Node, session: aiohttp.ClientSession) -> list[ListOutcome]:
    """One update of every subscribed list (docs/design.md §4.2), then indexes, registry, acks."""
    fetcher = Fetcher(
        session,
        node.config.hub_url,
        mirrors=node.config.mirrors,
        token=node.token,
        limits=Limits(fetch_timeout=node.config.fetch_timeout),
    )
    syncer = Syncer(
        node.store,
        fetcher,
        node.config.lists,
        pinned_root_sha256=node.config.pinned_root_sha256,
        snapshot_lag=node.config.snapshot_lag,
    )
    outcomes = await syncer.sync(node.now())
    node.absorb(outcomes)
    return outcomes


async def flush_acks(
    node: Node, session: aiohttp.ClientSession, *, renumber: bool = True
) -> tuple[int, int]:
    """Send every due ack in ``seq`` order; returns (confirmed, failed).

    A 409 ``seq_conflict`` naming a last ``seq`` at or above the refused one means the
    hub holds acks this node no longer remembers: the queue is re-signed above that
    ``seq`` (``Node.renumber_acks``) and sent again, once per call.
    """
    confirmed = failed = 0
    for row in node.acks_due():
        sidecar = base64.b64encode(bytes(row["sig"])).decode()
        try:
            async with session.post(
                f"{node.config.hub_url}/v1/acks",
                data=bytes(row["bytes"]),
                headers={
                    "Authorization": f"Bearer {node.token}",
                    ACK_SIGNATURE_HEADER: sidecar,
                    "Content-Type": "application/json",
                },
                timeout=aiohttp.ClientTimeout(total=30),
            ) as resp:
                text = await resp.text()
                ok = resp.status == 200
                last_seq = _last_seq(resp, row["seq"]) if resp.status == 409 else None
                if last_seq is not None and renumber:
                    node.renumber_acks(last_seq)
                    more_confirmed, more_failed = await flush_acks(node, session, renumber=False)
                    return confirmed + more_confirmed, failed + more_failed
                if resp.status in ACK_REFUSALS:
                    node.ack_refused(row["seq"], f"HTTP {resp.status}: {text[:300]}")
                    failed += 1
                    continue
                node.ack_sent(
                    row["seq"],
                    ok,
                    "" if ok else f"HTTP {resp.status}: {text[:300]}",
                    retry_after=_retry_after(resp) if resp.status in (429, 503) else 0,
                )
        except (aiohttp.ClientError, TimeoutError) as e:
            ok = False
            node.ack_sent(row["seq"], False, f"{type(e).__name__}: {e}")
        if ok:
            confirmed += 1
        else:
            failed += 1
            break  # keep seq order: later acks wait for this one
    return confirmed, failed


MAX_RETRY_AFTER = 24 * 3600
"""The longest ``Retry-After`` (seconds) believed: a hub cannot park the outbox for longer."""


def _retry_after(resp: aiohttp.ClientResponse) -> int:
    """A 429's or 503's ``Retry-After`` in seconds (0 if absent or not a small integer)."""
    raw = resp.headers.get("Retry-After", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        return 0
    return min(int(raw), MAX_RETRY_AFTER)


def _last_seq(resp: aiohttp.ClientResponse, refused: int) -> int | None:
    """The hub's last ``seq`` from a 409 answer, if it is one to re-sign above."""
    raw = resp.headers.get(ACK_LAST_SEQ_HEADER, "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    last = int(raw)
    if not refused <= last <= refused + MAX_SEQ_JUMP:
        return None
    return last


async def deliver_webhooks(node: Node, session: aiohttp.ClientSession) -> tuple[int, int]:
    """Deliver every due webhook (at least once); returns (delivered, failed)."""
    delivered = failed = 0
    for row in node.webhooks_due():
        body = bytes(row["body"])
        try:
            async with session.post(
                node.config.webhook_url,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": row["idempotency_key"],
                    "Hashhub-Webhook-Signature": node.webhook_signature(body),
                },
                timeout=aiohttp.ClientTimeout(total=30),
            ) as resp:
                await resp.read()
                ok = 200 <= resp.status < 300
                node.webhook_sent(row["id"], ok, "" if ok else f"HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as e:
            ok = False
            node.webhook_sent(row["id"], False, f"{type(e).__name__}: {e}")
        if ok:
            delivered += 1
        else:
            failed += 1
    return delivered, failed
