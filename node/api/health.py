"""What an operator or a supervisor reads about the node: health, status, metrics, the spec.

Grouped because none of these routes touches a match: ``/healthz`` answers
without a token (the one route that does, so a container's health check needs
no secret), ``/v1/status`` and ``/metrics`` report the lists and the schedule,
``/openapi.yaml`` serves the spec the routes are tested against.
"""

from __future__ import annotations

import os

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from edge.http import Handler
from node.api.keys import METRICS, NODE, OPENAPI, SCHEDULER, WORKER

__all__ = ["get_status", "healthz", "metrics_handler", "openapi"]


async def healthz(request: web.Request) -> web.StreamResponse:
    """The process answers (no token: ``middlewares.auth_middleware`` lets it through)."""
    return web.json_response({"status": "ok"})


async def get_status(request: web.Request) -> web.StreamResponse:
    """The node's status (``Node.status()``), its schedule's, and which worker answered
    (of ``hashhub-node run --workers N``; only worker 0 has a schedule)."""
    status = request.app[NODE].status()
    scheduler = request.app.get(SCHEDULER)
    status["schedule"] = scheduler.snapshot() if scheduler is not None else None
    worker = request.app[WORKER]
    status["worker"] = {"index": worker.index, "workers": worker.count, "pid": os.getpid()}
    request.app[METRICS].refresh(status)
    return web.json_response(status)


def metrics_handler(registry: CollectorRegistry) -> Handler:
    """``/metrics``: the gauges refreshed from the node's status, then the registry exported."""
    export = make_aiohttp_handler(registry)

    async def metrics(request: web.Request) -> web.StreamResponse:
        request.app[METRICS].refresh(request.app[NODE].status())
        return await export(request)

    return metrics


async def openapi(request: web.Request) -> web.StreamResponse:
    """``node/openapi.yaml``, as read when the app was built."""
    return web.Response(body=request.app[OPENAPI], content_type="application/yaml")
