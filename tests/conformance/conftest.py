"""Fixtures of the hostile-repository suite: a simulator hub and a node enrolled at it.

- ``sim``: a ``SimulatorHub`` (a real hub with ``LIST`` and ``OTHER`` at version 1,
  behind a front that forwards faithfully until a test bends it), closed afterwards.
- ``node``: a node made with ``hashhub-node init`` and ``token set``, subscribed to
  both lists, not yet synced.
- ``sim_two_hours_ago``: a simulator hub whose versions were published two hours ago
  (twice the maximum age): what a freeze replays.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from hub.core import utcnow
from tests.conformance.simulator import MAX_AGE, NodeUnderTest, SimulatorHub
from tests.node.fixtures_sync import Clock


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimulatorHub]:
    hub = await SimulatorHub.start(tmp_path / "hub")
    try:
        yield hub
    finally:
        await hub.close()


@pytest.fixture
async def node(tmp_path: Path, sim: SimulatorHub) -> NodeUnderTest:
    return await NodeUnderTest.enrol(tmp_path / "node", sim)


@pytest.fixture
async def sim_two_hours_ago(tmp_path: Path) -> AsyncIterator[SimulatorHub]:
    hub = await SimulatorHub.start(
        tmp_path / "old-hub", clock=Clock(utcnow() - timedelta(seconds=2 * MAX_AGE))
    )
    try:
        yield hub
    finally:
        await hub.close()
