"""A second, independent reader of hashhub's entries format, written from PROTOCOL.md alone.

The project promises that another team can build a verifier from the specification and the
vectors and agree with the reference. This module is that other team's code for the newest
part of the spec — lists of entry records — and deliberately shares nothing with the
``protocol`` package: if the two disagree on a vector, the text is at fault or one reader is.

What it covers, by section of PROTOCOL.md:

- §3.1 strict canonical JSON (parse, then re-encode and compare), §3.2 field types;
- §4 sidecars and the threshold rule (Ed25519 through ``cryptography``);
- §5 roots as far as the entries rules need them, §5.3 ``format``, §5.5 ``vocabulary``,
  and the successor rules of §13.1 step 2 (including 2.7–2.9);
- §7.1 headers, §7.3 entry records, §7.4 entries bodies and §13.6 steps 1–6;
- §8.1 the state digest and snapshot of an entries list, §13.5 snapshot checks;
- §13.7 apply, all or nothing.

Errors are named as §14 names them::

    ProtocolError
    ├── MalformedError
    │   ├── WrongTypeError
    │   ├── InvalidListIdError
    │   └── BodyRuleError
    │       └── VocabularyError
    ├── LimitError
    ├── SignatureError
    ├── RollbackError
    ├── FreezeError
    ├── ExpiredError
    ├── EquivocationError
    ├── ConsistencyError
    │   └── ProofError
    ├── StateMismatchError
    ├── UnknownListError
    └── MissingFileError

Not covered (outside the sections this reader was written from): the checkpoint note's
signature lines and freshness (§9.2, §13.2 steps 4–7, §13.3). A checkpoint is read for its
origin, size and root hash only; see :func:`read_checkpoint`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# ---------------------------------------------------------------------------------------------
# §14 errors


class ProtocolError(Exception):
    """Published data is at fault; nothing derived from it is applied."""


class MalformedError(ProtocolError):
    """Bytes that do not parse under the strict rules."""


class WrongTypeError(MalformedError):
    """A document of another or unknown ``_type``."""


class InvalidListIdError(MalformedError):
    """A list id outside §6.2."""


class BodyRuleError(MalformedError):
    """A body breaking §7.2 or §7.4."""


class VocabularyError(BodyRuleError):
    """An entry record with a term the root's vocabulary does not declare."""


class LimitError(ProtocolError):
    """Larger than its cap, or a body or snapshot of the wrong length."""


class SignatureError(ProtocolError):
    """Signatures missing, invalid, below threshold or of the wrong role."""


class RollbackError(ProtocolError):
    """Something that goes backwards: a version, a time, a first_version, a vocabulary."""


class FreezeError(ProtocolError):
    """A checkpoint outside the freshness window, or a header from the future."""


class ExpiredError(ProtocolError):
    """The newest trusted root has expired."""


class EquivocationError(ProtocolError):
    """Two different roots signed for one tree size."""


class ConsistencyError(ProtocolError):
    """Links that do not hold: states, hashes, list and version, Merkle root, hub name."""


class ProofError(ConsistencyError):
    """An inclusion or consistency proof that does not verify."""


class StateMismatchError(ProtocolError):
    """The local state is not the base a delta expects."""


class UnknownListError(ProtocolError):
    """A list the trusted root does not declare."""


class MissingFileError(ProtocolError):
    """A file signed data promises, found at no source."""


# ---------------------------------------------------------------------------------------------
# §3.1 canonical JSON

MAX_DEPTH = 64
MAX_INTEGER = 2**53 - 1


def _reject_constant(name: str) -> Any:
    raise MalformedError(f"non-finite number {name}")


def _reject_float(text: str) -> Any:
    raise MalformedError(f"number with a fraction or exponent: {text}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise MalformedError(f"duplicate member {name!r}")
        result[name] = value
    return result


def _check_values(value: Any, depth: int) -> None:
    """Rules 2 and 5 of §3.1: nesting depth and integer range."""
    if isinstance(value, dict | list):
        depth += 1
        if depth > MAX_DEPTH:
            raise MalformedError(f"nested more than {MAX_DEPTH} deep")
        for item in value.values() if isinstance(value, dict) else value:
            _check_values(item, depth)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        raise MalformedError(f"integer out of range: {value}")


def encode_canonical(value: Any) -> bytes:
    """RFC 8785 for the values hashhub documents hold (no floats)."""
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # Python escapes exactly the mandatory set, control characters as lower-case \u00xx.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    if isinstance(value, dict):
        names = sorted(value, key=lambda name: name.encode("utf-16-be"))
        return "{" + ",".join(f"{_encode(n)}:{_encode(value[n])}" for n in names) + "}"
    raise TypeError(f"cannot encode {type(value).__name__}")


def parse_canonical(data: bytes) -> Any:
    """Parse ``data`` strictly by §3.1, or raise MalformedError."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise MalformedError("starts with a byte order mark")
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_reject_float,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MalformedError(f"not strict JSON: {exc}") from exc
    _check_values(value, 0)
    try:
        canonical = encode_canonical(value)
    except UnicodeEncodeError as exc:
        raise MalformedError("a string holds a lone surrogate") from exc
    if canonical != data:
        raise MalformedError("not the RFC 8785 encoding of its value")
    return value


# ---------------------------------------------------------------------------------------------
# §3.2 field types

_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")
TERM = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
SOURCE_REF = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
_HUB_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,127}")
_LIST_ID = TERM


def parse_time(text: object) -> datetime:
    """A §3.2 time: exactly ``YYYY-MM-DDTHH:MM:SSZ``, a real instant, no leap second."""
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise MalformedError(f"not a time: {text!r}")
    try:
        return datetime(
            int(text[0:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise MalformedError(f"not a valid time: {text!r}") from exc


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_list_id(list_id: object) -> str:
    """§6.2: checked before any path or URL is built with it."""
    if not isinstance(list_id, str) or not _LIST_ID.fullmatch(list_id) or ".." in list_id:
        raise InvalidListIdError(f"invalid list id {list_id!r}")
    return list_id


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedError(f"{what} is not an object")
    return value


def _closed(value: object, members: Iterable[str], what: str) -> dict[str, Any]:
    """A closed record (§3.3): exactly these members."""
    record = _object(value, what)
    if set(record) != set(members):
        raise MalformedError(f"{what} has members {sorted(record)}, not {sorted(members)}")
    return record


def _integer(value: object, what: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedError(f"{what} is not an integer")
    if not minimum <= value <= MAX_INTEGER:
        raise MalformedError(f"{what} out of range: {value}")
    return value


def _text(value: object, what: str, maximum: int | None = None) -> str:
    if not isinstance(value, str):
        raise MalformedError(f"{what} is not a string")
    if maximum is not None and len(value) > maximum:
        raise MalformedError(f"{what} longer than {maximum} code points")
    return value


def _hex64(value: object, what: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise MalformedError(f"{what} is not 64 lower-case hex digits")
    return value


def _required(document: Mapping[str, Any], names: Iterable[str], what: str) -> None:
    missing = [name for name in names if name not in document]
    if missing:
        raise MalformedError(f"{what} lacks {missing}")


def _type_first(value: object, expected: str) -> dict[str, Any]:
    """§3.3: ``_type`` is checked before anything else is read."""
    document = _object(value, "document")
    if "_type" not in document:
        raise MalformedError("document has no _type")
    if document["_type"] != expected:
        raise WrongTypeError(f"_type {document['_type']!r}, expected {expected!r}")
    return document


# ---------------------------------------------------------------------------------------------
# §6.1 hash types

HASH_WIDTHS: Mapping[str, int] = {"pdq": 32, "phash": 8, "md5": 16, "sha256": 32, "vpdq": 32}
PERCEPTUAL = frozenset({"pdq", "phash"})


def hash_width(hash_type: str) -> int:
    try:
        return HASH_WIDTHS[hash_type]
    except KeyError:
        raise MalformedError(f"unknown hash type {hash_type!r}") from None


# ---------------------------------------------------------------------------------------------
# §5.5 vocabulary

VOCABULARY_MEMBERS = ("categories", "classifications", "sources")
MAX_TERMS = 256


@dataclass(frozen=True)
class Vocabulary:
    """The terms entry records may use; ``classifications`` least severe first."""

    categories: tuple[str, ...]
    classifications: tuple[str, ...]
    sources: tuple[str, ...]

    @classmethod
    def from_json(cls, value: object) -> Vocabulary:
        record = _closed(value, VOCABULARY_MEMBERS, "vocabulary")
        groups: list[tuple[str, ...]] = []
        for member in VOCABULARY_MEMBERS:
            terms = record[member]
            if not isinstance(terms, list) or not 1 <= len(terms) <= MAX_TERMS:
                raise MalformedError(f"vocabulary.{member} is not 1..{MAX_TERMS} terms")
            for term in terms:
                if not isinstance(term, str) or not TERM.fullmatch(term):
                    raise MalformedError(f"vocabulary.{member}: ill-formed term {term!r}")
            if len(set(terms)) != len(terms):
                raise MalformedError(f"vocabulary.{member} repeats a term")
            groups.append(tuple(terms))
        return cls(*groups)

    def to_json(self) -> dict[str, list[str]]:
        return {
            "categories": list(self.categories),
            "classifications": list(self.classifications),
            "sources": list(self.sources),
        }

    def check_successor(self, successor: Vocabulary | None) -> None:
        """§5.5 / §13.1 step 2.9: every term kept, the scale's order kept."""
        if successor is None:
            raise RollbackError("the successor root drops the vocabulary")
        for member in VOCABULARY_MEMBERS:
            old: tuple[str, ...] = getattr(self, member)
            new: tuple[str, ...] = getattr(successor, member)
            dropped = [term for term in old if term not in new]
            if dropped:
                raise RollbackError(f"the successor root drops {member} {dropped}")
        positions = [successor.classifications.index(t) for t in self.classifications]
        if positions != sorted(positions):
            raise RollbackError("the successor root reorders the classifications")

    def check_record(self, record: EntryRecord) -> None:
        """§13.6 step 5 for one record: category, classification and source kind."""
        if record.category not in self.categories:
            raise VocabularyError(f"category {record.category!r} is not declared")
        if record.classification not in self.classifications:
            raise VocabularyError(f"classification {record.classification!r} is not declared")
        if record.source_kind not in self.sources:
            raise VocabularyError(f"source {record.source_kind!r} is not declared")


# ---------------------------------------------------------------------------------------------
# §4 keys and signatures, §5 roots

ROLE_NAMES = ("root", "delta", "checkpoint", "timestamp")
MAX_SIDECAR_ENTRIES = 128
MAX_KEYS = 64
ROOT_CAP = 64 * 1024
SIDECAR_CAP = 32 * 1024
HEADER_CAP = 8 * 1024


@dataclass(frozen=True)
class Role:
    keyids: tuple[str, ...]
    threshold: int


@dataclass(frozen=True)
class ListDeclaration:
    hash_type: str
    width: int
    format: str  # "hashes" (absent) or "entries"
    snapshot_every: int
    first_version: int


@dataclass(frozen=True)
class Root:
    version: int
    name: str
    expires: datetime
    keys: Mapping[str, bytes]
    roles: Mapping[str, Role]
    lists: Mapping[str, ListDeclaration]
    max_clock_skew: int
    max_body_bytes: int
    vocabulary: Vocabulary | None


def _parse_role(value: object, name: str, keys: Mapping[str, bytes]) -> Role:
    record = _closed(value, ("keyids", "threshold"), f"role {name}")
    keyids = record["keyids"]
    if not isinstance(keyids, list) or not 1 <= len(keyids) <= MAX_KEYS:
        raise MalformedError(f"role {name}: keyids is not 1..{MAX_KEYS} ids")
    for keyid in keyids:
        if _hex64(keyid, f"role {name} key id") not in keys:
            raise MalformedError(f"role {name}: key {keyid} is not in keys")
    if len(set(keyids)) != len(keyids):
        raise MalformedError(f"role {name} repeats a key id")
    threshold = _integer(record["threshold"], f"role {name} threshold", 1)
    if threshold > len(keyids):
        raise MalformedError(f"role {name}: threshold above its keys")
    return Role(tuple(keyids), threshold)


def _parse_list_declaration(list_id: str, value: object) -> ListDeclaration:
    declaration = _object(value, f"lists.{list_id}")
    what = f"lists.{list_id}"
    _required(
        declaration,
        ("hash_type", "hash_length", "max_distance", "label", "snapshot_every", "first_version"),
        what,
    )
    hash_type = _text(declaration["hash_type"], f"{what}.hash_type")
    width = hash_width(hash_type)
    if _integer(declaration["hash_length"], f"{what}.hash_length") != width:
        raise MalformedError(f"{what}.hash_length is not the width of {hash_type}")
    distance = _integer(declaration["max_distance"], f"{what}.max_distance")
    if distance > (8 * width if hash_type in PERCEPTUAL else 0):
        raise MalformedError(f"{what}.max_distance out of range")
    _text(declaration["label"], f"{what}.label", 128)
    snapshot_every = _integer(declaration["snapshot_every"], f"{what}.snapshot_every", 1)
    first_version = _integer(declaration["first_version"], f"{what}.first_version", 1)
    list_format = "hashes"
    if "format" in declaration:
        if declaration["format"] != "entries":
            raise MalformedError(f"{what}.format {declaration['format']!r} is not 'entries'")
        list_format = "entries"
    return ListDeclaration(hash_type, width, list_format, snapshot_every, first_version)


def parse_root(data: bytes) -> Root:
    """A root (§5), strictly; unknown members where §3.3 allows them are kept by the bytes."""
    document = _type_first(parse_canonical(data), "hashhub.root.v1")
    _required(
        document,
        ("version", "name", "expires", "keys", "roles", "lists", "mirrors", "policy"),
        "root",
    )
    version = _integer(document["version"], "root version", 1)
    name = _text(document["name"], "root name")
    if not _HUB_NAME.fullmatch(name):
        raise MalformedError(f"hub name {name!r} breaks its pattern")
    expires = parse_time(document["expires"])

    keys_json = _object(document["keys"], "keys")
    if len(keys_json) > MAX_KEYS:
        raise MalformedError(f"more than {MAX_KEYS} keys")
    keys: dict[str, bytes] = {}
    for keyid, key in keys_json.items():
        _hex64(keyid, "key id")
        record = _closed(key, ("keytype", "public"), f"key {keyid}")
        if record["keytype"] != "ed25519":
            raise MalformedError(f"key {keyid}: unknown keytype {record['keytype']!r}")
        public = bytes.fromhex(_hex64(record["public"], f"key {keyid} public"))
        if hashlib.sha256(public).hexdigest() != keyid:
            raise MalformedError(f"key id {keyid} is not the SHA-256 of its key")
        keys[keyid] = public

    roles_json = _object(document["roles"], "roles")
    if set(roles_json) != set(ROLE_NAMES):
        raise MalformedError(f"roles {sorted(roles_json)} are not exactly {list(ROLE_NAMES)}")
    roles = {name: _parse_role(roles_json[name], name, keys) for name in ROLE_NAMES}
    if roles["checkpoint"].threshold + roles["timestamp"].threshold > 64:
        raise MalformedError("checkpoint and timestamp thresholds add up to more than 64")

    lists_json = _object(document["lists"], "lists")
    if len(lists_json) > 1024:
        raise MalformedError("more than 1024 lists")
    lists = {
        check_list_id(list_id): _parse_list_declaration(list_id, value)
        for list_id, value in lists_json.items()
    }

    mirrors = document["mirrors"]
    if not isinstance(mirrors, list) or len(mirrors) > 64:
        raise MalformedError("mirrors is not an array of at most 64")
    for mirror in mirrors:
        if not _text(mirror, "mirror").startswith(("https://", "http://")):
            raise MalformedError(f"mirror {mirror!r} is not an http(s) URL")

    policy = _object(document["policy"], "policy")
    _required(
        policy,
        ("max_checkpoint_age", "max_clock_skew", "min_poll_interval", "max_body_bytes"),
        "policy",
    )
    _integer(policy["max_checkpoint_age"], "max_checkpoint_age", 1)
    max_clock_skew = _integer(policy["max_clock_skew"], "max_clock_skew", 0)
    _integer(policy["min_poll_interval"], "min_poll_interval", 1)
    max_body_bytes = _integer(policy["max_body_bytes"], "max_body_bytes", 1)

    vocabulary = None
    if "vocabulary" in document:
        vocabulary = Vocabulary.from_json(document["vocabulary"])
    elif any(declaration.format == "entries" for declaration in lists.values()):
        raise MalformedError("a list of the entries format and no vocabulary")

    return Root(
        version, name, expires, keys, roles, lists, max_clock_skew, max_body_bytes, vocabulary
    )


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


def parse_sidecar(data: bytes) -> tuple[Signature, ...]:
    """A signature sidecar (§4.2), a closed record of closed entries."""
    document = _closed(parse_canonical(data), ("signatures",), "sidecar")
    entries = document["signatures"]
    if not isinstance(entries, list) or len(entries) > MAX_SIDECAR_ENTRIES:
        raise MalformedError(f"signatures is not an array of at most {MAX_SIDECAR_ENTRIES}")
    signatures = []
    for entry in entries:
        record = _closed(entry, ("keyid", "sig"), "signature entry")
        keyid = _hex64(record["keyid"], "signature key id")
        text = _text(record["sig"], "sig")
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise MalformedError("sig is not base64") from exc
        if len(raw) != 64 or base64.b64encode(raw).decode("ascii") != text:
            raise MalformedError("sig is not canonical base64 of 64 bytes")
        signatures.append(Signature(keyid, raw))
    return tuple(signatures)


def role_satisfied(root: Root, role: str, data: bytes, signatures: Sequence[Signature]) -> bool:
    """§4.3: at least ``threshold`` distinct key ids of the role sign ``data``."""
    wanted = root.roles[role]
    valid: set[str] = set()
    for signature in signatures:
        if signature.keyid not in wanted.keyids or signature.keyid in valid:
            continue
        public = root.keys[signature.keyid]
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(signature.sig, data)
        except InvalidSignature:
            continue
        valid.add(signature.keyid)
    return len(valid) >= wanted.threshold


def _cap(data: bytes, cap: int, what: str) -> None:
    if len(data) > cap:
        raise LimitError(f"{what} is over its cap of {cap} bytes")


def pin_root(data: bytes, sidecar: bytes, file_version: int) -> Root:
    """§13.1 step 1 (without a SHA-256 pin): the one document parsed before its signature."""
    _cap(data, ROOT_CAP, "root")
    _cap(sidecar, SIDECAR_CAP, "root sidecar")
    signatures = parse_sidecar(sidecar)
    root = parse_root(data)
    if not role_satisfied(root, "root", data, signatures):
        raise SignatureError(f"root v{root.version} lacks a threshold of its own root role")
    if root.version != file_version:
        raise RollbackError(f"root/{file_version}.json claims version {root.version}")
    return root


def accept_successor(trusted: Root, data: bytes, sidecar: bytes) -> Root:
    """§13.1 step 2, items 1–9, in the order given there."""
    _cap(data, ROOT_CAP, "root")
    _cap(sidecar, SIDECAR_CAP, "root sidecar")
    signatures = parse_sidecar(sidecar)
    if not role_satisfied(trusted, "root", data, signatures):
        raise SignatureError(f"root v{trusted.version + 1}: below root v{trusted.version}'s role")
    successor = parse_root(data)
    if successor.version != trusted.version + 1:
        raise RollbackError(f"root version {successor.version}, not {trusted.version + 1}")
    if not role_satisfied(successor, "root", data, signatures):
        raise SignatureError(f"root v{successor.version}: below its own root role")
    if successor.name != trusted.name:
        raise ConsistencyError(f"hub renamed from {trusted.name!r} to {successor.name!r}")
    for list_id, old in trusted.lists.items():
        new = successor.lists.get(list_id)
        if new is None:
            continue
        if new.hash_type != old.hash_type:
            raise ConsistencyError(f"list {list_id} changes its hash type")
        if new.format != old.format:
            raise ConsistencyError(f"list {list_id} changes its format")
    for list_id, old in trusted.lists.items():
        new = successor.lists.get(list_id)
        if new is not None and new.first_version < old.first_version:
            raise RollbackError(f"list {list_id}: first_version goes down")
    if trusted.vocabulary is not None:
        trusted.vocabulary.check_successor(successor.vocabulary)
    return successor


# ---------------------------------------------------------------------------------------------
# §7.3 entry records

REASONS = frozenset({"changed", "withdrawn", "expired", "retracted", "disputed", "upstream"})
NEVER = "-"


@dataclass(frozen=True)
class EntryRecord:
    """One listed item's record in one list (§7.3); ``expires`` None is ``-``."""

    hash_hex: str
    entry: str
    category: str
    classification: str
    source_kind: str
    source_ref: str | None
    first_seen: datetime
    expires: datetime | None

    @property
    def source(self) -> str:
        return (
            self.source_kind if self.source_ref is None else f"{self.source_kind}:{self.source_ref}"
        )

    @property
    def line(self) -> str:
        expires = NEVER if self.expires is None else format_time(self.expires)
        return " ".join(
            (
                self.hash_hex,
                self.entry,
                self.category,
                self.classification,
                self.source,
                format_time(self.first_seen),
                expires,
            )
        )

    @property
    def key(self) -> bytes:
        """The bytes records are ordered by (§7.4, §8.1)."""
        return self.line.encode("ascii")

    def expired_at(self, moment: datetime) -> bool:
        """From ``expires`` on the entry no longer matches (§7.3)."""
        return self.expires is not None and moment >= self.expires


def max_record_length(width: int) -> int:
    """§7.3: the longest each field can be, with its spaces."""
    return 2 * width + 431


def parse_record(line: str, width: int) -> EntryRecord:
    """One record line, without its line feed, or MalformedError."""
    if len(line) > max_record_length(width):
        raise MalformedError("record longer than its maximum")
    fields = line.split(" ")
    if len(fields) != 7:
        raise MalformedError(f"record of {len(fields)} fields, not 7")
    hash_hex, entry, category, classification, source, first_seen_text, expires_text = fields
    if not re.fullmatch(f"[0-9a-f]{{{2 * width}}}", hash_hex):
        raise MalformedError(f"hash is not {2 * width} lower-case hex digits")
    if not TERM.fullmatch(entry):
        raise MalformedError(f"entry id {entry!r} breaks its pattern")
    for what, term in (("category", category), ("classification", classification)):
        if not TERM.fullmatch(term):
            raise MalformedError(f"{what} {term!r} is not a term")
    kind, colon, ref = source.partition(":")
    if not TERM.fullmatch(kind):
        raise MalformedError(f"source kind {kind!r} is not a term")
    if colon and not SOURCE_REF.fullmatch(ref):
        raise MalformedError(f"source reference {ref!r} breaks its pattern")
    first_seen = parse_time(first_seen_text)
    expires = None if expires_text == NEVER else parse_time(expires_text)
    if expires is not None and expires <= first_seen:
        raise MalformedError("expires is not after first_seen")
    record = EntryRecord(
        hash_hex,
        entry,
        category,
        classification,
        kind,
        ref if colon else None,
        first_seen,
        expires,
    )
    if record.line != line:
        raise MalformedError("record is not in its one spelling")
    return record


def record_from_fields(fields: Mapping[str, Any], width: int) -> EntryRecord:
    """Build a record from its fields (as the vectors give them) and check it by §7.3."""
    expires = fields["expires"]
    line = " ".join(
        (
            fields["hash_hex"],
            fields["entry"],
            fields["category"],
            fields["classification"],
            fields["source"],
            fields["first_seen"],
            NEVER if expires is None else expires,
        )
    )
    return parse_record(line, width)


# ---------------------------------------------------------------------------------------------
# §7.4 entries bodies

BODY_V2 = "hashhub.body.v2"


@dataclass(frozen=True)
class Removal:
    record: EntryRecord
    reason: str


@dataclass(frozen=True)
class EntriesBody:
    hash_type: str
    removals: tuple[Removal, ...]
    additions: tuple[EntryRecord, ...]

    def to_bytes(self) -> bytes:
        lines = [f"{BODY_V2} {self.hash_type}"]
        lines += [f"-{r.record.line} {r.reason}" for r in self.removals]
        lines += [f"+{record.line}" for record in self.additions]
        return ("\n".join(lines) + "\n").encode("ascii")


def make_entries_body(
    hash_type: str, removals: Iterable[Removal], additions: Iterable[EntryRecord]
) -> EntriesBody:
    """A body for these changes, in the one order §7.4 allows, checked by its rules."""
    body = EntriesBody(
        hash_type,
        tuple(sorted(removals, key=lambda r: r.record.key)),
        tuple(sorted(additions, key=lambda record: record.key)),
    )
    return parse_entries_body(body.to_bytes(), hash_type)


def parse_entries_body(data: bytes, hash_type: str) -> EntriesBody:
    """§7.4, everything that needs neither header nor state, or BodyRuleError."""
    width = hash_width(hash_type)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise BodyRuleError("body is not ASCII") from exc
    if not text.endswith("\n"):
        raise BodyRuleError("body does not end with LF")
    lines = text[:-1].split("\n")
    if lines[0] != f"{BODY_V2} {hash_type}":
        raise BodyRuleError(f"first line is not {BODY_V2!r} and the list's hash type")
    removals: list[Removal] = []
    additions: list[EntryRecord] = []
    for line in lines[1:]:
        sign, rest = line[:1], line[1:]
        try:
            if sign == "-":
                if additions:
                    raise BodyRuleError("a removal after an addition")
                record_text, _, reason = rest.rpartition(" ")
                if reason not in REASONS:
                    raise BodyRuleError(f"unknown removal reason {reason!r}")
                removals.append(Removal(parse_record(record_text, width), reason))
            elif sign == "+":
                additions.append(parse_record(rest, width))
            else:
                raise BodyRuleError(f"line neither removal nor addition: {line[:20]!r}")
        except BodyRuleError:
            raise
        except MalformedError as exc:
            raise BodyRuleError(f"ill-formed record: {exc}") from exc
    _check_ascending([r.record for r in removals], "removals")
    _check_ascending(additions, "additions")
    removed_keys = {r.record.key for r in removals}
    if any(record.key in removed_keys for record in additions):
        raise BodyRuleError("a record both removed and added")
    for group, records in (("removed", [r.record for r in removals]), ("added", additions)):
        if len({record.entry for record in records}) != len(records):
            raise BodyRuleError(f"an entry id {group} twice")
        if len({record.hash_hex for record in records}) != len(records):
            raise BodyRuleError(f"a hash {group} twice")
    added_by_entry = {record.entry: record for record in additions}
    for removal in removals:
        readded = added_by_entry.get(removal.record.entry)
        if (readded is not None) != (removal.reason == "changed"):
            raise BodyRuleError(
                f"entry {removal.record.entry}: reason {removal.reason!r}, "
                f"{'re-added' if readded else 'not re-added'} in this body"
            )
        if readded is not None and readded.first_seen != removal.record.first_seen:
            raise BodyRuleError(f"entry {removal.record.entry}: a change moves first_seen")
    return EntriesBody(hash_type, tuple(removals), tuple(additions))


def _check_ascending(records: Sequence[EntryRecord], what: str) -> None:
    for before, after in itertools.pairwise(records):
        if not before.key < after.key:
            raise BodyRuleError(f"{what} not strictly ascending")


def check_body_against_header(body: EntriesBody, vocabulary: Vocabulary, created: datetime) -> None:
    """§13.6 steps 5 and 6: the rules that need the header and the root it names."""
    for record in body.additions:
        vocabulary.check_record(record)
    for record in body.additions:
        if record.first_seen > created:
            raise BodyRuleError(f"entry {record.entry}: first_seen after the header's created")
        if record.expires is not None and record.expires <= created:
            raise BodyRuleError(f"entry {record.entry}: added already expired")
    for removal in body.removals:
        expires = removal.record.expires
        if removal.reason == "expired" and (expires is None or expires > created):
            raise BodyRuleError(f"entry {removal.record.entry}: removed as expired too early")


# ---------------------------------------------------------------------------------------------
# §8.1 state and snapshot, §13.7 apply

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class StateDigest:
    count: int
    sha256: str

    @classmethod
    def from_json(cls, value: object, what: str) -> StateDigest:
        record = _closed(value, ("count", "sha256"), what)
        return cls(_integer(record["count"], f"{what}.count"), _hex64(record["sha256"], what))


@dataclass(frozen=True)
class EntriesState:
    """The set of an entries list's records, indexed by hash and by entry id."""

    by_hash: Mapping[str, EntryRecord] = field(default_factory=dict)

    @property
    def records(self) -> tuple[EntryRecord, ...]:
        return tuple(sorted(self.by_hash.values(), key=lambda record: record.key))

    def snapshot(self) -> bytes:
        return b"".join(record.key + b"\n" for record in self.records)

    def digest(self) -> StateDigest:
        return StateDigest(len(self.by_hash), hashlib.sha256(self.snapshot()).hexdigest())

    @classmethod
    def holding(cls, records: Iterable[EntryRecord]) -> EntriesState:
        """A state holding these records; each hash and entry id at most once (§7.3)."""
        by_hash: dict[str, EntryRecord] = {}
        entries: set[str] = set()
        for record in records:
            if record.hash_hex in by_hash or record.entry in entries:
                raise MalformedError(f"entry {record.entry}: a hash or entry id held twice")
            by_hash[record.hash_hex] = record
            entries.add(record.entry)
        return cls(by_hash)

    def apply(self, body: EntriesBody) -> EntriesState:
        """§13.7 step 2 for one body: a new state, this one untouched."""
        by_hash = dict(self.by_hash)
        for removal in body.removals:
            held = by_hash.get(removal.record.hash_hex)
            if held != removal.record:
                raise StateMismatchError(f"entry {removal.record.entry}: removed record not held")
            del by_hash[removal.record.hash_hex]
        entries = {record.entry for record in by_hash.values()}
        for record in body.additions:
            if record.hash_hex in by_hash:
                raise StateMismatchError(f"entry {record.entry}: its hash is already held")
            if record.entry in entries:
                raise StateMismatchError(f"entry {record.entry}: already held")
            by_hash[record.hash_hex] = record
            entries.add(record.entry)
        return EntriesState(by_hash)


def snapshot_cap(count: int, width: int) -> int:
    """§11 / §13.5 step 1 for an entries list."""
    return count * (max_record_length(width) + 1)


def verify_entries_snapshot(
    data: bytes, result_state: StateDigest, width: int, vocabulary: Vocabulary
) -> EntriesState:
    """§13.5 steps 1–3 for an entries list; the state the snapshot holds."""
    if len(data) > snapshot_cap(result_state.count, width):
        raise LimitError("snapshot longer than its header's count of records can be")
    if hashlib.sha256(data).hexdigest() != result_state.sha256:
        raise ConsistencyError("snapshot SHA-256 is not the header's result_state")
    if data and not data.endswith(b"\n"):
        raise MalformedError("snapshot does not end with LF")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise MalformedError("snapshot is not ASCII") from exc
    records = [parse_record(line, width) for line in text.split("\n")[:-1]] if text else []
    for record in records:
        vocabulary.check_record(record)
    for before, after in itertools.pairwise(records):
        if not before.key < after.key:
            raise MalformedError("snapshot records not strictly ascending")
    state = EntriesState.holding(records)
    if len(records) != result_state.count:
        raise ConsistencyError(
            f"snapshot holds {len(records)} records, its header {result_state.count}"
        )
    return state


# ---------------------------------------------------------------------------------------------
# §7.1 headers, §9.1 leaves and roots (RFC 9162), and an update of one entries list

ZERO_PREV = "0" * 64


@dataclass(frozen=True)
class BodyReference:
    sha256: str
    length: int
    adds: int
    removes: int


@dataclass(frozen=True)
class Header:
    list_id: str
    version: int
    prev: str
    root_version: int
    created: datetime
    body: BodyReference
    base_state: StateDigest
    result_state: StateDigest


def parse_header(data: bytes) -> Header:
    """A delta header (§7.1); the arithmetic of its links is ConsistencyError."""
    document = _type_first(parse_canonical(data), "hashhub.delta.v1")
    _required(
        document,
        (
            "list",
            "version",
            "prev",
            "root_version",
            "created",
            "body",
            "base_state",
            "result_state",
        ),
        "header",
    )
    list_id = check_list_id(document["list"])
    version = _integer(document["version"], "header version", 1)
    prev = _hex64(document["prev"], "prev")
    root_version = _integer(document["root_version"], "root_version", 1)
    created = parse_time(document["created"])
    body_json = _closed(document["body"], ("sha256", "length", "adds", "removes"), "body")
    body = BodyReference(
        _hex64(body_json["sha256"], "body.sha256"),
        _integer(body_json["length"], "body.length", 1),
        _integer(body_json["adds"], "body.adds"),
        _integer(body_json["removes"], "body.removes"),
    )
    base_state = StateDigest.from_json(document["base_state"], "base_state")
    result_state = StateDigest.from_json(document["result_state"], "result_state")
    if (version == 1) != (prev == ZERO_PREV):
        raise ConsistencyError("prev is 64 zeros exactly for version 1")
    if result_state.count != base_state.count + body.adds - body.removes:
        raise ConsistencyError("result_state.count breaks the count arithmetic")
    return Header(list_id, version, prev, root_version, created, body, base_state, result_state)


def leaf_hash(header_bytes: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + header_bytes).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return hashlib.sha256(
        b"\x01" + merkle_root(leaves[:split]) + merkle_root(leaves[split:])
    ).digest()


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes


def read_checkpoint(text: str) -> Checkpoint:
    """The origin, size and root hash a checkpoint note opens with.

    Its signature lines are not checked here: §9.2 and §13.2 steps 4–7 are outside what this
    reader was written from, and the vectors' word is taken for them.
    """
    lines = text.split("\n")
    if len(lines) < 4 or not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
        raise MalformedError("checkpoint does not open with origin, size and root hash")
    try:
        root_hash = base64.b64decode(lines[2], validate=True)
    except binascii.Error as exc:
        raise MalformedError("checkpoint root hash is not base64") from exc
    if len(root_hash) != 32:
        raise MalformedError("checkpoint root hash is not 32 bytes")
    return Checkpoint(lines[0], int(lines[1]), root_hash)


class EntriesListUpdate:
    """One update of one entries list from nothing (§13.4–§13.7), stage by stage.

    Every stage either advances the update or raises and leaves it as it was.
    """

    def __init__(self, roots: Sequence[Root], list_id: str, now: datetime) -> None:
        self.roots = {root.version: root for root in roots}
        self.pinned = min(self.roots)
        self.newest = self.roots[max(self.roots)]
        self.list_id = check_list_id(list_id)
        self.now = now
        self.checkpoint: Checkpoint | None = None
        self.headers: list[Header] = []
        self.leaves: list[bytes] = []
        self.base_version = 0
        self.base_state = EntriesState()
        self.bodies: dict[int, EntriesBody] = {}

    def begin(self, checkpoint_text: str) -> None:
        """§13.1 step 3 and §13.2 steps 1 and 3 (see :func:`read_checkpoint`)."""
        if not self.now < self.newest.expires:
            raise ExpiredError(f"root v{self.newest.version} has expired")
        if self.list_id not in self.newest.lists:
            raise UnknownListError(f"list {self.list_id} is not declared")
        checkpoint = read_checkpoint(checkpoint_text)
        if checkpoint.origin != f"{self.newest.name}/lists/{self.list_id}":
            raise ConsistencyError(f"checkpoint origin {checkpoint.origin!r}")
        self.checkpoint = checkpoint

    def add_header(self, data: bytes, sidecar: bytes) -> None:
        """§13.4 steps 1–14 for the next header (a single update from version 0)."""
        assert self.checkpoint is not None, "begin() first"
        expected = len(self.headers) + 1
        previous = self.headers[-1] if self.headers else None
        _cap(data, HEADER_CAP, "header")
        _cap(sidecar, SIDECAR_CAP, "header sidecar")
        if expected > self.checkpoint.size:
            raise ConsistencyError(f"header {expected} beyond the checkpoint's size")
        floor = previous.root_version if previous else 1
        signatures = parse_sidecar(sidecar)
        signer = next(
            (
                root
                for version, root in sorted(self.roots.items(), reverse=True)
                if version >= floor and role_satisfied(root, "delta", data, signatures)
            ),
            None,
        )
        if signer is None:
            raise SignatureError(f"header {expected}: no trusted delta role signs it")
        header = parse_header(data)
        if header.root_version != signer.version:
            if header.root_version > self.newest.version:
                raise MissingFileError(f"root/{self.newest.version + 1}.json")
            named = self.roots.get(header.root_version)
            if named is None or header.root_version < floor:
                raise RollbackError(f"header names root v{header.root_version}")
            if not role_satisfied(named, "delta", data, signatures):
                raise SignatureError("the root the header names does not sign it")
        if header.list_id != self.list_id:
            raise ConsistencyError(f"header of list {header.list_id}")
        if header.version != expected:
            raise ConsistencyError(f"header version {header.version}, expected {expected}")
        named_root = self.roots[header.root_version]
        if self.list_id not in named_root.lists:
            raise UnknownListError(f"list {self.list_id} not in root v{header.root_version}")
        for version, root in self.roots.items():
            older = self.roots.get(version - 1)
            if (
                version > header.root_version
                and older is not None
                and root.roles["delta"] != older.roles["delta"]
                and self.list_id in root.lists
                and root.lists[self.list_id].first_version <= expected
            ):
                raise SignatureError(f"header {expected}: signed by a retired delta role")
        prev = self.leaves[-1].hex() if self.leaves else ZERO_PREV
        if header.prev != prev:
            raise ConsistencyError(f"header {expected}: prev is not header {expected - 1}'s leaf")
        base = previous.result_state if previous else StateDigest(0, EMPTY_SHA256)
        if header.base_state != base:
            raise ConsistencyError(f"header {expected}: base_state is not the previous result")
        if previous is not None and header.created < previous.created:
            raise RollbackError(f"header {expected}: created goes backwards")
        if header.created > self.now + timedelta(seconds=self.newest.max_clock_skew):
            raise FreezeError(f"header {expected}: created in the future")
        if header.body.length > named_root.max_body_bytes:
            raise LimitError(f"header {expected}: body larger than max_body_bytes")
        leaves = [*self.leaves, leaf_hash(data)]
        if expected == self.checkpoint.size and merkle_root(leaves) != self.checkpoint.root_hash:
            raise ConsistencyError("headers do not reproduce the checkpoint's root")
        self.headers.append(header)
        self.leaves = leaves

    def _declaration(self, header: Header) -> tuple[ListDeclaration, Vocabulary]:
        root = self.roots[header.root_version]
        declaration = root.lists[self.list_id]
        if declaration.format != "entries" or root.vocabulary is None:
            raise ConsistencyError(f"list {self.list_id} is not an entries list")
        return declaration, root.vocabulary

    def _headers_done(self) -> None:
        assert self.checkpoint is not None, "begin() first"
        if len(self.headers) != self.checkpoint.size:
            raise MissingFileError(f"lists/{self.list_id}/delta/{len(self.headers) + 1}.json")

    def add_snapshot(self, version: int, data: bytes) -> None:
        """§13.5 for an entries list: the snapshot of ``version`` becomes the base."""
        self._headers_done()
        header = self.headers[version - 1]
        declaration, vocabulary = self._declaration(header)
        state = verify_entries_snapshot(data, header.result_state, declaration.width, vocabulary)
        self.base_version, self.base_state = version, state

    def add_body(self, version: int, data: bytes) -> None:
        """§13.6 steps 1–6 for the body of ``version``."""
        self._headers_done()
        header = self.headers[version - 1]
        declaration, vocabulary = self._declaration(header)
        if len(data) != header.body.length:
            raise LimitError(f"body {version} is not {header.body.length} bytes")
        if hashlib.sha256(data).hexdigest() != header.body.sha256:
            raise ConsistencyError(f"body {version}: SHA-256 is not the header's")
        body = parse_entries_body(data, declaration.hash_type)
        if (len(body.additions), len(body.removals)) != (header.body.adds, header.body.removes):
            raise ConsistencyError(f"body {version}: counts are not the header's")
        check_body_against_header(body, vocabulary, header.created)
        self.bodies[version] = body

    def apply(self) -> EntriesState:
        """§13.7: every body after the base, each result_state checked; nothing is kept here."""
        expected_base = (
            self.headers[self.base_version - 1].result_state
            if self.base_version
            else StateDigest(0, EMPTY_SHA256)
        )
        if self.base_state.digest() != expected_base:
            raise StateMismatchError("the base state is not the base the headers expect")
        state = self.base_state
        for header in self.headers[self.base_version :]:
            body = self.bodies.get(header.version)
            if body is None:
                raise MissingFileError(f"lists/{self.list_id}/body/{header.body.sha256}.txt")
            state = state.apply(body)
            if state.digest() != header.result_state:
                raise ConsistencyError(f"state after version {header.version} is not its result")
        return state
