"""Videos' frames: what a ``vpdq`` record's hash names (PROTOCOL.md §6.3).

A ``vpdq`` record's hash is the SHA-256 of a video's frames, so the hub keeps the
frames by that hash, once per video (the ``frames`` table), whichever entries and
lists carry it. Frames come in with an entry (the operators' API and import, a
public submission, an upstream hub's or a member's record) and go out as a frames
file beside every list version that adds a record naming them
(``hub.services.publishing``), checked then as a node would check it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from hub.errors import InvalidRequest
from hub.services.context import HubContext
from protocol import ProtocolError, format_time
from protocol.hashes import degenerate_reason
from protocol.video import (
    FRAME_BYTES,
    MAX_FRAMES,
    MAX_FRAMES_BYTES,
    MIN_QUALITY,
    Frame,
    decode_frames,
)

__all__ = [
    "RECORD_HASH_DIGITS",
    "Frames",
    "VideoHash",
    "check_frames",
    "degenerate_video",
    "good_frames",
    "parse_video_hash",
]

RECORD_HASH_DIGITS = 64
"""A ``vpdq`` record's hash as hex: never a whole number of frames (74 digits each)."""

_HEX = re.compile(r"[0-9a-f]*")


@dataclass(frozen=True)
class VideoHash:
    """A ``vpdq`` hash as an operator gives it: the video's frames, or the record hash
    of frames the hub already holds (``frames`` None)."""

    record: bytes
    frames: bytes | None = None
    decoded: tuple[Frame, ...] = ()
    """``frames`` read (none for a bare record hash)."""


def parse_video_hash(text: str) -> VideoHash:
    """Read a ``vpdq`` hash's text: the frames in their one encoding (PROTOCOL.md §6.3)
    as hex, 74 digits a frame, or 64 hex digits naming frames the hub holds. Either
    way the record's hash is known here; whether the hub holds a bare record hash's
    frames is the caller's to check (in the same transaction as it stages).

    Raises:
        InvalidRequest: naming the rule the text breaks.
    """
    value = text.strip().lower()
    if not value:
        raise InvalidRequest(
            "a vpdq hash is the video's frames as hex (74 digits a frame), "
            "or the 64-hex record hash of frames the hub holds; it is empty"
        )
    if not _HEX.fullmatch(value):
        raise InvalidRequest(f"{text.strip()[:80]!r} is not hex: a vpdq hash is the frames as hex")
    if len(value) % 2:
        raise InvalidRequest(f"a vpdq hash of {len(value)} hex digits: an odd number is no bytes")
    if len(value) == RECORD_HASH_DIGITS:
        return VideoHash(bytes.fromhex(value))
    if len(value) > 2 * (MAX_FRAMES_BYTES + FRAME_BYTES):
        raise InvalidRequest(
            f"frames: more than {MAX_FRAMES} frames ({len(value) // 2} bytes), "
            f"above the cap of {MAX_FRAMES}"
        )
    data = bytes.fromhex(value)
    return VideoHash(hashlib.sha256(data).digest(), data, check_frames(data))


def check_frames(data: bytes) -> tuple[Frame, ...]:
    """``data`` as frames (``protocol.video.decode_frames``), refused as a hub refuses
    what it would never publish.

    Raises:
        InvalidRequest: the message names the rule of §6.3 broken (a whole number of
            frames, at least one, at most ``MAX_FRAMES``, quality at most 100, times
            strictly ascending).
    """
    if len(data) > MAX_FRAMES_BYTES:
        whole = len(data) % FRAME_BYTES == 0
        raise InvalidRequest(
            f"frames: {len(data) // FRAME_BYTES} frames, above the cap of {MAX_FRAMES}"
            if whole
            else f"frames: above the cap of {MAX_FRAMES_BYTES} bytes"
        )
    try:
        return decode_frames(data)
    except ProtocolError as e:
        raise InvalidRequest(str(e)) from e


def good_frames(frames: Sequence[Frame]) -> set[bytes]:
    """The distinct PDQ hashes of ``frames`` that §6.4 can compare: of quality
    ``MIN_QUALITY`` or more, and not degenerate (a blank or flat picture,
    ``protocol.hashes.degenerate_reason``), whatever quality is claimed for it: such a
    frame agrees with every other such frame."""
    return {
        f.pdq
        for f in frames
        if f.quality >= MIN_QUALITY and degenerate_reason("pdq", f.pdq) is None
    }


def degenerate_video(frames: Sequence[Frame]) -> str | None:
    """Why a video could never match (PROTOCOL.md §6.4), or None.

    §6.4 compares only frames of quality ``MIN_QUALITY`` or more, so a video with
    none has no frame to agree on: listed, it would never match anything and would
    only cost every node a file; a listed video of only black frames would flag every
    dark upload. One good frame (``good_frames``) is enough, as §6.4 lets a query's
    own share match a listed still.
    """
    if good_frames(frames):
        return None
    return (
        f"no frame of quality {MIN_QUALITY} or more with a PDQ hash that is not "
        "degenerate: the video could never match (PROTOCOL.md §6.4)"
    )


_LOOKUP_BATCH = 500
"""Record hashes looked up in one query: far below SQLite's limit on parameters."""


class Frames:
    """The ``frames`` table: a video's frames by their SHA-256."""

    def __init__(self, ctx: HubContext) -> None:
        self.ctx = ctx

    def put(self, data: bytes) -> bytes:
        """Keep ``data``, a video's frames, and return their SHA-256: the hash of the
        ``vpdq`` record that names them. Frames already kept are kept once.

        Raises:
            InvalidRequest: not frames in the one encoding (the message names the rule
                of §6.3 they break).
        """
        count = len(check_frames(data))
        digest = hashlib.sha256(data).digest()
        self.keep(digest, data, count)
        return digest

    def keep(self, digest: bytes, data: bytes, count: int) -> None:
        """Keep frames already checked (``check_frames``) under their SHA-256 ``digest``."""
        self.ctx.db.execute(
            "INSERT INTO frames (hash, data, count, added) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (hash) DO NOTHING",
            [digest, data, count, format_time(self.ctx.now())],
        )

    def get(self, record: bytes) -> bytes | None:
        """The frames a record's hash names, or None when the hub holds none."""
        row = self.ctx.one("SELECT data FROM frames WHERE hash = ?", [record])
        return bytes(row["data"]) if row else None

    def counts(self, records: Iterable[bytes]) -> dict[bytes, int]:
        """How many frames each of ``records`` names, for those the hub holds: what a
        page shows of a video rather than its frames."""
        return {bytes(row["hash"]): int(row["count"]) for row in self._rows("count", records)}

    def held(self, records: Iterable[bytes]) -> frozenset[bytes]:
        """Which of ``records`` the hub holds the frames of."""
        return frozenset(self.counts(records))

    def of(self, records: Iterable[bytes]) -> dict[bytes, bytes]:
        """The frames of each of ``records`` the hub holds, by record hash."""
        return {bytes(row["hash"]): bytes(row["data"]) for row in self._rows("data", records)}

    def _rows(
        self, column: Literal["count", "data"], records: Iterable[bytes]
    ) -> Iterator[dict[str, Any]]:
        """The ``hash`` and ``column`` of the rows of ``records``, looked up by key a few
        hundred at a time."""
        wanted = list(dict.fromkeys(records))
        for start in range(0, len(wanted), _LOOKUP_BATCH):
            batch = wanted[start : start + _LOOKUP_BATCH]
            marks = ", ".join("?" * len(batch))
            yield from self.ctx.db.query(
                f"SELECT hash, {column} FROM frames WHERE hash IN ({marks})",  # noqa: S608
                batch,
            )
