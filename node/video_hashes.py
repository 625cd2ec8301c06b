"""A video given by its frames in hex (PROTOCOL.md §6.3), read one way wherever a
platform gives one: an API request's ``hashes``, a content file's line, a command's
argument.

Each caller says where the mistake is in its own terms (a request's item, a file's
line, an argument), so a ``FramesTextError`` carries only what is wrong with the
text; a ``vpdq`` hash given as the 64-digit SHA-256 of frames is named for what it
is where a video is registered, since a video list matches frames, never that hash.
"""

from __future__ import annotations

import re

from protocol.errors import ProtocolError
from protocol.lists import HASH_TYPES
from protocol.video import Frame, decode_frames

__all__ = ["BARE_VIDEO_HASH", "FramesTextError", "frames_from_hex"]

BARE_VIDEO_HASH = (
    "a vpdq hash is registered as the video's frames, in hex of their one encoding "
    "(PROTOCOL.md §6.3, 37 bytes a frame), not as the 64-digit SHA-256 of them: "
    "a video list matches frames, never that hash"
)
"""Why a ``vpdq`` hash without its frames is refused, wherever it is given."""

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")

_DIGEST_DIGITS = 2 * HASH_TYPES["vpdq"].length


class FramesTextError(ValueError):
    """Text that is no video's frames, and why; the caller names where it was."""


def frames_from_hex(text: object, *, registering: bool = False) -> tuple[bytes, tuple[Frame, ...]]:
    """A video's frames from their hex: the encoding and the frames it holds,
    checked by ``decode_frames`` (once: the caller keeps both).

    ``registering``: a video is being registered, where 64 hex digits are its
    digest given by mistake (``BARE_VIDEO_HASH``) rather than frames gone wrong.
    """
    if not isinstance(text, str) or not _HEX.fullmatch(text):
        raise FramesTextError("a video's frames are given in hex, an even number of digits")
    if registering and len(text) == _DIGEST_DIGITS:
        raise FramesTextError(BARE_VIDEO_HASH)
    encoded = bytes.fromhex(text)
    try:
        return encoded, decode_frames(encoded)
    except ProtocolError as e:
        raise FramesTextError(f"not a video's frames: {e}") from None
