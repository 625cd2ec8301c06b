"""Loops through several hubs: walking the upstreams each hub's root declares.

A hub's root declares whom it follows (PROTOCOL.md §5.6), so a loop of two hubs is
in one root. A loop through more (this hub follows C, C follows B, B follows this
hub) is in none of them, and the records do not show it either: each hub
re-publishes an upstream's entry under its own name (``hub:<upstream>``), so this
hub's own entry comes back round as ``hub:C``. Once this hub retracts it (a person
withdrew it), the copy still standing downstream would be carried back in.

So before following an upstream, this hub walks the declarations, breadth first:
the upstream's root chain from the pin this hub's root declares for it, then every
hub that root declares, each from the pin its declarer names, at most
``MAX_DEPTH`` hubs away and ``MAX_HUBS`` hubs in all. A declaration of this hub's
own pin (its root v1's SHA-256) anywhere on the walk is a loop, and the upstream is
not followed (§5.6 rule 1). Roots are public files, read without a token. A hub
the walk cannot read is named in the result — the check is then incomplete, which
``hashhub upstream sync`` says — but does not stop following: an outage two hubs
away must not freeze this hub's lists.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from follow import Fetcher, FetchError, NotPublishedError
from protocol import Limits, ProtocolError, TrustedHub, root_path, sig_path

__all__ = ["MAX_DEPTH", "MAX_HUBS", "UpstreamWalk", "walk_upstreams"]

MAX_DEPTH = 8
"""Hubs away from this one a walk goes at most."""
MAX_HUBS = 64
"""Hubs one walk reads at most (a root declares at most 64 upstreams)."""


@dataclass
class UpstreamWalk:
    """What walking the declarations from one upstream found."""

    loop: list[str] | None = None
    """The hubs from the upstream to the one that declares this hub, in order, when
    there is a loop."""
    unread: list[str] = field(default_factory=list)
    """Hubs the walk could not read (name and why): the check is incomplete."""
    read: int = 0


async def _newest_root(
    session: aiohttp.ClientSession, url: str, pin: str, now: datetime, limits: Limits
) -> TrustedHub:
    """A hub's root chain from ``pin``, walked to its newest root, verified."""
    fetcher = Fetcher(session, url, limits=limits)
    first = await fetcher.fetch(root_path(1), limits.root_bytes)
    first_sig = await fetcher.fetch(sig_path(root_path(1)), limits.sig_bytes)
    hub = TrustedHub(first, first_sig, now=now, pinned_sha256=pin, limits=limits)
    for _ in range(limits.max_root_walk):
        path = root_path(hub.root.version + 1)
        try:
            data = await fetcher.fetch(path, limits.root_bytes)
            sig = await fetcher.fetch(sig_path(path), limits.sig_bytes)
        except NotPublishedError:
            break
        hub.update_root(data, sig)
    return hub


async def walk_upstreams(
    session: aiohttp.ClientSession,
    *,
    name: str,
    url: str,
    pin: str,
    own_pin: str,
    now: datetime,
    limits: Limits | None = None,
) -> UpstreamWalk:
    """Walk the declarations from the upstream ``name`` (at ``url``, pinned ``pin``)
    and say whether they lead back to the hub whose root v1 is ``own_pin``."""
    limits = limits or Limits()
    walk = UpstreamWalk()
    queue: deque[tuple[str, str, str, list[str]]] = deque([(name, url, pin, [name])])
    seen = {pin}
    while queue and walk.read < MAX_HUBS:
        hub_name, hub_url, hub_pin, path = queue.popleft()
        try:
            root = (await _newest_root(session, hub_url, hub_pin, now, limits)).root
        except (FetchError, ProtocolError, aiohttp.ClientError) as e:
            walk.unread.append(f"{hub_name}: {type(e).__name__}: {e}"[:300])
            continue
        walk.read += 1
        for upstream, declared in sorted(root.upstreams.items()):
            if declared.root_sha256 == own_pin:
                walk.loop = path
                return walk
            if declared.root_sha256 in seen or len(path) >= MAX_DEPTH:
                continue
            seen.add(declared.root_sha256)
            queue.append((upstream, declared.url, declared.root_sha256, [*path, upstream]))
    return walk
