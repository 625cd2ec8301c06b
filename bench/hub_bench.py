"""Hub benchmarks: checkpoint reads and acks per second under load, and a large publish.

Three figures, printed side by side with their aims (issue: the hub):

1. **Checkpoint GETs per second** with 100 concurrent clients against a real
   ``hashhub serve`` process on loopback. The load comes from a separate process
   (a pool of aiohttp clients, one connection each), so the server has its own
   core. Where Debian's ``wrk`` is installed it is run too, as a second,
   independent load generator. Aim: ≥ 2,000/s on this 2-core machine.
2. **Acks per second** with 100 concurrent nodes, each enrolled with its own key
   and token and posting its own signed acks with increasing ``seq`` (every ack
   is verified: Ed25519 signature, co-signature, seq, published root and state,
   then stored with counters). The acks are signed before the clock starts.
   Aim: ≥ 500/s.
3. **Publishing 100k additions onto a 1M-hash list**: ``Publishing.publish`` end to end
   (normalise staged rows, sign, store body, header, checkpoint, entries, one
   transaction). Aim: < 5 s. Staging the rows is timed separately.

Run: ``python bench/hub_bench.py [--quick] [--json]``. ``--quick`` uses 100k/10k
hashes and 5-second load phases, for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hub.core import Hub
from hub.intake import Intake
from protocol import SignedCheckpoint, SigningKey
from protocol.ack import AppliedVersion, Counts, sign_ack
from protocol.delta import DeltaHeader
from protocol.layout import checkpoint_path, header_path

LIST_ID = "bench-md5"


@dataclass
class Row:
    case: str
    value: float
    unit: str
    aim: str
    met: bool | None
    note: str = ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hashes(count: int, salt: bytes) -> list[bytes]:
    return [os.urandom(8) + salt[:8].ljust(8, b"\0") for _ in range(count)]


def bench_publish(home: Path, base: int, extra: int) -> list[Row]:
    """Stage and publish ``base`` hashes, then time staging and publishing ``extra`` more."""
    hub = Hub.open(home)
    hub.lists.stage(LIST_ID, adds=[Intake(h) for h in _hashes(base, b"base")])
    t0 = time.perf_counter()
    hub.publishing.publish([LIST_ID])
    first = time.perf_counter() - t0
    adds = [Intake(h) for h in _hashes(extra, b"extra")]
    t0 = time.perf_counter()
    hub.lists.stage(LIST_ID, adds=adds)
    staged = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = hub.publishing.publish([LIST_ID])
    took = time.perf_counter() - t0
    hub.close()
    if not result or result[0].adds != extra:
        raise RuntimeError(f"unexpected publish result {result}")
    label = f"{extra // 1000}k adds onto {base / 1e6:g}M"
    return [
        Row(f"publish {base / 1e6:g}M adds (first version)", first, "s", "-", None),
        Row(f"stage {label}", staged, "s", "-", None, "intake, before publish"),
        Row(f"publish {label}", took, "s", "< 5 s", took < 5.0),
    ]


async def _load_gets(url: str, clients: int, seconds: float) -> tuple[int, int]:
    import aiohttp

    done = errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done, errors
        while time.perf_counter() < deadline:
            async with session.get(url) as resp:
                await resp.read()
                if resp.status == 200:
                    done += 1
                else:
                    errors += 1

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(clients)))
    return done, errors


async def _load_acks(url: str, plan: list[dict[str, Any]], seconds: float) -> tuple[int, int]:
    import aiohttp

    done = errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession, node: dict[str, Any]) -> None:
        nonlocal done, errors
        headers = {"Authorization": f"Bearer {node['token']}"}
        for ack, sig in node["acks"]:
            if time.perf_counter() >= deadline:
                return
            async with session.post(
                url,
                data=base64.b64decode(ack),
                headers={**headers, "Hashhub-Signature": sig, "Content-Type": "application/json"},
            ) as resp:
                await resp.read()
                if resp.status == 200:
                    done += 1
                else:
                    errors += 1

    connector = aiohttp.TCPConnector(limit=len(plan))
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session, node) for node in plan))
    return done, errors


def load_main(argv: Sequence[str]) -> int:
    """The load generator, run in its own process: prints one JSON line of results."""
    mode, url, clients_or_plan, seconds = argv
    start = time.perf_counter()
    if mode == "gets":
        done, errors = asyncio.run(_load_gets(url, int(clients_or_plan), float(seconds)))
    else:
        plan = json.loads(Path(clients_or_plan).read_text())
        done, errors = asyncio.run(_load_acks(url, plan, float(seconds)))
    elapsed = time.perf_counter() - start
    print(json.dumps({"done": done, "errors": errors, "elapsed": elapsed}))
    return 0


def _run_load(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--load", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _ack_plan(home: Path, nodes: int, per_node: int) -> list[dict[str, Any]]:
    """Enrol ``nodes`` nodes and sign ``per_node`` acks each for the latest version."""
    hub = Hub.open(home)
    root = hub.keys.root()
    checkpoint = SignedCheckpoint.from_bytes(hub.files.get(checkpoint_path(LIST_ID))[0])  # type: ignore[index]
    size = checkpoint.checkpoint.size
    header = DeltaHeader.from_bytes(hub.files.get(header_path(LIST_ID, size))[0])  # type: ignore[index]
    applied = AppliedVersion(size, checkpoint.checkpoint.root_hash, header.result_state)
    plan = []
    for n in range(nodes):
        key = SigningKey.generate()
        node_id = f"bench-node-{n:03d}"
        token = hub.access.enrol_node(node_id, key.public, [LIST_ID])
        acks = []
        for seq in range(1, per_node + 1):
            data, sig = sign_ack(
                key=key,
                node=node_id,
                list_id=LIST_ID,
                seq=seq,
                sent=hub.now(),
                origin=root.origin(LIST_ID),
                applied=applied,
                counts=Counts(checked=seq * 10, matched=seq),
            )
            acks.append((base64.b64encode(data).decode(), base64.b64encode(sig).decode()))
        plan.append({"token": token, "acks": acks})
    hub.close()
    return plan


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    import urllib.request

    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError("hashhub serve exited early")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("hashhub serve did not become ready")


def bench_server(home: Path, seconds: float, clients: int) -> list[Row]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cli = Path(sys.executable).parent / "hashhub"
    plan = _ack_plan(home, clients, per_node=int(seconds * 40))
    plan_file = home / "ack-plan.json"
    plan_file.write_text(json.dumps(plan))
    proc = subprocess.Popen(
        [str(cli), "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        _wait_ready(url, proc)
        get_url = f"{url}/{checkpoint_path(LIST_ID)}"
        result = _run_load("gets", get_url, str(clients), str(seconds))
        rate = result["done"] / result["elapsed"]
        rows.append(
            Row(
                f"checkpoint GET, {clients} clients (aiohttp pool)",
                rate,
                "req/s",
                "≥ 2,000/s",
                rate >= 2000 and result["errors"] == 0,
                f"{result['done']} ok, {result['errors']} errors in {result['elapsed']:.1f} s",
            )
        )
        wrk = shutil.which("wrk")
        if wrk:
            out = subprocess.run(
                [wrk, "-t1", f"-c{clients}", f"-d{int(seconds)}s", get_url],
                capture_output=True,
                text=True,
                check=True,
                timeout=seconds + 60,
            ).stdout
            line = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
            wrk_rate = float(line.split()[1])
            non2xx = next((ln for ln in out.splitlines() if "Non-2xx" in ln), "")
            rows.append(
                Row(
                    f"checkpoint GET, {clients} connections (wrk)",
                    wrk_rate,
                    "req/s",
                    "≥ 2,000/s",
                    wrk_rate >= 2000 and not non2xx,
                    non2xx.strip() or "all 2xx",
                )
            )
        else:
            rows.append(
                Row("checkpoint GET (wrk)", float("nan"), "req/s", "-", None, "wrk not installed")
            )
        result = _run_load("acks", f"{url}/v1/acks", str(plan_file), str(seconds))
        rate = result["done"] / result["elapsed"]
        rows.append(
            Row(
                f"acks verified+stored, {clients} nodes",
                rate,
                "acks/s",
                "≥ 500/s",
                rate >= 500 and result["errors"] == 0,
                f"{result['done']} ok, {result['errors']} errors in {result['elapsed']:.1f} s",
            )
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["--load"]:
        return load_main(args_in[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, short load phases")
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    parser.add_argument("--clients", type=int, default=100)
    args = parser.parse_args(args_in)
    base, extra, seconds = (100_000, 10_000, 5.0) if args.quick else (1_000_000, 100_000, 15.0)
    machine = (
        f"{platform.platform()} | {platform.processor() or platform.machine()} | "
        f"{os.cpu_count()} CPUs | {platform.python_implementation()} {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="hashhub-bench-") as tmp:
        home = Path(tmp) / "hub"
        hub = Hub.init(
            home,
            "bench.hub.invalid",
            root_keys=1,
            root_threshold=1,
            publish_interval=0,
            timestamp_interval=0,
        )
        hub.roots.create_list(LIST_ID, "md5", snapshot_every=1000, public=True)
        hub.close()
        rows = bench_publish(home, base, extra)
        rows += bench_server(home, seconds, args.clients)
    if args.json:
        print(json.dumps({"machine": machine, "rows": [asdict(r) for r in rows]}, indent=2))
        return 0
    print(f"machine: {machine}\n")
    print(f"{'case':52} {'value':>12}  {'unit':7} {'aim':11} {'met':5} note")
    print("-" * 110)
    for r in rows:
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        print(f"{r.case:52} {r.value:12,.2f}  {r.unit:7} {r.aim:11} {met:5} {r.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
