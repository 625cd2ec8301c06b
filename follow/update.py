"""The follower's update: docs/design.md §4.2, driven through ``protocol``'s trust rules.

This module fetches bytes and stores results; every accept/reject decision is a
call into ``protocol.TrustedHub`` / ``ListUpdate``. One run (``Syncer.sync``):

1. fix ``now`` once (the injected clock);
2. re-verify the stored root chain from the pinned root, then walk
   ``root/<N+1>.json`` until the server says it does not exist (capped);
3. per subscribed list: fetch the checkpoint from the hub (mirrors as fallback),
   verify it against the trusted record (rollback, freeze, equivocation);
4. fetch headers trusted+1 … size, each verified and chained, until the Merkle
   root reproduces the checkpoint's;
5. when the follower has no state, is more than ``snapshot_lag`` versions behind, or
   its stored state no longer matches its trusted digest (local corruption),
   fetch the newest snapshot at or below the target and start from it (without
   a newer snapshot, a damaged state fails ``check_base``: nothing is applied);
6. fetch bodies by hash (mirrors first), verified by length and SHA-256;
7. apply in memory through the trust rules, then store state, trust record and
   roots in one transaction of the store (``follow.store.FollowerStore``). Any
   failure before the commit leaves the store exactly as it was; a protocol
   rejection is kept as evidence. A commit the disk refuses (full, or an I/O error:
   ``follow.errors.storage_error``) is rolled back by SQLite and ends as ``failed``
   too, with a ``StorageError``; the next run, once there is room, applies the
   update.

Every download is capped (``protocol.Limits`` and the sizes the signed headers
promise) and has a deadline; nothing is read past the cap.

A list of the ``entries`` format goes through the same phases with the trust
rules of its records (``ListUpdate.add_entries_snapshot``, ``add_entries_body``,
``apply_entries``): the store keeps the record lines (the changed ones logged, as
hashes are: ADR 0013), and the outcome gives the match index and the registry the
hashes listed and delisted (``Syncer._sync_entries``). When the newest version
applied names an opinion summary (PROTOCOL.md §10.7), it is fetched like a body and
verified against its header, the root that signed it and the state the version
results in; it is stored in the same commit, and a summary that fails any check
rejects the whole update, as a bad body does. So are the frames files of the records
a ``vpdq`` list adds (§6.3): fetched by the records' hashes, read, committed with the
records or not at all. Older versions' summaries are the
auditor's to read: a follower needs only what the platforms say now.

What touches the store, and the heavy steps of the trust rules (reading and
replaying a snapshot, parsing and applying bodies, the commit), go through
``Syncer.run``: on the node's daemon that is a thread of their own with its own
connection (``edge.database.DatabaseThread``), so an update of a million hashes
does not stop the match API for seconds; from the command line and the bridge,
which have no loop to keep free, they run in place (``InPlace``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from follow.errors import (
    FetchError,
    FollowerConfigError,
    NotPublishedError,
    NoTreeError,
    StorageError,
    describe,
    storage_error,
)
from follow.fetch import Fetcher
from follow.outcome import (
    ListOutcome,
    UpdateStatus,
    cause_of,
    hash_changes,
    kind_of,
    net_changes,
    net_entry_changes,
    with_changes,
)
from follow.store import FollowerStore, StoredEntries, StoredList
from protocol import (
    EntryState,
    EquivocationError,
    LimitError,
    ListState,
    ListTrust,
    ListUpdate,
    OpinionSummary,
    ProtocolError,
    TrustedHub,
    UnknownListError,
    body_path,
    checkpoint_path,
    header_opinions,
    header_path,
    root_path,
    sig_path,
    snapshot_path,
    verify_summary,
)
from protocol.entries import record_limit
from protocol.layout import frames_path, opinions_path
from protocol.lists import hash_type as hash_kind
from protocol.root import ListSpec
from protocol.video import MAX_FRAMES_BYTES, read_frames_file

__all__ = ["InPlace", "StoreRunner", "Syncer"]

R = TypeVar("R")

_FRAMES_AT_ONCE = 8
"""Frames files fetched at once: enough to hide a round trip, few enough for a hub."""


@runtime_checkable
class StoreRunner(Protocol):
    """Where the sync's store calls and heavy steps run: ``call(fn)`` awaits ``fn(store)``.

    Checked at run time: ``Syncer`` runs a store that has no ``call`` in place."""

    async def call(self, fn: Callable[[FollowerStore], R], /) -> R: ...


class InPlace:
    """Run each call at once on the caller's thread, with the caller's store."""

    def __init__(self, store: FollowerStore) -> None:
        self.store = store

    async def call(self, fn: Callable[[FollowerStore], R], /) -> R:
        return fn(self.store)


class Syncer:
    """One follower's update runs against one hub."""

    def __init__(
        self,
        store: FollowerStore | StoreRunner,
        fetcher: Fetcher,
        lists: Sequence[str],
        *,
        pinned_root_sha256: str,
        snapshot_lag: int = 1000,
        snapshots: bool = True,
    ) -> None:
        self.runner: StoreRunner = store if isinstance(store, StoreRunner) else InPlace(store)
        self.fetcher = fetcher
        self.lists = list(lists)
        self.pinned_root_sha256 = pinned_root_sha256
        self.snapshot_lag = snapshot_lag
        self.snapshots = snapshots
        """False: every body, never a snapshot, so the store learns which version
        added each record (a hub re-publishing with provenance, PROTOCOL.md §7.5); a
        damaged stored state then fails ``check_base`` rather than being rebuilt."""

    async def run(self, fn: Callable[[], R]) -> R:
        """A heavy step of the trust rules (no store), where the store calls run."""
        return await self.runner.call(lambda _store: fn())

    async def _write(self, fn: Callable[[FollowerStore], None]) -> None:
        """A write of the store; the disk refusing it raises ``StorageError``."""
        await self.runner.call(lambda store: _storage_checked(fn, store))

    async def open_hub(self, now: datetime) -> TrustedHub:
        """Re-verify the stored chain from the pinned root, then walk to the newest root."""
        limits = self.fetcher.limits
        stored = await self.runner.call(lambda store: store.roots())
        if stored:
            (first, first_sig), *rest = stored
        else:
            try:
                first = await self.fetcher.fetch(root_path(1), limits.root_bytes)
            except NotPublishedError as e:
                raise NoTreeError(
                    f"{self.fetcher.hub_url} does not serve a hashhub tree (no {root_path(1)} "
                    "there): check the hub URL"
                ) from e
            first_sig = await self.fetcher.fetch(sig_path(root_path(1)), limits.sig_bytes)
            rest = []
        hub = TrustedHub(
            first, first_sig, now=now, pinned_sha256=self.pinned_root_sha256, limits=limits
        )
        for data, sig in rest:
            hub.update_root(data, sig)
        for _ in range(limits.max_root_walk):
            path = root_path(hub.root.version + 1)
            try:
                data = await self.fetcher.fetch(path, limits.root_bytes)
                sig = await self.fetcher.fetch(sig_path(path), limits.sig_bytes)
            except NotPublishedError:
                break
            try:
                hub.update_root(data, sig)
            except ProtocolError:
                if not self.fetcher.mirrors:
                    raise
                # A mirror's copy failed; the hub's own copy gets its chance.
                self.fetcher.rejected.append(path)
                data = await self.fetcher.fetch(path, limits.root_bytes, hub_only=True)
                sig = await self.fetcher.fetch(sig_path(path), limits.sig_bytes, hub_only=True)
                hub.update_root(data, sig)
        return hub

    async def sync(self, now: datetime) -> list[ListOutcome]:
        """Update every subscribed list; each list is all or nothing on its own."""
        try:
            hub = await self.open_hub(now)
            files = hub.root_files()
            await self._write(lambda store: store.save_roots(files))
        except (ProtocolError, FetchError, StorageError) as e:
            self.fetcher.rejected.clear()
            evidence = isinstance(e, ProtocolError)
            for list_id in self.lists:
                await self._record_failure(list_id, now, e, evidence=evidence)
            status: UpdateStatus = "rejected" if evidence else "failed"
            error = describe(e)
            outcomes = []
            for lid in self.lists:
                enforced = await self._applied_version(lid)  # still enforced, unchanged
                outcomes.append(
                    ListOutcome(
                        lid, status, enforced, enforced, error, cause=cause_of(e), kind=kind_of(e)
                    )
                )
            return outcomes
        outcomes = [await self.sync_list(hub, list_id, now) for list_id in self.lists]
        if self.fetcher.rejected:
            # Bytes a source served that failed verification, though another source's
            # passed: the update went ahead, and the bad source is on record (unless
            # the disk is full: the outcomes, already committed, matter more).
            lists = ",".join(self.lists)
            detail = "bytes that failed verification: " + " ".join(self.fetcher.rejected[:50])
            with contextlib.suppress(StorageError):
                await self._write(
                    lambda store: store.add_evidence(lists, "RejectedSource", detail, now)
                )
            self.fetcher.rejected.clear()
        return outcomes

    async def _applied_version(self, list_id: str) -> int:
        return await self.runner.call(lambda store: store.applied_version(list_id))

    async def _record_failure(
        self,
        list_id: str,
        now: datetime,
        error: Exception,
        *,
        evidence: bool,
        data: bytes | None = None,
        other: bytes | None = None,
    ) -> None:
        """Note a failed attempt in the store, if the disk lets it.

        With the disk full, noting the failure may fail too; the outcome still says
        what happened, and the stored lists are the last good ones either way.
        """
        with contextlib.suppress(StorageError):
            await self._write(
                lambda store: store.record_failure(
                    list_id, now, error, evidence=evidence, data=data, other=other
                )
            )

    async def _add_header(self, update: ListUpdate, list_id: str, version: int) -> None:
        """Fetch and verify one header; if a mirror's copy is rejected, ask the hub itself.

        A rejected header leaves ``update`` unchanged (the trust rules promise it), so
        the hub's copy can be tried in its place.
        """
        limits = self.fetcher.limits
        hp = header_path(list_id, version)
        promise = f"the checkpoint of list {list_id} has size {update.target}"
        fetch = self.fetcher.fetch_promised
        data = await fetch(hp, limits.header_bytes, promise)
        sig = await fetch(sig_path(hp), limits.sig_bytes, f"{hp} is published")
        try:
            update.add_header(data, sig)
        except ProtocolError:
            if not self.fetcher.mirrors:
                raise
            self.fetcher.rejected.append(hp)
            data = await fetch(hp, limits.header_bytes, promise, hub_only=True)
            sig = await fetch(sig_path(hp), limits.sig_bytes, f"{hp} is published", hub_only=True)
            update.add_header(data, sig)

    async def sync_list(self, hub: TrustedHub, list_id: str, now: datetime) -> ListOutcome:
        """Update one list, all or nothing: the phases below, then one commit.

        Every phase either feeds ``update`` (the trust rules) or raises; nothing is
        written before the last phase, so any failure leaves the stored list as it was.
        """
        try:
            spec = hub.root.list_spec(list_id)
        except UnknownListError:
            return await self._undeclared(hub, list_id, now)
        except ProtocolError as e:
            await self._record_failure(list_id, now, e, evidence=True)
            enforced = await self._applied_version(list_id)
            return ListOutcome(
                list_id, "rejected", enforced, enforced, describe(e), kind=kind_of(e)
            )
        found = await self.runner.call(lambda store: store.stored_list(list_id, spec.hash_type))
        stored = _as_entries(found) if spec.entries else _as_hashes(found)
        start = stored.trust.version
        checkpoint: bytes | None = None  # None: not fetched (an empty file is b"")
        rejected_mark = len(self.fetcher.rejected)
        try:
            checkpoint = await self._fetch_checkpoint(hub, list_id)
            update = hub.begin_update(stored.trust, checkpoint)
            if update.is_current:
                trust = update.finish(stored.trust.state)
                # An entries list never stored is stored empty in its own format.
                kept = stored.state if spec.entries and start == 0 else None
                await self._commit(hub, list_id, spec.hash_type, kept, trust, now)
                return ListOutcome(list_id, "current", start, start)
            for version in range(start + 1, update.target + 1):
                await self._add_header(update, list_id, version)
            if isinstance(stored, StoredEntries):
                return await self._sync_entries(hub, update, spec, stored, now)
            base, rebuilt = await self._choose_base(update, list_id, spec.hash_length, stored)
            await self._add_bodies(update, list_id)
            new_state, trust = await self.run(lambda: update.apply(base))
            changes = None if rebuilt else await self.run(lambda: net_changes(update))
            await self._commit(hub, list_id, spec.hash_type, new_state, trust, now, changes)
        except (ProtocolError, FetchError, StorageError) as e:
            del self.fetcher.rejected[rejected_mark:]  # this failure's record covers them
            return await self._refused(list_id, start, now, e, checkpoint)
        outcome = ListOutcome(
            list_id, "updated", start, trust.version, rebuilt=rebuilt, state=new_state
        )
        old_state = stored.state
        assert isinstance(old_state, ListState)  # a hashes list: the entries one returned
        return await self.run(lambda: with_changes(outcome, old_state, changes))

    async def _sync_entries(
        self,
        hub: TrustedHub,
        update: ListUpdate,
        spec: ListSpec,
        stored: StoredEntries,
        now: datetime,
    ) -> ListOutcome:
        """The rest of ``sync_list`` for a list of the ``entries`` format, whose headers
        are verified: the base (stored records or a snapshot), the bodies, the records
        applied through the trust rules, one commit. Raises as ``sync_list``'s phases do.

        The store gets the records (and logs the record lines that changed); the
        outcome, for the match index and the registry, the hashes: ``added`` and
        ``removed`` the hashes listed or delisted (an entry whose metadata changed
        under the same hash is neither), and, from a snapshot only, ``state``, the
        records' hashes as a ``ListState`` (after a delta it is None: an index without
        the base builds itself from the store).
        """
        list_id = spec.list_id
        start = stored.trust.version
        base, rebuilt = await self._choose_entries_base(update, list_id, stored)
        await self._add_bodies(update, list_id, entries=True)
        new_state, trust = await self.run(lambda: update.apply_entries(base))
        changes = None if rebuilt else await self.run(lambda: net_entry_changes(update))
        summary = await self.opinion_summary(hub, update, list_id, new_state)
        frames = await self.frames(list_id, new_state, changes)
        await self._commit(
            hub, list_id, spec.hash_type, new_state, trust, now, changes, summary, frames
        )
        old, new = stored.state, new_state

        def outcome() -> ListOutcome:
            if changes is not None:  # a delta: its hashes suffice (1M hashes cost 1 s)
                done = ListOutcome(list_id, "updated", start, trust.version)
                return with_changes(
                    done, ListState(new.kind.length), hash_changes(new.kind.length, *changes)
                )
            done = ListOutcome(
                list_id, "updated", start, trust.version, rebuilt=True, state=new.as_hashes()
            )
            return with_changes(done, old.as_hashes(), None)

        return await self.run(outcome)

    async def opinion_summary(
        self, hub: TrustedHub, update: ListUpdate, list_id: str, state: EntryState
    ) -> OpinionSummary | None:
        """The opinion summary the newest applied header names, fetched like a body
        (mirrors first, capped at the signed length, by its SHA-256) and verified
        (``protocol.verify_summary``) against the root that signed the header and
        ``state``, the state that version results in; None when it names none.

        Called once per update of an entries list, with the update's headers: the
        threatexchange bridge extends it to keep the headers its checkpoint needs to
        verify the summary again offline (``hashhub_tx.exchange``).

        Raises:
            MissingFileError: no source has it.
            LimitError: its signed length is over the root's ``max_body_bytes`` (not
                fetched), or a source sent more.
            ConsistencyError, MalformedError: not the signed bytes, or a rule of §10.7.
        """
        header = update.header(update.target)
        ref = header_opinions(header)
        if ref is None:
            return None
        root = hub.root_at(header.root_version)
        if ref.length > root.policy.max_body_bytes:
            raise LimitError(
                f"opinions v{header.version}: {ref.length} bytes, over the root's "
                f"max_body_bytes ({root.policy.max_body_bytes})"
            )
        data = await self.fetcher.fetch_promised(
            opinions_path(list_id, ref.sha256),
            ref.length,
            f"header v{header.version} names it",
            sha256=ref.sha256,
        )
        return await self.run(lambda: verify_summary(header, data, root, state))

    async def frames(
        self,
        list_id: str,
        state: EntryState,
        changes: tuple[list[bytes], list[bytes]] | None,
    ) -> dict[bytes, bytes] | None:
        """For a list of a frames type (``vpdq``), the frames file of every record the
        update adds (every record of ``state`` after a snapshot, when ``changes`` is
        None) whose frames the store does not hold already (``frames_held``), by the
        record's hash, fetched like a body (mirrors first, capped, by its SHA-256) and
        read by PROTOCOL.md §6.5's rules; None for any other list.

        Fetched a few at a time: a bootstrap of a list of thousands of videos is
        thousands of small files.

        Raises:
            MissingFileError: no source has a record's frames (§11.1).
            LimitError, ConsistencyError, MalformedError: a frames file that is not
                the one its record names, or breaks a rule of the encoding.
        """
        kind = state.kind
        if not kind.frames:
            return None
        if changes is None:
            candidates = [entry.hash for entry in state.entries()]
        else:
            candidates = hash_changes(kind.length, *changes)[1]
        held = await self.runner.call(lambda store: store.frames_held(list_id, candidates))
        wanted = [record for record in candidates if record not in held]
        limit = asyncio.Semaphore(_FRAMES_AT_ONCE)

        async def one(record: bytes) -> tuple[bytes, bytes]:
            async with limit:
                data = await self.fetcher.fetch_promised(
                    frames_path(list_id, record.hex()),
                    MAX_FRAMES_BYTES,
                    f"the record {record.hex()} names it",
                    sha256=record.hex(),
                )
            # Decoding a long video's frames is work for the runner, not this loop.
            await self.run(functools.partial(read_frames_file, record, data))
            return record, data

        return dict(await asyncio.gather(*(one(record) for record in wanted)))

    def undeclared(self, hub: TrustedHub, list_id: str) -> FollowerConfigError:
        """The error of following ``list_id``, which the trusted root does not declare,
        with the advice where to correct it: a role names its own settings file."""
        return FollowerConfigError(
            f"the hub's root v{hub.root.version} does not declare list {list_id!r}: "
            "correct or remove it in the follower's configuration (ask the hub operator "
            "for the ids of the lists it may follow)"
        )

    async def _undeclared(self, hub: TrustedHub, list_id: str, now: datetime) -> ListOutcome:
        """A followed list that the trusted root does not declare.

        Nothing is fetched for it, so nothing about it is ever trusted; but the hub
        published nothing wrong (a root declares the lists it has), so this is the
        follower's own configuration, not evidence: a failure of cause ``config``.
        """
        error = self.undeclared(hub, list_id)
        await self._record_failure(list_id, now, error, evidence=False)
        enforced = await self._applied_version(list_id)
        return ListOutcome(
            list_id, "failed", enforced, enforced, str(error), cause="config", kind=kind_of(error)
        )

    async def _fetch_checkpoint(self, hub: TrustedHub, list_id: str) -> bytes:
        """The list's checkpoint, hub first (it is the one mutable file).

        A declared list has a checkpoint from its creation (size 0 before its first
        version): one that no source has is withheld, not "nothing yet".
        """
        return await self.fetcher.fetch_promised(
            checkpoint_path(list_id),
            self.fetcher.limits.checkpoint_bytes,
            f"root v{hub.root.version} declares list {list_id}",
            immutable=False,
        )

    async def _choose_base(
        self, update: ListUpdate, list_id: str, hash_length: int, stored: StoredList
    ) -> tuple[ListState, bool]:
        """The state the bodies apply to: the stored one, or a snapshot when that is
        missing, damaged or too far behind (``_snapshot_if_needed``). Returns (base,
        rebuilt from a snapshot)."""
        snap = await self._snapshot_if_needed(
            update, list_id, stored, lambda count: count * hash_length
        )
        if snap is None:
            return stored.state, False
        version, data = snap
        return await self.run(lambda: update.add_snapshot(version, data)), True

    async def _choose_entries_base(
        self, update: ListUpdate, list_id: str, stored: StoredEntries
    ) -> tuple[EntryState, bool]:
        """``_choose_base`` for an ``entries`` list: the snapshot is record lines, no
        longer than the records its header counts can be, read by
        ``ListUpdate.add_entries_snapshot``."""
        limit = record_limit(stored.state.kind) + 1
        snap = await self._snapshot_if_needed(update, list_id, stored, lambda count: count * limit)
        if snap is None:
            return stored.state, False
        version, data = snap
        return await self.run(lambda: update.add_entries_snapshot(version, data)), True

    async def _snapshot_if_needed(
        self,
        update: ListUpdate,
        list_id: str,
        stored: StoredList | StoredEntries,
        cap: Callable[[int], int],
    ) -> tuple[int, bytes] | None:
        """The newest due snapshot's version and bytes (at most ``cap(count)`` of them),
        when the stored state is missing, damaged or too far behind; None when the
        bodies from the stored state will do, or the due snapshot is not published.

        A stored state that no longer hashes to its trusted digest (a bad disk, an edit
        by hand) is no base for a delta: resynchronise from a snapshot.
        """
        start = stored.trust.version
        if not self.snapshots:
            return None
        damaged = start > 0 and await self.run(stored.state.digest) != stored.trust.state
        if not (start == 0 or damaged or update.target - start > self.snapshot_lag):
            return None
        # The newest snapshot due (by the root each header names, §8) after start.
        due = update.snapshots_due()
        if not due:
            return None
        candidate = due[-1]
        result = update.header(candidate).result_state
        try:
            data = await self.fetcher.fetch(
                snapshot_path(list_id, candidate), cap(result.count), sha256=result.sha256
            )
        except NotPublishedError:
            # Due but missing: not needed here, the bodies from the base do (§11.1);
            # the auditor reports it.
            return None
        return candidate, data

    async def _add_bodies(self, update: ListUpdate, list_id: str, *, entries: bool = False) -> None:
        """Fetch every body the update still needs, by hash (mirrors first); each is
        checked by length and SHA-256 before the trust rules parse it (as an entries
        body with ``entries``)."""
        add = update.add_entries_body if entries else update.add_body
        for header in update.bodies_needed():
            data = await self.fetcher.fetch_promised(
                body_path(list_id, header.body.sha256),
                header.body.length,
                f"header v{header.version} names it",
                sha256=header.body.sha256,
            )
            await self.run(functools.partial(add, header.version, data))

    async def _commit(
        self,
        hub: TrustedHub,
        list_id: str,
        hash_type: str,
        state: ListState | EntryState | None,
        trust: ListTrust,
        now: datetime,
        changes: tuple[list[bytes], list[bytes]] | None = None,
        opinions: OpinionSummary | None = None,
        frames: dict[bytes, bytes] | None = None,
    ) -> None:
        """State, trust record and roots in one transaction: the only write of an update
        (``state`` None keeps the stored state, for a list already current), with the
        verified ``opinions`` of an entries list and the verified ``frames`` of the
        records a ``vpdq`` list adds (each given to the store only when there is one)."""
        files = hub.root_files()
        extra: dict[str, Any] = {}
        if opinions is not None:
            extra["opinions"] = opinions
        if frames is not None:
            extra["frames"] = frames

        def commit(store: FollowerStore) -> None:
            store.commit_update(list_id, hash_type, state, trust, files, now, changes, **extra)

        await self._write(commit)

    async def _refused(
        self, list_id: str, start: int, now: datetime, error: Exception, checkpoint: bytes | None
    ) -> ListOutcome:
        """Record why an update failed and say so; the stored list stays enforced.

        A protocol rejection is evidence (an equivocation keeps both notes); the
        network or the follower's own disk is nothing wrong with the published data, so no
        evidence, and the update is tried again on the next run.
        """
        if isinstance(error, EquivocationError):
            await self._record_failure(
                list_id, now, error, evidence=True, data=error.presented, other=error.trusted
            )
            status: UpdateStatus = "rejected"
        elif isinstance(error, ProtocolError):
            await self._record_failure(list_id, now, error, evidence=True, data=checkpoint)
            status = "rejected"
        else:
            await self._record_failure(list_id, now, error, evidence=False)
            status = "failed"
        return ListOutcome(
            list_id,
            status,
            start,
            start,
            describe(error),
            cause=cause_of(error),
            kind=kind_of(error),
        )


def _storage_checked(write: Callable[[FollowerStore], None], store: FollowerStore) -> None:
    """``write(store)``; the disk refusing it (full, an I/O error) raises ``StorageError``."""
    try:
        write(store)
    except sqlite3.Error as e:
        fault = storage_error(e)
        if fault is None:
            raise
        raise fault from e


def _as_hashes(stored: StoredList | StoredEntries) -> StoredList:
    """A stored list of the ``hashes`` format; records stored under its id (another
    format: nothing a root allows) are no base, as an empty state is none."""
    if isinstance(stored, StoredList):
        return stored
    empty = ListState(hash_kind(stored.hash_type).length)
    return StoredList(stored.list_id, stored.hash_type, stored.trust, empty)


def _as_entries(stored: StoredList | StoredEntries) -> StoredEntries:
    """A stored list of the ``entries`` format: an empty one (never stored, or stored
    in the other format) as empty records."""
    if isinstance(stored, StoredEntries):
        return stored
    empty = EntryState(hash_kind(stored.hash_type))
    return StoredEntries(stored.list_id, stored.hash_type, stored.trust, empty)
