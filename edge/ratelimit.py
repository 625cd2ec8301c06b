"""Rate limits and client addresses: the rules the hub and the node both apply (ADR 15).

Two small pieces, with no network or disk I/O, so that both edges apply the very
same rules and a test can drive them with its own clock. They live in ``edge``,
not ``protocol`` (ADR 17): the limiter reads a clock and draws a secret.

- ``RateLimiter``: token buckets by key, in memory. A key (a client address, a
  credential) may spend ``burst`` tokens at once and regains ``per_hour`` an
  hour; past that it is told how many seconds to wait. The buckets live in one
  process: a restart forgets them, and several processes each keep their own.
  The table is bounded: when it holds ``max_clients`` keys, full buckets (the
  clients that have waited long enough anyway) are dropped first, then the
  least recently used, so a flood of keys cannot grow it without bound; a
  dropped key starts again with a full bucket, which is lenient, never wrong.
  Keys are never kept as given: each is an HMAC-SHA-256 under a random key the
  limiter draws when it is made (in memory only, never written), so the table
  holds no client address, and nothing in it can be turned back into one
  without that key. A bucket that has filled up again is no different from no
  bucket at all: every ``SWEEP_SECONDS`` (checked on each request, so an idle
  limiter sweeps at its next request) the full buckets are dropped, and the
  limiter forgets a client once it no longer has to wait.
- ``TrustedProxies``: which peer addresses are believed when they say, in
  ``X-Forwarded-For``, whom they forward for. The client is the right-most
  address in the chain that is not a trusted proxy; a peer that is not trusted
  is the client, whatever it sends. The default, no proxy, believes nobody, so
  a forged header changes nothing. ``https`` applies the same trust to
  ``X-Forwarded-Proto``: whether a request behind a proxy came over https (for
  the ``Secure`` flag of the pages' cookies).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Buckets", "RateLimiter", "RateSettings", "TrustedProxies"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SWEEP_SECONDS = 60.0
"""How often (at the next request after this long) the limiter drops its full buckets."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets by key (see the module docstring)."""

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
        self._secret = secrets.token_bytes(32)
        self._buckets: OrderedDict[bytes, _Bucket] = OrderedDict()
        self._swept = clock()

    @classmethod
    def optional(
        cls, burst: int, per_hour: int, *, clock: Callable[[], float] = time.monotonic
    ) -> RateLimiter | None:
        """A limiter, or None when either setting is 0 or less (the limit is off)."""
        if burst <= 0 or per_hour <= 0:
            return None
        return cls(burst=burst, per_hour=per_hour, clock=clock)

    def _key(self, client: str) -> bytes:
        """What the table keeps for ``client``: an HMAC under this limiter's own key."""
        data = client.encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, data, hashlib.sha256).digest()[:16]

    def take(self, client: str) -> int:
        """Spend one token of ``client``'s bucket: 0 if allowed, else seconds to wait."""
        bucket = self._refill(self._key(client), self.clock())
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return self._wait(bucket)

    def retry_after(self, client: str) -> int:
        """Seconds ``client`` must wait before it may spend a token (0: it may now).

        Spends nothing: a failure limit asks this before it lets an attempt in, and
        ``take``s only when the attempt has failed.
        """
        bucket = self._buckets.get(self._key(client))
        if bucket is None:
            return 0
        tokens = min(
            float(self.burst),
            bucket.tokens + max(0.0, self.clock() - bucket.updated) * self.rate,
        )
        return 0 if tokens >= 1.0 else self._wait(_Bucket(tokens, 0.0))

    def _refill(self, client: bytes, now: float) -> _Bucket:
        if now - self._swept >= SWEEP_SECONDS:
            self._forget_refilled(now)
        bucket = self._buckets.get(client)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
            self._buckets.move_to_end(client)
        return bucket

    def _wait(self, bucket: _Bucket) -> int:
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))

    def _forget_refilled(self, now: float) -> None:
        """Drop every bucket that is full again: it means no more than no bucket."""
        self._swept = now
        refilled = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.burst
        ]
        for key in refilled:
            del self._buckets[key]

    def _make_room(self, now: float) -> None:
        if len(self._buckets) < self.max_clients:
            return
        self._forget_refilled(now)
        while len(self._buckets) >= self.max_clients:
            self._buckets.popitem(last=False)


class RateSettings(Protocol):
    """The settings of the three buckets every role keeps (each role's config has them)."""

    @property
    def rate_burst(self) -> int: ...
    @property
    def rate_per_hour(self) -> int: ...
    @property
    def credential_rate_burst(self) -> int: ...
    @property
    def credential_rate_per_hour(self) -> int: ...
    @property
    def auth_failure_burst(self) -> int: ...
    @property
    def auth_failure_per_hour(self) -> int: ...


@dataclass(frozen=True)
class Buckets:
    """A role's three buckets: requests without a credential (per address), with a valid
    one (per credential), and refused credentials (per address). None: that limit is off."""

    anonymous: RateLimiter | None
    credential: RateLimiter | None
    failures: RateLimiter | None

    @classmethod
    def from_settings(
        cls, settings: RateSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> Buckets:
        """The buckets ``settings`` ask for (a 0 turns one off)."""
        return cls(
            anonymous=RateLimiter.optional(
                settings.rate_burst, settings.rate_per_hour, clock=clock
            ),
            credential=RateLimiter.optional(
                settings.credential_rate_burst, settings.credential_rate_per_hour, clock=clock
            ),
            failures=RateLimiter.optional(
                settings.auth_failure_burst, settings.auth_failure_per_hour, clock=clock
            ),
        )


class TrustedProxies:
    """The reverse proxies whose ``X-Forwarded-For`` is believed (see the module docstring)."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        """Parse addresses and CIDR blocks (``10.0.0.0/8``, ``::1``).

        Raises:
            ValueError: an item that is neither, naming it.
        """
        parsed: list[_Network] = []
        for item in networks:
            text = item.strip()
            if not text:
                continue
            try:
                parsed.append(ipaddress.ip_network(text, strict=False))
            except ValueError as e:
                raise ValueError(f"{text!r} is not an address or a CIDR block") from e
        self.networks: tuple[_Network, ...] = tuple(parsed)

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """From a comma-separated setting (``"127.0.0.1, 10.0.0.0/8"``; empty: none)."""
        return cls(text.split(","))

    def trusts(self, address: str) -> bool:
        """Whether ``address`` is one of the trusted proxies (an unparsable one is not)."""
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: Iterable[str]) -> str:
        """The client's address, given the connection's ``peer`` and the header values.

        ``forwarded_for`` are the ``X-Forwarded-For`` header values in the order
        received; each may hold several comma-separated addresses, the right-most
        added by the nearest proxy. Walking from the right, trusted proxies are
        skipped; the first other address is the client. An entry that is not an
        address ends the walk at the last trusted hop, which is then the client:
        what a proxy forwarded from further left cannot be believed.
        """
        current = peer or "unknown"
        if not self.networks or not self.trusts(current):
            return current
        chain = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(chain):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return current
            current = hop
            if not self.trusts(hop):
                return hop
        return current

    def https(self, peer: str | None, secure: bool, forwarded_proto: Iterable[str]) -> bool:
        """Whether the client reached us over https.

        ``secure``: the connection itself is TLS. Else, when ``peer`` is a trusted
        proxy, its ``X-Forwarded-Proto`` (``forwarded_proto``, the header values in
        the order received) says so: the right-most value, the one the nearest proxy
        set, must be ``https``. What a peer that is not trusted says is not believed.
        """
        if secure:
            return True
        if peer is None or not self.networks or not self.trusts(peer):
            return False
        values = [item.strip().lower() for value in forwarded_proto for item in value.split(",")]
        return bool(values) and values[-1] == "https"
