"""The pages' cookies are ``Secure`` when the browser used https, also behind a proxy.

Behind the operator guide's TLS proxy the hub speaks plain HTTP, so
``request.secure`` was always false and the dashboard's session cookie never got
``Secure``. Now the hub and the node believe ``X-Forwarded-Proto`` from a trusted
proxy (``trusted_proxies``) and from nobody else, and ``secure_cookies = "always"``
forces the flag. Each test runs the real app on loopback (the peer is 127.0.0.1)
and reads the ``Set-Cookie`` headers as sent. The whole path through the guide's
nginx block is ``test_login_through_the_guides_proxy_sets_a_secure_cookie`` in
``tests/deploy/test_tls_proxy.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from edge.ratelimit import TrustedProxies
from hub.app import create_app as create_hub_app
from hub.errors import InvalidRequest
from hub.web.pages import LOGIN_COOKIE, SESSION_COOKIE
from node.config import read_secret
from node.errors import NodeConfigError
from node.web.pages import SESSION_COOKIE as NODE_SESSION_COOKIE
from tests.node.fixtures_sync import HubApp
from tests.web.hub_support import Client, form_token, init_web_hub, operator_token
from tests.web.node_support import node_of, start_hub, start_node_site

HTTPS = {"X-Forwarded-Proto": "https"}


def set_cookies(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """Each cookie the answer sets, parsed from its raw ``Set-Cookie`` header."""
    found: dict[str, Any] = {}
    for header in response.headers.getall("Set-Cookie", []):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            found[name] = morsel
    return found


async def hub_login(client: Client, token: str, headers: dict[str, str]) -> dict[str, Any]:
    """The login page, then the login form, with ``headers`` on both: the cookies set.

    The login form's cookie as the login page set it, the session cookie as the
    login set it.
    """
    page = await client.get("/login", headers=headers)
    assert page.status == 200
    cookies = set_cookies(page)
    nonce = form_token(await page.text())
    assert cookies[LOGIN_COOKIE].value == nonce
    answer = await client.post(
        "/login",
        data={"token": token, "csrf": nonce},
        # Sent by hand: a client's jar would keep a Secure cookie off plain http.
        headers={**headers, "Cookie": f"{LOGIN_COOKIE}={nonce}"},
        allow_redirects=False,
    )
    assert answer.status == 303, await answer.text()
    assert answer.headers["Location"] == "/dashboard"
    session = set_cookies(answer)
    assert session[LOGIN_COOKIE].value == ""  # the login form's cookie is deleted
    cookies[SESSION_COOKIE] = session[SESSION_COOKIE]
    assert cookies[SESSION_COOKIE].value
    return cookies


async def serve_hub(tmp_path: Path, **settings: Any) -> tuple[Client, str]:
    home = tmp_path / "hub"
    init_web_hub(home, **settings)
    token = operator_token(home, "viewer")
    client: Client = TestClient(TestServer(create_hub_app(home, schedule=False), host="127.0.0.1"))
    await client.start_server()
    return client, token


# -- the rule ---------------------------------------------------------------------------


def test_forwarded_proto_is_believed_only_from_a_trusted_proxy() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    assert proxies.https("127.0.0.1", False, ["https"])
    assert proxies.https("10.1.2.3", False, ["HTTPS"])
    assert not proxies.https("192.0.2.7", False, ["https"])  # not a proxy: not believed
    assert not TrustedProxies().https("127.0.0.1", False, ["https"])  # nobody trusted
    assert not proxies.https("127.0.0.1", False, [])
    assert not proxies.https("127.0.0.1", False, ["http"])
    # The right-most value is the nearest proxy's: a client's own "https" further left
    # does not count.
    assert not proxies.https("127.0.0.1", False, ["https, http"])
    assert not proxies.https("127.0.0.1", False, ["https", "http"])
    assert proxies.https("127.0.0.1", False, ["http, https"])
    # The connection's own TLS is https whoever the peer is.
    assert proxies.https("192.0.2.7", True, [])
    assert proxies.https(None, True, ["http"])


# -- the hub ----------------------------------------------------------------------------


async def test_hub_behind_a_trusted_proxy_that_says_https_sets_secure_cookies(
    tmp_path: Path,
) -> None:
    client, token = await serve_hub(tmp_path, trusted_proxies="127.0.0.1")
    async with client:
        cookies = await hub_login(client, token, HTTPS)
        assert cookies[LOGIN_COOKIE]["secure"] is True
        assert cookies[SESSION_COOKIE]["secure"] is True
        assert cookies[SESSION_COOKIE]["httponly"] is True
        assert cookies[SESSION_COOKIE]["samesite"] == "Strict"
        # The same proxy saying http, or saying nothing: not Secure (the browser used http).
        for headers in ({"X-Forwarded-Proto": "http"}, {}):
            plain = await hub_login(client, token, headers)
            assert not plain[LOGIN_COOKIE]["secure"], headers
            assert not plain[SESSION_COOKIE]["secure"], headers


async def test_hub_ignores_forwarded_proto_from_a_peer_that_is_not_a_trusted_proxy(
    tmp_path: Path,
) -> None:
    # The peer (127.0.0.1) is not the trusted proxy: what it says is not believed.
    client, token = await serve_hub(tmp_path, trusted_proxies="192.0.2.1")
    async with client:
        cookies = await hub_login(client, token, HTTPS)
        assert not cookies[LOGIN_COOKIE]["secure"]
        assert not cookies[SESSION_COOKIE]["secure"]


async def test_hub_with_secure_cookies_always_sets_secure_over_plain_http(
    tmp_path: Path,
) -> None:
    client, token = await serve_hub(tmp_path, secure_cookies="always")
    async with client:
        cookies = await hub_login(client, token, {})
        assert cookies[LOGIN_COOKIE]["secure"] is True
        assert cookies[SESSION_COOKIE]["secure"] is True


def test_hub_refuses_an_unknown_secure_cookies_value(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    init_web_hub(home, secure_cookies="sometimes")
    with pytest.raises(InvalidRequest, match="secure_cookies is auto or always, not 'sometimes'"):
        create_hub_app(home, schedule=False)


# -- the node ---------------------------------------------------------------------------


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubApp]:
    started = await start_hub(tmp_path / "hub")
    try:
        yield started
    finally:
        await started.stop()


async def node_login(client: Client, headers: dict[str, str]) -> Any:
    token = read_secret(node_of(client).home / "api-token")
    response = await client.post(
        "/status/login", data={"token": token}, headers=headers, allow_redirects=False
    )
    assert response.status == 303, await response.text()
    cookie = set_cookies(response)[NODE_SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    return cookie


@pytest.mark.parametrize(
    ("settings", "headers", "secure"),
    [
        ({"TRUSTED_PROXIES": "127.0.0.1"}, HTTPS, True),
        ({"TRUSTED_PROXIES": "127.0.0.1"}, {"X-Forwarded-Proto": "http"}, False),
        ({"TRUSTED_PROXIES": "127.0.0.1"}, {}, False),
        ({"TRUSTED_PROXIES": "192.0.2.1"}, HTTPS, False),  # not the trusted proxy
        ({}, HTTPS, False),  # nobody trusted
        ({"SECURE_COOKIES": "always"}, {}, True),
    ],
    ids=[
        "trusted-https",
        "trusted-http",
        "trusted-silent",
        "untrusted-https",
        "no-proxy-https",
        "always",
    ],
)
async def test_node_status_page_cookie_is_secure_as_the_proxy_and_setting_say(
    tmp_path: Path,
    hub: HubApp,
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, str],
    headers: dict[str, str],
    secure: bool,
) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(f"HASHHUB_NODE_{name}", value)
    client = await start_node_site(tmp_path / "node", hub, synced=False)
    try:
        cookie = await node_login(client, headers)
        assert bool(cookie["secure"]) is secure
    finally:
        await client.close()


async def test_node_refuses_an_unknown_secure_cookies_value(
    tmp_path: Path, hub: HubApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HASHHUB_NODE_SECURE_COOKIES", "sometimes")
    with pytest.raises(NodeConfigError, match="secure_cookies is auto or always, not 'sometimes'"):
        await start_node_site(tmp_path / "node", hub, synced=False)
