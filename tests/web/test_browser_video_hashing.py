"""The browser's vPDQ frames (``hub/web/static/hashing/vpdq.js``) match the node's.

The submission page hashes a person's video on their own device and sends only its
frames; the nodes that match uploads hash videos with Meta's ``vpdq`` on FFmpeg
(``node.video.hash_video``). A video submitted from the browser must be blocked
when the node sees it, and when it sees a re-encoded copy. Each test drives
Debian's Chromium on a loopback page, on clips FFmpeg makes in the test (a pan
across a photo and a Mandelbrot zoom, as WebM/VP9 and MP4/H.264, ten seconds, at
25 and 30 fps and at NTSC's 29.97 and 23.976).

What is compared, clip by clip (the tables are printed; ``pytest -s`` shows them):

- **The frames' times.** vpdq keeps every ``trunc(frame rate)``-th decoded frame,
  at its number over the frame rate: at whole rates the frames shown at 0 s, 1 s,
  2 s…; at 29.97 fps frames 0, 29, 58… at 0 s, 0.968 s, 1.935 s… The browser
  measures the rate from the frames' timestamps and seeks to those instants (the
  rate it used is checked too). Both sides must have the same number of frames,
  each pair within one frame interval of the video (they were equal to the
  millisecond in every run). Sampling at whole seconds instead fails at 29.97 fps:
  the frames drift apart, and only 4 or 5 of the pan's 11 frames agree (checked).
- **Each frame's PDQ distance**, at most ``FRAME_BITS``. VP9 and H.264 decoders are
  bit-exact, so the browser and FFmpeg decode the same YUV picture; what differs is
  the conversion to RGB (Chromium's by the stream's colour tags and its own chroma
  upsampling, vpdq's swscale assuming BT.601). Measured over the 73 frames of the
  seven clips: 42 frames 0 bits apart, 30 frames 2 bits, one frame 4 bits; the
  same in repeated runs. The bound is 8 bits, twice the worst seen, and far under
  PDQ's match distance of 31; consecutive frames of each clip are 76 bits apart
  or more (checked to be over the bound), so a frame taken off its instant fails.
  Qualities within ``QUALITY_POINTS`` (all were equal).
- **The match** by PROTOCOL.md §6.4 (``protocol.video.match_video``): the
  browser's frames match the node's frames of the same file, and the node's frames
  of a re-encoded copy (smaller, H.264, lower quality), and not those of another
  video.

And the §6.3 encoding and SHA-256 that the JavaScript computes equal
``protocol.video.encode_frames`` / ``frames_digest``; a corrupt file and a
non-video are refused with a clear message; a chosen file is hashed without a
request; a video turned by its display matrix (a phone's) is hashed as the node
hashes it, as stored.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import FilePayload, Page, Request

from node.video import SECONDS_PER_FRAME, VideoHash, hash_video
from protocol.video import Frame, encode_frames, frames_digest, match_video
from tests.web.hashing_support import hashing_page_of, pdq_distance
from tests.web.video_support import (
    CLIP_SECONDS,
    CLIPS,
    MP4_H264,
    OTHER_VIDEO,
    WEBM_VP9,
    Clip,
    frames_from_browser,
    make_clip,
    reencode,
    tag_rotation,
    video_app,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

FRAME_BITS = 8
QUALITY_POINTS = 5
CORRUPT = "corrupt.webm"
NOT_A_VIDEO = "notes.txt"
CLIP_NAMES = [clip.name for clip in CLIPS]
TURNED_SOURCE = "bridge-pan-h264.mp4"
TURNED = {  # name: degrees its display matrix turns it
    "turned-90.mp4": 90,
    "turned-180.mp4": 180,
    "turned-270.mp4": 270,
    "turned-90-header-last.mov": 90,
}

Answer = dict[str, object]


@dataclass
class VideoPage:
    """The module's page, the clips' folder, every uncaught error the page threw, what
    the browser says it plays, and each clip's frames once hashed (browser and node)."""

    page: Page
    folder: Path
    errors: list[str] = field(default_factory=list)
    playable: dict[str, dict[str, object]] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    node_hashes: dict[str, VideoHash] = field(default_factory=dict)


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every clip, made once by FFmpeg, plus a re-encoded copy of each."""
    folder = tmp_path_factory.mktemp("clips")
    for clip in (*CLIPS, OTHER_VIDEO):
        made = make_clip(clip, folder)
        reencode(made, folder / f"reencoded-{clip.name}.mp4")
    for name, degrees in TURNED.items():
        tag_rotation(folder / TURNED_SOURCE, folder / name, degrees)
    return folder


def served_files(folder: Path) -> dict[str, bytes]:
    names = [clip.name for clip in (*CLIPS, OTHER_VIDEO)] + list(TURNED)
    files = {name: (folder / name).read_bytes() for name in names}
    whole = files[CLIPS[0].name]
    files[CORRUPT] = whole[:200] + bytes(len(whole) - 200)  # the header cut off mid-way
    files[NOT_A_VIDEO] = b"plainly not a video\n" * 50
    return files


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def video_page(clip_folder: Path) -> AsyncIterator[VideoPage]:
    """One browser and one loopback page for the whole module (a launch costs seconds)."""
    async with hashing_page_of(
        video_app(served_files(clip_folder)), "globalThis.hashhubPDQ && globalThis.hashhubVPDQ"
    ) as (page, errors):
        loaded = VideoPage(page, clip_folder, errors)
        for mime in (WEBM_VP9, MP4_H264):
            loaded.playable[mime] = await page.evaluate("playable", mime)
        yield loaded


@pytest.fixture
def hashing_page(video_page: VideoPage) -> Iterator[Page]:
    """The loaded page; the test fails if the page threw an uncaught error meanwhile."""
    before = len(video_page.errors)
    yield video_page.page
    assert video_page.errors[before:] == []


def clip_named(name: str) -> Clip:
    [clip] = [clip for clip in (*CLIPS, OTHER_VIDEO) if clip.name == name]
    return clip


def skip_unless_playable(video_page: VideoPage, clip: Clip) -> None:
    said = video_page.playable[clip.mime]
    if clip.mime == MP4_H264 and not (said["canPlayType"] and said["mediaSource"]):
        pytest.skip(f"this Chromium does not decode H.264 ({clip.mime}: {said})")
    assert said["canPlayType"] == "probably", (clip.mime, said)


async def browser_frames(video_page: VideoPage, name: str) -> Answer:
    """``hashhubVPDQ.fromFile`` of a served clip, hashed once for the module."""
    if name not in video_page.answers:
        answer: Answer = await video_page.page.evaluate("vpdqOfFile", name)
        assert "error" not in answer, answer
        video_page.answers[name] = answer
    return video_page.answers[name]


def node_frames(video_page: VideoPage, name: str) -> tuple[Frame, ...]:
    """``node.video.hash_video`` of a file in the clips' folder, hashed once for the module."""
    if name not in video_page.node_hashes:
        video_page.node_hashes[name] = hash_video(video_page.folder / name)
    return video_page.node_hashes[name].frames


async def side_by_side(
    video_page: VideoPage, name: str
) -> tuple[Answer, list[dict[str, object]], tuple[Frame, ...], str]:
    """The browser's answer for clip ``name``, its frames, the node's frames of the same
    file and the table of the two (printed, for the log)."""
    answer = await browser_frames(video_page, name)
    node = node_frames(video_page, name)
    browser = answer["frames"]
    assert isinstance(browser, list)
    table = frame_table(name, browser, node)
    print("\n" + table)
    return answer, browser, node, table


def frame_table(name: str, browser: list[dict[str, object]], node: tuple[Frame, ...]) -> str:
    """Rows of (ms browser, ms node, quality browser, quality node, bits apart)."""
    lines = [
        f"{name}: browser vs node, frame by frame",
        f"{'ms web':>7} {'ms node':>7} {'q web':>5} {'q node':>6} {'bits':>4}",
    ]
    for ours, theirs in zip(browser, node, strict=False):
        bits = pdq_distance(str(ours["pdq"]), theirs.pdq.hex())
        lines.append(
            f"{ours['millis']:>7} {theirs.millis:>7} {ours['quality']:>5} {theirs.quality:>6}"
            f" {bits:>4}"
        )
    lines.append(f"{len(browser)} frames in the browser, {len(node)} on the node")
    return "\n".join(lines)


@pytest.mark.parametrize("name", CLIP_NAMES)
async def test_the_browser_takes_the_nodes_frames(
    video_page: VideoPage, hashing_page: Page, name: str
) -> None:
    clip = clip_named(name)
    skip_unless_playable(video_page, clip)
    answer, browser, node, table = await side_by_side(video_page, name)
    assert (answer["width"], answer["height"]) == (640, 360)
    assert answer["duration"] == pytest.approx(CLIP_SECONDS, abs=0.1)
    assert answer["frameRate"] == pytest.approx(float(clip.rate), abs=1e-9)
    assert len(browser) == len(node) >= CLIP_SECONDS / SECONDS_PER_FRAME, table
    one_frame_ms = 1000 / clip.rate
    for ours, theirs in zip(browser, node, strict=True):
        assert abs(int(str(ours["millis"])) - theirs.millis) <= one_frame_ms, table
        assert pdq_distance(str(ours["pdq"]), theirs.pdq.hex()) <= FRAME_BITS, table
        assert abs(int(str(ours["quality"])) - theirs.quality) <= QUALITY_POINTS, table
    # A frame one second off would be caught: consecutive frames are further apart.
    steps = [pdq_distance(a.pdq.hex(), b.pdq.hex()) for a, b in itertools.pairwise(node)]
    print(f"{name}: bits between consecutive node frames: {steps}")
    assert min(steps) > FRAME_BITS


@pytest.mark.parametrize("name", CLIP_NAMES)
async def test_a_video_submitted_from_the_browser_is_blocked_as_the_node_sees_it(
    video_page: VideoPage, hashing_page: Page, name: str
) -> None:
    """The story: frames submitted from the browser; the node hashes the same file, or
    a copy a platform re-encoded, and §6.4 matches it; another video does not match."""
    skip_unless_playable(video_page, clip_named(name))
    submitted = frames_from_browser(await browser_frames(video_page, name))
    same = match_video(node_frames(video_page, name), submitted)
    reencoded = match_video(node_frames(video_page, f"reencoded-{name}.mp4"), submitted)
    other = match_video(node_frames(video_page, OTHER_VIDEO.name), submitted)
    print(f"\n{name}: same file {same}\n  re-encoded {reencoded}\n  another video {other}")
    assert same.matched
    assert same.query_share == same.listed_share == (len(submitted), len(submitted))
    assert reencoded.matched
    assert not other.matched
    assert other.query_share[0] == other.listed_share[0] == 0


@pytest.mark.parametrize("name", list(TURNED))
async def test_a_video_turned_by_its_display_matrix_is_hashed_as_stored(
    video_page: VideoPage, hashing_page: Page, name: str
) -> None:
    """A phone held upright records frames on their side and a matrix saying how to
    turn them. The browser shows them turned; vpdq hashes them as stored, so the
    page turns them back (without that, 0 of 10 frames agreed at 90°)."""
    skip_unless_playable(video_page, clip_named(TURNED_SOURCE))
    answer, browser, node, table = await side_by_side(video_page, name)
    quarter = TURNED[name] % 180 == 90
    assert (answer["width"], answer["height"]) == ((360, 640) if quarter else (640, 360))
    assert len(browser) == len(node), table
    for ours, theirs in zip(browser, node, strict=True):
        assert pdq_distance(str(ours["pdq"]), theirs.pdq.hex()) <= FRAME_BITS, table
    assert match_video(frames_from_browser(answer), node).matched
    # The node's frames are the unturned clip's: the tag changes nothing it hashes.
    assert node == node_frames(video_page, TURNED_SOURCE)


@pytest.mark.parametrize("name", ["bridge-pan-2997-h264.mp4", "bridge-pan-2997-vp9.webm"])
async def test_at_2997_fps_whole_seconds_would_not_match(
    video_page: VideoPage, hashing_page: Page, name: str
) -> None:
    """Why the rate is measured: told 30 fps, the browser samples whole seconds, which
    drift from vpdq's instants (0.968 s apart) until the frames no longer agree."""
    skip_unless_playable(video_page, clip_named(name))
    answer: Answer = await hashing_page.evaluate(
        "([name, options]) => vpdqOfFile(name, options)", [name, {"frameRate": 30}]
    )
    frames = frames_from_browser(answer)
    assert [f.millis for f in frames] == [1000 * k for k in range(len(frames))]
    drifted = match_video(frames, node_frames(video_page, name))
    print(f"\n{name} sampled at whole seconds: {drifted}")
    assert not drifted.matched


async def test_the_encoding_and_its_sha256_are_the_protocols(
    video_page: VideoPage, hashing_page: Page
) -> None:
    answer = await browser_frames(video_page, CLIPS[0].name)
    frames = frames_from_browser(answer)
    encoded = await hashing_page.evaluate("encodeFrames", answer["frames"])
    assert bytes.fromhex(encoded["hex"]) == encode_frames(frames)
    assert encoded["sha256"] == frames_digest(frames).hex()
    assert encoded["sha256"] == hashlib.sha256(encode_frames(frames)).hexdigest()
    # Edges of the fields: quality 0 and 100, a time that needs all four bytes.
    expected = [
        Frame(millis=0, pdq=bytes(32), quality=0),
        Frame(millis=65_536, pdq=b"\xff" * 32, quality=100),
        Frame(millis=2**32 - 1, pdq=bytes.fromhex("0123456789abcdef" * 4), quality=57),
    ]
    edges = [{"millis": f.millis, "pdq": f.pdq.hex(), "quality": f.quality} for f in expected]
    encoded = await hashing_page.evaluate("encodeFrames", edges)
    assert bytes.fromhex(encoded["hex"]) == encode_frames(expected)
    assert encoded["sha256"] == frames_digest(expected).hex()


@pytest.mark.parametrize(
    ("frames", "words"),
    [
        ([], "at least one frame"),
        ([{"millis": 0, "pdq": "AB" * 32, "quality": 90}], "64 lowercase hex"),
        ([{"millis": 0, "pdq": "ab" * 32, "quality": 101}], "quality is an integer 0 to 100"),
        ([{"millis": -1, "pdq": "ab" * 32, "quality": 90}], "millis is an integer"),
        (
            [
                {"millis": 1000, "pdq": "ab" * 32, "quality": 90},
                {"millis": 1000, "pdq": "cd" * 32, "quality": 90},
            ],
            "frame 1 at 1000 ms is not after the one before (1000 ms)",
        ),
    ],
)
async def test_encode_refuses_frames_the_encoding_cannot_hold(
    hashing_page: Page, frames: list[dict[str, object]], words: str
) -> None:
    said = await hashing_page.evaluate(
        """(frames) => hashhubVPDQ.encode(frames)
                        .then(() => 'accepted', (e) => e.name + ': ' + e.message)""",
        frames,
    )
    assert said.startswith("TypeError: "), said
    assert words in said


async def test_a_corrupt_file_is_refused_clearly(hashing_page: Page) -> None:
    for name in (CORRUPT, NOT_A_VIDEO):
        answer = await hashing_page.evaluate(
            "([name, options]) => vpdqOfFile(name, options)", [name, {"seekTimeoutMs": 10_000}]
        )
        assert "frames" not in answer
        assert str(answer["error"]).startswith("This file is not a video the browser can play ("), (
            name,
            answer,
        )


async def test_options_are_checked(hashing_page: Page) -> None:
    said = await hashing_page.evaluate(
        """() => hashhubVPDQ.fromFile(new Blob(["x"]), {frameRate: 0})
                 .then(() => 'accepted', (e) => e.name + ': ' + e.message)"""
    )
    assert said == "TypeError: hashhubVPDQ: frameRate is a positive number of frames a second"
    said = await hashing_page.evaluate(
        "() => hashhubVPDQ.fromFile('a.webm').then(() => 'accepted', (e) => e.name)"
    )
    assert said == "TypeError"


async def test_a_chosen_video_is_hashed_without_any_request(
    video_page: VideoPage, hashing_page: Page
) -> None:
    """What the person picks in a file chooser is hashed on the page; nothing is sent,
    and only frames come back."""
    clip = CLIPS[0]
    data = (video_page.folder / clip.name).read_bytes()
    await hashing_page.evaluate(
        """() => { const input = document.createElement("input");
                   input.type = "file"; input.id = "chooser"; document.body.append(input); }"""
    )
    chosen_file: FilePayload = {"name": "clip.webm", "mimeType": "video/webm", "buffer": data}
    await hashing_page.set_input_files("#chooser", files=[chosen_file])
    sent: list[str] = []

    def record(request: Request) -> None:
        sent.append(request.url)

    hashing_page.on("request", record)
    try:
        answer = await hashing_page.evaluate(
            "() => hashhubVPDQ.fromFile(document.querySelector('#chooser').files[0])"
        )
    finally:
        hashing_page.remove_listener("request", record)
    # The <video> reads the file through a blob: URL, which names memory in this page;
    # nothing else is requested.
    assert [url for url in sent if not url.startswith("blob:http://127.0.0.1:")] == []
    assert set(answer) == {"frames", "duration", "width", "height", "frameRate"}
    assert all(set(frame) == {"millis", "pdq", "quality"} for frame in answer["frames"])
    assert match_video(node_frames(video_page, clip.name), frames_from_browser(answer)).matched
