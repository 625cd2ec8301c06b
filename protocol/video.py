"""A video's frames (vPDQ, PROTOCOL.md §6.3): what a ``vpdq`` record's hash is the SHA-256 of.

A video is hashed as a PDQ hash per sampled frame, with the frame's PDQ quality and
its time (Meta's vPDQ). Its hash is of variable length, so a ``vpdq`` list's record
carries the SHA-256 of the video's **frames** in their one canonical encoding, and
the frames travel beside it (docs/adr/0021-video-frames-behind-a-fixed-width-record.md):

- a frame is 37 bytes: the 32-byte PDQ hash, one byte of quality (0–100) and four
  bytes of time in milliseconds from the video's start, big-endian;
- a video's frames are concatenated in strictly ascending time (no two at one
  time), at least ``MIN_FRAMES`` and at most ``MAX_FRAMES``.

``decode_frames`` is strict: anything but that one encoding is ``MalformedError``
(``LimitError`` past the cap), so two parties that agree on the frames agree on the
digest. A node matches videos by their frames (``match_video``, PROTOCOL.md §6.4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from protocol.errors import ConsistencyError, LimitError, MalformedError

__all__ = [
    "FRAME_BYTES",
    "MAX_FRAMES",
    "MAX_FRAMES_BYTES",
    "MAX_FRAME_DISTANCE",
    "MIN_FRAMES",
    "MIN_FRAMES_FOR_SHARE",
    "MIN_QUALITY",
    "MIN_SHARE",
    "Frame",
    "VideoMatch",
    "decode_frames",
    "encode_frames",
    "frames_digest",
    "match_video",
    "read_frames_file",
    "share_counts",
]

PDQ_BYTES = 32
FRAME_BYTES = PDQ_BYTES + 1 + 4
"""A frame's bytes: its PDQ hash, its quality, its time in milliseconds."""
MIN_FRAMES = 1
MAX_FRAMES = 36_000
"""Frames of one video at most: ten hours at one frame a second."""
MAX_FRAMES_BYTES = MAX_FRAMES * FRAME_BYTES
"""The cap on a frames file (PROTOCOL.md §11): 1,332,000 bytes."""
MAX_MILLIS = 2**32 - 1


@dataclass(frozen=True, order=True)
class Frame:
    """One sampled frame of a video: when it is shown, its PDQ hash and quality."""

    millis: int
    """Its time from the video's start, in milliseconds."""
    pdq: bytes
    quality: int

    def __post_init__(self) -> None:
        if not isinstance(self.pdq, bytes) or len(self.pdq) != PDQ_BYTES:
            raise MalformedError(f"a frame's PDQ hash is {PDQ_BYTES} bytes")
        if not isinstance(self.quality, int) or not 0 <= self.quality <= 100:
            raise MalformedError(f"a frame's quality is 0 to 100, not {self.quality!r}")
        if not isinstance(self.millis, int) or not 0 <= self.millis <= MAX_MILLIS:
            raise MalformedError(f"a frame's time is 0 to {MAX_MILLIS} ms, not {self.millis!r}")

    def to_bytes(self) -> bytes:
        return self.pdq + bytes([self.quality]) + self.millis.to_bytes(4, "big")


def encode_frames(frames: Sequence[Frame]) -> bytes:
    """The one encoding of a video's frames (checked as ``decode_frames`` checks it)."""
    data = b"".join(f.to_bytes() for f in frames)
    decode_frames(data)
    return data


def decode_frames(data: bytes) -> tuple[Frame, ...]:
    """Parse a video's frames.

    Raises:
        MalformedError: not a whole number of frames, fewer than ``MIN_FRAMES``, a
            quality above 100, times not strictly ascending.
        LimitError: more than ``MAX_FRAMES`` frames.
    """
    if len(data) % FRAME_BYTES:
        raise MalformedError(f"frames: {len(data)} bytes is not a whole number of frames")
    count = len(data) // FRAME_BYTES
    if count < MIN_FRAMES:
        raise MalformedError("frames: a video has at least one frame")
    if count > MAX_FRAMES:
        raise LimitError(f"frames: {count} frames, above the cap of {MAX_FRAMES}")
    frames = []
    last = -1
    for n in range(count):
        chunk = data[n * FRAME_BYTES : (n + 1) * FRAME_BYTES]
        frame = Frame(
            millis=int.from_bytes(chunk[PDQ_BYTES + 1 :], "big"),
            pdq=chunk[:PDQ_BYTES],
            quality=chunk[PDQ_BYTES],
        )
        if frame.millis <= last:
            raise MalformedError(
                f"frames: frame {n} at {frame.millis} ms is not after the one before ({last} ms)"
            )
        last = frame.millis
        frames.append(frame)
    return tuple(frames)


def frames_digest(frames: Sequence[Frame]) -> bytes:
    """The SHA-256 of the frames' encoding: a ``vpdq`` record's hash."""
    return hashlib.sha256(encode_frames(frames)).digest()


def read_frames_file(record_hash: bytes, data: bytes) -> tuple[Frame, ...]:
    """The frames a ``vpdq`` record names, from its frames file (PROTOCOL.md §6.3).

    The record, in a signed body or snapshot, is what vouches for the file: its bytes
    must be the ones the record's hash names before a rule of the encoding is read.

    Raises:
        LimitError: more than ``MAX_FRAMES_BYTES`` (a reader stops at the cap).
        ConsistencyError: the bytes' SHA-256 is not the record's hash.
        MalformedError, LimitError: the bytes break a rule of the encoding
            (``decode_frames``).
    """
    if len(data) > MAX_FRAMES_BYTES:
        raise LimitError(f"frames file: above the cap of {MAX_FRAMES_BYTES} bytes")
    if hashlib.sha256(data).digest() != record_hash:
        raise ConsistencyError(
            f"frames file {record_hash.hex()}: its bytes hash to "
            f"{hashlib.sha256(data).hexdigest()}, not the record's hash"
        )
    return decode_frames(data)


# --------------------------------------------------------------------------------------
# Matching (PROTOCOL.md §6.4)
# --------------------------------------------------------------------------------------

MIN_QUALITY = 50
"""Frames of lower quality are left out on both sides: too featureless to compare."""
MAX_FRAME_DISTANCE = 31
"""The PDQ Hamming distance at most which two frames agree (PDQ's own match distance)."""
MIN_SHARE = Fraction(4, 5)
"""The share of one side's frames that must agree for a match."""
MIN_FRAMES_FOR_SHARE = 3
"""A side with fewer distinct good frames has no share that counts: a still is not a video."""


@dataclass(frozen=True)
class VideoMatch:
    """How far a query video agrees with a listed one, as exact counts.

    Each share is ``(matched, total)`` over the distinct PDQ hashes of that side's frames
    of quality ``MIN_QUALITY`` or more: counts, not a float, so every implementation
    decides the boundary alike.
    """

    query_share: tuple[int, int]
    """Distinct query frames within ``MAX_FRAME_DISTANCE`` of some listed frame, of all."""
    listed_share: tuple[int, int]
    """Distinct listed frames within ``MAX_FRAME_DISTANCE`` of some query frame, of all."""
    matched: bool


def share_counts(share: tuple[int, int]) -> bool:
    """Whether a share reaches ``MIN_SHARE`` on a side with enough frames to count."""
    matched, total = share
    return (
        total >= MIN_FRAMES_FOR_SHARE
        and matched * MIN_SHARE.denominator >= MIN_SHARE.numerator * total
    )


def match_video(query: Sequence[Frame], listed: Sequence[Frame]) -> VideoMatch:
    """Whether ``query`` matches the listed video ``listed`` (PROTOCOL.md §6.4).

    The larger share decides, as python-threatexchange's vPDQ signal compares: a
    trimmed clip of a listed video matches by its own share, an upload that contains
    a listed clip by the listed share. Written to be plainly right (every pair of
    frames is compared); a node's index narrows the candidates before calling it.
    """
    ours, theirs = _distinct_good(query), _distinct_good(listed)
    query_share = (_agreeing(ours, theirs), len(ours))
    listed_share = (_agreeing(theirs, ours), len(theirs))
    return VideoMatch(
        query_share=query_share,
        listed_share=listed_share,
        matched=share_counts(query_share) or share_counts(listed_share),
    )


def _distinct_good(frames: Sequence[Frame]) -> list[int]:
    """The distinct PDQ hashes of the frames of quality ``MIN_QUALITY`` or more, as
    integers (a duplicate counts once, as python-threatexchange's ``dedupe``)."""
    return list(
        dict.fromkeys(int.from_bytes(f.pdq, "big") for f in frames if f.quality >= MIN_QUALITY)
    )


def _agreeing(side: Sequence[int], other: Sequence[int]) -> int:
    """How many of ``side``'s hashes lie within ``MAX_FRAME_DISTANCE`` of one of ``other``'s."""
    return sum(1 for h in side if any((h ^ o).bit_count() <= MAX_FRAME_DISTANCE for o in other))
