"""The bridge following a ``vpdq`` list: each listed video reaches pytx as a ``VPDQSignal``.

The hub is the real hub app on loopback with a public ``vpdq`` list of entries; a
video is listed as an operator lists one: its frames kept (``hub.frames.put``), an
entry staged with their SHA-256 as its hash, the list published (which publishes the
frames files beside the records). The bridge reads the published tree through a
mirror serving it from the hub's database, as a CDN would, and the hub's app for the
rest. The clips are made with FFmpeg and hashed twice:
by the node's hasher (what is listed) and by python-threatexchange's own
(``VPDQSignal.hash_from_file``, what a pytx user matches with); pytx's own
``VPDQIndex`` matches one against the other.
"""

from __future__ import annotations

import dataclasses
import pickle
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from threatexchange.extensions.vpdq.vpdq import VPDQSignal
from threatexchange.extensions.vpdq.vpdq_index import VPDQIndex
from threatexchange.extensions.vpdq.vpdq_util import VpdqCompactFeature, json_to_vpdq
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.utils import dataclass_json

from bench.video_clips import listed_photos, pattern, slideshow
from hashhub_tx import (
    CheckpointError,
    HashhubCheckpoint,
    HashhubCollabConfig,
    HashhubSignalExchangeAPI,
    OpinionError,
)
from hashhub_tx.config import HubUrl, RootPin
from hashhub_tx.exchange import HashhubDelta, HashhubSignalMetadata
from hashhub_tx.video import frames_of_signal, record_of_signal, signal_of_frames
from hub.services.entries import EntryDraft
from node.video import hash_video
from protocol import b64decode, b64encode
from protocol.video import Frame, encode_frames, frames_digest
from tests.node.fixtures_sync import Clock, HubApp
from tests.node.hostile import HostileServer
from tests.txbridge.conftest import BRIDGE_NODE, Bridge, enrolled_home, fetch, merged
from tests.txbridge.test_acks import acks, opinion

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

VIDEOS = "ncii-entries-vpdq"
SIGNALS = (PdqSignal, VPDQSignal)


@dataclass(frozen=True)
class Clips:
    """Two unrelated clips, made once a session: ``listed`` is listed at the hub."""

    listed: Path
    other: Path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    directory = tmp_path_factory.mktemp("bridge-videos")
    return Clips(
        listed=pattern(directory / "pattern.mp4", 12),
        other=slideshow(listed_photos(directory, 3), directory / "pictures.mp4"),
    )


@dataclass
class VideoHub:
    """The real hub with the list of videos; ``list_video`` stages and publishes one."""

    app: HubApp
    mirror: HostileServer

    def list_video(self, frames: list[Frame]) -> tuple[str, bytes]:
        """List a video by its frames: its entry id and record hash."""
        with self.app.opened() as hub:
            digest = hub.frames.put(encode_frames(frames))
            view = hub.entries.add(
                EntryDraft(((VIDEOS, digest.hex()),), "ncii", "confirmed", "submission")
            )
            hub.publishing.publish([VIDEOS])
        return view.entry, digest

    def retract(self, entry_id: str) -> None:
        with self.app.opened() as hub:
            hub.entries.retract(entry_id, "withdrawn")
            hub.publishing.publish([VIDEOS])

    def exchange(self, snapshot_lag: int = 1000) -> HashhubSignalExchangeAPI:
        collab = HashhubCollabConfig(
            name="videos",
            hub_url=HubUrl(self.app.url),
            pinned_root_sha256=RootPin(self.app.pinned()),
            mirrors=[HubUrl(self.mirror.url)],
        )
        return HashhubSignalExchangeAPI(collab, now=self.app.clock, snapshot_lag=snapshot_lag)

    async def fetch(
        self, checkpoint: HashhubCheckpoint | None, snapshot_lag: int = 1000
    ) -> list[HashhubDelta]:
        return await fetch(self.exchange(snapshot_lag), checkpoint, SIGNALS)


@pytest.fixture
async def videos(tmp_path: Path) -> AsyncIterator[VideoHub]:
    app = HubApp.init(tmp_path / "hub", Clock())
    app.create_list(VIDEOS, "vpdq", list_format="entries", public=True, snapshot_every=2)
    await app.start()
    mirror = await HostileServer.serving(app.home).start()
    try:
        yield VideoHub(app, mirror)
    finally:
        await mirror.close()
        await app.stop()


def frames_of(path: Path) -> list[Frame]:
    return list(hash_video(path).frames)


def compact(frames: list[Frame]) -> list[VpdqCompactFeature]:
    return [VpdqCompactFeature(f.pdq.hex(), f.quality, f.millis / 1000) for f in frames]


def vpdq_records(deltas: list[HashhubDelta]) -> dict[str, HashhubSignalMetadata | None]:
    return {key: value for (kind, key), value in merged(deltas).items() if kind == "vpdq"}


async def test_a_listed_video_reaches_pytx_as_its_frames_and_matches_the_clip(
    videos: VideoHub, clips: Clips
) -> None:
    listed = frames_of(clips.listed)
    entry_id, digest = videos.list_video(listed)

    records = vpdq_records(await videos.fetch(None))

    ((signal, meta),) = records.items()
    assert VPDQSignal.validate_signal_str(signal) == signal
    # The clip is short: pytx's three significant digits of seconds keep every time.
    assert json_to_vpdq(signal) == compact(listed)
    assert frames_of_signal(signal) == listed
    assert record_of_signal(signal) == digest
    assert meta is not None
    assert meta.lists == [VIDEOS]
    assert meta.signal == digest.hex()
    assert meta.entries[VIDEOS].entry == entry_id

    # pytx hashes the clip itself; its own index, built from the fetched signal, finds it.
    theirs = VPDQSignal.hash_from_file(clips.listed)
    assert VPDQSignal.compare_hash(theirs, signal).match
    index = VPDQIndex.build([(signal, meta)])
    (found,) = index.query(theirs)
    assert found.metadata == meta
    assert index.query(VPDQSignal.hash_from_file(clips.other)) == []


async def test_a_retracted_video_is_tombstoned_by_its_frames(
    videos: VideoHub, clips: Clips
) -> None:
    gone_id, _ = videos.list_video(frames_of(clips.listed))
    first = await videos.fetch(None)
    (gone,) = vpdq_records(first)

    _, kept_digest = videos.list_video(frames_of(clips.other))
    videos.retract(gone_id)
    # The pickled checkpoint, as the pytx CLI keeps it, resumes the fetch.
    resumed = pickle.loads(pickle.dumps(first[-1].checkpoint))
    second = await videos.fetch(resumed)

    kept = signal_of_frames(encode_frames(frames_of(clips.other)))
    records = vpdq_records(second)
    assert records.keys() == {gone, kept}
    assert records[gone] is None
    kept_meta = records[kept]
    assert kept_meta is not None
    assert kept_meta.signal == kept_digest.hex()
    # Only the standing record's frames are kept.
    assert second[-1].checkpoint.lists[VIDEOS].frames == {
        kept_digest.hex(): b64encode(encode_frames(frames_of(clips.other)))
    }


async def test_the_checkpoint_keeps_the_frames_and_resumes_from_json(
    videos: VideoHub, clips: Clips
) -> None:
    _, digest = videos.list_video(frames_of(clips.listed))
    first = await videos.fetch(None)
    checkpoint = first[-1].checkpoint
    stored = checkpoint.lists[VIDEOS].frames
    assert stored is not None
    assert b64decode(stored[digest.hex()], "frames") == encode_frames(frames_of(clips.listed))

    # As HMA keeps it: JSON, and back. Nothing new: nothing is sent again.
    reopened = dataclass_json.dataclass_loads(
        dataclass_json.dataclass_dumps(checkpoint), HashhubCheckpoint
    )
    assert reopened == checkpoint
    again = await videos.fetch(reopened)
    assert merged(again) == {}
    assert again[-1].checkpoint.lists[VIDEOS].frames == stored

    # Frames that are not the record's, or a record without its frames, stop the bridge.
    other = b64encode(encode_frames(frames_of(clips.other)))
    for forged in ({digest.hex(): other}, {}, {**stored, "00" * 32: other}):
        lists = {VIDEOS: dataclasses.replace(checkpoint.lists[VIDEOS], frames=forged)}
        with pytest.raises(CheckpointError, match="frames"):
            await videos.fetch(dataclasses.replace(checkpoint, lists=lists))


async def test_a_fetch_from_a_snapshot_keeps_the_frames_of_every_standing_video(
    videos: VideoHub, clips: Clips
) -> None:
    listed, other = frames_of(clips.listed), frames_of(clips.other)
    gone_id, _ = videos.list_video(listed)
    _, digest = videos.list_video(other)
    videos.retract(gone_id)
    videos.list_video(listed[:5])  # v4: a snapshot of the two videos standing

    # A new bridge starts from the snapshot: its frames are exactly the standing
    # records', and what it sends is keyed by them.
    rebuilt = await videos.fetch(None)
    assert videos.mirror.count(r"/snapshot/4\.bin$") == 1
    assert videos.mirror.count(r"/body/") == 0

    standing = {digest: other, frames_digest(listed[:5]): listed[:5]}
    assert rebuilt[-1].checkpoint.lists[VIDEOS].frames == {
        record.hex(): b64encode(encode_frames(frames)) for record, frames in standing.items()
    }
    records = vpdq_records(rebuilt)
    assert set(records) == {signal_of_frames(encode_frames(f)) for f in standing.values()}
    assert {meta.signal for meta in records.values() if meta is not None} == {
        record.hex() for record in standing
    }


FRAME_PDQ = [bytes([n]) * 32 for n in range(3)]


def features(*parts: tuple[int, int, float]) -> str:
    """A ``VPDQSignal`` string of (pdq index, quality, seconds) frames, as pytx writes it."""
    from threatexchange.extensions.vpdq.vpdq_util import vpdq_to_json

    return vpdq_to_json([VpdqCompactFeature(FRAME_PDQ[n].hex(), q, s) for n, q, s in parts])


def test_a_signal_maps_back_to_frames_sorted_to_the_nearest_millisecond() -> None:
    signal = features((2, 90, 2.0), (0, 100, 0.0), (1, 49, 1.0))
    assert frames_of_signal(signal) == [
        Frame(0, FRAME_PDQ[0], 100),
        Frame(1000, FRAME_PDQ[1], 49),
        Frame(2000, FRAME_PDQ[2], 90),
    ]
    assert record_of_signal(signal) == frames_digest(frames_of_signal(signal))
    # pytx's JSON written by another hand: times in finer steps, rounded.
    assert frames_of_signal(
        f'["{FRAME_PDQ[0].hex()},80,0.0004", "{FRAME_PDQ[1].hex()},80,1.2346"]'
    ) == [
        Frame(0, FRAME_PDQ[0], 80),
        Frame(1235, FRAME_PDQ[1], 80),
    ]


@pytest.mark.parametrize(
    ("signal", "message"),
    [
        (features((0, 90, 1.0), (1, 90, 1.0)), "two frames at 1000 ms"),
        (
            f'["{FRAME_PDQ[0].hex()},90,0.0", "{FRAME_PDQ[1].hex()},90,0.0002"]',
            "two frames at 0 ms",
        ),
        ("[]", "no frame"),
        ('{"0": 1}', "not a vPDQ signal"),
        (f'["{FRAME_PDQ[0].hex()},101,1.0"]', "not a vPDQ signal"),
        ('["abc,90,1.0"]', "not a vPDQ signal"),
        (f'["{FRAME_PDQ[0].hex()},90,1e10"]', "out of range"),
    ],
)
def test_a_signal_that_is_not_a_videos_frames_is_refused(signal: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        record_of_signal(signal)


def test_our_signal_of_frames_is_pytxs_json() -> None:
    frames = [Frame(0, FRAME_PDQ[0], 100), Frame(1500, FRAME_PDQ[1], 7)]
    signal = signal_of_frames(encode_frames(frames))
    assert json_to_vpdq(signal) == compact(frames)
    assert frames_of_signal(signal) == frames


async def test_a_video_labelled_by_its_frames_or_its_record_is_counted_for_the_record(
    videos: VideoHub, clips: Clips, tmp_path: Path
) -> None:
    _, digest = videos.list_video(frames_of(clips.listed))
    home = enrolled_home(tmp_path / "bridge-node", videos.app, BRIDGE_NODE, [VIDEOS])
    bridge = Bridge(videos.app, home)
    api = bridge.api(mirrors=[HubUrl(videos.mirror.url)])
    (signal,) = vpdq_records(await fetch(api, None, SIGNALS))

    await opinion(api, VPDQSignal, signal, tags={"blocked"})
    await opinion(api, VPDQSignal, digest.hex(), tags={"actioned"})

    last = [a for a in acks(videos.app, bridge) if a.list_id == VIDEOS][-1]
    assert last.counts.hashes == {digest.hex(): {"matched": 2, "blocked": 1, "actioned": 1}}
    twice = features((0, 90, 1.0), (1, 90, 1.0))
    with pytest.raises(OpinionError, match=r"two frames at 1000 ms.*by its record hash"):
        await opinion(api, VPDQSignal, twice, tags={"blocked"})
    # pytx keeps three significant digits of a time: twenty minutes at one frame a
    # second no longer read back as frames, and the error says to use the record hash.
    long = signal_of_frames(
        encode_frames([Frame(n * 1000, FRAME_PDQ[n % 2], 90) for n in range(1200)])
    )
    with pytest.raises(OpinionError, match="label the match by its record hash instead"):
        await opinion(api, VPDQSignal, long, tags={"blocked"})
