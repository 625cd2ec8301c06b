"""Node benchmarks: PDQ matching against a naive scan and faiss, and image hashing.

Side by side in one run, each row next to its aim (issue: the node):

1. **PDQ queries per second** against lists of 100k and 1M random PDQ hashes, at
   the usual threshold of 31 bits, single-threaded, on the same queries:

   - ``ListIndex.match`` with the queries in one batch (the node's own matcher:
     exact multi-index hashing at these sizes, 16 slots of 16 bits probed within 1
     bit), the same index forced to its blocked full scan (two-word bound, exact
     distances for the survivors), and one query per call (the latency an upload
     sees);
   - a naive numpy full scan: ``bitwise_count(rows ^ q).sum(axis=1) <= 31`` per
     query, over an ``(n, 4)`` array;
   - faiss ``IndexBinaryFlat.range_search`` (radius 32: faiss counts distances
     strictly below it), with ``omp_set_num_threads(1)``, if faiss is installed.

   Half the queries are random, half are listed hashes with 0-40 bits flipped, so
   there are matches to find; every method's matches are checked to be the same
   set. The list is random bytes: real PDQ hashes have exactly 128 one-bits, which
   random ones do not, but the scan touches every hash whatever its bits, and
   unrelated real hashes differ in about half their bits just as random ones do.
   Aim: ≥ 700 queries/s at 1M for the batch.

2. **Images hashed per second** for a 12-megapixel JPEG photo (Meta's bridge test
   photo upscaled to 4000 × 3000 and saved at quality 90; synthetic noise over
   a gradient if the test data is not beside the project), one image at a time:
   ``hash_image`` (a reduced ``draft()`` decode, 1/4 scale here, then PDQ by the
   reference's filter at full size, pHash, MD5 and SHA-256), and each of those
   steps alone. Aim: ≥ 30 images/s on one core.

3. **Fidelity** against the reference, ``pdqhash.compute`` and imagehash's
   ``phash`` on the full decode (what python-threatexchange and HMA compute), on
   the same photo and, with scikit-image installed, two collages of its bundled
   sample pictures at 12 megapixels: for the node's hashing at each JPEG decode
   scale (full, 1/2, 1/4, 1/8) and for what it did before (``draft()`` keeping 256
   px, a shrink to 512 px), the largest and mean Hamming distance to the
   reference's hashes and the pictures per second as a ratio to the reference's.

4. **Sync** (only with ``--sync``: it builds a hub of the largest list size
   first, about 40 s at 1M): a node bootstraps a list of random PDQ hashes from
   its snapshot through the real hub app on loopback, ``run_sync`` end to end
   (root walk, checkpoint, header, snapshot download and check, SQLite commit,
   match index, ack); the same node restarting (``Node.open`` builds the index
   from the store); then a delta of 10k additions, ``run_sync`` end to end.
   Aim: bootstrap of 1M hashes in under 10 s. See ``sync_section``.

5. **The registry** (only with ``--sections registry``): ``--registry-size``
   registered items (10M, the size of the aims; 100k with ``--quick``): ``hashhub-node content
   import`` of a PDQ corpus (aim < 2 min at 10M), a delta of 1,000 PDQ additions'
   retroactive pass through the content index (aim < 1 s, peak RSS < 1.5 GB at
   10M) against the full scan it replaced, and the same for md5 by key lookup. See
   ``registry_section``.

6. **Entry lookup** (only with ``--sections entries``): an ``entries`` list of the
   largest size stored whole in a node store (the time, and the file's size), then
   one record looked up by hash at a time through the rows keyed by hash, against
   the binary search over the state blob they replaced. Aim: under 1 ms a lookup
   at 1M. See ``entries_section``.

More sections plug in as functions returning ``Row``s; see ``SECTIONS`` (run by
default) and ``OPTIONAL_SECTIONS`` (run when asked for). Timings are wall-clock
(``time.perf_counter``), the best of ``--repeats`` runs after a ``gc.collect()``.

Run: ``python bench/node_bench.py [--quick] [--json] [--sync]``.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import pdqhash
import PIL
from numpy.typing import NDArray
from PIL import Image, ImageOps

from bench.matcher_bench import _max_rss
from node.imaging import (
    DRAFT_MIN_SIDE,
    Decoded,
    decode_for_hashing,
    file_digests,
    hash_image,
    pdq_of_decoded,
    pdq_of_image,
    phash_of_image,
)
from node.matcher import ListIndex, Match, words_from_bytes

__all__ = ["HASH_AIM_PER_S", "MATCH_AIM_QPS", "SECTIONS", "Config", "Row", "machine", "main"]

WIDTH = 32
THRESHOLD = 31
MATCH_AIM_QPS = 700.0
MATCH_AIM_SIZE = 1_000_000
HASH_AIM_PER_S = 30.0
DEFAULT_SIZES = (100_000, 1_000_000)
TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "pdq"
PHOTO = TESTDATA / "bridge-mods" / "aaa-orig.jpg"


@dataclass(frozen=True)
class Config:
    """What one run measures (from the command line)."""

    sizes: tuple[int, ...] = DEFAULT_SIZES
    queries: int = 256
    naive_queries: int = 32
    images: int = 40
    megapixels: float = 12.0
    repeats: int = 3
    faiss: bool = True
    seed: int = 1
    registry_size: int = 10_000_000


@dataclass(frozen=True)
class Row:
    """One printed figure.

    Attributes:
        section: ``match`` or ``hash`` (later: ``sync``, ``bootstrap``).
        case: what was timed.
        size: hashes in the list (match) or pixels in the image (hash).
        count: queries or images per timed run.
        seconds: the best time over ``repeats`` runs.
        repeats: how many runs.
        unit: what ``rate`` counts per second (``q/s``, ``img/s``, ``s``).
        note: the aim and whether it was met, or a remark.
    """

    section: str
    case: str
    size: int
    count: int
    seconds: float
    repeats: int
    unit: str
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.count and self.seconds else 0.0

    @property
    def ms_each(self) -> float:
        return 1000 * self.seconds / self.count if self.count else 0.0


# -- machine and timing -----------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _faiss() -> Any:
    try:
        import faiss  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return faiss


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    faiss = _faiss()
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "faiss": faiss.__version__ if faiss is not None else None,
        "load_1min": round(os.getloadavg()[0], 2),
    }


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """The shortest of ``repeats`` wall-clock runs of ``run`` (its result is dropped)."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def label(n: int) -> str:
    """``1000000`` → ``1M``, ``100000`` → ``100k``, ``12000000`` → ``12M``."""
    for unit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= unit and (n * 100) % unit == 0:
            return f"{n / unit:g}{suffix}"
    return str(n)


# -- 1. matching ------------------------------------------------------------------------


def random_list(n: int, rng: np.random.Generator) -> bytes:
    """``n`` random 32-byte hashes, sorted and unique: a snapshot."""
    raw = rng.integers(0, 256, size=(n, WIDTH), dtype=np.uint8)
    return np.unique(raw.view(f"V{WIDTH}").ravel()).tobytes()


def make_queries(data: bytes, count: int, rng: np.random.Generator) -> list[bytes]:
    """Half random hashes, half listed ones with 0-40 random bits flipped."""
    n = len(data) // WIDTH
    queries = [rng.integers(0, 256, WIDTH, dtype=np.uint8).tobytes() for _ in range(count // 2)]
    for i in rng.integers(0, n, count - len(queries)):
        value = int.from_bytes(data[int(i) * WIDTH : int(i) * WIDTH + WIDTH], "big")
        for bit in rng.choice(256, size=int(rng.integers(0, 41)), replace=False):
            value ^= 1 << int(bit)
        queries.append(value.to_bytes(WIDTH, "big"))
    return queries


def as_pairs(results: Sequence[Sequence[Match]]) -> set[tuple[int, bytes, int]]:
    return {(i, m.hash, m.distance) for i, ms in enumerate(results) for m in ms}


def naive_scan(rows: NDArray[np.uint64], queries: NDArray[np.uint64]) -> list[list[Match]]:
    """The obvious numpy version: a full ``(n, 4)`` XOR and popcount per query."""
    out = []
    for q in queries:
        dist = np.bitwise_count(rows ^ q).sum(axis=1)
        hits = np.flatnonzero(dist <= THRESHOLD)
        out.append([Match(rows[i].astype(">u8").tobytes(), int(dist[i])) for i in hits])
    return out


def faiss_scan(index: Any, queries: NDArray[np.uint8], data: bytes) -> list[list[Match]]:
    lims, dist, ids = index.range_search(queries, THRESHOLD + 1)
    out = []
    for i in range(len(queries)):
        lo, hi = int(lims[i]), int(lims[i + 1])
        out.append(
            [
                Match(data[int(j) * WIDTH : int(j) * WIDTH + WIDTH], int(d))
                for j, d in zip(ids[lo:hi], dist[lo:hi], strict=True)
            ]
        )
    return out


def match_rows(n: int, config: Config) -> list[Row]:
    """Queries per second on ``n`` random PDQ hashes: ours, naive numpy, faiss."""
    rng = np.random.default_rng(config.seed)
    data = random_list(n, rng)
    n = len(data) // WIDTH
    queries = make_queries(data, config.queries, rng)
    reps = config.repeats
    rows: list[Row] = []

    build = best_of(reps, lambda: ListIndex.from_snapshot("pdq", THRESHOLD, data))
    index = ListIndex.from_snapshot("pdq", THRESHOLD, data)
    rows.append(Row("match", "ListIndex.from_snapshot", n, 1, build, reps, "s", "one-off"))

    expected = as_pairs(index.match(queries))
    batch = best_of(reps, lambda: index.match(queries))
    aim = ""
    if n >= MATCH_AIM_SIZE:
        met = "met" if len(queries) / batch >= MATCH_AIM_QPS else "NOT met"
        aim = f"aim ≥ {MATCH_AIM_QPS:g} q/s: {met}"
    how = "multi-index" if index.multi_indexed else "full scan"
    aim = f"{aim}; {how}, {index.memory_bytes() / n:.0f} B/hash".lstrip("; ")
    rows.append(Row("match", "ListIndex.match, batch", n, len(queries), batch, reps, "q/s", aim))

    if index.multi_indexed:
        scan = ListIndex.from_snapshot("pdq", THRESHOLD, data, multi_index_min=n + 1)
        if as_pairs(scan.match(queries)) != expected:
            raise AssertionError("the full scan and the multi-index disagree")
        scanned = best_of(reps, lambda: scan.match(queries))
        rows.append(
            Row(
                "match",
                "ListIndex.match, batch, full scan",
                n,
                len(queries),
                scanned,
                reps,
                "q/s",
                "the same index without its multi-index",
            )
        )

    singles = queries[: max(1, len(queries) // 4)]
    one = best_of(reps, lambda: [index.match([q]) for q in singles])
    rows.append(
        Row("match", "ListIndex.match, one per call", n, len(singles), one, reps, "q/s", "latency")
    )

    table = np.frombuffer(data, dtype=">u8").reshape(n, WIDTH // 8).astype(np.uint64)
    naive_q = words_from_bytes(queries[: config.naive_queries], WIDTH).T.copy()
    naive_expected = {p for p in expected if p[0] < config.naive_queries}
    if as_pairs(naive_scan(table, naive_q)) != naive_expected:
        raise AssertionError("the naive scan and ListIndex disagree")
    naive = best_of(reps, lambda: naive_scan(table, naive_q))
    rows.append(
        Row("match", "naive numpy full scan", n, len(naive_q), naive, reps, "q/s", "same queries")
    )

    faiss = _faiss() if config.faiss else None
    if faiss is None:
        why = "faiss not installed" if config.faiss else "faiss skipped (--no-faiss)"
        rows.append(Row("match", "faiss IndexBinaryFlat", n, 0, 0.0, 0, "q/s", why))
        return rows
    faiss.omp_set_num_threads(1)
    flat = faiss.IndexBinaryFlat(WIDTH * 8)
    flat.add(np.frombuffer(data, dtype=np.uint8).reshape(n, WIDTH))
    fq = np.frombuffer(b"".join(queries), dtype=np.uint8).reshape(len(queries), WIDTH)
    if as_pairs(faiss_scan(flat, fq, data)) != expected:
        raise AssertionError("faiss and ListIndex disagree")
    seconds = best_of(reps, lambda: flat.range_search(fq, THRESHOLD + 1))
    rows.append(
        Row(
            "match",
            "faiss IndexBinaryFlat.range_search",
            n,
            len(queries),
            seconds,
            reps,
            "q/s",
            f"faiss {faiss.__version__}, 1 thread",
        )
    )
    return rows


def match_section(config: Config) -> list[Row]:
    rows: list[Row] = []
    for n in config.sizes:
        rows += match_rows(n, config)
    return rows


# -- 2. image hashing -------------------------------------------------------------------


def photo(megapixels: float) -> tuple[bytes, str]:
    """A JPEG of about ``megapixels`` and what it was made from."""
    width = round((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = round(width * 3 / 4)
    if PHOTO.is_file():
        image = Image.open(PHOTO).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
        source = "bridge photo upscaled"
    else:
        rng = np.random.default_rng(0)
        gradient = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
        noise = rng.normal(0, 20, size=(height, width, 3)).astype(np.float32)
        pixels = np.clip(gradient + noise + 25, 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels, "RGB")
        source = "synthetic noise + gradient"
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue(), f"{source}, {width} × {height}"


def luma_decode_floor(data: bytes) -> Image.Image:
    """The least a JPEG decoder can do for this photo: 1/8 scale, luma only, no shrink.

    Every compressed bit is still entropy-decoded (baseline JPEG cannot skip any),
    so this bounds from below what any hasher built on this decoder can reach.
    """
    with Image.open(io.BytesIO(data)) as image:
        image.draft("L", (image.size[0] // 8, image.size[1] // 8))
        image.load()
        return image.copy()


def times(count: int, run: Callable[[], object]) -> Callable[[], None]:
    """``run`` called ``count`` times in a row, as one thing to time."""

    def repeated() -> None:
        for _ in range(count):
            run()

    return repeated


def hash_section(config: Config) -> list[Row]:
    data, source = photo(config.megapixels)
    with Image.open(io.BytesIO(data)) as probe:
        pixels = probe.size[0] * probe.size[1]
    count = config.images
    reps = config.repeats
    hash_image(data)  # warm-up: first calls import and initialise decoders
    fast = best_of(reps, times(count, lambda: hash_image(data)))
    met = "met" if count / fast >= HASH_AIM_PER_S else "NOT met"
    decoded = decode_for_hashing(data)
    scale = f"1/{round(decoded.size[0] / decoded.picture.size[0])}"
    rows = [
        Row(
            "hash",
            "hash_image: reduced decode, all 4 hashes",
            pixels,
            count,
            fast,
            reps,
            "img/s",
            f"aim ≥ {HASH_AIM_PER_S:g}/s: {met}; {source}; decoded at {scale}",
        )
    ]
    parts: list[tuple[str, Callable[[], object]]] = [
        ("  of which decode_for_hashing (draft)", lambda: decode_for_hashing(data)),
        ("  of which PDQ (reference filter, full size)", lambda: pdq_of_decoded(decoded)),
        ("  of which pHash of the decoded picture", lambda: phash_of_image(decoded.picture)),
        ("  of which MD5 + SHA-256 of the bytes", lambda: file_digests(data)),
        ("  floor: 1/8-scale luma-only JPEG decode", lambda: luma_decode_floor(data)),
    ]
    for case, run in parts:
        seconds = best_of(reps, times(count, run))
        rows.append(Row("hash", case, pixels, count, seconds, reps, "img/s"))
    return rows


# -- 3. fidelity: the node's hash against the reference's, and the speed of each ----------


@dataclass(frozen=True)
class Way:
    """One way of hashing a file's picture: PDQ (with quality) and pHash."""

    case: str
    run: Callable[[bytes], tuple[bytes, bytes]]
    note: str = ""


def _shown(image: Image.Image) -> Image.Image:
    return ImageOps.exif_transpose(image).convert("RGB")


def reference_hashes(data: bytes) -> tuple[bytes, bytes]:
    """The reference: ``pdqhash.compute`` and imagehash's ``phash`` on the full decode."""
    with Image.open(io.BytesIO(data)) as image:
        shown = _shown(image)
    bits, _quality = pdqhash.compute(np.asarray(shown, dtype=np.uint8))
    pdq = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
    return pdq, bytes.fromhex(str(imagehash.phash(shown)))


def node_at_scale(scale: int) -> Callable[[bytes], tuple[bytes, bytes]]:
    """The node's hashing with the JPEG decoded at ``1/scale`` (1: in full)."""

    def run(data: bytes) -> tuple[bytes, bytes]:
        with Image.open(io.BytesIO(data)) as image:
            size = image.size
            if scale > 1:
                image.draft("RGB", (size[0] // scale, size[1] // scale))
            turned = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)
            shown = _shown(image)
        full = (size[1], size[0]) if turned else size
        pdq, _quality = pdq_of_decoded(Decoded(shown, full))
        return pdq, phash_of_image(shown)

    return run


def node_as_hash_image(data: bytes) -> tuple[bytes, bytes]:
    """The node's own path: ``decode_for_hashing`` picks the scale."""
    decoded = decode_for_hashing(data)
    return pdq_of_decoded(decoded)[0], phash_of_image(decoded.picture)


def before(data: bytes) -> tuple[bytes, bytes]:
    """What the node did before: ``draft()`` keeping both sides ≥ 256 px, a box shrink
    to 512 px, then the reference hashers on that picture."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (256, 256))
        shown = _shown(image)
    shown.thumbnail((512, 512), Image.Resampling.BOX)
    return pdq_of_image(shown)[0], phash_of_image(shown)


def fidelity_pictures(megapixels: float) -> list[tuple[str, bytes]]:
    """JPEGs of about ``megapixels``: the bench photo, and collages of scikit-image's
    bundled sample pictures (detail at every scale, as a camera's photo has) if it is
    installed, and two of them upscaled (smooth, with sharp edges)."""
    data, source = photo(megapixels)
    pictures = [(source, data)]
    try:
        import skimage.data
    except ImportError:
        return pictures
    width = round((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = round(width * 3 / 4)
    parts = [
        Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        for name in (
            "astronaut",
            "coffee",
            "chelsea",
            "rocket",
            "camera",
            "hubble_deep_field",
            "retina",
            "immunohistochemistry",
            "moon",
            "coins",
            "gravel",
            "page",
        )
    ]
    for seed, (w, h, quality) in enumerate(((width, height, 90), (height, width, 75))):
        rng = np.random.default_rng(seed)
        canvas = Image.new("RGB", (w, h))
        y = 0
        while y < h:
            x, row = 0, 0
            while x < w:
                part = parts[int(rng.integers(len(parts)))]
                canvas.paste(part, (x, y))
                x, row = x + part.width, max(row, part.height)
            y += int(row * rng.uniform(0.5, 1.0))
        buf = io.BytesIO()
        canvas.save(buf, "JPEG", quality=quality)
        pictures.append((f"sample-picture collage {w} × {h} q{quality}", buf.getvalue()))
    for name in ("coffee", "rocket"):  # smooth: upscaled from 600 and 640 px wide
        part = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        upscaled = part.resize(
            (width, round(width * part.height / part.width)), Image.Resampling.LANCZOS
        )
        buf = io.BytesIO()
        upscaled.save(buf, "JPEG", quality=85)
        pictures.append(
            (f"{name} upscaled {upscaled.width} × {upscaled.height} q85", buf.getvalue())
        )
    return pictures


def fidelity_section(config: Config) -> list[Row]:
    """Each way of hashing, over the same 12-megapixel JPEGs: bits from the reference
    (PDQ of 256, pHash of 64) and pictures per second, as a ratio to the reference's."""
    pictures = fidelity_pictures(config.megapixels)
    datas = [data for _name, data in pictures]
    with Image.open(io.BytesIO(datas[0])) as probe:
        pixels = probe.size[0] * probe.size[1]
    reps = config.repeats
    expected = [reference_hashes(data) for data in datas]
    ref_seconds = best_of(reps, lambda: [reference_hashes(d) for d in datas])
    ways = [
        Way(f"node: hash_image's decode (short side ≥ {DRAFT_MIN_SIDE})", node_as_hash_image),
        Way("node: JPEG decoded in full", node_at_scale(1)),
        Way("node: JPEG forced to 1/2 scale", node_at_scale(2)),
        Way("node: JPEG forced to 1/4 scale", node_at_scale(4)),
        Way("node: JPEG forced to 1/8 scale", node_at_scale(8)),
        Way("before: draft() ≥ 256 px + shrink to 512", before),
    ]
    rows = [
        Row(
            "fidelity",
            "reference: pdqhash + imagehash, full decode",
            pixels,
            len(datas),
            ref_seconds,
            reps,
            "img/s",
            f"{len(datas)} pictures: {'; '.join(name for name, _ in pictures)}",
        )
    ]
    for way in ways:
        got = [way.run(data) for data in datas]
        pdq_bits = [_bits(a[0], b[0]) for a, b in zip(got, expected, strict=True)]
        phash_bits = [_bits(a[1], b[1]) for a, b in zip(got, expected, strict=True)]
        seconds = best_of(reps, _over(way.run, datas))
        rows.append(
            Row(
                "fidelity",
                way.case,
                pixels,
                len(datas),
                seconds,
                reps,
                "img/s",
                f"PDQ bits max {max(pdq_bits)}, mean {sum(pdq_bits) / len(pdq_bits):.1f}; "
                f"pHash max {max(phash_bits)}; {ref_seconds / seconds:.1f} × the reference's speed",
            )
        )
    return rows


def _over(
    run: Callable[[bytes], tuple[bytes, bytes]], datas: Sequence[bytes]
) -> Callable[[], None]:
    """``run`` on every file in turn, as one thing to time."""

    def every() -> None:
        for data in datas:
            run(data)

    return every


def _bits(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


SECTIONS: dict[str, Callable[[Config], list[Row]]] = {
    "match": match_section,
    "hash": hash_section,
    "fidelity": fidelity_section,
}
"""Every section, in the order they run. A new one is a function of ``Config``."""


# -- output -----------------------------------------------------------------------------


def format_table(rows: Sequence[Row], info: dict[str, Any]) -> str:
    head = (
        f"machine: {info['platform']} | {info['cpu']} | {info['cpu_count']} CPUs | "
        f"{info['python']} | numpy {info['numpy']} | Pillow {info['pillow']} | "
        f"faiss {info['faiss'] or 'not installed'} | load {info['load_1min']}"
    )
    lines = [
        head,
        "",
        f"{'section':8} {'case':44} {'size':>6} {'count':>6} {'per second':>11} "
        f"{'ms each':>9} {'best of':>7}  note",
        "-" * 112,
    ]
    previous = None
    for row in rows:
        if previous is not None and (row.section, row.size) != previous:
            lines.append("")
        previous = (row.section, row.size)
        if row.repeats == 0:
            rate, each = "-", "-"
        elif row.unit == "s":
            rate, each = "-", f"{1000 * row.seconds:9.1f}"
        else:
            rate, each = f"{row.rate:,.1f}", f"{row.ms_each:9.3f}"
        size = f"{row.size / 1e6:.1f}MP" if row.unit == "img/s" else label(row.size)
        lines.append(
            f"{row.section:8} {row.case:44} {size:>6} {row.count:>6} {rate:>11} "
            f"{each:>9} {row.repeats:>7}  {row.note}".rstrip()
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> tuple[Config, list[str], bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100k hashes, fewer queries/images")
    parser.add_argument("--sizes", help="list sizes, comma-separated (default 100000,1000000)")
    parser.add_argument("--queries", type=int, help="queries per timed batch (default 256)")
    parser.add_argument("--naive-queries", type=int, help="queries for the naive scan (32)")
    parser.add_argument("--images", type=int, help="images per timed run with draft() (40)")
    parser.add_argument("--megapixels", type=float, help="photo size (default 12)")
    parser.add_argument("--repeats", type=int, help="runs per figure, best kept (default 3)")
    parser.add_argument("--no-faiss", action="store_true", help="skip faiss even if installed")
    parser.add_argument(
        "--registry-size", type=int, help="registered items in the registry rows (10000000)"
    )
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"which of {', '.join(SECTIONS)}"
    )
    parser.add_argument("--json", action="store_true", help="rows as JSON")
    parser.add_argument("--sync", action="store_true", help="also the sync rows (hub + node)")
    args = parser.parse_args(argv)
    base = (
        Config(
            sizes=(100_000,),
            queries=64,
            naive_queries=8,
            images=10,
            repeats=2,
            registry_size=100_000,
        )
        if args.quick
        else Config()
    )
    overrides: dict[str, Any] = {}
    if args.sizes:
        overrides["sizes"] = tuple(int(s) for s in args.sizes.split(","))
    for name in ("queries", "naive_queries", "images", "megapixels", "repeats", "registry_size"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.no_faiss:
        overrides["faiss"] = False
    config = Config(**(asdict(base) | overrides))
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if args.sync and "sync" not in sections:
        sections.append("sync")
    unknown = set(sections) - set(SECTIONS) - set(OPTIONAL_SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}")
    return config, sections, args.json


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--retroactive-pass"]:
        retroactive_pass(*args[1:4])
        return 0
    config, sections, as_json = parse_args(argv)
    info = machine()
    rows: list[Row] = []
    for name in sections:
        rows += (SECTIONS | OPTIONAL_SECTIONS)[name](config)
    if as_json:
        doc = {
            "machine": info,
            "config": asdict(config),
            "aims": {
                "match_q_per_s_min_at_1M": MATCH_AIM_QPS,
                "hash_images_per_s_min": HASH_AIM_PER_S,
                "sync_bootstrap_s_max_at_1M": SYNC_AIM_S,
            },
            "rows": [asdict(row) | {"rate": row.rate} for row in rows],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(format_table(rows, info))
    return 0


# -- 3. sync (only with --sync) -------------------------------------------------------

SYNC_LIST = "bench-pdq"
SYNC_AIM_S = 10.0
SYNC_DELTA = 10_000


def _sync_hub(home: Path, data: bytes) -> None:
    """A hub in ``home`` with one PDQ list of ``data``'s hashes at version 1, with its snapshot."""
    from hub.core import Hub
    from hub.intake import Intake

    hub = Hub.init(
        home, "bench.hub", root_keys=1, root_threshold=1, publish_interval=0, timestamp_interval=0
    )
    try:
        hub.roots.create_list(SYNC_LIST, "pdq", snapshot_every=1)
        hub.lists.stage(
            SYNC_LIST, adds=[Intake(data[i : i + WIDTH]) for i in range(0, len(data), WIDTH)]
        )
        hub.publishing.publish([SYNC_LIST])
    finally:
        hub.close()


async def _sync_rows(work: Path, n: int, delta: int, config: Config) -> list[Row]:
    import shutil

    import aiohttp
    from aiohttp import web

    from hub.app import ACCESS_CACHE, FILE_CACHE, create_app
    from hub.core import Hub
    from hub.intake import Intake
    from node.config import write_secret
    from node.service import Node, run_sync
    from protocol.keyfile import load_public_key

    rng = np.random.default_rng(config.seed + 1)
    reps = config.repeats
    app = create_app(work / "hub", schedule=False)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"

    def fresh(src: Path, name: str) -> Node:
        dest = work / name
        shutil.copytree(src, dest)
        return Node.open(dest)

    async def timed_sync(node: Node, expect: tuple[str, int, int]) -> float:
        async with aiohttp.ClientSession() as session:
            gc.collect()
            start = time.perf_counter()
            (outcome,) = await run_sync(node, session)
            seconds = time.perf_counter() - start
        got = (outcome.status, outcome.from_version, outcome.to_version)
        if got != expect:
            raise AssertionError(f"sync bench: {got} ({outcome.error}), expected {expect}")
        return seconds

    try:
        hub = Hub.open(work / "hub")
        try:
            template = Node.init(
                work / "template",
                node_id="bench-node",
                hub_url=url,
                lists=[SYNC_LIST],
                pinned_root_sha256=hub.keys.root_sha256(1),
                token="pending",
            )
            template.close()
            token = hub.access.enrol_node(
                "bench-node", load_public_key(work / "template" / "node.pub.pem"), [SYNC_LIST]
            )
            write_secret(work / "template" / "hub-token", token)
        finally:
            hub.close()

        bootstrap = float("inf")
        for r in range(reps):
            node = fresh(work / "template", f"boot-{r}")
            bootstrap = min(bootstrap, await timed_sync(node, ("updated", 0, 1)))
            node.close()
        restart = best_of(reps, lambda: Node.open(work / "boot-0").close())

        adds = random_list(delta, rng)
        hub = Hub.open(work / "hub")
        try:
            hub.lists.stage(
                SYNC_LIST, adds=[Intake(adds[i : i + WIDTH]) for i in range(0, len(adds), WIDTH)]
            )
            hub.publishing.publish([SYNC_LIST])
        finally:
            hub.close()
        app[FILE_CACHE].invalidate()
        app[ACCESS_CACHE].invalidate()
        apply = float("inf")
        for r in range(reps):
            node = fresh(work / "boot-0", f"delta-{r}")
            apply = min(apply, await timed_sync(node, ("updated", 1, 2)))
            node.close()
    finally:
        await runner.cleanup()

    met = "met" if bootstrap < SYNC_AIM_S else "NOT met"
    aim = f"aim < {SYNC_AIM_S:g} s: {met}" if n >= MATCH_AIM_SIZE else "one-off"
    return [
        Row(
            "sync", "bootstrap from snapshot: run_sync end to end", n, 1, bootstrap, reps, "s", aim
        ),
        Row("sync", "restart: Node.open (index from the store)", n, 1, restart, reps, "s"),
        Row(
            "sync",
            f"delta +{label(delta)}: run_sync end to end",
            n,
            delta,
            apply,
            reps,
            "s",
            "header, body, apply, commit, index, ack",
        ),
    ]


def sync_section(config: Config) -> list[Row]:
    """Bootstrap a node from a snapshot of the largest list size, then apply a delta to it.

    Through the real hub app on loopback (in this process: its serving is in the
    time) and the node's own ``run_sync`` (fetch, verify, SQLite commit, index,
    ack). Each repeat starts from a copy of the same node home.
    """
    import asyncio
    import tempfile

    data = random_list(max(config.sizes), np.random.default_rng(config.seed))
    n = len(data) // WIDTH
    delta = min(SYNC_DELTA, max(1, n // 10))
    with tempfile.TemporaryDirectory(prefix="hashhub-sync-bench-") as tmp:
        work = Path(tmp)
        _sync_hub(work / "hub", data)
        del data
        return asyncio.run(_sync_rows(work, n, delta, config))


# -- 5. the registry: a list's new hashes against the content the platform hosts -------

RETRO_ADDS = 1_000
"""Hashes a delta adds in the retroactive rows; a tenth of them near hosted content."""
RETRO_AIM_S = 1.0
RETRO_AIM_RSS_MB = 1500.0
IMPORT_AIM_S = 120.0
IMPORT_BATCH = 1_000_000


def _flip(h: bytes, bits: int, rng: random.Random) -> bytes:
    value = int.from_bytes(h, "big")
    for bit in rng.sample(range(len(h) * 8), bits):
        value ^= 1 << bit
    return value.to_bytes(len(h), "big")


def scan_registry(node: Any, outcome: Any, spec: Any) -> list[tuple[str, bytes, bytes, int]]:
    """The retroactive search as the node did it before the content index: every
    registered hash of the type read out of SQLite, each a query of an index of the
    added hashes. The baseline of the registry rows."""
    registered = node.store.matches.registered_content(spec.hash_type)
    if not registered:
        return []
    added = ListIndex.from_snapshot(
        spec.hash_type, spec.max_distance, b"".join(sorted(set(outcome.added)))
    )
    results = added.match([content_hash for _, content_hash in registered])
    return [
        (content_id, m.hash, content_hash, m.distance)
        for (content_id, content_hash), matches in zip(registered, results, strict=True)
        for m in matches
    ]


def retroactive_pass(home: str, added_file: str, mode: str) -> None:
    """In a process of its own (``--retroactive-pass``): open the node in ``home`` and
    run one PDQ delta's retroactive pass over the added hashes in ``added_file``; print
    the seconds, the hits and the process's peak resident set as JSON. ``mode``
    ``index``: ``ContentRegistry.retroactive`` end to end (content index, key lookups
    of the holders, match events, webhooks queued), then once more warm; ``scan``:
    ``scan_registry``, the search alone."""
    from follow import ListOutcome
    from node.service import Node
    from protocol import ListSpec

    added_bytes = Path(added_file).read_bytes()
    added = [added_bytes[i : i + 32] for i in range(0, len(added_bytes), 32)]
    spec = ListSpec("bench-pdq", "pdq", 31)
    outcome = ListOutcome("bench-pdq", "updated", 1, 2, added=added)
    started = time.perf_counter()
    node = Node.open(Path(home))
    opened = time.perf_counter() - started
    try:
        if mode == "index":
            started = time.perf_counter()
            node.registry.retroactive(outcome, spec)
            cold = time.perf_counter() - started
            hits = node.store.matches._count(
                "SELECT count(*) AS n FROM match_events WHERE source = 'registry'"
            )
            started = time.perf_counter()
            node.registry.retroactive(outcome, spec)
            warm = time.perf_counter() - started
        else:
            started = time.perf_counter()
            hits = len(scan_registry(node, outcome, spec))
            cold = warm = time.perf_counter() - started
    finally:
        node.close()
    print(
        json.dumps(
            {"open": opened, "cold": cold, "warm": warm, "hits": hits, "peak_mb": _max_rss() / 1e6}
        )
    )


def _in_process(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def registry_rows(
    n: int, importing: float, now: dict[str, Any], before: dict[str, Any]
) -> list[Row]:
    """The PDQ registry rows from the import's seconds and the two passes' figures."""
    found = f"{now['hits']} hits, the same both ways"
    aim = f"aim < {RETRO_AIM_S:.0f} s, peak RSS < {RETRO_AIM_RSS_MB:,.0f} MB"
    memory = now["peak_mb"] < RETRO_AIM_RSS_MB
    return [
        Row(
            "registry",
            f"import: content import, pdq, --batch {IMPORT_BATCH:,}",
            n,
            n,
            importing,
            1,
            "items/s",
            f"aim < {IMPORT_AIM_S:.0f} s: {_met(importing < IMPORT_AIM_S)}; parsing, SQLite, "
            "matching and the content index written",
        ),
        Row(
            "registry",
            "retroactive pdq +1,000: content index, first pass (now)",
            n,
            1,
            now["cold"],
            1,
            "s",
            f"{aim}: {_met(now['cold'] < RETRO_AIM_S and memory)}; peak RSS "
            f"{now['peak_mb']:,.0f} MB; {found}; {before['cold'] / now['cold']:,.0f}× faster "
            "than the scan; a fresh process: the index's files mapped and paged in",
        ),
        Row(
            "registry",
            "retroactive pdq +1,000: content index, next pass (now)",
            n,
            1,
            now["warm"],
            1,
            "s",
            f"{aim}: {_met(now['warm'] < RETRO_AIM_S and memory)}; peak RSS "
            f"{now['peak_mb']:,.0f} MB; the same process again, as a running node keeps "
            f"the index mapped; {before['cold'] / now['warm']:,.0f}× faster than the scan",
        ),
        Row(
            "registry",
            "retroactive pdq +1,000: full scan (before)",
            n,
            1,
            before["cold"],
            1,
            "s",
            f"{found}; peak RSS {before['peak_mb']:,.0f} MB",
        ),
    ]


def registry_section(config: Config) -> list[Row]:
    """The registry at ``registry_size`` items: bulk import, a delta's retroactive pass.

    **PDQ.** ``n`` random PDQ items written as a CSV corpus, then ``hashhub-node
    content import FILE --batch 1000000`` run as the platform runs it (a process of
    its own; timed end to end: parsing, SQLite, matching against the node's lists,
    and the content index written at the end), then a delta of 1,000 PDQ additions
    (100 of them 0-20 bits from a hosted hash, 900 random): ``retroactive`` end to
    end in a fresh process (``retroactive_pass``: first pass cold, then warm), its
    peak resident set, against the full scan the node did before (``scan_registry``,
    in a process of its own too). Both must find the same hits.

    **md5.** ``n`` md5 items registered through ``register_batch`` (batches of 1M, the
    page cache ``content import`` sets), a delta of 1,000
    md5 additions of which 100 are hosted: ``registered_with`` (one primary-key
    lookup per added hash, what the node does) against ``scan_registry``.
    """
    from follow import ListOutcome
    from node.service import Node
    from protocol import ListSpec

    n = config.registry_size
    rng = random.Random(config.seed)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "pdq"
        Node.init(
            home,
            node_id="bench",
            hub_url="http://127.0.0.1:9",
            lists=["bench-pdq"],
            pinned_root_sha256="0" * 64,
        ).close()
        corpus = Path(tmp) / "corpus.csv"
        near_hosted: list[bytes] = []
        with corpus.open("w", encoding="ascii") as f:
            for start in range(0, n, 100_000):
                chunk = [rng.randbytes(32) for _ in range(min(100_000, n - start))]
                f.write("".join(f"item-{start + i},pdq,{h.hex()}\n" for i, h in enumerate(chunk)))
                if len(near_hosted) < RETRO_ADDS // 10:
                    near_hosted += chunk[: RETRO_ADDS // 10 - len(near_hosted)]
        cli = Path(sys.executable).with_name("hashhub-node")
        started = time.perf_counter()
        subprocess.run(
            [
                str(cli),
                "content",
                "import",
                str(corpus),
                "--batch",
                str(IMPORT_BATCH),
                "--home",
                str(home),
            ],
            check=True,
            capture_output=True,
        )
        importing = time.perf_counter() - started
        corpus.unlink()
        added = [_flip(h, rng.randint(0, 20), rng) for h in near_hosted]
        added += [rng.randbytes(32) for _ in range(RETRO_ADDS - len(added))]
        added_file = Path(tmp) / "added.bin"
        added_file.write_bytes(b"".join(added))
        now = _in_process("--retroactive-pass", str(home), str(added_file), "index")
        before = _in_process("--retroactive-pass", str(home), str(added_file), "scan")
        assert now["hits"] == before["hits"], "the index and the scan found different hits"
        found = f"{now['hits']} hits, the same both ways"
        rows += registry_rows(n, importing, now, before)

        node = Node.init(
            Path(tmp) / "md5",
            node_id="bench",
            hub_url="http://127.0.0.1:9",
            lists=["bench-md5"],
            pinned_root_sha256="0" * 64,
        )
        try:
            hosted = [rng.randbytes(16) for _ in range(n)]
            started = time.perf_counter()
            node.store.matches.widen_cache(256)  # as content import does
            for i in range(0, n, IMPORT_BATCH):
                node.registry.register_batch(
                    [(f"item-{j}", "md5", hosted[j]) for j in range(i, min(n, i + IMPORT_BATCH))]
                )
            registering = time.perf_counter() - started
            md5_added = rng.sample(hosted, min(100, n)) + [rng.randbytes(16) for _ in range(900)]
            del hosted
            spec = ListSpec("bench-md5", "md5", 0)
            outcome = ListOutcome("bench-md5", "updated", 1, 2, added=md5_added)
            keyed = sorted(node.store.matches.registered_with("md5", sorted(set(md5_added))))
            scanned = sorted((c, h) for c, h, _, _ in scan_registry(node, outcome, spec))
            assert keyed == scanned, "the key lookup and the scan found different hits"
            key = best_of(
                config.repeats,
                lambda: node.store.matches.registered_with("md5", sorted(set(md5_added))),
            )
            scan = best_of(config.repeats, lambda: scan_registry(node, outcome, spec))
        finally:
            node.close()
    found = f"{len(keyed)} hits, the same both ways"
    return [
        *rows,
        Row(
            "registry",
            "import: register_batch, md5",
            n,
            n,
            registering,
            1,
            "items/s",
            f"batches of {IMPORT_BATCH:,}, one transaction each",
        ),
        Row(
            "registry",
            "retroactive md5 +1,000: key lookup (now)",
            n,
            1,
            key,
            config.repeats,
            "s",
            f"{found}; {scan / key:,.0f}× faster than the scan",
        ),
        Row(
            "registry",
            "retroactive md5 +1,000: full scan (before)",
            n,
            1,
            scan,
            config.repeats,
            "s",
            found,
        ),
    ]


# -- 6. entry lookup (only with --sections entries) ------------------------------------

ENTRY_LOOKUP_AIM_MS = 1.0


def entry_lines(n: int, rng: random.Random) -> list[bytes]:
    """``n`` PDQ entry records, sorted, a third of them with an ``expires``."""
    return sorted(
        f"{rng.randbytes(WIDTH).hex()} e{i} csam a1 import:batch-{i % 97} "
        f"2026-01-01T00:00:00Z {'2027-01-01T00:00:00Z' if i % 3 == 0 else '-'}".encode()
        for i in range(n)
    )


def entries_section(config: Config) -> list[Row]:
    """An ``entries`` list of the largest size stored whole in a real node store, then
    one record looked up by hash at a time: through the rows keyed by hash (what a
    match does) and by the binary search over the state blob it replaced. Aim: under
    a millisecond a lookup at 1M records."""
    from datetime import UTC, datetime

    from node.store import NodeStore
    from protocol import EntryState, ListTrust
    from protocol.lists import hash_type

    n = max(config.sizes)
    rng = random.Random(config.seed)
    lines = entry_lines(n, rng)
    state = EntryState(hash_type("pdq"), lines)
    trust = ListTrust("bench-entries", state=state.digest())
    wanted = [bytes.fromhex(rng.choice(lines)[: 2 * WIDTH].decode()) for _ in range(200)]
    with tempfile.TemporaryDirectory() as tmp:
        store = NodeStore(Path(tmp) / "node.db")
        try:
            start = time.perf_counter()
            store.commit_update("bench-entries", "pdq", state, trust, [], datetime.now(UTC))
            write = time.perf_counter() - start
            store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = (Path(tmp) / "node.db").stat().st_size

            def rows() -> None:
                for h in wanted:
                    assert store.entry("bench-entries", h) is not None

            def blob() -> None:
                for h in wanted[:20]:
                    assert store._entries_from_state("bench-entries", [h])

            by_rows = best_of(config.repeats, rows)
            by_blob = best_of(config.repeats, blob)
        finally:
            store.close()
    each = 1000 * by_rows / len(wanted)
    aim = f"aim < {ENTRY_LOOKUP_AIM_MS:.0f} ms: {_met(each < ENTRY_LOOKUP_AIM_MS)}"
    return [
        Row("entries", "commit_update, whole state", n, 1, write, 1, "s", f"{size / 1e6:.0f} MB"),
        Row(
            "entries",
            "ListTables.entry, rows by hash",
            n,
            len(wanted),
            by_rows,
            config.repeats,
            "q/s",
            aim,
        ),
        Row(
            "entries",
            "binary search of the state blob (before)",
            n,
            20,
            by_blob,
            config.repeats,
            "q/s",
        ),
    ]


OPTIONAL_SECTIONS: dict[str, Callable[[Config], list[Row]]] = {
    "sync": sync_section,
    "registry": registry_section,
    "entries": entries_section,
}
"""Sections run only when named (``--sync``, or ``--sections sync``)."""


if __name__ == "__main__":
    sys.exit(main())
