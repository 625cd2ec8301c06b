"""Rate limiting of the public pages: one token bucket per client address, in memory.

A client address may post ``burst`` times at once (submit a hash, look up a
case, try a login) and then once every ``3600 / per_hour`` seconds; past that it
is answered 429 with ``Retry-After``. The buckets live in this process only: a
restart forgets them, and several hub processes each keep their own. Behind a
reverse proxy every client has the proxy's address unless the proxy is trusted
to set the address aiohttp sees; the limit then holds for all clients together.

The table is bounded: when it holds ``max_clients`` addresses, full buckets (the
clients that have waited long enough anyway) are dropped first, then the
oldest, so a flood of addresses cannot grow it without bound.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimiter"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by client key (see the module docstring)."""

    def __init__(
        self,
        *,
        burst: int,
        per_hour: int,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or per_hour < 1:
            raise ValueError("a rate limit needs a burst and a rate of at least 1")
        self.burst = burst
        self.rate = per_hour / 3600.0
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str) -> int:
        """Spend one token of ``client``'s bucket: 0 if allowed, else seconds to wait."""
        now = self.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
            self._buckets.move_to_end(client)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_clients:
            return
        refilled = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.burst
        ]
        for key in refilled:
            del self._buckets[key]
        while len(self._buckets) >= self.max_clients:
            self._buckets.popitem(last=False)
