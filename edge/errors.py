"""The one error a hub or a node answers an HTTP request with: a status, a code, a message.

Both services answer every refusal in one JSON shape (``edge.http.error_response``)::

    {"error": {"status": 404, "code": "not_found", "message": "…"}}

``ApiError`` is what their code raises to get one. It keeps the status and the
machine-readable code on the exception, so the middleware that turns it into a
response (``edge.http.error_middleware``) needs no table of classes, and a client
can rely on the code whichever service answered. The hub gives each status a
subclass with the status and code as class attributes (``hub.errors``:
``NotFound("no list x")``); the node raises ``ApiError`` itself with both spelt
out. An error may carry headers of its own (``headers``): the hub's 409
``seq_conflict`` says which ``seq`` it last accepted.

No aiohttp here: the hub's core raises these errors, and its command line turns
them into one-line messages, without an HTTP server in sight.
"""

from __future__ import annotations

from typing import Any

from protocol.errors import HashhubError

__all__ = ["ApiError", "error_body"]


class ApiError(HashhubError):
    """A request refused with an HTTP ``status``, a machine-readable ``code`` and a message.

    The class attributes are the defaults of a subclass that stands for one status
    (``status = 404``, ``code = "not_found"``); the constructor's arguments set
    them for one error.
    """

    status: int = 500
    code: str = "internal"

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    def headers(self) -> dict[str, str]:
        """Headers the response to this error carries besides the JSON body (none here)."""
        return {}


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """The JSON body of every error response: ``{"error": {"status", "code", "message"}}``."""
    return {"error": {"status": status, "code": code, "message": message}}
