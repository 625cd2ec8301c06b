"""What runs around every route of the node's API: metrics, errors, the API token.

``node.app.create_app`` installs them in this order, outermost first:
``metrics_middleware`` (counts every answer, errors included), ``error_middleware``
(every error in the one JSON shape, ``edge.http``), the rate limits
(``node.limits``) and ``auth_middleware``. The shared parts are ``edge.http``'s;
what is the node's own is here: its realm and codes, the 507 for a full disk, and
the local API token.
"""

from __future__ import annotations

import logging
import sqlite3

from aiohttp import hdrs, web

from edge.errors import ApiError
from edge.http import Handler, error_response
from edge.http import error_middleware as edge_error_middleware
from edge.http import metrics_middleware as edge_metrics_middleware
from node.api.health import healthz
from node.api.keys import METRICS, NODE
from node.errors import HTTP_CODES
from node.limits import REALM, MalformedCredentialError, bearer_token, is_the_api_token
from node.store import storage_error
from node.web import is_page_request

__all__ = ["auth_middleware", "error_middleware", "metrics_middleware"]

log = logging.getLogger("hashhub.node")


def _storage_fault(request: web.Request, error: Exception) -> web.Response | None:
    """A write the node's disk refused: 507, since the same request succeeds once there is room."""
    fault = storage_error(error) if isinstance(error, sqlite3.Error) else None
    if fault is None:
        return None
    log.error("%s %s: %s; nothing recorded", request.method, request.path, fault)
    return error_response(
        507,
        "insufficient_storage",
        f"the node could not store this request ({fault}); nothing was recorded: "
        "retry once its operator has freed disk space",
    )


error_middleware = edge_error_middleware(
    realm=REALM, codes=HTTP_CODES, log=log, service="node", fault=_storage_fault
)

metrics_middleware = edge_metrics_middleware(lambda app: app[METRICS].requests)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route but ``/healthz`` needs the local API token.

    The status pages check the same token once, at their own login form, and then
    a session cookie of their own (``node.web``); that cookie opens no API route.
    """
    if request.match_info.handler is not healthz and not is_page_request(request):
        header = request.headers.get(hdrs.AUTHORIZATION)
        if header is None:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <the api-token file>")
        try:
            token = bearer_token(header)
        except MalformedCredentialError as e:
            raise ApiError(401, "unauthorized", str(e)) from None
        if token is None or not is_the_api_token(token, request.app[NODE].api_token):
            raise ApiError(401, "unauthorized", "wrong API token")
    return await handler(request)
