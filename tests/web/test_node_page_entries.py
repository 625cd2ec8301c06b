"""The node's status page for a list of entries, read from its HTML.

The hub is the loopback entries hub of ``tests.node.test_entries`` (real keys, a
root with a vocabulary), the node real and served on loopback; the operator logs
in with the API token as on any status page.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.node.entries_hub import EntriesHub, record
from tests.node.fixtures_sync import Clock
from tests.node.test_entries import LIST, api_client, make_node, match, synced
from tests.web.node_support import log_in


@pytest.fixture
async def hub() -> AsyncIterator[EntriesHub]:
    published = await EntriesHub(Clock()).start()
    try:
        yield published
    finally:
        await published.close()


def field(html: str, name: str, around: str = "") -> str:
    """The text of the one element marked ``data-field="name"`` (within ``around``)."""
    scope = around or html
    found = re.findall(rf'data-field="{name}"[^>]*>(.*?)</', scope, re.S)
    assert len(found) == 1, (name, found)
    return str(found[0]).strip()


def detail_of(html: str, list_id: str) -> str:
    start = html.index(f'data-list-detail="{list_id}"')
    return html[start : html.index("</tr>", start)]


def match_row(html: str, match_id: str) -> str:
    start = html.index(f'data-match="{match_id}"')
    return html[start : html.index("</tr>", start)]


async def test_an_entries_list_shows_its_entries_and_what_expires_within_a_day(
    hub: EntriesHub, tmp_path: Path
) -> None:
    t = hub.clock()
    hour = timedelta(hours=1)
    hub.publish(
        LIST,
        adds=[
            record("soon", t, expires=t + 2 * hour, category="extremism"),
            record("today", t, expires=t + 24 * hour),
            record("tomorrow", t, expires=t + 25 * hour),
            record("kept", t, classification="reported"),
        ],
    )
    home = tmp_path / "node"
    make_node(home, hub).close()
    async with api_client(home, hub) as (client, app):
        assert [o.status for o in await synced(app)] == ["updated"]
        (found,) = await match(client, home, "soon")
        await log_in(client)
        page = await client.get("/status/")
        assert page.status == 200
        html = await page.text()

        detail = detail_of(html, LIST)
        assert "holds entries" in field(html, "entries", detail)
        assert field(html, "entry_count", detail) == "4"
        assert field(html, "expiring", detail) == "2"  # 2 h and exactly 24 h, not 25 h

        row = match_row(html, found["match_id"])
        assert field(html, "entry_id", row) == "e-soon"
        assert field(html, "category", row) == "extremism"
        assert field(html, "classification", row) == "confirmed"

        # Three hours on, the entry of 2 h has expired and the one of 25 h is within the day;
        # a day after that, none is left to expire.
        hub.clock.advance(timedelta(hours=3).total_seconds())
        html = await (await client.get("/status/")).text()
        assert field(html, "expiring", detail_of(html, LIST)) == "2"
        hub.clock.advance(timedelta(hours=23).total_seconds())
        html = await (await client.get("/status/")).text()
        assert field(html, "expiring", detail_of(html, LIST)) == "0"
