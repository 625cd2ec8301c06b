"""Videos on the command line: which files ``match`` and ``scan`` hash as videos, and
how a video match's shares are printed.

A file is taken for a video by its name (a video type by its extension) or by its
first bytes (an MP4/MOV ``ftyp`` box, Matroska/WebM's EBML header, AVI's ``RIFF``,
Ogg, an MPEG program stream), and hashed as one (``node.video.hash_video``: vPDQ
frames in a worker process, MD5 and SHA-256 of the bytes) only when the node
follows a ``vpdq`` list: frames are what only such a list can match, and a node that
follows none decodes nothing, as the API does not.

``scan`` registers a video with its frames, MD5 and SHA-256 (``node.registry``),
so that a video list that grows later finds it; each video hit is a match event of
the content (source ``registry``), found again on a later scan under its first
event's id and not counted twice.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping, Sequence
from pathlib import Path

from node.matching import video_queries
from node.video import hash_video

__all__ = ["is_video", "shares_text", "video_file_queries"]

_MAGIC = (
    (4, b"ftyp"),  # MP4, MOV, 3GP
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska, WebM
    (0, b"OggS"),
    (0, b"\x00\x00\x01\xba"),  # MPEG program stream
)


def is_video(path: Path, head: bytes) -> bool:
    """Whether a file is taken for a video: its extension's type is ``video/*``, or
    ``head`` (its first bytes) opens a video container."""
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed is not None and guessed.startswith("video/"):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    return any(head[at : at + len(magic)] == magic for at, magic in _MAGIC)


def video_file_queries(path: Path) -> dict[str, list[bytes]]:
    """A video file's queries: its frames, MD5 and SHA-256 (``VideoRejected`` when it
    is no video the hasher takes)."""
    return video_queries(hash_video(path))


def shares_text(video: Mapping[str, Sequence[int]] | None) -> str:
    """A video match's shares (its ``"video"`` member: ``shares_members``), as
    ``hashhub-node match``, ``scan`` and ``matches`` print them; "" for any other
    match, which shows its distance instead."""
    if video is None:
        return ""
    (q, total_q), (listed, total_l) = video["query_share"], video["listed_share"]
    return f"frames: query {q}/{total_q} listed {listed}/{total_l}"
