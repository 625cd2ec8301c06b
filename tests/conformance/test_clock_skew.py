"""Clock skew both ways (docs/design.md §4.2 steps 1 and 3, PROTOCOL.md §13.3).

The protocol compares only times the hub signed with the node's own clock, fixed
once per run: a checkpoint co-signed more than ``max_checkpoint_age`` before the
node's "now" is stale, one co-signed more than ``max_clock_skew`` after it is from
the future (not yet valid). Both are ``FreezeError``: nothing is applied, the
node keeps enforcing its last good list and, once stale, raises the alarm.

``hashhub-node sync`` reads the system clock, so these tests skew the hub's clock
against it (the skew is relative; the node cannot tell which side is wrong), and
show with the node's injected clock set to the hub's that the very same
published bytes are accepted once the two agree.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from hub.core import utcnow
from protocol import Policy, checkpoint_path
from tests.conformance.simulator import (
    FIRST,
    LIST,
    MAX_AGE,
    OTHER,
    NodeUnderTest,
    SimulatorHub,
    md5,
)
from tests.node.fixtures_sync import Clock

SKEW = Policy().max_clock_skew
"""The hub's policy keeps the protocol's default tolerance for clocks (300 s)."""


async def skewed_hub(home: Path, offset: timedelta) -> SimulatorHub:
    return await SimulatorHub.start(home, clock=Clock(utcnow() + offset))


@pytest.fixture
async def hub_behind(tmp_path: Path) -> AsyncIterator[SimulatorHub]:
    """A hub whose clock runs twice the maximum checkpoint age behind the node's."""
    sim = await skewed_hub(tmp_path / "hub", -timedelta(seconds=2 * MAX_AGE))
    try:
        yield sim
    finally:
        await sim.close()


@pytest.fixture
async def hub_ahead(tmp_path: Path) -> AsyncIterator[SimulatorHub]:
    """A hub whose clock runs ahead of the node's, within the tolerated skew."""
    sim = await skewed_hub(tmp_path / "hub", timedelta(seconds=SKEW // 2))
    try:
        yield sim
    finally:
        await sim.close()


async def test_node_clock_ahead_sees_a_fresh_checkpoint_as_stale_and_applies_nothing(
    tmp_path: Path, hub_behind: SimulatorHub
) -> None:
    sim = hub_behind
    node = await NodeUnderTest.enrol(tmp_path / "node", sim)
    outcomes = await node.sync_with(now=sim.origin.clock())  # both clocks agree: v1
    assert [o.status for o in outcomes] == ["updated", "updated"]
    await node.flush_acks()
    sim.origin.clock.advance(60)
    sim.publish(LIST, adds=[md5("v2")])  # honest, and fresh by the hub's clock
    sim.journal.clear()
    before = node.dump()

    run = await node.sync()  # the node's clock: two maximum ages ahead of the hub's

    assert run.exit_code == 3, run.output
    for list_id in (LIST, OTHER):
        assert run.line(list_id).startswith(
            f"{list_id}: REJECTED, still enforcing v1: too old to trust (freeze): "
        )
        assert "older than the maximum age" in run.line(list_id)
    evidence = node.dump().unchanged_since(before, new_evidence=2)
    assert [e["kind"] for e in evidence] == ["FreezeError", "FreezeError"]
    assert bytes(evidence[0]["bytes"]) == sim.file(checkpoint_path(LIST))
    assert [p for _, p in sim.journal if "/delta/" in p or "/body/" in p] == []
    assert node.enforces(*FIRST, md5("v2")) == [True] * len(FIRST) + [False]
    with node.opened() as opened:
        assert all(entry["stale"] for entry in opened.status()["lists"]), "the alarm is up"

    outcomes = await node.sync_with(now=sim.origin.clock())
    assert {o.list_id: (o.status, o.to_version) for o in outcomes} == {
        LIST: ("updated", 2),
        OTHER: ("current", 1),
    }, "the same bytes, judged by a clock that agrees with the hub's"


async def test_node_clock_behind_accepts_small_skew_and_rejects_a_future_checkpoint(
    tmp_path: Path, hub_ahead: SimulatorHub
) -> None:
    sim = hub_ahead
    node = await NodeUnderTest.enrol(tmp_path / "node", sim)
    run = await node.sync()  # the hub is SKEW/2 ahead: within the tolerance
    assert run.exit_code == 0, run.output
    assert node.dump().version(LIST) == 1
    sim.origin.clock.advance(2 * SKEW)  # now well past the tolerance
    sim.publish(LIST, adds=[md5("v2")])
    sim.journal.clear()
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(
        f"{LIST}: REJECTED, still enforcing v1: too old to trust (freeze)"
    )
    assert "in the future" in run.line(LIST)
    # OTHER's checkpoint was co-signed before the jump: still within the tolerance.
    assert run.line(OTHER) == f"{OTHER}: current at v1"
    (evidence,) = node.dump().unchanged_since(before, new_evidence=1, current=[OTHER])
    assert (evidence["kind"], bytes(evidence["bytes"])) == (
        "FreezeError",
        sim.file(checkpoint_path(LIST)),
    )
    assert [p for _, p in sim.journal if "/delta/" in p or "/body/" in p] == []
    assert node.enforces(md5("v2")) == [False]

    outcomes = await node.sync_with(now=sim.origin.clock())
    assert {o.list_id: (o.status, o.to_version) for o in outcomes} == {
        LIST: ("updated", 2),
        OTHER: ("current", 1),
    }
