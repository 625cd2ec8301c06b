"""Provenance: where each re-published, contributed or exchanged record of a version
came from (PROTOCOL.md §7.5).

A hub that re-publishes an upstream hub's entry, publishes a member's contribution or
takes a record from a hash exchange, says so in the record's ``source``
(``hub:<upstream>``, ``member:<platform>``, ``exchange:<name>``). That is a claim; the
proof, or for an exchange the hub's own signed word, travels in a **provenance
document** (``hashhub.provenance.v1``) of the version, content-addressed like a body
and named by the header's ``provenance`` member, so the ``delta`` signature and the
log cover it:

- for an upstream record, the upstream's record line, the upstream header of the
  version that added it, and an RFC 9162 inclusion proof of that header in the
  upstream's log at a size whose root it gives; an auditor holding the upstream's
  signed checkpoints (from the pin the downstream's root declares, §5.6) checks that
  root and the upstream's body, and so that the upstream published the record;
- for a contribution, its bytes and its sidecar, which an auditor verifies under the
  contributor's enrolled key (§10.8);
- for an exchange record (§5.7), which carries no signature anyone could check, the
  record as the hub read it, its hash and when the hub fetched it: once the version is
  in the log the hub cannot later say it acted on another record, and an auditor with
  access to the exchange can ask it.

The rules here are what a verifier checks with the version alone (``verify_provenance``):
the document is the one the header names, it speaks of exactly the records the
version adds from an upstream, a member or an exchange, each upstream origin is
declared by the root and its proof leads to the root it claims, each contribution
and each exchange record carries the hash, and nothing was fetched after the version
was made.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from protocol._fields import Fields, b64decode, b64encode, expect_type, merge_extra, parse_time
from protocol.canonical import canonicalize, parse_canonical
from protocol.contribution import Contribution
from protocol.delta import DeltaHeader
from protocol.entries import ENTRY_ID_PATTERN, TERM_PATTERN, EntriesBody, Entry
from protocol.errors import ConsistencyError, LimitError, MalformedError
from protocol.lists import LIST_ID_PATTERN, HashType
from protocol.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from protocol.opinions import OpinionsRef, header_document, named_bytes
from protocol.root import Root, validate_hub_name

__all__ = [
    "MAX_EXCHANGE_RECORD",
    "MAX_PROOF",
    "ORIGIN_KINDS",
    "PROVENANCE_TYPE",
    "ExchangeOrigin",
    "MemberOrigin",
    "Provenance",
    "UpstreamOrigin",
    "header_provenance",
    "verify_provenance",
]

PROVENANCE_TYPE = "hashhub.provenance.v1"
ORIGIN_KINDS = ("hub", "member", "exchange")
"""The source kinds whose records carry an origin (§7.5)."""
MAX_PROOF = 64
"""Hashes in an inclusion proof at most: a log of fewer than 2^64 headers."""
MAX_UPSTREAM_HEADERS = 65_536
"""Upstream versions one provenance document carries headers of, at most."""
_MAX_BLOB = 65_536
"""Bytes of an upstream header or a contribution, at most (their own caps, §11, §10.8)."""
MAX_EXCHANGE_RECORD = 65_536
"""Bytes of an exchange's record in canonical form, at most (§7.5 rule 8)."""
_EXCHANGE_HASH = re.compile(r"[0-9a-f]{1,128}")
"""An exchange record's hash as an origin gives it: lowercase hex, 64 bytes at most."""


def header_provenance(header: DeltaHeader) -> OpinionsRef | None:
    """The provenance document a header names (``{"sha256", "length"}``), or None."""
    return header_document(header, "provenance")


@dataclass(frozen=True)
class UpstreamOrigin:
    """A record re-published from an upstream: its line there, the upstream header
    that added it, and the header's inclusion in the upstream's log.

    On the wire the header, size, root and proof are written once per upstream
    version (``upstream_headers``) and each origin names its version: a version
    re-publishing 100,000 records of one upstream version carries one header and
    one proof, not 100,000 (PROTOCOL.md §7.5)."""

    hub: str
    list_id: str
    record: bytes
    header: bytes
    size: int
    root: bytes
    proof: tuple[bytes, ...]
    version: int | None = None
    """The upstream version the document names (None: the header's own, read from it)."""

    def upstream_version(self) -> int:
        if self.version is not None:
            return self.version
        return DeltaHeader.from_bytes(self.header).version

    def to_dict(self) -> dict[str, Any]:
        return {
            "hub": self.hub,
            "kind": "hub",
            "list": self.list_id,
            "record": self.record.decode("ascii"),
            "version": self.upstream_version(),
        }

    def header_dict(self) -> dict[str, Any]:
        """Its member of ``upstream_headers``."""
        return {
            "header": b64encode(self.header),
            "hub": self.hub,
            "list": self.list_id,
            "proof": [b64encode(h) for h in self.proof],
            "root": b64encode(self.root),
            "size": self.size,
            "version": self.upstream_version(),
        }


@dataclass(frozen=True)
class MemberOrigin:
    """A record published from a member's contribution: its bytes and sidecar."""

    contribution: bytes
    sig: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "contribution": b64encode(self.contribution),
            "kind": "member",
            "sig": b64encode(self.sig),
        }


@dataclass(frozen=True)
class ExchangeOrigin:
    """A record taken from a hash exchange that is not a hub (§5.7): which exchange and
    API, the hash the exchange's record gives, when the hub fetched it, and the record
    as the hub read it (an XML record as an object of its elements).

    Nothing here is signed by the exchange: it is the hub's attestation, bound by the
    version's signature and the log, of exactly what it acted on. ``fetched`` is kept as
    the §3.2 text it is written as; rule 8 of §7.5 checks every member's form in its
    turn (``verify_provenance``), so a parsed document may hold malformed ones."""

    exchange: str
    api: str
    hash_hex: str
    fetched: str
    record: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "exchange": self.exchange,
            "fetched": self.fetched,
            "hash": self.hash_hex,
            "kind": "exchange",
            "record": dict(self.record),
        }


Origin = UpstreamOrigin | MemberOrigin | ExchangeOrigin

_UpstreamKey = tuple[str, str, int]
"""(upstream hub, its list, its version): what an upstream origin names."""


@dataclass(frozen=True)
class _UpstreamHeader:
    header: bytes
    size: int
    root: bytes
    proof: tuple[bytes, ...]


def _upstream_key(f: Fields) -> _UpstreamKey:
    """The (hub, list, version) an upstream origin and its header record both name."""
    return (
        validate_hub_name(f.text("hub", max_len=128)),
        f.text("list", pattern=LIST_ID_PATTERN, max_len=64),
        f.integer("version", minimum=1),
    )


def _upstream_header(value: Any, where: str) -> tuple[_UpstreamKey, _UpstreamHeader]:
    f = Fields(value, where)
    proof = f.array("proof", max_items=MAX_PROOF)
    if not all(isinstance(h, str) for h in proof):
        raise MalformedError(f"{where}: proof holds a non-string")
    key = _upstream_key(f)
    found = _UpstreamHeader(
        header=b64decode(f.text("header", max_len=4 * _MAX_BLOB), f"{where}: header"),
        size=f.integer("size", minimum=1),
        root=b64decode(f.text("root", max_len=64), f"{where}: root", length=HASH_SIZE),
        proof=tuple(b64decode(h, f"{where}: proof", length=HASH_SIZE) for h in proof),
    )
    f.closed()
    return key, found


_ParsedOrigin = MemberOrigin | ExchangeOrigin | tuple[_UpstreamKey, bytes]


def _origin(value: Any, where: str) -> _ParsedOrigin:
    """A member or exchange origin, or an upstream origin's key and record (its header
    is found in ``upstream_headers``).

    An exchange origin's members are read here by their JSON type only (rule 3); their
    form and the record's size are rule 8's, checked after rules 4 and 5 as §7.5 orders
    them, like a contribution's parse is rule 7's."""
    f = Fields(value, where)
    kind = f.text("kind", max_len=16)
    origin: _ParsedOrigin
    if kind == "hub":
        record = f.text("record", max_len=1024)
        if not record.isascii():
            raise MalformedError(f"{where}: record is not ASCII")
        origin = (_upstream_key(f), record.encode("ascii"))
    elif kind == "member":
        origin = MemberOrigin(
            contribution=b64decode(
                f.text("contribution", max_len=4 * _MAX_BLOB), f"{where}: contribution"
            ),
            sig=b64decode(f.text("sig", max_len=4 * _MAX_BLOB), f"{where}: sig"),
        )
    elif kind == "exchange":
        origin = ExchangeOrigin(
            exchange=f.text("exchange", max_len=sys.maxsize),
            api=f.text("api", max_len=sys.maxsize),
            hash_hex=f.text("hash", max_len=sys.maxsize),
            fetched=f.text("fetched", max_len=sys.maxsize),
            record=f.mapping("record"),
        )
    else:
        raise MalformedError(f"{where}: kind {kind[:16]!r} is not one of hub, member, exchange")
    f.closed()
    return origin


@dataclass(frozen=True)
class Provenance:
    """``hashhub.provenance.v1``: the origin of each record a version adds from an
    upstream, a member or an exchange, by entry id; each upstream header and its
    proof once."""

    list_id: str
    version: int
    origins: Mapping[str, Origin]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        headers: dict[_UpstreamKey, dict[str, Any]] = {}
        for origin in self.origins.values():
            if isinstance(origin, UpstreamOrigin):
                key = (origin.hub, origin.list_id, origin.upstream_version())
                headers.setdefault(key, origin.header_dict())
        return merge_extra(
            {
                "_type": PROVENANCE_TYPE,
                "list": self.list_id,
                "origins": {e: o.to_dict() for e, o in sorted(self.origins.items())},
                "upstream_headers": [headers[k] for k in sorted(headers)],
                "version": self.version,
            },
            self.extra,
        )

    def to_bytes(self) -> bytes:
        return canonicalize(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Provenance:
        """Parse strictly (rule 3 of §7.5): also an upstream origin whose version has no
        member of ``upstream_headers``, a member no origin names, or one named twice."""
        f = Fields(parse_canonical(data), "provenance")
        expect_type(f, PROVENANCE_TYPE)
        list_id = f.text("list", pattern=LIST_ID_PATTERN, max_len=64)
        version = f.integer("version", minimum=1)
        headers: dict[_UpstreamKey, _UpstreamHeader] = {}
        for n, value in enumerate(f.array("upstream_headers", max_items=MAX_UPSTREAM_HEADERS)):
            key, found = _upstream_header(value, f"provenance: upstream_headers[{n}]")
            if key in headers:
                raise MalformedError(
                    f"provenance: upstream_headers names {key[0]} {key[1]} v{key[2]} twice"
                )
            headers[key] = found
        parsed: dict[str, _ParsedOrigin] = {}
        for entry_id, value in f.mapping("origins").items():
            if not ENTRY_ID_PATTERN.fullmatch(entry_id):
                raise MalformedError(f"provenance: {entry_id[:70]!r} is not an entry id")
            parsed[entry_id] = _origin(value, f"provenance: origins.{entry_id}")
        origins: dict[str, Origin] = {}
        named: set[_UpstreamKey] = set()
        for entry_id, got in parsed.items():
            if isinstance(got, MemberOrigin | ExchangeOrigin):
                origins[entry_id] = got
                continue
            key, record = got
            named.add(key)
            quoted = headers.get(key)
            if quoted is None:
                raise MalformedError(
                    f"provenance: origin of {entry_id}: no upstream header of {key[0]} "
                    f"{key[1]} v{key[2]}"
                )
            origins[entry_id] = UpstreamOrigin(
                key[0],
                key[1],
                record,
                quoted.header,
                quoted.size,
                quoted.root,
                quoted.proof,
                key[2],
            )
        unused = sorted(set(headers) - named)
        if unused:
            hub, lid, v = unused[0]
            raise MalformedError(f"provenance: upstream header {hub} {lid} v{v} is no origin's")
        return cls(
            list_id=list_id,
            version=version,
            origins=origins,
            extra={k: v for k, v in f.rest().items() if k != "_type"},
        )


def verify_provenance(
    header: DeltaHeader, data: bytes, root: Root, body: EntriesBody, kind: HashType
) -> Provenance:
    """The provenance document ``header`` names, checked by the rules of §7.5 against
    the root that signed the header and the version's body (of a list of ``kind``).

    Raises:
        MalformedError: no ``provenance`` member, or the bytes are not a document.
        LimitError: over the root's ``max_body_bytes``, or not the signed length.
        LimitError: also an exchange's record over ``MAX_EXCHANGE_RECORD`` bytes.
        ConsistencyError: not the signed SHA-256, another version, records spoken of
            that the version does not add from an upstream, a member or an exchange (or
            the reverse), an upstream the root does not declare, an origin of another
            hash or source, an exchange record fetched after the version was made.
        ProofError: an inclusion proof that does not lead to the root it claims.
    """
    named_bytes(header, "provenance", data, root, "provenance")
    doc = Provenance.from_bytes(data)
    if (doc.list_id, doc.version) != (header.list_id, header.version):
        raise ConsistencyError(
            f"provenance: for {doc.list_id} v{doc.version}, under {header.list_id} "
            f"v{header.version}"
        )
    sourced = {e.entry_id: e for e in body.adds if e.source_kind in ORIGIN_KINDS}
    if set(doc.origins) != set(sourced):
        missing = sorted(set(sourced) - set(doc.origins))
        extra = sorted(set(doc.origins) - set(sourced))
        raise ConsistencyError(
            f"provenance v{header.version}: no origin for {missing[:3]}"
            if missing
            else f"provenance v{header.version}: an origin for {extra[:3]}, not added from "
            "an upstream, a member or an exchange"
        )
    proven: set[tuple[str, str, int]] = set()
    for entry_id, origin in sorted(doc.origins.items()):
        _check_origin(entry_id, origin, sourced[entry_id], header, root, kind, proven)
    return doc


def _check_origin(
    entry_id: str,
    origin: Origin,
    added: Entry,
    header: DeltaHeader,
    root: Root,
    kind: HashType,
    proven: set[tuple[str, str, int]],
) -> None:
    """Rules 6, 7 and 8 of §7.5 for one origin of ``header``'s version. The upstream
    header and its inclusion proof, shared by every origin of one upstream version, are
    checked at the first such origin and remembered in ``proven``: a version
    re-publishing 100,000 records of one upstream version parses one header and
    verifies one proof."""
    where = f"provenance: origin of {entry_id}"
    if isinstance(origin, ExchangeOrigin):
        _check_exchange_origin(where, origin, added, header)
        return
    if isinstance(origin, UpstreamOrigin):
        if added.source_kind != "hub" or added.source_ref != origin.hub:
            raise ConsistencyError(f"{where}: the record's source is {added.source}")
        if origin.hub not in root.upstreams:
            raise ConsistencyError(f"{where}: root v{root.version} declares no {origin.hub}")
        key = (origin.hub, origin.list_id, origin.upstream_version())
        if key not in proven:
            upstream = DeltaHeader.from_bytes(origin.header)
            if (upstream.list_id, upstream.version) != key[1:]:
                raise ConsistencyError(
                    f"{where}: the header is of {upstream.list_id} v{upstream.version}, the "
                    f"origin of {origin.list_id} v{key[2]}"
                )
        theirs = Entry.from_line(origin.record, kind)
        if theirs.hash != added.hash:
            raise ConsistencyError(f"{where}: the upstream record is of another hash")
        if key not in proven:
            verify_inclusion(
                leaf_hash(origin.header), key[2] - 1, origin.size, origin.proof, origin.root
            )
            proven.add(key)
        return
    if added.source_kind != "member":
        raise ConsistencyError(f"{where}: the record's source is {added.source}")
    offered = Contribution.from_bytes(origin.contribution)
    given = offered.hashes.get(kind.name)
    if given is None or given.hex != added.hash.hex():
        raise ConsistencyError(f"{where}: the contribution does not carry the record's hash")


def _check_exchange_origin(
    where: str, origin: ExchangeOrigin, added: Entry, header: DeltaHeader
) -> None:
    """Rule 8 of §7.5: the origin's form, then that it is the added record's and was
    fetched no later than the version was made (a hub cannot have acted on a record it
    had not yet read)."""
    try:
        validate_hub_name(origin.exchange)
    except MalformedError as e:
        raise MalformedError(
            f"{where}: exchange {origin.exchange[:130]!r} is not a hub name"
        ) from e
    if not TERM_PATTERN.fullmatch(origin.api):
        raise MalformedError(f"{where}: api {origin.api[:70]!r} is not a term")
    if not _EXCHANGE_HASH.fullmatch(origin.hash_hex):
        raise MalformedError(f"{where}: hash is not lowercase hex of at most 128 digits")
    # Cut: a time is 20 characters, so a longer text fails either way; the message
    # quotes it.
    fetched = parse_time(origin.fetched[:64], f"{where}: fetched")
    size = len(canonicalize(dict(origin.record)))
    if size > MAX_EXCHANGE_RECORD:
        raise LimitError(
            f"{where}: the exchange's record is {size} bytes, over {MAX_EXCHANGE_RECORD}"
        )
    if added.source_kind != "exchange" or added.source_ref != origin.exchange:
        raise ConsistencyError(f"{where}: the record's source is {added.source}")
    if origin.hash_hex != added.hash.hex():
        raise ConsistencyError(f"{where}: the exchange's record is of another hash")
    if fetched > header.created:
        raise ConsistencyError(
            f"{where}: fetched {origin.fetched}, after v{header.version} was made"
        )
