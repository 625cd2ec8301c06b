"""Root metadata: the keys, roles, lists, mirrors and policy everything is checked against.

After TUF. ``root/<N>.json`` is signed by the ``root`` role. A verifier that trusts
root N accepts N+1 only if it has a threshold of valid signatures from N's root
role *and* from N+1's own root role, so a rotation must be approved by the old
keys and proven usable with the new ones. Besides that:

- the hub ``name`` (the prefix of every checkpoint origin) never changes;
- a list declared in both versions keeps its hash type, length and format, so no
  version can reinterpret existing hashes or records;
- a later ``vocabulary`` keeps every term and the classification scale's order
  (``protocol.entries``), so a record accepted once stays valid;
- the version is exactly N+1 (no skipping, no replay);
- every role names keys that exist, with 1 ≤ threshold ≤ number of keys.

Expiry is not checked by ``verify_successor`` on purpose: an expired intermediate
root must still be walkable on the way to a fresh one (TUF's rule); only the
newest trusted root must be unexpired, which the trust rules check.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocol._fields import Fields, expect_type, format_time, merge_extra, require_aware
from protocol.canonical import canonicalize, parse_canonical
from protocol.checkpoint import MAX_SIGNATURE_LINES
from protocol.entries import LIST_FORMATS, ListFormat, Vocabulary
from protocol.errors import (
    ConsistencyError,
    MalformedError,
    RollbackError,
    SignatureError,
    UnknownListError,
)
from protocol.keys import PublicKey, SignatureSidecar, SigningKey, sign_bytes, verify_threshold
from protocol.lists import hash_type, validate_list_id

__all__ = [
    "DEFAULT_DISPUTE_THRESHOLD",
    "DEFAULT_WITHDRAWAL_DELAY",
    "MAX_UPSTREAMS",
    "ROLE_NAMES",
    "ROOT_TYPE",
    "ListSpec",
    "Policy",
    "Role",
    "Root",
    "Upstream",
    "validate_hub_name",
]

ROOT_TYPE = "hashhub.root.v1"
ROLE_NAMES = ("root", "delta", "checkpoint", "timestamp")
_HUB_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{0,127}")


def validate_hub_name(name: str) -> str:
    """Return ``name`` if it can prefix checkpoint origins, else raise ``MalformedError``."""
    if not isinstance(name, str) or not _HUB_NAME.fullmatch(name):
        raise MalformedError(f"root: hub name {name!r} must match {_HUB_NAME.pattern}")
    return name


_MAX_KEYS = 64
_MAX_LISTS = 1024
MAX_UPSTREAMS = 64
"""Upstream hubs one root may declare (PROTOCOL.md §5.6)."""


@dataclass(frozen=True)
class Upstream:
    """A hub this hub re-publishes entries from (PROTOCOL.md §5.6): the SHA-256 of the
    upstream's root that its follower pins, and where it is published. Declared in
    the downstream's signed root, so an auditor of the downstream learns the
    upstream's pin from a signature, not from the downstream's word."""

    root_sha256: str
    url: str

    def to_dict(self) -> dict[str, Any]:
        return {"root_sha256": self.root_sha256, "url": self.url}

    @classmethod
    def from_dict(cls, name: str, value: Any) -> Upstream:
        f = Fields(value, f"root: upstreams.{name[:64]}")
        upstream = cls(root_sha256=f.hex64("root_sha256"), url=f.text("url", max_len=2048))
        f.closed()
        if not upstream.url.startswith(("https://", "http://")):
            raise MalformedError(f"root: upstreams.{name[:64]}.url must be an http(s) URL")
        return upstream


@dataclass(frozen=True)
class Role:
    """Which keys may sign for a role, and how many of them must."""

    keyids: tuple[str, ...]
    threshold: int

    def __post_init__(self) -> None:
        # Key order carries no meaning and is sorted on the wire; sorting here too
        # makes a root equal to its own round trip.
        object.__setattr__(self, "keyids", tuple(sorted(self.keyids)))

    def to_dict(self) -> dict[str, Any]:
        return {"keyids": sorted(self.keyids), "threshold": self.threshold}


@dataclass(frozen=True)
class ListSpec:
    """A list as the root declares it.

    Attributes:
        list_id: the list's id (checked).
        hash_type: ``pdq``, ``phash``, ``md5`` or ``sha256``.
        max_distance: the Hamming distance that still counts as a match (0 for exact types).
        label: a collection name shared by sibling lists, e.g. ``take-it-down``.
        snapshot_every: the hub writes a snapshot every this many versions.
        first_version: in a root that changes the delta role, versions from this one
            on must be signed under this root version or a later one, so a key the
            rotation removed can never sign another version (ADR 0004). Such a root
            sets it to the list's next version. In other roots it binds nothing (a
            hub may copy or raise it, never above the next version). Never decreases
            from one root to the next.
        format: ``hashes`` (bare hashes, PROTOCOL.md §7.2) or ``entries`` (entry
            records with metadata, ``protocol.entries``). Written only when
            ``entries``, so a root of ``hashes`` lists keeps its bytes. Never changes.
    """

    list_id: str
    hash_type: str
    max_distance: int
    label: str = ""
    snapshot_every: int = 100
    first_version: int = 1
    format: ListFormat = "hashes"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_list_id(self.list_id)
        if self.first_version < 1:
            raise MalformedError(f"list {self.list_id}: first_version must be ≥ 1")
        kind = hash_type(self.hash_type)
        if not kind.perceptual and self.max_distance != 0:
            raise MalformedError(
                f"list {self.list_id}: exact type {self.hash_type} needs max_distance 0"
            )
        if not 0 <= self.max_distance <= kind.length * 8:
            raise MalformedError(
                f"list {self.list_id}: max_distance {self.max_distance} out of range"
            )
        if self.snapshot_every < 1:
            raise MalformedError(f"list {self.list_id}: snapshot_every must be ≥ 1")
        if self.format not in LIST_FORMATS:
            raise MalformedError(
                f"list {self.list_id}: format {str(self.format)[:32]!r} is not one of "
                f"{', '.join(LIST_FORMATS)}"
            )
        if kind.frames and self.format != "entries":
            raise MalformedError(
                f"list {self.list_id}: a {kind.name} list holds entries (its records name "
                "frames files), so its format is entries"
            )

    @property
    def hash_length(self) -> int:
        return hash_type(self.hash_type).length

    def snapshot_due(self, version: int) -> bool:
        """Whether a snapshot of the list is due at ``version`` under this declaration (§8).

        The one rule: every ``snapshot_every``-th version. The hub writes it
        (``Publisher``) and verifiers expect it (``ListUpdate.snapshot_due``) by the
        spec of the root the version's header names.
        """
        return version % self.snapshot_every == 0

    @property
    def entries(self) -> bool:
        """Whether the list holds entry records rather than bare hashes."""
        return self.format == "entries"

    def to_dict(self) -> dict[str, Any]:
        known: dict[str, Any] = {
            "hash_type": self.hash_type,
            "hash_length": self.hash_length,
            "max_distance": self.max_distance,
            "label": self.label,
            "snapshot_every": self.snapshot_every,
            "first_version": self.first_version,
        }
        if self.entries:
            known["format"] = self.format
        return merge_extra(known, self.extra)

    @classmethod
    def from_dict(cls, list_id: str, value: Any) -> ListSpec:
        where = f"root: lists.{list_id}"
        validate_list_id(list_id)
        f = Fields(value, where)
        kind = hash_type(f.text("hash_type", max_len=16))
        length = f.integer("hash_length", minimum=1)
        if length != kind.length:
            raise MalformedError(
                f"{where}: hash_length {length} is not {kind.length} for {kind.name}"
            )
        spec = cls(
            list_id=list_id,
            hash_type=kind.name,
            max_distance=f.integer("max_distance"),
            label=f.text("label", max_len=128),
            snapshot_every=f.integer("snapshot_every", minimum=1),
            first_version=f.integer("first_version", minimum=1),
            format=f.text("format", max_len=32) if f.has("format") else "hashes",  # type: ignore[arg-type]
            extra=f.rest(),
        )
        if f.has("format") and not spec.entries:
            raise MalformedError(f"{where}: format is written only for an entries list")
        return spec


DEFAULT_DISPUTE_THRESHOLD = 2
"""Disputing platforms that make an entry disputed when the root does not say: one
platform alone never marks an entry disputed for everyone."""
DEFAULT_WITHDRAWAL_DELAY = 86_400
"""A day: how long a withdrawal or an expiry may wait for its removal by default."""


@dataclass(frozen=True)
class Policy:
    """Limits the hub asks every node to apply; all durations in seconds.

    Attributes:
        max_checkpoint_age: a checkpoint whose timestamp co-signature is older than
            this is stale (freeze attack or a hub that stopped publishing).
        max_clock_skew: how far in the future a timestamp may be and still count.
        min_poll_interval: nodes poll no more often than this.
        max_body_bytes: the largest body a header may declare.
        dispute_threshold: how many distinct platforms disputing an entry make it
            disputed in the opinion summary (PROTOCOL.md §10.7); ``None`` when the
            root does not say, which means ``DEFAULT_DISPUTE_THRESHOLD``. Written
            only when set, so a root without it keeps its bytes.
        max_withdrawal_delay: the longest a withdrawal or an expiry may wait for the
            version that removes it (§12 item 8); ``None`` means
            ``DEFAULT_WITHDRAWAL_DELAY``. An auditor reports what took longer.
    """

    max_checkpoint_age: int = 86_400
    max_clock_skew: int = 300
    min_poll_interval: int = 60
    max_body_bytes: int = 64 * 1024 * 1024
    dispute_threshold: int | None = None
    max_withdrawal_delay: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def disputes_at(self) -> int:
        """The dispute threshold this root sets, or the default."""
        return self.dispute_threshold or DEFAULT_DISPUTE_THRESHOLD

    @property
    def withdrawal_delay(self) -> int:
        """The longest a withdrawal or an expiry may wait, in seconds."""
        return self.max_withdrawal_delay or DEFAULT_WITHDRAWAL_DELAY

    def to_dict(self) -> dict[str, Any]:
        known: dict[str, Any] = {
            "max_checkpoint_age": self.max_checkpoint_age,
            "max_clock_skew": self.max_clock_skew,
            "min_poll_interval": self.min_poll_interval,
            "max_body_bytes": self.max_body_bytes,
        }
        if self.dispute_threshold is not None:
            known["dispute_threshold"] = self.dispute_threshold
        if self.max_withdrawal_delay is not None:
            known["max_withdrawal_delay"] = self.max_withdrawal_delay
        return merge_extra(known, self.extra)

    @classmethod
    def from_dict(cls, value: Any) -> Policy:
        f = Fields(value, "root: policy")
        return cls(
            max_checkpoint_age=f.integer("max_checkpoint_age", minimum=1),
            max_clock_skew=f.integer("max_clock_skew"),
            min_poll_interval=f.integer("min_poll_interval", minimum=1),
            max_body_bytes=f.integer("max_body_bytes", minimum=1),
            dispute_threshold=(
                f.integer("dispute_threshold", minimum=1) if f.has("dispute_threshold") else None
            ),
            max_withdrawal_delay=(
                f.integer("max_withdrawal_delay", minimum=1)
                if f.has("max_withdrawal_delay")
                else None
            ),
            extra=f.rest(),
        )


@dataclass(frozen=True)
class Root:
    """One version of the root of trust."""

    version: int
    name: str
    expires: datetime
    keys: Mapping[str, PublicKey]
    roles: Mapping[str, Role]
    lists: Mapping[str, ListSpec] = field(default_factory=dict)
    mirrors: tuple[str, ...] = ()
    policy: Policy = field(default_factory=Policy)
    vocabulary: Vocabulary | None = None
    upstreams: Mapping[str, Upstream] = field(default_factory=dict)
    """Hub name → ``Upstream`` (§5.6); written only when there are some."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.version < 1:
            raise MalformedError(f"root: version must be ≥ 1, got {self.version}")
        validate_hub_name(self.name)
        require_aware(self.expires, "root: expires")
        for keyid, key in self.keys.items():
            if key.keyid != keyid:
                raise MalformedError(f"root: key id {keyid[:16]}… is not the SHA-256 of its key")
        if set(self.roles) != set(ROLE_NAMES):
            raise MalformedError(f"root: roles must be exactly {list(ROLE_NAMES)}")
        for name, role in self.roles.items():
            if not role.keyids:
                raise MalformedError(f"root: role {name} has no keys")
            if len(set(role.keyids)) != len(role.keyids):
                raise MalformedError(f"root: role {name} lists a key twice")
            missing = [k for k in role.keyids if k not in self.keys]
            if missing:
                raise MalformedError(f"root: role {name} names unknown key {missing[0][:16]}…")
            if not 1 <= role.threshold <= len(role.keyids):
                raise MalformedError(
                    f"root: role {name} threshold {role.threshold} not in 1..{len(role.keyids)}"
                )
        online = self.roles["checkpoint"].threshold + self.roles["timestamp"].threshold
        if online > MAX_SIGNATURE_LINES:
            # No checkpoint could carry enough lines (PROTOCOL.md §5.2, §9.2).
            raise MalformedError(
                f"root: the checkpoint and timestamp thresholds add up to {online}; "
                f"a checkpoint note carries at most {MAX_SIGNATURE_LINES} signature lines"
            )
        for list_id, spec in self.lists.items():
            if spec.list_id != list_id:
                raise MalformedError(f"root: list {list_id} declared under another id")
            if spec.entries and self.vocabulary is None:
                raise MalformedError(
                    f"root: list {list_id} holds entries and the root declares no vocabulary"
                )
        if len(self.upstreams) > MAX_UPSTREAMS:
            raise MalformedError(f"root: more than {MAX_UPSTREAMS} upstreams")
        for upstream in self.upstreams:
            validate_hub_name(upstream)
            if upstream == self.name:
                raise MalformedError(f"root: {self.name} declares itself an upstream: a loop")

    # -- encoding ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        known: dict[str, Any] = {
            "_type": ROOT_TYPE,
            "version": self.version,
            "name": self.name,
            "expires": format_time(self.expires),
            "keys": {k: v.to_dict() for k, v in self.keys.items()},
            "roles": {k: v.to_dict() for k, v in self.roles.items()},
            "lists": {k: v.to_dict() for k, v in self.lists.items()},
            "mirrors": list(self.mirrors),
            "policy": self.policy.to_dict(),
        }
        if self.vocabulary is not None:
            known["vocabulary"] = self.vocabulary.to_dict()
        if self.upstreams:
            known["upstreams"] = {k: v.to_dict() for k, v in sorted(self.upstreams.items())}
        return merge_extra(known, self.extra)

    def to_bytes(self) -> bytes:
        return canonicalize(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Root:
        """Parse root bytes strictly (call only after the signatures have been checked)."""
        f = Fields(parse_canonical(data), "root")
        expect_type(f, ROOT_TYPE)
        keys_raw = f.mapping("keys")
        if len(keys_raw) > _MAX_KEYS:
            raise MalformedError(f"root: more than {_MAX_KEYS} keys")
        keys = {k: PublicKey.from_dict(v, f"root: keys.{k[:16]}") for k, v in keys_raw.items()}
        roles = {}
        for name, value in f.mapping("roles").items():
            rf = Fields(value, f"root: roles.{name}")
            ids = rf.array("keyids", max_items=_MAX_KEYS)
            if not all(isinstance(i, str) for i in ids):
                raise MalformedError(f"root: roles.{name}.keyids must be strings")
            roles[name] = Role(tuple(ids), rf.integer("threshold", minimum=1))
            rf.closed()
        lists_raw = f.mapping("lists")
        if len(lists_raw) > _MAX_LISTS:
            raise MalformedError(f"root: more than {_MAX_LISTS} lists")
        lists = {k: ListSpec.from_dict(k, v) for k, v in lists_raw.items()}
        mirrors = f.array("mirrors", max_items=64)
        if not all(isinstance(m, str) and m.startswith(("https://", "http://")) for m in mirrors):
            raise MalformedError("root: mirrors must be http(s) URLs")
        return cls(
            version=f.integer("version", minimum=1),
            name=f.text("name", max_len=128),
            expires=f.time("expires"),
            keys=keys,
            roles=roles,
            lists=lists,
            mirrors=tuple(mirrors),
            policy=Policy.from_dict(f.mapping("policy")),
            vocabulary=(
                Vocabulary.from_dict(f.mapping("vocabulary")) if f.has("vocabulary") else None
            ),
            upstreams=(
                {k: Upstream.from_dict(k, v) for k, v in f.mapping("upstreams").items()}
                if f.has("upstreams")
                else {}
            ),
            extra={k: v for k, v in f.rest().items() if k != "_type"},
        )

    # -- questions verifiers ask ------------------------------------------------------

    def list_spec(self, list_id: str) -> ListSpec:
        validate_list_id(list_id)
        try:
            return self.lists[list_id]
        except KeyError as e:
            raise UnknownListError(f"root v{self.version} does not declare list {list_id!r}") from e

    def origin(self, list_id: str) -> str:
        """The checkpoint origin line of a list: ``<hub name>/lists/<id>``."""
        return f"{self.name}/lists/{validate_list_id(list_id)}"

    @property
    def timestamp_name(self) -> str:
        """The note key name the timestamp role co-signs checkpoints under."""
        return f"{self.name}/timestamp"

    def role_keys(self, role: str) -> list[PublicKey]:
        return [self.keys[k] for k in self.roles[role].keyids]

    def verify_role(
        self, role: str, data: bytes, sidecar: SignatureSidecar, what: str
    ) -> frozenset[str]:
        """Check that this root's ``role`` reached its threshold over ``data``."""
        r = self.roles[role]
        return verify_threshold(
            data,
            sidecar,
            keys=self.keys,
            keyids=r.keyids,
            threshold=r.threshold,
            what=f"{what} ({role} role of root v{self.version})",
        )

    def verify_successor(self, data: bytes, sig: bytes) -> Root:
        """Verify root bytes claimed to be version ``self.version + 1``.

        Raises:
            SignatureError: either threshold (old root role, new root role) not met.
            RollbackError: the version is not exactly one more.
            ConsistencyError: hub name changed or a list changed type.
            MalformedError: the bytes do not parse.
        """
        sidecar = SignatureSidecar.from_bytes(sig)
        what = f"root v{self.version + 1}"
        self.verify_role("root", data, sidecar, what)
        new = Root.from_bytes(data)
        if new.version != self.version + 1:
            raise RollbackError(f"expected root v{self.version + 1}, got v{new.version}")
        new.verify_role("root", data, sidecar, what)
        if new.name != self.name:
            raise ConsistencyError(
                f"root v{new.version} renames the hub {self.name!r} → {new.name!r}"
            )
        # Two passes, in the order of PROTOCOL.md §13.1 steps 2.7 and 2.8, so a root that
        # breaks both rules fails the same way in every verifier, whatever the list order.
        both = [(spec, self.lists[lid]) for lid, spec in new.lists.items() if lid in self.lists]
        for spec, old in both:
            if old.hash_type != spec.hash_type:
                raise ConsistencyError(
                    f"root v{new.version} changes list {spec.list_id} "
                    f"from {old.hash_type} to {spec.hash_type}"
                )
            if old.format != spec.format:
                raise ConsistencyError(
                    f"root v{new.version} changes list {spec.list_id} "
                    f"from {old.format} to {spec.format}"
                )
        for spec, old in both:
            if spec.first_version < old.first_version:
                raise RollbackError(
                    f"root v{new.version} lowers first_version of list {spec.list_id} "
                    f"from {old.first_version} to {spec.first_version}: versions already "
                    "retired from an older delta key would be signable by it again"
                )
        if self.vocabulary is not None:
            if new.vocabulary is None:
                raise RollbackError(
                    f"root v{new.version} drops the vocabulary: records that use it "
                    "would no longer verify"
                )
            self.vocabulary.check_successor(new.vocabulary, new.version)
        return new

    def rotates_delta(self, previous: Root) -> bool:
        """True if this root's ``delta`` role (key ids or threshold) differs from ``previous``'s.

        Only such a root retires delta keys, so only its ``first_version`` binds
        (PROTOCOL.md §13.4 step 9). Judging every root by it instead would let a root that
        changes nothing but policy void every header already published under an older root.
        """
        return self.roles["delta"] != previous.roles["delta"]

    @classmethod
    def verify_pinned(
        cls, data: bytes, sig: bytes, *, sha256: str | None = None, version: int | None = 1
    ) -> Root:
        """Accept a first root: matching a pin if given, self-signed to its own threshold,
        and carrying the version of the file it was read from (PROTOCOL.md §13.1 item 1).

        Args:
            version: the N of the ``root/<N>.json`` the bytes were read from: 1 for a node's
                or an auditor's pin. A root whose ``version`` differs would make the walk
                continue past files it never read (``root/1.json`` saying 2 skips
                ``root/2.json``). None only for a root already verified in a chain and
                re-opened on its own, where no file name is at hand.

        Raises:
            SignatureError: the pin does not match, or the root role's threshold is not met.
            MalformedError: the bytes do not parse.
            RollbackError: the root's version is not ``version``.
        """
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256.lower():
            raise SignatureError("pinned root: SHA-256 does not match the pin")
        sidecar = SignatureSidecar.from_bytes(sig)
        root = cls.from_bytes(data)
        root.verify_role("root", data, sidecar, f"root v{root.version}")
        if version is not None and root.version != version:
            raise RollbackError(
                f"pinned root: root/{version}.json carries version {root.version}; "
                "a root's version must be the one its file name says"
            )
        return root

    def sign(self, keys: Iterable[SigningKey]) -> tuple[bytes, bytes]:
        """Return ``(root bytes, sidecar bytes)`` signed with ``keys``."""
        data = self.to_bytes()
        return data, sign_bytes(data, keys).to_bytes()
