"""The node's status page (node/web) served by the node's real app, synced from a real hub.

HTTP-level tests hold the login, the CSRF rule and the HTML errors to their word;
the browser tests drive Chromium through the page as an operator would: log in,
see the lists and a pending match, record "actioned", see the counters move, and
then the hub receives the count in the node's next ack. A hub that stopped
re-signing its checkpoints makes the page raise the stale alarm.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from playwright.async_api import Browser, Page, Request, expect

from edge.web import stylesheet
from node.api.keys import SESSION
from node.config import read_secret
from node.service import Node, flush_acks, run_sync
from node.web import CONTENT_SECURITY_POLICY, SESSION_COOKIE, LoginThrottle, SessionStore
from tests.node.fixtures_sync import HubApp
from tests.web.conftest import RecordedRequest, Screenshot
from tests.web.layout_support import TABLE_SCROLLERS, TOKENS_ON_ONE_LINE
from tests.web.node_support import (
    MD5_LIST,
    PDQ_LIST,
    Client,
    api_headers,
    csrf_of,
    log_in,
    match,
    node_of,
    start_hub,
    start_node_site,
)

COUNTERS = ("checked", "matched", "actioned", "blocked", "false_positive")


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubApp]:
    started = await start_hub(tmp_path / "hub")
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
async def client(tmp_path: Path, hub: HubApp) -> AsyncIterator[Client]:
    site = await start_node_site(tmp_path / "node", hub)
    try:
        yield site
    finally:
        await site.close()


def totals(node: Node, list_id: str) -> dict[str, int]:
    entry = next(e for e in node.status()["lists"] if e["list"] == list_id)
    return {name: entry["counts"][name] for name in COUNTERS}


def open_ids(node: Node) -> list[str]:
    return [m["match_id"] for m in node.matching.recent_matches(100, open_only=True)]


async def assert_html_error(response: aiohttp.ClientResponse, status: int, words: str) -> str:
    """An HTML page (never the API's JSON error) with ``status`` that says ``words``."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "text/html"
    assert words in text
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    return text


# -- login ----------------------------------------------------------------------------------


async def test_a_wrong_token_gets_an_error_page_and_no_cookie(client: Client) -> None:
    response = await client.post(
        "/status/login", data={"token": "hhl_not-the-token"}, allow_redirects=False
    )

    await assert_html_error(response, 403, "not this node&#39;s API token")
    assert "Set-Cookie" not in response.headers
    assert len(client.session.cookie_jar) == 0
    still_out = await client.get("/status/", allow_redirects=False)
    assert still_out.status == 303
    assert still_out.headers["Location"] == "/status/login"


async def test_the_token_opens_an_httponly_strict_session_and_the_page_shows_each_list(
    client: Client,
) -> None:
    token = read_secret(node_of(client).home / "api-token")

    response = await client.post("/status/login", data={"token": token}, allow_redirects=False)

    assert response.status == 303
    assert response.headers["Location"] == "/status/"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/status"
    assert token not in cookie.value
    page = await client.get("/status/")
    html = await page.text()
    assert page.status == 200
    for entry in node_of(client).status()["lists"]:
        row = re.search(rf'<tr data-list="{entry["list"]}" class="fresh">(.*?)</tr>', html, re.S)
        assert row is not None, entry["list"]
        # The whole digest, on the list's second line, kept whole (never cut, never broken).
        detail = re.search(rf'<tr [^>]*data-list-detail="{entry["list"]}">(.*?)</tr>', html, re.S)
        assert detail is not None, entry["list"]
        assert f'<span class="token digest">{entry["state_sha256"]}</span>' in detail.group(1)
        assert f'<td class="num" data-field="version">{entry["version"]}</td>' in row.group(1)
        assert f'<td class="num" data-field="count">{entry["count"]}</td>' in row.group(1)
    assert '<td class="num" data-field="version">1</td>' in html
    assert "<td>md5</td>" in html
    assert "<td>pdq</td>" in html
    assert "STALE" not in html


async def test_wrong_tokens_are_throttled_even_before_the_right_one(client: Client) -> None:
    for _ in range(10):
        wrong = await client.post("/status/login", data={"token": "guess"})
        assert wrong.status == 403

    token = read_secret(node_of(client).home / "api-token")
    response = await client.post("/status/login", data={"token": token}, allow_redirects=False)

    await assert_html_error(response, 429, "Too many wrong tokens")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert "Set-Cookie" not in response.headers


async def test_logging_out_ends_the_session_on_the_node(client: Client) -> None:
    csrf = await log_in(client)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/status/"))
    old = cookie[SESSION_COOKIE].value

    response = await client.post("/status/logout", data={"csrf": csrf}, allow_redirects=False)

    assert response.status == 303
    assert response.headers["Location"] == "/status/login"
    replayed = await client.get("/status/", cookies={SESSION_COOKIE: old}, allow_redirects=False)
    assert replayed.status == 303
    assert replayed.headers["Location"] == "/status/login"


async def test_the_page_session_opens_no_api_route_and_the_bearer_token_no_page(
    client: Client,
) -> None:
    await log_in(client)

    api = await client.get("/v1/status")
    page = await client.get(
        "/status/", cookies={SESSION_COOKIE: ""}, headers=api_headers(client), allow_redirects=False
    )

    assert api.status == 401
    assert (await api.json())["error"]["code"] == "unauthorized"
    assert page.status == 303
    assert page.headers["Location"] == "/status/login"


async def test_a_node_that_never_synced_shows_every_list_stale_and_why(
    tmp_path: Path, hub: HubApp
) -> None:
    site = await start_node_site(tmp_path / "fresh-node", hub, synced=False)
    try:
        await log_in(site)
        html = await (await site.get("/status/")).text()
    finally:
        await site.close()

    assert 'id="stale-alarm"' in html
    for list_id in (MD5_LIST, PDQ_LIST):
        assert f'<tr data-list="{list_id}" class="stale">' in html
        assert (
            f"<strong>{list_id}</strong>: no root is verified yet: the node has not completed "
            "its first update; still enforcing version 0."
        ) in html
    # Its badge says what is the matter: it never synced, not that a sync grew old.
    assert html.count('<span class="badge stale">never synced</span>') == 2
    assert ">STALE<" not in html
    assert "root version none yet" in html


async def test_a_scheduled_node_shows_its_schedule(tmp_path: Path, hub: HubApp) -> None:
    site = await start_node_site(tmp_path / "scheduled-node", hub, schedule=True)
    try:
        await log_in(site)
        html = await (await site.get("/status/")).text()
    finally:
        await site.close()

    assert "<h2>Schedule</h2>" in html
    assert "<dt>Running</dt><dd>yes</dd>" in html
    # Times as everywhere else on the page: whole seconds, in Z.
    when = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ|not yet|not scheduled)"
    assert re.search(rf'<dt>Last run</dt><dd class="token">{when}</dd>', html), html
    assert re.search(rf'<dt>Next run</dt><dd class="token">{when}</dd>', html), html
    assert re.search(
        r'node time <span class="token">\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</span>', html
    ), html
    assert "+00:00" not in html


# -- recording an outcome ---------------------------------------------------------------------


@pytest.mark.parametrize("csrf", [None, "", "forged-token"])
async def test_a_post_without_the_sessions_csrf_token_is_403_and_records_nothing(
    client: Client, csrf: str | None
) -> None:
    await log_in(client)
    match_id = await match(client, 1)
    before = totals(node_of(client), MD5_LIST)
    form = {"outcome": "actioned"} | ({} if csrf is None else {"csrf": csrf})

    response = await client.post(
        f"/status/matches/{match_id}/outcome", data=form, allow_redirects=False
    )

    await assert_html_error(response, 403, "CSRF token is missing or wrong")
    assert totals(node_of(client), MD5_LIST) == before
    assert match_id in open_ids(node_of(client))


async def test_a_post_without_a_session_is_403_and_records_nothing(client: Client) -> None:
    csrf = await log_in(client)
    match_id = await match(client, 1)
    client.session.cookie_jar.clear()

    response = await client.post(
        f"/status/matches/{match_id}/outcome",
        data={"csrf": csrf, "outcome": "actioned"},
        allow_redirects=False,
    )

    await assert_html_error(response, 403, "log in again")
    assert match_id in open_ids(node_of(client))


async def test_an_outcome_posted_from_the_page_is_counted_as_the_api_counts_it(
    client: Client,
) -> None:
    csrf = await log_in(client)
    match_id = await match(client, 2)
    before = totals(node_of(client), MD5_LIST)

    response = await client.post(
        f"/status/matches/{match_id}/outcome",
        data={"csrf": csrf, "outcome": "false_positive"},
        allow_redirects=False,
    )

    assert response.status == 303
    assert response.headers["Location"] == "/status/#matches"
    assert totals(node_of(client), MD5_LIST) == before | {"false_positive": 1}
    assert match_id not in open_ids(node_of(client))
    html = await (await client.get("/status/")).text()
    assert f"Recorded match {match_id[:8]} as false positive." in html
    assert f'data-match="{match_id}"' not in html


@pytest.mark.parametrize(
    "match_id", ["00000000-0000-4000-8000-000000000000", "not-a-match", "..%2f..%2fetc"]
)
async def test_an_unknown_match_id_is_a_404_page(client: Client, match_id: str) -> None:
    csrf = await log_in(client)
    before = totals(node_of(client), MD5_LIST)

    response = await client.post(
        f"/status/matches/{match_id}/outcome",
        data={"csrf": csrf, "outcome": "actioned"},
        allow_redirects=False,
    )

    await assert_html_error(response, 404, "There is no match")
    assert totals(node_of(client), MD5_LIST) == before


async def test_an_unknown_outcome_is_a_400_page(client: Client) -> None:
    csrf = await log_in(client)
    match_id = await match(client, 1)

    response = await client.post(
        f"/status/matches/{match_id}/outcome", data={"csrf": csrf, "outcome": "deleted"}
    )

    await assert_html_error(response, 400, "An outcome is one of")
    assert match_id in open_ids(node_of(client))


async def test_a_second_different_outcome_is_the_apis_conflict_shown_as_a_page(
    client: Client,
) -> None:
    csrf = await log_in(client)
    match_id = await match(client, 3)
    api = await client.post(
        f"/v1/matches/{match_id}/outcome", json={"outcome": "blocked"}, headers=api_headers(client)
    )
    assert api.status == 200
    before = totals(node_of(client), MD5_LIST)
    api_conflict = await client.post(
        f"/v1/matches/{match_id}/outcome", json={"outcome": "actioned"}, headers=api_headers(client)
    )
    conflict_message = (await api_conflict.json())["error"]["message"]

    response = await client.post(
        f"/status/matches/{match_id}/outcome",
        data={"csrf": csrf, "outcome": "actioned"},
        allow_redirects=False,
    )
    same = await client.post(
        f"/status/matches/{match_id}/outcome",
        data={"csrf": csrf, "outcome": "blocked"},
        allow_redirects=False,
    )

    assert api_conflict.status == 409
    await assert_html_error(response, 409, f"{conflict_message}.")
    assert "already has outcome blocked" in conflict_message
    assert same.status == 303  # the same outcome again is the API's idempotent retry
    assert totals(node_of(client), MD5_LIST) == before
    html = await (await client.get("/status/")).text()
    assert f"Match {match_id[:8]} was already recorded as blocked." in html


# -- HTML errors and headers ------------------------------------------------------------------


async def test_page_errors_are_html_pages_with_their_headers(client: Client) -> None:
    missing = await client.get("/status/nothing-here")
    wrong_method = await client.get("/status/logout")
    bare = await client.get("/status", allow_redirects=False)

    await assert_html_error(missing, 404, "There is no page here.")
    await assert_html_error(wrong_method, 405, "This page does not answer GET.")
    assert wrong_method.headers["Allow"] == "POST"
    assert bare.status == 303
    assert bare.headers["Location"] == "/status/"


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/x-www-form-urlencoded", b"token=" + b"a" * 9000, 413),
        ("application/json", b'{"token": "x"}', 415),
        ("application/x-www-form-urlencoded", b"token=a&token=b", 400),
        ("application/x-www-form-urlencoded", b"token=a&admin=1", 400),
        ("application/x-www-form-urlencoded", b"token=%ff", 400),
    ],
)
async def test_a_malformed_login_form_is_refused_with_a_page(
    client: Client, content_type: str, body: bytes, status: int
) -> None:
    response = await client.post("/status/login", data=body, headers={"Content-Type": content_type})

    await assert_html_error(response, status, "form")
    assert "Set-Cookie" not in response.headers


async def test_every_page_answer_forbids_framing_scripts_and_caching(client: Client) -> None:
    answers = [
        await client.get("/status/login"),
        await client.post("/status/login", data={"token": "wrong"}),
        await client.get("/status/static/node.css"),
        await client.get("/status/static/hashhub.css"),
        await client.get("/status/nothing-here"),
    ]
    await log_in(client)
    answers.append(await client.get("/status/"))

    for response in answers:
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, response.url
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "<script" not in await response.text()
    assert "script-src" not in CONTENT_SECURITY_POLICY  # so default-src 'none' forbids scripts
    assert CONTENT_SECURITY_POLICY.startswith("default-src 'none';")


async def test_the_page_wears_the_hubs_look_from_the_shared_stylesheet(client: Client) -> None:
    """One visual language: the same stylesheet, header, card and button markup as the hub."""
    shared = await client.get("/status/static/hashhub.css")
    assert shared.status == 200
    assert shared.content_type == "text/css"
    assert await shared.read() == stylesheet()
    own = await (await client.get("/status/static/node.css")).text()
    assert "header" not in own
    assert "font:" not in own
    login = await (await client.get("/status/login")).text()
    await log_in(client)
    status = await (await client.get("/status/")).text()
    for html in (login, status):
        links = re.findall(r'<link rel="stylesheet" href="([^"]+)">', html)
        assert links == ["/status/static/hashhub.css", "/status/static/node.css"]
        assert '<header class="site">' in html
        assert '<a class="brand" href="/status/">hashhub <span class="role">node</span>' in html
    assert '<section class="card narrow">' in login
    assert '<form method="post" action="/status/login" class="stacked login">' in login
    assert '<button type="submit" class="secondary small">Log out</button>' in status
    assert status.count('<div class="table-scroll">') == status.count("<table>") >= 1


# -- in the browser ---------------------------------------------------------------------------


def counter(page: Page, list_id: str, name: str) -> Any:
    return page.locator(f'tr[data-list="{list_id}"] td[data-field="{name}"]')


@pytest.mark.slow
async def test_an_operator_records_actioned_in_the_browser_and_the_ack_carries_it(
    browser: Browser, client: Client, hub: HubApp, screenshot: Screenshot
) -> None:
    node = node_of(client)
    token = read_secret(node.home / "api-token")
    match_id = await match(client, 4)
    context = await browser.new_context(
        java_script_enabled=False, viewport={"width": 1400, "height": 900}
    )
    sent: list[RecordedRequest] = []

    def record(request: Request) -> None:
        sent.append(RecordedRequest(request.method, request.url, request.post_data_buffer))

    context.on("request", record)
    try:
        page = await context.new_page()
        await page.goto(str(client.make_url("/status/")))
        await expect(page).to_have_url(re.compile(r"/status/login$"))
        login_button = page.get_by_role("button", name="Log in")
        # Styled as the hub's buttons (the shared stylesheet), not the browser's default.
        assert await login_button.evaluate("e => getComputedStyle(e).backgroundColor") == (
            "rgb(31, 95, 168)"
        )
        assert await page.locator("header.site").evaluate(
            "e => getComputedStyle(e).backgroundColor"
        ) == ("rgb(255, 255, 255)")
        await screenshot(page, "node-login")
        await page.get_by_label("The node's API token").fill(token)
        await page.get_by_role("button", name="Log in").click()

        await expect(page.get_by_role("heading", name="Status", exact=True)).to_be_visible()
        await expect(page.locator(f'tr[data-list="{PDQ_LIST}"]')).to_contain_text("pdq")
        await expect(counter(page, MD5_LIST, "matched")).to_have_text("1")
        await expect(counter(page, MD5_LIST, "actioned")).to_have_text("0")
        row = page.locator(f'tr[data-match="{match_id}"]')
        await expect(row).to_contain_text(MD5_LIST)
        await expect(page.locator('[data-field="acks_pending"]')).to_have_text("2")
        await screenshot(page, "node-status-pending")
        (cookie,) = await context.cookies()
        assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (
            SESSION_COOKIE,
            True,
            "Strict",
        )

        await row.get_by_role("button", name="actioned").click()

        await expect(page.get_by_role("status")).to_have_text(
            f"Recorded match {match_id[:8]} as actioned."
        )
        await expect(counter(page, MD5_LIST, "actioned")).to_have_text("1")
        await expect(page.locator(f'tr[data-match="{match_id}"]')).to_have_count(0)
        await expect(page.locator('[data-field="matches_awaiting_outcome"]')).to_have_text("0")
        await screenshot(page, "node-status-recorded")

        node.acks.enqueue([MD5_LIST])
        confirmed, failed = await flush_acks(node, client.app[SESSION])
        assert (confirmed, failed) == (3, 0)
        await page.reload()
        await expect(page.locator('[data-field="acks_pending"]')).to_have_text("0")
    finally:
        await context.close()

    assert hub.status(MD5_LIST).totals["actioned"] == 1
    assert hub.status(MD5_LIST).totals["matched"] == 1
    posts = [r for r in sent if r.method == "POST"]
    assert [urlsplit(r.url).path for r in posts] == [
        "/status/login",
        f"/status/matches/{match_id}/outcome",
    ]
    outcome_body = posts[1].body or b""
    assert outcome_body.startswith(b"csrf=")
    assert outcome_body.endswith(b"&outcome=actioned")
    assert token.encode() not in outcome_body
    assert all(token not in r.url for r in sent)


@pytest.mark.slow
async def test_a_hub_that_stopped_re_signing_raises_the_stale_alarm_on_the_page(
    page: Page, client: Client, hub: HubApp, screenshot: Screenshot
) -> None:
    node = node_of(client)
    await page.goto(str(client.make_url("/status/login")))
    await page.get_by_label("The node's API token").fill(read_secret(node.home / "api-token"))
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator(f'tr[data-list="{MD5_LIST}"] .badge')).to_have_text("fresh")
    await expect(page.locator("#stale-alarm")).to_have_count(0)
    root = node.newest_root()
    assert root is not None

    hub.clock.advance(root.policy.max_checkpoint_age + 3600)
    outcomes = await run_sync(node, client.app[SESSION])

    assert {o.status for o in outcomes} <= {"rejected", "failed"}, outcomes
    await page.reload()
    alarm = page.locator("#stale-alarm")
    await expect(alarm).to_be_visible()
    for list_id in (MD5_LIST, PDQ_LIST):
        await expect(alarm).to_contain_text(f"{list_id}: the newest verified checkpoint is")
        await expect(page.locator(f'tr[data-list="{list_id}"] .badge')).to_have_text("STALE")
    await expect(alarm).to_contain_text("still enforcing version 1")
    await expect(alarm).to_contain_text("Last error:")
    for token in await page.evaluate(TOKENS_ON_ONE_LINE):  # digests, dates: whole
        assert token["lines"] == 1, token
        assert not token["clipped"], token
    for table in await page.evaluate(TABLE_SCROLLERS):
        assert table["scroller"], table
        assert table["overflow"] == "auto", table
    # The hub's alarm colour (the shared stylesheet's --bad): one visual language.
    assert await alarm.evaluate("e => getComputedStyle(e).borderTopColor") == "rgb(185, 28, 28)"
    await screenshot(page, "node-status-stale")
    assert node.status()["stale"] is True
    assert csrf_of(await page.content())  # still logged in: the trust clock moved, not the session


# -- the session rules, on a clock of their own -----------------------------------------------


class Ticks:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_session_ends_when_idle_or_too_old_however_busy() -> None:
    ticks = Ticks()
    store = SessionStore(clock=ticks, idle=60, lifetime=300)
    idle_id, _ = store.open()
    busy_id, busy = store.open()

    for _ in range(5):
        ticks.t += 59
        assert store.get(busy_id) is busy
    ticks.t += 59

    assert store.get(idle_id) is None
    assert store.get(busy_id) is None  # 354 s after the login, though never idle 60 s
    assert len(store) == 0


def test_only_the_newest_sessions_are_kept_and_a_cookie_is_not_its_key() -> None:
    store = SessionStore(capacity=2)
    first, _ = store.open()
    second, kept = store.open()
    third, _ = store.open()

    assert store.get(first) is None
    assert store.get(second) is kept
    assert store.get(third) is not None
    assert first not in repr(store._sessions)  # only the SHA-256 of a cookie is held
    assert store.get("x" * 1000) is None


def test_the_throttle_counts_per_address_and_forgets_after_its_window() -> None:
    ticks = Ticks()
    throttle = LoginThrottle(failures=3, window=60, clock=ticks)
    for _ in range(3):
        throttle.failed("192.0.2.1")

    assert throttle.retry_after("192.0.2.1") == 60
    ticks.t += 59.5
    assert throttle.retry_after("192.0.2.1") == 1
    assert throttle.retry_after("192.0.2.2") == 0
    ticks.t += 0.5
    assert throttle.retry_after("192.0.2.1") == 0
