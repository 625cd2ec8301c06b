"""Rate limits on every route of the node's API, and the client address behind a proxy (ADR 15).

The same policy as the hub's (``hub.limits``; the two edges share the limiter
and the proxy rules in ``edge.ratelimit``, ADR 17). One
middleware, inside the error middleware and before the token check, sorts each
request into one of three token buckets:

- **without a bearer token**, per client address (``rate_burst``,
  ``rate_per_hour``): ``/healthz``, the status pages, and the 401s of requests
  that forgot the token.
- **with the API token**, one bucket for that credential, whatever address it
  comes from (``credential_rate_*``): the participant's own systems matching
  images, however many hosts they run on. Off by default: the token is the
  platform's upload path, and its node must not answer it 429.
- **with a wrong or malformed token**, per client address and strict
  (``auth_failure_*``, ten a minute by default): past it every wrong token from
  that address is answered 429 before it is compared, while the right token
  still works. A wrong token also spends from the address's anonymous bucket.

The ``Authorization`` header's shape is checked first, by
``protocol.authshape.bearer_token`` (the hub's rule too): a header that cannot
hold any token (another scheme, bytes that are not visible ASCII, too long) is
answered 401 on every route and counts as a wrong token, before anything
encodes or compares it.

The client address is ``request.remote`` unless the peer is one of
``trusted_proxies`` (``edge.ratelimit.TrustedProxies``); it is stored on the
request under ``CLIENT`` for the status page's login throttle and the access log
(``ClientAccessLogger``). A setting of 0 turns its limit off.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from edge.ratelimit import Buckets, RateLimiter, TrustedProxies
from edge.serving import CLIENT, ClientAccessLogger, too_many
from edge.serving import client_address as edge_client_address
from node.config import NodeConfig
from node.errors import NodeConfigError
from node.service import Node
from protocol.authshape import (
    MalformedCredentialError,
    NotBearerError,
    bearer_token,
    is_credential_shaped,
)

__all__ = [
    "CLIENT",
    "LIMITS",
    "REALM",
    "ClientAccessLogger",
    "MalformedCredentialError",
    "NodeLimits",
    "bearer_token",
    "client_address",
    "is_the_api_token",
    "limits_middleware",
]

"""The client's address, as the trusted proxies say (set on every request)."""

REALM = 'Bearer realm="hashhub-node"'
"""The challenge of every 401 of the node's API."""

API_CREDENTIAL = "api-token"
"""The one credential the node's API knows: the key of its bucket."""


@dataclass
class NodeLimits:
    """The node's buckets and what they need; ``clock`` is injectable for tests."""

    anonymous: RateLimiter | None
    credential: RateLimiter | None
    failures: RateLimiter | None
    proxies: TrustedProxies
    node: web.AppKey[Node]

    @classmethod
    def from_config(
        cls,
        config: NodeConfig,
        node: web.AppKey[Node],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> NodeLimits:
        """The limits ``config`` sets (a 0 turns one off).

        Raises:
            NodeConfigError: ``trusted_proxies`` holds something that is not an
                address or a CIDR block.
        """
        try:
            proxies = TrustedProxies(config.trusted_proxies)
        except ValueError as e:
            raise NodeConfigError(f"trusted_proxies: {e}") from e
        buckets = Buckets.from_settings(config, clock=clock)
        return cls(
            anonymous=buckets.anonymous,
            credential=buckets.credential,
            failures=buckets.failures,
            proxies=proxies,
            node=node,
        )


LIMITS = web.AppKey("limits", NodeLimits)


def client_address(request: web.Request) -> str:
    """The client's address: set by the middleware, else resolved here."""
    return edge_client_address(request, request.config_dict.get(LIMITS))


def is_the_api_token(token: str, expected: str) -> bool:
    """Whether ``token`` is the node's API token: compared in constant time, never empty.

    The one check of the API token: the API, its rate limits and the status page's
    login form all ask it.
    """
    return is_credential_shaped(token) and hmac.compare_digest(
        token.encode("ascii"), expected.encode()
    )


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the client, spend from its bucket or the API token's, or answer 429."""
    limits = request.config_dict[LIMITS]
    client = limits.proxies.client(request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, []))
    request[CLIENT] = client
    header = request.headers.get(hdrs.AUTHORIZATION)
    malformed: MalformedCredentialError | None = None
    try:
        token = bearer_token(header)
    except NotBearerError:
        token = None  # no bearer token: the route decides (healthz ignores it)
    except MalformedCredentialError as e:
        token, malformed = None, e
    valid = token is not None and is_the_api_token(
        token, request.config_dict[limits.node].api_token
    )
    if header is not None and not valid and limits.failures is not None:
        wait = limits.failures.take(client)
        if wait:
            raise too_many(wait, "too many wrong tokens from your address")
    if valid:
        bucket, key, what = limits.credential, API_CREDENTIAL, "this credential"
    else:
        bucket, key, what = limits.anonymous, client, "your address"
    if bucket is not None:
        wait = bucket.take(key)
        if wait:
            raise too_many(wait, f"too many requests from {what}")
    if malformed is not None:
        raise web.HTTPUnauthorized(
            text=str(malformed), headers={hdrs.WWW_AUTHENTICATE: f'{REALM}, error="invalid_token"'}
        )
    return await handler(request)
