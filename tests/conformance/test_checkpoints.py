"""Forged, inflated, replayed and stale checkpoints (docs/design.md §3.6, §4.2 steps 3-6, §6).

A node never trusts a checkpoint it has not reproduced from headers it verified:
a forged or inflated checkpoint can stall it but never becomes its state. A
checkpoint older than the trusted one is a rollback; one co-signed longer ago
than the root's maximum age is a freeze. In every case the node fetches no body,
applies nothing and keeps enforcing its last good list.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hub.core import utcnow
from protocol import SigningKey, checkpoint_path, header_path, sig_path
from tests.conformance.simulator import (
    FIRST,
    LIST,
    OTHER,
    NodeUnderTest,
    SimulatorHub,
    md5,
)
from tests.node.hostile import Replace

CHECKPOINT = checkpoint_path(LIST)
FAKE_ROOT = hashlib.sha256(b"a tree that was never built").digest()


def exact(path: str) -> str:
    return "^/" + path.replace(".", r"\.") + "$"


def fetched(sim: SimulatorHub, kind: str) -> list[str]:
    """Paths of ``LIST`` of one kind ("delta", "body", "snapshot") that any server was asked."""
    return [path for _, path in sim.journal if path.startswith(f"/lists/{LIST}/{kind}/")]


async def test_a_checkpoint_signed_by_keys_not_the_hubs_is_rejected_before_any_header(
    sim: SimulatorHub, node: NodeUnderTest
) -> None:
    assert (await node.sync()).exit_code == 0
    strangers = [SigningKey.generate()], [SigningKey.generate()]
    forged = sim.checkpoint(
        LIST,
        50,
        FAKE_ROOT,
        at=utcnow(),
        checkpoint_keys=strangers[0],
        timestamp_keys=strangers[1],
    )
    sim.front.on(exact(CHECKPOINT), Replace(forged))
    sim.journal.clear()
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(
        f"{LIST}: REJECTED, still enforcing v1: signatures do not verify"
    )
    assert run.line(OTHER) == f"{OTHER}: current at v1"
    (evidence,) = node.dump().unchanged_since(before, new_evidence=1, current=[OTHER])
    assert evidence["kind"] == "SignatureError"
    assert bytes(evidence["bytes"]) == forged, "the forged note is kept"
    assert fetched(sim, "delta") == []
    assert fetched(sim, "body") == []


async def test_an_inflated_checkpoint_signed_by_the_hubs_keys_never_becomes_the_state(
    sim: SimulatorHub, node: NodeUnderTest
) -> None:
    """The real checkpoint and timestamp keys sign size 4 while the log holds 2: the
    node verifies header 2, finds no header 3, and applies nothing — not even v2.
    A fast-forward shows up as a missing header: a rejection naming it, with the
    inflated note kept as evidence (PROTOCOL.md §11.1)."""
    assert (await node.sync()).exit_code == 0
    sim.publish(LIST, adds=[md5("real v2")])
    inflated = sim.checkpoint(LIST, 4, FAKE_ROOT, at=utcnow())
    sim.front.on(exact(CHECKPOINT), Replace(inflated))
    sim.journal.clear()
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST) == (
        f"{LIST}: REJECTED, still enforcing v1: a signed file is missing: {header_path(LIST, 3)}: "
        f"found at no source, though the checkpoint of list {LIST} has size 4"
    )
    (evidence,) = node.dump().unchanged_since(before, new_evidence=1, current=[OTHER])
    assert evidence["kind"] == "MissingFileError"
    assert bytes(evidence["bytes"]) == inflated, "the note that promised header 3 is kept"
    assert node.enforces(md5("real v2")) == [False]
    assert fetched(sim, "delta") == [
        f"/{header_path(LIST, 2)}",
        f"/{sig_path(header_path(LIST, 2))}",
        f"/{header_path(LIST, 3)}",
    ], "it stopped at the first header the checkpoint promised and the hub does not have"
    assert fetched(sim, "body") == []

    sim.front.behave()
    run = await node.sync()
    assert run.line(LIST) == f"{LIST}: updated v1 -> v2 (+1 -0)", run.output


@pytest.mark.parametrize("signer", ["checkpoint-role", "stranger"])
async def test_a_version_planted_with_the_online_keys_alone_is_rejected(
    sim: SimulatorHub, node: NodeUnderTest, signer: str
) -> None:
    """A thief of the checkpoint and timestamp keys (the hub's online keys) extends the
    log with a header of their own: it fails the delta role's signature, so the
    inflated checkpoint it comes with can add no hash."""
    assert (await node.sync()).exit_code == 0
    key = sim.signers("checkpoint") if signer == "checkpoint-role" else [SigningKey.generate()]
    planted = sim.planted_version(LIST, [md5("planted")], sign_with=key)
    for path, data in planted.items():
        sim.front.on(exact(path), Replace(data))
    sim.journal.clear()
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(
        f"{LIST}: REJECTED, still enforcing v1: signatures do not verify"
    )
    (evidence,) = node.dump().unchanged_since(before, new_evidence=1, current=[OTHER])
    assert bytes(evidence["bytes"]) == planted[CHECKPOINT]
    assert node.enforces(md5("planted")) == [False]
    assert fetched(sim, "delta") == [
        f"/{header_path(LIST, 2)}",
        f"/{sig_path(header_path(LIST, 2))}",
    ]
    assert fetched(sim, "body") == [], "no body is fetched for a header that failed"


async def test_an_older_checkpoint_replayed_is_a_rollback(
    sim: SimulatorHub, node: NodeUnderTest
) -> None:
    old = sim.file(CHECKPOINT)
    sim.origin.clock.advance(5)
    sim.publish(LIST, adds=[md5("v2")])
    assert (await node.sync()).line(LIST) == f"{LIST}: updated v0 -> v2 from a snapshot (+6 -0)"
    sim.front.on(exact(CHECKPOINT), Replace(old))
    sim.journal.clear()
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(
        f"{LIST}: REJECTED, still enforcing v2: older than what this node holds (rollback)"
    )
    (evidence,) = node.dump().unchanged_since(before, new_evidence=1, current=[OTHER])
    assert bytes(evidence["bytes"]) == old
    assert node.enforces(md5("v2")) == [True]
    assert fetched(sim, "delta") == []


# -- freeze: a node whose hub seems to have stopped publishing ------------------------------


async def test_a_stale_checkpoint_replayed_is_a_freeze_and_the_list_stays_enforced(
    tmp_path: Path, sim_two_hours_ago: SimulatorHub
) -> None:
    sim = sim_two_hours_ago
    node = await NodeUnderTest.enrol(tmp_path / "node", sim)
    then = sim.origin.clock()
    outcomes = await node.sync_with(now=then)  # the node synced when v1 was fresh
    assert [o.status for o in outcomes] == ["updated", "updated"]
    await node.flush_acks()
    stale = sim.file(CHECKPOINT)
    sim.origin.clock.t = utcnow()
    sim.origin.refresh()  # the real hub keeps re-signing; the attacker replays the old note
    sim.front.on(exact(CHECKPOINT), Replace(stale))
    sim.journal.clear()
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(
        f"{LIST}: REJECTED, still enforcing v1: too old to trust (freeze)"
    )
    assert "older than the maximum age" in run.line(LIST)
    assert run.line(OTHER) == f"{OTHER}: current at v1"
    (evidence,) = node.dump().unchanged_since(before, new_evidence=1, current=[OTHER])
    assert (evidence["kind"], bytes(evidence["bytes"])) == ("FreezeError", stale)
    assert fetched(sim, "delta") == []
    assert node.enforces(*FIRST) == [True] * 5, "the last good list is enforced"
    with node.opened() as opened:
        lists = {entry["list"]: entry for entry in opened.status()["lists"]}
    assert lists[LIST]["stale"], "past the maximum age without a good checkpoint: alarm"
    assert not lists[OTHER]["stale"]

    sim.front.behave()
    run = await node.sync()
    assert run.exit_code == 0, run.output
    assert run.line(LIST) == f"{LIST}: current at v1"


async def test_a_checkpoint_co_signed_before_the_trusted_one_is_a_rollback_of_time(
    sim: SimulatorHub, node: NodeUnderTest
) -> None:
    """Same size, same root, still within the maximum age — but older than the note the
    node already trusts: time never goes backwards (docs/design.md §4.2 step 3)."""
    earlier = sim.file(CHECKPOINT)
    sim.origin.clock.advance(60)
    sim.origin.refresh()
    assert (await node.sync()).exit_code == 0
    sim.front.on(exact(CHECKPOINT), Replace(earlier))
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(
        f"{LIST}: REJECTED, still enforcing v1: older than what this node holds (rollback)"
    )
    (evidence,) = node.dump().unchanged_since(before, new_evidence=1, current=[OTHER])
    assert bytes(evidence["bytes"]) == earlier
