"""Reading a request strictly, for every route of the node's API.

One module, so that every route refuses the same way: a body that is not a JSON
object, an unknown field, an unknown query parameter, a malformed hash or flag is
a 400 ``invalid_request`` naming what is wrong, and nothing is stored for it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from edge.errors import ApiError
from edge.http import read_body
from node.video_hashes import FramesTextError, frames_from_hex
from node.video_index import VideoQueries
from protocol.lists import HASH_TYPES

__all__ = [
    "JSON_BODY_BYTES",
    "MAX_LIMIT",
    "MAX_QUERY_HASHES",
    "check_content_id",
    "flag",
    "hash_queries",
    "invalid",
    "json_object",
    "known_query",
]

JSON_BODY_BYTES = 256 * 1024
MAX_QUERY_HASHES = 256
MAX_LIMIT = 1000

_HEX = re.compile(r"[0-9a-fA-F]*")


def invalid(message: str) -> ApiError:
    """The 400 every malformed request gets."""
    return ApiError(400, "invalid_request", message)


async def json_object(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    """A JSON object body of at most ``JSON_BODY_BYTES``, with no field outside ``allowed``."""
    data = await read_body(request, JSON_BODY_BYTES)
    try:
        value = json.loads(data.decode("utf-8"))
    # ValueError: besides UnicodeDecodeError and JSONDecodeError, an integer of more
    # digits than int() reads (4300), which would otherwise answer 500.
    except (ValueError, RecursionError) as e:
        raise invalid(f"the body is not JSON: {e}") from e
    if not isinstance(value, dict):
        raise invalid("the body must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise invalid(f"unknown field(s) {unknown}")
    return value


def hash_queries(value: object, *, registering: bool = False) -> dict[str, list[bytes]]:
    """``[{"type": "pdq", "hash": "<hex>"}, …]`` → ``{type: [bytes, …]}``, strictly.

    The ``hash`` of a type of frames (``vpdq``) is a video's frames in hex, their
    one encoding (PROTOCOL.md §6.3), read strictly: its query is a ``VideoQueries``
    of them, matched by §6.4. ``registering`` (``/v1/content``) names the mistake
    of registering a video by a 64-digit hash (its digest, which matches nothing)
    instead of reporting it as a frames encoding gone wrong."""
    if not isinstance(value, list) or not value:
        raise invalid('\'hashes\' must be a non-empty list of {"type", "hash"} objects')
    if len(value) > MAX_QUERY_HASHES:
        raise invalid(f"at most {MAX_QUERY_HASHES} hashes per request")
    queries: dict[str, list[bytes]] = {}
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"type", "hash"}:
            raise invalid(f"hashes[{i}] must be an object with exactly 'type' and 'hash'")
        type_name, text = item["type"], item["hash"]
        kind = HASH_TYPES.get(type_name) if isinstance(type_name, str) else None
        if kind is None:
            raise invalid(f"hashes[{i}]: unknown hash type; one of {sorted(HASH_TYPES)}")
        if kind.frames:
            videos = queries.setdefault(kind.name, VideoQueries([]))
            assert isinstance(videos, VideoQueries)
            try:
                videos.add(*frames_from_hex(text, registering=registering))
            except FramesTextError as e:
                raise invalid(f"hashes[{i}]: {e}") from e
            continue
        if not isinstance(text, str) or len(text) != 2 * kind.length or not _HEX.fullmatch(text):
            raise invalid(f"hashes[{i}]: a {kind.name} hash is {2 * kind.length} hex digits")
        queries.setdefault(kind.name, []).append(bytes.fromhex(text))
    return queries


def known_query(request: web.Request, *names: str) -> None:
    """Refuse a query parameter the route does not take.

    A misspelt parameter ignored silently changes the answer without a word: with
    ``?dihedal=1`` the rotations of a picture would not be checked. It is a 400
    naming the parameter instead.
    """
    unknown = sorted(set(request.query) - set(names))
    if unknown:
        raise invalid(
            f"unknown query parameter {unknown[0][:64]!r}; this route takes {', '.join(names)}"
        )


def flag(request: web.Request, name: str) -> bool | None:
    """A yes/no query parameter (``1``, ``true``, ``yes`` or ``0``, ``false``, ``no``), or None."""
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise invalid(f"{name} must be 1 or 0")


def check_content_id(value: object) -> str:
    """A platform's content id: 1-256 printable characters."""
    if not isinstance(value, str) or not value or len(value) > 256 or not value.isprintable():
        raise invalid("a content id is 1-256 printable characters")
    return value
