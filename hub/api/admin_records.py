"""The operator API's read-only records: status, the action log, acks and evidence.

Apart from the other operator routes because none of them changes anything: they
page through what the hub has kept, newest first, for viewers and auditors
(``hub.api.admin.ADMIN_ROUTES``), each page capped in rows and in ack bytes.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from hub.api.requests import (
    check_list_id,
    check_node_id,
    known_query,
    optional_query,
    query_limit,
)
from hub.appkeys import HUB
from hub.core import ACK_PAGE_BYTES, Hub, Principal
from hub.errors import InvalidRequest
from hub.services.evidence import EvidenceItem, StoredAck

__all__ = ["admin_acks", "admin_actions", "admin_evidence", "admin_status"]


async def admin_status(request: web.Request, principal: Principal) -> web.StreamResponse:
    status = await request.app[HUB].call(lambda hub: hub.reports.status())
    return web.json_response(status.to_dict())


async def admin_actions(request: web.Request, principal: Principal) -> web.StreamResponse:
    known_query(request, "limit", "before")
    limit = query_limit(request)
    before = _query_before(request, "action")
    actions = await request.app[HUB].call(lambda hub: hub.reports.actions(limit, before=before))
    more = len(actions) == limit
    return web.json_response(
        {
            "actions": [a.to_dict() for a in actions],
            "next": actions[-1].id if actions and more else None,
        }
    )


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _query_before(request: web.Request, what: str) -> int | None:
    raw_before = request.query.get("before")
    if raw_before is not None and not re.fullmatch(r"[1-9][0-9]{0,17}", raw_before):
        raise InvalidRequest(f"before must be a positive integer (an {what} id)")
    return None if raw_before is None else int(raw_before)


def _page(key: str, rows: Sequence[EvidenceItem | StoredAck], more: bool) -> dict[str, Any]:
    """One page, newest first: ``next`` is the ``before`` of the next page (null: no more).

    A page ends at ``limit`` rows or, past its first row, at ``ACK_PAGE_BYTES`` of
    ack bytes, whichever comes first, so ``next`` is how a reader knows to go on.
    The ack bytes and sidecars travel in base64.
    """
    out = []
    for row in rows:
        item = row.to_dict(with_bytes=True) if isinstance(row, EvidenceItem) else row.to_dict()
        item["bytes"], item["sig"] = _b64(row.bytes), _b64(row.sig)
        out.append(item)
    return {key: out, "next": rows[-1].id if rows and more else None}


async def admin_evidence(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Evidence kept from nodes, newest first, paged like ``/v1/admin/acks``; the cap."""
    known_query(request, "node", "limit", "before")
    node = optional_query(request, "node", check_node_id)
    limit = query_limit(request)
    before = _query_before(request, "evidence")

    def page(hub: Hub) -> dict[str, Any]:
        rows = hub.evidence.items(
            include_bytes=True, node=node, limit=limit, before=before, max_bytes=ACK_PAGE_BYTES
        )
        more = bool(rows) and hub.evidence.older_rows("evidence", rows[-1].id, node=node)
        dropped = hub.evidence.dropped()
        return {
            **_page("evidence", rows, more),
            "cap": hub.config.max_evidence_per_node,
            "dropped": {n: d for n, d in dropped.items() if node is None or n == node},
        }

    return web.json_response(await request.app[HUB].call(page))


async def admin_acks(request: web.Request, principal: Principal) -> web.StreamResponse:
    known_query(request, "node", "list", "limit", "before")
    node = optional_query(request, "node", check_node_id)
    list_id = optional_query(request, "list", check_list_id)
    limit = query_limit(request)
    before = _query_before(request, "ack")

    def page(hub: Hub) -> dict[str, Any]:
        rows = hub.evidence.acks(
            node=node, list_id=list_id, limit=limit, before=before, max_bytes=ACK_PAGE_BYTES
        )
        more = bool(rows) and hub.evidence.older_rows(
            "acks", rows[-1].id, node=node, list_id=list_id
        )
        return _page("acks", rows, more)

    return web.json_response(await request.app[HUB].call(page))
