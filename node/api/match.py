"""``POST /v1/match``: an upload or hashes, matched against every subscribed list.

Its own module because it is the node's reason to exist and its hottest route,
and because ``content`` matches the same way: hashing an upload by its content
type (pictures on a worker thread, since they never touch the database), and the
answer's ``hashes`` and match counters, are here and used by both.

A ``video/*`` upload to ``/v1/match`` is hashed as a video (``node.video.hash_video``:
vPDQ frames in a worker process, MD5 and SHA-256 of the bytes) when the node follows
a ``vpdq`` list, whose videos only frames can match (and so is one registered
through ``/v1/content``, whose registry keeps the frames for later updates);
otherwise as a file: nothing is decoded that nothing could match. A video the
hasher refuses is answered with its reason (``VIDEO_REJECTED``), and nothing is
counted or recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web

from edge.errors import ApiError
from edge.http import read_body
from node.api.keys import CONFIG, METRICS, NODE
from node.api.requests import flag, hash_queries, invalid, json_object, known_query
from node.errors import NodeConfigError
from node.hubs import shown_list
from node.imaging import ImageRejected
from node.matching import video_queries
from node.service import MatchResult
from node.video import VideoLimits, VideoRejected, VideoRejectReason, hash_video

__all__ = [
    "FILE_TYPES",
    "IMAGE_TYPES",
    "VIDEO_REJECTED",
    "count_matches",
    "hex_queries",
    "post_match",
    "upload_queries",
]

IMAGE_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"}
)
"""Content types hashed as pictures (PDQ, pHash, MD5, SHA-256)."""
FILE_TYPES = frozenset({"application/octet-stream"})
"""Content types (besides ``video/*`` and ``audio/*``) hashed as files (MD5, SHA-256)."""

_REJECTED = {
    "too_large": (413, "payload_too_large"),
    "decompression_bomb": (400, "decompression_bomb"),
    "corrupt": (400, "corrupt_image"),
    "unsupported": (415, "unsupported_media_type"),
}
"""``ImageRejected.reason`` → the status and code it is answered with."""

VIDEO_REJECTED: dict[VideoRejectReason, tuple[int, str]] = {
    "too_large": (413, "payload_too_large"),
    "too_long": (413, "video_too_long"),
    "too_many_frames": (413, "video_too_many_frames"),
    "too_big_picture": (413, "video_too_big_picture"),
    "unsupported": (415, "unsupported_media_type"),
    "corrupt": (400, "corrupt_video"),
    "timeout": (422, "video_timeout"),
}
"""``VideoRejected.reason`` → the status and code it is answered with: a video past a
limit is too large (413), one that is no video of an accepted container and codec
unsupported (415), one that cannot be decoded corrupt (400), and one that could not
be hashed in the time allowed unprocessable (422)."""


async def upload_queries(request: web.Request) -> tuple[str, dict[str, list[bytes]]]:
    """The hashes of an uploaded file by its content type: ``("image"|"video"|"file",
    queries)``; a ``video/*`` body is a video only when the node follows a ``vpdq``
    list (else a file, by its digests)."""
    node = request.app[NODE]
    content_type = request.content_type
    major = content_type.partition("/")[0]
    if content_type in IMAGE_TYPES:
        kind = "image"
    elif major == "video" and node.matching.follows_videos:
        kind = "video"
    elif content_type in FILE_TYPES or major in ("video", "audio"):
        kind = "file"
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"cannot hash {content_type[:80]!r}: send an image ({', '.join(sorted(IMAGE_TYPES))}),"
            " video/*, audio/*, application/octet-stream, or application/json hashes",
        )
    dihedral = flag(request, "dihedral")
    data = await read_body(request, request.app[CONFIG].max_upload_bytes)
    if not data:
        raise invalid("the body is empty")
    if kind == "file":
        return kind, node.matching.file_queries(data)
    if kind == "video":
        return kind, await _video_queries(data, request.app[CONFIG].max_upload_bytes)
    try:
        queries = await asyncio.to_thread(node.matching.image_queries, data, dihedral=dihedral)
    except ImageRejected as e:
        status, code = _REJECTED[e.reason]
        raise ApiError(status, code, str(e)) from e
    return kind, queries


async def _video_queries(data: bytes, max_bytes: int) -> dict[str, list[bytes]]:
    """A video upload's frames and digests, hashed on a thread (``hash_video`` runs
    FFmpeg in a worker process of its own; the loop only waits)."""
    limits = VideoLimits(max_bytes=max(max_bytes, 1))
    try:
        video = await asyncio.to_thread(hash_video, data, limits)
    except VideoRejected as e:
        status, code = VIDEO_REJECTED[e.reason]
        raise ApiError(status, code, str(e)) from e
    except NodeConfigError as e:
        raise ApiError(503, "video_unavailable", f"this node cannot hash videos: {e}") from e
    return video_queries(video)


def hex_queries(queries: Mapping[str, list[bytes]]) -> dict[str, list[str]]:
    """The hashes a request was matched with, as the answer shows them."""
    return {type_name: [h.hex() for h in hashes] for type_name, hashes in sorted(queries.items())}


def count_matches(app: web.Application, results: list[MatchResult], source: str) -> None:
    """Count each new match by list and by what found it (``upload`` or ``registry``).

    A match of registered content that an earlier registration already counted
    (``MatchResult.earlier``) is not counted again, as it is not in the acks.
    """
    for result in results:
        if not result.earlier:
            app[METRICS].matches.labels(shown_list(result.hub, result.list_id), source).inc()


async def post_match(request: web.Request) -> web.StreamResponse:
    """Match an upload (its bytes) or hashes (JSON) against every subscribed list."""
    node = request.app[NODE]
    known_query(request, "dihedral")
    if request.content_type == "application/json":
        body = await json_object(request, {"hashes"})
        kind, queries = "hashes", hash_queries(body.get("hashes"))
    else:
        kind, queries = await upload_queries(request)
    results = node.matching.match_hashes(queries, one_item=kind != "hashes")
    request.app[METRICS].checked.labels(kind).inc()
    count_matches(request.app, results, "upload")
    return web.json_response(
        {"matches": [r.to_dict() for r in results], "hashes": hex_queries(queries)}
    )
