"""A person submits a video from the public page, in Chromium: only its vPDQ frames leave.

The real hub's submission page on loopback; a clip FFmpeg makes in the test. The
page's own scripts (``submit.js`` with ``hashing/vpdq.js``) decode the video in the
browser and post the frames' one encoding (PROTOCOL.md §6.3) as hex, proved from
the browser's network log: one POST, exactly the form's three fields, no slice of
the video anywhere. The hub keeps the frames and a case whose hash is their
SHA-256; the frames match, by §6.4, the frames the node computes for the same file
(``node.video.hash_video``). An operator accepts the case into a ``vpdq`` entries
list and a publish serves ``lists/<id>/frames/<record hash>.bin``. A video the
browser cannot decode (MPEG-4 Part 2 in AVI, which Chromium has no decoder for) is
sent as the MD5 of its file, and the page says so and why.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, expect

from bench.video_clips import ffmpeg
from node.video import hash_video
from protocol.layout import frames_path
from protocol.video import decode_frames, match_video
from tests.hub.conftest import bearer, opened
from tests.web.conftest import RecordedRequest, Screenshot
from tests.web.hub_support import init_web_hub, operator_token
from tests.web.video_support import CLIP_SECONDS, CLIPS, choose_video, make_clip

pytestmark = pytest.mark.slow

VIDEO_LIST = "tid-vpdq"
SLICE = 1024
CLIP = CLIPS[0]  # a pan across the bridge photo, WebM/VP9: every Chromium decodes it


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The web test hub with a public ``vpdq`` entries list besides its PDQ and MD5 lists."""
    path = tmp_path / "hub"
    init_web_hub(path)
    with opened(path) as hub:
        hub.roots.create_list(
            VIDEO_LIST, "vpdq", label="videos", list_format="entries", public=True
        )
    return path


def the_one_post(requests: list[RecordedRequest], server: TestServer) -> bytes:
    """The page's only POST (to ``/submit``); every request went to the hub, but the
    browser's own reads of the chosen file (``blob:`` URLs of the page, which never
    leave the device)."""
    base = str(server.make_url("/"))
    for r in requests:
        assert r.url.startswith((base, f"blob:{base.rstrip('/')}/")), r.url
        assert r.method == "GET" or r.url.startswith(base), r.url
    posts = [r for r in requests if r.method == "POST"]
    assert [urllib.parse.urlsplit(r.url).path for r in posts] == ["/submit"]
    return posts[0].body or b""


def assert_no_slice_of(requests: list[RecordedRequest], video: bytes) -> None:
    """No request body holds the video, or any aligned 1 KB slice of it."""
    slices = [video[i : i + SLICE] for i in range(0, len(video) - SLICE + 1, SLICE)]
    assert len(slices) > 20
    for body in (r.body for r in requests if r.body):
        assert video not in body
        assert not any(piece in body for piece in slices)


async def test_a_video_is_sent_as_its_frames_matched_by_the_nodes_and_published(
    tmp_path: Path,
    home: Path,
    server: TestServer,
    page: Page,
    requests: list[RecordedRequest],
    screenshot: Screenshot,
) -> None:
    clip = make_clip(CLIP, tmp_path)
    video = clip.read_bytes()
    node = hash_video(clip).frames

    await choose_video(page, server, clip)
    await expect(page.locator("#send")).to_be_enabled(timeout=60_000)
    await expect(page.locator("#hash-status")).to_contain_text("frames of the video were hashed")
    await expect(page.locator("#preview-type")).to_have_text("vPDQ (video file)")
    shown_count = int(await page.locator("#preview-frames").inner_text())
    assert shown_count == len(node) == CLIP_SECONDS  # one a second, 0 s to 9 s
    record_shown = (await page.locator("#preview-hash").inner_text()).strip()
    await screenshot(page, "hub-submit-video-frames")
    await page.click("#send")
    await expect(page.locator("#case-number")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("fingerprints of your video's frames")
    case = (await page.locator("#case-number").inner_text()).strip().replace("-", "")

    # -- what left the browser: the three fields, the frames and nothing else ------------
    body = the_one_post(requests, server)
    sent = urllib.parse.parse_qs(body.decode("ascii"), keep_blank_values=True)
    assert set(sent) == {"type", "hash", "quality"}
    assert (sent["type"], sent["quality"]) == (["vpdq"], [""])
    data = bytes.fromhex(sent["hash"][0])
    assert (
        body == urllib.parse.urlencode({"type": "vpdq", "hash": data.hex(), "quality": ""}).encode()
    )
    assert_no_slice_of(requests, video)
    browser = decode_frames(data)
    assert len(browser) == shown_count
    verdict = match_video(browser, node)
    print(f"browser vs node frames: {verdict}")
    assert verdict.matched
    assert verdict.query_share == verdict.listed_share == (len(node), len(node))

    # -- what the hub keeps: the frames once, the case by their SHA-256 ------------------
    record = hashlib.sha256(data).digest()
    assert record_shown == record.hex()
    with opened(home) as hub:
        assert hub.frames.get(record) == data
        view = hub.cases.get(case)
        assert (view.hash_type, view.hash, view.status) == ("vpdq", record.hex(), "received")

    # -- the operator accepts it into the vpdq list and publishes -------------------------
    publisher = bearer(operator_token(home, "publisher", "reviewer"))
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as client:
        accepted = await client.post(
            f"/v1/admin/cases/{case}/accept",
            json={"list": VIDEO_LIST, "category": "ncii", "classification": "confirmed"},
            headers=publisher,
        )
        assert accepted.status == 200, await accepted.text()
        published = await client.post(
            "/v1/admin/publish", json={"lists": [VIDEO_LIST]}, headers=publisher
        )
        assert published.status == 200, await published.text()
        served = await client.get("/" + frames_path(VIDEO_LIST, record.hex()))
        assert served.status == 200
        assert await served.read() == data

    await page.goto(str(server.make_url("/case")))
    await page.fill("#case", case)
    await page.click("#check")
    await expect(page.locator("#case-status")).to_contain_text("Accepted and published")
    await screenshot(page, "hub-case-video-published")


async def test_a_video_the_browser_cannot_decode_is_sent_as_its_md5_and_the_page_says_why(
    tmp_path: Path,
    home: Path,
    server: TestServer,
    page: Page,
    requests: list[RecordedRequest],
    screenshot: Screenshot,
) -> None:
    clip = tmp_path / "old-camera.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "3", "-c:v", "mpeg4",
           "-q:v", "2", clip)  # fmt: skip
    video = clip.read_bytes()
    expected = hashlib.md5(video, usedforsecurity=False).hexdigest()

    await choose_video(page, server, clip)
    await expect(page.locator("#preview-hash")).to_have_text(expected, timeout=60_000)
    status = page.locator("#hash-status")
    await expect(status).to_contain_text("could not be worked out in this browser")
    await expect(status).to_contain_text("not a video the browser can play")
    await expect(status).to_contain_text("the MD5 of the file will be sent instead")
    await expect(page.locator("#preview-type")).to_have_text("MD5 (video file)")
    await expect(page.locator("#preview-frames")).to_be_hidden()
    await screenshot(page, "hub-submit-video-md5-fallback")
    await page.click("#send")
    await expect(page.locator("#case-number")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("Only the hash of your video was sent")

    body = the_one_post(requests, server)
    sent = urllib.parse.parse_qs(body.decode("ascii"), keep_blank_values=True)
    assert sent == {"type": ["md5"], "hash": [expected], "quality": [""]}
    assert_no_slice_of(requests, video)
    with opened(home) as hub:
        [row] = hub.db.query("SELECT hash_type, hash FROM submissions")
        assert (row["hash_type"], bytes(row["hash"]).hex()) == ("md5", expected)
        assert hub.db.table("frames").count == 0
