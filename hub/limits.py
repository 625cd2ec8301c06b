"""Rate limits on every route of the hub, and the client address behind a proxy (ADR 15).

One middleware, ``limits_middleware``, sits inside the error middleware (so a
429 has the one JSON error shape, with ``Retry-After``). It first checks the
shape of the ``Authorization`` header (``protocol.authshape.bearer_token``):
a header that cannot hold any token the hub issued (another scheme, bytes that
are not visible ASCII, too long) is answered 401 on every route, before
anything hashes or encodes it, and counts as a wrong token. Then it sorts each
request into one of three token buckets (``edge.ratelimit.RateLimiter``):

- **without a valid bearer token**, per client address (``rate_burst``,
  ``rate_per_hour``): the published tree read anonymously, health, metrics, the
  OpenAPI document, the pages — and every request whose token is wrong. The
  defaults are generous; a CDN or mirror in front of the tree is the way to
  serve more (docs/design.md §7).
- **with a valid bearer token**, per credential — the node id or the operator —
  whatever address it comes from (``credential_rate_*``), so that many nodes
  behind one NAT are not limited together. Which credential a token is, is
  looked up by its SHA-256 (``Access.authenticate``, one indexed read on the
  database thread) and remembered for ``CREDENTIAL_TTL`` seconds; a token not
  remembered is looked up again, **always**: a valid token is never refused
  because others sent wrong ones from its address. The handler still makes
  every access decision itself, so a token revoked meanwhile is refused all the
  same.
- **wrong tokens**, per client address and strict (``auth_failure_*``: ten a
  minute by default). A wrong token counts only where it was refused: a request
  the handler answers 401 because its token is unknown, revoked or malformed.
  A wrong token on a route that needs none (a public list, a root, health) is
  read as anonymous and counts nothing, since that answer says nothing about
  the token. Once an address has no wrong tokens left, each further refusal is
  a 429 instead of a 401, so a guesser learns nothing more than that it must
  wait; guessing stays bounded by the address's anonymous bucket, which every
  wrong-token request spends from, and costs at most one indexed lookup (a
  token found wrong is remembered as wrong for ``CREDENTIAL_TTL`` seconds).

The client address is ``request.remote`` unless the peer is one of
``trusted_proxies``, whose ``X-Forwarded-For`` is then believed
(``edge.ratelimit.TrustedProxies``); it is stored on the request under
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

from edge.database import DatabaseThread
from edge.ratelimit import Buckets, RateLimiter, TrustedProxies
from edge.serving import CLIENT, too_many
from edge.serving import ClientAccessLogger as EdgeAccessLogger
from edge.serving import client_address as edge_client_address
from hub.config import HubConfig
from hub.core import Hub
from hub.errors import InvalidRequest, Unauthorized
from hub.privacy import is_public_page
from protocol.authshape import (
    MalformedCredentialError,
    NotBearerError,
    bearer_token,
)

__all__ = [
    "CLIENT",
    "CREDENTIAL_TTL",
    "LIMITS",
    "ClientAccessLogger",
    "HubLimits",
    "client_address",
    "limits_middleware",
]

CREDENTIAL_TTL = 60.0
"""Seconds a token's credential (or its being wrong) is remembered for bucketing."""

_MAX_REMEMBERED = 50_000

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
    database: web.AppKey[DatabaseThread[Hub]]
    clock: Callable[[], float] = time.monotonic
    _tokens: OrderedDict[str, _Remembered] = field(default_factory=OrderedDict)

    @classmethod
    def from_config(
        cls,
        config: HubConfig,
        database: web.AppKey[DatabaseThread[Hub]],
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
        buckets = Buckets.from_settings(config, clock=clock)
        return cls(
            anonymous=buckets.anonymous,
            credential=buckets.credential,
            failures=buckets.failures,
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
    return edge_client_address(request, request.config_dict.get(LIMITS))


@dataclass(frozen=True)
class _Sent:
    """What the ``Authorization`` header of a request holds, its shape checked."""

    token: str | None  # None: no bearer token (no header, another scheme, a malformed one)
    malformed: MalformedCredentialError | None = None
    other_scheme: bool = False

    @classmethod
    def of(cls, request: web.Request) -> _Sent:
        try:
            return cls(bearer_token(request.headers.get(hdrs.AUTHORIZATION)))
        except NotBearerError:
            return cls(None, other_scheme=True)
        except MalformedCredentialError as e:
            return cls(None, e)

    @property
    def digest(self) -> str:
        assert self.token is not None  # shaped: visible ASCII, so it encodes
        return hashlib.sha256(self.token.encode("ascii")).hexdigest()


async def _credential(request: web.Request, limits: HubLimits, sent: _Sent) -> str | None:
    """Which node or operator the token is (None: wrong), remembered for a while.

    Never refused before the lookup: what proves a valid token is its hash in the
    database, not the history of its address.
    """
    if sent.token is None:
        return None
    token, digest = sent.token, sent.digest
    found = limits.known(digest)
    if found is not None:
        return found.credential
    credential: str | None
    try:
        principal = await request.config_dict[limits.database].call(
            lambda hub: hub.access.authenticate(token)
        )
        credential = f"{principal.kind}:{principal.subject}"
    except Unauthorized:
        credential = None
    limits.remember(digest, credential)
    return credential


def _refused(request: web.Request, limits: HubLimits, refusal: Exception) -> Exception:
    """Count a refused credential against the client's address: the 401, or a 429 past it."""
    if limits.failures is not None:
        wait = limits.failures.take(client_address(request))
        if wait:
            return too_many(wait, "too many wrong tokens from your address")
    return refusal


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Check the credential's shape, spend from its bucket or the client's, or answer 429."""
    limits = request.config_dict[LIMITS]
    client = limits.proxies.client(request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, []))
    request[CLIENT] = client
    sent = _Sent.of(request)
    credential = await _credential(request, limits, sent)
    if credential is not None:
        bucket, key, what = limits.credential, credential, "this credential"
    else:
        bucket, key, what = limits.anonymous, client, "your address"
    if bucket is not None:
        wait = bucket.take(key)
        if wait:
            raise too_many(wait, f"too many requests from {what}")
    if sent.malformed is not None:
        raise _refused(request, limits, Unauthorized(str(sent.malformed)))
    try:
        return await handler(request)
    except (Unauthorized, web.HTTPUnauthorized) as e:
        if sent.token is None and not sent.other_scheme:
            raise  # no credential sent: nothing was guessed
        if credential is not None:  # revoked since it was remembered
            limits.remember(sent.digest, None)
        raise _refused(request, limits, e) from None


class ClientAccessLogger(EdgeAccessLogger):
    """The access log (``edge.serving``), which names the client the limits resolved.

    A request for one of the public pages (``hub.privacy.is_public_page``: the
    submission and case pages and their static files) is not written at all:
    their visitors leave no address and no time of their visit in any log.
    """

    def unlogged(self, path: str) -> bool:
        return is_public_page(path)
