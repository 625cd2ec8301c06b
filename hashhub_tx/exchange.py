"""``HashhubSignalExchangeAPI``: python-threatexchange's ``SignalExchangeAPI`` for a hashhub hub.

``fetch_iter`` runs the node's own update (``follow.Syncer`` with ``Fetcher``: the
same caps, deadlines, mirror rules and ``protocol`` trust rules as ``hashhub-node``)
against an in-memory store that starts from the verified checkpoint. Only when every
followed list has verified — roots chained from the pin, checkpoint fresh and not
rolled back, every header signed and chained, the Merkle root reproduced, every
snapshot and body matching the SHA-256 its signed header names, every resulting
state matching its signed digest — does it yield anything. A failure raises before
the first yield: pytx stores no record and keeps its old checkpoint.

What it yields: one ``FetchDelta`` per list that changed (and one first for lists no
longer followed), each with the checkpoint that is exact after it, so a consumer that
stops between deltas still resumes exactly. Keys are ``(signal type name, signal)``:

    ============  =====================  ===========================
    hashhub type  pytx signal type       signal string
    ============  =====================  ===========================
    pdq           ``PdqSignal``          64 lowercase hex digits
    md5           ``VideoMD5Signal``     32 lowercase hex digits
    sha256        ``VideoSHA256Signal``  64 lowercase hex digits
    vpdq          ``VPDQSignal``         pytx's JSON of the video's frames
    ============  =====================  ===========================

The table is the registry's (``protocol.hashtypes``: each type's ``signal``, a
``"module:Class"`` name this module imports when it is first asked for); phash
lists have no pytx signal type and are not followed. A ``vpdq`` record's hash is
the SHA-256 of the video's frames, which pytx cannot match, so its signal string is
the frames themselves as pytx writes them (``hashhub_tx.video``), from the frames
files the follower fetched and verified for the records; the record's hash is in its
metadata (``signal``). A value names every
followed list holding the hash (``HashhubSignalMetadata.lists``); a hash no followed
list holds any more gets a tombstone (``None``), so a hash in two lists survives its
removal from one. A list of entries also gives the record the hash's entry (its
id, category, classification, source, first_seen and expires) and what the
platforms say of it by the list's newest opinion summary (confirmations, disputes,
dispute state), as opinion tags and fields (``hashhub_tx.entries``); a summary
that says something else of an entry sends its record again. An entry that has
expired is not handed on.

With a node home in the config (``node_home``), the bridge also speaks to the hub
as that enrolled node (``hashhub_tx.acks``): once pytx has taken every delta, it
signs an ack for each list whose version moved; ``report_opinion`` (``threatexchange
label``) counts an outcome and sends it in an ack at once. An ack never fails a
fetch: one the hub cannot take now is kept and sent again.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import typing as t
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from threatexchange.exchanges.fetch_state import (
    FetchDelta,
    FetchedSignalMetadata,
    SignalOpinion,
    SignalOpinionCategory,
)
from threatexchange.exchanges.signal_exchange_api import SignalExchangeAPIWithSimpleUpdates
from threatexchange.signal_type.signal_base import SignalType

from follow import Fetcher, FetchError, InPlace, ListOutcome, StoredEntries, Syncer
from hashhub_tx._store import CheckpointStore, Followed, KeptOpinions, ListFrames, hash_set
from hashhub_tx.acks import OUTCOME_LABELS, AckBook, NodeIdentity
from hashhub_tx.checkpoint import HashhubCheckpoint, make_checkpoint, open_checkpoint
from hashhub_tx.config import API_NAME, HashhubCollabConfig
from hashhub_tx.entries import (
    HashhubEntry,
    changed_hashes,
    expired_hashes,
    opinion_of,
    restated_hashes,
    stance_of,
)
from hashhub_tx.errors import (
    BridgeConfigError,
    BridgeError,
    OpinionError,
    UpdateFailedError,
    UpdateRejectedError,
)
from hashhub_tx.video import record_of_signal, signal_of_frames
from protocol import HASH_TYPES, EntryState, Limits, OpinionSummary, ProtocolError, Root, TrustedHub
from protocol.trust import ListUpdate

__all__ = [
    "SIGNAL_TYPES",
    "HashhubDelta",
    "HashhubSignalExchangeAPI",
    "HashhubSignalMetadata",
]

log = logging.getLogger(__name__)
_bridge_log = logging.getLogger("hashhub_tx")
if _bridge_log.level == logging.NOTSET:
    # The pytx CLI sets the root logger to CRITICAL unless --verbose: the bridge's
    # warnings and errors (why a fetch failed) are shown anyway, through the root's
    # handlers. Configure the "hashhub_tx" logger to change this.
    _bridge_log.setLevel(logging.WARNING)


@functools.cache
def _signal_class(path: str) -> type[SignalType]:
    """Import the ``SignalType`` a hash type names as ``"module:Class"``."""
    module, _, name = path.partition(":")
    value = getattr(importlib.import_module(module), name)
    if not (isinstance(value, type) and issubclass(value, SignalType)):
        raise TypeError(f"{path} is not a python-threatexchange SignalType")
    return value


class _SignalTypes(Mapping[str, type[SignalType]]):
    """hashhub hash type → pytx signal type, read from the registry at each use.

    Not a dictionary built at import: a type registered afterwards (the registry is
    one live dictionary) is followed too, and a type without a ``signal`` is absent.
    """

    def __getitem__(self, type_name: str) -> type[SignalType]:
        kind = HASH_TYPES.get(type_name)
        if kind is None or kind.signal is None:
            raise KeyError(type_name)
        return _signal_class(kind.signal)

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, kind in HASH_TYPES.items() if kind.signal is not None])

    def __len__(self) -> int:
        return sum(1 for kind in HASH_TYPES.values() if kind.signal is not None)


SIGNAL_TYPES: Mapping[str, type[SignalType]] = _SignalTypes()
"""hashhub hash type → the python-threatexchange signal type its hashes become."""


@dataclass
class HashhubSignalMetadata(FetchedSignalMetadata):
    """A published hash: the followed lists that hold it, and the entry of each list
    of entries among them.

    A hub publishes hashes its operators reviewed, so each list counts as a positive
    opinion: one for the lists of bare hashes, tagged with their ids, and one per
    list of entries, tagged with its id and the entry's fields
    (``hashhub_tx.entries``).
    """

    lists: list[str] = field(default_factory=list)
    signal: str = field(default="", compare=False)
    """The listed hash (hex), the record's own key again (for a ``vpdq`` record, the
    record's hash, which names its frames): pytx prints a match's metadata but not the
    listed hash, and ``threatexchange label`` needs that hash. Left out of equality:
    it adds nothing to what the record means."""
    entries: dict[str, HashhubEntry] = field(default_factory=dict)
    """By list id, the entry of each list of entries in ``lists`` (none expired)."""

    def get_as_opinions(self) -> t.Sequence[SignalOpinion]:
        bare = {list_id for list_id in self.lists if list_id not in self.entries}
        opinions = (
            [SignalOpinion(False, SignalOpinionCategory.POSITIVE_CLASS, bare)]
            if bare or not self.entries
            else []
        )
        return opinions + [
            opinion_of(list_id, entry) for list_id, entry in sorted(self.entries.items())
        ]

    def __str__(self) -> str:
        """What ``threatexchange match`` prints: opinion, lists, and the listed hash."""
        shown = super().__str__()
        return f"{shown} {self.signal}" if self.signal else shown


RecordKey = tuple[str, str]
HashhubDelta = FetchDelta[RecordKey, HashhubSignalMetadata, HashhubCheckpoint]


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class _BridgeSyncer(Syncer):
    """The node's update, also handing the bridge's store the headers it applied to a
    list of entries: the checkpoint keeps the one naming the opinion summary (and
    those after it) to verify the summary offline."""

    def __init__(self, store: CheckpointStore, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.bridge_store = store

    async def opinion_summary(
        self, hub: TrustedHub, update: ListUpdate, list_id: str, state: EntryState
    ) -> OpinionSummary | None:
        self.bridge_store.applied_headers[list_id] = [
            update.header(version).to_bytes()
            for version in range(update.trust.version + 1, update.target + 1)
        ]
        return await super().opinion_summary(hub, update, list_id, state)


class HashhubSignalExchangeAPI(
    SignalExchangeAPIWithSimpleUpdates[
        HashhubCollabConfig, HashhubCheckpoint, HashhubSignalMetadata
    ]
):
    """Follows lists of one hashhub hub, verified end to end (see the module docstring).

    Args:
        collab: the collaboration config (checked here: a bad one never fetches).
        now: the clock; fixed once per fetch, as the node does.
        limits: caps and deadlines on every download.
        snapshot_lag: versions behind beyond which a snapshot is fetched instead of
            every body (the node's setting of the same name).
    """

    def __init__(
        self,
        collab: HashhubCollabConfig,
        *,
        now: Callable[[], datetime] = _utcnow,
        limits: Limits | None = None,
        snapshot_lag: int = 1000,
    ) -> None:
        # Not checked here: pytx makes every collaboration's exchange before it
        # fetches, outside its per-collaboration error handling, so one bad config
        # would stop them all. ``fetch_iter`` and ``report_opinion`` check it.
        self.collab = collab
        self.now = now
        self.limits = limits or Limits()
        self.snapshot_lag = snapshot_lag

    @classmethod
    def get_name(cls) -> str:
        return API_NAME

    @staticmethod
    def get_config_cls() -> type[HashhubCollabConfig]:
        return HashhubCollabConfig

    @staticmethod
    def get_checkpoint_cls() -> type[HashhubCheckpoint]:
        return HashhubCheckpoint

    @staticmethod
    def get_record_cls() -> type[HashhubSignalMetadata]:
        return HashhubSignalMetadata

    @classmethod
    def for_collab(cls, collab: HashhubCollabConfig) -> HashhubSignalExchangeAPI:
        return cls(collab)

    def fetch_iter(
        self,
        supported_signal_types: Sequence[type[SignalType]],
        checkpoint: HashhubCheckpoint | None,
    ) -> Iterator[HashhubDelta]:
        """Verify every followed list, then yield their changes (see the module docstring).

        Blocking: it runs its own event loop, so call it from a thread without one
        (as the pytx CLI and HMA do).

        Raises:
            CheckpointError: ``checkpoint`` does not verify (clear the fetched state).
            BridgeConfigError: a configured list is not declared by the hub, or has a
                hash type python-threatexchange cannot match here.
            UpdateRejectedError: published data failed verification.
            UpdateFailedError: a download failed.
        """
        try:
            self.collab.check()
            identity = self._identity()
            deltas, applied = asyncio.run(
                self._update(supported_signal_types, checkpoint, identity)
            )
        except BridgeError as e:
            # pytx prints only "failed to fetch!" (its own log is off by default):
            # the reason goes to the bridge's logger, shown at WARNING and above.
            log.error("%s", e)
            raise
        yield from deltas
        if identity is not None:
            self._acknowledge(identity, applied)

    def _identity(self) -> NodeIdentity | None:
        if self.collab.node_home is None:
            return None
        try:
            return NodeIdentity.load(self.collab.node_home)
        except BridgeConfigError as e:
            raise BridgeConfigError(f"{self.collab.name}: {e}") from e

    def _book(self, identity: NodeIdentity) -> AckBook:
        return AckBook(identity, self.collab.hub_url.rstrip("/"), self.now)

    def _acknowledge(
        self, identity: NodeIdentity, applied: Mapping[str, tuple[str, Followed]]
    ) -> None:
        """Sign acks for what the fetch applied and send them; never fails the fetch
        (pytx has stored the deltas by now): a problem is logged, the ack kept."""
        try:
            book = self._book(identity)
            book.applied(applied)
            self._flush(book)
        except Exception as e:  # pytx stored the deltas: the fetch succeeded regardless
            log.warning("%s: acks not sent: %s: %s", self.collab.name, type(e).__name__, e)

    def _flush(self, book: AckBook) -> None:
        confirmed, problems = asyncio.run(book.flush())
        for problem in problems:
            log.warning("%s: %s", self.collab.name, problem)
        log.info("%s: the hub confirmed %d ack(s)", self.collab.name, confirmed)

    def report_opinion(self, s_type: type[SignalType], signal: str, opinion: SignalOpinion) -> None:
        """Report what was done about a match of ``signal``, as an ack's counters.

        ``threatexchange label COLLAB photo --as-hash pdq --labels OUTCOME -- HASH``
        (HMA: its opinion on a match) becomes one match of the hash with that
        outcome, counted in every followed list that held the hash and sent to the
        hub at once in a signed ack (kept and sent again later if the hub cannot be
        reached). The outcome is the one label of ``OUTCOME_LABELS`` (``actioned``,
        ``blocked``, ``false_positive``, ``kept``, ``seen``); a negative opinion is
        ``false_positive`` and an "investigation seed" one ``seen``.

        Raises:
            OpinionError: the config is unusable, there is no node home, the outcome
                is missing or unknown, or no fetched list ever held the hash.
        """
        try:
            self.collab.check()
            identity = self._identity()
        except BridgeConfigError as e:
            raise OpinionError(str(e)) from e
        if identity is None:
            raise OpinionError(
                f"{self.collab.name}: no node home (--node-home): outcomes go to the hub in "
                "acks signed by an enrolled node"
            )
        label = _outcome(opinion)
        hash_type = next(
            (name for name, cls in SIGNAL_TYPES.items() if cls.get_name() == s_type.get_name()),
            None,
        )
        if hash_type is None:
            raise OpinionError(f"{s_type.get_name()} signals are not followed from a hashhub hub")
        value = _listed_hash(hash_type, signal)
        book = self._book(identity)
        book.record(hash_type, value, label)
        self._flush(book)

    # -- the update -------------------------------------------------------------------

    async def _update(
        self,
        supported: Sequence[type[SignalType]],
        checkpoint: HashhubCheckpoint | None,
        identity: NodeIdentity | None,
    ) -> tuple[list[HashhubDelta], dict[str, tuple[str, Followed]]]:
        """The deltas, and each followed list as applied after them with its origin."""
        now = self.now()
        pin = self.collab.pinned_root_sha256
        roots: list[tuple[bytes, bytes]] = []
        trusted: dict[str, Followed] = {}
        opinions: dict[str, KeptOpinions] = {}
        frames: dict[str, ListFrames] = {}
        if checkpoint is not None:
            roots, trusted, opinions, frames = open_checkpoint(
                checkpoint, pin, now=now, limits=self.limits
            )
        store = CheckpointStore(roots, trusted, opinions, frames)
        async with aiohttp.ClientSession() as session:
            fetcher = Fetcher(
                session,
                self.collab.hub_url,
                mirrors=self.collab.mirrors,
                token=identity.token if identity is not None else None,
                limits=self.limits,
            )
            # CheckpointStore is a follow.FollowerStore kept in memory (see
            # hashhub_tx._store), called in place.
            syncer = _BridgeSyncer(
                store,
                InPlace(store),
                fetcher,
                [],
                pinned_root_sha256=pin,
                snapshot_lag=self.snapshot_lag,
            )
            try:
                hub = await syncer.open_hub(now)
            except ProtocolError as e:
                raise UpdateRejectedError(f"{self.collab.name}: root: {e}") from e
            except FetchError as e:
                raise UpdateFailedError(f"{self.collab.name}: root: {e}") from e
            store.save_roots(hub.root_files())
            followed = self._followed(hub.root, supported)
            outcomes = [await syncer.sync_list(hub, list_id, now) for list_id in followed]
        for source in fetcher.rejected:
            log.warning(
                "%s: a source served bytes that failed verification: %s", self.collab.name, source
            )
        if store.failures:
            message = f"{self.collab.name}: " + "; ".join(str(f) for f in store.failures)
            if any(f.evidence for f in store.failures):
                raise UpdateRejectedError(message)
            raise UpdateFailedError(message)
        progress = checkpoint.progress if checkpoint is not None else None
        since = _fetched(checkpoint)
        deltas, current = self._deltas(store, followed, outcomes, progress, since)
        applied = {
            list_id: (hub.root.origin(list_id), stored)
            for list_id, stored in current.items()
            if list_id in followed
        }
        return deltas, applied

    def _followed(self, root: Root, supported: Sequence[type[SignalType]]) -> list[str]:
        """The lists to follow: the configured ones (checked), or every matchable one."""
        names = {s.get_name() for s in supported}

        def matchable(hash_type: str) -> bool:
            signal = SIGNAL_TYPES.get(hash_type)
            return signal is not None and signal.get_name() in names

        if not self.collab.list_ids:
            return sorted(
                list_id for list_id, spec in root.lists.items() if matchable(spec.hash_type)
            )
        for list_id in self.collab.list_ids:
            spec = root.lists.get(list_id)
            if spec is None:
                raise BridgeConfigError(
                    f"{self.collab.name}: root v{root.version} declares no list {list_id!r}"
                )
            if not matchable(spec.hash_type):
                raise BridgeConfigError(
                    f"{self.collab.name}: list {list_id} holds {spec.hash_type} hashes, "
                    "which this threatexchange set-up cannot match"
                )
        return list(self.collab.list_ids)

    def _deltas(
        self,
        store: CheckpointStore,
        followed: Sequence[str],
        outcomes: Sequence[ListOutcome],
        progress: int | None,
        since: datetime | None,
    ) -> tuple[list[HashhubDelta], dict[str, Followed]]:
        """One delta per change, each carrying the checkpoint that is exact after it;
        and the lists as they are after the last. Then, if an entry has expired since
        the last fetch (``since``), one more delta with the records of its hashes sent
        again without it. A list of entries whose new opinion summary says something
        else of an entry sends that entry's records again."""
        now = self.now()
        current = dict(store.lists)
        said = dict(store.opinions)
        videos = dict(store.frames)
        # Every frames file known, by record hash (content-addressed: one pool serves
        # every list): a tombstone names a removed record by its frames too.
        pool: dict[bytes, bytes] = {}
        for held in [*store.frames.values(), *store.committed_frames.values()]:
            pool.update(held)
        deltas: list[HashhubDelta] = []

        def checkpoint() -> HashhubCheckpoint:
            return make_checkpoint(
                self.collab.pinned_root_sha256,
                store.roots(),
                current,
                progress=progress,
                fetched=now,
                opinions=said,
                frames=videos,
            )

        dropped = [list_id for list_id in current if list_id not in followed]
        if dropped:
            touched: dict[str, set[bytes]] = {}
            for list_id in dropped:
                gone = current.pop(list_id)
                said.pop(list_id, None)
                videos.pop(list_id, None)
                touched.setdefault(gone.hash_type, set()).update(hash_set(gone))
            updates = _records(touched, current, said, now, pool)
            deltas.append(FetchDelta(updates, checkpoint()))
        sent: dict[str, set[bytes]] = {}
        for outcome in outcomes:
            new = store.committed.get(outcome.list_id)
            if new is None:
                continue  # declared but never published: nothing to trust yet
            old = current.get(outcome.list_id)
            current[outcome.list_id] = new
            old_said = said.pop(outcome.list_id, None)
            new_said = store.committed_opinions.get(outcome.list_id)
            if new_said is not None:
                said[outcome.list_id] = new_said
            if outcome.list_id in store.committed_frames:
                videos[outcome.list_id] = store.committed_frames[outcome.list_id]
            hashes = {*outcome.added, *outcome.removed}
            if isinstance(new, StoredEntries) and (
                old is None or old.trust.version != new.trust.version
            ):
                hashes |= changed_hashes(old, new)
                hashes |= restated_hashes(old_said, new_said, new)
            sent.setdefault(new.hash_type, set()).update(hashes)
            updates = _records({new.hash_type: hashes}, current, said, now, pool)
            deltas.append(FetchDelta(updates, checkpoint()))
        expired = {
            hash_type: hashes - sent.get(hash_type, set())
            for hash_type, hashes in expired_hashes(current.values(), now, since).items()
        }
        if any(expired.values()):
            deltas.append(FetchDelta(_records(expired, current, said, now, pool), checkpoint()))
        if not deltas:
            deltas.append(FetchDelta({}, checkpoint()))
        return deltas, current


def _fetched(checkpoint: HashhubCheckpoint | None) -> datetime | None:
    """When the fetch that made ``checkpoint`` ran, if it says."""
    if checkpoint is None or checkpoint.fetched is None:
        return None  # (a checkpoint pickled before ``fetched`` reads the class default)
    return datetime.fromtimestamp(checkpoint.fetched, UTC)


def _records(
    touched: Mapping[str, set[bytes]],
    lists: Mapping[str, Followed],
    said: Mapping[str, KeptOpinions],
    now: datetime,
    frames: Mapping[bytes, bytes],
) -> dict[RecordKey, HashhubSignalMetadata | None]:
    """The record of every touched hash: the lists now holding it (a list of entries
    only through an entry not expired at ``now``, with what its summary in ``said``
    says of the entry), or a tombstone. A ``vpdq`` record is keyed by its frames (in
    ``frames``, by record hash) as pytx writes them."""
    updates: dict[RecordKey, HashhubSignalMetadata | None] = {}
    for hash_type, hashes in touched.items():
        if not hashes:
            continue
        ordered = sorted(hashes)
        holders: list[list[str]] = [[] for _ in ordered]
        entries: list[dict[str, HashhubEntry]] = [{} for _ in ordered]
        for list_id in sorted(lists):
            stored = lists[list_id]
            if stored.hash_type != hash_type:
                continue
            if isinstance(stored, StoredEntries):
                kept = said.get(list_id)
                summary = None if kept is None else kept.summary
                for i, value in enumerate(ordered):
                    entry = stored.state.find(value)
                    if entry is not None and not entry.expired(now):
                        holders[i].append(list_id)
                        stance = stance_of(summary, entry.entry_id)
                        entries[i][list_id] = HashhubEntry.of(entry, stance)
                continue
            for i, held in enumerate(stored.state.contains_many(ordered)):
                if held:
                    holders[i].append(list_id)
        name = SIGNAL_TYPES[hash_type].get_name()
        by_frames = HASH_TYPES[hash_type].frames
        for value, names, held_entries in zip(ordered, holders, entries, strict=True):
            key = signal_of_frames(frames[value]) if by_frames else value.hex()
            updates[(name, key)] = (
                HashhubSignalMetadata(names, value.hex(), held_entries) if names else None
            )
    return updates


def _outcome(opinion: SignalOpinion) -> str:
    """The one outcome an opinion names (see ``report_opinion``)."""
    if opinion.category == SignalOpinionCategory.NEGATIVE_CLASS:
        return "false_positive"
    if opinion.category == SignalOpinionCategory.INVESTIGATION_SEED:
        return "seen"
    named = sorted(set(opinion.tags) & set(OUTCOME_LABELS))
    unknown = sorted(set(opinion.tags) - set(OUTCOME_LABELS))
    choices = ", ".join(OUTCOME_LABELS)
    if unknown:
        raise OpinionError(f"unknown label {unknown[0]!r}: the outcome is one of {choices}")
    if len(named) != 1:
        raise OpinionError(f"give exactly one outcome label (--labels), one of {choices}")
    return named[0]


def _listed_hash(hash_type: str, signal: str) -> bytes:
    """The listed hash a labelled signal names: its hex, or for a ``vpdq`` signal
    either the record's hash (hex, as a match's metadata prints it) or the frames'
    JSON, whose record is the SHA-256 of the frames it names (``hashhub_tx.video``)."""
    if HASH_TYPES[hash_type].frames and signal.lstrip().startswith("["):
        try:
            return record_of_signal(signal)
        except ValueError as e:
            # pytx writes times to three significant digits, so a long video's JSON may
            # not give its frames back; the record's hash always names it.
            raise OpinionError(
                f"{e}: label the match by its record hash instead (the last word "
                "'threatexchange match' prints for it)"
            ) from e
    try:
        return bytes.fromhex(signal)
    except ValueError as e:
        raise OpinionError(f"{signal[:80]!r} is not a hex hash") from e
