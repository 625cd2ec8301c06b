"""Errors of the node, by who is at fault.

    NodeError (hashhub's HashhubError)
    ├── NodeConfigError   the local configuration or home directory is unusable (operator)
    ├── FetchError        a download failed: network, HTTP status, deadline, or cap
    │   ├── NotPublishedError  the server answered 404: the file does not exist (yet)
    │   ├── NoTreeError        the hub URL serves no published tree (no root v1 there)
    │   └── HubAccessError     the hub refused the node's token (401) or a list (403)
    ├── StorageError      the node's own disk refused a write (full, or an I/O error)
    ├── UnknownMatchError      no match event has this id (the API's 404)
    ├── OutcomeConflictError   the match already has another outcome (the API's 409)
    ├── InvalidOutcomeError    not one of the outcomes a platform can record
    ├── InvalidContentError    a content id or registered hash that cannot be stored
    └── (protocol.ProtocolError, re-raised as is: the published data is at fault)

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

from protocol.errors import (
    BodyRuleError,
    ConsistencyError,
    EquivocationError,
    ExpiredError,
    FreezeError,
    HashhubError,
    InvalidListIdError,
    LimitError,
    MalformedError,
    MissingFileError,
    ProofError,
    ProtocolError,
    RollbackError,
    SignatureError,
    StateMismatchError,
    UnknownListError,
    WrongTypeError,
)

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


class NodeConfigError(NodeError):
    """The node's home directory or configuration cannot be used."""


class FetchError(NodeError):
    """A download failed (transport, status, deadline or cap)."""


class NotPublishedError(FetchError):
    """The server says the file does not exist."""


class NoTreeError(FetchError):
    """The hub URL has no root v1: it is not where a hub publishes its tree.

    Said in words of its own because the cause is almost always the URL in
    ``node.toml`` (a wrong path or port), not a file the hub forgot to publish.
    """


class HubAccessError(FetchError):
    """The hub refused the node's token (401) or its access to a list (403).

    Unlike the other fetch failures, waiting does not help: the hub operator has to
    enrol the node, grant it the list or issue a new token. ``status`` is the HTTP
    status the hub answered, so the advice can name the right one.
    """

    def __init__(self, message: str, status: int, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        """The ``code`` of the hub's JSON error (``node_suspended``), if it sent one."""


class StorageError(NodeError):
    """The node's disk refused a write: full, or an I/O error. Nothing was changed."""


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


_PLAIN_WORDS: tuple[tuple[type[Exception], str], ...] = (
    # Most specific first: the first class an error is an instance of names it.
    (NodeConfigError, ""),
    (NoTreeError, ""),
    (HubAccessError, ""),
    (FetchError, "could not fetch"),
    (StorageError, ""),
    (ProofError, "a Merkle proof does not verify"),
    (ConsistencyError, "the published history does not link up"),
    (WrongTypeError, "a document of the wrong type"),
    (BodyRuleError, "a delta body that breaks a rule"),
    (InvalidListIdError, "a list id that is not allowed"),
    (MalformedError, "malformed"),
    (LimitError, "larger than allowed"),
    (SignatureError, "signatures do not verify"),
    (RollbackError, "older than what this node holds (rollback)"),
    (FreezeError, "too old to trust (freeze)"),
    (ExpiredError, "the root has expired"),
    (EquivocationError, "two different histories signed (equivocation)"),
    (StateMismatchError, "the delta does not start from this node's state"),
    (UnknownListError, "a list the root does not declare"),
    (MissingFileError, "a signed file is missing"),
    (ProtocolError, "published data rejected"),
)
"""What went wrong, in the words an operator reads it, before the error's own message.

The class names (``FreezeError``) are kept where a program reads them (evidence's
``kind``); a person reading ``status`` or a sync line gets what the rule means, with
PROTOCOL.md's term in brackets where it has one. ``""`` marks errors whose message
already says it all (a wrong hub URL, the hub refusing the token)."""


def describe(error: BaseException) -> str:
    """An error as a person reads it: what went wrong in words, then the details.

    An error this table does not know is a bug, not a rule: it keeps its class name
    so a report of it says where to look."""
    for kind, words in _PLAIN_WORDS:
        if isinstance(error, kind):
            return f"{words}: {error}" if words else str(error)
    return f"{type(error).__name__}: {error}"
