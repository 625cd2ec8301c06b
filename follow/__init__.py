"""Following a hub safely: the fetcher and the verified update, for every follower.

A node follows its hub, the threatexchange bridge follows one for pytx, and a hub
will follow upstream hubs (docs/adr/0020-federation-follow-package-and-provenance.md).
Each must pin the first root, walk the root chain, check the checkpoint's freshness
and history, verify every header, snapshot and body, and apply an update all or
nothing; done three times, the copies would drift, and a follower that skips a rule
trusts what it should not. So there is one follower, here, and it imports only
``protocol`` (the rules every decision is a call into) and ``edge``: never a role,
which is what lets the hub use it (docs/design.md §2.2).

- ``follow.fetch``: ``Fetcher``, capped and deadlined downloads, mirrors first;
- ``follow.update``: ``Syncer``, one update run through the trust rules, and where
  its store calls run (``StoreRunner``, ``InPlace``);
- ``follow.outcome``: ``ListOutcome``, what an update of one list did;
- ``follow.store``: ``FollowerStore``, what the update asks of a store, and the
  stored lists it reads (``StoredList``, ``StoredEntries``);
- ``follow.send``: ``post_ack``, an ack sent to the hub and its answer read;
- ``follow.errors``: the follower's errors, by who is at fault, and ``describe``.
"""

from __future__ import annotations

from follow.errors import (
    FetchError,
    FollowerConfigError,
    FollowerError,
    HubAccessError,
    NotPublishedError,
    NoTreeError,
    StorageError,
    describe,
    storage_error,
)
from follow.fetch import Fetcher, cannot_connect
from follow.outcome import FailureCause, ListOutcome, UpdateStatus
from follow.store import FollowerStore, StoredEntries, StoredList
from follow.update import InPlace, StoreRunner, Syncer

__all__ = [
    "FailureCause",
    "FetchError",
    "Fetcher",
    "FollowerConfigError",
    "FollowerError",
    "FollowerStore",
    "HubAccessError",
    "InPlace",
    "ListOutcome",
    "NoTreeError",
    "NotPublishedError",
    "StorageError",
    "StoreRunner",
    "StoredEntries",
    "StoredList",
    "Syncer",
    "UpdateStatus",
    "cannot_connect",
    "describe",
    "storage_error",
]
