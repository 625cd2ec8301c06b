"""``/v1/matches``: the match events ``match`` and ``content`` recorded, and their outcomes.

A group of its own because these routes read and annotate what was stored
earlier rather than hash anything: the platform reviews recent matches and says
what it did about each (which the node counts into its acks).
"""

from __future__ import annotations

import re

from aiohttp import web

from edge.errors import ApiError
from node.api.keys import NODE
from node.api.requests import MAX_LIMIT, flag, invalid, json_object, known_query
from node.errors import OutcomeConflictError, UnknownMatchError
from node.service import OUTCOMES

__all__ = ["get_matches", "post_outcome"]

_MATCH_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def post_outcome(request: web.Request) -> web.StreamResponse:
    """Record what the platform did about a match."""
    match_id = request.match_info["match_id"]
    if not _MATCH_ID.fullmatch(match_id):
        raise ApiError(404, "not_found", f"no match {match_id[:64]!r}")
    body = await json_object(request, {"outcome"})
    outcome = body.get("outcome")
    if outcome not in OUTCOMES:
        raise invalid(f"'outcome' must be one of {', '.join(OUTCOMES)}")
    try:
        recorded = request.app[NODE].matching.record_outcome(match_id, outcome)
    except UnknownMatchError as e:
        raise ApiError(404, "not_found", f"no match {match_id}") from e
    except OutcomeConflictError as e:
        raise ApiError(409, "conflict", str(e)) from e
    return web.json_response(recorded)


async def get_matches(request: web.Request) -> web.StreamResponse:
    """Recent match events, newest first (``?open=1``: those without an outcome)."""
    known_query(request, "open", "limit")
    open_only = bool(flag(request, "open"))
    raw = request.query.get("limit", "50")
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid(f"limit must be an integer from 1 to {MAX_LIMIT}")
    matches = request.app[NODE].matching.recent_matches(int(raw), open_only=open_only)
    return web.json_response({"matches": matches})
