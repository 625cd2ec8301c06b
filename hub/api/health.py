"""What a supervisor or a scraper reads about the hub: liveness, readiness, metrics, the spec.

Grouped because none of these routes touches what the hub publishes: ``/healthz``
says the process answers, ``/readyz`` that the database thread and the root
answer too (within ``READY_TIMEOUT``), ``/metrics`` exports the hub's registry and
``/openapi.yaml`` serves the spec the routes are tested against. None needs a
token, so an orchestrator's probe needs no secret.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from hub.appkeys import HUB
from hub.http import Handler

__all__ = ["OPENAPI", "READY_TIMEOUT", "healthz", "metrics_handler", "openapi", "readyz"]

log = logging.getLogger("hashhub.http")

READY_TIMEOUT = 5.0
"""Seconds the database thread has to answer ``/readyz`` before the hub is not ready."""

OPENAPI = web.AppKey("openapi", bytes)
"""The bytes of ``hub/openapi.yaml``, read once when the app is built."""


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    try:
        version = await asyncio.wait_for(
            request.app[HUB].call(lambda hub: hub.keys.root().version), READY_TIMEOUT
        )
    except Exception as e:
        log.warning("not ready: %s", type(e).__name__)
        raise web.HTTPServiceUnavailable(text="the database or the root does not answer") from e
    return web.json_response({"status": "ready", "root_version": version})


def metrics_handler(registry: CollectorRegistry) -> Handler:
    """``/metrics``: the hub's registry in the Prometheus text format."""
    return make_aiohttp_handler(registry)


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.Response(body=request.app[OPENAPI], content_type="application/yaml")
