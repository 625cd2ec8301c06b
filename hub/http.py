"""Request and app helpers that the API routes (``hub.api``) and the HTML pages
(``hub.web``) share: the handler type and reading a capped body (both from
``edge.http``, shared with the node), and what follows a change or a publish made
through the app."""

from __future__ import annotations

from aiohttp import web

from edge import http as edge_http
from edge.http import Handler
from hub.appkeys import ACCESS_CACHE, FILE_CACHE, METRICS
from hub.errors import PayloadTooLarge
from hub.services.publishing import PublishResult

__all__ = ["Handler", "after_publish", "invalidate_caches", "read_body"]


async def read_body(request: web.Request, cap: int) -> bytes:
    """The request body, refusing (413) anything over ``cap`` bytes without reading it all.

    ``edge.http.read_body``, raising the hub's ``PayloadTooLarge``: a route that
    reads a body catches it as one of the hub's errors.
    """
    return await edge_http.read_body(request, cap, too_large=PayloadTooLarge)


def invalidate_caches(app: web.Application) -> None:
    """Something changed through this app: forget what may now be out of date."""
    app[FILE_CACHE].invalidate()
    app[ACCESS_CACHE].invalidate()


def after_publish(app: web.Application, results: list[PublishResult], trigger: str) -> None:
    """After a publish made through this app (API or dashboard): clear caches, count it."""
    invalidate_caches(app)
    metrics = app[METRICS]
    for result in results:
        metrics.publishes.labels(result.list, trigger).inc()
        metrics.list_version.labels(result.list).set(result.version)
