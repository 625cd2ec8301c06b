"""Load: 500 simulated nodes against one real hub for 60 s, and nothing lost or counted twice.

One run (``bench/load_bench.py``'s driver) is shared by the tests of this module:
a real ``hashhub serve`` process, 500 nodes enrolled through the operator API with
their own keys and tokens, each a real aiohttp client on loopback that polls its
lists' checkpoints, fetches and verifies the deltas through the protocol's trust
rules and posts signed acks (re-sending some with the same ``seq``, as retries
do), while an operator publishes a version every few seconds. Afterwards the
hub's database and its reported totals are compared with what the clients sent.

``HASHHUB_LOAD_NODES`` and ``HASHHUB_LOAD_SECONDS`` shrink the run for a quick
local try. Latencies are printed (``pytest -s``) and only bounded generously: the
figures belong to ``bench/load_bench.py`` and ``docs/benchmarks.md``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os

import pytest

from bench import report
from bench.load_bench import LISTS, LoadConfig, LoadResult, ack_problems, run_load

pytestmark = pytest.mark.slow

NODES = int(os.environ.get("HASHHUB_LOAD_NODES", "500"))
SECONDS = float(os.environ.get("HASHHUB_LOAD_SECONDS", "60"))
NODE_KINDS = ("root", "checkpoint", "delta", "body", "ack")
P99_BOUND_S = 10.0
"""Twice the benchmark's aim of 5 s: the latencies are measured in this process, which
shares two cores with the hub, and a test run may share the machine with other work."""


@pytest.fixture(scope="module")
def load(tmp_path_factory: pytest.TempPathFactory) -> LoadResult:
    """The one run the tests of this module look at (a real hub process, real clients)."""
    config = LoadConfig(nodes=NODES, seconds=SECONDS)
    result = asyncio.run(run_load(tmp_path_factory.mktemp("load"), config))
    print("\n" + result.table())
    return result


def test_every_request_of_every_node_gets_the_answer_it_expects(load: LoadResult) -> None:
    assert load.errors == 0, load.error_samples[:10]
    assert load.hub_log_problems == []
    assert load.hub_exit in (0, -15), "the hub stops cleanly on SIGTERM"
    kinds = {k["kind"]: k["count"] for k in load.kinds}
    for kind in NODE_KINDS:
        assert kinds.get(kind, 0) > 0, f"no {kind} request was made"
    assert load.not_modified > 0, "the checkpoint's ETag saved some polls a body"
    assert all(version >= 2 for version in load.versions.values()), load.versions


def test_every_ack_the_hub_confirmed_is_stored_exactly_once_byte_for_byte(
    load: LoadResult,
) -> None:
    assert load.ack_problems == {"lost": [], "doubled": [], "unconfirmed": [], "altered": []}
    assert load.acks_stored == load.acks_confirmed
    # Every node applied at least version 1 of each of its lists and acked it.
    lists_read = NODES + (NODES + 1) // 2
    assert load.acks_confirmed >= lists_read
    assert load.evidence == 0


def test_resent_acks_are_answered_duplicate_and_no_total_counts_them_again(
    load: LoadResult,
) -> None:
    assert load.resends > 0
    assert load.resends_duplicate == load.resends
    assert load.totals_hub == load.totals_expected
    for list_id in LISTS:
        assert load.totals_expected[list_id]["checked"] > 0
        assert load.hashes_counted[list_id] > 0
        assert load.hash_totals_match[list_id], list_id


def test_the_checks_see_an_ack_lost_stored_twice_or_altered_and_a_total_off_by_one(
    load: LoadResult,
) -> None:
    """The checks above can fail: fed the same run with one defect each, they report it."""
    confirmed, stored = load.ledger.confirmed, load.stored
    assert stored, "the run stored acks"
    node, seq, _ = stored[0]
    assert ack_problems(confirmed, stored[1:])["lost"] == [f"{node} seq {seq}"]
    assert ack_problems(confirmed, [*stored, stored[0]])["doubled"] == [f"{node} seq {seq} ×2"]
    altered = [(node, seq, "0" * 64), *stored[1:]]
    assert ack_problems(confirmed, altered)["altered"] == [f"{node} seq {seq}"]
    list_id = next(iter(LISTS))
    totals = {**load.totals_hub, list_id: dict(load.totals_hub[list_id])}
    totals[list_id]["matched"] += 1
    off = dataclasses.replace(load, totals_hub=totals)
    assert [p for p in off.problems() if p.startswith(f"{list_id}: hub totals")]


def test_latencies_stay_within_a_generous_bound(load: LoadResult) -> None:
    for row in load.kinds:
        if row["kind"] in NODE_KINDS:
            assert row["p99_ms"] < P99_BOUND_S * 1000, row


def test_every_node_keeps_polling_to_the_end(load: LoadResult) -> None:
    """No client stalls and leaves the hub idle: requests arrive in every window of the run.

    Judged against the rate this run itself achieved, not a figure fixed in advance:
    the clients share this process and two cores with the hub, and on a machine
    busy with other work they poll slower, which is no defect of the hub. The rate
    the polling interval implies is a benchmark figure (``bench/load_bench.py``).
    """
    assert load.hub_cpu_percent > 0
    assert len(load.windows) >= 2, "the rate is sampled through the run"
    # The windows that began while the load ran (the sampler's last one, after the
    # nodes stopped, has nothing in it).
    starts = [0.0] + [w["t"] for w in load.windows[:-1]]
    rates = [
        w["requests_per_s"]
        for start, w in zip(starts, load.windows, strict=True)
        if start < load.config.seconds
    ]
    assert len(rates) >= 2, load.windows
    assert all(rate > 0 for rate in rates), rates
    assert rates[-1] > load.requests_per_s / 10, (rates, load.requests_per_s)


def test_the_hub_memory_is_sampled_through_the_run_and_does_not_balloon(load: LoadResult) -> None:
    """Resident memory is sampled through the run; growth is reported, bounded loosely."""
    assert len(load.rss) >= 2
    growth = load.rss_growth()
    assert growth["end_mb"] < 4 * growth["before_mb"] + 100, growth


def test_the_benchmark_page_shows_this_run_with_its_checks_met(load: LoadResult) -> None:
    """``bench/report.py`` renders the driver's JSON (as ``make bench`` would) into the page."""
    doc = json.loads(json.dumps(load.to_dict()))
    section, aims = report.render_load(doc)
    assert f"## Load and soak: {NODES} nodes" in section
    assert "| acks lost | 0 | 0 | met |" in section
    checks = [row for row in aims if "p99" not in row[0]]  # latency: bounded above
    assert len(checks) == 7
    assert all(row[-1] == "met" for row in checks), checks
