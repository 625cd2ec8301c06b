"""Image hashing: one test per hardening rule, EXIF orientation, reduced decodes, formats.

Every rejection must be our own ``ImageRejected`` with its reason code; pytest turns
warnings into errors here, so a Pillow ``DecompressionBombWarning`` escaping would
fail these tests too.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from functools import cache
from pathlib import Path

import imagehash
import numpy as np
import pdqhash
import pytest
from PIL import Image

from node.imaging import (
    DEFAULT_LIMITS,
    DRAFT_MIN_SIDE,
    ImageLimits,
    ImageRejected,
    decode_for_hashing,
    decode_image,
    dihedral_pdq,
    file_digests,
    hash_image,
    pdq_of_image,
)

PDQ = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "pdq"
BRIDGE = PDQ / "bridge-mods" / "aaa-orig.jpg"


def distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def bomb_png(width: int, height: int) -> bytes:
    """A real 1-bit PNG of ``width`` × ``height`` black pixels: a few kB that decode huge.

    The zero rows compress about a thousand to one; the file is complete and valid.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = bytes(1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    chunks = [packer.compress(row * 1000) for _ in range(height // 1000)]
    chunks.append(packer.compress(row * (height % 1000)))
    chunks.append(packer.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", b"".join(chunks))
        + png_chunk(b"IEND", b"")
    )


@cache
def bridge_bytes() -> bytes:
    return BRIDGE.read_bytes()


def reject_reason(data: bytes, limits: ImageLimits = DEFAULT_LIMITS) -> str:
    with pytest.raises(ImageRejected) as caught:
        hash_image(data, limits)
    return caught.value.reason


# -- hardening: one test per rule ---------------------------------------------------------


def test_rejects_upload_over_max_bytes_before_decoding() -> None:
    data = bridge_bytes()
    assert reject_reason(data, ImageLimits(max_bytes=len(data) - 1)) == "too_large"
    assert hash_image(data, ImageLimits(max_bytes=len(data))).pdq_quality == 100


def test_rejects_upload_over_the_default_32_mib() -> None:
    assert reject_reason(b"\xff\xd8" + bytes(32 * 1024 * 1024)) == "too_large"


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (9_000, 9_000),  # 81 M pixels: over our 64 M limit, under Pillow's warning
        (10_000, 10_000),  # 100 M: Pillow would warn; our limit refuses
        (20_000, 20_000),  # 400 M: over twice Pillow's limit, Pillow's own error
    ],
    ids=["ours", "pillow-warning-range", "pillow-error-range"],
)
def test_rejects_decompression_bomb(width: int, height: int) -> None:
    data = bomb_png(width, height)
    assert len(data) < 2_000_000
    assert reject_reason(data) == "decompression_bomb"


def test_pixel_limit_is_configurable() -> None:
    data = encode(Image.new("RGB", (100, 100), "white"), "PNG")
    assert reject_reason(data, ImageLimits(max_pixels=9_999)) == "decompression_bomb"
    assert len(hash_image(data, ImageLimits(max_pixels=10_000)).pdq) == 32


def test_large_jpeg_is_judged_at_its_draft_size() -> None:
    """A large JPEG decodes at a reduced scale for hashing (1/2 here, to 1600 × 1004)."""
    big = Image.open(BRIDGE).resize((3200, 2008))
    data = encode(big, "JPEG", quality=85)
    limits = ImageLimits(max_pixels=2_000_000)  # full size is 6.4 M pixels
    assert decode_for_hashing(data, limits).picture.size == (1600, 1004)
    reference = pdq_of_image(decode_image(data))[0]
    assert distance(hash_image(data, limits).pdq, reference) <= 4
    assert reject_reason(encode(big, "PNG"), limits) == "decompression_bomb"
    assert reject_reason(data, ImageLimits(max_pixels=1_600 * 1_004 - 1)) == "decompression_bomb"


def test_rejects_truncated_jpeg_as_corrupt() -> None:
    data = bridge_bytes()
    assert reject_reason(data[: len(data) // 2]) == "corrupt"


def test_rejects_bytes_that_are_no_picture_as_unsupported() -> None:
    assert reject_reason(b"%PDF-1.7\n" + b"hello world\n" * 100) == "unsupported"
    assert reject_reason(b"") == "unsupported"


def test_rejects_picture_in_a_format_not_accepted() -> None:
    small = Image.open(BRIDGE).resize((64, 40))
    assert reject_reason(encode(small, "TGA")) == "unsupported"
    assert reject_reason(encode(small, "PCX")) == "unsupported"
    assert reject_reason(bridge_bytes(), ImageLimits(formats=frozenset({"PNG"}))) == "unsupported"


def test_limits_refuse_a_format_pillow_cannot_open() -> None:
    with pytest.raises(ValueError, match="NOPE"):
        ImageLimits(formats=frozenset({"PNG", "NOPE"}))


def test_rejection_is_a_value_error_with_the_reason_in_its_message() -> None:
    with pytest.raises(ValueError, match=r"^unsupported: "):
        hash_image(b"not a picture")


# -- what is hashed ---------------------------------------------------------------------


def test_exif_orientation_is_applied_before_hashing() -> None:
    """A photo stored sideways with Orientation=6 hashes as the upright picture."""
    picture = Image.open(BRIDGE).resize((480, 300))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    tagged = encode(picture, "JPEG", quality=95, exif=exif.tobytes())
    stored = Image.open(io.BytesIO(tagged)).convert("RGB")  # pixels as stored, no transpose
    upright = stored.transpose(Image.Transpose.ROTATE_270)  # 90° clockwise
    assert upright.size == (300, 480)
    ours = hash_image(tagged).pdq
    assert ours == pdq_of_image(upright)[0]
    assert distance(ours, pdq_of_image(stored)[0]) > 31


def test_reduced_decode_hashes_as_the_reference_on_the_full_decode() -> None:
    """12 megapixels (the bridge photo upscaled): 1/2 scale decode versus the reference.

    The reference is ``pdqhash`` on the full-size picture; the node's hash of the
    reduced decode must stay within 4 bits of it (2 at most were measured).
    """
    big = Image.open(BRIDGE).resize((4400, 2761), Image.Resampling.BICUBIC)
    data = encode(big, "JPEG", quality=90)
    decoded = decode_for_hashing(data)
    assert decoded.reduced
    assert decoded.picture.size == (2200, 1381)  # 1/4 would be 690 px, below 750
    assert min(decoded.picture.size) >= DRAFT_MIN_SIDE
    assert decoded.size == (4400, 2761)
    full = decode_image(data)
    assert full.size == (4400, 2761)
    ours = hash_image(data)
    reference, quality = pdq_of_image(full)
    assert distance(ours.pdq, reference) <= 4
    assert ours.pdq_quality == quality
    assert distance(ours.phash, bytes.fromhex(str(imagehash.phash(full)))) <= 4


def test_picture_decoded_in_full_hashes_bit_for_bit_as_the_reference() -> None:
    for path in (BRIDGE, PDQ / "reg-test-input" / "pen-and-coaster.png"):
        data = path.read_bytes()
        assert not decode_for_hashing(data).reduced
        assert hash_image(data).pdq == pdq_of_image(decode_image(data))[0], path.name


def test_small_picture_is_not_enlarged() -> None:
    data = encode(Image.open(BRIDGE).resize((160, 100)), "PNG")
    assert decode_image(data).size == (160, 100)
    assert decode_for_hashing(data).picture.size == (160, 100)


def test_decode_image_can_shrink_for_a_preview() -> None:
    data = bridge_bytes()
    assert decode_image(data, max_side=400).size == (400, 251)


def test_digests_are_of_the_uploaded_bytes() -> None:
    data = bridge_bytes()
    hashes = hash_image(data)
    assert hashes.md5 == hashlib.md5(data).digest()
    assert hashes.sha256 == hashlib.sha256(data).digest()
    assert file_digests(b"any file at all").sha256 == hashlib.sha256(b"any file at all").digest()


def test_phash_bytes_are_imagehash_hex_string() -> None:
    data = bridge_bytes()
    expected = str(imagehash.phash(decode_image(data)))
    assert hash_image(data).phash.hex() == expected
    assert len(hash_image(data).phash) == 8


def test_by_type_names_every_hash() -> None:
    hashes = hash_image(bridge_bytes())
    assert hashes.by_type() == {
        "pdq": hashes.pdq,
        "phash": hashes.phash,
        "md5": hashes.md5,
        "sha256": hashes.sha256,
    }


def test_dihedral_hashes_start_with_the_plain_hash_and_are_all_different() -> None:
    variants = dihedral_pdq(bridge_bytes())
    assert len(variants) == 8
    assert variants[0] == hash_image(bridge_bytes()).pdq
    assert len(set(variants)) == 8


def test_dihedral_hashes_are_the_reference_ones_in_its_order() -> None:
    reference, _quality = pdqhash.compute_dihedral(np.asarray(decode_image(bridge_bytes())))
    expected = [np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes() for bits in reference]
    assert dihedral_pdq(bridge_bytes()) == expected


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("L", "PNG"),
        ("LA", "PNG"),
        ("RGBA", "PNG"),
        ("P", "GIF"),
        ("1", "BMP"),
        ("CMYK", "JPEG"),
        ("CMYK", "TIFF"),
        ("RGB", "WEBP"),
        ("I;16", "PNG"),
    ],
)
def test_pixel_formats_hash_close_to_the_rgb_original(mode: str, fmt: str) -> None:
    picture = Image.open(BRIDGE).resize((400, 251))
    converted = picture.convert("L").convert(mode) if mode == "I;16" else picture.convert(mode)
    reference = pdq_of_image(picture)[0]
    assert distance(hash_image(encode(converted, fmt)).pdq, reference) <= 24


def test_pdq_is_32_bytes_in_reference_hex_order() -> None:
    """The reference hex (expected.csv) of this exact file is d8f8f0ce…; ours is close."""
    reference = bytes.fromhex("d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22")
    ours = hash_image(bridge_bytes()).pdq
    assert len(ours) == 32
    assert distance(ours, reference) <= 10
    assert np.unpackbits(np.frombuffer(ours, dtype=np.uint8)).sum() == 128


@pytest.mark.parametrize(("width", "height"), [(1, 1), (4, 300), (300, 4), (5, 5), (5, 300)])
def test_tiny_sides_hash_as_the_reference(width: int, height: int) -> None:
    """The reference hashes a picture with a side under 5 px as zeros of quality 0."""
    rng = np.random.default_rng(width * 1000 + height)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    bits, quality = pdqhash.compute(pixels)
    hashes = hash_image(encode(Image.fromarray(pixels, "RGB"), "PNG"))
    assert hashes.pdq == np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
    assert hashes.pdq_quality == quality
    assert (hashes.pdq == bytes(32)) == (min(width, height) < 5)
