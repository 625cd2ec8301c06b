"""``edge.serving``: the client's address behind trusted proxies, the 429, the access log.

Each test serves a small aiohttp app over a socket with the access-log class the
roles use, so the log lines and answers are those a real server writes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from edge.ratelimit import TrustedProxies
from edge.serving import (
    ACCESS_LOG_FORMAT,
    CLIENT,
    ClientAccessLogger,
    client_address,
    too_many,
)


class Served:
    """An app served on loopback by ``web.AppRunner``, as ``serve`` serves a role."""

    def __init__(self, runner: web.AppRunner, url: str, session: aiohttp.ClientSession) -> None:
        self.runner, self.url, self.session = runner, url, session

    async def get(self, path: str, **kwargs: object) -> tuple[int, dict[str, str], str]:
        async with self.session.get(self.url + path, **kwargs) as response:  # type: ignore[arg-type]
            return response.status, dict(response.headers), await response.text()


async def _serve(app: web.Application, **runner_options: object) -> Served:
    runner = web.AppRunner(app, **runner_options)  # type: ignore[arg-type]
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return Served(runner, f"http://127.0.0.1:{port}", aiohttp.ClientSession())


class _Limits:
    def __init__(self, proxies: TrustedProxies) -> None:
        self._proxies = proxies

    @property
    def proxies(self) -> TrustedProxies:
        return self._proxies


class _QuietAboutSecrets(ClientAccessLogger):
    def unlogged(self, path: str) -> bool:
        return path.startswith("/secret")


def _app(proxies: TrustedProxies, *, resolve: bool) -> web.Application:
    limits = _Limits(proxies)

    @web.middleware
    async def resolving(request: web.Request, handler: Handler) -> web.StreamResponse:
        if resolve:
            request[CLIENT] = client_address(request, limits)
        return await handler(request)

    async def who(request: web.Request) -> web.StreamResponse:
        return web.Response(text=client_address(request, limits))

    async def busy(request: web.Request) -> web.StreamResponse:
        raise too_many(7, "too many requests from your address")

    app = web.Application(middlewares=[resolving])
    app.router.add_get("/who", who)
    app.router.add_get("/secret/page", who)
    app.router.add_get("/busy", busy)
    return app


@pytest.fixture
async def behind_proxy() -> AsyncIterator[Served]:
    """Served as a role serves: loopback is the trusted proxy, the client is resolved."""
    served = await _serve(
        _app(TrustedProxies(["127.0.0.1/32"]), resolve=True),
        access_log_class=_QuietAboutSecrets,
        access_log_format=ACCESS_LOG_FORMAT,
    )
    try:
        yield served
    finally:
        await served.session.close()
        await served.runner.cleanup()


async def test_the_client_behind_a_trusted_proxy_is_the_forwarded_address(
    behind_proxy: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    _, _, text = await behind_proxy.get("/who", headers={"X-Forwarded-For": "203.0.113.9"})
    assert text == "203.0.113.9"
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 1
    assert lines[0].startswith('203.0.113.9 "GET /who HTTP/1.1" 200 ')
    assert "X-Forwarded-For" not in lines[0]


async def test_an_unlogged_path_leaves_no_line(
    behind_proxy: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    _, _, text = await behind_proxy.get("/secret/page", headers={"X-Forwarded-For": "203.0.113.9"})
    assert text == "203.0.113.9"
    await behind_proxy.get("/who")
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert [line.split(" ")[0:3] for line in lines] == [["127.0.0.1", '"GET', "/who"]]
    assert all("/secret" not in line for line in lines)


async def test_an_untrusted_peer_cannot_name_another_address() -> None:
    served = await _serve(_app(TrustedProxies(), resolve=False))
    try:
        _, _, text = await served.get("/who", headers={"X-Forwarded-For": "203.0.113.9"})
        assert text == "127.0.0.1"
    finally:
        await served.session.close()
        await served.runner.cleanup()


async def test_a_refusal_says_how_long_to_wait(behind_proxy: Served) -> None:
    status, headers, text = await behind_proxy.get("/busy")
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert text == "too many requests from your address; try again in 7 s"
