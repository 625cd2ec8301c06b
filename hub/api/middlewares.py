"""What runs around every route of the hub, pages included: metrics and errors.

``hub.app.create_app`` installs them in this order, outermost first:
``metrics_middleware`` (counts every answer, errors included), ``error_middleware``
(every error in the one JSON shape) and the rate limits (``hub.limits``). Both
are ``edge.http``'s, shared with the node; what is the hub's own is passed in
here: its realm, its codes for the statuses aiohttp raises, its logger and its
request counter.
"""

from __future__ import annotations

import logging

from edge.http import error_middleware as edge_error_middleware
from edge.http import metrics_middleware as edge_metrics_middleware
from hub.appkeys import METRICS
from hub.errors import HTTP_CODES

__all__ = ["REALM", "error_middleware", "metrics_middleware"]

log = logging.getLogger("hashhub.http")

REALM = 'Bearer realm="hashhub"'
"""The ``WWW-Authenticate`` challenge of every 401 the hub answers."""

error_middleware = edge_error_middleware(realm=REALM, codes=HTTP_CODES, log=log, service="hub")

metrics_middleware = edge_metrics_middleware(lambda app: app[METRICS].requests)
