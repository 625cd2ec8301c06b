"""A video from the person's browser to a blocked re-encoded upload, every part real.

A person chooses a video on the hub's public page in Chromium; the page hashes its
frames on the device (vPDQ, ``vpdq.js``) and sends only them. An operator accepts the
case into the video collection (a ``vpdq`` entries list, an MD5 sibling beside it)
and publishes: the version's frames file is published before its body. A platform's
node follows the hub over HTTP, fetches and checks the frames file, and later a user
of the platform uploads a copy of the video that the platform re-encoded (smaller,
H.264 at a low quality: a file whose MD5 is not the person's file's). The
node matches it by its frames (PROTOCOL.md §6.4) with the entry's metadata, the
platform blocks it, the node's signed ack carries the block to the hub, and an
auditor verifies the hub's whole history from root v1, the frames file among it.
An unrelated video uploaded to the same node matches nothing.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page, expect

from node.api.keys import NODE, SESSION
from node.app import create_app as create_node_app
from node.config import read_secret, write_secret
from node.service import Node, flush_acks, run_sync
from protocol.keyfile import load_public_key
from protocol.layout import frames_path
from tests.audit.support import audit_async, export
from tests.hub.conftest import bearer, opened
from tests.web.conftest import RecordedRequest, Screenshot
from tests.web.hub_support import init_web_hub, operator_token
from tests.web.video_support import CLIPS, OTHER_VIDEO, choose_video, make_clip, reencode

pytestmark = pytest.mark.slow

VIDEOS, VIDEO_MD5 = "ncii-videos-vpdq", "ncii-videos-md5"
CLIP = CLIPS[0]  # a pan across the bridge photo, WebM/VP9
Client = TestClient[Any, Any]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The web test hub with a video collection: a vpdq and an md5 entries list."""
    path = tmp_path / "hub"
    init_web_hub(path)
    with opened(path) as hub:
        for list_id, hash_type in ((VIDEOS, "vpdq"), (VIDEO_MD5, "md5")):
            hub.roots.create_list(list_id, hash_type, label="ncii-videos", list_format="entries")
    return path


def enrol(hub_home: Path, hub_url: str, node_home: Path, node_id: str) -> None:
    """A platform joins: its node pinned to root v1, enrolled for the video collection."""
    with opened(hub_home) as hub:
        pin = hub.keys.root_sha256(1)
    Node.init(
        node_home,
        node_id=node_id,
        hub_url=hub_url,
        lists=[VIDEOS, VIDEO_MD5],
        pinned_root_sha256=pin,
    ).close()
    with opened(hub_home) as hub:
        token = hub.access.enrol_node(
            node_id, load_public_key(node_home / "node.pub.pem"), [VIDEOS, VIDEO_MD5]
        )
    write_secret(node_home / "hub-token", token)


async def upload(node: Client, home: Path, video: Path, content_type: str) -> dict[str, Any]:
    """The platform asks its node about an uploaded video, sending its bytes."""
    response = await node.post(
        "/v1/match",
        data=io.BytesIO(video.read_bytes()),  # a large body: not held by the loop
        headers={
            "Authorization": f"Bearer {read_secret(home / 'api-token')}",
            "Content-Type": content_type,
        },
    )
    answer: dict[str, Any] = await response.json()
    assert response.status == 200, answer
    return answer


async def test_a_video_submitted_in_the_browser_blocks_a_re_encoded_upload(
    tmp_path: Path,
    home: Path,
    server: TestServer,
    page: Page,
    requests: list[RecordedRequest],
    screenshot: Screenshot,
) -> None:
    clip = make_clip(CLIP, tmp_path)
    copy = reencode(clip, tmp_path / "re-encoded.mp4")
    other = make_clip(OTHER_VIDEO, tmp_path)
    md5 = hashlib.md5(clip.read_bytes(), usedforsecurity=False).digest()
    assert hashlib.md5(copy.read_bytes(), usedforsecurity=False).digest() != md5

    # 1. The person: the page hashes the video's frames and sends only them.
    await choose_video(page, server, clip)
    await expect(page.locator("#send")).to_be_enabled(timeout=60_000)
    await expect(page.locator("#preview-type")).to_have_text("vPDQ (video file)")
    await screenshot(page, "story-video-submit")
    await page.click("#send")
    await expect(page.locator("#case-number")).to_be_visible()
    case = (await page.locator("#case-number").inner_text()).strip().replace("-", "")
    [post] = [r for r in requests if r.method == "POST"]
    sent = urllib.parse.parse_qs((post.body or b"").decode("ascii"), keep_blank_values=True)
    assert sent["type"] == ["vpdq"]
    frames = bytes.fromhex(sent["hash"][0])
    record = hashlib.sha256(frames).digest()

    # 2. The operator accepts the case into the video collection and publishes.
    operator = bearer(operator_token(home, "publisher", "reviewer"))
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as hub:
        accepted = await hub.post(
            f"/v1/admin/cases/{case}/accept",
            json={"list": VIDEOS, "category": "ncii", "classification": "confirmed"},
            headers=operator,
        )
        assert accepted.status == 200, await accepted.text()
        published = await hub.post("/v1/admin/publish", json={}, headers=operator)
        answer = await published.json()
        assert published.status == 200, answer
        [made] = [p for p in answer["published"] if p["list"] == VIDEOS]
        assert (made["version"], made["adds"]) == (1, 1)
    with opened(home) as hub_store:
        order = [
            row["path"]
            for row in hub_store.db.query(
                "SELECT path FROM files WHERE path LIKE ? ORDER BY rowid", [f"lists/{VIDEOS}/%"]
            )
        ]
        [body] = [p for p in order if "/body/" in p]
        assert order.index(frames_path(VIDEOS, record.hex())) < order.index(body)
        assert hub_store.frames.get(record) == frames

    # 3. A platform's node follows the hub: the frames file is fetched and checked.
    hub_url = str(server.make_url("")).rstrip("/")
    node_home = tmp_path / "platform"
    enrol(home, hub_url, node_home, "platform-a")
    node_app = create_node_app(node_home, schedule=False)
    async with TestClient(TestServer(node_app, host="127.0.0.1")) as node:
        statuses = {o.list_id: o.status for o in await run_sync(node_app[NODE], node_app[SESSION])}
        assert statuses[VIDEOS] == "updated", statuses
        held = sqlite3.connect(node_home / "node.db")
        try:
            [(stored,)] = held.execute(
                "SELECT frames FROM frames WHERE list_id = ?", [VIDEOS]
            ).fetchall()
        finally:
            held.close()
        assert bytes(stored) == frames

        # 4. A user uploads the platform's re-encoded copy: matched by its frames.
        found = await upload(node, node_home, copy, "video/mp4")
        [hit] = [m for m in found["matches"] if m["list"] == VIDEOS]
        assert (hit["category"], hit["classification"], hit["source"]) == (
            "ncii",
            "confirmed",
            "submission",
        )
        assert hit["hash"] == record.hex()
        q, big_q = hit["video"]["query_share"]
        listed, big_l = hit["video"]["listed_share"]
        assert 5 * q >= 4 * big_q or 5 * listed >= 4 * big_l, hit["video"]
        unrelated = await upload(node, node_home, other, "video/webm")
        assert [m for m in unrelated["matches"] if m["list"] == VIDEOS] == []

        # 5. The platform blocks it; the node's signed ack carries the block to the hub.
        blocked = await node.post(
            f"/v1/matches/{hit['match_id']}/outcome",
            json={"outcome": "blocked"},
            headers={"Authorization": f"Bearer {read_secret(node_home / 'api-token')}"},
        )
        assert blocked.status == 200, await blocked.text()
        node_app[NODE].acks.enqueue()
        reasons: list[str] = []
        async with aiohttp.ClientSession() as session:
            sent_acks, failed = await flush_acks(node_app[NODE], session, reasons=reasons)
        assert (sent_acks > 0, failed) == (True, 0), reasons
    with opened(home) as hub_store:
        counted = {
            (row["name"], row["total"])
            for row in hub_store.db.query(
                "SELECT name, total FROM counters WHERE node = ? AND list_id = ? AND hash = ''",
                ["platform-a", VIDEOS],
            )
        }
    assert ("blocked", 1) in counted, counted

    # 6. An auditor verifies the whole history from root v1, the frames file among it.
    tree = export(home, tmp_path / "tree")
    with opened(home) as hub_store:
        pin = hub_store.keys.root_sha256(1)
    audited = await audit_async(
        "verify", tree, "--root-sha256", pin, "--witness", tmp_path / "witness.json",
        "--json", "--list", VIDEOS,
    )  # fmt: skip
    assert audited.code == 0, audited.stdout + audited.stderr
    [videos] = audited.json()["lists"]
    assert (videos["status"], videos["frames_checked"]) == ("verified", 1), videos
