"""The hub's HTTP service: the published tree, acks, the operator API, health and metrics.

``create_app(home)`` builds the aiohttp application (the aiohttp-demos factory
pattern): the middlewares (``hub/api/middlewares.py``), one cleanup context per
resource (the database thread, the ack batcher, the scheduler) and the route
table, in one place below. The handlers live in ``hub/api/``, one module per route
group (its package docstring says which route goes where), and read the app
through the typed ``web.AppKey``s of ``hub/appkeys.py``. What the routes and the
pages share lives beside them: ``hub/http.py`` (``read_body``, ``after_publish``),
``hub/caches.py`` and ``hub/metrics.py``. ``run(home)`` serves the app with
``web.run_app``, which shuts down cleanly on SIGTERM. ``hub/openapi.yaml``
documents every API route; a test keeps the two in step. The HTML pages for
people (public submission, case lookup, the operators' dashboard) are added by
``hub.web.setup`` and documented in ``hub/web/pages.py``.

The published tree (PROTOCOL.md §11, ``hub/api/tree.py``) is served from
``PublishedFiles.get`` exactly as it was signed, every path segment checked before
a path is built from it; a private list's files need a bearer token that may read
the list.

Caching. Immutable files get ``max-age`` of a year and ``immutable``; a checkpoint
gets a few seconds. ETags are the SHA-256 of the file's bytes; ``If-None-Match``
answers 304. Delta bodies are gzipped for clients that accept it, and then carry
the ETag as a weak validator (as nginx does), since the encoded bytes differ.
Files of private lists are ``private`` so a shared cache never hands them to
someone else. In memory, immutable files are kept in a bounded LRU (they never
change) and checkpoints and read-permission verdicts for at most a second; any
change made through this app (a publish, a re-signed checkpoint, a revoked node)
clears both at once, so the app never serves what it has itself replaced; a
change made beside it (``hashhub publish`` in another process) is served within
a second.

Errors. Every error response, from a ``HubError``, an aiohttp ``HTTPException``
(its headers such as ``WWW-Authenticate`` and ``Allow`` kept) or a bug, has one
shape, made by ``error_response`` (``edge.http``, as the node's are)::

    {"error": {"status": 404, "code": "not_found", "message": "…"}}

A bug is logged with its traceback and answered 500 without internals. Requests
are logged by aiohttp's access log (method, path, status, size, time): bearer
tokens travel only in the ``Authorization`` header and key material only in
bodies, and neither is ever logged. (A request aiohttp's HTTP parser refuses
before any route sees it — a header line over 8 KiB, a malformed request line —
gets aiohttp's own plain-text 400, without this shape or ``nosniff``: the only
hook is a private class of aiohttp's server, and ``docs/security.md`` says why
that is left so.)
"""

from __future__ import annotations

import importlib.resources
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from edge.database import DatabaseThread
from edge.http import CleanupContext, scheduler_context, security_headers
from edge.serving import ACCESS_LOG_FORMAT, serve
from hub import web as pages
from hub.api.acks import LAST_SEQ_HEADER, SIGNATURE_HEADER, ack_context, post_ack
from hub.api.admin import ADMIN_ROUTES, admin_handler
from hub.api.contributions import get_contribution, post_contribution
from hub.api.health import OPENAPI, healthz, metrics_handler, openapi, readyz
from hub.api.middlewares import error_middleware, metrics_middleware
from hub.api.tree import TREE_ROUTES, tree_handler
from hub.appkeys import ACCESS_CACHE, CONFIG, FILE_CACHE, HUB, METRICS, SCHEDULER
from hub.bridging import bridge_exchanges
from hub.caches import AccessCache, PublishedCache
from hub.config import HubConfig
from hub.core import Hub, utcnow
from hub.following import follow_upstreams
from hub.http import after_publish, invalidate_caches
from hub.limits import LIMITS, ClientAccessLogger, HubLimits, limits_middleware
from hub.metrics import HubMetrics
from hub.scheduler import HubScheduler

__all__ = [
    "ACCESS_CACHE",
    "ACCESS_LOG_FORMAT",
    "FILE_CACHE",
    "LAST_SEQ_HEADER",
    "SIGNATURE_HEADER",
    "create_app",
    "run",
]


def _list_versions(hub: Hub) -> dict[str, int]:
    return {list_id: int(hub.lists.row(list_id)["version"]) for list_id in hub.keys.root().lists}


async def _refresh_gauges(app: web.Application) -> None:
    versions = await app[HUB].call(_list_versions)
    for list_id, version in versions.items():
        app[METRICS].list_version.labels(list_id).set(version)


def _database_context(home: Path, now: Callable[[], datetime]) -> CleanupContext:
    async def database(app: web.Application) -> AsyncIterator[None]:
        owner = DatabaseThread(lambda: Hub.open(home, now=now))
        app[HUB] = owner
        try:
            # A quorum whose list is not an entries list could accept nothing: refuse to start.
            await owner.call(lambda hub: hub.contributions.policy.check_quorum())
            await _refresh_gauges(app)
            yield
        finally:
            owner.close(lambda hub: hub.close())

    return database


def _scheduler(app: web.Application) -> HubScheduler:
    config = app[CONFIG]
    metrics = app[METRICS]

    def refreshed(n: int) -> None:
        invalidate_caches(app)
        metrics.checkpoint_refreshes.inc(n)

    async def follow() -> None:
        owner = app[HUB]
        now = await owner.call(lambda hub: hub.now())
        async with aiohttp.ClientSession() as session:
            reports = await follow_upstreams(owner.call, session=session, now=now, who="scheduler")
        bridged = await bridge_exchanges(owner.call, who="scheduler")
        published = [result for report in reports for result in report.published]
        published += [result for report in bridged for result in report.published]
        if published:
            after_publish(app, published, "upstream")

    return HubScheduler(
        app[HUB],
        publish_interval=config.publish_interval,
        timestamp_interval=config.timestamp_interval,
        on_published=lambda results: after_publish(app, results, "scheduler"),
        on_refreshed=refreshed,
        on_failed=lambda job: metrics.job_failures.labels(job).inc(),
        upstream_interval=config.upstream_interval,
        follow=follow,
    )


def create_app(
    home: Path,
    *,
    now: Callable[[], datetime] | None = None,
    schedule: bool = True,
) -> web.Application:
    """Build the hub's HTTP app for the hub in ``home``.

    Args:
        home: the hub's home directory (``hub.toml``, database, keys).
        now: the clock the hub signs with (default: the system clock, UTC).
        schedule: run the publish and timestamp jobs (tests turn it off to
            drive publishing by hand).

    Raises:
        InvalidRequest: ``home`` holds no readable hub configuration.
    """
    config = HubConfig.load(home)
    app = web.Application(
        middlewares=[metrics_middleware, error_middleware, limits_middleware],
        client_max_size=config.max_ack_bytes,
    )
    app[CONFIG] = config
    app[LIMITS] = HubLimits.from_config(config, HUB)
    app[METRICS] = HubMetrics()
    app[FILE_CACHE] = PublishedCache()
    app[ACCESS_CACHE] = AccessCache()
    app[OPENAPI] = importlib.resources.files("hub").joinpath("openapi.yaml").read_bytes()
    app.cleanup_ctx.append(_database_context(home, now or utcnow))
    app.cleanup_ctx.append(ack_context)
    if schedule:
        app.cleanup_ctx.append(scheduler_context(SCHEDULER, _scheduler))
    app.on_response_prepare.append(security_headers)

    for path, build, listed in TREE_ROUTES:
        app.router.add_get(path, tree_handler(build, listed=listed))
    app.router.add_post("/v1/acks", post_ack)
    app.router.add_post("/v1/contributions", post_contribution)
    app.router.add_get("/v1/contributions/{seq}", get_contribution, allow_head=False)
    for route in ADMIN_ROUTES:
        app.router.add_route(route.method, route.path, admin_handler(route))
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    app.router.add_get("/metrics", metrics_handler(app[METRICS].registry), allow_head=False)
    app.router.add_get("/openapi.yaml", openapi, allow_head=False)
    pages.setup(app)
    return app


def run(home: Path, host: str | None = None, port: int | None = None) -> None:
    """Serve the hub in ``home`` until SIGINT or SIGTERM (host and port default to hub.toml)."""
    config = HubConfig.load(home)
    serve(
        create_app(home),
        host or config.host,
        config.port if port is None else port,
        ClientAccessLogger,
    )
