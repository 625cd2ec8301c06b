"""End to end in a real browser: a picture hashed on the device reaches a node's list.

Chromium opens the real hub's submission page on loopback and chooses the bridge
photo of the shared PDQ test images; the page's own JavaScript hashes it and only
the hash is sent (proved from the browser's network log). An operator logs in,
accepts the case into the PDQ list and publishes from the dashboard; a real node
syncs, matches the photo, acks; the dashboard's sections show the ack. A picture too flat for
a reliable PDQ hash is never sent, and a video goes as the MD5 of its bytes. Every
page visited is screenshotted.
"""

from __future__ import annotations

import hashlib
import sqlite3
import urllib.parse
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from PIL import Image
from playwright.async_api import Dialog, Page, expect

from hub.app import create_app
from node.imaging import hash_image
from node.service import flush_acks
from tests.node.fixtures_sync import Clock, HubApp, make_node, statuses, sync_once
from tests.web.conftest import RecordedRequest, Screenshot
from tests.web.hub_support import (
    ORIGINAL,
    PDQ_LIST,
    PLACEHOLDER_PDQ,
    init_web_hub,
    operator_token,
)

SLICE = 1024


def hamming(a: bytes, b: bytes) -> int:
    return sum(bin(x ^ y).count("1") for x, y in zip(a, b, strict=True))


def assert_no_image_bytes_left(requests: list[RecordedRequest], image: bytes) -> None:
    """No request body holds the image, or any aligned 1 KB slice of it, or anything as big."""
    slices = [image[i : i + SLICE] for i in range(0, len(image) - SLICE + 1, SLICE)]
    assert len(slices) > 50
    bodies = [r.body for r in requests if r.body]
    for body in bodies:
        assert image not in body
        assert not any(piece in body for piece in slices)
    assert sum(len(body) for body in bodies) < SLICE  # not even an encoded copy fits


@pytest.mark.slow
async def test_a_picture_hashed_in_the_browser_is_accepted_published_matched_and_acked(
    tmp_path: Path, page: Page, requests: list[RecordedRequest], screenshot: Screenshot
) -> None:
    image = ORIGINAL.read_bytes()
    node_pdq = hash_image(image).pdq
    clock = Clock()
    hub = HubApp.init(tmp_path / "hub", clock)
    hub.create_list(PDQ_LIST, "pdq", label="Take It Down (pictures)")
    hub.publish(PDQ_LIST, adds=[PLACEHOLDER_PDQ])
    await hub.start()
    try:
        node = make_node(tmp_path / "node", hub, [PDQ_LIST])
        try:
            assert statuses((await sync_once(node))[0]) == {PDQ_LIST: ("updated", 0, 1)}
            queries = node.matching.image_queries(image)
            assert node.matching.match_hashes(queries) == []  # not listed yet
            async with aiohttp.ClientSession() as session:
                assert await flush_acks(node, session) == (1, 0)  # the ack of version 1
            clock.advance(600)  # the hub and the node share this clock

            # -- the person: choose the picture, send only its hash ---------------------------
            await page.goto(f"{hub.url}/submit")
            await screenshot(page, "hub-submit")
            await page.set_input_files("#file", str(ORIGINAL))
            await expect(page.locator("#send")).to_be_enabled(timeout=30_000)
            await screenshot(page, "hub-submit-hashed")
            await page.click("#send")
            case_shown = (await page.locator("#case-number").text_content() or "").strip()
            await screenshot(page, "hub-submit-case-number")

            posts = [r for r in requests if r.method == "POST"]
            assert [urllib.parse.urlsplit(r.url).path for r in posts] == ["/submit"]
            assert all(r.url.startswith(hub.url) for r in requests)
            sent = urllib.parse.parse_qs((posts[0].body or b"").decode("ascii"))
            assert set(sent) == {"type", "hash", "quality"}
            assert sent["type"] == ["pdq"]
            browser_pdq = bytes.fromhex(sent["hash"][0])
            distance = hamming(browser_pdq, node_pdq)
            print(f"browser PDQ vs node PDQ: {distance} bits; quality {sent['quality'][0]}")
            assert distance <= 10
            assert int(sent["quality"][0]) >= 50
            assert_no_image_bytes_left(requests, image)

            await page.goto(f"{hub.url}/case")
            await page.fill("#case", case_shown)
            await page.click("#check")
            await expect(page.locator("#case-status")).to_contain_text("waiting for review")
            await screenshot(page, "hub-case-received")

            # -- the operator: review and publish ----------------------------------------------
            await page.goto(f"{hub.url}/login")
            await screenshot(page, "hub-login")
            await page.fill("#token", operator_token(hub.home, "publisher", "reviewer"))
            await page.click("#login")
            await expect(page).to_have_url(f"{hub.url}/dashboard")
            await expect(page.locator("#tile-review .figure")).to_have_text("1")
            await screenshot(page, "hub-dashboard-overview")
            sections = page.get_by_role("navigation", name="Dashboard sections")
            await sections.get_by_role("link", name="Review").click()
            await expect(page).to_have_url(f"{hub.url}/dashboard/review")
            row = page.locator(f"#case-{case_shown.replace('-', '')}")
            await expect(row).to_contain_text(case_shown)
            await expect(row.locator(".hash")).to_have_text(browser_pdq.hex())  # whole
            await screenshot(page, "hub-dashboard-queue")
            await row.locator("select[name=list]").select_option(PDQ_LIST)
            await row.locator("button.accept").click()
            # The form returns to the review section, which says what happened.
            await expect(page).to_have_url(f"{hub.url}/dashboard/review?notice=accepted")
            await expect(page.locator(".notice")).to_contain_text("Case accepted")
            await expect(page.locator("#queue")).to_contain_text("No cases waiting.")
            await sections.get_by_role("link", name="Lists").click()
            await expect(page.locator("#staged")).to_contain_text(browser_pdq.hex())
            await screenshot(page, "hub-dashboard-staged")

            async def confirm(dialog: Dialog) -> None:
                await dialog.accept()

            page.on("dialog", confirm)
            await page.select_option("#publish-list", PDQ_LIST)
            await page.click("#publish")
            await expect(page).to_have_url(f"{hub.url}/dashboard/lists?notice=published")
            await expect(page.locator(".notice")).to_contain_text("Published")
            await expect(page.locator(f"#list-{PDQ_LIST} .version")).to_have_text("2")
            await screenshot(page, "hub-dashboard-published")
            await sections.get_by_role("link", name="Nodes").click()
            node_row = page.locator(f"#node-{node.config.node_id}-{PDQ_LIST}")
            await expect(node_row.locator(".applied")).to_have_text("1")

            # -- the platform: sync, match, ack -------------------------------------------------
            assert statuses((await sync_once(node))[0]) == {PDQ_LIST: ("updated", 1, 2)}
            matches = node.matching.match_hashes(node.matching.image_queries(image))
            assert [(m.list_id, m.hash) for m in matches] == [(PDQ_LIST, browser_pdq)]
            assert matches[0].distance == distance
            # The platform took it down.
            node.matching.record_outcome(matches[0].match_id, "actioned")
            node.acks.enqueue([PDQ_LIST])
            async with aiohttp.ClientSession() as session:
                confirmed, failed = await flush_acks(node, session)
            assert (confirmed, failed) == (2, 0)  # the one queued by the sync, and this one
            [acked] = [a for a in hub.acks(node.config.node_id) if a.version == 2][-1:]
            assert acked.list == PDQ_LIST

            # -- the dashboard shows the node's ack ----------------------------------------------
            await page.reload()
            await expect(node_row.locator(".applied")).to_have_text("2")
            await expect(node_row.locator(".lag")).to_have_text("0")
            await expect(node_row.locator(".last-ack")).to_have_text(acked.received)
            await expect(node_row.locator(".state")).to_have_text("ok")
            await screenshot(page, "hub-dashboard-nodes")
            await sections.get_by_role("link", name="Lists").click()
            await expect(page.locator(f"#list-{PDQ_LIST} .actioned")).to_have_text("1")
            await sections.get_by_role("link", name="Counts").click()
            await expect(page.locator("#takedowns .legend")).to_contain_text(f"{PDQ_LIST}: 1")
            chart = page.locator("#takedowns svg.chart")
            await expect(chart.locator("polyline")).to_have_count(1)  # acks over a span
            await expect(chart.locator("text.x-tick")).not_to_have_count(0)
            await screenshot(page, "hub-dashboard-acked")

            await page.goto(f"{hub.url}/case")
            await page.fill("#case", case_shown)
            await page.click("#check")
            await expect(page.locator("#case-status")).to_contain_text("since version 2")
            await screenshot(page, "hub-case-published")
        finally:
            node.close()
    finally:
        await hub.stop()


async def test_a_flat_picture_is_not_sent_and_a_video_is_sent_as_its_md5(
    tmp_path: Path, page: Page, requests: list[RecordedRequest], screenshot: Screenshot
) -> None:
    flat = tmp_path / "grey.png"
    Image.new("RGB", (300, 200), (128, 128, 128)).save(flat)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 300)
    home = tmp_path / "hub"
    init_web_hub(home)
    async with TestServer(create_app(home, schedule=False), host="127.0.0.1") as server:
        await page.goto(str(server.make_url("/submit")))
        await page.set_input_files("#file", str(flat))
        await expect(page.locator("#hash-status")).to_contain_text("too little detail")
        await expect(page.locator("#send")).to_be_disabled()
        await screenshot(page, "hub-submit-flat-picture")

        await page.check("input[name=media][value=video]")
        await page.set_input_files("#file", str(video))
        expected = hashlib.md5(video.read_bytes(), usedforsecurity=False).hexdigest()
        await expect(page.locator("#preview-hash")).to_have_text(expected)
        await page.click("#send")
        await expect(page.locator("#case-number")).to_be_visible()
        await screenshot(page, "hub-submit-video-case-number")

    posts = [r for r in requests if r.method == "POST"]
    assert len(posts) == 1  # the flat picture's hash was never sent
    sent = urllib.parse.parse_qs((posts[0].body or b"").decode("ascii"), keep_blank_values=True)
    assert sent == {"type": ["md5"], "hash": [expected], "quality": [""]}
    assert_no_image_bytes_left(requests, video.read_bytes())
    conn = sqlite3.connect(home / "hub.db")
    try:
        stored = conn.execute("SELECT hash_type, hash FROM submissions").fetchall()
    finally:
        conn.close()
    assert [(t, bytes(h).hex()) for t, h in stored] == [("md5", expected)]
