"""The delta body format and the list state, rule by rule."""

from __future__ import annotations

import hashlib

import pytest

from protocol import (
    BodyRef,
    BodyRuleError,
    ConsistencyError,
    DeltaBody,
    ListState,
    MalformedError,
    StateDigest,
    StateMismatchError,
)
from protocol.state import EMPTY_DIGEST


def h(n: int, width: int = 16) -> bytes:
    """The ``n``-th test hash, in ascending order of ``n``."""
    return n.to_bytes(width, "big")


HEAD = b"hashhub.body.v1 md5\n"


def line(sign: str, n: int) -> bytes:
    return sign.encode() + h(n).hex().encode() + b"\n"


# -- DeltaBody: round trip ----------------------------------------------------------------


def test_body_round_trips_through_its_bytes() -> None:
    body = DeltaBody("md5", (h(1), h(5)), (h(2), h(3), h(9)))
    data = body.to_bytes()
    assert data == HEAD + line("-", 1) + line("-", 5) + line("+", 2) + line("+", 3) + line("+", 9)
    assert DeltaBody.from_bytes(data, "md5") == body


def test_empty_body_is_just_the_format_line() -> None:
    body = DeltaBody("md5", (), ())
    assert body.to_bytes() == HEAD
    assert DeltaBody.from_bytes(HEAD, "md5") == body


def test_body_ref_records_hash_length_and_counts() -> None:
    body = DeltaBody("md5", (h(1),), (h(2), h(3)))
    data = body.to_bytes()
    assert body.ref() == BodyRef(hashlib.sha256(data).hexdigest(), len(data), adds=2, removes=1)


def test_build_sorts_and_removes_duplicates() -> None:
    body = DeltaBody.build("md5", [h(4), h(1), h(4)], [h(9), h(2)])
    assert body == DeltaBody("md5", (h(1), h(4)), (h(2), h(9)))


@pytest.mark.parametrize(
    ("kind", "width"), [("pdq", 32), ("phash", 8), ("md5", 16), ("sha256", 32)]
)
def test_body_width_follows_the_hash_type(kind: str, width: int) -> None:
    body = DeltaBody(kind, (h(1, width),), (h(2, width),))
    assert DeltaBody.from_bytes(body.to_bytes(), kind) == body


# -- DeltaBody.from_bytes: one rule each ---------------------------------------------------

GOOD = HEAD + line("-", 1) + line("-", 5) + line("+", 2) + line("+", 9)

BROKEN_BODIES = {
    "empty": b"",
    "format-line-of-another-version": GOOD.replace(b"body.v1", b"body.v2"),
    "format-line-of-another-type": GOOD.replace(b" md5\n", b" sha256\n", 1),
    "format-line-missing": GOOD[len(HEAD) :],
    "no-final-newline": GOOD[:-1],
    "crlf-line-endings": GOOD.replace(b"\n", b"\r\n"),
    "blank-line": HEAD + line("-", 1) + b"\n" + line("+", 2),
    "trailing-space": HEAD + line("-", 1)[:-1] + b" \n",
    "uppercase-hex": HEAD + line("+", 0xABCDEF).upper(),
    "too-short": HEAD + b"+" + b"ab" * 15 + b"\n",
    "too-long": HEAD + b"+" + b"ab" * 17 + b"\n",
    "no-sign": HEAD + h(1).hex().encode() + b"\n",
    "unknown-sign": HEAD + b"*" + h(1).hex().encode() + b"\n",
    "removal-after-addition": HEAD + line("+", 2) + line("-", 1),
    "removals-descending": HEAD + line("-", 5) + line("-", 1),
    "additions-descending": HEAD + line("+", 9) + line("+", 2),
    "duplicate-removal": HEAD + line("-", 1) + line("-", 1),
    "duplicate-addition": HEAD + line("+", 2) + line("+", 2),
    "removed-and-added": HEAD + line("-", 3) + line("+", 3),
    "nul-byte": HEAD + line("+", 2)[:-1] + b"\x00\n",
    "non-ascii-digit": HEAD + b"+" + "٣".encode() * 16 + b"\n",
}


@pytest.mark.parametrize("data", BROKEN_BODIES.values(), ids=BROKEN_BODIES.keys())
def test_body_breaking_a_rule_is_refused(data: bytes) -> None:
    assert DeltaBody.from_bytes(GOOD, "md5")  # the unbroken form parses
    with pytest.raises(BodyRuleError):
        DeltaBody.from_bytes(data, "md5")


def test_body_for_an_unknown_hash_type_is_refused() -> None:
    with pytest.raises(MalformedError):
        DeltaBody.from_bytes(b"hashhub.body.v1 sha1\n", "sha1")


def test_body_constructor_refuses_wrong_width_and_disorder() -> None:
    with pytest.raises(BodyRuleError):
        DeltaBody("md5", (h(1, 8),), ())
    with pytest.raises(BodyRuleError):
        DeltaBody("md5", (), (h(2), h(1)))
    with pytest.raises(BodyRuleError):
        DeltaBody("md5", (h(1),), (h(1),))


def test_body_whose_counts_differ_from_its_ref_is_refused() -> None:
    body = DeltaBody("md5", (h(1),), (h(2),))
    ref = body.ref()
    body.check_ref(ref)
    with pytest.raises(ConsistencyError):
        body.check_ref(BodyRef(ref.sha256, ref.length, adds=2, removes=0))


# -- ListState ------------------------------------------------------------------------------


def test_state_digest_is_sha256_of_sorted_concatenation() -> None:
    state = ListState.from_hashes(16, [h(3), h(1), h(2), h(1)])
    data = h(1) + h(2) + h(3)
    assert state.to_bytes() == data
    assert state.digest() == StateDigest(3, hashlib.sha256(data).hexdigest())
    assert ListState(16).digest() == EMPTY_DIGEST == StateDigest(0, hashlib.sha256().hexdigest())


def test_from_hashes_refuses_wrong_width() -> None:
    with pytest.raises(MalformedError):
        ListState.from_hashes(16, [h(1), h(2, 8)])


def test_snapshot_round_trips() -> None:
    state = ListState.from_hashes(16, [h(1), h(7), h(4)])
    assert ListState.from_snapshot(16, state.to_bytes()) == state
    assert ListState.from_snapshot(16, b"") == ListState(16)


@pytest.mark.parametrize(
    "data",
    [h(2) + h(1), h(1) + h(1), h(1) + h(2)[:-1], h(1) + b"\x00"],
    ids=["unsorted", "duplicate", "short-record", "trailing-byte"],
)
def test_snapshot_breaking_a_rule_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedError):
        ListState.from_snapshot(16, data)


def test_apply_removes_and_adds_in_order() -> None:
    state = ListState.from_hashes(16, [h(1), h(3), h(5)])
    after = state.apply([h(3)], [h(0), h(4), h(9)])
    assert list(after) == [h(0), h(1), h(4), h(5), h(9)]
    assert list(state) == [h(1), h(3), h(5)]  # the base is unchanged


def test_apply_refuses_removing_an_absent_hash() -> None:
    state = ListState.from_hashes(16, [h(1), h(3)])
    with pytest.raises(StateMismatchError):
        state.apply([h(2)], [])


def test_apply_refuses_adding_a_present_hash() -> None:
    state = ListState.from_hashes(16, [h(1), h(3)])
    with pytest.raises(StateMismatchError):
        state.apply([], [h(3)])


def test_state_membership() -> None:
    state = ListState.from_hashes(16, [h(1), h(3)])
    assert h(3) in state
    assert h(2) not in state
    assert h(3, 8) not in state
    assert "not bytes" not in state
