"""The shape of a credential as it arrives: bearer tokens and session cookies (ADR 15).

A credential comes from outside in an HTTP header, so before anything hashes,
encodes or compares it, its shape is checked here, once, for the hub and the
node alike. HTTP parsers hand header bytes that are not UTF-8 on as lone
surrogates (``"\\udcff"``); such a value, or a space, a control character, or
something longer than the limit, cannot be any token or session id the hub or
the node ever issued (they issue printable ASCII only: ``hhn_``/``hho_``/``hhl_``
and 43 URL-safe base64 characters, session ids of 43), so it is refused as
malformed without being looked at further: never an exception from
``str.encode`` or ``hmac.compare_digest`` deep inside a handler.

- ``bearer_token(header)``: the token of an ``Authorization`` header, ``None``
  without one; ``NotBearerError`` for another scheme (no bearer token was
  sent: a route that needs none ignores it, one that needs one refuses it);
  ``MalformedCredentialError`` for a bearer token of the wrong shape, which
  every route refuses.
- ``session_id(cookie)``: a session cookie's value, or ``None`` when it is
  absent, empty or of the wrong shape (a cookie is not an authentication
  attempt: a wrong one is simply no session).

The allowed characters are ``%x21-7E`` (visible ASCII), a superset of RFC 6750's
``b64token``, so that a hand-written token of the node's API still works.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_SESSION_ID_LENGTH",
    "MAX_TOKEN_LENGTH",
    "MalformedCredentialError",
    "NotBearerError",
    "bearer_token",
    "is_credential_shaped",
    "session_id",
]

MAX_TOKEN_LENGTH = 256
"""A longer bearer token is malformed: nothing issued is near this long."""
MAX_SESSION_ID_LENGTH = 128
"""A longer session cookie is no session."""

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


class MalformedCredentialError(ValueError):
    """An ``Authorization`` header that cannot hold any token this service issued."""


class NotBearerError(MalformedCredentialError):
    """An ``Authorization`` header of another scheme (``Basic …``): no bearer token at all."""


def is_credential_shaped(value: str, max_length: int = MAX_TOKEN_LENGTH) -> bool:
    """Whether ``value`` is 1 to ``max_length`` visible ASCII characters."""
    return 0 < len(value) <= max_length and _VISIBLE_ASCII.fullmatch(value) is not None


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; ``None`` without a header.

    Raises:
        NotBearerError: another scheme.
        MalformedCredentialError: no token after ``Bearer``, or a token that is not
            1 to ``MAX_TOKEN_LENGTH`` visible ASCII characters (the message never
            repeats the token).
    """
    if header is None:
        return None
    scheme, _, token = header.strip(" \t").partition(" ")
    if scheme.lower() != "bearer":
        raise NotBearerError("the Authorization header must be 'Bearer <token>'")
    token = token.strip(" \t")
    if not is_credential_shaped(token):
        raise MalformedCredentialError(
            f"a bearer token is 1 to {MAX_TOKEN_LENGTH} visible ASCII characters"
        )
    return token


def session_id(cookie: str | None) -> str | None:
    """A session cookie's value if it could be a session id this service issued, else ``None``."""
    if cookie is None or not is_credential_shaped(cookie, MAX_SESSION_ID_LENGTH):
        return None
    return cookie
