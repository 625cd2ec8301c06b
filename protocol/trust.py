"""The trust rules: what a verifier accepts, as one pure object without I/O.

After python-tuf's ``TrustedMetadataSet``. ``TrustedHub`` starts from a pinned root
and is fed bytes; each call either advances what is trusted or raises a specific
``ProtocolError`` and changes nothing. The node runs it incrementally, one update
at a time; the auditor runs it over the whole history. Neither has a rule of its
own, and tests drive it with bytes and no server.

One update of one list (PROTOCOL.md §Update) goes::

    hub = TrustedHub(root1, root1_sig, now=t0)          # pinned root, clock fixed once
    hub.update_root(root2, root2_sig) …                 # walk N+1, N+2, … until not found
    upd = hub.begin_update(trust, checkpoint_bytes)     # rollback / freeze / equivocation
    upd.add_header(header_bytes, sig_bytes) …           # trusted+1 … size, chained and signed
    #   → after the last header, the Merkle root must equal the checkpoint's
    state = upd.add_snapshot(v, snapshot_bytes)         # optional: bootstrap or resync
    upd.add_body(v, body_bytes) …                       # for every version after the base
    new_state, new_trust = upd.apply(state)             # in memory; or check_base/finish
                                                        # around an apply of one's own

``ListTrust`` is what a verifier keeps between updates: the version, a compact
range of the log, the last header's leaf hash and result state, and the last
accepted checkpoint (kept as evidence). A forged or inflated checkpoint can stall
a verifier (its headers never reproduce the root) but never becomes its state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from protocol._fields import (
    Fields,
    b64decode,
    b64encode,
    format_time,
    parse_time,
    require_aware,
)
from protocol.checkpoint import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Checkpoint,
    NoteSignature,
    SignedCheckpoint,
    note_key_id,
    verify_cosignature,
    verify_note_signature,
)
from protocol.delta import GENESIS_PREV, DeltaBody, DeltaHeader
from protocol.entries import EntriesBody, EntryState, record_limit
from protocol.errors import (
    ConsistencyError,
    EquivocationError,
    ExpiredError,
    FreezeError,
    LimitError,
    MalformedError,
    MissingFileError,
    RollbackError,
    SignatureError,
    StateMismatchError,
)
from protocol.keys import SignatureSidecar
from protocol.layout import Limits, root_path
from protocol.lists import hash_type, validate_list_id
from protocol.merkle import CompactRange
from protocol.root import ListSpec, Root
from protocol.state import EMPTY_DIGEST, ListState, StateDigest

__all__ = ["ListTrust", "ListUpdate", "TrustedHub", "VerifiedCheckpoint"]

B = TypeVar("B", DeltaBody, EntriesBody)


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose signature lines met both thresholds, with the time it was co-signed."""

    note: SignedCheckpoint
    raw: bytes
    timestamp: datetime

    @property
    def size(self) -> int:
        return self.note.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        return self.note.checkpoint.root_hash


@dataclass(frozen=True)
class ListTrust:
    """What a verifier trusts about one list between updates.

    Attributes:
        list_id: the list.
        version: the last applied version (= the trusted tree size); 0 before the first.
        compact: the log's compact range over headers 1..version.
        last_leaf: hex leaf hash of header ``version`` (64 zeros at version 0).
        state: the list's state digest at ``version``.
        root_version: the root version the last header named.
        last_created: the last header's ``created``.
        checkpoint: the last accepted checkpoint note, byte for byte.
        checkpoint_time: its timestamp co-signature time.
    """

    list_id: str
    version: int = 0
    compact: CompactRange = field(default_factory=CompactRange)
    last_leaf: str = GENESIS_PREV
    state: StateDigest = EMPTY_DIGEST
    root_version: int = 1
    last_created: datetime | None = None
    checkpoint: bytes = b""
    checkpoint_time: datetime | None = None

    def __post_init__(self) -> None:
        validate_list_id(self.list_id)
        if self.compact.size != self.version:
            raise MalformedError("list trust: compact range size differs from version")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for a verifier's own store."""
        return {
            "list": self.list_id,
            "version": self.version,
            "compact": [b64encode(h) for h in self.compact.hashes],
            "last_leaf": self.last_leaf,
            "state": self.state.to_dict(),
            "root_version": self.root_version,
            "last_created": format_time(self.last_created) if self.last_created else None,
            "checkpoint": self.checkpoint.decode("utf-8"),
            "checkpoint_time": format_time(self.checkpoint_time) if self.checkpoint_time else None,
        }

    @classmethod
    def from_dict(cls, value: Any) -> ListTrust:
        f = Fields(value, "list trust")
        version = f.integer("version")
        compact = CompactRange(
            version,
            [
                b64decode(h, "list trust: compact", length=32)
                for h in f.array("compact", max_items=64)
            ],
        )
        created = value.get("last_created")
        cp_time = value.get("checkpoint_time")
        return cls(
            list_id=f.text("list", max_len=64),
            version=version,
            compact=compact,
            last_leaf=f.hex64("last_leaf"),
            state=StateDigest.from_dict(f.mapping("state"), "list trust: state"),
            root_version=f.integer("root_version", minimum=1),
            last_created=parse_time(created, "list trust: last_created") if created else None,
            checkpoint=f.text("checkpoint", max_len=65536).encode("utf-8"),
            checkpoint_time=parse_time(cp_time, "list trust: checkpoint_time") if cp_time else None,
        )


def _checkpoint_signers(
    cp: Checkpoint, line: NoteSignature, keyids: list[str], root: Root, where: str
) -> list[str]:
    """The checkpoint-role keys (sharing the line's 4-byte key id) whose signature it is.

    A known line that none of them verifies rejects the note: only a broken signer or
    a forger writes one (signed-note's advice).
    """
    good = [k for k in keyids if verify_note_signature(cp, line, root.keys[k])]
    if not good:
        raise SignatureError(
            f"{where}: a line of checkpoint key {keyids[0][:16]}… "
            f"does not verify (root v{root.version})"
        )
    return good


def _cosigners(
    cp: Checkpoint, line: NoteSignature, keyids: list[str], root: Root, where: str
) -> dict[str, datetime]:
    """The timestamp-role keys whose co-signature the line is, with the time each signed."""
    times: dict[str, datetime] = {}
    for keyid in keyids:
        try:
            times[keyid] = verify_cosignature(cp, line, root.keys[keyid])
        except SignatureError:
            continue
    if not times:
        raise SignatureError(
            f"{where}: a co-signature of timestamp key {keyids[0][:16]}… "
            f"does not verify (root v{root.version})"
        )
    return times


class TrustedHub:
    """The root chain a verifier trusts, and the entry point for list updates.

    Args:
        root_bytes: the pinned root (normally version 1), exactly as published.
        root_sig: its signature sidecar.
        now: the reference time for this whole run (fixed once: an injectable clock).
        pinned_sha256: if given, the pinned root's bytes must hash to it.
        pinned_version: the N of the ``root/<N>.json`` the pinned root was read from (1 for
            a node or an auditor); its ``version`` must be that (``RollbackError``), so the
            walk goes on from the file the verifier actually read. None only to re-open a
            root already verified in a chain, where no file name is at hand.
        limits: caps on every input.
    """

    def __init__(
        self,
        root_bytes: bytes,
        root_sig: bytes,
        *,
        now: datetime,
        pinned_sha256: str | None = None,
        pinned_version: int | None = 1,
        limits: Limits | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.now = require_aware(now, "trusted hub: now")
        self.limits.check("root", root_bytes, self.limits.root_bytes)
        self.limits.check("root signature", root_sig, self.limits.sig_bytes)
        root = Root.verify_pinned(
            root_bytes, root_sig, sha256=pinned_sha256, version=pinned_version
        )
        self._roots: dict[int, Root] = {root.version: root}
        self._root_files: dict[int, tuple[bytes, bytes]] = {root.version: (root_bytes, root_sig)}
        self.first_version = root.version

    @property
    def root(self) -> Root:
        """The newest trusted root."""
        return self._roots[max(self._roots)]

    def root_at(self, version: int) -> Root:
        try:
            return self._roots[version]
        except KeyError as e:
            raise SignatureError(f"root v{version} is not in the trusted chain") from e

    def root_files(self) -> Iterator[tuple[int, bytes, bytes]]:
        """Every trusted root as ``(version, bytes, sig)``, oldest first, for a store."""
        for version in sorted(self._root_files):
            data, sig = self._root_files[version]
            yield version, data, sig

    def update_root(self, data: bytes, sig: bytes) -> Root:
        """Accept root version N+1, or raise and keep trusting N.

        The walk limit counts the roots accepted after the pinned one (PROTOCOL.md §11):
        with the default of 256, a verifier pinned at v1 trusts at most v1 … v257.
        """
        self.limits.check("root", data, self.limits.root_bytes)
        self.limits.check("root signature", sig, self.limits.sig_bytes)
        if len(self._roots) - 1 >= self.limits.max_root_walk:
            raise LimitError(
                f"more than {self.limits.max_root_walk} root versions after the pinned "
                f"v{self.first_version} in one walk"
            )
        new = self.root.verify_successor(data, sig)
        self._roots[new.version] = new
        self._root_files[new.version] = (data, sig)
        return new

    def check_root_fresh(self) -> None:
        """The newest trusted root must not have expired at ``now``."""
        root = self.root
        if root.expires <= self.now:
            raise ExpiredError(f"root v{root.version} expired at {format_time(root.expires)}")

    def verify_checkpoint(self, list_id: str, data: bytes) -> VerifiedCheckpoint:
        """Check a checkpoint's origin and both signature thresholds under the newest root.

        A line is *known* when its name and 4-byte key id are those of a key of the
        ``checkpoint`` role (named by the origin, algorithm 0x01) or of the ``timestamp``
        role (named ``<hub>/timestamp``, 0x04). Known lines must all verify: one that
        does not rejects the note, as signed-note advises, since only a broken signer or
        a forger writes it. Other lines are ignored. The checkpoint's time is the oldest
        time of all timestamp lines, so it does not depend on the order of the lines.
        """
        self.limits.check("checkpoint", data, self.limits.checkpoint_bytes)
        root = self.root
        origin = root.origin(list_id)
        note = SignedCheckpoint.from_bytes(data)
        cp = note.checkpoint
        if cp.origin != origin:
            raise ConsistencyError(f"checkpoint origin {cp.origin!r} is not {origin!r}")
        where = f"checkpoint {origin} size {cp.size}"
        ts_name = root.timestamp_name
        cp_role, ts_role = root.roles["checkpoint"], root.roles["timestamp"]
        cp_ids = _note_key_ids(root, cp_role.keyids, origin, ALG_ED25519)
        ts_ids = _note_key_ids(root, ts_role.keyids, ts_name, ALG_COSIGNATURE_V1)
        signed: set[str] = set()
        stamped: dict[str, datetime] = {}
        for line in note.signatures:
            if line.name == origin and line.key_id in cp_ids:
                signed.update(_checkpoint_signers(cp, line, cp_ids[line.key_id], root, where))
            elif line.name == ts_name and line.key_id in ts_ids:
                times = _cosigners(cp, line, ts_ids[line.key_id], root, where)
                for keyid, moment in times.items():
                    stamped[keyid] = min(moment, stamped.get(keyid, moment))
        if len(signed) < cp_role.threshold:
            raise SignatureError(
                f"{where}: {len(signed)} valid checkpoint-role "
                f"signature(s), threshold is {cp_role.threshold} (root v{root.version})"
            )
        if len(stamped) < ts_role.threshold:
            raise SignatureError(
                f"{where}: {len(stamped)} valid timestamp "
                f"co-signature(s), threshold is {ts_role.threshold} (root v{root.version})"
            )
        # The oldest valid co-signature is the conservative freshness claim: a checkpoint
        # is only as fresh as its least fresh witness, whatever order the lines are in.
        return VerifiedCheckpoint(note, bytes(data), min(stamped.values()))

    def begin_update(self, trust: ListTrust, checkpoint: bytes) -> ListUpdate:
        """Start updating one list from ``trust`` to the state ``checkpoint`` describes.

        Raises:
            ExpiredError: the newest root has expired.
            UnknownListError: the root does not declare the list.
            SignatureError / MalformedError: the checkpoint does not verify.
            FreezeError: the co-signature is older than the policy's maximum age,
                or further in the future than the allowed clock skew.
            RollbackError: smaller tree size, or an older co-signature time, than trusted.
            EquivocationError: same size as trusted but a different root hash.
        """
        self.check_root_fresh()
        root = self.root
        spec = root.list_spec(trust.list_id)
        verified = self.verify_checkpoint(trust.list_id, checkpoint)
        policy = root.policy
        age = self.now - verified.timestamp
        if age > timedelta(seconds=policy.max_checkpoint_age):
            raise FreezeError(
                f"checkpoint {trust.list_id} was co-signed at {format_time(verified.timestamp)}, "
                f"older than the maximum age of {policy.max_checkpoint_age} s"
            )
        if -age > timedelta(seconds=policy.max_clock_skew):
            raise FreezeError(
                f"checkpoint {trust.list_id} is co-signed {format_time(verified.timestamp)}, "
                f"more than {policy.max_clock_skew} s in the future"
            )
        if verified.size < trust.version:
            raise RollbackError(
                f"checkpoint {trust.list_id}: size {verified.size} is below "
                f"the trusted {trust.version}"
            )
        if trust.checkpoint_time is not None and verified.timestamp < trust.checkpoint_time:
            raise RollbackError(
                f"checkpoint {trust.list_id}: co-signed {format_time(verified.timestamp)}, "
                f"before the trusted one ({format_time(trust.checkpoint_time)})"
            )
        if verified.size == trust.version and verified.root_hash != trust.compact.root():
            raise EquivocationError(
                f"checkpoint {trust.list_id}: a second root hash for size {verified.size}",
                trusted=trust.checkpoint,
                presented=verified.raw,
            )
        return ListUpdate(self, trust, spec, verified)


class ListUpdate:
    """One all-or-nothing update of one list. Nothing here changes until ``finish``."""

    def __init__(
        self, hub: TrustedHub, trust: ListTrust, spec: ListSpec, checkpoint: VerifiedCheckpoint
    ) -> None:
        self._hub = hub
        self.trust = trust
        self.spec = spec
        self.checkpoint = checkpoint
        self.headers: list[DeltaHeader] = []
        self.bodies: dict[int, DeltaBody] = {}
        self.entries_bodies: dict[int, EntriesBody] = {}
        self.snapshot_version: int | None = None
        self._compact = trust.compact.copy()
        self._log_verified = checkpoint.size == trust.version

    @property
    def target(self) -> int:
        """The version this update ends at (the checkpoint's tree size)."""
        return self.checkpoint.size

    @property
    def is_current(self) -> bool:
        """True when the checkpoint only refreshes the time of the trusted version."""
        return self.target == self.trust.version

    @property
    def next_version(self) -> int:
        return self.trust.version + len(self.headers) + 1

    def header(self, version: int) -> DeltaHeader:
        index = version - self.trust.version - 1
        if not 0 <= index < len(self.headers):
            raise ConsistencyError(f"header v{version} has not been verified in this update")
        return self.headers[index]

    # -- headers ----------------------------------------------------------------------

    def _signing_root(self, data: bytes, sidecar: SignatureSidecar, floor: int) -> Root:
        """The newest trusted root, at or above ``floor``, whose delta role signed ``data``."""
        hub = self._hub
        errors: list[str] = []
        for version in sorted((v for v in hub._roots if v >= floor), reverse=True):
            try:
                hub.root_at(version).verify_role(
                    "delta", data, sidecar, f"header {self.next_version}"
                )
            except SignatureError as e:
                errors.append(str(e))
                continue
            return hub.root_at(version)
        newest = hub.root.version
        raise SignatureError(
            f"list {self.spec.list_id} header v{self.next_version}: not signed by the delta role "
            f"of any trusted root ≥ v{floor} (the root walk ended at v{newest}; a header "
            f"signed under a later root needs root/{newest + 1}.json): " + "; ".join(errors[:2])
        )

    def _check_not_superseded(self, header: DeltaHeader, where: str) -> None:
        """A later root that changed the delta role retires the keys it removed (§13.4 step 9).

        Only roots whose ``delta`` role differs from their predecessor's count: they alone
        retire keys, and their ``first_version`` is the list's next version when they were
        made. A root that changes only policy, other roles or the lists retires nothing;
        counting it would void headers already published under an older root (ADR 0004).
        """
        roots = self._hub._roots
        for version in sorted(roots):
            if version <= header.root_version:
                continue
            root = roots[version]
            if not root.rotates_delta(roots[version - 1]):
                continue
            spec = root.lists.get(header.list_id)
            if spec is not None and header.version >= spec.first_version:
                raise SignatureError(
                    f"{where}: signed under root v{header.root_version}, but root v{version} "
                    f"rotated the delta role and requires versions ≥ {spec.first_version} "
                    "to be signed under it or later"
                )

    def add_header(self, data: bytes, sig: bytes) -> DeltaHeader:
        """Verify the next header (version ``next_version``) and append its leaf to the log.

        Signature first (by the delta role of a trusted root no older than the previous
        header's), then parse, then every link: list, version, ``prev``, ``base_state``,
        root version, creation time. After the last header the Merkle root must
        reproduce the checkpoint's.
        """
        limits = self._hub.limits
        limits.check("delta header", data, limits.header_bytes)
        limits.check("delta header signature", sig, limits.sig_bytes)
        expected = self.next_version
        if expected > self.target:
            raise ConsistencyError(
                f"header v{expected} is beyond the checkpoint size {self.target}"
            )
        previous = self.headers[-1] if self.headers else None
        floor_version = previous.root_version if previous else self.trust.root_version
        sidecar = SignatureSidecar.from_bytes(sig)
        signer = self._signing_root(data, sidecar, floor_version)
        header = DeltaHeader.from_bytes(data)
        where = f"list {self.spec.list_id} header v{expected}"
        if header.root_version != signer.version:
            self._check_named_root(header, data, sidecar, floor_version, where)
        self._check_links(header, previous, expected, where)
        self._check_time_and_size(header, where)
        compact = self._compact.copy()
        compact.append(header.leaf_hash)
        if header.version == self.target and compact.root() != self.checkpoint.root_hash:
            raise ConsistencyError(
                f"list {self.spec.list_id}: headers 1..{self.target} do not reproduce the "
                "checkpoint's root hash (inflated checkpoint or rewritten history)"
            )
        # Only now, with every check passed, does the update change.
        self.headers.append(header)
        self._compact = compact
        self._log_verified = header.version == self.target
        return header

    def _check_named_root(
        self,
        header: DeltaHeader,
        data: bytes,
        sidecar: SignatureSidecar,
        floor_version: int,
        where: str,
    ) -> None:
        """A header naming another root than the one whose key signed it: that root must be
        trusted, not older than the previous header's, and its delta role must sign too."""
        newest = self._hub.root.version
        if header.root_version > newest:
            # Signed by a trusted delta key, so the claim is authentic: the hub made
            # that root, and this verifier's walk stopped short of it (§13.1 item 2).
            raise MissingFileError(
                root_path(newest + 1),
                f"{where} names root v{header.root_version} and the root walk ended at v{newest}",
            )
        named = self._hub._roots.get(header.root_version)
        if named is None or header.root_version < floor_version:
            raise RollbackError(
                f"{where}: names root v{header.root_version}, outside the trusted "
                f"v{floor_version}..v{self._hub.root.version}"
            )
        named.verify_role("delta", data, sidecar, where)

    def _check_links(
        self, header: DeltaHeader, previous: DeltaHeader | None, expected: int, where: str
    ) -> None:
        """The header continues this list's log: its list, version, ``prev`` leaf,
        ``base_state`` and creation time follow the previous header (or the trust)."""
        if header.list_id != self.spec.list_id:
            raise ConsistencyError(f"{where}: belongs to list {header.list_id!r}")
        if header.version != expected:
            raise ConsistencyError(f"{where}: carries version {header.version}")
        self._hub.root_at(header.root_version).list_spec(header.list_id)
        self._check_not_superseded(header, where)
        prev_leaf = previous.leaf_hash.hex() if previous else self.trust.last_leaf
        if header.prev != prev_leaf:
            raise ConsistencyError(f"{where}: prev does not match the leaf hash of v{expected - 1}")
        prev_state = previous.result_state if previous else self.trust.state
        if header.base_state != prev_state:
            raise ConsistencyError(f"{where}: base_state is not the result of v{expected - 1}")
        prev_created = previous.created if previous else self.trust.last_created
        if prev_created is not None and header.created < prev_created:
            raise RollbackError(f"{where}: created before v{expected - 1}")

    def _check_time_and_size(self, header: DeltaHeader, where: str) -> None:
        """Not created in the future (beyond the clock skew), and a body within the cap of
        the root the header names."""
        skew = timedelta(seconds=self._hub.root.policy.max_clock_skew)
        if header.created > self._hub.now + skew:
            raise FreezeError(f"{where}: created {format_time(header.created)}, in the future")
        # A header is judged by the policy of the root it names: a later root that
        # lowers the cap must not make already-published history unverifiable.
        body_cap = self._hub.root_at(header.root_version).policy.max_body_bytes
        if header.body.length > body_cap:
            raise LimitError(
                f"{where}: body of {header.body.length} bytes exceeds the policy cap of {body_cap}"
            )

    @property
    def log_verified(self) -> bool:
        """True once every header up to the checkpoint size verified and the root matched."""
        return self._log_verified

    def _require_log(self) -> None:
        if not self._log_verified:
            raise ConsistencyError(
                f"list {self.spec.list_id}: headers up to v{self.target} "
                "must verify before data is used"
            )

    # -- snapshot and bodies ----------------------------------------------------------

    def _format(self, entries: bool, what: str) -> None:
        """Refuse to read a list's files as the other format's."""
        if self.spec.entries != entries:
            raise MalformedError(
                f"list {self.spec.list_id} holds {self.spec.format}: {what} is for the other format"
            )

    def add_snapshot(self, version: int, data: bytes) -> ListState:
        """Verify a snapshot against the ``result_state`` its header signs; it becomes the base."""
        self._require_log()
        self._format(False, "add_snapshot")
        header = self.header(version)
        expected_len = header.result_state.count * self.spec.hash_length
        if len(data) != expected_len:
            raise LimitError(
                f"snapshot v{version}: {len(data)} bytes, header promises {expected_len}"
            )
        if hashlib.sha256(data).hexdigest() != header.result_state.sha256:
            raise ConsistencyError(f"snapshot v{version}: SHA-256 does not match result_state")
        state = ListState.from_snapshot(self.spec.hash_length, data)
        self.snapshot_version = version
        return state

    def add_entries_snapshot(self, version: int, data: bytes) -> EntryState:
        """``add_snapshot`` for an ``entries`` list: no longer than its records can be,
        its SHA-256 the ``result_state``'s, every record by the grammar and the
        vocabulary of the root that signed the header, as many as it signs."""
        self._require_log()
        self._format(True, "add_entries_snapshot")
        header = self.header(version)
        kind = hash_type(self.spec.hash_type)
        most = header.result_state.count * (record_limit(kind) + 1)
        if len(data) > most:
            raise LimitError(
                f"snapshot v{version}: {len(data)} bytes, more than "
                f"{header.result_state.count} records can be"
            )
        if hashlib.sha256(data).hexdigest() != header.result_state.sha256:
            raise ConsistencyError(f"snapshot v{version}: SHA-256 does not match result_state")
        vocabulary = self._hub.root_at(header.root_version).vocabulary
        state = EntryState.from_snapshot(kind, data, vocabulary)
        if state.count != header.result_state.count:
            raise ConsistencyError(
                f"snapshot v{version}: {state.count} records, header signs "
                f"{header.result_state.count}"
            )
        self.snapshot_version = version
        return state

    def snapshot_due(self, version: int) -> bool:
        """Whether a snapshot must exist at ``version`` (PROTOCOL.md §8).

        Decided by the ``snapshot_every`` of the root header ``version`` names: the
        hub followed that root's declaration when it published the version, so a
        later root changing ``snapshot_every`` never makes a published snapshot
        missing, nor a missing one excused.
        """
        header = self.header(version)
        spec = self._hub.root_at(header.root_version).lists.get(header.list_id)
        return spec is not None and spec.snapshot_due(version)

    def snapshots_due(self) -> list[int]:
        """The versions verified in this update at which a snapshot is due, ascending."""
        self._require_log()
        return [h.version for h in self.headers if self.snapshot_due(h.version)]

    @property
    def base_version(self) -> int:
        """The version whose state the bodies apply to: the snapshot's, or the trusted one."""
        return self.snapshot_version if self.snapshot_version is not None else self.trust.version

    def base_state(self) -> StateDigest:
        if self.snapshot_version is not None:
            return self.header(self.snapshot_version).result_state
        return self.trust.state

    def bodies_needed(self) -> list[DeltaHeader]:
        """Headers whose bodies must still be fetched, in version order."""
        self._require_log()
        return [
            h
            for h in self.headers
            if h.version > self.base_version
            and h.version not in self.bodies
            and h.version not in self.entries_bodies
        ]

    def _body_bytes(self, version: int, data: bytes) -> DeltaHeader:
        """The header of ``version``, once ``data`` is the body it signs (length, SHA-256)."""
        self._require_log()
        header = self.header(version)
        ref = header.body
        if len(data) != ref.length:
            raise LimitError(f"body v{version}: {len(data)} bytes, header says {ref.length}")
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise ConsistencyError(f"body v{version}: SHA-256 does not match the header")
        return header

    def add_body(self, version: int, data: bytes) -> DeltaBody:
        """Verify a body by the length and SHA-256 its header signs, then parse it strictly."""
        self._format(False, "add_body")
        header = self._body_bytes(version, data)
        body = DeltaBody.from_bytes(data, self.spec.hash_type)
        body.check_ref(header.body)
        self.bodies[version] = body
        return body

    def add_entries_body(self, version: int, data: bytes) -> EntriesBody:
        """``add_body`` for an ``entries`` list: parsed strictly, every added record's
        terms in the vocabulary of the root that signed the header, and its times
        (first seen, expiry) consistent with the header's ``created``."""
        self._format(True, "add_entries_body")
        header = self._body_bytes(version, data)
        body = EntriesBody.from_bytes(data, self.spec.hash_type)
        body.check_ref(header.body)
        body.check_vocabulary(self._hub.root_at(header.root_version).vocabulary)
        body.check_times(header.created)
        self.entries_bodies[version] = body
        return body

    # -- apply ------------------------------------------------------------------------

    def check_base(self, local: StateDigest) -> None:
        """The verifier's own state must be the base the first body was made against."""
        expected = self.base_state()
        if local != expected:
            raise StateMismatchError(
                f"list {self.spec.list_id}: local state {local.count}/{local.sha256[:16]} is not "
                f"the base {expected.count}/{expected.sha256[:16]} "
                f"of v{self.base_version + 1}; resync"
            )

    def ordered_bodies(self) -> list[tuple[DeltaHeader, DeltaBody]]:
        """Every body after the base, in order; raises if one is missing."""
        return self._ordered(self.bodies)

    def ordered_entries_bodies(self) -> list[tuple[DeltaHeader, EntriesBody]]:
        """``ordered_bodies`` of an ``entries`` list."""
        return self._ordered(self.entries_bodies)

    def _ordered(self, bodies: Mapping[int, B]) -> list[tuple[DeltaHeader, B]]:
        self._require_log()
        out = []
        for header in self.headers:
            if header.version <= self.base_version:
                continue
            body = bodies.get(header.version)
            if body is None:
                raise ConsistencyError(f"body v{header.version} has not been verified")
            out.append((header, body))
        return out

    def finish(self, result: StateDigest) -> ListTrust:
        """Given the digest of the state after applying every body, return the new trust record.

        Raises:
            ConsistencyError: ``result`` differs from what the last header signs.
        """
        self._require_log()
        if self.is_current:
            return replace(
                self.trust,
                checkpoint=self.checkpoint.raw,
                checkpoint_time=self.checkpoint.timestamp,
            )
        if self.spec.entries:
            self.ordered_entries_bodies()
        else:
            self.ordered_bodies()
        last = self.headers[-1]
        if result != last.result_state:
            raise ConsistencyError(
                f"list {self.spec.list_id}: state after v{last.version} is "
                f"{result.count}/{result.sha256[:16]}, header signs "
                f"{last.result_state.count}/{last.result_state.sha256[:16]}"
            )
        return ListTrust(
            list_id=self.trust.list_id,
            version=last.version,
            compact=self._compact.copy(),
            last_leaf=last.leaf_hash.hex(),
            state=last.result_state,
            root_version=last.root_version,
            last_created=last.created,
            checkpoint=self.checkpoint.raw,
            checkpoint_time=self.checkpoint.timestamp,
        )

    def apply(
        self, state: ListState, *, check_every_version: bool = False
    ) -> tuple[ListState, ListTrust]:
        """Apply every body to an in-memory ``state`` and finish.

        Args:
            state: the base state (the trusted one, or the snapshot's).
            check_every_version: also compare the digest after each version with its
                header's ``result_state`` (the auditor's full check; costs one hash
                pass per version).
        """
        self.check_base(state.digest())
        for header, body in self.ordered_bodies():
            state = state.apply(body.removes, body.adds)
            self._check_version(header, state.digest, check_every_version)
        return state, self.finish(state.digest())

    def apply_entries(
        self, state: EntryState, *, check_every_version: bool = False
    ) -> tuple[EntryState, ListTrust]:
        """``apply`` for an ``entries`` list."""
        self.check_base(state.digest())
        for header, body in self.ordered_entries_bodies():
            state = state.apply(body)
            self._check_version(header, state.digest, check_every_version)
        return state, self.finish(state.digest())

    def _check_version(
        self, header: DeltaHeader, digest: Callable[[], StateDigest], check: bool
    ) -> None:
        if check and digest() != header.result_state:
            raise ConsistencyError(
                f"list {self.spec.list_id}: state after v{header.version} "
                "differs from its result_state"
            )


def _note_key_ids(root: Root, keyids: Iterable[str], name: str, alg: int) -> dict[bytes, list[str]]:
    """The 4-byte note key ids of a role's keys under ``name``, each with the keys that
    have it (two keys of one role colliding on 32 bits is unlikely but not impossible)."""
    found: dict[bytes, list[str]] = {}
    for keyid in keyids:
        found.setdefault(note_key_id(name, alg, root.keys[keyid]), []).append(keyid)
    return found
