"""Request and app helpers that the API routes (``hub.app``) and the HTML pages
(``hub.web``) share: the handler type, reading a capped body, and what follows a
change or a publish made through the app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hub.appkeys import ACCESS_CACHE, FILE_CACHE, METRICS
from hub.errors import PayloadTooLarge

__all__ = ["Handler", "after_publish", "invalidate_caches", "read_body"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def read_body(request: web.Request, cap: int) -> bytes:
    """The request body, refusing (413) anything over ``cap`` bytes without reading it all."""
    declared = request.content_length
    if declared is not None and declared > cap:
        raise PayloadTooLarge(f"the body is {declared} bytes; the cap is {cap}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise PayloadTooLarge(f"the body exceeds the cap of {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def invalidate_caches(app: web.Application) -> None:
    """Something changed through this app: forget what may now be out of date."""
    app[FILE_CACHE].invalidate()
    app[ACCESS_CACHE].invalidate()


def after_publish(app: web.Application, results: list[dict[str, Any]], trigger: str) -> None:
    """After a publish made through this app (API or dashboard): clear caches, count it."""
    invalidate_caches(app)
    metrics = app[METRICS]
    for result in results:
        metrics.publishes.labels(result["list"], trigger).inc()
        metrics.list_version.labels(result["list"]).set(result["version"])
