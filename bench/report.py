"""Run every benchmark and rewrite ``docs/benchmarks.md`` from their figures.

``make bench`` runs this. Each bench runs as a subprocess with ``--json`` (protocol,
hub, node with its sync rows, matcher), one after the other so that none competes
with another for the two cores; then the page is written from templates: the prose
that says what each bench measures and why, and tables filled with this run's
figures, each row with its aim and whether it was met. The machine (CPU model,
cores, memory), the versions (Python, numpy, faiss, threatexchange, Pillow,
OpenSSL), the date, the load average and each bench's duration head the page.

The node bench's own match rows are not run: the matcher bench measures the same
index at more sizes, on two kinds of list and against more peers.

Run: ``python bench/report.py [--quick] [--only matcher,node] [--json-dir DIR]
[--from-json DIR] [--out docs/benchmarks.md]``. ``--from-json`` re-renders the page
from the JSON a previous run saved with ``--json-dir``, without measuring.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["BENCHES", "machine", "main", "render"]

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DOC = ROOT / "docs" / "benchmarks.md"

BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "protocol": (["protocol_bench.py", "--json"], ["--quick"]),
    "hub": (["hub_bench.py", "--json"], ["--quick"]),
    "node": (
        ["node_bench.py", "--json", "--sections", "hash,fidelity,sync,registry,entries"],
        ["--quick"],
    ),
    "matcher": (["matcher_bench.py", "--json"], ["--quick"]),
    "load": (["load_bench.py", "--json"], ["--quick"]),
    "upload": (["upload_bench.py", "--json"], ["--quick"]),
    "federation": (["federation_bench.py", "--json"], ["--quick"]),
    "video": (["video_bench.py", "--json"], ["--quick"]),
    "video-hash": (["video_hash_bench.py", "--json"], ["--quick"]),
}
"""Each bench: its script and arguments, and what ``--quick`` adds."""


# -- the machine ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """The machine and the versions the figures depend on."""
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "numpy": _version("numpy"),
        "faiss": _version("faiss-cpu"),
        "threatexchange": _version("threatexchange"),
        "pillow": _version("pillow"),
        "openssl": ssl.OPENSSL_VERSION,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_1min": round(os.getloadavg()[0], 2),
    }


# -- running ---------------------------------------------------------------------------------


def run_bench(name: str, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Run one bench with ``--json``; its document, with its duration and load average."""
    args, quick_args = BENCHES[name]
    cmd = [sys.executable, str(BENCH_DIR / args[0]), *args[1:], *(quick_args if quick else [])]
    log(f"running {name}: {' '.join(cmd[2:])}")
    load = round(os.getloadavg()[0], 2)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    start = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    seconds = time.monotonic() - start
    if out.returncode != 0:
        raise RuntimeError(f"{name} bench failed ({out.returncode}):\n{out.stderr[-3000:]}")
    doc: dict[str, Any] = json.loads(out.stdout)
    shown = [f"bench/{args[0]}", *cmd[2:]]  # relative: the page names no machine path
    doc["_run"] = {
        "seconds": seconds,
        "load_1min": load,
        "command": " ".join(shown),
        "started": started,
    }
    log(f"{name}: {seconds:.0f} s")
    return doc


# -- formatting -----------------------------------------------------------------------------


def label(n: int) -> str:
    """``1000000`` → ``1M``, ``100000`` → ``100k``."""
    for unit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= unit and (n * 100) % unit == 0:
            return f"{n / unit:g}{suffix}"
    return str(n)


def table(head: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A Markdown table; ``align`` is one letter per column (``l`` or ``r``)."""
    align = align or "l" * len(head)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def met(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**NOT met**")


def num(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _note_met(note: str) -> bool | None:
    if "NOT met" in note:
        return False
    if ": met" in note:
        return True
    return None


# -- the sections -----------------------------------------------------------------------------

HEAD = """# Benchmarks

This page is written by `bench/report.py` (`make bench`) from the figures of one
run of each bench (one bench can be run again with `--only` and the page rendered
from the saved figures: each bench's row below says when it ran); do not edit it
by hand, edit the templates in `bench/report.py`. Each table
row carries its aim and whether this run met it. Timings are wall-clock; the
matcher's are medians of several runs, the other benches report the best of
several runs (the column says how many). The load average is the 1-minute figure
when each bench started: this machine has {cores} cores, and any other work on it
slows the figures down.
"""

PROTOCOL_PROSE = """## Protocol: the state digest, one verify+apply, and what metadata costs

`bench/protocol_bench.py` measures the two costs the protocol promises to keep
small, and what entry records cost against bare hashes.

**1. The state digest against SHA-256 itself.** A list's state digest is SHA-256
over its hashes sorted ascending and concatenated (see [PROTOCOL.md](../PROTOCOL.md)).
`ListState` keeps exactly those bytes in one buffer
([ADR 0005](adr/0005-state-as-sorted-bytes.md)), so computing the digest should
cost no more than `hashlib.sha256` over the same bytes, which is the limit. The
bench builds a state of N random PDQ-width (32-byte) hashes and times
`ListState.digest()`, `StateDigest.of_bytes` and `hashlib.sha256(...).hexdigest()`
over the same sorted buffer, in turn within each repeat so that any change in
machine speed affects all three. The `% hashlib` column is hashlib's time divided
by ours. **Aim: ≥ 80 %.** Figures slightly above 100 % are noise, not a speed-up:
the digest is one `hashlib.sha256` call over the state's buffer.

It also times two one-off costs, for information: `ListState.from_hashes` (an
unsorted iterable of `bytes`: the publisher's way in, one Python object per hash)
and `ListState.from_snapshot` (the strict ascending check a node runs once, when
it bootstraps from a snapshot). At 10M they run once.

**2. Verify+apply of one delta, the way a node does it.** A `Publisher` publishes
version 1 (1M random hashes, with its snapshot), version 2 (10k random additions)
and version 3 (10k removals of present hashes + 10k new additions). A verifier that
bootstrapped to version 1 from the snapshot then runs, timed end to end:
`TrustedHub.begin_update(trust, checkpoint)` (both checkpoint signature thresholds,
freshness, rollback), `add_header` (delta-role signature, chain, Merkle root against
the checkpoint), `add_body` (length, SHA-256, strict parse) and `ListUpdate.apply`
(base digest check, `ListState.apply`, result digest against the signed
`result_state`). The same steps are then timed one by one, so the phases add up to
about the total. `ListState.apply` takes most of it: a binary search over the state
buffer per changed hash, then one join. **Aim: under 0.5 s for 10k changes on a
1M-hash state.**

**3. Entry records against bare hashes** (the `entries` rows). The same 1M random
PDQ hashes as a `hashes` list and as an `entries` list (one record line each: an
entry id as the hub makes them, terms of a three-term vocabulary, times, every tenth
with an expiry), side by side, the entries figure also as a ratio to the bare one in
its note: snapshot bytes, the bytes the loaded state holds in memory (traced with
`tracemalloc`), loading the snapshot (`EntryState.from_snapshot`: grammar,
vocabulary, order, each hash and entry id once; against `ListState.from_snapshot`),
the state digest, and the verify+apply of a body of 10k additions
(`EntriesBody.from_bytes` + `check_vocabulary` + `check_times` + `EntryState.apply`,
then those phases; against `DeltaBody.from_bytes` + `ListState.apply`). No aim:
these are costs to know.

MB means 10⁶ bytes. Random hashes come from `os.urandom`; only the reference buffer
for the hashlib rows is sorted with numpy, and the bench checks that
`ListState.from_hashes` yields the same bytes and that `digest()` equals hashlib's.
"""

MATCHER_PROSE = """## Matcher: PDQ at 100k, 1M and 10M hashes, against the peers

`bench/matcher_bench.py` measures the node's matcher (`node/matcher.py`, exact
multi-index hashing: [ADR 0012](adr/0012-exact-multi-index-matching.md)) next to
the indexes the peers use, on the same lists and queries, each method in a
subprocess of its own.

**The lists.** *Uniform*: random 256-bit hashes. *Clustered*: families of
near-duplicates, as real lists hold (the same picture re-encoded, cropped,
captioned): a tenth of the hashes are random family centres, and every other hash
is a centre picked at random with 1 to 30 bits flipped (the count uniform, the
positions drawn with replacement), so families average 10 hashes and many members
of one family lie within 31 bits of each other. A clustered list puts more hashes
in some multi-index buckets; the answer stays exact, only the work per query
grows.

**The queries.** 256 per run, at the usual PDQ threshold of 31 bits: even ones are
listed hashes with 0-31 distinct random bits flipped (so there are matches to find,
in a clustered list often several per query), odd ones are random.

**The methods.**
- *ours: ListIndex (multi-index)*: the node's index as the node builds it. Under 3M
  hashes, 16 slots of 16 bits probed within 1 bit; from 3M on, 12 slots
  of 21 or 22 bits probed within 2 bits (a tenth as many hashes per bucket, a
  quarter as many candidates at 10M). Either way the pigeonhole rule finds every
  hash within 31 bits. The candidates are generated and checked by the compiled
  kernel (`node/multiindex_kernel.c`), which prefetches bucket bounds, row numbers
  and hashes ahead of use; each candidate's exact distance comes from one cache
  line. The note says so if the kernel was not built and numpy answered.
- *ours: ListIndex (multi-index, numpy)*: the same index built and queried through
  its numpy path, the reference the kernel is tested against: the kernel's gain.
- *ours: ListIndex, full scan*: the same index with the multi-index off (as lists
  under 32,768 hashes run): blocks of 16,384 packed hashes, 32 queries per block, a
  two-word bound that never exceeds the true distance. It is the exact reference for
  the recall column.
- *numpy full scan*: `bitwise_count(rows ^ q).sum(axis=1) <= 31` per query over an
  `(n, 4)` array (fewer queries at 1M and 10M; the `q` column says how many).
- *faiss IndexBinaryFlat*: `range_search` with radius 32 (faiss counts distances
  strictly below it), one thread.
- *faiss IndexBinaryMultiHash(256,16,16)*: 16 hash tables of 16 bits, `nflip = 1`
  (31 // 16), `range_search` radius 32, one thread: what python-threatexchange's
  `PDQMultiHashIndex` builds, and so what Meta's HMA matches with (HMA builds its
  PDQ index through `PdqSignal.get_index_cls()`, that package's `PDQIndex`).
- *threatexchange PDQIndex*: python-threatexchange's own PDQ index (the
  `threatexchange` package, {te_version}), built with `PDQIndex.build` from `(hex,
  id)` entries and asked one hash per `query` call, as HMA's matcher asks it. It
  wraps the faiss index above in `IndexBinaryIDMap2` plus a Python id map.

The two multi-hash rows use the same faiss configuration, yet their queries/s can
differ by several times: faiss's multi-hash search collects each query's candidates
(about 4,200 at 1M, 42,000 at 10M) in a fresh `std::unordered_set`, one heap
allocation per candidate, and its speed moves with the state of the process: in a
separate test at 1M one index answered the same 256 queries at 783 and, later in
the same process, 173 q/s. Batching is not the cause (one query per `range_search`
call and 64 per call ran alike at 10M, about 17 q/s). The threatexchange row is the
one that shows what HMA gets.

**The columns.** *q/s*: queries per second, the median of {repeats} timed runs
after one untimed run. *× ours*: ours' queries/s divided by the method's. *recall*:
the share of the reference's (query, hash, distance) triples the method returned;
*extra*: triples it returned that the reference does not have. *build*: seconds to
build the index from the sorted snapshot (median of {repeats} builds; one at 10M).
*peak MB*: how far the process's peak resident set rose above its resident set
with the input loaded (the snapshot bytes, and hex strings for threatexchange): the
kernel's peak counter (`VmHWM`, what `getrusage(RUSAGE_SELF).ru_maxrss` reports,
minus the parent's peak that `ru_maxrss` keeps across `exec`) is reset through
`/proc/self/clear_refs` just before the build. It includes the build's
temporaries, and faiss's C++ allocations, which `tracemalloc` would not see.

**Aims (one core):** at 1M, ≥ 2,500 queries/s with recall 1.0; at 10M, uniform
and clustered, ≥ 2,000 queries/s with recall 1.0 and the node's resident memory
≤ 1.5 GB.
"""

INCREMENTAL_PROSE = """### Following a delta under query load

A 1M uniform list in `ListIndex(background=True)` (the node's setting), with a
thread sending one query per call without pause, as uploads would. After a
{phase:g} s warm phase a first delta of {adds:,} additions is applied: it goes to
the side segment that every query scans. {phase:g} s later a second delta of
{adds:,} pushes the pending changes past 1/64 of the list, which starts the
background rebuild (new main array and multi-index on a thread, changes meanwhile
replayed, one assignment to swap it in). *Visible* is the time from the start of
`apply` until a `match` of added hashes (first, middle, last) returns them. The
latency table splits the queries by when they started. **Aims: additions visible
in < 1 s; no query gap**: no query waits on an apply or the rebuild; judged as the
longest query while either runs staying under {gap_ms:.0f} ms (a query that waited
would take about as long as the rebuild). Queries in the other thread share the
interpreter lock with the rebuild's Python steps, so they slow down while it
runs; they do not stop.
"""

NODE_RSS_PROSE = """### The node's resident memory at 10M

A subprocess reads the 10M-hash snapshot (320 MB), builds the index as the node does
(`ListIndex.from_snapshot` with the bytes and `background=True`), drops the bytes,
answers one batch, and reports its peak resident set (`VmHWM`: the interpreter,
numpy, the snapshot bytes held during the build and the build's temporaries) and its
resident set once the build is over (`VmRSS`). At 10M the index keeps 32 bytes per
hash of hashes, 48 of multi-index row numbers (12 slots) and 128 MB of bucket bounds.
**Aim: ≤ 1.5 GB.**
"""

NODE_PROSE = """## Node: image hashing and sync

`bench/node_bench.py` measures what a node does for every upload besides matching
(hash a picture) and how it follows a list (sync).

**Images hashed per second** for one 12-megapixel JPEG, made in the bench by
upscaling Meta's bridge test photo to 4000 × 3000 and saving it at quality 90:
- `hash_image`: a reduced decode (`draft()` picks the smallest JPEG scale that keeps
  the short side at least 750 px: 1/4 here, 1000 × 750), EXIF orientation, then PDQ
  by the reference's own blur and sampling at the full size, pHash, MD5 and
  SHA-256; the "of which" rows time each step alone.
- Floor: the least the JPEG decoder can do for this file, a 1/8-scale decode of the
  luma channel alone with no shrink and no colour conversion. Baseline JPEG cannot
  skip the entropy decoding of any coefficient, so no hasher built on this decoder
  (libjpeg-turbo, in Pillow) can decode faster.

**Aim: ≥ 30 images/s on one core, with PDQ within 4 bits of the reference.** Decoding
luma only (`draft("L")`) was tried and put the PDQ of Meta's low-quality reference
images up to 38 bits from their expected hashes, so it is not used.

**Fidelity against the reference**, in the same run. Hash lists are made with the
reference hasher on the whole picture: `pdqhash.compute` (Meta's C++ PDQ) and
imagehash's `phash` on the full decode, EXIF orientation applied, which is what
python-threatexchange and HMA compute. Every bit by which a node's hash of the very
file that was listed differs is spent out of PDQ's 31-bit match budget. The
pictures: the bench photo, two collages of scikit-image's bundled sample pictures
(4000 × 3000 at quality 90, 3000 × 4000 at 75: detail at every scale, as a camera's
photo has) and two of them upscaled to 4000 px wide (smooth, with sharp edges). Each
row hashes all of them (decode, PDQ, pHash) and gives the largest and mean Hamming
distance to the reference's hashes (PDQ of 256 bits, pHash of 64) and the pictures
per second as a multiple of the reference's: the node's hashing with the JPEG
decoded in full and at 1/2, 1/4 and 1/8 scale, and what the node did before (a
decode keeping both sides ≥ 256 px and a shrink to 512 px, then the reference
hashers on that smaller picture). The forced rows show what a smaller decode than
`hash_image`'s would cost: on the two upscaled pictures 1/4 scale leaves a short
side of 667 px, below the 750 px `hash_image` keeps. `tests/node/test_hash_fidelity.py`
holds the node to 4 bits on 91 pictures from 34 px to 12 megapixels.

**Sync** (docs/design.md §4.2): a hub (`Hub.init`, in a temporary directory) with one PDQ list
of 1M random hashes published as version 1 with its snapshot, served by the real
hub app on 127.0.0.1 in the same process and event loop as the node, so serving is
inside these figures. Each timed run starts from a fresh copy of an enrolled node
home.
- *Bootstrap from snapshot*: `node.service.run_sync` end to end on an empty node:
  root walk, checkpoint, header and signature, the 32 MB snapshot over HTTP, its
  SHA-256 and strict order check against the signed `result_state`, the SQLite
  commit of state and trust record (`synchronous=FULL`), then `Node.absorb`: the
  match index (multi-index included), the content registry searched, one ack
  signed and queued. **Aim: under 10 s for 1M hashes.**
- *Restart*: `Node.open` on the bootstrapped home: the index rebuilt from the
  stored state, what a restarted daemon does before it serves.
- *Delta +10k*: version 2 with 10k random additions, `run_sync` end to end:
  checkpoint, header, the gzipped body, `ListUpdate.apply` (base digest, 10k
  insertions, result digest), the SQLite commit of the 10k changed hashes beside the
  state ([ADR 0013](adr/0013-node-logs-small-state-changes.md)), the index
  following the delta (side segment), the registry search and the ack.

**The content registry** (`--registry-size`, 10M): hosted content a delta's new
hashes are matched against ([the participant guide](participant-guide.md), "The
content index").
- *Import*: a CSV corpus of random PDQ items, then `hashhub-node content import
  FILE --batch 1000000` run as a platform runs it, in a process of its own and
  timed end to end: reading and checking every line, registering it in SQLite (one
  transaction per batch), matching it against the node's lists, and the content
  index written at the end. **Aim: 10M items in under 2 minutes.**
- *Retroactive PDQ pass*: a delta of 1,000 PDQ additions (100 of them 0-20 bits from
  a hosted hash, 900 random), `ContentRegistry.retroactive` end to end in a fresh
  process that opens the node: the content index queried with the added hashes
  (memory-mapped multi-index files, the journal), the content ids of each near hash
  looked up by key, match events recorded, webhooks queued. The first pass pages the
  index's files in; the next is what a running node, which keeps them mapped, does.
  Peak RSS is the process's `VmHWM`. *Before*: every registered hash read out of
  SQLite and matched against an index of the added hashes, in a process of its own.
  Both must find the same hits. **Aim: under 1 s, peak RSS under 1.5 GB, at 10M.**
- *md5*: 10M md5 items registered by `ContentRegistry.register_batch` (batches of
  1M), a delta of 1,000 md5 additions of which 100 are hosted: each added hash
  looked up in the `content` table's primary key, against the same full scan.

**An entry's record by its hash** (the `entries` rows, at the largest of `--sizes`,
1M): an `entries` list of 1M PDQ records stored whole in a real node store
(`commit_update`: the state blob and the records' rows keyed by hash, in one
transaction; the file's size after a checkpoint in the note), then 200 records
looked up one at a time as a match looks its entry up (`ListTables.entry`, through
the rows), against the binary search over the stored state blob it replaced (20
lookups). **Aim: under 1 ms a lookup at 1M records.**
"""

HUB_PROSE = """## Hub: reads, acks and a large publish

`bench/hub_bench.py` starts a real `hashhub serve` process on loopback and loads it
from a separate process, so the server has a core of its own and the load generator
the other.
- **Checkpoint GETs**, 100 concurrent clients, for 15 s: a pool of aiohttp clients,
  and Debian's `wrk` as an independent second generator (`make bench` installs it).
  Aim ≥ 2,000/s.
- **Acks**, 100 enrolled nodes with their own keys and tokens, each posting its own
  signed acks with increasing `seq` for 15 s (signed before the clock starts). Every
  ack is verified (Ed25519 signature and co-signature, `seq`, the published root and
  state) and stored with its counters; acks that arrive together go to the database
  thread as one batch with one commit. Aim ≥ 500/s.
- **Publishing 100k additions onto a 1M-hash list**: `Publishing.publish` end to end
  (normalise the staged rows, sign, store body, header, checkpoint and entries in one
  transaction). Aim < 5 s. Staging is timed apart, and so is the first publish of
  1M, a one-off dominated by inserting 1M provenance rows.
"""

LOAD_PROSE = """## Load and soak: {nodes} nodes against one hub for {minutes:g} minutes

`bench/load_bench.py` starts a real `hashhub serve` process on loopback and runs
{nodes} simulated nodes against it from a second process, each enrolled through the
operator API with its own Ed25519 key and token and each with its own aiohttp
session. Nodes start at random times within the first {spread:g} s; each walks the
root once, then polls its lists' checkpoints (every node
one private list, every other node a second one) with conditional GETs every
{poll} s (the root's `min_poll_interval`) plus up to {jitter:g} s of jitter. When a
checkpoint moves it verifies it through the protocol's trust rules, fetches and
verifies every missing header, signature and body, applies them in memory
(digest checked against the signed `result_state`) and posts a signed ack with
cumulative counters derived from its index and the version, and per-hash counters
for one added hash. Some acks are re-sent on purpose with their `seq` (the one just
confirmed, and an older one with lower counters), as retries are. Meanwhile an
operator stages {adds} additions and {removes} removals and publishes one list every
{publish:g} s through the operator API.

Afterwards the hub's SQLite file is read: every ack the hub confirmed must be
stored exactly once, byte for byte, and nothing else; the totals the operator API
reports per list and per hash must equal the sums of what the nodes sent; and no
request may have failed (an unexpected status, a connection error or a timeout).
The same driver runs for 60 s in `tests/reliability/test_load.py`. Latencies are
measured in the clients' process, which shares the two cores with the hub, so they
include the clients' own waits (their event loop's lag is given beside them). The
hub's resident memory (RSS) is sampled every {every:g} s.
"""

REPRODUCE = """## Reproduce

```sh
make bench                                   # installs the bench extras and wrk, runs this report
make bench BENCH_ARGS=--quick                # every bench at its small sizes (a few minutes)
.venv/bin/python bench/report.py --only matcher --json-dir out/   # one bench; keep its JSON
.venv/bin/python bench/report.py --from-json out/                 # the page again, no measuring
```

Each bench also runs alone and prints a table (`--json` for JSON):

- `bench/protocol_bench.py`: `--sections digest,update,entries`, `--sizes
  1000000,10000000` (digest and build rows), `--apply-base 1000000` (hashes in the
  state a delta is applied to, and in each list of the entries rows),
  `--apply-changes 10000`, `--repeats 3`, `--quick` (sizes 100k and 1M). The full
  run needs about 3.5 GB of free memory, most of it for the 10M `from_hashes` row
  (one Python object per hash).
- `bench/matcher_bench.py`: `--sizes 100000,1000000,10000000`, `--distributions
  uniform,clustered`, `--methods
  ours,ours-numpy,ours-scan,numpy,faiss-flat,faiss-multihash,threatexchange`,
  `--queries 256`, `--repeats 3`, `--incremental-base 1000000` (0 skips it),
  `--incremental-adds 10000`, `--incremental-phase-s 1`, `--node-rss-size 10000000`
  (0 skips it), `--quick` (100k only, a 3k delta on 100k, no 10M memory run).
- `bench/node_bench.py`: `--sections match,hash,fidelity,sync,registry,entries` (the
  page runs `hash`, `fidelity`, `sync`, `registry` and `entries`; `match` is the node's earlier
  matcher table, which the matcher bench supersedes), `--sizes`, `--queries`,
  `--images 40`, `--megapixels 12`, `--repeats 3`, `--registry-size 10000000`
  (the registry rows need about 5 GB of free memory, most of it for the full scan
  they compare with), `--quick`.
- `bench/hub_bench.py`: `--clients 100`, `--quick` (100k/10k hashes, 5 s load phases).
- `bench/federation_bench.py`: `--entries 1000000` (each upstream list), `--delta
  10000`, `--quick` (100k entries, a 1k delta).
- `bench/load_bench.py`: `--nodes 500`, `--seconds 600` (the soak), `--poll-interval 1`,
  `--publish-every 3`, `--quick` (60 s).
- `bench/upload_bench.py`: `--seconds 15`, `--connections 64`, `--image-connections 8`,
  `--hashes 100000`, `--megapixels 12`, `--settle-load 0.7`, `--settle-wait 600`,
  `--quick`; needs `wrk`.
- `bench/video_bench.py`: `--videos 100000`, `--frames 60`, `--queries 50`,
  `--methods ours,threatexchange`, `--quick` (5,000 videos). The full run needs
  several GB of free memory, most of it for the peer's Python objects (its peak MB).
- `bench/video_hash_bench.py`: `--seconds 60` (the edited clips), `--speed-seconds 60`,
  `--repeats 3`, `--quick` (20 s edited clips, small 4 s speed clips, one run); needs
  `ffmpeg` and `ffprobe` with libx264, libvpx and drawtext.

Peer packages (faiss-cpu, threatexchange) are bench-only dependencies, the `bench`
extra, which `make bench` installs; without them their rows say so. Figures depend on
the CPU (SHA-256 instructions for the digest, vector popcount for the scans) and on
the load: compare the ratios and the aims, not the absolute seconds. The smoke tests
(`tests/bench/`, `tests/protocol/test_bench_smoke.py`,
`tests/node/test_node_bench_smoke.py`) run each bench at tiny sizes to keep it
working; they make no claim about speed.
"""


def render_machine(info: dict[str, Any], runs: dict[str, dict[str, Any]]) -> str:
    memory = info.get("memory_bytes")
    rows = [
        ["date", info["date"]],
        ["CPU", f"{info['cpu']}, {info['cores']} cores"],
        ["memory", f"{memory / 2**30:.1f} GiB" if memory else "-"],
        ["OS", info["platform"]],
        ["Python", info["python"]],
        ["numpy", info["numpy"]],
        ["faiss-cpu", info["faiss"]],
        ["threatexchange", info["threatexchange"]],
        ["Pillow", info["pillow"]],
        ["OpenSSL", info["openssl"]],
    ]
    for name, run in runs.items():
        rows.append(
            [
                f"{name} bench",
                (f"started {run['started']}, " if run.get("started") else "")
                + f"{run['seconds']:.0f} s, load {run['load_1min']} at start: `{run['command']}`",
            ]
        )
    total = sum(run["seconds"] for run in runs.values())
    rows.append(["all benches", f"{total / 60:.1f} min"])
    return "## Machine and versions\n\n" + table(["", ""], rows)


def render_protocol(doc: dict[str, Any]) -> tuple[str, list[list[str]]]:
    rows = []
    aims: list[list[str]] = []
    for r in doc["rows"]:
        mbps = r.get("mb_per_s")
        pct = r.get("pct_of_hashlib")
        rows.append(
            [
                r["section"],
                r["case"].strip(),
                label(r["hashes"]),
                f"{r['seconds']:.4f}",
                num(mbps, 0) if mbps is not None else "-",
                f"{pct:.1f}" if pct is not None else "-",
                str(r["repeats"]),
                r["note"],
            ]
        )
        ok = _note_met(r["note"])
        if ok is not None:
            measured = (
                f"{pct:.1f} % of hashlib ({r['seconds']:.4f} s)"
                if pct is not None
                else f"{r['seconds']:.4f} s"
            )
            aim = "≥ 80 % of hashlib" if pct is not None else "< 0.5 s"
            aims.append(
                [f"protocol: {r['case'].strip()}, {label(r['hashes'])}", measured, aim, met(ok)]
            )
    body = table(
        ["section", "case", "hashes", "seconds", "MB/s", "% hashlib", "best of", "aim / note"],
        rows,
        "lllrrrrl",
    )
    return PROTOCOL_PROSE + "\n### Figures\n\n" + body + "\n", aims


def render_matcher(doc: dict[str, Any]) -> tuple[str, list[list[str]]]:
    config = doc["config"]
    methods = doc["methods"]
    parts = [
        MATCHER_PROSE.format(
            te_version=doc["machine"].get("threatexchange") or "not installed",
            repeats=config["repeats"],
        )
    ]
    aims: list[list[str]] = []
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in doc["rows"]:
        groups.setdefault((r["distribution"], r["size"]), []).append(r)
    kinds = ("uniform", "clustered")
    for (distribution, size), rows in sorted(
        groups.items(), key=lambda kv: (kv[0][1], kinds.index(kv[0][0]) if kv[0][0] in kinds else 9)
    ):
        ours = next((r["qps"] for r in rows if r["method"] == "ours" and r["qps"]), 0.0)
        lines = []
        for r in rows:
            ratio = f"{ours / r['qps']:.1f}" if ours and r["qps"] else "-"
            recall = "-" if r["recall"] is None else f"{r['recall']:.4f}"
            peak = f"{r['peak_bytes'] / 1e6:,.0f}" if r["runs"] else "-"
            lines.append(
                [
                    methods[r["method"]],
                    str(r["queries"]) if r["runs"] else "-",
                    num(r["qps"]) if r["runs"] else "-",
                    ratio,
                    recall,
                    str(r["extra"]) if r["runs"] else "-",
                    f"{r['build_s']:.2f}" if r["runs"] else "-",
                    peak,
                    "; ".join(p for p in (r["aim"], r["note"]) if p),
                ]
            )
            ok = _note_met(r["aim"])
            if ok is not None:
                aims.append(
                    [
                        f"matcher: ours, {distribution} {label(size)}",
                        f"{r['qps']:,.1f} q/s, recall {recall}",
                        r["aim"].split(":")[0].removeprefix("aim "),
                        met(ok),
                    ]
                )
        hashes = rows[0].get("hashes") or size
        parts.append(
            f"### {distribution.capitalize()}, {label(size)} hashes ({hashes:,})\n\n"
            + table(
                ["method", "q", "q/s", "× ours", "recall", "extra", "build s", "peak MB", "note"],
                lines,
                "lrrrrrrrl",
            )
            + "\n"
        )
    inc = doc.get("incremental")
    if inc:
        gap_s = doc["aims"]["query_gap_s_max"]
        parts.append(
            INCREMENTAL_PROSE.format(
                phase=config["incremental_phase_s"], adds=inc["adds"], gap_ms=gap_s * 1000
            )
        )
        delta_rows = [
            [
                f"delta {k + 1}: +{inc['adds']:,} on {label(inc['base'])}",
                f"{a['apply_s'] * 1000:.1f}",
                f"{a['visible_s'] * 1000:.1f}",
                f"{a['pending']:,.0f}",
            ]
            for k, a in enumerate(inc["applies"])
        ]
        parts.append(
            table(["delta", "apply ms", "visible ms", "pending after"], delta_rows, "lrrr")
        )
        done = "completed: no pending changes after it" if inc["rebuilt"] else "NOT completed"
        parts.append(f"\nThe background rebuild took {inc['rebuild_s']:.2f} s ({done}).\n")
        phase_rows = [
            [
                p["phase"],
                f"{p['seconds']:.2f}",
                f"{p['queries']:,}",
                f"{p['p50_s'] * 1000:.3f}",
                f"{p['p99_s'] * 1000:.3f}",
                f"{p['max_s'] * 1000:.3f}",
            ]
            for p in inc["phases"]
        ]
        parts.append(
            table(
                ["phase", "seconds", "queries", "p50 ms", "p99 ms", "max ms"], phase_rows, "lrrrrr"
            )
            + "\n"
        )
        visible = max(a["visible_s"] for a in inc["applies"])
        during = max(
            (
                p["max_s"]
                for p in inc["phases"]
                if p["phase"] in ("apply + side segment", "rebuild")
            ),
            default=0.0,
        )
        aims.append(
            [
                f"matcher: +{inc['adds']:,} visible on {label(inc['base'])}",
                f"{visible * 1000:.1f} ms",
                "< 1 s",
                met(visible < doc["aims"]["delta_visible_s_max"]),
            ]
        )
        aims.append(
            [
                "matcher: no query gap (longest query during apply + rebuild)",
                f"{during * 1000:.1f} ms (rebuild {inc['rebuild_s']:.2f} s)",
                f"< {gap_s * 1000:.0f} ms",
                met(during < gap_s and inc["rebuilt"]),
            ]
        )
    node = doc.get("node_rss")
    if node:
        limit = doc["aims"]["node_rss_max_bytes_at_10M"]
        parts.append(NODE_RSS_PROSE)
        parts.append(
            table(
                ["hashes", "build s", "index MB", "peak RSS MB", "RSS after build MB", "aim"],
                [
                    [
                        f"{node['size']:,}",
                        f"{node['build_s']:.1f}",
                        f"{node['index_bytes'] / 1e6:,.0f}",
                        f"{node['max_rss'] / 1e6:,.0f}",
                        f"{node['rss_after'] / 1e6:,.0f}",
                        f"≤ {limit / 1e9:g} GB (peak): {met(node['max_rss'] <= limit)}",
                    ]
                ],
                "rrrrrl",
            )
            + "\n"
        )
        aims.append(
            [
                f"matcher: node peak resident memory, {label(node['size'])}",
                f"{node['max_rss'] / 1e9:.2f} GB (after build {node['rss_after'] / 1e9:.2f} GB)",
                "≤ 1.5 GB",
                met(node["max_rss"] <= limit),
            ]
        )
    return "\n".join(parts), aims


def render_node(doc: dict[str, Any]) -> tuple[str, list[list[str]]]:
    rows = []
    aims: list[list[str]] = []
    for r in doc["rows"]:
        seconds, count = r["seconds"], r["count"]
        if r["unit"] == "s":
            rate, each = "-", f"{1000 * seconds:,.1f}"
        else:
            rate = num(count / seconds) if seconds else "-"
            each = f"{1000 * seconds / count:.3f}" if count else "-"
        size = f"{r['size'] / 1e6:.1f} MP" if r["unit"] == "img/s" else label(r["size"])
        rows.append(
            [
                r["section"],
                r["case"].strip(),
                size,
                str(count),
                rate,
                each,
                str(r["repeats"]),
                r["note"],
            ]
        )
        ok = _note_met(r["note"])
        if ok is not None:
            aim = r["note"].split(":")[0].removeprefix("aim ")
            if r["unit"] == "s":
                measured = f"{1000 * seconds:,.0f} ms"
            elif aim.startswith("<") and aim.endswith(" s"):  # a rate held to a duration
                measured = f"{seconds:,.0f} s ({rate} {r['unit']})"
            elif aim.startswith("<") and aim.endswith(" ms") and count:  # each one timed
                measured = f"{each} ms each ({rate} {r['unit']})"
            else:
                measured = f"{rate} {r['unit']}"
            peak = re.search(r"peak RSS ([\d,]+ MB)", r["note"])
            if peak:
                measured += f", peak RSS {peak.group(1)}"
            aims.append([f"node: {r['case'].strip()}, {size}", measured, aim, met(ok)])
    body = table(
        ["section", "case", "size", "count", "per second", "ms each", "best of", "aim / note"],
        rows,
        "lllrrrrl",
    )
    return NODE_PROSE + "\n### Figures\n\n" + body + "\n", aims


def render_hub(doc: dict[str, Any]) -> tuple[str, list[list[str]]]:
    rows = []
    aims: list[list[str]] = []
    for r in doc["rows"]:
        rows.append([r["case"], num(r["value"], 2), r["unit"], r["aim"], met(r["met"]), r["note"]])
        if r["met"] is not None:
            aims.append(
                [f"hub: {r['case']}", f"{num(r['value'], 2)} {r['unit']}", r["aim"], met(r["met"])]
            )
    body = table(["case", "value", "unit", "aim", "met", "note"], rows, "lrllll")
    return HUB_PROSE + "\n### Figures\n\n" + body + "\n", aims


def render_load(doc: dict[str, Any]) -> tuple[str, list[list[str]]]:
    config = doc["config"]
    parts = [
        LOAD_PROSE.format(
            nodes=config["nodes"],
            minutes=round(doc["seconds"] / 60, 1),
            poll=config["poll_interval"],
            jitter=config["poll_jitter"],
            adds=config["adds_per_publish"],
            removes=config["removes_per_publish"],
            publish=config["publish_every"],
            every=config["rss_every"],
            spread=config["start_spread"],
        )
    ]
    kinds = [
        [
            k["kind"],
            f"{k['count']:,}",
            num(k["p50_ms"]),
            num(k["p99_ms"]),
            num(k["max_ms"]),
            num(k["served_p50_ms"]),
            num(k["served_p99_ms"]),
            num(k["served_max_ms"]),
        ]
        for k in doc["kinds"]
    ]
    head = ["request", "count", "p50 ms", "p99 ms", "max ms", "hub p50", "hub p99", "hub max"]
    parts.append(
        "### Latency by kind of request\n\n"
        + table(head, kinds, "lrrrrrrr")
        + "\n\nThe first three figures are measured by the clients, from sending a request "
        "to having read its answer; the *hub* columns are the hub's own time for the same "
        "requests (from reading each to answering it, from its access log). *root*: the "
        "root walk at start; *delta*: a header or its signature; *enrol*, *stage*, "
        "*publish*: the operator's requests.\n"
    )
    problems = doc["ack_problems"]
    lag = doc["loop_lag_ms"]
    node_p99 = max(
        (k["p99_ms"] for k in doc["kinds"] if k["kind"] in ("checkpoint", "delta", "body", "ack")),
        default=float("nan"),
    )
    totals_equal = all(
        doc["totals_hub"].get(list_id) == expected
        for list_id, expected in doc["totals_expected"].items()
    )
    hashes_equal = all(doc["hash_totals_match"].values())
    hashes = sum(doc["hashes_counted"].values())
    checks = [
        ["failed requests", str(doc["errors"]), "0", met(doc["errors"] == 0)],
        [
            "acks confirmed / stored",
            f"{doc['acks_confirmed']:,} / {doc['acks_stored']:,}",
            "equal",
            met(doc["acks_confirmed"] == doc["acks_stored"]),
        ],
        ["acks lost", str(len(problems["lost"])), "0", met(not problems["lost"])],
        [
            "acks stored twice, unconfirmed or altered",
            str(len(problems["doubled"]) + len(problems["unconfirmed"]) + len(problems["altered"])),
            "0",
            met(not (problems["doubled"] or problems["unconfirmed"] or problems["altered"])),
        ],
        [
            "re-sent acks answered duplicate",
            f"{doc['resends_duplicate']:,} of {doc['resends']:,}",
            "all",
            met(doc["resends_duplicate"] == doc["resends"]),
        ],
        [
            "hub totals per list = sum sent",
            "equal" if totals_equal else "differ",
            "equal",
            met(totals_equal),
        ],
        [
            "hub totals per hash = sum sent",
            f"{'equal' if hashes_equal else 'differ'} ({hashes:,} hashes)",
            "equal",
            met(hashes_equal),
        ],
        ["p99 of node requests (worst kind)", f"{node_p99:,.1f} ms", "< 5 s", met(node_p99 < 5000)],
    ]
    parts.append("### Checks\n\n" + table(["what", "measured", "aim", ""], checks) + "\n")
    growth = doc["rss_growth"]
    parts.append(
        f"{doc['requests']:,} node requests in {doc['seconds']:.0f} s: "
        f"{doc['requests_per_s']:,.0f} requests/s ({doc['not_modified']:,} checkpoint polls "
        f"answered 304); {doc['updates']:,} updates applied; versions published "
        + ", ".join(f"{k} {v}" for k, v in doc["versions"].items())
        + f". The hub used {doc['hub_cpu_percent']:.0f} % of a core, the clients' process "
        f"{doc['client_cpu_percent']:.0f} %; the clients' event loop woke late by "
        f"{lag['p50']:.1f} ms (p50), {lag['p99']:.1f} ms (p99), {lag['max']:.1f} ms (max).\n"
    )
    windows = doc["windows"]
    shown = [w for i, w in enumerate(windows) if (i + 1) % 6 == 0 or i == len(windows) - 1]
    rows = [
        [f"{w['t']:.0f}", num(w["rss_mb"]), num(w["requests_per_s"], 0), num(w["p99_ms"])]
        for w in shown
    ]
    parts.append(
        "### Hub memory over the run\n\n"
        f"Before the load the hub's RSS was {growth['before_mb']:.1f} MB; at 1 minute "
        f"{growth['at_1min_mb']:.1f} MB, at the end {growth['end_mb']:.1f} MB: "
        f"{growth['growth_after_1min_mb']:+.1f} MB after the first minute, a slope of "
        f"{growth['slope_mb_per_min']:+.2f} MB/min (least squares over the samples from "
        f"{growth['slope_from_s']:.0f} s on). Every sixth sample and the last:\n\n"
        + table(["t s", "hub RSS MB", "requests/s", "p99 ms"], rows, "rrrr")
        + "\n"
    )
    aims = [
        [f"load: {c[0]}, {config['nodes']} nodes, {doc['seconds'] / 60:.1f} min", c[1], c[2], c[3]]
        for c in checks
    ]
    return "\n".join(parts), aims


UPLOAD_PROSE = """## Upload path: `POST /v1/match` under wrk, 1 and 2 workers, against a baseline

`bench/upload_bench.py` measures the route a platform's upload service calls, served
the way a node runs: a hub (`hashhub serve`, a process on loopback) with one PDQ list
of {hashes:,} hashes (random ones, plus the reference PDQ of the bench photo),
published with its snapshot; a node home enrolled on it and synced once. For 1 and 2
workers, `hashhub-node run --workers W` is started (its processes share one port
with `SO_REUSEPORT`), confined to as many cores as it has workers (the first W
cores, set with `sched_setaffinity` before it starts and inherited by its workers:
a worker hashes pictures on threads, so one worker left free already uses both
cores and a second would have none to add), every worker is seen to answer, the
answers are checked, wrk loads it, and SIGTERM stops it, which must exit 0. The hub
keeps running, so the node's schedule polls a real hub meanwhile.

**The baseline** (`bench/pytx_baseline.py`) is what a platform would run without
hashhub, matching as Meta's HMA does: python-threatexchange's `PDQIndex` over the
same list (built with `PDQIndex.build` from `(hex, id)` entries, asked one hash per
`query` call) and, for a picture, `PdqSignal.hash_from_bytes` (PIL decodes the whole
picture, `pdqhash` hashes it) on a worker thread, behind an aiohttp app with the
same route, request shapes and bearer-token check, served from 1 and 2 processes on
one port with `SO_REUSEPORT`, confined to cores the same way. It hashes PDQ only
and keeps no record; the node also computes pHash, MD5 and SHA-256 of every picture
and counts every request.

**The cases.** Debian's `wrk`, one thread, `--latency`, a Lua script that sets
`POST`, `Authorization: Bearer <api-token>`, the content type and the body; {seconds}
s per timed run after a 1-second warm-up, on the same two cores as the servers.
- *hash*: JSON `{{"hashes": [{{"type": "pdq", "hash": …}}]}}` of one PDQ hash, cycling
  through {pool} random hashes that are not listed (an upload that matches nothing,
  the common case), {hash_conn} connections. **Aim: ≥ 5,000 requests/s for the node
  with 2 workers.**
- *jpeg*: `Content-Type: image/jpeg`, {photo}: the bench photo mirrored, so that it
  is not listed, {jpeg_conn} connections. **Aim: the node's requests/s scale ≥ 1.8×
  from 1 worker (on 1 core) to 2 (on 2).**

Before any figure is taken each server is asked once of each kind: a listed hash
must be matched at distance 0 and a random one not; the listed photo's JPEG must be
matched within 31 bits and the mirrored one not. *× baseline*: the node's
requests/s divided by the baseline's, same case and workers; *2w/1w*: requests/s
with 2 workers divided by with 1; *server cores*: CPU seconds the server's processes
(parent and workers) used per second of the run, out of the machine's 2 (wrk and
anything else running take the rest). The latency percentiles are wrk's, from sending a
request to reading its answer, under that load. The 1-minute load average was
{load_start} when the bench started; the bench waits up to 10 minutes for it to fall
below {below} before timing, and it was {load_timing} when timing began (after
{waited:.0f} s); each row gives it again at that run's start.
"""


def render_upload(doc: dict[str, Any]) -> tuple[str, list[list[str]]]:
    config, load = doc["config"], doc["load"]
    prose = UPLOAD_PROSE.format(
        hashes=config["hashes"],
        seconds=config["seconds"],
        pool=config["query_pool"],
        hash_conn=config["connections"]["hash"],
        jpeg_conn=config["connections"]["jpeg"],
        photo=config["photo"],
        load_start=load["bench_start"],
        below=load["below"],
        load_timing=load["at_timing"],
        waited=load["waited_s"],
    )
    servers = {"node": "hashhub-node", "baseline": "pytx baseline"}
    cases = {"hash": "hash (JSON)", "jpeg": f"{config['megapixels']:g} MP JPEG"}
    rows = []
    for r in doc["rows"]:
        rows.append(
            [
                cases[r["case"]],
                servers[r["server"]],
                str(r["workers"]),
                num(r["rps"]),
                num(r["p50_ms"]),
                num(r["p99_ms"]),
                str(r["non2xx"] + r["socket_errors"]),
                "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
                "-" if r["scale"] is None else f"{r['scale']:.2f}",
                f"{r['server_cores']:.2f}",
                f"{r['load_1min']}",
                r["aim"] if r["met"] is None else f"{r['aim']}: {met(r['met'])}",
            ]
        )
    body = table(
        [
            "case",
            "server",
            "workers",
            "req/s",
            "p50 ms",
            "p99 ms",
            "non-2xx",
            "× baseline",
            "2w/1w",
            "server cores",
            "load",
            "aim",
        ],
        rows,
        "lllrrrrrrrrl",
    )
    aims: list[list[str]] = []
    by = {(r["case"], r["server"], r["workers"]): r for r in doc["rows"]}
    for r in doc["rows"]:
        if r["met"] is None:
            continue
        base = by.get((r["case"], "baseline", r["workers"]))
        one = by.get((r["case"], r["server"], 1))
        if r["case"] == "hash":
            measured = f"{num(r['rps'])} req/s, p99 {num(r['p99_ms'])} ms"
            if base:
                measured += f" (baseline {num(base['rps'])} req/s)"
            what = "upload: hash-only queries, node, 2 workers"
        else:
            measured = (
                f"{r['scale']:.2f}× ({num(one['rps']) if one else '-'} → {num(r['rps'])} req/s)"
            )
            if base and by.get(("jpeg", "baseline", 1)):
                measured += f"; baseline {base['scale']:.2f}×"
            what = f"upload: {cases['jpeg']}, node, 1 → 2 workers"
        aims.append([what, measured, r["aim"], met(r["met"])])
    p99 = [
        f"{r['case']} {r['workers']}w {num(r['p99_ms'])} ms"
        for r in doc["rows"]
        if r["server"] == "node"
    ]
    aims.append(["upload: p99 latency under load, node", ", ".join(p99), "reported", "-"])
    return prose + "\n### Figures\n\n" + body + "\n" + _upload_cores_note(doc, servers), aims


def _upload_cores_note(doc: dict[str, Any], servers: dict[str, str]) -> str:
    """Why JPEG uploads may not scale with workers: what one worker already used."""
    busy = [
        f"{servers[r['server']]} {r['server_cores']:.2f}"
        for r in doc["rows"]
        if r["case"] == "jpeg" and r["workers"] == 1 and r["server_cores"] >= 1.5
    ]
    if not busy:
        return ""
    return (
        "\n**Reading the JPEG scale.** With one worker, the server's processes already "
        f"kept this many of the {doc.get('cores') or 2} cores busy on JPEG uploads: "
        + ", ".join(busy)
        + ". Both servers hash a picture on a thread of their own, and the decoding and "
        "hashing release Python's lock for much of the work, so one process already "
        "spreads its uploads over both cores; a second worker can only add what is left. "
        "On this machine a ratio of 2 workers to 1 says little about a larger one.\n"
    )


FEDERATION_PROSE = """## Federation: a regional hub following two upstream lists of 1M entries

`bench/federation_bench.py` builds two upstream hubs (a helpline with a PDQ entries
list, a hotline with an MD5 entries list), each with 1M entries, serves them from
real `hashhub serve` processes on loopback, and has a regional hub enrolled at each
follow both lists and re-publish every entry with its provenance
(`hub.following`). Side by side, the baseline of following the same lists: a node's
`hashhub-node sync` from the same servers. The regional hub reads every body and no
snapshot (the version that added each record must be known for its provenance),
then stages and publishes its own versions (at most as many entries per version as
keep a body and its provenance under the root's `max_body_bytes`), then acks. The
delta row is one upstream version of 10k new entries, from the regional hub's poll
to its own new versions published; each run times its steps (`FollowReport.seconds`).
"""


def render_federation(doc: dict[str, Any]) -> tuple[str, list[list[str]]]:
    rows = [[r["case"], num(r["value"], 2), r["unit"], r["note"]] for r in doc["rows"]]
    body = table(["case", "value", "unit", "note"], rows, "lrll")
    return FEDERATION_PROSE + "\n### Figures\n\n" + body + "\n", []


VIDEO_PROSE = """## Video matching: a one-minute video against {videos} listed videos

`bench/video_bench.py` measures the node's video index (`node/video_index.py`:
every listed video's distinct frames of quality 50 or more in the node's exact
multi-index, each row naming its entries; a query's distinct good frames probed in
one batch; PROTOCOL.md §6.4's four counts per candidate entry) next to
python-threatexchange's own vPDQ index, in the same run, one core each.

**The list.** {videos_n:,} videos of {frames} frames (one a second), {listed:,}
frames. Synthetic PDQ frames: a video's first frame is a random 256-bit hash and each
next one the frame before with {drift} random bit positions flipped (drawn with
replacement), so neighbouring frames are a few bits apart and frames half a minute
apart about 80, as one scene drifts; 5 % of the frames have a quality below 50
(fades, dark frames) and are left out by the rule.

**The queries.** {queries} of each kind, {frames} frames each. *copy*: a listed
video picked at random, re-encoded: each frame with 0 to 20 distinct bits flipped;
its own listed video must match. *unrelated*: a fresh video made the same way;
nothing may match.

**The methods.** *{ours}*: `VideoIndex.build` from each video's `Frame`s, then
`match(frames)` per query. *{peer}*: python-threatexchange's `VPDQIndex` (package
`threatexchange`, {te_version}; what HMA's vPDQ signal type indexes with), built
with `VPDQIndex.build` from `(json, id)` pairs in its own serialization and asked
one video per `query` call; it keeps the distinct frames in a faiss
`IndexBinaryFlat` and scans them (`range_search`), faiss held to one thread. Where
faiss is missing the bench uses its brute matcher over a sample and scales the time
to the whole list; the note says so.

**The columns.** *build*: seconds from the input in memory to an index that
answers. *peak MB*: how far the peak resident set (`VmHWM`, reset just before the
build) rose above the resident set with the input loaded. *index MB*: the bytes of
our index's arrays. *median* and *p99*: per query, over the {queries} queries of the
kind. *matched*: queries that matched anything. *× ours*: the method's median over
ours. **Aim: a one-minute query against 100,000 listed videos in well under a
second: ours' p99 under {aim:g} s.**
"""


def render_video(doc: dict[str, Any]) -> tuple[str, list[list[str]]]:
    config = doc["config"]
    rows_by = {r["method"]: r for r in doc["rows"]}
    names = {r["method"]: r["label"] for r in doc["rows"]}
    prose = VIDEO_PROSE.format(
        videos=label(config["videos"]),
        videos_n=config["videos"],
        frames=config["frames"],
        listed=doc["listed_frames"],
        drift=4,
        queries=config["queries"],
        ours=names.get("ours", "ours"),
        peer=names.get("threatexchange", "threatexchange VPDQIndex"),
        te_version=doc["machine"].get("threatexchange") or "not installed",
        aim=doc["aims"]["query_s_max"],
    )
    rows = []
    for r in doc["rows"]:
        for kind in ("copy", "unrelated"):
            q = r["query"].get(kind)
            ratio = None if r["method"] == "ours" else doc["ratios"].get(kind)
            rows.append(
                [
                    r["label"],
                    kind,
                    num(r["build_s"]),
                    num(r["peak_bytes"] / 1e6, 0),
                    num(r["index_bytes"] / 1e6, 0) if r["index_bytes"] else "-",
                    num(q["median_s"] * 1000, 2) if q else "-",
                    num(q["p99_s"] * 1000, 2) if q else "-",
                    f"{q['matched']} of {q['queries']}" if q else "-",
                    "-" if ratio is None else f"{ratio:,.1f}",
                    r["note"],
                ]
            )
    body = table(
        [
            "method",
            "query",
            "build s",
            "peak MB",
            "index MB",
            "median ms",
            "p99 ms",
            "matched",
            "× ours",
            "note",
        ],
        rows,
        "llrrrrrrrl",
    )
    aims: list[list[str]] = []
    ours = rows_by.get("ours")
    if ours and ours["query"]:
        worst = max(q["p99_s"] for q in ours["query"].values())
        medians = ", ".join(
            f"{kind} {num(q['median_s'] * 1000, 2)} ms" for kind, q in ours["query"].items()
        )
        aims.append(
            [
                f"video: one-minute query against {label(config['videos'])} videos",
                f"p99 {num(worst * 1000, 2)} ms (median {medians})",
                f"< {doc['aims']['query_s_max']:g} s",
                met(doc["met"]),
            ]
        )
    return prose + "\n### Figures\n\n" + body + "\n", aims


VIDEO_HASH_PROSE = """## Video hashing: robustness against edits and speed

`bench/video_hash_bench.py` asks two questions of the node's video hashing
(`node/video.py`, vPDQ through the `vpdq` package {vpdq}, on FFmpeg {ffmpeg}), each
next to a baseline.

**1. Does an edited copy still match?** Two source clips of {seconds} s at 480 × 360,
25 frames a second, made with `ffmpeg` (`bench/video_clips.py`): a *photo slideshow*
({photos} photos of scenes and objects, the PDQ bridge photo and scikit-image's, each
shown five seconds, panned slowly, cut hard) and the *testsrc2 pattern* (every part
of it moves each frame: the hard case for one frame sampled a second). Pictures that
are mostly flat or dark are not in the slideshow: on scikit-image's rocket (sky),
moon, Hubble deep field, retina, cell, blurred clock and brick a corner logo or a
caption moved frames 30 to 114 bits when the photos were chosen, so a video of such
frames can lose its match to a watermark; two PDQ test photos have a PDQ quality under 50, and
§6.4 leaves such frames out. Each is edited: re-encoded at 150 kbit/s;
half resolution; a tenth of its length, in whole seconds, trimmed off each end; a
logo (scikit-image's, a sixth of the width) overlaid in a corner at 50 % opacity; a
caption drawn over it (`drawtext`); its frame rate changed from 25 to 30 and to 15
frames a second. The *unrelated video* is a slideshow of other photos. Every copy is
hashed by `hash_video`, as the node hashes an upload, and matched against its source
by `protocol.video.match_video`, the rule of PROTOCOL.md §6.4: frames of quality
below 50 left out, two frames agree within PDQ distance 31, a match when at least
4/5 of the copy's distinct frames (*query share*) or of the source's (*listed
share*) agree. *Median* and *worst*: over the copy's good frames, the PDQ distance
to the nearest good frame of the source. The baseline is **MD5 of the bytes**, how
Take It Down and StopNCII take videos: any edit changes it.

**2. How fast is a video hashed?** `testsrc2` clips of {speed_seconds} s at 30 frames a
second, written by `ffmpeg`: H.264 (libx264, `veryfast`) and VP9 (libvpx, realtime).
*ours*: `hash_video(path)`, the node's whole path: the file read and its MD5 and
SHA-256 taken, `ffprobe` reading the header in a worker process under the memory cap,
then a second worker process decoding and hashing. *bare*: `vpdq.computeHash` called
in the bench's own process, nothing around it: the baseline, so *ours/bare* is what
the hardening costs: two process starts, the probe and the file's digests, a
cost that barely grows with the video, so a short clip pays more of it. One frame
hashed a second, every frame decoded; vpdq picks its own thread count on the
{cores} cores, in the worker as in the bench's process. *best s*: the best of
{repeats} runs, ours and bare alternating; *hashed/s*: frames hashed a second;
*decoded/s*: the clip's video frames (its packets, counted by `ffprobe`) a second;
*× real time*: seconds of video a second of hashing.

**Aims:** every edit matches, MD5 matches none and the unrelated video matches
neither; a one-minute 1080p H.264 video hashed by `hash_video` faster than real time.
"""


def _share(share: Sequence[int]) -> str:
    matched, total = share
    return f"{matched} of {total}"


def _distance(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def render_video_hash(doc: dict[str, Any]) -> tuple[str, list[list[str]]]:
    config, robustness, speed = doc["config"], doc["robustness"], doc["speed"]
    prose = VIDEO_HASH_PROSE.format(
        vpdq=doc["machine"].get("vpdq", "-"),
        ffmpeg=doc["machine"].get("ffmpeg", "-"),
        seconds=config["seconds"],
        photos=min(12, max(1, config["seconds"] // 5)),
        speed_seconds=config["speed_seconds"],
        cores=os.cpu_count() or 1,
        repeats=config["repeats"],
    )
    edit_rows = []
    for r in robustness["rows"]:
        edit_rows.append(
            [
                robustness["clips"][r["clip"]]["label"],
                r["edit"],
                _share(r["query_share"]),
                _share(r["listed_share"]),
                _distance(r["median_distance"]),
                _distance(r["worst_distance"]),
                "yes" if r["matched"] else "no",
                "yes" if r["md5_matched"] else "no",
            ]
        )
    edits = table(
        ["source", "copy", "query share", "listed share", "median", "worst", "vPDQ", "MD5"],
        edit_rows,
        "llrrrrll",
    )
    speed_rows = []
    for r in speed["rows"]:
        ratio = speed["ratios"].get(r["clip"]) if r["method"] == "ours" else None
        speed_rows.append(
            [
                r["label"],
                r["method_label"],
                f"{r['decoded_frames']:,}",
                str(r["frames_hashed"]),
                num(r["best_s"], 2),
                num(r["hashed_per_s"]),
                num(r["decoded_per_s"], 0),
                num(r["realtime"]),
                "-" if ratio is None else f"{ratio:.2f}",
            ]
        )
    speeds = table(
        [
            "clip",
            "method",
            "frames",
            "hashed",
            "best s",
            "hashed/s",
            "decoded/s",
            "× real time",
            "ours/bare",
        ],
        speed_rows,
        "llrrrrrrr",
    )
    summary = robustness["summary"]
    copies = summary["edits"] + summary["unrelated"]
    aims = [
        [
            f"video: {summary['edits']} edits of two {config['seconds']} s clips matched"
            " (vPDQ, §6.4), against MD5",
            f"vPDQ {summary['edits_matched']} of {summary['edits']}; MD5"
            f" {summary['md5_matched']} of {copies}; unrelated"
            f" {summary['unrelated_matched']} of {summary['unrelated']}",
            "every edit matches, MD5 matches none",
            met(doc["met"]["robustness"]),
        ]
    ]
    by = {(r["clip"], r["method"]): r for r in speed["rows"]}
    ours = by.get((doc["aims"]["realtime_clip"], "ours"))
    bare = by.get((doc["aims"]["realtime_clip"], "bare"))
    if ours is not None:
        measured = (
            f"{num(ours['best_s'], 2)} s for {ours['video_s']} s: "
            f"{num(ours['realtime'])}× real time"
        )
        if bare is not None:
            measured += (
                f" (bare vpdq {num(bare['best_s'], 2)} s; ours/bare "
                f"{speed['ratios'][ours['clip']]:.2f})"
            )
        aims.append(
            [
                f"video: hashing a {ours['label']} video of {ours['video_s']} s (hash_video)",
                measured,
                "faster than real time",
                met(doc["met"]["realtime"]),
            ]
        )
    body = (
        "\n### Edited copies against their source\n\n"
        + edits
        + "\n\n### Hashing speed\n\n"
        + speeds
        + "\n"
    )
    return prose + body, aims


RENDERERS: dict[str, Callable[[dict[str, Any]], tuple[str, list[list[str]]]]] = {
    "protocol": render_protocol,
    "matcher": render_matcher,
    "node": render_node,
    "hub": render_hub,
    "load": render_load,
    "upload": render_upload,
    "federation": render_federation,
    "video": render_video,
    "video-hash": render_video_hash,
}


def render(info: dict[str, Any], docs: dict[str, dict[str, Any]]) -> str:
    """The whole page from the machine description and each bench's JSON document."""
    sections = []
    aims: list[list[str]] = []
    order = ("protocol", "matcher", "video", "video-hash", "node", "hub", "load", "upload")
    for name in (*order, "federation"):
        if name in docs:
            text, rows = RENDERERS[name](docs[name])
            sections.append(text)
            aims += rows
    runs = {name: doc["_run"] for name, doc in docs.items() if "_run" in doc}
    summary = "## Against the aims\n\n" + table(["what", "measured", "aim", ""], aims)
    return "\n".join(
        [
            HEAD.format(cores=info["cores"]),
            render_machine(info, runs) + "\n",
            summary + "\n",
            *sections,
            REPRODUCE,
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="every bench at its small sizes")
    parser.add_argument("--only", help=f"some of {','.join(BENCHES)} (default all)")
    parser.add_argument("--out", type=Path, default=DOC, help="the page to write")
    parser.add_argument("--json-dir", type=Path, help="also keep each bench's JSON here")
    parser.add_argument("--from-json", type=Path, help="render from JSON saved by --json-dir")
    args = parser.parse_args(argv)
    names = [s.strip() for s in (args.only or ",".join(BENCHES)).split(",") if s.strip()]
    if set(names) - set(BENCHES):
        parser.error(f"benches are {', '.join(BENCHES)}")
    args.names = names
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    docs: dict[str, dict[str, Any]] = {}
    if args.from_json:
        info = json.loads((args.from_json / "machine.json").read_text())
        for name in args.names:
            path = args.from_json / f"{name}.json"
            if path.exists():
                docs[name] = json.loads(path.read_text())
    else:
        info = machine()
        for name in args.names:
            docs[name] = run_bench(name, args.quick, log)
            if args.json_dir:
                args.json_dir.mkdir(parents=True, exist_ok=True)
                (args.json_dir / f"{name}.json").write_text(json.dumps(docs[name], indent=2))
        if args.json_dir:
            (args.json_dir / "machine.json").write_text(json.dumps(info, indent=2))
    args.out.write_text(render(info, docs))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
