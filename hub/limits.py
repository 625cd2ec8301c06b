"""Rate limits on every route of the hub, and the client address behind a proxy (ADR 15).

One middleware, ``limits_middleware``, sits inside the error middleware (so a
429 has the one JSON error shape, with ``Retry-After``) and sorts each request
into one of three token buckets (``protocol.ratelimit.RateLimiter``):

- **without a bearer token**, per client address (``rate_burst``,
  ``rate_per_hour``): the published tree read anonymously, health, metrics, the
  OpenAPI document, the pages. The defaults are generous; a CDN or mirror in
  front of the tree is the way to serve more (DESIGN §3.8).
- **with a valid bearer token**, per credential — the node id or the operator —
  whatever address it comes from (``credential_rate_*``), so that many nodes
  behind one NAT are not limited together. Which credential a token is, is
  looked up once (``Hub.authenticate``, on the database thread) and remembered
  for ``CREDENTIAL_TTL`` seconds; the handler still makes every access decision
  itself, so a token revoked meanwhile is refused all the same.
- **with a wrong, unknown, revoked or malformed token**, per client address and
  strict (``auth_failure_*``: ten a minute by default). While an address has
  none left, every token from it that is not already known to be valid is
  answered 429 before it is looked up, so guessing costs the hub nothing; the
  nodes sharing that address keep working on their own buckets. Such a request
  also spends from its address's anonymous bucket, so that sending made-up
  tokens to a public list is never a way around the anonymous limit.

The client address is ``request.remote`` unless the peer is one of
``trusted_proxies``, whose ``X-Forwarded-For`` is then believed
(``protocol.ratelimit.TrustedProxies``); it is stored on the request under
``CLIENT`` for everything that limits or logs by address (the pages' own
limits, the access log through ``ClientAccessLogger``).

A setting of 0 turns its limit off, for operators who limit in their proxy.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from aiohttp.web_log import AccessLogger

from hub.config import HubConfig
from hub.core import Hub
from hub.errors import InvalidRequest, Unauthorized
from hub.store import DatabaseOwner
from protocol.ratelimit import RateLimiter, TrustedProxies

__all__ = [
    "CLIENT",
    "CREDENTIAL_TTL",
    "LIMITS",
    "MAX_TOKEN_LENGTH",
    "ClientAccessLogger",
    "HubLimits",
    "client_address",
    "limits_middleware",
]

CREDENTIAL_TTL = 60.0
"""Seconds a token's credential (or its being wrong) is remembered for bucketing."""

_MAX_REMEMBERED = 50_000
MAX_TOKEN_LENGTH = 256
"""A longer bearer token is wrong without a lookup (here and in ``hub.app``)."""

CLIENT = web.RequestKey("client_address", str)
"""The client's address, as the trusted proxies say (set on every request)."""


@dataclass
class _Remembered:
    credential: str | None  # None: the token is wrong
    until: float


@dataclass
class HubLimits:
    """The hub's buckets and what they need; ``clock`` is injectable for tests."""

    anonymous: RateLimiter | None
    credential: RateLimiter | None
    failures: RateLimiter | None
    proxies: TrustedProxies
    database: web.AppKey[DatabaseOwner[Hub]]
    clock: Callable[[], float] = time.monotonic
    _tokens: OrderedDict[str, _Remembered] = field(default_factory=OrderedDict)

    @classmethod
    def from_config(
        cls,
        config: HubConfig,
        database: web.AppKey[DatabaseOwner[Hub]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> HubLimits:
        """The limits ``config`` sets (a 0 turns one off).

        Raises:
            InvalidRequest: ``trusted_proxies`` holds something that is not an
                address or a CIDR block.
        """
        try:
            proxies = TrustedProxies.parse(config.trusted_proxies)
        except ValueError as e:
            raise InvalidRequest(f"trusted_proxies: {e}") from e
        return cls(
            anonymous=RateLimiter.optional(config.rate_burst, config.rate_per_hour, clock=clock),
            credential=RateLimiter.optional(
                config.credential_rate_burst, config.credential_rate_per_hour, clock=clock
            ),
            failures=RateLimiter.optional(
                config.auth_failure_burst, config.auth_failure_per_hour, clock=clock
            ),
            proxies=proxies,
            database=database,
            clock=clock,
        )

    def known(self, digest: str) -> _Remembered | None:
        found = self._tokens.get(digest)
        if found is None or found.until <= self.clock():
            return None
        return found

    def remember(self, digest: str, credential: str | None) -> None:
        self._tokens[digest] = _Remembered(credential, self.clock() + CREDENTIAL_TTL)
        self._tokens.move_to_end(digest)
        while len(self._tokens) > _MAX_REMEMBERED:
            self._tokens.popitem(last=False)


LIMITS = web.AppKey("limits", HubLimits)


def client_address(request: web.Request) -> str:
    """The client's address: set by the middleware, else resolved here."""
    if CLIENT in request:
        return request[CLIENT]
    limits = request.config_dict.get(LIMITS)
    proxies = limits.proxies if limits is not None else TrustedProxies()
    return proxies.client(request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, []))


def _too_many(wait: int, message: str) -> web.HTTPTooManyRequests:
    return web.HTTPTooManyRequests(
        text=f"{message}; try again in {wait} s", headers={hdrs.RETRY_AFTER: str(wait)}
    )


def _bearer_token(request: web.Request) -> str | None:
    """The bearer token as sent, or "" for an Authorization header that holds none."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def _credential(request: web.Request, limits: HubLimits, token: str) -> str | None:
    """Which node or operator ``token`` is (None: wrong), remembered for a while."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    found = limits.known(digest)
    if found is not None:
        return found.credential
    if limits.failures is not None:
        wait = limits.failures.retry_after(client_address(request))
        if wait:
            raise _too_many(wait, "too many wrong tokens from your address")
    credential: str | None
    if not token or len(token) > MAX_TOKEN_LENGTH:  # the handler refuses these unlooked-up too
        credential = None
    else:
        try:
            principal = await request.config_dict[limits.database].call(
                lambda hub: hub.authenticate(token)
            )
            credential = f"{principal.kind}:{principal.subject}"
        except Unauthorized:
            credential = None
    limits.remember(digest, credential)
    return credential


def _failed(request: web.Request, limits: HubLimits) -> None:
    """Count a wrong token against the client's address; 429 once none is left."""
    if limits.failures is not None:
        wait = limits.failures.take(client_address(request))
        if wait:
            raise _too_many(wait, "too many wrong tokens from your address")


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the client, spend from its bucket or its credential's, or answer 429."""
    limits = request.config_dict[LIMITS]
    client = limits.proxies.client(request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, []))
    request[CLIENT] = client
    token = _bearer_token(request)
    credential = None if token is None else await _credential(request, limits, token)
    if token is not None and credential is None:
        _failed(request, limits)
    if credential is not None:
        bucket, key, what = limits.credential, credential, "this credential"
    else:
        bucket, key, what = limits.anonymous, client, "your address"
    if bucket is not None:
        wait = bucket.take(key)
        if wait:
            raise _too_many(wait, f"too many requests from {what}")
    try:
        return await handler(request)
    except (Unauthorized, web.HTTPUnauthorized):
        if token is not None and credential is not None:  # revoked since it was remembered
            limits.remember(hashlib.sha256(token.encode()).hexdigest(), None)
            _failed(request, limits)
        raise


class ClientAccessLogger(AccessLogger):
    """aiohttp's access log, with ``%a`` the client's address as the middleware resolved it.

    Behind a trusted proxy, ``request.remote`` is the proxy; the log should name
    the client, as the limits do.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        client = request.get(CLIENT) if request is not None else None
        if client is None or client == request.remote:
            super().log(request, response, time)
            return
        values = [
            client if key == "remote_address" else method(request, response, time)
            for key, method in self._methods
        ]
        self.logger.info(self._log_format % tuple(values))
