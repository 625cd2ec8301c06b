"""The store ``follow.Syncer`` updates, kept in memory for one fetch.

The bridge runs the follower's update, the node's own (``Syncer``: root walk,
checkpoint, headers, snapshot, bodies, all through ``protocol``'s trust rules)
against this store instead of the node's SQLite file. It starts from a verified
checkpoint and collects what the update commits; nothing leaves it until every list
has verified, when the exchange turns it into the next checkpoint. Failures and
evidence are collected so the exchange can raise with them (and log them: pytx keeps
no evidence table).

A list of entries also keeps its newest verified opinion summary (``KeptOpinions``)
with the header that names it, so the checkpoint can show, offline, that the hub
signed it for a version of the trusted log. A version applied without a summary keeps
the previous one, as the node does, and the headers since: they chain its header to
the trusted last leaf.

A ``vpdq`` list keeps the frames of each record it holds (``frames``: by list, the
frames file of each standing record by the record's hash): the record's hash is the
SHA-256 of its frames, and pytx knows the video only by its frames (its signal
string, ``hashhub_tx.video``), so a record is added, sent again and tombstoned by
them. An update passes the frames of the records it adds; a snapshot, of every
record (``follow.FollowerStore.commit_update``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeAlias

from follow import StoredEntries, StoredList
from hashhub_tx.errors import CheckpointError
from protocol import EntryState, ListState, ListTrust, OpinionSummary
from protocol.delta import DeltaHeader
from protocol.lists import hash_type
from protocol.opinions import OpinionsRef, header_opinions

__all__ = ["CheckpointStore", "Failure", "Followed", "KeptOpinions", "ListFrames", "hash_set"]

Followed: TypeAlias = StoredList | StoredEntries
"""A followed list as the bridge holds it: bare hashes, or entries (records with
their metadata), each with its trust record."""

ListFrames: TypeAlias = Mapping[bytes, bytes]
"""A ``vpdq`` list's frames: the frames file of each record it holds, by the record's
hash."""


def hash_set(stored: Followed) -> ListState:
    """The hashes a followed list holds, whatever its format."""
    if isinstance(stored, StoredEntries):
        return stored.state.as_hashes()
    return stored.state


@dataclass(frozen=True)
class KeptOpinions:
    """A list's newest verified opinion summary, as the checkpoint keeps it.

    ``data`` is the summary's bytes, ``header`` the bytes of the header naming it, and
    ``later`` the headers of the versions applied since without a summary, oldest
    first: the chain from ``header`` to the list's trusted last leaf.
    """

    summary: OpinionSummary
    data: bytes
    header: bytes
    later: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Failure:
    """One failed list: the error and whether it is evidence (a protocol rejection)."""

    list_id: str
    error: Exception
    evidence: bool

    def __str__(self) -> str:
        return f"{self.list_id}: {type(self.error).__name__}: {self.error}"


class CheckpointStore:
    """What ``Syncer`` reads and writes (``follow.FollowerStore``), held in memory."""

    def __init__(
        self,
        roots: Sequence[tuple[bytes, bytes]],
        lists: dict[str, Followed],
        opinions: dict[str, KeptOpinions] | None = None,
        frames: Mapping[str, ListFrames] | None = None,
    ) -> None:
        self._roots = list(roots)
        self.lists = dict(lists)
        """The trusted lists: the checkpoint's, replaced list by list as updates commit."""
        self.opinions = dict(opinions or {})
        """The trusted opinion summaries, by list: the checkpoint's."""
        self.committed: dict[str, Followed] = {}
        self.frames = dict(frames or {})
        """The trusted frames, by ``vpdq`` list: the checkpoint's."""
        self.committed_opinions: dict[str, KeptOpinions | None] = {}
        """By list committed, its summary after the update (None: it has none)."""
        self.committed_frames: dict[str, ListFrames] = {}
        """By ``vpdq`` list committed, the frames of every record it holds after it."""
        self.applied_headers: dict[str, list[bytes]] = {}
        """By list of entries, the headers of the update in progress, oldest first."""
        self.failures: list[Failure] = []
        self.evidence: list[str] = []

    def roots(self) -> list[tuple[bytes, bytes]]:
        return list(self._roots)

    def save_roots(self, roots: Iterable[tuple[int, bytes, bytes]]) -> None:
        self._roots = [(data, sig) for _, data, sig in roots]

    def stored_list(self, list_id: str, type_name: str) -> Followed:
        """The list as trusted; an empty ``StoredList`` if never applied (``Syncer``
        makes an empty list of entries of it when the root says the list holds them)."""
        stored = self.lists.get(list_id)
        if stored is None:
            return StoredList(
                list_id, type_name, ListTrust(list_id), ListState(hash_type(type_name).length)
            )
        if stored.hash_type != type_name:
            raise CheckpointError(
                f"list {list_id} is {stored.hash_type} in the checkpoint, {type_name} at the hub"
            )
        return stored

    def frames_held(self, list_id: str, hashes: Sequence[bytes]) -> frozenset[bytes]:
        """Which of ``hashes`` the trusted frames of ``list_id`` hold (the checkpoint's)."""
        return frozenset(self.frames.get(list_id, {})) & frozenset(hashes)

    def applied_version(self, list_id: str) -> int:
        stored = self.lists.get(list_id)
        return 0 if stored is None else stored.trust.version

    def commit_update(
        self,
        list_id: str,
        type_name: str,
        state: ListState | EntryState | None,
        trust: ListTrust,
        roots: Iterable[tuple[int, bytes, bytes]],
        now: datetime,
        changes: tuple[Sequence[bytes], Sequence[bytes]] | None = None,
        opinions: OpinionSummary | None = None,
        frames: Mapping[bytes, bytes] | None = None,
    ) -> None:
        """Keep a verified update (``state`` None: only the checkpoint time moved), with
        the verified ``opinions`` of the newest version of a list of entries and the
        verified ``frames`` of the records a ``vpdq`` list adds (of all its records
        when ``changes`` is None), but for those ``frames_held`` said it holds."""
        if state is None:
            state = self.stored_list(list_id, type_name).state
        self.save_roots(roots)
        headers = self.applied_headers.pop(list_id, [])
        if hash_type(type_name).frames:
            # The frames given are those of the records added that it did not hold
            # (``frames_held``); those of records removed go.
            kept = self.frames.get(list_id, {})
            self.committed_frames[list_id] = _held_frames(list_id, state, kept, frames or {})
        if isinstance(state, EntryState):
            self.committed[list_id] = StoredEntries(list_id, type_name, trust, state)
            self.committed_opinions[list_id] = self._kept(list_id, opinions, headers, state)
        else:
            self.committed[list_id] = StoredList(list_id, type_name, trust, state)
            self.committed_opinions[list_id] = None

    def _kept(
        self,
        list_id: str,
        opinions: OpinionSummary | None,
        headers: list[bytes],
        state: EntryState,
    ) -> KeptOpinions | None:
        """The summary the list holds after an update that applied ``headers`` and
        resulted in ``state``: the new one, else the previous one while it speaks of
        an entry still held (so the headers kept after it do not grow for nothing)."""
        if opinions is not None:
            data = opinions.to_bytes()  # parsed from canonical bytes: these very bytes
            if not headers or header_opinions(DeltaHeader.from_bytes(headers[-1])) != (
                OpinionsRef.of(data)
            ):
                raise CheckpointError(f"list {list_id}: a summary not named by the last header")
            return KeptOpinions(opinions, data, headers[-1])
        previous = self.opinions.get(list_id)
        if previous is None:
            return None
        if not headers:
            return previous
        if previous.summary.entries.keys().isdisjoint(state.entry_ids()):
            return None
        return replace(previous, later=previous.later + tuple(headers))

    def record_failure(
        self,
        list_id: str,
        now: datetime,
        error: Exception,
        *,
        evidence: bool,
        data: bytes | None = None,
        other: bytes | None = None,
    ) -> None:
        self.failures.append(Failure(list_id, error, evidence))

    def add_evidence(
        self, list_id: str, kind: str, message: str, now: datetime, data: bytes | None = None
    ) -> None:
        self.evidence.append(f"{list_id}: {kind}: {message}")


def _held_frames(
    list_id: str,
    state: ListState | EntryState,
    kept: ListFrames,
    added: ListFrames,
) -> dict[bytes, bytes]:
    """The frames of every record ``state`` holds: the added ones, else the kept ones
    (a record whose metadata changed keeps its frames); those of removed records go.

    Raises:
        CheckpointError: a record held without its frames (the follower passes the
            frames of every record it adds, so this is a bridge fault, not the hub's).
    """
    held: dict[bytes, bytes] = {}
    for record in state.as_hashes() if isinstance(state, EntryState) else state:
        data = added.get(record, kept.get(record))
        if data is None:
            raise CheckpointError(f"list {list_id}: the record {record.hex()} came without frames")
        held[record] = data
    return held
