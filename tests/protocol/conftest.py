"""Fixtures for the protocol tests: a simulated hub and a node that follows it."""

from __future__ import annotations

import pytest

from tests.protocol.simulator import HubSimulator, Verifier


@pytest.fixture
def sim() -> HubSimulator:
    """A fresh honest hub: root v1, two md5 lists, one key per role, nothing published."""
    return HubSimulator()


@pytest.fixture
def node(sim: HubSimulator) -> Verifier:
    """A node enrolled with ``sim`` (root v1 pinned), following ``LIST``, holding nothing."""
    return Verifier(sim.files)
