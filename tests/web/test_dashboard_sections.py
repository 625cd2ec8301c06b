"""The dashboard in sections: one address each, a navigation bar, and what each shows.

The dashboard was one page of several thousand pixels. Now ``/dashboard`` is an
overview with a tile per section and each section has its own address. These
tests run the real hub app on loopback with acks from a real (test) node, a
waiting case and a staged change, and read the pages' HTML: the navigation, the
tiles, the log's readable detail, and the markup that keeps hashes, key ids and
dates whole. The browser test at the end checks the same in Chromium: no token
is laid out on two lines, however narrow the window, and the tables scroll.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page, expect

from edge.web import stylesheet
from hub.app import create_app
from hub.core import Hub
from hub.intake import Intake
from hub.services.entries import EntryDraft
from hub.web.pages import SECTIONS, detail_pairs
from protocol import Counts, SigningKey
from tests.hub.conftest import Follower, ack_headers
from tests.web.conftest import Screenshot
from tests.web.hub_support import (
    MD5_LIST,
    PLACEHOLDER_MD5,
    Client,
    OperatorSession,
    case_number,
    init_web_hub,
    operator_token,
)
from tests.web.layout_support import TABLE_SCROLLERS, TOKENS_ON_ONE_LINE

PDQ_HEX = "f" * 32 + "0" * 32
ENTRIES_LIST = "ncii-md5"
MD5_HEX = "0123456789abcdef" * 2
SECTION_PATHS = [f"/dashboard/{name}" for name, _ in SECTIONS]
DETAIL = {
    "lists": ["tid-md5", "tid-pdq"],
    "note": "<script>alert(1)</script>",
    "counts": {"adds": 2, "removes": 0},
    "forced": True,
    "key_id": "ab" * 32,
}


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "hub"
    init_web_hub(path)
    return path


@pytest.fixture
def home(tmp_path: Path, initialised: Path) -> Path:
    return Path(shutil.copytree(initialised, tmp_path / "hub"))


@pytest.fixture
async def client(home: Path) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as c:
        yield c


async def populate(client: Client, home: Path) -> str:
    """A waiting case, a staged change, two nodes (one acked, one silent), an entry
    waiting for its list's first publish and a log line.

    Returns the case number as the page groups it.
    """
    answer = await client.post("/submit", data={"type": "pdq", "hash": PDQ_HEX, "quality": "90"})
    shown = case_number(await answer.text())
    key = SigningKey.generate()
    hub = Hub.open(home)
    try:
        hub.lists.stage(MD5_LIST, adds=[Intake(bytes.fromhex(MD5_HEX))])
        token = hub.access.enrol_node("platform-a", key.public, [MD5_LIST])
        hub.access.enrol_node("platform-quiet", SigningKey.generate().public, [MD5_LIST])
        hub.roots.create_list(ENTRIES_LIST, "md5", label="ncii", list_format="entries")
        hub.entries.add(
            EntryDraft(((ENTRIES_LIST, "ab" * 16),), "ncii", "confirmed", "import:batch-1")
        )
        pinned = hub.keys.root_sha256(1)
    finally:
        hub.close()
    follower = Follower(client, pinned, token)
    await follower.update(MD5_LIST)
    for seq, actioned in enumerate([1, 3], start=1):
        data, sig = await follower.ack(
            key,
            MD5_LIST,
            seq,
            counts=Counts(
                checked=10,
                matched=5,
                actioned=actioned,
                hashes={PLACEHOLDER_MD5.hex(): {"matched": 5, "actioned": actioned}},
            ),
        )
        response = await client.post("/v1/acks", data=data, headers=ack_headers(token, sig))
        assert response.status == 200, await response.text()
    conn = sqlite3.connect(home / "hub.db")
    with conn:
        conn.execute(
            "INSERT INTO actions (at, who, action, detail) VALUES (?, ?, ?, ?)",
            ["2030-01-02T03:04:05Z", "cli:root", "test.detail", json.dumps(DETAIL)],
        )
    conn.close()
    return shown


def nav_links(page: str) -> list[tuple[str, bool]]:
    """The sections bar: each link's address and whether it is marked as the current page."""
    bar = re.search(r'<nav class="sections"[^>]*>(.*?)</nav>', page, re.S)
    assert bar is not None, "the page has no sections bar"
    return [
        (href, bool(current))
        for href, current in re.findall(
            r'<a href="([^"]+)"[^>]*?( aria-current="page")?>', bar.group(1)
        )
    ]


async def test_the_overview_and_every_section_have_an_address_and_the_same_bar(
    client: Client, home: Path
) -> None:
    shown = await populate(client, home)
    await OperatorSession.login(client, operator_token(home, "viewer"))
    every = ["/dashboard", *SECTION_PATHS]
    assert SECTION_PATHS == [
        "/dashboard/lists",
        "/dashboard/entries",
        "/dashboard/review",
        "/dashboard/nodes",
        "/dashboard/counts",
        "/dashboard/keys",
        "/dashboard/log",
    ]
    for path in every:
        response = await client.get(path)
        page = await response.text()
        assert response.status == 200, page
        assert nav_links(page) == [(p, p == path) for p in every], path
        assert "hub.test" in page  # the hub's name heads every section
        assert 'action="/logout"' in page
    overview = await (await client.get("/dashboard")).text()
    tiles = re.findall(r'<a class="tile" href="([^"]+)" id="tile-([a-z]+)">', overview)
    assert tiles == [(f"/dashboard/{name}", name) for name, _ in SECTIONS]
    assert shown not in overview  # the overview summarises; the review section lists
    review_tile = overview[overview.index('id="tile-review"') : overview.index('id="tile-nodes"')]
    assert '<p class="figure alert">1</p>' in review_tile
    assert "submitted case waiting for a decision." in review_tile
    assert '<span class="count">1</span>' in overview  # the bar counts the waiting case
    keys_tile = overview[overview.index('id="tile-keys"') : overview.index('id="tile-log"')]
    assert re.search(r'<p class="figure">[1-9][0-9]*</p>', keys_tile)
    log_tile = overview[overview.index('id="tile-log"') :]
    assert '<p class="figure token">web.login</p>' in log_tile  # the newest action
    assert "by test-viewer" in log_tile
    assert len(overview) < 0.5 * sum(
        [len(await (await client.get(path)).text()) for path in SECTION_PATHS]
    )


async def test_each_section_shows_its_own_content_only(client: Client, home: Path) -> None:
    shown = await populate(client, home)
    await OperatorSession.login(client, operator_token(home, "admin"))
    expected = {
        "lists": [f'<tr id="list-{MD5_LIST}">', 'id="staged"', 'action="/dashboard/publish"'],
        "review": [
            f'<span class="token case">{shown}</span>',
            f'<span class="token hash sub">{PDQ_HEX}</span>',
        ],
        "entries": ['id="entries-lists"', 'id="entry-filter"'],
        "nodes": ['<tbody class="node" id="node-platform-a">', 'id="node-platform-quiet"'],
        "counts": ['id="takedowns"', '<svg class="chart"', 'id="hashes"'],
        "keys": ['<td class="token keyid">', "<th>Key id</th>"],
        "log": ["test.detail", "<th>Detail</th>"],
    }
    pages = {name: await (await client.get(f"/dashboard/{name}")).text() for name, _ in SECTIONS}
    for name, markers in expected.items():
        for marker in markers:
            assert marker in pages[name], (name, marker)
            for other, page in pages.items():
                if other != name and marker not in ('id="staged"',):
                    assert marker not in page, (marker, "also on", other)


async def test_an_unknown_section_is_not_found(client: Client, home: Path) -> None:
    await OperatorSession.login(client, operator_token(home, "viewer"))
    response = await client.get("/dashboard/everything")
    assert response.status == 404


async def test_the_log_detail_reads_as_pairs_with_everything_escaped(
    client: Client, home: Path
) -> None:
    await populate(client, home)
    await OperatorSession.login(client, operator_token(home, "auditor"))
    page = await (await client.get("/dashboard/log")).text()
    row = re.search(r"<tr><td class=\"token\">2030-01-02T03:04:05Z</td>(.*?)</tr>", page, re.S)
    assert row is not None
    detail = row.group(1)
    assert '<span class="key">lists:</span> <span class="value">tid-md5, tid-pdq</span>' in detail
    assert '<span class="key">counts:</span> <span class="value">adds=2, removes=0</span>' in detail
    assert '<span class="key">forced:</span> <span class="value token">yes</span>' in detail
    assert (
        f'<span class="key">key id:</span> <span class="value token">{"ab" * 32}</span>' in detail
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    assert "<script>alert" not in page
    assert "{" not in detail
    assert "&#34;" not in detail
    assert '"lists"' not in detail


def test_detail_pairs_turns_any_detail_into_lines() -> None:
    assert detail_pairs({}) == []
    assert detail_pairs({"role": "viewer", "subject": "the dashboard"}) == [
        ("role", "viewer", True),
        ("subject", "the dashboard", False),
    ]
    assert detail_pairs({"rows": [], "who": None, "nested": {"a": [1, 2]}}) == [
        ("rows", "none", True),
        ("who", "—", True),
        ("nested", "a=1, 2", False),
    ]
    assert detail_pairs(["x", "y"]) == [("", "x, y", False)]


async def test_hashes_key_ids_and_dates_are_whole_tokens_in_scrolling_tables(
    client: Client, home: Path
) -> None:
    shown = await populate(client, home)
    await OperatorSession.login(client, operator_token(home, "admin"))
    for path in SECTION_PATHS:
        page = await (await client.get(path)).text()
        assert "…" not in page, path  # nothing is cut short
        assert "overflow-wrap" not in page
        # Every table sits in a container that scrolls sideways.
        assert page.count("<table>") >= 1, path
        assert page.count("<table>") == page.count('<div class="table-scroll">\n  <table>'), path
    review = await (await client.get("/dashboard/review")).text()
    assert f'<span class="token case">{shown}</span>' in review
    assert re.search(r'<td class="token">\d{4}-\d{2}-\d{2}</td>', review)  # the day received
    keys = await (await client.get("/dashboard/keys")).text()
    keyids = re.findall(r'<td class="token keyid">([0-9a-f]+)</td>', keys)
    assert keyids
    assert all(len(k) == 64 for k in keyids)
    assert re.search(r'<td class="token">\d{4}-\d{2}-\d{2}T[\d:]+Z</td>', keys)
    lists = await (await client.get("/dashboard/lists")).text()
    assert f'<span class="token hash">{MD5_HEX}</span>' in lists  # the staged hash, whole
    counts = await (await client.get("/dashboard/counts")).text()
    assert f'<td class="token hash">{PLACEHOLDER_MD5.hex()}</td>' in counts
    nodes = await (await client.get("/dashboard/nodes")).text()
    assert re.search(r'<td class="token last-ack">\d{4}-\d{2}-\d{2}T[\d:]+Z</td>', nodes)
    css = await (await client.get("/static/hashhub.css")).text()
    assert ".token { font-family: var(--mono); font-size: .9em; white-space: nowrap; }" in css
    assert ".table-scroll { overflow-x: auto;" in css


async def test_the_hub_serves_the_stylesheet_it_shares_with_the_node(client: Client) -> None:
    response = await client.get("/static/hashhub.css")
    assert response.status == 200
    assert response.content_type == "text/css"
    assert await response.read() == stylesheet()
    assert response.headers["Cache-Control"] == "no-store"
    login = await (await client.get("/login")).text()
    links = re.findall(r'<link rel="stylesheet" href="([^"]+)">', login)
    assert links == ["/static/hashhub.css", "/static/hub.css"]


# -- in the browser ---------------------------------------------------------------------------


@pytest.mark.slow
async def test_in_chromium_no_token_breaks_and_wide_tables_scroll(
    home: Path, page: Page, screenshot: Screenshot
) -> None:
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as c:
        await populate(c, home)
        url = str(c.make_url("")).rstrip("/")
        await page.set_viewport_size({"width": 720, "height": 900})  # a narrow window
        await page.goto(f"{url}/login")
        await page.fill("#token", operator_token(home, "admin", "ops"))
        await page.click("#login")
        await expect(page).to_have_url(f"{url}/dashboard")
        await expect(page.locator("#tile-review .figure")).to_have_text("1")
        wide = 0
        for name, label in SECTIONS:
            await (
                page.get_by_role("navigation", name="Dashboard sections")
                .get_by_role("link", name=label)
                .click()
            )
            await expect(page).to_have_url(f"{url}/dashboard/{name}")
            current = page.locator('nav.sections a[aria-current="page"]')
            await expect(current).to_have_count(1)
            await expect(current).to_contain_text(label)
            tokens = await page.evaluate(TOKENS_ON_ONE_LINE)
            assert tokens, name
            for token in tokens:
                assert token["lines"] == 1, (name, token)
                assert not token["clipped"], (name, token)
            for table in await page.evaluate(TABLE_SCROLLERS):
                assert table["scroller"], (name, table)
                assert table["overflow"] == "auto", (name, table)
                assert table["reachable"], (name, table)
                wide += table["wider"]
            await screenshot(page, f"hub-dashboard-{name}-narrow")
        assert wide >= 3  # at this width the hash and key tables do scroll

        await page.set_viewport_size({"width": 1280, "height": 900})
        await page.goto(f"{url}/dashboard/log")
        row = page.locator("tr", has_text="test.detail")
        await expect(row.locator("ul.detail li")).to_have_count(len(DETAIL))
        await expect(row).to_contain_text("note: <script>alert(1)</script>")
        await expect(row).to_contain_text("lists: tid-md5, tid-pdq")
        await page.goto(f"{url}/dashboard")
        await screenshot(page, "hub-dashboard-overview")
