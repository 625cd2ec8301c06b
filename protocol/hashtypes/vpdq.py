"""vPDQ: Meta's video hash, a PDQ hash per sampled frame, matched by frames.

A video's hash is of variable length, so a ``vpdq`` record's hash is the SHA-256 of
the video's frames in their one encoding (``protocol.video``, PROTOCOL.md §6.3),
and the frames are published beside the records, one file per record
(docs/adr/0021-video-frames-behind-a-fixed-width-record.md). A node matches a video
by the frames (§6.4: the larger of the two shares at least 4/5), never by the
record's hash, which two encodings of one video do not share.

A node hashes a video with the ``vpdq`` package in a worker process
(``node.video``), not through this declaration: decoding a video is not a function
of a picture or of bytes in memory.
"""

from __future__ import annotations

from protocol.hashtypes._base import HashType

__all__ = ["VPDQ"]

VPDQ = HashType(
    "vpdq",
    32,
    False,
    0,
    label="vPDQ",
    submitted_as="video",
    signal="threatexchange.extensions.vpdq.vpdq:VPDQSignal",
    frames=True,
)
