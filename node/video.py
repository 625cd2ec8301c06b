"""Hashing videos: vPDQ frames of the video, MD5 and SHA-256 of the bytes.

A video is hashed as Meta's vPDQ hashes it (the ``vpdq`` package, on Debian's FFmpeg
libraries): one frame every ``SECONDS_PER_FRAME`` seconds, each frame's PDQ hash and
PDQ quality, with its time. The frames are ``protocol.video.Frame``s; their
canonical encoding's SHA-256 (``VideoHash.digest``) is what a ``vpdq`` list's record
holds (docs/adr/0021-video-frames-behind-a-fixed-width-record.md). The browser
samples at the same rate, so a video hashed here and one hashed on the submission
page have frames at the same times.

**Same frames as the reference.** The frames are ``vpdq.computeHash``'s own: the
PDQ hash of its hex, its quality (0–100), its time rounded to the millisecond. Two
frames at one millisecond keep the first; frames are put in ascending time.

**Hardening.** An upload is parsed by FFmpeg's C demuxers and decoders, so:

- Nothing is decoded before the cheap checks pass: the size of the bytes first,
  then ``ffprobe`` reads the container's header (with a timeout) for the container,
  the video streams' codecs and sizes and the duration, and only a video within
  every limit is decoded.
- The probe and the decoding run in a **separate process** (``node.video_worker``)
  with an address-space cap and a deadline: a file that crashes, hangs or exhausts
  FFmpeg kills that process, not the node.
- FFmpeg never sees a name the caller chose as an option or a protocol: ``bytes``
  are written to a fresh temporary file (mode 0600, removed afterwards); a path is
  made absolute (so ``-``, ``-i`` or ``http:x`` are files) and handed to ``ffprobe``
  as ``file:PATH`` with only the ``file`` protocol allowed, and only as an argument,
  never through a shell; ``vpdq`` opens the same absolute path, which no protocol
  prefix can begin. A path must be a regular file (a FIFO or a device would block
  or never end).
- Only the containers and codecs of ``VideoLimits`` are decoded; playlists
  (HLS, concat) and images are not videos.

Every failure is one error, ``VideoRejected``, with a ``reason``:

- ``too_large``: more bytes than ``VideoLimits.max_bytes``, checked before anything.
- ``unsupported``: not a video: no recognisable container, a container or codec not
  in the limits (an image is one), or no video stream.
- ``too_long``: longer than ``max_seconds``, by the duration the container
  declares (before decoding) or by the frames' times (after, when it lied).
- ``too_many_frames``: more frames to hash than ``max_frames``, likewise.
- ``too_big_picture``: a video stream of more than ``max_pixels`` pixels a frame.
- ``corrupt``: a video of an allowed container that cannot be read or decoded
  (truncated, a damaged header), a decoder that crashed (the signal is named) or
  ran out of its memory cap, or no frame hashed.
- ``timeout``: probing took longer than ``max_probe_seconds`` or hashing longer
  than ``max_hash_seconds``.

A video whose container declares no duration (a browser's recording often has
none) is hashed under the deadline and checked by its frames afterwards.

MD5 and SHA-256 are of the bytes as uploaded (``node.imaging.file_digests``).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from node.errors import NodeConfigError, NodeError
from node.imaging import file_digests
from protocol.video import MAX_FRAMES, Frame, encode_frames, frames_digest

__all__ = [
    "DEFAULT_VIDEO_LIMITS",
    "SECONDS_PER_FRAME",
    "VideoHash",
    "VideoLimits",
    "VideoProbe",
    "VideoRejectReason",
    "VideoRejected",
    "frames_of",
    "hash_video",
    "read_probe",
]

SECONDS_PER_FRAME = 1.0
"""One frame hashed a second: vPDQ's default, and the submission page's rate."""

VideoRejectReason = Literal[
    "too_large",
    "unsupported",
    "too_long",
    "too_many_frames",
    "too_big_picture",
    "corrupt",
    "timeout",
]

_WORKER = Path(__file__).with_name("video_worker.py")
_MESSAGE_CHARS = 200
"""FFmpeg's own words are cut to this many characters in a rejection's message."""


class VideoRejected(NodeError, ValueError):  # noqa: N818 (an outcome, like ImageRejected)
    """An upload that cannot be hashed as a video, and why, in one line.

    Attributes:
        reason: ``too_large``, ``unsupported``, ``too_long``, ``too_many_frames``,
            ``too_big_picture``, ``corrupt`` or ``timeout``.
    """

    def __init__(self, reason: VideoRejectReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: VideoRejectReason = reason


@dataclass(frozen=True)
class VideoLimits:
    """What a video upload may be. Defaults suit what platforms receive.

    Attributes:
        max_bytes: largest upload, in bytes (512 MiB).
        max_seconds: longest video, in seconds (3 hours).
        max_frames: most frames hashed (the protocol's cap, ``MAX_FRAMES``).
        max_pixels: most pixels in a frame (3840 × 2160, 4K UHD).
        max_hash_seconds: deadline for decoding and hashing (10 minutes).
        max_probe_seconds: deadline for reading the container's header (30 s).
        max_memory_bytes: address-space cap of the probing and hashing process
            (4 GiB: a 4K video measured under 0.5 GiB on two cores; FFmpeg's
            decoder threads and their stacks grow with the cores).
        formats: FFmpeg demuxer names accepted (one of a demuxer's comma-separated
            names, as ``ffprobe`` reports them): MP4/MOV/3GP (``mov``), WebM and
            Matroska, AVI, MPEG transport and program streams, Ogg.
        codecs: FFmpeg video decoder names accepted: H.264, HEVC, VP8, VP9, AV1,
            MPEG-4 Part 2, MPEG-1 and MPEG-2, H.263 (3GP), Theora.
    """

    max_bytes: int = 512 * 1024 * 1024
    max_seconds: float = 3 * 60 * 60
    max_frames: int = MAX_FRAMES
    max_pixels: int = 3840 * 2160
    max_hash_seconds: float = 600.0
    max_probe_seconds: float = 30.0
    max_memory_bytes: int = 4 * 1024 * 1024 * 1024
    formats: frozenset[str] = field(
        default_factory=lambda: frozenset(
            {"mov", "mp4", "3gp", "matroska", "webm", "avi", "mpegts", "mpeg", "ogg"}
        )
    )
    codecs: frozenset[str] = field(
        default_factory=lambda: frozenset(
            {
                "h264",
                "hevc",
                "vp8",
                "vp9",
                "av1",
                "mpeg4",
                "mpeg1video",
                "mpeg2video",
                "h263",
                "theora",
            }
        )
    )

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_frames, self.max_pixels, self.max_memory_bytes) < 1:
            raise ValueError("max_bytes, max_frames, max_pixels and max_memory_bytes are positive")
        if self.max_frames > MAX_FRAMES:
            raise ValueError(f"max_frames is at most the protocol's {MAX_FRAMES}")
        if min(self.max_seconds, self.max_hash_seconds, self.max_probe_seconds) <= 0:
            raise ValueError("max_seconds, max_hash_seconds and max_probe_seconds are positive")
        if not self.formats or not self.codecs:
            raise ValueError("at least one format and one codec are accepted")


DEFAULT_VIDEO_LIMITS = VideoLimits()


@dataclass(frozen=True)
class VideoProbe:
    """What the container declares, read before decoding.

    Attributes:
        container: FFmpeg's demuxer name (``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``).
        codec: the video stream's codec (the first video stream's, when there are several).
        width: its frame width in pixels.
        height: its frame height in pixels.
        duration: seconds, as the container (or else its longest stream) declares;
            ``None`` when it declares none.
    """

    container: str
    codec: str
    width: int
    height: int
    duration: float | None


@dataclass(frozen=True)
class VideoHash:
    """A video's frames and what it was hashed from.

    Attributes:
        frames: vpdq's frames, in ascending time, one a ``SECONDS_PER_FRAME``.
        duration: seconds, as the container declares it (``None``: it declares none).
        width: frame width in pixels.
        height: frame height in pixels.
        codec: FFmpeg's name of the video codec (``h264``, ``vp9``…).
        container: FFmpeg's name of the container (``mov,mp4,m4a,3gp,3g2,mj2``…).
        md5: MD5 of the uploaded bytes (16 bytes).
        sha256: SHA-256 of the uploaded bytes (32 bytes).
    """

    frames: tuple[Frame, ...]
    duration: float | None
    width: int
    height: int
    codec: str
    container: str
    md5: bytes
    sha256: bytes

    @property
    def encoded(self) -> bytes:
        """The frames' canonical encoding: what travels in a frames document."""
        return encode_frames(self.frames)

    @property
    def digest(self) -> bytes:
        """The SHA-256 of the frames' encoding: a ``vpdq`` record's hash."""
        return frames_digest(self.frames)


def hash_video(source: Path | bytes, limits: VideoLimits = DEFAULT_VIDEO_LIMITS) -> VideoHash:
    """The frames of an uploaded video (vPDQ), with MD5 and SHA-256 of its bytes.

    Args:
        source: the uploaded bytes, or the path of a regular file holding them (its
            MD5 and SHA-256 are of the bytes read first: a file must not change
            while it is hashed).
        limits: size, duration, frame, pixel, time, memory and format limits.

    Raises:
        VideoRejected: the upload breaks a limit or is not a decodable video.
        NodeConfigError: ``ffprobe`` or ``vpdq`` is not installed, or cannot start
            under ``max_memory_bytes``.
    """
    if isinstance(source, bytes):
        data = source
        _check_size(len(data), limits)
        with _scratch_copy(data) as path:
            return _hash_file(path, data, limits)
    path = os.path.abspath(source)
    return _hash_file(path, _read_regular_file(path, limits), limits)


def _hash_file(path: str, data: bytes, limits: VideoLimits) -> VideoHash:
    if not data:
        raise VideoRejected("unsupported", "the file is empty")
    probe = _probe_video(path, limits)
    frames = frames_of(_decode_frames(path, limits), limits)
    digests = file_digests(data)
    return VideoHash(
        frames=frames,
        duration=probe.duration,
        width=probe.width,
        height=probe.height,
        codec=probe.codec,
        container=probe.container,
        md5=digests.md5,
        sha256=digests.sha256,
    )


def _check_size(size: int, limits: VideoLimits) -> None:
    if size > limits.max_bytes:
        raise VideoRejected(
            "too_large", f"{size} bytes is more than the limit of {limits.max_bytes} bytes"
        )


def _read_regular_file(path: str, limits: VideoLimits) -> bytes:
    """The bytes of a regular file at ``path``, within ``max_bytes``, size checked first."""
    try:
        # Non-blocking: opening a FIFO to read would otherwise wait for a writer.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise VideoRejected("unsupported", "not a regular file")
            _check_size(info.st_size, limits)
            data = file.read(limits.max_bytes + 1)
    except OSError as e:
        raise VideoRejected("unsupported", f"cannot read the file: {e.strerror}") from e
    _check_size(len(data), limits)  # grown since it was measured
    return data


@contextmanager
def _scratch_copy(data: bytes) -> Iterator[str]:
    """A fresh temporary file holding ``data`` (mode 0600, unpredictable name),
    removed on leaving: FFmpeg reads files, and never one whose name the caller chose."""
    descriptor, path = tempfile.mkstemp(prefix="video-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        yield path
    finally:
        os.unlink(path)


def _probe_video(path: str, limits: VideoLimits) -> VideoProbe:
    """Read a video file's container header with ``ffprobe``, in the capped worker,
    and check it against ``limits`` (``read_probe``).

    Raises:
        VideoRejected: what the header declares breaks a limit, or it cannot be read.
        NodeConfigError: ``ffprobe`` is not installed.
    """
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        raise NodeConfigError("cannot hash videos: ffprobe (FFmpeg) is not installed")
    command = [
        ffprobe,
        "-loglevel",
        "error",
        "-protocol_whitelist",
        "file",
        "-print_format",
        "json",
        "-show_error",
        "-show_entries",
        "format=format_name,duration"
        ":stream=codec_type,codec_name,width,height,duration"
        ":stream_disposition=attached_pic",
        "file:" + os.path.abspath(path),
    ]
    try:
        done = _run_worker(["run", *command], limits, limits.max_probe_seconds)
    except subprocess.TimeoutExpired as e:
        raise VideoRejected(
            "timeout", f"reading the container took longer than {limits.max_probe_seconds:g} s"
        ) from e
    if done.returncode < 0:
        raise VideoRejected("corrupt", f"reading the container crashed ({_signal(done)})")
    try:
        report = json.loads(done.stdout or b"{}")
    except ValueError as e:
        raise VideoRejected("corrupt", "the container could not be read") from e
    if not isinstance(report, dict):
        raise VideoRejected("corrupt", "the container could not be read")
    if done.returncode != 0 and "error" not in report:  # refused its command line
        raise NodeConfigError(
            f"ffprobe failed: {_one_line(done.stderr.decode('utf-8', 'replace'))}"
        )
    return read_probe(report, done.stderr.decode("utf-8", "replace"), limits)


def read_probe(report: Mapping[str, Any], log: str, limits: VideoLimits) -> VideoProbe:
    """Check what ``ffprobe`` read against ``limits``: the rules, apart from the I/O.

    Args:
        report: ``ffprobe``'s JSON (its ``format``, ``streams`` and ``error``).
        log: its error log, whose lines name the demuxer that failed
            (``[mov,mp4,m4a,3gp,3g2,mj2 @ 0x…] moov atom not found``).
        limits: what is accepted.

    Raises:
        VideoRejected: ``unsupported``, ``corrupt``, ``too_long``, ``too_many_frames``
            or ``too_big_picture``.
    """
    form = report.get("format")
    if "error" in report or not isinstance(form, dict):
        failed = _failing_demuxer(log, limits)
        if failed is not None:
            name, words = failed
            raise VideoRejected("corrupt", f"the {name} container cannot be read: {words}")
        error = report.get("error")
        said = error.get("string") if isinstance(error, dict) else None
        words = _one_line(str(said or log))
        raise VideoRejected("unsupported", f"not a video ({words or 'no container recognised'})")
    container = str(form.get("format_name", ""))
    if not set(container.split(",")) & limits.formats:
        kind = "an image, not a video" if _is_image(container) else "a container not accepted"
        raise VideoRejected("unsupported", f"{kind}: {_one_line(container)}")
    streams = [s for s in report.get("streams", []) if isinstance(s, dict)]
    if not streams:
        raise VideoRejected("corrupt", f"the {container} container lists no streams")
    videos = [s for s in streams if s.get("codec_type") == "video" and not _attached_picture(s)]
    if not videos:
        raise VideoRejected("unsupported", "no video stream (audio or data only)")
    for stream in videos:
        codec = str(stream.get("codec_name", "unknown"))
        if codec not in limits.codecs:
            raise VideoRejected(
                "unsupported", f"the video codec {_one_line(codec)} is not accepted"
            )
    duration = _declared_duration(form, videos)
    if duration is not None and duration > limits.max_seconds:
        raise VideoRejected(
            "too_long", f"{duration:g} s is longer than the limit of {limits.max_seconds:g} s"
        )
    if duration is not None and math.ceil(duration / SECONDS_PER_FRAME) > limits.max_frames:
        raise VideoRejected(
            "too_many_frames",
            f"{duration:g} s makes {math.ceil(duration / SECONDS_PER_FRAME)} frames,"
            f" more than the limit of {limits.max_frames}",
        )
    for stream in videos:
        width, height = _whole(stream.get("width")), _whole(stream.get("height"))
        if width < 1 or height < 1:
            raise VideoRejected("corrupt", "a video stream declares no frame size")
        if width * height > limits.max_pixels:
            raise VideoRejected(
                "too_big_picture",
                f"{width} × {height} pixels a frame is more than the limit of {limits.max_pixels}",
            )
    first = videos[0]
    return VideoProbe(
        container=container,
        codec=str(first["codec_name"]),
        width=_whole(first["width"]),
        height=_whole(first["height"]),
        duration=duration,
    )


def _decode_frames(path: str, limits: VideoLimits) -> list[Any]:
    """vpdq's raw frames (``[hex, quality, seconds]``) of the file, from the capped worker."""
    try:
        done = _run_worker(
            ["hash", repr(SECONDS_PER_FRAME), os.path.abspath(path)],
            limits,
            limits.max_hash_seconds,
        )
    except subprocess.TimeoutExpired as e:
        raise VideoRejected(
            "timeout", f"hashing took longer than {limits.max_hash_seconds:g} s"
        ) from e
    if done.returncode < 0:
        raise VideoRejected(
            "corrupt",
            f"the decoder crashed ({_signal(done)}) under a memory cap of"
            f" {limits.max_memory_bytes // 2**20} MiB",
        )
    if done.returncode != 0:
        raise VideoRejected(
            "corrupt", f"the decoding process failed (exit status {done.returncode})"
        )
    try:
        answer = json.loads(done.stdout)
    except ValueError as e:
        raise VideoRejected("corrupt", "the decoding process gave no answer") from e
    if isinstance(answer, dict) and isinstance(answer.get("unavailable"), str):
        raise NodeConfigError(f"cannot hash videos: {_one_line(answer['unavailable'])}")
    if isinstance(answer, dict) and isinstance(answer.get("failed"), str):
        # vpdq's exception says only that it failed; its last line on stderr says why.
        said = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line]
        why = _one_line(said[-1] if said else answer["failed"])
        raise VideoRejected("corrupt", f"cannot decode the video: {why}")
    if not isinstance(answer, dict) or not isinstance(answer.get("frames"), list):
        raise VideoRejected("corrupt", "the decoding process gave no frames")
    frames: list[Any] = answer["frames"]
    return frames


def frames_of(
    features: Sequence[Any], limits: VideoLimits = DEFAULT_VIDEO_LIMITS
) -> tuple[Frame, ...]:
    """The frames of vpdq's features (``[hex, quality, seconds]`` each): the PDQ hash of
    the hex, the quality within 0–100, the time in whole milliseconds; in ascending
    time, the first of two at one millisecond kept.

    Raises:
        VideoRejected: ``corrupt`` (no frame, or one vpdq could not have made),
            ``too_long`` or ``too_many_frames`` (the container's header lied).
    """
    by_time: dict[int, Frame] = {}
    for feature in features:
        frame = _frame(feature)
        if frame.millis > limits.max_seconds * 1000:
            raise VideoRejected(
                "too_long",
                f"a frame at {frame.millis / 1000:g} s is past the limit of"
                f" {limits.max_seconds:g} s",
            )
        by_time.setdefault(frame.millis, frame)
    if not by_time:
        raise VideoRejected("corrupt", "no frame of the video could be hashed")
    if len(by_time) > limits.max_frames:
        raise VideoRejected(
            "too_many_frames",
            f"{len(by_time)} frames hashed, more than the limit of {limits.max_frames}",
        )
    return tuple(by_time[millis] for millis in sorted(by_time))


def _frame(feature: Any) -> Frame:
    """One vpdq feature as a ``Frame``; ``corrupt`` if it is not one vpdq makes."""
    try:
        hex_hash, quality, seconds = feature
        pdq = bytes.fromhex(hex_hash)
        if len(pdq) != 32 or not isinstance(quality, int) or isinstance(quality, bool):
            raise ValueError(quality)
        millis = round(float(seconds) * 1000)
        if millis < 0:
            raise ValueError(seconds)
        return Frame(millis=millis, pdq=pdq, quality=min(100, max(0, quality)))
    except (TypeError, ValueError, OverflowError) as e:  # MalformedError is a ValueError
        raise VideoRejected("corrupt", "the decoder gave a frame that is not a vPDQ frame") from e


def _run_worker(
    arguments: list[str], limits: VideoLimits, timeout: float
) -> subprocess.CompletedProcess[bytes]:
    """Run ``node.video_worker`` under the memory cap; killed at ``timeout`` seconds.

    ``-I``: the worker imports nothing from the environment or the working directory.
    Two malloc arenas, rather than eight a core, keep the address space (which the cap
    counts) near the memory used.
    """
    command, rest = arguments[0], arguments[1:]
    return subprocess.run(  # noqa: S603 (our interpreter and worker; arguments, no shell)
        [sys.executable, "-I", str(_WORKER), command, str(limits.max_memory_bytes), *rest],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "MALLOC_ARENA_MAX": "2"},
    )


def _signal(done: subprocess.CompletedProcess[bytes]) -> str:
    try:
        return f"killed by {signal.Signals(-done.returncode).name}"
    except ValueError:
        return f"killed by signal {-done.returncode}"


_DEMUXER_LINE = re.compile(r"^\[([a-z0-9_,]+) @ 0x[0-9a-f]+\] *(.*)$", re.MULTILINE)


def _failing_demuxer(log: str, limits: VideoLimits) -> tuple[str, str] | None:
    """The accepted demuxer that recognised the file and then failed, and what it said."""
    for name, said in _DEMUXER_LINE.findall(log):
        if set(name.split(",")) & limits.formats:
            return str(name), _one_line(str(said)) or "damaged"
    return None


def _attached_picture(stream: Mapping[str, Any]) -> bool:
    """A cover picture stored as a video stream (decoders skip it; so does this check)."""
    disposition = stream.get("disposition")
    return isinstance(disposition, dict) and bool(disposition.get("attached_pic"))


def _is_image(container: str) -> bool:
    return container.endswith("_pipe") or container in ("image2", "gif", "apng", "webp")


def _declared_duration(
    form: Mapping[str, Any], videos: Sequence[Mapping[str, Any]]
) -> float | None:
    """The container's duration, or else its longest video stream's; ``None`` if neither
    declares one (or declares nonsense)."""
    declared = _seconds(form.get("duration"))
    if declared < 0:
        declared = max((_seconds(s.get("duration")) for s in videos), default=-1.0)
    return declared if declared >= 0 else None


def _seconds(value: object) -> float:
    """A duration ``ffprobe`` printed, or -1 when it is missing or not a finite number."""
    try:
        seconds = float(str(value))
    except ValueError:
        return -1.0
    return seconds if math.isfinite(seconds) and seconds >= 0 else -1.0


def _whole(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _one_line(text: str) -> str:
    """FFmpeg's words as one short line of a rejection's message."""
    words = " ".join(re.sub(r"\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", text).split())
    return words if len(words) <= _MESSAGE_CHARS else words[: _MESSAGE_CHARS - 1] + "…"
