"""A node far behind a video list resynchronises from a snapshot without fetching again
the frames it holds (PROTOCOL.md §13.6 step 7: the frames of the records it lacks).

A real hub declares a ``vpdq`` list with a snapshot every second version; a node
behind it by more than its ``snapshot_lag`` takes the newest snapshot, whose records
are all new to the update, and asks its store which of them it already holds the
frames of. A proxy in front of the hub counts each frames file fetched: the video
the node held is fetched once in all, each new one once, and after the rebuild the
node holds the frames of exactly the records that stand.
"""

from __future__ import annotations

from pathlib import Path

from node.api.keys import NODE, SESSION
from node.service import run_sync
from protocol.layout import frames_path, snapshot_path
from tests.node.conftest import HubServer, init_node_home
from tests.node.hostile import HostileServer
from tests.node.test_entries_with_the_hub import admin, sync_node
from tests.node.test_video_lists import (
    VIDEO_MD5,
    VIDEOS,
    Clips,
    clips,
    hashed,
    list_video,
    serve_node,
)

__all__ = ["clips"]  # the module's clips fixture, made once


async def test_a_snapshot_rebuild_fetches_only_the_frames_the_node_lacks(
    tmp_path: Path, hub_server: HubServer, clips: Clips
) -> None:
    for list_id, type_name in ((VIDEOS, "vpdq"), (VIDEO_MD5, "md5")):
        await admin(
            hub_server,
            "/v1/admin/lists",
            {
                "id": list_id,
                "hash_type": type_name,
                "label": "ncii",
                "format": "entries",
                "snapshot_every": 2,
            },
        )
    _, first = await list_video(hub_server, clips.listed)  # v1
    proxy = await HostileServer.proxy(hub_server.url).start()
    try:
        home = init_node_home(
            tmp_path / "node",
            hub_server,
            node_id="platform-r",
            lists=[VIDEOS, VIDEO_MD5],
            hub_url=proxy.url,
            snapshot_lag=1,
        )
        async for node in serve_node(home):
            assert await sync_node(node.client) == {VIDEOS: "updated", VIDEO_MD5: "updated"}
            assert proxy.count(frames_path(VIDEOS, first.hex())) == 1
            _, second = await list_video(hub_server, clips.other)  # v2, a snapshot
            _, third = await list_video(hub_server, clips.unrelated)  # v3
            app = node.client.app
            assert app is not None
            outcomes = {o.list_id: o for o in await run_sync(app[NODE], app[SESSION])}
            assert outcomes[VIDEOS].status == "updated", outcomes[VIDEOS]
            assert outcomes[VIDEOS].rebuilt, "two versions behind a lag of one: a snapshot"
            assert proxy.count(snapshot_path(VIDEOS, 2)) == 1
            fetched = {
                name: proxy.count(frames_path(VIDEOS, record.hex()))
                for name, record in (("held", first), ("second", second), ("third", third))
            }
            assert fetched == {"held": 1, "second": 1, "third": 1}
            assert set(node.store.frame_hashes(VIDEOS)) == {first, second, third}
            found = {m["list"] for m in (await node.match(clips.listed.read_bytes()))["matches"]}
            assert VIDEOS in found
            assert hashed(clips.listed).digest == first
    finally:
        await proxy.close()
