"""Matcher benchmarks: the node's PDQ index against its peers, at 100k, 1M and 10M hashes.

Three questions asked of ``node.matcher.ListIndex``, answered next to the peers
measured in the same run:

1. **Queries per second, recall, build time and peak memory** on lists of 100k, 1M
   and 10M PDQ hashes at the usual threshold of 31 bits, for two kinds of list:

   - *uniform*: random 256-bit hashes;
   - *clustered*: families of near-duplicates, as real lists hold (the same picture
     re-encoded, cropped or captioned). A tenth of the hashes are family centres
     (random 256-bit); each other hash is a member: a centre picked uniformly at
     random with ``k`` bits set to flipped, ``k`` uniform in 1..30, the ``k``
     positions drawn with replacement (so a member is at most ``k`` bits, and
     usually exactly ``k``, from its centre). Families therefore hold 10 hashes on
     average, Poisson-distributed, and two members of one family are usually within
     60 bits of each other, many within 31.

   Each method answers the same 256 queries, in one batch where its API takes one:
   even-numbered queries are listed hashes with 0-31 random distinct bits flipped
   (so there are matches to find, and in a clustered list often several), odd ones
   are random. The methods:

   - ``ours``: ``ListIndex`` as the node builds it: exact multi-index hashing (ADR
     0012), 16 slots of 16 bits probed within 1 bit up to 1M, 12 slots of 21-22 bits
     probed within 2 bits at 10M, the candidates generated and checked by the
     compiled kernel (``node/multiindex_kernel.c``); its note says if the kernel was
     not built and numpy answered instead;
   - ``ours, numpy``: the same index built and queried through its numpy path,
     the kernel's reference: what the kernel gains;
   - ``ours, full scan``: the same index with ``multi_index_min`` above the list
     size, so it runs its blocked full scan; it is the reference (exact) answer
     for recall;
   - ``numpy full scan``: ``bitwise_count(rows ^ q).sum(axis=1) <= 31`` per query
     over an ``(n, 4)`` array, on the first 256 / 32 / 8 queries at 100k / 1M / 10M;
   - faiss ``IndexBinaryFlat``: ``range_search`` with radius 32 (faiss counts
     distances strictly below it), one thread (``omp_set_num_threads(1)``), on all
     queries up to 1M and the first 64 at 10M;
   - faiss ``IndexBinaryMultiHash(256, 16, 16)`` with ``nflip = 31 // 16 = 1`` and
     ``range_search`` radius 32, one thread: the configuration python-threatexchange's
     ``PDQMultiHashIndex`` builds and HMA uses (HMA builds its PDQ index through
     ``PdqSignal.get_index_cls()``, which is that class's ``PDQIndex``);
   - python-threatexchange's ``PDQIndex`` (package ``threatexchange``): built with
     ``PDQIndex.build`` from ``(hex, id)`` entries and queried with ``query(hex)``,
     one query per call, as HMA's matcher calls it. It wraps the faiss index above
     in ``IndexBinaryIDMap2`` and keeps a Python dict from ids to rows.

   Every method runs in its own subprocess, which first loads the list (the snapshot
   bytes, and the input form the method needs: hex strings for threatexchange),
   resets the kernel's peak counter to the current resident set (writing ``5`` to
   ``/proc/self/clear_refs``) and records it as its baseline, then builds, queries,
   and reads the peak again: **peak memory is the growth of the peak resident set
   over that baseline**. The peak is ``VmHWM``, the counter behind
   ``getrusage(RUSAGE_SELF).ru_maxrss`` without the parent's peak that ``ru_maxrss``
   carries across ``exec``; it sees faiss's C++ allocations, which ``tracemalloc``
   would not, and includes a build's temporaries, not only what the index keeps.
   Recall is the share of the reference's (query, hash, distance) triples a method
   finds; ``extra`` counts triples it returns that the reference does not (a wrong
   distance counts as both a miss and an extra).

2. **Incremental update** (``incremental``): a 1M uniform list in
   ``ListIndex(background=True)``, a thread querying it continuously (one query per
   call, as an upload waits for it). A first delta of 10k additions goes to the
   scanned side segment; a second 10k pushes the pending changes past 1/64 of the
   list, which starts the background rebuild. Measured: how long until the additions
   are visible to ``match`` (from the start of ``apply`` until a ``match`` of added
   hashes returns them), the rebuild's duration, and the query latencies
   (p50/p99/max) before, during the applies and side-segment phase, during the
   rebuild, and after it. "No query gap" means no query waits on an apply or a
   rebuild: the longest query while either runs stays far below the rebuild time.

3. **Node resident memory at 10M** (``node-rss``): a subprocess builds the index the
   way the node does (``ListIndex.from_snapshot`` with the snapshot bytes and
   ``background=True``), drops the bytes, answers a batch, and reports its peak
   resident set (``VmHWM``, as above; it includes the interpreter and the snapshot
   bytes held during the build) and its resident set afterwards (``VmRSS``).

Figures are medians of ``--repeats`` runs (3 by default) of the timed step; at 10M
and above the build runs once per method (the queries still ``--repeats`` times).

Aims (one core): at 1M, ``ours`` ≥ 2,500 queries/s with recall 1.0; at 10M,
uniform and clustered, ≥ 2,000 queries/s with recall 1.0 and the node's resident
memory ≤ 1.5 GB; a 10k-add delta visible in < 1 s with no query gap.

Run: ``python bench/matcher_bench.py [--quick] [--json] [--sizes 100000,1000000]``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "AIMS",
    "DISTRIBUTIONS",
    "METHODS",
    "Config",
    "Row",
    "clustered_words",
    "machine",
    "main",
    "make_queries",
    "snapshot_of",
]

WIDTH = 32
"""Bytes per PDQ hash."""
THRESHOLD = 31
"""The usual PDQ match threshold, in bits."""
FAMILY_SHARE = 10
"""One hash in this many is a family centre in a clustered list."""
MAX_FAMILY_FLIPS = 30
"""A family member differs from its centre by at most this many bits."""
NEAR_MAX_FLIPS = THRESHOLD
"""A near query differs from a listed hash by 0 to this many bits."""
DEFAULT_SIZES = (100_000, 1_000_000, 10_000_000)
DISTRIBUTIONS = ("uniform", "clustered")
LARGE = 5_000_000
"""From this size on, each build runs once and the slow scans answer fewer queries."""

METHODS: dict[str, str] = {
    "ours": "ours: ListIndex (multi-index)",
    "ours-numpy": "ours: ListIndex (multi-index, numpy)",
    "ours-scan": "ours: ListIndex, full scan",
    "numpy": "numpy full scan",
    "faiss-flat": "faiss IndexBinaryFlat",
    "faiss-multihash": "faiss IndexBinaryMultiHash(256,16,16)",
    "threatexchange": "threatexchange PDQIndex",
}
"""Every method, in the order it runs; ``ours-scan`` is the reference for recall."""
REFERENCE = "ours-scan"

AIMS: dict[str, float] = {
    "qps_min_at_1M": 2500.0,
    "recall_at_1M": 1.0,
    "qps_min_at_10M": 2000.0,
    "recall_at_10M": 1.0,
    "node_rss_max_bytes_at_10M": 1.5e9,
    "delta_visible_s_max": 1.0,
    "query_gap_s_max": 0.1,
}
"""Per core. ``query_gap_s_max``: the longest query while an apply or rebuild runs
must stay under this (a query that waited on a rebuild would take as long as it)."""


@dataclass(frozen=True)
class Config:
    """What one run measures (from the command line)."""

    sizes: tuple[int, ...] = DEFAULT_SIZES
    distributions: tuple[str, ...] = DISTRIBUTIONS
    methods: tuple[str, ...] = tuple(METHODS)
    queries: int = 256
    repeats: int = 3
    incremental_base: int = 1_000_000
    incremental_adds: int = 10_000
    incremental_phase_s: float = 1.0
    node_rss_size: int | None = 10_000_000
    seed: int = 7


@dataclass
class Row:
    """One method on one list.

    Attributes:
        distribution: ``uniform`` or ``clustered``.
        size: hashes asked for (the list's nominal size).
        method: a key of ``METHODS``.
        hashes: hashes in the list (a clustered list can lose a few duplicates).
        queries: queries answered per timed run.
        qps: queries per second, median of ``runs`` runs (0 when not measured).
        build_s: build time in seconds, median of ``build_runs`` builds.
        recall: share of the reference's matches found (None without a reference).
        extra: matches returned that the reference does not have.
        expected: the reference's matches over the same queries.
        peak_bytes: growth of the peak resident set over the loaded input.
        max_rss_bytes: the subprocess's peak resident set, input included.
        runs: timed query runs.
        build_runs: timed builds.
        note: why a method did not run, or a remark.
    """

    distribution: str
    size: int
    method: str
    hashes: int = 0
    queries: int = 0
    qps: float = 0.0
    build_s: float = 0.0
    recall: float | None = None
    extra: int = 0
    expected: int = 0
    peak_bytes: int = 0
    max_rss_bytes: int = 0
    runs: int = 0
    build_runs: int = 0
    query_times: list[float] = field(default_factory=list)
    note: str = ""


# -- machine ----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version(module)
    except PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "numpy": np.__version__,
        "faiss": _version("faiss-cpu"),
        "threatexchange": _version("threatexchange"),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def label(n: int) -> str:
    """``1000000`` → ``1M``, ``100000`` → ``100k``."""
    for unit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= unit and (n * 100) % unit == 0:
            return f"{n / unit:g}{suffix}"
    return str(n)


# -- the lists and the queries -----------------------------------------------------------


def uniform_words(n: int, rng: np.random.Generator) -> NDArray[np.uint64]:
    """``n`` random 256-bit hashes as ``(4, n)`` words (unsorted)."""
    return rng.integers(0, 2**64, size=(WIDTH // 8, n), dtype=np.uint64)


def clustered_words(n: int, rng: np.random.Generator) -> NDArray[np.uint64]:
    """``n`` hashes in families of near-duplicates, as ``(4, n)`` words (unsorted).

    ``n // FAMILY_SHARE`` (at least 1) are random centres; every other hash is a
    centre picked uniformly at random with ``k`` positions set to flipped, ``k``
    uniform in ``1..MAX_FAMILY_FLIPS``, positions drawn with replacement.
    """
    centres = max(1, n // FAMILY_SHARE)
    words = uniform_words(centres, rng)
    members = n - centres
    parent = rng.integers(0, centres, size=members)
    flips = rng.integers(1, MAX_FAMILY_FLIPS + 1, size=members)
    masks = np.zeros((WIDTH // 8, members), dtype=np.uint64)
    one = np.uint64(1)
    for j in range(MAX_FAMILY_FLIPS):
        active = flips > j
        position = rng.integers(0, 256, size=members)
        word, bit = position // 64, (63 - position % 64).astype(np.uint64)
        for w in range(WIDTH // 8):
            sel = active & (word == w)
            masks[w, sel] |= one << bit[sel]
    family = words[:, parent] ^ masks
    return np.concatenate([words, family], axis=1)


def snapshot_of(words: NDArray[np.uint64]) -> bytes:
    """The snapshot bytes of ``(4, n)`` words: sorted ascending, duplicates dropped."""
    order = np.lexsort(words[::-1])
    words = words[:, order]
    if words.shape[1] > 1:
        same = np.ones(words.shape[1] - 1, dtype=bool)
        for row in words:
            same &= row[1:] == row[:-1]
        words = words[:, np.concatenate([[True], ~same])]
    return bytes(words.T.astype(">u8").tobytes())


def make_list(n: int, distribution: str, seed: int) -> bytes:
    """The snapshot bytes of a list of about ``n`` hashes (exactly ``n`` barring collisions)."""
    rng = np.random.default_rng([seed, n, DISTRIBUTIONS.index(distribution)])
    words = uniform_words(n, rng) if distribution == "uniform" else clustered_words(n, rng)
    return snapshot_of(words)


def make_queries(data: bytes, count: int, seed: int) -> bytes:
    """``count`` queries: even ones listed hashes with 0-31 distinct bits flipped, odd random."""
    rng = np.random.default_rng([seed, len(data), 1])
    n = len(data) // WIDTH
    out = []
    for i in range(count):
        if i % 2:
            out.append(rng.integers(0, 256, WIDTH, dtype=np.uint8).tobytes())
            continue
        at = int(rng.integers(0, n))
        value = int.from_bytes(data[at * WIDTH : (at + 1) * WIDTH], "big")
        flips = int(rng.integers(0, NEAR_MAX_FLIPS + 1))
        for bit in rng.choice(256, size=flips, replace=False):
            value ^= 1 << int(bit)
        out.append(value.to_bytes(WIDTH, "big"))
    return b"".join(out)


def split(blob: bytes) -> list[bytes]:
    return [blob[i : i + WIDTH] for i in range(0, len(blob), WIDTH)]


# -- one method in its own process ------------------------------------------------------

Triples = list[tuple[int, str, int]]
"""(query number, listed hash in hex, distance)."""


def _status(field: str) -> int:
    """A ``Vm*`` figure of this process from ``/proc/self/status``, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def _max_rss() -> int:
    """Peak resident set of this process so far, in bytes.

    The kernel's ``VmHWM``: the counter ``getrusage(RUSAGE_SELF).ru_maxrss`` reports,
    without the part ``ru_maxrss`` keeps from before ``exec`` (the parent's peak, which
    a subprocess of a large parent would otherwise inherit). Falls back to
    ``ru_maxrss`` where ``/proc`` is absent.
    """
    try:
        return _status("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> bool:
    """Reset the peak resident set to the current one (Linux ``clear_refs``); False if not."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _vm_rss() -> int:
    """Resident set of this process now, in bytes."""
    return _status("VmRSS")


def query_count(method: str, n: int, queries: int) -> int:
    """How many of the queries a method answers per run (the slow scans fewer when large)."""
    if method == "numpy":
        return max(8, min(queries, 32_000_000 // n))
    if method == "faiss-flat" and n >= LARGE:
        return min(queries, 64)
    return queries


class _Method:
    """Build and query one method; ``prepare`` runs before the memory baseline."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.n = len(data) // WIDTH

    def prepare(self) -> None:
        """Convert the snapshot into the method's input form (not timed, not counted)."""

    def build(self) -> None:
        raise NotImplementedError

    def query(self, queries: list[bytes]) -> Triples:
        raise NotImplementedError

    def drop(self) -> None:
        """Free the built index before the next build."""


class _Ours(_Method):
    def __init__(self, data: bytes, scan: bool, engine: str | None = None) -> None:
        super().__init__(data)
        self.scan = scan
        self.index: Any = None
        from node.multiindex import select_engine

        select_engine(engine)  # this subprocess answers through that engine only

    def build(self) -> None:
        from node.matcher import MULTI_INDEX_MIN, ListIndex

        multi_min = self.n + 1 if self.scan else MULTI_INDEX_MIN
        self.index = ListIndex.from_snapshot("pdq", THRESHOLD, self.data, multi_index_min=multi_min)

    def query(self, queries: list[bytes]) -> Triples:
        return [
            (i, m.hash.hex(), m.distance)
            for i, ms in enumerate(self.index.match(queries))
            for m in ms
        ]

    def drop(self) -> None:
        self.index = None


class _Numpy(_Method):
    table: NDArray[np.uint64] | None = None

    def build(self) -> None:
        self.table = np.frombuffer(self.data, dtype=">u8").reshape(self.n, 4).astype(np.uint64)

    def query(self, queries: list[bytes]) -> Triples:
        assert self.table is not None
        out: Triples = []
        for i, q in enumerate(queries):
            words = np.frombuffer(q, dtype=">u8").astype(np.uint64)
            dist = np.bitwise_count(self.table ^ words).sum(axis=1)
            for j in np.flatnonzero(dist <= THRESHOLD).tolist():
                out.append((i, self.data[j * WIDTH : (j + 1) * WIDTH].hex(), int(dist[j])))
        return out

    def drop(self) -> None:
        self.table = None


class _Faiss(_Method):
    def __init__(self, data: bytes, multihash: bool) -> None:
        super().__init__(data)
        self.faiss: Any = importlib.import_module("faiss")
        self.faiss.omp_set_num_threads(1)
        self.multihash = multihash
        self.index: Any = None
        self.vectors = np.frombuffer(data, dtype=np.uint8).reshape(self.n, WIDTH)

    def build(self) -> None:
        if self.multihash:
            index = self.faiss.IndexBinaryMultiHash(WIDTH * 8, 16, 16)
            index.nflip = THRESHOLD // 16
        else:
            index = self.faiss.IndexBinaryFlat(WIDTH * 8)
        index.add(self.vectors)
        self.index = index

    def query(self, queries: list[bytes]) -> Triples:
        qs = np.frombuffer(b"".join(queries), dtype=np.uint8).reshape(len(queries), WIDTH)
        lims, dist, ids = self.index.range_search(qs, THRESHOLD + 1)
        out: Triples = []
        for i in range(len(queries)):
            for j, d in zip(
                ids[lims[i] : lims[i + 1]].tolist(),
                dist[lims[i] : lims[i + 1]].tolist(),
                strict=True,
            ):
                out.append((i, self.data[j * WIDTH : (j + 1) * WIDTH].hex(), int(d)))
        return out

    def drop(self) -> None:
        self.index = None


class _ThreatExchange(_Method):
    entries: list[tuple[str, int]]

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        module: Any = importlib.import_module("threatexchange.signal_type.pdq.pdq_index")
        # One query per call never starts faiss's threads (it parallelises over 100+
        # queries); pinned to one anyway, as for the other faiss rows.
        importlib.import_module("faiss").omp_set_num_threads(1)
        self.cls = module.PDQIndex
        self.index: Any = None

    def prepare(self) -> None:
        text = self.data.hex()
        step = 2 * WIDTH
        self.entries = [(text[i * step : (i + 1) * step], i) for i in range(self.n)]

    def build(self) -> None:
        self.index = self.cls.build(self.entries)

    def query(self, queries: list[bytes]) -> Triples:
        out: Triples = []
        for i, q in enumerate(queries):
            for m in self.index.query(q.hex()):
                row = int(m.metadata)
                hit = self.data[row * WIDTH : (row + 1) * WIDTH].hex()
                out.append((i, hit, int(m.similarity_info.distance)))
        return out

    def drop(self) -> None:
        self.index = None


def _method(name: str, data: bytes) -> _Method:
    if name in ("ours", "ours-scan"):
        return _Ours(data, scan=name == "ours-scan")
    if name == "ours-numpy":
        return _Ours(data, scan=False, engine="numpy")
    if name == "numpy":
        return _Numpy(data)
    if name in ("faiss-flat", "faiss-multihash"):
        return _Faiss(data, multihash=name == "faiss-multihash")
    if name == "threatexchange":
        return _ThreatExchange(data)
    raise ValueError(f"unknown method {name}")


def worker(job: dict[str, Any]) -> dict[str, Any]:
    """Build and time one method on one list (runs in a subprocess of its own)."""
    data = Path(job["data"]).read_bytes()
    queries = split(Path(job["queries"]).read_bytes())[: job["count"]]
    method = _method(job["method"], data)
    method.prepare()
    gc.collect()
    reset = _reset_peak()
    baseline = _max_rss()
    builds = []
    for _ in range(job["build_runs"]):
        method.drop()
        gc.collect()
        start = time.perf_counter()
        method.build()
        builds.append(time.perf_counter() - start)
    found = method.query(queries)  # untimed: the answer, and a warm-up
    times = []
    for _ in range(job["runs"]):
        gc.collect()
        start = time.perf_counter()
        method.query(queries)
        times.append(time.perf_counter() - start)
    peak = _max_rss()
    from node.multiindex import engine

    return {
        "engine": engine(),
        "builds": builds,
        "times": times,
        "found": found,
        "baseline": baseline,
        "max_rss": peak,
        "peak_reset": reset,
    }


def incremental(job: dict[str, Any]) -> dict[str, Any]:
    """A 1M ``ListIndex(background=True)`` following two 10k-add deltas under query load."""
    from node.matcher import ListIndex

    data = Path(job["data"]).read_bytes()
    queries = split(Path(job["queries"]).read_bytes())
    adds = int(job["adds"])
    phase = float(job["phase_s"])
    rng = np.random.default_rng([int(job["seed"]), 99])
    batches = [split(snapshot_of(uniform_words(adds, rng))) for _ in range(2)]
    index = ListIndex.from_snapshot("pdq", THRESHOLD, data, background=True)
    del data
    samples: list[tuple[float, float]] = []  # (start, latency)
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            q = queries[i % len(queries)]
            start = time.perf_counter()
            index.match([q])
            samples.append((start, time.perf_counter() - start))
            i += 1

    def visible(batch: list[bytes]) -> bool:
        probe = [batch[0], batch[len(batch) // 2], batch[-1]]
        return all(any(m.distance == 0 for m in ms) for ms in index.match(probe))

    thread = threading.Thread(target=load, name="query-load", daemon=True)
    marks: dict[str, float] = {}
    applies: list[dict[str, float]] = []
    thread.start()
    marks["start"] = time.perf_counter()
    try:
        time.sleep(phase)
        marks["apply"] = time.perf_counter()
        for k, batch in enumerate(batches):
            if k:
                time.sleep(phase)  # queries meanwhile scan the side segment
                marks["rebuild"] = time.perf_counter()
            start = time.perf_counter()
            index.apply([], batch)
            returned = time.perf_counter()
            while not visible(batch):
                if time.perf_counter() - start > 30:
                    raise AssertionError("additions not visible after 30 s")
            applies.append(
                {
                    "apply_s": returned - start,
                    "visible_s": time.perf_counter() - start,
                    "pending": float(index.pending),
                }
            )
        rebuilt = index.wait_for_rebuild(timeout=300)
        marks["after"] = time.perf_counter()
        pending_after = index.pending
        time.sleep(phase)
    finally:
        stop.set()
        thread.join()
    marks["end"] = time.perf_counter()
    bounds = [
        ("before", marks["start"], marks["apply"]),
        ("apply + side segment", marks["apply"], marks["rebuild"]),
    ]
    bounds += [
        ("rebuild", marks["rebuild"], marks["after"]),
        ("after", marks["after"], marks["end"]),
    ]
    phases = []
    for name, lo, hi in bounds:
        lat = sorted(latency for start, latency in samples if lo <= start < hi)
        phases.append(
            {
                "phase": name,
                "seconds": hi - lo,
                "queries": len(lat),
                "p50_s": _pct(lat, 50),
                "p99_s": _pct(lat, 99),
                "max_s": lat[-1] if lat else 0.0,
            }
        )
    return {
        "base": len(index) - 2 * adds,
        "adds": adds,
        "applies": applies,
        "rebuild_s": marks["after"] - marks["rebuild"],
        "rebuilt": rebuilt and pending_after == 0,
        "multi_indexed": index.multi_indexed,
        "phases": phases,
    }


def _pct(sorted_values: Sequence[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    at = min(len(sorted_values) - 1, round(pct / 100 * (len(sorted_values) - 1)))
    return float(sorted_values[at])


def node_rss(job: dict[str, Any]) -> dict[str, Any]:
    """Build the index as the node does, drop the snapshot bytes, report the resident set."""
    from node.matcher import ListIndex
    from node.multiindex import engine

    queries = split(Path(job["queries"]).read_bytes())
    gc.collect()
    before = _max_rss()
    data = Path(job["data"]).read_bytes()
    start = time.perf_counter()
    index = ListIndex.from_snapshot("pdq", THRESHOLD, data, background=True)
    build = time.perf_counter() - start
    n = len(data) // WIDTH
    del data
    gc.collect()
    index.match(queries)
    return {
        "size": n,
        "build_s": build,
        "interpreter_bytes": before,
        "max_rss": _max_rss(),
        "rss_after": _vm_rss(),
        "index_bytes": index.memory_bytes(),
        "multi_indexed": index.multi_indexed,
        "engine": engine(),
    }


JOBS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "method": worker,
    "incremental": incremental,
    "node-rss": node_rss,
}


def run_job(kind: str, job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in a fresh interpreter and return its JSON answer."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--job", kind, json.dumps(job)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{kind} job failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return dict(json.loads(out.stdout))


# -- the whole run ------------------------------------------------------------------------


def _available(method: str) -> str:
    """Empty if the method can run here, else why not."""
    module = {"faiss-flat": "faiss", "faiss-multihash": "faiss", "threatexchange": "threatexchange"}
    name = module.get(method)
    if name is None:
        return ""
    try:
        importlib.import_module(name)
    except ImportError:
        return f"{name} not installed (make bench installs it)"
    return ""


def method_rows(
    n: int, distribution: str, config: Config, work: Path, log: Callable[[str], None]
) -> list[Row]:
    """Every method on one list; recall against ``REFERENCE``."""
    data = make_list(n, distribution, config.seed)
    hashes = len(data) // WIDTH
    data_file, query_file = work / f"{distribution}-{n}.bin", work / f"{distribution}-{n}.q"
    data_file.write_bytes(data)
    query_file.write_bytes(make_queries(data, config.queries, config.seed))
    del data
    order = [REFERENCE] + [m for m in config.methods if m != REFERENCE]
    reference: set[tuple[int, str, int]] | None = None
    rows: list[Row] = []
    for method in order:
        if method not in config.methods and method != REFERENCE:
            continue
        row = Row(distribution, n, method, hashes=hashes)
        why = _available(method)
        if why:
            row.note = why
            rows.append(row)
            continue
        count = query_count(method, n, config.queries)
        build_runs = 1 if n >= LARGE else config.repeats
        log(f"{distribution} {label(n)}: {method} ({count} queries)")
        job = {
            "method": method,
            "data": str(data_file),
            "queries": str(query_file),
            "count": count,
            "runs": config.repeats,
            "build_runs": build_runs,
        }
        try:
            got = run_job("method", job)
        except RuntimeError as e:
            row.note = str(e).splitlines()[-1][:200]
            rows.append(row)
            continue
        found = {(int(q), h, int(d)) for q, h, d in got["found"]}
        if method == REFERENCE:
            reference = found
        row.queries = count
        row.runs = len(got["times"])
        row.query_times = got["times"]
        row.qps = count / statistics.median(got["times"])
        row.build_runs = len(got["builds"])
        row.build_s = statistics.median(got["builds"])
        row.peak_bytes = max(0, int(got["max_rss"]) - int(got["baseline"]))
        if not got["peak_reset"]:
            row.note = "peak not reset: memory is above the input's own peak"
        if method == "ours" and got.get("engine") != "kernel":
            row.note = "; ".join(p for p in ("kernel not built: numpy answered", row.note) if p)
        row.max_rss_bytes = int(got["max_rss"])
        if reference is not None:
            expected = {t for t in reference if t[0] < count}
            row.expected = len(expected)
            row.recall = len(found & expected) / len(expected) if expected else 1.0
            row.extra = len(found - expected)
        if method == REFERENCE:
            row.note = "; ".join(p for p in ("reference for recall", row.note) if p)
        rows.append(row)
    if REFERENCE not in config.methods:
        rows = [r for r in rows if r.method != REFERENCE]
    return sorted(rows, key=lambda r: list(METHODS).index(r.method))


def aim_note(row: Row) -> str:
    """The aim a row is judged against, and whether it was met; empty if none."""
    if row.method != "ours":
        return ""
    if row.size == 1_000_000:
        ok = row.qps >= AIMS["qps_min_at_1M"] and row.recall == AIMS["recall_at_1M"]
        return f"aim ≥ {AIMS['qps_min_at_1M']:,.0f} q/s, recall 1.0: {'met' if ok else 'NOT met'}"
    if row.size == 10_000_000:
        ok = row.qps >= AIMS["qps_min_at_10M"] and row.recall == AIMS["recall_at_10M"]
        return f"aim ≥ {AIMS['qps_min_at_10M']:,.0f} q/s, recall 1.0: {'met' if ok else 'NOT met'}"
    return ""


def run(config: Config, log: Callable[[str], None]) -> dict[str, Any]:
    """Every measurement of ``config``; the JSON document ``--json`` prints."""
    started = time.time()
    info = machine()
    rows: list[Row] = []
    incremental_doc: dict[str, Any] | None = None
    node_doc: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="hashhub-matcher-bench-") as tmp:
        work = Path(tmp)
        for n in config.sizes:
            for distribution in config.distributions:
                rows += method_rows(n, distribution, config, work, log)
        if config.incremental_base:
            n = config.incremental_base
            data = make_list(n, "uniform", config.seed)
            data_file, query_file = work / f"inc-{n}.bin", work / f"inc-{n}.q"
            data_file.write_bytes(data)
            query_file.write_bytes(make_queries(data, config.queries, config.seed))
            del data
            log(f"incremental: {label(n)} + 2 × {config.incremental_adds}")
            job = {
                "data": str(data_file),
                "queries": str(query_file),
                "adds": config.incremental_adds,
                "phase_s": config.incremental_phase_s,
                "seed": config.seed,
            }
            try:
                incremental_doc = run_job("incremental", job)
            except RuntimeError as e:  # the other figures still stand
                log(f"incremental failed: {e}")
        if config.node_rss_size:
            n = config.node_rss_size
            data_file, query_file = work / f"uniform-{n}.bin", work / f"uniform-{n}.q"
            if not data_file.exists():
                data = make_list(n, "uniform", config.seed)
                data_file.write_bytes(data)
                query_file.write_bytes(make_queries(data, config.queries, config.seed))
                del data
            log(f"node resident memory: {label(n)}")
            try:
                node_doc = run_job("node-rss", {"data": str(data_file), "queries": str(query_file)})
            except RuntimeError as e:
                log(f"node resident memory failed: {e}")
    return {
        "machine": info,
        "config": asdict(config),
        "aims": AIMS,
        "methods": METHODS,
        "rows": [asdict(r) | {"aim": aim_note(r)} for r in rows],
        "incremental": incremental_doc,
        "node_rss": node_doc,
        "seconds": time.time() - started,
    }


# -- output ------------------------------------------------------------------------------


def format_text(doc: dict[str, Any]) -> str:
    """A plain table of ``run``'s document."""
    info = doc["machine"]
    lines = [
        f"machine: {info['platform']} | {info['cpu']} | {info['cpu_count']} CPUs | "
        f"{info['python']} | numpy {info['numpy']} | faiss {info['faiss'] or '-'} | "
        f"threatexchange {info['threatexchange'] or '-'} | load {info['load_1min']}",
        "",
        f"{'list':10} {'size':>5} {'method':40} {'q':>4} {'q/s':>10} {'× ours':>7} "
        f"{'recall':>7} {'extra':>5} {'build s':>8} {'peak MB':>8}  note",
        "-" * 130,
    ]
    ours: dict[tuple[str, int], float] = {}
    previous = None
    for row in doc["rows"]:
        key = (row["distribution"], row["size"])
        if row["method"] == "ours":
            ours[key] = row["qps"]
        if previous is not None and key != previous:
            lines.append("")
        previous = key
        ratio = ours.get(key, 0.0) / row["qps"] if row["qps"] and ours.get(key) else None
        recall = "-" if row["recall"] is None else f"{row['recall']:.4f}"
        note = "; ".join(p for p in (row["aim"], row["note"]) if p)
        lines.append(
            f"{row['distribution']:10} {label(row['size']):>5} {METHODS[row['method']]:40} "
            f"{row['queries']:>4} {row['qps']:>10,.1f} "
            f"{'-' if ratio is None else f'{ratio:.1f}':>7} {recall:>7} {row['extra']:>5} "
            f"{row['build_s']:>8.2f} {row['peak_bytes'] / 1e6:>8.0f}  {note}".rstrip()
        )
    inc = doc.get("incremental")
    if inc:
        lines += ["", f"incremental: {label(inc['base'])} + {inc['adds']} + {inc['adds']}"]
        for k, a in enumerate(inc["applies"]):
            lines.append(
                f"  delta {k + 1}: apply {a['apply_s'] * 1000:.1f} ms, visible "
                f"{a['visible_s'] * 1000:.1f} ms, pending after {a['pending']:.0f}"
            )
        lines.append(f"  rebuild {inc['rebuild_s']:.2f} s, completed: {inc['rebuilt']}")
        for p in inc["phases"]:
            lines.append(
                f"  {p['phase']:22} {p['queries']:>7} queries  p50 {p['p50_s'] * 1000:.3f} ms  "
                f"p99 {p['p99_s'] * 1000:.3f} ms  max {p['max_s'] * 1000:.3f} ms"
            )
    node = doc.get("node_rss")
    if node:
        lines += [
            "",
            f"node resident memory at {label(node['size'])}: peak {node['max_rss'] / 1e9:.3f} GB, "
            f"after build {node['rss_after'] / 1e9:.3f} GB, "
            f"index {node['index_bytes'] / 1e9:.3f} GB, "
            f"build {node['build_s']:.1f} s, engine {node.get('engine', '-')}",
        ]
    lines.append(f"\ntotal {doc['seconds']:.0f} s")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> tuple[Config, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="100k only, delta 3k on 100k, no node memory at 10M"
    )
    parser.add_argument("--sizes", help="list sizes, comma-separated (default 100k,1M,10M)")
    parser.add_argument("--distributions", help="uniform,clustered (default both)")
    parser.add_argument("--methods", help=f"which of {','.join(METHODS)} (default all)")
    parser.add_argument("--queries", type=int, help="queries per batch (default 256)")
    parser.add_argument("--repeats", type=int, help="timed runs per figure, median kept (3)")
    parser.add_argument(
        "--incremental-base", type=int, help="list size for the delta (1M; 0: skip)"
    )
    parser.add_argument("--incremental-adds", type=int, help="additions per delta (10000)")
    parser.add_argument(
        "--incremental-phase-s", type=float, help="seconds of queries between steps (1.0)"
    )
    parser.add_argument(
        "--node-rss-size", type=int, help="list size for node memory (10M; 0: skip)"
    )
    parser.add_argument("--json", action="store_true", help="the document as JSON")
    args = parser.parse_args(argv)
    base = (
        Config(
            sizes=(100_000,), incremental_base=100_000, incremental_adds=3_000, node_rss_size=None
        )
        if args.quick
        else Config()
    )
    over: dict[str, Any] = {}
    if args.sizes:
        over["sizes"] = tuple(int(s) for s in args.sizes.split(","))
    if args.distributions:
        over["distributions"] = tuple(s.strip() for s in args.distributions.split(","))
        if set(over["distributions"]) - set(DISTRIBUTIONS):
            parser.error(f"distributions are {', '.join(DISTRIBUTIONS)}")
    if args.methods:
        over["methods"] = tuple(s.strip() for s in args.methods.split(","))
        if set(over["methods"]) - set(METHODS):
            parser.error(f"methods are {', '.join(METHODS)}")
    for name in (
        "queries",
        "repeats",
        "incremental_base",
        "incremental_adds",
        "incremental_phase_s",
    ):
        if getattr(args, name) is not None:
            over[name] = getattr(args, name)
    if args.node_rss_size is not None:
        over["node_rss_size"] = args.node_rss_size or None
    config = Config(**(asdict(base) | over))
    if min(config.sizes) < 1 or config.queries < 2 or config.repeats < 1:
        parser.error("sizes, queries (≥ 2) and repeats must be positive")
    return config, args.json


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--job"]:
        print(json.dumps(JOBS[args[1]](json.loads(args[2]))))
        return 0
    config, as_json = parse_args(args)
    doc = run(config, lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps(doc, indent=2) if as_json else format_text(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
