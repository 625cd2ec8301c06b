"""The operator API on disputes of entries: the list, and a decision on one.

The same service calls as ``hashhub dispute`` (``hub.services.disputes``), so the
same rules: only an open dispute is dismissed, only a live one upheld, and an
upheld entry is retracted as ``disputed`` from every list of its collection through
the entries' own retraction. The roles are those of the withdrawals
(``hub.api.admin.ADMIN_ROUTES``): every operator reads, a publisher decides. The
entry in the path is checked before anything is looked up; a bad body is a 400
that changes nothing.
"""

from __future__ import annotations

from aiohttp import web

from hub.api.admin_entries import check_entry_id
from hub.api.requests import Fields, json_object, known_query, query_limit
from hub.appkeys import HUB
from hub.core import Principal
from hub.errors import InvalidRequest
from hub.services.disputes import DISPUTE_DECISIONS, DISPUTE_STATES, MAX_NOTE

__all__ = ["DISPUTE_BODY_BYTES", "admin_decide_dispute", "admin_disputes"]

DISPUTE_BODY_BYTES = 8 * 1024
"""Cap on a decision's body: a decision and a note of at most ``MAX_NOTE`` characters."""


async def admin_disputes(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Disputes, oldest first: all, or those of one ``?state=``."""
    known_query(request, "state", "limit")
    state = request.query.get("state")
    if state is not None and state not in DISPUTE_STATES:
        raise InvalidRequest(f"state is one of {', '.join(DISPUTE_STATES)}")
    limit = query_limit(request)
    rows = await request.app[HUB].call(lambda hub: hub.disputes.listed(state, limit))
    return web.json_response({"disputes": [row.to_dict() for row in rows]})


async def admin_decide_dispute(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Dismiss or uphold the dispute of the entry in the path."""
    entry_id = check_entry_id(request.match_info["entry"])
    body = Fields(await json_object(request, DISPUTE_BODY_BYTES), {"decision", "note"})
    decision = body.text("decision", max_len=16)
    if decision not in DISPUTE_DECISIONS:
        raise InvalidRequest(f"'decision' is {' or '.join(DISPUTE_DECISIONS)}")
    note = body.text("note", max_len=MAX_NOTE) if "note" in body.value else None
    who = principal.subject
    record = await request.app[HUB].call(
        lambda hub: hub.disputes.decide(entry_id, decision, note, who)
    )
    return web.json_response(record.to_dict())
