"""The store ``node.sync.Syncer`` updates, kept in memory for one fetch.

The bridge runs the node's own update (``Syncer``: root walk, checkpoint, headers,
snapshot, bodies, all through ``protocol``'s trust rules) against this store instead
of the node's SQLite file. It starts from a verified checkpoint and collects what the
update commits; nothing leaves it until every list has verified, when the exchange
turns it into the next checkpoint. Failures and evidence are collected so the
exchange can raise with them (and log them: pytx keeps no evidence table).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from hashhub_tx.errors import CheckpointError
from node.store import StoredEntries, StoredList
from protocol import EntryState, ListState, ListTrust
from protocol.lists import hash_type

__all__ = ["CheckpointStore", "Failure", "Followed", "hash_set"]

Followed: TypeAlias = StoredList | StoredEntries
"""A followed list as the bridge holds it: bare hashes, or entries (records with
their metadata), each with its trust record."""


def hash_set(stored: Followed) -> ListState:
    """The hashes a followed list holds, whatever its format."""
    if isinstance(stored, StoredEntries):
        return stored.state.as_hashes()
    return stored.state


@dataclass(frozen=True)
class Failure:
    """One failed list: the error and whether it is evidence (a protocol rejection)."""

    list_id: str
    error: Exception
    evidence: bool

    def __str__(self) -> str:
        return f"{self.list_id}: {type(self.error).__name__}: {self.error}"


class CheckpointStore:
    """What ``Syncer`` reads and writes, as ``NodeStore`` offers it, held in memory."""

    def __init__(self, roots: Sequence[tuple[bytes, bytes]], lists: dict[str, Followed]) -> None:
        self._roots = list(roots)
        self.lists = dict(lists)
        """The trusted lists: the checkpoint's, replaced list by list as updates commit."""
        self.committed: dict[str, Followed] = {}
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
    ) -> None:
        """Keep a verified update (``state`` None: only the checkpoint time moved)."""
        if state is None:
            state = self.stored_list(list_id, type_name).state
        self.save_roots(roots)
        if isinstance(state, EntryState):
            self.committed[list_id] = StoredEntries(list_id, type_name, trust, state)
        else:
            self.committed[list_id] = StoredList(list_id, type_name, trust, state)

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
