"""The hub app's in-memory caches: published files and read-permission verdicts.

Immutable files are kept in a bounded LRU (they never change); checkpoints and
read-permission verdicts for at most ``MEMORY_TTL`` seconds. Both are cleared at
once by ``hub.http.invalidate_caches`` when something changes through the app
(``hub/app.py``'s docstring, "Caching", says why).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from hub.errors import HubError

__all__ = [
    "ACCESS_CACHE_ENTRIES",
    "FILE_CACHE_BYTES",
    "FILE_CACHE_ITEM_BYTES",
    "MEMORY_TTL",
    "AccessCache",
    "PublishedCache",
]

MEMORY_TTL = 1.0
"""Seconds a checkpoint or a read-permission verdict is kept in memory."""
FILE_CACHE_BYTES = 64 * 1024 * 1024
FILE_CACHE_ITEM_BYTES = 8 * 1024 * 1024
ACCESS_CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class _Published:
    data: bytes
    sha256: str
    immutable: bool


class PublishedCache:
    """Published files in memory: immutable ones in a bounded LRU, others for ``ttl`` s.

    ``generation`` changes on every ``invalidate``; a file read from the database
    is only stored if no invalidation happened while it was being read, so a reader
    that raced a publish cannot put the old checkpoint back.
    """

    def __init__(
        self,
        *,
        max_bytes: int = FILE_CACHE_BYTES,
        max_item_bytes: int = FILE_CACHE_ITEM_BYTES,
        ttl: float = MEMORY_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self.ttl = ttl
        self.clock = clock
        self.generation = 0
        self._immutable: OrderedDict[str, _Published] = OrderedDict()
        self._immutable_bytes = 0
        self._mutable: dict[str, tuple[float, _Published]] = {}

    def get(self, path: str) -> _Published | None:
        item = self._immutable.get(path)
        if item is not None:
            self._immutable.move_to_end(path)
            return item
        entry = self._mutable.get(path)
        if entry is not None:
            if entry[0] > self.clock():
                return entry[1]
            del self._mutable[path]
        return None

    def put(self, path: str, item: _Published, generation: int) -> None:
        if generation != self.generation or len(item.data) > self.max_item_bytes:
            return
        if not item.immutable:
            self._mutable[path] = (self.clock() + self.ttl, item)
            return
        if path in self._immutable:
            return
        self._immutable[path] = item
        self._immutable_bytes += len(item.data)
        while self._immutable_bytes > self.max_bytes:
            _, old = self._immutable.popitem(last=False)
            self._immutable_bytes -= len(old.data)

    def invalidate(self) -> None:
        """Forget every file that can change; immutable files stay."""
        self.generation += 1
        self._mutable.clear()


@dataclass(frozen=True)
class _Verdict:
    """A read-permission decision: allowed, or the error to raise (built anew each time)."""

    error: type[HubError] | None = None
    message: str = ""


class AccessCache:
    """Read-permission verdicts per (token digest, list) for ``ttl`` s; cleared on change."""

    def __init__(
        self,
        *,
        ttl: float = MEMORY_TTL,
        max_entries: int = ACCESS_CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self.generation = 0
        self._entries: dict[tuple[str, str], tuple[float, _Verdict]] = {}

    def get(self, key: tuple[str, str]) -> _Verdict | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: tuple[str, str], verdict: _Verdict, generation: int) -> None:
        if generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # a flood of random tokens cannot grow it without bound
        self._entries[key] = (self.clock() + self.ttl, verdict)

    def invalidate(self) -> None:
        self.generation += 1
        self._entries.clear()
