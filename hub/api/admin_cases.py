"""The operator API on public submissions: the review queue, one case, accept and reject.

The same review as the dashboard's (``hub.web.pages``), for operators who script
it or work without a browser: the same roles (the dashboard's readers read, its
writers review; ``hub.api.admin.ADMIN_ROUTES``), the same service call
(``Cases.review``, logged under the token's name) and so the same rules — a case
is reviewed once, into a list of its hash type, and a degenerate hash is never
staged. Unlike the dashboard's form, whose typed number may carry dashes, a case
number here is exactly 32 lowercase hex digits, checked before anything is looked
up; anything else is a 400, as any malformed path segment of the API is.
"""

from __future__ import annotations

import re

from aiohttp import web

from hub.api.requests import Fields, check_list_id, json_object, known_query, query_limit
from hub.appkeys import HUB
from hub.core import Hub, Principal
from hub.errors import InvalidRequest
from hub.services.cases import CASE_STATUSES, CaseRecord

__all__ = [
    "CASE_BODY_BYTES",
    "admin_accept_case",
    "admin_case",
    "admin_cases",
    "admin_reject_case",
    "check_case_number",
]

CASE_BODY_BYTES = 4 * 1024
"""Cap on an accept or reject body: a list id is at most 64 characters."""

_CASE = re.compile(r"[0-9a-f]{32}")


def check_case_number(value: str) -> str:
    """A case number: 32 lowercase hex digits (``Cases.submit`` makes no other)."""
    if not _CASE.fullmatch(value):
        raise InvalidRequest("a case number is 32 lowercase hex digits")
    return value


async def admin_cases(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Cases of one status, oldest first, in pages: the review queue by default.

    ``next`` is the last case of a full page when more follow (the ``after`` of
    the next page), null after the last page.
    """
    known_query(request, "status", "limit", "after")
    status = request.query.get("status", "received")
    if status not in CASE_STATUSES:
        raise InvalidRequest(f"status is one of {', '.join(CASE_STATUSES)}")
    limit = query_limit(request)
    raw_after = request.query.get("after")
    after = None if raw_after is None else check_case_number(raw_after)
    # One row past the page says whether another page follows.
    rows = await request.app[HUB].call(
        lambda hub: hub.cases.with_status(status, limit + 1, after=after)
    )
    page = rows[:limit]
    more = len(rows) > limit
    return web.json_response(
        {"cases": [row.to_dict() for row in page], "next": page[-1].case if more else None}
    )


async def admin_case(request: web.Request, principal: Principal) -> web.StreamResponse:
    case_number = check_case_number(request.match_info["case"])
    record = await request.app[HUB].call(lambda hub: hub.cases.review_record(case_number))
    return web.json_response(record.to_dict())


async def admin_accept_case(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Accept a case into the list named in the body: its hash is staged for the next publish."""
    case_number = check_case_number(request.match_info["case"])
    body = Fields(await json_object(request, CASE_BODY_BYTES), {"list"})
    list_id = check_list_id(body.text("list", max_len=64))
    who = principal.subject

    def accept(hub: Hub) -> CaseRecord:
        hub.cases.review(case_number, accept=True, list_id=list_id, who=who)
        return hub.cases.review_record(case_number)

    return web.json_response((await request.app[HUB].call(accept)).to_dict())


async def admin_reject_case(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Reject a case; the body, if any, is an empty JSON object."""
    case_number = check_case_number(request.match_info["case"])
    Fields(await json_object(request, CASE_BODY_BYTES, optional=True), set())
    who = principal.subject

    def reject(hub: Hub) -> CaseRecord:
        hub.cases.review(case_number, accept=False, who=who)
        return hub.cases.review_record(case_number)

    return web.json_response((await request.app[HUB].call(reject)).to_dict())
