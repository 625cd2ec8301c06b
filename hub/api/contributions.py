"""``POST /v1/contributions`` and ``GET /v1/contributions/{seq}``: a member node's
signed candidate entry and its review's outcome (PROTOCOL.md §10.8).

A contribution travels as an ack does (``hub.api.acks``): the node's bearer token,
``application/json``, the sidecar base64 in ``Hashhub-Signature``, the exact bytes as
the body. Contributions are rare (a platform's confirmed items, not every poll), so
each goes to the database thread on its own rather than through the ack batcher;
the body is read (capped) before that one trip, and a bad body is reported only
after the token passed, in the order §10.8 gives.
"""

from __future__ import annotations

import re

from aiohttp import web

from hub.api.acks import signature_sidecar
from hub.api.requests import bearer, require_json
from hub.appkeys import HUB
from hub.core import Hub
from hub.errors import Forbidden, HubError, InvalidRequest, Unauthorized
from hub.http import read_body
from hub.services.contributions import ContributionReceipt, ContributionRecord

__all__ = ["MAX_CONTRIBUTION_BYTES", "get_contribution", "post_contribution"]

MAX_CONTRIBUTION_BYTES = 64 * 1024
"""The cap §10.8 puts on a contribution's bytes."""

_SEQ = re.compile(r"[1-9][0-9]{0,17}")


async def post_contribution(request: web.Request) -> web.StreamResponse:
    """Receive a node's signed contribution (PROTOCOL.md §10.8)."""
    token = bearer(request)
    if token is None:
        raise Unauthorized("contributions are sent with the node's bearer token")
    body_error: Exception | None = None
    data = sig = b""
    try:
        require_json(request)
        data = await read_body(request, MAX_CONTRIBUTION_BYTES)
        sig = signature_sidecar(request, "contribution")
    except (HubError, web.HTTPException) as e:
        body_error = e

    def receive(hub: Hub) -> ContributionReceipt:
        principal = hub.access.authenticate(token)
        if principal.kind != "node":
            raise Forbidden("contributions are sent with a node token, not an operator token")
        if body_error is not None:
            raise body_error
        return hub.contributions.receive(principal, data, sig)

    receipt = await request.app[HUB].call(receive)
    return web.json_response(receipt.to_dict())


async def get_contribution(request: web.Request) -> web.StreamResponse:
    """The status of one of the node's own contributions: waiting, accepted (with its
    entry) or rejected, and when it was decided."""
    token = bearer(request)
    if token is None:
        raise Unauthorized("a contribution's status is read with the node's bearer token")
    raw = request.match_info["seq"]
    if not _SEQ.fullmatch(raw):
        raise InvalidRequest("a contribution's seq is an integer of at least 1")
    seq = int(raw)

    def status(hub: Hub) -> ContributionRecord:
        principal = hub.access.authenticate(token)
        if principal.kind != "node":
            raise Forbidden("a contribution's status is read with a node token")
        return hub.contributions.status(principal.subject, seq)

    record = await request.app[HUB].call(status)
    response = web.json_response(record.node_view())
    response.headers["Cache-Control"] = "no-store"
    return response
