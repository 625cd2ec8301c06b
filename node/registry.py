"""The content registry: hashes of what the platform hosts, matched again as lists grow.

A platform registers the hashes of content it already hosts. When an update adds
hashes to a list, the registry is searched for them and each hit becomes a match
event (source ``registry``) and one webhook (``hashhub.retroactive_match.v1``), so
the platform's moderation hears about content that was harmless when uploaded.

Registering the same content again (a second ``hashhub-node scan`` of a
directory, a retried ``POST /v1/content``) counts nothing twice: hashes already
registered under that content id are not checked again, and a listed hash it
already matched is reported under the match event recorded the first time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from node.errors import InvalidContentError
from node.matcher import ListIndex
from node.matching import Matching, MatchResult
from node.outboxes import WebhookOutbox
from node.store import NodeStore
from node.sync import ListOutcome
from protocol import ListSpec
from protocol.lists import HASH_TYPES

__all__ = ["ContentRegistry"]


class ContentRegistry:
    """Registers hosted content and turns newly listed hashes into retroactive matches."""

    def __init__(
        self,
        store: NodeStore,
        matching: Matching,
        webhooks: WebhookOutbox,
        *,
        node_id: str,
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.matching = matching
        self.webhooks = webhooks
        self.node_id = node_id
        self.now = now

    def check(
        self, content_id: str, queries: Mapping[str, Sequence[bytes]]
    ) -> list[tuple[str, bytes]]:
        """The rows ``register`` would store, (type, hash); raises ``InvalidContentError``
        for a content id or hash the registry cannot hold. Writes nothing, so a dry run
        refuses what the real run would."""
        if not content_id or len(content_id) > 256 or not content_id.isprintable():
            raise InvalidContentError("content id must be 1-256 printable characters")
        rows = []
        for type_name, hashes in queries.items():
            width = HASH_TYPES[type_name].length
            for h in hashes:
                if len(h) != width:
                    raise InvalidContentError(f"a {type_name} hash is {width} bytes")
                rows.append((type_name, h))
        return rows

    def register(self, content_id: str, queries: Mapping[str, Sequence[bytes]]) -> int:
        """Register hashes of content the platform hosts, for retroactive matching."""
        rows = self.check(content_id, queries)
        self.store.matches.register_content(content_id, rows, self.now())
        return len(rows)

    def register_and_match(
        self, content_id: str, queries: Mapping[str, Sequence[bytes]], *, one_item: bool
    ) -> tuple[int, list[MatchResult]]:
        """Register content and match it in one transaction: stored with its matches or
        not at all. Returns (hashes registered, matches). A bad content id or hash raises
        ``InvalidContentError`` before anything is written.

        Content registered before is not counted again: a hash type whose every hash
        is already registered under ``content_id`` is not counted as checked, and a
        listed hash the content already matched (here, or retroactively) is reported
        under that earlier event (``MatchResult.earlier``) instead of a new one.
        """
        rows = self.check(content_id, queries)
        with self.store.atomic():
            known = self.store.matches.registered_of(content_id, rows)
            earlier = self.store.matches.content_events(content_id) if known else {}
            registered = self.register(content_id, queries)
            fresh = {type_name for type_name, h in rows if (type_name, h) not in known}
            results = self.matching.match_hashes(
                queries,
                content_id=content_id,
                one_item=one_item,
                checked_types=fresh,
                earlier=earlier,
            )
        return registered, results

    def retroactive(self, outcome: ListOutcome, spec: ListSpec) -> int:
        """Search the registry for the hashes an update added; queue one webhook per hit.

        The added hashes are indexed on their own (they are few), and the registered
        content is the query: one pass finds every hit. Returns the webhooks queued.
        """
        if not outcome.added:
            return 0
        registered = self.store.matches.registered_content(spec.hash_type)
        if not registered:
            return 0
        added = ListIndex.from_snapshot(
            spec.hash_type, spec.max_distance, b"".join(sorted(outcome.added))
        )
        results = added.match([content_hash for _, content_hash in registered])
        queued = 0
        for (content_id, content_hash), matches in zip(registered, results, strict=True):
            for m in matches:
                event = self.matching.record_event(
                    outcome.list_id, m.hash, content_hash, m.distance, "registry", content_id
                )
                key = f"{outcome.list_id}:{outcome.to_version}:{m.hash.hex()}:{content_id}"
                body = {
                    "type": "hashhub.retroactive_match.v1",
                    "node": self.node_id,
                    "match_id": event,
                    "content_id": content_id,
                    "list": outcome.list_id,
                    "hash_type": spec.hash_type,
                    "hash": m.hash.hex(),
                    "content_hash": content_hash.hex(),
                    "distance": m.distance,
                    "version": outcome.to_version,
                }
                queued += self.webhooks.queue(key, body)
        return queued
