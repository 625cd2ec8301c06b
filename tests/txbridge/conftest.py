"""Fixtures for the threatexchange bridge: a real hub on loopback, and a bridge enrolled there.

- ``hub``: ``HubApp`` (the real hub app on 127.0.0.1, real keys and SQLite, one shared
  ``Clock``) with three lists published at version 1: ``PDQ_LIST`` (the PDQ hash of
  ``bridge-mods/aaa-orig.jpg`` and of two unrelated photos), ``MD5_LIST`` (md5 of
  ``"0"`` … ``"4"``, a snapshot every 2 versions) and ``PHASH_LIST`` (a type pytx
  cannot match). Lists are not public: reading them takes a token.
- ``bridge``: a ``Bridge``: a node home (``Node.init``, as ``hashhub-node init`` makes
  it) enrolled for every list as ``BRIDGE_NODE``, its token stored there with mode
  0600, and ``collab(...)``/``api(...)`` to make a config and an exchange on the
  hub's clock.
- ``fetch(api, checkpoint)``: every delta of one ``fetch_iter``, run in a worker
  thread (it is blocking and runs its own loop; this test's loop serves the hub).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.signal_base import SignalType

from hashhub_tx import HashhubCheckpoint, HashhubCollabConfig, HashhubSignalExchangeAPI
from hashhub_tx.exchange import HashhubDelta
from node.imaging import hash_image
from tests.node.fixtures_sync import PDQ_DATA, Clock, HubApp, make_node, md5

PDQ_LIST = "bridge-pdq"
MD5_LIST = "tid-md5"
PHASH_LIST = "demo-phash"
BRIDGE_NODE = "tx-bridge"
ORIGINAL = PDQ_DATA / "bridge-mods" / "aaa-orig.jpg"
UNRELATED = PDQ_DATA / "reg-test-input" / "labelme-subset"
FIRST_MD5 = [md5(i) for i in range(5)]
MAX_AGE = 3600
SIGNALS: tuple[type[SignalType], ...] = (PdqSignal, VideoMD5Signal)
"""What HMA matches by default; the pytx CLI passes more."""


@functools.cache
def pdq_of(path: Path) -> bytes:
    """The PDQ hash of an image as a hashhub node computes it."""
    return hash_image(path.read_bytes()).pdq


def unrelated_photos() -> list[Path]:
    """Two photos unrelated to the bridge: they stay in ``PDQ_LIST`` throughout.

    (Two that python-threatexchange's PDQ hasher accepts: it returns no hash at all
    for some low-quality photos of the same set, such as ``q0003.jpg``.)
    """
    return [UNRELATED / "q0122.jpg", UNRELATED / "q0291.jpg"]


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubApp]:
    app = HubApp.init(tmp_path / "hub", Clock(), max_checkpoint_age=MAX_AGE)
    app.create_list(PDQ_LIST, "pdq")
    app.create_list(MD5_LIST, "md5", snapshot_every=2)
    app.create_list(PHASH_LIST, "phash")
    app.publish(PDQ_LIST, adds=[pdq_of(ORIGINAL), *map(pdq_of, unrelated_photos())])
    app.publish(MD5_LIST, adds=FIRST_MD5)
    app.publish(PHASH_LIST, adds=[hash_image(ORIGINAL.read_bytes()).phash])
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def enrolled_home(home: Path, hub: HubApp, node_id: str, lists: Sequence[str]) -> Path:
    """A node home enrolled at ``hub`` for ``lists`` (as the hub operator would), token stored."""
    make_node(home, hub, lists, node_id=node_id).close()
    return home


@dataclass
class Bridge:
    """A bridge whose node home is enrolled at ``hub`` (as the operator would enrol a node)."""

    hub: HubApp
    home: Path

    def collab(self, **fields: Any) -> HashhubCollabConfig:
        values: dict[str, Any] = {
            "name": "hub-test",
            "hub_url": self.hub.url,
            "pinned_root_sha256": self.hub.pinned(),
            "node_home": str(self.home),
        }
        values.update(fields)
        return HashhubCollabConfig(**values)

    def api(self, **fields: Any) -> HashhubSignalExchangeAPI:
        snapshot_lag = fields.pop("snapshot_lag", 1000)
        return HashhubSignalExchangeAPI(
            self.collab(**fields), now=self.hub.clock, snapshot_lag=snapshot_lag
        )


@pytest.fixture
def bridge(hub: HubApp, tmp_path: Path) -> Bridge:
    lists = [PDQ_LIST, MD5_LIST, PHASH_LIST]
    return Bridge(hub, enrolled_home(tmp_path / "bridge-node", hub, BRIDGE_NODE, lists))


async def fetch(
    api: HashhubSignalExchangeAPI,
    checkpoint: HashhubCheckpoint | None,
    signals: Sequence[type[SignalType]] = SIGNALS,
) -> list[HashhubDelta]:
    """Every delta of one ``fetch_iter``, from a worker thread."""
    return await asyncio.to_thread(lambda: list(api.fetch_iter(signals, checkpoint)))


def merged(deltas: Sequence[HashhubDelta]) -> dict[tuple[str, str], Any]:
    """The deltas' updates in order, later ones winning (as pytx merges them)."""
    out: dict[tuple[str, str], Any] = {}
    for delta in deltas:
        out.update(delta.updates)
    return out
