"""A second, independent reader of a video's frames, of a ``vpdq`` record's frames file
and of the vPDQ matching rule, written from PROTOCOL.md §6.3, §6.4 and §6.5 alone.

It shares nothing with the ``protocol`` package, so a vector the two read differently
shows that the text is ambiguous or one reader is wrong. Every refusal names the
numbered rule of §6.3 or §6.5 it breaks (``ProtocolError.rule``, ``"6.3.4"``), so a test can
check not only the §14 error class but that the reader failed where the case says.

Errors, as §14 names them::

    ProtocolError
    ├── MalformedError   (§6.3 rules 1, 2, 4, 5)
    ├── LimitError       (§6.3 rule 3, §6.5 rule 1)
    └── ConsistencyError (§6.5 rule 2)
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# §14 errors


class ProtocolError(Exception):
    """Published data is at fault (§14)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"§{rule}: {message}")
        self.rule = rule


class MalformedError(ProtocolError):
    """Bytes that do not parse under the strict rules."""


class LimitError(ProtocolError):
    """Larger than its cap."""


class ConsistencyError(ProtocolError):
    """Links that do not hold: here, a frames file that is not the one its record names."""


# ---------------------------------------------------------------------------------------------
# §6.3 the frames encoding

FRAME_LAYOUT = struct.Struct(">32sBI")
"""A frame: 32 bytes of PDQ hash, a quality byte, a big-endian unsigned 32-bit time in ms."""
FRAME_SIZE = FRAME_LAYOUT.size
FRAMES_CAP = 36_000


@dataclass(frozen=True)
class VideoFrame:
    pdq: bytes
    quality: int
    time_ms: int


def read_frames(data: bytes) -> list[VideoFrame]:
    """A video's frames, its rules applied in the order §6.3 gives them."""
    whole, rest = divmod(len(data), FRAME_SIZE)
    if rest != 0:
        raise MalformedError("6.3.1", f"{len(data)} bytes are not whole {FRAME_SIZE}-byte frames")
    if whole == 0:
        raise MalformedError("6.3.2", "no frame")
    if whole > FRAMES_CAP:
        raise LimitError("6.3.3", f"{whole} frames, more than {FRAMES_CAP}")
    frames: list[VideoFrame] = []
    for index, (pdq, quality, time_ms) in enumerate(FRAME_LAYOUT.iter_unpack(data)):
        if quality > 100:
            raise MalformedError("6.3.4", f"frame {index} has quality {quality}")
        if frames and time_ms <= frames[-1].time_ms:
            raise MalformedError(
                "6.3.5", f"frame {index} at {time_ms} ms follows one at {frames[-1].time_ms} ms"
            )
        frames.append(VideoFrame(pdq, quality, time_ms))
    return frames


def write_frames(frames: Iterable[VideoFrame]) -> bytes:
    return b"".join(FRAME_LAYOUT.pack(f.pdq, f.quality, f.time_ms) for f in frames)


def record_hash(data: bytes) -> bytes:
    """A ``vpdq`` record's ``hash``: SHA-256 of the frames, once they read (§6.3)."""
    read_frames(data)
    return hashlib.sha256(data).digest()


# ---------------------------------------------------------------------------------------------
# §6.5 frames files

FILE_CAP = 1_332_000
"""§6.5 rule 1 (and §11): the largest frames file a reader takes."""


def frames_file_path(list_id: str, record: str) -> str:
    """Where the frames a record names are published: its ``hash`` is the record's first
    field, 64 lowercase hex digits for a 32-byte type (§7.3)."""
    return f"lists/{list_id}/frames/{record.split(' ', 1)[0]}.bin"


def read_frames_file(record: str, data: bytes) -> list[VideoFrame]:
    """The frames of the entry record ``record`` from its file, §6.5's rules in order."""
    if len(data) > FILE_CAP:
        raise LimitError("6.5.1", f"{len(data)} bytes, over the cap of {FILE_CAP}")
    named = record.split(" ", 1)[0]
    if hashlib.sha256(data).hexdigest() != named:
        raise ConsistencyError("6.5.2", f"the file's SHA-256 is not the record's hash {named}")
    return read_frames(data)


# ---------------------------------------------------------------------------------------------
# §6.4 matching

QUALITY_FLOOR = 50
AGREEMENT_DISTANCE = 31
SIDE_MINIMUM = 3


@dataclass(frozen=True)
class Share:
    """``agreeing`` of a side's ``distinct`` frames agree with the other side (§6.4 4–5)."""

    agreeing: int
    distinct: int

    def counts(self) -> bool:
        """Rule 6: only a side with 3 distinct frames or more has a share that counts."""
        return self.distinct >= SIDE_MINIMUM

    def reaches_four_fifths(self) -> bool:
        """Rule 7, in integers: 5·agreeing ≥ 4·distinct."""
        return 5 * self.agreeing >= 4 * self.distinct


@dataclass(frozen=True)
class Verdict:
    query: Share
    listed: Share
    match: bool


def distinct_frames(frames: Sequence[VideoFrame]) -> set[bytes]:
    """Rules 1–2: the distinct PDQ hashes of the frames of quality 50 or more."""
    return {f.pdq for f in frames if f.quality >= QUALITY_FLOOR}


def hamming(a: bytes, b: bytes) -> int:
    return sum(bin(x ^ y).count("1") for x, y in zip(a, b, strict=True))


def _share(side: set[bytes], other: set[bytes]) -> Share:
    """Rules 3–5: how many of ``side`` lie within distance 31 of some hash of ``other``."""
    agreeing = sum(1 for h in side if any(hamming(h, o) <= AGREEMENT_DISTANCE for o in other))
    return Share(agreeing, len(side))


def compare_videos(query: Sequence[VideoFrame], listed: Sequence[VideoFrame]) -> Verdict:
    """§6.4: the two shares, and a match when a share that counts reaches 4/5."""
    ours, theirs = distinct_frames(query), distinct_frames(listed)
    query_share, listed_share = _share(ours, theirs), _share(theirs, ours)
    match = any(s.counts() and s.reaches_four_fifths() for s in (query_share, listed_share))
    return Verdict(query_share, listed_share, match)
