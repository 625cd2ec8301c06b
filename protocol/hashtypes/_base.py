"""What one hash type declares: the record every edge derives its handling from.

A hash type is one ``HashType`` value written in one module of this package
(``pdq.py``, ``md5.py``, …). The wire facts (name, width, how it matches) are
PROTOCOL.md §6.1; the rest says how the edges treat it — what the hub takes in,
what the public page may send, how a node computes it, what python-threatexchange
calls it — so that adding a type is writing one module, not editing every edge.

The hash functions are plain callables whose heavy libraries (Pillow, numpy,
pdqhash, imagehash) are imported inside them: declaring a type costs nothing, and
``protocol`` stays a pure library that only the node ever asks to hash.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = [
    "NAME_PATTERN",
    "WORD_BYTES",
    "BytesHasher",
    "HashType",
    "PictureHasher",
    "SubmittedAs",
]

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]{0,15}")
"""A wire name: it follows ``hashhub.body.v1 `` on a body's first line and is read
back as a 16-character field of a root, so it is short, lowercase and has no space."""

WORD_BYTES = 8
"""A width is a whole number of 64-bit words: the node's matcher packs hashes into
``uint64`` columns (``node/matcher.py``), for exact and perceptual types alike."""

SubmittedAs = Literal["image", "video"]
"""What a person picks on the public submission page to send a hash of this type."""

PictureHasher = Callable[["Image"], tuple[bytes, int | None]]
"""From the RGB picture the node decoded, shrunk and hardened (``node/imaging.py``):
the hash, and the hasher's own quality score (0–100) where the type has one."""

BytesHasher = Callable[[bytes], bytes]
"""From the uploaded bytes as they are."""


@dataclass(frozen=True)
class HashType:
    """What a list's entries are, how they match, and how each edge treats them.

    Attributes:
        name: the wire name (``pdq``, ``phash``, ``md5``, ``sha256``).
        length: bytes per hash, a whole number of ``WORD_BYTES``.
        perceptual: matched by Hamming distance rather than equality.
        default_max_distance: the distance a list uses unless its declaration says
            otherwise; 0 for an exact type.
        label: the name people read (``PDQ``, ``MD5``) in messages and pages.
        min_quality: the hub refuses a hash whose claimed quality is below this;
            ``None`` for a type without a quality score.
        submitted_as: whether the public submission page takes this type, and for
            what (``image``, ``video``); ``None``: operators and trusted sources only.
        of_picture: how a node hashes a decoded picture, or ``None``.
        of_bytes: how a node hashes a file's raw bytes, or ``None``. A type has at
            most one of the two; with neither, a node matches it only when the
            platform sends the hash itself.
        signal: the python-threatexchange ``SignalType`` the bridge maps it to, as
            ``"module:Class"`` (resolved only by ``hashhub_tx``, so ``protocol``
            never imports threatexchange), or ``None`` when pytx has none.
        frames: a record's hash is the SHA-256 of a video's frames, published beside
            the records and matched by them (PROTOCOL.md §6.3, §6.4), not by the
            hash: the record matches nothing by distance, so the type is exact,
            and its lists hold entries (a frames file belongs to a record).
    """

    name: str
    length: int
    perceptual: bool
    default_max_distance: int
    label: str = ""
    min_quality: int | None = None
    submitted_as: SubmittedAs | None = None
    of_picture: PictureHasher | None = field(default=None, compare=False, repr=False)
    of_bytes: BytesHasher | None = field(default=None, compare=False, repr=False)
    signal: str | None = None
    frames: bool = False

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"hash type name {self.name!r} must match {NAME_PATTERN.pattern}")
        if self.length < WORD_BYTES or self.length % WORD_BYTES:
            raise ValueError(f"{self.name}: width {self.length} is not a multiple of {WORD_BYTES}")
        if self.perceptual:
            if not 0 <= self.default_max_distance <= 8 * self.length:
                raise ValueError(f"{self.name}: default distance outside 0..{8 * self.length}")
        elif self.default_max_distance != 0:
            raise ValueError(f"{self.name}: an exact type matches at distance 0 only")
        if self.min_quality is not None and not 0 <= self.min_quality <= 100:
            raise ValueError(f"{self.name}: a quality floor is 0 to 100")
        if self.submitted_as not in (None, "image", "video"):
            raise ValueError(f"{self.name}: submitted as 'image', 'video' or not at all")
        if self.of_picture is not None and self.of_bytes is not None:
            raise ValueError(f"{self.name}: hashed from the picture or the bytes, not both")
        if self.signal is not None and not re.fullmatch(r"[\w.]+:\w+", self.signal):
            raise ValueError(f"{self.name}: a signal is 'module:Class'")
        if self.frames and (
            self.perceptual or self.of_picture is not None or self.of_bytes is not None
        ):
            raise ValueError(
                f"{self.name}: a type of frames matches by its frames: exact, and hashed "
                "from a video, not a picture or the bytes"
            )
        if not self.label:
            object.__setattr__(self, "label", self.name)
