"""Registered videos matched again when a video list grows (PROTOCOL.md §6.4).

A platform registers the videos it hosts by their frames (``POST /v1/content``,
``hashhub-node content import``, ``hashhub-node scan``). A real hub on loopback
then lists a re-encoded copy of one of them in a ``vpdq`` entries list; a real node
syncs over HTTP, fetches the entry's frames file, and finds the hosted video among
the registered ones: one match event and one webhook, carrying the hosted video's
shares, and nothing for the unrelated video registered beside it. The clips are
made once for the module with FFmpeg (``bench.video_clips``, a few seconds each).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bench.video_clips import listed_photos, slideshow
from node.api.keys import NODE
from node.service import Node
from node.video_index import VideoQueries
from protocol.video import FRAME_BYTES, match_video
from tests.node.conftest import HubServer, init_node_home
from tests.node.test_api import document
from tests.node.test_cli import invoke, ok
from tests.node.test_entries_with_the_hub import admin, sync_node
from tests.node.test_video_lists import (
    VIDEO_MD5,
    VIDEOS,
    Clips,
    Served,
    hashed,
    list_video,
    make_clips,
    serve_node,
)

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

HOSTED, UNRELATED = "videos/hosted-1", "videos/holiday-7"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return make_clips(tmp_path_factory.mktemp("video-retroactive"))


@pytest.fixture(scope="module")
def longer(clips: Clips) -> Path:
    """A hosted video that holds the listed clip's photos and as many others (none
    of the other listed clip's): the clip is half of it."""
    directory = clips.listed.parent
    photos = listed_photos(directory, 8)
    return slideshow([*photos[:3], *photos[5:8]], directory / "longer.mp4", seconds_each=2)


@pytest.fixture
async def node(tmp_path: Path, hub_server: HubServer, clips: Clips) -> AsyncIterator[Served]:
    """A node following a video list (one other video listed), synced once, its
    webhooks queued (the receiver's address takes none: the outbox is read)."""
    for list_id, type_name in ((VIDEOS, "vpdq"), (VIDEO_MD5, "md5")):
        await admin(
            hub_server,
            "/v1/admin/lists",
            {"id": list_id, "hash_type": type_name, "label": "ncii", "format": "entries"},
        )
    await list_video(hub_server, clips.other)
    home = init_node_home(
        tmp_path / "node",
        hub_server,
        node_id="platform-r",
        lists=[VIDEOS, VIDEO_MD5],
        webhook_url="http://127.0.0.1:9/hook",
    )
    async for served in serve_node(home):
        assert await sync_node(served.client) == {VIDEOS: "updated", VIDEO_MD5: "updated"}
        yield served


def frames_hex(path: Path) -> str:
    return hashed(path).encoded.hex()


async def register(node: Served, content_id: str, frames: str) -> tuple[int, dict[str, Any]]:
    response = await node.client.post(
        "/v1/content",
        json={"content_id": content_id, "hashes": [{"type": "vpdq", "hash": frames}]},
        headers=node.headers("application/json"),
    )
    body: dict[str, Any] = await response.json()
    return response.status, body


def webhooks(node: Served) -> list[dict[str, Any]]:
    return [
        json.loads(bytes(r["body"]))
        for r in node.store.db.query("SELECT body FROM webhook_outbox ORDER BY rowid")
    ]


def registry_rows(node: Served) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The content rows and the registered frames, as stored."""
    db = node.store.db
    content = sorted(
        tuple(r) for r in db.execute("SELECT content_id, hash_type, hash FROM content").fetchall()
    )
    frames = sorted(tuple(r) for r in db.execute("SELECT * FROM content_frames").fetchall())
    return content, frames


def expected_shares(hosted: Path, listed: Path) -> dict[str, list[int]]:
    """The hosted video's shares against the listed one, by the reference matcher."""
    found = match_video(hashed(hosted).frames, hashed(listed).frames)
    assert found.matched
    return {"query_share": list(found.query_share), "listed_share": list(found.listed_share)}


async def list_the_copy(node: Served, hub: HubServer, clips: Clips) -> tuple[str, bytes]:
    """The hub lists a re-encoded copy of the hosted video; the node syncs."""
    entry, digest = await list_video(hub, clips.reencoded)
    assert await sync_node(node.client) == {VIDEOS: "updated", VIDEO_MD5: "updated"}
    return entry, digest


def check_hit(
    body: dict[str, Any], content_id: str, entry: str, digest: bytes, clips: Clips
) -> None:
    """One retroactive webhook of the hosted video, with its shares and entry."""
    assert body["type"] == "hashhub.retroactive_match.v1"
    assert (body["content_id"], body["list"], body["hash_type"]) == (content_id, VIDEOS, "vpdq")
    assert (body["hash"], body["entry"]) == (digest.hex(), entry)
    assert body["content_hash"] == hashed(clips.listed).digest.hex()
    assert (body["category"], body["classification"], body["distance"]) == ("ncii", "confirmed", 0)
    assert body["video"] == expected_shares(clips.listed, clips.reencoded)
    assert body["opinions"] is not None


# ----------------------------------------------------------------------------- the API


async def test_a_registered_video_is_matched_when_the_list_adds_a_copy_of_it(
    node: Served, hub_server: HubServer, clips: Clips
) -> None:
    status, body = await register(node, HOSTED, frames_hex(clips.listed))
    assert status == 201, body
    assert (body["registered"], body["matches"]) == (1, [])
    assert body["hashes"] == {"vpdq": [hashed(clips.listed).digest.hex()]}
    status, body = await register(node, UNRELATED, frames_hex(clips.unrelated))
    assert status == 201, body
    assert webhooks(node) == []

    entry, digest = await list_the_copy(node, hub_server, clips)

    (hit,) = webhooks(node)
    check_hit(hit, HOSTED, entry, digest, clips)
    response = await node.client.get("/v1/matches", headers=node.headers("text/plain"))
    events = (await response.json())["matches"]
    assert [(e["content_id"], e["source"], e["match_id"]) for e in events] == [
        (HOSTED, "registry", hit["match_id"])
    ]
    assert events[0]["video"] == hit["video"]
    assert events[0]["query"] == hashed(clips.listed).digest.hex()
    schema = document()["components"]["schemas"]["MatchEvent"]
    assert set(schema["required"]) <= set(events[0]) <= set(schema["properties"])

    listed = json.loads(ok(await invoke("matches", "--home", str(node.home), "--json")))
    assert [(e["match_id"], e["video"]) for e in listed["matches"]] == [
        (hit["match_id"], hit["video"])
    ]
    (q, total_q), (l_, total_l) = hit["video"]["query_share"], hit["video"]["listed_share"]
    table = ok(await invoke("matches", "--home", str(node.home)))
    assert f"frames: query {q}/{total_q} listed {l_}/{total_l}" in table

    # A sync that adds nothing queues nothing.
    assert await sync_node(node.client) == {VIDEOS: "current", VIDEO_MD5: "current"}
    assert len(webhooks(node)) == 1


async def test_a_hosted_video_holding_a_listed_clip_is_named_with_its_own_shares(
    node: Served, hub_server: HubServer, clips: Clips, longer: Path
) -> None:
    """The added entry is the query of the registered videos' index; the event and
    webhook name the hosted video's share as the query's, the entry's as the listed
    one (§6.4 is symmetric: the two are swapped back)."""
    assert (await register(node, HOSTED, frames_hex(longer)))[0] == 201
    entry, digest = await list_the_copy(node, hub_server, clips)
    (hit,) = webhooks(node)
    assert (hit["content_id"], hit["entry"], hit["hash"]) == (HOSTED, entry, digest.hex())
    assert hit["content_hash"] == hashed(longer).digest.hex()
    shares = expected_shares(longer, clips.reencoded)
    assert hit["video"] == shares
    (q, total_q), (l_, total_l) = shares["query_share"], shares["listed_share"]
    assert 5 * q < 4 * total_q  # the hosted video's own share is too small to count
    assert 5 * l_ >= 4 * total_l  # the listed clip's decides
    (event,) = (await (await node.client.get("/v1/matches", headers=node.headers("x/y"))).json())[
        "matches"
    ]
    assert event["video"] == shares


async def test_an_uploaded_video_is_registered_by_its_frames(
    node: Served, hub_server: HubServer, clips: Clips
) -> None:
    """A ``video/*`` body to ``/v1/content`` is hashed as ``/v1/match`` hashes one
    (the node follows a video list): its frames are kept beside its MD5 and SHA-256."""
    response = await node.client.post(
        f"/v1/content?content_id={HOSTED}",
        data=clips.listed.read_bytes(),
        headers=node.headers("video/mp4"),
    )
    body = await response.json()
    assert response.status == 201, body
    assert (body["registered"], body["matches"]) == (3, [])
    assert body["hashes"]["vpdq"] == [hashed(clips.listed).digest.hex()]
    content, frames = registry_rows(node)
    assert sorted(t for _, t, _ in content) == ["md5", "sha256", "vpdq"]
    assert frames == [(hashed(clips.listed).digest, hashed(clips.listed).encoded)]

    entry, digest = await list_the_copy(node, hub_server, clips)
    (hit,) = webhooks(node)
    check_hit(hit, HOSTED, entry, digest, clips)


async def test_registering_a_video_again_stores_and_matches_nothing_twice(
    node: Served, hub_server: HubServer, clips: Clips
) -> None:
    assert (await register(node, HOSTED, frames_hex(clips.listed)))[0] == 201
    before = registry_rows(node)
    assert [len(rows) for rows in before] == [1, 1]
    status, body = await register(node, HOSTED, frames_hex(clips.listed))
    assert status == 201, body
    assert registry_rows(node) == before
    # The same video under another id is one set of frames, matched for each id.
    assert (await register(node, "videos/mirror", frames_hex(clips.listed)))[0] == 201
    assert [len(rows) for rows in registry_rows(node)] == [2, 1]

    entry, digest = await list_the_copy(node, hub_server, clips)
    hits = webhooks(node)
    assert sorted(h["content_id"] for h in hits) == sorted([HOSTED, "videos/mirror"])
    for hit in hits:
        check_hit(hit, hit["content_id"], entry, digest, clips)


async def test_a_removed_video_is_not_matched_and_its_frames_go(
    node: Served, hub_server: HubServer, clips: Clips, tmp_path: Path
) -> None:
    assert (await register(node, HOSTED, frames_hex(clips.listed)))[0] == 201
    assert (await register(node, "videos/mirror", frames_hex(clips.listed)))[0] == 201
    removal = tmp_path / "gone.csv"
    removal.write_text(f"{HOSTED}\n")
    ok(await invoke("content", "remove", str(removal), "--home", str(node.home)))
    # Another id still holds the video: its frames stay.
    assert [len(rows) for rows in registry_rows(node)] == [1, 1]
    removal.write_text("videos/mirror\n")
    ok(await invoke("content", "remove", str(removal), "--home", str(node.home)))
    assert registry_rows(node) == ([], [])

    await list_the_copy(node, hub_server, clips)
    assert webhooks(node) == []
    assert node.store.matches.event_count() == 0


async def test_a_bare_vpdq_hash_is_refused_and_nothing_is_stored(
    node: Served, clips: Clips
) -> None:
    status, body = await register(node, HOSTED, hashed(clips.listed).digest.hex())
    assert status == 400, body
    assert body["error"]["code"] == "invalid_request"
    assert "registered as the video's frames" in body["error"]["message"]
    assert "not as the 64-digit SHA-256" in body["error"]["message"]
    assert registry_rows(node) == ([], [])


@pytest.mark.parametrize(
    ("damage", "rule"),
    [
        (lambda data: data + b"\x00", "is not a whole number of frames"),
        (lambda data: data[FRAME_BYTES:] + data[:FRAME_BYTES], "is not after the one before"),
        (lambda data: data[:32] + bytes([101]) + data[33:], "quality is 0 to 100"),
    ],
    ids=["torn", "out of order", "quality"],
)
async def test_malformed_frames_are_refused_naming_the_rule(
    node: Served, clips: Clips, damage: Any, rule: str
) -> None:
    frames = damage(hashed(clips.listed).encoded)
    status, body = await register(node, HOSTED, frames.hex())
    assert status == 400, body
    assert body["error"]["code"] == "invalid_request"
    assert rule in body["error"]["message"]
    assert registry_rows(node) == ([], [])


# -------------------------------------------------------------------- the command line


async def test_content_import_registers_videos_by_their_frames(
    node: Served, hub_server: HubServer, clips: Clips, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus.ndjson"
    lines = [
        {"content_id": HOSTED, "hash_type": "vpdq", "hash": frames_hex(clips.listed)},
        {"content_id": UNRELATED, "hash_type": "vpdq", "hash": frames_hex(clips.unrelated)},
    ]
    corpus.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = ok(await invoke("content", "import", str(corpus), "--home", str(node.home)))
    assert "2 hash(es) registered" in out
    assert [len(rows) for rows in registry_rows(node)] == [2, 2]
    again = ok(await invoke("content", "import", str(corpus), "--home", str(node.home)))
    assert "0 hash(es) registered, 2 already registered" in again

    entry, digest = await list_the_copy(node, hub_server, clips)
    (hit,) = webhooks(node)
    check_hit(hit, HOSTED, entry, digest, clips)


async def test_content_import_refuses_a_bare_vpdq_hash_by_its_line(
    node: Served, clips: Clips, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus.csv"
    corpus.write_text(
        f"{UNRELATED},vpdq,{frames_hex(clips.unrelated)}\n"
        f"{HOSTED},vpdq,{hashed(clips.listed).digest.hex()}\n"
    )
    result = await invoke("content", "import", str(corpus), "--home", str(node.home))
    assert result.exit_code == 1, result.output
    assert "line 2: a vpdq hash is registered as the video's frames" in result.stderr
    assert registry_rows(node) == ([], [])


async def test_scan_registers_a_hosted_video_that_a_later_entry_matches(
    node: Served, hub_server: HubServer, clips: Clips, tmp_path: Path
) -> None:
    hosted = tmp_path / "hosted"
    hosted.mkdir()
    shutil.copy(clips.listed, hosted / "clip-0042.mp4")
    shutil.copy(clips.unrelated, hosted / "holiday.mp4")
    scanned = json.loads(ok(await invoke("scan", "--home", str(node.home), "--json", str(hosted))))
    assert scanned["matches"] == []
    content, frames = registry_rows(node)
    assert {(c, t) for c, t, _ in content if t == "vpdq"} == {
        ("clip-0042.mp4", "vpdq"),
        ("holiday.mp4", "vpdq"),
    }
    assert len(frames) == 2

    entry, digest = await list_the_copy(node, hub_server, clips)
    (hit,) = webhooks(node)
    check_hit(hit, "clip-0042.mp4", entry, digest, clips)


# ---------------------------------------------------------------------- the registry


async def test_the_registered_videos_index_is_built_again_only_when_they_change(
    node: Served, clips: Clips
) -> None:
    app = node.client.app
    assert app is not None
    registry = app[NODE].registry
    empty = registry.registered_videos()
    assert registry.registered_videos() is empty
    assert (await register(node, HOSTED, frames_hex(clips.listed)))[0] == 201
    built = registry.registered_videos()
    assert built is not empty
    assert built.entries == (hashed(clips.listed).digest.hex(),)
    assert registry.registered_videos() is built
    # Another process's registration is seen too (the store's generation moved).
    other = Node.open(node.home)
    try:
        other.registry.register(UNRELATED, {"vpdq": VideoQueries([hashed(clips.unrelated).frames])})
    finally:
        other.close()
    rebuilt = registry.registered_videos()
    assert sorted(rebuilt.entries) == sorted(
        [hashed(clips.listed).digest.hex(), hashed(clips.unrelated).digest.hex()]
    )
