"""The upload bench's servers answer right, and with wrk it runs end to end and renders.

These tests keep ``bench/upload_bench.py``, ``bench/pytx_baseline.py`` and the
report's upload section working; they make no claim about speed. What the bench's
figures rest on is checked without wrk: both servers, started as the bench starts
them with 2 workers over a synced node home and a tiny list, answer every worker's
``POST /v1/match`` rightly (a listed hash matched at distance 0, a random one not,
the listed photo matched and its mirror not, a wrong token refused) and stop with
exit 0 on SIGTERM. With wrk installed (``make bench`` installs it), a one-second run
gives every row with figures and no errors, and the report renders the section and
its aims.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench import report, upload_bench
from bench.hub_bench import _free_port
from bench.upload_bench import WORKER_HEADERS, Fixture

pytest.importorskip("threatexchange", reason="the baseline needs the bench extra")

TINY_HASHES = 2000
TINY_MEGAPIXELS = 1.0

WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:40000/v1/match
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.53ms    1.51ms  28.47ms   87.50%
    Req/Sec     6.07k   241.69     6.40k    80.00%
  Latency Distribution
     50%   10.41ms
     75%   11.02ms
     90%  950.00us
     99%    1.27s
  12088 requests in 2.01s, 3.56MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   6014.52
Transfer/sec:      1.77MB
""".replace("1.27s\n", "1.27s \n")  # wrk pads a figure in seconds with a space


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    """A served hub with a tiny PDQ list and a node home synced from it."""
    work = tmp_path_factory.mktemp("upload")
    made, hub = upload_bench.prepare(work, TINY_HASHES, TINY_MEGAPIXELS)
    try:
        yield made
    finally:
        upload_bench._stop(hub, "hashhub serve")


async def _ask(url: str, token: str, body: bytes, content_type: str) -> tuple[int, str, Any]:
    """One request on a fresh connection: (status, worker, JSON answer)."""
    connector = aiohttp.TCPConnector(force_close=True)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(url + "/v1/match", data=body, headers=headers) as resp,
    ):
        names = [WORKER_HEADERS["node"], WORKER_HEADERS["baseline"]]
        worker = next((resp.headers[n] for n in names if n in resp.headers), "?")
        return resp.status, worker, await resp.json()


async def _answers_of_every_worker(url: str, fixture: Fixture) -> dict[str, list[Any]]:
    """Each kind of request until both workers have answered it: worker → answers."""
    asks = [
        (upload_bench.hash_body(fixture.listed), "application/json"),
        (upload_bench.hash_body(fixture.unlisted[0]), "application/json"),
        (fixture.photo_listed.read_bytes(), "image/jpeg"),
        (fixture.photo_unlisted.read_bytes(), "image/jpeg"),
    ]
    by_worker: dict[str, list[Any]] = {}
    for body, content_type in asks:
        seen: dict[str, Any] = {}
        for _ in range(100):
            status, worker, answer = await _ask(url, fixture.token, body, content_type)
            assert status == 200, answer
            seen.setdefault(worker, answer)
            if len(seen) == 2:
                break
        assert sorted(seen) == ["0", "1"], seen
        for worker, answer in seen.items():
            by_worker.setdefault(worker, []).append(answer)
    return by_worker


@pytest.mark.slow
@pytest.mark.parametrize("server", ["node", "baseline"])
def test_every_worker_of_both_servers_answers_right(fixture: Fixture, server: str) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = upload_bench.start_server(fixture, server, 2, port)
    try:
        upload_bench.wait_workers(url, server, 2, proc)
        assert upload_bench.check_answers(url, fixture) == []
        by_worker = asyncio.run(_answers_of_every_worker(url, fixture))
        for answers in by_worker.values():
            listed, random_hash, photo, mirrored = answers
            assert [(m["hash"], m["distance"]) for m in listed["matches"]] == [(fixture.listed, 0)]
            assert listed["hashes"]["pdq"] == [fixture.listed]
            assert random_hash["matches"] == []
            assert random_hash["hashes"]["pdq"] == [fixture.unlisted[0]]
            assert len(photo["matches"]) == 1
            assert photo["matches"][0]["distance"] <= upload_bench.THRESHOLD
            assert mirrored["matches"] == []
            assert len(mirrored["hashes"]["pdq"][0]) == 64
        status, _, refused = asyncio.run(
            _ask(url, "wrong", upload_bench.hash_body(fixture.listed), "application/json")
        )
        assert status == 401
        assert refused["error"]["status"] == 401
    finally:
        upload_bench._stop(proc, server)
    assert proc.returncode == 0


def test_wrk_output_is_parsed_with_its_units() -> None:
    load = upload_bench.parse_wrk(WRK_OUTPUT)
    assert load.rps == 6014.52
    assert load.requests == 12088
    assert load.seconds == pytest.approx(2.01)
    assert load.non2xx == 5
    assert load.socket_errors == 3
    assert load.latency_ms == pytest.approx(
        {"p50": 10.41, "p75": 11.02, "p90": 0.95, "p99": 1270.0}
    )
    without_table = WRK_OUTPUT.replace("Latency Distribution", "")
    with pytest.raises(ValueError, match="no latency percentiles"):
        upload_bench.parse_wrk(without_table.replace("%", ""))
    with pytest.raises(ValueError, match="no figures"):
        upload_bench.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bench)")
def test_a_tiny_run_gives_every_row_and_the_report_renders(tmp_path: Path) -> None:
    out = io.StringIO()
    tiny = ["--json", "--hashes", str(TINY_HASHES), "--megapixels", str(TINY_MEGAPIXELS)]
    tiny += ["--seconds", "1", "--connections", "8", "--image-connections", "2"]
    with contextlib.redirect_stdout(out):
        assert upload_bench.main([*tiny, "--settle-wait", "0"]) == 0
    doc = json.loads(out.getvalue())
    rows = doc["rows"]
    assert [(r["case"], r["server"], r["workers"]) for r in rows] == [
        (case, server, workers)
        for workers in (1, 2)
        for server in ("node", "baseline")
        for case in ("hash", "jpeg")
    ]
    for r in rows:
        assert r["rps"] > 0, r
        assert r["requests"] > 0, r
        assert r["non2xx"] == 0, r
        assert r["socket_errors"] == 0, r
        assert 0 < r["p50_ms"] <= r["p99_ms"], r
        assert 0 < r["server_cores"] <= 2.5, r
        assert (r["ratio"] is not None) == (r["server"] == "node")
        assert (r["scale"] is not None) == (r["workers"] == 2)
    judged = [(r["case"], r["aim"]) for r in rows if r["met"] is not None]
    assert judged == [("hash", "≥ 5,000 req/s"), ("jpeg", "≥ 1.8× from 1 to 2 workers")]
    assert doc["checks"] == [
        {"server": s, "workers": w, "problems": []} for w in (1, 2) for s in ("node", "baseline")
    ]

    saved = tmp_path / "json"
    saved.mkdir()
    (saved / "upload.json").write_text(json.dumps(doc))
    (saved / "machine.json").write_text(json.dumps(report.machine()))
    page = tmp_path / "benchmarks.md"
    assert report.main(["--from-json", str(saved), "--only", "upload", "--out", str(page)]) == 0
    text = page.read_text()
    assert "## Upload path: `POST /v1/match` under wrk" in text
    assert "| upload: hash-only queries, node, 2 workers |" in text
    assert "| upload: 1 MP JPEG, node, 1 → 2 workers |" in text
    assert "| upload: p99 latency under load, node |" in text
    assert "| 1 MP JPEG | pytx baseline | 2 |" in text
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if lines:
            assert len({line.count(" | ") for line in lines}) == 1, block


def test_the_baseline_refuses_what_it_cannot_hash(fixture: Fixture) -> None:
    """Without starting a server: the app factory's answers for bad input."""
    from aiohttp.test_utils import TestClient, TestServer

    from bench.pytx_baseline import create_app

    async def ask() -> list[tuple[int, Any]]:
        app = create_app(fixture.hashes_file.read_bytes(), "t")
        async with TestClient(TestServer(app)) as client:
            got = []
            for body, content_type in [
                (b"{", "application/json"),
                (b'{"hashes": [{"type": "pdq", "hash": "ab"}]}', "application/json"),
                (b"x", "text/plain"),
            ]:
                resp = await client.post(
                    "/v1/match",
                    data=body,
                    headers={"Authorization": "Bearer t", "Content-Type": content_type},
                )
                got.append((resp.status, (await resp.json())["error"]["status"]))
            return got

    assert asyncio.run(ask()) == [(400, 400), (400, 400), (415, 415)]
