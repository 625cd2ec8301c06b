"""A loopback page that loads the browser hashers, and the pictures it hashes.

The page loads ``hub/web/static/hashing/pdq.js`` and ``md5.js`` with plain
``<script src>`` tags, as the submission page does, plus two small functions the
tests call with ``page.evaluate``:

- ``pdqOfFiles(names)``: fetches each served file as a Blob and runs
  ``hashhubPDQ.fromFile`` on it (the browser decodes the picture itself);
- ``pdqOfNodePixels(names)``: fetches the RGB pixels the *node* decoded from
  each file (``node.imaging.decode_image``) and runs ``hashhubPDQ.fromImageData``
  on them, which isolates the hashing algorithm from the browser's decoder.

Files are served by name from a dict, so a test can add pictures it makes.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image
from playwright.async_api import Page, async_playwright

from node.imaging import decode_image, hash_image
from tests.node.test_pdq_conformance import expected_rows
from tests.web.conftest import chromium_path

PDQ_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "pdq"
HASHING_STATIC = Path(__file__).resolve().parents[2] / "hub" / "web" / "static" / "hashing"
PDQ_FOLDERS = ("bridge-mods", "reg-test-input/dih", "reg-test-input/labelme-subset")
PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png")

PAGE = """<!doctype html>
<html lang="en"><meta charset="utf-8"><title>browser hashing</title>
<script src="/static/hashing/md5.js"></script>
<script src="/static/hashing/pdq.js"></script>
<script>
async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(url + ": " + response.status);
  return response;
}
async function pdqOfFiles(names) {
  const out = {};
  for (const name of names) {
    const blob = await (await fetchOk("/file/" + name)).blob();
    out[name] = await hashhubPDQ.fromFile(blob);
  }
  return out;
}
async function pdqOfNodePixels(names) {
  const out = {};
  for (const name of names) {
    const response = await fetchOk("/pixels/" + name);
    const width = Number(response.headers.get("X-Width"));
    const height = Number(response.headers.get("X-Height"));
    const rgb = new Uint8Array(await response.arrayBuffer());
    const rgba = new Uint8ClampedArray(width * height * 4);
    for (let p = 0, q = 0; p < rgb.length; p += 3, q += 4) {
      rgba[q] = rgb[p]; rgba[q + 1] = rgb[p + 1]; rgba[q + 2] = rgb[p + 2]; rgba[q + 3] = 255;
    }
    out[name] = hashhubPDQ.fromImageData(new ImageData(rgba, width, height));
  }
  return out;
}
</script>
<p>Browser hashing test page. <input type="file" id="chooser"></p>
</html>
"""


@dataclass(frozen=True)
class NodeHash:
    """What the node computes for a file: ``node.imaging.hash_image``'s PDQ."""

    pdq_hex: str
    quality: int
    width: int
    height: int


def pdq_distance(a_hex: str, b_hex: str) -> int:
    """Hamming distance between two PDQ hashes given as hex."""
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()


def pdq_test_pictures() -> list[str]:
    """Every picture of the PDQ folders and of ``expected.csv``, by path under testdata/pdq."""
    names = {
        path.relative_to(PDQ_DATA).as_posix()
        for folder in PDQ_FOLDERS
        for path in (PDQ_DATA / folder).iterdir()
        if path.suffix.lower() in PICTURE_SUFFIXES
    }
    names.update(row.file for row in expected_rows())
    return sorted(names)


@cache
def pdq_testdata_files() -> dict[str, bytes]:
    return {name: (PDQ_DATA / name).read_bytes() for name in pdq_test_pictures()}


@cache
def node_hash(data: bytes) -> NodeHash:
    """The node's PDQ of a file, and the size of the picture as shown (full size)."""
    hashes = hash_image(data)
    width, height = decode_image(data, max_side=None).size
    return NodeHash(hashes.pdq.hex(), hashes.pdq_quality, width, height)


def encode(picture: Image.Image, file_format: str, **options: object) -> bytes:
    out = io.BytesIO()
    picture.save(out, file_format, **options)
    return out.getvalue()


def noise_png(width: int, height: int, seed: int) -> bytes:
    """A PNG of random colours: every DCT coefficient differs, so PDQ has no ties."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels, "RGB"), "PNG")


def hashing_app(files: dict[str, bytes]) -> web.Application:
    """The test page, the two hashers, each file's bytes and the node's pixels of it."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    def named(request: web.Request) -> bytes:
        name = request.match_info["name"]
        if name not in files:
            raise web.HTTPNotFound(text=f"no file {name!r}")
        return files[name]

    async def file(request: web.Request) -> web.Response:
        return web.Response(body=named(request), content_type="application/octet-stream")

    async def pixels(request: web.Request) -> web.Response:
        picture = decode_image(named(request))
        rgb = np.asarray(picture, dtype=np.uint8).tobytes()
        headers = {"X-Width": str(picture.width), "X-Height": str(picture.height)}
        return web.Response(body=rgb, headers=headers, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/file/{name:.+}", file)
    app.router.add_get("/pixels/{name:.+}", pixels)
    app.router.add_static("/static/hashing/", HASHING_STATIC)
    return app


@asynccontextmanager
async def hashing_page_of(
    app: web.Application, ready: str
) -> AsyncIterator[tuple[Page, list[str]]]:
    """Chromium on ``app``'s page on loopback, once ``ready`` (a JavaScript expression)
    holds, and the list every uncaught error of the page is appended to."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            async with TestServer(app, host="127.0.0.1") as server:
                await page.goto(str(server.make_url("/")))
                await page.wait_for_function(ready)
                yield page, errors
        finally:
            await browser.close()
