"""The operator API on public submissions: the review queue, one case, accept and
reject, and the withdrawals waiting for review (approve or refuse).

The same review as the dashboard's (``hub.web.pages``), for operators who script
it or work without a browser: the same roles (the dashboard's readers read, its
writers review; ``hub.api.admin.ADMIN_ROUTES``), the same service call
(``Cases.review``, logged under the token's name) and so the same rules — a case
is reviewed once, into a list of its hash type, and a degenerate hash is never
staged. Unlike the dashboard's form, whose typed number may carry dashes, a case
number here is exactly 32 lowercase hex digits, checked before anything is looked
up; anything else is a 400, as any malformed path segment of the API is.

Accepting into an ``entries`` list takes the entry's ``category`` and
``classification`` (terms of the root's vocabulary); a ``hashes`` list refuses
them. A withdrawal waits here only under ``withdrawal = "review"``
(``Cases.decide_withdrawal``): the person's request itself comes through the case
page, never through this API.
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
    "admin_decide_withdrawal",
    "admin_reject_case",
    "admin_withdrawals",
    "check_case_number",
]

CASE_BODY_BYTES = 4 * 1024
"""Cap on an accept, reject or withdrawal body: a list id, two terms, a decision."""

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
    """Accept a case into the list named in the body: its hash is staged for the next
    publish (as an entry, with the body's category and classification, in an entries list)."""
    case_number = check_case_number(request.match_info["case"])
    body = Fields(
        await json_object(request, CASE_BODY_BYTES), {"list", "category", "classification"}
    )
    list_id = check_list_id(body.text("list", max_len=64))
    category = _term(body, "category")
    classification = _term(body, "classification")
    who = principal.subject

    def accept(hub: Hub) -> CaseRecord:
        hub.cases.review(
            case_number,
            accept=True,
            list_id=list_id,
            category=category,
            classification=classification,
            who=who,
        )
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


def _term(body: Fields, name: str) -> str | None:
    """An optional vocabulary term of the body; absent or null: None."""
    if body.value.get(name) is None:
        return None
    return body.text(name, max_len=64)


async def admin_withdrawals(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Withdrawals waiting for an operator, oldest case first, in pages (as ``admin_cases``)."""
    known_query(request, "limit", "after")
    limit = query_limit(request)
    raw_after = request.query.get("after")
    after = None if raw_after is None else check_case_number(raw_after)
    rows = await request.app[HUB].call(lambda hub: hub.cases.withdrawals(limit + 1, after=after))
    page = rows[:limit]
    more = len(rows) > limit
    return web.json_response(
        {"cases": [row.to_dict() for row in page], "next": page[-1].case if more else None}
    )


async def admin_decide_withdrawal(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Approve (retract the entry as ``withdrawn``) or refuse a waiting withdrawal."""
    case_number = check_case_number(request.match_info["case"])
    body = Fields(await json_object(request, CASE_BODY_BYTES), {"decision"})
    decision = body.text("decision", max_len=16)
    if decision not in ("approve", "refuse"):
        raise InvalidRequest("'decision' is approve or refuse")
    who = principal.subject

    def decide(hub: Hub) -> CaseRecord:
        hub.cases.decide_withdrawal(case_number, approve=decision == "approve", who=who)
        return hub.cases.review_record(case_number)

    return web.json_response((await request.app[HUB].call(decide)).to_dict())
