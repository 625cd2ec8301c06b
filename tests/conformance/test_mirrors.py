"""A malicious mirror followed by a good origin (docs/design.md §6: "a malicious mirror").

Mirrors are trusted for nothing: signatures are end to end, so a mirror's bad
bytes fail verification and the node asks the hub for the same file. The update
goes ahead with the hub's bytes, and the mirror is on record as evidence.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from protocol import body_path, header_path, sig_path
from tests.conformance.simulator import LIST, OTHER, NodeUnderTest, SimulatorHub, md5
from tests.node.hostile import Endless, Replace, Tamper, flip_byte


def _v2_body_sha(sim: SimulatorHub) -> str:
    return str(json.loads(sim.file(header_path(LIST, 2)))["body"]["sha256"])


@pytest.mark.parametrize(
    ("what", "bend"),
    [
        ("body", lambda sim: (body_path(LIST, _v2_body_sha(sim)), Tamper(flip_byte))),
        ("header", lambda sim: (header_path(LIST, 2), Tamper(flip_byte))),
        (
            "signature",
            lambda sim: (
                sig_path(header_path(LIST, 2)),
                Replace(sim.file(sig_path(header_path(OTHER, 1)))),
            ),
        ),
    ],
)
async def test_a_malicious_mirror_is_passed_over_for_the_hubs_verified_copy(
    tmp_path: Path,
    sim: SimulatorHub,
    what: str,
    bend: Callable[[SimulatorHub], tuple[str, Tamper | Replace]],
) -> None:
    mirror = await sim.mirror()
    node = await NodeUnderTest.enrol(tmp_path / "mirrored", sim, mirrors=[mirror.url])
    assert (await node.sync()).exit_code == 0
    sim.publish(LIST, adds=[md5("new")], removes=[md5(1)])
    path, behaviour = bend(sim)
    mirror.on(path.replace(".", r"\.") + "$", behaviour)
    sim.journal.clear()

    run = await node.sync()

    assert run.exit_code == 0, run.output
    assert run.line(LIST) == f"{LIST}: updated v1 -> v2 (+1 -1)"
    after = node.dump()
    assert after.version(LIST) == 2
    assert after.state(LIST) == sim.state(LIST), "the node holds exactly the hub's list"
    assert node.enforces(md5("new"), md5(1)) == [True, False]
    # Asked the mirror first, found its bytes bad, then asked the hub for that file.
    assert sim.asked(path) == ["mirror", "hub"], sim.journal
    (evidence,) = after.evidence()
    assert evidence["kind"] == "RejectedSource"
    named = header_path(LIST, 2) if what != "body" else path
    assert named in evidence["message"], evidence["message"]
    if what == "body":
        assert f"{mirror.url}/{path}" in evidence["message"], "the evidence names the mirror"


async def test_a_mirror_sending_more_than_the_signed_body_length_is_on_record(
    tmp_path: Path, sim: SimulatorHub
) -> None:
    mirror = await sim.mirror()
    node = await NodeUnderTest.enrol(tmp_path / "mirrored", sim, mirrors=[mirror.url])
    assert (await node.sync()).exit_code == 0
    sim.publish(LIST, adds=[md5("new")])
    body = body_path(LIST, _v2_body_sha(sim))
    mirror.on(body.replace(".", r"\.") + "$", Endless())

    run = await node.sync()

    assert run.exit_code == 0, run.output
    assert sim.asked(body) == ["mirror", "hub"]
    assert [e["kind"] for e in node.dump().evidence()] == ["RejectedSource"]
