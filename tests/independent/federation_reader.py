"""A second, independent reader of hashhub's federation documents, written from PROTOCOL.md alone.

Three parts of the spec let an entry travel between hubs and from platforms to a hub: a root's
``upstreams`` (§5.6) names the hubs this one re-publishes from, a member's contribution
(§10.8) is a platform's signed offer of an item's hashes, and a version's provenance document
(§7.5) proves where each re-published or contributed record came from, and says which record
of a hash exchange (§5.7) the hub took each exchanged one from. This module checks all
three by the text alone, sharing nothing with the ``protocol`` package; canonical JSON, roots,
headers, entry records and bodies come from the other independent reader,
:mod:`tests.independent.entries_reader`, written from the same text.

What it covers, by section of PROTOCOL.md:

- §5.6 the ``upstreams`` member of a root (:func:`parse_upstreams`, :func:`parse_root_document`);
- §10.8 a contribution and its sidecar, rules 1–6 in their order, Ed25519 through
  ``cryptography`` (:func:`verify_contribution`), and the form of the request that carries it
  (§10.6 as §10.8 applies it: :func:`read_contribution_request`);
- §7.5 the provenance document, rules 1–8 in their order (rules 6, 7 and 8 origin by origin,
  in ascending order of entry id, each by its origin's kind: ``hub``, ``member``,
  ``exchange``), each upstream header carried once in ``upstream_headers``, with the RFC 9162
  inclusion proof of §9.1 computed here (:func:`verify_provenance`, :func:`verify_inclusion`);
- what §7.5 leaves to an auditor, as far as bytes are at hand: the upstream's root under the
  pin the downstream root declares, its checkpoint note at the size of the upstream header the
  origin names (§9.2 signature lines, without freshness), the upstream body adding the record,
  the contribution's signature, and how many records each exchange's origins vouch for
  (:func:`audit_upstream_origin`, :func:`audit_member_origin`,
  :func:`audit_exchange_origins`); and what §5.6 asks of a re-published record that its
  provenance shows (:func:`audit_republication`).

Errors are those of :mod:`tests.independent.entries_reader`, named as §14 names them. Each rule
checked here adds a note ``rule <section>.<n>`` to the error it raises, innermost first, so a
caller can tell at which numbered rule a document failed (:func:`failed_rules`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.independent.entries_reader import (
    HASH_WIDTHS,
    TERM,
    ConsistencyError,
    EntriesBody,
    EntryRecord,
    Header,
    LimitError,
    MalformedError,
    ProofError,
    ProtocolError,
    Root,
    SignatureError,
    check_list_id,
    encode_canonical,
    leaf_hash,
    parse_canonical,
    parse_entries_body,
    parse_header,
    parse_record,
    parse_root,
    parse_sidecar,
    parse_time,
    pin_root,
    read_checkpoint,
)
from tests.independent.opinions_reader import (
    _closed,
    _object,
    _string,
    _type_first,
    note_key_id,
)

# ---------------------------------------------------------------------------------------------
# which rule failed


@contextmanager
def rule(name: str) -> Iterator[None]:
    """Mark every §14 error raised inside as a failure of rule ``name`` (e.g. ``7.5.6``)."""
    try:
        yield
    except ProtocolError as error:
        error.add_note(f"rule {name}")
        raise


def failed_rules(error: BaseException) -> list[str]:
    """The rules an error was raised under, innermost first."""
    notes: list[str] = getattr(error, "__notes__", [])
    return [note.removeprefix("rule ") for note in notes if note.startswith("rule ")]


# ---------------------------------------------------------------------------------------------
# shared field readers

HUB_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,127}")
NODE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_UPSTREAMS = 64
MAX_URL = 2048


def _integer(value: object, what: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedError(f"{what} is not an integer")
    if value < minimum:
        raise MalformedError(f"{what} is below {minimum}")
    return value


def _base64(value: object, what: str, length: int | None = None) -> bytes:
    """A §3.2 base64 value: standard alphabet, padded, canonical; ``length`` bytes if given."""
    text = _string(value, what)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedError(f"{what} is not base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedError(f"{what} is not canonical base64")
    if length is not None and len(raw) != length:
        raise MalformedError(f"{what} decodes to {len(raw)} bytes, not {length}")
    return raw


def _hub_name(value: object, what: str) -> str:
    name = _string(value, what)
    if not HUB_NAME.fullmatch(name):
        raise MalformedError(f"{what} {name!r} is not a hub name")
    return name


# ---------------------------------------------------------------------------------------------
# §5.6 upstreams


@dataclass(frozen=True)
class Upstream:
    """A hub this hub re-publishes from: the SHA-256 of the root its follower pins, its URL."""

    name: str
    root_sha256: str
    url: str


def parse_upstreams(value: object, hub_name: str) -> dict[str, Upstream]:
    """§5.6: an object of at most 64 hub names, none the hub itself, to closed records."""
    record = _object(value, "upstreams")
    if len(record) > MAX_UPSTREAMS:
        raise MalformedError(f"more than {MAX_UPSTREAMS} upstreams")
    upstreams: dict[str, Upstream] = {}
    for name, declaration in record.items():
        _hub_name(name, "upstream")
        if name == hub_name:
            raise MalformedError(f"upstream {name!r} is the hub itself: a loop")
        fields = _closed(declaration, ("root_sha256", "url"), f"upstreams.{name}")
        pin = _string(fields["root_sha256"], f"upstreams.{name}.root_sha256")
        if not re.fullmatch(r"[0-9a-f]{64}", pin):
            raise MalformedError(f"upstreams.{name}.root_sha256 is not hex64")
        url = _string(fields["url"], f"upstreams.{name}.url")
        if len(url) > MAX_URL:
            raise MalformedError(f"upstreams.{name}.url is longer than {MAX_URL}")
        if not url.startswith(("https://", "http://")):
            raise MalformedError(f"upstreams.{name}.url {url!r} is not an http(s) URL")
        upstreams[name] = Upstream(name, pin, url)
    return upstreams


@dataclass(frozen=True)
class RootDocument:
    """A root as §5 reads it, with its upstreams (empty when the member is absent)."""

    root: Root
    upstreams: Mapping[str, Upstream]
    document: Mapping[str, Any]


def parse_root_document(data: bytes) -> RootDocument:
    """A root, strictly (§5), then its ``upstreams`` member by §5.6."""
    root = parse_root(data)
    document = _object(parse_canonical(data), "root")
    upstreams: dict[str, Upstream] = {}
    if "upstreams" in document:
        with rule("5.6"):
            upstreams = parse_upstreams(document["upstreams"], root.name)
    return RootDocument(root, upstreams, document)


# ---------------------------------------------------------------------------------------------
# §10.8 contributions

CONTRIBUTION_TYPE = "hashhub.contribution.v1"
CONTRIBUTION_MEMBERS: Mapping[str, type] = {
    "node": str,
    "seq": int,
    "sent": str,
    "hashes": dict,
    "category": str,
    "classification": str,
    "review": dict,
}
MAX_CONTRIBUTION_HASHES = 8
WITH_QUALITY = frozenset({"pdq"})
REVIEWERS = frozenset({"person", "automated"})
ACTIONS = frozenset({"actioned", "blocked", "none"})


@dataclass(frozen=True)
class HashOffer:
    """The item's hash of one type, with its quality for a type that has a measure."""

    hash_hex: str
    quality: int | None


@dataclass(frozen=True)
class Contribution:
    node: str
    seq: int
    sent: datetime
    hashes: Mapping[str, HashOffer]
    category: str
    classification: str
    review_by: str
    review_action: str
    extra: Mapping[str, Any]


def _contribution_hashes(value: dict[str, Any]) -> dict[str, HashOffer]:
    """Rule 4: 1–8 registered types, each hash in its width, quality exactly where measured."""
    if not 1 <= len(value) <= MAX_CONTRIBUTION_HASHES:
        raise MalformedError(f"hashes holds {len(value)} members, not 1..8")
    offers: dict[str, HashOffer] = {}
    for hash_type, offer in value.items():
        if hash_type not in HASH_WIDTHS:
            raise MalformedError(f"hashes: {hash_type!r} is not a registered hash type")
        record = _object(offer, f"hashes.{hash_type}")
        digits = 2 * HASH_WIDTHS[hash_type]
        hash_hex = record.get("hash")
        if not isinstance(hash_hex, str) or not re.fullmatch(f"[0-9a-f]{{{digits}}}", hash_hex):
            raise MalformedError(f"hashes.{hash_type}.hash is not {digits} lower-case hex digits")
        quality: int | None = None
        if hash_type in WITH_QUALITY:
            if "quality" not in record:
                raise MalformedError(f"hashes.{hash_type} has no quality")
            quality = _integer(record["quality"], f"hashes.{hash_type}.quality")
            if quality > 100:
                raise MalformedError(f"hashes.{hash_type}.quality {quality} is above 100")
        elif "quality" in record:
            raise MalformedError(f"hashes.{hash_type} has a quality; {hash_type} has no measure")
        offers[hash_type] = HashOffer(hash_hex, quality)
    return offers


def parse_contribution(data: bytes) -> Contribution:
    """§10.8 rules 2–6, in their order, over bytes whose signature was checked (rule 1)."""
    with rule("10.8.2"):
        document = _type_first(parse_canonical(data), CONTRIBUTION_TYPE)
        for name, kind in CONTRIBUTION_MEMBERS.items():
            if name not in document:
                raise MalformedError(f"contribution lacks {name}")
            value = document[name]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise MalformedError(f"contribution {name} is not a JSON {kind.__name__}")
    with rule("10.8.3"):
        node = document["node"]
        if not NODE_ID.fullmatch(node) or ".." in node:
            raise MalformedError(f"node {node!r} breaks its pattern")
        seq = _integer(document["seq"], "seq", 1)
        sent = parse_time(document["sent"])
    with rule("10.8.4"):
        hashes = _contribution_hashes(document["hashes"])
    with rule("10.8.5"):
        for name in ("category", "classification"):
            if not TERM.fullmatch(document[name]):
                raise MalformedError(f"{name} {document[name]!r} is not a term")
    with rule("10.8.6"):
        review = document["review"]
        if review.get("by") not in REVIEWERS:
            raise MalformedError(f"review.by {review.get('by')!r} is not person or automated")
        if review.get("action") not in ACTIONS:
            raise MalformedError(f"review.action {review.get('action')!r} is not one of its values")
        _closed(review, ("by", "action"), "review")
        for hash_type, offer in document["hashes"].items():
            named = ("hash", "quality") if hash_type in WITH_QUALITY else ("hash",)
            _closed(offer, named, f"hashes.{hash_type}")
    extra = {name: value for name, value in document.items() if name not in CONTRIBUTION_MEMBERS}
    extra.pop("_type")
    return Contribution(
        node,
        seq,
        sent,
        hashes,
        document["category"],
        document["classification"],
        review["by"],
        review["action"],
        extra,
    )


def verify_contribution(data: bytes, sidecar: bytes, node_public: bytes) -> Contribution:
    """§10.8: the enrolled key signs the exact bytes (threshold 1), then rules 2–6 parse them."""
    with rule("10.8.1"):
        signatures = parse_sidecar(sidecar)
        keyid = hashlib.sha256(node_public).hexdigest()
        key = Ed25519PublicKey.from_public_bytes(node_public)
        for signature in signatures:
            if signature.keyid != keyid:
                continue  # entries by other keys are ignored
            try:
                key.verify(signature.sig, data)
            except InvalidSignature:
                continue  # an invalid signature never counts
            break
        else:
            raise SignatureError(f"no valid signature by the enrolled key {keyid[:16]}…")
    return parse_contribution(data)


# §10.6 as §10.8 applies it: the form of ``POST /v1/contributions`` a receiving hub checks.

MAX_CONTRIBUTION_BYTES = 64 * 1024
MAX_SIGNATURE_HEADER = 4096


class ContributionRequestError(Exception):
    """The hub's answer to a contribution request it refuses, as §10.6's table gives it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


def read_contribution_request(
    content_type: str | None, signature_header: str | None, body: bytes
) -> tuple[bytes, bytes]:
    """The request's form (415, 413, 400, in that order): the contribution and its sidecar.

    Rate limits and the token come before this and are the hub's, not a document's; the
    rules of §10.8 after it answer 422 (:func:`verify_contribution`).
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ContributionRequestError(
            415, "unsupported_media_type", f"Content-Type {content_type!r}"
        )
    if len(body) > MAX_CONTRIBUTION_BYTES:
        raise ContributionRequestError(413, "payload_too_large", f"body of {len(body)} bytes")
    if signature_header is None:
        raise ContributionRequestError(400, "invalid_request", "no Hashhub-Signature")
    if len(signature_header) > MAX_SIGNATURE_HEADER:
        raise ContributionRequestError(
            400, "invalid_request", "Hashhub-Signature over 4096 characters"
        )
    try:
        sidecar = base64.b64decode(signature_header, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContributionRequestError(
            400, "invalid_request", "Hashhub-Signature is not base64"
        ) from exc
    try:
        parse_sidecar(sidecar)
    except MalformedError as exc:
        raise ContributionRequestError(400, "invalid_request", f"not a sidecar: {exc}") from exc
    return body, sidecar


def receive_contribution(
    content_type: str | None, signature_header: str | None, body: bytes, node_public: bytes
) -> Contribution:
    """The form, then §10.8 rules 1–6, a failure of which is 422 naming the rule's class."""
    data, sidecar = read_contribution_request(content_type, signature_header, body)
    try:
        return verify_contribution(data, sidecar, node_public)
    except ProtocolError as error:
        message = f"contribution refused ({type(error).__name__}): {error}"
        raise ContributionRequestError(422, "unprocessable", message) from error


# ---------------------------------------------------------------------------------------------
# §9.1 inclusion proofs (RFC 9162 §2.1.3.2)


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes
) -> None:
    """RFC 9162 §2.1.3.2: ``proof`` leads from leaf ``index`` to ``root_hash``, or ProofError."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size}")
    fn, sn = index, size - 1
    result = leaf
    for sibling in proof:
        if sn == 0:
            raise ProofError("the proof has more hashes than the path")
        if fn & 1 or fn == sn:
            result = _node(sibling, result)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = _node(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof has fewer hashes than the path")
    if result != root_hash:
        raise ProofError("the proof leads to another root")


# ---------------------------------------------------------------------------------------------
# §7.5 provenance

PROVENANCE_TYPE = "hashhub.provenance.v1"
PROVENANCE_MEMBERS: Mapping[str, type] = {
    "list": str,
    "version": int,
    "origins": dict,
    "upstream_headers": list,
}
UPSTREAM_MEMBERS = ("kind", "hub", "list", "version", "record")
UPSTREAM_HEADER_MEMBERS = ("hub", "list", "version", "header", "size", "root", "proof")
MEMBER_MEMBERS = ("kind", "contribution", "sig")
EXCHANGE_MEMBERS = ("kind", "exchange", "api", "hash", "fetched", "record")
MAX_PROOF = 64
MAX_UPSTREAM_HEADERS = 65_536
MAX_EXCHANGE_RECORD = 65_536
EXCHANGE_HASH = re.compile(r"[0-9a-f]{1,128}")
CLAIMING_KINDS = frozenset({"hub", "member", "exchange"})

UpstreamVersion = tuple[str, str, int]
"""An upstream version as §7.5 names it: (``hub``, ``list``, ``version``)."""


@dataclass(frozen=True)
class ProvenanceReference:
    sha256: str
    length: int


@dataclass(frozen=True)
class UpstreamOrigin:
    """A record re-published from an upstream hub: the upstream version that added it, and
    the record line as the upstream published it."""

    hub: str
    list_id: str
    version: int
    record: str

    @property
    def upstream_version(self) -> UpstreamVersion:
        return (self.hub, self.list_id, self.version)


@dataclass(frozen=True)
class UpstreamHeader:
    """The upstream's header of one version, with a tree size of its log, that tree's root and
    the header's inclusion proof in it: carried once however many records the version adds."""

    hub: str
    list_id: str
    version: int
    header: bytes
    size: int
    root_hash: bytes
    proof: tuple[bytes, ...]

    @property
    def upstream_version(self) -> UpstreamVersion:
        return (self.hub, self.list_id, self.version)


@dataclass(frozen=True)
class MemberOrigin:
    """A record published from a member's contribution: its bytes and its sidecar."""

    contribution: bytes
    sig: bytes


@dataclass(frozen=True)
class ExchangeOrigin:
    """A record taken from a hash exchange (§5.7), as the hub says it read it: the exchange's
    name, the API, the hash, when it was fetched (the text, its form being rule 8's) and the
    exchange's record. Nothing in it is signed by the exchange."""

    exchange: str
    api: str
    hash_hex: str
    fetched: str
    record: Mapping[str, Any]


Origin = UpstreamOrigin | MemberOrigin | ExchangeOrigin


@dataclass(frozen=True)
class Provenance:
    list_id: str
    version: int
    origins: Mapping[str, Origin]
    upstream_headers: Mapping[UpstreamVersion, UpstreamHeader]
    extra: Mapping[str, Any]

    def header_of(self, origin: UpstreamOrigin) -> UpstreamHeader:
        """The member of ``upstream_headers`` an origin names (rule 3 makes it exist)."""
        return self.upstream_headers[origin.upstream_version]


@dataclass(frozen=True)
class VersionContext:
    """What §7.5 checks a provenance document against: header v, the root it names, body v."""

    header_bytes: bytes
    header: Header
    header_document: Mapping[str, Any]
    root: RootDocument
    body: EntriesBody

    @classmethod
    def read(cls, header_bytes: bytes, root_bytes: bytes, body_bytes: bytes) -> VersionContext:
        """Read a header taken as verified, the root it names, and its body by §7.4."""
        header = parse_header(header_bytes)
        root = parse_root_document(root_bytes)
        if root.root.version != header.root_version:
            raise ConsistencyError(f"header names root v{header.root_version}, not this root")
        declaration = root.root.lists.get(header.list_id)
        if declaration is None or declaration.format != "entries":
            raise ConsistencyError(f"root does not declare {header.list_id} as an entries list")
        if (len(body_bytes), hashlib.sha256(body_bytes).hexdigest()) != (
            header.body.length,
            header.body.sha256,
        ):
            raise ConsistencyError("the body is not the one the header names")
        body = parse_entries_body(body_bytes, declaration.hash_type)
        document = _object(parse_canonical(header_bytes), "header")
        return cls(header_bytes, header, document, root, body)

    @property
    def hash_type(self) -> str:
        return self.root.root.lists[self.header.list_id].hash_type

    def claiming_records(self) -> dict[str, EntryRecord]:
        """The records body v adds whose source kind claims an origin (§7.5)."""
        return {
            record.entry: record
            for record in self.body.additions
            if record.source_kind in CLAIMING_KINDS
        }


def parse_reference(value: object, max_body_bytes: int) -> ProvenanceReference:
    """Rule 1: the header's ``provenance`` member, a closed record, within the body cap."""
    record = _closed(value, ("sha256", "length"), "provenance reference")
    digest = _string(record["sha256"], "provenance.sha256")
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise MalformedError("provenance.sha256 is not hex64")
    length = _integer(record["length"], "provenance.length", 1)
    if length > max_body_bytes:
        raise LimitError(f"provenance.length {length} is above max_body_bytes {max_body_bytes}")
    return ProvenanceReference(digest, length)


def _list_id(value: object, what: str) -> str:
    """§6.2's pattern, which §7.5 makes a ``MalformedError`` of rule 3 for its ``list``s."""
    try:
        return check_list_id(value)
    except MalformedError as exc:
        raise MalformedError(f"{what} {value!r} breaks the list id pattern") from exc


def _upstream_origin(record: Mapping[str, Any], what: str) -> UpstreamOrigin:
    hub = _hub_name(record["hub"], f"{what}.hub")
    list_id = _list_id(record["list"], f"{what}.list")
    version = _integer(record["version"], f"{what}.version", 1)
    line = _string(record["record"], f"{what}.record")
    if not line.isascii():
        raise MalformedError(f"{what}.record is not ASCII")
    return UpstreamOrigin(hub, list_id, version, line)


def _upstream_header(value: object, index: int) -> UpstreamHeader:
    what = f"upstream_headers[{index}]"
    record = _closed(value, UPSTREAM_HEADER_MEMBERS, what)
    hub = _hub_name(record["hub"], f"{what}.hub")
    list_id = _list_id(record["list"], f"{what}.list")
    version = _integer(record["version"], f"{what}.version", 1)
    header = _base64(record["header"], f"{what}.header")
    size = _integer(record["size"], f"{what}.size", 1)
    root_hash = _base64(record["root"], f"{what}.root", 32)
    proof = record["proof"]
    if not isinstance(proof, list) or len(proof) > MAX_PROOF:
        raise MalformedError(f"{what}.proof is not an array of at most {MAX_PROOF}")
    hashes = tuple(_base64(item, f"{what}.proof hash", 32) for item in proof)
    return UpstreamHeader(hub, list_id, version, header, size, root_hash, hashes)


def _origin(value: object, entry: str) -> Origin:
    what = f"origins.{entry}"
    record = _object(value, what)
    kind = record.get("kind")
    if kind == "hub":
        return _upstream_origin(_closed(record, UPSTREAM_MEMBERS, what), what)
    if kind == "member":
        _closed(record, MEMBER_MEMBERS, what)
        return MemberOrigin(
            _base64(record["contribution"], f"{what}.contribution"),
            _base64(record["sig"], f"{what}.sig"),
        )
    if kind == "exchange":
        # Rule 3 reads the members' JSON types only; their form is rule 8's.
        _closed(record, EXCHANGE_MEMBERS, what)
        return ExchangeOrigin(
            _string(record["exchange"], f"{what}.exchange"),
            _string(record["api"], f"{what}.api"),
            _string(record["hash"], f"{what}.hash"),
            _string(record["fetched"], f"{what}.fetched"),
            _object(record["record"], f"{what}.record"),
        )
    raise MalformedError(f"{what}.kind {kind!r} is not hub, member or exchange")


def _upstream_headers(
    values: list[Any], origins: Mapping[str, Origin]
) -> dict[UpstreamVersion, UpstreamHeader]:
    """Rule 3 for ``upstream_headers``: each member's form, then exactly one member for each
    upstream version the ``hub`` origins name, in any order."""
    if len(values) > MAX_UPSTREAM_HEADERS:
        raise MalformedError(f"upstream_headers holds more than {MAX_UPSTREAM_HEADERS} members")
    headers: dict[UpstreamVersion, UpstreamHeader] = {}
    for index, value in enumerate(values):
        header = _upstream_header(value, index)
        if header.upstream_version in headers:
            raise MalformedError(f"upstream_headers names {header.upstream_version} twice")
        headers[header.upstream_version] = header
    named = {
        origin.upstream_version for origin in origins.values() if isinstance(origin, UpstreamOrigin)
    }
    if unnamed := sorted(set(headers) - named):
        raise MalformedError(f"upstream_headers holds {unnamed}, which no origin names")
    if lacking := sorted(named - set(headers)):
        raise MalformedError(f"upstream_headers lacks {lacking}, which an origin names")
    return headers


def parse_provenance(data: bytes) -> Provenance:
    """Rule 3: the document's own form, with nothing it is checked against."""
    document = _type_first(parse_canonical(data), PROVENANCE_TYPE)
    for name, kind in PROVENANCE_MEMBERS.items():
        if name not in document:
            raise MalformedError(f"provenance lacks {name}")
        if not isinstance(document[name], kind) or isinstance(document[name], bool):
            raise MalformedError(f"provenance {name} is not a JSON {kind.__name__}")
    list_id = _list_id(document["list"], "list")
    version = _integer(document["version"], "version", 1)
    origins: dict[str, Origin] = {}
    for entry, value in document["origins"].items():
        if not TERM.fullmatch(entry):
            raise MalformedError(f"origins key {entry!r} is not an entry id")
        origins[entry] = _origin(value, entry)
    headers = _upstream_headers(document["upstream_headers"], origins)
    extra = {name: value for name, value in document.items() if name not in PROVENANCE_MEMBERS}
    extra.pop("_type")
    return Provenance(list_id, version, origins, headers, extra)


def _check_upstream_origin(
    entry: str, origin: UpstreamOrigin, carried: UpstreamHeader, context: VersionContext
) -> Header:
    """Rule 6 for one origin, in the order of its clauses, against the member of
    ``upstream_headers`` it names; the upstream header it proves."""
    added = context.claiming_records()[entry]
    if added.source != f"hub:{origin.hub}":
        raise ConsistencyError(f"{entry}: source {added.source!r} is not hub:{origin.hub}")
    if origin.hub not in context.root.upstreams:
        raise ConsistencyError(f"{entry}: the root does not declare upstream {origin.hub!r}")
    upstream_header = parse_header(carried.header)
    if (upstream_header.list_id, upstream_header.version) != (origin.list_id, origin.version):
        raise ConsistencyError(
            f"{entry}: the header is of {upstream_header.list_id} v{upstream_header.version},"
            f" not {origin.list_id} v{origin.version}"
        )
    width = HASH_WIDTHS[context.hash_type]
    upstream_record = parse_record(origin.record, width)
    if upstream_record.hash_hex != added.hash_hex:
        raise ConsistencyError(f"{entry}: the upstream record is of another hash")
    verify_inclusion(
        leaf_hash(carried.header),
        upstream_header.version - 1,
        carried.size,
        carried.proof,
        carried.root_hash,
    )
    return upstream_header


def _check_member_origin(entry: str, origin: MemberOrigin, context: VersionContext) -> None:
    """Rule 7 for one origin: a member source, and a contribution carrying the record's hash."""
    added = context.claiming_records()[entry]
    if added.source_kind != "member":
        raise ConsistencyError(f"{entry}: source kind {added.source_kind!r} is not member")
    contribution = parse_contribution(origin.contribution)
    offer = contribution.hashes.get(context.hash_type)
    if offer is None or offer.hash_hex != added.hash_hex:
        raise ConsistencyError(
            f"{entry}: the contribution does not carry the record's {context.hash_type} hash"
        )


def _check_exchange_origin(entry: str, origin: ExchangeOrigin, context: VersionContext) -> None:
    """Rule 8 for one origin, in the order of its clauses: the form of its members and the
    size of the record, then the record's source, its hash, and a fetch no later than header
    v's ``created``."""
    if not HUB_NAME.fullmatch(origin.exchange):
        raise MalformedError(f"{entry}: exchange {origin.exchange!r} is not a hub name")
    if not TERM.fullmatch(origin.api):
        raise MalformedError(f"{entry}: api {origin.api!r} is not a term")
    if not EXCHANGE_HASH.fullmatch(origin.hash_hex):
        raise MalformedError(f"{entry}: hash is not 1 to 128 lowercase hex digits")
    fetched = parse_time(origin.fetched)
    size = len(encode_canonical(origin.record))
    if size > MAX_EXCHANGE_RECORD:
        raise LimitError(f"{entry}: the exchange's record is {size} bytes in canonical form")
    added = context.claiming_records()[entry]
    if added.source != f"exchange:{origin.exchange}":
        raise ConsistencyError(
            f"{entry}: source {added.source!r} is not exchange:{origin.exchange}"
        )
    if origin.hash_hex != added.hash_hex:
        raise ConsistencyError(f"{entry}: the exchange's hash is not the record's")
    if fetched > context.header.created:
        raise ConsistencyError(f"{entry}: fetched {origin.fetched}, after header v's created")


def verify_provenance(data: bytes, context: VersionContext) -> Provenance:
    """§7.5 rules 1–8, in order, for the document header v names.

    Rule 5's clause for a header naming no document comes first, as the rule says; a header
    naming none while the version claims no origin has nothing to check, and bytes offered for
    it are refused (§7.5 does not say as what; ``ConsistencyError`` here, under no rule).
    """
    if "provenance" not in context.header_document:
        if context.claiming_records():
            with rule("7.5.5"):
                raise ConsistencyError("the version adds records claiming an origin, no provenance")
        raise ConsistencyError("header v names no provenance document")
    with rule("7.5.1"):
        reference = parse_reference(
            context.header_document["provenance"], context.root.root.max_body_bytes
        )
    with rule("7.5.2"):
        if len(data) != reference.length:
            raise LimitError(f"provenance of {len(data)} bytes, not {reference.length}")
        if hashlib.sha256(data).hexdigest() != reference.sha256:
            raise ConsistencyError("provenance bytes are not the SHA-256 the header names")
    with rule("7.5.3"):
        provenance = parse_provenance(data)
    with rule("7.5.4"):
        if provenance.list_id != context.header.list_id:
            raise ConsistencyError(f"provenance of list {provenance.list_id!r}, not header v's")
        if provenance.version != context.header.version:
            raise ConsistencyError(f"provenance of version {provenance.version}, not header v's")
    with rule("7.5.5"):
        claiming = set(context.claiming_records())
        if set(provenance.origins) != claiming:
            missing = sorted(claiming - set(provenance.origins))
            extra = sorted(set(provenance.origins) - claiming)
            raise ConsistencyError(f"origins missing {missing}, not claimed {extra}")
    for entry in sorted(provenance.origins, key=lambda name: name.encode("ascii")):
        origin = provenance.origins[entry]
        if isinstance(origin, UpstreamOrigin):
            with rule("7.5.6"):
                _check_upstream_origin(entry, origin, provenance.header_of(origin), context)
        elif isinstance(origin, MemberOrigin):
            with rule("7.5.7"):
                _check_member_origin(entry, origin, context)
        else:
            with rule("7.5.8"):
                _check_exchange_origin(entry, origin, context)
    return provenance


# ---------------------------------------------------------------------------------------------
# what §7.5 leaves to an auditor


def verify_checkpoint_note(note: str, root: Root, list_id: str) -> tuple[int, bytes]:
    """A checkpoint note's size and root hash, its lines verified under ``root`` (§9.2).

    Both roles must reach their thresholds over the note text; a known line that does not
    verify rejects the note, an unknown well-formed line is ignored. Freshness (§13.2, §13.3)
    needs a clock and is not checked here.
    """
    checkpoint = read_checkpoint(note)
    origin = f"{root.name}/lists/{list_id}"
    if checkpoint.origin != origin:
        raise ConsistencyError(f"checkpoint origin {checkpoint.origin!r}, not {origin!r}")
    cut = note.rindex("\n\n")
    text = note[: cut + 1].encode("utf-8")
    lines = note[cut + 2 :].split("\n")
    if lines[-1] != "" or len(lines) < 2:
        raise MalformedError("the signature block does not end with LF")
    known = {
        "checkpoint": (origin, 0x01),
        "timestamp": (f"{root.name}/timestamp", 0x04),
    }
    valid: dict[str, set[str]] = {role_name: set() for role_name in known}
    for line in lines[:-1]:
        if not line.startswith("\u2014 ") or line.count(" ") != 2:
            raise MalformedError(f"not a signature line: {line[:40]!r}")
        name, encoded = line[2:].split(" ")
        raw = _base64(encoded, "signature line")
        for role_name, (key_name, algorithm) in known.items():
            for keyid in root.roles[role_name].keyids:
                public = root.keys[keyid]
                if name != key_name or raw[:4] != note_key_id(key_name, algorithm, public):
                    continue
                if algorithm == 0x01:
                    signature, message = raw[4:], text
                else:
                    time = int.from_bytes(raw[4:12], "big")
                    signature = raw[12:]
                    message = f"cosignature/v1\ntime {time}\n".encode() + text
                try:
                    Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
                except InvalidSignature as exc:
                    raise SignatureError(f"a known {role_name} line does not verify") from exc
                valid[role_name].add(keyid)
    for role_name in known:
        if len(valid[role_name]) < root.roles[role_name].threshold:
            raise SignatureError(f"the checkpoint lacks a threshold of the {role_name} role")
    return checkpoint.size, checkpoint.root_hash


def audit_upstream_origin(
    origin: UpstreamOrigin,
    carried: UpstreamHeader,
    declared: Upstream,
    hash_type: str,
    upstream_root: bytes,
    upstream_root_sig: bytes,
    checkpoint_note: str,
    upstream_body: bytes,
) -> EntryRecord:
    """An auditor's side of a hub origin, with the member of ``upstream_headers`` it names:
    the pinned root signs a checkpoint at that member's ``size`` whose root is its ``root``,
    the upstream list is of ``hash_type`` (this list's, §5.6 rule 2: rule 6 of §7.5 reads the
    record at its width only, which two types can share), and the upstream's body of that
    version adds ``record``.

    The pinned root is read as root v1, the version the reference pins (§5.6).
    """
    if carried.upstream_version != origin.upstream_version:
        raise ConsistencyError(f"the header carried is {carried.upstream_version}'s")
    if hashlib.sha256(upstream_root).hexdigest() != declared.root_sha256:
        raise SignatureError(f"the root of {declared.name} is not the one pinned")
    root = pin_root(upstream_root, upstream_root_sig, 1)
    if root.name != declared.name:
        raise ConsistencyError(f"the pinned root names {root.name!r}, not {declared.name!r}")
    size, root_hash = verify_checkpoint_note(checkpoint_note, root, origin.list_id)
    if (size, root_hash) != (carried.size, carried.root_hash):
        raise ConsistencyError("the upstream's checkpoint is not the carried size and root")
    header = parse_header(carried.header)
    declaration = root.lists.get(header.list_id)
    if declaration is None:
        raise ConsistencyError(f"{declared.name} does not declare {header.list_id}")
    if declaration.hash_type != hash_type:
        raise ConsistencyError(f"{header.list_id} is of {declaration.hash_type}, not {hash_type}")
    if (len(upstream_body), hashlib.sha256(upstream_body).hexdigest()) != (
        header.body.length,
        header.body.sha256,
    ):
        raise ConsistencyError("the upstream body is not the one its header names")
    body = parse_entries_body(upstream_body, declaration.hash_type)
    added = [record for record in body.additions if record.line == origin.record]
    if not added:
        raise ConsistencyError("the upstream's body of that version does not add the record")
    return added[0]


def audit_republication(added: EntryRecord, upstream_record: EntryRecord, hub_name: str) -> None:
    """§5.6 rules 1 and 2 as one re-published record shows them, which §7.5's rules do not
    check: the record keeps the upstream's hash, category and classification, and is not
    this hub's own entry come back round (an upstream source ``hub:<hub_name>``)."""
    if upstream_record.source == f"hub:{hub_name}":
        raise ConsistencyError(f"{added.entry}: {hub_name}'s own entry, come back round")
    kept = (added.hash_hex, added.category, added.classification)
    if kept != (upstream_record.hash_hex, upstream_record.category, upstream_record.classification):
        raise ConsistencyError(f"{added.entry}: not the upstream record's hash and terms")


def audit_member_origin(origin: MemberOrigin, node_public: bytes) -> Contribution:
    """An auditor's side of a member origin: ``sig`` verifies the contribution (§10.8)."""
    return verify_contribution(origin.contribution, origin.sig, node_public)


def audit_exchange_origins(provenance: Provenance) -> dict[str, int]:
    """An auditor's side of ``exchange`` origins without access to the exchanges: how many
    records each exchange's origins vouch for (§7.5). Whether the exchange holds each record
    is asked of the exchange itself."""
    counts: dict[str, int] = {}
    for origin in provenance.origins.values():
        if isinstance(origin, ExchangeOrigin):
            counts[origin.exchange] = counts.get(origin.exchange, 0) + 1
    return counts
