"""The hash types, one module each, and the registry every edge derives from.

Each module of this package declares one ``HashType`` (``pdq.py``, ``phash.py``,
``md5.py``, ``sha256.py``, ``vpdq.py``) and ``TYPES`` below registers it. Everything that offers,
checks, stores or computes hash types reads ``HASH_TYPES`` rather than naming
types: the hub's intake quality floor and its public submission page, the
database's list of known types, the CLIs' choices, the node's hashing of uploads,
the bridge's python-threatexchange signals. The OpenAPI documents list the names
too, and a test holds them to the registry. How to add a type:
docs/hash-types.md.

``HASH_TYPES`` is one dictionary for the life of the process, filled in
``TYPES`` order; ``register`` adds to it in place, so every module that imported
it sees a type registered later (a test registers one of its own and removes it).
"""

from __future__ import annotations

from protocol.hashtypes import md5, pdq, phash, sha256, vpdq
from protocol.hashtypes._base import (
    NAME_PATTERN,
    WORD_BYTES,
    BytesHasher,
    HashType,
    PictureHasher,
    SubmittedAs,
)

__all__ = [
    "HASH_TYPES",
    "NAME_PATTERN",
    "TYPES",
    "WORD_BYTES",
    "BytesHasher",
    "HashType",
    "PictureHasher",
    "SubmittedAs",
    "picture_types",
    "register",
    "submission_types",
]

TYPES: tuple[HashType, ...] = (pdq.PDQ, phash.PHASH, md5.MD5, sha256.SHA256, vpdq.VPDQ)
"""The hash types this version ships, in the order they are listed everywhere."""

HASH_TYPES: dict[str, HashType] = {}
"""Every registered hash type by wire name."""


def register(kind: HashType) -> HashType:
    """Add ``kind`` to ``HASH_TYPES``; a name already taken is refused, never replaced.

    Replacing a type would change the width or matching of lists already declared
    under its name, which PROTOCOL.md §16 forbids: a new type is a new name.
    """
    if not isinstance(kind, HashType):
        raise TypeError(f"{kind!r} is not a HashType")
    if kind.name in HASH_TYPES:
        raise ValueError(f"hash type {kind.name!r} is already registered")
    HASH_TYPES[kind.name] = kind
    return kind


def submission_types() -> dict[str, SubmittedAs]:
    """The types the public submission page takes, by wire name: what each is sent for."""
    return {
        name: kind.submitted_as
        for name, kind in HASH_TYPES.items()
        if kind.submitted_as is not None
    }


def picture_types() -> list[HashType]:
    """The types a node computes from a decoded picture."""
    return [kind for kind in HASH_TYPES.values() if kind.of_picture is not None]


for _kind in TYPES:
    register(_kind)
