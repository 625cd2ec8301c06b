"""Rate limits on every route of the hub and the node, and who the client is behind a proxy.

The policy is ADR 15: requests without a token are limited per client address,
requests with a valid token per credential (so many nodes behind one NAT are not
limited together), wrong tokens per address and strictly; a 429 has the one JSON
error shape and ``Retry-After``; ``X-Forwarded-For`` is believed only from a
trusted proxy.

Real apps on loopback (real SQLite, real keys). The limiters run on a clock the
test moves (``FakeClock``), so "after the wait" takes no time. The route tables
are checked against each app's router as ``test_access_table.py`` does, so a new
route without a row fails here until someone decides how it is limited.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from edge.ratelimit import RateLimiter, TrustedProxies
from hub.app import ACCESS_LOG_FORMAT, create_app
from hub.appkeys import CONFIG, HUB
from hub.errors import InvalidRequest
from hub.limits import LIMITS, ClientAccessLogger, HubLimits
from hub.web.pages import LIMITER
from node.api.keys import NODE
from node.app import create_app as create_node_app
from node.config import read_secret
from node.errors import NodeConfigError
from node.limits import LIMITS as NODE_LIMITS
from node.limits import NodeLimits
from protocol import SigningKey
from tests.hub.conftest import LIST, PUBLIC_LIST, bearer, init_hub, opened
from tests.reliability.test_access_table import _router_routes
from tests.web.node_support import node_of, start_hub, start_node_site

Client = TestClient[web.Request, web.Application]

FORGED = "198.51.100.7"
"""An address a client claims in ``X-Forwarded-For`` (TEST-NET-2)."""


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


HUB_ROUTES: Mapping[tuple[str, str], str] = {
    # The published tree: root files and a public list's files are read anonymously; a
    # private list's answer 401 without a token, and are limited all the same.
    ("GET", "/root/{version}.json"): "/root/1.json",
    ("GET", "/root/{version}.json.sig"): "/root/1.json.sig",
    ("GET", "/lists/{list_id}/checkpoint"): f"/lists/{PUBLIC_LIST}/checkpoint",
    ("GET", "/lists/{list_id}/delta/{version}.json"): f"/lists/{PUBLIC_LIST}/delta/1.json",
    ("GET", "/lists/{list_id}/delta/{version}.json.sig"): f"/lists/{PUBLIC_LIST}/delta/1.json.sig",
    ("GET", "/lists/{list_id}/body/{sha256}.txt"): f"/lists/{LIST}/body/{'0' * 64}.txt",
    ("GET", "/lists/{list_id}/opinions/{sha256}.json"): f"/lists/{LIST}/opinions/{'0' * 64}.json",
    ("GET", "/lists/{list_id}/provenance/{sha256}.json"): (
        f"/lists/{LIST}/provenance/{'0' * 64}.json"
    ),
    ("GET", "/lists/{list_id}/frames/{sha256}.bin"): f"/lists/{LIST}/frames/{'0' * 64}.bin",
    ("GET", "/lists/{list_id}/snapshot/{version}.bin"): f"/lists/{LIST}/snapshot/2.bin",
    # Acks and the operator API, before any credential is checked.
    ("POST", "/v1/acks"): "/v1/acks",
    ("POST", "/v1/contributions"): "/v1/contributions",
    ("GET", "/v1/contributions/{seq}"): "/v1/contributions/1",
    ("GET", "/v1/admin/status"): "/v1/admin/status",
    ("GET", "/v1/admin/lists"): "/v1/admin/lists",
    ("POST", "/v1/admin/lists"): "/v1/admin/lists",
    ("GET", "/v1/admin/lists/{list_id}/counts"): f"/v1/admin/lists/{LIST}/counts",
    ("POST", "/v1/admin/lists/{list_id}/stage"): f"/v1/admin/lists/{LIST}/stage",
    ("POST", "/v1/admin/lists/{list_id}/import"): f"/v1/admin/lists/{LIST}/import",
    ("POST", "/v1/admin/publish"): "/v1/admin/publish",
    ("GET", "/v1/admin/vocabulary"): "/v1/admin/vocabulary",
    ("POST", "/v1/admin/vocabulary"): "/v1/admin/vocabulary",
    ("GET", "/v1/admin/entries"): "/v1/admin/entries",
    ("POST", "/v1/admin/entries"): "/v1/admin/entries",
    ("POST", "/v1/admin/entries/import"): "/v1/admin/entries/import",
    ("POST", "/v1/admin/entries/change"): "/v1/admin/entries/change",
    ("POST", "/v1/admin/entries/retract"): "/v1/admin/entries/retract",
    ("GET", "/v1/admin/nodes"): "/v1/admin/nodes",
    ("POST", "/v1/admin/nodes"): "/v1/admin/nodes",
    ("DELETE", "/v1/admin/nodes/{node_id}"): "/v1/admin/nodes/no-such-node",
    ("POST", "/v1/admin/nodes/{node_id}/grant"): "/v1/admin/nodes/no-such-node/grant",
    ("POST", "/v1/admin/nodes/{node_id}/ungrant"): "/v1/admin/nodes/no-such-node/ungrant",
    ("POST", "/v1/admin/nodes/{node_id}/key"): "/v1/admin/nodes/no-such-node/key",
    ("POST", "/v1/admin/nodes/{node_id}/token"): "/v1/admin/nodes/no-such-node/token",
    ("POST", "/v1/admin/nodes/{node_id}/suspend"): "/v1/admin/nodes/no-such-node/suspend",
    ("POST", "/v1/admin/nodes/{node_id}/resume"): "/v1/admin/nodes/no-such-node/resume",
    ("POST", "/v1/admin/nodes/{node_id}/platform"): "/v1/admin/nodes/no-such-node/platform",
    ("GET", "/v1/admin/keys"): "/v1/admin/keys",
    ("POST", "/v1/admin/keys/{role}/rotate"): "/v1/admin/keys/checkpoint/rotate",
    ("POST", "/v1/admin/tokens"): "/v1/admin/tokens",
    ("GET", "/v1/admin/actions"): "/v1/admin/actions",
    ("GET", "/v1/admin/evidence"): "/v1/admin/evidence",
    ("GET", "/v1/admin/acks"): "/v1/admin/acks",
    ("GET", "/v1/admin/cases"): "/v1/admin/cases",
    ("GET", "/v1/admin/cases/{case}"): f"/v1/admin/cases/{'0' * 32}",
    ("POST", "/v1/admin/cases/{case}/accept"): f"/v1/admin/cases/{'0' * 32}/accept",
    ("POST", "/v1/admin/cases/{case}/reject"): f"/v1/admin/cases/{'0' * 32}/reject",
    ("GET", "/v1/admin/withdrawals"): "/v1/admin/withdrawals",
    ("POST", "/v1/admin/withdrawals/{case}"): f"/v1/admin/withdrawals/{'0' * 32}",
    ("GET", "/v1/admin/disputes"): "/v1/admin/disputes",
    ("POST", "/v1/admin/disputes/{entry}"): "/v1/admin/disputes/e-no-such-entry",
    ("GET", "/v1/admin/contributions"): "/v1/admin/contributions",
    ("POST", "/v1/admin/contributions/{node}/{seq}"): "/v1/admin/contributions/no-such-node/1",
    ("GET", "/v1/admin/contributions/trust"): "/v1/admin/contributions/trust",
    ("POST", "/v1/admin/contributions/trust"): "/v1/admin/contributions/trust",
    ("DELETE", "/v1/admin/contributions/trust/{platform}"): (
        "/v1/admin/contributions/trust/no-such-platform"
    ),
    # Health, metrics, the API document.
    ("GET", "/healthz"): "/healthz",
    ("GET", "/readyz"): "/readyz",
    ("GET", "/metrics"): "/metrics",
    ("GET", "/openapi.yaml"): "/openapi.yaml",
    # The HTML pages (their posts also have the pages' own, stricter limit).
    ("GET", "/"): "/",
    ("GET", "/submit"): "/submit",
    ("POST", "/submit"): "/submit",
    ("GET", "/case"): "/case",
    ("POST", "/case"): "/case",
    ("POST", "/case/withdraw"): "/case/withdraw",
    ("GET", "/login"): "/login",
    ("POST", "/login"): "/login",
    ("POST", "/logout"): "/logout",
    ("GET", "/dashboard"): "/dashboard",
    ("GET", "/dashboard/lists"): "/dashboard/lists",
    ("GET", "/dashboard/entries"): "/dashboard/entries",
    ("GET", "/dashboard/review"): "/dashboard/review",
    ("GET", "/dashboard/nodes"): "/dashboard/nodes",
    ("GET", "/dashboard/counts"): "/dashboard/counts",
    ("GET", "/dashboard/keys"): "/dashboard/keys",
    ("GET", "/dashboard/log"): "/dashboard/log",
    ("POST", "/dashboard/publish"): "/dashboard/publish",
    ("POST", "/dashboard/cases/{case}/review"): "/dashboard/cases/0000-0000/review",
    ("POST", "/dashboard/cases/{case}/withdrawal"): "/dashboard/cases/0000-0000/withdrawal",
    ("POST", "/dashboard/nodes/{node_id}/{change}"): "/dashboard/nodes/no-such-node/suspend",
    ("GET", "/static/hashhub.css"): "/static/hashhub.css",
    ("GET", "/static"): "/static/hub.css",
}
"""Every route of the hub (HEAD, answered as GET, aside): the request sent anonymously."""

NODE_ROUTES: Mapping[tuple[str, str], str] = {
    ("POST", "/v1/match"): "/v1/match",
    ("POST", "/v1/matches/{match_id}/outcome"): "/v1/matches/no-such-match/outcome",
    ("POST", "/v1/content"): "/v1/content",
    ("GET", "/v1/status"): "/v1/status",
    ("GET", "/v1/matches"): "/v1/matches",
    ("GET", "/healthz"): "/healthz",
    ("GET", "/metrics"): "/metrics",
    ("GET", "/openapi.yaml"): "/openapi.yaml",
    ("GET", "/status/"): "/status/",
    ("GET", "/status/login"): "/status/login",
    ("POST", "/status/login"): "/status/login",
    ("POST", "/status/matches/{match_id}/outcome"): "/status/matches/no-such-match/outcome",
    ("GET", "/status/static/hashhub.css"): "/status/static/hashhub.css",
    ("GET", "/status/static/node.css"): "/status/static/node.css",
    ("POST", "/status/logout"): "/status/logout",
}
"""Every route of the node: the request sent without the API token."""


def _without_head(routes: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(method, route) for method, route in routes if method != "HEAD"}


async def assert_too_many(response: ClientResponse) -> int:
    """A 429 in the one JSON error shape, with ``Retry-After``; returns the wait."""
    body = await response.read()
    assert response.status == 429, body
    assert response.content_type == "application/json"
    error = json.loads(body)["error"]
    assert error["status"] == 429
    assert error["code"] == "too_many_requests"
    assert "try again in" in error["message"]
    wait = int(response.headers["Retry-After"])
    assert wait >= 1
    # no-store from the API's error shape; the pages revalidate everything (no-cache).
    assert response.headers["Cache-Control"] in {"no-store", "no-cache"}
    return wait


# -- the hub ----------------------------------------------------------------------------


@dataclass
class HubWorld:
    client: Client
    limits: HubLimits
    clock: FakeClock
    nodes: tuple[str, str]  # two node tokens, both granted LIST
    admin: str


@pytest.fixture
async def hub_world(tmp_path: Path) -> AsyncIterator[HubWorld]:
    home = tmp_path / "hub"
    init_hub(home)
    with opened(home) as hub:
        nodes = (
            hub.access.enrol_node("platform-a", SigningKey.generate().public, [LIST]),
            hub.access.enrol_node("platform-b", SigningKey.generate().public, [LIST]),
        )
        admin = hub.access.create_operator_token("admin", "test-admin")
    app = create_app(home, schedule=False)
    clock = FakeClock()
    # The defaults, on the test's clock; each test narrows what it looks at.
    app[LIMITS] = HubLimits.from_config(app[CONFIG], HUB, clock=clock)
    app[LIMITER] = RateLimiter(burst=10_000, per_hour=10_000)  # the pages' own limit
    server = TestServer(app, host="127.0.0.1", port=0)
    # As ``hub.app.run`` serves it, so that the access log is the one operators read.
    await server.start_server(
        access_log_class=ClientAccessLogger, access_log_format=ACCESS_LOG_FORMAT
    )
    async with TestClient(server) as client:
        yield HubWorld(client, app[LIMITS], clock, nodes, admin)


def test_every_hub_route_has_a_row(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    init_hub(home)
    routes = _without_head(_router_routes(create_app(home, schedule=False)))
    assert routes == set(HUB_ROUTES), (
        f"routes without a row: {sorted(routes - set(HUB_ROUTES))}; "
        f"rows for no route: {sorted(set(HUB_ROUTES) - routes)}"
    )


async def test_every_hub_route_is_limited_per_address_then_allowed_again(
    hub_world: HubWorld,
) -> None:
    world, limits = hub_world, hub_world.limits
    wrong: list[str] = []
    for (method, _), path in HUB_ROUTES.items():
        limits.anonymous = RateLimiter(burst=2, per_hour=3600, clock=world.clock)
        first = await world.client.request(method, path, allow_redirects=False)
        await first.read()
        second = await world.client.request(method, path, allow_redirects=False)
        await second.read()
        third = await world.client.request(method, path, allow_redirects=False)
        if first.status == 429 or second.status != first.status:
            wrong.append(f"{method} {path}: {first.status}, {second.status} within the burst")
            continue
        wait = await assert_too_many(third)
        world.clock.advance(wait)
        again = await world.client.request(method, path, allow_redirects=False)
        await again.read()
        if again.status != first.status:
            wrong.append(f"{method} {path}: {again.status} after the wait, {first.status} before")
    assert not wrong, "\n".join(wrong)


async def test_two_nodes_behind_one_address_have_a_bucket_each(hub_world: HubWorld) -> None:
    world = hub_world
    world.limits.credential = RateLimiter(burst=3, per_hour=3600, clock=world.clock)
    world.limits.anonymous = RateLimiter(burst=1, per_hour=3600, clock=world.clock)
    path = f"/lists/{LIST}/checkpoint"
    a, b = world.nodes
    for _ in range(3):
        assert (await world.client.get(path, headers=bearer(a))).status == 200
    await assert_too_many(await world.client.get(path, headers=bearer(a)))
    # Same address, another credential: its own full bucket. And an anonymous reader
    # there has its own too: the nodes' reads did not spend it.
    for _ in range(3):
        assert (await world.client.get(path, headers=bearer(b))).status == 200
    root = await world.client.get("/root/1.json")
    assert root.status == 200
    await assert_too_many(await world.client.get(path, headers=bearer(b)))
    # A node's token is its bucket on a public list too, and on its acks.
    await assert_too_many(
        await world.client.get(f"/lists/{PUBLIC_LIST}/checkpoint", headers=bearer(a))
    )
    await assert_too_many(await world.client.post("/v1/acks", headers=bearer(a)))
    world.clock.advance(1)
    assert (await world.client.get(path, headers=bearer(a))).status == 200


async def test_wrong_tokens_are_limited_per_address(hub_world: HubWorld) -> None:
    """The defaults: ten refused tokens, then 429 every six seconds (ten a minute).

    Only a token a route refused counts; a valid token is never refused for the
    wrong ones sent from its address, seen before or not (ADR 15).
    """
    world = hub_world
    known = world.nodes[0]
    assert (
        await world.client.get(f"/lists/{LIST}/checkpoint", headers=bearer(known))
    ).status == 200
    wrong_tokens = ["hho_" + secrets.token_urlsafe(32) for _ in range(10)]
    statuses = []
    for token in wrong_tokens[:5]:  # a public list answers them all the same: no failure
        response = await world.client.get(f"/lists/{PUBLIC_LIST}/checkpoint", headers=bearer(token))
        statuses.append(response.status)
    for token in wrong_tokens:
        statuses.append((await world.client.get("/v1/admin/status", headers=bearer(token))).status)
    assert statuses == [200] * 5 + [401] * 10
    wait = await assert_too_many(
        await world.client.post("/v1/acks", headers={"Authorization": "Basic x"})
    )
    assert wait == 6
    wait = await assert_too_many(
        await world.client.get("/v1/admin/status", headers=bearer(wrong_tokens[0]))
    )
    # A valid token first seen now is looked up and works; so does one already known,
    # a wrong one on a public list, and a request without a token.
    assert (await world.client.get("/v1/admin/status", headers=bearer(world.admin))).status == 200
    assert (
        await world.client.get(f"/lists/{LIST}/checkpoint", headers=bearer(known))
    ).status == 200
    assert (
        await world.client.get(f"/lists/{PUBLIC_LIST}/checkpoint", headers=bearer(wrong_tokens[1]))
    ).status == 200
    assert (await world.client.get("/healthz")).status == 200
    world.clock.advance(wait)
    assert (
        await world.client.get("/v1/admin/status", headers=bearer(wrong_tokens[9]))
    ).status == 401
    await assert_too_many(
        await world.client.get("/v1/admin/status", headers=bearer(wrong_tokens[0]))
    )
    # A private list refuses a wrong token as the operator API does.
    await assert_too_many(
        await world.client.get(f"/lists/{LIST}/checkpoint", headers=bearer(wrong_tokens[2]))
    )


async def test_a_revoked_token_counts_as_wrong_at_once(hub_world: HubWorld) -> None:
    world = hub_world
    world.limits.failures = RateLimiter(burst=1, per_hour=3600, clock=world.clock)
    token = world.nodes[1]
    path = f"/lists/{LIST}/checkpoint"
    assert (await world.client.get(path, headers=bearer(token))).status == 200
    admin = bearer(world.admin)
    revoked = await world.client.delete("/v1/admin/nodes/platform-b", headers=admin)
    assert revoked.status == 200, await revoked.text()
    assert (await world.client.get(path, headers=bearer(token))).status == 401
    await assert_too_many(await world.client.get(path, headers=bearer(token)))


async def raw_request(client: Client, head: bytes, body: bytes = b"") -> tuple[int, bytes, bytes]:
    """Send bytes no HTTP client library would: ``head`` is the request line and headers.

    Returns the status, the response's header block and its body.
    """
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head + b"Host: hub.test\r\nConnection: close\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    headers, _, content = answer.partition(b"\r\n\r\n")
    return int(headers.split(b" ", 2)[1]), headers, content


def assert_no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


NOT_UTF8 = b"Authorization: Bearer \xff\xfe\r\n"


async def assert_ten_401s_then_429(client: Client, path: str) -> bytes:
    """``GET path`` with a token that is not UTF-8: ten 401s in the JSON shape, then a 429.

    Returns the 429's header block.
    """
    head = b"GET " + path.encode() + b" HTTP/1.1\r\n" + NOT_UTF8
    for _ in range(10):
        status, headers, body = await raw_request(client, head)
        assert status == 401, body
        assert b"Content-Type: application/json" in headers
        error = json.loads(body)["error"]
        assert error["code"] == "unauthorized"
        assert "visible ASCII" in error["message"]
    status, headers, body = await raw_request(client, head)
    assert status == 429, body
    assert json.loads(body)["error"]["code"] == "too_many_requests"
    return headers


@pytest.mark.parametrize(
    "path", ["/healthz", "/v1/admin/status", f"/lists/{PUBLIC_LIST}/checkpoint", "/dashboard"]
)
async def test_a_token_that_is_not_utf8_is_a_counted_401(
    hub_world: HubWorld, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """As the review sent it: never a 500, never a traceback; the eleventh is a 429."""
    caplog.set_level(logging.DEBUG)
    headers = await assert_ten_401s_then_429(hub_world.client, path)
    assert b"Retry-After: 6" in headers
    assert_no_error_logged(caplog)


async def test_a_session_cookie_that_is_not_utf8_is_no_session(
    hub_world: HubWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, headers, _ = await raw_request(
        hub_world.client, b"GET /dashboard HTTP/1.1\r\nCookie: hashhub_session=\xff\r\n"
    )
    assert status == 303
    assert b"Location: /login" in headers
    # The login form's double-submit cookie and field, neither of them ASCII.
    form = b"token=hho_x&csrf=%C3%A9"
    status, _, body = await raw_request(
        hub_world.client,
        b"POST /login HTTP/1.1\r\nCookie: hashhub_login=\xc3\xa9\r\n"
        b"Origin: http://hub.test\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        form,
    )
    assert status == 403, body
    assert b"security token is missing or wrong" in body
    assert_no_error_logged(caplog)


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(hub_world: HubWorld) -> None:
    world = hub_world
    world.limits.anonymous = RateLimiter(burst=1, per_hour=3600, clock=world.clock)
    assert world.limits.proxies.networks == ()  # the default: believe nobody
    first = await world.client.get("/healthz", headers={"X-Forwarded-For": FORGED})
    assert first.status == 200
    # Claiming to be someone else buys nothing: the bucket is still 127.0.0.1's.
    await assert_too_many(
        await world.client.get("/healthz", headers={"X-Forwarded-For": "198.51.100.8"})
    )


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(
    hub_world: HubWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world = hub_world
    world.limits.proxies = TrustedProxies(["127.0.0.0/8", "10.0.0.0/8"])
    world.limits.anonymous = RateLimiter(burst=1, per_hour=3600, clock=world.clock)
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    via = {"X-Forwarded-For": f"{FORGED}, 10.1.2.3"}  # the client, then an inner proxy
    assert (await world.client.get("/healthz", headers=via)).status == 200
    assert any(r.getMessage().startswith(f'{FORGED} "GET /healthz') for r in caplog.records)
    await assert_too_many(await world.client.get("/healthz", headers=via))
    # Another client behind the same proxy has its own bucket ...
    other = {"X-Forwarded-For": "198.51.100.9"}
    assert (await world.client.get("/healthz", headers=other)).status == 200
    # ... and what the client itself put further left is not believed.
    spoofed = {"X-Forwarded-For": f"203.0.113.1, {FORGED}"}
    await assert_too_many(await world.client.get("/healthz", headers=spoofed))
    # Wrong tokens are counted against the client, not the proxy.
    world.limits.failures = RateLimiter(burst=1, per_hour=3600, clock=world.clock)
    guess = {**bearer("hho_" + secrets.token_urlsafe(32)), "X-Forwarded-For": "198.51.100.10"}
    assert (await world.client.get("/v1/admin/status", headers=guess)).status == 401
    await assert_too_many(await world.client.get("/v1/admin/status", headers=guess))
    guess["X-Forwarded-For"] = "198.51.100.11"
    assert (await world.client.get("/v1/admin/status", headers=guess)).status == 401


def test_a_bad_trusted_proxy_setting_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "hub"
    init_hub(home)
    monkeypatch.setenv("HASHHUB_TRUSTED_PROXIES", "10.0.0.0/8, proxy.example")
    with pytest.raises(InvalidRequest, match=r"'proxy\.example' is not an address"):
        create_app(home, schedule=False)


def test_zero_turns_a_limit_off(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    init_hub(home)
    config = create_app(home, schedule=False)[CONFIG]
    limits = HubLimits.from_config(replace(config, rate_burst=0, auth_failure_per_hour=0), HUB)
    assert limits.anonymous is None
    assert limits.failures is None
    assert limits.credential is not None


# -- the node ---------------------------------------------------------------------------


@dataclass
class NodeWorld:
    client: Client
    limits: NodeLimits
    clock: FakeClock
    token: str


@pytest.fixture
async def node_world(tmp_path: Path) -> AsyncIterator[NodeWorld]:
    hub = await start_hub(tmp_path / "hub")
    try:
        client = await start_node_site(tmp_path / "node", hub, synced=False)
        try:
            node = node_of(client)
            clock = FakeClock()
            limits = client.app[NODE_LIMITS]
            # The node's defaults, on the test's clock.
            fresh = NodeLimits.from_config(node.config, NODE, clock=clock)
            limits.anonymous, limits.credential, limits.failures = (
                fresh.anonymous,
                fresh.credential,
                fresh.failures,
            )
            yield NodeWorld(client, limits, clock, read_secret(node.home / "api-token"))
        finally:
            await client.close()
    finally:
        await hub.stop()


async def test_every_node_route_has_a_row_and_is_limited_per_address(
    node_world: NodeWorld,
) -> None:
    world, limits = node_world, node_world.limits
    routes = _without_head(_router_routes(world.client.app))
    assert routes == set(NODE_ROUTES), (
        f"routes without a row: {sorted(routes - set(NODE_ROUTES))}; "
        f"rows for no route: {sorted(set(NODE_ROUTES) - routes)}"
    )
    wrong: list[str] = []
    for (method, _), path in NODE_ROUTES.items():
        limits.anonymous = RateLimiter(burst=1, per_hour=3600, clock=world.clock)
        first = await world.client.request(method, path, allow_redirects=False)
        await first.read()
        second = await world.client.request(method, path, allow_redirects=False)
        if first.status == 429:
            wrong.append(f"{method} {path}: 429 within the burst")
            continue
        wait = await assert_too_many(second)
        world.clock.advance(wait)
        again = await world.client.request(method, path, allow_redirects=False)
        await again.read()
        if again.status != first.status:
            wrong.append(f"{method} {path}: {again.status} after the wait, {first.status} before")
    assert not wrong, "\n".join(wrong)


async def test_the_node_api_token_is_not_limited_by_default_and_the_rest_is(
    node_world: NodeWorld,
) -> None:
    """The platform's own upload path is never turned away by its own node, unless set."""
    world = node_world
    assert world.limits.credential is None
    assert world.limits.anonymous is not None
    assert world.limits.failures is not None
    token = bearer(world.token)
    # Far past the anonymous bucket (600 at once): the token's requests all pass.
    world.limits.anonymous = RateLimiter(burst=1, per_hour=3600, clock=world.clock)
    for _ in range(50):
        assert (await world.client.get("/v1/status", headers=token)).status == 200
    assert (await world.client.get("/healthz")).status == 200  # the anonymous one
    await assert_too_many(await world.client.get("/healthz"))


async def test_node_api_token_has_its_own_bucket(node_world: NodeWorld) -> None:
    world = node_world
    world.limits.anonymous = RateLimiter(burst=1, per_hour=3600, clock=world.clock)
    world.limits.credential = RateLimiter(burst=2, per_hour=3600, clock=world.clock)
    assert (await world.client.get("/healthz")).status == 200
    await assert_too_many(await world.client.get("/healthz"))
    token = bearer(world.token)
    for _ in range(2):
        assert (await world.client.get("/v1/status", headers=token)).status == 200
    await assert_too_many(await world.client.get("/v1/status", headers=token))


async def test_wrong_node_api_tokens_are_limited_per_address(node_world: NodeWorld) -> None:
    """The defaults: ten wrong tokens, then 429; the right token still works."""
    world = node_world
    statuses = [
        (await world.client.get("/v1/status", headers=bearer(f"wrong-{i}"))).status
        for i in range(10)
    ]
    assert statuses == [401] * 10
    wait = await assert_too_many(await world.client.get("/v1/status", headers=bearer("wrong-10")))
    assert wait == 6
    assert (await world.client.get("/v1/status", headers=bearer(world.token))).status == 200
    world.clock.advance(wait)
    assert (await world.client.get("/v1/status", headers=bearer("wrong-11"))).status == 401


@pytest.mark.parametrize("path", ["/healthz", "/v1/status"])
async def test_node_counts_a_token_that_is_not_utf8_as_a_401(
    node_world: NodeWorld, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.DEBUG)
    await assert_ten_401s_then_429(node_world.client, path)
    # The right token still works from that address.
    response = await node_world.client.get("/v1/status", headers=bearer(node_world.token))
    assert response.status == 200
    assert "lists" in await response.json()
    assert_no_error_logged(caplog)


async def test_node_page_cookie_that_is_not_utf8_is_no_session(
    node_world: NodeWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, headers, body = await raw_request(
        node_world.client, b"GET /status/ HTTP/1.1\r\nCookie: hashhub_node_session=\xff\r\n"
    )
    assert status in {200, 303}, body
    assert b"/status/login" in headers + body  # the login form, or a way to it
    assert_no_error_logged(caplog)


async def test_node_believes_forwarded_for_only_from_a_trusted_proxy(
    node_world: NodeWorld,
) -> None:
    world = node_world
    world.limits.anonymous = RateLimiter(burst=1, per_hour=3600, clock=world.clock)
    assert (await world.client.get("/healthz", headers={"X-Forwarded-For": FORGED})).status == 200
    await assert_too_many(
        await world.client.get("/healthz", headers={"X-Forwarded-For": "198.51.100.8"})
    )
    world.limits.proxies = TrustedProxies(["127.0.0.1"])
    assert (
        await world.client.get("/healthz", headers={"X-Forwarded-For": "198.51.100.8"})
    ).status == 200
    await assert_too_many(
        await world.client.get("/healthz", headers={"X-Forwarded-For": "198.51.100.8"})
    )


async def test_node_refuses_a_bad_trusted_proxy_at_start(
    node_world: NodeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HASHHUB_NODE_TRUSTED_PROXIES", "::1,proxy")
    with pytest.raises(NodeConfigError, match="'proxy' is not an address"):
        create_node_app(node_of(node_world.client).home, schedule=False)


# -- the address rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "peer", "header", "client"),
    [
        ((), "192.0.2.1", [FORGED], "192.0.2.1"),
        (("192.0.2.1",), "192.0.2.1", [FORGED], FORGED),
        (("192.0.2.1",), "192.0.2.1", [], "192.0.2.1"),
        (("192.0.2.0/24",), "192.0.2.1", [f"{FORGED}, 192.0.2.9"], FORGED),
        (("192.0.2.0/24",), "192.0.2.1", ["203.0.113.5", f"{FORGED}, 192.0.2.9"], FORGED),
        (("192.0.2.0/24",), "192.0.2.1", ["192.0.2.7, 192.0.2.9"], "192.0.2.7"),
        (("192.0.2.1",), "192.0.2.1", [f"{FORGED}, not-an-address"], "192.0.2.1"),
        (("::1",), "::1", ["2001:db8::5"], "2001:db8::5"),
        (("192.0.2.1",), "192.0.2.2", [FORGED], "192.0.2.2"),
    ],
)
def test_the_client_is_the_rightmost_untrusted_address(
    trusted: tuple[str, ...], peer: str, header: list[str], client: str
) -> None:
    assert TrustedProxies(trusted).client(peer, header) == client
