"""Hash types and list ids.

A list holds one hash type, so every hash in it has one fixed length and a body
line's width is known before it is read. The types themselves, one module each,
are ``protocol.hashtypes``; ``HASH_TYPES`` and ``HashType`` are its registry and
record, named here too because this is where the rest of the code imports them from.

List ids appear in URLs and file paths, so they are checked against
``[a-z0-9][a-z0-9._-]{0,63}`` (and may not contain ``..``) before they are used to
build either: ``..``, ``/`` and ``%2e`` never get in.
"""

from __future__ import annotations

import re

from protocol.errors import InvalidListIdError, MalformedError
from protocol.hashtypes import HASH_TYPES, HashType

__all__ = ["HASH_TYPES", "LIST_ID_PATTERN", "HashType", "hash_type", "validate_list_id"]

LIST_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def hash_type(name: str) -> HashType:
    """Look up a hash type by wire name; an unknown algorithm is refused, never guessed."""
    try:
        return HASH_TYPES[name]
    except (KeyError, TypeError) as e:
        raise MalformedError(f"unknown hash type {name!r}") from e


def validate_list_id(list_id: str) -> str:
    """Return ``list_id`` if it is safe to use in a path and a URL, else raise."""
    if not isinstance(list_id, str) or not LIST_ID_PATTERN.fullmatch(list_id) or ".." in list_id:
        raise InvalidListIdError(
            f"invalid list id {list_id!r}: must match [a-z0-9][a-z0-9._-]{{0,63}}"
        )
    return list_id
