"""Entries: a listed item with its metadata, in lists of the ``entries`` format.

A list of the ``hashes`` format (PROTOCOL.md §7.2, §8) holds bare hashes. A list of
the ``entries`` format holds **entry records**, one line each::

    <hash> <entry> <category> <classification> <source> <first_seen> <expires>

- ``hash``: the list's hash type in lowercase hex;
- ``entry``: the entry id, opaque and stable, shared by the records of one item in
  the sibling lists of a collection (its PDQ list, its MD5 list, …);
- ``category``, ``classification``: terms of the root's ``vocabulary``;
- ``source``: a source kind of the vocabulary, alone or ``kind:ref`` (the import
  batch, the contributing member, the upstream hub; never a person);
- ``first_seen``: when the hub first listed the item;
- ``expires``: when the entry stops matching, or ``-``.

The schema is closed: seven fields of fixed grammars, no free text, nothing
personal. A list holds each hash at most once and each entry id at most once, so a
record is found by its hash (matching) and by its entry (retraction).

The state is the set of records; its digest is SHA-256 over the records, each with
its line feed, sorted ascending as bytes (so by hash first) — the snapshot is
exactly those bytes. ``EntryState`` keeps them so: one list of record lines, never
one parsed object per record. A body (``hashhub.body.v2``) removes records by value,
each with a reason, and adds records; a changed entry is its old record removed
(reason ``changed``) and its new one added in one delta.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from protocol._fields import Fields, format_time, parse_time, require_aware
from protocol.delta import BodyRef
from protocol.errors import (
    BodyRuleError,
    MalformedError,
    RollbackError,
    StateMismatchError,
)
from protocol.lists import HashType, hash_type
from protocol.state import ListState, StateDigest

__all__ = [
    "ENTRIES_BODY_FORMAT",
    "ENTRY_ID_PATTERN",
    "LIST_FORMATS",
    "MAX_TERMS",
    "REASONS",
    "TERM_PATTERN",
    "EntriesBody",
    "Entry",
    "EntryState",
    "ListFormat",
    "Reason",
    "Removal",
    "Vocabulary",
    "VocabularyError",
    "record_limit",
]

ENTRIES_BODY_FORMAT = "hashhub.body.v2"

ListFormat = Literal["hashes", "entries"]
LIST_FORMATS: tuple[ListFormat, ...] = ("hashes", "entries")

TERM_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
"""A vocabulary term: what a category, a classification or a source kind is called."""

ENTRY_ID_PATTERN = TERM_PATTERN
"""An entry id: opaque to everyone but the hub that gave it, and never reused (the
grammar of a term)."""

_SOURCE_REF = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
"""What a source names: an import batch, a node id, a hub name (128 as §5.1)."""

MAX_TERMS = 256
"""Terms per vocabulary group."""

_AFTER_HASH = (1 + 64) * 3 + (1 + 64 + 1 + 128) + (1 + 20) * 2
"""The longest a record can be after its hash: the entry id, category and
classification (64 each), the source (a kind of 64, a colon and a ref of 128), two
times, and a space before each."""


def record_limit(kind: HashType) -> int:
    """The longest record line of a list of ``kind``, without its line feed (a body's
    removal line adds a sign, a space and a reason)."""
    return 2 * kind.length + _AFTER_HASH


Reason = Literal["changed", "withdrawn", "expired", "retracted", "disputed", "upstream"]
REASONS: tuple[Reason, ...] = (
    "changed",
    "withdrawn",
    "expired",
    "retracted",
    "disputed",
    "upstream",
)
"""Why a record is removed. ``changed``: the same entry's new record is added in the
same delta. ``withdrawn``: the person who submitted it withdrew it. ``expired``: its
``expires`` had passed. ``retracted``: the operator's decision. ``disputed``: a
dispute about it was upheld. ``upstream``: the hub it came from removed it."""

_REASON: dict[str, Reason] = {r: r for r in REASONS}

_GROUPS = ("categories", "classifications", "sources")


class VocabularyError(BodyRuleError):
    """An entry record with a term its root's vocabulary does not declare."""


@dataclass(frozen=True)
class Vocabulary:
    """The terms a hub's entry records may use (the root's ``vocabulary``).

    ``classifications`` is a scale, least severe first. A later root keeps every
    term of each group and the scale's order (``check_successor``), so a record
    accepted once stays valid under every later root.
    """

    categories: tuple[str, ...]
    classifications: tuple[str, ...]
    sources: tuple[str, ...]

    def __post_init__(self) -> None:
        for group in _GROUPS:
            terms = getattr(self, group)
            if not terms:
                raise MalformedError(f"root: vocabulary.{group} is empty")
            if len(terms) > MAX_TERMS:
                raise MalformedError(f"root: vocabulary.{group} has more than {MAX_TERMS} terms")
            for term in terms:
                if not isinstance(term, str) or not TERM_PATTERN.fullmatch(term):
                    raise MalformedError(
                        f"root: vocabulary.{group} term {str(term)[:64]!r} does not match "
                        f"{TERM_PATTERN.pattern}"
                    )
            if len(set(terms)) != len(terms):
                raise MalformedError(f"root: vocabulary.{group} names a term twice")

    def to_dict(self) -> dict[str, Any]:
        return {group: list(getattr(self, group)) for group in _GROUPS}

    @classmethod
    def from_dict(cls, value: Any) -> Vocabulary:
        f = Fields(value, "root: vocabulary")
        groups = [tuple(f.array(group, max_items=MAX_TERMS)) for group in _GROUPS]
        f.closed()
        return cls(*groups)

    def check_successor(self, newer: Vocabulary, version: int) -> None:
        """Refuse a later root's vocabulary that drops a term or reorders the scale.

        Raises:
            RollbackError: naming the term.
        """
        for group in _GROUPS:
            kept = set(getattr(newer, group))
            for term in getattr(self, group):
                if term not in kept:
                    raise RollbackError(
                        f"root v{version} drops vocabulary.{group} term {term!r}: records "
                        "that use it would no longer verify"
                    )
        order = [t for t in newer.classifications if t in set(self.classifications)]
        if order != list(self.classifications):
            raise RollbackError(
                f"root v{version} reorders the classification scale {list(self.classifications)}"
            )

    @functools.cached_property
    def _terms(self) -> dict[str, frozenset[str]]:
        """Each group's terms as a set: a body checks three terms per added record."""
        return {group: frozenset(getattr(self, group)) for group in _GROUPS}

    def check(self, entry: Entry) -> None:
        """Raise ``VocabularyError`` for a record using a term this vocabulary lacks."""
        for group, term in (
            ("categories", entry.category),
            ("classifications", entry.classification),
            ("sources", entry.source_kind),
        ):
            if term not in self._terms[group]:
                raise VocabularyError(
                    f"entry {entry.entry_id}: {term!r} is not a term of vocabulary.{group}"
                )


def _whole_second(moment: datetime, where: str, name: str) -> datetime:
    return require_aware(moment, f"{where}: {name}").replace(microsecond=0)


@dataclass(frozen=True)
class Entry:
    """One entry record: a hash of a listed item, the item's id and its metadata."""

    hash: bytes
    entry_id: str
    category: str
    classification: str
    source_kind: str
    source_ref: str | None
    first_seen: datetime
    expires: datetime | None = None

    def __post_init__(self) -> None:
        where = f"entry {str(self.entry_id)[:64]!r}"
        if not isinstance(self.entry_id, str) or not ENTRY_ID_PATTERN.fullmatch(self.entry_id):
            raise MalformedError(f"{where}: the id does not match {ENTRY_ID_PATTERN.pattern}")
        for name in ("category", "classification", "source_kind"):
            value = getattr(self, name)
            if not isinstance(value, str) or not TERM_PATTERN.fullmatch(value):
                raise MalformedError(f"{where}: {name} does not match {TERM_PATTERN.pattern}")
        if self.source_ref is not None and not _SOURCE_REF.fullmatch(self.source_ref):
            raise MalformedError(f"{where}: the source's ref does not match {_SOURCE_REF.pattern}")
        # A record writes its times in UTC to the second: keep exactly what it writes,
        # so a record made here equals the one a verifier parses, and every time rule
        # (expires after first_seen, first_seen kept on a change) holds on the wire.
        object.__setattr__(self, "first_seen", _whole_second(self.first_seen, where, "first_seen"))
        if self.expires is not None:
            object.__setattr__(self, "expires", _whole_second(self.expires, where, "expires"))
            if self.expires <= self.first_seen:
                raise MalformedError(f"{where}: expires is not after first_seen")

    @property
    def source(self) -> str:
        """``kind`` or ``kind:ref``, as the record writes it."""
        return (
            self.source_kind if self.source_ref is None else f"{self.source_kind}:{self.source_ref}"
        )

    def metadata(self) -> tuple[str, str, str, datetime, datetime | None]:
        """Everything but the hash: equal across an entry's records in sibling lists."""
        return (self.category, self.classification, self.source, self.first_seen, self.expires)

    def expired(self, now: datetime) -> bool:
        """Whether the entry no longer matches at ``now`` (its ``expires`` has come)."""
        return self.expires is not None and now >= self.expires

    @functools.cached_property
    def line(self) -> bytes:
        """The record, without its line feed (made once; a parsed record keeps the
        line it was parsed from, its one spelling)."""
        return self.to_line()

    def to_line(self) -> bytes:
        """The record, without its line feed."""
        expires = "-" if self.expires is None else format_time(self.expires)
        return (
            f"{self.hash.hex()} {self.entry_id} {self.category} {self.classification} "
            f"{self.source} {format_time(self.first_seen)} {expires}"
        ).encode("ascii")

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON members (the node's API and webhooks)."""
        return {
            "entry": self.entry_id,
            "category": self.category,
            "classification": self.classification,
            "source": self.source,
            "first_seen": format_time(self.first_seen),
            "expires": None if self.expires is None else format_time(self.expires),
        }

    @classmethod
    def from_line(cls, line: bytes, kind: HashType) -> Entry:
        """Parse one record line (no line feed) of a list of hash type ``kind``.

        Raises:
            MalformedError: the line breaks the record grammar.
        """
        if len(line) > record_limit(kind):
            raise MalformedError(f"entry record of {len(line)} bytes is too long")
        fast = _from_valid_line(line, kind)
        if fast is not None:
            return fast
        fields = line.split(b" ")
        if len(fields) != 7:
            raise MalformedError(f"entry record with {len(fields)} fields, not 7")
        digits, entry_id, category, classification, source, first_seen, expires = (
            f.decode("ascii", "replace") for f in fields
        )
        if not re.fullmatch(rf"[0-9a-f]{{{2 * kind.length}}}", digits):
            raise MalformedError(
                f"entry record: the hash is not {2 * kind.length} lowercase hex digits"
            )
        kind_name, _, ref = source.partition(":")
        if ":" in source and not ref:
            raise MalformedError("entry record: a source 'kind:' without its ref")
        entry = cls(
            hash=bytes.fromhex(digits),
            entry_id=entry_id,
            category=category,
            classification=classification,
            source_kind=kind_name,
            source_ref=ref if ":" in source else None,
            first_seen=parse_time(first_seen, "entry record: first_seen"),
            expires=None if expires == "-" else parse_time(expires, "entry record: expires"),
        )
        # Each field has one spelling (lowercase hex, fixed patterns, one time
        # format), so the line parsed is the line the record writes.
        entry.__dict__["line"] = bytes(line)
        return entry


def _from_valid_line(line: bytes, kind: HashType) -> Entry | None:
    """``Entry.from_line`` for a line the record grammar matches in one go (a body of
    10,000 records parses several times faster so): the fields are set as the match
    proved them, the times read once per distinct text. None for any other line,
    which the field-by-field parse then refuses with the rule it breaks."""
    if _record_pattern(2 * kind.length, None).fullmatch(line) is None:
        return None
    digits, entry_id, category, classification, source, first, until = line.decode("ascii").split(
        " "
    )
    kind_name, sep, ref = source.partition(":")
    first_seen = _record_time(first, "entry record: first_seen")
    expires = None if until == "-" else _record_time(until, "entry record: expires")
    if expires is not None and expires <= first_seen:
        raise MalformedError(f"entry {entry_id!r}: expires is not after first_seen")
    entry = object.__new__(Entry)
    for name, value in (
        ("hash", bytes.fromhex(digits)),
        ("entry_id", entry_id),
        ("category", category),
        ("classification", classification),
        ("source_kind", kind_name),
        ("source_ref", ref if sep else None),
        ("first_seen", first_seen),
        ("expires", expires),
    ):
        object.__setattr__(entry, name, value)
    entry.__dict__["line"] = bytes(line)
    return entry


@functools.lru_cache(maxsize=4096)
def _record_time(text: str, where: str) -> datetime:
    """``parse_time``, once per distinct text (a body's records share a few times)."""
    return parse_time(text, where)


@dataclass(frozen=True)
class Removal:
    """A record a body removes, and why."""

    entry: Entry
    reason: Reason


@dataclass(frozen=True)
class EntriesBody:
    """The removals and additions of one version of an ``entries`` list.

    ``hashhub.body.v2 <hash type>``, then ``-<record> <reason>`` lines strictly
    ascending by record, then ``+<record>`` lines strictly ascending. Rules checked
    here, on the body alone: the grammar; no record both removed and added; at most
    one removal and one addition per entry id and per hash; a ``changed`` removal
    exactly when the delta adds a record of the same entry, which keeps the entry's
    ``first_seen``.
    """

    hash_type: str
    removes: tuple[Removal, ...]
    adds: tuple[Entry, ...]

    def __post_init__(self) -> None:
        kind = hash_type(self.hash_type)
        removed = [r.entry for r in self.removes]
        for records, name in ((removed, "removals"), (list(self.adds), "additions")):
            if any(len(e.hash) != kind.length for e in records):
                raise BodyRuleError(f"body: {name} of another width than the list's")
            lines = [e.line for e in records]
            if any(b <= a for a, b in itertools.pairwise(lines)):
                raise BodyRuleError(f"body: {name} are not strictly ascending")
            if len({e.entry_id for e in records}) != len(records):
                raise BodyRuleError(f"body: {name} name one entry id twice")
            if len({e.hash for e in records}) != len(records):
                raise BodyRuleError(f"body: {name} name one hash twice")
        for r in self.removes:
            if r.reason not in REASONS:
                raise BodyRuleError(f"body: unknown removal reason {r.reason!r}")
        if set(removed) & set(self.adds):
            raise BodyRuleError("body: a record is both removed and added")
        added = {e.entry_id: e for e in self.adds}
        for r in self.removes:
            new = added.get(r.entry.entry_id)
            if (new is not None) != (r.reason == "changed"):
                raise BodyRuleError(
                    f"body: entry {r.entry.entry_id} removed as {r.reason!r}; a removal is "
                    "'changed' exactly when the delta adds a record of the same entry"
                )
            if new is not None and new.first_seen != r.entry.first_seen:
                raise BodyRuleError(
                    f"body: entry {r.entry.entry_id} changed its first_seen; it is a fact"
                )

    @classmethod
    def build(
        cls,
        hash_type_name: str,
        removes: Iterable[Removal] = (),
        adds: Iterable[Entry] = (),
    ) -> EntriesBody:
        """Sort changes into a valid body."""
        return cls(
            hash_type_name,
            tuple(sorted(removes, key=lambda r: r.entry.line)),
            tuple(sorted(adds, key=lambda e: e.line)),
        )

    def to_bytes(self) -> bytes:
        lines = [f"{ENTRIES_BODY_FORMAT} {self.hash_type}\n".encode()]
        lines.extend(b"-" + r.entry.line + b" " + r.reason.encode() + b"\n" for r in self.removes)
        lines.extend(b"+" + e.line + b"\n" for e in self.adds)
        return b"".join(lines)

    @classmethod
    def from_bytes(cls, data: bytes, hash_type_name: str) -> EntriesBody:
        """Parse body bytes strictly for an ``entries`` list of ``hash_type_name``.

        Raises:
            BodyRuleError: naming the line and the rule broken.
        """
        kind = hash_type(hash_type_name)
        head = f"{ENTRIES_BODY_FORMAT} {hash_type_name}\n".encode()
        if not data.startswith(head):
            first = data.split(b"\n", 1)[0][:64]
            raise BodyRuleError(f"body: first line {first!r} is not {head.strip()!r}")
        if not data.endswith(b"\n"):
            raise BodyRuleError("body: last line does not end in a newline")
        removes: list[Removal] = []
        adds: list[Entry] = []
        lines = data[len(head) : -1].split(b"\n") if len(data) > len(head) else []
        for number, line in enumerate(lines, start=2):
            sign, rest = line[:1], line[1:]
            try:
                if sign == b"-":
                    if adds:
                        raise BodyRuleError(f"body line {number}: removal after an addition")
                    record, _, word = rest.rpartition(b" ")
                    reason = _REASON.get(word.decode("ascii", "replace"))
                    if reason is None:
                        raise BodyRuleError(
                            f"body line {number}: removal reason {word[:32]!r} is not one of "
                            f"{', '.join(REASONS)}"
                        )
                    removes.append(Removal(Entry.from_line(record, kind), reason))
                elif sign == b"+":
                    adds.append(Entry.from_line(rest, kind))
                else:
                    raise BodyRuleError(f"body line {number}: not '-' or '+' and a record")
            except BodyRuleError:
                raise
            except MalformedError as e:
                raise BodyRuleError(f"body line {number}: {e}") from None
        try:
            return cls(hash_type_name, tuple(removes), tuple(adds))
        except BodyRuleError:
            raise
        except MalformedError as e:
            raise BodyRuleError(str(e)) from None

    def ref(self) -> BodyRef:
        return BodyRef.of(self.to_bytes(), len(self.adds), len(self.removes))

    def check_ref(self, ref: BodyRef) -> None:
        ref.check_counts(len(self.adds), len(self.removes))

    def check_vocabulary(self, vocabulary: Vocabulary | None) -> None:
        """Every added record's terms are in ``vocabulary`` (the root that signed the
        header): ``VocabularyError`` otherwise, or if the root declares none."""
        if vocabulary is None:
            raise VocabularyError("an entries list under a root that declares no vocabulary")
        for entry in self.adds:
            vocabulary.check(entry)

    def check_times(self, created: datetime) -> None:
        """Added records were first seen by the header's ``created`` and have not
        expired by then; a removal for ``expired`` is of a record whose ``expires``
        has come by then.

        Raises:
            BodyRuleError: naming the entry.
        """
        for entry in self.adds:
            if entry.first_seen > created:
                raise BodyRuleError(
                    f"body: entry {entry.entry_id} first seen after the version was made"
                )
            if entry.expired(created):
                raise BodyRuleError(f"body: entry {entry.entry_id} added already expired")
        for r in self.removes:
            if r.reason == "expired" and not r.entry.expired(created):
                raise BodyRuleError(
                    f"body: entry {r.entry.entry_id} removed as expired before its expires"
                )


_TIME = (
    rb"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8]|(29|3[01]))"
    rb"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"
)
"""A record's time as ``parse_time`` takes it; the group catches the days that not
every month has, left to ``_real_day``."""

_TERM = TERM_PATTERN.pattern.encode()


@functools.lru_cache(maxsize=64)
def _record_pattern(hex_digits: int, vocabulary: Vocabulary | None) -> re.Pattern[bytes]:
    """One record line of a list whose hashes are ``hex_digits`` long, its terms those of
    ``vocabulary`` (any term when None): the grammar of ``Entry.from_line`` and
    ``Vocabulary.check`` in one match, for reading a snapshot without an ``Entry`` per
    record. Groups: the entry id, first_seen, its day if late in a month, expires, and
    its day if late in a month."""

    def terms(group: str) -> bytes:
        if vocabulary is None:
            return _TERM
        words = sorted(getattr(vocabulary, group), key=len, reverse=True)
        return b"(?:" + b"|".join(re.escape(w.encode()) for w in words) + b")"

    return re.compile(
        rb"[0-9a-f]{%d} (%s) %s %s %s(?::%s)? (%s) (?:-|(%s))"
        % (
            hex_digits,
            _TERM,
            terms("categories"),
            terms("classifications"),
            terms("sources"),
            _SOURCE_REF.pattern.encode(),
            _TIME,
            _TIME,
        )
    )


@functools.lru_cache(maxsize=4096)
def _real_day(time: bytes) -> bool:
    """Whether the date of a record time (``YYYY-MM-DD…``) exists (no 30 February)."""
    try:
        datetime(int(time[0:4]), int(time[5:7]), int(time[8:10]))
    except ValueError:
        return False
    return True


_FLATTEN_FROM = 4096
"""Changes kept beside a state's base set of entry ids before they are folded into it."""


class _EntryIds:
    """The entry ids of a state as a base set and the changes made since, so that
    applying a delta costs its own size and not a copy of a million ids; the changes
    are folded into a new base once they pass an eighth of it."""

    __slots__ = ("added", "base", "removed")

    def __init__(
        self,
        base: frozenset[bytes],
        added: frozenset[bytes] = frozenset(),
        removed: frozenset[bytes] = frozenset(),
    ) -> None:
        self.base = base
        self.added = added
        self.removed = removed

    def __contains__(self, entry_id: bytes) -> bool:
        return entry_id in self.added or (entry_id in self.base and entry_id not in self.removed)

    def after(self, removed: frozenset[bytes], added: frozenset[bytes]) -> _EntryIds:
        """The ids once ``removed`` are taken out and ``added`` put in."""
        new_added = (self.added - removed) | added
        new_removed = (self.removed | removed) - added
        if len(new_added) + len(new_removed) > max(_FLATTEN_FROM, len(self.base) // 8):
            return _EntryIds(frozenset((self.base - new_removed) | new_added))
        return _EntryIds(self.base, new_added, new_removed)

    def flat(self) -> frozenset[bytes]:
        if not self.added and not self.removed:
            return self.base
        return (self.base - self.removed) | self.added


class EntryState:
    """An immutable set of entry records of one hash type: the sorted record lines.

    Each hash and each entry id at most once. ``to_bytes`` is the snapshot and what
    the digest hashes: every record with its line feed, ascending.
    """

    __slots__ = ("_entry_ids", "_ids", "_kind", "_lines")

    def __init__(self, kind: HashType, lines: Sequence[bytes] = ()) -> None:
        """Wrap record lines known to be valid, sorted and unique (use the constructors)."""
        self._kind = kind
        self._lines = list(lines)
        self._ids: _EntryIds | None = None
        self._entry_ids: frozenset[str] | None = None

    @classmethod
    def _wrap(cls, kind: HashType, lines: list[bytes], ids: _EntryIds | None) -> EntryState:
        """A state over ``lines`` as they are (no copy), with its entry ids if known."""
        state = cls(kind)
        state._lines = lines
        state._ids = ids
        return state

    @classmethod
    def from_entries(cls, kind: HashType, entries: Iterable[Entry]) -> EntryState:
        """A state of ``entries`` in any order; ``MalformedError`` on a repeated hash or id."""
        state = cls(kind, sorted(e.line for e in entries))
        state._check_unique()
        return state

    @classmethod
    def from_snapshot(
        cls, kind: HashType, data: bytes, vocabulary: Vocabulary | None
    ) -> EntryState:
        """Parse snapshot bytes: every record by the grammar and ``vocabulary``, strictly
        ascending, each hash and entry id once.

        Each record is matched against one pattern (``_record_pattern``) rather than
        parsed into an ``Entry``, which costs several times as much per record (a
        node reads a whole list this way when it bootstraps). A record that does not
        match is parsed to name the rule it breaks.

        Raises:
            MalformedError: naming the record (``VocabularyError`` for a term).
        """
        if not data:
            return cls(kind)
        if vocabulary is None:
            raise VocabularyError("an entries list under a root that declares no vocabulary")
        if not data.endswith(b"\n"):
            raise MalformedError("snapshot: the last record does not end in a newline")
        lines = data[:-1].split(b"\n")
        match = _record_pattern(2 * kind.length, vocabulary).fullmatch
        width = 2 * kind.length
        ids: list[bytes] = []
        prev = prev_hash = b""
        for i, line in enumerate(lines):
            m = match(line)
            if m is None:
                _refuse(line, kind, vocabulary, f"snapshot record {i}")
                raise MalformedError(f"snapshot record {i} breaks the record grammar")
            entry_id, first_seen, late_first, expires, late_expires = m.groups()
            if late_first is not None and not _real_day(first_seen):
                raise MalformedError(f"snapshot record {i}: first_seen is not a valid time")
            if expires is not None:
                if late_expires is not None and not _real_day(expires):
                    raise MalformedError(f"snapshot record {i}: expires is not a valid time")
                if expires <= first_seen:
                    raise MalformedError(f"snapshot record {i}: expires is not after first_seen")
            if line <= prev:
                raise MalformedError(f"snapshot record {i} is not strictly ascending")
            h = line[:width]
            if h == prev_hash:
                raise MalformedError(f"two records of hash {h.decode()}")
            ids.append(entry_id)
            prev, prev_hash = line, h
        unique = frozenset(ids)
        if len(unique) != len(lines):
            raise MalformedError("two records of one entry id")
        return cls._wrap(kind, lines, _EntryIds(unique))

    def _hash_of(self, line: bytes) -> bytes:
        return line[: 2 * self._kind.length]

    def _check_unique(self) -> None:
        lines = self._lines
        for a, b in itertools.pairwise(lines):
            if self._hash_of(a) == self._hash_of(b):
                raise MalformedError(f"two records of hash {self._hash_of(a).decode()}")
        if len(self._id_set().base) != len(lines):
            raise MalformedError("two records of one entry id")

    def _id_set(self) -> _EntryIds:
        if self._ids is None:
            self._ids = _EntryIds(frozenset(line.split(b" ", 2)[1] for line in self._lines))
        return self._ids

    def entry_ids(self) -> frozenset[str]:
        """Every entry id the state holds (built once, on first use)."""
        if self._entry_ids is None:
            self._entry_ids = frozenset(i.decode() for i in self._id_set().flat())
        return self._entry_ids

    @property
    def kind(self) -> HashType:
        return self._kind

    @property
    def count(self) -> int:
        return len(self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def to_bytes(self) -> bytes:
        """The snapshot bytes: every record and its line feed, ascending."""
        if not self._lines:
            return b""
        return b"\n".join(self._lines) + b"\n"

    def digest(self) -> StateDigest:
        """The state digest: SHA-256 over ``to_bytes``, fed a few thousand records at a
        time rather than over one copy of the whole snapshot."""
        sha = hashlib.sha256()
        lines = self._lines
        for start in range(0, len(lines), _DIGEST_BATCH):
            sha.update(b"\n".join(lines[start : start + _DIGEST_BATCH]) + b"\n")
        return StateDigest(self.count, sha.hexdigest())

    def entries(self) -> list[Entry]:
        """Every record parsed (one object each: for tests, pages and small lists)."""
        return [Entry.from_line(line, self._kind) for line in self._lines]

    def lines(self) -> Sequence[bytes]:
        """The record lines, ascending, without their line feeds (the state's own list,
        not a copy: read it, never change it)."""
        return self._lines

    def find(self, h: bytes) -> Entry | None:
        """The record of hash ``h``, if the state holds one."""
        prefix = h.hex().encode()
        i = bisect.bisect_left(self._lines, prefix)
        if i < len(self._lines) and self._hash_of(self._lines[i]) == prefix:
            return Entry.from_line(self._lines[i], self._kind)
        return None

    def hashes(self) -> bytes:
        """The hashes, ascending and concatenated: what a ``hashes`` list's state would
        hold, for a matcher."""
        w = 2 * self._kind.length
        return bytes.fromhex(b"".join(line[:w] for line in self._lines).decode("ascii"))

    def as_hashes(self) -> ListState:
        """The records' hashes as a ``hashes`` list's state holds them (a matcher's, a
        bridge's view of the list)."""
        return ListState(self._kind.length, self.hashes())

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, EntryState)
            and self._kind == other._kind
            and self._lines == other._lines
        )

    def __hash__(self) -> int:
        return hash((self._kind.name, tuple(self._lines)))

    def __repr__(self) -> str:
        return f"EntryState({self._kind.name}, count={self.count})"

    def apply(self, body: EntriesBody) -> EntryState:
        """The state after ``body``: every removed record present (by value), every
        added one's hash and entry id absent once the removals are made.

        Raises:
            StateMismatchError: a removal absent, or an addition's hash or entry id
                already held by a record the body does not remove.
        """
        lines = self._lines
        n = len(lines)
        drop: list[int] = []
        for r in body.removes:
            line = r.entry.line
            i = bisect.bisect_left(lines, line)
            if i >= n or lines[i] != line:
                raise StateMismatchError(
                    f"removal of entry {r.entry.entry_id} ({r.entry.hash.hex()}) is not "
                    "a record of the base state"
                )
            drop.append(i)
        dropped = set(drop)
        removed_ids = frozenset(r.entry.entry_id.encode() for r in body.removes)
        added_ids = frozenset(e.entry_id.encode() for e in body.adds)
        ids = self._id_set()
        for e in body.adds:
            entry_id = e.entry_id.encode()
            if entry_id in ids and entry_id not in removed_ids:
                raise StateMismatchError(f"addition: entry {e.entry_id} is already in the state")
            prefix = e.hash.hex().encode()
            i = bisect.bisect_left(lines, prefix)
            if i < n and self._hash_of(lines[i]) == prefix and i not in dropped:
                raise StateMismatchError(f"addition: hash {e.hash.hex()} is already in the state")
        kept = _without(lines, sorted(drop)) if drop else lines
        merged = _merge(kept, [e.line for e in body.adds])
        return EntryState._wrap(self._kind, merged, ids.after(removed_ids, added_ids))


_DIGEST_BATCH = 4096


def _refuse(line: bytes, kind: HashType, vocabulary: Vocabulary, where: str) -> None:
    """Raise the error that names what is wrong with a record that did not match."""
    try:
        vocabulary.check(Entry.from_line(line, kind))
    except MalformedError as e:
        raise type(e)(f"{where}: {e}") from None


def _without(lines: Sequence[bytes], drop: Sequence[int]) -> list[bytes]:
    """``lines`` less the records at the ascending positions ``drop``."""
    out: list[bytes] = []
    start = 0
    for i in drop:
        out += lines[start:i]
        start = i + 1
    out += lines[start:]
    return out


def _merge(a: Sequence[bytes], b: Sequence[bytes]) -> list[bytes]:
    """Two ascending lists of lines as one (``b`` is short: a delta's additions)."""
    if not b:
        return list(a)
    out: list[bytes] = []
    start = 0
    for line in b:
        i = bisect.bisect_left(a, line, start)
        out.extend(a[start:i])
        out.append(line)
        start = i
    out.extend(a[start:])
    return out
