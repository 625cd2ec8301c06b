"""Reading a request strictly, for every route of the hub's API.

One module, so that every route refuses the same way: a malformed path segment,
bearer token, body, field or query parameter is a ``HubError`` naming what is
wrong (mostly 400 ``invalid_request``), raised before anything reaches the
database. Path segments are checked here before any path is built from them, so
``..``, ``/`` or ``%2e`` never reach a file lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aiohttp import hdrs, web

from hub.errors import InvalidRequest, Unauthorized
from hub.http import read_body
from hub.jsonbody import parse_json_body
from protocol import ProtocolError, PublicKey, validate_list_id
from protocol.ack import NODE_ID_PATTERN
from protocol.authshape import MalformedCredentialError, bearer_token

__all__ = [
    "MAX_LIMIT",
    "MAX_VERSION",
    "Fields",
    "bearer",
    "check_list_id",
    "check_node_id",
    "check_sha256",
    "check_version",
    "json_object",
    "known_query",
    "optional_query",
    "public_key_of",
    "query_limit",
    "require_json",
]

MAX_VERSION = 2**53 - 1
MAX_LIMIT = 1000

_VERSION = re.compile(r"[1-9][0-9]{0,15}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def bearer(request: web.Request) -> str | None:
    """The bearer token of the request, None without one; a malformed header is a 401.

    The shape is checked by ``protocol.authshape`` before anything encodes the
    token (the limits middleware has already answered a malformed one).
    """
    try:
        return bearer_token(request.headers.get(hdrs.AUTHORIZATION))
    except MalformedCredentialError as e:
        raise Unauthorized(str(e)) from None


def check_list_id(value: str) -> str:
    """A list id as ``protocol.validate_list_id`` accepts it; else a 400."""
    try:
        return validate_list_id(value)
    except ProtocolError as e:
        raise InvalidRequest(str(e)) from e


def check_version(value: str) -> int:
    """A version: a decimal integer from 1 to 2^53-1, without leading zeros."""
    if not _VERSION.fullmatch(value) or int(value) > MAX_VERSION:
        raise InvalidRequest("a version is a decimal integer from 1 to 2^53-1")
    return int(value)


def check_sha256(value: str) -> str:
    """A body address: 64 lowercase hex digits."""
    if not _SHA256.fullmatch(value):
        raise InvalidRequest("a body address is 64 lowercase hex digits")
    return value


def check_node_id(value: str) -> str:
    """A node id as PROTOCOL.md spells it (``protocol.ack.NODE_ID_PATTERN``), never ``..``."""
    if not NODE_ID_PATTERN.fullmatch(value) or ".." in value:
        raise InvalidRequest("a node id matches [a-z0-9][a-z0-9._-]{0,63}")
    return value


def require_json(request: web.Request) -> None:
    """A 415 unless the body is declared ``application/json``."""
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(
            text=f"the body must be application/json, not {request.content_type[:80]!r}"
        )


async def json_object(request: web.Request, cap: int, *, optional: bool = False) -> dict[str, Any]:
    """A JSON object body of at most ``cap`` bytes (``optional``: an empty body is ``{}``)."""
    if optional and not request.body_exists:
        return {}
    require_json(request)
    data = await read_body(request, cap)
    if optional and not data.strip():
        return {}
    try:
        value = await parse_json_body(data)  # a large body: off the event loop, in pieces
    # ValueError: besides UnicodeDecodeError and JSONDecodeError, an integer of more
    # digits than int() reads (4300), which would otherwise answer 500.
    except (ValueError, RecursionError) as e:
        raise InvalidRequest(f"the body is not JSON: {e}") from e
    if not isinstance(value, dict):
        raise InvalidRequest("the body must be a JSON object")
    return value


class Fields:
    """Strict reading of a JSON object's fields: exact types, unknown keys refused."""

    def __init__(self, value: dict[str, Any], allowed: set[str]) -> None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise InvalidRequest(f"unknown field(s) {unknown}")
        self.value = value

    def text(self, name: str, *, default: str | None = None, max_len: int = 256) -> str:
        value = self.value.get(name, default)
        if not isinstance(value, str) or len(value) > max_len:
            raise InvalidRequest(f"{name!r} must be a string of at most {max_len} characters")
        return value

    def integer(self, name: str, *, minimum: int, maximum: int) -> int | None:
        value = self.value.get(name)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not (minimum <= value <= maximum)
        ):
            raise InvalidRequest(f"{name!r} must be an integer from {minimum} to {maximum}")
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.value.get(name, default)
        if not isinstance(value, bool):
            raise InvalidRequest(f"{name!r} must be true or false")
        return value

    def strings(self, name: str, *, required: bool = True) -> list[str]:
        """A list of strings; an optional one may be left out, but a ``null`` is refused."""
        if name not in self.value and not required:
            return []
        value = self.value.get(name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRequest(f"{name!r} must be a list of strings")
        return value


def known_query(request: web.Request, *names: str) -> None:
    """Refuse a query parameter the route does not take.

    A misspelt parameter (``?limt=5``, ``?nod=…``) ignored silently would answer a
    question the operator did not ask; it is a 400 naming the parameter instead.
    """
    unknown = sorted(set(request.query) - set(names))
    if unknown:
        raise InvalidRequest(
            f"unknown query parameter {unknown[0][:64]!r}; this route takes {', '.join(names)}"
        )


def query_limit(request: web.Request) -> int:
    """``?limit=``: rows per page, 1 to ``MAX_LIMIT`` (default 100)."""
    raw = request.query.get("limit", "100")
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def optional_query(request: web.Request, name: str, check: Callable[[str], object]) -> str | None:
    """A query parameter passed through ``check`` when it is given; None when it is not."""
    value = request.query.get(name)
    if value is not None:
        check(value)
    return value


_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


def public_key_of(text: str) -> PublicKey:
    """An Ed25519 public key given as SubjectPublicKeyInfo PEM or 64 hex digits."""
    try:
        if _HEX_KEY.fullmatch(text.strip()):
            return PublicKey(bytes.fromhex(text.strip()))
        return PublicKey.from_pem(text.encode("ascii"))
    except (ProtocolError, UnicodeEncodeError) as e:
        raise InvalidRequest(f"'public_key' is not an Ed25519 public key (PEM or hex): {e}") from e
