"""Errors of the follower, by who is at fault.

    FollowerError (hashhub's HashhubError)
    ├── FollowerConfigError  the follower asks for what the hub does not offer (operator)
    ├── FetchError           a download failed: network, HTTP status, deadline, or cap
    │   ├── NotPublishedError  the server answered 404: the file does not exist (yet)
    │   ├── NoTreeError        the hub URL serves no published tree (no root v1 there)
    │   └── HubAccessError     the hub refused the follower's token (401) or a list (403)
    ├── StorageError         the follower's own disk refused a write (full, or an I/O error)
    └── (protocol.ProtocolError, re-raised as is: the published data is at fault)

They are the follower's, not a role's, so that a node and a hub following another
hub tell the same faults apart with the same classes; a role's own errors may
subclass them (the node's ``NodeConfigError`` is a ``FollowerConfigError``). An
update that fails with ``FetchError`` is tried again later (a ``HubAccessError``
too, though only the hub operator can end it); one that fails with a
``ProtocolError`` is evidence and also tried again, since a mirror or the hub may
serve good data later. Neither changes what the follower enforces; nor does a
``StorageError``, whose transaction SQLite rolled back.

``describe`` words every one of them, and the protocol's, for the operator.
"""

from __future__ import annotations

import sqlite3

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
    "FetchError",
    "FollowerConfigError",
    "FollowerError",
    "HubAccessError",
    "NoTreeError",
    "NotPublishedError",
    "StorageError",
    "describe",
    "storage_error",
]


class FollowerError(HashhubError):
    """Root of the follower's own errors."""


class FollowerConfigError(FollowerError):
    """The follower's configuration asks for something the hub does not offer.

    Only the follower's operator can change it: a list the hub's root does not
    declare is nobody's fault but the configuration's, so it is no evidence.
    """


class FetchError(FollowerError):
    """A download failed (transport, status, deadline or cap)."""


class NotPublishedError(FetchError):
    """The server says the file does not exist."""


class NoTreeError(FetchError):
    """The hub URL has no root v1: it is not where a hub publishes its tree.

    Said in words of its own because the cause is almost always the configured URL
    (a wrong path or port), not a file the hub forgot to publish.
    """


class HubAccessError(FetchError):
    """The hub refused the follower's token (401) or its access to a list (403).

    Unlike the other fetch failures, waiting does not help: the hub operator has to
    enrol the follower, grant it the list or issue a new token. ``status`` is the
    HTTP status the hub answered, so the advice can name the right one.
    """

    def __init__(self, message: str, status: int, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        """The ``code`` of the hub's JSON error (``node_suspended``), if it sent one."""


class StorageError(FollowerError):
    """The follower's disk refused a write: full, or an I/O error. Nothing was changed."""


def storage_error(error: sqlite3.Error) -> StorageError | None:
    """The disk refusing a write, as a ``StorageError``; None for any other error.

    SQLITE_FULL ("database or disk is full": no space left, or the page limit) and
    SQLITE_IOERR ("disk I/O error": a write the kernel refused, such as one past a
    file size limit, or a failing disk) are faults of the machine, not of the data:
    SQLite rolls the transaction back and the same write succeeds once there is room.
    Anything else (a corrupt file, a bug) is left to propagate.
    """
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == sqlite3.SQLITE_FULL:
        return StorageError(f"disk full: {error}")
    if primary == sqlite3.SQLITE_IOERR:
        return StorageError(f"disk full or failing: {error}")
    return None


_PLAIN_WORDS: tuple[tuple[type[Exception], str], ...] = (
    # Most specific first: the first class an error is an instance of names it.
    (FollowerConfigError, ""),
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
