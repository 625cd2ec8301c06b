"""The operator API on members' contributions (PROTOCOL.md §10.8): the review queue,
a decision on one, and the platforms trusted to have theirs accepted on arrival.

The queue pages as the withdrawals do (``after`` is the last row of the previous
page, here ``node/seq``); every operator reads it, a publisher decides
(``hub.api.admin.ADMIN_ROUTES``). Accepting names one list of the collection the
entry goes to (``Contributions.accept`` puts each hash in the list of its type);
the optional ``note`` is the operator's own and is never published.

Trusting a platform (``hub.services.contribution_policy``) is a standing decision
to list what it sends without anyone reading it first, as enrolling its node is:
every operator reads who is trusted, only ``admin`` changes it.
"""

from __future__ import annotations

import re

from aiohttp import web

from hub.api.requests import (
    Fields,
    check_list_id,
    check_node_id,
    json_object,
    known_query,
    query_limit,
)
from hub.appkeys import HUB
from hub.core import Hub, Principal
from hub.errors import InvalidRequest
from hub.services.access import check_platform_id
from hub.services.contribution_policy import TrustedContributor
from hub.services.contributions import CONTRIBUTION_STATUSES, ContributionRecord

__all__ = [
    "admin_contributions",
    "admin_decide_contribution",
    "admin_trust_platform",
    "admin_trusted_platforms",
    "admin_untrust_platform",
]

DECISION_BODY_BYTES = 4 * 1024
"""Cap on a decision's body: a decision, a list id, a short note."""
TRUST_BODY_BYTES = 32 * 1024
"""Cap on a trust's body: a platform, a list id, and at most 256 category terms."""
MAX_NOTE = 1000

_SEQ = re.compile(r"[1-9][0-9]{0,17}")


def _seq(value: str) -> int:
    if not _SEQ.fullmatch(value):
        raise InvalidRequest("a contribution's seq is an integer of at least 1")
    return int(value)


def _after(value: str | None) -> tuple[str, int] | None:
    """The ``after`` of a page: ``node/seq`` of the last contribution of the one before."""
    if value is None:
        return None
    node, sep, seq = value.partition("/")
    if not sep:
        raise InvalidRequest("'after' is node/seq, as 'next' gives it")
    return check_node_id(node), _seq(seq)


async def admin_contributions(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Contributions of one status, by node and seq, in pages: the review queue by default.

    ``next`` is ``node/seq`` of the last one of a full page when more follow, else null.
    """
    known_query(request, "status", "limit", "after")
    status = request.query.get("status", "received")
    if status not in CONTRIBUTION_STATUSES:
        raise InvalidRequest(f"status is one of {', '.join(CONTRIBUTION_STATUSES)}")
    limit = query_limit(request)
    after = _after(request.query.get("after"))
    rows = await request.app[HUB].call(
        lambda hub: hub.contributions.queue(limit + 1, status=status, after=after)
    )
    page = rows[:limit]
    more = len(rows) > limit
    return web.json_response(
        {
            "contributions": [row.to_dict() for row in page],
            "next": f"{page[-1].node}/{page[-1].seq}" if more else None,
        }
    )


async def admin_decide_contribution(
    request: web.Request, principal: Principal
) -> web.StreamResponse:
    """Accept a waiting contribution into a list's collection, or reject it."""
    node = check_node_id(request.match_info["node"])
    seq = _seq(request.match_info["seq"])
    body = Fields(await json_object(request, DECISION_BODY_BYTES), {"decision", "list", "note"})
    decision = body.text("decision", max_len=16)
    note = body.text("note", default="", max_len=MAX_NOTE)
    who = principal.subject
    if decision == "accept":
        list_id = check_list_id(body.text("list", max_len=64))

        def accept(hub: Hub) -> ContributionRecord:
            return hub.contributions.accept(node, seq, list_id, who, note)

        record = await request.app[HUB].call(accept)
    elif decision == "reject":
        if "list" in body.value:
            raise InvalidRequest("a rejection names no list")

        def reject(hub: Hub) -> ContributionRecord:
            return hub.contributions.reject(node, seq, who, note)

        record = await request.app[HUB].call(reject)
    else:
        raise InvalidRequest("'decision' is accept or reject")
    return web.json_response(record.to_dict())


async def admin_trusted_platforms(request: web.Request, principal: Principal) -> web.StreamResponse:
    """The platforms whose contributions are accepted on arrival, by platform id."""
    rows = await request.app[HUB].call(lambda hub: hub.contributions.policy.trusted())
    return web.json_response({"trusted": [row.to_dict() for row in rows]})


async def admin_trust_platform(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Trust a platform: ``{"platform", "list", "categories"?}``; its contributions (of
    those categories, when named) are accepted on arrival into the list's collection."""
    body = Fields(await json_object(request, TRUST_BODY_BYTES), {"platform", "list", "categories"})
    platform = check_platform_id(body.text("platform", max_len=64))
    list_id = check_list_id(body.text("list", max_len=64))
    categories = body.strings("categories", required=False)
    who = principal.subject

    def trust(hub: Hub) -> TrustedContributor:
        return hub.contributions.policy.trust(platform, list_id, categories, who)

    record = await request.app[HUB].call(trust)
    return web.json_response(record.to_dict())


async def admin_untrust_platform(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Stop trusting a platform: its next contributions wait for review. Answers the
    trust that ended."""
    platform = check_platform_id(request.match_info["platform"])
    who = principal.subject
    record = await request.app[HUB].call(
        lambda hub: hub.contributions.policy.untrust(platform, who)
    )
    return web.json_response(record.to_dict())
