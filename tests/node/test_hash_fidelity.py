"""The node's hash of a listed file is the reference's hash of that file.

Hash lists are made with Meta's reference hasher on the whole picture
(``pdqhash.compute`` on the full decode, EXIF orientation applied: what
python-threatexchange and HMA compute). Every bit by which the node's hash of the
very file that was listed differs is spent out of the 31-bit match budget before
anyone has edited the picture, so the node must agree with the reference to within
4 bits (references with different JPEG decoders disagree by 4 to 8), for any size
from 64 px to 12 megapixels and any aspect ratio, and for pHash likewise with
imagehash on the full picture.

The pictures are made here, in memory, from the sample pictures bundled with
scikit-image (and collages of them, for photos with detail at every scale), at many
sizes, aspect ratios and JPEG qualities, plus Meta's PDQ test images beside the
project. Large JPEGs are decoded at reduced scale by the node, so they test that
path; everything else is decoded in full and must hash bit for bit as the reference.
On failure the table of every distance is printed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import imagehash
import numpy as np
import pdqhash
import skimage.data
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image, ImageOps

from node.api.keys import NODE, SESSION
from node.app import create_app
from node.imaging import DRAFT_MIN_SIDE, decode_for_hashing, dihedral_pdq, hash_image
from node.service import run_sync
from tests.node.conftest import PDQ_DATA, PDQ_LIST, HubServer
from tests.node.test_api import bearer

MAX_BITS = 4
"""How far the node's hash may be from the reference's: below the references' own
disagreement (4 to 8 bits), a small share of PDQ's 31-bit threshold."""

SAMPLES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
)
"""scikit-image sample pictures bundled in its wheel (no download): photos, a
grey-scale one, an astronomical and two medical pictures."""

COLLAGE_PARTS = (*SAMPLES, "moon", "coins", "gravel", "brick", "page", "text")


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes


@dataclass(frozen=True)
class Result:
    case: Case
    decoded: tuple[int, int]
    shown: tuple[int, int]
    pdq_bits: int
    phash_bits: int
    quality: int
    reference_quality: int

    @property
    def scale(self) -> str:
        factor = self.shown[0] / self.decoded[0]
        return "full" if factor == 1 else f"1/{round(factor)}"


def distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


@cache
def sample(name: str) -> Image.Image:
    picture: Callable[[], np.ndarray] = getattr(skimage.data, name)
    return Image.fromarray(picture()).convert("RGB")


def collage(width: int, height: int, seed: int) -> Image.Image:
    """Sample pictures at their own size, side by side in rows of random height.

    A photo this size upscaled from one sample picture would be smooth; a collage has
    detail and sharp edges at every scale, as a camera's photo does, which is what
    a reduced-scale decode could get wrong.
    """
    rng = np.random.default_rng(seed)
    canvas = Image.new("RGB", (width, height))
    y = 0
    while y < height:
        x, row = 0, 0
        while x < width:
            part = sample(COLLAGE_PARTS[int(rng.integers(len(COLLAGE_PARTS)))])
            canvas.paste(part, (x, y))
            x += part.width
            row = max(row, part.height)
        y += int(row * rng.uniform(0.5, 1.0))
    return canvas


def jpeg(picture: Image.Image, quality: int, **options: object) -> bytes:
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=quality, **options)
    return out.getvalue()


def png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def resized(picture: Image.Image, width: int, height: int | None = None) -> Image.Image:
    if height is None:
        height = max(1, round(width * picture.height / picture.width))
    return picture.resize((width, height), Image.Resampling.LANCZOS)


def with_orientation(picture: Image.Image, orientation: int, quality: int) -> bytes:
    """``picture`` stored turned, with the EXIF tag that turns it back for display."""
    undo = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg(picture.transpose(undo), quality, exif=exif.tobytes())


@cache
def cases() -> tuple[Case, ...]:
    out: list[Case] = []
    qualities = (95, 85, 70, 50)
    # Every sample picture at widths from 64 px to 2400 px (1/2 scale decodes from
    # 2400 up), JPEG qualities in turn.
    for i, name in enumerate(SAMPLES):
        for j, width in enumerate((64, 256, 512, 1024, 1600, 2400)):
            quality = qualities[(i + j) % len(qualities)]
            picture = resized(sample(name), width)
            out.append(
                Case(f"{name} {picture.width}×{picture.height} q{quality}", jpeg(picture, quality))
            )
    # 12 megapixels, landscape and portrait, and a smooth upscaled photo.
    for seed, (width, height, quality) in enumerate(((4000, 3000, 90), (3000, 4000, 60))):
        out.append(
            Case(
                f"collage {width}×{height} q{quality}", jpeg(collage(width, height, seed), quality)
            )
        )
    out.append(Case("rocket 4000×2669 q85", jpeg(resized(sample("rocket"), 4000), 85)))
    # Aspect ratios: panoramas, tall strips, thin lines, tiny.
    for seed, (width, height) in enumerate(
        ((6000, 1500), (1000, 4000), (3000, 1000), (4000, 250), (64, 1024))
    ):
        picture = collage(width, height, 10 + seed)
        out.append(Case(f"collage {width}×{height} q85", jpeg(picture, 85)))
    out.append(Case("astronaut 64×64 png", png(resized(sample("astronaut"), 64))))
    out.append(Case("coffee 96×64 q95", jpeg(resized(sample("coffee"), 96), 95)))
    out.append(Case("collage 2400×1600 png", png(collage(2400, 1600, 20))))
    # Stored turned, with EXIF orientation: large (reduced decode) and small.
    out.append(
        Case("collage 4000×3000 q90 EXIF 6", with_orientation(collage(4000, 3000, 30), 6, 90))
    )
    out.append(Case("chelsea 451×300 q90 EXIF 8", with_orientation(sample("chelsea"), 8, 90)))
    # Meta's PDQ test images as they are.
    for path in sorted(PDQ_DATA.rglob("*")):
        if path.suffix.lower() in (".jpg", ".png"):
            out.append(Case(str(path.relative_to(PDQ_DATA)), path.read_bytes()))
    return tuple(out)


def reference(data: bytes) -> tuple[bytes, int, bytes]:
    """The reference PDQ (and quality) and pHash: of the full decode, as shown."""
    with Image.open(io.BytesIO(data)) as stored:
        shown = ImageOps.exif_transpose(stored).convert("RGB")
    bits, quality = pdqhash.compute(np.asarray(shown, dtype=np.uint8))
    pdq = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
    return pdq, int(quality), bytes.fromhex(str(imagehash.phash(shown)))


@cache
def results() -> tuple[Result, ...]:
    out = []
    for case in cases():
        ours = hash_image(case.data)
        decoded = decode_for_hashing(case.data)
        pdq, quality, phash = reference(case.data)
        out.append(
            Result(
                case,
                decoded.picture.size,
                decoded.size,
                distance(ours.pdq, pdq),
                distance(ours.phash, phash),
                ours.pdq_quality,
                quality,
            )
        )
    return tuple(out)


def table() -> str:
    lines = [f"{'picture':48} {'decoded':>11} {'scale':>5} {'PDQ':>4} {'pHash':>5}", "-" * 78]
    for r in results():
        size = f"{r.decoded[0]}×{r.decoded[1]}"
        lines.append(f"{r.case.name:48} {size:>11} {r.scale:>5} {r.pdq_bits:4d} {r.phash_bits:5d}")
    return "\n".join(lines)


def test_the_set_covers_every_decode_scale_and_shape() -> None:
    """Without these the assertions below would not test the reduced-scale path."""
    scales = {r.scale for r in results()}
    assert {"full", "1/2", "1/4"} <= scales, scales  # 1/8 needs a 6000 px short side
    shapes = [r.shown for r in results()]
    assert min(min(s) for s in shapes) <= 64
    assert max(w * h for w, h in shapes) >= 12_000_000
    assert max(max(w / h, h / w) for w, h in shapes) >= 5
    for r in results():
        if r.scale != "full":
            assert min(r.decoded) >= DRAFT_MIN_SIDE, r.case.name


def test_pdq_within_4_bits_of_the_reference_on_the_full_picture() -> None:
    too_far = [(r.case.name, r.pdq_bits) for r in results() if r.pdq_bits > MAX_BITS]
    assert too_far == [], "\n" + table()


def test_phash_within_4_bits_of_imagehash_on_the_full_picture() -> None:
    too_far = [(r.case.name, r.phash_bits) for r in results() if r.phash_bits > MAX_BITS]
    assert too_far == [], "\n" + table()


def test_pictures_decoded_in_full_hash_bit_for_bit_as_the_reference() -> None:
    full = [r for r in results() if r.scale == "full"]
    assert len(full) >= 40
    differ = [
        (r.case.name, r.pdq_bits, r.phash_bits, r.quality, r.reference_quality)
        for r in full
        if (r.pdq_bits, r.phash_bits, r.quality) != (0, 0, r.reference_quality)
    ]
    assert differ == [], "\n" + table()


async def test_the_match_api_finds_a_listed_12_megapixel_photo_at_its_reference_hash(
    node_home: Path, hub_server: HubServer
) -> None:
    """A list holds the reference hash of a photo; the node, given that very file,
    answers a match within 4 bits of it."""
    data = jpeg(collage(4000, 3000, 40), 88)
    listed, _quality, _phash = reference(data)
    await hub_server.publish(PDQ_LIST, adds=[listed])
    app = create_app(node_home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        await run_sync(app[NODE], app[SESSION])
        response = await client.post(
            "/v1/match",
            data=io.BytesIO(data),
            headers=bearer(node_home) | {"Content-Type": "image/jpeg"},
        )
        assert response.status == 200, await response.text()
        body = await response.json()
    found = [m for m in body["matches"] if m["hash"] == listed.hex()]
    assert len(found) == 1, json.dumps(body, indent=2)
    assert found[0]["distance"] <= MAX_BITS
    [query] = body["hashes"]["pdq"]
    assert found[0]["distance"] == distance(bytes.fromhex(query), listed)


def test_the_eight_turns_of_a_reduced_decode_are_within_4_bits_of_the_reference() -> None:
    """A large JPEG's dihedral hashes come from turning its 64 × 64 samples; each must
    be the reference's turn of the full picture, within the same budget."""
    data = jpeg(collage(4000, 3000, 0), 90)
    assert decode_for_hashing(data).reduced, "this photo is meant to take the reduced path"
    with Image.open(io.BytesIO(data)) as stored:
        full = np.asarray(stored.convert("RGB"), dtype=np.uint8)
    variants, _quality = pdqhash.compute_dihedral(full)
    expected = [np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes() for bits in variants]
    distances = [distance(a, b) for a, b in zip(dihedral_pdq(data), expected, strict=True)]
    assert max(distances) <= 4, distances
