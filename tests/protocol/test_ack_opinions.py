"""Opinions in acks (PROTOCOL.md §10.1, §10.2 rule 11): what a platform says of an entry,
signed with the ack that carries it.

The vectors (``ack-opinions``, ``neg-ack-opinion-*``) hold each parse rule; these tests
hold what a vector cannot: the bound on how many one ack carries, that an ack without
opinions keeps the bytes it had before opinions existed, and that the opinions are
covered by the node's signature like every other member.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from protocol import (
    AppliedVersion,
    Counts,
    MalformedError,
    Opinion,
    SignatureError,
    SigningKey,
    StateDigest,
    sign_ack,
    verify_ack,
)
from protocol.ack import MAX_OPINIONS, Ack

KEY = SigningKey.from_seed(bytes(range(32)))
SENT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
APPLIED = AppliedVersion(3, bytes(32), StateDigest(2, "ab" * 32))


def signed(opinions: dict[str, Opinion] | None) -> tuple[bytes, bytes]:
    return sign_ack(
        key=KEY,
        node="platform-a",
        list_id="ncii-pdq",
        seq=4,
        sent=SENT,
        origin="hub.example/lists/ncii-pdq",
        applied=APPLIED,
        counts=Counts(checked=10, matched=2),
        opinions=opinions,
    )


def test_opinions_are_signed_and_read_back() -> None:
    opinions = {
        "e-one": Opinion("confirmed", "blocked"),
        "e-two": Opinion("disputed", "not_the_content"),
        "e-three": Opinion("none"),
    }
    data, sig = signed(opinions)
    ack = verify_ack(data, sig, node_key=KEY.public, origin_prefix="hub.example")
    assert dict(ack.opinions) == opinions
    assert b'"opinions":{"e-one":{"position":"confirmed","reason":"blocked"}' in data


def test_an_ack_without_opinions_has_no_opinions_member() -> None:
    """Its bytes are what an ack was before opinions: a hub or auditor of 1.1 reads it."""
    data, _ = signed(None)
    assert b"opinions" not in data
    assert signed({}) == signed(None)


def test_an_opinion_changed_after_signing_breaks_the_signature() -> None:
    data, sig = signed({"e-one": Opinion("confirmed", "blocked")})
    forged = data.replace(b'"confirmed","reason":"blocked"', b'"disputed","reason":"benign"')
    assert forged != data
    with pytest.raises(SignatureError):
        verify_ack(forged, sig, node_key=KEY.public, origin_prefix="hub.example")


def test_one_ack_carries_at_most_max_opinions() -> None:
    many = {f"e-{n:05d}": Opinion("none") for n in range(MAX_OPINIONS)}
    data, _ = signed(many)
    assert len(Ack.from_bytes(data).opinions) == MAX_OPINIONS
    with pytest.raises(MalformedError, match="more than 10000 opinions"):
        signed({**many, "e-extra": Opinion("none")})


@pytest.mark.parametrize(
    ("position", "reason", "message"),
    [
        ("agreed", "blocked", "is not one of confirmed, disputed, none"),
        ("confirmed", "benign", "reason is one of actioned, blocked"),
        ("disputed", None, "reason is one of not_the_content, benign, other"),
        ("none", "other", "gives no reason"),
    ],
)
def test_a_position_takes_only_its_own_reasons(
    position: str, reason: str | None, message: str
) -> None:
    with pytest.raises(MalformedError, match=message):
        Opinion(position, reason)
