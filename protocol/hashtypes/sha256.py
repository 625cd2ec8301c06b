"""SHA-256 of a file's bytes, matched exactly.

For sets that come from operators and trusted sources; the public page does not
offer it (MD5 is what a person's video is sent as).
"""

from __future__ import annotations

import hashlib

from protocol.hashtypes._base import HashType

__all__ = ["SHA256", "of_bytes"]


def of_bytes(data: bytes) -> bytes:
    """SHA-256 of the bytes as uploaded (32 bytes)."""
    return hashlib.sha256(data).digest()


SHA256 = HashType(
    "sha256",
    32,
    False,
    0,
    label="SHA-256",
    of_bytes=of_bytes,
    signal="threatexchange.signal_type.sha256:VideoSHA256Signal",
)
