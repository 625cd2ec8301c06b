"""The node's update: docs/design.md §4.2, driven through ``protocol``'s trust rules.

This module fetches bytes and stores results; every accept/reject decision is a
call into ``protocol.TrustedHub`` / ``ListUpdate``. One run (``Syncer.sync``):

1. fix ``now`` once (the injected clock);
2. re-verify the stored root chain from the pinned root, then walk
   ``root/<N+1>.json`` until the server says it does not exist (capped);
3. per subscribed list: fetch the checkpoint from the hub (mirrors as fallback),
   verify it against the trusted record (rollback, freeze, equivocation);
4. fetch headers trusted+1 … size, each verified and chained, until the Merkle
   root reproduces the checkpoint's;
5. when the node has no state, is more than ``snapshot_lag`` versions behind, or
   its stored state no longer matches its trusted digest (local corruption),
   fetch the newest snapshot at or below the target and start from it (without
   a newer snapshot, a damaged state fails ``check_base``: nothing is applied);
6. fetch bodies by hash (mirrors first), verified by length and SHA-256;
7. apply in memory through the trust rules, then store state, trust record and
   roots in one SQLite transaction. Any failure before the commit leaves the
   store exactly as it was; a protocol rejection is kept as evidence. A commit
   the disk refuses (full, or an I/O error: ``node.store.storage_error``) is
   rolled back by SQLite and ends as ``failed`` too, with a ``StorageError``;
   the next run, once there is room, applies the update.

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
rejects the whole update, as a bad body does. Older versions' summaries are the
auditor's to read: the node needs only what the platforms say now.

What touches the store, and the heavy steps of the trust rules (reading and
replaying a snapshot, parsing and applying bodies, the commit), go through
``Syncer.run``: on the daemon that is a thread of their own with its own
connection (``edge.database.DatabaseThread``), so an update of a million hashes
does not stop the match API for seconds; from the command line and the bridge,
which have no loop to keep free, they run in place (``InPlace``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, TypeVar

import aiohttp

from node.errors import (
    FetchError,
    HubAccessError,
    NodeConfigError,
    NotPublishedError,
    NoTreeError,
    StorageError,
    describe,
)
from node.store import NodeStore, StoredEntries, StoredList, storage_error
from protocol import (
    ConsistencyError,
    EntryState,
    EquivocationError,
    LimitError,
    Limits,
    ListState,
    ListTrust,
    ListUpdate,
    MissingFileError,
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
from protocol.layout import opinions_path
from protocol.lists import hash_type as hash_kind
from protocol.root import ListSpec

__all__ = [
    "FailureCause",
    "Fetcher",
    "InPlace",
    "ListOutcome",
    "StoreRunner",
    "Syncer",
    "UpdateStatus",
    "cannot_connect",
    "describe",
]

UpdateStatus = Literal["updated", "current", "rejected", "failed"]
"""How one list's update ended: applied, already current, refused by the trust rules
(evidence kept), or failed for a reason outside the published data (network, disk)."""

FailureCause = Literal["", "unauthorized", "forbidden", "suspended", "config"]
"""Why a ``failed`` update cannot succeed by itself: ``unauthorized``, the hub does not
accept the node's token (401), or ``forbidden``, the token may not read the list
(403), or ``suspended``, the hub operator suspended the node (403 ``node_suspended``),
which only the hub operator can change; ``config``, the node follows a list
the hub's root does not declare, which only ``node.toml`` can. Empty for every other
outcome, including failures that a later run may get past."""

R = TypeVar("R")


class StoreRunner(Protocol):
    """Where the sync's store calls and heavy steps run: ``call(fn)`` awaits ``fn(store)``."""

    async def call(self, fn: Callable[[NodeStore], R], /) -> R: ...


class InPlace:
    """Run each call at once on the caller's thread, with the caller's store."""

    def __init__(self, store: NodeStore) -> None:
        self.store = store

    async def call(self, fn: Callable[[NodeStore], R], /) -> R:
        return fn(self.store)


_CHUNK = 64 * 1024


class Fetcher:
    """Downloads published files with caps and deadlines, from mirrors and the hub.

    Immutable files are tried on each mirror first, then on the hub; the
    checkpoint (the one mutable file) on the hub first, mirrors as fallback.
    Mirrors are not trusted for anything: what they serve is verified like the
    hub's. Only requests to the hub carry the node's token.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        hub_url: str,
        *,
        mirrors: Sequence[str] = (),
        token: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.session = session
        self.hub_url = hub_url.rstrip("/")
        self.mirrors = [m.rstrip("/") for m in mirrors]
        self.token = token
        self.limits = limits or Limits()
        self.requested: list[str] = []
        self.rejected: list[str] = []
        """URLs whose bytes failed verification (kept for evidence)."""

    async def fetch(
        self,
        path: str,
        cap: int,
        *,
        immutable: bool = True,
        sha256: str | None = None,
        hub_only: bool = False,
    ) -> bytes:
        """Return the bytes at ``path`` from the first source that has them.

        With ``sha256`` (bodies and snapshots, whose digests the signed headers give)
        a source whose bytes hash otherwise is passed over like a failed one, so one
        bad mirror cannot hold a node back while the hub serves the right bytes.
        ``hub_only`` skips the mirrors (a retry after a mirror's bytes were rejected).

        Raises:
            NotPublishedError: every source answered 404.
            LimitError: the last source tried sent more than ``cap`` bytes (an answer
                over its cap counts as that source's failure: the next one is tried).
            ConsistencyError: every source that answered sent bytes of another SHA-256.
            FetchError: every source failed otherwise.
        """
        if hub_only:
            sources = [self.hub_url]
        elif immutable:
            sources = [*self.mirrors, self.hub_url]
        else:
            sources = [self.hub_url, *self.mirrors]
        missing = 0
        last: Exception | None = None
        denied: HubAccessError | None = None
        for base in sources:
            try:
                data = await self._get(base, path, cap)
                if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
                    self.rejected.append(f"{base}/{path}")
                    last = ConsistencyError(f"{base}/{path}: SHA-256 is not the signed one")
                    continue
                return data
            except NotPublishedError as e:
                missing += 1
                last = e
            except HubAccessError as e:
                denied = last = e
            except LimitError as e:
                # More than the cap (for bodies and snapshots the signed length) is a
                # source breaking the protocol, not a network fault: on record.
                self.rejected.append(f"{base}/{path} (over {cap} bytes)")
                last = e
            except FetchError as e:
                last = e
        if missing == len(sources):
            raise NotPublishedError(f"{path}: not published")
        if denied is not None:
            # The hub refusing the token says more than a mirror lacking the file.
            raise denied
        assert last is not None
        raise last

    async def fetch_promised(
        self,
        path: str,
        cap: int,
        promise: str,
        *,
        immutable: bool = True,
        sha256: str | None = None,
        hub_only: bool = False,
    ) -> bytes:
        """``fetch`` a file that signed data promises exists (PROTOCOL.md §11.1).

        Every source tried first, as ``fetch`` does; only when every one of them
        answered 404 is the file missing, and that is the publisher's fault (or a
        withholding copy's), not "nothing to do": ``MissingFileError``, which a sync
        records as evidence. ``promise`` says which signed data refers to the file.

        Raises:
            MissingFileError: every source answered 404.
            (and whatever else ``fetch`` raises)
        """
        try:
            return await self.fetch(
                path, cap, immutable=immutable, sha256=sha256, hub_only=hub_only
            )
        except NotPublishedError as e:
            raise MissingFileError(path, promise) from e

    async def _get(self, base: str, path: str, cap: int) -> bytes:
        url = f"{base}/{path}"
        self.requested.append(url)
        headers = {}
        if base == self.hub_url and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            async with asyncio.timeout(self.limits.fetch_timeout):
                async with self.session.get(url, headers=headers, allow_redirects=False) as resp:
                    if resp.status == 404:
                        raise NotPublishedError(f"{url}: 404")
                    if resp.status in (401, 403) and base == self.hub_url:
                        said, code = await _refusal(resp)
                        raise HubAccessError(f"{url}: {said}", resp.status, code)
                    if resp.status != 200:
                        raise FetchError(f"{url}: {(await _refusal(resp))[0]}")
                    # Content-Length counts encoded bytes: a gzipped body may be longer
                    # than its cap when it is tiny. Decoded bytes are counted below.
                    encoded = resp.headers.get("Content-Encoding", "identity") != "identity"
                    if not encoded and (resp.content_length or 0) > cap:
                        raise LimitError(f"{url}: {resp.content_length} bytes, cap {cap}")
                    parts: list[bytes] = []
                    total = 0
                    while chunk := await resp.content.read(_CHUNK):
                        total += len(chunk)
                        if total > cap:
                            raise LimitError(f"{url}: more than the cap of {cap} bytes")
                        parts.append(chunk)
                    return b"".join(parts)
        except TimeoutError as e:
            raise FetchError(
                f"{url}: no complete answer within {self.limits.fetch_timeout} s"
            ) from e
        except aiohttp.ClientConnectorError as e:
            if isinstance(e, aiohttp.ClientSSLError):  # a TLS failure says its own reason
                raise FetchError(f"{url}: TLS failed: {e}") from e
            raise FetchError(cannot_connect(base, e)) from e
        except aiohttp.ClientError as e:
            raise FetchError(f"{url}: {e or type(e).__name__}") from e


def cannot_connect(base: str, error: aiohttp.ClientConnectorError) -> str:
    """``cannot connect to <base>: <reason>``, the reason as the operating system says
    it (``connection refused``, ``name or service not known``) rather than the client
    library's ``Cannot connect to host … ssl:default [Connect call failed …]``: what
    an operator has to check is the URL, the host, or whether the server is up."""
    os_error = error.os_error
    if os_error.errno is not None and os_error.errno > 0:
        reason = os.strerror(os_error.errno)
    else:
        reason = str(os_error.strerror or os_error)
    return f"cannot connect to {base}: {reason.lower()}"


def _kind(error: Exception) -> str:
    return type(error).__name__


def cause_of(error: Exception) -> FailureCause:
    """The ``FailureCause`` of a failed update's error."""
    if isinstance(error, HubAccessError):
        if error.status == 401:
            return "unauthorized"
        return "suspended" if error.code == "node_suspended" else "forbidden"
    return ""


_REFUSAL_BYTES = 4096
"""How much of an error answer is read for its message."""
_REFUSAL_CHARS = 200
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


async def _refusal(resp: aiohttp.ClientResponse) -> tuple[str, str]:
    """``HTTP <status>`` with the message of the answer's JSON error shape if it has
    one, and that error's ``code`` (``""`` without one).

    So that an operator reads the hub's own reason (``401 unauthorized: node is
    revoked``) rather than a bare status, and the node can tell a suspension
    (``node_suspended``) from a list it may not read. The answer may come from a
    mirror or anyone on the path: only a small prefix is read, and only its visible
    ASCII is kept, cut short.
    """
    status = f"HTTP {resp.status}"
    try:
        error = json.loads(await resp.content.read(_REFUSAL_BYTES))["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError, aiohttp.ClientError):
        return status, ""
    said = _UNPRINTABLE.sub(" ", f"{code}: {message}").strip()[:_REFUSAL_CHARS]
    return (f"{status} {said}" if said else status), code


@dataclass
class ListOutcome:
    """What one update of one list did.

    ``added``, ``removed`` and ``state`` are hashes, whatever the list's format: for
    an ``entries`` list ``state`` is its records' hashes, given after a snapshot
    only (None after a delta: ``Matching.follow`` reads the store when it must).
    """

    list_id: str
    status: UpdateStatus
    from_version: int
    to_version: int
    error: str = ""
    added: list[bytes] = field(default_factory=list)
    removed: list[bytes] = field(default_factory=list)
    rebuilt: bool = False
    state: ListState | None = None
    cause: FailureCause = ""
    kind: str = ""
    """The error's class name (``FreezeError``), for programs; ``error`` is for people."""


class Syncer:
    """One node's sync runs against one hub."""

    def __init__(
        self,
        store: NodeStore | StoreRunner,
        fetcher: Fetcher,
        lists: Sequence[str],
        *,
        pinned_root_sha256: str,
        snapshot_lag: int = 1000,
    ) -> None:
        self.runner: StoreRunner = InPlace(store) if isinstance(store, NodeStore) else store
        self.fetcher = fetcher
        self.lists = list(lists)
        self.pinned_root_sha256 = pinned_root_sha256
        self.snapshot_lag = snapshot_lag

    async def run(self, fn: Callable[[], R]) -> R:
        """A heavy step of the trust rules (no store), where the store calls run."""
        return await self.runner.call(lambda _store: fn())

    async def _write(self, fn: Callable[[NodeStore], None]) -> None:
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
                        lid, status, enforced, enforced, error, cause=cause_of(e), kind=_kind(e)
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
            return ListOutcome(list_id, "rejected", enforced, enforced, describe(e), kind=_kind(e))
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
        return await self.run(lambda: _updated(outcome, old_state, changes))

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
        await self._commit(hub, list_id, spec.hash_type, new_state, trust, now, changes, summary)
        old, new = stored.state, new_state

        def outcome() -> ListOutcome:
            if changes is not None:  # a delta: its hashes suffice (1M hashes cost 1 s)
                done = ListOutcome(list_id, "updated", start, trust.version)
                return _updated(
                    done, ListState(new.kind.length), _hash_changes(new.kind.length, *changes)
                )
            done = ListOutcome(
                list_id, "updated", start, trust.version, rebuilt=True, state=new.as_hashes()
            )
            return _updated(done, old.as_hashes(), None)

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

    async def _undeclared(self, hub: TrustedHub, list_id: str, now: datetime) -> ListOutcome:
        """A list in ``node.toml`` that the trusted root does not declare.

        Nothing is fetched for it, so nothing about it is ever trusted; but the hub
        published nothing wrong (a root declares the lists it has), so this is the
        node's own configuration, not evidence: a failure of cause ``config``.
        """
        error = NodeConfigError(
            f"the hub's root v{hub.root.version} does not declare list {list_id!r}: "
            "correct or remove it in lists in node.toml (ask the hub operator for the "
            "ids of the lists this node may follow)"
        )
        await self._record_failure(list_id, now, error, evidence=False)
        enforced = await self._applied_version(list_id)
        return ListOutcome(
            list_id, "failed", enforced, enforced, str(error), cause="config", kind=_kind(error)
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
    ) -> None:
        """State, trust record and roots in one transaction: the only write of an update
        (``state`` None keeps the stored state, for a list already current), with the
        verified ``opinions`` of an entries list (given to the store only when there is
        one)."""
        files = hub.root_files()

        def commit(store: NodeStore) -> None:
            if opinions is not None:
                store.commit_update(
                    list_id, hash_type, state, trust, files, now, changes, opinions=opinions
                )
            else:
                store.commit_update(list_id, hash_type, state, trust, files, now, changes)

        await self._write(commit)

    async def _refused(
        self, list_id: str, start: int, now: datetime, error: Exception, checkpoint: bytes | None
    ) -> ListOutcome:
        """Record why an update failed and say so; the stored list stays enforced.

        A protocol rejection is evidence (an equivocation keeps both notes); the
        network or the node's own disk is nothing wrong with the published data, so no
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
            kind=_kind(error),
        )


def _storage_checked(write: Callable[[NodeStore], None], store: NodeStore) -> None:
    """``write(store)``; the disk refusing it (full, an I/O error) raises ``StorageError``."""
    try:
        write(store)
    except sqlite3.Error as e:
        fault = storage_error(e)
        if fault is None:
            raise
        raise fault from e


def _updated(
    outcome: ListOutcome,
    old_state: ListState,
    changes: tuple[list[bytes], list[bytes]] | None,
) -> ListOutcome:
    """Fill in the hashes an update added and removed, for the indexes and the registry.

    From a snapshot they are the difference of the two states; states iterate in
    ascending order, so no sort is needed, and a bootstrap (no old state) builds no
    set at all: 1M hashes in 0.3 s instead of 2.5 s.
    """
    if outcome.rebuilt and outcome.state is not None:
        new_state = outcome.state
        old = set(old_state)
        new = set(new_state) if old else set()
        outcome.added = [h for h in new_state if h not in old]
        outcome.removed = [h for h in old_state if h not in new]
    elif changes is not None:
        outcome.removed, outcome.added = changes
    return outcome


def net_changes(update: ListUpdate) -> tuple[list[bytes], list[bytes]]:
    """(removed, added) from the base state to the result, over all applied bodies.

    A hash added by one version and removed by a later one is in neither.
    """
    return _net((body.removes, body.adds) for _, body in update.ordered_bodies())


def net_entry_changes(update: ListUpdate) -> tuple[list[bytes], list[bytes]]:
    """(removed, added) record lines from the base state to the result, over all
    applied bodies of an ``entries`` list: what ``net_changes`` is for hashes. A
    record added by one version and removed by a later one is in neither."""
    return _net(
        ([r.entry.line for r in body.removes], [e.line for e in body.adds])
        for _, body in update.ordered_entries_bodies()
    )


def _net(
    changes: Iterable[tuple[Sequence[bytes], Sequence[bytes]]],
) -> tuple[list[bytes], list[bytes]]:
    """The net (removed, added) of (removes, adds) in order: what one version adds and
    a later one removes, or the reverse, cancels out."""
    added: set[bytes] = set()
    removed: set[bytes] = set()
    for removes, adds in changes:
        for item in removes:
            if item in added:
                added.discard(item)
            else:
                removed.add(item)
        for item in adds:
            if item in removed:
                removed.discard(item)
            else:
                added.add(item)
    return sorted(removed), sorted(added)


def _hash_changes(
    width: int, removed: list[bytes], added: list[bytes]
) -> tuple[list[bytes], list[bytes]]:
    """The hashes (``width`` bytes) that record changes delist and list: a record
    replaced by another of the same hash (its entry's metadata changed) changes no
    hash."""
    digits = 2 * width
    gone = {line[:digits] for line in removed}
    new = {line[:digits] for line in added}
    return (
        [bytes.fromhex(h.decode()) for h in sorted(gone - new)],
        [bytes.fromhex(h.decode()) for h in sorted(new - gone)],
    )


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
