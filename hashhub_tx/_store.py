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

from hashhub_tx.errors import CheckpointError
from node.store import StoredList
from protocol import ListState, ListTrust
from protocol.lists import hash_type

__all__ = ["CheckpointStore", "Failure"]


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

    def __init__(self, roots: Sequence[tuple[bytes, bytes]], lists: dict[str, StoredList]) -> None:
        self._roots = list(roots)
        self.lists = dict(lists)
        """The trusted lists: the checkpoint's, replaced list by list as updates commit."""
        self.committed: dict[str, StoredList] = {}
        self.failures: list[Failure] = []
        self.evidence: list[str] = []

    def roots(self) -> list[tuple[bytes, bytes]]:
        return list(self._roots)

    def save_roots(self, roots: Iterable[tuple[int, bytes, bytes]]) -> None:
        self._roots = [(data, sig) for _, data, sig in roots]

    def stored_list(self, list_id: str, type_name: str) -> StoredList:
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
        state: ListState | None,
        trust: ListTrust,
        roots: Iterable[tuple[int, bytes, bytes]],
        now: datetime,
        changes: tuple[Sequence[bytes], Sequence[bytes]] | None = None,
    ) -> None:
        """Keep a verified update (``state`` None: only the checkpoint time moved)."""
        if state is None:
            state = self.stored_list(list_id, type_name).state
        self.save_roots(roots)
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
