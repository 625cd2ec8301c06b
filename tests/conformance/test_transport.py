"""Endless data, slow retrieval, lying lengths and compression bombs (docs/design.md §3.8, §6).

Every download has a cap (the signed size where there is one) and a deadline, and
nothing is read past either. Here the hub itself misbehaves, so there is no
other source to fall back on: the update fails or is rejected, the store is
exactly as it was, and the node stops asking for the files the bad one would
have led to.
"""

from __future__ import annotations

import json
import time

import pytest

from protocol import body_path, checkpoint_path, header_path, sig_path
from tests.conformance.simulator import (
    LIST,
    OTHER,
    LyingLength,
    NodeUnderTest,
    SimulatorHub,
    md5,
)
from tests.node.hostile import Behaviour, Bomb, Endless, Trickle

CHECKPOINT = checkpoint_path(LIST)
HEADER_2 = header_path(LIST, 2)


def exact(path: str) -> str:
    """A rule pattern for exactly ``path``."""
    return "^/" + path.replace(".", r"\.") + "$"


async def synced_then_published(sim: SimulatorHub, node: NodeUnderTest) -> str:
    """Sync the node to v1 of both lists, then publish v2 of ``LIST``; returns its body path."""
    assert (await node.sync()).exit_code == 0
    sim.publish(LIST, adds=[md5("new")])
    sim.journal.clear()
    return body_path(LIST, json.loads(sim.file(HEADER_2))["body"]["sha256"])


def bodies_asked(sim: SimulatorHub) -> list[str]:
    return [path for _, path in sim.journal if "/body/" in path]


async def test_a_server_that_drips_one_byte_a_second_is_given_up_at_the_deadline(
    sim: SimulatorHub, node: NodeUnderTest
) -> None:
    await synced_then_published(sim, node)
    sim.front.on(exact(CHECKPOINT), Trickle(1.0))
    node.configure(fetch_timeout=1.0)
    before = node.dump()
    started = time.monotonic()

    run = await node.sync()

    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 4.0, elapsed
    assert run.exit_code == 4, run.output  # failed, not rejected: a slow server proves nothing
    assert run.line(LIST).startswith(f"{LIST}: failed, still enforcing v1: could not fetch: ")
    assert "within 1.0 s" in run.line(LIST)
    assert run.line(OTHER).startswith(f"{OTHER}: current"), run.output
    after = node.dump()
    # A slow server is no proof of anything: no evidence, nothing else moved.
    assert after.unchanged_since(before, new_evidence=0, current=[OTHER]) == []
    assert after.list_row(LIST)["last_error"].startswith("could not fetch: ")
    assert 1 <= sim.front.streamed <= 3, sim.front.streamed
    assert not bodies_asked(sim)
    assert HEADER_2 not in [p.lstrip("/") for _, p in sim.journal]


@pytest.mark.parametrize(
    ("target", "behaviour"),
    [
        ("checkpoint", Endless()),
        ("checkpoint", Endless(content_length=10**9)),
        ("header", Endless()),
        ("header", Endless(content_length=10**12)),
        ("body", Endless()),
        ("body", Endless(content_length=10**12)),
        ("checkpoint", Bomb(20_000_000)),
        ("header", Bomb(20_000_000)),
        ("body", Bomb(20_000_000)),
    ],
    ids=[
        "checkpoint-endless",
        "checkpoint-huge-length",
        "header-endless",
        "header-huge-length",
        "body-endless",
        "body-huge-length",
        "checkpoint-gzip-bomb",
        "header-gzip-bomb",
        "body-gzip-bomb",
    ],
)
async def test_endless_data_and_gzip_bombs_are_cut_at_the_cap(
    sim: SimulatorHub, node: NodeUnderTest, target: str, behaviour: Behaviour
) -> None:
    body = await synced_then_published(sim, node)
    path = {"checkpoint": CHECKPOINT, "header": HEADER_2, "body": body}[target]
    sim.front.on(exact(path), behaviour)
    before = node.dump()
    started = time.monotonic()

    run = await node.sync()

    assert time.monotonic() - started < 10
    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(f"{LIST}: REJECTED, still enforcing v1: ")
    assert "cap" in run.line(LIST)
    assert run.line(OTHER) == f"{OTHER}: current at v1"
    (evidence,) = node.dump().unchanged_since(before, new_evidence=1, current=[OTHER])
    assert (evidence["list_id"], evidence["kind"]) == (LIST, "LimitError")
    assert node.enforces(md5("new")) == [False]
    # The node hung up long before the server would have stopped.
    assert sim.front.streamed < 32 * 1024 * 1024, sim.front.streamed
    if target != "body":
        assert not bodies_asked(sim), "nothing past a bad checkpoint or header is fetched"
    if target == "checkpoint":
        assert not [p for _, p in sim.journal if "/delta/" in p]


@pytest.mark.parametrize("target", ["checkpoint", "header"])
async def test_a_content_length_longer_than_the_answer_fails_the_download(
    sim: SimulatorHub, node: NodeUnderTest, target: str
) -> None:
    """Within the cap, a connection that closes short of its announced length is a
    transport failure: retried later, no evidence (a dropped connection proves nothing)."""
    await synced_then_published(sim, node)
    path = {"checkpoint": CHECKPOINT, "header": HEADER_2}[target]
    sim.front.lie(exact(path), LyingLength(+100))
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 4, run.output
    assert run.line(LIST).startswith(f"{LIST}: failed, still enforcing v1: could not fetch: ")
    assert run.line(OTHER) == f"{OTHER}: current at v1"
    assert node.dump().unchanged_since(before, new_evidence=0, current=[OTHER]) == []
    assert sim.asked(path) == ["hub"]
    assert not bodies_asked(sim)


async def test_a_content_length_past_the_signed_body_length_is_refused_unread(
    sim: SimulatorHub, node: NodeUnderTest
) -> None:
    """A body's cap is the length its signed header gives: announcing more is a rejection."""
    body = await synced_then_published(sim, node)
    sim.front.lie(exact(body), LyingLength(+100))
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(f"{LIST}: REJECTED, still enforcing v1: larger than allowed: ")
    (evidence,) = node.dump().unchanged_since(before, new_evidence=1, current=[OTHER])
    assert (evidence["list_id"], evidence["kind"]) == (LIST, "LimitError")
    assert sim.asked(body) == ["hub"]


@pytest.mark.parametrize("target", ["checkpoint", "header", "signature", "body"])
async def test_a_content_length_shorter_than_the_answer_gives_bytes_that_fail_verification(
    sim: SimulatorHub, node: NodeUnderTest, target: str
) -> None:
    body = await synced_then_published(sim, node)
    path = {
        "checkpoint": CHECKPOINT,
        "header": HEADER_2,
        "signature": sig_path(HEADER_2),
        "body": body,
    }[target]
    sim.front.lie(exact(path), LyingLength(-7))
    before = node.dump()

    run = await node.sync()

    assert run.exit_code == 3, run.output
    assert run.line(LIST).startswith(f"{LIST}: REJECTED, still enforcing v1: ")
    assert run.line(OTHER) == f"{OTHER}: current at v1"
    (evidence,) = node.dump().unchanged_since(before, new_evidence=1, current=[OTHER])
    assert evidence["list_id"] == LIST
    assert node.enforces(md5("new")) == [False]
    assert sim.asked(path) == ["hub"], "a source's bad bytes are not asked for twice"
    if target != "body":
        assert not bodies_asked(sim)
