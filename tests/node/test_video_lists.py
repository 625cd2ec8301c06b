"""Video lists (``vpdq``) on a node: their frames stored with their records, videos
matched by PROTOCOL.md §6.4, and the answer naming the entry with both shares.

A real hub on loopback lists a video made here with FFmpeg (a slideshow of photos,
a few seconds at 480 × 360) in a ``vpdq`` entries list beside an ``md5`` list of the
same collection: its frames are hashed by the node's own hasher, put in the hub's
frames table and named by the entry's record. A real node follows the hub over
HTTP, fetching and verifying each record's frames file, and answers ``POST
/v1/match`` on loopback. A proxy in front of the hub (``HostileServer``) serves a
frames file with wrong bytes, too many bytes, or none: the update is refused and
the node's store is left exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bench.video_clips import X264, ffmpeg, listed_photos, slideshow, unrelated_photos
from node.api.keys import NODE, SESSION
from node.app import create_app
from node.config import read_secret
from node.matching import video_queries
from node.service import Node, run_sync
from node.store import NodeStore
from node.store import frames as frame_rows
from node.video import VideoHash, hash_video
from node.workers import take_up
from protocol import Entry, EntryState, ListTrust
from protocol.layout import frames_path
from protocol.lists import hash_type
from protocol.video import MAX_FRAMES_BYTES, Frame, encode_frames, frames_digest
from tests.node.conftest import HubServer, init_node_home, opened_hub
from tests.node.hostile import Behaviour, HostileServer, Replace, Status, Tamper, flip_byte
from tests.node.test_api import document
from tests.node.test_cli import invoke, no_match, ok
from tests.node.test_entries_with_the_hub import admin, sync_node

Client = TestClient[web.Request, web.Application]

VIDEOS, VIDEO_MD5 = "ncii-videos", "ncii-videos-md5"

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


# ------------------------------------------------------------------------- the clips


@dataclass(frozen=True)
class Clips:
    """The clips, made once for the module: a few seconds each."""

    listed: Path
    reencoded: Path
    """The listed clip at half its size and a low bitrate: other bytes, other frames."""
    other: Path
    """A clip of other photos: listed as a second video, or matched as unrelated."""
    unrelated: Path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return make_clips(tmp_path_factory.mktemp("video-lists"))


def make_clips(directory: Path) -> Clips:
    """The clips, made in ``directory`` (a module's fixture calls it once)."""
    photos = listed_photos(directory, 5)
    listed = slideshow(photos[:3], directory / "listed.mp4", seconds_each=2)
    reencoded = directory / "reencoded.mp4"
    ffmpeg("-i", listed, "-vf", "scale=240:180", *X264, "-b:v", "150k", reencoded)
    other = slideshow(photos[3:], directory / "other.mp4", seconds_each=2)
    unrelated = slideshow(unrelated_photos()[:3], directory / "unrelated.mp4", seconds_each=2)
    return Clips(listed, reencoded, other, unrelated)


@cache
def hashed(path: Path) -> VideoHash:
    return hash_video(path)


# ------------------------------------------------------------------- hub and node


async def list_video(hub: HubServer, path: Path) -> tuple[str, bytes]:
    """List the video at ``path`` in both lists (frames and MD5 of its bytes) and
    publish; returns its entry id and its ``vpdq`` record's hash."""
    with_hub = opened_hub(hub.home)
    try:
        digest = with_hub.frames.put(encode_frames(hashed(path).frames))
    finally:
        with_hub.close()
    assert digest == hashed(path).digest
    entry = await admin(
        hub,
        "/v1/admin/entries",
        {
            "hashes": {
                VIDEOS: digest.hex(),
                VIDEO_MD5: hashlib.md5(path.read_bytes()).hexdigest(),
            },
            "category": "ncii",
            "classification": "confirmed",
            "source": "submission",
        },
    )
    await admin(hub, "/v1/admin/publish", {"lists": [VIDEOS, VIDEO_MD5]})
    return str(entry["entry"]), digest


@pytest.fixture
async def collection(hub_server: HubServer, clips: Clips) -> tuple[str, bytes]:
    """A collection of a ``vpdq`` and an ``md5`` entries list, the listed clip in it."""
    for list_id, type_name in ((VIDEOS, "vpdq"), (VIDEO_MD5, "md5")):
        await admin(
            hub_server,
            "/v1/admin/lists",
            {"id": list_id, "hash_type": type_name, "label": "ncii", "format": "entries"},
        )
    return await list_video(hub_server, clips.listed)


@dataclass
class Served:
    client: Client
    home: Path

    @property
    def store(self) -> NodeStore:
        app = self.client.app
        assert app is not None
        return app[NODE].store

    def headers(self, content_type: str) -> dict[str, str]:
        token = read_secret(self.home / "api-token")
        return {"Authorization": f"Bearer {token}", "Content-Type": content_type}

    async def match(self, data: bytes, content_type: str = "video/mp4") -> dict[str, Any]:
        response = await self.client.post(
            "/v1/match", data=data, headers=self.headers(content_type)
        )
        body: dict[str, Any] = await response.json()
        assert response.status == 200, body
        return body


async def serve_node(home: Path) -> AsyncIterator[Served]:
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as c:
        yield Served(c, home)


@pytest.fixture
async def node(
    tmp_path: Path, hub_server: HubServer, collection: tuple[str, bytes]
) -> AsyncIterator[Served]:
    home = init_node_home(
        tmp_path / "node", hub_server, node_id="platform-v", lists=[VIDEOS, VIDEO_MD5]
    )
    async for served in serve_node(home):
        yield served


def by_list(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {m["list"]: m for m in body["matches"]}
    assert len(found) == len(body["matches"]), body
    return found


# ----------------------------------------------------------------------------- tests


async def test_a_listed_video_and_its_reencoded_copy_match_by_frames_an_unrelated_one_not(
    node: Served, clips: Clips, collection: tuple[str, bytes]
) -> None:
    entry, digest = collection
    assert await sync_node(node.client) == {VIDEOS: "updated", VIDEO_MD5: "updated"}
    assert node.store.frame_hashes(VIDEOS) == [digest]

    same = await node.match(clips.listed.read_bytes())
    found = by_list(same)
    assert set(found) == {VIDEOS, VIDEO_MD5}
    video = found[VIDEOS]
    frames = len({f.pdq for f in hashed(clips.listed).frames if f.quality >= 50})
    assert (video["entry"], video["hash"], video["hash_type"]) == (entry, digest.hex(), "vpdq")
    assert (video["category"], video["classification"]) == ("ncii", "confirmed")
    assert video["video"] == {"query_share": [frames, frames], "listed_share": [frames, frames]}
    assert video["query"] == digest.hex() == same["hashes"]["vpdq"][0]
    schema = document()["components"]["schemas"]["Match"]
    assert set(schema["required"]) <= set(video) <= set(schema["properties"])
    assert video["match_id"]
    assert video["match_id"] != found[VIDEO_MD5]["match_id"]
    assert found[VIDEO_MD5]["entry"] == entry

    copy = await node.match(clips.reencoded.read_bytes())
    assert list(by_list(copy)) == [VIDEOS]  # other bytes: the MD5 list has nothing to say
    shares = copy["matches"][0]["video"]
    (q, total_q), (listed, total_l) = shares["query_share"], shares["listed_share"]
    assert max(q / total_q, listed / total_l) >= 0.8
    assert total_l == frames
    assert copy["matches"][0]["entry"] == entry
    assert copy["hashes"]["vpdq"] == [hashed(clips.reencoded).digest.hex()]

    assert (await node.match(clips.unrelated.read_bytes()))["matches"] == []

    # A platform that hashes its videos itself sends the frames.
    response = await node.client.post(
        "/v1/match",
        json={"hashes": [{"type": "vpdq", "hash": hashed(clips.reencoded).encoded.hex()}]},
        headers=node.headers("application/json"),
    )
    asked = await response.json()
    assert response.status == 200, asked
    assert [(m["list"], m["entry"]) for m in asked["matches"]] == [(VIDEOS, entry)]

    # Each video hit is a match event: its outcome is recorded like any other's.
    outcome = await node.client.post(
        f"/v1/matches/{video['match_id']}/outcome",
        json={"outcome": "blocked"},
        headers=node.headers("application/json"),
    )
    assert outcome.status == 200, await outcome.text()
    status = await (await node.client.get("/v1/status", headers=node.headers("text/plain"))).json()
    counts = {entry["list"]: entry["counts"] for entry in status["lists"]}
    assert counts[VIDEOS] == {
        "checked": 4,
        "matched": 3,
        "actioned": 0,
        "blocked": 1,
        "false_positive": 0,
        "hashes": None,
    }


async def test_a_record_hash_is_no_video_query(node: Served, collection: tuple[str, bytes]) -> None:
    """The record's hash names the frames; it matches nothing itself, as a query of
    the frames' hex, it is not a whole number of frames."""
    _, digest = collection
    await sync_node(node.client)
    response = await node.client.post(
        "/v1/match",
        json={"hashes": [{"type": "vpdq", "hash": digest.hex()}]},
        headers=node.headers("application/json"),
    )
    body = await response.json()
    assert response.status == 400, body
    assert body["error"]["code"] == "invalid_request"
    assert "whole number of frames" in body["error"]["message"]


async def test_a_removed_video_no_longer_matches_and_its_frames_go(
    node: Served, hub_server: HubServer, clips: Clips, collection: tuple[str, bytes]
) -> None:
    entry, digest = collection
    await sync_node(node.client)
    other_entry, other = await list_video(hub_server, clips.other)
    assert await sync_node(node.client) == {VIDEOS: "updated", VIDEO_MD5: "updated"}
    assert node.store.frame_hashes(VIDEOS) == sorted([digest, other])
    assert [m["entry"] for m in (await node.match(clips.other.read_bytes()))["matches"]] == [
        other_entry,
        other_entry,
    ]

    # A change of metadata keeps the record's hash, and so its frames.
    await admin(
        hub_server, "/v1/admin/entries/change", {"entry": entry, "classification": "severe"}
    )
    await admin(hub_server, "/v1/admin/publish", {})
    await sync_node(node.client)
    assert node.store.frame_hashes(VIDEOS) == sorted([digest, other])
    changed = by_list(await node.match(clips.reencoded.read_bytes()))[VIDEOS]
    assert (changed["entry"], changed["classification"]) == (entry, "severe")

    await admin(hub_server, "/v1/admin/entries/retract", {"entry": entry, "reason": "withdrawn"})
    await admin(hub_server, "/v1/admin/publish", {})
    assert await sync_node(node.client) == {VIDEOS: "updated", VIDEO_MD5: "updated"}
    assert node.store.frame_hashes(VIDEOS) == [other]
    assert (await node.match(clips.listed.read_bytes()))["matches"] == []
    assert (await node.match(clips.reencoded.read_bytes()))["matches"] == []


def rows(store: NodeStore) -> dict[str, list[tuple[Any, ...]]]:
    """What the store holds of the video list, but the time and error of its last
    attempt (the MD5 list beside it takes its own update)."""
    tables = {
        "lists": "SELECT hub, id, hash_type, format, trust, state, count, sha256 FROM lists "
        "WHERE id = ?",
        "state_changes": "SELECT * FROM state_changes WHERE list_id = ?",
        "frames": "SELECT * FROM frames WHERE list_id = ?",
        "entry_records": "SELECT * FROM entry_records WHERE list_id = ?",
    }
    held = {
        name: sorted(tuple(r) for r in store.db.execute(sql, [VIDEOS]).fetchall())
        for name, sql in tables.items()
    }
    assert all(held[name] for name in ("lists", "frames", "entry_records")), held
    return held


@pytest.mark.parametrize(
    ("behaviour", "kind"),
    [
        (Tamper(flip_byte), "ConsistencyError"),
        (Replace(bytes(MAX_FRAMES_BYTES + 1)), "LimitError"),
        (Status(404), "MissingFileError"),
    ],
    ids=["wrong bytes", "over the cap", "missing"],
)
async def test_a_bad_frames_file_refuses_the_update_and_changes_nothing(
    tmp_path: Path,
    hub_server: HubServer,
    clips: Clips,
    collection: tuple[str, bytes],
    behaviour: Behaviour,
    kind: str,
) -> None:
    proxy = await HostileServer.proxy(hub_server.url).start()
    try:
        home = init_node_home(
            tmp_path / "node",
            hub_server,
            node_id="platform-h",
            lists=[VIDEOS, VIDEO_MD5],
            hub_url=proxy.url,
        )
        async for node in serve_node(home):
            assert await sync_node(node.client) == {VIDEOS: "updated", VIDEO_MD5: "updated"}
            _, other = await list_video(hub_server, clips.other)
            before = rows(node.store)
            proxy.on(frames_path(VIDEOS, other.hex()), behaviour)
            app = node.client.app
            assert app is not None
            outcomes = {o.list_id: o for o in await run_sync(app[NODE], app[SESSION])}
            assert outcomes[VIDEOS].status == "rejected", outcomes[VIDEOS]
            assert outcomes[VIDEOS].kind == kind
            assert proxy.count(frames_path(VIDEOS, other.hex())) >= 1
            after = rows(node.store)
            assert after == before
            # The MD5 list's update went through; the video list is as it was.
            found = (await node.match(clips.other.read_bytes()))["matches"]
            assert [m["list"] for m in found] == [VIDEO_MD5]
    finally:
        await proxy.close()


async def test_a_corrupt_video_is_refused_with_its_reason(node: Served, clips: Clips) -> None:
    await sync_node(node.client)
    data = clips.listed.read_bytes()
    response = await node.client.post(
        "/v1/match", data=data[: len(data) // 3], headers=node.headers("video/mp4")
    )
    body = await response.json()
    assert response.status == 400, body
    assert body["error"]["code"] == "corrupt_video"
    assert body["error"]["message"].startswith("corrupt:")
    assert node.store.matches.listing(10) == []


# ------------------------------------------------------------------- the store alone


def video(seed: int, count: int = 5) -> tuple[Frame, ...]:
    """``count`` frames of made-up PDQ hashes, one a second."""
    return tuple(
        Frame(millis=i * 1000, pdq=hashlib.sha256(f"{seed}-{i}".encode()).digest(), quality=90)
        for i in range(count)
    )


def entry_of(frames: Sequence[Frame], label: str, classification: str = "confirmed") -> Entry:
    return Entry(
        hash=frames_digest(frames),
        entry_id=f"e-{label}",
        category="ncii",
        classification=classification,
        source_kind="submission",
        source_ref=None,
        first_seen=datetime(2026, 12, 1, tzinfo=UTC),
        expires=None,
    )


def test_the_stored_frames_are_always_those_of_the_standing_records(tmp_path: Path) -> None:
    kind = hash_type("vpdq")
    store = NodeStore(tmp_path / "node.db")
    now = datetime(2026, 12, 7, tzinfo=UTC)
    a, b, c = video(1), video(2), video(3)
    ea, eb, ec = entry_of(a, "a"), entry_of(b, "b"), entry_of(c, "c")
    files = {frames_digest(v): encode_frames(v) for v in (a, b, c)}

    def commit(
        state: EntryState,
        changes: tuple[list[bytes], list[bytes]] | None,
        frames: dict[bytes, bytes] | None,
    ) -> None:
        trust = ListTrust(VIDEOS, state=state.digest())
        store.commit_update(VIDEOS, "vpdq", state, trust, [], now, changes, frames=frames)

    def held() -> dict[str, Sequence[Frame]]:
        state = store.stored_list(VIDEOS, "vpdq").state
        assert isinstance(state, EntryState)
        found = store.standing_frames(VIDEOS, state)
        return {entry.entry_id: frames for entry, frames in found.items()}

    # A snapshot: every record's frames; one given for no record is not kept.
    first = EntryState.from_entries(kind, [ea, eb])
    commit(first, None, {ea.hash: files[ea.hash], eb.hash: files[eb.hash], ec.hash: files[ec.hash]})
    assert held() == {"e-a": a, "e-b": b}

    # A delta adds c and removes a.
    second = EntryState.from_entries(kind, [eb, ec])
    commit(second, ([ea.line], [ec.line]), {ec.hash: files[ec.hash]})
    assert held() == {"e-b": b, "e-c": c}
    assert store.frame_hashes(VIDEOS) == sorted([eb.hash, ec.hash])

    # b's metadata changes: same hash, same frames (none sent again).
    eb2 = entry_of(b, "b", classification="reported")
    third = EntryState.from_entries(kind, [eb2, ec])
    commit(third, ([eb.line], [eb2.line]), {})
    assert held() == {"e-b": b, "e-c": c}

    # A rebuild from a snapshot: c's frames, held, stay; a's, given, are added.
    fourth = EntryState.from_entries(kind, [ea, ec])
    commit(fourth, None, {ea.hash: files[ea.hash], ec.hash: files[ec.hash]})
    assert held() == {"e-a": a, "e-c": c}
    assert store.frame_hashes(VIDEOS) == sorted([ea.hash, ec.hash])

    # Without frames a rebuild keeps only the standing records' frames.
    fifth = EntryState.from_entries(kind, [ec])
    commit(fifth, None, None)
    assert store.frame_hashes(VIDEOS) == [ec.hash]
    store.close()


def test_a_failed_commit_keeps_the_frames_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = hash_type("vpdq")
    store = NodeStore(tmp_path / "node.db")
    now = datetime(2026, 12, 7, tzinfo=UTC)
    a, b, c = video(1), video(2), video(3)
    ea, eb, ec = entry_of(a, "a"), entry_of(b, "b"), entry_of(c, "c")
    first = EntryState.from_entries(kind, [ea, eb])
    store.commit_update(
        VIDEOS, "vpdq", first, ListTrust(VIDEOS, state=first.digest()), [], now,
        frames={ea.hash: encode_frames(a), eb.hash: encode_frames(b)},
    )  # fmt: skip
    before = rows(store)
    written: list[bytes] = []

    def keep_then_fail(
        db: sqlite_utils.Database, hub: str, list_id: str, frames: dict[bytes, bytes]
    ) -> None:
        """The rows are written, then the disk fails before the commit."""
        kept(db, hub, list_id, frames)
        written.extend(frames)
        raise sqlite3.OperationalError("disk I/O error")

    kept = frame_rows.keep
    monkeypatch.setattr(frame_rows, "keep", keep_then_fail)
    second = EntryState.from_entries(kind, [eb, ec])
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        store.commit_update(
            VIDEOS, "vpdq", second, ListTrust(VIDEOS, state=second.digest()), [], now,
            ([ea.line], [ec.line]), frames={ec.hash: encode_frames(c)},
        )  # fmt: skip
    assert written == [ec.hash]  # the failure came after the frames rows were written
    assert rows(store) == before
    assert store.frame_hashes(VIDEOS) == sorted([ea.hash, eb.hash])
    stored = store.stored_list(VIDEOS, "vpdq").state
    assert stored == first
    store.close()


# ------------------------------------------------------------------ the command line


async def test_match_and_scan_hash_video_files_and_report_the_shares(
    node: Served, clips: Clips, collection: tuple[str, bytes], tmp_path: Path
) -> None:
    entry, digest = collection
    await sync_node(node.client)
    out = ok(await invoke("match", "--home", str(node.home), str(clips.reencoded)))
    line = next(text for text in out.splitlines() if f"MATCH {VIDEOS} " in text)
    assert "vpdq frames: query " in line
    assert f"listed {digest.hex()}" in line
    assert entry in line
    assert no_match(await invoke("match", "--home", str(node.home), str(clips.unrelated)))
    frames = hashed(clips.reencoded).encoded.hex()
    asked = ok(await invoke("match", "--home", str(node.home), "--type", "vpdq", frames))
    assert f"MATCH {VIDEOS} " in asked
    assert "vpdq frames: query " in asked
    # A record's hash names frames: no query, and no candidate for 64 hex digits.
    guessed = await invoke("match", "--home", str(node.home), digest.hex())
    assert "could be pdq or sha256;" in guessed.output
    assert guessed.exit_code == 1

    hosted = tmp_path / "hosted"
    hosted.mkdir()
    shutil.copy(clips.reencoded, hosted / "clip-0042.mp4")
    shutil.copy(clips.unrelated, hosted / "holiday")  # no extension: known by its bytes
    scanned = json.loads(ok(await invoke("scan", "--home", str(node.home), "--json", str(hosted))))
    videos = [m for m in scanned["matches"] if m["list"] == VIDEOS]
    assert [(m["content_id"], m["entry"]) for m in videos] == [("clip-0042.mp4", entry)]
    assert videos[0]["video"]["listed_share"][1] == len(
        {f.pdq for f in hashed(clips.listed).frames if f.quality >= 50}
    )
    assert scanned["new_matches"] == 1
    again = json.loads(ok(await invoke("scan", "--home", str(node.home), "--json", str(hosted))))
    assert again["new_matches"] == 0
    assert [m["match_id"] for m in again["matches"]] == [videos[0]["match_id"]]


async def test_another_worker_takes_up_the_video_list_from_the_store(
    node: Served, clips: Clips, collection: tuple[str, bytes]
) -> None:
    """A second process over the same store builds the video index from the frames
    the first one committed, and matches by them."""
    entry, _ = collection
    serving = Node.open(node.home)
    try:
        await sync_node(node.client)
        assert await take_up(serving) == [f"{VIDEOS} v1", f"{VIDEO_MD5} v1"]
        assert VIDEOS not in serving.matching.first.indexes  # never matched by hash
        found = serving.matching.look(video_queries(hashed(clips.reencoded)), one_item=True)
        assert [(m.list_id, m.entry.entry_id if m.entry else None) for m in found] == [
            (VIDEOS, entry)
        ]
        assert found[0].listed_share is not None
    finally:
        serving.close()
