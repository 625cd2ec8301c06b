"""The shape of a credential, checked before anything encodes or compares it."""

from __future__ import annotations

import pytest

from protocol.authshape import (
    MAX_SESSION_ID_LENGTH,
    MAX_TOKEN_LENGTH,
    MalformedCredentialError,
    NotBearerError,
    bearer_token,
    session_id,
)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("Bearer hhn_abc", "hhn_abc"),
        ("bearer  hhn_abc ", "hhn_abc"),
        ("Bearer " + "a" * MAX_TOKEN_LENGTH, "a" * MAX_TOKEN_LENGTH),
    ],
)
def test_a_bearer_token_of_the_right_shape_is_returned(header: str | None, token: str) -> None:
    assert bearer_token(header) == token


def test_the_message_never_repeats_the_token() -> None:
    with pytest.raises(MalformedCredentialError) as caught:
        bearer_token("Bearer hhn_s3cr3t\udcff")
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "hhn_abc", "\udcff", ""])
def test_another_scheme_is_no_bearer_token(header: str) -> None:
    with pytest.raises(NotBearerError, match="must be 'Bearer <token>'"):
        bearer_token(header)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer \udcff\udcfe",  # bytes that were not UTF-8, as the HTTP parser hands them on
        "Bearer é",
        "Bearer secret-part other-part",
        "Bearer a\x00",
        "Bearer ",
        "Bearer " + "a" * (MAX_TOKEN_LENGTH + 1),
    ],
)
def test_a_bearer_token_of_the_wrong_shape_is_malformed(header: str) -> None:
    with pytest.raises(MalformedCredentialError, match="visible ASCII") as caught:
        bearer_token(header)
    assert not isinstance(caught.value, NotBearerError)


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        ("abc-_123", "abc-_123"),
        (None, None),
        ("", None),
        ("\udcff", None),
        ("a b", None),
        ("a" * (MAX_SESSION_ID_LENGTH + 1), None),
    ],
)
def test_a_session_cookie_of_the_wrong_shape_is_no_session(
    cookie: str | None, expected: str | None
) -> None:
    assert session_id(cookie) == expected
