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

**Same hash as the reference.** Hash lists are made with Meta's reference hasher
run on the whole picture as listed (``pdqhash.compute``, which python-threatexchange
and HMA use), so the node's hash of that very file must be the reference's, or every
bit it differs by is spent out of the 31-bit match budget before any edit. The
reference has no fixed working size: it blurs the full-size luminance with two box
passes per axis whose width depends on the picture's size (about 1/128 of each
side) and keeps 64 × 64 samples of the result. Hashing a picture shrunk first (to
512 px, say) changes both the widths and the sample positions, and moved real
photos' hashes by 6 to 18 bits.

The node computes the reference's own filter (``pdq_of_decoded``), with the widths
and sample positions of the full-size picture, on what is decoded. For large JPEGs,
Pillow's ``draft()`` asks the decoder for a 1/2, 1/4 or 1/8 scale decode, which
skips much of the decoder's work: the smallest scale that keeps the short side at
least ``DRAFT_MIN_SIDE`` px. Each reduced pixel stands for the block of full-size
pixels it was decoded from, so the box passes and samples still fall where the
reference's do; the result stayed within 2 bits of the reference's on every picture
measured, and the tests hold it to 4 (``tests/node/test_hash_fidelity.py``). A
picture that is not reduced is hashed by the reference itself (``pdqhash``), bit
for bit (a side under 5 px: the reference's all-zero hash of quality 0). pHash (imagehash's,
which resizes any picture to 32 × 32) is computed from the same decoded picture; its
reference is imagehash on the full picture, which a reduced decode moved by at most
2 bits of 64.

**Hardening.** Every failure is one error, ``ImageRejected``, with a ``reason``:

- ``too_large``: more bytes than ``ImageLimits.max_bytes``, checked before decoding.
- ``decompression_bomb``: more pixels to decode than ``ImageLimits.max_pixels`` (the
  size after ``draft()``, i.e. what is really decoded), or more than twice
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import numpy as np
import pdqhash
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from node.errors import NodeError
from protocol.hashtypes import HASH_TYPES

__all__ = [
    "DEFAULT_LIMITS",
    "DRAFT_MIN_SIDE",
    "PDQ_MIN_SIDE",
    "PDQ_SAMPLES",
    "Decoded",
    "FileDigests",
    "ImageHashes",
    "ImageLimits",
    "ImageRejected",
    "RejectReason",
    "decode_for_hashing",
    "decode_image",
    "dihedral_pdq",
    "file_digests",
    "file_hashes",
    "hash_image",
    "pdq_of_decoded",
    "pdq_of_image",
    "phash_of_image",
]

PDQ_SAMPLES = 64
"""PDQ keeps this many luminance samples a side of its blurred picture, before its DCT."""

PDQ_MIN_SIDE = 5
"""The reference hashes a picture with a side shorter than this as all zeros, quality 0."""

DRAFT_MIN_SIDE = 750
"""``draft()`` picks the smallest JPEG scale (1/2, 1/4, 1/8) that keeps the short side at
least this long, so a 4000 × 3000 photo decodes at 1/4 (1000 × 750). Reduced decodes
this large stayed within 2 bits of the reference on every picture measured; with a
short side of 300 to 700 px some moved by 4 to 8 bits, and below 300 px by more."""

_DCT = (
    np.sqrt(2 / PDQ_SAMPLES)
    * np.cos(np.pi / (2 * PDQ_SAMPLES) * np.outer(np.arange(1, 17), 2 * np.arange(PDQ_SAMPLES) + 1))
).astype(np.float32)
"""The reference's 16 × 64 DCT matrix: coefficients 1 to 16 (not the DC) of 64 samples."""

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


@dataclass(frozen=True)
class Decoded:
    """A picture decoded for hashing, and the size it is shown at.

    Attributes:
        picture: the RGB picture as decoded, EXIF orientation applied; a large JPEG is
            decoded at 1/2, 1/4 or 1/8 scale (``draft()``), anything else in full.
        size: (width, height) of the picture as a viewer shows it, at full size.
    """

    picture: Image.Image
    size: tuple[int, int]

    @property
    def reduced(self) -> bool:
        """Whether ``picture`` is smaller than the picture shown."""
        return self.picture.size != self.size


def decode_image(
    data: bytes, limits: ImageLimits = DEFAULT_LIMITS, *, max_side: int | None = None
) -> Image.Image:
    """Decode an upload into the RGB picture a viewer sees, at full size.

    Args:
        data: the uploaded bytes.
        limits: size, pixel and format limits.
        max_side: if given, the picture is shrunk (area-averaged) so that its longest
            side is at most this; for previews and comparisons, never for hashing.

    Raises:
        ImageRejected: the upload breaks a limit or is not a decodable picture.
    """
    picture = _decode(data, limits, draft=False).picture
    if max_side is not None and max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side), Image.Resampling.BOX)
    return picture


def decode_for_hashing(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> Decoded:
    """Decode an upload for hashing: a large JPEG at reduced scale, with its full size.

    Raises:
        ImageRejected: the upload breaks a limit or is not a decodable picture.
    """
    return _decode(data, limits, draft=True)


def _decode(data: bytes, limits: ImageLimits, *, draft: bool) -> Decoded:
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
            return _decoded(image, limits, draft)


def _draft_request(width: int, height: int) -> tuple[int, int] | None:
    """The size to ask ``draft()`` for so that the short side stays >= DRAFT_MIN_SIDE."""
    short = min(width, height)
    if short < 2 * DRAFT_MIN_SIDE:
        return None  # not even a 1/2 scale decode would keep DRAFT_MIN_SIDE
    return -(-width * DRAFT_MIN_SIDE // short), -(-height * DRAFT_MIN_SIDE // short)


def _decoded(image: Image.Image, limits: ImageLimits, draft: bool) -> Decoded:
    full_width, full_height = image.size
    try:
        request = _draft_request(full_width, full_height)
        if draft and request is not None and image.format in ("JPEG", "MPO"):
            image.draft("RGB", request)
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
        # Only now: a PNG's getexif() decodes the whole picture to look for the tag.
        orientation = image.getexif().get(0x0112, 1)
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
    turned = orientation in (5, 6, 7, 8) and rgb.size == (height, width)
    size = (full_height, full_width) if turned else (full_width, full_height)
    if rgb.size == (width, height) or turned:
        return Decoded(rgb, size)
    return Decoded(rgb, rgb.size)  # a transpose we do not know of: hash what is shown


@cache
def _sampling(full: int, decoded: int) -> tuple[_Band, ...]:
    """The reference's blur and sampling along one axis: the 64 samples' weights.

    The reference (``pdqhashing.cpp``) runs two box passes (``box1DFloat``: output
    ``o`` is the mean of inputs ``o - (w - h)`` to ``o + h - 1``, cut at the edges,
    where ``w = ceil(full / 128)`` and ``h = (w + 2) // 2``) and then keeps the sample
    at ``int((i + 0.5) * full / 64)`` (``decimateFloat``). Both are linear, so the 64
    samples are 64 weighted sums of the full-size pixels, each full-size pixel's
    weight added to the decoded pixel it falls in (``decoded`` = ``full``: exactly
    the reference). Cached: uploads come in few sizes.
    """
    window = (full + 2 * PDQ_SAMPLES - 1) // (2 * PDQ_SAMPLES)
    half = (window + 2) // 2
    before, after = window - half, half - 1  # inputs on each side of an output
    at = np.arange(full)
    count = np.minimum(full - 1, at + after) - np.maximum(0, at - before) + 1
    picks = ((np.arange(PDQ_SAMPLES) + 0.5) * full / PDQ_SAMPLES).astype(np.int64)
    weights = np.zeros((PDQ_SAMPLES, full))
    weights[np.arange(PDQ_SAMPLES), picks] = 1.0
    for _ in range(2):  # the reference's PDQ_NUM_JAROSZ_XY_PASSES
        # Input j gets share[o] from every output o whose window holds it:
        # o from j - after to j + before.
        running = np.zeros((PDQ_SAMPLES, full + 1))
        np.cumsum(weights / count, axis=1, out=running[:, 1:])
        weights = (
            running[:, np.minimum(full, at + before + 1)] - running[:, np.maximum(0, at - after)]
        )
    starts = np.searchsorted(at * decoded // full, np.arange(decoded))
    folded = np.add.reduceat(weights, starts, axis=1).astype(np.float32)
    bands = []
    for row in folded:
        used = np.flatnonzero(row)
        low, high = int(used[0]), int(used[-1]) + 1
        weights_used = row[low:high].copy()
        weights_used.flags.writeable = False
        bands.append(_Band(low, high, weights_used))
    return tuple(bands)


@dataclass(frozen=True)
class _Band:
    """The pixels ``low`` to ``high - 1`` along an axis that one sample is made of,
    and their weights."""

    low: int
    high: int
    weights: NDArray[np.float32]


def _samples(decoded: Decoded) -> NDArray[np.float32]:
    """The reference's 64 × 64 blurred luminance samples of the picture shown.

    Pillow's RGB to ``F`` conversion is the reference's luminance, in float32, to the
    bit. Each sample is made of a narrow band of rows and of columns (about 1/64 of
    the picture each way), so the weighted sums run band by band with ``einsum``'s
    own loops, about two operations per pixel. A matrix product would do 32 times
    the arithmetic and hand it to the BLAS library, whose threads, on a node hashing
    uploads on every core, wait on each other: measured 5 to 50 times slower.
    """
    luma = np.asarray(decoded.picture.convert("F"), dtype=np.float32)
    rows, cols = luma.shape
    width, height = decoded.size
    across = np.empty((PDQ_SAMPLES, cols), dtype=np.float32)
    for i, band in enumerate(_sampling(height, rows)):
        np.einsum("r,rc->c", band.weights, luma[band.low : band.high], out=across[i])
    samples = np.empty((PDQ_SAMPLES, PDQ_SAMPLES), dtype=np.float32)
    for j, band in enumerate(_sampling(width, cols)):
        np.einsum("ic,c->i", across[:, band.low : band.high], band.weights, out=samples[:, j])
    return samples


def _pdq_bits(samples: NDArray[np.float32]) -> bytes:
    """The reference's hash of 64 × 64 samples: DCT coefficient above the median → 1.

    Bit ``k`` (of the big-endian 256-bit number) is coefficient ``k`` in row-major
    order, as the reference's ``Hash256`` stores it and its hex prints it. The median
    is the 128th smallest (``torben``).
    """
    coefficients = (_DCT @ samples @ _DCT.T).ravel()
    median = np.partition(coefficients, 127)[127]
    return np.packbits(coefficients[::-1] > median).tobytes()


def _pdq_quality(samples: NDArray[np.float32]) -> int:
    """The reference's quality: the sum of the samples' steps, each truncated to a whole
    percent of 255, over 90, at most 100 (``computePDQImageDomainQualityMetric``)."""
    down = np.trunc((samples[:-1, :] - samples[1:, :]) * 100 / 255)
    across = np.trunc((samples[:, :-1] - samples[:, 1:]) * 100 / 255)
    return min(100, int(np.abs(down).sum() + np.abs(across).sum()) // 90)


def pdq_of_decoded(decoded: Decoded) -> tuple[bytes, int]:
    """PDQ hash (32 bytes) and quality of a decoded picture, as the reference hashes it
    at full size: bit for bit when it was decoded in full, within 2 bits measured when
    it was decoded at reduced scale."""
    if min(decoded.size) < PDQ_MIN_SIDE:
        return bytes(32), 0
    if not decoded.reduced:
        # The reference itself: on a picture it scores below 50 (a gradient, a flat
        # field) most DCT coefficients sit at the median within float rounding, and
        # only its own order of operations gives its bits.
        bits, quality = pdqhash.compute(np.asarray(decoded.picture, dtype=np.uint8))
        return _pack_bits(bits), int(quality)
    samples = _samples(decoded)
    return _pdq_bits(samples), _pdq_quality(samples)


def pdq_of_image(image: Image.Image) -> tuple[bytes, int]:
    """PDQ hash (32 bytes) and quality (0-100) of an RGB picture: the reference's."""
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

    The picture is decoded once, by ``decode_for_hashing``'s rules. PDQ is the
    reference's filter at the picture's full size (``pdq_of_decoded``), which works on
    a reduced decode; every other picture hasher gets the decoded picture.

    Raises:
        ImageRejected: the upload breaks a limit or is not a decodable picture.
    """
    decoded = decode_for_hashing(data, limits)
    hashes: dict[str, bytes] = {}
    qualities: dict[str, int] = {}
    for name, kind in HASH_TYPES.items():
        if kind.of_picture is None:
            continue
        if name == "pdq":
            hashes[name], qualities[name] = pdq_of_decoded(decoded)
            continue
        hashes[name], quality = kind.of_picture(decoded.picture)
        if quality is not None:
            qualities[name] = quality
    hashes.update(file_hashes(data))
    return ImageHashes(hashes=hashes, qualities=qualities)


_DIHEDRAL: tuple[Callable[[NDArray[np.float32]], NDArray[np.float32]], ...] = (
    lambda s: s,
    lambda s: np.rot90(s, 1),
    lambda s: np.rot90(s, 2),
    lambda s: np.rot90(s, 3),
    np.flipud,
    np.fliplr,
    np.transpose,
    lambda s: np.rot90(s, 2).T,
)
"""The eight turns of the 64 × 64 samples, in ``pdqhash.compute_dihedral``'s order (the
reference derives them from the same samples, so turning the samples reproduces it)."""


def dihedral_pdq(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> list[bytes]:
    """The PDQ hashes of the picture's eight rotations and mirror images.

    In ``pdqhash.compute_dihedral``'s order: original, rotated 90°, 180°, 270°,
    flipped about the x axis, about the y axis, about the main diagonal and about
    the other diagonal. A query with all eight finds a listed picture however it was
    turned or mirrored; computing them costs about one PDQ hash, since they all
    come from the same 64 × 64 samples.

    Raises:
        ImageRejected: the upload breaks a limit or is not a decodable picture.
    """
    decoded = decode_for_hashing(data, limits)
    if min(decoded.size) < PDQ_MIN_SIDE:
        return [bytes(32)] * len(_DIHEDRAL)
    if not decoded.reduced:  # the reference itself, as in ``pdq_of_decoded``
        variants, _ = pdqhash.compute_dihedral(np.asarray(decoded.picture, dtype=np.uint8))
        return [_pack_bits(bits) for bits in variants]
    samples = _samples(decoded)
    return [_pdq_bits(np.ascontiguousarray(turn(samples))) for turn in _DIHEDRAL]


def _pack_bits(bits: NDArray[np.generic] | list[int]) -> bytes:
    """pdqhash's 256 bits as 32 bytes, most significant first (its hex order)."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
