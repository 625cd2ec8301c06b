"""Where every published file lives, and how large each may be.

The hub's published tree is plain files, so any web server, object store or CDN
can serve it. Every path is built here, from a checked list id and integers, so
no caller ever joins an unchecked string into a path or URL. Everything but
``lists/<id>/checkpoint`` is immutable once written.

Caps (``Limits``) are data, as in python-tuf's ``UpdaterConfig``: one frozen
dataclass with documented defaults, passed in, overridden in tests. A reader stops
at the cap and fails; it never reads "just a bit more".
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol._fields import is_hex64
from protocol.errors import LimitError, MalformedError
from protocol.lists import validate_list_id

__all__ = [
    "Limits",
    "body_path",
    "checkpoint_path",
    "frames_path",
    "header_path",
    "opinions_path",
    "provenance_path",
    "root_path",
    "sig_path",
    "snapshot_path",
]


def _version(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MalformedError(f"{what} must be an integer ≥ 1, got {value!r}")
    return value


def root_path(version: int) -> str:
    return f"root/{_version(version, 'root version')}.json"


def sig_path(path: str) -> str:
    """The detached-signature sidecar of a signed file."""
    return path + ".sig"


def checkpoint_path(list_id: str) -> str:
    return f"lists/{validate_list_id(list_id)}/checkpoint"


def header_path(list_id: str, version: int) -> str:
    return f"lists/{validate_list_id(list_id)}/delta/{_version(version, 'version')}.json"


def body_path(list_id: str, sha256: str) -> str:
    if not is_hex64(sha256):
        raise MalformedError("body address must be 64 lowercase hex digits")
    return f"lists/{validate_list_id(list_id)}/body/{sha256}.txt"


def opinions_path(list_id: str, sha256: str) -> str:
    """An opinion summary, addressed by its SHA-256 like a body (PROTOCOL.md §10.7)."""
    if not is_hex64(sha256):
        raise MalformedError("opinion summary address must be 64 lowercase hex digits")
    return f"lists/{validate_list_id(list_id)}/opinions/{sha256}.json"


def provenance_path(list_id: str, sha256: str) -> str:
    """A version's provenance document, addressed by its SHA-256 (PROTOCOL.md §7.5)."""
    if not is_hex64(sha256):
        raise MalformedError("provenance address must be 64 lowercase hex digits")
    return f"lists/{validate_list_id(list_id)}/provenance/{sha256}.json"


def frames_path(list_id: str, sha256: str) -> str:
    """A ``vpdq`` record's frames, addressed by the record's hash (PROTOCOL.md §6.3)."""
    if not is_hex64(sha256):
        raise MalformedError("frames address must be 64 lowercase hex digits")
    return f"lists/{validate_list_id(list_id)}/frames/{sha256}.bin"


def snapshot_path(list_id: str, version: int) -> str:
    return f"lists/{validate_list_id(list_id)}/snapshot/{_version(version, 'version')}.bin"


@dataclass(frozen=True)
class Limits:
    """Caps on what a verifier reads, in bytes unless named otherwise.

    Attributes:
        root_bytes: one root version (64 KiB).
        checkpoint_bytes: one checkpoint note (16 KiB).
        header_bytes: one delta header (8 KiB).
        sig_bytes: one signature sidecar (32 KiB: the 128 signatures a sidecar may hold
            take under 22.3 KiB, so a root rotation of two full root roles fits).
        max_root_walk: root versions walked in one update before giving up.
        fetch_timeout: seconds allowed for one download, start to end.
    """

    root_bytes: int = 64 * 1024
    checkpoint_bytes: int = 16 * 1024
    header_bytes: int = 8 * 1024
    sig_bytes: int = 32 * 1024
    max_root_walk: int = 256
    fetch_timeout: float = 30.0

    def check(self, what: str, data: bytes, cap: int) -> bytes:
        """Return ``data`` if within ``cap`` bytes, else raise ``LimitError``."""
        if len(data) > cap:
            raise LimitError(f"{what}: {len(data)} bytes exceeds the cap of {cap}")
        return data
