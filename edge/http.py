"""The HTTP plumbing the hub's and the node's aiohttp apps share: errors, bodies, metrics, start-up.

- ``error_response``: the one JSON error shape (``edge.errors.error_body``), never
  cached (``Cache-Control: no-store``), so a refusal is not served again to someone
  it was not meant for.
- ``error_middleware``: every error a handler raises, answered in that shape. An
  ``ApiError`` keeps its status and code; aiohttp's ``HTTPException`` (a 404 for an
  unknown path, a 405) gets the code the service gives that status, and keeps its
  headers such as ``Allow``; anything else is a bug, logged with its traceback and
  answered 500 without internals. A 401 carries ``WWW-Authenticate`` with the
  service's realm, and ``error="invalid_token"`` when a token was sent (RFC 6750
  §3.1), so a client can tell "send a token" from "that token is wrong".
- ``read_body``: the request body, refused (413) as soon as it passes its cap,
  without holding more than the cap in memory.
- ``metrics_middleware``: every answer counted by route template (never the raw
  path, whose ids would make a label per request), method and status.
- ``security_headers``: ``X-Content-Type-Options: nosniff`` on every answer, so a
  browser never runs a published file or an error body as something else.
- ``scheduler_context``: the cleanup context that starts a role's scheduler with
  the app and lets its running job finish before the app stops.

Each service passes what differs between them: its realm, the codes of the
statuses aiohttp raises, its logger, its name in the 500 message, a hook for
errors of its own that are not bugs (the node's full disk, answered 507), its
request counter, and how its scheduler is built.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Protocol, TypeVar

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware
from prometheus_client import Counter

from edge.errors import ApiError, error_body

__all__ = [
    "CleanupContext",
    "Handler",
    "Middleware",
    "Startable",
    "code_for",
    "error_middleware",
    "error_response",
    "metrics_middleware",
    "payload_too_large",
    "read_body",
    "scheduler_context",
    "security_headers",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""An aiohttp request handler (or the rest of the middleware chain)."""
CleanupContext = Callable[[web.Application], AsyncIterator[None]]
"""What ``app.cleanup_ctx`` takes: set up before the first request, torn down after the last."""

READ_CHUNK = 64 * 1024
"""Bytes read from the request at a time, so a body over its cap stops being read early."""

_DROPPED_HEADERS = {"content-type", "content-length", "content-encoding"}
"""Headers of an aiohttp exception that describe its own plain-text body, not ours."""


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The one JSON error shape of every error a hub or a node answers."""
    response = web.json_response(error_body(status, code, message), status=status, headers=headers)
    response.headers[hdrs.CACHE_CONTROL] = "no-store"
    return response


def code_for(exc: web.HTTPException, codes: Mapping[int, str]) -> str:
    """The code ``codes`` gives the status of an aiohttp exception; else its reason, snake_cased.

    The table lets a status aiohttp raises answer with the same code as the
    service's own error of that status (a 400 is ``invalid_request``, not
    ``bad_request``), so a client sees one code per status whoever refused.
    """
    code = codes.get(exc.status)
    return code or re.sub(r"[^a-z0-9]+", "_", exc.reason.lower()).strip("_") or "error"


def error_middleware(
    *,
    realm: str,
    codes: Mapping[int, str],
    log: logging.Logger,
    service: str,
    fault: Callable[[web.Request, Exception], web.Response | None] | None = None,
) -> Middleware:
    """The middleware that answers every error in the one shape.

    Args:
        realm: the ``WWW-Authenticate`` challenge of a 401 (``Bearer realm="…"``).
        codes: the code of each status an aiohttp ``HTTPException`` may have.
        log: where a bug is logged with its traceback.
        service: how the 500 message names the service (``the hub's log has …``).
        fault: for an exception that is not an ``ApiError`` or an ``HTTPException``:
            the response it deserves, or None for a bug (500).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as e:
            headers: dict[str, str] = {}
            if e.status == 401:
                sent = hdrs.AUTHORIZATION in request.headers
                headers[hdrs.WWW_AUTHENTICATE] = realm + (', error="invalid_token"' if sent else "")
            headers.update(e.headers())
            return error_response(e.status, e.code, str(e), headers)
        except web.HTTPException as e:
            if e.status < 400:
                raise
            default = f"{e.status}: {e.reason}"
            message = e.text if e.text and e.text != default else e.reason
            response = error_response(e.status, code_for(e, codes), message)
            for key, value in e.headers.items():  # Allow, WWW-Authenticate, …
                if key.lower() not in _DROPPED_HEADERS:
                    response.headers.add(key, value)
            return response
        except Exception as e:
            answer = fault(request, e) if fault is not None else None
            if answer is not None:
                return answer
            log.exception("unhandled error answering %s %s", request.method, request.path)
            return error_response(
                500, "internal", f"internal error; the {service}'s log has the details"
            )

    return middleware


def payload_too_large(message: str) -> ApiError:
    """The 413 ``read_body`` raises unless the service asks for its own error class."""
    return ApiError(413, "payload_too_large", message)


async def read_body(
    request: web.Request,
    cap: int,
    *,
    too_large: Callable[[str], Exception] = payload_too_large,
) -> bytes:
    """The request body, refusing (413) anything over ``cap`` bytes without reading it all.

    A declared ``Content-Length`` over the cap is refused before a byte is read; a
    body without one (chunked) is read until it passes the cap. ``too_large`` makes
    the error, so the hub raises its own ``PayloadTooLarge``, which its routes
    catch as one of the hub's errors.
    """
    declared = request.content_length
    if declared is not None and declared > cap:
        raise too_large(f"the body is {declared} bytes; the cap is {cap}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        size += len(chunk)
        if size > cap:
            raise too_large(f"the body exceeds the cap of {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def metrics_middleware(requests: Callable[[web.Application], Counter]) -> Middleware:
    """The middleware that counts every answer by route template, method and status.

    Args:
        requests: the app's request counter, labelled ``route``, ``method``,
            ``status`` (each role keeps its own, in its own registry).

    The label is the route's template (``/lists/{list_id}/checkpoint``), or
    ``unmatched`` for a path no route has, so a client cannot make a label per
    path it invents. An error is counted with the status it is answered with,
    since the error middleware sits inside this one.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        requests(request.app).labels(route, request.method, str(response.status)).inc()
        return response

    return middleware


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: ``nosniff`` unless the handler set it, on every answer.

    A browser then never sniffs a published text file or an error body into HTML
    or script.
    """
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


class Startable(Protocol):
    """A scheduler as the app runs it: started with the app, stopped (awaited) after it."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


def scheduler_context(key: web.AppKey[S], build: Callable[[web.Application], S]) -> CleanupContext:
    """The cleanup context that builds a scheduler, keeps it under ``key`` and runs it.

    Args:
        key: where the pages and the status route find the scheduler.
        build: makes the role's scheduler from the app, once the contexts before
            this one (the database, the HTTP session) have put theirs in.

    ``stop`` lets a job that is running finish (``edge.scheduler``), so a publish or
    an update is never cut off when the app shuts down.
    """

    async def context(app: web.Application) -> AsyncIterator[None]:
        scheduler = build(app)
        app[key] = scheduler
        scheduler.start()
        try:
            yield
        finally:
            await scheduler.stop()

    return context
