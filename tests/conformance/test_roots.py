"""Root rotations that lack a threshold (docs/design.md §3.2, §6 "root rotation mistakes").

Root N+1 is accepted only with a threshold of valid signatures from root N's root
role *and* from its own. The hub here has root keys 2 of 3, as an operator would
run it. A root that misses either threshold is rejected with every list: the
node walks no further, fetches no checkpoint, stores no root and keeps enforcing
what it had, with the refusal on record for each list. An honest rotation by
the real hub passes, so the rule, not the test, is what stops the others.
"""

from __future__ import annotations

import pytest

from protocol import SigningKey, root_path, sig_path
from tests.conformance.simulator import FIRST, LIST, LISTS, OTHER, NodeUnderTest, SimulatorHub
from tests.node.hostile import Replace

NEXT = 4
"""Root versions 1-3 exist: v1 at init, v2 and v3 declared the two lists."""


def exact(path: str) -> str:
    return "^/" + path.replace(".", r"\.") + "$"


@pytest.mark.parametrize(
    ("case", "failure"),
    [
        ("all-keys-rotated-signed-by-one-old-key", "root v3"),
        ("all-keys-rotated-signed-by-one-new-key", "root v4"),
        ("threshold-2-to-1-signed-by-one-key", "root v3"),
        ("threshold-2-to-3-signed-by-two-keys", "root v4"),
    ],
)
async def test_a_root_rotation_that_lacks_the_old_or_the_new_threshold_is_rejected(
    sim: SimulatorHub, node: NodeUnderTest, case: str, failure: str
) -> None:
    assert (await node.sync()).exit_code == 0
    old = sim.signers("root")
    assert len(old) == 3
    new = [SigningKey.generate() for _ in range(3)]
    if case == "all-keys-rotated-signed-by-one-old-key":
        files = sim.next_root(new_root_keys=new, threshold=2, sign_with=[*new, old[0]])
    elif case == "all-keys-rotated-signed-by-one-new-key":
        files = sim.next_root(new_root_keys=new, threshold=2, sign_with=[old[0], old[1], new[0]])
    elif case == "threshold-2-to-1-signed-by-one-key":
        files = sim.next_root(new_root_keys=old, threshold=1, sign_with=[old[2]])
    else:
        files = sim.next_root(new_root_keys=old, threshold=3, sign_with=old[:2])
    for path, data in files.items():
        sim.front.on(exact(path), Replace(data))
    sim.journal.clear()
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    for list_id in LISTS:
        line = run.line(list_id)
        assert line.startswith(f"{list_id}: REJECTED, still enforcing v"), line
        assert ": signatures do not verify: " in line, line
        assert f"root v{NEXT}" in line
        # Which threshold was missed: the old root's role (v3) or the new one's (v4).
        assert f"root role of {failure}" in line, line
    evidence = node.dump().unchanged_since(before, new_evidence=2)
    assert [(e["list_id"], e["kind"]) for e in evidence] == [
        (LIST, "SignatureError"),
        (OTHER, "SignatureError"),
    ]
    assert node.dump().roots() == [1, 2, 3], "no root is stored"
    assert sim.paths() == [f"/{root_path(NEXT)}", f"/{sig_path(root_path(NEXT))}"], (
        "the walk stops at the bad root: no checkpoint, header or body is fetched"
    )
    assert node.enforces(*FIRST) == [True] * len(FIRST)


async def test_a_rejected_root_reports_the_version_still_enforced(
    sim: SimulatorHub, node: NodeUnderTest
) -> None:
    assert (await node.sync()).exit_code == 0
    old = sim.signers("root")
    files = sim.next_root(new_root_keys=old, threshold=1, sign_with=[old[0]])
    for path, data in files.items():
        sim.front.on(exact(path), Replace(data))

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(f"{LIST}: REJECTED, still enforcing v1: "), run.output


async def test_an_honest_root_rotation_is_walked_and_stored(
    sim: SimulatorHub, node: NodeUnderTest
) -> None:
    assert (await node.sync()).exit_code == 0
    with sim.origin.opened() as hub:
        rotated = hub.roots.rotate_key("root")  # new keys, signed by the old and the new
    assert rotated.version == NEXT
    sim.journal.clear()

    run = await node.sync()

    assert run.exit_code == 0, run.output
    assert node.dump().roots() == [1, 2, 3, 4]
    assert sim.paths()[:3] == [
        f"/{root_path(NEXT)}",
        f"/{sig_path(root_path(NEXT))}",
        f"/{root_path(NEXT + 1)}",
    ]
