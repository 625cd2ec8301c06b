"""Clips made with FFmpeg, and a loopback page that hashes them with ``vpdq.js``.

The page loads ``hub/web/static/hashing/pdq.js`` and ``vpdq.js`` with plain
``<script src>`` tags, as the submission page does, plus functions the tests call
with ``page.evaluate``:

- ``vpdqOfFile(name, options)``: fetches a served file as a Blob and runs
  ``hashhubVPDQ.fromFile`` on it (the browser decodes the video itself); it
  answers ``{error: message}`` instead when that rejects;
- ``encodeFrames(frames)``: ``hashhubVPDQ.encode`` of frames, the bytes as hex;
- ``playable(type)``: what the browser says of a MIME type (``canPlayType`` and
  ``MediaSource.isTypeSupported``).

Clips are short (``CLIP_SECONDS``) and made by FFmpeg from a photo or a
generator, so each second shows a different, detailed picture; at whole frame
rates and at NTSC's (29.97 and 23.976 fps), where vpdq's frames are not at whole
seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Page

from bench.video_clips import ffmpeg
from protocol.video import Frame
from tests.web.hashing_support import HASHING_STATIC, PDQ_DATA

CLIP_SECONDS = 10
BRIDGE = PDQ_DATA / "reg-test-input" / "dih" / "bridge-1-original.jpg"  # 1600 × 1004

PAGE = """<!doctype html>
<html lang="en"><meta charset="utf-8"><title>browser video hashing</title>
<script src="/static/hashing/pdq.js"></script>
<script src="/static/hashing/vpdq.js"></script>
<script>
async function vpdqOfFile(name, options) {
  const response = await fetch("/file/" + name);
  if (!response.ok) throw new Error(name + ": " + response.status);
  const blob = await response.blob();
  try {
    return await hashhubVPDQ.fromFile(blob, options || {});
  } catch (error) {
    return {error: String(error.message)};
  }
}
async function encodeFrames(frames) {
  const {bytes, sha256} = await hashhubVPDQ.encode(frames);
  return {hex: Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""), sha256};
}
function playable(type) {
  const video = document.createElement("video");
  return {
    canPlayType: video.canPlayType(type),
    mediaSource: typeof MediaSource !== "undefined" && MediaSource.isTypeSupported(type),
  };
}
</script>
<p>Browser video hashing test page.</p>
</html>
"""


@dataclass(frozen=True)
class Clip:
    """How one test clip is made: an FFmpeg input and a codec.

    Attributes:
        name: the file name it is served under (its suffix names the container).
        source: FFmpeg's input arguments (a looped photo or a generator).
        filters: the video filter chain (the pan, the size).
        codec: FFmpeg's encoder arguments.
        mime: the MIME type the browser is asked about.
        rate: frames a second (NTSC's 29.97 is 30000/1001).
    """

    name: str
    source: tuple[str, ...]
    filters: str
    codec: tuple[str, ...]
    mime: str
    rate: Fraction

    @property
    def rate_argument(self) -> str:
        return f"{self.rate.numerator}/{self.rate.denominator}"


VP9 = ("-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "32", "-deadline", "realtime", "-cpu-used", "8")
H264 = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-movflags", "+faststart")
WEBM_VP9 = 'video/webm; codecs="vp9"'
MP4_H264 = 'video/mp4; codecs="avc1.64001f"'

BRIDGE_PHOTO = ("-loop", "1", "-framerate", "{rate}", "-i", str(BRIDGE))
BRIDGE_PAN = "crop=640:360:x='t*90':y='120+t*30',format=yuv420p"
MANDELBROT = ("-f", "lavfi", "-i", "mandelbrot=size=640x360:rate={rate}")
NTSC = Fraction(30000, 1001)  # 29.97 fps: vpdq steps by 29 frames, 0.968 s
FILM_NTSC = Fraction(24000, 1001)  # 23.976 fps: it steps by 23 frames, 0.959 s
CLIPS = (
    Clip("bridge-pan-vp9.webm", BRIDGE_PHOTO, BRIDGE_PAN, VP9, WEBM_VP9, Fraction(30)),
    Clip("bridge-pan-h264.mp4", BRIDGE_PHOTO, BRIDGE_PAN, H264, MP4_H264, Fraction(30)),
    Clip("mandelbrot-vp9.webm", MANDELBROT, "format=yuv420p", VP9, WEBM_VP9, Fraction(25)),
    Clip("mandelbrot-h264.mp4", MANDELBROT, "format=yuv420p", H264, MP4_H264, Fraction(25)),
    Clip("bridge-pan-2997-h264.mp4", BRIDGE_PHOTO, BRIDGE_PAN, H264, MP4_H264, NTSC),
    Clip("bridge-pan-2997-vp9.webm", BRIDGE_PHOTO, BRIDGE_PAN, VP9, WEBM_VP9, NTSC),
    Clip("mandelbrot-23976-vp9.webm", MANDELBROT, "format=yuv420p", VP9, WEBM_VP9, FILM_NTSC),
)
OTHER_VIDEO = Clip(  # a different video: nothing of it should match the clips
    "cellular-vp9.webm",
    ("-f", "lavfi", "-i", "cellauto=size=640x360:rate={rate}:rule=110"),
    "format=yuv420p",
    VP9,
    WEBM_VP9,
    Fraction(30),
)


def make_clip(clip: Clip, folder: Path, seconds: int = CLIP_SECONDS) -> Path:
    """Encode ``clip`` into ``folder`` with FFmpeg; no audio, ``seconds`` long."""
    path = folder / clip.name
    source = [part.format(rate=clip.rate_argument) for part in clip.source]
    ffmpeg(*source, "-t", str(seconds), "-vf", clip.filters, "-r", clip.rate_argument,
           "-an", *clip.codec, path)  # fmt: skip
    return path


def reencode(source: Path, target: Path) -> Path:
    """A copy as a platform might re-encode it: smaller (480 × 270), H.264, lower quality."""
    ffmpeg("-i", source, "-vf", "scale=480:270", "-an", "-c:v", "libx264", "-preset",
           "veryfast", "-crf", "30", target)  # fmt: skip
    return target


def tag_rotation(source: Path, target: Path, degrees: int) -> Path:
    """A copy of an MP4 whose display matrix turns it ``degrees`` (as a phone held
    upright records), the frames untouched; a ``.mov`` target keeps the movie header
    at the end of the file, as a camera writes it."""
    ffmpeg("-i", source, "-c", "copy", "-metadata:s:v", f"rotate={degrees}", target)
    return target


def frames_from_browser(answer: dict[str, object]) -> tuple[Frame, ...]:
    """The browser's frames as the protocol's ``Frame``s (the hub will build the same)."""
    frames = answer["frames"]
    assert isinstance(frames, list)
    return tuple(
        Frame(millis=f["millis"], pdq=bytes.fromhex(f["pdq"]), quality=f["quality"]) for f in frames
    )


def video_app(files: dict[str, bytes]) -> web.Application:
    """The test page, the hashers, and each file's bytes by name."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def file(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in files:
            raise web.HTTPNotFound(text=f"no file {name!r}")
        return web.Response(body=files[name], content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/file/{name:.+}", file)
    app.router.add_static("/static/hashing/", HASHING_STATIC)
    return app


async def choose_video(page: Page, server: TestServer, video: Path) -> None:
    """On the hub's submission page, the person picks the video choice and the file;
    the page starts hashing it on the device."""
    await page.goto(str(server.make_url("/submit")))
    await page.check("input[name=media][value=video]")
    await page.set_input_files("#file", str(video))
