"""Helpers for the sync, ack and webhook tests: a real hub on loopback, real nodes, one clock.

- ``Clock``: the injectable clock the hub and every node share, so a test can move
  time (back-off, freshness) without sleeping.
- ``HubApp``: a hub home and its real HTTP app (``hub.app.create_app``) served by
  ``web.AppRunner`` on 127.0.0.1. ``stop()`` and ``start()`` take the hub down and
  bring a new app up on the same home and port. ``publish`` stages and publishes
  through a ``Hub`` opened in the test's thread, then clears the running app's
  caches, as a publish through the app itself does.
- ``fork_hub``: a copy of a hub (same keys, same history) that can then publish a
  different history of its own.
- ``make_node``: ``Node.init`` pinned to the hub's root v1, its ``node.pub.pem``
  enrolled through ``Access.enrol_node``, the token written to its secret file.
- ``sync_once``: one update as ``node.service.run_sync`` runs it, with the
  ``Fetcher`` built here so a test can pass other sources or ``Limits`` and look
  at ``Fetcher.requested``.
- ``StoreImage``: the one before/after picture of a node's store that every
  "a rejected update changes nothing" assertion compares.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from follow import Fetcher, ListOutcome
from hub.app import create_app
from hub.appkeys import ACCESS_CACHE, FILE_CACHE
from hub.core import Hub, utcnow
from hub.intake import Intake
from hub.services.evidence import StoredAck
from hub.services.reports import ListStatus
from node.config import write_secret
from node.service import Node
from node.sync import NodeSyncer
from protocol import Limits
from protocol.keyfile import load_public_key

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
PDQ_DATA = TESTDATA / "pdq"

HUB_NAME = "hub.test"
NODE_ID = "platform-a"


def md5(label: object) -> bytes:
    return hashlib.md5(str(label).encode(), usedforsecurity=False).digest()


class Clock:
    """A settable UTC clock (whole seconds, like every signed time)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or utcnow()

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> datetime:
        self.t += timedelta(seconds=seconds)
        return self.t


@dataclass
class HubApp:
    """A hub home and its real app on loopback (see the module docstring)."""

    home: Path
    clock: Clock
    port: int = 0
    app: web.Application | None = None
    _runner: web.AppRunner | None = None

    @classmethod
    def init(cls, home: Path, clock: Clock, **settings: Any) -> HubApp:
        hub = Hub.init(
            home,
            HUB_NAME,
            root_keys=1,
            root_threshold=1,
            publish_interval=0,
            timestamp_interval=0,
            now=clock,
            **settings,
        )
        hub.close()
        return cls(home, clock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> HubApp:
        """Serve a new app on this hub's home (on the same port as before, if any)."""
        assert self._runner is None
        self.app = create_app(self.home, now=self.clock, schedule=False)
        self._runner = web.AppRunner(self.app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Take the hub down: nothing listens on its port until ``start``."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.app = None

    @contextmanager
    def opened(self) -> Iterator[Hub]:
        """The hub on a connection of the test's own thread (WAL lets the app keep its own)."""
        hub = Hub.open(self.home, now=self.clock)
        try:
            yield hub
        finally:
            hub.close()
        if self.app is not None:
            self.app[FILE_CACHE].invalidate()
            self.app[ACCESS_CACHE].invalidate()

    def create_list(self, list_id: str, hash_type: str, **options: Any) -> None:
        with self.opened() as hub:
            hub.roots.create_list(list_id, hash_type, **options)

    def publish(
        self, list_id: str, adds: Sequence[bytes] = (), removes: Sequence[bytes] = ()
    ) -> int:
        """Stage and publish one version; returns it."""
        with self.opened() as hub:
            hub.lists.stage(list_id, adds=[Intake(h) for h in adds], removes=list(removes))
            (result,) = hub.publishing.publish([list_id])
            return int(result.version)

    def refresh(self) -> None:
        """Re-issue every checkpoint with a fresh timestamp co-signature (at the clock's time)."""
        with self.opened() as hub:
            hub.checkpoints.refresh()

    def file(self, path: str) -> bytes:
        with self.opened() as hub:
            found = hub.files.get(path)
        assert found is not None, path
        return found[0]

    def pinned(self) -> str:
        with self.opened() as hub:
            return hub.keys.root_sha256(1)

    def enrol(self, node_id: str, public_key_pem: Path, lists: Sequence[str]) -> str:
        with self.opened() as hub:
            return hub.access.enrol_node(node_id, load_public_key(public_key_pem), lists)

    def status(self, list_id: str) -> ListStatus:
        with self.opened() as hub:
            return next(e for e in hub.reports.status().lists if e.id == list_id)

    def acks(self, node_id: str) -> list[StoredAck]:
        """The node's stored acks, oldest first."""
        with self.opened() as hub:
            return list(reversed(hub.evidence.acks(node=node_id, limit=1000)))


async def fork_hub(hub: HubApp, home: Path) -> HubApp:
    """A second hub with ``hub``'s keys and history so far, published on by its own hand.

    Made by copying the hub's home while nothing writes to it (the app is stopped
    and started again): the split view of a hub, or of a thief of its keys,
    showing different nodes different histories. The copy shares the clock and
    is not served; serve it with ``HostileServer.serving``.
    """
    running = hub.app is not None
    await hub.stop()
    shutil.copytree(hub.home, home)
    if running:
        await hub.start()
    return HubApp(home, hub.clock)


def make_node(
    home: Path,
    hub: HubApp,
    lists: Sequence[str],
    *,
    node_id: str = NODE_ID,
    hub_url: str | None = None,
    enrolled_for: Sequence[str] | None = None,
    **settings: Any,
) -> Node:
    """A node pinned to ``hub``'s root v1, enrolled there, sharing the hub's clock.

    ``enrolled_for``: the lists the hub grants it, when not all of ``lists``."""
    node = Node.init(
        home,
        node_id=node_id,
        hub_url=hub_url or hub.url,
        lists=lists,
        pinned_root_sha256=hub.pinned(),
        token="not-yet-enrolled",
        now=hub.clock,
        **settings,
    )
    token = hub.enrol(
        node_id, home / "node.pub.pem", lists if enrolled_for is None else enrolled_for
    )
    write_secret(home / "hub-token", token)
    node.token = token
    return node


async def sync_once(
    node: Node,
    *,
    hub_url: str | None = None,
    mirrors: Sequence[str] | None = None,
    limits: Limits | None = None,
) -> tuple[list[ListOutcome], Fetcher]:
    """One update as ``run_sync`` does it (sync, then ``Node.absorb``), with our own Fetcher."""
    async with aiohttp.ClientSession() as session:
        fetcher = Fetcher(
            session,
            hub_url or node.config.hub_url,
            mirrors=node.config.mirrors if mirrors is None else mirrors,
            token=node.token,
            limits=limits,
        )
        syncer = NodeSyncer(
            node.store,
            fetcher,
            node.config.lists,
            pinned_root_sha256=node.config.pinned_root_sha256,
            snapshot_lag=node.config.snapshot_lag,
        )
        outcomes = await syncer.sync(node.now())
        node.absorb(outcomes)
    return outcomes, fetcher


def statuses(outcomes: Sequence[ListOutcome]) -> dict[str, tuple[str, int, int]]:
    return {o.list_id: (o.status, o.from_version, o.to_version) for o in outcomes}


@dataclass(frozen=True)
class StoreImage:
    """What a node enforces and trusts, as stored: compared before and after an update.

    ``lists`` holds every row of the ``lists`` table with the state blob itself,
    except ``last_attempt`` and ``last_error`` (a failed attempt is noted there
    on purpose), and ``changes`` every row of the logged state changes. ``roots``
    are the stored root versions; ``evidence`` counts evidence rows; ``versions``
    are the versions the in-memory indexes follow.
    """

    lists: tuple[tuple[tuple[str, Any], ...], ...]
    roots: tuple[int, ...]
    evidence: int
    versions: tuple[tuple[str, int], ...]
    changes: tuple[tuple[Any, ...], ...] = ()

    @classmethod
    def of(cls, node: Node) -> StoreImage:
        db = node.store.db
        rows = tuple(
            tuple(sorted((k, v) for k, v in row.items() if k not in ("last_attempt", "last_error")))
            for row in db.query("SELECT * FROM lists ORDER BY id")
        )
        roots = tuple(r["version"] for r in db.query("SELECT version FROM roots ORDER BY version"))
        evidence = next(iter(db.query("SELECT count(*) AS n FROM evidence")))["n"]
        changes = tuple(
            tuple(r.values()) for r in db.query("SELECT * FROM state_changes ORDER BY list_id, seq")
        )
        return cls(
            rows, roots, evidence, tuple(sorted(node.hub().matching.versions.items())), changes
        )

    def unchanged(self, node: Node, *, new_evidence: int = 0) -> None:
        """Assert the store still enforces and trusts exactly this, with ``new_evidence`` rows."""
        now = StoreImage.of(node)
        assert now.lists == self.lists, "the lists table changed"
        assert now.changes == self.changes, "the logged state changes changed"
        assert now.versions == self.versions, "the in-memory indexes moved"
        assert now.evidence == self.evidence + new_evidence, (now.evidence, self.evidence)
        assert all(ok for _, ok, _, _ in node.store.verify()), node.store.verify()

    def trust(self, list_id: str) -> dict[str, Any]:
        for row in self.lists:
            values = dict(row)
            if values["id"] == list_id:
                return dict(json.loads(values["trust"]))
        raise KeyError(list_id)


def evidence_rows(node: Node) -> list[dict[str, Any]]:
    """Every evidence row, with its bytes."""
    return list(node.store.db.query("SELECT * FROM evidence ORDER BY id"))


def state_of(node: Node, list_id: str) -> bytes:
    """The list's stored state: the blob with any logged changes replayed."""
    row = next(iter(node.store.db.query("SELECT hash_type FROM lists WHERE id = ?", [list_id])))
    return node.store.stored_list(list_id, row["hash_type"]).state.to_bytes()


def raw_db(node: Node) -> sqlite3.Connection:
    """A second connection to the node's database (another process would see the same)."""
    return sqlite3.connect(str(node.home / node.config.database), isolation_level=None)


def with_mirrors(node: Node, mirrors: Sequence[str]) -> None:
    """Point a node at other mirrors (as editing ``node.toml`` and restarting would)."""
    node.config = dataclasses.replace(node.config, mirrors=tuple(mirrors))
