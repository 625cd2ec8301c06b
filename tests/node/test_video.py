"""Video hashing (vPDQ): vpdq's own frames, robustness to edits, one test per rejection.

The videos are made here with ``ffmpeg``: a test pattern (``testsrc2``, fast motion),
a slideshow of photos panned slowly and cut every four seconds (the PDQ test photos
and scikit-image's), an unrelated slideshow, and each edit of the first two. (A
picture that is mostly smooth, such as scikit-image's ``rocket`` sky, is where a corner
logo costs most: its four frames moved 50 to 80 bits, so it is not one of them.) Every
hostile file is a real one: truncated, its ``moov`` atom renamed or garbled, a PNG,
random bytes, a container or codec not accepted, a FIFO.

Matching is measured with the rule of docs/adr/0021: frames of quality 50 or more,
a frame matches within PDQ distance 31, a video matches when at least 80 % of the
query's frames or of the listed video's are matched; a side with fewer than three
good frames does not count. Run with ``-s`` to see the shares and distances.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import psutil
import pytest
import vpdq

from bench.video_clips import (
    X264,
    ffmpeg,
    listed_photos,
    pattern,
    slideshow,
    unrelated_photos,
)
from node.errors import NodeConfigError
from node.video import (
    DEFAULT_VIDEO_LIMITS,
    SECONDS_PER_FRAME,
    VideoHash,
    VideoLimits,
    VideoRejected,
    frames_of,
    hash_video,
)
from protocol.video import MAX_FRAMES, Frame, encode_frames

QUALITY_FLOOR = 50
MATCH_DISTANCE = 31
MATCH_SHARE = 0.8
MIN_GOOD_FRAMES = 3

SECONDS = 20
"""Every base clip's length: 10 % of it is two whole seconds."""

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


@dataclass(frozen=True)
class Clips:
    """The base clips, made once a session."""

    directory: Path
    pictures: Path
    pattern: Path
    unrelated: Path


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    directory = tmp_path_factory.mktemp("videos")
    return Clips(
        directory=directory,
        pictures=slideshow(listed_photos(directory, 5), directory / "pictures.mp4"),
        pattern=pattern(directory / "pattern.mp4", SECONDS),
        unrelated=slideshow(unrelated_photos(), directory / "unrelated.mp4"),
    )


@cache
def hashed(path: Path) -> VideoHash:
    return hash_video(path)


@pytest.fixture(scope="session")
def eight_k(clips: Clips) -> Path:
    """One 7680 × 4320 frame: decoding it needs more than 600 MB of address space."""
    out = clips.directory / "eight-k.mp4"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc2=size=7680x4320:rate=1:duration=1"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", out),
    )
    return out


EIGHT_K_LIMITS = VideoLimits(max_pixels=7680 * 4320)


# ---------------------------------------------------------------- the matching rule


def distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def good(frames: Sequence[Frame]) -> list[Frame]:
    return [f for f in frames if f.quality >= QUALITY_FLOOR]


def share_matched(side: Sequence[Frame], other: Sequence[Frame]) -> float | None:
    """The share of ``side``'s good frames within the distance of one of ``other``'s;
    ``None`` when ``side`` has too few good frames to count."""
    mine, theirs = good(side), good(other)
    if len(mine) < MIN_GOOD_FRAMES:
        return None
    hits = sum(any(distance(a.pdq, b.pdq) <= MATCH_DISTANCE for b in theirs) for a in mine)
    return hits / len(mine)


@dataclass(frozen=True)
class Agreement:
    query_share: float | None
    listed_share: float | None
    worst_distance: int
    """The largest, over the query's good frames, of the distance to its nearest listed frame."""

    @property
    def matches(self) -> bool:
        counted = [s for s in (self.query_share, self.listed_share) if s is not None]
        return bool(counted) and max(counted) >= MATCH_SHARE

    def row(self, label: str) -> str:
        def shown(share: float | None) -> str:
            return "  —  " if share is None else f"{share:5.2f}"

        return (
            f"{label:34} query {shown(self.query_share)} listed {shown(self.listed_share)}"
            f" worst distance {self.worst_distance:3} -> {'MATCH' if self.matches else 'no'}"
        )


def agreement(query: Sequence[Frame], listed: Sequence[Frame]) -> Agreement:
    worst = max(min(distance(a.pdq, b.pdq) for b in good(listed)) for a in good(query))
    return Agreement(share_matched(query, listed), share_matched(listed, query), worst)


# ---------------------------------------------------------------- the frames are vpdq's


@pytest.mark.parametrize("clip", ["pictures", "pattern"])
def test_frames_are_vpdqs_own_one_a_second(clips: Clips, clip: str) -> None:
    path: Path = getattr(clips, clip)
    video = hash_video(path)
    reference = vpdq.computeHash(str(path), seconds_per_hash=SECONDS_PER_FRAME)
    assert [(f.pdq.hex(), f.quality, f.millis) for f in video.frames] == [
        (f.hex, f.quality, round(f.timestamp * 1000)) for f in reference
    ]
    assert [f.millis for f in video.frames] == [1000 * n for n in range(SECONDS)]
    assert video.digest == hashlib.sha256(encode_frames(video.frames)).digest()
    assert video.encoded == encode_frames(video.frames)
    data = path.read_bytes()
    assert video.md5 == hashlib.md5(data, usedforsecurity=False).digest()
    assert video.sha256 == hashlib.sha256(data).digest()
    assert (video.width, video.height, video.codec) == (480, 360, "h264")
    assert video.container.split(",")[0] == "mov"
    assert video.duration == pytest.approx(SECONDS)


def test_bytes_hash_like_the_file_through_a_removed_scratch_copy(
    clips: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    from_bytes = hash_video(clips.pattern.read_bytes())
    assert from_bytes == hashed(clips.pattern)
    assert list(scratch.iterdir()) == []
    with pytest.raises(VideoRejected):
        hash_video(clips.pattern.read_bytes()[:50_000])
    assert list(scratch.iterdir()) == []


def test_the_scratch_copy_is_private_while_it_is_hashed(
    eight_k: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    thread = threading.Thread(target=hash_video, args=(eight_k.read_bytes(), EIGHT_K_LIMITS))
    thread.start()
    modes = set()
    while thread.is_alive():
        for copy in scratch.iterdir():
            with contextlib.suppress(FileNotFoundError):
                modes.add(copy.stat().st_mode & 0o777)
        time.sleep(0.005)
    thread.join()
    assert modes == {0o600}
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("name", ["-", "-i", "-y.mp4", "concat:x.mp4", "http:x.mp4"])
def test_a_name_like_an_option_or_a_protocol_is_a_file(
    clips: Clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    shutil.copy(clips.pattern, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert hash_video(Path(name)).frames == hashed(clips.pattern).frames


def test_a_cover_picture_beside_the_video_is_not_what_is_hashed(
    clips: Clips, tmp_path: Path
) -> None:
    covered = tmp_path / "covered.mp4"
    cover = clips.directory / "astronaut.png"
    ffmpeg(
        *("-i", cover, "-i", clips.pattern, "-map", "0", "-map", "1", "-c", "copy"),
        *("-disposition:v:0", "attached_pic", covered),
    )
    video = hash_video(covered)
    assert video.codec == "h264"
    assert video.frames == hashed(clips.pattern).frames


# ---------------------------------------------------------------- robustness to edits

EDITS: dict[str, Callable[[Path, Path], list[str | Path]]] = {
    "re-encoded at 100 kbit/s": lambda src, out: ["-i", src, *X264, "-b:v", "100k", out],
    "half resolution": lambda src, out: ["-i", src, "-vf", "scale=iw/2:ih/2", *X264, out],
    "10 % trimmed off each end": lambda src, out: [
        *("-ss", str(SECONDS // 10), "-i", src),
        *("-t", str(SECONDS - 2 * (SECONDS // 10)), *X264, out),
    ],
    "watermarked": lambda src, out: [
        *("-i", src, "-f", "lavfi", "-i", "testsrc=size=72x28:rate=25"),
        "-filter_complex",
        "[1:v]format=rgba,colorchannelmixer=aa=0.5[logo];[0:v][logo]overlay=W-w-8:8:shortest=1",
        *X264,
        out,
    ],
    "at 30 frames a second": lambda src, out: ["-i", src, "-vf", "fps=30", *X264, out],
}


@pytest.fixture(scope="session")
def edited(clips: Clips) -> Callable[[str, str], Path]:
    """An edit of a base clip, made on first use."""

    @cache
    def make(clip: str, edit: str) -> Path:
        out = clips.directory / f"{clip}-{edit.replace(' ', '-').replace('/', '')}.mp4"
        ffmpeg(*EDITS[edit](getattr(clips, clip), out))
        return out

    return make


@pytest.mark.parametrize("edit", list(EDITS))
@pytest.mark.parametrize("clip", ["pictures", "pattern"])
def test_an_edited_copy_matches_the_original(
    clips: Clips, edited: Callable[[str, str], Path], clip: str, edit: str
) -> None:
    original = hashed(getattr(clips, clip)).frames
    copy = hashed(edited(clip, edit))
    measured = agreement(copy.frames, original)
    print(measured.row(f"{clip}, {edit}"))
    assert measured.matches
    assert copy.md5 != hashed(getattr(clips, clip)).md5


def test_a_trim_off_the_second_keeps_slow_pictures_not_fast_motion(clips: Clips) -> None:
    """vpdq samples at whole seconds from the start, so a cut 1.5 s in samples every
    frame half a second away from the original's: a slow pan still matches, the test
    pattern (whose every part moves each frame) does not. A limit of vPDQ itself."""
    found = {}
    for clip in ("pictures", "pattern"):
        out = clips.directory / f"{clip}-off-beat.mp4"
        ffmpeg("-ss", "1.5", "-i", getattr(clips, clip), "-t", "17", *X264, out)
        found[clip] = agreement(hashed(out).frames, hashed(getattr(clips, clip)).frames)
        print(found[clip].row(f"{clip}, trimmed 1.5 s"))
    assert found["pictures"].matches
    assert not found["pattern"].matches


@pytest.mark.parametrize(
    ("query", "listed"),
    [("unrelated", "pictures"), ("pattern", "pictures"), ("pictures", "pattern")],
)
def test_an_unrelated_video_does_not_match(clips: Clips, query: str, listed: str) -> None:
    measured = agreement(
        hashed(getattr(clips, query)).frames, hashed(getattr(clips, listed)).frames
    )
    print(measured.row(f"{query} against {listed}"))
    assert not measured.matches
    assert measured.query_share == 0.0
    assert measured.listed_share == 0.0


# ---------------------------------------------------------------- rejections


def rejected(reason: str, source: Path | bytes, limits: VideoLimits = DEFAULT_VIDEO_LIMITS) -> str:
    """Hash ``source``; it must be rejected for ``reason`` in one clear line."""
    with pytest.raises(VideoRejected) as caught:
        hash_video(source, limits)
    message = str(caught.value)
    assert caught.value.reason == reason, message
    assert message.startswith(f"{reason}: ")
    assert "\n" not in message
    assert "\r" not in message
    assert len(message) < 300
    return message


def test_too_large_is_refused_before_anything(
    clips: Clips, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = clips.pattern.stat().st_size
    limits = VideoLimits(max_bytes=size - 1)
    monkeypatch.setenv("PATH", "")  # no ffprobe: reaching the probe would be a config error
    assert str(size) in rejected("too_large", clips.pattern, limits)
    assert str(size) in rejected("too_large", clips.pattern.read_bytes(), limits)


def test_without_ffprobe_the_node_is_misconfigured(
    clips: Clips, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(NodeConfigError, match="ffprobe"):
        hash_video(clips.pattern)


def test_too_long_by_the_declared_duration(clips: Clips) -> None:
    message = rejected("too_long", clips.pattern, VideoLimits(max_seconds=5))
    assert "20 s" in message


def test_too_many_frames_by_the_declared_duration(clips: Clips) -> None:
    message = rejected("too_many_frames", clips.pattern, VideoLimits(max_frames=5))
    assert f"{SECONDS} frames" in message


@pytest.fixture(scope="session")
def undeclared(clips: Clips) -> Path:
    """A WebM written to a pipe, as a browser records: its header declares no duration."""
    done = subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi"),
            *("-i", "testsrc2=size=320x240:rate=25:duration=10"),
            *("-c:v", "libvpx", "-b:v", "300k", "-f", "webm", "pipe:1"),
        ],
        check=True,
        capture_output=True,
    )
    out = clips.directory / "undeclared.webm"
    out.write_bytes(done.stdout)
    return out


def test_a_video_that_declares_no_duration_is_checked_by_its_frames(undeclared: Path) -> None:
    video = hash_video(undeclared)
    assert video.duration is None
    assert video.codec == "vp8"
    assert len(video.frames) == 10
    assert "past the limit" in rejected("too_long", undeclared, VideoLimits(max_seconds=5))
    assert "10 frames" in rejected("too_many_frames", undeclared, VideoLimits(max_frames=5))


def test_too_big_a_picture(clips: Clips) -> None:
    message = rejected("too_big_picture", clips.pattern, VideoLimits(max_pixels=480 * 360 - 1))
    assert "480 × 360" in message


def test_an_image_is_not_a_video(clips: Clips) -> None:
    png = (clips.directory / "astronaut.png").read_bytes()
    assert "image" in rejected("unsupported", png)


def test_random_bytes_are_not_a_video() -> None:
    rejected("unsupported", random.Random(7).randbytes(100_000))


def test_an_empty_upload_is_not_a_video() -> None:
    rejected("unsupported", b"")


def test_a_truncated_mp4_is_corrupt(clips: Clips, tmp_path: Path) -> None:
    """Cut in half: with its index at the end (x264's default), the index is gone; with
    its index at the front (``+faststart``), the frames stop halfway."""
    assert "moov atom not found" in rejected("corrupt", clips.pattern.read_bytes()[:200_000])
    front = tmp_path / "faststart.mp4"
    ffmpeg("-i", clips.pattern, "-c", "copy", "-movflags", "+faststart", front)
    data = front.read_bytes()
    rejected("corrupt", data[: len(data) // 2])


def test_an_mp4_without_its_moov_atom_is_corrupt(clips: Clips) -> None:
    data = clips.pattern.read_bytes()
    at = data.rindex(b"moov")
    size = int.from_bytes(data[at - 4 : at], "big")
    removed = data[: at - 4] + data[at - 4 + size :]
    assert "moov atom not found" in rejected("corrupt", removed)
    renamed = data[:at] + b"xxxx" + data[at + 4 :]
    assert "moov atom not found" in rejected("corrupt", renamed)
    garbled = data[: at + 4] + random.Random(3).randbytes(size - 8) + data[at - 4 + size :]
    rejected("corrupt", garbled)


def test_a_container_not_accepted(tmp_path: Path) -> None:
    nut = pattern(tmp_path / "clip.nut", size="160x120", seconds=2)
    assert "nut" in rejected("unsupported", nut)


def test_a_playlist_of_other_files_is_not_a_video(clips: Clips) -> None:
    """An HLS playlist or an ffconcat script would make FFmpeg open files (or URLs) the
    uploader names: refused, whatever it points at."""
    hls = f"#EXTM3U\n#EXT-X-TARGETDURATION:20\n#EXTINF:20.0,\n{clips.pattern}\n#EXT-X-ENDLIST\n"
    assert "hls" in rejected("unsupported", hls.encode())
    rejected("unsupported", f"ffconcat version 1.0\nfile '{clips.pattern}'\n".encode())


def test_a_codec_not_accepted(tmp_path: Path) -> None:
    mkv = tmp_path / "lossless.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:duration=2", "-c:v", "ffv1", mkv)
    assert "ffv1" in rejected("unsupported", mkv)


def test_sound_alone_is_not_a_video(tmp_path: Path) -> None:
    m4a = tmp_path / "sound.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", m4a)
    assert "no video stream" in rejected("unsupported", m4a)


def test_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert "regular file" in rejected("unsupported", fifo)
    assert "regular file" in rejected("unsupported", Path("/dev/zero"))
    assert time.monotonic() - started < 5


def test_hashing_past_its_deadline_is_killed(clips: Clips) -> None:
    message = rejected("timeout", clips.pattern, VideoLimits(max_hash_seconds=0.05))
    assert "hashing took longer than 0.05 s" in message
    message = rejected("timeout", clips.pattern, VideoLimits(max_probe_seconds=0.01))
    assert "reading the container took longer than 0.01 s" in message


def reference_features(path: Path) -> list[list[object]]:
    """vpdq's features of a file as the worker passes them on: hex, quality, seconds."""
    return [[f.hex, f.quality, f.timestamp] for f in vpdq.computeHash(str(path))]


def test_frames_keep_the_first_at_a_millisecond_in_ascending_time(clips: Clips) -> None:
    features = reference_features(clips.pattern)
    first, second = features[0], features[1]
    echo = [features[5][0], 100, 1.0004]  # another hash at the millisecond of ``second``
    frames = frames_of([second, first, echo, *features[2:]])
    assert frames == hashed(clips.pattern).frames
    assert frames[1].pdq.hex() == second[0]


def test_frames_quality_is_clamped_to_the_protocols_range(clips: Clips) -> None:
    features = reference_features(clips.pattern)
    features[0][1], features[1][1] = 101, -1
    frames = frames_of(features)
    assert (frames[0].quality, frames[1].quality) == (100, 0)


@pytest.mark.parametrize(
    "bad",
    [["00" * 31, 100, 0.0], ["zz" * 32, 100, 0.0], ["00" * 32, "100", 0.0], ["00" * 32, 100]],
)
def test_a_feature_vpdq_cannot_make_is_corrupt(bad: list[object]) -> None:
    with pytest.raises(VideoRejected) as caught:
        frames_of([bad])
    assert caught.value.reason == "corrupt"


def test_no_frames_is_corrupt() -> None:
    with pytest.raises(VideoRejected, match="no frame"):
        frames_of([])


def test_a_decoder_past_its_memory_cap_fails_alone(eight_k: Path) -> None:
    """320 MiB lets ffprobe and the worker start (about 280 MiB) but not decode 8K."""
    capped = VideoLimits(max_pixels=7680 * 4320, max_memory_bytes=320 * 2**20)
    assert "memory" in rejected("corrupt", eight_k, capped).lower()
    assert len(hash_video(eight_k, EIGHT_K_LIMITS).frames) == 1


def test_a_crashed_decoder_is_corrupt_with_its_signal(eight_k: Path) -> None:
    """The worker is killed mid-hash as a crashing decoder would be: the node lives on."""
    outcome: list[BaseException | VideoHash] = []

    def run() -> None:
        try:
            outcome.append(hash_video(eight_k, EIGHT_K_LIMITS))
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    worker = None
    while worker is None and time.monotonic() < deadline and thread.is_alive():
        for child in psutil.Process().children():
            try:
                if "hash" in child.cmdline() and any("video_worker" in a for a in child.cmdline()):
                    worker = child
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.01)
    assert worker is not None, "the worker was never seen"
    worker.send_signal(signal.SIGSEGV)
    thread.join(60)
    [error] = outcome
    assert isinstance(error, VideoRejected)
    assert error.reason == "corrupt"
    assert "SIGSEGV" in str(error)
    assert "\n" not in str(error)


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize(
    "wrong",
    [
        {"max_frames": MAX_FRAMES + 1},
        {"max_frames": 0},
        {"max_bytes": 0},
        {"max_seconds": 0},
        {"max_hash_seconds": -1},
        {"formats": frozenset()},
    ],
)
def test_limits_are_checked(wrong: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"max|format"):
        VideoLimits(**wrong)  # type: ignore[arg-type]


def test_default_limits() -> None:
    assert DEFAULT_VIDEO_LIMITS.max_bytes == 512 * 2**20
    assert DEFAULT_VIDEO_LIMITS.max_seconds == 3 * 3600
    assert DEFAULT_VIDEO_LIMITS.max_frames == MAX_FRAMES
    assert DEFAULT_VIDEO_LIMITS.max_pixels == 3840 * 2160
    assert DEFAULT_VIDEO_LIMITS.max_hash_seconds == 600
    assert {"mov", "matroska", "webm", "avi", "mpegts", "ogg"} <= DEFAULT_VIDEO_LIMITS.formats
    assert {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4"} <= DEFAULT_VIDEO_LIMITS.codecs
