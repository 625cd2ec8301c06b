"""Hashing uploads: PDQ and pHash of the picture, MD5 and SHA-256 of the bytes.

Which hashes are taken, and how, is the registry's (``protocol.hashtypes``): every
type with an ``of_picture`` is computed from the picture this module decodes, every
type with an ``of_bytes`` from the bytes as uploaded. This module owns what comes
before a hash function: the decoding, the limits and the hardening below.

What is hashed is the picture **as a viewer shows it**: the EXIF ``Orientation`` tag
is applied first (``ImageOps.exif_transpose``), so a photo stored sideways with a tag
that says "rotate 90°" hashes like the upright photo, and so like an upright copy
of it without the tag. Only the first frame of an animated image is hashed. Alpha
is dropped (the colour channels are hashed as they are), as the reference PDQ
hasher does.

**Speed.** PDQ reduces any picture to 64 × 64 luminance samples before its DCT, so
decoding a 12-megapixel photo in full is wasted work. Meta's reference hasher
(``pdq/cpp/io/pdqio.cpp``) first resizes anything larger than 512 px to 512 × 512
for that reason. We do the same in two steps that keep the aspect ratio: Pillow's
``draft()`` asks the JPEG decoder for a 1/2, 1/4 or 1/8 scale decode (the smallest
that keeps both sides at least ``DRAFT_MIN_SIDE`` = 256 px, four times PDQ's 64
samples), which skips most of the decoder's work, then an area-averaging (box)
shrink brings the longest side to at most ``PDQ_MAX_SIDE`` = 512 px. The hash stays
within a few bits of the full-size hash (``tests/node/test_imaging.py``) and within
10 bits of the reference hashes of Meta's test images
(``tests/node/test_pdq_conformance.py``). pHash is computed from the same shrunk
picture (it reduces to 32 × 32 anyway).

**Hardening.** Every failure is one error, ``ImageRejected``, with a ``reason``:

- ``too_large``: more bytes than ``ImageLimits.max_bytes``, checked before decoding.
- ``decompression_bomb``: more pixels to decode than ``ImageLimits.max_pixels`` (the
  size after ``draft()``, i.e. what would really be decoded), or more than twice
  Pillow's own ``Image.MAX_IMAGE_PIXELS`` declared (Pillow's hard guard, which it
  applies while reading the header). Pillow's softer ``DecompressionBombWarning`` is
  silenced inside this module, because our own pixel limit, which is lower, has
  the final word: no warning ever reaches the caller.
- ``unsupported``: not a picture in one of ``ImageLimits.formats`` (including bytes
  that are no picture at all), or a pixel format that cannot be turned into RGB.
- ``corrupt``: a picture of an accepted format that fails to decode (truncated,
  damaged). Truncated files are never padded with grey.

MD5 and SHA-256 are of the bytes as uploaded, and ``file_digests`` works on any file.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pdqhash
from PIL import Image, ImageOps, UnidentifiedImageError

from node.errors import NodeError
from protocol.hashtypes import HASH_TYPES

__all__ = [
    "DEFAULT_LIMITS",
    "DRAFT_MIN_SIDE",
    "PDQ_MAX_SIDE",
    "FileDigests",
    "ImageHashes",
    "ImageLimits",
    "ImageRejected",
    "RejectReason",
    "decode_image",
    "dihedral_pdq",
    "file_digests",
    "file_hashes",
    "hash_image",
    "pdq_of_image",
    "phash_of_image",
]

PDQ_MAX_SIDE = 512
"""Longest side of the picture PDQ and pHash are computed from (Meta's reference: 512)."""

DRAFT_MIN_SIDE = 256
"""``draft()`` picks the smallest JPEG scale (1/2, 1/4, 1/8) that keeps both sides at
least this long: four times the 64 × 64 PDQ samples."""

RejectReason = Literal["too_large", "decompression_bomb", "unsupported", "corrupt"]


class ImageRejected(NodeError, ValueError):  # noqa: N818 (an outcome, like hub/errors.py)
    """An upload that cannot be hashed as an image, and why.

    Attributes:
        reason: ``too_large``, ``decompression_bomb``, ``unsupported`` or ``corrupt``.
    """

    def __init__(self, reason: RejectReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: RejectReason = reason


@dataclass(frozen=True)
class ImageLimits:
    """What an upload may be. Defaults suit photos from phones and cameras.

    Attributes:
        max_bytes: largest upload, in bytes (32 MiB).
        max_pixels: most pixels to decode (64 million: 192 MB as RGB). A JPEG is
            checked at its ``draft()`` size, so a 100-megapixel photo that decodes
            at 1/8 scale passes; a PNG of the same size does not. Pillow refuses on its
            own anything declaring more than ``2 × Image.MAX_IMAGE_PIXELS`` (179 million
            by default), whatever this says.
        formats: Pillow format names accepted; anything else is ``unsupported``. A
            camera's multi-picture JPEG (Pillow's ``MPO``) is opened as ``JPEG``.
    """

    max_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 64_000_000
    formats: frozenset[str] = field(
        default_factory=lambda: frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"})
    )

    def __post_init__(self) -> None:
        Image.init()
        unknown = sorted(set(self.formats) - set(Image.OPEN))
        if unknown:
            raise ValueError(f"Pillow cannot open the formats {unknown}")
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError("max_bytes and max_pixels must be positive")


DEFAULT_LIMITS = ImageLimits()


@dataclass(frozen=True)
class FileDigests:
    """Cryptographic digests of a file's bytes."""

    md5: bytes
    sha256: bytes


@dataclass(frozen=True)
class ImageHashes:
    """Every hash the node matches an image by: one per registered type it can compute.

    Attributes:
        hashes: by hash type name, every type hashed from the picture
            (``of_picture``: PDQ, pHash) or from its bytes (``of_bytes``: MD5,
            SHA-256).
        qualities: by hash type name, the hasher's own quality score (0–100) for
            the types that have one. PDQ's: below about 50 the picture has too
            little detail (flat or tiny) for its hash to be trusted.

    ``pdq``, ``pdq_quality``, ``phash``, ``md5`` and ``sha256`` name the shipped
    types' values, for callers that want one of them.
    """

    hashes: Mapping[str, bytes]
    qualities: Mapping[str, int]

    @property
    def pdq(self) -> bytes:
        """The PDQ hash (32 bytes, the reference implementation's hex order)."""
        return self.hashes["pdq"]

    @property
    def pdq_quality(self) -> int:
        """PDQ's quality score, 0-100."""
        return self.qualities["pdq"]

    @property
    def phash(self) -> bytes:
        """imagehash's 64-bit ``phash`` (8 bytes, same order as its hex string)."""
        return self.hashes["phash"]

    @property
    def md5(self) -> bytes:
        """MD5 of the uploaded bytes (16 bytes)."""
        return self.hashes["md5"]

    @property
    def sha256(self) -> bytes:
        """SHA-256 of the uploaded bytes (32 bytes)."""
        return self.hashes["sha256"]

    def by_type(self) -> dict[str, bytes]:
        """The hashes keyed by hash type name (``pdq``, ``phash``, ``md5``, ``sha256``)."""
        return dict(self.hashes)


def file_hashes(data: bytes) -> dict[str, bytes]:
    """Every registered type computed from a file's raw bytes (MD5, SHA-256), by name."""
    return {
        name: kind.of_bytes(data) for name, kind in HASH_TYPES.items() if kind.of_bytes is not None
    }


def file_digests(data: bytes) -> FileDigests:
    """MD5 and SHA-256 of any file's bytes."""
    hashes = file_hashes(data)
    return FileDigests(md5=hashes["md5"], sha256=hashes["sha256"])


def decode_image(
    data: bytes, limits: ImageLimits = DEFAULT_LIMITS, *, max_side: int | None = PDQ_MAX_SIDE
) -> Image.Image:
    """Decode an upload into the RGB picture a viewer sees, shrunk for hashing.

    Args:
        data: the uploaded bytes.
        limits: size, pixel and format limits.
        max_side: longest side of the result; ``None`` decodes at full size (no
            ``draft()``, no shrink), which is slower and only for comparisons.

    Raises:
        ImageRejected: the upload breaks a limit or is not a decodable picture.
    """
    if len(data) > limits.max_bytes:
        raise ImageRejected(
            "too_large", f"{len(data)} bytes is more than the limit of {limits.max_bytes}"
        )
    with warnings.catch_warnings():
        # Our own pixel limit (below Pillow's warning threshold) decides; Pillow's hard
        # error still applies. catch_warnings is process-wide: two threads inside it
        # at once can leave this same "ignore" filter installed, which is harmless.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=sorted(limits.formats))
        except Image.DecompressionBombError as e:
            raise ImageRejected("decompression_bomb", str(e)) from e
        except UnidentifiedImageError as e:
            accepted = ", ".join(sorted(limits.formats))
            raise ImageRejected(
                "unsupported", f"not a picture in an accepted format ({accepted})"
            ) from e
        except Exception as e:  # any parser failure on a recognised header
            raise ImageRejected("corrupt", f"cannot read the picture: {e}") from e
        with image:
            return _decoded(image, limits, max_side)


def _decoded(image: Image.Image, limits: ImageLimits, max_side: int | None) -> Image.Image:
    try:
        if max_side is not None and image.format in ("JPEG", "MPO"):
            image.draft("RGB", (DRAFT_MIN_SIDE, DRAFT_MIN_SIDE))
    except Exception as e:
        raise ImageRejected("corrupt", f"cannot read the picture: {e}") from e
    width, height = image.size
    if width * height > limits.max_pixels:
        raise ImageRejected(
            "decompression_bomb",
            f"{width} × {height} pixels is more than the limit of {limits.max_pixels}",
        )
    try:
        image.load()
        shown = ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as e:
        raise ImageRejected("decompression_bomb", str(e)) from e
    except Exception as e:  # truncated or damaged data, whichever decoder noticed
        raise ImageRejected("corrupt", f"cannot decode the picture: {e}") from e
    try:
        # exif_transpose returned a copy, so the result outlives the file it came from.
        rgb = shown if shown.mode == "RGB" else shown.convert("RGB")
    except (ValueError, OSError) as e:
        raise ImageRejected("unsupported", f"pixel format {shown.mode} cannot be hashed") from e
    if max_side is not None and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.BOX)
    return rgb


def pdq_of_image(image: Image.Image) -> tuple[bytes, int]:
    """PDQ hash (32 bytes) and quality (0-100) of an RGB picture."""
    value, quality = _of_picture("pdq", image)
    return value, 0 if quality is None else quality  # PDQ always scores its picture


def phash_of_image(image: Image.Image) -> bytes:
    """imagehash's 64-bit ``phash`` as 8 bytes (the order of its hex string)."""
    return _of_picture("phash", image)[0]


def _of_picture(type_name: str, image: Image.Image) -> tuple[bytes, int | None]:
    hasher = HASH_TYPES[type_name].of_picture
    if hasher is None:
        raise ValueError(f"{type_name} is not hashed from a picture")
    return hasher(image)


def hash_image(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> ImageHashes:
    """Every hash of an uploaded picture: each registered type's, from the picture
    (PDQ with its quality, pHash) or from its bytes (MD5, SHA-256).

    The picture is decoded once, by ``decode_image``'s rules, and handed to every
    picture hasher.

    Raises:
        ImageRejected: the upload breaks a limit or is not a decodable picture.
    """
    image = decode_image(data, limits)
    hashes: dict[str, bytes] = {}
    qualities: dict[str, int] = {}
    for name, kind in HASH_TYPES.items():
        if kind.of_picture is not None:
            hashes[name], quality = kind.of_picture(image)
            if quality is not None:
                qualities[name] = quality
    hashes.update(file_hashes(data))
    return ImageHashes(hashes=hashes, qualities=qualities)


def dihedral_pdq(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> list[bytes]:
    """The PDQ hashes of the picture's eight rotations and mirror images.

    In ``pdqhash.compute_dihedral``'s order: original, rotated 90°, 180°, 270°,
    flipped about the x axis, about the y axis, about the main diagonal and about
    the other diagonal. A query with all eight finds a listed picture however it was
    turned or mirrored; computing them costs about one PDQ hash, since they all
    come from one DCT.

    Raises:
        ImageRejected: the upload breaks a limit or is not a decodable picture.
    """
    image = decode_image(data, limits)
    variants, _quality = pdqhash.compute_dihedral(np.asarray(image, dtype=np.uint8))
    return [_pack_bits(bits) for bits in variants]


def _pack_bits(bits: Iterable[int] | np.ndarray) -> bytes:
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
