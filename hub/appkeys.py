"""The hub app's typed ``web.AppKey``s: what ``hub.app.create_app`` puts in the app.

The API routes (``hub.api``), the HTML pages (``hub.web``) and the helpers they share
(``hub.http``) all read the app through these keys, so none of them imports another's
module for them.
"""

from __future__ import annotations

from aiohttp import web

from edge.database import DatabaseThread
from hub.caches import AccessCache, PublishedCache
from hub.config import HubConfig
from hub.core import Hub
from hub.metrics import HubMetrics
from hub.scheduler import HubScheduler

__all__ = ["ACCESS_CACHE", "CONFIG", "FILE_CACHE", "HUB", "METRICS", "SCHEDULER"]

CONFIG = web.AppKey("config", HubConfig)
HUB = web.AppKey("hub", DatabaseThread[Hub])
SCHEDULER = web.AppKey("scheduler", HubScheduler)
METRICS = web.AppKey("metrics", HubMetrics)
FILE_CACHE = web.AppKey("file_cache", PublishedCache)
ACCESS_CACHE = web.AppKey("access_cache", AccessCache)
