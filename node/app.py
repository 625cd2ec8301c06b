"""The node's daemon: the match API for the platform, the sync schedule, metrics.

``create_app(home)`` builds the aiohttp application (the aiohttp-demos factory
pattern): the middlewares, one cleanup context per resource — the ``Node`` (its
SQLite store and match indexes), an aiohttp ``ClientSession`` for the hub and the
webhook, and the ``NodeScheduler`` — and the route table, in one place below. The
handlers live in ``node/api/``, one module per route group (its package docstring
says which route goes where), and read the app through the typed keys of
``node/api/keys.py``. ``run(home)`` serves it with ``web.run_app``, which shuts
down cleanly on SIGTERM. ``node/openapi.yaml`` documents every route; a test keeps
the two in step.

**The API is the platform's, on its own network.** Every route but ``/healthz``
and the status page needs ``Authorization: Bearer <token>`` with the token in the
home's ``api-token`` file (compared in constant time,
``node.api.middlewares.auth_middleware``); the default address is 127.0.0.1.

- ``POST /v1/match`` (``node.api.match``): an upload's bytes (an image type: PDQ,
  pHash, MD5, SHA-256 of the picture; ``video/*``, ``audio/*``,
  ``application/octet-stream``: MD5 and SHA-256 of the bytes) or JSON hashes →
  every listed hash it matches, each a match event with an id.
- ``POST /v1/matches/{match_id}/outcome`` and ``GET /v1/matches``
  (``node.api.matches``): what the platform did about a match; recent matches.
- ``POST /v1/content`` (``node.api.content``): register content the platform
  hosts (hashes or the file), answered with what it matches now; later deltas that
  list it raise a webhook.
- ``GET /v1/status``, ``/metrics``, ``/openapi.yaml``, ``/healthz``
  (``node.api.health``).
- ``/status/``: the status page for people (``node.web``), with a login of its own:
  the API token typed once into a form, then a cookie session and a CSRF token on
  every POST. Its errors are HTML pages; the session cookie opens no API route.

**Hardening.** A body over ``max_upload_bytes`` is refused with 413 before it is
read in full; a content type the node cannot hash is 415; a picture that is a
decompression bomb or fails to decode is 400, as is malformed JSON or a hash of
the wrong width or type; a match id never issued is 404 (421 when another replica
of the platform's fleet issued it, and for content of another replica's shard).
Nothing is stored for a refused request. Pictures are hashed on a worker thread
(they never touch the database); everything that reads or writes the store runs on the event loop's
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
does): sync, outbox, ack and the stale alarm, started by this app's cleanup context
and kept under ``SCHEDULER``. The metrics it counts into are ``NodeMetrics``
(``node/metrics.py``).

**In a fleet** (``node/fleet.py``): every answer carries ``Hashhub-Worker`` (which
process of the node answered) and, when the node has a ``replica`` name,
``Hashhub-Replica``, so that a load balancer's log tells them apart. ``run(home,
workers=N)`` serves the app from N processes over one store (``node/workers.py``):
the first one runs the schedule, each keeps its indexes in step with the store.
"""

from __future__ import annotations

import importlib.resources
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from edge.errors import ApiError
from edge.http import CleanupContext, scheduler_context, security_headers
from edge.serving import ACCESS_LOG_FORMAT, serve
from node.api.content import post_content
from node.api.health import get_status, healthz, metrics_handler, openapi
from node.api.keys import CONFIG, METRICS, NODE, OPENAPI, SCHEDULER, SESSION, WORKER
from node.api.match import post_match
from node.api.matches import get_matches, post_outcome
from node.api.middlewares import auth_middleware, error_middleware, metrics_middleware
from node.config import NodeConfig
from node.fleet import REPLICA_HEADER, WORKER_HEADER, Worker, check_replica, content_shard
from node.limits import LIMITS, ClientAccessLogger, NodeLimits, limits_middleware
from node.metrics import NodeMetrics
from node.scheduler import NodeScheduler
from node.service import Node, utcnow
from node.web import PAGE_PREFIX, status_pages
from node.workers import run_workers, worker_context

__all__ = [
    "ACCESS_LOG_FORMAT",
    "NODE",
    "SCHEDULER",
    "ApiError",
    "create_app",
    "run",
    "serve_worker",
]


def _node_context(home: Path, now: Callable[[], datetime]) -> CleanupContext:
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


def _scheduler(app: web.Application) -> NodeScheduler:
    return NodeScheduler(app[NODE], app[SESSION], app[METRICS])


def _fleet_headers(
    replica: str, worker: Worker
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """Name the replica (when it has a name) and the worker on every answer."""
    index = str(worker.index)

    async def fleet_headers(request: web.Request, response: web.StreamResponse) -> None:
        del request
        if replica:
            response.headers[REPLICA_HEADER] = replica
        response.headers[WORKER_HEADER] = index

    return fleet_headers


def create_app(
    home: Path,
    *,
    now: Callable[[], datetime] | None = None,
    schedule: bool = True,
    worker: Worker | None = None,
) -> web.Application:
    """Build the node's HTTP app for the node in ``home``.

    Args:
        home: the node's home directory (``node.toml``, database, key, secret files).
        now: the clock every trust decision uses (default: the system clock, UTC).
        schedule: run the sync, outbox, ack and stale jobs (tests turn it off to
            drive updates by hand). Only the first worker of several runs them.
        worker: which of ``run --workers N``'s processes this app serves in
            (default: the only one).

    Raises:
        NodeConfigError: ``home`` holds no readable node configuration.
    """
    config = NodeConfig.load(home)
    app = web.Application(
        middlewares=[metrics_middleware, error_middleware, limits_middleware, auth_middleware],
        client_max_size=config.max_upload_bytes,
    )
    worker = worker or Worker()
    app[CONFIG] = config
    app[WORKER] = worker
    app[LIMITS] = NodeLimits.from_config(config, NODE)
    app[METRICS] = NodeMetrics()
    app[OPENAPI] = importlib.resources.files("node").joinpath("openapi.yaml").read_bytes()
    app.cleanup_ctx.append(_node_context(home, now or utcnow))
    app.cleanup_ctx.append(_session_context)
    if schedule and worker.schedules:
        app.cleanup_ctx.append(scheduler_context(SCHEDULER, _scheduler))
    if worker.count > 1:
        app.cleanup_ctx.append(worker_context(worker))
    app.on_response_prepare.append(security_headers)
    app.on_response_prepare.append(_fleet_headers(config.replica, worker))

    app.router.add_post("/v1/match", post_match)
    app.router.add_post("/v1/matches/{match_id}/outcome", post_outcome)
    app.router.add_post("/v1/content", post_content)
    app.router.add_get("/v1/status", get_status, allow_head=False)
    app.router.add_get("/v1/matches", get_matches, allow_head=False)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/metrics", metrics_handler(app[METRICS].registry), allow_head=False)
    app.router.add_get("/openapi.yaml", openapi, allow_head=False)
    app.add_subapp(PAGE_PREFIX, status_pages(NODE, SCHEDULER, secure_cookies=config.secure_cookies))
    return app


def run(home: Path, host: str | None = None, port: int | None = None, workers: int = 1) -> None:
    """Serve the node in ``home`` until SIGINT or SIGTERM (defaults from node.toml),
    from ``workers`` processes (``node/workers.py``) when more than one."""
    config = NodeConfig.load(home)
    host = host or config.api_host
    port = config.api_port if port is None else port
    if workers == 1:
        serve(create_app(home), host, port, ClientAccessLogger)
        return
    check_replica(config.replica)  # refused here, once, rather than by every worker
    content_shard(config.content_shard)
    run_workers(home, host, port, workers)


def serve_worker(home: Path, worker: Worker, sock: socket.socket) -> None:
    """Serve the node in ``home`` as ``worker``, on a socket its parent opened."""
    serve(create_app(home, worker=worker), "", 0, ClientAccessLogger, sock=sock)
