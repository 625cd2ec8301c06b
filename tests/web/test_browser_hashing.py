"""The browser's PDQ and MD5 (``hub/web/static/hashing/``) agree with the node's.

The submission page hashes a person's picture or video on their own device, so
the hashes the hub receives come from this JavaScript, while the nodes that match
uploads hash with the Python ``pdqhash`` package. The two must agree for a
submission to ever match. Each test drives Debian's Chromium on a loopback page.

Two PDQ comparisons, because two things differ between browser and node:

- **from the file** (``fromFile``): the browser decodes the picture itself (and
  shrinks one longer than 2048 px). Its JPEG decoder differs a little from
  Pillow's, so the rule is the node's own budget against the reference hasher:
  at most 4 bits for pictures of quality 80 or more (PDQ's published
  conformance figure is 10).
- **from the node's pixels** (``fromImageData``): the same RGB array pdqhash got,
  so only the algorithm is compared; it must agree within 2 bits (it is written to
  be bit-exact, in float32 like the reference).

Tables of every distance are printed (``pytest -s`` shows them, so does a failure).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import cache

import pytest
import pytest_asyncio
from PIL import Image
from playwright.async_api import FilePayload, Page, Request

from tests.web.hashing_support import (
    PDQ_DATA,
    encode,
    hashing_app,
    hashing_page_of,
    node_hash,
    noise_png,
    pdq_distance,
    pdq_test_pictures,
    pdq_testdata_files,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

CONFORMING_QUALITY = 80
FILE_BITS = 4
PIXEL_BITS = 2
QUALITY_POINTS = 5
LOW_QUALITY = 50

FLAT_GREY = "made/flat-grey.png"
TAGGED_SIDEWAYS = "made/tagged-rotate-90.jpg"
FIVE_MB = "made/random-5mb.bin"
LARGE_PHOTO = "made/bridge-3200x2008.jpg"  # 6.4 megapixels: more than one 4-megapixel strip
EDGE_SHAPES = {  # name: (width, height); 64 × 64 skips the blur, under 5 px is unhashable
    "made/noise-64x64.png": (64, 64),
    "made/noise-5x5.png": (5, 5),
    "made/noise-4x300.png": (4, 300),
    "made/noise-300x7.png": (300, 7),
    "made/noise-129x130.png": (129, 130),
    "made/noise-512x65.png": (512, 65),
}


def stored_sideways() -> Image.Image:
    """The bridge photo turned a quarter to the left, as a camera held sideways stores it."""
    with Image.open(PDQ_DATA / "bridge-mods" / "aaa-orig.jpg") as photo:
        return photo.transpose(Image.Transpose.ROTATE_90)


@cache
def made_files() -> dict[str, bytes]:
    """Files the tests make: flat grey, a sideways photo with an EXIF tag, noise, 5 MB."""
    flat = encode(Image.new("RGB", (320, 240), (128, 128, 128)), "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90° clockwise to show
    tagged = encode(stored_sideways(), "JPEG", quality=92, exif=exif.tobytes())
    with Image.open(PDQ_DATA / "bridge-mods" / "aaa-orig.jpg") as photo:
        large = encode(photo.resize((3200, 2008), Image.Resampling.BICUBIC), "JPEG", quality=90)
    made = {
        LARGE_PHOTO: large,
        FLAT_GREY: flat,
        TAGGED_SIDEWAYS: tagged,
        FIVE_MB: random.Random(1321).randbytes(5 * 1024 * 1024),
    }
    for seed, (name, (width, height)) in enumerate(EDGE_SHAPES.items()):
        made[name] = noise_png(width, height, seed)
    return made


@dataclass
class LoadedPage:
    """The module's page and every uncaught error it has thrown so far."""

    page: Page
    errors: list[str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def loaded_page() -> AsyncIterator[LoadedPage]:
    """One browser and one loopback page for the whole module (a launch costs seconds)."""
    files = pdq_testdata_files() | made_files()
    async with hashing_page_of(
        hashing_app(files), "globalThis.hashhubPDQ && globalThis.hashhubMD5"
    ) as (page, errors):
        yield LoadedPage(page, errors)


@pytest.fixture
def hashing_page(loaded_page: LoadedPage) -> Iterator[Page]:
    """The loaded page; the test fails if the page threw an uncaught error meanwhile."""
    before = len(loaded_page.errors)
    yield loaded_page.page
    assert loaded_page.errors[before:] == []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pdq_from_files(loaded_page: LoadedPage) -> dict[str, dict[str, int | str]]:
    """``fromFile`` of every test picture, hashed once for the tests that compare it."""
    hashed = await pdq_of_files(loaded_page.page, pdq_test_pictures())
    assert loaded_page.errors == []
    return hashed


async def pdq_of_files(page: Page, names: list[str]) -> dict[str, dict[str, int | str]]:
    result: dict[str, dict[str, int | str]] = await page.evaluate("pdqOfFiles", names)
    return result


async def pdq_of_node_pixels(page: Page, names: list[str]) -> dict[str, dict[str, int | str]]:
    result: dict[str, dict[str, int | str]] = await page.evaluate("pdqOfNodePixels", names)
    return result


def comparison_table(title: str, rows: list[tuple[str, int, int, int]]) -> str:
    """Rows of (file, node quality, browser quality, bits apart)."""
    lines = [
        title,
        f"{'file':48} {'q node':>6} {'q web':>6} {'bits':>4}",
        "-" * 68,
        *(f"{name:48} {qn:6d} {qw:6d} {bits:4d}" for name, qn, qw, bits in rows),
    ]
    bits = [row[3] for row in rows]
    lines.append(f"{len(bits)} pictures, max {max(bits)} bits, mean {sum(bits) / len(bits):.2f}")
    return "\n".join(lines)


def compare(
    browser: dict[str, dict[str, int | str]], files: dict[str, bytes]
) -> list[tuple[str, int, int, int]]:
    rows = []
    for name, ours in browser.items():
        node = node_hash(files[name])
        assert isinstance(ours["quality"], int)
        assert isinstance(ours["hash"], str)
        assert re.fullmatch("[0-9a-f]{64}", ours["hash"]), ours
        rows.append((name, node.quality, ours["quality"], pdq_distance(ours["hash"], node.pdq_hex)))
    return rows


def conforming_pictures() -> list[str]:
    files = pdq_testdata_files()
    return [n for n in pdq_test_pictures() if node_hash(files[n]).quality >= CONFORMING_QUALITY]


@pytest.mark.slow
async def test_pdq_of_each_file_is_within_4_bits_of_the_node(
    pdq_from_files: dict[str, dict[str, int | str]],
) -> None:
    names = conforming_pictures()
    assert len(names) >= 25, "too few pictures of quality 80+ to say anything"
    browser = {name: pdq_from_files[name] for name in names}
    rows = compare(browser, pdq_testdata_files())
    table = comparison_table("PDQ from the file, browser vs node (quality ≥ 80)", rows)
    print("\n" + table)
    assert max(bits for *_, bits in rows) <= FILE_BITS, table
    files = pdq_testdata_files()
    for name in names:  # the size reported is the picture's, not the shrunk one hashed
        node = node_hash(files[name])
        assert (browser[name]["width"], browser[name]["height"]) == (node.width, node.height)


async def test_pdq_of_a_photo_larger_than_one_strip_is_within_4_bits_of_the_node(
    hashing_page: Page,
) -> None:
    """fromFile reads big photos a strip of rows at a time; the strips must join seamlessly."""
    [browser] = (await pdq_of_files(hashing_page, [LARGE_PHOTO])).values()
    node = node_hash(made_files()[LARGE_PHOTO])
    print(f"\n{LARGE_PHOTO}: {pdq_distance(str(browser['hash']), node.pdq_hex)} bits from the node")
    assert (browser["width"], browser["height"]) == (3200, 2008)
    assert pdq_distance(str(browser["hash"]), node.pdq_hex) <= FILE_BITS
    assert abs(int(browser["quality"]) - node.quality) <= QUALITY_POINTS


async def test_pdq_of_the_nodes_pixels_matches_pdqhash(hashing_page: Page) -> None:
    names = pdq_test_pictures()
    rows = compare(await pdq_of_node_pixels(hashing_page, names), pdq_testdata_files())
    table = comparison_table("PDQ from the node's pixels, browser vs pdqhash (all)", rows)
    print("\n" + table)
    assert max(bits for *_, bits in rows) <= PIXEL_BITS, table
    assert all(abs(qn - qw) <= 1 for _, qn, qw, _ in rows), table


async def test_pdq_of_odd_shapes_matches_pdqhash(hashing_page: Page) -> None:
    """64 × 64 (no blur), under 5 px (unhashable: zero hash, quality 0), thin and odd sizes."""
    names = list(EDGE_SHAPES)
    files = made_files()
    browser = await pdq_of_node_pixels(hashing_page, names)
    rows = compare(browser, files)
    table = comparison_table("PDQ of made shapes from the node's pixels", rows)
    print("\n" + table)
    assert max(bits for *_, bits in rows) <= PIXEL_BITS, table
    assert browser["made/noise-4x300.png"] == {"hash": "0" * 64, "quality": 0}
    for name in names:
        if name != "made/noise-4x300.png":
            assert bin(int(str(browser[name]["hash"]), 16)).count("1") == 128, name


@pytest.mark.slow
async def test_quality_of_each_file_is_within_a_few_points_of_pdqhash(
    pdq_from_files: dict[str, dict[str, int | str]],
) -> None:
    rows = compare(pdq_from_files, pdq_testdata_files())
    table = comparison_table("PDQ quality from the file, browser vs node (all)", rows)
    print("\n" + table)
    assert max(abs(qn - qw) for _, qn, qw, _ in rows) <= QUALITY_POINTS, table
    assert any(qn < CONFORMING_QUALITY for _, qn, _, _ in rows), "no low-quality picture tried"


async def test_flat_grey_picture_has_low_quality(hashing_page: Page) -> None:
    [flat] = (await pdq_of_files(hashing_page, [FLAT_GREY])).values()
    assert isinstance(flat["quality"], int)
    print(f"\nflat grey: browser quality {flat['quality']}")
    assert flat["quality"] < LOW_QUALITY
    assert (flat["width"], flat["height"]) == (320, 240)
    assert node_hash(made_files()[FLAT_GREY]).quality < LOW_QUALITY


async def test_exif_orientation_is_applied_like_the_node(hashing_page: Page) -> None:
    tagged = made_files()[TAGGED_SIDEWAYS]
    [browser] = (await pdq_of_files(hashing_page, [TAGGED_SIDEWAYS])).values()
    node = node_hash(tagged)
    as_stored = node_hash(encode(stored_sideways(), "PNG"))
    upright = (as_stored.height, as_stored.width)
    print(
        f"\nsideways with tag 6: {pdq_distance(str(browser['hash']), node.pdq_hex)} bits from the"
        f" node, {pdq_distance(str(browser['hash']), as_stored.pdq_hex)} from the picture as stored"
    )
    assert (browser["width"], browser["height"]) == upright == (node.width, node.height)
    assert pdq_distance(str(browser["hash"]), node.pdq_hex) <= FILE_BITS
    # Ignoring the tag would hash the picture as stored, which is far from upright.
    assert pdq_distance(str(browser["hash"]), as_stored.pdq_hex) > 31


async def test_a_chosen_file_is_hashed_without_any_request(hashing_page: Page) -> None:
    """What the person picks in a file chooser is hashed on the page; nothing is sent."""
    name = "reg-test-input/dih/bridge-2-rotate-90.jpg"
    data = pdq_testdata_files()[name]
    chosen_file: FilePayload = {"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": data}
    await hashing_page.set_input_files("#chooser", files=[chosen_file])
    sent: list[str] = []

    def record(request: Request) -> None:
        sent.append(request.url)

    hashing_page.on("request", record)
    try:
        chosen = await hashing_page.evaluate(
            """async () => {
                const file = document.querySelector("#chooser").files[0];
                return {pdq: await hashhubPDQ.fromFile(file), md5: await hashhubMD5.fromFile(file)};
            }"""
        )
    finally:
        hashing_page.remove_listener("request", record)
    assert sent == []
    assert chosen["md5"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert pdq_distance(chosen["pdq"]["hash"], node_hash(data).pdq_hex) <= FILE_BITS


async def test_pdq_refuses_what_is_not_a_picture(hashing_page: Page) -> None:
    message = await hashing_page.evaluate(
        """() => hashhubPDQ.fromFile(new Blob(["plainly not a picture"]))
                 .then(() => "accepted", (error) => error.message)"""
    )
    assert "not a picture" in message
    thrown = await hashing_page.evaluate(
        """() => { try { hashhubPDQ.fromImageData({width: 3, height: 3, data: new Uint8Array(9)}); }
                   catch (error) { return error.name; } return "accepted"; }"""
    )
    assert thrown == "TypeError"


# RFC 1321 appendix A.5: the test suite's messages and digests.
RFC_1321_SUITE = {
    "": "d41d8cd98f00b204e9800998ecf8427e",
    "a": "0cc175b9c0f1b6a831c399e269772661",
    "abc": "900150983cd24fb0d6963f7d28e17f72",
    "message digest": "f96b697d7cb7938d525a2f31aaf161d0",
    "abcdefghijklmnopqrstuvwxyz": "c3fcd3d76192e4007dfb496cca67e13b",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789": (
        "d174ab98d277d9f5a5611c2c9f419d9f"
    ),
    "1234567890" * 8: "57edf4a22be3c955ac49da2e2107b67a",
}


async def md5_in_browser(page: Page, data: bytes) -> str:
    digest: str = await page.evaluate(
        "(bytes) => hashhubMD5.hex(new Uint8Array(bytes))", list(data)
    )
    return digest


async def test_md5_passes_the_rfc_1321_suite(hashing_page: Page) -> None:
    for message, digest in RFC_1321_SUITE.items():
        assert hashlib.md5(message.encode(), usedforsecurity=False).hexdigest() == digest
        assert await md5_in_browser(hashing_page, message.encode("ascii")) == digest, message


async def test_md5_equals_hashlib_at_block_boundaries(hashing_page: Page) -> None:
    rng = random.Random(1321)
    for length in (0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000):
        data = rng.randbytes(length)
        expected = hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert await md5_in_browser(hashing_page, data) == expected, length


async def test_md5_of_a_file_reads_it_in_chunks(hashing_page: Page) -> None:
    chunk = 100_003  # not a multiple of 64: blocks straddle the slices
    outcome = await hashing_page.evaluate(
        """async ([name, chunkSize]) => {
            const blob = await (await fetchOk("/file/" + name)).blob();
            const progress = [];
            const digest = await hashhubMD5.fromFile(
                blob, (done, total) => progress.push([done, total]), {chunkSize});
            return {digest, progress, whole: hashhubMD5.hex(await blob.arrayBuffer())};
        }""",
        [FIVE_MB, chunk],
    )
    data = made_files()[FIVE_MB]
    expected = hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert outcome["digest"] == expected
    assert outcome["whole"] == expected
    size = len(data)
    progress = outcome["progress"]
    assert len(progress) == -(-size // chunk)
    assert [done for done, _ in progress] == [
        min(size, (i + 1) * chunk) for i in range(len(progress))
    ]
    assert {total for _, total in progress} == {size}


async def test_md5_of_a_file_refuses_a_tiny_chunk_size(hashing_page: Page) -> None:
    message = await hashing_page.evaluate(
        """() => hashhubMD5.fromFile(new Blob(["abc"]), undefined, {chunkSize: 10})
                 .then(() => "accepted", (error) => error.name)"""
    )
    assert message == "RangeError"
