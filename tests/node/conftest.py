"""Shared fixtures for the node tests: a real hub on loopback and a real node home.

- ``hub_home``: a hub initialised in ``tmp_path`` (real keys, real SQLite, schedule
  off) with two published lists: ``MD5_LIST`` (md5 of ``"0"`` … ``"4"``, a
  snapshot every 2 versions) and ``PDQ_LIST`` (the PDQ hash of
  ``bridge-mods/aaa-orig.jpg`` of the shared PDQ test images, as ``node.imaging``
  computes it).
- ``hub_server``: the hub's real HTTP app served on 127.0.0.1 at a free port; a
  ``HubServer`` that publishes through the hub's admin API (so the app's own
  caches follow at once), enrols nodes and reads the hub's ``status()``.
  ``serving_hub(home)`` serves another hub the same way (a node following several).
- ``node_home``: a node initialised in ``tmp_path``, pinned to the hub's root v1,
  subscribed to both lists, its key enrolled at the hub and its token stored.
  ``init_node_home`` makes more (another id, a webhook URL, other settings).
- ``node``: ``Node.open(node_home)``, closed afterwards.

``sync(node)`` runs one update through a fresh client session.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from follow import ListOutcome
from hub.app import create_app as create_hub_app
from hub.core import Hub
from hub.intake import Intake
from hub.services.reports import HubStatus, ListStatus
from node.config import write_secret
from node.imaging import hash_image
from node.service import Node, run_sync
from protocol.keyfile import load_public_key

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
PDQ_DATA = TESTDATA / "pdq"
ORIGINAL = PDQ_DATA / "bridge-mods" / "aaa-orig.jpg"
BRIDGE_MODS = PDQ_DATA / "bridge-mods"
DIHEDRAL = PDQ_DATA / "reg-test-input" / "dih"
UNRELATED = PDQ_DATA / "reg-test-input" / "labelme-subset"

HUB_NAME = "hub.test"
MD5_LIST = "tid-md5"
PDQ_LIST = "bridge-pdq"
NODE_ID = "platform-a"


def md5(label: object) -> bytes:
    return hashlib.md5(str(label).encode(), usedforsecurity=False).digest()


@functools.cache
def original_pdq() -> bytes:
    """The PDQ hash of the original bridge photo, as the node computes it."""
    return hash_image(ORIGINAL.read_bytes()).pdq


def opened_hub(home: Path) -> Hub:
    return Hub.open(home)


def init_hub(home: Path, name: str = HUB_NAME) -> None:
    """A hub in ``home`` with ``MD5_LIST`` and ``PDQ_LIST`` published (version 1 each)."""
    hub = Hub.init(
        home,
        name,
        root_keys=1,
        root_threshold=1,
        publish_interval=0,
        timestamp_interval=0,
    )
    try:
        hub.roots.create_list(MD5_LIST, "md5", label="test md5", snapshot_every=2)
        hub.roots.create_list(PDQ_LIST, "pdq", label="test pdq")
        hub.lists.stage(MD5_LIST, adds=[Intake(md5(i)) for i in range(5)])
        hub.lists.stage(PDQ_LIST, adds=[Intake(original_pdq())])
        hub.publishing.publish()
    finally:
        hub.close()


@dataclass
class HubServer:
    """The real hub app on loopback, and ways to drive the hub behind it."""

    home: Path
    url: str
    app: web.Application
    admin_token: str

    def pinned(self) -> str:
        """The SHA-256 of root v1, which a node pins."""
        hub = opened_hub(self.home)
        try:
            return hub.keys.root_sha256(1)
        finally:
            hub.close()

    def enrol(self, node_id: str, public_key_pem: Path, lists: Sequence[str]) -> str:
        """Enrol a node's public key (as the operator would); returns its token."""
        hub = opened_hub(self.home)
        try:
            return hub.access.enrol_node(node_id, load_public_key(public_key_pem), lists)
        finally:
            hub.close()

    def status(self) -> HubStatus:
        hub = opened_hub(self.home)
        try:
            return hub.reports.status()
        finally:
            hub.close()

    def list_status(self, list_id: str) -> ListStatus:
        return next(entry for entry in self.status().lists if entry.id == list_id)

    async def publish(
        self, list_id: str, adds: Sequence[bytes] = (), removes: Sequence[bytes] = ()
    ) -> int:
        """Stage and publish one change through the admin API; returns the new version."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        async with aiohttp.ClientSession() as session:
            body = {
                "adds": [{"hash": h.hex()} for h in adds],
                "removes": [h.hex() for h in removes],
            }
            async with session.post(
                f"{self.url}/v1/admin/lists/{list_id}/stage", json=body, headers=headers
            ) as response:
                assert response.status == 200, await response.text()
            async with session.post(
                f"{self.url}/v1/admin/publish", json={"lists": [list_id]}, headers=headers
            ) as response:
                assert response.status == 200, await response.text()
                published = (await response.json())["published"]
        return int(published[0]["version"])


@pytest.fixture
def hub_home(tmp_path: Path) -> Path:
    home = tmp_path / "hub"
    init_hub(home)
    return home


@contextlib.asynccontextmanager
async def serving_hub(hub_home: Path) -> AsyncIterator[HubServer]:
    """The hub in ``hub_home`` served on loopback (a free port), with an admin token."""
    hub = opened_hub(hub_home)
    try:
        admin_token = hub.access.create_operator_token("admin", "tests")
    finally:
        hub.close()
    app = create_hub_app(hub_home, schedule=False)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield HubServer(hub_home, f"http://{host}:{port}", app, admin_token)
    finally:
        await runner.cleanup()


@pytest.fixture
async def hub_server(hub_home: Path) -> AsyncIterator[HubServer]:
    async with serving_hub(hub_home) as served:
        yield served


def offline_node(
    home: Path, lists: Sequence[str], *, node_id: str = "platform-a", **settings: Any
) -> Node:
    """A node pinned to no real hub (its URL refuses connections): for what reads only
    the store (registration, matching against indexes a test installs, the CLI's
    store commands). The caller closes it."""
    return Node.init(
        home,
        node_id=node_id,
        hub_url="http://127.0.0.1:9",
        lists=lists,
        pinned_root_sha256="0" * 64,
        **settings,
    )


def init_node_home(
    home: Path,
    hub: HubServer,
    *,
    node_id: str = NODE_ID,
    lists: Sequence[str] = (MD5_LIST, PDQ_LIST),
    enrol: bool = True,
    hub_url: str | None = None,
    **settings: Any,
) -> Path:
    """Initialise a node in ``home`` pinned to ``hub``; enrol its key and store the token.

    ``hub_url`` points the node somewhere else than the hub itself (a hostile proxy).
    """
    node = Node.init(
        home,
        node_id=node_id,
        hub_url=hub_url or hub.url,
        lists=lists,
        pinned_root_sha256=hub.pinned(),
        **settings,
    )
    node.close()
    if enrol:
        token = hub.enrol(node_id, home / "node.pub.pem", lists)
        write_secret(home / "hub-token", token)
    return home


@pytest.fixture
def node_home(tmp_path: Path, hub_server: HubServer) -> Path:
    return init_node_home(tmp_path / "node", hub_server)


@pytest.fixture
def node(node_home: Path) -> Iterator[Node]:
    opened = Node.open(node_home)
    try:
        yield opened
    finally:
        opened.close()


async def sync(node: Node, hub: str | None = None) -> list[ListOutcome]:
    """One update of every list of one followed hub (None: the only one), through a
    fresh client session."""
    async with aiohttp.ClientSession() as session:
        return await run_sync(node, session, hub)
