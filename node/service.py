"""The node: the composition root of its services, and the network loops that drive them.

``Node`` opens one ``NodeStore`` connection and the node's keys and secrets, and
builds the services that share them:

- ``Matching`` (``node/matching.py``): one match index per list, match events,
  outcomes and the counters they feed;
- ``ContentRegistry`` (``node/registry.py``): hosted content, matched again when
  a list grows (retroactive matches);
- ``AckOutbox`` and ``WebhookOutbox`` (``node/outboxes.py``): signed acks for the
  hub and webhook calls for the platform, durable until confirmed.

A node follows one hub or several (``node.hubs``, ADR 20): each followed hub is a
``FollowedHub`` (``node/followed.py``) with a store view scoped to it, its own
``Matching``, ack outbox and token; ``matching`` (``node.matchings.Matchings``)
matches across them all, and the registry and webhooks span them. ``run_sync`` and
``flush_acks`` work one hub at a time, so one hub's failure is its own.

What spans them stays here: ``absorb`` (after a sync), ``status``, and the
``async`` functions that run a sync, send acks and deliver webhooks, reading what
to send from the store, sending it, and writing the result back. ``Node`` is
synchronous; the daemon uses it from its event-loop thread only (every call is
milliseconds, except applying a large update, which runs between polls).

Counters are cumulative per list (``checked``, ``matched``, ``actioned``,
``blocked``, ``false_positive``) and per listed hash; an ack carries the totals,
so a lost ack loses nothing. Acks and webhook calls wait in durable outboxes
until the other side confirms; a retry sends the very same bytes (same ``seq``,
same idempotency key).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from edge.clock import utcnow
from edge.database import DatabaseThread
from follow import Fetcher, ListOutcome, StoredEntries, StoredList, cannot_connect
from node.config import CONFIG_NAME, NodeConfig, hubs_of, read_secret, write_secret
from node.errors import NodeConfigError
from node.fleet import check_replica, content_shard
from node.followed import FollowedHub
from node.hubs import HubSettings, token_path
from node.imaging import ImageLimits
from node.matching import OUTCOMES, MatchIndex, Matching, MatchResult, build_index, index_frames
from node.matchings import Matchings
from node.outboxes import AckOutbox, WebhookOutbox
from node.policy import QuarantineRule
from node.registry import ContentRegistry
from node.store import NodeStore
from node.sync import NodeSyncer
from protocol import Limits, ListSpec, ProtocolError, Root, SigningKey
from protocol.ack import ACK_LAST_SEQ_HEADER, ACK_REFUSALS, ACK_SIGNATURE_HEADER, NODE_ID_PATTERN
from protocol.keyfile import load_private_key, write_private_key, write_public_key
from protocol.lists import hash_type as hash_kind
from protocol.lists import validate_list_id
from protocol.video import Frame

__all__ = [
    "OUTCOMES",
    "MatchResult",
    "Node",
    "deliver_webhooks",
    "flush_acks",
    "last_seq",
    "run_sync",
    "utcnow",
]

MAX_SEQ_JUMP = 1 << 32
"""A hub's claimed last ``seq`` beyond the node's own by more than this is not believed."""


class Node:
    """One participating platform's node (see the module docstring).

    The services are attributes: ``matching``, ``registry``, ``acks``, ``webhooks``;
    ``replica`` and ``shard`` are its place in the platform's fleet (``node.fleet``),
    checked here so that every command refuses a bad one before doing anything.
    The few methods here are what needs more than one of them, or the node's home.
    """

    def __init__(
        self,
        home: Path,
        config: NodeConfig,
        *,
        now: Any = utcnow,
        hubs: Sequence[HubSettings] | None = None,
    ) -> None:
        self.home = home
        self.config = config
        self.now = now
        self.replica = check_replica(config.replica)
        self.shard = content_shard(config.content_shard)
        settings = tuple(hubs) if hubs is not None else hubs_of(home, config)
        self.store = NodeStore(home / config.database)
        self.key = load_private_key(home / "node.key")
        self.api_token = read_secret(home / "api-token")
        self.hubs: dict[str, FollowedHub] = {}
        for hub in settings:
            self.hubs[hub.name] = self._followed(hub)
        self._credentials = self._credential_files()
        self._config_file = _stamp(home / CONFIG_NAME)
        self.matching = Matchings({name: hub.matching for name, hub in self.hubs.items()})
        self.webhooks = WebhookOutbox(
            self.store,
            url=config.webhook_url,
            secret=read_secret(home / "webhook-secret"),
            max_backoff=config.max_backoff,
            now=now,
        )
        self.registry = ContentRegistry(
            self.store,
            self.matching,
            self.webhooks,
            node_id=config.node_id,
            now=now,
            index_dir=home / "content-index",
        )
        self.matching.load_indexes()

    # -- the hubs it follows -----------------------------------------------------------

    def _followed(self, settings: HubSettings) -> FollowedHub:
        """One hub's services over a store view of its own: its lists' indexes and
        counters, its ack outbox (its ``seq`` space), its token."""
        config = self.config
        store = self.store.view(settings.name)
        matching = Matching(
            store,
            settings.lists,
            now=self.now,
            image_limits=ImageLimits(max_bytes=config.max_upload_bytes),
            dihedral=config.dihedral,
            replica=self.replica,
            quarantine=QuarantineRule(config.quarantine_matches_per_hour, config.quarantine_factor),
        )
        acks = AckOutbox(
            store,
            self.key,
            node_id=settings.node_id,
            lists=settings.lists,
            max_backoff=config.max_backoff,
            now=self.now,
            before_counting=matching.write_checked,
        )
        token = token_path(self.home, settings.name)
        return FollowedHub(
            settings, store, matching, acks, read_secret(token) if token.exists() else ""
        )

    def hub(self, name: str | None = None) -> FollowedHub:
        """The followed hub ``name``; with None, the only one.

        Raises:
            NodeConfigError: no hub of that name, or None while the node follows
                several (the message names them: ``--hub NAME``).
        """
        if name is None:
            if len(self.hubs) == 1:
                return next(iter(self.hubs.values()))
            raise NodeConfigError(
                f"this node follows {len(self.hubs)} hubs ({', '.join(self.hubs)}): "
                "name one with --hub NAME"
            )
        found = self.hubs.get(name)
        if found is None:
            raise NodeConfigError(
                f"no hub named {name[:64]!r}; this node follows {', '.join(self.hubs)}"
            )
        return found

    @property
    def acks(self) -> AckOutbox:
        """The ack outbox of the first hub (a node of one hub has no other)."""
        return next(iter(self.hubs.values())).acks

    @property
    def token(self) -> str:
        """The first hub's token ("" until ``token set``)."""
        return next(iter(self.hubs.values())).token

    @token.setter
    def token(self, value: str) -> None:
        next(iter(self.hubs.values())).token = value

    def follow_hubs(self) -> tuple[list[str], list[str]]:
        """Take up the hubs ``node.toml`` names now (``hub add``, ``hub remove`` by
        another process): a new hub's indexes are built from the store, a removed
        hub's lists stop matching at once (its evidence and events stay). A changed
        hub (same name, other settings) is followed anew. Returns (added, removed).

        Raises:
            NodeConfigError: ``node.toml`` no longer reads (nothing changes then).
        """
        settings = {hub.name: hub for hub in hubs_of(self.home, self.config)}
        kept = {name: hub for name, hub in self.hubs.items() if settings.get(name) == hub.settings}
        added = [name for name in settings if name not in kept]
        removed = [name for name in self.hubs if name not in settings]
        for name, hub in self.hubs.items():
            if name not in kept:  # the misses' checks counted for it, before it goes
                hub.matching.write_checked()
        hubs = {name: kept.get(name) or self._followed(hub) for name, hub in settings.items()}
        for name in added:
            hubs[name].matching.load_indexes()
        self.hubs = hubs
        self.matching.by_hub = {name: hub.matching for name, hub in hubs.items()}
        self._credentials = self._credential_files()
        return added, removed

    def follow_config(self) -> tuple[list[str], list[str]]:
        """``follow_hubs`` if ``node.toml`` changed on disk since this node last read it
        (a cheap ``stat``, so a running node asks every few seconds). Returns (added,
        removed).

        Raises:
            NodeConfigError: ``node.toml`` changed and no longer reads (raised once;
                it is read again when it changes next; the hubs stay as they were).
        """
        stamp = _stamp(self.home / CONFIG_NAME)
        if stamp == self._config_file:
            return [], []
        self._config_file = stamp
        return self.follow_hubs()

    # -- setup ---------------------------------------------------------------------

    def _credential_files(self) -> tuple[tuple[int, int, int] | None, ...]:
        """What identifies the key and token files' contents on disk, cheaply."""
        return (
            _stamp(self.home / "node.key"),
            *(_stamp(token_path(self.home, name)) for name in self.hubs),
        )

    def follow_credentials(self) -> bool:
        """Take up a key or token another process wrote: ``key rotate``, ``token set``.

        The daemon runs for weeks; the platform rotates the key or stores a new token
        with the command line meanwhile. Without this the daemon would go on signing
        with the retired key (acks the hub refuses, PROTOCOL.md §10.4.1) or sending a
        revoked token. Called before each sync and each send; returns whether anything
        changed.
        """
        now = self._credential_files()
        if now == self._credentials:
            return False
        self.key = load_private_key(self.home / "node.key")
        for hub in self.hubs.values():
            hub.acks.key = self.key
            token_file = token_path(self.home, hub.name)
            hub.token = read_secret(token_file) if token_file.exists() else ""
        self._credentials = now
        return True

    def rotate_key(self) -> tuple[str, str, list[int]]:
        """A new signing key for this node; returns (old key id, new key id, re-signed seqs).

        The old public key is kept beside it as ``node.<keyid>.pub.pem`` (an auditor
        checks the acks it signed with it); the old private key is overwritten, so a
        key rotated because it leaked signs nothing more here. Acks waiting in the
        outbox are signed again with the new key.
        """
        old = self.key
        new = SigningKey.generate()
        write_public_key(self.home / f"node.{old.keyid[:16]}.pub.pem", old.public)
        staged = self.home / "node.key.new"
        staged.unlink(missing_ok=True)  # left by an interrupted rotation: never used
        write_private_key(staged, new)
        os.replace(staged, self.home / "node.key")  # atomic: one key or the other
        write_public_key(self.home / "node.pub.pem", new.public)
        self.key = new
        self._credentials = self._credential_files()
        resigned = []
        for hub in self.hubs.values():
            resigned += hub.acks.resign(new)
        return old.keyid, new.keyid, resigned

    @classmethod
    def init(
        cls,
        home: Path,
        *,
        node_id: str,
        hub_url: str,
        lists: Sequence[str],
        pinned_root_sha256: str,
        token: str = "",
        mirrors: Sequence[str] = (),
        webhook_url: str = "",
        now: Any = utcnow,
        **settings: Any,
    ) -> Node:
        """Create a node home: configuration, a new Ed25519 key, and the secret files."""
        if (home / CONFIG_NAME).exists():
            raise NodeConfigError(f"{home} already holds a node")
        pin = _checked_settings(node_id, hub_url, lists, pinned_root_sha256, mirrors, webhook_url)
        config = NodeConfig(
            node_id=node_id,
            hub_url=hub_url.rstrip("/"),
            lists=tuple(lists),
            pinned_root_sha256=pin,
            mirrors=tuple(m.rstrip("/") for m in mirrors),
            webhook_url=webhook_url,
            **settings,
        )
        home.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only, as the keys
        key = SigningKey.generate()
        write_private_key(home / "node.key", key)
        write_public_key(home / "node.pub.pem", key.public)
        if token:  # else later, once the hub operator has enrolled the node's key
            write_secret(home / "hub-token", token)
        write_secret(home / "api-token", "hhl_" + secrets.token_urlsafe(32))
        write_secret(home / "webhook-secret", secrets.token_urlsafe(32))
        (home / CONFIG_NAME).write_text(config.to_toml(), encoding="utf-8")
        return cls(home, config, now=now)

    @classmethod
    def open(cls, home: Path, *, now: Any = utcnow) -> Node:
        return cls(home, NodeConfig.load(home), now=now)

    def close(self) -> None:
        try:
            self.matching.write_checked()  # the misses' checks counted since the last write
        finally:
            self.store.close()

    def newest_root(self) -> Root | None:
        """The newest verified root of the first hub (None before its first update)."""
        return next(iter(self.hubs.values())).newest_root()

    # -- after a sync ----------------------------------------------------------------

    def absorb(self, outcomes: Iterable[ListOutcome], hub: str | None = None) -> int:
        """Follow applied updates of one hub's lists (``hub``: None, the only one):
        indexes, retroactive matches, acks to that hub. Returns new webhooks."""
        followed = self.hub(hub)
        root = followed.newest_root()
        if root is None:  # not even root v1 verified yet: the first update failed
            return 0
        webhooks = 0
        updated = []
        for outcome in outcomes:
            if outcome.status != "updated":
                continue
            spec = root.list_spec(outcome.list_id)
            followed.matching.follow(outcome, spec)
            webhooks += self.registry.retroactive(
                outcome, followed.matching.stricter(spec), followed.matching
            )
            updated.append(outcome.list_id)
        if updated:
            followed.acks.enqueue(updated)
        return webhooks

    # -- status ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What the node enforces and what waits: the status page, ``status`` command
        and metrics all read this one dictionary. ``lists`` holds every hub's lists,
        each naming its ``hub``; ``hubs`` one line per hub; ``hub`` and
        ``root_version`` are the first hub's (a node of one hub has no other)."""
        self.matching.write_checked()
        now = self.now()
        hubs = [hub.status(now) for hub in self.hubs.values()]
        lists = [entry for hub in hubs for entry in hub["lists"]]
        return {
            "node": self.config.node_id,
            "replica": self.replica or None,
            "content_shard": str(self.shard) if self.shard else None,
            "hub": hubs[0]["url"],
            "root_version": hubs[0]["root_version"],
            "hubs": [{k: v for k, v in hub.items() if k != "lists"} for hub in hubs],
            "lists": lists,
            "stale": any(entry["stale"] for entry in lists),
            "damaged": sorted(self.matching.damaged),
            "acks_pending": sum(hub["acks_pending"] for hub in hubs),
            "webhooks_pending": self.store.webhooks.pending(),
            "matches_awaiting_outcome": self.store.matches.awaiting_outcome(),
            "evidence": len(self.store.evidence()),
            "policy": self.matching.policy.counters(),
        }


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What identifies a file's contents on disk, cheaply (None: no such file)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _checked_settings(
    node_id: str,
    hub_url: str,
    lists: Sequence[str],
    pinned_root_sha256: str,
    mirrors: Sequence[str],
    webhook_url: str,
) -> str:
    """Refuse a node id, list id, pin or URL that would only fail later, far from its
    cause (a node id the hub will not enrol, a path built from a bad list id).
    Returns the pin, normalised."""
    if not NODE_ID_PATTERN.fullmatch(node_id) or ".." in node_id:
        raise NodeConfigError(f"invalid node id {node_id!r}")
    for list_id in lists:
        try:
            validate_list_id(list_id)
        except ProtocolError as e:
            raise NodeConfigError(str(e)) from e
    if not lists:
        raise NodeConfigError("subscribe to at least one list")
    pin = pinned_root_sha256.strip().lower()
    if len(pin) != 64 or any(c not in "0123456789abcdef" for c in pin):
        raise NodeConfigError("the pinned root SHA-256 must be 64 hex digits")
    for url in (hub_url, *mirrors, *([webhook_url] if webhook_url else [])):
        if not url.startswith(("http://", "https://")):
            raise NodeConfigError(f"{url!r} is not an http(s) URL")
    return pin


# -- the network parts -----------------------------------------------------------------


async def run_sync(
    node: Node, session: aiohttp.ClientSession, hub: str | None = None
) -> list[ListOutcome]:
    """One update of every list followed from one hub (docs/design.md §4.2), then
    indexes, registry, acks. ``hub``: None, the only one.

    The update runs ``follow.Syncer`` over a store view scoped to the hub, with the
    hub's pin, token and mirrors: what it verifies, applies, refuses or keeps as
    evidence is the hub's alone, and another hub's lists are not touched.

    The update's store work and heavy steps run on a thread of their own, with a
    connection of their own (``edge.database.DatabaseThread``): the match API, on
    this loop, keeps answering while a million-hash snapshot is read, replayed and
    committed. The node's own connection sees the commit once it is made (WAL).
    """
    followed = node.hub(hub)
    settings = followed.settings
    fetcher = Fetcher(
        session,
        settings.url,
        mirrors=settings.mirrors,
        token=followed.token,
        limits=Limits(fetch_timeout=node.config.fetch_timeout),
    )
    path = node.home / node.config.database
    worker = DatabaseThread(lambda: NodeStore(path, hub=settings.name), name="hashhub-sync")
    try:
        syncer = NodeSyncer(
            worker,
            fetcher,
            settings.lists,
            pinned_root_sha256=settings.pinned_root_sha256,
            snapshot_lag=node.config.snapshot_lag,
        )
        outcomes = await syncer.sync(node.now())
        videos = await _video_indexes(worker, followed, outcomes)
    finally:
        worker.close(NodeStore.close)
    for stored, index, intact in videos:
        followed.matching.install(stored, index, intact)
    node.absorb(outcomes, settings.name)
    return outcomes


async def _video_indexes(
    worker: DatabaseThread[NodeStore], followed: FollowedHub, outcomes: Sequence[ListOutcome]
) -> list[tuple[StoredList | StoredEntries, MatchIndex, bool]]:
    """New indexes of the ``vpdq`` lists an update changed, built off this loop.

    A video list's index is rebuilt from its stored frames at every update (a
    hundred thousand videos: seconds of decoding and indexing), so the frames are
    read on the sync's own thread and the index built on another, and the match API
    keeps answering with the old index until ``install`` swaps the new one in;
    ``Matching.follow`` then finds the list at its version and leaves it.
    """
    root = followed.newest_root()
    if root is None:
        return []
    built = []
    for outcome in outcomes:
        spec = root.lists.get(outcome.list_id)
        if outcome.status != "updated" or spec is None or not hash_kind(spec.hash_type).frames:
            continue

        def read(
            store: NodeStore, spec: ListSpec = spec
        ) -> tuple[StoredList | StoredEntries, dict[str, Sequence[Frame]] | None]:
            stored = store.stored_list(spec.list_id, spec.hash_type)
            return stored, index_frames(store, spec, stored)

        stored, frames = await worker.call(read)
        index, intact = await asyncio.to_thread(build_index, spec, stored, frames)
        built.append((stored, index, intact))
    return built


async def flush_acks(
    node: Node,
    session: aiohttp.ClientSession,
    *,
    hub: str | None = None,
    renumber: bool = True,
    reasons: list[str] | None = None,
) -> tuple[int, int]:
    """Send every due ack in ``seq`` order, each to the hub whose list it is (``hub``:
    that hub's only; None, every hub's in turn); returns (confirmed, failed).

    ``reasons``, if given, receives one line per failed ack (``seq N (list): why``,
    the error stored with it; ``hub: seq N (list): why`` on a node of several hubs),
    so that a command can show why rather than a count.

    A 409 ``seq_conflict`` naming a last ``seq`` at or above the refused one means the
    hub holds acks this node no longer remembers: the queue is re-signed above that
    ``seq`` (``AckOutbox.renumber``) and sent again, once per call. One hub's failure
    leaves the others' acks to go.
    """
    confirmed = failed = 0
    names = [node.hub(hub).name] if hub is not None else list(node.hubs)
    for name in names:
        said: list[str] = []
        done, not_done = await _flush_hub_acks(node.hubs[name], session, renumber, said)
        confirmed += done
        failed += not_done
        if reasons is not None:
            reasons.extend(f"{name}: {line}" if len(node.hubs) > 1 else line for line in said)
    return confirmed, failed


async def _flush_hub_acks(
    hub: FollowedHub, session: aiohttp.ClientSession, renumber: bool, reasons: list[str]
) -> tuple[int, int]:
    confirmed = failed = 0
    for row in hub.acks.due():
        sidecar = base64.b64encode(bytes(row["sig"])).decode()
        try:
            async with session.post(
                f"{hub.settings.url}/v1/acks",
                data=bytes(row["bytes"]),
                headers={
                    "Authorization": f"Bearer {hub.token}",
                    ACK_SIGNATURE_HEADER: sidecar,
                    "Content-Type": "application/json",
                },
                timeout=aiohttp.ClientTimeout(total=30),
            ) as resp:
                text = await resp.text()
                ok = resp.status == 200
                hub_last = last_seq(resp, row["seq"]) if resp.status == 409 else None
                if hub_last is not None and renumber:
                    hub.acks.renumber(hub_last)
                    more_confirmed, more_failed = await _flush_hub_acks(
                        hub, session, False, reasons
                    )
                    return confirmed + more_confirmed, failed + more_failed
                error = "" if ok else _ack_refusal(resp.status, text)
                suspended = resp.status == 403 and _error_code(text) == "node_suspended"
                if resp.status in ACK_REFUSALS and not suspended:
                    hub.acks.refused(row["seq"], error)
                    _note(reasons, row, f"refused for good: {error}")
                    failed += 1
                    continue
                hub.acks.sent(
                    row["seq"],
                    ok,
                    error,
                    retry_after=_retry_after(resp) if resp.status in (429, 503) else 0,
                )
        except (aiohttp.ClientError, TimeoutError) as e:
            ok = False
            error = _unsent(hub.settings.url, e)
            hub.acks.sent(row["seq"], False, error)
        if not ok:
            _note(reasons, row, f"not delivered, tried again later: {error}")
        if ok:
            confirmed += 1
        else:
            failed += 1
            break  # keep seq order: later acks wait for this one
    return confirmed, failed


def _ack_refusal(status: int, text: str) -> str:
    """``HTTP <status>``, and the hub's own reason: its error shape's ``code: message``
    when the answer has one, else the start of the answer as it came."""
    try:
        error = json.loads(text)["error"]
        said = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        said = text
    return f"HTTP {status}: {said[:300]}" if said else f"HTTP {status}"


def _note(reasons: list[str] | None, row: Any, why: str) -> None:
    if reasons is not None:
        reasons.append(f"seq {row['seq']} ({row['list_id']}): {why}")


MAX_RETRY_AFTER = 24 * 3600
"""The longest ``Retry-After`` (seconds) believed: a hub cannot park the outbox for longer."""


def _retry_after(resp: aiohttp.ClientResponse) -> int:
    """A 429's or 503's ``Retry-After`` in seconds (0 if absent or not a small integer)."""
    raw = resp.headers.get("Retry-After", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        return 0
    return min(int(raw), MAX_RETRY_AFTER)


def _error_code(text: str) -> str:
    """The ``code`` of a JSON error answer (PROTOCOL.md §10.6), or ``""``."""
    try:
        return str(json.loads(text)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def _unsent(url: str, error: aiohttp.ClientError | TimeoutError) -> str:
    """Why a request never got an answer, as a person reads it: the operating
    system's reason for a refused connection, the deadline, or the client's own
    message; not the client library's class names."""
    if isinstance(error, TimeoutError):
        return f"{url}: no answer within the deadline"
    if isinstance(error, aiohttp.ClientConnectorError) and not isinstance(
        error, aiohttp.ClientSSLError
    ):
        return cannot_connect(url, error)
    return f"{url}: {error or type(error).__name__}"


def last_seq(
    resp: aiohttp.ClientResponse, refused: int, max_jump: int = MAX_SEQ_JUMP
) -> int | None:
    """The hub's last ``seq`` from a 409 answer (``Hashhub-Last-Seq``, an ack's or a
    contribution's), if it is one to re-sign above: not below the refused one, and
    not more than ``max_jump`` above it (a larger claim is not believed)."""
    raw = resp.headers.get(ACK_LAST_SEQ_HEADER, "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    last = int(raw)
    if not refused <= last <= refused + max_jump:
        return None
    return last


async def deliver_webhooks(node: Node, session: aiohttp.ClientSession) -> tuple[int, int]:
    """Deliver every due webhook (at least once); returns (delivered, failed)."""
    delivered = failed = 0
    for row in node.webhooks.due():
        body = bytes(row["body"])
        try:
            async with session.post(
                node.config.webhook_url,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": row["idempotency_key"],
                    "Hashhub-Webhook-Signature": node.webhooks.signature(body),
                },
                timeout=aiohttp.ClientTimeout(total=30),
            ) as resp:
                await resp.read()
                ok = 200 <= resp.status < 300
                node.webhooks.sent(row["id"], ok, "" if ok else f"HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as e:
            ok = False
            node.webhooks.sent(row["id"], False, _unsent(node.config.webhook_url, e))
        if ok:
            delivered += 1
        else:
            failed += 1
    return delivered, failed
