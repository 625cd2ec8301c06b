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
from node.matching import (
    DISPUTE_REASONS,
    MisdirectedMatchError,
    is_match_id,
    shown_match_id,
)
from node.service import OUTCOMES

__all__ = ["get_matches", "post_outcome"]


async def post_outcome(request: web.Request) -> web.StreamResponse:
    """Record what the platform did about a match.

    The rules are ``Matching.record_outcome``'s, shared with ``hashhub-node outcome``
    and the status page; the id is checked here too, before the body is read, so
    that a malformed id is a 404 whatever the body holds. An id another replica
    issued is 421 ``misdirected_match``, naming it: the platform's load balancer
    routes outcomes by the match id's replica, and this one was sent to the wrong one.
    """
    match_id = request.match_info["match_id"]
    if not is_match_id(match_id):
        raise ApiError(404, "not_found", f"no match {shown_match_id(match_id)}")
    body = await json_object(request, {"outcome", "reason"})
    outcome = body.get("outcome")
    if outcome not in OUTCOMES:
        raise invalid(f"'outcome' must be one of {', '.join(OUTCOMES)}")
    reason = body.get("reason")
    if reason is not None and (outcome != "false_positive" or reason not in DISPUTE_REASONS):
        raise invalid(
            f"'reason' goes with false_positive only, one of {', '.join(DISPUTE_REASONS)}"
        )
    try:
        recorded = request.app[NODE].matching.record_outcome(match_id, outcome, reason)
    except MisdirectedMatchError as e:
        raise ApiError(421, "misdirected_match", str(e)) from e
    except UnknownMatchError as e:
        raise ApiError(404, "not_found", str(e)) from e
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
