"""What the follower reads and writes: the store protocol and the records it reads.

``Syncer`` verifies and a store keeps; this is everything the one asks of the
other, so that the node's SQLite store (``node.store.NodeStore``), the
threatexchange bridge's in-memory store (``hashhub_tx._store.CheckpointStore``) and
a hub's store of an upstream can each be followed into without the follower knowing
which. A store promises two things the trust rules rely on:

- ``commit_update`` writes the roots, the trust record and the state of one list
  in one transaction, or nothing: an update is all or nothing;
- a write the disk refuses raises ``sqlite3.Error`` (``follow.errors.storage_error``
  tells such a fault apart) or ``StorageError``, and leaves the store as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from protocol import EntryState, ListState, ListTrust, OpinionSummary

__all__ = ["FollowerStore", "StoredEntries", "StoredList"]


@dataclass(frozen=True)
class StoredList:
    """One subscribed list of the ``hashes`` format as stored: its trust record and state."""

    list_id: str
    hash_type: str
    trust: ListTrust
    state: ListState


@dataclass(frozen=True)
class StoredEntries:
    """One subscribed list of the ``entries`` format as stored: its trust record and
    its records."""

    list_id: str
    hash_type: str
    trust: ListTrust
    state: EntryState


class FollowerStore(Protocol):
    """The methods ``Syncer`` calls on a store: trusted roots, a list's state and trust
    record, the commit, a failure and evidence."""

    def roots(self) -> list[tuple[bytes, bytes]]:
        """Every trusted root's bytes and signature sidecar, oldest first: re-verified
        from the pin on every run, never trusted as parsed."""
        ...

    def save_roots(self, roots: Iterable[tuple[int, bytes, bytes]]) -> None:
        """Keep verified roots (version, bytes, signature); ones already kept stay."""
        ...

    def stored_list(self, list_id: str, type_name: str) -> StoredList | StoredEntries:
        """The list as stored, or an empty ``StoredList`` (version 0) if never applied."""
        ...

    def applied_version(self, list_id: str) -> int:
        """The version of the list that is enforced (0: none)."""
        ...

    def frames_held(self, list_id: str, hashes: Sequence[bytes]) -> frozenset[bytes]:
        """Which of ``hashes`` (records of a ``vpdq`` list) the store already holds the
        verified frames of: the follower fetches only the others."""
        ...

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
        """Keep a verified update in one transaction: roots, trust record and ``state``
        (None: the stored state, for a list already current), with ``changes``
        (removed, added) from the stored state when they are known, the verified
        ``opinions`` of an entries list's newest version and, for a ``vpdq`` list, the
        verified ``frames`` of the records it adds by hash, but for those
        ``frames_held`` said it holds (when ``changes`` is None, a rebuild from a
        snapshot: of every record it did not hold). Afterwards it holds the frames of
        every record of ``state``; a store that keeps frames per list drops those of
        the records the update removes (a hub keeps every video's frames once,
        whichever list brought them)."""
        ...

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
        """Note a failed update; with ``evidence``, keep the error and the bytes that
        caused it (both notes of an equivocation)."""
        ...

    def add_evidence(self, list_id: str, kind: str, message: str, now: datetime) -> None:
        """Keep evidence that comes without a failed update (a source's bad bytes)."""
        ...
