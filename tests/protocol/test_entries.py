"""Entries lists: the record grammar, bodies v2, the records' state, the root's rules
for ``vocabulary`` and ``format``, the trust paths and the publisher that feeds them.

The trust tests publish through the real ``Publisher.publish_entries`` and follow
with a real ``TrustedHub``, reading the files a hub serves. What an honest publisher
refuses to sign (a term outside the vocabulary, a record first seen after its
version) is signed here by ``EntriesHub.publish_forged``, as a hub holding the
delta key could, to show that the verifier refuses it too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    REASONS,
    BodyRef,
    BodyRuleError,
    ConsistencyError,
    DeltaHeader,
    EntriesBody,
    Entry,
    EntryState,
    LimitError,
    ListHead,
    ListSpec,
    ListState,
    ListTrust,
    MalformedError,
    Publication,
    Publisher,
    Removal,
    Role,
    RollbackError,
    Root,
    SigningKey,
    StateDigest,
    StateMismatchError,
    TrustedHub,
    Vocabulary,
    VocabularyError,
    body_path,
    checkpoint_path,
    header_path,
    root_files,
    root_path,
    sig_path,
    sign_bytes,
    snapshot_path,
)
from protocol import entries as entries_module
from protocol.entries import Reason, record_limit
from protocol.lists import HASH_TYPES
from protocol.root import ROLE_NAMES
from protocol.state import EMPTY_DIGEST
from tests.protocol.simulator import fixed_key

PDQ = HASH_TYPES["pdq"]
MD5 = HASH_TYPES["md5"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
VOCAB = Vocabulary(
    categories=("csam", "ncii", "terror"),
    classifications=("a1", "a2", "b1"),
    sources=("import", "member", "upstream"),
)
PDQ_LIST = "tid-pdq"
MD5_LIST = "tid-md5"
BARE_LIST = "bare-md5"
VECTOR_ROOTS = Path(__file__).resolve().parents[2] / "docs" / "vectors" / "repo" / "root"


def digest_of(n: int, kind: str = "pdq") -> bytes:
    """A deterministic hash of the width of ``kind`` for item ``n``."""
    return hashlib.sha256(f"item {n}".encode()).digest()[: HASH_TYPES[kind].length]


def entry(
    n: int,
    *,
    kind: str = "pdq",
    entry_id: str | None = None,
    category: str = "csam",
    classification: str = "a1",
    source: str = "import:batch-1",
    first_seen: datetime = T0,
    expires: datetime | None = None,
    hash_: bytes | None = None,
) -> Entry:
    source_kind, _, ref = source.partition(":")
    return Entry(
        hash=hash_ if hash_ is not None else digest_of(n, kind),
        entry_id=entry_id or f"e{n}",
        category=category,
        classification=classification,
        source_kind=source_kind,
        source_ref=ref or None,
        first_seen=first_seen,
        expires=expires,
    )


# --------------------------------------------------------------------------------------
# A hub publishing entries lists, and a node following one
# --------------------------------------------------------------------------------------


def _root(
    version: int,
    keys: dict[str, list[SigningKey]],
    *,
    vocabulary: Vocabulary | None = VOCAB,
    lists: dict[str, ListSpec] | None = None,
) -> Root:
    return Root(
        version=version,
        name="hub.example",
        expires=T0 + timedelta(days=365),
        keys={k.keyid: k.public for ks in keys.values() for k in ks},
        roles={role: Role(tuple(k.keyid for k in keys[role]), 1) for role in ROLE_NAMES},
        lists=lists if lists is not None else default_lists(),
        vocabulary=vocabulary,
    )


def default_lists() -> dict[str, ListSpec]:
    return {
        PDQ_LIST: ListSpec(PDQ_LIST, "pdq", 31, label="tid", snapshot_every=2, format="entries"),
        MD5_LIST: ListSpec(MD5_LIST, "md5", 0, label="tid", snapshot_every=2, format="entries"),
        BARE_LIST: ListSpec(BARE_LIST, "md5", 0, label="bare", snapshot_every=2),
    }


def hub_keys(seed: str = "entries") -> dict[str, list[SigningKey]]:
    return {role: [fixed_key(f"{seed}/{role}")] for role in ROLE_NAMES}


@dataclass
class EntriesHub:
    """A hub's published files for entries lists, made by the real ``Publisher``."""

    keys: dict[str, list[SigningKey]] = field(default_factory=hub_keys)
    root: Root = field(init=False)
    files: dict[str, bytes] = field(default_factory=dict)
    heads: dict[str, ListHead[EntryState]] = field(default_factory=dict)
    now: datetime = T0

    def __post_init__(self) -> None:
        self.root = _root(1, self.keys)
        self.files.update(root_files(self.root, self.keys["root"]))
        self.heads = {
            list_id: ListHead.empty_entries(self.root, list_id) for list_id in (PDQ_LIST, MD5_LIST)
        }

    @property
    def publisher(self) -> Publisher:
        return Publisher(self.root, self.keys)

    def publish(
        self,
        list_id: str = PDQ_LIST,
        *,
        removes: Iterable[Removal] = (),
        adds: Iterable[Entry] = (),
        at: datetime | None = None,
    ) -> Publication[EntryState]:
        self.now = at if at is not None else self.now + HOUR
        pub = self.publisher.publish_entries(
            self.heads[list_id], removes=removes, adds=adds, now=self.now
        )
        self.files.update(pub.files)
        self.heads[list_id] = pub.head
        return pub

    def publish_forged(self, body: bytes, list_id: str = PDQ_LIST) -> DeltaHeader:
        """Sign a header for ``body`` whatever it holds, as a hub with the delta key can;
        its ``result_state`` is the honest one when the body applies."""
        head = self.heads[list_id]
        self.now += HOUR
        ref = BodyRef(
            hashlib.sha256(body).hexdigest(),
            len(body),
            adds=body.count(b"\n+"),
            removes=body.count(b"\n-"),
        )
        try:
            result = head.state.apply(EntriesBody.from_bytes(body, head.state.kind.name))
            result_state = result.digest()
        except (BodyRuleError, StateMismatchError):
            result = head.state
            count = head.state.count + ref.adds - ref.removes
            result_state = StateDigest(count, hashlib.sha256(b"forged").hexdigest())
        header = DeltaHeader(
            list_id=list_id,
            version=head.version + 1,
            prev=head.last_leaf,
            root_version=self.root.version,
            created=self.now,
            body=ref,
            base_state=head.state.digest(),
            result_state=result_state,
        )
        data = header.to_bytes()
        path = header_path(list_id, header.version)
        self.files[path] = data
        self.files[sig_path(path)] = sign_bytes(data, self.keys["delta"]).to_bytes()
        self.files[body_path(list_id, ref.sha256)] = body
        compact = head.compact.copy()
        compact.append(header.leaf_hash)
        self.files[checkpoint_path(list_id)] = self.publisher.checkpoint(
            list_id, header.version, compact.root(), self.now
        )
        self.heads[list_id] = ListHead(
            list_id, result, header.version, compact, header.leaf_hash.hex(), self.now
        )
        return header


@dataclass
class Follower:
    """A node following one entries list: keeps its state only when an update succeeds."""

    files: dict[str, bytes]
    list_id: str = PDQ_LIST
    state: EntryState = field(default_factory=lambda: EntryState(PDQ))
    trust: ListTrust = field(init=False)

    def __post_init__(self) -> None:
        self.trust = ListTrust(self.list_id)

    def hub(self, now: datetime) -> TrustedHub:
        first = root_path(1)
        hub = TrustedHub(self.files[first], self.files[sig_path(first)], now=now)
        version = 2
        while root_path(version) in self.files:
            path = root_path(version)
            hub.update_root(self.files[path], self.files[sig_path(path)])
            version += 1
        return hub

    def update(self, now: datetime, *, snapshot: int | None = None) -> EntryState:
        update = self.hub(now).begin_update(self.trust, self.files[checkpoint_path(self.list_id)])
        for version in range(self.trust.version + 1, update.target + 1):
            path = header_path(self.list_id, version)
            update.add_header(self.files[path], self.files[sig_path(path)])
        state = self.state
        if snapshot is not None:
            state = update.add_entries_snapshot(
                snapshot, self.files[snapshot_path(self.list_id, snapshot)]
            )
        for header in update.bodies_needed():
            update.add_entries_body(
                header.version, self.files[body_path(self.list_id, header.body.sha256)]
            )
        self.state, self.trust = update.apply_entries(state, check_every_version=True)
        return self.state


# --------------------------------------------------------------------------------------
# Entry records
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        entry(1),
        entry(2, source="member", expires=T0 + HOUR),
        entry(3, kind="md5", category="ncii", classification="b1", source="upstream:hub-b.x"),
    ],
)
def test_a_record_is_its_line_and_parses_back_to_itself(record: Entry) -> None:
    kind = HASH_TYPES["md5"] if len(record.hash) == 16 else PDQ
    parsed = Entry.from_line(record.line, kind)
    assert parsed == record
    assert parsed.line == record.line == record.to_line()
    assert parsed.metadata() == record.metadata()


def test_a_record_line_has_the_seven_fields_in_order() -> None:
    record = entry(7, source="member:node-1", expires=T0 + 2 * HOUR)
    assert (
        record.line
        == (
            f"{digest_of(7).hex()} e7 csam a1 member:node-1 2026-01-01T00:00:00Z "
            "2026-01-01T02:00:00Z"
        ).encode()
    )
    assert entry(8).line.endswith(b" import:batch-1 2026-01-01T00:00:00Z -")


def test_record_times_are_kept_in_utc_to_the_second_as_the_line_writes_them() -> None:
    east = timezone(timedelta(hours=2))
    made = entry(1, first_seen=datetime(2026, 1, 1, 2, 0, 0, 700_000, tzinfo=east))
    assert made.first_seen == T0
    assert made.first_seen.tzinfo == UTC
    assert made.first_seen.microsecond == 0
    assert made == Entry.from_line(made.line, PDQ)
    assert made.to_dict()["first_seen"] == "2026-01-01T00:00:00Z"


def test_expires_within_the_second_of_first_seen_is_refused_as_the_line_would_be() -> None:
    # Both write as 00:00:00: a verifier reading the line sees expires not after
    # first_seen, so the record may not be made either.
    with pytest.raises(MalformedError, match="expires is not after first_seen"):
        entry(1, first_seen=T0 + timedelta(seconds=0.2), expires=T0 + timedelta(seconds=0.7))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"entry_id": "E1"}, "id does not match"),
        ({"entry_id": "-e"}, "id does not match"),
        ({"entry_id": "e" * 65}, "id does not match"),
        ({"category": "CSAM"}, "category does not match"),
        ({"classification": "a 1"}, "classification does not match"),
        ({"source": "imp/ort"}, "source_kind does not match"),
        ({"source": "import:" + "r" * 129}, "ref does not match"),
        ({"source": "import:a:b"}, "ref does not match"),
        ({"first_seen": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"expires": datetime(2026, 2, 1)}, "timezone-aware"),
        ({"expires": T0}, "expires is not after first_seen"),
        ({"expires": T0 - HOUR}, "expires is not after first_seen"),
    ],
)
def test_a_record_outside_the_grammar_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        entry(1, **changes)  # type: ignore[arg-type]


def test_expired_is_true_from_expires_on() -> None:
    record = entry(1, expires=T0 + HOUR)
    assert not record.expired(T0 + HOUR - timedelta(seconds=1))
    assert record.expired(T0 + HOUR)
    assert not entry(2).expired(T0 + timedelta(days=10_000))


GOOD_LINE = entry(1, source="member:n1", expires=T0 + HOUR).line


@pytest.mark.parametrize(
    "line",
    [
        b"",
        GOOD_LINE.rsplit(b" ", 1)[0],  # six fields
        GOOD_LINE + b" extra",  # eight fields
        GOOD_LINE.replace(b" ", b"  ", 1),  # an empty field
        GOOD_LINE[:63] + GOOD_LINE[64:],  # 63 hex digits
        GOOD_LINE[:64].upper() + GOOD_LINE[64:],  # uppercase hex
        b"g" + GOOD_LINE[1:],  # not hex
        GOOD_LINE.replace(b"member:n1", b"member:"),  # 'kind:' without a ref
        GOOD_LINE.replace(b"2026-01-01T00:00:00Z", b"2026-02-30T00:00:00Z"),
        GOOD_LINE.replace(b"2026-01-01T00:00:00Z", b"0000-01-01T00:00:00Z"),
        GOOD_LINE.replace(b"2026-01-01T00:00:00Z", b"2026-01-01T24:00:00Z"),
        GOOD_LINE.replace(b"2026-01-01T00:00:00Z", b"2026-01-01T00:00:60Z"),
        GOOD_LINE.replace(b"2026-01-01T00:00:00Z", b"2026-01-01T00:00:00+00:00"),
        GOOD_LINE.replace(b"2026-01-01T00:00:00Z", b"2026-01-01T00:00:00.5Z"),
        GOOD_LINE.replace(b"2026-01-01T01:00:00Z", b"2026-01-01T00:00:00Z"),  # expires = first
        GOOD_LINE.replace(b" csam ", " çsam ".encode()),  # non-ASCII UTF-8
        GOOD_LINE.replace(b" csam ", b" \xffsam "),  # not UTF-8
        GOOD_LINE.replace(b"n1", "n\u0661".encode()),  # another script's digit
        GOOD_LINE + b"\r",
        GOOD_LINE + b"\n",
    ],
)
def test_from_line_refuses_what_breaks_the_grammar(line: bytes) -> None:
    with pytest.raises(MalformedError):
        Entry.from_line(line, PDQ)
    # The one-match reading takes none of them: it leaves the line to the field-by-field
    # parse (None), or refuses it itself.
    with contextlib.suppress(MalformedError):
        assert entries_module._from_valid_line(line, PDQ) is None


_TERMS = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(
    digest=st.binary(min_size=32, max_size=32),
    entry_id=_TERMS,
    terms=st.tuples(_TERMS, _TERMS, _TERMS),
    ref=st.none() | st.from_regex(r"[a-z0-9][a-z0-9._-]{0,127}", fullmatch=True),
    first=st.integers(min_value=0, max_value=10**9),
    lasting=st.none() | st.integers(min_value=1, max_value=10**9),
)
def test_the_one_match_reading_is_the_field_by_field_parse(
    digest: bytes,
    entry_id: str,
    terms: tuple[str, str, str],
    ref: str | None,
    first: int,
    lasting: int | None,
) -> None:
    """Any record the constructor makes reads back equal through the fast path, which
    takes it (a body of valid records never falls back to the slow one)."""
    first_seen = T0 + timedelta(seconds=first)
    made = Entry(
        digest,
        entry_id,
        *terms,
        ref,
        first_seen,
        None if lasting is None else first_seen + timedelta(seconds=lasting),
    )
    fast = entries_module._from_valid_line(made.line, PDQ)
    assert fast is not None
    assert fast == made
    assert fast.line == made.line


def longest_record(kind_name: str = "pdq") -> Entry:
    """A record with every field as long as the grammar allows."""
    return Entry(
        hash=b"\xab" * HASH_TYPES[kind_name].length,
        entry_id="i" * 64,
        category="c" * 64,
        classification="k" * 64,
        source_kind="s" * 64,
        source_ref="r" * 128,
        first_seen=T0,
        expires=T0 + HOUR,
    )


LONG_VOCAB = Vocabulary(("c" * 64,), ("k" * 64,), ("s" * 64,))


@pytest.mark.parametrize("kind_name", ["pdq", "md5", "sha256"])
def test_the_longest_record_is_exactly_record_limit(kind_name: str) -> None:
    kind = HASH_TYPES[kind_name]
    record = longest_record(kind_name)
    assert len(record.line) == record_limit(kind)
    assert Entry.from_line(record.line, kind) == record
    # One more byte anywhere is over the cap, whatever the byte.
    with pytest.raises(MalformedError, match="too long"):
        Entry.from_line(record.line + b"x", kind)
    body = EntriesBody.build(kind.name, [Removal(record, "withdrawn")])
    assert EntriesBody.from_bytes(body.to_bytes(), kind.name) == body
    state = EntryState.from_snapshot(kind, record.line + b"\n", LONG_VOCAB)
    assert state.entries() == [record]


def test_a_body_line_over_the_record_limit_is_a_body_rule_error() -> None:
    record = longest_record()
    data = b"hashhub.body.v2 pdq\n+" + record.line.replace(b"i" * 64, b"i" * 65) + b"\n"
    with pytest.raises(BodyRuleError, match="line 2"):
        EntriesBody.from_bytes(data, "pdq")


def test_a_snapshot_longer_than_its_records_can_be_is_refused_before_hashing() -> None:
    hub = EntriesHub()
    hub.publish(adds=[entry(1)])
    pub = hub.publish(adds=[entry(2)])  # v2: a snapshot is due
    snap = snapshot_path(PDQ_LIST, 2)
    assert pub.files[snap] == pub.head.state.to_bytes()
    node = Follower(hub.files)
    hub.files[snap] = b"x" * (2 * (record_limit(PDQ) + 1) + 1)
    with pytest.raises(LimitError, match="more than 2 records can be"):
        node.update(hub.now, snapshot=2)
    assert node.trust.version == 0


# --------------------------------------------------------------------------------------
# The vocabulary
# --------------------------------------------------------------------------------------


def test_vocabulary_round_trips_and_checks_each_group() -> None:
    assert Vocabulary.from_dict(VOCAB.to_dict()) == VOCAB
    assert VOCAB.to_dict() == {
        "categories": ["csam", "ncii", "terror"],
        "classifications": ["a1", "a2", "b1"],
        "sources": ["import", "member", "upstream"],
    }
    VOCAB.check(entry(1, category="terror", classification="b1", source="upstream:x"))
    for changes, group in (
        ({"category": "spam"}, "categories"),
        ({"classification": "c9"}, "classifications"),
        ({"source": "scraper:x"}, "sources"),
    ):
        with pytest.raises(VocabularyError, match=group):
            VOCAB.check(entry(1, **changes))  # type: ignore[arg-type]
    assert issubclass(VocabularyError, BodyRuleError)


@pytest.mark.parametrize(
    "value",
    [
        {"categories": [], "classifications": ["a"], "sources": ["s"]},
        {"categories": ["x", "x"], "classifications": ["a"], "sources": ["s"]},
        {"categories": ["X"], "classifications": ["a"], "sources": ["s"]},
        {"categories": [1], "classifications": ["a"], "sources": ["s"]},
        {"categories": ["x"], "classifications": ["a"]},
        {"categories": ["x"], "classifications": ["a"], "sources": ["s"], "more": []},
        {"categories": [f"t{i}" for i in range(257)], "classifications": ["a"], "sources": ["s"]},
        ["x"],
    ],
)
def test_a_malformed_vocabulary_is_refused(value: object) -> None:
    with pytest.raises(MalformedError):
        Vocabulary.from_dict(value)


def test_a_later_vocabulary_keeps_every_term_and_the_scale() -> None:
    grown = Vocabulary(
        ("csam", "ncii", "terror", "spam"), ("a0", "a1", "a2", "x", "b1"), VOCAB.sources
    )
    VOCAB.check_successor(grown, 2)
    with pytest.raises(RollbackError, match=r"drops vocabulary\.sources term 'member'"):
        VOCAB.check_successor(replace(VOCAB, sources=("import", "upstream")), 2)
    with pytest.raises(RollbackError, match="reorders the classification scale"):
        VOCAB.check_successor(replace(VOCAB, classifications=("a2", "a1", "b1")), 2)


# --------------------------------------------------------------------------------------
# The root: format and vocabulary
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["1.json", "2.json"])
def test_a_root_of_hashes_lists_re_encodes_byte_for_byte(name: str) -> None:
    data = (VECTOR_ROOTS / name).read_bytes()
    root = Root.from_bytes(data)
    assert root.vocabulary is None
    assert all(spec.format == "hashes" and not spec.entries for spec in root.lists.values())
    assert root.to_bytes() == data
    assert b'"format"' not in data
    assert b'"vocabulary"' not in data


def test_format_is_written_only_for_an_entries_list() -> None:
    root = _root(1, hub_keys())
    doc = json.loads(root.to_bytes())
    assert doc["lists"][PDQ_LIST]["format"] == "entries"
    assert "format" not in doc["lists"][BARE_LIST]
    assert doc["vocabulary"] == VOCAB.to_dict()
    again = Root.from_bytes(root.to_bytes())
    assert again == root
    assert again.list_spec(PDQ_LIST).entries
    assert not again.list_spec(BARE_LIST).entries


@pytest.mark.parametrize(
    ("fmt", "message"),
    [("hashes", "written only for an entries list"), ("rows", "is not one of")],
)
def test_a_list_declaration_with_another_format_is_refused(fmt: str, message: str) -> None:
    value = ListSpec(BARE_LIST, "md5", 0).to_dict() | {"format": fmt}
    with pytest.raises(MalformedError, match=message):
        ListSpec.from_dict(BARE_LIST, value)


def test_an_entries_list_needs_a_vocabulary_in_its_root() -> None:
    with pytest.raises(MalformedError, match="declares no vocabulary"):
        _root(1, hub_keys(), vocabulary=None)
    _root(1, hub_keys(), vocabulary=None, lists={BARE_LIST: default_lists()[BARE_LIST]})


def _successor(old: Root, keys: dict[str, list[SigningKey]], **changes: object) -> Root:
    new = replace(old, version=old.version + 1, **changes)  # type: ignore[arg-type]
    return old.verify_successor(*new.sign(keys["root"]))


def test_a_later_root_may_grow_the_vocabulary() -> None:
    keys = hub_keys()
    root = _root(1, keys)
    grown = replace(VOCAB, categories=(*VOCAB.categories, "spam"))
    assert _successor(root, keys, vocabulary=grown).vocabulary == grown
    bare = _root(1, keys, vocabulary=None, lists={BARE_LIST: default_lists()[BARE_LIST]})
    assert _successor(bare, keys, vocabulary=VOCAB).vocabulary == VOCAB


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        (
            {"lists": {**default_lists(), PDQ_LIST: ListSpec(PDQ_LIST, "pdq", 31, label="tid")}},
            ConsistencyError,
            "from entries to hashes",
        ),
        (
            {
                "lists": {
                    **default_lists(),
                    BARE_LIST: ListSpec(BARE_LIST, "md5", 0, label="bare", format="entries"),
                }
            },
            ConsistencyError,
            "from hashes to entries",
        ),
        (
            {"vocabulary": None, "lists": {BARE_LIST: default_lists()[BARE_LIST]}},
            RollbackError,
            "drops the vocabulary",
        ),
        (
            {"vocabulary": replace(VOCAB, categories=("csam", "ncii"))},
            RollbackError,
            "drops vocabulary.categories term 'terror'",
        ),
        (
            {"vocabulary": replace(VOCAB, classifications=("b1", "a1", "a2"))},
            RollbackError,
            "reorders",
        ),
    ],
)
def test_a_later_root_keeps_each_list_format_and_every_term(
    changes: dict[str, object], error: type[Exception], message: str
) -> None:
    keys = hub_keys()
    with pytest.raises(error, match=message):
        _successor(_root(1, keys), keys, **changes)


# --------------------------------------------------------------------------------------
# Bodies v2
# --------------------------------------------------------------------------------------

HEAD = b"hashhub.body.v2 pdq\n"


def test_a_body_is_removals_with_reasons_then_additions_each_ascending() -> None:
    old = entry(1)
    new = entry(2, entry_id="e1", classification="b1")  # e1's metadata changed
    gone = entry(3)
    body = EntriesBody.build(
        "pdq", [Removal(gone, "withdrawn"), Removal(old, "changed")], [new, entry(4)]
    )
    removes = sorted([(old.line, b"changed"), (gone.line, b"withdrawn")])
    adds = sorted([new.line, entry(4).line])
    assert body.to_bytes() == HEAD + b"".join(
        [b"-" + line + b" " + why + b"\n" for line, why in removes]
        + [b"+" + a + b"\n" for a in adds]
    )
    again = EntriesBody.from_bytes(body.to_bytes(), "pdq")
    assert again == body
    ref = again.ref()
    assert (ref.adds, ref.removes, ref.length) == (2, 2, len(body.to_bytes()))
    assert ref.sha256 == hashlib.sha256(body.to_bytes()).hexdigest()
    assert EntriesBody.from_bytes(HEAD, "pdq") == EntriesBody("pdq", (), ())


def _body(*lines: bytes, head: bytes = HEAD) -> bytes:
    return head + b"".join(line + b"\n" for line in lines)


A, B, C = entry(1), entry(2), entry(3)
A_LATER = entry(1, classification="b1")
A_MOVED = entry(9, entry_id="e1", first_seen=T0 - HOUR)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hashhub.body.v1 pdq\n", "first line"),
        (b"hashhub.body.v2 md5\n", "first line"),
        (HEAD + b"+" + A.line, "newline"),
        (_body(b"+" + A.line, b"-" + B.line + b" withdrawn"), "removal after an addition"),
        (_body(b"-" + A.line + b" gone"), "is not one of"),
        (_body(b"-" + A.line), "is not one of"),
        (_body(b"*" + A.line), "not '-' or '+'"),
        (_body(b""), "not '-' or '+'"),
        (_body(b"+" + A.line, b""), "not '-' or '+'"),
        (_body(*sorted([b"+" + A.line, b"+" + B.line], reverse=True)), "not strictly ascending"),
        (_body(b"+" + A.line, b"+" + A.line), "not strictly ascending"),
        (_body(*sorted([b"+" + A.line, b"+" + A_LATER.line])), "one entry id twice"),
        (
            _body(*sorted([b"+" + A.line, b"+" + entry(1, entry_id="x").line])),
            "one hash twice",
        ),
        (_body(b"-" + A.line + b" withdrawn", b"+" + A.line), "both removed and added"),
        (_body(b"-" + A.line + b" changed"), "exactly when the delta adds"),
        (_body(b"-" + A.line + b" withdrawn", b"+" + A_LATER.line), "exactly when"),
        (_body(b"-" + A.line + b" changed", b"+" + A_MOVED.line), "changed its first_seen"),
        (_body(b"+" + entry(1, kind="md5").line), "line 2"),
        (_body(b"+" + A.line.replace(b" csam ", b" \xff\xfe ")), "line 2"),
        (_body(b"+" + A.line.replace(b" csam ", " čsam ".encode())), "line 2"),
        (_body(b"+" + A.line.replace(b" e1 ", b" \xc3\x28 ")), "line 2"),
        (_body(b"-" + A.line + b" \xffwithdrawn"), "is not one of"),
        (HEAD + b"\xff\xfe\xfd\n", "not '-' or '+'"),
        (b"\xff" + HEAD, "first line"),
        (_body(b"+" + A.line + b"\r"), "line 2"),
    ],
)
def test_a_body_that_breaks_a_rule_is_a_body_rule_error(data: bytes, message: str) -> None:
    with pytest.raises(BodyRuleError, match=re.escape(message)):
        EntriesBody.from_bytes(data, "pdq")


def test_a_removal_names_one_of_the_reasons() -> None:
    assert REASONS == ("changed", "withdrawn", "expired", "retracted", "disputed", "upstream")
    for reason in REASONS[1:]:
        body = EntriesBody.build("pdq", [Removal(A, reason)])
        assert EntriesBody.from_bytes(body.to_bytes(), "pdq").removes[0].reason == reason
    with pytest.raises(BodyRuleError, match="unknown removal reason"):
        EntriesBody("pdq", (Removal(A, "forgotten"),), ())  # type: ignore[arg-type]


def test_built_bodies_check_the_same_rules() -> None:
    with pytest.raises(BodyRuleError, match="another width"):
        EntriesBody.build("pdq", adds=[entry(1, kind="md5")])
    with pytest.raises(BodyRuleError, match="one entry id twice"):
        EntriesBody.build("pdq", [Removal(A, "withdrawn"), Removal(A_LATER, "withdrawn")])
    with pytest.raises(MalformedError, match="unknown hash type"):
        EntriesBody.build("crc32")


def test_check_vocabulary_refuses_a_term_the_root_lacks_or_no_vocabulary() -> None:
    body = EntriesBody.build("pdq", adds=[entry(1), entry(2, category="spam")])
    with pytest.raises(VocabularyError, match=r"'spam' is not a term of vocabulary\.categories"):
        body.check_vocabulary(VOCAB)
    with pytest.raises(VocabularyError, match="declares no vocabulary"):
        EntriesBody.build("pdq", adds=[entry(1)]).check_vocabulary(None)
    # A removal is of a record accepted once; only additions are checked.
    EntriesBody.build("pdq", [Removal(entry(2, category="spam"), "retracted")]).check_vocabulary(
        VOCAB
    )


def test_check_times_holds_records_to_the_version_time() -> None:
    created = T0 + HOUR
    EntriesBody.build("pdq", adds=[entry(1, first_seen=created)]).check_times(created)
    with pytest.raises(BodyRuleError, match="first seen after the version was made"):
        EntriesBody.build(
            "pdq", adds=[entry(1, first_seen=created + timedelta(seconds=1))]
        ).check_times(created)
    with pytest.raises(BodyRuleError, match="added already expired"):
        EntriesBody.build("pdq", adds=[entry(1, expires=created)]).check_times(created)
    lapsing = entry(1, expires=created + HOUR)
    expired = EntriesBody.build("pdq", [Removal(lapsing, "expired")])
    with pytest.raises(BodyRuleError, match="removed as expired before its expires"):
        expired.check_times(created)
    expired.check_times(created + HOUR)
    with pytest.raises(BodyRuleError, match="removed as expired"):
        EntriesBody.build("pdq", [Removal(entry(2), "expired")]).check_times(created)


# --------------------------------------------------------------------------------------
# The records' state
# --------------------------------------------------------------------------------------


def sample_records() -> list[Entry]:
    return [
        entry(i, category=("csam", "ncii")[i % 2], expires=T0 + HOUR if i % 3 == 0 else None)
        for i in range(20)
    ]


def test_state_bytes_are_the_sorted_records_and_the_digest_hashes_them() -> None:
    records = sample_records()
    state = EntryState.from_entries(PDQ, reversed(records))
    expected = b"".join(line + b"\n" for line in sorted(e.line for e in records))
    assert state.to_bytes() == expected
    assert state.digest() == StateDigest(20, hashlib.sha256(expected).hexdigest())
    assert EntryState(PDQ).digest() == EMPTY_DIGEST
    assert EntryState(PDQ).to_bytes() == b""
    assert EntryState.from_snapshot(PDQ, expected, VOCAB) == state
    assert EntryState.from_snapshot(PDQ, b"", None) == EntryState(PDQ)


def test_find_hashes_and_entries_agree() -> None:
    records = sample_records()
    state = EntryState.from_entries(PDQ, records)
    parsed = state.entries()
    assert parsed == sorted(records, key=lambda e: e.line)
    assert state.hashes() == b"".join(e.hash for e in parsed)
    assert sorted(e.hash for e in parsed) == [e.hash for e in parsed]
    for record in records:
        assert state.find(record.hash) == record
    assert state.find(digest_of(999)) is None
    assert state.find(digest_of(1)[:16]) is None
    assert state.entry_ids() == {e.entry_id for e in records}
    assert list(state.lines()) == [e.line for e in parsed]
    assert len(state) == state.count == 20


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([entry(1), entry(1, entry_id="other")], "two records of hash"),
        ([entry(1), entry(2, entry_id="e1")], "two records of one entry id"),
    ],
)
def test_a_state_holds_each_hash_and_each_entry_once(records: list[Entry], message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        EntryState.from_entries(PDQ, records)
    data = b"".join(line + b"\n" for line in sorted(e.line for e in records))
    with pytest.raises(MalformedError, match=message):
        EntryState.from_snapshot(PDQ, data, VOCAB)


def _snapshot(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines)


@pytest.mark.parametrize(
    ("data", "vocabulary", "error", "message"),
    [
        (A.line, VOCAB, MalformedError, "newline"),
        (_snapshot(*sorted([A.line, B.line], reverse=True)), VOCAB, MalformedError, "ascending"),
        (_snapshot(A.line, A.line), VOCAB, MalformedError, "ascending"),
        (_snapshot(entry(1, category="spam").line), VOCAB, VocabularyError, "'spam'"),
        (_snapshot(entry(1, source="scraper").line), VOCAB, VocabularyError, "'scraper'"),
        (_snapshot(A.line), None, VocabularyError, "declares no vocabulary"),
        (_snapshot(A.line.replace(b"2026-01-01", b"2026-02-30")), VOCAB, MalformedError, "valid"),
        (_snapshot(A.line.replace(b"2026-01-01", b"2026-04-31")), VOCAB, MalformedError, "valid"),
        (_snapshot(A.line.replace(b"2026-01-01", b"2025-02-29")), VOCAB, MalformedError, "valid"),
        (
            _snapshot(A.line[:-1] + b"2026-02-30T00:00:00Z"),
            VOCAB,
            MalformedError,
            "expires is not a valid time",
        ),
        (_snapshot(A.line[:-1] + b"2025-12-31T23:59:59Z"), VOCAB, MalformedError, "not after"),
        (_snapshot(A.line[:-1] + b"2026-01-01T00:00:00Z"), VOCAB, MalformedError, "not after"),
        (_snapshot(A.line + b" "), VOCAB, MalformedError, "fields"),
        (_snapshot(A.line.replace(b" csam ", b" \xff ")), VOCAB, MalformedError, "record 0"),
        (_snapshot(A.line, b""), VOCAB, MalformedError, "record 1"),
        (b"\n", VOCAB, MalformedError, "record 0"),
    ],
)
def test_a_snapshot_that_breaks_a_rule_is_refused(
    data: bytes, vocabulary: Vocabulary | None, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        EntryState.from_snapshot(PDQ, data, vocabulary)


def test_a_leap_day_and_the_last_day_of_each_month_load() -> None:
    days = ["2024-02-29", "2026-01-31", "2026-04-30", "2026-12-31", "0001-01-01", "9999-12-31"]
    records = [
        entry(i, first_seen=datetime.fromisoformat(f"{day}T23:59:59+00:00"))
        for i, day in enumerate(days)
    ]
    state = EntryState.from_entries(PDQ, records)
    assert EntryState.from_snapshot(PDQ, state.to_bytes(), VOCAB).entries() == state.entries()


def _accepted(line: bytes, vocabulary: Vocabulary) -> bool:
    """Whether the record parser and ``vocabulary`` accept ``line``."""
    try:
        vocabulary.check(Entry.from_line(line, PDQ))
    except MalformedError:
        return False
    return True


FIELD_BYTES = st.sampled_from(
    [b"", b" ", b":", b"-", b"0", b"9", b"a", b"f", b"g", b"Z", b"T", b"\xff", b"\n", b"."]
)


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(
        [
            GOOD_LINE,
            entry(5, source="upstream", classification="b1").line,
            entry(6, first_seen=datetime(2024, 2, 29, tzinfo=UTC)).line,
            longest_record().line,
        ]
    ),
    at=st.integers(0, 300),
    cut=st.integers(0, 3),
    insert=FIELD_BYTES,
)
def test_a_snapshot_record_loads_exactly_when_the_record_parser_accepts_it(
    base: bytes, at: int, cut: int, insert: bytes
) -> None:
    """Loading a snapshot matches each record against one pattern; it must accept
    exactly what ``Entry.from_line`` and ``Vocabulary.check`` accept."""
    at = min(at, len(base))
    line = base[:at] + insert + base[at + cut :]
    if b"\n" in line:
        return  # a line feed ends a record: two records, each checked on its own
    vocabulary = LONG_VOCAB if base == longest_record().line else VOCAB
    accepted = _accepted(line, vocabulary)
    try:
        EntryState.from_snapshot(PDQ, line + b"\n", vocabulary)
    except MalformedError:
        assert not accepted, line
    else:
        assert accepted, line


# --------------------------------------------------------------------------------------
# Applying bodies
# --------------------------------------------------------------------------------------


def test_apply_changes_removes_and_adds_records() -> None:
    base = EntryState.from_entries(PDQ, [A, B, C])
    moved = entry(2, entry_id="e20")  # B's hash, now another entry's
    body = EntriesBody.build(
        "pdq",
        [Removal(A, "changed"), Removal(B, "withdrawn")],
        [A_LATER, moved, entry(4)],
    )
    after = base.apply(body)
    assert after.entries() == sorted([A_LATER, moved, C, entry(4)], key=lambda e: e.line)
    assert after.entry_ids() == {"e1", "e20", "e3", "e4"}
    assert after.find(digest_of(2)) == moved
    # The base is unchanged, and a second body applies to it as if the first never had.
    assert base.entries() == sorted([A, B, C], key=lambda e: e.line)
    assert base.entry_ids() == {"e1", "e2", "e3"}
    other = base.apply(EntriesBody.build("pdq", adds=[entry(20, entry_id="e20")]))
    assert other.entry_ids() == {"e1", "e2", "e3", "e20"}
    with pytest.raises(StateMismatchError, match="entry e1 is already"):
        after.apply(EntriesBody.build("pdq", adds=[entry(30, entry_id="e1")]))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (EntriesBody.build("pdq", [Removal(entry(4), "withdrawn")]), "not a record of the base"),
        (EntriesBody.build("pdq", [Removal(A_LATER, "withdrawn")]), "not a record of the base"),
        (EntriesBody.build("pdq", adds=[entry(1, entry_id="x")]), "hash .* is already"),
        (EntriesBody.build("pdq", adds=[entry(9, entry_id="e2")]), "entry e2 is already"),
        (
            EntriesBody.build("pdq", [Removal(B, "withdrawn")], [entry(1, entry_id="x")]),
            "hash .* is already",
        ),
    ],
)
def test_apply_refuses_a_body_made_against_another_state(body: EntriesBody, message: str) -> None:
    base = EntryState.from_entries(PDQ, [A, B, C])
    with pytest.raises(StateMismatchError, match=message):
        base.apply(body)
    assert base.entries() == sorted([A, B, C], key=lambda e: e.line)


IDS = [f"e{i}" for i in range(8)]
HASHES = [digest_of(i) for i in range(8)]


@st.composite
def change_sets(
    draw: st.DrawFn,
) -> tuple[list[tuple[int, int, int, Reason]], list[tuple[int, int, int]]]:
    """Removals (entry, hash, classification, reason) and additions (entry, hash,
    classification) over a small universe, so that they often clash with the state."""
    removes = draw(
        st.lists(
            st.tuples(
                st.integers(0, 7),
                st.integers(0, 7),
                st.integers(0, 2),
                st.sampled_from(REASONS[1:]),
            ),
            max_size=3,
        )
    )
    adds = draw(
        st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7), st.integers(0, 2)), max_size=4)
    )
    return removes, adds


def _record(entry_id: int, h: int, cls: int) -> Entry:
    return entry(
        0, entry_id=IDS[entry_id], hash_=HASHES[h], classification=VOCAB.classifications[cls]
    )


def _model_apply(model: dict[str, Entry], body: EntriesBody) -> dict[str, Entry] | None:
    """The naive model: an entry id → its record; None when the body does not apply."""
    out = dict(model)
    for r in body.removes:
        if out.get(r.entry.entry_id) != r.entry:
            return None
        del out[r.entry.entry_id]
    held = {e.hash for e in out.values()}
    for e in body.adds:
        if e.entry_id in out or e.hash in held:
            return None
        out[e.entry_id] = e
        held.add(e.hash)
    return out


@pytest.mark.parametrize("fold_from", [4096, 0])
@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.tuples(change_sets(), st.booleans(), st.integers(0, 50)), max_size=25))
def test_apply_agrees_with_a_dict_of_entries(
    fold_from: int,
    steps: list[
        tuple[tuple[list[tuple[int, int, int, Reason]], list[tuple[int, int, int]]], bool, int]
    ],
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        # 0: the ids are folded into one set at every apply; 4096: never, here.
        mp.setattr(entries_module, "_FLATTEN_FROM", fold_from)
        history: list[tuple[EntryState, dict[str, Entry]]] = [(EntryState(PDQ), {})]
        for (removes, adds), use_held, back in steps:
            # Apply to the newest state, or to an older one (states are immutable).
            state, model = history[-1] if not back % 3 else history[back % len(history)]
            held = sorted(model.values(), key=lambda e: e.line)
            removals = [
                Removal(held[e % len(held)] if use_held and held else _record(e, h, c), why)
                for e, h, c, why in removes
            ]
            additions = [_record(e, h, c) for e, h, c in adds]
            # A removal of an entry the delta adds again is its change.
            added_ids = {a.entry_id for a in additions}
            removals = [
                Removal(r.entry, "changed" if r.entry.entry_id in added_ids else r.reason)
                for r in removals
            ]
            try:
                body = EntriesBody.build("pdq", removals, additions)
            except BodyRuleError:
                continue
            expected = _model_apply(model, body)
            try:
                after = state.apply(body)
            except StateMismatchError:
                assert expected is None
                continue
            assert expected is not None
            records = sorted(expected.values(), key=lambda e: e.line)
            assert after.entries() == records
            wire = b"".join(e.line + b"\n" for e in records)
            assert after.digest() == StateDigest(len(records), hashlib.sha256(wire).hexdigest())
            assert after.entry_ids() == set(expected)
            assert after.hashes() == b"".join(e.hash for e in records)
            for e in records:
                assert after.find(e.hash) == e
            assert EntryState.from_snapshot(PDQ, after.to_bytes(), VOCAB) == after
            history.append((after, expected))
        for state, model in history:
            assert state.entry_ids() == set(model)


# --------------------------------------------------------------------------------------
# The publisher and the trust paths
# --------------------------------------------------------------------------------------


def test_a_node_follows_an_entries_list_by_bodies_and_by_snapshot() -> None:
    hub = EntriesHub()
    first = [entry(i, expires=T0 + 3 * HOUR if i == 2 else None) for i in range(5)]
    hub.publish(adds=first)
    changed = entry(1, classification="b1")
    hub.publish(
        removes=[Removal(first[1], "changed"), Removal(first[3], "disputed")],
        adds=[changed, entry(5, source="member:node-1", first_seen=T0 + HOUR)],
    )
    hub.publish(removes=[Removal(first[4], "withdrawn")])
    hub.publish(removes=[Removal(first[2], "expired")], adds=[entry(6, first_seen=T0 + HOUR)])

    by_bodies = Follower(hub.files)
    state = by_bodies.update(hub.now)
    assert state == hub.heads[PDQ_LIST].state
    assert by_bodies.trust.version == 4
    assert by_bodies.trust.state == state.digest()
    assert state.entry_ids() == {"e0", "e1", "e5", "e6"}
    assert state.find(digest_of(1)) == changed

    by_snapshot = Follower(hub.files)
    assert by_snapshot.update(hub.now, snapshot=2) == state
    assert by_snapshot.trust.to_dict() == by_bodies.trust.to_dict()

    # A later version on top of what each kept.
    hub.publish(adds=[entry(7, first_seen=hub.now)])
    assert by_bodies.update(hub.now) == by_snapshot.update(hub.now) == hub.heads[PDQ_LIST].state


def test_records_made_with_sub_second_times_verify_as_the_publisher_checked_them() -> None:
    hub = EntriesHub()
    made = entry(1, first_seen=T0 + timedelta(seconds=0.2), expires=T0 + timedelta(seconds=1.7))
    hub.publish(adds=[made], at=T0 + timedelta(seconds=0.5))
    node = Follower(hub.files)
    assert node.update(T0 + timedelta(minutes=1)).find(made.hash) == made


def test_each_format_reads_only_its_own_files() -> None:
    hub = EntriesHub()
    hub.publish(adds=[entry(1)])
    pub = hub.publish(adds=[entry(2)])
    node = Follower(hub.files)
    update = node.hub(hub.now).begin_update(
        ListTrust(PDQ_LIST), hub.files[checkpoint_path(PDQ_LIST)]
    )
    for version in (1, 2):
        path = header_path(PDQ_LIST, version)
        update.add_header(hub.files[path], hub.files[sig_path(path)])
    body = hub.files[body_path(PDQ_LIST, pub.header.body.sha256)]
    with pytest.raises(MalformedError, match="holds entries: add_body"):
        update.add_body(2, body)
    with pytest.raises(MalformedError, match="holds entries: add_snapshot"):
        update.add_snapshot(2, hub.files[snapshot_path(PDQ_LIST, 2)])
    assert update.bodies == {}
    assert update.snapshot_version is None


def test_a_hashes_list_refuses_entries_bodies_and_snapshots() -> None:
    hub = EntriesHub()
    head = ListHead.empty(hub.root, BARE_LIST)
    pub = hub.publisher.publish(head, adds=[digest_of(1, "md5")], now=T0 + HOUR)
    hub.files.update(pub.files)
    node = Follower(hub.files, BARE_LIST)
    update = node.hub(T0 + HOUR).begin_update(
        ListTrust(BARE_LIST), hub.files[checkpoint_path(BARE_LIST)]
    )
    path = header_path(BARE_LIST, 1)
    update.add_header(hub.files[path], hub.files[sig_path(path)])
    body = hub.files[body_path(BARE_LIST, pub.header.body.sha256)]
    with pytest.raises(MalformedError, match="holds hashes: add_entries_body"):
        update.add_entries_body(1, body)
    with pytest.raises(MalformedError, match="holds hashes: add_entries_snapshot"):
        update.add_entries_snapshot(1, b"")
    assert update.entries_bodies == {}
    # The hashes path still reads it.
    update.add_body(1, body)
    state, trust = update.apply(ListState(16))
    assert state == pub.head.state
    assert trust.version == 1


def test_a_tampered_entries_snapshot_is_refused() -> None:
    hub = EntriesHub()
    hub.publish(adds=[entry(1)])
    hub.publish(adds=[entry(2)])
    snap = snapshot_path(PDQ_LIST, 2)
    hub.files[snap] = hub.files[snap].replace(b" a1 ", b" a2 ", 1)
    node = Follower(hub.files)
    with pytest.raises(ConsistencyError, match="SHA-256 does not match"):
        node.update(hub.now, snapshot=2)
    assert node.trust.version == 0
    assert node.state == EntryState(PDQ)


@pytest.mark.parametrize(
    ("make_body", "error", "message"),
    [
        (lambda now: _body(b"+" + entry(9, category="spam").line), VocabularyError, "'spam'"),
        (
            lambda now: _body(b"+" + entry(9, first_seen=now + timedelta(seconds=1)).line),
            BodyRuleError,
            "first seen after",
        ),
        (lambda now: _body(b"+" + entry(9, expires=now).line), BodyRuleError, "already expired"),
        (
            lambda now: _body(b"-" + entry(1, expires=T0 + 100 * HOUR).line + b" expired"),
            BodyRuleError,
            "before its expires",
        ),
        (
            lambda now: _body(b"+" + entry(9).line.replace(b" e9 ", b" \xe9 ")),
            BodyRuleError,
            "line 2",
        ),
        (
            lambda now: _body(b"+" + entry(9).line, head=b"hashhub.body.v1 pdq\n"),
            BodyRuleError,
            "first line",
        ),
    ],
)
def test_a_signed_body_the_publisher_would_refuse_is_refused_by_the_node(
    make_body: Callable[[datetime], bytes], error: type[Exception], message: str
) -> None:
    hub = EntriesHub()
    hub.publish(adds=[entry(1, expires=T0 + 100 * HOUR)])
    node = Follower(hub.files)
    node.update(hub.now)
    kept = node.state, node.trust
    hub.publish_forged(make_body(hub.now + HOUR))
    with pytest.raises(error, match=message):
        node.update(hub.now)
    assert (node.state, node.trust) == kept


def test_a_body_checked_against_the_vocabulary_of_the_root_that_signed_its_header() -> None:
    hub = EntriesHub()
    hub.publish(adds=[entry(1)])
    spam = entry(2, category="spam")
    with pytest.raises(VocabularyError):
        hub.publish(adds=[spam])
    # Root v2 declares 'spam'; the version signed under it may use it.
    grown = replace(VOCAB, categories=(*VOCAB.categories, "spam"))
    hub.root = replace(hub.root, version=2, vocabulary=grown)
    hub.files.update(root_files(hub.root, hub.keys["root"]))
    hub.publish(adds=[spam])
    node = Follower(hub.files)
    assert node.update(hub.now).find(spam.hash) == spam


def test_publish_entries_refuses_what_a_verifier_would() -> None:
    hub = EntriesHub()
    hub.publish(adds=[entry(1, expires=T0 + 10 * HOUR)], at=T0 + HOUR)
    head = hub.heads[PDQ_LIST]
    now = T0 + 2 * HOUR
    cases: list[tuple[dict[str, Sequence[object]], type[Exception], str]] = [
        ({"adds": [entry(2, category="spam")]}, VocabularyError, "'spam'"),
        ({"adds": [entry(2, source="scraper:x")]}, VocabularyError, "'scraper'"),
        ({"adds": [entry(2, first_seen=now + timedelta(seconds=1))]}, BodyRuleError, "first seen"),
        ({"adds": [entry(2, expires=now)]}, BodyRuleError, "already expired"),
        (
            {"removes": [Removal(entry(1, expires=T0 + 10 * HOUR), "expired")]},
            BodyRuleError,
            "before",
        ),
        ({"removes": [Removal(entry(2), "withdrawn")]}, StateMismatchError, "not a record"),
        ({"removes": [Removal(entry(1), "withdrawn")]}, StateMismatchError, "not a record"),
        ({"adds": [entry(3, entry_id="e1")]}, StateMismatchError, "entry e1 is already"),
        ({"adds": [entry(1, entry_id="x")]}, StateMismatchError, "is already in the state"),
        ({"adds": [entry(2), entry(2, entry_id="y")]}, BodyRuleError, "one hash twice"),
        (
            {
                "removes": [Removal(entry(1, expires=T0 + 10 * HOUR), "changed")],
                "adds": [entry(1, first_seen=T0 - HOUR)],
            },
            BodyRuleError,
            "changed its first_seen",
        ),
    ]
    for changes, error, message in cases:
        with pytest.raises(error, match=message):
            hub.publisher.publish_entries(head, now=now, **changes)  # type: ignore[arg-type]
    assert hub.heads[PDQ_LIST] is head
    assert head.version == 1
    # A version is never made before the one it follows: 'created' is the later time.
    late = hub.publisher.publish_entries(head, adds=[entry(2, first_seen=T0 + HOUR)], now=T0)
    assert late.header.created == T0 + HOUR


def test_each_publish_path_is_for_its_own_format() -> None:
    hub = EntriesHub()
    with pytest.raises(MalformedError, match=r"holds entries: ListHead\.empty_entries"):
        ListHead.empty(hub.root, PDQ_LIST)
    with pytest.raises(MalformedError, match=r"holds bare hashes: ListHead\.empty"):
        ListHead.empty_entries(hub.root, BARE_LIST)
    with pytest.raises(MalformedError, match="holds entries: publish_entries"):
        hub.publisher.publish(hub.heads[PDQ_LIST], adds=[digest_of(1)], now=T0)  # type: ignore[arg-type]
    bare = ListHead.empty(hub.root, BARE_LIST)
    with pytest.raises(MalformedError, match="holds bare hashes: publish"):
        hub.publisher.publish_entries(bare, adds=[entry(1, kind="md5")], now=T0)  # type: ignore[arg-type]


def test_a_snapshot_is_published_when_due_and_is_the_state_bytes() -> None:
    hub = EntriesHub()
    one = hub.publish(adds=[entry(1), entry(2)])
    two = hub.publish(removes=[Removal(entry(1), "retracted")])
    assert snapshot_path(PDQ_LIST, 1) not in one.files
    assert two.files[snapshot_path(PDQ_LIST, 2)] == entry(2).line + b"\n"
    assert two.header.result_state == StateDigest(
        1, hashlib.sha256(entry(2).line + b"\n").hexdigest()
    )
    assert two.header.base_state == one.head.state.digest()
    body = two.files[body_path(PDQ_LIST, two.header.body.sha256)]
    assert body == HEAD + b"-" + entry(1).line + b" retracted\n"


def test_sibling_lists_carry_one_entry_with_one_id_and_metadata() -> None:
    hub = EntriesHub()
    pdq = entry(1, source="member:node-1")
    md5 = entry(1, kind="md5", source="member:node-1")
    hub.publish(PDQ_LIST, adds=[pdq])
    hub.publish(MD5_LIST, adds=[md5])
    got_pdq = Follower(hub.files).update(hub.now).entries()
    got_md5 = Follower(hub.files, MD5_LIST, EntryState(MD5)).update(hub.now).entries()
    assert [e.entry_id for e in got_pdq] == [e.entry_id for e in got_md5] == ["e1"]
    assert got_pdq[0].metadata() == got_md5[0].metadata()
    assert len(got_pdq[0].hash) == 32
    assert len(got_md5[0].hash) == 16


def test_apply_entries_needs_every_body_and_the_base_the_headers_name() -> None:
    hub = EntriesHub()
    hub.publish(adds=[entry(1)])
    hub.publish(adds=[entry(2)])
    node = Follower(hub.files)
    update = node.hub(hub.now).begin_update(node.trust, hub.files[checkpoint_path(PDQ_LIST)])
    for version in (1, 2):
        path = header_path(PDQ_LIST, version)
        update.add_header(hub.files[path], hub.files[sig_path(path)])
    first = update.headers[0]
    update.add_entries_body(1, hub.files[body_path(PDQ_LIST, first.body.sha256)])
    assert [h.version for h in update.bodies_needed()] == [2]
    with pytest.raises(ConsistencyError, match="body v2 has not been verified"):
        update.apply_entries(EntryState(PDQ))
    second = update.headers[1]
    update.add_entries_body(2, hub.files[body_path(PDQ_LIST, second.body.sha256)])
    with pytest.raises(StateMismatchError):
        update.apply_entries(EntryState.from_entries(PDQ, [entry(3)]))
    state, trust = update.apply_entries(EntryState(PDQ))
    assert state.entries() == sorted([entry(1), entry(2)], key=lambda e: e.line)
    assert trust.version == 2


def test_a_body_is_held_to_the_vocabulary_of_the_root_that_signed_its_header() -> None:
    hub = EntriesHub()
    hub.publish(adds=[entry(1)])
    old_delta = hub.keys["delta"]
    # Root v2 rotates the delta key from version 3 on and declares 'spam'.
    hub.keys["delta"] = [fixed_key("entries/delta/2")]
    grown = replace(VOCAB, categories=(*VOCAB.categories, "spam"))
    lists = {lid: replace(spec, first_version=3) for lid, spec in hub.root.lists.items()}
    hub.files.update(
        root_files(_root(2, hub.keys, vocabulary=grown, lists=lists), hub.keys["root"])
    )
    # Version 2, still signed under root v1 by the old key, uses the term v1 lacks.
    hub.keys["delta"] = old_delta
    spam = entry(2, category="spam")
    header = hub.publish_forged(_body(b"+" + spam.line))
    assert header.root_version == 1
    node = Follower(hub.files)
    assert node.hub(hub.now).root.vocabulary == grown
    with pytest.raises(VocabularyError, match="'spam'"):
        node.update(hub.now)
    assert node.trust.version == 0
