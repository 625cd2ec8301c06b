"""Shared fixtures for the hub tests: a real hub home, the real HTTP app on loopback.

- ``hub_home``: a hub initialised in ``tmp_path`` (real keys, real SQLite) with
  three lists — ``LIST`` (private md5, two versions, a snapshot at v2),
  ``OTHER_LIST`` (private md5, one version) and ``PUBLIC_LIST`` (public sha256,
  one version) — and the schedule turned off (intervals 0).
- ``hub_app``: ``create_app(hub_home, schedule=False)``.
- ``client``: an aiohttp ``TestClient`` on a ``TestServer`` bound to 127.0.0.1,
  port 0.
- ``admin_token``, ``role_tokens`` (one operator token per role), ``node_key``,
  ``node_token`` (node ``NODE_ID`` enrolled with ``node_key``, granted ``LIST``).

``opened(home)`` opens the same hub in the test's own thread (a second SQLite
connection; WAL lets both work) to count rows or set things up. ``Follower``
reads the published tree over HTTP and checks it with the protocol's trust rules,
as a node does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hub.api.acks import SIGNATURE_HEADER
from hub.app import create_app
from hub.core import OPERATOR_ROLES, Hub, utcnow
from hub.intake import Intake
from protocol import (
    AppliedVersion,
    Counts,
    ListState,
    ListTrust,
    SigningKey,
    TrustedHub,
    body_path,
    checkpoint_path,
    header_path,
    root_path,
    sig_path,
    sign_ack,
    snapshot_path,
)

HUB_NAME = "hub.test"
LIST = "tid-md5"
OTHER_LIST = "other-md5"
PUBLIC_LIST = "open-sha256"
NODE_ID = "platform-a"

Client = TestClient[web.Request, web.Application]


def md5(label: object) -> bytes:
    return hashlib.md5(str(label).encode(), usedforsecurity=False).digest()


def sha256(label: object) -> bytes:
    return hashlib.sha256(str(label).encode()).digest()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def opened(home: Path) -> Iterator[Hub]:
    """The hub in ``home`` on a connection of the test's own thread, closed afterwards."""
    hub = Hub.open(home)
    try:
        yield hub
    finally:
        hub.close()


def count_rows(home: Path, table: str) -> int:
    with opened(home) as hub:
        return hub.db.table(table).count


def init_hub(home: Path, *, publish_interval: int = 0, timestamp_interval: int = 0) -> None:
    """Initialise a hub in ``home`` with the three test lists published."""
    hub = Hub.init(
        home,
        HUB_NAME,
        publish_interval=publish_interval,
        timestamp_interval=timestamp_interval,
    )
    try:
        hub.roots.create_list(LIST, "md5", label="tid", snapshot_every=2)
        hub.roots.create_list(OTHER_LIST, "md5", label="other")
        hub.roots.create_list(PUBLIC_LIST, "sha256", label="open", public=True)
        hub.lists.stage(LIST, adds=[Intake(md5(i)) for i in range(5)])
        hub.lists.stage(OTHER_LIST, adds=[Intake(md5("other"))])
        hub.lists.stage(PUBLIC_LIST, adds=[Intake(sha256(i)) for i in range(3)])
        hub.publishing.publish()
        hub.lists.stage(LIST, adds=[Intake(md5("late"))], removes=[md5(0)])
        hub.publishing.publish([LIST])
    finally:
        hub.close()


@pytest.fixture
def hub_home(tmp_path: Path) -> Path:
    home = tmp_path / "hub"
    init_hub(home)
    return home


@pytest.fixture
def hub_app(hub_home: Path) -> web.Application:
    return create_app(hub_home, schedule=False)


@pytest.fixture
async def client(hub_app: web.Application) -> AsyncIterator[Client]:
    async with TestClient(TestServer(hub_app, host="127.0.0.1", port=0)) as test_client:
        yield test_client


@pytest.fixture
def role_tokens(hub_home: Path) -> dict[str, str]:
    """One operator token for each role, by role."""
    with opened(hub_home) as hub:
        return {
            role: hub.access.create_operator_token(role, f"test-{role}") for role in OPERATOR_ROLES
        }


@pytest.fixture
def admin_token(role_tokens: Mapping[str, str]) -> str:
    return role_tokens["admin"]


@pytest.fixture
def node_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def node_token(hub_home: Path, node_key: SigningKey) -> str:
    with opened(hub_home) as hub:
        return hub.access.enrol_node(NODE_ID, node_key.public, [LIST])


# -- a node's view over HTTP -------------------------------------------------------------------


async def fetch(client: Client, path: str, token: str | None = None) -> bytes | None:
    """GET a published file; None on 404, an assertion error on anything else but 200."""
    response = await client.get("/" + path, headers=bearer(token) if token else None)
    if response.status == 404:
        return None
    assert response.status == 200, f"{path}: {response.status} {await response.text()}"
    return await response.read()


async def need(client: Client, path: str, token: str | None = None) -> bytes:
    data = await fetch(client, path, token)
    assert data is not None, f"{path} is not published"
    return data


@dataclass
class Follower:
    """A node following lists of the hub behind ``client``, verifying everything it reads."""

    client: Client
    pinned_sha256: str
    token: str | None = None
    lists: dict[str, tuple[ListState, ListTrust]] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)

    async def _get(self, path: str) -> bytes:
        self.fetched.append(path)
        return await need(self.client, path, self.token)

    async def trusted_hub(self, now: datetime | None = None) -> TrustedHub:
        """Pin root v1 and walk N+1, N+2, … until one is not found."""
        trusted = TrustedHub(
            await self._get(root_path(1)),
            await self._get(sig_path(root_path(1))),
            now=now or utcnow(),
            pinned_sha256=self.pinned_sha256,
        )
        version = 2
        while (data := await fetch(self.client, root_path(version))) is not None:
            trusted.update_root(data, await self._get(sig_path(root_path(version))))
            version += 1
        return trusted

    async def update(self, list_id: str, *, from_snapshot: bool = False) -> ListState:
        """One all-or-nothing update; ``from_snapshot``: start from the newest snapshot."""
        trusted = await self.trusted_hub()
        width = trusted.root.list_spec(list_id).hash_length
        state, trust = self.lists.get(list_id, (ListState(width), ListTrust(list_id)))
        update = trusted.begin_update(trust, await self._get(checkpoint_path(list_id)))
        for version in range(trust.version + 1, update.target + 1):
            path = header_path(list_id, version)
            update.add_header(await self._get(path), await self._get(sig_path(path)))
        if from_snapshot:
            for version in range(update.target, 0, -1):
                data = await fetch(self.client, snapshot_path(list_id, version), self.token)
                if data is not None:
                    state = update.add_snapshot(version, data)
                    break
            else:
                raise AssertionError(f"{list_id}: no snapshot published")
        for header in update.bodies_needed():
            path = body_path(list_id, header.body.sha256)
            update.add_body(header.version, await self._get(path))
        state, trust = update.apply(state, check_every_version=True)
        self.lists[list_id] = (state, trust)
        return state

    async def ack(
        self,
        key: SigningKey,
        list_id: str,
        seq: int,
        *,
        node: str = NODE_ID,
        counts: Counts | None = None,
    ) -> tuple[bytes, bytes]:
        """Sign an ack for what this follower applied of ``list_id``."""
        trusted = await self.trusted_hub()
        _, trust = self.lists[list_id]
        return sign_ack(
            key=key,
            node=node,
            list_id=list_id,
            seq=seq,
            sent=utcnow(),
            origin=trusted.root.origin(list_id),
            applied=AppliedVersion(trust.version, trust.compact.root(), trust.state),
            counts=counts or Counts(checked=10, matched=1),
        )


def pinned(home: Path) -> str:
    with opened(home) as hub:
        return hub.keys.root_sha256(1)


def ack_headers(token: str | None, sig: bytes | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers.update(bearer(token))
    if sig is not None:
        headers[SIGNATURE_HEADER] = base64.b64encode(sig).decode()
    return headers


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def raw_request(
    client: Client,
    target: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
) -> RawResponse:
    """Send ``target`` exactly as given (no client-side normalising of ``..`` or ``%2e``)."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {server.host}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split()[1]), parsed, body)
