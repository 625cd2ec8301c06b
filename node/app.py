"""The node's daemon: the match API for the platform, the sync schedule, metrics.

``create_app(home)`` builds the aiohttp application (the aiohttp-demos factory
pattern): routes in one place below, typed ``web.AppKey``s, one cleanup context per
resource — the ``Node`` (its SQLite store and match indexes), an aiohttp
``ClientSession`` for the hub and the webhook, and the ``NodeScheduler``.
``run(home)`` serves it with ``web.run_app``, which shuts down cleanly on SIGTERM.
``node/openapi.yaml`` documents every route; a test keeps the two in step.

**The API is the platform's, on its own network.** Every route but ``/healthz``
and the status page needs ``Authorization: Bearer <token>`` with the token in the
home's ``api-token`` file (compared in constant time); the default address is
127.0.0.1.

- ``POST /v1/match``: an upload's bytes (an image type: PDQ, pHash, MD5, SHA-256
  of the picture; ``video/*``, ``audio/*``, ``application/octet-stream``: MD5 and
  SHA-256 of the bytes) or JSON hashes → every listed hash it matches, each a match
  event with an id.
- ``POST /v1/matches/{match_id}/outcome``: what the platform did about a match.
- ``POST /v1/content``: register content the platform hosts (hashes or the file),
  answered with what it matches now; later deltas that list it raise a webhook.
- ``GET /v1/status``, ``GET /v1/matches``, ``/metrics``, ``/openapi.yaml``.
- ``/status/``: the status page for people (``node.web``), with a login of its own:
  the API token typed once into a form, then a cookie session and a CSRF token on
  every POST. Its errors are HTML pages; the session cookie opens no API route.

**Hardening.** A body over ``max_upload_bytes`` is refused with 413 before it is
read in full; a content type the node cannot hash is 415; a picture that is a
decompression bomb or fails to decode is 400, as is malformed JSON or a hash of
the wrong width or type; a match id never issued is 404. Nothing is stored for a
refused request. Pictures are hashed on a worker thread (they never touch the
database); everything that reads or writes the store runs on the event loop's
thread, which owns the SQLite connection.

**Errors** have one shape, made by ``error_response``, whatever raised them
(``ApiError``, aiohttp's ``HTTPException`` — its headers such as ``Allow`` kept —
or a bug, answered 500 without internals)::

    {"error": {"status": 415, "code": "unsupported_media_type", "message": "…"}}

A write the node's disk refuses (full, or an I/O error: ``node.store.storage_error``)
is 507 ``insufficient_storage``: SQLite rolled the transaction back, so no match
event, counter or registration of that request is stored (and no match is answered
that was not recorded); the same request succeeds once there is room (ADR 0016).

A 401 carries ``WWW-Authenticate: Bearer realm="hashhub-node"``.

**The schedule** (``NodeScheduler``, in ``node/scheduler.py``, which says what each job
does): sync, outbox, ack and the stale alarm, started by this app's cleanup context.
The metrics it counts into are ``NodeMetrics`` (``node/metrics.py``); both are
re-exported here.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import hdrs, web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from edge.errors import ApiError
from edge.http import Handler, error_response, read_body
from edge.http import error_middleware as edge_error_middleware
from node.config import NodeConfig
from node.errors import (
    HTTP_CODES,
    InvalidContentError,
    OutcomeConflictError,
    UnknownMatchError,
)
from node.imaging import ImageRejected
from node.limits import (
    LIMITS,
    REALM,
    ClientAccessLogger,
    MalformedCredentialError,
    NodeLimits,
    bearer_token,
    is_the_api_token,
    limits_middleware,
)
from node.metrics import NodeMetrics
from node.scheduler import NodeScheduler, next_poll_delay
from node.service import (
    OUTCOMES,
    MatchResult,
    Node,
    utcnow,
)
from node.store import storage_error
from node.web import PAGE_PREFIX, is_page_request, status_pages
from protocol.lists import HASH_TYPES

__all__ = [
    "CONFIG",
    "FILE_TYPES",
    "IMAGE_TYPES",
    "METRICS",
    "NODE",
    "SCHEDULER",
    "SESSION",
    "ApiError",
    "NodeMetrics",
    "NodeScheduler",
    "create_app",
    "error_response",
    "next_poll_delay",
    "run",
]

log = logging.getLogger("hashhub.node")

IMAGE_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"}
)
"""Content types hashed as pictures (PDQ, pHash, MD5, SHA-256)."""
FILE_TYPES = frozenset({"application/octet-stream"})
"""Content types (besides ``video/*`` and ``audio/*``) hashed as files (MD5, SHA-256)."""
JSON_BODY_BYTES = 256 * 1024
MAX_QUERY_HASHES = 256
MAX_LIMIT = 1000

_MATCH_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX = re.compile(r"[0-9a-fA-F]*")

# -- errors -----------------------------------------------------------------------------


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


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


# -- app keys ---------------------------------------------------------------------------

CONFIG = web.AppKey("config", NodeConfig)
NODE = web.AppKey("node", Node)
SESSION = web.AppKey("session", aiohttp.ClientSession)
SCHEDULER = web.AppKey("scheduler", NodeScheduler)
METRICS = web.AppKey("metrics", NodeMetrics)
_OPENAPI = web.AppKey("openapi", bytes)


# -- middlewares ------------------------------------------------------------------------


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[METRICS].requests.labels(route, request.method, str(response.status)).inc()
    return response


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


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


# -- request reading --------------------------------------------------------------------


async def _json_object(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    data = await read_body(request, JSON_BODY_BYTES)
    try:
        value = json.loads(data.decode("utf-8"))
    # ValueError: besides UnicodeDecodeError and JSONDecodeError, an integer of more
    # digits than int() reads (4300), which would otherwise answer 500.
    except (ValueError, RecursionError) as e:
        raise _invalid(f"the body is not JSON: {e}") from e
    if not isinstance(value, dict):
        raise _invalid("the body must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _invalid(f"unknown field(s) {unknown}")
    return value


def _hash_queries(value: object) -> dict[str, list[bytes]]:
    """``[{"type": "pdq", "hash": "<hex>"}, …]`` → ``{type: [bytes, …]}``, strictly."""
    if not isinstance(value, list) or not value:
        raise _invalid('\'hashes\' must be a non-empty list of {"type", "hash"} objects')
    if len(value) > MAX_QUERY_HASHES:
        raise _invalid(f"at most {MAX_QUERY_HASHES} hashes per request")
    queries: dict[str, list[bytes]] = {}
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"type", "hash"}:
            raise _invalid(f"hashes[{i}] must be an object with exactly 'type' and 'hash'")
        type_name, text = item["type"], item["hash"]
        kind = HASH_TYPES.get(type_name) if isinstance(type_name, str) else None
        if kind is None:
            raise _invalid(f"hashes[{i}]: unknown hash type; one of {sorted(HASH_TYPES)}")
        if not isinstance(text, str) or len(text) != 2 * kind.length or not _HEX.fullmatch(text):
            raise _invalid(f"hashes[{i}]: a {kind.name} hash is {2 * kind.length} hex digits")
        queries.setdefault(kind.name, []).append(bytes.fromhex(text))
    return queries


def _known_query(request: web.Request, *names: str) -> None:
    """Refuse a query parameter the route does not take.

    A misspelt parameter ignored silently changes the answer without a word: with
    ``?dihedal=1`` the rotations of a picture would not be checked. It is a 400
    naming the parameter instead.
    """
    unknown = sorted(set(request.query) - set(names))
    if unknown:
        raise _invalid(
            f"unknown query parameter {unknown[0][:64]!r}; this route takes {', '.join(names)}"
        )


def _flag(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise _invalid(f"{name} must be 1 or 0")


def _check_content_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 256 or not value.isprintable():
        raise _invalid("a content id is 1-256 printable characters")
    return value


_REJECTED = {
    "too_large": (413, "payload_too_large"),
    "decompression_bomb": (400, "decompression_bomb"),
    "corrupt": (400, "corrupt_image"),
    "unsupported": (415, "unsupported_media_type"),
}


async def _upload_queries(request: web.Request) -> tuple[str, dict[str, list[bytes]]]:
    """The hashes of an uploaded file by its content type: ``("image"|"file", queries)``."""
    node = request.app[NODE]
    content_type = request.content_type
    major = content_type.partition("/")[0]
    if content_type in IMAGE_TYPES:
        kind = "image"
    elif content_type in FILE_TYPES or major in ("video", "audio"):
        kind = "file"
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"cannot hash {content_type[:80]!r}: send an image ({', '.join(sorted(IMAGE_TYPES))}),"
            " video/*, audio/*, application/octet-stream, or application/json hashes",
        )
    dihedral = _flag(request, "dihedral")
    data = await read_body(request, request.app[CONFIG].max_upload_bytes)
    if not data:
        raise _invalid("the body is empty")
    if kind == "file":
        return kind, node.matching.file_queries(data)
    try:
        queries = await asyncio.to_thread(node.matching.image_queries, data, dihedral=dihedral)
    except ImageRejected as e:
        status, code = _REJECTED[e.reason]
        raise ApiError(status, code, str(e)) from e
    return kind, queries


def _hex_queries(queries: Mapping[str, list[bytes]]) -> dict[str, list[str]]:
    return {type_name: [h.hex() for h in hashes] for type_name, hashes in sorted(queries.items())}


def _count_matches(app: web.Application, results: list[MatchResult], source: str) -> None:
    for result in results:
        app[METRICS].matches.labels(result.list_id, source).inc()


# -- handlers ---------------------------------------------------------------------------


async def post_match(request: web.Request) -> web.StreamResponse:
    """Match an upload (its bytes) or hashes (JSON) against every subscribed list."""
    node = request.app[NODE]
    _known_query(request, "dihedral")
    if request.content_type == "application/json":
        body = await _json_object(request, {"hashes"})
        kind, queries = "hashes", _hash_queries(body.get("hashes"))
    else:
        kind, queries = await _upload_queries(request)
    results = node.matching.match_hashes(queries, one_item=kind != "hashes")
    request.app[METRICS].checked.labels(kind).inc()
    _count_matches(request.app, results, "upload")
    return web.json_response(
        {"matches": [r.to_dict() for r in results], "hashes": _hex_queries(queries)}
    )


async def post_outcome(request: web.Request) -> web.StreamResponse:
    """Record what the platform did about a match."""
    match_id = request.match_info["match_id"]
    if not _MATCH_ID.fullmatch(match_id):
        raise ApiError(404, "not_found", f"no match {match_id[:64]!r}")
    body = await _json_object(request, {"outcome"})
    outcome = body.get("outcome")
    if outcome not in OUTCOMES:
        raise _invalid(f"'outcome' must be one of {', '.join(OUTCOMES)}")
    try:
        recorded = request.app[NODE].matching.record_outcome(match_id, outcome)
    except UnknownMatchError as e:
        raise ApiError(404, "not_found", f"no match {match_id}") from e
    except OutcomeConflictError as e:
        raise ApiError(409, "conflict", str(e)) from e
    return web.json_response(recorded)


async def post_content(request: web.Request) -> web.StreamResponse:
    """Register content the platform hosts; answer with what it matches now."""
    node = request.app[NODE]
    _known_query(request, "content_id", "dihedral")
    if request.content_type == "application/json":
        if "content_id" in request.query:
            raise _invalid("give the content id in the JSON body, not in the query")
        body = await _json_object(request, {"content_id", "hashes"})
        content_id = _check_content_id(body.get("content_id"))
        kind, queries = "hashes", _hash_queries(body.get("hashes"))
    else:
        content_id = _check_content_id(request.query.get("content_id"))
        kind, queries = await _upload_queries(request)
    # One transaction: a registration is stored with its matches or not at all.
    try:
        registered, results = node.registry.register_and_match(
            content_id, queries, one_item=kind != "hashes"
        )
    except InvalidContentError as e:
        raise _invalid(str(e)) from e
    request.app[METRICS].checked.labels(kind).inc()
    _count_matches(request.app, results, "registry")
    return web.json_response(
        {
            "content_id": content_id,
            "registered": registered,
            "matches": [r.to_dict() for r in results],
            "hashes": _hex_queries(queries),
        },
        status=201,
    )


async def get_status(request: web.Request) -> web.StreamResponse:
    """The node's status (``Node.status()``) and its schedule's."""
    status = request.app[NODE].status()
    scheduler = request.app.get(SCHEDULER)
    status["schedule"] = scheduler.snapshot() if scheduler is not None else None
    request.app[METRICS].refresh(status)
    return web.json_response(status)


async def get_matches(request: web.Request) -> web.StreamResponse:
    """Recent match events, newest first (``?open=1``: those without an outcome)."""
    _known_query(request, "open", "limit")
    open_only = bool(_flag(request, "open"))
    raw = request.query.get("limit", "50")
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise _invalid(f"limit must be an integer from 1 to {MAX_LIMIT}")
    matches = request.app[NODE].matching.recent_matches(int(raw), open_only=open_only)
    return web.json_response({"matches": matches})


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


def _metrics_handler(registry: CollectorRegistry) -> Handler:
    export = make_aiohttp_handler(registry)

    async def metrics(request: web.Request) -> web.StreamResponse:
        request.app[METRICS].refresh(request.app[NODE].status())
        return await export(request)

    return metrics


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.Response(body=request.app[_OPENAPI], content_type="application/yaml")


# -- the app ----------------------------------------------------------------------------


def _node_context(
    home: Path, now: Callable[[], datetime]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def node_context(app: web.Application) -> AsyncIterator[None]:
        node = Node.open(home, now=now)
        app[NODE] = node
        try:
            app[METRICS].refresh(node.status())
            yield
        finally:
            node.close()

    return node_context


async def _session_context(app: web.Application) -> AsyncIterator[None]:
    tls = app[CONFIG].ssl_context(app[NODE].home)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
        app[SESSION] = session
        yield


async def _scheduler_context(app: web.Application) -> AsyncIterator[None]:
    scheduler = NodeScheduler(app[NODE], app[SESSION], app[METRICS])
    app[SCHEDULER] = scheduler
    scheduler.start()
    try:
        yield
    finally:
        await scheduler.stop()


def create_app(
    home: Path,
    *,
    now: Callable[[], datetime] | None = None,
    schedule: bool = True,
) -> web.Application:
    """Build the node's HTTP app for the node in ``home``.

    Args:
        home: the node's home directory (``node.toml``, database, key, secret files).
        now: the clock every trust decision uses (default: the system clock, UTC).
        schedule: run the sync, outbox, ack and stale jobs (tests turn it off to
            drive updates by hand).

    Raises:
        NodeConfigError: ``home`` holds no readable node configuration.
    """
    config = NodeConfig.load(home)
    app = web.Application(
        middlewares=[metrics_middleware, error_middleware, limits_middleware, auth_middleware],
        client_max_size=config.max_upload_bytes,
    )
    app[CONFIG] = config
    app[LIMITS] = NodeLimits.from_config(config, NODE)
    app[METRICS] = NodeMetrics()
    app[_OPENAPI] = importlib.resources.files("node").joinpath("openapi.yaml").read_bytes()
    app.cleanup_ctx.append(_node_context(home, now or utcnow))
    app.cleanup_ctx.append(_session_context)
    if schedule:
        app.cleanup_ctx.append(_scheduler_context)
    app.on_response_prepare.append(_security_headers)

    app.router.add_post("/v1/match", post_match)
    app.router.add_post("/v1/matches/{match_id}/outcome", post_outcome)
    app.router.add_post("/v1/content", post_content)
    app.router.add_get("/v1/status", get_status, allow_head=False)
    app.router.add_get("/v1/matches", get_matches, allow_head=False)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/metrics", _metrics_handler(app[METRICS].registry), allow_head=False)
    app.router.add_get("/openapi.yaml", openapi, allow_head=False)
    app.add_subapp(PAGE_PREFIX, status_pages(NODE, SCHEDULER, secure_cookies=config.secure_cookies))
    return app


ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs'
"""Method, path, status, size, time: never headers, so never the API token."""


def run(home: Path, host: str | None = None, port: int | None = None) -> None:
    """Serve the node in ``home`` until SIGINT or SIGTERM (defaults from node.toml)."""
    config = NodeConfig.load(home)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    web.run_app(
        create_app(home),
        host=host or config.api_host,
        port=config.api_port if port is None else port,
        access_log_class=ClientAccessLogger,
        access_log_format=ACCESS_LOG_FORMAT,
    )
