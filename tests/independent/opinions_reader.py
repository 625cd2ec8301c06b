"""A second, independent reader of hashhub's opinion summaries, written from PROTOCOL.md alone.

An opinion summary (§10.7) is the hub's account of what the platforms said of a list's
entries in their acks. The hub signs it only indirectly — header v names its SHA-256 and
length — so two things must hold for anyone to believe it: it obeys the rules of §10.7 against
the header, the root and the state at v, and its voices are exactly what the signed acks of
its cut give when folded again. This module checks both, sharing nothing with the ``protocol``
package; where it needs canonical JSON, roots, headers and entries states it uses the other
independent reader, :mod:`tests.independent.entries_reader`, written from the same text.

What it covers, by section of PROTOCOL.md:

- §10.1–§10.4 acks: the parse rules, the sidecar under the enrolled key (threshold 1) and the
  ``cosignature/v1`` line (§9.2, §10.3), with Ed25519 through ``cryptography``;
- §7.1 the header's ``opinions`` member, §5.4 ``dispute_threshold`` (absent: 2);
- §10.7 verification rules 1–7, and the fold an auditor repeats over the acks.

Errors are those of :mod:`tests.independent.entries_reader` (§14). A summary whose voices are
not the fold is not an error of §14 but an auditor's finding about the hub (§10.7): the fold
reports findings as text, and only acks that cannot be folded at all raise :class:`FoldError`.

Not covered: a node's key periods (§10.4.1), the hub's own rules on acks (§10.5), and the
checks an auditor makes across successive summaries of one list (§10.7, last paragraph).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.independent.entries_reader import (
    TERM,
    ConsistencyError,
    EntriesState,
    Header,
    LimitError,
    MalformedError,
    ProtocolError,
    SignatureError,
    StateDigest,
    WrongTypeError,
    check_list_id,
    parse_canonical,
    parse_header,
    parse_root,
    parse_sidecar,
    parse_time,
    verify_entries_snapshot,
)

MAX_INTEGER = 2**53 - 1
MAX_OPINIONS = 10_000
MAX_HASH_COUNTERS = 10_000
MAX_COSIGNATURE = 512
DEFAULT_DISPUTE_THRESHOLD = 2

_HEX64 = re.compile(r"[0-9a-f]{64}")
_NODE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_OPERATOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_COUNTER_KEY = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}|[0-9a-f]{64}")

REASONS: Mapping[str, frozenset[str]] = {
    "confirmed": frozenset({"actioned", "blocked"}),
    "disputed": frozenset({"not_the_content", "benign", "other"}),
}
POSITIONS = frozenset({*REASONS, "none"})
COUNTERS = ("checked", "matched", "actioned", "blocked", "false_positive")
HASH_COUNTERS = frozenset({"matched", "actioned", "blocked", "false_positive"})
KEPT_REASONS = frozenset({"allowlist", "disabled", "quarantine", "disputed"})
ACK_MEMBERS = ("_type", "node", "list", "seq", "sent", "applied", "cosignature", "counts")
ACK_OPTIONAL = ("opinions", "kept")


class FoldError(Exception):
    """Acks that cannot be folded at all: two different acks of one node under one ``seq``."""


# ---------------------------------------------------------------------------------------------
# small strict readers (§3.2, §3.3)


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedError(f"{what} is not an object")
    return value


def _closed(value: object, members: Iterable[str], what: str) -> dict[str, Any]:
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


def _string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise MalformedError(f"{what} is not a string")
    return value


def _node_id(value: object, what: str) -> str:
    """§10.1: a node id, ``[a-z0-9][a-z0-9._-]{0,63}`` without ``..``."""
    text = _string(value, what)
    if not _NODE_ID.fullmatch(text) or ".." in text:
        raise MalformedError(f"{what} {text!r} breaks the node id pattern")
    return text


def _entry_id(value: object, what: str) -> str:
    text = _string(value, what)
    if not TERM.fullmatch(text):
        raise MalformedError(f"{what} {text!r} is not an entry id")
    return text


def _canonical_base64(text: str, length: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedError(f"{what} is not base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedError(f"{what} is not canonical base64")
    if len(raw) != length:
        raise MalformedError(f"{what} is {len(raw)} bytes, not {length}")
    return raw


def _type_first(value: object, expected: str) -> dict[str, Any]:
    """§3.3: ``_type`` before anything else."""
    document = _object(value, "document")
    if "_type" not in document:
        raise MalformedError("document has no _type")
    if document["_type"] != expected:
        raise WrongTypeError(f"_type {document['_type']!r}, expected {expected!r}")
    return document


# ---------------------------------------------------------------------------------------------
# §10.1–§10.4 acks


@dataclass(frozen=True)
class Cosignature:
    """The parts of a ``cosignature/v1`` line (§10.3): who, which key, when, and the signature."""

    name: str
    key_id: bytes
    time: int
    signature: bytes


@dataclass(frozen=True)
class Opinion:
    """A platform's position on one entry, as one ack states it (§10.1)."""

    position: str
    reason: str | None


@dataclass(frozen=True)
class Ack:
    """An ack that passed §10.2: what the fold and an auditor need of it."""

    node: str
    list_id: str
    seq: int
    sent: datetime
    version: int
    checkpoint_root: bytes
    state: StateDigest
    cosignature: Cosignature
    counts: Mapping[str, int]
    hashes: Mapping[str, Mapping[str, int]]
    opinions: Mapping[str, Opinion]
    kept: Mapping[str, int]
    extra: Mapping[str, Any]


def note_key_id(name: str, algorithm: int, public: bytes) -> bytes:
    """§9.2: SHA-256(name ‖ 0x0A ‖ alg ‖ raw public key)[0:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([algorithm]) + public).digest()[:4]


def parse_cosignature(line: str) -> Cosignature:
    """§10.2 rule 10 / §10.3: one ``cosignature/v1`` line without its LF."""
    if len(line) > MAX_COSIGNATURE:
        raise MalformedError(f"cosignature longer than {MAX_COSIGNATURE} characters")
    if not line.startswith("\u2014 "):
        raise MalformedError("cosignature does not start with an em dash and a space")
    parts = line[2:].split(" ")
    if len(parts) != 2 or not parts[0]:
        raise MalformedError("cosignature is not a key name and base64")
    name, encoded = parts
    if "+" in name or any(character.isspace() for character in name):
        raise MalformedError(f"cosignature key name {name!r} is not a key name")
    raw = _canonical_base64(encoded, 76, "cosignature")
    time = int.from_bytes(raw[4:12], "big")
    if time >= 2**63:
        raise MalformedError("cosignature time is not below 2^63")
    return Cosignature(name, raw[:4], time, raw[12:])


def _parse_opinions(value: object) -> dict[str, Opinion]:
    """§10.2 rule 11."""
    record = _object(value, "opinions")
    if len(record) > MAX_OPINIONS:
        raise MalformedError(f"more than {MAX_OPINIONS} opinions")
    opinions: dict[str, Opinion] = {}
    for entry, item in record.items():
        _entry_id(entry, "opinion key")
        opinion = _object(item, f"opinion on {entry}")
        position = opinion.get("position")
        if not isinstance(position, str) or position not in POSITIONS:
            raise MalformedError(f"opinion on {entry}: unknown position {position!r}")
        if position == "none":
            _closed(opinion, ("position",), f"opinion on {entry}")
            opinions[entry] = Opinion("none", None)
            continue
        _closed(opinion, ("position", "reason"), f"opinion on {entry}")
        reason = opinion["reason"]
        if not isinstance(reason, str) or reason not in REASONS[position]:
            raise MalformedError(f"opinion on {entry}: {reason!r} is not a reason of {position}")
        opinions[entry] = Opinion(position, reason)
    return opinions


def _parse_kept(value: object) -> dict[str, int]:
    """§10.2 rule 12."""
    record = _object(value, "kept")
    unknown = set(record) - KEPT_REASONS
    if unknown:
        raise MalformedError(f"kept holds {sorted(unknown)}")
    return {reason: _integer(count, f"kept.{reason}") for reason, count in record.items()}


def parse_ack(data: bytes) -> Ack:
    """§10.2 rules 1–12, in order; the sidecar must have been checked first (§10.4)."""
    document = _type_first(parse_canonical(data), "hashhub.ack.v1")
    missing = [name for name in ACK_MEMBERS if name not in document]
    if missing:
        raise MalformedError(f"ack lacks {missing}")
    # Rule 3: the JSON type of every member of §10.1, down to the closed records.
    for name in ("node", "list", "sent", "cosignature"):
        _string(document[name], name)
    if not isinstance(document["seq"], int) or isinstance(document["seq"], bool):
        raise MalformedError("seq is not an integer")
    applied = _closed(document["applied"], ("version", "checkpoint_root", "state"), "applied")
    counts = _closed(document["counts"], (*COUNTERS, "hashes"), "counts")
    # Rule 4.
    node = _node_id(document["node"], "node")
    list_id = check_list_id(document["list"])
    # Rule 5.
    seq = _integer(document["seq"], "seq", 1)
    version = _integer(applied["version"], "applied.version", 1)
    totals = {name: _integer(counts[name], f"counts.{name}") for name in COUNTERS}
    # Rule 6.
    sent = parse_time(document["sent"])
    # Rule 7.
    root = _canonical_base64(
        _string(applied["checkpoint_root"], "checkpoint_root"), 32, "applied.checkpoint_root"
    )
    state = StateDigest.from_json(applied["state"], "applied.state")
    # Rules 8 and 9.
    hashes_json = _object(counts["hashes"], "counts.hashes")
    if len(hashes_json) > MAX_HASH_COUNTERS:
        raise MalformedError(f"more than {MAX_HASH_COUNTERS} per-hash counters")
    hashes: dict[str, dict[str, int]] = {}
    for key, value in hashes_json.items():
        if not _COUNTER_KEY.fullmatch(key):
            raise MalformedError(f"counts.hashes key {key!r} is not a hash of §6.1")
        counters = _object(value, f"counts.hashes.{key}")
        unknown = set(counters) - HASH_COUNTERS
        if unknown:
            raise MalformedError(f"counts.hashes.{key} holds {sorted(unknown)}")
        hashes[key] = {
            name: _integer(n, f"counts.hashes.{key}.{name}") for name, n in counters.items()
        }
    # Rule 10.
    cosignature = parse_cosignature(document["cosignature"])
    # Rules 11 and 12.
    opinions = _parse_opinions(document["opinions"]) if "opinions" in document else {}
    kept = _parse_kept(document["kept"]) if "kept" in document else {}
    known = {*ACK_MEMBERS, *ACK_OPTIONAL}
    extra = {name: value for name, value in document.items() if name not in known}
    return Ack(
        node,
        list_id,
        seq,
        sent,
        version,
        root,
        state,
        cosignature,
        totals,
        hashes,
        opinions,
        kept,
        extra,
    )


def verify_ack(data: bytes, sidecar: bytes, node_public: bytes, hub_name: str) -> Ack:
    """§10.4 steps 1–4, in that order, under the node's enrolled key."""
    keyid = hashlib.sha256(node_public).hexdigest()
    key = Ed25519PublicKey.from_public_bytes(node_public)
    signed = False
    for signature in parse_sidecar(sidecar):
        if signature.keyid != keyid:
            continue
        try:
            key.verify(signature.sig, data)
        except InvalidSignature:
            continue
        signed = True
    if not signed:
        raise SignatureError(f"no valid signature by the enrolled key {keyid[:16]}… on the ack")
    ack = parse_ack(data)
    cosignature = ack.cosignature
    if cosignature.name != ack.node:
        raise ConsistencyError(f"co-signed as {cosignature.name!r}, not node {ack.node!r}")
    if cosignature.key_id != note_key_id(ack.node, 0x04, node_public):
        raise SignatureError(f"co-signature key id is not node {ack.node}'s note key id")
    checkpoint = (
        f"{hub_name}/lists/{ack.list_id}\n{ack.version}\n"
        f"{base64.b64encode(ack.checkpoint_root).decode('ascii')}\n"
    )
    message = f"cosignature/v1\ntime {cosignature.time}\n{checkpoint}".encode()
    try:
        key.verify(cosignature.signature, message)
    except InvalidSignature as exc:
        raise SignatureError(f"node {ack.node}'s co-signature does not verify") from exc
    return ack


# ---------------------------------------------------------------------------------------------
# §10.7 the summary


@dataclass(frozen=True)
class Voice:
    """The ack whose opinion a platform's position is, and that opinion's reason."""

    node: str
    seq: int
    reason: str


@dataclass(frozen=True)
class Dispute:
    state: str  # "open" or "dismissed"
    opened: datetime
    dismissed: datetime | None
    by: str | None


@dataclass(frozen=True)
class EntryOpinions:
    confirmed: Mapping[str, Voice]
    disputed: Mapping[str, Voice]
    dispute: Dispute | None = None


@dataclass(frozen=True)
class CutNode:
    """A node of the cut: its platform and the highest ``seq`` of it the summary counts."""

    platform: str
    seq: int


@dataclass(frozen=True)
class OpinionSummary:
    sha256: str
    list_id: str
    version: int
    created: datetime
    threshold: int
    nodes: Mapping[str, CutNode]
    entries: Mapping[str, EntryOpinions]
    extra: Mapping[str, Any]

    def with_dispute(self, state: str) -> list[str]:
        """The entries whose dispute is in ``state``, in entry id order."""
        return sorted(
            entry
            for entry, opinions in self.entries.items()
            if opinions.dispute is not None and opinions.dispute.state == state
        )


@dataclass(frozen=True)
class SummaryReference:
    """Header v's ``opinions`` member (§7.1)."""

    sha256: str
    length: int


@dataclass(frozen=True)
class VersionContext:
    """What §10.7 checks a summary against: header v, the root it names, the state at v."""

    header: Header
    reference: object  # the header's raw ``opinions`` member; None when it names no summary
    max_body_bytes: int
    dispute_threshold: int
    held: Set[str]

    @classmethod
    def read(cls, header_bytes: bytes, root_bytes: bytes, state_bytes: bytes) -> VersionContext:
        """Parse the (already verified) header, its root and the state at its version."""
        header = parse_header(header_bytes)
        document = parse_canonical(header_bytes)
        root = parse_root(root_bytes)
        if root.version != header.root_version:
            raise ConsistencyError(f"root v{root.version} is not the root header v names")
        declaration = root.lists.get(header.list_id)
        if declaration is None or declaration.format != "entries" or root.vocabulary is None:
            raise ConsistencyError(f"list {header.list_id} is not an entries list of the root")
        policy = parse_canonical(root_bytes)["policy"]
        threshold = DEFAULT_DISPUTE_THRESHOLD
        if "dispute_threshold" in policy:
            threshold = _integer(policy["dispute_threshold"], "policy.dispute_threshold", 1)
        state: EntriesState = verify_entries_snapshot(
            state_bytes, header.result_state, declaration.width, root.vocabulary
        )
        held = frozenset(record.entry for record in state.records)
        return cls(header, document.get("opinions"), root.max_body_bytes, threshold, held)


def parse_reference(value: object, max_body_bytes: int) -> SummaryReference:
    """§10.7 rule 1: the closed record of §7.1, within the root's ``max_body_bytes``."""
    if value is None:
        raise ConsistencyError("header v names no opinion summary")
    record = _closed(value, ("sha256", "length"), "header opinions")
    sha256 = _string(record["sha256"], "opinions.sha256")
    if not _HEX64.fullmatch(sha256):
        raise MalformedError("opinions.sha256 is not hex64")
    length = _integer(record["length"], "opinions.length", 1)
    if length > max_body_bytes:
        raise LimitError(f"opinion summary of {length} bytes, above max_body_bytes")
    return SummaryReference(sha256, length)


def _voice(value: object, position: str, what: str) -> Voice:
    record = _closed(value, ("node", "seq", "reason"), what)
    node = _node_id(record["node"], f"{what}.node")
    seq = _integer(record["seq"], f"{what}.seq", 1)
    reason = _string(record["reason"], f"{what}.reason")
    if reason not in REASONS[position]:
        raise MalformedError(f"{what}: {reason!r} is not a reason of {position}")
    return Voice(node, seq, reason)


def _dispute(value: object, what: str) -> Dispute:
    record = _object(value, what)
    state = record.get("state")
    if state == "open":
        record = _closed(record, ("state", "opened"), what)
        return Dispute("open", parse_time(record["opened"]), None, None)
    if state == "dismissed":
        record = _closed(record, ("state", "opened", "dismissed", "by"), what)
        by = _string(record["by"], f"{what}.by")
        if not _OPERATOR.fullmatch(by):
            raise MalformedError(f"{what}.by {by!r} breaks its pattern")
        return Dispute(
            "dismissed", parse_time(record["opened"]), parse_time(record["dismissed"]), by
        )
    raise MalformedError(f"{what}.state {state!r} is neither open nor dismissed")


def _entry_opinions(value: object, what: str) -> EntryOpinions:
    record = _object(value, what)
    members = (
        ("confirmed", "disputed", "dispute") if "dispute" in record else ("confirmed", "disputed")
    )
    record = _closed(record, members, what)
    groups: dict[str, dict[str, Voice]] = {}
    for position in ("confirmed", "disputed"):
        voices: dict[str, Voice] = {}
        for platform, voice in _object(record[position], f"{what}.{position}").items():
            _node_id(platform, f"{what}.{position} platform")
            voices[platform] = _voice(voice, position, f"{what}.{position}.{platform}")
        groups[position] = voices
    dispute = _dispute(record["dispute"], f"{what}.dispute") if "dispute" in record else None
    return EntryOpinions(groups["confirmed"], groups["disputed"], dispute)


def parse_summary(data: bytes) -> OpinionSummary:
    """§10.7 rule 3: the document alone, strictly."""
    document = _type_first(parse_canonical(data), "hashhub.opinions.v1")
    members = ("list", "version", "created", "threshold", "nodes", "entries")
    missing = [name for name in members if name not in document]
    if missing:
        raise MalformedError(f"summary lacks {missing}")
    list_id = check_list_id(_string(document["list"], "list"))
    version = _integer(document["version"], "version", 1)
    created = parse_time(document["created"])
    threshold = _integer(document["threshold"], "threshold", 1)
    nodes: dict[str, CutNode] = {}
    for node, value in _object(document["nodes"], "nodes").items():
        _node_id(node, "nodes key")
        record = _closed(value, ("platform", "seq"), f"nodes.{node}")
        platform = _node_id(record["platform"], f"nodes.{node}.platform")
        nodes[node] = CutNode(platform, _integer(record["seq"], f"nodes.{node}.seq", 1))
    entries = {
        _entry_id(entry, "entries key"): _entry_opinions(value, f"entries.{entry}")
        for entry, value in _object(document["entries"], "entries").items()
    }
    extra = {name: value for name, value in document.items() if name not in {"_type", *members}}
    return OpinionSummary(
        hashlib.sha256(data).hexdigest(),
        list_id,
        version,
        created,
        threshold,
        nodes,
        entries,
        extra,
    )


def verify_summary(data: bytes, context: VersionContext) -> OpinionSummary:
    """§10.7 rules 1–7, in order: the summary header v names, or the first rule it breaks."""
    header = context.header
    # Rules 1 and 2.
    reference = parse_reference(context.reference, context.max_body_bytes)
    if len(data) != reference.length:
        raise LimitError(f"opinion summary of {len(data)} bytes, not {reference.length}")
    if hashlib.sha256(data).hexdigest() != reference.sha256:
        raise ConsistencyError("opinion summary SHA-256 is not the header's")
    # Rule 3.
    summary = parse_summary(data)
    # Rule 4.
    if summary.list_id != header.list_id:
        raise ConsistencyError(f"summary of list {summary.list_id}, header of {header.list_id}")
    if summary.version != header.version:
        raise ConsistencyError(f"summary of version {summary.version}, header {header.version}")
    if summary.created != header.created:
        raise ConsistencyError("summary created is not the header's")
    if summary.threshold != context.dispute_threshold:
        raise ConsistencyError(
            f"summary threshold {summary.threshold}, root {context.dispute_threshold}"
        )
    # Rule 5.
    for entry, opinions in summary.entries.items():
        if entry not in context.held:
            raise ConsistencyError(f"entry {entry} is not held by the list at v{header.version}")
        if not opinions.confirmed and not opinions.disputed:
            raise ConsistencyError(f"entry {entry} has no voice")
    # Rule 6.
    for entry, opinions in summary.entries.items():
        both = set(opinions.confirmed) & set(opinions.disputed)
        if both:
            raise ConsistencyError(f"entry {entry}: {sorted(both)} both confirm and dispute")
        for platform, voice in (*opinions.confirmed.items(), *opinions.disputed.items()):
            cut = summary.nodes.get(voice.node)
            if cut is None:
                raise ConsistencyError(f"entry {entry}: node {voice.node} is not in the cut")
            if cut.platform != platform:
                raise ConsistencyError(
                    f"entry {entry}: node {voice.node} is of {cut.platform}, not {platform}"
                )
            if voice.seq > cut.seq:
                raise ConsistencyError(f"entry {entry}: {voice.node} seq {voice.seq} past the cut")
    # Rule 7.
    for entry, opinions in summary.entries.items():
        due = len(opinions.disputed) >= summary.threshold
        dispute = opinions.dispute
        if (dispute is not None) != due:
            raise ConsistencyError(
                f"entry {entry}: {len(opinions.disputed)} disputing platforms, threshold "
                f"{summary.threshold}, {'a' if dispute else 'no'} dispute"
            )
        if dispute is None:
            continue
        if dispute.dismissed is not None and dispute.dismissed < dispute.opened:
            raise ConsistencyError(f"entry {entry}: dispute dismissed before it was opened")
        if dispute.opened > summary.created or (
            dispute.dismissed is not None and dispute.dismissed > summary.created
        ):
            raise ConsistencyError(f"entry {entry}: dispute times after the summary's created")
    return summary


# ---------------------------------------------------------------------------------------------
# §10.7 the fold


def counted_acks(acks: Iterable[Ack], nodes: Mapping[str, CutNode]) -> list[Ack]:
    """The acks a summary's cut counts: of a node in ``nodes``, at or below its ``seq``.

    Acks of every list count (an entry id is its collection's). Two different acks of one
    node under one ``seq`` cannot both have been stored (§10.5.2): the fold refuses them.
    """
    by_key: dict[tuple[str, int], Ack] = {}
    for ack in acks:
        cut = nodes.get(ack.node)
        if cut is None or ack.seq > cut.seq:
            continue
        held = by_key.setdefault((ack.node, ack.seq), ack)
        if held != ack:
            raise FoldError(f"two different acks of node {ack.node} with seq {ack.seq}")
    return list(by_key.values())


def fold(
    acks: Iterable[Ack], nodes: Mapping[str, CutNode], held: Set[str]
) -> dict[str, EntryOpinions]:
    """§10.7: each platform's position is the newest opinion of one of its nodes.

    Newest by ``sent``, then ``seq``, then node id as bytes; a position ``none`` counts for
    nothing. The result holds exactly the entries of ``held`` with a voice, without disputes
    (those are the operator's and the hub's, not the acks').
    """
    newest: dict[tuple[str, str], tuple[tuple[datetime, int, bytes], Ack, Opinion]] = {}
    for ack in counted_acks(acks, nodes):
        platform = nodes[ack.node].platform
        order = (ack.sent, ack.seq, ack.node.encode("utf-8"))
        for entry, opinion in ack.opinions.items():
            current = newest.get((platform, entry))
            if current is None or order > current[0]:
                newest[(platform, entry)] = (order, ack, opinion)
    voices: dict[str, dict[str, dict[str, Voice]]] = {}
    for (platform, entry), (_, ack, opinion) in newest.items():
        if opinion.position == "none" or entry not in held:
            continue
        assert opinion.reason is not None
        groups = voices.setdefault(entry, {"confirmed": {}, "disputed": {}})
        groups[opinion.position][platform] = Voice(ack.node, ack.seq, opinion.reason)
    return {
        entry: EntryOpinions(groups["confirmed"], groups["disputed"])
        for entry, groups in voices.items()
    }


def fold_findings(summary: OpinionSummary, folded: Mapping[str, EntryOpinions]) -> list[str]:
    """An auditor's findings (§10.7): where the summary's voices are not the fold's."""
    findings: list[str] = []
    for entry in sorted(set(summary.entries) | set(folded)):
        said = summary.entries.get(entry)
        found = folded.get(entry)
        if said is None:
            findings.append(f"entry {entry}: the acks give it a voice, the summary leaves it out")
            continue
        if found is None:
            findings.append(f"entry {entry}: in the summary, without a voice in the acks")
            continue
        for position, said_voices, found_voices in (
            ("confirmed", said.confirmed, found.confirmed),
            ("disputed", said.disputed, found.disputed),
        ):
            for platform in sorted(set(said_voices) | set(found_voices)):
                if said_voices.get(platform) != found_voices.get(platform):
                    findings.append(
                        f"entry {entry}: {position} voice of {platform} is "
                        f"{said_voices.get(platform)} in the summary, "
                        f"{found_voices.get(platform)} in the acks"
                    )
    return findings


__all__ = [
    "Ack",
    "CutNode",
    "Dispute",
    "EntryOpinions",
    "FoldError",
    "Opinion",
    "OpinionSummary",
    "ProtocolError",
    "SummaryReference",
    "VersionContext",
    "Voice",
    "counted_acks",
    "fold",
    "fold_findings",
    "note_key_id",
    "parse_ack",
    "parse_cosignature",
    "parse_reference",
    "parse_summary",
    "verify_ack",
    "verify_summary",
]
