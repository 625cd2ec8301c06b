"""The dashboard's entries section: each entry's metadata, state and what platforms say.

A real hub app on loopback with a real SQLite file holds one collection of two
``entries`` lists (MD5 and PDQ); platforms' nodes, enrolled with real keys, send
signed acks whose opinions confirm or dispute entries. The tests read the section's
HTML as an operator's browser gets it, and count the SQL statements the section
costs with SQLite's trace callback.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp_jinja2
import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page, expect

from hub.app import create_app
from hub.core import Hub
from hub.services.access import Principal
from hub.services.entries import EntryDraft
from hub.services.sessions import WebSession
from hub.web.pages import ENTRY_ROWS, SECTIONS, dashboard_view
from protocol import Opinion, format_time
from tests.hub.conftest import Client, init_hub, opened
from tests.hub.test_entry_opinions import ENTRIES, enrol, post, signed_ack
from tests.web.conftest import Screenshot
from tests.web.hub_support import OperatorSession, operator_token
from tests.web.layout_support import TOKENS_ON_ONE_LINE

SIBLING = "ncii-pdq"
COLLECTION = '<em>ncii</em> & "friends"'
"""The collection's label: free text, the one value here no vocabulary restricts."""


def add_entries(hub: Hub, start: int, count: int, category: str = "ncii") -> list[str]:
    """``count`` entries of the collection, each with an MD5 and a PDQ hash."""
    drafts = [
        EntryDraft(
            ((ENTRIES, f"{n:032x}"), (SIBLING, f"{n:016x}" + "f" * 16 + "0" * 32)),
            category=category,
            classification="confirmed",
            source="import:batch-1",
            expires="2099-01-01T00:00:00Z",
        )
        for n in range(start, start + count)
    ]
    return [view.entry for view in hub.entries.add_many(drafts)]


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub whose collection holds three published entries: two ncii, one csam."""
    home = tmp_path_factory.mktemp("template") / "hub"
    init_hub(home)
    with opened(home) as hub:
        hub.roots.create_list(ENTRIES, "md5", label=COLLECTION, list_format="entries")
        hub.roots.create_list(SIBLING, "pdq", label=COLLECTION, list_format="entries")
        add_entries(hub, 1, 2)
        add_entries(hub, 3, 1, category="csam")
        hub.publishing.publish([ENTRIES, SIBLING])
    return home


@pytest.fixture
def home(tmp_path: Path, initialised: Path) -> Path:
    return Path(shutil.copytree(initialised, tmp_path / "hub"))


@pytest.fixture
async def client(home: Path) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as c:
        yield c


def newest_first(home: Path) -> list[str]:
    with opened(home) as hub:
        return [view.entry for view in hub.entries.newest().entries]


async def two_platforms_speak(client: Client, home: Path, entry: str) -> None:
    """platform-a blocks ``entry``; platform-b, through the second of its two nodes,
    disputes it as benign, after its first node confirmed it."""
    key_a, token_a = enrol(home, "node-a", "platform-a")
    key_b1, token_b1 = enrol(home, "node-b-1", "platform-b")
    key_b2, token_b2 = enrol(home, "node-b-2", "platform-b")
    said = [
        (key_a, "node-a", token_a, 1, Opinion("confirmed", "blocked")),
        (key_b1, "node-b-1", token_b1, 2, Opinion("confirmed", "actioned")),
        (key_b2, "node-b-2", token_b2, 3, Opinion("disputed", "benign")),
    ]
    for key, node_id, token, seq, opinion in said:
        status, answer = await post(
            client, token, *signed_ack(home, key, node_id, ENTRIES, seq, {entry: opinion})
        )
        assert status == 200, answer


def row_of(page: str, entry: str) -> str:
    found = re.search(rf'<tr id="entry-{entry}"[^>]*>(.*?)</tr>', page, re.S)
    assert found is not None, f"no row for {entry}"
    return found.group(1)


def cell(page: str, entry: str, name: str) -> str:
    """The text of one cell of an entry's row (``<td class="name">``)."""
    found = re.search(rf'<td class="{name}">(.*?)</td>', row_of(page, entry), re.S)
    assert found is not None, f"no {name} cell for {entry}"
    return text_of(found.group(1))


def text_of(html: str) -> str:
    """What a person reads: tags dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def shown_entries(page: str) -> list[str]:
    return re.findall(r'<tr id="entry-([a-z0-9-]+)"', page)


async def test_an_entry_shows_its_metadata_lists_and_each_platforms_position(
    client: Client, home: Path
) -> None:
    newest, middle, oldest = newest_first(home)
    await two_platforms_speak(client, home, middle)
    await OperatorSession.login(client, operator_token(home, "viewer"))

    response = await client.get("/dashboard/entries")
    page = await response.text()
    assert response.status == 200, page
    assert shown_entries(page) == [newest, middle, oldest]
    row = text_of(row_of(page, middle))
    assert row.startswith(f"{middle} ")
    for shown in ("ncii", "confirmed", "import:batch-1", "2099-01-01T00:00:00Z", "listed"):
        assert shown in row, shown
    assert "expired" not in row
    assert f"{ENTRIES} md5" in row
    assert f"{SIBLING} pdq" in row
    # Each platform once, by its newest position: platform-b's later dispute replaces
    # its own earlier confirmation.
    assert "1 confirmed (blocked) · 1 disputed (benign)" in row
    assert "platform-a : confirmed (blocked)" in row
    assert "platform-b : disputed (benign)" in row
    assert "disputed" not in text_of(row_of(page, newest))
    assert '<td class="dispute"></td>' in row_of(page, middle)  # no dispute state given
    assert cell(page, middle, "state") == "listed"
    assert cell(page, middle, "category") == "ncii"
    assert cell(page, middle, "classification") == "confirmed"
    assert cell(page, middle, "said").startswith("1 confirmed (blocked) · 1 disputed (benign) ")
    lists = re.search(r'<section class="card" id="entries-lists">(.*?)</section>', page, re.S)
    assert lists is not None
    assert text_of(lists.group(1)).count("3 1") == 2  # three entries, version 1, in each list
    overview = await (await client.get("/dashboard")).text()
    tile = re.search(r'id="tile-entries">(.*?)</a>', overview, re.S)
    assert tile is not None
    assert '<p class="figure alert">1</p>' in tile.group(1)  # one entry disputed


async def test_the_state_says_pending_and_retracted_with_its_reason(
    client: Client, home: Path
) -> None:
    newest, middle, oldest = newest_first(home)
    with opened(home) as hub:
        hub.entries.change(middle, classification="severe")
        hub.entries.withdraw(oldest, "test")
        [fresh] = add_entries(hub, 9, 1)
    await OperatorSession.login(client, operator_token(home, "viewer"))
    page = await (await client.get("/dashboard/entries")).text()
    assert shown_entries(page) == [fresh, newest, middle, oldest]
    assert cell(page, newest, "state") == "listed"
    assert cell(page, middle, "classification") == "severe"
    assert cell(page, middle, "state") == "pending change"
    assert cell(page, fresh, "state") == "pending change"
    assert cell(page, oldest, "state") == "retracted (withdrawn), leaves at the next publish"
    with opened(home) as hub:
        hub.publishing.publish([ENTRIES, SIBLING])
    page = await (await client.get("/dashboard/entries")).text()
    assert cell(page, oldest, "state") == "retracted (withdrawn)"
    assert cell(page, middle, "state") == "listed"


async def test_an_entry_past_its_expiry_says_expired(home: Path) -> None:
    newest, middle, oldest = newest_first(home)
    with opened(home) as hub:
        soon = hub.now() + timedelta(hours=1)
        hub.entries.change(newest, expires=format_time(soon))
    later = soon + timedelta(hours=1)
    app = create_app(home, now=lambda: later, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        await OperatorSession.login(c, operator_token(home, "viewer"))
        page = await (await c.get("/dashboard/entries")).text()
    assert cell(page, newest, "dates").endswith(f" until {format_time(soon)} expired")
    for other in (middle, oldest):
        assert cell(page, other, "dates").endswith(" until 2099-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("dispute", "shown"),
    [
        (None, ""),
        ("open", "open"),
        ({"state": "dismissed"}, "dismissed"),
        ("<i>x</i>", "&lt;i&gt;x&lt;/i&gt;"),
    ],
)
def test_the_dispute_column_shows_a_dispute_only_when_the_view_has_one(
    home: Path, dispute: object, shown: str
) -> None:
    app = create_app(home, schedule=False)
    with opened(home) as hub:
        view = dashboard_view(hub, "entries", {})
        row = view["entries"][0]
        if dispute is not None:
            row["dispute"] = dispute
        session = WebSession(Principal("operator", "viewer", "test-viewer"), "csrf", hub.now())
    page = (
        aiohttp_jinja2.get_env(app)
        .get_template("dashboard/entries.html")
        .render(
            **view,
            section="entries",
            sections=SECTIONS,
            session=session,
            can_write=False,
            is_admin=False,
            notice=None,
        )
    )
    assert f'<td class="dispute">{shown}</td>' in row_of(page, row["entry"])


async def test_a_dispute_opened_by_two_platforms_shows_until_an_operator_dismisses_it(
    client: Client, home: Path
) -> None:
    """The column shows the hub's own dispute record: ``open`` once two platforms (the
    default threshold) dispute the entry and a publish opens it, then who dismissed it."""
    _, middle, _ = newest_first(home)
    for seq, (node_id, platform) in enumerate(
        (("node-x", "platform-x"), ("node-y", "platform-y")), start=1
    ):
        key, token = enrol(home, node_id, platform)
        status, answer = await post(
            client,
            token,
            *signed_ack(home, key, node_id, ENTRIES, seq, {middle: Opinion("disputed", "other")}),
        )
        assert status == 200, answer
    await OperatorSession.login(client, operator_token(home, "viewer"))
    before = await (await client.get("/dashboard/entries")).text()
    assert cell(before, middle, "dispute") == ""  # opened by the next publish, not before
    with opened(home) as hub:
        add_entries(hub, 100, 1)  # a change to publish: a version, and its summary
        hub.publishing.publish()
    page = await (await client.get("/dashboard/entries")).text()
    assert cell(page, middle, "dispute") == "open"
    with opened(home) as hub:
        hub.disputes.decide(middle, "dismiss", who="cli:alice")
    page = await (await client.get("/dashboard/entries")).text()
    assert cell(page, middle, "dispute") == "dismissed by cli-alice"


async def test_the_filter_narrows_by_category_and_by_dispute(client: Client, home: Path) -> None:
    newest, middle, oldest = newest_first(home)
    await two_platforms_speak(client, home, middle)
    await OperatorSession.login(client, operator_token(home, "viewer"))

    by_category = await (await client.get("/dashboard/entries?category=csam")).text()
    assert shown_entries(by_category) == [newest]
    assert '<option value="csam" selected>' in by_category
    disputed = await (await client.get("/dashboard/entries?disputed=1")).text()
    assert shown_entries(disputed) == [middle]
    assert 'name="disputed" value="1" checked' in disputed
    both = await (await client.get("/dashboard/entries?category=csam&disputed=1")).text()
    assert shown_entries(both) == []
    assert "No entries pass this filter." in both
    ncii = await (await client.get("/dashboard/entries?category=ncii&disputed=")).text()
    assert shown_entries(ncii) == [middle, oldest]
    assert oldest in ncii


@pytest.mark.parametrize(
    "query",
    ["category=nope", "category=%3Cb%3E", "disputed=yes", "disputed=0", "category=NCII"],
)
async def test_a_bad_filter_is_the_400_page(client: Client, home: Path, query: str) -> None:
    await OperatorSession.login(client, operator_token(home, "viewer"))
    response = await client.get(f"/dashboard/entries?{query}")
    page = await response.text()
    assert response.status == 400, page
    assert response.content_type == "text/html"
    assert "<b>" not in page
    assert shown_entries(page) == []


async def test_anyone_not_logged_in_is_sent_to_the_login(client: Client) -> None:
    response = await client.get("/dashboard/entries", allow_redirects=False)
    assert response.status in (302, 303)
    assert response.headers["Location"] == "/login"


async def test_the_nav_links_to_the_section(client: Client, home: Path) -> None:
    await OperatorSession.login(client, operator_token(home, "auditor"))
    page = await (await client.get("/dashboard/log")).text()
    assert '<a href="/dashboard/entries" id="nav-entries">Entries</a>' in page
    page = await (await client.get("/dashboard/entries")).text()
    assert 'id="nav-entries" aria-current="page">Entries</a>' in page


async def test_free_text_is_escaped(client: Client, home: Path) -> None:
    await OperatorSession.login(client, operator_token(home, "viewer"))
    page = await (await client.get("/dashboard/entries")).text()
    assert "<em>ncii</em>" not in page
    assert "&lt;em&gt;ncii&lt;/em&gt; &amp; &#34;friends&#34;" in page


async def test_more_entries_than_a_page_say_how_many_are_left_off(home: Path) -> None:
    with opened(home) as hub:
        add_entries(hub, 100, ENTRY_ROWS)
        view = dashboard_view(hub, "entries", {})
    assert len(view["entries"]) == ENTRY_ROWS
    assert (view["entries_total"], view["entries_more"]) == (ENTRY_ROWS + 3, 3)
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as c:
        await OperatorSession.login(c, operator_token(home, "viewer"))
        page = await (await c.get("/dashboard/entries")).text()
    assert f"Entries {ENTRY_ROWS} of {ENTRY_ROWS + 3}, newest first" in text_of(page)
    assert "3 more not shown" in page


def statements(hub: Hub) -> list[str]:
    """The SQL statements the entries section costs."""
    said: list[str] = []
    hub.db.conn.set_trace_callback(said.append)
    try:
        dashboard_view(hub, "entries", {})
    finally:
        hub.db.conn.set_trace_callback(None)
    return said


async def test_the_section_costs_the_same_statements_for_10_or_500_entries(
    client: Client, home: Path
) -> None:
    await two_platforms_speak(client, home, newest_first(home)[0])
    with opened(home) as hub:
        add_entries(hub, 1000, 7)
        statements(hub)  # the first read of each list's state fills a cache
        few = statements(hub)
        for start in range(2000, 2490, 98):
            add_entries(hub, start, 98)
        assert hub.entries.newest(limit=0).total == 500
        many = statements(hub)
    assert len(many) == len(few)
    # The entries and what platforms say of them: four queries for 10 or 500.
    reads = [sql for sql in many if re.search(r"\bentry_(items|hashes|opinions)\b", sql)]
    assert len(reads) == 4, reads


@pytest.mark.slow
async def test_in_chromium_the_filter_form_narrows_and_tokens_stay_whole(
    home: Path, page: Page, screenshot: Screenshot
) -> None:
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as c:
        _, middle, _ = newest_first(home)
        await two_platforms_speak(c, home, middle)
        url = str(c.make_url("")).rstrip("/")
        await page.set_viewport_size({"width": 1280, "height": 900})
        await page.goto(f"{url}/login")
        await page.fill("#token", operator_token(home, "viewer"))
        await page.click("#login")
        await expect(page.locator("#tile-entries .figure")).to_have_text("1")  # one disputed
        await (
            page.get_by_role("navigation", name="Dashboard sections")
            .get_by_role("link", name="Entries")
            .click()
        )
        await expect(page).to_have_url(f"{url}/dashboard/entries")
        await expect(page.locator("tr.entry")).to_have_count(3)
        await screenshot(page, "hub-dashboard-entries")
        await page.get_by_label("disputed by a platform").check()
        await page.get_by_role("button", name="Filter").click()
        await expect(page).to_have_url(f"{url}/dashboard/entries?category=&disputed=1")
        await expect(page.locator("tr.entry")).to_have_count(1)
        await expect(page.locator(f"#entry-{middle} td.said")).to_contain_text(
            "1 confirmed (blocked) · 1 disputed (benign)"
        )
        for token in await page.evaluate(TOKENS_ON_ONE_LINE):
            assert token["lines"] == 1, token
