"""Origins of kind ``exchange`` (PROTOCOL.md §5.7, §7.5 rule 8), through the real publisher.

A hub that takes a record from a hash exchange signs, in the version's provenance, exactly
which exchange record it acted on and when it fetched it. The publisher checks the document
as a verifier would before it signs, so each rule-8 failure here is what a hub would be
refused at publish time and what an auditor would report of a published version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from protocol import (
    ConsistencyError,
    DeltaHeader,
    EntriesBody,
    Entry,
    LimitError,
    ListHead,
    MalformedError,
    ProtocolError,
    Publisher,
    Root,
    body_path,
)
from protocol._fields import format_time
from protocol.canonical import canonicalize, parse_canonical
from protocol.layout import provenance_path
from protocol.lists import hash_type
from protocol.provenance import (
    MAX_EXCHANGE_RECORD,
    ORIGIN_KINDS,
    ExchangeOrigin,
    Provenance,
    header_provenance,
    verify_provenance,
)
from tests.protocol.test_entries import HOUR, PDQ_LIST, T0, VOCAB, _root, entry, hub_keys

EXCHANGE = "stopncii"
NOW = T0 + HOUR
FETCHED = NOW - timedelta(minutes=5)


def stopncii_record(hash_hex: str) -> dict[str, Any]:
    """A record with the members StopNCII's API gives."""
    return {
        "CSPFeedbacks": [],
        "caseNumbers": {"demo-ngo": "case-0001"},
        "hashStatus": "Active",
        "hashValue": hash_hex,
        "lastModtimestamp": int(FETCHED.timestamp()),
        "signalType": "ImagePDQ",
    }


def exchanged(n: int) -> Entry:
    return entry(n, entry_id=f"x-{n}", source=f"exchange:{EXCHANGE}", first_seen=FETCHED)


def origin_of(record: Entry, **changes: Any) -> ExchangeOrigin:
    """The origin a hub writes for ``record``, as it constructs one."""
    origin = ExchangeOrigin(
        exchange=EXCHANGE,
        api="stopncii",
        hash_hex=record.hash.hex(),
        fetched=format_time(FETCHED),
        record=stopncii_record(record.hash.hex()),
    )
    return replace(origin, **changes)


@dataclass(frozen=True)
class Version:
    """Version 1 of the list, published with its provenance: what a verifier is given."""

    root: Root
    header: DeltaHeader
    body: EntriesBody
    document: bytes

    def verify(self, document: bytes | None = None) -> Provenance:
        """``document`` (else the published one) under header v1 re-pointed at it: the
        header is taken as verified, so the one difference is in the document."""
        data = self.document if document is None else document
        header = replace(
            self.header,
            extra={
                **self.header.extra,
                "provenance": {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()},
            },
        )
        return verify_provenance(header, data, self.root, self.body, hash_type("pdq"))

    def edited(self, change: Callable[[dict[str, Any]], None]) -> bytes:
        value = parse_canonical(self.document)
        assert isinstance(value, dict)
        change(value)
        return canonicalize(value)


def publish(adds: list[Entry], origins: dict[str, Any], now: datetime = NOW) -> Version:
    keys = hub_keys("exchange")
    root = _root(1, keys, vocabulary=replace(VOCAB, sources=(*VOCAB.sources, "exchange")))
    pub = Publisher(root, keys).publish_entries(
        ListHead.empty_entries(root, PDQ_LIST),
        adds=adds,
        now=now,
        provenance=lambda version: Provenance(PDQ_LIST, version, origins),
    )
    ref = header_provenance(pub.header)
    assert ref is not None
    body = EntriesBody.from_bytes(pub.files[body_path(PDQ_LIST, pub.header.body.sha256)], "pdq")
    document = pub.files[provenance_path(PDQ_LIST, ref.sha256)]
    return Version(root, pub.header, body, document)


@pytest.fixture
def version() -> Version:
    """x-1 and x-2 taken from the exchange, e3 imported (no origin)."""
    adds = [exchanged(1), exchanged(2), entry(3, entry_id="e3")]
    return publish(adds, {f"x-{n}": origin_of(exchanged(n)) for n in (1, 2)})


def test_exchange_is_a_kind_that_claims_an_origin() -> None:
    assert ORIGIN_KINDS == ("hub", "member", "exchange")


def test_an_exchange_origin_is_written_with_the_members_of_its_kind() -> None:
    origin = origin_of(exchanged(1))
    assert origin.to_dict() == {
        "api": "stopncii",
        "exchange": EXCHANGE,
        "fetched": format_time(FETCHED),
        "hash": exchanged(1).hash.hex(),
        "kind": "exchange",
        "record": stopncii_record(exchanged(1).hash.hex()),
    }


def test_a_published_exchange_origin_reads_back_as_written(version: Version) -> None:
    doc = version.verify()
    assert doc.origins == {f"x-{n}": origin_of(exchanged(n)) for n in (1, 2)}
    assert Provenance.from_bytes(version.document).to_bytes() == version.document
    written = parse_canonical(version.document)
    assert isinstance(written, dict)
    assert written["upstream_headers"] == []
    assert written["origins"]["x-1"]["record"]["signalType"] == "ImagePDQ"


def test_a_record_fetched_when_the_version_is_made_is_accepted() -> None:
    """``fetched`` may equal header v's ``created``; only after it is refused."""
    record = exchanged(1)
    published = publish([record], {"x-1": origin_of(record, fetched=format_time(NOW))})
    assert published.header.created == NOW
    assert isinstance(published.verify().origins["x-1"], ExchangeOrigin)


def test_the_publisher_refuses_a_record_fetched_after_the_version() -> None:
    record = exchanged(1)
    late = format_time(NOW + timedelta(seconds=1))
    with pytest.raises(ConsistencyError, match=r"fetched .*, after v1 was made"):
        publish([record], {"x-1": origin_of(record, fetched=late)})


def test_the_publisher_refuses_an_exchange_record_without_its_origin() -> None:
    """Rule 5: each record of source kind exchange the version adds has an origin."""
    with pytest.raises(ConsistencyError, match=r"no origin for \['x-2'\]"):
        publish([exchanged(1), exchanged(2)], {"x-1": origin_of(exchanged(1))})


def test_an_imported_record_may_not_claim_an_exchange_origin() -> None:
    own = entry(3, entry_id="e3")
    with pytest.raises(ConsistencyError, match="not added from an upstream, a member or an"):
        publish([own], {"e3": origin_of(own)})


def put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set (or, for None, remove) ``origins/<entry>/<member>``."""

    def change(doc: dict[str, Any]) -> None:
        entry_id, member = path.split("/")
        if value is None:
            del doc["origins"][entry_id][member]
        else:
            doc["origins"][entry_id][member] = value

    return change


def padded(size: int) -> dict[str, Any]:
    """x-1's record padded to ``size`` bytes in canonical form."""
    record = stopncii_record(exchanged(1).hash.hex())
    record["caseNumbers"] = {"demo-ngo": ""}
    record["caseNumbers"]["demo-ngo"] = "c" * (size - len(canonicalize(record)))
    assert len(canonicalize(record)) == size
    return record


REFUSED: list[tuple[str, Callable[[dict[str, Any]], None], type[ProtocolError], str]] = [
    # rule 3: the kind, the members of the kind, their JSON types
    ("kind", put("x-1/kind", "exchanges"), MalformedError, "not one of hub, member, exchange"),
    ("no-api", put("x-1/api", None), MalformedError, "missing field 'api'"),
    ("extra-member", put("x-1/list", PDQ_LIST), MalformedError, r"unknown field\(s\) \['list'\]"),
    ("record-array", put("x-1/record", []), MalformedError, "'record' must be an object"),
    ("fetched-number", put("x-1/fetched", 0), MalformedError, "'fetched' must be a string"),
    # rule 8, its malformed parts in order
    ("exchange-name", put("x-1/exchange", "StopNCII"), MalformedError, "is not a hub name"),
    ("exchange-underscore", put("x-1/exchange", "stop_ncii"), MalformedError, "not a hub name"),
    ("api", put("x-1/api", "stopncii/v1"), MalformedError, "api 'stopncii/v1' is not a term"),
    ("hash-upper", put("x-1/hash", exchanged(1).hash.hex().upper()), MalformedError, "hex"),
    ("hash-129", put("x-1/hash", "0" * 129), MalformedError, "at most 128 digits"),
    ("hash-empty", put("x-1/hash", ""), MalformedError, "at most 128 digits"),
    ("fetched", put("x-1/fetched", "2026-01-01 00:55:00"), MalformedError, "is not a time"),
    ("fetched-day", put("x-1/fetched", "2026-02-30T00:00:00Z"), MalformedError, "valid time"),
    ("record-size", put("x-1/record", padded(MAX_EXCHANGE_RECORD + 1)), LimitError, "65537"),
    # rule 8, its consistency with the version
    ("source", put("x-1/exchange", "ncmec"), ConsistencyError, "source is exchange:stopncii"),
    ("hash-128", put("x-1/hash", "0" * 128), ConsistencyError, "of another hash"),
    ("hash-other", put("x-1/hash", exchanged(2).hash.hex()), ConsistencyError, "another hash"),
    (
        "fetched-late",
        put("x-1/fetched", format_time(NOW + timedelta(seconds=1))),
        ConsistencyError,
        "after v1 was made",
    ),
]


@pytest.mark.parametrize(
    ("change", "error", "said"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_an_exchange_origin_that_breaks_a_rule_is_refused(
    version: Version,
    change: Callable[[dict[str, Any]], None],
    error: type[ProtocolError],
    said: str,
) -> None:
    with pytest.raises(ProtocolError, match=said) as raised:
        version.verify(version.edited(change))
    assert type(raised.value) is error


def test_a_record_of_exactly_the_cap_is_accepted(version: Version) -> None:
    doc = version.verify(version.edited(put("x-1/record", padded(MAX_EXCHANGE_RECORD))))
    origin = doc.origins["x-1"]
    assert isinstance(origin, ExchangeOrigin)
    assert len(canonicalize(dict(origin.record))) == MAX_EXCHANGE_RECORD


def test_rules_4_and_5_come_before_an_exchange_origins_form(version: Version) -> None:
    """§7.5 orders the rules: a document of another version whose exchange origin is also
    malformed is refused for the version (ConsistencyError), not for the origin's form."""

    def both(doc: dict[str, Any]) -> None:
        doc["version"] = 2
        doc["origins"]["x-1"]["exchange"] = "Not A Name"

    with pytest.raises(ConsistencyError, match="provenance: for tid-pdq v2"):
        version.verify(version.edited(both))


def test_origins_are_checked_in_ascending_order_of_entry_id(version: Version) -> None:
    """x-1 is checked before x-2: with both broken, x-1's fault is the one reported."""

    def both(doc: dict[str, Any]) -> None:
        doc["origins"]["x-1"]["hash"] = "0" * 64
        doc["origins"]["x-2"]["api"] = "Bad"

    with pytest.raises(ConsistencyError, match=r"origin of x-1: .* another hash"):
        version.verify(version.edited(both))
