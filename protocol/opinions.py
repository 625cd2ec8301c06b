"""Opinion summaries: what platforms say of an entry, signed with the version (PROTOCOL.md §10.7).

A platform's reviewers learn whether a match was right; its nodes say so, per
entry, in the ``opinions`` of their signed acks (§10.1). With a version of an
``entries`` list the hub publishes an **opinion summary** (``hashhub.opinions.v1``)
of those positions, content-addressed like a body and named by the header's
``opinions`` member, so the delta role's signature and the Merkle log cover it:
the hub cannot show two summaries for one version.

The summary is a fold of signed acks anyone holding them can redo:

- ``nodes`` is the **cut**: for each node, the highest ``seq`` the hub had stored
  when it made the summary, and the platform the node belongs to. A hub refuses any
  ``seq`` at or below a node's highest (§10.5.2), so the acks at or below the cut are
  fixed once the summary exists;
- a platform's position on an entry is the one of the newest of its nodes' acks in
  the cut that speaks of the entry, newest by (``sent``, ``seq``, node id), across
  every list of the hub (an entry's id is its collection's);
- ``entries`` names, for each entry the list holds at the version, the platforms
  confirming and disputing it, each with the node and ``seq`` of the ack counted;
  ``none`` (a position taken back) counts for nothing;
- an entry disputed by at least the root's ``dispute_threshold`` platforms carries a
  **dispute**: ``open`` from when the hub opened it, or ``dismissed`` (the operator
  kept the entry: by whom, when). A dispute ends ``upheld`` (the entry is removed
  with the reason ``disputed``), or ``withdrawn`` (the disputes fall below the
  threshold); either way it leaves the next summary, and the log of versions
  keeps its life.

A node holds rather than blocks on an entry whose dispute is ``open`` when its
policy says so; an auditor recomputes every summary from the acks it names.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocol._fields import Fields, expect_type, format_time, merge_extra, require_aware
from protocol.ack import NODE_ID_PATTERN, OPINION_REASONS, Ack, Opinion
from protocol.canonical import canonicalize, parse_canonical
from protocol.delta import DeltaHeader
from protocol.entries import ENTRY_ID_PATTERN, EntryState
from protocol.errors import ConsistencyError, LimitError, MalformedError
from protocol.lists import LIST_ID_PATTERN
from protocol.root import Root

__all__ = [
    "DISPUTE_STATES",
    "OPINIONS_TYPE",
    "PLATFORM_PATTERN",
    "Dispute",
    "EntryOpinions",
    "NodeCut",
    "OpinionSummary",
    "OpinionsRef",
    "Position",
    "Voice",
    "fold_positions",
    "header_document",
    "header_opinions",
    "named_bytes",
    "verify_summary",
    "voices_of",
]

OPINIONS_TYPE = "hashhub.opinions.v1"
DISPUTE_STATES = ("open", "dismissed")
PLATFORM_PATTERN = NODE_ID_PATTERN
"""A platform id: the grammar of a node id (by default a platform is its one node)."""
_BY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
"""Who dismissed a dispute: an operator's account name."""


def _node_id(text: str, where: str) -> str:
    """A node id, or a platform id (the same grammar, §10.1): the pattern, without ``..``."""
    if not PLATFORM_PATTERN.fullmatch(text) or ".." in text:
        raise MalformedError(f"{where}: {text[:70]!r} is not a node or platform id")
    return text


@dataclass(frozen=True)
class OpinionsRef:
    """A header's ``opinions`` member: the summary's SHA-256 and length (a closed record)."""

    sha256: str
    length: int

    def to_dict(self) -> dict[str, Any]:
        return {"length": self.length, "sha256": self.sha256}

    @classmethod
    def of(cls, data: bytes) -> OpinionsRef:
        return cls(hashlib.sha256(data).hexdigest(), len(data))

    @classmethod
    def from_dict(cls, value: Any, where: str = "delta header: opinions") -> OpinionsRef:
        f = Fields(value, where)
        ref = cls(sha256=f.hex64("sha256"), length=f.integer("length", minimum=1))
        f.closed()
        return ref


def header_document(header: DeltaHeader, member: str) -> OpinionsRef | None:
    """The document a header names in ``member`` (``opinions``, §10.7; ``provenance``,
    §7.5), or ``None``; a malformed member is ``MalformedError``.

    The member is top-level, so a verifier of version 1.1 preserves it unread (§3.3);
    one of 1.2 reads it as a closed record.
    """
    if member not in header.extra:
        return None
    return OpinionsRef.from_dict(header.extra[member], f"delta header: {member}")


def header_opinions(header: DeltaHeader) -> OpinionsRef | None:
    """The opinion summary a header names, or ``None``."""
    return header_document(header, "opinions")


def named_bytes(header: DeltaHeader, member: str, data: bytes, root: Root, label: str) -> None:
    """Rules 1 and 2 of §7.5 and §10.7, shared by every document a header names by
    SHA-256 and length: the member is there and well formed (``MalformedError``), its
    length within the root's ``max_body_bytes`` and that of ``data`` (``LimitError``),
    and ``data`` has its SHA-256 (``ConsistencyError``)."""
    ref = header_document(header, member)
    if ref is None:
        raise MalformedError(f"delta header v{header.version} names no {label}")
    where = f"{member} v{header.version}"
    if ref.length > root.policy.max_body_bytes:
        raise LimitError(
            f"{where}: {ref.length} bytes, over the root's "
            f"max_body_bytes ({root.policy.max_body_bytes})"
        )
    if len(data) != ref.length:
        raise LimitError(f"{where}: {len(data)} bytes, header says {ref.length}")
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ConsistencyError(f"{where}: SHA-256 does not match the header")


@dataclass(frozen=True)
class Voice:
    """One platform's counted position on an entry: its reason and the ack that said it."""

    node: str
    seq: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "reason": self.reason, "seq": self.seq}

    @classmethod
    def from_dict(cls, value: Any, where: str, position: str) -> Voice:
        f = Fields(value, where)
        voice = cls(
            node=_node_id(f.text("node", max_len=64), where),
            seq=f.integer("seq", minimum=1),
            reason=f.text("reason", max_len=32),
        )
        f.closed()
        if voice.reason not in OPINION_REASONS[position]:
            raise MalformedError(
                f"{where}: a {position} voice's reason is one of "
                f"{', '.join(OPINION_REASONS[position])}, not {voice.reason!r}"
            )
        return voice


@dataclass(frozen=True)
class Dispute:
    """An entry's dispute while it lasts: ``open``, or ``dismissed`` by an operator."""

    state: str
    opened: datetime
    dismissed: datetime | None = None
    by: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.opened, "dispute: opened")
        if self.state not in DISPUTE_STATES:
            raise MalformedError(f"dispute: state {self.state!r} is not one of open, dismissed")
        if (self.state == "dismissed") != (self.dismissed is not None and self.by is not None):
            raise MalformedError("dispute: a dismissed dispute says when and by whom; no other")

    @property
    def undecided(self) -> bool:
        """``open``: neither dismissed nor ended, so a node's policy may hold on it."""
        return self.state == "open"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"opened": format_time(self.opened), "state": self.state}
        if self.dismissed is not None:
            out["dismissed"] = format_time(self.dismissed)
            out["by"] = self.by
        return out

    @classmethod
    def from_dict(cls, value: Any, where: str) -> Dispute:
        f = Fields(value, where)
        state = f.text("state", max_len=16)
        opened = f.time("opened")
        dismissed = f.time("dismissed") if f.has("dismissed") else None
        by = f.text("by", pattern=_BY_PATTERN, max_len=64) if f.has("by") else None
        f.closed()
        return cls(state, opened, dismissed, by)


@dataclass(frozen=True)
class EntryOpinions:
    """What the platforms say of one entry: confirming and disputing platforms, and
    its dispute if the disputes reach the threshold."""

    confirmed: Mapping[str, Voice] = field(default_factory=dict)
    disputed: Mapping[str, Voice] = field(default_factory=dict)
    dispute: Dispute | None = None

    @property
    def is_disputed(self) -> bool:
        """An open dispute: what a node's policy may hold on."""
        return self.dispute is not None and self.dispute.undecided

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "confirmed": {p: v.to_dict() for p, v in sorted(self.confirmed.items())},
            "disputed": {p: v.to_dict() for p, v in sorted(self.disputed.items())},
        }
        if self.dispute is not None:
            out["dispute"] = self.dispute.to_dict()
        return out

    @classmethod
    def from_dict(cls, value: Any, where: str) -> EntryOpinions:
        f = Fields(value, where)
        voices = {}
        for position in ("confirmed", "disputed"):
            group = f.mapping(position)
            for platform in group:
                _node_id(platform, f"{where}.{position}")
            voices[position] = {
                p: Voice.from_dict(v, f"{where}.{position}.{p}", position) for p, v in group.items()
            }
        dispute = (
            Dispute.from_dict(f.mapping("dispute"), f"{where}.dispute")
            if f.has("dispute")
            else None
        )
        f.closed()
        return cls(voices["confirmed"], voices["disputed"], dispute)


@dataclass(frozen=True)
class NodeCut:
    """A node in a summary's cut: its platform and the highest ``seq`` counted."""

    platform: str
    seq: int

    def to_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "seq": self.seq}

    @classmethod
    def from_dict(cls, value: Any, where: str) -> NodeCut:
        f = Fields(value, where)
        cut = cls(
            platform=_node_id(f.text("platform", max_len=64), where),
            seq=f.integer("seq", minimum=1),
        )
        f.closed()
        return cut


@dataclass(frozen=True)
class OpinionSummary:
    """``hashhub.opinions.v1``: the platforms' positions on a list's entries at a version."""

    list_id: str
    version: int
    created: datetime
    threshold: int
    nodes: Mapping[str, NodeCut]
    entries: Mapping[str, EntryOpinions]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """The rules a summary keeps on its own (§10.7): each voice's ack in the cut and
        of a node of the platform it speaks for, one position per platform, a dispute
        exactly when the disputes reach the threshold, nothing said of nothing."""
        where = f"opinions v{self.version}"
        require_aware(self.created, f"{where}: created")
        if self.version < 1 or self.threshold < 1:
            raise MalformedError(f"{where}: version and threshold must be ≥ 1")
        for entry_id, said in self.entries.items():
            at = f"{where}: entry {entry_id}"
            if not ENTRY_ID_PATTERN.fullmatch(entry_id):
                raise MalformedError(f"{where}: {entry_id[:70]!r} is not an entry id")
            if not said.confirmed and not said.disputed:
                raise ConsistencyError(f"{at}: no platform's position, so not in a summary")
            both = set(said.confirmed) & set(said.disputed)
            if both:
                raise ConsistencyError(f"{at}: {sorted(both)[0]} both confirms and disputes")
            for platform, voice in [*said.confirmed.items(), *said.disputed.items()]:
                cut = self.nodes.get(voice.node)
                if cut is None:
                    raise ConsistencyError(f"{at}: node {voice.node} is not in the cut")
                if cut.platform != platform:
                    raise ConsistencyError(
                        f"{at}: node {voice.node} is of platform {cut.platform}, not {platform}"
                    )
                if voice.seq > cut.seq:
                    raise ConsistencyError(
                        f"{at}: {voice.node} seq {voice.seq} is past the cut ({cut.seq})"
                    )
            if (len(said.disputed) >= self.threshold) != (said.dispute is not None):
                raise ConsistencyError(
                    f"{at}: {len(said.disputed)} disputing platform(s), threshold "
                    f"{self.threshold}, but {'a' if said.dispute else 'no'} dispute"
                )
            if said.dispute is not None:
                dispute = said.dispute
                if dispute.dismissed is not None and dispute.dismissed < dispute.opened:
                    raise ConsistencyError(f"{at}: dispute dismissed before it was opened")
                if (dispute.dismissed or dispute.opened) > self.created:
                    raise ConsistencyError(f"{at}: dispute dated after the summary")

    def disputed(self, entry_id: str) -> bool:
        """Whether ``entry_id`` has an open dispute in this summary."""
        said = self.entries.get(entry_id)
        return said is not None and said.is_disputed

    def to_dict(self) -> dict[str, Any]:
        return merge_extra(
            {
                "_type": OPINIONS_TYPE,
                "created": format_time(self.created),
                "entries": {e: o.to_dict() for e, o in sorted(self.entries.items())},
                "list": self.list_id,
                "nodes": {n: c.to_dict() for n, c in sorted(self.nodes.items())},
                "threshold": self.threshold,
                "version": self.version,
            },
            self.extra,
        )

    def to_bytes(self) -> bytes:
        return canonicalize(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> OpinionSummary:
        """Parse a summary strictly (after its SHA-256 matched the header's)."""
        f = Fields(parse_canonical(data), "opinions")
        expect_type(f, OPINIONS_TYPE)
        list_id = f.text("list", pattern=LIST_ID_PATTERN, max_len=64)
        version = f.integer("version", minimum=1)
        created = f.time("created")
        threshold = f.integer("threshold", minimum=1)
        nodes = {}
        for node, cut in f.mapping("nodes").items():
            nodes[_node_id(node, "opinions: nodes")] = NodeCut.from_dict(
                cut, f"opinions: nodes.{node}"
            )
        entries = {
            entry_id: EntryOpinions.from_dict(said, f"opinions: entries.{entry_id[:64]}")
            for entry_id, said in f.mapping("entries").items()
        }
        return cls(
            list_id=list_id,
            version=version,
            created=created,
            threshold=threshold,
            nodes=nodes,
            entries=entries,
            extra={k: v for k, v in f.rest().items() if k != "_type"},
        )

    def check(self, header: DeltaHeader, root: Root, state: EntryState) -> None:
        """The rules that need the version (§10.7): this list, version and time; the
        threshold of the root that signed the header; only entries the list holds."""
        if (self.list_id, self.version, self.created) != (
            header.list_id,
            header.version,
            header.created,
        ):
            raise ConsistencyError(
                f"opinions: for {self.list_id} v{self.version} at {format_time(self.created)}, "
                f"the header is {header.list_id} v{header.version} "
                f"at {format_time(header.created)}"
            )
        if self.threshold != root.policy.disputes_at:
            raise ConsistencyError(
                f"opinions v{self.version}: threshold {self.threshold}, "
                f"root v{root.version} sets {root.policy.disputes_at}"
            )
        held = state.entry_ids()
        for entry_id in self.entries:
            if entry_id not in held:
                raise ConsistencyError(
                    f"opinions v{self.version}: entry {entry_id} is not in the list at "
                    f"v{self.version}"
                )


def verify_summary(
    header: DeltaHeader, data: bytes, root: Root, state: EntryState
) -> OpinionSummary:
    """The summary ``header`` names, from its bytes: length, SHA-256, strict parse and
    the rules of §10.7, against the root that signed the header and the state the
    version results in.

    Raises:
        MalformedError: the header names no summary, or the bytes are not one.
        LimitError: not the length the header signs.
        ConsistencyError: not the SHA-256 the header signs, or a rule of §10.7.
    """
    named_bytes(header, "opinions", data, root, "opinion summary")
    summary = OpinionSummary.from_bytes(data)
    summary.check(header, root, state)
    return summary


@dataclass(frozen=True)
class Position:
    """A platform's newest position on an entry and the ack that took it."""

    opinion: Opinion
    node: str
    seq: int
    sent: datetime

    @property
    def order(self) -> tuple[datetime, int, str]:
        """Newest first is the largest: by ``sent``, then ``seq``, then node id."""
        return (self.sent, self.seq, self.node)


def fold_positions(
    acks: Iterable[Ack], nodes: Mapping[str, NodeCut]
) -> dict[str, dict[str, Position]]:
    """Each platform's newest position per entry, from the acks in the cut ``nodes``
    (entry id → platform → position; ``none`` included, it counts for nothing).

    The acks may be of any list of the hub and in any order; those of a node not in
    the cut, or above its ``seq``, are not counted.
    """
    out: dict[str, dict[str, Position]] = {}
    for ack in acks:
        cut = nodes.get(ack.node)
        if cut is None or ack.seq > cut.seq or not ack.opinions:
            continue
        for entry_id, opinion in ack.opinions.items():
            said = out.setdefault(entry_id, {})
            position = Position(opinion, ack.node, ack.seq, ack.sent)
            known = said.get(cut.platform)
            if known is None or position.order > known.order:
                said[cut.platform] = position
    return out


def voices_of(positions: Mapping[str, Position]) -> EntryOpinions:
    """An entry's confirming and disputing platforms from their positions (no dispute)."""
    groups: dict[str, dict[str, Voice]] = {"confirmed": {}, "disputed": {}}
    for platform, position in positions.items():
        if position.opinion.position in groups:
            assert position.opinion.reason is not None
            groups[position.opinion.position][platform] = Voice(
                position.node, position.seq, position.opinion.reason
            )
    return EntryOpinions(groups["confirmed"], groups["disputed"])
