"""Errors of the node, by who is at fault.

    NodeError (hashhub's HashhubError)
    ├── NodeConfigError   the local configuration or home directory is unusable (operator)
    ├── UnknownMatchError      no match event has this id (the API's 404)
    ├── OutcomeConflictError   the match already has another outcome (the API's 409)
    ├── InvalidOutcomeError    not one of the outcomes a platform can record
    ├── InvalidContentError    a content id or registered hash that cannot be stored
    └── (protocol.ProtocolError, re-raised as is: the published data is at fault)

    and the follower's (``follow.errors``, imported here), which a sync raises:
    FollowerError (hashhub's HashhubError)
    ├── FollowerConfigError  (NodeConfigError is one too)
    ├── FetchError        a download failed: network, HTTP status, deadline, or cap
    │   ├── NotPublishedError  the server answered 404: the file does not exist (yet)
    │   ├── NoTreeError        the hub URL serves no published tree (no root v1 there)
    │   └── HubAccessError     the hub refused the node's token (401) or a list (403)
    └── StorageError      the node's own disk refused a write (full, or an I/O error)

The follower's errors are not ``NodeError``s: the same update runs for the bridge
and, later, for a hub following another (docs/design.md §2.2). Every one is a
``HashhubError``, which the command line reports in one line (``edge.cli``).

A sync that fails with ``FetchError`` is retried with back-off (a ``HubAccessError``
too, though only the hub operator can end it: the command line says so by its own
exit status); one that fails with a
``ProtocolError`` is recorded as evidence and also retried, since a mirror or the
hub may serve good data later. Neither changes what the node enforces; nor does a
``StorageError``, whose transaction SQLite rolled back: the update is ``failed`` and
retried, the API answers 507, and both work again once the disk has room.

The match API refuses a request with ``edge.errors.ApiError`` (status, code,
message: ``node.app`` re-exports it), the error the hub's are made of too;
``HTTP_CODES`` gives the statuses aiohttp raises itself the same codes.
"""

from __future__ import annotations

from follow.errors import (
    FetchError,
    FollowerConfigError,
    HubAccessError,
    NotPublishedError,
    NoTreeError,
    StorageError,
    describe,
)
from protocol.errors import HashhubError

__all__ = [
    "HTTP_CODES",
    "FetchError",
    "HubAccessError",
    "InvalidContentError",
    "InvalidOutcomeError",
    "NoTreeError",
    "NodeConfigError",
    "NodeError",
    "NotPublishedError",
    "OutcomeConflictError",
    "StorageError",
    "UnknownMatchError",
    "describe",
]


HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
"""The code of each status the match API answers, for an aiohttp ``HTTPException``."""


class NodeError(HashhubError):
    """Root of the node's own errors."""


class NodeConfigError(NodeError, FollowerConfigError):
    """The node's home directory or configuration cannot be used.

    A ``FollowerConfigError`` too: following a list the hub does not declare is the
    node's configuration to correct (``node.sync.NodeSyncer``)."""


class UnknownMatchError(NodeError):
    """No match event has this id."""

    def __init__(self, match_id: str) -> None:
        super().__init__(f"no match {match_id}")
        self.match_id = match_id


class OutcomeConflictError(NodeError):
    """The match already has a different outcome: an outcome is recorded once."""


class InvalidOutcomeError(NodeError):
    """Not one of the outcomes a platform can record about a match."""


class InvalidContentError(NodeError):
    """A content id or a registered hash the registry cannot hold (bad id, wrong width)."""
