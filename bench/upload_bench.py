"""The upload path under load: ``POST /v1/match`` served by 1 and 2 node workers, with wrk.

What a platform's upload service sees, side by side with a baseline served the
same way, in one run:

1. **The node**: a hub (``hashhub serve``, a subprocess on loopback) with one PDQ
   list of N random hashes (100k; ``--quick`` 10k) plus the reference PDQ of the
   bench photo, published with its snapshot (``node_bench._sync_hub``); a node home
   enrolled on it and synced once (``run_sync``). Then for 1 and 2 workers,
   ``hashhub-node run --workers W`` is started, every worker is seen to answer, the
   answers are checked, and wrk loads it; SIGTERM stops it, which must exit 0. The
   hub keeps running, so the node's schedule polls a real hub meanwhile.
2. **The baseline** (``bench/pytx_baseline.py``): python-threatexchange's
   ``PDQIndex`` over the same list, and for pictures ``PdqSignal.hash_from_bytes``
   (PIL's full decode and ``pdqhash``), behind an aiohttp app with the same
   routes, token check and ``SO_REUSEPORT`` workers.

Two cases, each with Debian's ``wrk`` (one thread, ``--latency``, a Lua script that
sets the method, the ``Authorization: Bearer`` header, the content type and the
body):

- **hash**: JSON ``{"hashes": [{"type": "pdq", "hash": …}]}`` of one PDQ hash,
  cycling through 256 random hashes that are not listed (an upload that matches
  nothing, the common case; a match would also store an event). Aim: ≥ 5,000 req/s
  for the node with 2 workers on this 2-core machine.
- **jpeg**: a 12-megapixel JPEG (``node_bench.photo``, 4000 × 3000) sent as
  ``image/jpeg``: the photo mirrored, so that it is not listed. Aim: the node's
  requests/s scale ≥ 1.8× from 1 worker to 2.

Before any figure is taken, each server's answers are checked: a listed hash is
matched at distance 0 and a random one is not; the listed photo's JPEG is matched
(within 31 bits) and the mirrored one is not. wrk runs on the same two cores as
the servers. The 1-minute load average is reported when the bench starts; before
the timed runs the bench waits (up to ``--settle-wait`` seconds) for it to fall
below ``--settle-load``, and reports what it was.

Run: ``python bench/upload_bench.py [--quick] [--json] [--seconds 10]
[--connections 64] [--image-connections 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from bench.hub_bench import _free_port, _wait_ready
from bench.node_bench import SYNC_LIST, WIDTH, _sync_hub, photo, random_list, reference_hashes

__all__ = ["HASH_AIM_RPS", "SCALE_AIM", "Fixture", "Row", "check_answers", "main", "parse_wrk"]

HASH_AIM_RPS = 5000.0
SCALE_AIM = 1.8
THRESHOLD = 31
QUERY_POOL = 256
BIN = Path(sys.executable).parent
BENCH_DIR = Path(__file__).resolve().parent
SERVERS = {"node": "hashhub-node", "baseline": "pytx baseline"}
WORKER_HEADERS = {"node": "Hashhub-Worker", "baseline": "Bench-Worker"}


@dataclass(frozen=True)
class Fixture:
    """What both servers are given: a synced node home, the list, the queries."""

    work: Path
    home: Path
    token: str
    hashes_file: Path
    listed: str
    """A listed PDQ hash (hex)."""
    unlisted: list[str]
    """Random PDQ hashes (hex), none within 31 bits of a listed one."""
    photo_listed: Path
    """The bench photo, whose reference PDQ is listed."""
    photo_unlisted: Path
    """The same photo mirrored: the same size and cost, not listed."""
    photo_note: str
    size: int


@dataclass
class Load:
    """One wrk run's figures."""

    rps: float
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    latency_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class Row:
    """One case on one server with a number of workers."""

    case: str
    server: str
    workers: int
    connections: int
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int
    load_1min: float
    server_cores: float
    """CPU seconds the server's processes used per second of the run (2.0: both cores)."""
    ratio: float | None = None
    """Our requests/s divided by the baseline's, same case and workers."""
    scale: float | None = None
    """Requests/s with 2 workers divided by with 1, same case and server."""
    aim: str = "-"
    met: bool | None = None


# -- the fixture ----------------------------------------------------------------------------


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _bits(a: bytes, b: bytes) -> int:
    return int.from_bytes(bytes(x ^ y for x, y in zip(a, b, strict=True)), "big").bit_count()


def _nearest(data: bytes, query: bytes) -> int:
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, WIDTH)
    q = np.frombuffer(query, dtype=np.uint8)
    return int(np.unpackbits(rows ^ q, axis=1).sum(axis=1).min())


async def _sync_once(home: Path) -> None:
    import aiohttp

    from node.service import Node, run_sync

    node = Node.open(home)
    try:
        async with aiohttp.ClientSession() as session:
            (outcome,) = await run_sync(node, session)
        if (outcome.status, outcome.to_version) != ("updated", 1):
            raise RuntimeError(f"the node did not sync: {outcome.status} ({outcome.error})")
    finally:
        node.close()


def prepare(work: Path, size: int, megapixels: float, seed: int = 7) -> tuple[Fixture, Any]:
    """The hub (served), the synced node home and the queries; returns the hub process."""
    from hub.core import Hub
    from node.config import write_secret
    from node.service import Node
    from protocol.keyfile import load_public_key

    rng = np.random.default_rng(seed)
    picture, source = photo(megapixels)
    listed_pdq, _ = reference_hashes(picture)
    with Image.open(io.BytesIO(picture)) as image:
        mirrored = _jpeg(ImageOps.mirror(image.convert("RGB")))
    mirrored_pdq, _ = reference_hashes(mirrored)
    if _bits(listed_pdq, mirrored_pdq) <= THRESHOLD:
        raise RuntimeError("the mirrored photo is within the PDQ threshold of the listed one")
    data = random_list(size, rng) + listed_pdq
    _sync_hub(work / "hub", data)
    (work / "list.bin").write_bytes(data)
    (work / "listed.jpg").write_bytes(picture)
    (work / "unlisted.jpg").write_bytes(mirrored)

    hub_port = _free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    home = work / "node"
    hub = Hub.open(work / "hub")
    try:
        Node.init(
            home,
            node_id="bench-node",
            hub_url=hub_url,
            lists=[SYNC_LIST],
            pinned_root_sha256=hub.keys.root_sha256(1),
            token="pending",
        ).close()
        token = hub.access.enrol_node(
            "bench-node", load_public_key(home / "node.pub.pem"), [SYNC_LIST]
        )
        write_secret(home / "hub-token", token)
    finally:
        hub.close()
    serve = [str(BIN / "hashhub"), "serve", "--home", str(work / "hub")]
    with (work / "hub.log").open("wb") as log:
        hub_proc = subprocess.Popen(
            [*serve, "--host", "127.0.0.1", "--port", str(hub_port)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        _wait_ready(hub_url, hub_proc)
        asyncio.run(_sync_once(home))
    except BaseException:
        _stop(hub_proc, "hub")
        raise
    unlisted: list[str] = []
    while len(unlisted) < QUERY_POOL:
        query = rng.integers(0, 256, size=WIDTH, dtype=np.uint8).tobytes()
        if _nearest(data, query) > THRESHOLD:
            unlisted.append(query.hex())
    fixture = Fixture(
        work=work,
        home=home,
        token=(home / "api-token").read_text(encoding="utf-8").strip(),
        hashes_file=work / "list.bin",
        listed=data[:WIDTH].hex(),
        unlisted=unlisted,
        photo_listed=work / "listed.jpg",
        photo_unlisted=work / "unlisted.jpg",
        photo_note=f"{source}, {len(picture) / 1e6:.1f} MB (mirrored {len(mirrored) / 1e6:.1f} MB)",
        size=len(data) // WIDTH,
    )
    return fixture, hub_proc


# -- the servers ----------------------------------------------------------------------------


def start_server(fixture: Fixture, server: str, workers: int, port: int) -> subprocess.Popen[bytes]:
    """``hashhub-node run`` or the baseline, with ``workers`` processes on ``port``."""
    if server == "node":
        cmd = [str(BIN / "hashhub-node"), "run", "--workers", str(workers)]
        cmd += ["--home", str(fixture.home), "--port", str(port)]
    else:
        token_file = fixture.home / "api-token"
        cmd = [sys.executable, str(BENCH_DIR / "pytx_baseline.py"), "--workers", str(workers)]
        cmd += ["--hashes", str(fixture.hashes_file), "--token-file", str(token_file)]
        cmd += ["--port", str(port)]
    cores = pinned_cores(workers)

    def pin() -> None:  # in the child, before exec: its workers inherit it
        if cores is not None:
            os.sched_setaffinity(0, cores)

    with (fixture.work / f"{server}-{workers}w.log").open("wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin)


def pinned_cores(workers: int) -> set[int] | None:
    """The cores a server of ``workers`` processes is confined to: as many as it has
    workers, so that 2 workers against 1 says what a second core brings (a worker
    hashes pictures on threads, and unconfined one worker already uses every core).
    None where the system cannot pin or has fewer cores."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    available = sorted(os.sched_getaffinity(0))
    return set(available[:workers]) if len(available) >= workers else None


def wait_workers(url: str, server: str, workers: int, proc: subprocess.Popen[bytes]) -> None:
    """Until every one of ``workers`` processes has answered ``/healthz``.

    A new connection per request: ``SO_REUSEPORT`` spreads connections, not
    requests, so asking often enough reaches each worker's socket.
    """
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while len(seen) < workers:
        if proc.poll() is not None:
            raise RuntimeError(f"{server} exited early ({proc.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server}: only workers {sorted(seen)} answered")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=60) as resp:
                seen.add(resp.headers.get(WORKER_HEADERS[server], "?"))
        except OSError:
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes], what: str) -> None:
    """SIGTERM, and the clean exit it must lead to."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{what} did not stop within 120 s of SIGTERM") from None
    if code != 0:
        raise RuntimeError(f"{what} exited {code} after SIGTERM")


def _post(url: str, token: str, body: bytes, content_type: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url + "/v1/match",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            answer: dict[str, Any] = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{e.code} from {url}: {e.read()[:300]!r}") from e
    return answer


def hash_body(hex_hash: str) -> bytes:
    return json.dumps({"hashes": [{"type": "pdq", "hash": hex_hash}]}).encode()


def check_answers(url: str, fixture: Fixture) -> list[str]:
    """Ask one of each kind and check the answers; the problems found (none: right).

    A listed hash is matched at distance 0, a random one is not; the listed photo
    is matched within 31 bits, the mirrored one is not; every answer is JSON with
    ``matches`` (a list of objects with ``hash`` and ``distance``) and ``hashes``
    holding the PDQ it was matched with.
    """
    problems = []
    asks = [
        ("listed hash", hash_body(fixture.listed), "application/json", True),
        ("random hash", hash_body(fixture.unlisted[0]), "application/json", False),
        ("listed photo", fixture.photo_listed.read_bytes(), "image/jpeg", True),
        ("mirrored photo", fixture.photo_unlisted.read_bytes(), "image/jpeg", False),
    ]
    for what, body, content_type, expect in asks:
        answer = _post(url, fixture.token, body, content_type)
        matches, hashes = answer.get("matches"), answer.get("hashes")
        if not isinstance(matches, list) or not isinstance(hashes, dict):
            problems.append(f"{what}: not {{matches, hashes}}: {str(answer)[:200]}")
            continue
        pdq = hashes.get("pdq")
        if not isinstance(pdq, list) or len(pdq) != 1 or len(pdq[0]) != 2 * WIDTH:
            problems.append(f"{what}: no PDQ hash in the answer's hashes: {hashes}")
        hits = [m for m in matches if isinstance(m, dict) and m.get("distance", 99) <= THRESHOLD]
        if len(hits) != len(matches):
            problems.append(f"{what}: malformed matches {matches}")
        elif expect and not hits:
            problems.append(f"{what}: not matched")
        elif not expect and hits:
            problems.append(f"{what}: matched {hits}")
        elif what == "listed hash" and (hits[0]["hash"], hits[0]["distance"]) != (
            fixture.listed,
            0,
        ):
            problems.append(f"{what}: matched {hits[0]}, not itself at 0")
    return problems


# -- wrk ------------------------------------------------------------------------------------

_LUA_HEAD = """wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "{content_type}"
"""
_LUA_POOL = """local bodies = {{}}
for line in io.lines("{bodies}") do bodies[#bodies + 1] = line end
local requests = {{}}
local n = 0
init = function(args)
  for i, body in ipairs(bodies) do requests[i] = wrk.format(nil, nil, nil, body) end
end
request = function()
  n = n % #requests + 1
  return requests[n]
end
"""
_LUA_FILE = """local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*a")
f:close()
"""


def wrk_scripts(fixture: Fixture) -> dict[str, Path]:
    """The Lua script of each case: ``hash`` cycles through the pool, ``jpeg`` one file."""
    bodies = fixture.work / "hash-bodies.txt"
    bodies.write_text("\n".join(hash_body(h).decode() for h in fixture.unlisted) + "\n")
    scripts = {
        "hash": _LUA_HEAD.format(token=fixture.token, content_type="application/json")
        + _LUA_POOL.format(bodies=bodies),
        "jpeg": _LUA_HEAD.format(token=fixture.token, content_type="image/jpeg")
        + _LUA_FILE.format(body=fixture.photo_unlisted),
    }
    paths = {}
    for case, text in scripts.items():
        path = fixture.work / f"{case}.lua"
        path.write_text(text)
        paths[case] = path
    return paths


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(out: str) -> Load:
    """Requests/s, requests, non-2xx, socket errors and percentiles from wrk's output.

    wrk pads a percentile in seconds with a trailing space (``99%    3.00s ``).

    Raises:
        ValueError: a figure is missing (wrk failed, or printed no latency table).
    """
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)
    done = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m)", out, re.M)
    if not rps or not done:
        raise ValueError(f"wrk printed no figures:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    latency = {
        f"p{m[1]}": _ms(m[2]) for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M)
    }
    if len(latency) != 4:
        raise ValueError(f"wrk printed no latency percentiles:\n{out}")
    return Load(
        rps=float(rps[1]),
        requests=int(done[1]),
        seconds=_ms(done[2] + done[3]) / 1000,
        non2xx=int(non2xx[1]) if non2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        latency_ms=latency,
    )


def run_wrk(url: str, script: Path, connections: int, seconds: int) -> Load:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk; make bench installs it)")
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            str(script),
            url + "/v1/match",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    ).stdout
    return parse_wrk(out)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a server process and its workers so far."""
    import psutil

    total = 0.0
    try:
        parent = psutil.Process(pid)
        for proc in [parent, *parent.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
    except psutil.NoSuchProcess:
        pass
    return total


# -- the run -----------------------------------------------------------------------------


def load_1min() -> float:
    return round(os.getloadavg()[0], 2)


def settle(below: float, wait_s: float) -> dict[str, float]:
    """Wait until the 1-minute load is below ``below`` (at most ``wait_s``); what it was."""
    start = time.monotonic()
    first = load_1min()
    now = first
    while now >= below and time.monotonic() - start < wait_s:
        time.sleep(5)
        now = load_1min()
    return {
        "before_wait": first,
        "at_timing": now,
        "waited_s": round(time.monotonic() - start, 1),
        "below": below,
    }


def measure(
    fixture: Fixture,
    seconds: int,
    connections: dict[str, int],
    warmup: int,
) -> tuple[list[Row], list[dict[str, Any]]]:
    """Every server, 1 and 2 workers, each case: checks, then wrk."""
    scripts = wrk_scripts(fixture)
    rows: list[Row] = []
    checks: list[dict[str, Any]] = []
    for workers in (1, 2):
        for server in SERVERS:
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            proc = start_server(fixture, server, workers, port)
            name = f"{SERVERS[server]} ({workers}w)"
            try:
                wait_workers(url, server, workers, proc)
                problems = check_answers(url, fixture)
                checks.append({"server": server, "workers": workers, "problems": problems})
                if problems:
                    raise RuntimeError(f"{name} answered wrongly: {'; '.join(problems)}")
                for case in ("hash", "jpeg"):
                    if warmup:
                        run_wrk(url, scripts[case], connections[case], warmup)
                    load = load_1min()
                    cpu, wall = cpu_seconds(proc.pid), time.monotonic()
                    got = run_wrk(url, scripts[case], connections[case], seconds)
                    cores = (cpu_seconds(proc.pid) - cpu) / (time.monotonic() - wall)
                    rows.append(
                        Row(
                            case=case,
                            server=server,
                            workers=workers,
                            connections=connections[case],
                            rps=got.rps,
                            p50_ms=got.latency_ms["p50"],
                            p75_ms=got.latency_ms["p75"],
                            p90_ms=got.latency_ms["p90"],
                            p99_ms=got.latency_ms["p99"],
                            requests=got.requests,
                            non2xx=got.non2xx,
                            socket_errors=got.socket_errors,
                            load_1min=load,
                            server_cores=round(cores, 2),
                        )
                    )
            finally:
                if proc.poll() is None:
                    _stop(proc, name)
            if proc.returncode != 0:
                log = (fixture.work / f"{server}-{workers}w.log").read_text(errors="replace")
                raise RuntimeError(f"{name} exited {proc.returncode}:\n{log[-3000:]}")
    judge(rows)
    return rows, checks


def judge(rows: list[Row]) -> None:
    """Fill in the ratios to the baseline, the 2w/1w scales and the aims."""
    by = {(r.case, r.server, r.workers): r for r in rows}
    for r in rows:
        base = by.get((r.case, "baseline", r.workers))
        if r.server == "node" and base and base.rps:
            r.ratio = r.rps / base.rps
        one = by.get((r.case, r.server, 1))
        if r.workers == 2 and one and one.rps:
            r.scale = r.rps / one.rps
        clean = r.non2xx == 0 and r.socket_errors == 0
        if r.server == "node" and r.workers == 2 and r.case == "hash":
            r.aim = f"≥ {HASH_AIM_RPS:,.0f} req/s"
            r.met = r.rps >= HASH_AIM_RPS and clean
        elif r.server == "node" and r.workers == 2 and r.case == "jpeg":
            r.aim = f"≥ {SCALE_AIM:g}× from 1 to 2 workers"
            r.met = r.scale is not None and r.scale >= SCALE_AIM and clean


def _table(doc: dict[str, Any]) -> str:
    lines = [
        f"list: {doc['config']['hashes']:,} PDQ hashes; photo: {doc['config']['photo']}",
        f"load (1 min): {doc['load']['before_wait']} at start, {doc['load']['at_timing']} when "
        f"timing began (waited {doc['load']['waited_s']} s for < {doc['load']['below']})",
        "",
        f"{'case':5} {'server':14} {'w':>2} {'conn':>4} {'req/s':>10} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'non-2xx':>7} {'cores':>5} {'× base':>7} {'2w/1w':>6}  aim",
        "-" * 100,
    ]
    for r in doc["rows"]:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        scale = "-" if r["scale"] is None else f"{r['scale']:.2f}"
        met = "" if r["met"] is None else (": met" if r["met"] else ": NOT met")
        lines.append(
            f"{r['case']:5} {SERVERS[r['server']]:14} {r['workers']:>2} {r['connections']:>4} "
            f"{r['rps']:>10,.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['non2xx'] + r['socket_errors']:>7} {r['server_cores']:>5.2f} {ratio:>7} {scale:>6}"
            f"  {r['aim']}{met}"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a 10k list, 5-second runs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--seconds", type=int, help="each timed wrk run (default 15; quick 5)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections, hashes")
    parser.add_argument(
        "--image-connections", type=int, default=8, help="wrk connections, JPEG uploads"
    )
    parser.add_argument("--hashes", type=int, help="listed hashes (default 100k; quick 10k)")
    parser.add_argument("--megapixels", type=float, default=12.0, help="the JPEG's size")
    parser.add_argument("--settle-load", type=float, default=0.7, help="wait for load below")
    parser.add_argument("--settle-wait", type=float, default=600.0, help="at most (seconds)")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (5 if args.quick else 15)
    args.hashes = args.hashes or (10_000 if args.quick else 100_000)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started_load = load_1min()
    connections = {"hash": args.connections, "jpeg": args.image_connections}
    with tempfile.TemporaryDirectory(prefix="hashhub-upload-bench-") as tmp:
        fixture, hub = prepare(Path(tmp), args.hashes, args.megapixels)
        try:
            settled = settle(args.settle_load, args.settle_wait)
            warmup = 1 if args.seconds >= 4 else 0
            rows, checks = measure(fixture, args.seconds, connections, warmup)
        finally:
            _stop(hub, "hashhub serve")
    doc = {
        "config": {
            "hashes": fixture.size,
            "photo": fixture.photo_note,
            "seconds": args.seconds,
            "connections": connections,
            "wrk_threads": 1,
            "megapixels": args.megapixels,
            "query_pool": QUERY_POOL,
        },
        "cores": os.cpu_count(),
        "load": {"bench_start": started_load, **settled},
        "checks": checks,
        "rows": [asdict(r) for r in rows],
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(_table(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
