"""Video matching benchmark: the node's frame index against python-threatexchange's vPDQ.

One question, asked of ``node.video_index.VideoIndex`` and answered next to the peer
measured in the same run: how long does matching a one-minute video against a list
of 100,000 listed videos take, and what does the index cost to build and to hold?

**The list.** ``--videos`` listed videos (100,000) of ``--frames`` frames (60: one
minute at one frame a second), 6M frames. Synthetic PDQ frames: a video's first
frame is a random 256-bit hash, and each next frame is the one before with ``DRIFT``
bit positions flipped (drawn with replacement, so at most ``DRIFT`` bits change):
neighbouring frames lie within a few bits and frames half a minute apart about 80
bits apart, as frames of one scene drift. Qualities: ``LOW_SHARE`` of the frames
(as fades and dark frames are) are of quality 0 to 49 and left out by the rule, the
rest 50 to 100.

**The queries.** ``--queries`` (50) of each kind, 60 frames each:

- *copy*: a listed video picked at random, re-encoded: each frame with 0 to
  ``REENCODE_FLIPS`` (20) distinct bits flipped; the listed video must match;
- *unrelated*: a fresh video made the same way; nothing may match.

**The methods**, one core each, in one process, one after the other:

- ``ours``: ``VideoIndex.build`` from the ``Frame``s of every video, then
  ``match(frames)`` per query: distinct good frames in the exact multi-index, one
  batched probe per query, §6.4's counts per candidate entry;
- ``threatexchange``: python-threatexchange's ``VPDQIndex``
  (``threatexchange.extensions.vpdq``, which HMA's vPDQ signal type indexes with),
  built with ``VPDQIndex.build`` from ``(json, id)`` pairs (its own serialization of
  a video's features) and asked one video per ``query`` call; it keeps a faiss
  ``IndexBinaryFlat`` of the distinct frames and scans it (``range_search``), with
  faiss held to one thread. Where faiss is not importable, its brute matcher
  ``match_VPDQ_hash_brute`` runs against ``PEER_SAMPLE`` videos per query (the
  copy's own video among them), on the first ``PEER_BRUTE_QUERIES`` queries of each
  kind, and the time is scaled linearly to the whole list; the row says so.

*build*: seconds from the input in memory (``Frame``s for ours, JSON strings for the
peer) to an index that answers. *peak MB*: how far the process's peak resident set
(``VmHWM``, reset through ``/proc/self/clear_refs`` before the build) rose above its
resident set with the input loaded. *index MB* (ours): the bytes of the index's
arrays. Query times are per query: median and 99th percentile. *× ours*: the peer's
median divided by ours.

**Aim:** a one-minute query against 100,000 listed videos in well under a second:
median and p99 under ``AIMS['query_s_max']``.

Run: ``python bench/video_bench.py [--quick] [--json] [--videos N] [--frames F]
[--queries K] [--methods ours,threatexchange]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

if __package__ in (None, ""):  # run as a script: the project's packages are beside bench/
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from node.video_index import VideoIndex
from protocol.video import MAX_FRAME_DISTANCE, MIN_QUALITY, Frame

Q = TypeVar("Q")
H = TypeVar("H")

__all__ = ["AIMS", "METHODS", "Config", "Row", "main", "make_videos", "reencode", "run"]

DRIFT = 4
"""Bit positions drawn, with replacement, to flip from one frame to the next."""
LOW_SHARE = 0.05
"""Share of frames of low quality (below ``MIN_QUALITY``)."""
REENCODE_FLIPS = 20
"""A re-encoded copy's frame differs from the listed one by at most this many bits."""
PEER_SAMPLE = 100
"""Videos the peer's brute matcher compares per query when faiss is missing (it
compares every pair of frames as hex strings, in Python: slow)."""
PEER_BRUTE_QUERIES = 5
"""Queries of each kind the brute matcher answers when faiss is missing."""
MILLIS_PER_FRAME = 1000

METHODS: dict[str, str] = {
    "ours": "ours: VideoIndex (multi-index)",
    "threatexchange": "threatexchange VPDQIndex",
}
AIMS: dict[str, float] = {"query_s_max": 1.0}


@dataclass(frozen=True)
class Config:
    """What one run measures (from the command line)."""

    videos: int = 100_000
    frames: int = 60
    queries: int = 50
    methods: tuple[str, ...] = tuple(METHODS)
    seed: int = 11


QUICK = Config(videos=5_000, queries=50)


@dataclass
class Row:
    """One method over the list.

    Attributes:
        method: a key of ``METHODS``.
        build_s: seconds to build the index from the input in memory.
        index_bytes: bytes of the index's arrays (0 when not known).
        peak_bytes: growth of the peak resident set over the loaded input.
        times: per query kind (``copy``, ``unrelated``), each query's seconds.
        matched: per query kind, how many queries matched anything.
        found: copies whose own listed video was among the matches.
        extrapolated_from: videos compared per query when the time is scaled up.
        note: a remark, or why the method did not run.
    """

    method: str
    build_s: float = 0.0
    index_bytes: int = 0
    peak_bytes: int = 0
    times: dict[str, list[float]] = field(default_factory=dict)
    matched: dict[str, int] = field(default_factory=dict)
    found: int = 0
    extrapolated_from: int = 0
    note: str = ""

    def summary(self) -> dict[str, Any]:
        """The row as JSON: medians and p99s instead of every time."""
        out = asdict(self)
        del out["times"]
        out["label"] = METHODS[self.method]
        out["query"] = {
            kind: {
                "queries": len(ts),
                "median_s": statistics.median(ts) if ts else None,
                "p99_s": percentile(ts, 99) if ts else None,
                "max_s": max(ts) if ts else None,
                "matched": self.matched.get(kind, 0),
            }
            for kind, ts in self.times.items()
        }
        return out


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile, nearest rank."""
    ranked = sorted(values)
    rank = max(1, min(len(ranked), int(np.ceil(pct / 100 * len(ranked)))))
    return ranked[rank - 1]


# -- the data ---------------------------------------------------------------------------------


def _flip_masks(shape: tuple[int, ...], flips: int, rng: np.random.Generator) -> NDArray[np.uint64]:
    """Masks of shape ``shape + (4,)``, each ``flips`` random bit positions XORed in."""
    masks = np.zeros((*shape, 4), dtype=np.uint64)
    for _ in range(flips):
        pos = rng.integers(0, 256, size=shape)
        word, bit = pos // 64, (pos % 64).astype(np.uint64)
        one = np.left_shift(np.uint64(1), bit)
        for w in range(4):
            masks[..., w] ^= np.where(word == w, one, np.uint64(0))
    return masks


def make_videos(
    count: int, frames: int, rng: np.random.Generator
) -> tuple[NDArray[np.uint64], NDArray[np.uint8]]:
    """``count`` videos: hashes ``(count, frames, 4)`` as big-endian words, qualities
    ``(count, frames)``. Frame ``n + 1`` is frame ``n`` with ``DRIFT`` draws flipped."""
    start = rng.integers(0, 2**64, size=(count, 1, 4), dtype=np.uint64)
    steps = _flip_masks((count, frames), DRIFT, rng)
    steps[:, 0] = 0
    hashes = np.bitwise_xor.accumulate(steps, axis=1) ^ start
    low = rng.random((count, frames)) < LOW_SHARE
    quality = np.where(
        low,
        rng.integers(0, MIN_QUALITY, size=(count, frames)),
        rng.integers(MIN_QUALITY, 101, size=(count, frames)),
    ).astype(np.uint8)
    return hashes, quality


def reencode(hashes: NDArray[np.uint64], rng: np.random.Generator) -> NDArray[np.uint64]:
    """Each frame with 0 to ``REENCODE_FLIPS`` distinct bits flipped."""
    out = hashes.copy()
    for f in range(hashes.shape[0]):
        bits = rng.choice(256, size=int(rng.integers(0, REENCODE_FLIPS + 1)), replace=False)
        for b in bits.tolist():
            out[f, b // 64] ^= np.uint64(1) << np.uint64(63 - b % 64)
    return out


def to_frames(hashes: NDArray[np.uint64], quality: NDArray[np.uint8]) -> list[Frame]:
    """One video's ``Frame``s, one second apart."""
    data = hashes.astype(">u8").tobytes()
    return [
        Frame(millis=n * MILLIS_PER_FRAME, pdq=data[n * 32 : (n + 1) * 32], quality=q)
        for n, q in enumerate(quality.tolist())
    ]


def to_signal(hashes: NDArray[np.uint64], quality: NDArray[np.uint8]) -> str:
    """One video in python-threatexchange's vPDQ serialization (a JSON list of
    ``hex,quality,seconds``), what its ``VPDQIndex`` is built from and queried with."""
    hexes = hashes.astype(">u8").tobytes().hex()
    return json.dumps(
        [
            f"{hexes[n * 64 : (n + 1) * 64]},{q},{n * MILLIS_PER_FRAME / 1000:.3f}"
            for n, q in enumerate(quality.tolist())
        ]
    )


@dataclass
class Workload:
    """The listed videos and the queries, in the raw form both methods start from."""

    hashes: NDArray[np.uint64]
    quality: NDArray[np.uint8]
    copies: list[tuple[int, NDArray[np.uint64], NDArray[np.uint8]]]
    unrelated: list[tuple[NDArray[np.uint64], NDArray[np.uint8]]]


def workload(config: Config) -> Workload:
    rng = np.random.default_rng(config.seed)
    hashes, quality = make_videos(config.videos, config.frames, rng)
    picks = rng.integers(0, config.videos, size=config.queries).tolist()
    copies = [(i, reencode(hashes[i], rng), quality[i].copy()) for i in picks]
    others_h, others_q = make_videos(config.queries, config.frames, rng)
    return Workload(hashes, quality, copies, list(zip(others_h, others_q, strict=True)))


def entry_id(i: int) -> str:
    return f"video-{i:07d}"


# -- memory --------------------------------------------------------------------------------------


def _status(name: str) -> int:
    """A ``Vm*`` figure of this process from ``/proc/self/status``, in bytes (0 if none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak() -> int:
    """Reset the peak resident set to the current one; the current one."""
    gc.collect()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


# -- the methods -----------------------------------------------------------------------------------


def run_ours(work: Workload, log: Callable[[str], None]) -> Row:
    row = Row("ours")
    entries = {
        entry_id(i): to_frames(work.hashes[i], work.quality[i]) for i in range(len(work.hashes))
    }
    copies = [(entry_id(i), to_frames(h, q)) for i, h, q in work.copies]
    unrelated = [to_frames(h, q) for h, q in work.unrelated]
    base = _reset_peak()
    start = time.perf_counter()
    index = VideoIndex.build(entries)
    row.build_s = time.perf_counter() - start
    row.peak_bytes = _status("VmHWM") - base
    row.index_bytes = index.nbytes
    log(f"ours: built in {row.build_s:.1f} s, {index.rows:,} distinct frames")
    index.match(unrelated[0])  # warm: the first call pages the arrays in
    _time_queries(row, index.match, lambda r: r.entry, copies, unrelated)
    return row


def _time_queries(
    row: Row,
    query: Callable[[Q], Sequence[H]],
    entry_of: Callable[[H], object],
    copies: Sequence[tuple[object, Q]],
    unrelated: Sequence[Q],
) -> None:
    """Time ``query`` on each copy (whose listed video's index it should find, by
    ``entry_of`` each hit) and each unrelated video, into ``row``."""
    row.times = {"copy": [], "unrelated": []}
    row.matched = {"copy": 0, "unrelated": 0}
    for want, item in copies:
        start = time.perf_counter()
        results = query(item)
        row.times["copy"].append(time.perf_counter() - start)
        row.matched["copy"] += bool(results)
        row.found += any(entry_of(r) == want for r in results)
    for item in unrelated:
        start = time.perf_counter()
        results = query(item)
        row.times["unrelated"].append(time.perf_counter() - start)
        row.matched["unrelated"] += bool(results)


def _peer_modules() -> tuple[Any, Any, str]:
    """The peer's index class (None without faiss), its brute matcher, and a note."""
    from threatexchange.extensions.vpdq import vpdq_brute_matcher

    try:
        import faiss
        from threatexchange.extensions.vpdq.vpdq_index import VPDQIndex
    except ImportError as e:
        return None, vpdq_brute_matcher, f"faiss not importable ({e})"
    faiss.omp_set_num_threads(1)
    return VPDQIndex, vpdq_brute_matcher, ""


def run_peer(work: Workload, log: Callable[[str], None]) -> Row:
    row = Row("threatexchange")
    try:
        index_cls, brute, missing = _peer_modules()
    except ImportError as e:
        row.note = f"not installed ({e})"
        return row
    copies = [(i, to_signal(h, q)) for i, h, q in work.copies]
    unrelated = [to_signal(h, q) for h, q in work.unrelated]
    row.times = {"copy": [], "unrelated": []}
    row.matched = {"copy": 0, "unrelated": 0}
    if index_cls is None:
        return _run_peer_brute(work, brute, copies, unrelated, row, missing)
    signals = [(to_signal(work.hashes[i], work.quality[i]), i) for i in range(len(work.hashes))]
    base = _reset_peak()
    start = time.perf_counter()
    index = index_cls.build(signals)
    row.build_s = time.perf_counter() - start
    row.peak_bytes = _status("VmHWM") - base
    log(f"threatexchange: built in {row.build_s:.1f} s")
    index.query(unrelated[0])
    _time_queries(row, index.query, lambda m: m.metadata, copies, unrelated)
    row.note = "faiss IndexBinaryFlat, one thread"
    return row


def _run_peer_brute(
    work: Workload,
    brute: Any,
    copies: list[tuple[int, str]],
    unrelated: list[str],
    row: Row,
    missing: str,
) -> Row:
    """Without faiss: the peer's brute matcher over a sample, scaled to the list."""
    from threatexchange.extensions.vpdq.vpdq_util import json_to_vpdq

    total = len(work.hashes)
    sample = min(PEER_SAMPLE, total)
    listed = [json_to_vpdq(to_signal(work.hashes[i], work.quality[i])) for i in range(sample)]
    scale = total / sample
    for kind, signals in (("copy", [s for _, s in copies]), ("unrelated", unrelated)):
        for n, signal in enumerate(signals[:PEER_BRUTE_QUERIES]):
            query = json_to_vpdq(signal)
            # The copy's own video among the sample, so that a match is seen.
            listed_at = work.copies[n][0]
            own = (
                [json_to_vpdq(to_signal(work.hashes[listed_at], work.quality[listed_at]))]
                if kind == "copy"
                else []
            )
            start = time.perf_counter()
            hits = 0
            for other in [*own, *listed[: sample - len(own)]]:
                result = brute.match_VPDQ_hash_brute(query, other, MIN_QUALITY, MAX_FRAME_DISTANCE)
                hits += result.query_match_percent >= 80.0
            row.times[kind].append((time.perf_counter() - start) * scale)
            row.matched[kind] += hits > 0
    row.found = row.matched["copy"]
    row.extrapolated_from = sample
    row.note = (
        f"{missing}: match_VPDQ_hash_brute over {sample:,} videos per query, "
        f"time scaled ×{scale:g} to {total:,}, first {PEER_BRUTE_QUERIES} queries of each kind"
    )
    return row


RUNNERS: dict[str, Callable[[Workload, Callable[[str], None]], Row]] = {
    "ours": run_ours,
    "threatexchange": run_peer,
}


# -- the run -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "numpy": np.__version__,
        "faiss": installed("faiss-cpu"),
        "threatexchange": installed("threatexchange"),
        "vpdq": installed("vpdq"),
    }


def run(config: Config, log: Callable[[str], None]) -> dict[str, Any]:
    """Every measurement of ``config``; the JSON document ``--json`` prints."""
    start = time.perf_counter()
    work = workload(config)
    log(
        f"workload: {config.videos:,} videos × {config.frames} frames in "
        f"{time.perf_counter() - start:.1f} s"
    )
    rows = []
    for method in config.methods:
        rows.append(RUNNERS[method](work, log).summary())
        gc.collect()
    by = {r["method"]: r for r in rows}
    ratios: dict[str, float | None] = {}
    if "ours" in by and "threatexchange" in by:
        for kind in ("copy", "unrelated"):
            ours = by["ours"]["query"].get(kind, {}).get("median_s")
            peer = by["threatexchange"]["query"].get(kind, {}).get("median_s")
            ratios[kind] = peer / ours if ours and peer else None
    ours_row = by.get("ours")
    met = None
    if ours_row is not None:
        worst = max(q["p99_s"] for q in ours_row["query"].values())
        met = worst < AIMS["query_s_max"]
    return {
        "config": asdict(config),
        "listed_frames": config.videos * config.frames,
        "machine": machine(),
        "rows": rows,
        "ratios": ratios,
        "aims": AIMS,
        "met": met,
    }


def format_text(doc: dict[str, Any]) -> str:
    config = doc["config"]
    lines = [
        f"{config['videos']:,} videos × {config['frames']} frames "
        f"({doc['listed_frames']:,} frames), {config['queries']} queries of each kind",
        f"{'method':34} {'build s':>8} {'peak MB':>8} {'kind':>10} {'median ms':>10} "
        f"{'p99 ms':>8} {'matched':>8} {'× ours':>7}",
    ]
    for row in doc["rows"]:
        for kind, q in row["query"].items():
            ratio = doc["ratios"].get(kind) if row["method"] != "ours" else None
            lines.append(
                f"{row['label']:34} {row['build_s']:8.1f} {row['peak_bytes'] / 1e6:8.0f} "
                f"{kind:>10} {q['median_s'] * 1000:10.2f} {q['p99_s'] * 1000:8.2f} "
                f"{q['matched']:4}/{q['queries']:<3} {'' if ratio is None else f'{ratio:7.1f}'}"
            )
        if row["note"]:
            lines.append(f"  {row['note']}")
    lines.append(f"aim: ours' p99 < {AIMS['query_s_max']} s: {'met' if doc['met'] else 'NOT met'}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> tuple[Config, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="5,000 videos")
    parser.add_argument("--videos", type=int, help="listed videos (default 100000)")
    parser.add_argument("--frames", type=int, help="frames per video (default 60)")
    parser.add_argument("--queries", type=int, help="queries of each kind (default 50)")
    parser.add_argument("--methods", help=f"which of {','.join(METHODS)} (default all)")
    parser.add_argument("--json", action="store_true", help="the document as JSON")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else Config()
    changes: dict[str, Any] = {}
    for name in ("videos", "frames", "queries"):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                parser.error(f"--{name} must be at least 1")
            changes[name] = value
    if args.methods:
        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        if set(methods) - set(METHODS):
            parser.error(f"methods are {', '.join(METHODS)}")
        changes["methods"] = methods
    fields = {**asdict(config), **changes}
    return Config(**fields), args.json


def main(argv: Sequence[str] | None = None) -> int:
    config, as_json = parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    doc = run(config, log)
    print(json.dumps(doc, indent=2) if as_json else format_text(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
