"""Videos on the command line: which files ``match`` and ``scan`` hash as videos, and
how ``scan`` matches a video it registers.

A file is taken for a video by its name (a video type by its extension) or by its
first bytes (an MP4/MOV ``ftyp`` box, Matroska/WebM's EBML header, AVI's ``RIFF``,
Ogg, an MPEG program stream), and hashed as one (``node.video.hash_video``: vPDQ
frames in a worker process, MD5 and SHA-256 of the bytes) only when the node
follows a ``vpdq`` list: frames are what only such a list can match, and a node that
follows none decodes nothing, as the API does not.

The registry keeps hashes, not frames, so ``scan`` registers a video's MD5 and
SHA-256 and matches its frames beside the registration (``video_matches``): each
video hit is a match event of the content (source ``registry``), found again on a
later scan under its first event's id and not counted twice.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from pathlib import Path

from node.matching import MatchResult, video_queries
from node.matchings import Matchings
from node.video import hash_video
from node.video_index import VideoQueries

__all__ = ["follows_videos", "is_video", "shares_text", "video_file_queries", "video_matches"]

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


def follows_videos(matchings: Matchings) -> bool:
    """Whether any followed hub's lists include a ``vpdq`` list the node has applied."""
    return any(matching.videos for matching in matchings)


def video_file_queries(path: Path) -> dict[str, list[bytes]]:
    """A video file's queries: its frames, MD5 and SHA-256 (``VideoRejected`` when it
    is no video the hasher takes)."""
    return video_queries(hash_video(path))


def video_matches(
    matchings: Matchings,
    content_id: str,
    videos: VideoQueries,
    *,
    dry_run: bool,
    new: bool,
) -> Sequence[MatchResult]:
    """Match a scanned video's frames and record each hit as an event of ``content_id``
    (with ``dry_run``, only look). ``new``: the content was not registered before, so
    its check counts; a listed video it matched before is reported under that event."""
    asked: dict[str, list[bytes]] = {"vpdq": videos}
    if dry_run:
        return matchings.look(asked, one_item=True)
    found: list[MatchResult] = []
    for matching in matchings:
        found += matching.match_hashes(
            asked,
            content_id=content_id,
            one_item=True,
            checked_types=None if new else (),
            earlier=matching.store.matches.content_events(content_id),
        )
    return found


def shares_text(m: MatchResult) -> str:
    """A video match's shares, as ``hashhub-node match`` and ``scan`` print them."""
    if m.query_share is None or m.listed_share is None:
        return ""
    (q, total_q), (listed, total_l) = m.query_share, m.listed_share
    return f"frames: query {q}/{total_q} listed {listed}/{total_l}"
