"""Federation benchmark: a regional hub following two upstream hubs of 1M entries each.

Two upstream hubs (a helpline with a PDQ entries list, a hotline with an MD5 entries
list), each with ``--entries`` entries published in one version, serve their trees
from real ``hashhub serve`` processes on loopback. A regional hub declares both,
is enrolled at each as a node, selects every entry of both lists, and follows:

1. **bootstrap**: the regional hub's first run over both upstreams
   (``hub.following.follow_upstreams``): verify every header and body of each
   list (no snapshot: the version adding each record must be known for its
   provenance), carry every entry over, publish its own two lists with a
   provenance document per version, acknowledge. Side by side: a node
   (``hashhub-node sync``) bootstrapping the same two lists from the same servers,
   which reads the snapshot — the baseline of "following" a list;
2. **delta**: ``--delta`` new entries published by the helpline; the regional hub's
   next run, from fetching the upstream's new version to its own new version
   published with their provenance. Side by side: the node's sync of the same
   version.

Each step of a run is timed (``FollowReport.seconds``: sync, carry, publish, acks).
Run: ``python bench/federation_bench.py [--quick] [--json]``; ``--quick`` uses
100k entries and a 1k delta.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.hub_bench import Row, _free_port, _wait_ready  # noqa: E402
from hub.core import Hub  # noqa: E402
from hub.following import FollowReport, follow_upstreams, in_place  # noqa: E402
from hub.services.entries import EntryDraft  # noqa: E402
from node.config import write_secret  # noqa: E402
from node.service import Node  # noqa: E402
from protocol.keyfile import load_public_key  # noqa: E402

UPSTREAMS = (
    ("helpline.example", "ncii-pdq", "pdq", "ncii"),
    ("hotline.example", "csam-md5", "md5", "csam"),
)
REGIONAL = "regional.example"
STAGE_CHUNK = 50_000


def _hash(kind: str, n: int) -> str:
    digest = hashlib.sha256(f"{kind} entry {n}".encode()).hexdigest()
    return digest if kind == "pdq" else digest[:32]


def _stage(home: Path, list_id: str, kind: str, category: str, first: int, count: int) -> None:
    hub = Hub.open(home)
    try:
        for start in range(first, first + count, STAGE_CHUNK):
            end = min(first + count, start + STAGE_CHUNK)
            drafts = [
                EntryDraft(((list_id, _hash(kind, n)),), category, "confirmed", "import:bench")
                for n in range(start, end)
            ]
            hub.entries.stage_many(drafts, "bench")
        hub.publishing.publish([list_id])
    finally:
        hub.close()


def _make_upstream(home: Path, name: str, list_id: str, kind: str, category: str, n: int) -> str:
    hub = Hub.init(home, name, root_keys=1, root_threshold=1, publish_interval=0)
    try:
        hub.roots.create_list(list_id, kind, label=category, list_format="entries")
        pin = hub.keys.root_sha256(1)
    finally:
        hub.close()
    _stage(home, list_id, kind, category, 0, n)
    return pin


def _serve(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cli = Path(sys.executable).parent / "hashhub"
    proc = subprocess.Popen(
        [str(cli), "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_ready(url, proc)
    return proc, url


async def _follow(home: Path) -> list[FollowReport]:
    hub = Hub.open(home)
    try:
        async with aiohttp.ClientSession() as session:
            return await follow_upstreams(in_place(hub), session=session, now=hub.now())
    finally:
        hub.close()


def _node_sync(home: Path) -> float:
    cli = Path(sys.executable).parent / "hashhub-node"
    start = time.monotonic()
    out = subprocess.run(
        [str(cli), "sync", "--home", str(home)], capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - start
    if out.returncode != 0:
        raise RuntimeError(f"hashhub-node sync failed: {out.stdout}{out.stderr}")
    return seconds


def _enrol_node(work: Path, up_home: Path, url: str, pin: str, list_id: str) -> Path:
    home = work / f"node-{list_id}"
    Node.init(
        home, node_id="platform-b", hub_url=url, lists=[list_id], pinned_root_sha256=pin
    ).close()
    hub = Hub.open(up_home)
    try:
        token = hub.access.enrol_node(
            "platform-b", load_public_key(home / "node.pub.pem"), [list_id]
        )
    finally:
        hub.close()
    write_secret(home / "hub-token", token)
    return home


def _summed(reports: list[FollowReport], step: str) -> float:
    return sum(r.seconds.get(step, 0.0) for r in reports)


def run(n: int, delta: int) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hashhub-federation-") as tmp:
        work = Path(tmp)
        servers: list[subprocess.Popen[bytes]] = []
        try:
            upstreams = []
            start = time.monotonic()
            for name, list_id, kind, category in UPSTREAMS:
                home = work / name
                pin = _make_upstream(home, name, list_id, kind, category, n)
                proc, url = _serve(home)
                servers.append(proc)
                upstreams.append((name, list_id, kind, category, home, pin, url))
            setup = time.monotonic() - start

            regional = work / REGIONAL
            hub = Hub.init(regional, REGIONAL, root_keys=1, root_threshold=1, publish_interval=0)
            try:
                for _, _, kind, _, _, _, _ in upstreams:
                    hub.roots.create_list(
                        f"regional-{kind}", kind, label="regional", list_format="entries"
                    )
                for name, list_id, kind, _, home, pin, url in upstreams:
                    hub.roots.declare_upstream(name, url, pin)
                    public = hub.upstreams.follow(name, "regional", [list_id])
                    up = Hub.open(home)
                    try:
                        token = up.access.enrol_node("regional", load_public_key(public), [list_id])
                    finally:
                        up.close()
                    hub.upstreams.set_token(name, token)
                    hub.upstreams.select(name, list_id, f"regional-{kind}")
            finally:
                hub.close()

            start = time.monotonic()
            reports = asyncio.run(_follow(regional))
            bootstrap = time.monotonic() - start
            problems = [p for r in reports for p in r.problems]
            if problems:
                raise RuntimeError(f"bootstrap problems: {problems}")
            carried = sum(len(r.carried.added) for r in reports if r.carried)
            node_seconds = 0.0
            nodes = []
            for _name, list_id, _, _, home, pin, url in upstreams:
                node_home = _enrol_node(work, home, url, pin, list_id)
                nodes.append(node_home)
                node_seconds += _node_sync(node_home)
            rows.append(
                Row(
                    f"bootstrap: 2 upstream lists × {n:,} entries, regional hub",
                    bootstrap,
                    "s",
                    "-",
                    None,
                    f"sync {_summed(reports, 'sync'):.1f} s, carry-over "
                    f"{_summed(reports, 'carry'):.1f} s, publish "
                    f"{_summed(reports, 'publish'):.1f} s, acks {_summed(reports, 'acks'):.2f} s; "
                    f"{carried:,} entries re-published with provenance; "
                    f"{bootstrap / node_seconds:.1f}× a node's sync of the same lists "
                    f"({node_seconds:.1f} s, from the snapshot)",
                )
            )
            rows.append(
                Row(
                    "bootstrap: node sync of the same 2 lists (baseline)",
                    node_seconds,
                    "s",
                    "-",
                    None,
                    "hashhub-node sync, one process per list, reads each snapshot",
                )
            )

            name, list_id, kind, category, home, _pin, _url = upstreams[0]
            _stage(home, list_id, kind, category, n, delta)
            time.sleep(1.2)  # the server keeps a checkpoint in memory for a second
            start = time.monotonic()
            reports = asyncio.run(_follow(regional))
            delta_seconds = time.monotonic() - start
            published = [p for r in reports for p in r.published]
            if [p.adds for p in published] != [delta]:
                raise RuntimeError(f"delta run published {published}")
            node_delta = _node_sync(nodes[0])
            rows.append(
                Row(
                    f"delta: {delta:,} new upstream entries to the regional hub's own publish",
                    delta_seconds,
                    "s",
                    "-",
                    None,
                    f"sync {_summed(reports, 'sync'):.2f} s, carry-over "
                    f"{_summed(reports, 'carry'):.2f} s, publish "
                    f"{_summed(reports, 'publish'):.2f} s, acks "
                    f"{_summed(reports, 'acks'):.2f} s (both upstreams polled); "
                    f"{delta_seconds / node_delta:.1f}× a node's sync of the same version "
                    f"({node_delta:.2f} s)",
                )
            )
            rows.append(
                Row(
                    "setup (not a figure of following): 2 upstream hubs staged and published",
                    setup,
                    "s",
                    "-",
                    None,
                    f"{2 * n:,} entries through Entries.stage_many and Publishing.publish",
                )
            )
        finally:
            for proc in servers:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--delta", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="100k entries, a 1k delta")
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args(argv)
    n, delta = (100_000, 1_000) if args.quick else (args.entries, args.delta)
    rows = run(n, delta)
    if args.json:
        print(json.dumps({"machine": {"cores": os.cpu_count()}, "rows": [asdict(r) for r in rows]}))
    else:
        for r in rows:
            print(f"{r.case}: {r.value:.2f} {r.unit}  {r.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
