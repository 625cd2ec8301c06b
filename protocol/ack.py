"""Acknowledgements: a node's signed receipt for the list version it applied.

A ``hashhub.ack.v1`` document says: node N, for list L, with sequence number
``seq``, holds exactly version V (checkpoint root, state digest), co-signs that
checkpoint as a witness, and reports cumulative outcome counters.

Why each part:

- ``seq`` strictly increases per node, so a replayed ack is refused and a retried
  one is idempotent (same ``seq``, same bytes).
- ``applied.state`` lets the hub see that the node holds the published list, not
  an approximation of it.
- ``cosignature`` is a ``cosignature/v1`` line by the node's key over the
  checkpoint it applied. Two nodes co-signing different roots for one size prove
  a split view; the hub cannot forge or drop that evidence without breaking a
  node's signature.
- ``counts`` are cumulative (never deltas), so a lost ack loses nothing: the next
  carries the totals. A counter that goes down means the node reset it.
- ``opinions`` (optional; lists of entries) carry the platform's position on each
  entry whose position changed since its last ack of the list — ``confirmed``
  (``actioned``, ``blocked``), ``disputed`` (``not_the_content``, ``benign``,
  ``other``) or ``none`` (taken back) — so what a platform says of an entry is
  signed and attributable (docs/adr/0019).

The ack's bytes are canonical JSON, signed by the node's enrolled key with the
same sidecar format as every other signed document.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocol._fields import (
    Fields,
    b64decode,
    b64encode,
    expect_type,
    format_time,
    merge_extra,
    require_aware,
)
from protocol.canonical import canonicalize, parse_canonical
from protocol.checkpoint import Checkpoint, NoteSignature, cosign, verify_cosignature
from protocol.entries import ENTRY_ID_PATTERN
from protocol.errors import ConsistencyError, MalformedError, SignatureError
from protocol.keys import PublicKey, SignatureSidecar, SigningKey, sign_bytes, verify_threshold
from protocol.lists import HASH_TYPES, validate_list_id
from protocol.merkle import HASH_SIZE
from protocol.state import StateDigest

__all__ = [
    "ACK_LAST_SEQ_HEADER",
    "ACK_REFUSALS",
    "ACK_SIGNATURE_HEADER",
    "ACK_TYPE",
    "COUNTER_NAMES",
    "KEPT_REASONS",
    "MAX_OPINIONS",
    "NODE_ID_PATTERN",
    "OPINION_REASONS",
    "Ack",
    "AppliedVersion",
    "Counts",
    "NodeKeyPeriod",
    "Opinion",
    "sign_ack",
    "verify_ack",
    "verify_ack_by_periods",
]

ACK_TYPE = "hashhub.ack.v1"
NODE_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
COUNTER_NAMES = ("checked", "matched", "actioned", "blocked", "false_positive")
HASH_COUNTER_NAMES = ("matched", "actioned", "blocked", "false_positive")
MAX_HASH_ENTRIES = 10_000
_HEX = re.compile(r"[0-9a-f]+")
"""A per-hash key at parse: lowercase hex of any registered type's width (PROTOCOL.md
§6.1; ``_hex_digits``). The list's own width is the hub's rule (§10.5): the ack does
not carry the list's hash type, and an auditor must be able to parse an ack without
the root that declares the list."""
OPINION_REASONS: Mapping[str, tuple[str, ...]] = {
    "confirmed": ("actioned", "blocked"),
    "disputed": ("not_the_content", "benign", "other"),
    "none": (),
}
"""Each position a platform may take on an entry, with the reasons it may give
(``none``, a position taken back, has none)."""
MAX_OPINIONS = 10_000
"""Opinions in one ack; a node with more sends the rest in further acks."""
KEPT_REASONS = ("allowlist", "disabled", "quarantine", "disputed")
"""Why a platform's own policy kept up an item a list matched (PROTOCOL.md §10.1
``kept``): reviewed and exempted, disabled locally, held as a surge, held because
its entry is disputed."""
COSIGNATURE_BYTES = 4 + 8 + 64
"""A ``cosignature/v1`` line carries the note key id, the big-endian time, the signature."""


def _hex_digits() -> list[int]:
    """Hex digits of a hash of each registered width (16, 32, 64 for the shipped types).

    Read at each parse, not once: a type registered later is a width an ack may carry.
    """
    return sorted({2 * kind.length for kind in HASH_TYPES.values()})


def _spoken(numbers: list[int]) -> str:
    """``[16, 32, 64]`` as "16, 32 or 64"."""
    words = [str(n) for n in numbers]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


# How an ack travels over HTTP (PROTOCOL.md §10.6): facts of the protocol that the
# hub (which answers) and the node (which sends) must spell alike.
ACK_SIGNATURE_HEADER = "Hashhub-Signature"
"""Header carrying an ack's signature sidecar, base64-encoded (§10.6)."""
ACK_LAST_SEQ_HEADER = "Hashhub-Last-Seq"
"""On a 409 ``seq_conflict``: the node's last accepted ``seq``, so it can re-sign above it."""
ACK_REFUSALS = frozenset({400, 403, 409, 413, 422})
"""The statuses after which a node never sends an ack's bytes again (§10.6): 400, 403,
413 and 422, and a 409 it does not re-sign past (which it then treats as a 403)."""


@dataclass(frozen=True)
class AppliedVersion:
    """The version a node holds: its tree size, checkpoint root and state digest."""

    version: int
    checkpoint_root: bytes
    state: StateDigest

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "checkpoint_root": b64encode(self.checkpoint_root),
            "state": self.state.to_dict(),
        }

    @classmethod
    def from_dict(cls, value: Any) -> AppliedVersion:
        f = Fields(value, "ack: applied")
        applied = cls(
            version=f.integer("version", minimum=1),
            checkpoint_root=b64decode(
                f.text("checkpoint_root", max_len=64),
                "ack: applied.checkpoint_root",
                length=HASH_SIZE,
            ),
            state=StateDigest.from_dict(f.mapping("state"), "ack: applied.state"),
        )
        f.closed()
        return applied


@dataclass(frozen=True)
class Counts:
    """Cumulative outcome counters for one list, and for the hashes that changed since last ack."""

    checked: int = 0
    matched: int = 0
    actioned: int = 0
    blocked: int = 0
    false_positive: int = 0
    hashes: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in COUNTER_NAMES:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise MalformedError(f"ack: counter {name} must be an integer ≥ 0")
        if len(self.hashes) > MAX_HASH_ENTRIES:
            raise MalformedError(f"ack: more than {MAX_HASH_ENTRIES} per-hash entries")
        digits = _hex_digits()
        for key, counters in self.hashes.items():
            if len(key) not in digits or not _HEX.fullmatch(key):
                raise MalformedError(
                    f"ack: per-hash key {key[:70]!r} is not a lowercase hex hash "
                    f"of {_spoken(digits)} digits"
                )
            if set(counters) - set(HASH_COUNTER_NAMES):
                raise MalformedError(f"ack: unknown per-hash counter in {sorted(counters)}")
            for name, value in counters.items():
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise MalformedError(f"ack: per-hash counter {name} must be an integer ≥ 0")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name) for name in COUNTER_NAMES}
        out["hashes"] = {k: dict(v) for k, v in self.hashes.items()}
        return out

    @classmethod
    def from_dict(cls, value: Any) -> Counts:
        f = Fields(value, "ack: counts")
        values = {name: f.integer(name) for name in COUNTER_NAMES}
        hashes = f.mapping("hashes")
        for key, item in hashes.items():
            if not isinstance(item, dict):
                raise MalformedError(f"ack: counts.hashes[{key[:16]}] must be an object")
        f.closed()
        return cls(**values, hashes=hashes)


@dataclass(frozen=True)
class Opinion:
    """A platform's position on one entry, and its reason (``None`` for ``none``)."""

    position: str
    reason: str | None = None

    def __post_init__(self) -> None:
        reasons = OPINION_REASONS.get(self.position)
        if reasons is None:
            raise MalformedError(
                f"ack: opinion position {str(self.position)[:32]!r} is not one of "
                f"{', '.join(OPINION_REASONS)}"
            )
        if not reasons:
            if self.reason is not None:
                raise MalformedError(f"ack: an opinion {self.position!r} gives no reason")
        elif self.reason not in reasons:
            raise MalformedError(
                f"ack: a {self.position} opinion's reason is one of {', '.join(reasons)}, "
                f"not {str(self.reason)[:32]!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"position": self.position}
        if self.reason is not None:
            out["reason"] = self.reason
        return out

    @classmethod
    def from_dict(cls, value: Any, where: str) -> Opinion:
        f = Fields(value, where)
        position = f.text("position", max_len=32)
        reason = f.text("reason", max_len=32) if f.has("reason") else None
        f.closed()
        return cls(position, reason)


def _kept(value: Mapping[str, Any]) -> dict[str, int]:
    """An ack's ``kept`` member: a closed record of cumulative counters by reason."""
    f = Fields(value, "ack: kept")
    out = {name: f.integer(name) for name in KEPT_REASONS if f.has(name)}
    f.closed()
    return out


def _opinions(value: Mapping[str, Any]) -> dict[str, Opinion]:
    """An ack's ``opinions`` member: entry id → opinion, at most ``MAX_OPINIONS``."""
    if len(value) > MAX_OPINIONS:
        raise MalformedError(f"ack: more than {MAX_OPINIONS} opinions")
    out = {}
    for entry_id, item in value.items():
        if not ENTRY_ID_PATTERN.fullmatch(entry_id):
            raise MalformedError(f"ack: opinion on {entry_id[:70]!r}, which is not an entry id")
        out[entry_id] = Opinion.from_dict(item, f"ack: opinions.{entry_id}")
    return out


@dataclass(frozen=True)
class Ack:
    """One node's signed receipt for one list."""

    node: str
    list_id: str
    seq: int
    sent: datetime
    applied: AppliedVersion
    cosignature: NoteSignature
    counts: Counts
    opinions: Mapping[str, Opinion] = field(default_factory=dict)
    """Written only when there are some, so an ack without keeps its bytes."""
    kept: Mapping[str, int] = field(default_factory=dict)
    """Matches the platform's policy kept up, cumulative by reason; written only when
    the node has kept something, so an ack of a node without a policy keeps its bytes."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for reason, count in self.kept.items():
            if reason not in KEPT_REASONS or count < 0:
                raise MalformedError(f"ack: kept {str(reason)[:32]!r}: {count}")
        if len(self.opinions) > MAX_OPINIONS:
            raise MalformedError(f"ack: more than {MAX_OPINIONS} opinions")
        for entry_id in self.opinions:
            if not ENTRY_ID_PATTERN.fullmatch(entry_id):
                raise MalformedError(f"ack: opinion on {entry_id[:70]!r}, not an entry id")
        if not NODE_ID_PATTERN.fullmatch(self.node) or ".." in self.node:
            raise MalformedError(f"ack: invalid node id {self.node[:70]!r}")
        validate_list_id(self.list_id)
        if self.seq < 1:
            raise MalformedError("ack: seq must be ≥ 1")
        require_aware(self.sent, "ack: sent")
        # The field is a cosignature/v1 line by definition (§10.3), so its length and
        # time range are the document's shape, checked at parse like any other field;
        # only the key id and the signature need the node's key.
        blob = self.cosignature.key_id + self.cosignature.signature
        if len(blob) != COSIGNATURE_BYTES:
            raise MalformedError(
                f"ack: cosignature carries {len(blob)} bytes, not {COSIGNATURE_BYTES} "
                "(4-byte key id, 8-byte time, 64-byte signature)"
            )
        if self.cosignature.signature[0] & 0x80:
            raise MalformedError("ack: cosignature time is not below 2^63")

    def to_dict(self) -> dict[str, Any]:
        known: dict[str, Any] = {
            "_type": ACK_TYPE,
            "node": self.node,
            "list": self.list_id,
            "seq": self.seq,
            "sent": format_time(self.sent),
            "applied": self.applied.to_dict(),
            "cosignature": self.cosignature.line().rstrip("\n"),
            "counts": self.counts.to_dict(),
        }
        if self.opinions:
            known["opinions"] = {k: v.to_dict() for k, v in self.opinions.items()}
        if self.kept:
            known["kept"] = dict(self.kept)
        return merge_extra(known, self.extra)

    def to_bytes(self) -> bytes:
        return canonicalize(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Ack:
        f = Fields(parse_canonical(data), "ack")
        expect_type(f, ACK_TYPE)
        return cls(
            node=f.text("node", pattern=NODE_ID_PATTERN, max_len=64),
            # Any string that is not a list id is InvalidListIdError (§10.2 rule 4), so
            # the id's own rule bounds it, not a text length.
            list_id=f.text("list", max_len=sys.maxsize),
            seq=f.integer("seq", minimum=1),
            sent=f.time("sent"),
            applied=AppliedVersion.from_dict(f.mapping("applied")),
            cosignature=NoteSignature.from_line(f.text("cosignature", max_len=512)),
            counts=Counts.from_dict(f.mapping("counts")),
            opinions=_opinions(f.mapping("opinions")) if f.has("opinions") else {},
            kept=_kept(f.mapping("kept")) if f.has("kept") else {},
            extra={k: v for k, v in f.rest().items() if k != "_type"},
        )

    def checkpoint(self, origin: str) -> Checkpoint:
        """The tree head this ack's co-signature covers."""
        return Checkpoint(origin, self.applied.version, self.applied.checkpoint_root)


def sign_ack(
    *,
    key: SigningKey,
    node: str,
    list_id: str,
    seq: int,
    sent: datetime,
    origin: str,
    applied: AppliedVersion,
    counts: Counts,
    opinions: Mapping[str, Opinion] | None = None,
    kept: Mapping[str, int] | None = None,
) -> tuple[bytes, bytes]:
    """Build, co-sign and sign an ack. Returns ``(ack bytes, sidecar bytes)``."""
    checkpoint = Checkpoint(origin, applied.version, applied.checkpoint_root)
    ack = Ack(
        node,
        list_id,
        seq,
        sent,
        applied,
        cosign(checkpoint, key, node, sent),
        counts,
        opinions=dict(opinions or {}),
        kept=dict(kept or {}),
    )
    data = ack.to_bytes()
    return data, sign_bytes(data, [key]).to_bytes()


def verify_ack(data: bytes, sig: bytes, *, node_key: PublicKey, origin_prefix: str) -> Ack:
    """Verify an ack's signature and co-signature by the node's enrolled key.

    Args:
        data: the ack bytes exactly as received.
        sig: the sidecar bytes.
        node_key: the key the node was enrolled with.
        origin_prefix: the hub name; the co-signed origin must be ``<prefix>/lists/<list>``.

    The order is PROTOCOL.md §10.4: the sidecar before any parsing, so an unsigned
    document is never read; the co-signature's name before its signature, so a line
    under another name is reported as what it is rather than as a bad signature.

    Raises:
        SignatureError: the ack or its co-signature is not by ``node_key``.
        MalformedError / WrongTypeError / InvalidListIdError: the bytes are not a
            canonical ack (§10.2).
        ConsistencyError: the co-signature is under another name than the node id.
    """
    verify_threshold(
        data,
        SignatureSidecar.from_bytes(sig),
        keys={node_key.keyid: node_key},
        keyids=[node_key.keyid],
        threshold=1,
        what="ack",
    )
    ack = Ack.from_bytes(data)
    if ack.cosignature.name != ack.node:
        raise ConsistencyError(
            f"ack: co-signature name {ack.cosignature.name!r} is not the node id"
        )
    try:
        verify_cosignature(
            ack.checkpoint(f"{origin_prefix}/lists/{ack.list_id}"), ack.cosignature, node_key
        )
    except SignatureError as e:
        raise SignatureError(f"ack from {ack.node} seq {ack.seq}: {e}") from e
    return ack


@dataclass(frozen=True)
class NodeKeyPeriod:
    """One of a node's keys and the ``seq`` numbers it signs (PROTOCOL.md §10.4.1).

    A node that is re-keyed, or re-enrolled after a revocation, gets a new key from
    the next ``seq`` on; its earlier acks stay verifiable under the key that signed
    them, and the old key signs nothing after them: an ack whose ``seq`` is past its
    key's period is refused, so a retired (perhaps stolen) key cannot speak for the
    node again.
    """

    key: PublicKey
    first_seq: int
    last_seq: int | None = None
    """The period's last ``seq``; ``None`` while the key is the node's current one."""

    def covers(self, seq: int) -> bool:
        return self.first_seq <= seq and (self.last_seq is None or seq <= self.last_seq)

    def describe(self) -> str:
        end = "on" if self.last_seq is None else f"to {self.last_seq}"
        return f"key {self.key.keyid[:16]} (seq {self.first_seq} {end})"


def verify_ack_by_periods(
    data: bytes, sig: bytes, *, periods: Sequence[NodeKeyPeriod], origin_prefix: str
) -> Ack:
    """Verify an ack under the node key whose period holds its ``seq`` (§10.4.1).

    The key is chosen by the sidecar's key ids before the ack is parsed (an unsigned
    document is never read, as in ``verify_ack``); then the verified ``seq`` must lie
    in that key's period. With no key of the node in the sidecar, the node's current
    key (the last period) is the one the signature is checked against, and fails.

    Raises:
        SignatureError: not signed by a key of the node, or by a key whose period does
            not hold the ack's ``seq``; and everything ``verify_ack`` raises.
    """
    if not periods:
        raise SignatureError("ack: the node has no key")
    signed_by = {s.keyid for s in SignatureSidecar.from_bytes(sig).signatures}
    candidates = [p for p in periods if p.key.keyid in signed_by] or [periods[-1]]
    ack = verify_ack(data, sig, node_key=candidates[0].key, origin_prefix=origin_prefix)
    if not any(p.covers(ack.seq) for p in candidates):
        raise SignatureError(
            f"ack from {ack.node} seq {ack.seq}: signed by "
            + ", ".join(p.describe() for p in candidates)
            + f", which does not sign seq {ack.seq}"
        )
    return ack
