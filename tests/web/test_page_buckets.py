"""Each public form has its own bucket, and no bucket holds an address.

Login, submit and case lookup shared one per-address bucket: one POST a minute
from an address an operator shares with the public kept the operator out of
``/login``. Now each form has a bucket of its own (``web_rate_burst``,
``web_rate_per_hour`` each), keyed, like every bucket of ``RateLimiter``, by an
HMAC of the address that the limiter drops once the bucket is full again (D7).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from edge.ratelimit import SWEEP_SECONDS, RateLimiter
from hub.app import create_app
from hub.web.pages import SESSION_COOKIE
from tests.web.hub_support import Client, OperatorSession, form_token, init_web_hub, operator_token

MD5_HEX = "0123456789abcdef0123456789abcdef"


def cases(home: Path) -> int:
    connection = sqlite3.connect(home / "hub.db")
    try:
        return int(connection.execute("SELECT count(*) FROM submissions").fetchone()[0])
    finally:
        connection.close()


async def submit(client: Client) -> int:
    response = await client.post("/submit", data={"type": "md5", "hash": MD5_HEX})
    await response.read()
    return response.status


async def test_a_spent_submit_bucket_leaves_login_and_case_lookup_open(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    init_web_hub(home, web_rate_burst=2, web_rate_per_hour=60)
    token = operator_token(home, "viewer")
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as client:
        assert [await submit(client), await submit(client)] == [200, 200]
        refused = await client.post("/submit", data={"type": "md5", "hash": MD5_HEX})
        assert refused.status == 429
        assert "Too many requests from your address" in await refused.text()
        assert int(refused.headers["Retry-After"]) >= 1

        # The same address logs in at once: the login form has its own bucket.
        operator = await OperatorSession.login(client, token)
        assert operator.csrf
        assert client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE]
        # Case lookup too (no such case: a 404 page, not a 429).
        lookup = await client.post("/case", data={"case": "0" * 32})
        assert lookup.status == 404
        assert "no case has that number" in await lookup.text()
        # And the submit bucket is still spent: separate, not reset.
        assert await submit(client) == 429
    assert cases(home) == 2


async def test_a_spent_login_bucket_leaves_submit_open(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    init_web_hub(home, web_rate_burst=2, web_rate_per_hour=60)
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as client:
        page = await client.get("/login")
        nonce = form_token(await page.text())
        statuses = []
        for _ in range(3):
            answer = await client.post("/login", data={"token": "hho_wrong", "csrf": nonce})
            statuses.append(answer.status)
            if answer.status == 401:  # the login page again, with a new form token
                nonce = form_token(await answer.text())
        assert statuses == [401, 401, 429]
        assert await submit(client) == 200


def test_the_limiter_keeps_no_key_as_given_and_forgets_a_full_bucket() -> None:
    now = [0.0]
    limiter = RateLimiter(burst=2, per_hour=3600, clock=lambda: now[0])  # one a second
    address = "submit 198.51.100.23"
    assert limiter.take(address) == 0
    kept = list(limiter._buckets)
    assert len(kept) == 1
    assert address.encode() not in kept[0]
    assert b"198.51.100.23" not in kept[0]
    # Another limiter (another process) keys the same address differently.
    other = RateLimiter(burst=2, per_hour=3600, clock=lambda: now[0])
    other.take(address)
    assert list(other._buckets) != kept
    # Full again after a second; forgotten at the next request after the sweep.
    now[0] += SWEEP_SECONDS
    assert limiter.take("case 192.0.2.9") == 0
    assert len(limiter._buckets) == 1  # only the new one
    assert limiter.retry_after(address) == 0
    # A client that still has to wait is kept, however many sweeps pass.
    limiter.take("case 192.0.2.9")
    assert limiter.take("case 192.0.2.9") >= 1
    now[0] += SWEEP_SECONDS / 120  # half a second: the bucket is not full again
    limiter._swept = -SWEEP_SECONDS  # force a sweep now
    assert limiter.take("login 192.0.2.10") == 0
    assert limiter.retry_after("case 192.0.2.9") >= 1
