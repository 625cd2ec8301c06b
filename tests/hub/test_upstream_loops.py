"""A loop through three hubs, which no one root shows, is found and refused.

``regional.example`` follows ``hotline.example``, which follows ``helpline.example``,
which follows ``regional.example``: each root declares only its own upstream, and
each hub re-publishes under its own name, so nothing in one root or one record says
the chain comes back. The walk of the declarations (``hub.upstream_graph``) does:
regional's run reads hotline's roots, then helpline's, finds its own pin declared,
and refuses to follow (PROTOCOL.md §5.6 rule 1). Without the last declaration the
same walk finds no loop; a hub the walk cannot read is named, not a reason to stop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from hub.app import create_app
from hub.core import utcnow
from hub.upstream_graph import walk_upstreams
from tests.hub.conftest import opened
from tests.hub.test_following import follow, make_hub

REGIONAL, HOTLINE, HELPLINE = "regional.example", "hotline.example", "helpline.example"


@dataclass
class Ring:
    homes: dict[str, Path]
    pins: dict[str, str]
    urls: dict[str, str]


@pytest.fixture
async def ring(tmp_path: Path) -> AsyncIterator[Ring]:
    """Three hubs, each with one entries collection; hotline and helpline serving.
    regional declares hotline and follows it; hotline declares helpline."""
    homes = {name: tmp_path / name.split(".")[0] for name in (REGIONAL, HOTLINE, HELPLINE)}
    pins = {
        name: make_hub(home, name, f"{name[:4]}-pdq", f"{name[:4]}-md5", name[:4])
        for name, home in homes.items()
    }
    servers = {name: TestServer(create_app(homes[name], schedule=False)) for name in homes}
    for server in servers.values():
        await server.start_server()
    urls = {name: str(server.make_url("/")).rstrip("/") for name, server in servers.items()}
    with opened(homes[REGIONAL]) as hub:
        hub.roots.declare_upstream(HOTLINE, urls[HOTLINE], pins[HOTLINE])
        hub.upstreams.follow(HOTLINE, "regional", ["hotl-pdq"])
        hub.upstreams.set_token(HOTLINE, "a-token-the-walk-does-not-need")
    with opened(homes[HOTLINE]) as hub:
        hub.roots.declare_upstream(HELPLINE, urls[HELPLINE], pins[HELPLINE])
    try:
        yield Ring(homes, pins, urls)
    finally:
        for server in servers.values():
            await server.close()


async def test_a_loop_through_three_hubs_is_refused(ring: Ring) -> None:
    with opened(ring.homes[HELPLINE]) as hub:
        hub.roots.declare_upstream(REGIONAL, ring.urls[REGIONAL], ring.pins[REGIONAL])
    with opened(ring.homes[REGIONAL]) as hub:
        before = hub.upstreams.status()

    report = await follow(ring.homes[REGIONAL])

    (outcome,) = report.outcomes
    assert outcome.status == "failed"
    assert outcome.error == (
        f"following {HOTLINE} would loop back to this hub: {HOTLINE} -> {HELPLINE} -> "
        f"{REGIONAL} (each declares the next as its upstream); an operator on the loop "
        "must remove a declaration"
    )
    assert report.unchecked == []
    assert report.carried is not None
    assert report.carried.added == []
    assert report.published == []
    with opened(ring.homes[REGIONAL]) as hub:
        after = hub.upstreams.status()
    assert after[0]["lists"][0]["version"] == before[0]["lists"][0]["version"] == 0
    assert after[0]["lists"][0]["last_error"] is not None
    assert "would loop back to this hub" in after[0]["lists"][0]["last_error"]


async def test_without_the_last_declaration_the_walk_finds_no_loop(ring: Ring) -> None:
    with opened(ring.homes[REGIONAL]) as hub:
        own = hub.keys.root_sha256(1)
    async with aiohttp.ClientSession() as session:
        walk = await walk_upstreams(
            session,
            name=HOTLINE,
            url=ring.urls[HOTLINE],
            pin=ring.pins[HOTLINE],
            own_pin=own,
            now=utcnow(),
        )
    assert walk.loop is None
    assert walk.read == 2  # hotline, then the helpline it declares
    assert walk.unread == []


async def test_a_hub_the_walk_cannot_read_is_named_and_does_not_stop_following(
    ring: Ring,
) -> None:
    with opened(ring.homes[HELPLINE]) as hub:
        hub.roots.declare_upstream("gone.example", "http://127.0.0.1:9", "ab" * 32)

    report = await follow(ring.homes[REGIONAL])

    (unread,) = report.unchecked
    assert unread.startswith("gone.example: ")
    (outcome,) = report.outcomes
    # Not refused as a loop: the follower went on to the upstream itself (whose
    # lists it may not read with this token: that is the upstream's answer).
    assert "would loop" not in (outcome.error or "")
