"""A node as one member of a platform's fleet: its replica name, its content shard, its worker.

A platform runs several nodes (replicas) behind its own load balancer, each with
its own home, key and store, each following the hub on its own. Two things then
have to say which replica is meant:

- **Match ids.** A replica with a ``replica`` name issues match ids
  ``<replica>.<uuid>`` (``node.matching``), so that the load balancer sends the
  platform's outcome for a match to the replica that recorded it; an outcome for
  another replica's id is refused with 421, naming that replica. Without a name
  the ids are bare UUIDs, as before there were fleets.
- **Registered content.** With ``content_shard = "i/n"`` a replica registers only
  the content ids of shard ``i`` of ``n``: SHA-256 of the id's UTF-8, its first 8
  bytes as a big-endian integer, modulo ``n`` (``shard_of``). One corpus file fed
  to every replica then registers each piece of content on exactly one.

``Worker`` says which of the processes of ``hashhub-node run --workers N``
answers (``node.workers``). The names and shards are checked where a ``Node``
opens, so a bad one stops every command with one clear line; the configuration
itself only holds the text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from node.errors import NodeConfigError

__all__ = [
    "REPLICA_HEADER",
    "REPLICA_NAME",
    "WORKER_HEADER",
    "ContentShard",
    "Worker",
    "check_replica",
    "content_shard",
    "shard_of",
]

REPLICA_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
"""A replica's name: 1-32 lowercase letters, digits and hyphens, a letter or digit at
each end (a DNS label's alphabet: it goes into match ids, URLs and a load balancer's
routing rule unquoted)."""

REPLICA_HEADER = "Hashhub-Replica"
"""The response header naming the replica that answered (when it has a name)."""
WORKER_HEADER = "Hashhub-Worker"
"""The response header naming the process of the replica that answered (0 to N-1)."""

_SHARD = re.compile(r"([0-9]{1,6})/([0-9]{1,6})")


def check_replica(name: str) -> str:
    """``name`` if it is a valid replica name or empty (no name), else ``NodeConfigError``."""
    if name and not REPLICA_NAME.fullmatch(name):
        raise NodeConfigError(
            f"replica {name[:64]!r}: a replica name is 1-32 lowercase letters, digits and "
            "hyphens, beginning and ending with a letter or digit "
            "(node.toml replica or HASHHUB_NODE_REPLICA)"
        )
    return name


def shard_of(content_id: str, count: int) -> int:
    """The shard of ``count`` that ``content_id`` belongs to (stable across machines and
    releases: SHA-256 of the id's UTF-8, first 8 bytes big-endian, modulo ``count``)."""
    digest = hashlib.sha256(content_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class ContentShard:
    """Shard ``index`` of ``count``: the content ids this replica registers."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, content_id: str) -> bool:
        return shard_of(content_id, self.count) == self.index

    def owner(self, content_id: str) -> ContentShard:
        """The shard (of the same count) that ``content_id`` belongs to."""
        return ContentShard(shard_of(content_id, self.count), self.count)


def content_shard(text: str) -> ContentShard | None:
    """The ``content_shard`` setting: None when empty (all content), else ``i/n`` with
    ``0 <= i < n``; anything else is ``NodeConfigError``."""
    if not text:
        return None
    found = _SHARD.fullmatch(text.strip())
    if found is None:
        raise NodeConfigError(
            f"content_shard {text[:64]!r}: write it as i/n, this replica's shard i of n "
            "(0 <= i < n), or leave it empty for all content "
            "(node.toml content_shard or HASHHUB_NODE_CONTENT_SHARD)"
        )
    index, count = int(found.group(1)), int(found.group(2))
    if count < 1:
        raise NodeConfigError(f"content_shard {text!r}: n (the number of shards) must be 1 or more")
    if index >= count:
        raise NodeConfigError(
            f"content_shard {text!r}: i must be from 0 to n-1 (here 0 to {count - 1})"
        )
    return ContentShard(index, count)


@dataclass(frozen=True)
class Worker:
    """One process of a node's daemon: ``index`` of ``count``; the first one schedules
    (sync, acks, outbox, stale alarm), the others only serve the API."""

    index: int = 0
    count: int = 1

    @property
    def schedules(self) -> bool:
        return self.index == 0
