"""Hashes that cannot have come from real content: the rule for every way a hash gets in.

A list entry is only useful if it is the hash of some real picture or file. Some
values are well-formed yet are not: an all-zero PDQ is what the reference hasher
writes when it cannot hash a picture at all (``hash.clear()`` below 5 pixels), the
MD5 of an empty file matches every empty upload on every platform, and an
all-zero or all-ones value is a placeholder or a bug. Listed, such a value makes
nodes flag innocent content by the thousand. ``degenerate_reason`` names them:

- **PDQ**: fewer than ``PDQ_MIN_BITS`` (64) or more than ``PDQ_MAX_BITS`` (192)
  of the 256 bits set, which covers all zeros and all ones. The reference hasher
  (``pdq/cpp/hashing/pdqhashing.cpp``, ``pdqBuffer16x16ToBits``) sets a bit for
  each of the 256 DCT coefficients above their median, so a picture's hash has
  128 bits set, fewer only when coefficients tie (it writes all zeros for a
  picture too small to hash, and a black one ties them all). The 1,480
  reference hashes in the project's test data (from facebook/ThreatExchange
  ``pdq/data``: the 30 its hashers printed for its test pictures and the 1,450
  of its matcher test set, ``needles.txt`` and ``haystack.txt``) have 112 to 142
  bits set: the bound keeps a wide margin on both sides
  (``tests/protocol/test_hashes.py``).
- **pHash**: fewer than ``PHASH_MIN_BITS`` (16) or more than ``PHASH_MAX_BITS``
  (48) of the 64 bits set, the same proportion. imagehash's ``phash`` (the node's
  pHash) sets a bit for each of 64 DCT coefficients above their median, so a
  picture's pHash has 32; a blank picture's has 1 (``8000000000000000``: only
  the DC term is above the median of the rest). Every reference picture in the
  test data hashes to 32 of 64 (and its PDQ to 128 of 256).
- **MD5, SHA-256**: all zeros, all ones, and the digest of the empty input (an
  empty file is not abusive content, and it is uploaded everywhere).

PDQ quality is a separate rule: a hash whose quality is given and below
``MIN_PDQ_QUALITY`` (50, the floor of python-threatexchange's ``PdqSignal``) is
refused too. A quality is the submitter's claim and cannot be checked from the
hash, so the structural rule above applies whatever quality is claimed.

This is an intake rule (what a hub takes in), not a verification rule
(PROTOCOL.md has no such rule): a published list that holds such a hash, say
one listed before the rule, verifies all the same on every node, and a removal
is never refused by it, so the entry can always be retracted. A node or auditor
may call ``degenerate_reason`` to point such an entry out; none refuses a list
for it.
"""

from __future__ import annotations

import hashlib

from protocol.errors import MalformedError
from protocol.hashtypes import pdq
from protocol.lists import hash_type

__all__ = [
    "EMPTY_INPUT_DIGESTS",
    "MIN_PDQ_QUALITY",
    "PDQ_MAX_BITS",
    "PDQ_MIN_BITS",
    "PHASH_MAX_BITS",
    "PHASH_MIN_BITS",
    "degenerate_reason",
]

MIN_PDQ_QUALITY = pdq.MIN_QUALITY
"""A PDQ hash with a quality below this is refused (too little structure to match on);
declared by the type (``protocol.hashtypes.pdq``)."""
PDQ_MIN_BITS = 64
"""A PDQ hash with fewer bits set than this is refused: the hasher sets about 128."""
PDQ_MAX_BITS = 192
"""A PDQ hash with more bits set than this is refused (256 − ``PDQ_MIN_BITS``)."""
PHASH_MIN_BITS = 16
"""A pHash with fewer bits set than this is refused: the hasher sets 32 of 64."""
PHASH_MAX_BITS = 48
"""A pHash with more bits set than this is refused (64 − ``PHASH_MIN_BITS``)."""

EMPTY_INPUT_DIGESTS: dict[str, bytes] = {
    "md5": hashlib.md5(b"", usedforsecurity=False).digest(),
    "sha256": hashlib.sha256(b"").digest(),
}
"""The digest of zero bytes, per exact hash type."""

_BIT_BOUNDS = {"pdq": (PDQ_MIN_BITS, PDQ_MAX_BITS), "phash": (PHASH_MIN_BITS, PHASH_MAX_BITS)}
_LABELS = {"pdq": "PDQ hash", "phash": "pHash", "md5": "MD5 hash", "sha256": "SHA-256 hash"}


def degenerate_reason(type_name: str, value: bytes) -> str | None:
    """Why ``value`` cannot be the ``type_name`` hash of real content, or ``None`` if it can.

    The reason is one line for the person who sent the hash, naming the rule and
    ending in "refused as degenerate".

    Raises:
        MalformedError: an unknown hash type, or a value of the wrong width.
    """
    kind = hash_type(type_name)
    if not isinstance(value, bytes) or len(value) != kind.length:
        raise MalformedError(f"a {kind.name} hash is {kind.length} bytes")
    label = _LABELS.get(kind.name, f"{kind.name} hash")
    bits = 8 * kind.length
    ones = int.from_bytes(value, "big").bit_count()
    bounds = _BIT_BOUNDS.get(kind.name)
    if bounds is not None:
        low, high = bounds
        if low <= ones <= high:
            return None
        hint = ""
        if kind.name == "pdq" and ones == 0:
            hint = "; all zeros is what it gives a picture too small to hash, or a black one"
        return (
            f"{label} has {ones} of {bits} bits set; a hash from the reference hasher "
            f"has about {bits // 2} ({low} to {high} accepted{hint}): refused as degenerate"
        )
    if ones == 0:
        return f"{label} is all zeros, a placeholder and not a real hash: refused as degenerate"
    if ones == bits:
        return f"{label} is all ones, a placeholder and not a real hash: refused as degenerate"
    if value == EMPTY_INPUT_DIGESTS.get(kind.name):
        return (
            f"{label} {value.hex()} is the digest of an empty file, which would match "
            "every empty upload: refused as degenerate"
        )
    return None
