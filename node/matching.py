"""Matching: the node's per-list indexes, match events, and the outcomes reported on them.

``Matching`` owns one ``ListIndex`` per applied list, built from the stored
(verified) state and kept in step with every applied update. Every query counts
as ``checked`` and every hit is a match event with an id, counted as ``matched``;
the outcome a platform reports on an event (``actioned``, ``blocked``,
``false_positive``) feeds the counters that acks carry. It is one part of
``node.service.Node``, which ties it to the registry and the outboxes.

``look`` answers the same question and writes nothing: a quick look from the
command line must not inflate the counts the hub receives.

A node with a ``replica`` name (``node.fleet``) issues match ids
``<replica>.<uuid>``; without one, bare UUIDs, as every store from before fleets
holds. Both kinds are accepted; an outcome for an id another replica issued is
``MisdirectedMatchError``, naming it, and nothing is looked up. When several
processes serve one store (``hashhub-node run --workers``), each keeps its own
indexes: ``stale_lists`` and ``build_index``/``install`` bring them to what another
process applied, list by list. The rules of an
outcome (``record_outcome``, ``shown_match_id``) live here, not in a route, so
that the API, the status page and the command line refuse the same things.

The platform's own policy (``node.policy``) decides every hit here, where it is
found (``search``) and again where it is recorded (``record_event``, which the
registry's retroactive matches go through too): a hit beyond a list's stricter
distance is dropped, each other one carries its ``Verdict``, and a recorded one
that is not ``block`` is kept at once with its reason.

A ``vpdq`` list (a video's frames, PROTOCOL.md §6.3) is indexed by its records'
frames, a ``node.video_index.VideoIndex`` built from the store's frames rows, and
never by its records' hashes: a video query (``VideoQueries``: its frames and their
digest) matches it by §6.4's shares, and nothing else does. Its hit is a match event
like any other (its ``hash`` the record's, its ``query`` the query's frames digest,
distance 0), carrying both shares. The video index is built again from the store
at every applied update of the list: its records change by whole videos, rarely.

A hit of an ``entries`` list also carries what the platforms say of its entry
(``opinions``: confirming and disputing platforms, the dispute's state), as the
list's newest verified opinion summary says it (``node.store.opinions``): read
once for a batch of hits, with their entries, and what the policy holds on.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeGuard, get_args

from follow import ListOutcome, StoredEntries, StoredList
from node.errors import InvalidOutcomeError, OutcomeConflictError, UnknownMatchError
from node.fleet import REPLICA_NAME
from node.imaging import ImageLimits, dihedral_pdq, file_hashes, hash_image
from node.matcher import ListIndex
from node.policy import BLOCK, Policy, QuarantineRule, Verdict
from node.store import (
    DEFAULT_HUB,
    NO_STANCE,
    MatchSource,
    NodeStore,
    Outcome,
    Stance,
)
from node.store.matches import Shares, event_shares, shares_members
from node.video import VideoHash
from node.video_index import VideoIndex, VideoQueries
from protocol import Entry, EntryState, ListSpec, ListState, Root
from protocol.ack import OPINION_REASONS
from protocol.lists import hash_type as hash_kind
from protocol.video import Frame

__all__ = [
    "DIHEDRAL_TRANSFORMS",
    "MATCH_ID",
    "OUTCOMES",
    "DihedralQueries",
    "MatchIndex",
    "MatchResult",
    "Matching",
    "MisdirectedMatchError",
    "Outcome",
    "entry_members",
    "is_match_id",
    "is_outcome",
    "issuer",
    "newest_root",
    "opinion_members",
    "shown_match_id",
    "video_queries",
]

MATCH_ID = re.compile(
    rf"(?:(?P<replica>{REPLICA_NAME.pattern})\.)?"
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)
"""The shape of every match id a node issues: a lowercase UUID, after the issuing
replica's name and a dot when the node has one (``node.fleet.REPLICA_NAME``)."""

OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
"""What a platform did about a match. ``kept`` (reviewed, left up) counts toward no counter."""

DIHEDRAL_TRANSFORMS = (
    "original",
    "rotate-90",
    "rotate-180",
    "rotate-270",
    "flip-x",
    "flip-y",
    "flip-diagonal",
    "flip-antidiagonal",
)
"""The eight turns of a picture, in ``imaging.dihedral_pdq``'s order."""


class DihedralQueries(list[bytes]):
    """An image's distinct dihedral PDQ hashes, each with the turns that give it.

    A list, so that it goes wherever a query list goes (the API's ``hashes``, the
    registry); ``transforms[i]`` names the turns of ``self[i]`` (a symmetric
    picture gives one hash for several: ``original/rotate-180``), so that a match
    can say which variant it matched, with the distance that variant has.
    """

    def __init__(self, variants: Sequence[bytes]) -> None:
        names: dict[bytes, list[str]] = {}
        for name, variant in zip(DIHEDRAL_TRANSFORMS, variants, strict=True):
            names.setdefault(variant, []).append(name)
        super().__init__(names)
        self.transforms = ["/".join(turns) for turns in names.values()]


def _distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a) ^ int.from_bytes(b)).bit_count()


_OUTCOME_COUNTER: dict[Outcome, str] = {
    "actioned": "actioned",
    "blocked": "blocked",
    "false_positive": "false_positive",
}


DISPUTE_REASONS = OPINION_REASONS["disputed"]
"""Why a false positive was one, the platform's dispute of the entry (PROTOCOL.md
§10.1): ``not_the_content``, ``benign``, ``other``."""


def opinion_of(outcome: Outcome, reason: str | None) -> tuple[str, str | None] | None:
    """The position on an entry an outcome of one of its matches takes: ``actioned``
    and ``blocked`` confirm it (the outcome is the reason), ``false_positive`` disputes
    it (``reason``: one of ``DISPUTE_REASONS``, ``other`` when none is given), ``kept``
    takes none."""
    if outcome in ("actioned", "blocked"):
        return ("confirmed", outcome)
    if outcome == "false_positive":
        return ("disputed", reason or "other")
    return None


def is_outcome(value: str) -> TypeGuard[Outcome]:
    """Whether a platform's answer (API, status page) names one of ``OUTCOMES``."""
    return value in OUTCOMES


def is_match_id(value: str) -> bool:
    """Whether ``value`` could be a match id the node issued (checked before any lookup)."""
    return MATCH_ID.fullmatch(value) is not None


def issuer(match_id: str) -> str:
    """The replica that issued a well-formed match id ("" for a bare UUID)."""
    found = MATCH_ID.fullmatch(match_id)
    return (found.group("replica") or "") if found else ""


class MisdirectedMatchError(UnknownMatchError):
    """The match id was issued by another replica: its outcome belongs there (421)."""

    def __init__(self, match_id: str, issued_by: str, here: str) -> None:
        UnknownMatchError.__init__(self, match_id)
        by = f"replica {issued_by!r}" if issued_by else "a node without a replica name"
        this = f"replica {here!r}" if here else "a node without a replica name"
        self.args = (f"match {match_id} was issued by {by}, not by {this}: send its outcome there",)
        self.issued_by = issued_by


def shown_match_id(value: str) -> str:
    """A match id fit for an error message: as is when well-formed, else quoted and cut
    to 64 characters, so that a hostile id (control characters, undecodable bytes,
    megabytes) neither floods nor rewrites the terminal or log that shows it."""
    return value if is_match_id(value) else repr(value[:64])


def newest_root(store: NodeStore) -> Root | None:
    """The newest verified root the store holds (None before the first update)."""
    roots = store.roots()
    return Root.from_bytes(roots[-1][0]) if roots else None


MatchIndex = ListIndex | VideoIndex
"""A list's index: its hashes (``ListIndex``), or its videos' frames for a ``vpdq`` list."""


def index_frames(
    store: NodeStore, spec: ListSpec, stored: StoredList | StoredEntries
) -> dict[str, Sequence[Frame]] | None:
    """What a ``vpdq`` list's index is built from besides its state: the stored frames
    of its standing records, by record hash in hex (read here, on the store's thread,
    so that ``build_index`` touches no database); None for a list of any other type.

    The index names a listed video by its record's hash, as a hit names what it
    matched, and the hit's entry is read by that hash as any entries list's is."""
    if not hash_kind(spec.hash_type).frames or not isinstance(stored.state, EntryState):
        return None
    found = store.standing_frames(spec.list_id, stored.state)
    return {entry.hash.hex(): frames for entry, frames in found.items()}


def build_index(
    spec: ListSpec,
    stored: StoredList | StoredEntries,
    frames: Mapping[str, Sequence[Frame]] | None = None,
) -> tuple[MatchIndex, bool]:
    """A match index of a stored list, and whether its state passed its digest.

    Touches no database, so that a worker process builds a large list's new index
    on a thread while its loop goes on answering with the old one. The SHA-256 pass
    costs about 20 ms for 1M PDQ hashes; a damaged state is enforced as far as it
    goes (its hashes sorted and deduplicated), and ``Matching.install`` reports it.

    A ``vpdq`` list's index is a ``VideoIndex`` of ``frames`` (``index_frames``: its
    records' frames by record hash; none given, an index that matches nothing).
    """
    if hash_kind(spec.hash_type).frames:
        return VideoIndex.build(frames or {}), stored.state.digest() == stored.trust.state
    state = stored.state
    intact = state.digest() == stored.trust.state
    if isinstance(state, EntryState):
        # The index holds the records' hashes only; the records stay in the store.
        state = state.as_hashes()
    data = state.to_bytes() if intact else ListState.from_hashes(state.width, state).to_bytes()
    index = ListIndex.from_snapshot(spec.hash_type, spec.max_distance, data, background=True)
    return index, intact


@dataclass(frozen=True)
class MatchResult:
    """One listed hash that a query matched.

    ``recorded`` is False for a ``look``, which records no event (its ``match_id`` is
    empty, and null in ``to_dict``); ``earlier`` marks a match of registered content
    reported under the event recorded for it before
    (``ContentRegistry.register_and_match``), which is not counted again.

    ``query`` is the query hash the ``distance`` belongs to: for an image queried
    with its dihedral hashes, the variant that matched, and ``transform`` names its
    turn (None otherwise; absent from ``to_dict`` then, so other answers keep
    their shape).

    ``entry`` is the record the listed hash has in a list of the ``entries`` format,
    read from the store when the match was found; None for a ``hashes`` list
    (``"entry": null`` in ``to_dict``).

    ``verdict`` is the platform's decision on it (``node.policy``): ``"decision"``
    and ``"decision_reason"`` in ``to_dict``.

    ``opinions`` is what the platforms say of the entry (``Stance``), read with the
    entry; None for a ``hashes`` list (``"opinions": null`` in ``to_dict``).

    ``hub`` is the followed hub whose list it is (``"hub"`` beside ``"list"`` in
    ``to_dict``): a list is named by the pair, and a hash two hubs list is a match
    in each.

    ``query_share`` and ``listed_share`` are a video's (PROTOCOL.md §6.4): ``(q, Q)``
    of the query's distinct good frames agreeing with the listed video's, ``(l, L)``
    of the listed video's agreeing with the query's (``"video"`` in ``to_dict``;
    absent for any other match). ``hash`` is then the listed record's hash, ``query``
    the query's frames digest and ``distance`` 0. Its event keeps both
    (``shares``), and the node's list of events shows them as ``to_dict`` does.
    """

    match_id: str
    list_id: str
    hash_type: str
    hash: bytes
    query: bytes
    distance: int
    version: int
    recorded: bool = True
    earlier: bool = False
    transform: str | None = None
    entry: Entry | None = None
    verdict: Verdict = BLOCK
    opinions: Stance | None = None
    hub: str = DEFAULT_HUB
    query_share: tuple[int, int] | None = None
    listed_share: tuple[int, int] | None = None

    @property
    def shares(self) -> Shares | None:
        """Both shares of a video match, as its event keeps them (None otherwise)."""
        if self.query_share is None or self.listed_share is None:
            return None
        return self.query_share, self.listed_share

    def to_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "match_id": self.match_id if self.recorded else None,
            "hub": self.hub,
            "list": self.list_id,
            "hash_type": self.hash_type,
            "hash": self.hash.hex(),
            "query": self.query.hex(),
            "distance": self.distance,
            "version": self.version,
        }
        if self.transform is not None:
            answer["transform"] = self.transform
        return (
            answer
            | shares_members(self.shares)
            | entry_members(self.entry)
            | opinion_members(self.opinions)
            | self.verdict.to_dict()
        )


def _event_entry(stored: str | None) -> dict[str, Any]:
    """The entry members of a recorded match event: as a match's, but the entry's
    ``source`` named ``entry_source``, since an event's ``source`` says what found it
    (an upload, the registry)."""
    if stored is None:
        return {"entry": None}
    members = dict(json.loads(stored))
    members["entry_source"] = members.pop("source")
    return members


def _event_decision(decided: tuple[str, str] | None) -> dict[str, Any]:
    """What a recorded event says of the policy's decision on it."""
    if decided is None:
        return {"decision": "block", "reason": None}
    return {"decision": decided[0], "reason": decided[1]}


def opinion_members(stance: Stance | None) -> dict[str, Any]:
    """What a match says of what the platforms say of its entry: ``opinions``,
    ``{"confirmed", "disputed", "dispute"}``; null for a match of a ``hashes`` list."""
    return {"opinions": None if stance is None else stance.to_dict()}


def entry_members(entry: Entry | None) -> dict[str, Any]:
    """What a match says of its entry: ``entry`` (the id), ``category``,
    ``classification``, ``source``, ``first_seen`` and ``expires``; only
    ``"entry": None`` for a match of a ``hashes`` list."""
    return {"entry": None} if entry is None else entry.to_dict()


class Matching:
    """The match indexes of the lists a node follows from one hub, and the events and
    counters they produce.

    ``indexes``, ``versions`` (the version each index follows) and ``damaged`` (lists
    whose stored state failed its digest) are in memory only: they are rebuilt from
    the store by ``load_indexes``. The hub is the store view's (``store.hub``); the
    node matches across every hub it follows through ``node.matchings.Matchings``.
    Match events are the node's, whichever hub listed what they matched: an outcome
    and the newest events are read from any hub's ``Matching`` alike.
    """

    def __init__(
        self,
        store: NodeStore,
        lists: Sequence[str],
        *,
        now: Callable[[], datetime],
        image_limits: ImageLimits,
        dihedral: bool,
        replica: str = "",
        quarantine: QuarantineRule | None = None,
    ) -> None:
        self.store = store
        self.hub = store.hub
        self.policy = Policy(store, now=now, rule=quarantine or QuarantineRule())
        self.replica = replica
        self.lists = tuple(lists)
        self.now = now
        self.image_limits = image_limits
        self.dihedral = dihedral
        self.indexes: dict[str, ListIndex] = {}
        self.videos: dict[str, VideoIndex] = {}
        """The ``vpdq`` lists' indexes of frames: never in ``indexes``, whose lists
        match by hash."""
        self.entries_lists: set[str] = set()
        """The indexed lists of the ``entries`` format: each hit is looked up in the store."""
        self.damaged: set[str] = set()
        self.versions: dict[str, int] = {}
        self._unwritten: dict[str, int] = {}
        self._unwritten_lock = threading.Lock()

    # -- following the lists ---------------------------------------------------------

    def load_indexes(self, list_ids: Collection[str] | None = None) -> None:
        """Build one match index per applied list (or per list of ``list_ids``) from
        its stored (verified) state."""
        root = newest_root(self.store)
        if root is None:
            return
        for list_id in self.lists if list_ids is None else list_ids:
            spec = root.lists.get(list_id)
            if spec is None:
                continue
            stored = self.store.stored_list(list_id, spec.hash_type)
            frames = index_frames(self.store, spec, stored)
            self.install(stored, *build_index(spec, stored, frames))

    def stale_lists(self) -> list[str]:
        """The subscribed lists whose stored version is not the indexed one: another
        process (the syncing worker, ``hashhub-node sync``) applied an update."""
        stored = self.store.list_versions()
        return [
            list_id
            for list_id in self.lists
            if stored.get(list_id, 0) != self.versions.get(list_id, 0)
        ]

    def install(self, stored: StoredList | StoredEntries, index: MatchIndex, intact: bool) -> None:
        """Enforce ``index``, built from ``stored`` by ``build_index``.

        A state damaged on disk (its SHA-256 pass against the trusted digest failed)
        is reported once as evidence, and what is left of it is enforced, in order,
        until the next update repairs it.
        """
        list_id = stored.list_id
        if intact:
            self.damaged.discard(list_id)
        elif list_id not in self.damaged:
            self.store.add_evidence(
                list_id,
                "LocalCorruption",
                f"stored state of v{stored.trust.version} does not match its digest",
                self.now(),
            )
            self.damaged.add(list_id)
        if isinstance(index, VideoIndex):
            self.videos[list_id] = index
            self.indexes.pop(list_id, None)
        else:
            self.indexes[list_id] = index
            self.videos.pop(list_id, None)
        self._format(list_id, isinstance(stored, StoredEntries))
        self.versions[list_id] = stored.trust.version

    def _format(self, list_id: str, entries: bool) -> None:
        if entries:
            self.entries_lists.add(list_id)
        else:
            self.entries_lists.discard(list_id)

    def follow(self, outcome: ListOutcome, spec: ListSpec) -> None:
        """Bring one list's index to an applied update: the delta when the index can
        take it, else a new index from the new state (a snapshot rebuilt it, or there
        was no index yet). An index already at the update's version is left as it is:
        another worker's loop (``node.workers.take_up``) may have built it from the
        store between the update's commit and this call."""
        if self.versions.get(outcome.list_id) == outcome.to_version:
            return
        index = self.indexes.get(outcome.list_id)
        if hash_kind(spec.hash_type).frames:
            # A video list's index is of its frames, which only the store holds.
            self.load_indexes([outcome.list_id])
            return
        if spec.entries and outcome.state is None and (index is None or outcome.rebuilt):
            # A delta of an entries list carries no state: the store has it.
            self.load_indexes([outcome.list_id])
            return
        if index is None or outcome.rebuilt or (outcome.state is None and not spec.entries):
            data = outcome.state.to_bytes() if outcome.state is not None else b""
            self.indexes[outcome.list_id] = ListIndex.from_snapshot(
                spec.hash_type, spec.max_distance, data, background=True
            )
        else:
            index.apply(outcome.removed, outcome.added)
        self._format(outcome.list_id, spec.entries)
        self.versions[outcome.list_id] = outcome.to_version

    def stricter(self, spec: ListSpec) -> ListSpec:
        """``spec`` with the platform's own stricter distance for the list, if it set
        one (``policy distance``); a retroactive search of the registry uses it."""
        limit = self.policy.max_distances().get(spec.list_id)
        if limit is None or limit >= spec.max_distance:
            return spec
        return replace(spec, max_distance=limit)

    def entries_of(
        self, list_id: str, listed: Sequence[bytes], now: datetime
    ) -> dict[bytes, Entry]:
        """The entries of listed hashes of an ``entries`` list that still match, read
        for all of them at once: a hash is left out when the store holds no record of
        it (an update removed it since the index was built) or its ``expires`` has
        come by the node's clock, which stops a match at once, before the hub's
        retraction arrives."""
        found = self.store.entries(list_id, listed)
        return {h: entry for h, entry in found.items() if not entry.expired(now)}

    def _with_entries(self, hits: list[MatchResult]) -> list[MatchResult]:
        """``hits`` with each entries list's hit given its entry and what the
        platforms say of it, and the hits of entries that no longer match left out (a
        match is rare: its entry is looked up in the store, one read of each list for
        all its hits, and one read of the opinions for them all)."""
        wanted: dict[str, list[bytes]] = {}
        for hit in hits:
            if hit.list_id in self.entries_lists:
                wanted.setdefault(hit.list_id, []).append(hit.hash)
        if not wanted:
            return hits
        now = self.now()
        found = {list_id: self.store.entries(list_id, listed) for list_id, listed in wanted.items()}
        kept = []
        for hit in hits:
            if hit.list_id not in wanted:
                kept.append(hit)
                continue
            entry = found[hit.list_id].get(hit.hash)
            if entry is not None and not entry.expired(now):
                kept.append(replace(hit, entry=entry))
        stances = self.stances([(h.list_id, h.entry) for h in kept if h.entry is not None])
        return [
            h if h.entry is None else replace(h, opinions=stances[(h.list_id, h.entry.entry_id)])
            for h in kept
        ]

    def stances(self, found: Sequence[tuple[str, Entry]]) -> dict[tuple[str, str], Stance]:
        """What the platforms say of each (list, entry) of ``found``, in one read;
        ``NO_STANCE`` for an entry no summary speaks of."""
        pairs = [(list_id, entry.entry_id) for list_id, entry in found]
        known = self.store.opinions.stances(pairs)
        return {pair: known.get(pair, NO_STANCE) for pair in pairs}

    # -- matching --------------------------------------------------------------------

    def record_event(
        self,
        list_id: str,
        listed: bytes,
        query: bytes,
        distance: int,
        source: MatchSource,
        content_id: str | None = None,
        entry: Entry | None = None,
    ) -> str:
        """Store one match event, with its ``entry`` for an entries list, and count it
        as ``matched``; returns its id. The policy decides it (``recorded``)."""
        return self.recorded(list_id, listed, query, distance, source, content_id, entry)[0]

    def recorded(
        self,
        list_id: str,
        listed: bytes,
        query: bytes,
        distance: int,
        source: MatchSource,
        content_id: str | None = None,
        entry: Entry | None = None,
        *,
        stance: Stance | None = None,
        shares: Shares | None = None,
    ) -> tuple[str, Verdict]:
        """``record_event``, and the policy's decision on the event: one not ``block``
        is recorded with the outcome ``kept`` and its reason, in the same transaction.
        ``stance`` is what the platforms say of ``entry`` when the caller read it with
        others (``stances``); without it, it is read here. ``shares``: a video
        match's (query, listed), kept with the event."""
        if entry is not None and stance is None:
            stance = self.stances([(list_id, entry)])[(list_id, entry.entry_id)]
        match_id = f"{self.replica}.{uuid.uuid4()}" if self.replica else str(uuid.uuid4())
        hash_type = self.type_of(list_id)
        now = self.now()
        with self.store.atomic():
            verdict = self.policy.judge(
                list_id,
                hash_type,
                listed,
                None if entry is None else entry.entry_id,
                recording=True,
                open_dispute=stance is not None and stance.open_dispute,
            )
            self.store.matches.record(
                match_id,
                list_id,
                listed,
                query,
                distance,
                self.versions.get(list_id, 0),
                source,
                content_id,
                now,
                None if entry is None else json.dumps(entry.to_dict()),
                shares,
            )
            self._bump(list_id, "", "matched")
            self._bump(list_id, listed.hex(), "matched")
            if verdict.reason is not None:
                self.store.matches.set_outcome(match_id, "kept", now)
            self.policy.decided(list_id, match_id, verdict)
        return match_id, verdict

    def write_checked(self) -> None:
        """Write the ``checked`` counts of misses not written yet, in one transaction.

        Called before anything reads the counters (an ack is signed, ``status``) and
        by the daemon's outbox job every few seconds: what a crash can lose is the
        ``checked`` count of the last few seconds' misses, never a match.
        """
        with self._unwritten_lock:
            if not self._unwritten:
                return
        with self.store.atomic():
            written = self._write_checked({})
        self._forget(written)

    def _write_checked(self, counted: Mapping[str, int]) -> dict[str, int]:
        """Bump ``checked`` by ``counted`` and the misses' counts; returns the latter,
        to be forgotten once the transaction has committed (kept if it failed)."""
        with self._unwritten_lock:
            pending = dict(self._unwritten)
        for list_id in sorted(set(pending) | set(counted)):
            total = pending.get(list_id, 0) + counted.get(list_id, 0)
            if total:
                self._bump(list_id, "", "checked", total)
        return pending

    def _forget(self, written: Mapping[str, int]) -> None:
        with self._unwritten_lock:
            for list_id, count in written.items():
                left = self._unwritten.get(list_id, 0) - count
                if left > 0:
                    self._unwritten[list_id] = left
                else:
                    self._unwritten.pop(list_id, None)

    def type_of(self, list_id: str) -> str:
        """The hash type of an indexed list ("" for a list not indexed)."""
        if list_id in self.videos:
            return "vpdq"
        index = self.indexes.get(list_id)
        return index.hash_type.name if index is not None else ""

    def _bump(self, list_id: str, hex_hash: str, name: str, by: int = 1) -> None:
        self.store.matches.bump_counter(list_id, hex_hash, name, by)

    def search(
        self, queries: Mapping[str, Sequence[bytes]], *, one_item: bool = False, judge: bool = True
    ) -> tuple[dict[str, int], list[MatchResult]]:
        """Match hashes (by type) against every subscribed list of that type; write nothing.

        With ``judge`` each hit carries the policy's decision as a look sees it; a
        caller that records the hits passes False (``recorded`` decides each, once).

        Returns how many queries each list checked and every hit, in list order, not
        recorded (no match id). With ``one_item`` the hashes of each type describe one piece of
        content (an image's eight dihedral PDQ hashes): it is one check per list, and
        each listed hash it matches is one hit at its least distance, reported with
        the query hash at that distance (and, for ``DihedralQueries``, its turn).
        """
        checked: dict[str, int] = {}
        hits: list[MatchResult] = []
        for list_id, index in sorted(self.indexes.items()):
            type_name = index.hash_type.name
            given = queries.get(type_name, ())
            hashes = list(given)
            if not hashes:
                continue
            version = self.versions.get(list_id, 0)
            if one_item:
                checked[list_id] = 1
                turns = given.transforms if isinstance(given, DihedralQueries) else None
                for m in index.match_any(hashes):
                    # The first variant at the least distance: the upright one on a tie.
                    i = min(range(len(hashes)), key=lambda j: _distance(hashes[j], m.hash))
                    hits.append(
                        MatchResult(
                            "",
                            list_id,
                            type_name,
                            m.hash,
                            hashes[i],
                            m.distance,
                            version,
                            False,
                            transform=turns[i] if turns is not None else None,
                            hub=self.hub,
                        )
                    )
                continue
            checked[list_id] = len(hashes)
            for query, matches in zip(hashes, index.match(hashes), strict=True):
                hits.extend(
                    MatchResult(
                        "",
                        list_id,
                        type_name,
                        m.hash,
                        query,
                        m.distance,
                        version,
                        False,
                        hub=self.hub,
                    )
                    for m in matches
                )
        videos = queries.get("vpdq", ())
        if isinstance(videos, VideoQueries) and videos:
            for list_id, video_index in sorted(self.videos.items()):
                checked[list_id] = len(videos)
                hits.extend(self._video_hits(list_id, video_index, videos))
        return checked, self._judged(self._with_entries(hits), judge)

    def _video_hits(
        self, list_id: str, index: VideoIndex, videos: VideoQueries
    ) -> list[MatchResult]:
        """The listed videos each of ``videos`` matches (§6.4), unrecorded: each hit
        names the listed record's hash (its entry is read with the others', and a
        record removed since the index was built matches nothing)."""
        version = self.versions.get(list_id, 0)
        hits = []
        for digest, frames in zip(videos, videos.frames, strict=True):
            for found in index.match(frames):
                listed = bytes.fromhex(found.entry)
                hits.append(
                    MatchResult(
                        "",
                        list_id,
                        "vpdq",
                        listed,
                        digest,
                        0,
                        version,
                        False,
                        hub=self.hub,
                        query_share=found.query_share,
                        listed_share=found.listed_share,
                    )
                )
        return hits

    def _judged(self, hits: list[MatchResult], judge: bool) -> list[MatchResult]:
        """``hits`` within each list's own stricter distance; with ``judge``, each with
        the policy's decision as a look sees it (``looked``)."""
        if not hits:
            return hits
        stricter = self.policy.max_distances()
        kept = []
        for hit in hits:
            limit = stricter.get(hit.list_id)
            if limit is None or hit.distance <= limit:
                kept.append(self.looked(hit) if judge else hit)
        return kept

    def looked(self, hit: MatchResult) -> MatchResult:
        """``hit`` with the policy's decision as a look sees it: what it would be,
        holding nothing and counting nothing (``recorded`` decides a recorded event,
        and may hold it)."""
        verdict = self.policy.judge(
            hit.list_id,
            hit.hash_type,
            hit.hash,
            None if hit.entry is None else hit.entry.entry_id,
            recording=False,
            open_dispute=hit.opinions is not None and hit.opinions.open_dispute,
        )
        return replace(hit, verdict=verdict)

    def look(
        self, queries: Mapping[str, Sequence[bytes]], *, one_item: bool = False
    ) -> list[MatchResult]:
        """What ``match_hashes`` would find, recording nothing: no match event, no counter.

        For a person's quick look (``hashhub-node match --dry-run``): the counts the
        hub receives are of what the platform checked, not of how often someone looked.
        """
        return self.search(queries, one_item=one_item)[1]

    def match_hashes(
        self,
        queries: Mapping[str, Sequence[bytes]],
        *,
        content_id: str | None = None,
        one_item: bool = False,
        checked_types: Collection[str] | None = None,
        earlier: Mapping[tuple[str, bytes], str] | None = None,
    ) -> list[MatchResult]:
        """Match hashes (by type) against every subscribed list of that type, and record it.

        Every query counts as ``checked`` once per list it was checked against; every
        listed hash it matched is a match event and counts as ``matched``. With a
        ``content_id`` the events are of registered content (source ``registry``),
        else of an upload. ``one_item`` is as in ``search``.

        Content registered again is not counted twice: only queries of
        ``checked_types`` (None: every type) count as checked, and a hit on a
        (list, listed hash) in ``earlier`` is reported under the event id found there,
        recording nothing.
        """
        source: MatchSource = "upload" if content_id is None else "registry"
        known = earlier or {}
        checked, hits = self.search(queries, one_item=one_item, judge=False)
        counted = {
            list_id: count
            for list_id, count in checked.items()
            if checked_types is None or self.type_of(list_id) in checked_types
        }
        if not hits:
            # A miss, the upload path's common case, writes nothing: its checks are
            # added up here and written with the next hit or by ``write_checked``.
            with self._unwritten_lock:
                for list_id, count in counted.items():
                    self._unwritten[list_id] = self._unwritten.get(list_id, 0) + count
            return []
        results: list[MatchResult] = []
        with self.store.atomic():
            written = self._write_checked(counted)
            for hit in hits:
                seen = known.get((hit.list_id, hit.hash))
                if seen is not None:
                    results.append(
                        replace(self.looked(hit), match_id=seen, recorded=True, earlier=True)
                    )
                    continue
                match_id, verdict = self.recorded(
                    hit.list_id,
                    hit.hash,
                    hit.query,
                    hit.distance,
                    source,
                    content_id,
                    hit.entry,
                    stance=hit.opinions,
                    shares=hit.shares,
                )
                results.append(replace(hit, match_id=match_id, recorded=True, verdict=verdict))
        self._forget(written)
        return results

    def image_queries(self, data: bytes, *, dihedral: bool | None = None) -> dict[str, list[bytes]]:
        """The hashes an uploaded file is matched by (images: PDQ, pHash, MD5, SHA-256)."""
        hashes = hash_image(data, self.image_limits)
        queries = {t: [h] for t, h in hashes.by_type().items()}
        if dihedral if dihedral is not None else self.dihedral:
            queries["pdq"] = DihedralQueries(dihedral_pdq(data, self.image_limits))
        return queries

    @staticmethod
    def file_queries(data: bytes) -> dict[str, list[bytes]]:
        """The hashes any other file is matched by: every registered type hashed from
        raw bytes (``protocol.hashtypes``: MD5, SHA-256)."""
        return {name: [value] for name, value in file_hashes(data).items()}

    def record_outcome(
        self, match_id: str, outcome: str, reason: str | None = None
    ) -> dict[str, Any]:
        """Record what the platform did about a match; once per match.

        ``reason`` says why a ``false_positive`` was one (``DISPUTE_REASONS``; refused
        with any other outcome). A match of an entries list also sets the platform's
        position on the entry (``opinion_of``), which the next ack of the list
        carries, signed: the newest outcome on any match of the entry is the one that
        speaks.

        The one rule of ``POST /v1/matches/{id}/outcome``, the status page and
        ``hashhub-node outcome``, checked in this order: a malformed id is no match
        (``UnknownMatchError``), then an id another replica issued is
        ``MisdirectedMatchError`` (a kind of it), then the outcome must be one of ``OUTCOMES``
        (``InvalidOutcomeError``), then the match must exist (``UnknownMatchError``);
        the same outcome again is an idempotent success (``duplicate``), another one
        ``OutcomeConflictError``. A refusal changes nothing.
        """
        if not is_match_id(match_id):
            raise UnknownMatchError(shown_match_id(match_id))
        issued_by = issuer(match_id)
        if issued_by and issued_by != self.replica:
            raise MisdirectedMatchError(match_id, issued_by, self.replica)
        if not is_outcome(outcome):
            raise InvalidOutcomeError(
                f"unknown outcome {outcome[:64]!r}; one of {', '.join(OUTCOMES)}"
            )
        if reason is not None and (outcome != "false_positive" or reason not in DISPUTE_REASONS):
            raise InvalidOutcomeError(
                f"a reason is given with false_positive only, one of "
                f"{', '.join(DISPUTE_REASONS)}; not {reason[:64]!r} with {outcome}"
            )
        # Read and written under one write lock: the daemon's API or status page and
        # the command line may answer the same match at the same moment.
        with self.store.atomic():
            event = self.store.matches.event(match_id)
            if event is None:
                raise UnknownMatchError(match_id)
            listing = self.store.view(event["hub"])  # the hub whose list it matched
            if event["outcome"] is not None:
                if event["outcome"] == outcome:
                    return {"match_id": match_id, "outcome": outcome, "duplicate": True}
                raise OutcomeConflictError(
                    f"match {match_id} already has outcome {event['outcome']}"
                )
            self.store.matches.set_outcome(match_id, outcome, self.now())
            counter = _OUTCOME_COUNTER.get(outcome)
            if counter is not None:
                listing.matches.bump_counter(event["list_id"], "", counter)
                listing.matches.bump_counter(event["list_id"], bytes(event["hash"]).hex(), counter)
            taken = opinion_of(outcome, reason)
            if event["entry"] is not None and taken is not None:
                entry_id = str(json.loads(event["entry"])["entry"])
                listing.matches.set_opinion(event["list_id"], entry_id, *taken, self.now())
        recorded: dict[str, Any] = {"match_id": match_id, "outcome": outcome, "duplicate": False}
        if reason is not None:
            recorded["reason"] = reason
        return recorded

    def recent_matches(self, limit: int = 50, *, open_only: bool = False) -> list[dict[str, Any]]:
        """The newest match events, for the status page and the API (open ones only
        with ``open_only``: those still waiting for the platform's outcome). Each
        says the policy's ``decision`` and, when not ``block``, its ``reason``
        (``allowlist``, ``disabled``, ``disputed``, ``quarantine``: the event was
        kept), and, for an entries list, what the platforms say of its entry now
        (``opinions``, one read for every row)."""
        rows = self.store.matches.listing(limit, open_only=open_only)
        decided = self.store.policy.decisions_of([r["id"] for r in rows])
        entries = {
            r["id"]: (r["hub"], r["list_id"], str(json.loads(r["entry"])["entry"]))
            for r in rows
            if r["entry"] is not None
        }
        known: dict[tuple[str, str, str], Stance] = {}
        for hub in sorted({hub for hub, _, _ in entries.values()}):
            pairs = [(list_id, entry) for h, list_id, entry in entries.values() if h == hub]
            for (list_id, entry), stance in self.store.view(hub).opinions.stances(pairs).items():
                known[(hub, list_id, entry)] = stance
        return [
            {
                "match_id": r["id"],
                "hub": r["hub"],
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
            | event_shares(r["shares"])
            | _event_entry(r["entry"])
            | opinion_members(
                known.get(entries[r["id"]], NO_STANCE) if r["id"] in entries else None
            )
            | _event_decision(decided.get(r["id"]))
            for r in rows
        ]


def video_queries(video: VideoHash) -> dict[str, list[bytes]]:
    """The queries a hashed video is matched by: its frames against every ``vpdq``
    list (``VideoQueries``), MD5 and SHA-256 of its bytes against the exact lists."""
    return {"md5": [video.md5], "sha256": [video.sha256], "vpdq": VideoQueries([video.frames])}
