"""The degenerate-hash rule (``protocol.hashes``), against Meta's reference PDQ hashes.

``../shared/testdata/pdq`` holds the hashes Meta's reference hashers printed for its
test images (``expected.csv``) and the matcher test set of its C++ tools
(``reg-test-input/needles.txt``, ``haystack.txt``): none of them may be refused.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import MalformedError
from protocol.hashes import (
    EMPTY_INPUT_DIGESTS,
    PDQ_MAX_BITS,
    PDQ_MIN_BITS,
    PHASH_MAX_BITS,
    PHASH_MIN_BITS,
    degenerate_reason,
)

PDQ_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "pdq"


@cache
def reference_pdq_hashes() -> tuple[bytes, ...]:
    """Every PDQ hash in the reference data: ``expected.csv`` and the matcher test set."""
    found: list[bytes] = []
    # Bytes split on "\n", not text: the file names in expected.csv end in a carriage
    # return, which universal newlines would turn into a line break.
    csv_lines = (PDQ_DATA / "expected.csv").read_bytes().decode("utf-8").split("\n")
    assert csv_lines[0].strip() == "file,reference,pdq_hex"
    found += [bytes.fromhex(line.split(",")[2].strip()) for line in csv_lines[1:] if line.strip()]
    for name in ("needles.txt", "haystack.txt"):
        text = (PDQ_DATA / "reg-test-input" / name).read_text(encoding="utf-8")
        found += [bytes.fromhex(line.strip()) for line in text.split("\n") if line.strip()]
    return tuple(found)


def ones(value: bytes) -> int:
    return int.from_bytes(value, "big").bit_count()


def test_the_reference_data_is_what_the_bound_was_chosen_from() -> None:
    hashes = reference_pdq_hashes()
    assert len(hashes) == 30 + 100 + 1350
    counts = [ones(h) for h in hashes]
    # Measured: 112 to 142 bits set; the bound keeps more than 40 bits from either end.
    assert (min(counts), max(counts)) == (112, 142)
    assert min(counts) > PDQ_MIN_BITS + 40
    assert max(counts) < PDQ_MAX_BITS - 40


def test_no_reference_pdq_hash_is_refused() -> None:
    refused = [h.hex() for h in reference_pdq_hashes() if degenerate_reason("pdq", h) is not None]
    assert refused == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            bytes(32),
            "PDQ hash has 0 of 256 bits set; a hash from the reference hasher has about 128",
        ),
        (b"\xff" * 32, "PDQ hash has 256 of 256 bits set"),
        (b"\x01" * 32, "PDQ hash has 32 of 256 bits set"),
        (b"\xff" * 24 + b"\x7f" + bytes(7), "PDQ hash has 199 of 256 bits set"),
    ],
    ids=["all-zero", "all-one", "32-bits", "199-bits"],
)
def test_a_pdq_hash_far_from_half_its_bits_set_is_degenerate(value: bytes, expected: str) -> None:
    reason = degenerate_reason("pdq", value)
    assert reason is not None
    assert reason.startswith(expected)
    assert reason.endswith("refused as degenerate")


def test_the_all_zero_pdq_is_named_as_what_the_hasher_gives_a_picture_it_cannot_hash() -> None:
    assert "too small to hash, or a black one" in (degenerate_reason("pdq", bytes(32)) or "")


@given(st.binary(min_size=32, max_size=32))
def test_a_pdq_hash_is_refused_exactly_when_its_bit_count_is_out_of_bounds(value: bytes) -> None:
    inside = PDQ_MIN_BITS <= ones(value) <= PDQ_MAX_BITS
    assert (degenerate_reason("pdq", value) is None) == inside


@given(st.binary(min_size=8, max_size=8))
def test_a_phash_is_refused_exactly_when_its_bit_count_is_out_of_bounds(value: bytes) -> None:
    inside = PHASH_MIN_BITS <= ones(value) <= PHASH_MAX_BITS
    assert (degenerate_reason("phash", value) is None) == inside


@pytest.mark.parametrize(
    ("type_name", "width", "low", "high"),
    [("pdq", 32, PDQ_MIN_BITS, PDQ_MAX_BITS), ("phash", 8, PHASH_MIN_BITS, PHASH_MAX_BITS)],
)
def test_the_bit_count_bounds_are_inclusive(
    type_name: str, width: int, low: int, high: int
) -> None:
    for bits in (low - 1, low, high, high + 1):
        value = ((1 << bits) - 1).to_bytes(width, "big")
        assert (degenerate_reason(type_name, value) is None) == (low <= bits <= high), bits


@pytest.mark.parametrize(
    ("type_name", "value", "expected"),
    [
        ("md5", bytes(16), "MD5 hash is all zeros"),
        ("md5", b"\xff" * 16, "MD5 hash is all ones"),
        ("md5", hashlib.md5(b"", usedforsecurity=False).digest(), "digest of an empty file"),
        ("sha256", bytes(32), "SHA-256 hash is all zeros"),
        ("sha256", b"\xff" * 32, "SHA-256 hash is all ones"),
        ("sha256", hashlib.sha256(b"").digest(), "digest of an empty file"),
        ("phash", bytes(8), "pHash has 0 of 64 bits set"),
        ("phash", b"\xff" * 8, "pHash has 64 of 64 bits set"),
        ("phash", bytes.fromhex("8000000000000000"), "pHash has 1 of 64 bits set"),  # blank
    ],
)
def test_placeholders_blank_pictures_and_empty_files_are_degenerate(
    type_name: str, value: bytes, expected: str
) -> None:
    reason = degenerate_reason(type_name, value)
    assert reason is not None
    assert expected in reason
    assert reason.endswith("refused as degenerate")


def test_the_empty_input_digests_are_the_well_known_ones() -> None:
    assert EMPTY_INPUT_DIGESTS["md5"].hex() == "d41d8cd98f00b204e9800998ecf8427e"
    assert EMPTY_INPUT_DIGESTS["sha256"].hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize(
    ("type_name", "value"),
    [
        ("md5", hashlib.md5(b"a video", usedforsecurity=False).digest()),
        ("sha256", hashlib.sha256(b"a video").digest()),
        ("phash", bytes.fromhex("d1c4e6b28e9b3a65")),
        ("md5", b"\x01" * 16),  # exact hashes have no bit-count rule
    ],
)
def test_other_hashes_are_not_degenerate(type_name: str, value: bytes) -> None:
    assert degenerate_reason(type_name, value) is None


@pytest.mark.parametrize(
    ("type_name", "value"), [("md5", bytes(32)), ("pdq", bytes(31)), ("sha1", bytes(20))]
)
def test_a_wrong_width_or_unknown_type_is_malformed_not_judged(
    type_name: str, value: bytes
) -> None:
    with pytest.raises(MalformedError):
        degenerate_reason(type_name, value)


def test_the_node_hashes_every_reference_picture_to_half_its_bits_set() -> None:
    """The premise of the bounds, on the hashers the node uses (pdqhash, imagehash)."""
    from node.imaging import hash_image

    pictures = sorted(p for p in PDQ_DATA.rglob("*") if p.suffix in {".jpg", ".png"})
    assert len(pictures) == 30
    hashed = [hash_image(p.read_bytes()) for p in pictures]
    assert {ones(h.pdq) for h in hashed} == {128}
    assert {ones(h.phash) for h in hashed} == {32}
    assert all(degenerate_reason("phash", h.phash) is None for h in hashed)
