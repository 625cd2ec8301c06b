"""Serving an app: the client's address, the access log, the 429, and ``run_app``.

Both roles sit behind the same kind of reverse proxy and log the same way: the
address a request came from is the one the rate limits resolved through the
trusted proxies (``CLIENT``), the access log names that address and never a
header (so never a bearer token), and a refused request says how long to wait.
What each role limits, and which of its requests leave no trace at all (the hub's
public pages), stays with the role.
"""

from __future__ import annotations

import logging
import socket
from typing import Protocol

from aiohttp import hdrs, web
from aiohttp.web_log import AccessLogger

from edge.ratelimit import TrustedProxies

__all__ = [
    "ACCESS_LOG_FORMAT",
    "CLIENT",
    "ClientAccessLogger",
    "HasProxies",
    "client_address",
    "serve",
    "too_many",
]

CLIENT = web.RequestKey("client_address", str)
"""The client's address, as the limits middleware resolved it (through trusted proxies)."""

ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs'
"""Method, path, status, size, time: never headers, so never a bearer token."""


class HasProxies(Protocol):
    """A role's limits: whatever they hold, they know the trusted proxies."""

    @property
    def proxies(self) -> TrustedProxies: ...


def client_address(request: web.Request, limits: HasProxies | None) -> str:
    """The client's address: set by the limits middleware, else resolved here."""
    if CLIENT in request:
        return request[CLIENT]
    proxies = limits.proxies if limits is not None else TrustedProxies()
    return proxies.client(request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, []))


def too_many(wait: int, message: str) -> web.HTTPTooManyRequests:
    """A 429 that says how long to wait, in its message and in ``Retry-After``."""
    return web.HTTPTooManyRequests(
        text=f"{message}; try again in {wait} s", headers={hdrs.RETRY_AFTER: str(wait)}
    )


class ClientAccessLogger(AccessLogger):
    """aiohttp's access log, with ``%a`` the client's address as the middleware resolved it.

    Behind a trusted proxy, ``request.remote`` is the proxy; the log should name the
    client, as the limits do. A role whose requests to some paths must leave no line
    at all (the hub's public pages) subclasses it and overrides ``unlogged``.
    """

    def unlogged(self, path: str) -> bool:
        """Whether a request to ``path`` is left out of the log entirely (none is here)."""
        del path
        return False

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request is not None and self.unlogged(request.path):
            return
        client = request.get(CLIENT) if request is not None else None
        if client is None or client == request.remote:
            super().log(request, response, time)
            return
        values = [
            client if key == "remote_address" else method(request, response, time)
            for key, method in self._methods
        ]
        self.logger.info(self._log_format % tuple(values))


def serve(
    app: web.Application,
    host: str,
    port: int,
    access_log: type[ClientAccessLogger],
    *,
    sock: socket.socket | None = None,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, logging to stderr unless logging is set up.

    With ``sock`` (a listening socket another process opened) ``host`` and ``port``
    are not used.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per run otherwise
    web.run_app(
        app,
        host=None if sock is not None else host,
        port=None if sock is not None else port,
        sock=sock,
        access_log_class=access_log,
        access_log_format=ACCESS_LOG_FORMAT,
    )
