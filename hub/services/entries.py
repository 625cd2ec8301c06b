"""The entries of ``entries`` lists: staged by the operator, published as records.

An entry is one listed item with an id the hub gives (opaque, random, never
reused), its metadata (terms of the root's ``vocabulary``, a source, when it was
first seen, when it expires) and its hash in each list of its collection: the
``entries`` lists sharing a ``label``, whose records of the entry carry the same id
and metadata (``protocol.entries``). The operator sets what an entry should be
(``entry_items``, ``entry_hashes``); the next publish of each list makes its records
match (``Publishing``), from the ``entry_pending`` pairs: a record added, changed
(its old one removed as ``changed``), or removed with the retraction's reason.
Every value is checked when staged, so what waits for a publish is publishable.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from hub.errors import Conflict, InvalidRequest, NotFound
from hub.intake import parse_hash
from hub.services.context import HubContext
from hub.services.frames import Frames, check_frames, degenerate_video, parse_video_hash
from hub.services.keys import Keys
from hub.services.lists import Lists
from protocol import (
    HASH_TYPES,
    Entry,
    EntryState,
    ListHead,
    ListSpec,
    ProtocolError,
    Removal,
    Vocabulary,
    format_time,
    parse_time,
)
from protocol.entries import ENTRY_ID_PATTERN, Reason
from protocol.hashes import degenerate_reason
from protocol.lists import hash_type
from protocol.provenance import ORIGIN_KINDS

__all__ = [
    "DEFAULT_VOCABULARY",
    "NEVER",
    "RETRACT_REASONS",
    "VOCABULARY_GROUPS",
    "Entries",
    "EntryDraft",
    "EntryPage",
    "EntryView",
    "draft_from_json",
    "new_entry_id",
    "parse_entry_lines",
]

DEFAULT_VOCABULARY = Vocabulary(
    categories=("ncii", "csam", "terrorism"),
    classifications=("unconfirmed", "confirmed", "severe"),
    sources=("submission", "import", "member", "hub", "exchange"),
)
"""What ``hashhub init`` declares, and what a hub made without one gets when it
first needs one (its first ``entries`` list or term)."""

VOCABULARY_GROUPS = ("categories", "classifications", "sources")

RETRACT_REASONS: tuple[Reason, ...] = ("withdrawn", "retracted", "disputed", "upstream")
"""The reasons an operator retracts an entry for; ``changed`` and ``expired`` are the
hub's own (a new record of the entry, its ``expires`` come)."""

MAX_HASHES_PER_ENTRY = 16
"""Lists one entry may have a hash in: a collection is a few lists, one per hash type."""


def new_entry_id() -> str:
    """``e-`` and 26 lowercase base32 characters (128 random bits): unguessable, so an
    id says nothing of when or in what order entries were made."""
    text = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    return f"e-{text}"


@dataclass(frozen=True)
class EntryDraft:
    """What the operator asks for when adding an entry: its hashes and its metadata."""

    hashes: tuple[tuple[str, str], ...]
    """(list id, hex hash) pairs, one per list."""
    category: str
    classification: str
    source: str
    expires: str | None = None


@dataclass(frozen=True)
class EntryView:
    """One entry as the CLI and the API show it."""

    entry: str
    collection: str
    category: str
    classification: str
    source: str
    first_seen: str
    expires: str | None
    retracted: str | None
    retracted_at: str | None
    lists: list[dict[str, Any]] = field(default_factory=list)
    """Per list: its hash, whether a published record holds the entry, whether the
    next publish changes that record."""
    opinions: dict[str, Any] = field(default_factory=dict)
    """What platforms say of the entry in their nodes' signed acks: how many distinct
    platforms confirm it and dispute it, and each platform's position with the ack
    (node, ``seq``) that said it (``hub.services.acks``)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EntryPage:
    """The newest entries that pass a filter, and how many pass it in all."""

    entries: list[EntryView]
    total: int
    """Entries that pass the filter, ``entries`` and those past the limit."""

    @property
    def more(self) -> int:
        """Entries that pass the filter but were left off."""
        return self.total - len(self.entries)


NEVER = "never"
"""An entry change's ``expires`` that takes the entry's expiry away."""

_DRAFT_FIELDS = frozenset({"hashes", "category", "classification", "source", "expires"})


def draft_from_json(value: Any) -> EntryDraft:
    """An entry as JSON: ``{"hashes": {list: hex, ...}, "category", "classification",
    "source", "expires"?}`` (the API's body and a line of ``entry import``).

    Raises:
        InvalidRequest: naming the field.
    """
    if not isinstance(value, dict):
        raise InvalidRequest("an entry is a JSON object")
    unknown = sorted(set(value) - _DRAFT_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field(s) {unknown}")
    hashes = value.get("hashes")
    if (
        not isinstance(hashes, dict)
        or not hashes
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in hashes.items())
    ):
        raise InvalidRequest("'hashes' must be an object of list ids to hex hashes")
    texts = {}
    for name in ("category", "classification", "source"):
        text = value.get(name)
        if not isinstance(text, str) or not text:
            raise InvalidRequest(f"'{name}' must be a term")
        texts[name] = text
    expires = value.get("expires")
    if expires is not None and not isinstance(expires, str):
        raise InvalidRequest("'expires' must be a time YYYY-MM-DDTHH:MM:SSZ or null")
    return EntryDraft(tuple(hashes.items()), expires=expires, **texts)


def parse_entry_lines(data: bytes) -> list[EntryDraft]:
    """NDJSON entries, one a line (``draft_from_json``); blank lines are skipped.

    Raises:
        InvalidRequest: naming the line.
    """
    drafts = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise InvalidRequest(f"line {number}: not a JSON object in UTF-8") from None
        try:
            drafts.append(draft_from_json(value))
        except InvalidRequest as e:
            raise InvalidRequest(f"line {number}: {e}") from e
    if not drafts:
        raise InvalidRequest("no entry in the file")
    return drafts


def _split_source(source: str) -> tuple[str, str | None]:
    kind, sep, ref = source.partition(":")
    return kind, (ref if sep else None)


_IN_CHUNK = 500
"""Hashes per ``IN (...)`` query: well under SQLite's limit on parameters."""


def _where(n: int, drafts: Sequence[EntryDraft]) -> str:
    """How an error names the draft it is about, when there are several."""
    return f"entry {n + 1}: " if len(drafts) > 1 else ""


def _check_source(source: str, sourced: bool) -> None:
    """Refuse a source of kind ``hub``, ``member`` or ``exchange`` set by hand: its records
    must carry an origin in the version's provenance (PROTOCOL.md §7.5) that only the hub
    has."""
    kind, _ = _split_source(source)
    if kind in ORIGIN_KINDS and not sourced:
        raise InvalidRequest(
            f"source {source[:80]!r}: a source of kind {kind} is the hub's own, set when it "
            + _SET_WHEN.get(kind, "records its origin")
        )


_SET_WHEN = {
    "hub": "re-publishes an upstream hub's entry ('hashhub upstream')",
    "member": "accepts a member's contribution ('hashhub contribution accept')",
    "exchange": "takes an exchange's record ('hashhub exchange')",
}


def _opinion_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``entry_opinions`` rows of one entry in the shape of ``Entries.opinions``."""
    return {
        "confirmed": sum(1 for r in rows if r["position"] == "confirmed"),
        "disputed": sum(1 for r in rows if r["position"] == "disputed"),
        "platforms": [
            {
                "platform": r["platform"],
                "position": r["position"],
                "reason": r["reason"],
                "list": r["list_id"],
                "node": r["node"],
                "seq": r["seq"],
                "sent": r["sent"],
            }
            for r in rows
        ],
    }


class _Videos:
    """The ``vpdq`` hashes of one staging call: the frames given (kept with the
    entries, in the same transaction) and the bare record hashes, checked against
    the frames the hub holds (``Entries._check_held``)."""

    def __init__(self) -> None:
        self.given: dict[bytes, tuple[bytes, int]] = {}
        """Frames given, by record hash: their bytes and how many."""
        self.named: list[tuple[int, str, bytes]] = []
        """(draft number, list id, record hash) of each bare record hash."""

    def read(self, text: str, list_id: str, n: int) -> bytes:
        """The record hash of a video given as ``text`` (``parse_video_hash``)."""
        video = parse_video_hash(text)
        if video.frames is None:
            self.named.append((n, list_id, video.record))
            return video.record
        reason = degenerate_video(video.decoded)
        if reason is not None:
            raise InvalidRequest(reason)
        self.given[video.record] = (video.frames, len(video.decoded))
        return video.record


class Entries:
    """The ``entry_items``, ``entry_hashes``, ``entry_pending`` and ``entry_records`` tables."""

    def __init__(self, ctx: HubContext, keys: Keys, lists: Lists, frames: Frames) -> None:
        self.ctx = ctx
        self.keys = keys
        self.lists = lists
        self.frames = frames

    # -- checks -----------------------------------------------------------------------

    def vocabulary(self) -> Vocabulary:
        """The newest root's vocabulary; an ``InvalidRequest`` when it declares none."""
        vocabulary = self.keys.root().vocabulary
        if vocabulary is None:
            raise InvalidRequest(
                "the root declares no vocabulary: add a term ('hashhub vocabulary add') "
                "or create an entries list first"
            )
        return vocabulary

    def entries_spec(self, list_id: str) -> ListSpec:
        """The declaration of ``list_id``, which must hold entries."""
        return self._entries_spec(list_id, None)

    def _entries_spec(self, list_id: str, specs: Mapping[str, ListSpec] | None) -> ListSpec:
        # An undeclared list is named by ``Lists.spec``'s own error.
        spec = specs[list_id] if specs and list_id in specs else self.lists.spec(list_id)
        if not spec.entries:
            raise InvalidRequest(
                f"list {list_id} holds bare hashes; stage them with 'hashhub add', not as entries"
            )
        return spec

    def _record(
        self,
        entry_id: str,
        h: bytes,
        category: str,
        classification: str,
        source: str,
        first_seen: datetime,
        expires: datetime | None,
        vocabulary: Vocabulary,
    ) -> Entry:
        """The record these values make, checked by the grammar and ``vocabulary``."""
        kind, ref = _split_source(source)
        try:
            entry = Entry(h, entry_id, category, classification, kind, ref, first_seen, expires)
            vocabulary.check(entry)
        except ProtocolError as e:
            message = str(e).replace(f"entry {entry_id}: ", "").replace(f"entry {entry_id!r}: ", "")
            raise InvalidRequest(message) from e
        return entry

    def _expires(self, text: str | None, now: datetime) -> datetime | None:
        if text is None:
            return None
        try:
            moment = parse_time(text, "expires")
        except ProtocolError as e:
            raise InvalidRequest(str(e)) from e
        if moment <= now:
            raise InvalidRequest(f"expires {text} is not in the future")
        return moment

    def _collection(
        self, list_ids: Sequence[str], specs: Mapping[str, ListSpec] | None = None
    ) -> str:
        """The label the lists of one entry share (its collection); ``specs``: the
        newest root's lists, read once by a caller checking many entries."""
        labels = {self._entries_spec(list_id, specs).label for list_id in list_ids}
        if len(labels) != 1 or (len(list_ids) > 1 and "" in labels):
            raise InvalidRequest(
                f"lists {', '.join(list_ids)} are not one collection: an entry's lists "
                "share a label"
            )
        return labels.pop()

    def _hash_holder(self, list_id: str, h: bytes) -> str | None:
        """The standing entry whose hash in ``list_id`` is ``h``, if any."""
        row = self.ctx.one(
            "SELECT h.entry_id FROM entry_hashes h JOIN entry_items i ON i.id = h.entry_id "
            "WHERE h.list_id = ? AND h.hash = ? AND i.retracted IS NULL",
            [list_id, h],
        )
        return None if row is None else str(row["entry_id"])

    # -- staging ----------------------------------------------------------------------

    def add(self, draft: EntryDraft, who: str = "operator", *, sourced: bool = False) -> EntryView:
        """Stage one new entry; see ``add_many``."""
        return self.add_many([draft], who, sourced=sourced)[0]

    def add_many(
        self, drafts: Sequence[EntryDraft], who: str = "operator", *, sourced: bool = False
    ) -> list[EntryView]:
        """Stage new entries (``stage_many``) and show them."""
        ids = self.stage_many(drafts, who, sourced=sourced)
        return self._views(
            list(
                self.ctx.db.query(
                    "SELECT * FROM entry_items WHERE id IN (SELECT value FROM json_each(?)) "
                    "ORDER BY rowid",
                    [json.dumps(ids)],
                )
            )
        )

    def stage_many(
        self, drafts: Sequence[EntryDraft], who: str = "operator", *, sourced: bool = False
    ) -> list[str]:
        """Stage new entries, all or nothing, each with a new id and ``first_seen`` now;
        their ids, in the drafts' order.

        A source of kind ``hub`` or ``member`` claims an origin the version must prove
        (PROTOCOL.md §7.5): only the hub sets it (``sourced``), when it re-publishes an
        upstream's entry or accepts a contribution, with the origin on record.

        Raises:
            InvalidRequest: a list that does not hold entries, lists of different
                collections, a malformed or degenerate hash, a hash of the wrong
                width, a term the vocabulary lacks, a bad source or expiry.
            Conflict: a hash a standing entry already has in that list.
        """
        now = self.ctx.now()
        first_seen = parse_time(format_time(now), "now")  # the record's precision
        vocabulary = self.vocabulary()
        specs = self.keys.root().lists
        ids = self._new_ids(len(drafts))
        rows: list[tuple[str, str, EntryDraft, datetime | None, list[tuple[str, bytes]]]] = []
        videos = _Videos()
        for n, (entry_id, draft) in enumerate(zip(ids, drafts, strict=True)):
            try:
                _check_source(draft.source, sourced)
                rows.append(
                    self._check_draft(entry_id, draft, first_seen, vocabulary, specs, videos, n)
                )
            except (InvalidRequest, Conflict) as e:
                raise type(e)(f"{_where(n, drafts)}{e}") from e
        self._check_unlisted(rows, drafts)
        stamp, created = format_time(first_seen), format_time(now)
        conn = self.ctx.db.conn
        with self.ctx.db.atomic():
            self._check_held(videos, drafts)
            for digest, (data, count) in videos.given.items():
                self.frames.keep(digest, data, count)
            conn.executemany(
                "INSERT INTO entry_items (id, label, category, classification, source, "
                "first_seen, expires, who, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        entry_id,
                        label,
                        draft.category,
                        draft.classification,
                        draft.source,
                        stamp,
                        format_time(expires) if expires else None,
                        who,
                        created,
                    )
                    for entry_id, label, draft, expires, _ in rows
                ],
            )
            pairs = [(entry_id, lid, h) for entry_id, _, _, _, hashes in rows for lid, h in hashes]
            conn.executemany(
                "INSERT INTO entry_hashes (entry_id, list_id, hash) VALUES (?, ?, ?)", pairs
            )
            conn.executemany(
                "INSERT OR IGNORE INTO entry_pending (list_id, entry_id) VALUES (?, ?)",
                [(lid, entry_id) for entry_id, lid, _ in pairs],
            )
            self.ctx.log("entry.add", who, {"entries": [r[0] for r in rows]})
        return [r[0] for r in rows]

    def _check_draft(
        self,
        entry_id: str,
        draft: EntryDraft,
        first_seen: datetime,
        vocabulary: Vocabulary,
        specs: Mapping[str, ListSpec],
        videos: _Videos,
        n: int,
    ) -> tuple[str, str, EntryDraft, datetime | None, list[tuple[str, bytes]]]:
        """One draft checked on its own (every rule but the hashes other entries hold,
        ``_check_unlisted``'s, and the frames the hub holds, ``_check_held``'s): its
        label, expiry and parsed hashes; the frames it gives go to ``videos``."""
        if not draft.hashes:
            raise InvalidRequest("an entry needs at least one list and hash")
        if len(draft.hashes) > MAX_HASHES_PER_ENTRY:
            raise InvalidRequest(f"an entry has a hash in at most {MAX_HASHES_PER_ENTRY} lists")
        list_ids = [list_id for list_id, _ in draft.hashes]
        if len(set(list_ids)) != len(list_ids):
            raise InvalidRequest("an entry has one hash per list: a list is named twice")
        label = self._collection(list_ids, specs)
        expires = self._expires(draft.expires, first_seen)
        hashes = []
        for list_id, text in draft.hashes:
            spec = specs[list_id]
            try:
                if HASH_TYPES[spec.hash_type].frames:
                    h = videos.read(text, list_id, n)
                else:
                    h = parse_hash(text, spec.hash_type)
                    reason = degenerate_reason(spec.hash_type, h)
                    if reason is not None:
                        raise InvalidRequest(reason)
            except InvalidRequest as e:
                raise InvalidRequest(f"list {list_id}: {e}") from e
            self._record(
                entry_id,
                h,
                draft.category,
                draft.classification,
                draft.source,
                first_seen,
                expires,
                vocabulary,
            )
            hashes.append((list_id, h))
        return entry_id, label, draft, expires, hashes

    def _check_held(self, videos: _Videos, drafts: Sequence[EntryDraft]) -> None:
        """Each bare record hash of a video names frames the hub holds, or frames given
        in the same call; held frames that could never match are refused as given
        ones are (``degenerate_video``). Called in the staging transaction, so the
        frames checked are the ones the entry is staged with."""
        for n, list_id, record in videos.named:
            if record in videos.given:
                continue
            data = self.frames.get(record)
            where = f"{_where(n, drafts)}list {list_id}: "
            if data is None:
                raise InvalidRequest(
                    f"{where}the hub holds no frames for {record.hex()}; send the frames "
                    "(the video's frames as hex, 74 digits a frame) instead of its record hash"
                )
            reason = degenerate_video(check_frames(data))
            if reason is not None:
                raise InvalidRequest(f"{where}{reason}")

    def _check_unlisted(
        self,
        rows: Sequence[tuple[str, str, EntryDraft, datetime | None, list[tuple[str, bytes]]]],
        drafts: Sequence[EntryDraft],
    ) -> None:
        """No hash is one a standing entry, or an earlier draft of the same call, has in
        that list: the first draft that breaks it is named, as one by one would.
        Standing holders are read a few hundred hashes a query, not one each."""
        wanted: dict[str, list[bytes]] = {}
        for _, _, _, _, hashes in rows:
            for list_id, h in hashes:
                wanted.setdefault(list_id, []).append(h)
        holders: dict[tuple[str, bytes], str] = {}
        for list_id, values in wanted.items():
            for start in range(0, len(values), _IN_CHUNK):
                chunk = values[start : start + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                for row in self.ctx.db.query(
                    "SELECT h.hash, h.entry_id FROM entry_hashes h JOIN entry_items i "  # noqa: S608
                    f"ON i.id = h.entry_id WHERE h.list_id = ? AND h.hash IN ({marks}) "
                    "AND i.retracted IS NULL",
                    [list_id, *chunk],
                ):
                    holders[(list_id, bytes(row["hash"]))] = str(row["entry_id"])
        for n, (entry_id, _, _, _, hashes) in enumerate(rows):
            for list_id, h in hashes:
                holder = holders.get((list_id, h))
                if holder is not None:
                    raise Conflict(
                        f"{_where(n, drafts)}hash {h.hex()} is already listed in {list_id} "
                        f"(entry {holder})"
                    )
                holders[(list_id, h)] = entry_id

    def _new_ids(self, count: int) -> list[str]:
        """``count`` ids no entry ever had (a retracted entry keeps its row, so its id
        too): 128 random bits each, checked against the table in one query."""
        ids: list[str] = []
        while len(ids) < count:
            fresh = list({new_entry_id() for _ in range(count - len(ids))} - set(ids))
            used = {
                str(r["id"])
                for r in self.ctx.db.query(
                    "SELECT id FROM entry_items WHERE id IN (SELECT value FROM json_each(?))",
                    [json.dumps(fresh)],
                )
            }
            ids += [i for i in fresh if i not in used]
        return ids

    def _mark(self, list_id: str, entry_id: str) -> None:
        self.ctx.db.execute(
            "INSERT OR IGNORE INTO entry_pending (list_id, entry_id) VALUES (?, ?)",
            [list_id, entry_id],
        )

    def _item(self, entry_id: str) -> dict[str, Any]:
        if not isinstance(entry_id, str) or not ENTRY_ID_PATTERN.fullmatch(entry_id):
            raise InvalidRequest(f"{str(entry_id)[:80]!r} is not an entry id")
        row = self.ctx.one("SELECT * FROM entry_items WHERE id = ?", [entry_id])
        if row is None:
            raise NotFound(f"no entry {entry_id}")
        return row

    def _standing(self, entry_id: str) -> dict[str, Any]:
        row = self._item(entry_id)
        if row["retracted"] is not None:
            raise Conflict(f"entry {entry_id} was retracted ({row['retracted']})")
        return row

    def _hashes(self, entry_id: str) -> list[dict[str, Any]]:
        return list(
            self.ctx.db.query(
                "SELECT list_id, hash FROM entry_hashes WHERE entry_id = ? ORDER BY list_id",
                [entry_id],
            )
        )

    def change(
        self,
        entry_id: str,
        *,
        category: str | None = None,
        classification: str | None = None,
        source: str | None = None,
        expires: str | None = None,
        who: str = "operator",
        sourced: bool = False,
    ) -> EntryView:
        """Set new metadata for an entry; each list that holds it publishes its record
        removed as ``changed`` and the new one added, ``first_seen`` kept. ``expires``
        ``NEVER`` takes an expiry away. A new source of kind ``hub`` or ``member`` is the
        hub's own to set (``sourced``; see ``add_many``); one kept keeps its origin.

        Raises:
            InvalidRequest: nothing to change, or a value the record cannot carry.
            NotFound: no such entry. Conflict: the entry was retracted.
        """
        row = self._standing(entry_id)
        wanted = {
            "category": category,
            "classification": classification,
            "source": source,
            "expires": expires,
        }
        given = {k: v for k, v in wanted.items() if v is not None}
        if not given:
            raise InvalidRequest(
                "nothing to change: give a category, classification, source or expiry"
            )
        new = {**row, **given}
        if source is not None:
            _check_source(source, sourced)
        first_seen = parse_time(row["first_seen"], "first_seen")
        if expires == NEVER:  # the entry stops expiring
            until = None
        elif expires is not None:
            until = self._expires(expires, self.ctx.now())
        else:
            until = parse_time(row["expires"], "expires") if row["expires"] else None
        vocabulary = self.vocabulary()
        for item in self._hashes(entry_id):
            self._record(
                entry_id,
                bytes(item["hash"]),
                new["category"],
                new["classification"],
                new["source"],
                first_seen,
                until,
                vocabulary,
            )
        with self.ctx.db.atomic():
            self.ctx.db.execute(
                "UPDATE entry_items SET category = ?, classification = ?, source = ?, "
                "expires = ? WHERE id = ?",
                [
                    new["category"],
                    new["classification"],
                    new["source"],
                    format_time(until) if until else None,
                    entry_id,
                ],
            )
            for item in self._hashes(entry_id):
                self._mark(item["list_id"], entry_id)
            self.ctx.log("entry.change", who, {"entry": entry_id, **given})
        return self.show(entry_id)

    def retract(self, entry_id: str, reason: str, who: str = "operator") -> EntryView:
        """Retract an entry: every list that holds it removes its record, with ``reason``,
        at its next publish (the collection's lists publish together).

        Raises:
            InvalidRequest: not a reason an operator retracts for.
            NotFound: no such entry. Conflict: already retracted.
        """
        if reason not in RETRACT_REASONS:
            raise InvalidRequest(
                f"{str(reason)[:32]!r} is not a reason to retract: "
                f"one of {', '.join(RETRACT_REASONS)}"
            )
        self._standing(entry_id)
        with self.ctx.db.atomic():
            self._retract(entry_id, reason)
            self.ctx.log("entry.retract", who, {"entry": entry_id, "reason": reason})
        return self.show(entry_id)

    def add_submission(
        self, list_id: str, h: bytes, category: str, classification: str, who: str
    ) -> EntryView:
        """Stage an entry of an accepted public submission, with source ``submission``
        and no ref: the record never names the person or the case (the case keeps
        the link, ``hub.services.cases``). Its hash goes in every list of
        ``list_id``'s collection that holds the same hash type. A video's ``h`` is
        its record hash: the case keeps its frames in ``hub.frames`` first, and
        staging refuses a record hash whose frames the hub does not hold.

        Raises:
            InvalidRequest, Conflict: as ``add_many``.
        """
        wanted = self.entries_spec(list_id).hash_type
        root = self.keys.root()
        lists = [lid for lid in self.siblings(list_id) if root.lists[lid].hash_type == wanted]
        draft = EntryDraft(
            tuple((lid, h.hex()) for lid in lists),
            category=category,
            classification=classification,
            source="submission",
        )
        return self.add(draft, who)

    def withdraw(self, entry_id: str, who: str) -> bool:
        """Retract an entry as ``withdrawn``, its person's choice; False when it was
        already retracted (for whatever reason), so there is nothing left to take out."""
        row = self._item(entry_id)
        if row["retracted"] is not None:
            return False
        with self.ctx.db.atomic():
            self._retract(entry_id, "withdrawn")
            self.ctx.log("entry.retract", who, {"entry": entry_id, "reason": "withdrawn"})
        return True

    def _retract(self, entry_id: str, reason: str) -> None:
        self.ctx.db.execute(
            "UPDATE entry_items SET retracted = ?, retracted_at = ? WHERE id = ?",
            [reason, format_time(self.ctx.now()), entry_id],
        )
        for item in self._hashes(entry_id):
            self._mark(item["list_id"], entry_id)

    def expire(self, now: datetime, who: str = "scheduler") -> list[str]:
        """Retract, as ``expired``, every standing entry whose ``expires`` has come by ``now``."""
        due = [
            str(r["id"])
            for r in self.ctx.db.query(
                "SELECT id FROM entry_items WHERE retracted IS NULL AND expires IS NOT NULL "
                "AND expires <= ? ORDER BY id",
                [format_time(now)],
            )
        ]
        if due:
            with self.ctx.db.atomic():
                for entry_id in due:
                    self._retract(entry_id, "expired")
                self.ctx.log("entry.expire", who, {"entries": due})
        return due

    # -- reading ----------------------------------------------------------------------

    def show(self, entry_id: str) -> EntryView:
        """One entry, its hashes and whether each list's published records hold it."""
        [view] = self._views([self._item(entry_id)])
        return view

    def _views(self, items: Sequence[Mapping[str, Any]]) -> list[EntryView]:
        """``entry_items`` rows as views, with their lists and opinions read for all of
        them at once: two queries whatever their number."""
        ids = json.dumps([str(row["id"]) for row in items])
        lists: dict[str, list[dict[str, Any]]] = {}
        for row in self.ctx.db.query(
            "SELECT h.entry_id, h.list_id, h.hash, "
            "EXISTS (SELECT 1 FROM entry_records r WHERE r.list_id = h.list_id "
            "AND r.entry_id = h.entry_id AND r.removed_version IS NULL) AS listed, "
            "EXISTS (SELECT 1 FROM entry_pending p WHERE p.list_id = h.list_id "
            "AND p.entry_id = h.entry_id) AS pending "
            "FROM entry_hashes h WHERE h.entry_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY h.entry_id, h.list_id",
            [ids],
        ):
            lists.setdefault(str(row["entry_id"]), []).append(
                {
                    "list": row["list_id"],
                    "hash": bytes(row["hash"]).hex(),
                    "listed": bool(row["listed"]),
                    "pending": bool(row["pending"]),
                }
            )
        self._with_frame_counts(lists)
        said: dict[str, list[dict[str, Any]]] = {}
        for row in self.ctx.db.query(
            "SELECT entry_id, platform, position, reason, list_id, node, seq, sent "
            "FROM entry_opinions WHERE entry_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY entry_id, platform",
            [ids],
        ):
            said.setdefault(str(row["entry_id"]), []).append(row)
        return [
            EntryView(
                entry=row["id"],
                collection=row["label"],
                category=row["category"],
                classification=row["classification"],
                source=row["source"],
                first_seen=row["first_seen"],
                expires=row["expires"],
                retracted=row["retracted"],
                retracted_at=row["retracted_at"],
                lists=lists.get(row["id"], []),
                opinions=_opinion_summary(said.get(row["id"], [])),
            )
            for row in items
        ]

    def _with_frame_counts(self, lists: Mapping[str, list[dict[str, Any]]]) -> None:
        """Give each hash of a video list (``vpdq``) its frame count: a video is shown
        as its record hash and how many frames it has, never its frames (up to 1.3 MB).
        The count is null should the hub hold no frames for the hash."""
        specs = self.keys.root().lists
        videos = [
            item
            for items in lists.values()
            for item in items
            if item["list"] in specs and HASH_TYPES[specs[item["list"]].hash_type].frames
        ]
        if not videos:
            return
        counts = self.frames.counts(bytes.fromhex(item["hash"]) for item in videos)
        for item in videos:
            item["frames"] = counts.get(bytes.fromhex(item["hash"]))

    def listed(self, list_id: str | None = None, limit: int = 1000) -> list[EntryView]:
        """The entries with a hash in ``list_id`` (None: every entry), standing or
        retracted, oldest first."""
        if list_id is None:
            rows = self.ctx.db.query("SELECT * FROM entry_items ORDER BY rowid LIMIT ?", [limit])
        else:
            self.entries_spec(list_id)
            rows = self.ctx.db.query(
                "SELECT i.* FROM entry_hashes h JOIN entry_items i ON i.id = h.entry_id "
                "WHERE h.list_id = ? ORDER BY i.rowid LIMIT ?",
                [list_id, limit],
            )
        return self._views(list(rows))

    def newest(
        self, *, category: str | None = None, disputed: bool = False, limit: int = 100
    ) -> EntryPage:
        """The newest ``limit`` entries, standing or retracted, each as ``show`` gives it,
        in four queries whatever ``limit`` is, so a page of entries costs the database
        the same as a page of one.

        Args:
            category: only entries of this category (None: any).
            disputed: only entries at least one platform now disputes.
            limit: at most this many entries; ``EntryPage.total`` counts them all.
        """
        condition = (
            "(:category IS NULL OR i.category = :category) AND (NOT :disputed OR EXISTS "
            "(SELECT 1 FROM entry_opinions o WHERE o.entry_id = i.id "
            "AND o.position = 'disputed'))"
        )
        wanted = {"category": category, "disputed": disputed, "limit": max(limit, 0)}
        # The condition is fixed text; the values go in as parameters.
        counted = self.ctx.one(
            f"SELECT count(*) AS n FROM entry_items i WHERE {condition}",  # noqa: S608
            wanted,
        )
        items = list(
            self.ctx.db.query(
                f"SELECT i.* FROM entry_items i WHERE {condition} "  # noqa: S608
                "ORDER BY i.rowid DESC LIMIT :limit",
                wanted,
            )
        )
        views = self._views(items)
        return EntryPage(views, int(counted["n"]) if counted else 0)

    def pending_lists(self) -> list[str]:
        """Lists whose records the next publish changes."""
        return [
            r["list_id"] for r in self.ctx.db.query("SELECT DISTINCT list_id FROM entry_pending")
        ]

    def pending_count(self, list_id: str) -> int:
        row = self.ctx.one("SELECT count(*) AS n FROM entry_pending WHERE list_id = ?", [list_id])
        return int(row["n"]) if row else 0

    def siblings(self, list_id: str) -> list[str]:
        """The lists of ``list_id``'s collection (itself alone when it has no label)."""
        root = self.keys.root()
        spec = root.lists[list_id]
        if not spec.entries or not spec.label:
            return [list_id]
        return sorted(lid for lid, s in root.lists.items() if s.entries and s.label == spec.label)

    # -- publishing -------------------------------------------------------------------

    def state(self, list_id: str) -> EntryState:
        """The list's published records."""
        spec = self.entries_spec(list_id)
        lines = [
            bytes(r[0])
            for r in self.ctx.db.execute(
                "SELECT line FROM entry_records WHERE list_id = ? AND removed_version IS NULL "
                "ORDER BY line",
                [list_id],
            ).fetchall()
        ]
        return EntryState(hash_type(spec.hash_type), lines)

    def head(self, list_id: str) -> ListHead[EntryState]:
        """What the next publish of the entries list ``list_id`` builds on: the list's
        log position (``Lists.head``) with its records as the state."""
        return ListHead(state=self.state(list_id), **self.lists.position(list_id))

    def changes(
        self, list_id: str, limit: int | None = None
    ) -> tuple[list[Removal], list[Entry], str | None]:
        """What the pending entries of ``list_id`` change in its records: the first
        ``limit`` of them by entry id (None: all), and the last entry id read, up to
        which ``consume`` then clears them (None: none were pending)."""
        kind = HASH_TYPES[self.lists.spec(list_id).hash_type]
        removes: list[Removal] = []
        adds: list[Entry] = []
        last: str | None = None
        # One query: each pending entry with its hash and the record the list holds of
        # it now (if any), rather than a query per pending entry.
        for p in self.ctx.db.query(
            "SELECT i.*, h.hash, r.line AS current FROM entry_pending p "
            "JOIN entry_items i ON i.id = p.entry_id "
            "JOIN entry_hashes h ON h.entry_id = p.entry_id AND h.list_id = p.list_id "
            "LEFT JOIN entry_records r ON r.list_id = p.list_id AND r.entry_id = p.entry_id "
            "AND r.removed_version IS NULL "
            "WHERE p.list_id = ? ORDER BY p.entry_id LIMIT ?",
            [list_id, -1 if limit is None else limit],
        ):
            last = str(p["id"])
            current = p["current"]
            old = None if current is None else Entry.from_line(bytes(current), kind)
            new = None if p["retracted"] is not None else self._published(p)
            if old is not None and new is None:
                removes.append(Removal(old, p["retracted"]))
            elif old is None and new is not None:
                adds.append(new)
            elif old is not None and new is not None and old.line != new.line:
                removes.append(Removal(old, "changed"))
                adds.append(new)
        return removes, adds, last

    @staticmethod
    def _published(row: Mapping[str, Any]) -> Entry:
        kind, ref = _split_source(row["source"])
        return Entry(
            bytes(row["hash"]),
            row["id"],
            row["category"],
            row["classification"],
            kind,
            ref,
            parse_time(row["first_seen"], "first_seen"),
            parse_time(row["expires"], "expires") if row["expires"] else None,
        )

    def record(
        self, list_id: str, version: int, removes: Iterable[Removal], adds: Iterable[Entry]
    ) -> None:
        """Keep what version ``version`` of ``list_id`` removed and added."""
        conn = self.ctx.db.conn
        conn.executemany(
            "UPDATE entry_records SET removed_version = ?, reason = ? "
            "WHERE list_id = ? AND entry_id = ? AND removed_version IS NULL",
            [(version, r.reason, list_id, r.entry.entry_id) for r in removes],
        )
        conn.executemany(
            "INSERT INTO entry_records (list_id, entry_id, hash, line, added_version) "
            "VALUES (?, ?, ?, ?, ?)",
            [(list_id, e.entry_id, e.hash, e.line, version) for e in adds],
        )

    def consume(self, list_id: str, through: str | None = None) -> None:
        """The list's records match its entries up to entry id ``through`` (None: all of
        them): nothing pending for those."""
        if through is None:
            self.ctx.db.execute("DELETE FROM entry_pending WHERE list_id = ?", [list_id])
        else:
            self.ctx.db.execute(
                "DELETE FROM entry_pending WHERE list_id = ? AND entry_id <= ?",
                [list_id, through],
            )

    # -- the vocabulary ---------------------------------------------------------------

    @staticmethod
    def with_term(vocabulary: Vocabulary | None, group: str, term: str) -> Vocabulary:
        """``vocabulary`` (the default when None) with ``term`` added to ``group``.

        Raises:
            InvalidRequest: an unknown group, a malformed term.
            Conflict: the group already has the term.
        """
        if group not in VOCABULARY_GROUPS:
            raise InvalidRequest(
                f"{str(group)[:32]!r} is not a vocabulary group: "
                f"one of {', '.join(VOCABULARY_GROUPS)}"
            )
        base = vocabulary or DEFAULT_VOCABULARY
        terms: tuple[str, ...] = getattr(base, group)
        if term in terms:
            raise Conflict(f"vocabulary.{group} already has {term!r}")
        groups = {g: getattr(base, g) for g in VOCABULARY_GROUPS}
        groups[group] = (*terms, term)  # a new classification is the most severe
        try:
            return Vocabulary(**groups)
        except ProtocolError as e:
            raise InvalidRequest(str(e)) from e
