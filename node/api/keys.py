"""The node app's typed ``web.AppKey``s: what ``node.app.create_app`` puts in the app.

They live apart from the app so that every route module reads the app through
them without importing ``node.app``, which imports the route modules.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from node.config import NodeConfig
from node.fleet import Worker
from node.metrics import NodeMetrics
from node.scheduler import NodeScheduler
from node.service import Node

__all__ = ["CONFIG", "METRICS", "NODE", "OPENAPI", "SCHEDULER", "SESSION", "WORKER"]

CONFIG = web.AppKey("config", NodeConfig)
NODE = web.AppKey("node", Node)
SESSION = web.AppKey("session", aiohttp.ClientSession)
SCHEDULER = web.AppKey("scheduler", NodeScheduler)
METRICS = web.AppKey("metrics", NodeMetrics)
WORKER = web.AppKey("worker", Worker)
"""Which process of ``hashhub-node run --workers N`` serves this app (``node.fleet``)."""
OPENAPI = web.AppKey("openapi", bytes)
"""The bytes of ``node/openapi.yaml``, read once when the app is built."""
