"""The content registry: hashes of what the platform hosts, matched again as lists grow.

A platform registers the hashes of content it already hosts. When an update adds
hashes to a list, the registry is searched for them and each hit becomes a match
event (source ``registry``) and one webhook (``hashhub.retroactive_match.v1``), so
the platform's moderation hears about content that was harmless when uploaded.

Registering the same content again (a second ``hashhub-node scan`` of a
directory, a retried ``POST /v1/content``) counts nothing twice: hashes already
registered under that content id are not checked again, and a listed hash it
already matched is reported under the match event recorded the first time.

A whole hosted corpus is registered in batches (``register_batch``, which
``hashhub-node content import`` drives): one transaction per batch of lines, each
line one hash of one piece of content, counted as if it had been registered on its
own, so that the counts the hub receives do not depend on how content arrived.

A perceptual type's registered hashes are also kept in the content index
(``node.content_index``, files in the home's ``content-index`` directory), so that
a delta's added hashes are matched against millions of hosted items without
reading them out of the database.

A video is registered by its frames (PROTOCOL.md §6.3), never by a bare ``vpdq``
hash: a video list matches frames only (§6.4), so a registered digest alone could
never match anything. Its ``vpdq`` row holds the frames' SHA-256 and the store
keeps the frames beside it (``content_frames``). When a ``vpdq`` list grows, the
registered videos are indexed (``node.video_index.VideoIndex``, keyed by that
SHA-256) and each added entry's frames are the query; §6.4 is symmetric, so the
hosted video's shares are the result's two shares swapped. The index is kept
between passes and built again only when the registered frames changed (the
store's ``frames_generation``, moved by any process): building it for 10,000
videos of 60 frames took 1.9 s on one core (1.1 s decoding, 0.7 s
indexing), so a pass that rebuilt it each time would cost what the platform hosts,
not what the delta adds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from follow import ListOutcome
from node.content_index import ContentIndex
from node.errors import InvalidContentError
from node.matching import Matching, MatchResult, entry_members, opinion_members
from node.matchings import Matchings
from node.outboxes import WebhookOutbox
from node.store import ContentRows, NodeStore
from node.store.matches import Shares, shares_members
from node.video_hashes import BARE_VIDEO_HASH
from node.video_index import VideoIndex, VideoQueries
from protocol import ListSpec
from protocol.lists import HASH_TYPES
from protocol.video import decode_frames

__all__ = ["BatchResult", "ContentRegistry", "ContentRow", "check_content_id"]

ContentRow = tuple[str, str, bytes]
"""One registered hash of one piece of content: (content id, hash type, hash)."""

_Hit = tuple[str, bytes, bytes, int, Shares | None]
"""A retroactive hit: (content id, listed hash, content hash, distance, video shares)."""


def video_frames(videos: VideoQueries) -> list[tuple[bytes, bytes]]:
    """(SHA-256, encoding) of each video of ``videos``: what the store keeps of it."""
    return list(zip(videos, videos.encodings, strict=True))


def check_content_id(content_id: str) -> None:
    """Raise ``InvalidContentError`` for a content id the registry cannot hold: one rule
    for the API, ``scan`` and a bulk import."""
    if not content_id or len(content_id) > 256 or not content_id.isprintable():
        raise InvalidContentError("content id must be 1-256 printable characters")


@dataclass
class BatchResult:
    """What registering one batch of rows did (or, for a dry run, would do).

    ``registered`` rows are new; ``known`` were registered already (before, or by an
    identical row earlier in the batch) and count nothing again. ``matches`` are the
    hits of the batch's rows, each with its content id; a match reported under an
    event recorded before is ``earlier``, and a dry run's are not ``recorded``.
    """

    registered: int = 0
    known: int = 0
    matches: list[tuple[str, MatchResult]] = field(default_factory=list)


class ContentRegistry:
    """Registers hosted content and turns newly listed hashes into retroactive matches."""

    def __init__(
        self,
        store: NodeStore,
        matching: Matchings,
        webhooks: WebhookOutbox,
        *,
        node_id: str,
        now: Callable[[], datetime],
        index_dir: Path,
    ) -> None:
        self.store = store
        self.index_dir = index_dir
        self._indexes: dict[str, ContentIndex] = {}
        self._videos: tuple[int, VideoIndex] | None = None
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
        check_content_id(content_id)
        rows = []
        for type_name, hashes in queries.items():
            kind = HASH_TYPES.get(type_name)
            if kind is None:
                raise InvalidContentError(
                    f"unknown hash type {type_name[:32]!r}; one of {', '.join(sorted(HASH_TYPES))}"
                )
            if kind.frames and not isinstance(hashes, VideoQueries):
                raise InvalidContentError(BARE_VIDEO_HASH)
            width = kind.length
            for h in hashes:
                if len(h) != width:
                    raise InvalidContentError(f"a {type_name} hash is {width} bytes")
                rows.append((type_name, h))
        return rows

    def register(self, content_id: str, queries: Mapping[str, Sequence[bytes]]) -> int:
        """Register hashes of content the platform hosts, for retroactive matching; a
        video's (``VideoQueries``) with its frames."""
        rows = self.check(content_id, queries)
        with self.store.atomic():
            self.store.matches.register_content(content_id, rows, self.now())
            for hashes in queries.values():
                if isinstance(hashes, VideoQueries):
                    self.store.matches.keep_frames(video_frames(hashes))
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
        results: list[MatchResult] = []
        with self.store.atomic():
            known = self.store.matches.registered_of(content_id, rows)
            registered = self.register(content_id, queries)
            fresh = {type_name for type_name, h in rows if (type_name, h) not in known}
            for matching in self.matching:  # every hub's lists
                earlier = matching.store.matches.content_events(content_id) if known else {}
                results += matching.match_hashes(
                    queries,
                    content_id=content_id,
                    one_item=one_item,
                    checked_types=fresh,
                    earlier=earlier,
                )
        return registered, results

    def check_rows(
        self, rows: Sequence[ContentRow], frames: Mapping[bytes, bytes] | None = None
    ) -> None:
        """Raise ``InvalidContentError`` for a row ``register_batch`` could not store:
        a ``vpdq`` row needs its video's frames in ``frames`` (by their SHA-256)."""
        for content_id, type_name, h in rows:
            kind = HASH_TYPES.get(type_name)
            if kind is not None and kind.frames:
                check_content_id(content_id)
                if frames is None or h not in frames:
                    raise InvalidContentError(BARE_VIDEO_HASH)
                continue
            self.check(content_id, {type_name: [h]})

    def register_batch(
        self,
        rows: Sequence[ContentRow] | ContentRows,
        *,
        dry_run: bool = False,
        checked: bool = False,
        frames: Mapping[bytes, bytes] | None = None,
    ) -> BatchResult:
        """Register many pieces of content's hashes and match them, in one transaction.

        Each row is counted as ``register_and_match`` counts one piece of content with
        that one hash (``POST /v1/content`` with one hash): a new row counts as checked
        once per list of its type, a row already registered under its content id counts
        nothing, and a listed hash its content already matched (before, or by another
        row of the batch) is reported under that event instead of a new one. An
        identical row twice counts once. A bad row raises ``InvalidContentError``
        before anything is written; a failed write rolls the whole batch back.

        ``dry_run`` writes nothing: what is already registered is read, the matches are
        looked up and not recorded, and the batch's rows count as new once each.
        ``checked``: the caller has held every row to ``check`` already
        (``node.content_import`` reads lines by the same rules), so it is not done twice;
        such a caller may also hand the rows already set out (``ContentRows.of``, on
        another thread while this one writes).

        ``frames``: the frames of the batch's videos (SHA-256 → encoding, checked by
        ``decode_frames`` and hashed), one for each ``vpdq`` row's hash; kept with
        the rows and matched as a video upload is.
        """
        videos = dict(frames or {})
        if not checked:
            self.check_rows(rows.rows if isinstance(rows, ContentRows) else rows, videos)
        batch = rows if isinstance(rows, ContentRows) else ContentRows.of(rows)
        unique = batch.rows
        result = BatchResult(known=batch.repeats)
        if dry_run:
            fresh = [
                row
                for row, known in zip(
                    unique, self.store.matches.registered_rows(unique), strict=True
                )
                if not known
            ]
            result.known += len(unique) - len(fresh)
            result.registered = len(fresh)
            result.matches = self._hits(unique, videos, judge=True)
            return result
        with self.store.atomic():
            new = self.store.matches.register_rows(batch, self.now())
            self.store.matches.keep_frames(
                (h, videos[h]) for _, type_name, h in unique if HASH_TYPES[type_name].frames
            )
            result.registered = sum(new.values())
            result.known += len(unique) - result.registered
            self._count_checked(new)
            result.matches = self._record(self._hits(unique, videos))
        return result

    def _hits(
        self, rows: Sequence[ContentRow], videos: Mapping[bytes, bytes], *, judge: bool = False
    ) -> list[tuple[str, MatchResult]]:
        """Every hit of ``rows`` on the current lists, unrecorded, with its content id
        (and, with ``judge``, the decision a look sees: ``_record`` decides the others).

        Each distinct hash is matched once, however many pieces of content have it;
        only the types some list is of are matched, and only the hashes that hit are
        traced back to their content (a corpus is mostly misses). A video (``vpdq``
        row) is matched by its frames, from ``videos``.
        """
        matched = {
            index.hash_type.name
            for matching in self.matching
            for index in matching.indexes.values()
        }
        queries: dict[str, list[bytes]] = {
            t: list(dict.fromkeys(h for _, row_type, h in rows if row_type == t)) for t in matched
        }
        if self.matching.follows_videos:
            digests = dict.fromkeys(h for _, t, h in rows if HASH_TYPES[t].frames)
            queried = VideoQueries([])
            for h in digests:
                queried.add(videos[h], decode_frames(videos[h]))
            queries["vpdq"] = queried
        queries = {t: hashes for t, hashes in queries.items() if hashes}
        if not queries:
            return []
        hits = [hit for m in self.matching for hit in m.search(queries, judge=judge)[1]]
        if not hits:
            return []
        hit = {(m.hash_type, m.query) for m in hits}
        holders: dict[tuple[str, bytes], list[str]] = {}
        for content_id, type_name, h in rows:
            if (type_name, h) in hit:
                holders.setdefault((type_name, h), []).append(content_id)
        return [(content_id, m) for m in hits for content_id in holders[(m.hash_type, m.query)]]

    def _count_checked(self, per_type: Mapping[str, int]) -> None:
        """Count each new row (``per_type``: how many of each type) as checked once per
        list of its type, of every hub."""
        for matching in self.matching:
            types = {list_id: index.hash_type.name for list_id, index in matching.indexes.items()}
            types |= dict.fromkeys(matching.videos, "vpdq")
            for list_id, type_name in sorted(types.items()):
                count = per_type.get(type_name, 0)
                if count:
                    matching.store.matches.bump_counter(list_id, "", "checked", count)

    def _record(self, hits: Sequence[tuple[str, MatchResult]]) -> list[tuple[str, MatchResult]]:
        """Record each hit as a match event, unless its content matched that listed hash
        before (then it is reported under the first event's id, counted nothing).

        A recorded hit is reported with the decision recorded with it, not the one its
        search saw: recording decides again, and may hold (the quarantine rule counts
        only recorded events)."""
        earlier: dict[tuple[str, str], dict[tuple[str, bytes], str]] = {}
        results = []
        for content_id, hit in hits:
            matching = self.matching.hub(hit.hub)
            events = earlier.get((hit.hub, content_id))
            if events is None:
                events = earlier[(hit.hub, content_id)] = matching.store.matches.content_events(
                    content_id
                )
            seen = events.get((hit.list_id, hit.hash))
            if seen is not None:
                hit = matching.looked(hit)
                results.append(
                    (content_id, replace(hit, match_id=seen, recorded=True, earlier=True))
                )
                continue
            match_id, verdict = matching.recorded(
                hit.list_id,
                hit.hash,
                hit.query,
                hit.distance,
                "registry",
                content_id,
                hit.entry,
                stance=hit.opinions,
                shares=hit.shares,
            )
            events[(hit.list_id, hit.hash)] = match_id
            results.append(
                (content_id, replace(hit, match_id=match_id, recorded=True, verdict=verdict))
            )
        return results

    def remove(self, items: Sequence[tuple[str, tuple[str, bytes] | None]]) -> list[int]:
        """Remove registered content, in one transaction: per item (content id, None) every
        hash of that content, (content id, (type, hash)) that one. Returns the rows each
        removed (0: it was not registered). Removed content is no longer matched when a
        list grows; its match events stay."""
        for content_id, one in items:
            self.check(content_id, {} if one is None else {one[0]: [one[1]]})
        return self.store.matches.remove_content(items)

    def content_index(self, type_name: str) -> ContentIndex:
        """The on-disk index of one perceptual type's registered hashes (opened once)."""
        index = self._indexes.get(type_name)
        if index is None:
            index = ContentIndex(self.index_dir, HASH_TYPES[type_name], self.store.matches)
            self._indexes[type_name] = index
        return index

    def _perceptual_types(self) -> list[str]:
        return sorted(name for name, kind in HASH_TYPES.items() if kind.perceptual)

    def fold_journal(self) -> dict[str, int]:
        """Merge each perceptual type's journal into its content index where a merge is
        due (after a bulk import, so the next delta finds the index ready). Returns the
        distinct hashes each index holds."""
        counts = {}
        for type_name in self._perceptual_types():
            index = self.content_index(type_name)
            index.merge_if_due()
            counts[type_name] = index.current().count
        return counts

    def rebuild_indexes(self) -> dict[str, int]:
        """Rebuild every perceptual type's content index from the registry itself."""
        return {t: self.content_index(t).rebuild() for t in self._perceptual_types()}

    def registered_videos(self) -> VideoIndex:
        """The registered videos' frames, indexed by their SHA-256: the one built
        before unless the store's frames changed since (``frames_generation``)."""
        generation = self.store.matches.frames_generation()
        if self._videos is None or self._videos[0] != generation:
            generation, held = self.store.matches.registered_frames()
            index = VideoIndex.build({h.hex(): decode_frames(data) for h, data in held.items()})
            self._videos = (generation, index)
        return self._videos[1]

    def _videos_near(self, outcome: ListOutcome, matching: Matching) -> list[_Hit]:
        """Every registered video an added entry of a ``vpdq`` list matches (§6.4),
        with the hosted video's shares: the added entry's frames are the query of the
        registered videos' index, so its result's shares are swapped (the query's
        share there is the listed entry's here). An added record whose frames the
        store lacks matches nothing (``node.store.frames.standing_frames`` says when)."""
        listed = matching.store.listed_frames(outcome.list_id, sorted(set(outcome.added)))
        if not listed:
            return []
        index = self.registered_videos()
        found: list[tuple[bytes, bytes, Shares]] = []
        for listed_hash, data in sorted(listed.items()):
            for hit in index.match(decode_frames(data)):
                shares = (hit.listed_share, hit.query_share)
                found.append((bytes.fromhex(hit.entry), listed_hash, shares))
        if not found:
            return []
        holders: dict[bytes, list[str]] = {}
        for content_id, content_hash in self.store.matches.registered_with(
            "vpdq", sorted({content_hash for content_hash, _, _ in found})
        ):
            holders.setdefault(content_hash, []).append(content_id)
        return [
            (content_id, listed_hash, content_hash, 0, shares)
            for content_hash, listed_hash, shares in found
            for content_id in holders.get(content_hash, [])
        ]

    def _near(self, outcome: ListOutcome, spec: ListSpec) -> list[tuple[str, bytes, bytes, int]]:
        """(content id, listed hash, content hash, distance) of every registered hash
        near an added one: the added hashes are the queries of the content index, and
        each registered hash it finds is looked up by key for the content that has
        it (the index may still hold a hash since removed: then nothing is found)."""
        near = self.content_index(spec.hash_type).near(outcome.added, spec.max_distance)
        if not near:
            return []
        holders: dict[bytes, list[str]] = {}
        for content_id, content_hash in self.store.matches.registered_with(
            spec.hash_type, sorted({content_hash for _, content_hash, _ in near})
        ):
            holders.setdefault(content_hash, []).append(content_id)
        return [
            (content_id, listed, content_hash, distance)
            for listed, content_hash, distance in near
            for content_id in holders.get(content_hash, [])
        ]

    def retroactive(
        self, outcome: ListOutcome, spec: ListSpec, matching: Matching | None = None
    ) -> int:
        """Search the registry for the hashes an update of a list of ``matching``'s hub
        (None: the node's only hub) added; queue one webhook per hit, naming the hub
        beside the list.

        An exact type (md5, sha256) looks each added hash up by key; a perceptual one
        (``_near``) asks the content index, the added hashes its queries.
        A hit of an ``entries`` list carries its entry and what the platforms say
        of it (event and webhook; read once for every hit), and is no hit when the
        entry has expired by the node's clock.
        A ``vpdq`` list matches by frames, never by its records' hashes
        (``_videos_near``): each hit's event and webhook carry the hosted video's
        shares (``"video"``), its ``content_hash`` the SHA-256 of its frames.
        Returns the webhooks queued.
        """
        if not outcome.added:
            return 0
        matching = matching or self.matching.only()
        hits: list[_Hit]
        if HASH_TYPES[spec.hash_type].frames:
            hits = self._videos_near(outcome, matching)
        elif not HASH_TYPES[spec.hash_type].perceptual:
            # An exact type: each added hash is one key lookup in the registry.
            hits = [
                (content_id, content_hash, content_hash, 0, None)
                for content_id, content_hash in self.store.matches.registered_with(
                    spec.hash_type, sorted(set(outcome.added))
                )
            ]
        else:
            hits = [(*near, None) for near in self._near(outcome, spec)]
        queued = 0
        now = matching.now()
        entries = (
            matching.entries_of(
                outcome.list_id, sorted({listed for _, listed, _, _, _ in hits}), now
            )
            if spec.entries
            else {}
        )
        stances = matching.stances([(outcome.list_id, e) for e in entries.values()])
        for content_id, listed, content_hash, distance, shares in hits:
            entry = entries.get(listed)
            if spec.entries and entry is None:
                continue  # expired by the node's clock: it matches nothing
            stance = None if entry is None else stances[(outcome.list_id, entry.entry_id)]
            event, verdict = matching.recorded(
                outcome.list_id,
                listed,
                content_hash,
                distance,
                "registry",
                content_id,
                entry,
                stance=stance,
                shares=shares,
            )
            key = (
                f"{matching.hub}:{outcome.list_id}:{outcome.to_version}:{listed.hex()}:{content_id}"
            )
            body = {
                "type": "hashhub.retroactive_match.v1",
                "node": self.node_id,
                "match_id": event,
                "content_id": content_id,
                "hub": matching.hub,
                "list": outcome.list_id,
                "hash_type": spec.hash_type,
                "hash": listed.hex(),
                "content_hash": content_hash.hex(),
                "distance": distance,
                "version": outcome.to_version,
            }
            body |= shares_members(shares)  # a video's: what decided it, as a match shows it
            if entry is not None:  # a hashes list's webhook keeps its members
                body |= entry_members(entry) | opinion_members(stance)
            if verdict.reason is not None:  # a blocked match's webhook keeps its members
                body |= verdict.to_dict()
            queued += self.webhooks.queue(key, body)
        return queued
