"""History rewrites and mix-and-match (docs/design.md §3.6, §4.2 steps 4 and 6, §6).

The hub the node follows turns out to have rewritten a version the node already
applied — the same keys, a different header N. Served at the size the node
trusts, the new checkpoint is equivocation: two roots for one size, both notes
kept as evidence. Served with more versions on top, the first new header does
not chain onto the node's header N. Headers and bodies swapped between versions
or lists fail their signed links the same way. Nothing is applied; the node
does not fetch the bodies the bad history would lead to.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protocol import body_path, checkpoint_path, header_path, sig_path
from tests.conformance.simulator import LIST, OTHER, NodeUnderTest, SimulatorHub, md5
from tests.node.fixtures_sync import HubApp, fork_hub
from tests.node.hostile import Replace

CHECKPOINT = checkpoint_path(LIST)


def exact(path: str) -> str:
    return "^/" + path.replace(".", r"\.") + "$"


def fetched(sim: SimulatorHub, kind: str) -> list[str]:
    return [path for _, path in sim.journal if path.startswith(f"/lists/{LIST}/{kind}/")]


@pytest.fixture
async def fork(tmp_path: Path, sim: SimulatorHub) -> HubApp:
    """The hub's other history: its keys and versions so far, then versions of its own."""
    return await fork_hub(sim.origin, tmp_path / "fork")


async def test_a_rewritten_header_at_the_trusted_size_is_kept_as_equivocation(
    sim: SimulatorHub, fork: HubApp, node: NodeUnderTest
) -> None:
    sim.publish(LIST, adds=[md5("real")])
    fork.publish(LIST, adds=[md5("rewritten")])
    assert (await node.sync()).exit_code == 0  # v2 as the hub first published it
    trusted = sim.file(CHECKPOINT)
    assert fork.file(header_path(LIST, 2)) != sim.file(header_path(LIST, 2))
    sim.serve_from(fork.home)
    sim.journal.clear()
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(
        f"{LIST}: REJECTED, still enforcing v2: two different histories signed (equivocation): "
    )
    assert run.line(OTHER) == f"{OTHER}: current at v1"
    (evidence,) = node.dump().unchanged_since(before, new_evidence=1, current=[OTHER])
    assert evidence["kind"] == "EquivocationError"
    assert bytes(evidence["bytes"]) == fork.file(CHECKPOINT), "the note presented"
    assert bytes(evidence["other"]) == trusted, "the note trusted"
    assert node.enforces(md5("real"), md5("rewritten")) == [True, False]
    assert fetched(sim, "delta") == [], "the checkpoint alone convicts: no header is fetched"
    assert fetched(sim, "body") == []


async def test_versions_on_top_of_a_rewritten_header_do_not_chain(
    sim: SimulatorHub, fork: HubApp, node: NodeUnderTest
) -> None:
    sim.publish(LIST, adds=[md5("real")])
    fork.publish(LIST, adds=[md5("rewritten")])
    fork.publish(LIST, adds=[md5("built on it")])
    assert (await node.sync()).exit_code == 0
    sim.serve_from(fork.home)
    sim.journal.clear()
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(
        f"{LIST}: REJECTED, still enforcing v2: the published history does not link up: "
    )
    assert "prev" in run.line(LIST)
    (evidence,) = node.dump().unchanged_since(before, new_evidence=1, current=[OTHER])
    assert evidence["kind"] == "ConsistencyError"
    assert bytes(evidence["bytes"]) == fork.file(CHECKPOINT)
    assert node.enforces(md5("built on it")) == [False]
    # Header 2 is never asked for again: the node holds its own; only v3 is new to it.
    assert fetched(sim, "delta") == [
        f"/{header_path(LIST, 3)}",
        f"/{sig_path(header_path(LIST, 3))}",
    ]
    assert fetched(sim, "body") == []


def _body(sim: SimulatorHub, list_id: str, version: int) -> str:
    return body_path(list_id, json.loads(sim.file(header_path(list_id, version)))["body"]["sha256"])


@pytest.mark.parametrize(
    ("swap", "message"),
    [
        ("header-of-another-list", "belongs to list"),
        ("header-of-another-version", "carries version"),
        ("body-of-another-version", "SHA-256 is not the signed one"),
    ],
)
async def test_headers_and_bodies_swapped_between_versions_or_lists_are_rejected(
    sim: SimulatorHub, node: NodeUnderTest, swap: str, message: str
) -> None:
    assert (await node.sync()).exit_code == 0
    sim.publish(LIST, adds=[md5("v2")])
    sim.publish(LIST, adds=[md5("v3")])
    sim.publish(OTHER, adds=[md5("other v2")])
    if swap == "header-of-another-list":
        source, target = header_path(OTHER, 2), header_path(LIST, 2)
    elif swap == "header-of-another-version":
        source, target = header_path(LIST, 3), header_path(LIST, 2)
    else:
        source, target = _body(sim, LIST, 2), _body(sim, LIST, 3)
    sim.front.on(exact(target), Replace(sim.file(source)))
    if swap.startswith("header"):
        sim.front.on(exact(sig_path(target)), Replace(sim.file(sig_path(source))))
    sim.journal.clear()
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(f"{LIST}: REJECTED, still enforcing v1: ")
    assert message in run.line(LIST)
    # The list next to it is unaffected: each list is all or nothing on its own.
    assert run.line(OTHER) == f"{OTHER}: updated v1 -> v2 (+1 -0)"
    after = node.dump()
    assert after.version(OTHER) == 2
    assert after.state(LIST) == before.state(LIST)
    assert after.list_row(LIST)["trust"] == before.list_row(LIST)["trust"]
    assert len(after.evidence()) == len(before.evidence()) + 1
    assert after.evidence()[-1]["list_id"] == LIST
    assert node.enforces(md5("v2"), md5("v3"), md5("other v2")) == [False, False, True]
    if swap.startswith("header"):
        assert fetched(sim, "body") == [], "a header out of place stops the update"
