"""Rate limiting of the public pages' posts (submit, case lookup, login).

The token bucket is ``edge.ratelimit.RateLimiter``, the one the whole hub and
the node use (ADR 15); it is named here too because the pages' stricter
per-address limit on their posts is set up in ``hub.web.pages``. The address is
the client's as ``hub.limits.client_address`` resolves it, so behind a trusted
reverse proxy each client keeps a bucket of its own; each form has its own
bucket too (the limiter's key is the form's name and the address, which the
limiter keeps only as an HMAC).
"""

from __future__ import annotations

from edge.ratelimit import RateLimiter

__all__ = ["RateLimiter"]
