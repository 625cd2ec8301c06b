"""The fetch checkpoint: everything the bridge trusts, handed to python-threatexchange to keep.

A pytx exchange keeps no state of its own: the CLI pickles the checkpoint, HMA stores
it as JSON. So the checkpoint carries what a hashhub node keeps in its SQLite store,
in plain JSON types:

- ``roots``: every trusted root version, bytes and signature sidecar (base64), so each
  fetch re-verifies the chain from the pinned root rather than trusting a parse;
- ``lists``: per followed list, its ``ListTrust`` record (version, compact range of the
  log, last leaf, state digest, last accepted checkpoint note and its time) and the
  list's state (its hashes, sorted, base64; for a list of ``entries``, its record
  lines as the list's snapshot writes them, and ``format`` says so). The state is
  what lets the next update check every body against its base and every result
  against the signed digest, and compute exact tombstones when a snapshot replaces
  it. It costs 4/3 of the raw hash bytes (about 43 MB of base64 for a million PDQ
  hashes), less than pytx keeps for the same hashes as records;
- for a list of entries, its newest opinion summary (PROTOCOL.md §10.7), the bytes of
  the header naming it and of the headers applied since without one: what the
  platforms say of its entries, which each record carries (``hashhub_tx.entries``);
- for a ``vpdq`` list, the frames file of each record it holds (base64, by the
  record's hash): pytx knows a video only by its frames (``hashhub_tx.video``), so a
  record is sent again or tombstoned by them, and the follower fetches only the
  frames of the records an update adds. They cost 37 bytes a frame (4/3 of that in
  base64: about 296 MB for 100,000 videos of 60 frames), less than the JSON pytx
  keeps for the same signals (about 80 bytes a frame), and every one is checked
  against its record's hash when the checkpoint is opened.

A checkpoint comes back from storage the bridge does not control, so it is verified
before use (``open_checkpoint``), without the network: the pin must be this
collaboration's, the roots must chain from it, every state must hash to its trust
record's digest, and every trusted version and compact range must be the ones a
checkpoint note signed by the hub vouches for; a summary must be the one its header
names, under the rules of §10.7 and the root that signed that header, and the header
must chain to the list's trusted last leaf. A forged checkpoint therefore stops the
bridge with ``CheckpointError``; what it cannot catch here (a forged ``last_leaf``, or a
state and digest forged together) breaks the chain of the next signed header and is
rejected there. Either way nothing is yielded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from threatexchange.exchanges.fetch_state import FetchCheckpointBase

from follow import StoredEntries, StoredList
from hashhub_tx._store import Followed, KeptOpinions, ListFrames, hash_set
from hashhub_tx.errors import CheckpointError
from protocol import (
    HASH_TYPES,
    EntryState,
    Limits,
    ListState,
    ListTrust,
    OpinionSummary,
    ProtocolError,
    SignedCheckpoint,
    TrustedHub,
    b64decode,
    b64encode,
    verify_summary,
)
from protocol.delta import DeltaHeader
from protocol.entries import LIST_FORMATS, Vocabulary
from protocol.errors import ConsistencyError
from protocol.opinions import OpinionsRef, header_opinions
from protocol.video import read_frames_file

__all__ = [
    "CHECKPOINT_FORMAT",
    "HashhubCheckpoint",
    "ListCheckpoint",
    "SignedRoot",
    "make_checkpoint",
    "open_checkpoint",
]

CHECKPOINT_FORMAT = 1
"""Bumped on any change of meaning; a checkpoint of another format is refused."""


@dataclass
class SignedRoot:
    """One trusted root version: its bytes and signature sidecar, base64."""

    data: str
    sig: str


@dataclass
class ListCheckpoint:
    """One followed list: hash type, trust record (JSON text), state (base64) and the
    list's format (``entries``: the state is its record lines, as a snapshot)."""

    hash_type: str
    trust: str
    state: str
    format: str = "hashes"
    """Written ``hashes`` by a bridge before lists of entries, so such a checkpoint
    still opens."""
    opinions: str | None = None
    """A list of entries' newest opinion summary (base64), or None: none yet, or a
    checkpoint written before summaries were kept (it opens, and the next summary
    fills it)."""
    opinions_header: str | None = None
    """The header naming ``opinions`` (base64): what the summary is verified against."""
    opinions_later: list[str] | None = None
    """The headers applied since ``opinions_header`` without a summary (base64, oldest
    first): they keep the summary as the node does, and chain its header to the
    trusted last leaf."""
    frames: dict[str, str] | None = None
    """A ``vpdq`` list's frames: by record hash (hex), the record's frames file
    (base64); exactly one for each record held. None for a list of another type."""


@dataclass
class HashhubCheckpoint(FetchCheckpointBase):
    """What the bridge trusts after a fetch; resumes exactly (see the module docstring)."""

    pinned_root_sha256: str = ""
    roots: list[SignedRoot] = field(default_factory=list)
    lists: dict[str, ListCheckpoint] = field(default_factory=dict)
    progress: int | None = None
    """Unix time of the newest checkpoint co-signature trusted so far, of any list."""
    fetched: int | None = None
    """Unix time, by the bridge's clock, of the fetch that made this checkpoint: an entry
    that expired by then was handed on as expired then, and is not sent again. (``None``
    in a checkpoint written before it was kept: every expired entry is sent once more.)"""
    format: int = CHECKPOINT_FORMAT

    def get_progress_timestamp(self) -> int | None:
        """``progress``: never goes back, which the pytx CLI asserts between fetches.

        Each list's co-signature time only moves forward (an older one is a rollback),
        and ``make_checkpoint`` keeps the previous value as a floor, so a list that is
        no longer followed cannot take the time back either.
        """
        return self.progress


def _trust_text(trust: ListTrust) -> str:
    return json.dumps(trust.to_dict(), sort_keys=True, separators=(",", ":"))


def make_checkpoint(
    pinned_root_sha256: str,
    roots: Iterable[tuple[bytes, bytes]],
    lists: Mapping[str, Followed],
    *,
    progress: int | None = None,
    fetched: datetime | None = None,
    opinions: Mapping[str, KeptOpinions] | None = None,
    frames: Mapping[str, ListFrames] | None = None,
) -> HashhubCheckpoint:
    """The checkpoint for trusted ``roots`` (oldest first), ``lists``, the opinion
    summaries of its lists of entries (``opinions``) and the frames of its ``vpdq``
    lists (``frames``).

    ``progress`` is the previous checkpoint's: the new one is never below it.
    ``fetched`` is the time of the fetch making it.
    """
    kept = opinions or {}
    videos = frames or {}
    times = [
        int(s.trust.checkpoint_time.timestamp()) for s in lists.values() if s.trust.checkpoint_time
    ]
    if progress is not None:
        times.append(progress)
    return HashhubCheckpoint(
        pinned_root_sha256=pinned_root_sha256,
        roots=[SignedRoot(b64encode(data), b64encode(sig)) for data, sig in roots],
        lists={
            list_id: _list_checkpoint(stored, kept.get(list_id), videos.get(list_id))
            for list_id, stored in sorted(lists.items())
        },
        progress=max(times) if times else None,
        fetched=int(fetched.timestamp()) if fetched is not None else None,
    )


def _list_checkpoint(
    stored: Followed, kept: KeptOpinions | None, frames: ListFrames | None
) -> ListCheckpoint:
    out = ListCheckpoint(
        stored.hash_type,
        _trust_text(stored.trust),
        b64encode(stored.state.to_bytes()),
        "entries" if isinstance(stored, StoredEntries) else "hashes",
    )
    if kept is not None and isinstance(stored, StoredEntries):
        out.opinions = b64encode(kept.data)
        out.opinions_header = b64encode(kept.header)
        out.opinions_later = [b64encode(h) for h in kept.later]
    if HASH_TYPES[stored.hash_type].frames:
        held = frames or {}
        out.frames = {record.hex(): b64encode(held[record]) for record in sorted(held)}
    return out


def open_checkpoint(
    checkpoint: HashhubCheckpoint,
    pinned_root_sha256: str,
    *,
    now: datetime,
    limits: Limits | None = None,
) -> tuple[
    list[tuple[bytes, bytes]],
    dict[str, Followed],
    dict[str, KeptOpinions],
    dict[str, ListFrames],
]:
    """Verify a stored checkpoint offline; return its roots, lists, opinion summaries
    and the frames of its ``vpdq`` lists.

    Raises:
        CheckpointError: another format or pin, a root chain that does not verify from
            the pin, a state that does not hash to its digest, a trusted version
            and compact range that no signed checkpoint note vouches for, or an
            opinion summary that is not the one a header chained to the list's last
            leaf names, under the rules of §10.7; a ``vpdq`` list whose frames are
            not exactly those of its records, each hashing to its record.
    """
    if checkpoint.format != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint format {checkpoint.format} is not {CHECKPOINT_FORMAT}")
    if checkpoint.pinned_root_sha256 != pinned_root_sha256:
        raise CheckpointError(
            "the checkpoint was made under another pinned root: clear the fetched state"
        )
    if not checkpoint.roots:
        raise CheckpointError("the checkpoint holds no root")
    try:
        roots = [
            (b64decode(r.data, "checkpoint root"), b64decode(r.sig, "checkpoint root sig"))
            for r in checkpoint.roots
        ]
        (first, first_sig), *rest = roots
        hub = TrustedHub(first, first_sig, now=now, pinned_sha256=pinned_root_sha256, limits=limits)
        for data, sig in rest:
            hub.update_root(data, sig)
    except ProtocolError as e:
        raise CheckpointError(f"the checkpoint's roots do not verify: {e}") from e
    # One verifier per trusted root: a note is checked under the root it was accepted by.
    verifiers = [
        TrustedHub(data, sig, now=now, pinned_version=None, limits=limits)
        for data, sig in reversed(roots)
    ]
    lists = {}
    opinions = {}
    frames = {}
    for list_id, entry in checkpoint.lists.items():
        stored = _open_list(list_id, entry, verifiers, hub.root.vocabulary)
        lists[list_id] = stored
        kept = _open_opinions(list_id, entry, stored, hub)
        if kept is not None:
            opinions[list_id] = kept
        held = _open_frames(list_id, entry, stored)
        if held is not None:
            frames[list_id] = held
    return roots, lists, opinions, frames


def _open_frames(list_id: str, entry: ListCheckpoint, stored: Followed) -> ListFrames | None:
    """A ``vpdq`` list's frames, verified offline: one file for each record it holds,
    none for another, each hashing to its record and read by PROTOCOL.md §6.3's rules
    (``read_frames_file``). None for a list of another type, which keeps none."""
    where = f"checkpoint list {list_id!r}: frames"
    if not HASH_TYPES[stored.hash_type].frames:
        if entry.frames:
            raise CheckpointError(f"{where}: a {stored.hash_type} list has no frames")
        return None
    kept = entry.frames or {}
    records = set(hash_set(stored))
    held: dict[bytes, bytes] = {}
    try:
        for record_hex, data in kept.items():
            record = bytes.fromhex(record_hex)
            if record not in records:
                raise CheckpointError(f"{where}: {record_hex[:64]} is not a record the list holds")
            held[record] = b64decode(data, where)
            read_frames_file(record, held[record])
    except (ValueError, ProtocolError) as e:
        raise CheckpointError(f"{where}: {e}") from e
    missing = records - held.keys()
    if missing:
        raise CheckpointError(f"{where}: none for the record {min(missing).hex()}")
    return held


def _open_list(
    list_id: str,
    entry: ListCheckpoint,
    verifiers: list[TrustedHub],
    vocabulary: Vocabulary | None,
) -> Followed:
    """One list of the checkpoint, its state checked against its trust record; the
    records of a list of entries are held to the newest trusted root's vocabulary
    (a root's vocabulary only ever grows, so every record applied before fits it)."""
    where = f"checkpoint list {list_id!r}"
    kind = HASH_TYPES.get(entry.hash_type)
    if kind is None:
        raise CheckpointError(f"{where}: unknown hash type {entry.hash_type!r}")
    if entry.format not in LIST_FORMATS:
        raise CheckpointError(f"{where}: unknown list format {entry.format[:32]!r}")
    try:
        trust = ListTrust.from_dict(json.loads(entry.trust))
        data = b64decode(entry.state, where)
        state: ListState | EntryState = (
            EntryState.from_snapshot(kind, data, vocabulary)
            if entry.format == "entries"
            else ListState.from_snapshot(kind.length, data)
        )
    except (ValueError, ProtocolError) as e:
        raise CheckpointError(f"{where}: {e}") from e
    if trust.list_id != list_id:
        raise CheckpointError(f"{where}: holds the trust record of {trust.list_id!r}")
    if state.digest() != trust.state:
        raise CheckpointError(f"{where}: the state does not hash to its trusted digest")
    if trust.version or trust.checkpoint:
        _check_note(list_id, trust, verifiers)
    if isinstance(state, EntryState):
        return StoredEntries(list_id, entry.hash_type, trust, state)
    return StoredList(list_id, entry.hash_type, trust, state)


def _check_note(list_id: str, trust: ListTrust, verifiers: list[TrustedHub]) -> None:
    """The trusted version and compact range must be those of a note the hub signed."""
    where = f"checkpoint list {list_id!r}"
    try:
        note = SignedCheckpoint.from_bytes(trust.checkpoint).checkpoint
    except ProtocolError as e:
        raise CheckpointError(f"{where}: the stored checkpoint note does not parse: {e}") from e
    if note.size != trust.version or note.root_hash != trust.compact.root():
        raise CheckpointError(
            f"{where}: version {trust.version} and its log are not the ones the stored "
            f"checkpoint note signs (size {note.size})"
        )
    errors = []
    for verifier in verifiers:
        try:
            verifier.verify_checkpoint(list_id, trust.checkpoint)
        except ProtocolError as e:
            errors.append(f"root v{verifier.root.version}: {e}")
            continue
        return
    raise CheckpointError(
        f"{where}: the stored checkpoint note is signed by no trusted root: " + "; ".join(errors)
    )


def _open_opinions(
    list_id: str, entry: ListCheckpoint, stored: Followed, hub: TrustedHub
) -> KeptOpinions | None:
    """A list's stored opinion summary, verified offline, or None if it keeps none.

    The header naming it must chain, through the headers applied since, to the
    trusted last leaf. A summary of the trusted version is verified in full
    (``verify_summary``, against the state held); an older one, kept through versions
    that came without a summary, against its header and root (the entries it names
    were checked against its version's state when it was fetched; the records read it
    only for the entries still held).
    """
    where = f"checkpoint list {list_id!r}: opinions"
    parts = (entry.opinions, entry.opinions_header)
    if parts == (None, None) and not entry.opinions_later:
        return None
    if entry.opinions is None or entry.opinions_header is None:
        raise CheckpointError(f"{where}: a summary and its header are kept together")
    if not isinstance(stored, StoredEntries):
        raise CheckpointError(f"{where}: a list of bare hashes has no opinion summary")
    try:
        data = b64decode(entry.opinions, where)
        header_bytes = b64decode(entry.opinions_header, where)
        later = [b64decode(h, where) for h in entry.opinions_later or []]
        header = DeltaHeader.from_bytes(header_bytes)
        _check_chain(list_id, header, [DeltaHeader.from_bytes(h) for h in later], stored.trust)
        root = hub.root_at(header.root_version)
        if later:
            summary = _kept_summary(header, data, root.policy.disputes_at)
        else:
            summary = verify_summary(header, data, root, stored.state)
    except (ValueError, ProtocolError) as e:
        raise CheckpointError(f"{where}: {e}") from e
    return KeptOpinions(summary, data, header_bytes, tuple(later))


def _check_chain(
    list_id: str, header: DeltaHeader, later: list[DeltaHeader], trust: ListTrust
) -> None:
    """``header`` and the ``later`` headers follow each other and end at the trusted
    last leaf and version: the summary's header is in the list's trusted log."""
    previous = header
    for following in later:
        if (following.version, following.prev) != (
            previous.version + 1,
            previous.leaf_hash.hex(),
        ):
            raise ConsistencyError(
                f"header v{following.version} does not follow header v{previous.version}"
            )
        previous = following
    if header.list_id != list_id or any(h.list_id != list_id for h in later):
        raise ConsistencyError(f"a header is not of list {list_id}")
    if previous.version != trust.version or previous.leaf_hash.hex() != trust.last_leaf:
        raise ConsistencyError(
            f"header v{previous.version} is not the trusted last leaf (v{trust.version})"
        )


def _kept_summary(header: DeltaHeader, data: bytes, threshold: int) -> OpinionSummary:
    """A summary kept from an older version: the bytes its header names, for its list,
    version and time, under its root's threshold."""
    if OpinionsRef.of(data) != header_opinions(header):
        raise ConsistencyError(f"opinions v{header.version}: not the bytes the header names")
    summary = OpinionSummary.from_bytes(data)
    if (summary.list_id, summary.version, summary.created, summary.threshold) != (
        header.list_id,
        header.version,
        header.created,
        threshold,
    ):
        raise ConsistencyError(f"opinions v{summary.version}: not the summary of its header")
    return summary
