"""MD5 of a file's bytes, matched exactly.

Not a security property here: MD5 is what the hash-sharing programmes exchange for
videos, so it is the type a person's video is sent as from the public page (the
browser can hash a file of any size with it, slice by slice).
"""

from __future__ import annotations

import hashlib

from protocol.hashtypes._base import HashType

__all__ = ["MD5", "of_bytes"]


def of_bytes(data: bytes) -> bytes:
    """MD5 of the bytes as uploaded (16 bytes)."""
    return hashlib.md5(data, usedforsecurity=False).digest()


MD5 = HashType(
    "md5",
    16,
    False,
    0,
    label="MD5",
    submitted_as="video",
    of_bytes=of_bytes,
    signal="threatexchange.signal_type.md5:VideoMD5Signal",
)
