"""Errors of the hub, each with the HTTP status and code it is reported with.

    HubError (hashhub's HashhubError)
    ├── InvalidRequest      400  the request or the input is malformed
    │   └── IntakeError     400  an import file has a bad line (carries the line number)
    ├── Unauthorized        401  no token, or a token the hub does not know
    ├── Forbidden           403  a valid token without the right role or list grant
    ├── NotFound            404  no such list, node, file or key
    ├── Conflict            409  an existing id, a second root for one size
    │   └── SeqConflict     409  a replayed ``seq`` (header ``Hashhub-Last-Seq``)
    ├── PayloadTooLarge     413  a request body over its cap
    └── Unprocessable       422  well-formed but refused by a rule (bad signature, unknown list)

The CLI turns every ``HubError`` into a one-line ``ClickException``; the HTTP app
turns it into the one JSON error shape. Anything else is a bug and a 500.
"""

from __future__ import annotations

from protocol.errors import HashhubError

__all__ = [
    "Conflict",
    "Forbidden",
    "HubError",
    "IntakeError",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "SeqConflict",
    "Unauthorized",
    "Unprocessable",
]


class HubError(HashhubError):
    status = 500
    code = "internal"


class InvalidRequest(HubError):
    status = 400
    code = "invalid_request"


class IntakeError(InvalidRequest):
    code = "invalid_import"

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class Unauthorized(HubError):
    status = 401
    code = "unauthorized"


class Forbidden(HubError):
    status = 403
    code = "forbidden"


class NotFound(HubError):
    status = 404
    code = "not_found"


class Conflict(HubError):
    status = 409
    code = "conflict"


class SeqConflict(Conflict):
    """An ack whose ``seq`` the node already used: the answer carries the last one.

    A node that lost its database starts again at 1; told the hub's last ``seq``
    (header ``Hashhub-Last-Seq``), it re-signs its queued acks above it instead of
    being refused until its counter passes the old one.
    """

    code = "seq_conflict"

    def __init__(self, message: str, *, last_seq: int) -> None:
        super().__init__(message)
        self.last_seq = last_seq


class PayloadTooLarge(HubError):
    status = 413
    code = "payload_too_large"


class Unprocessable(HubError):
    status = 422
    code = "unprocessable"
