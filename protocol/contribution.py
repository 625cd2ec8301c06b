"""Contributions: a platform's signed candidate entry (PROTOCOL.md §10.8).

A member platform whose reviewers confirmed an item may offer the hub its hashes as a
candidate entry: ``hashhub.contribution.v1``, signed by the node's enrolled key with
the sidecar every signed document uses, never the content itself. The hub reviews it
(or accepts it by a policy) and publishes it with the contributor as the entry's
source; the contribution's bytes and signature travel with the published entry, so an
auditor can check that the platform named really said so (docs/adr/0020).

Why each part:

- ``seq`` strictly increases per node in a space of its own (not the acks'), so a
  retry is idempotent and a replay is refused, as for acks;
- ``hashes`` are of one item, one per registered type, each in its type's width and,
  for a type with a quality measure (PDQ), with the quality the hasher gave;
- ``category`` and ``classification`` are terms (the hub checks them against its
  vocabulary: a rule of the hub, since the document does not carry the root);
- ``review`` says how the platform knows (``person`` or ``automated``) and what it
  did (``actioned``, ``blocked`` or ``none``): a closed record, no free text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocol._fields import Fields, expect_type, format_time, merge_extra, require_aware
from protocol.ack import NODE_ID_PATTERN
from protocol.canonical import canonicalize, parse_canonical
from protocol.entries import TERM_PATTERN
from protocol.errors import MalformedError
from protocol.keys import PublicKey, SignatureSidecar, SigningKey, sign_bytes, verify_threshold
from protocol.lists import HASH_TYPES

__all__ = [
    "CONTRIBUTION_TYPE",
    "MAX_CONTRIBUTION_HASHES",
    "REVIEWERS",
    "REVIEW_ACTIONS",
    "ContributedHash",
    "Contribution",
    "Review",
    "sign_contribution",
    "verify_contribution",
]

CONTRIBUTION_TYPE = "hashhub.contribution.v1"
MAX_CONTRIBUTION_HASHES = 8
"""Hashes of one item a contribution may carry (one per type)."""
REVIEWERS = ("person", "automated")
"""Who judged the item at the platform."""
REVIEW_ACTIONS = ("actioned", "blocked", "none")
"""What the platform did about it: took content down, refused an upload, nothing yet."""


@dataclass(frozen=True)
class ContributedHash:
    """One hash of the item, and the quality its hasher gave (types that have one)."""

    hex: str
    quality: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hash": self.hex}
        if self.quality is not None:
            out["quality"] = self.quality
        return out


@dataclass(frozen=True)
class Review:
    """How the platform knows, and what it did."""

    by: str
    action: str

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "by": self.by}


@dataclass(frozen=True)
class Contribution:
    """``hashhub.contribution.v1``: one candidate entry, as a node signs it."""

    node: str
    seq: int
    sent: datetime
    hashes: Mapping[str, ContributedHash]
    category: str
    classification: str
    review: Review
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """The rules of §10.8 a document keeps on its own (rules 3 to 6)."""
        if not NODE_ID_PATTERN.fullmatch(self.node) or ".." in self.node:
            raise MalformedError(f"contribution: invalid node id {self.node[:70]!r}")
        if self.seq < 1:
            raise MalformedError("contribution: seq must be ≥ 1")
        require_aware(self.sent, "contribution: sent")
        if not 1 <= len(self.hashes) <= MAX_CONTRIBUTION_HASHES:
            raise MalformedError(
                f"contribution: 1 to {MAX_CONTRIBUTION_HASHES} hashes, not {len(self.hashes)}"
            )
        for type_name, given in self.hashes.items():
            kind = HASH_TYPES.get(type_name)
            if kind is None:
                raise MalformedError(f"contribution: {type_name[:32]!r} is not a hash type")
            digits = 2 * kind.length
            if len(given.hex) != digits or given.hex.strip("0123456789abcdef"):
                raise MalformedError(
                    f"contribution: the {type_name} hash is not {digits} lowercase hex digits"
                )
            if (kind.min_quality is not None) != (given.quality is not None):
                raise MalformedError(
                    f"contribution: a {type_name} hash "
                    + ("carries its quality" if kind.min_quality is not None else "has none")
                )
            if given.quality is not None and not 0 <= given.quality <= 100:
                raise MalformedError(f"contribution: {type_name} quality is 0 to 100")
        for name in ("category", "classification"):
            if not TERM_PATTERN.fullmatch(getattr(self, name)):
                raise MalformedError(f"contribution: {name} is not a term")
        if self.review.by not in REVIEWERS or self.review.action not in REVIEW_ACTIONS:
            raise MalformedError(
                f"contribution: review.by is one of {', '.join(REVIEWERS)} and review.action "
                f"one of {', '.join(REVIEW_ACTIONS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        return merge_extra(
            {
                "_type": CONTRIBUTION_TYPE,
                "category": self.category,
                "classification": self.classification,
                "hashes": {t: h.to_dict() for t, h in sorted(self.hashes.items())},
                "node": self.node,
                "review": self.review.to_dict(),
                "sent": format_time(self.sent),
                "seq": self.seq,
            },
            self.extra,
        )

    def to_bytes(self) -> bytes:
        return canonicalize(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Contribution:
        """Parse a contribution strictly (after its signature verified)."""
        f = Fields(parse_canonical(data), "contribution")
        expect_type(f, CONTRIBUTION_TYPE)
        hashes = {}
        for type_name, value in f.mapping("hashes").items():
            h = Fields(value, f"contribution: hashes.{type_name[:32]}")
            hashes[type_name] = ContributedHash(
                h.text("hash", max_len=256),
                h.integer("quality") if h.has("quality") else None,
            )
            h.closed()
        r = f.obj("review")
        review = Review(r.text("by", max_len=32), r.text("action", max_len=32))
        r.closed()
        return cls(
            node=f.text("node", max_len=64),
            seq=f.integer("seq", minimum=1),
            sent=f.time("sent"),
            hashes=hashes,
            category=f.text("category", max_len=64),
            classification=f.text("classification", max_len=64),
            review=review,
            extra={k: v for k, v in f.rest().items() if k != "_type"},
        )


def sign_contribution(contribution: Contribution, key: SigningKey) -> tuple[bytes, bytes]:
    """The contribution's bytes and the sidecar of ``key``'s signature over them."""
    data = contribution.to_bytes()
    return data, sign_bytes(data, [key]).to_bytes()


def verify_contribution(data: bytes, sig: bytes, *, node_key: PublicKey) -> Contribution:
    """Verify a contribution by its node's key, then parse it (PROTOCOL.md §10.8): the
    sidecar before any parsing, so an unsigned document is never read.

    Raises:
        SignatureError: not signed by ``node_key``.
        MalformedError / WrongTypeError: not a canonical contribution.
    """
    verify_threshold(
        data,
        SignatureSidecar.from_bytes(sig),
        keys={node_key.keyid: node_key},
        keyids=[node_key.keyid],
        threshold=1,
        what="contribution",
    )
    return Contribution.from_bytes(data)
