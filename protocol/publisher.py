"""The publisher: from a list's changes to the exact files of its next version.

Pure: it returns ``{path: bytes}`` in publication order (body → header →
signature → snapshot → checkpoint), and the hub writes them in that order, so a
reader never sees a reference to a file that is not there yet. Tests, the demo
and the vector generator use it directly; the hub persists what it produces.

The publisher signs only what the rules let each role sign: the delta role signs
headers, the checkpoint role the note, the timestamp role the co-signature, the
root role roots. It never signs two different roots for one tree size: a
re-issued checkpoint (``checkpoint``) repeats the deterministic Ed25519 line
over the same text and only the co-signature's time changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from protocol._fields import require_aware
from protocol.checkpoint import Checkpoint, SignedCheckpoint, cosign, sign_note
from protocol.delta import GENESIS_PREV, BodyRef, DeltaBody, DeltaHeader
from protocol.entries import EntriesBody, Entry, EntryState, Removal
from protocol.errors import MalformedError, SignatureError
from protocol.keys import SigningKey, sign_bytes
from protocol.layout import (
    body_path,
    checkpoint_path,
    frames_path,
    header_path,
    opinions_path,
    provenance_path,
    root_path,
    sig_path,
    snapshot_path,
)
from protocol.lists import hash_type
from protocol.merkle import CompactRange
from protocol.opinions import OpinionsRef, OpinionSummary
from protocol.provenance import Provenance, verify_provenance
from protocol.root import ROLE_NAMES, Root
from protocol.state import ListState
from protocol.video import read_frames_file

__all__ = ["ListHead", "Publication", "Publisher", "root_files"]


S = TypeVar("S", ListState, EntryState)


@dataclass
class ListHead(Generic[S]):
    """The publisher's view of a list after its last published version (``S``: its
    state, bare hashes or entry records)."""

    list_id: str
    state: S
    version: int = 0
    compact: CompactRange = field(default_factory=CompactRange)
    last_leaf: str = GENESIS_PREV
    last_created: datetime | None = None

    @staticmethod
    def empty(root: Root, list_id: str) -> ListHead[ListState]:
        """A ``hashes`` list before its first version."""
        spec = root.list_spec(list_id)
        if spec.entries:
            raise MalformedError(f"list {list_id} holds entries: ListHead.empty_entries")
        return ListHead(list_id, ListState(spec.hash_length))

    @staticmethod
    def empty_entries(root: Root, list_id: str) -> ListHead[EntryState]:
        """An ``entries`` list before its first version."""
        spec = root.list_spec(list_id)
        if not spec.entries:
            raise MalformedError(f"list {list_id} holds bare hashes: ListHead.empty")
        return ListHead(list_id, EntryState(hash_type(spec.hash_type)))


@dataclass(frozen=True)
class Publication(Generic[S]):
    """One published version: its header, its files in publication order, and the new head."""

    header: DeltaHeader
    files: dict[str, bytes]
    head: ListHead[S]


def root_files(root: Root, keys: Iterable[SigningKey]) -> dict[str, bytes]:
    """``root/<N>.json`` and its sidecar, signed by ``keys`` (for a rotation: old and new)."""
    data, sig = root.sign(keys)
    path = root_path(root.version)
    return {path: data, sig_path(path): sig}


class Publisher:
    """Signs versions of lists under one root version.

    Args:
        root: the newest root; its roles decide which keys must sign.
        signers: private keys by role name. Each role needs at least its threshold
            of keys that the root lists for it; ``root`` keys are optional here.
    """

    def __init__(self, root: Root, signers: Mapping[str, Sequence[SigningKey]]) -> None:
        self.root = root
        self._signers: dict[str, list[SigningKey]] = {}
        for role in ROLE_NAMES:
            keys = list(signers.get(role, ()))
            allowed = set(root.roles[role].keyids)
            stray = [k.keyid[:16] for k in keys if k.keyid not in allowed]
            if stray:
                raise SignatureError(
                    f"key(s) {stray} are not in the {role} role of root v{root.version}"
                )
            if role != "root" and len(keys) < root.roles[role].threshold:
                raise SignatureError(
                    f"{role} role needs {root.roles[role].threshold} key(s), {len(keys)} given"
                )
            self._signers[role] = keys

    def checkpoint(self, list_id: str, size: int, root_hash: bytes, now: datetime) -> bytes:
        """A checkpoint note: the checkpoint role's lines and fresh timestamp co-signatures."""
        origin = self.root.origin(list_id)
        cp = Checkpoint(origin, size, root_hash)
        lines = [sign_note(cp, key, origin) for key in self._signers["checkpoint"]]
        moment = require_aware(now, "checkpoint time")
        lines += [
            cosign(cp, key, self.root.timestamp_name, moment) for key in self._signers["timestamp"]
        ]
        return SignedCheckpoint(cp, tuple(lines)).to_bytes()

    def refresh(self, head: ListHead[Any], now: datetime) -> bytes:
        """Re-issue the current checkpoint of ``head`` with a new co-signature time."""
        return self.checkpoint(head.list_id, head.version, head.compact.root(), now)

    def publish(
        self,
        head: ListHead[ListState],
        *,
        removes: Iterable[bytes] = (),
        adds: Iterable[bytes] = (),
        now: datetime,
    ) -> Publication[ListState]:
        """Make version ``head.version + 1`` from ``removes`` and ``adds``.

        Every removal must be in the list and every addition absent (the hub
        normalises staged changes before calling this).

        Raises:
            StateMismatchError: a removal absent or an addition present.
            MalformedError: a hash of the wrong width.
        """
        spec = self.root.list_spec(head.list_id)
        if spec.entries:
            raise MalformedError(f"list {head.list_id} holds entries: publish_entries")
        now = require_aware(now, "publish time")
        body = DeltaBody.build(spec.hash_type, list(removes), list(adds))
        if head.state.width != spec.hash_length:
            raise MalformedError("list head width differs from the root's declaration")
        new_state = head.state.apply(body.removes, body.adds)
        return self._publish(head, body.to_bytes(), body.ref(), new_state, now)

    def publish_entries(
        self,
        head: ListHead[EntryState],
        *,
        removes: Iterable[Removal] = (),
        adds: Iterable[Entry] = (),
        now: datetime,
        opinions: Callable[[int, datetime, EntryState], OpinionSummary] | None = None,
        provenance: Callable[[int], Provenance] | None = None,
        frames: Mapping[bytes, bytes] | None = None,
    ) -> Publication[EntryState]:
        """Make version ``head.version + 1`` of an ``entries`` list: ``removes`` (records
        by value, each with its reason) and ``adds``, checked by the rules a verifier
        applies (the root's vocabulary, the version's time), so the hub never signs a
        version its nodes would refuse.

        ``opinions``, when given, makes the version's opinion summary (§10.7) from its
        number, its ``created`` and the state it results in; the header then names it
        and it is published before the header, checked as a node would check it.
        ``provenance``, when given, makes the version's provenance document (§7.5)
        from its number, named by the header likewise and checked against the body.
        ``frames`` holds the frames file of every record a list of a frames type
        (``vpdq``) adds, by the record's hash; each is checked against its record
        (``protocol.video.read_frames_file``) and published first, before the body
        that names it (PROTOCOL.md §12).

        Raises:
            StateMismatchError: a removal absent, or an addition's hash or entry held.
            BodyRuleError: the changes break a body rule (``VocabularyError`` a term).
            ConsistencyError: the summary breaks a rule of §10.7.
            MalformedError, ConsistencyError, LimitError: a frames file missing or
                not the one its record names (§6.3).
        """
        spec = self.root.list_spec(head.list_id)
        if not spec.entries:
            raise MalformedError(f"list {head.list_id} holds bare hashes: publish")
        now = require_aware(now, "publish time")
        body = EntriesBody.build(spec.hash_type, removes, adds)
        frames_files = self._frames_files(spec.list_id, body, frames or {})
        body.check_vocabulary(self.root.vocabulary)
        body.check_times(self._created(head, now))
        new_state = head.state.apply(body)
        summary = None
        if opinions is not None:
            summary = opinions(head.version + 1, self._created(head, now), new_state)
        origins = provenance(head.version + 1) if provenance is not None else None
        publication = self._publish(
            head, body.to_bytes(), body.ref(), new_state, now, summary, origins, frames_files
        )
        if origins is not None:
            data = origins.to_bytes()
            verify_provenance(publication.header, data, self.root, body, hash_type(spec.hash_type))
        return publication

    def _frames_files(
        self, list_id: str, body: EntriesBody, frames: Mapping[bytes, bytes]
    ) -> dict[str, bytes]:
        """The frames file of each record ``body`` adds, by path, checked against the
        record, for a list of a frames type; none for any other list."""
        if not hash_type(self.root.list_spec(list_id).hash_type).frames:
            return {}
        files: dict[str, bytes] = {}
        for entry in body.adds:
            data = frames.get(entry.hash)
            if data is None:
                raise MalformedError(
                    f"list {list_id}: no frames for the record of entry {entry.entry_id}"
                )
            read_frames_file(entry.hash, data)
            files[frames_path(list_id, entry.hash.hex())] = data
        return files

    @staticmethod
    def _created(head: ListHead[Any], now: datetime) -> datetime:
        """A version is never made before the one it follows (§7.1)."""
        return max(now, head.last_created) if head.last_created else now

    def _publish(
        self,
        head: ListHead[S],
        body_bytes: bytes,
        ref: BodyRef,
        new_state: S,
        now: datetime,
        summary: OpinionSummary | None = None,
        origins: Provenance | None = None,
        frames_files: Mapping[str, bytes] | None = None,
    ) -> Publication[S]:
        """The header, its signature, the snapshot when due and the checkpoint of the
        version whose body is ``body_bytes`` and whose state becomes ``new_state``;
        with ``summary``, the opinion summary the header names, before the header;
        ``frames_files`` first of all, before the body whose records name them."""
        spec = self.root.list_spec(head.list_id)
        created = self._created(head, now)
        summary_bytes = summary.to_bytes() if summary is not None else b""
        origins_bytes = origins.to_bytes() if origins is not None else b""
        extra: dict[str, Any] = {}
        if summary is not None:
            extra["opinions"] = OpinionsRef.of(summary_bytes).to_dict()
        if origins is not None:
            extra["provenance"] = OpinionsRef.of(origins_bytes).to_dict()
        header = DeltaHeader(
            list_id=head.list_id,
            version=head.version + 1,
            prev=head.last_leaf,
            root_version=self.root.version,
            created=created,
            body=ref,
            base_state=head.state.digest(),
            result_state=new_state.digest(),
            extra=extra,
        )
        if summary is not None:
            assert isinstance(new_state, EntryState)
            summary.check(header, self.root, new_state)
        header_bytes = header.to_bytes()
        header_sig = sign_bytes(header_bytes, self._signers["delta"]).to_bytes()
        compact = head.compact.copy()
        compact.append(header.leaf_hash)
        new_head = ListHead(
            list_id=head.list_id,
            state=new_state,
            version=header.version,
            compact=compact,
            last_leaf=header.leaf_hash.hex(),
            last_created=created,
        )
        hpath = header_path(head.list_id, header.version)
        files = dict(frames_files or {})
        files[body_path(head.list_id, header.body.sha256)] = body_bytes
        if summary is not None:
            files[opinions_path(head.list_id, hashlib.sha256(summary_bytes).hexdigest())] = (
                summary_bytes
            )
        if origins is not None:
            files[provenance_path(head.list_id, hashlib.sha256(origins_bytes).hexdigest())] = (
                origins_bytes
            )
        files |= {
            hpath: header_bytes,
            sig_path(hpath): header_sig,
        }
        if spec.snapshot_due(header.version):
            files[snapshot_path(head.list_id, header.version)] = new_state.to_bytes()
        files[checkpoint_path(head.list_id)] = self.checkpoint(
            head.list_id, header.version, compact.root(), now
        )
        return Publication(header, files, new_head)
