"""Errors of the hub, each with the HTTP status and code it is reported with.

    HubError (an edge.errors.ApiError, so a HashhubError)
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

``HubError`` is an ``edge.errors.ApiError``, the one error with a status and a
code that the hub and the node share (and the one ``edge.http.error_middleware``
answers): a class here only names a status, so ``NotFound("no list x")`` needs no
status or code spelt out where it is raised. ``HTTP_CODES`` gives the statuses
aiohttp raises itself (a 405, a 404 for an unknown path) the same codes.
"""

from __future__ import annotations

from edge.errors import ApiError
from protocol.ack import ACK_LAST_SEQ_HEADER

__all__ = [
    "HTTP_CODES",
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


class HubError(ApiError):
    """Root of the hub's own errors; a subclass's ``status`` and ``code`` are its answer."""

    status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(self.status, self.code, message)


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


class NodeSuspended(Forbidden):
    """The hub operator suspended the node: every request is refused until resumed."""

    code = "node_suspended"


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

    def headers(self) -> dict[str, str]:
        return {ACK_LAST_SEQ_HEADER: str(self.last_seq)}


class PayloadTooLarge(HubError):
    status = 413
    code = "payload_too_large"


class Unprocessable(HubError):
    status = 422
    code = "unprocessable"


HTTP_CODES: dict[int, str] = {
    error.status: error.code
    for error in (
        InvalidRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        Unprocessable,
    )
}
"""The code of each status, for an aiohttp ``HTTPException`` of that status."""
