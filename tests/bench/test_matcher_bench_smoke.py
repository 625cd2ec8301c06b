"""The matcher benchmark runs end to end at tiny sizes, and the report renders from it.

These tests keep ``bench/matcher_bench.py`` and ``bench/report.py`` working; they make
no claim about speed. They do check what the benchmark's figures rest on: the
clustered generator really makes families of near-duplicates, half the queries
really are near listed hashes, every method that runs returns exactly the full
scan's matches (recall 1.0, nothing extra), the incremental run really folds the
deltas in with a background rebuild while queries continue, and the page the report
writes carries the machine, the tables and the aims.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from bench import matcher_bench, report
from bench.matcher_bench import (
    FAMILY_SHARE,
    MAX_FAMILY_FLIPS,
    THRESHOLD,
    WIDTH,
    clustered_words,
    make_queries,
    snapshot_of,
)

TINY = [
    "--sizes",
    "40000",
    "--distributions",
    "clustered",
    "--queries",
    "16",
    "--repeats",
    "1",
    "--incremental-base",
    "40000",
    "--incremental-adds",
    "2100",
    "--incremental-phase-s",
    "0.2",
    "--node-rss-size",
    "40000",
    "--json",
]
"""40k: above the multi-index threshold (32,768); two deltas of 2,100 pass both the
compaction minimum (4,096) and 1/64 of the list, so the second starts a rebuild."""


def _distances(words: NDArray[np.uint64], others: NDArray[np.uint64]) -> NDArray[np.int64]:
    """Hamming distances between every column of ``words`` and every column of ``others``."""
    diff = words[:, :, None] ^ others[:, None, :]
    distances: NDArray[np.int64] = np.bitwise_count(diff).sum(axis=0, dtype=np.int64)
    return distances


def test_clustered_members_lie_within_thirty_bits_of_a_centre() -> None:
    rng = np.random.default_rng(5)
    words = clustered_words(2000, rng)
    centres = 2000 // FAMILY_SHARE
    assert words.shape == (4, 2000)
    nearest = _distances(words[:, centres:], words[:, :centres]).min(axis=1)
    assert nearest.max() <= MAX_FAMILY_FLIPS
    assert nearest.min() >= 0
    # Most members sit at their drawn count of flips, so the spread covers the range.
    assert np.median(nearest) > 5
    # Unrelated centres are about 128 bits apart, as unrelated hashes are.
    between = _distances(words[:, :centres], words[:, :centres])
    assert 100 < np.median(between[np.triu_indices(centres, 1)]) < 156


def test_snapshot_is_sorted_unique_and_queries_are_half_near() -> None:
    rng = np.random.default_rng(6)
    words = clustered_words(3000, rng)
    data = snapshot_of(np.concatenate([words, words[:, :10]], axis=1))  # 10 duplicates
    n = len(data) // WIDTH
    hashes = [data[i * WIDTH : (i + 1) * WIDTH] for i in range(n)]
    assert hashes == sorted(set(hashes))
    assert n <= 3000
    queries = make_queries(data, 20, seed=1)
    assert len(queries) == 20 * WIDTH
    listed = np.frombuffer(data, dtype=">u8").reshape(n, 4).T.astype(np.uint64)
    asked = np.frombuffer(queries, dtype=">u8").reshape(20, 4).T.astype(np.uint64)
    nearest = _distances(asked, listed).min(axis=1)
    assert (nearest[0::2] <= THRESHOLD).all()
    assert (nearest[1::2] > 64).all()  # random 256-bit hashes are far from everything


@pytest.fixture(scope="module")
def matcher_doc() -> dict[str, Any]:
    """One tiny run of the matcher bench (every method, each in its own process)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert matcher_bench.main(TINY) == 0
    return dict(json.loads(out.getvalue()))


@pytest.mark.slow
def test_every_method_that_runs_returns_the_full_scans_matches(
    matcher_doc: dict[str, Any],
) -> None:
    rows = matcher_doc["rows"]
    assert [r["method"] for r in rows] == list(matcher_bench.METHODS)
    reference = next(r for r in rows if r["method"] == matcher_bench.REFERENCE)
    assert reference["expected"] > 8  # near queries in families find several hashes
    for row in rows:
        if "not installed" in row["note"]:
            assert row["runs"] == 0
            continue
        assert row["runs"] == 1, row
        assert row["recall"] == 1.0, row
        assert row["extra"] == 0, row
        assert row["qps"] > 0
        assert row["build_s"] > 0
        assert row["max_rss_bytes"] > 0
    ours = next(r for r in rows if r["method"] == "ours")
    assert ours["hashes"] <= 40000
    assert ours["queries"] == 16


@pytest.mark.slow
def test_incremental_run_rebuilds_in_the_background_while_queries_go_on(
    matcher_doc: dict[str, Any],
) -> None:
    inc = matcher_doc["incremental"]
    assert inc["base"] == 40000
    assert inc["adds"] == 2100
    assert inc["multi_indexed"]
    assert inc["rebuilt"]
    first, second = inc["applies"]
    assert first["pending"] == 2100  # the first delta waits in the side segment
    assert second["visible_s"] >= second["apply_s"] > 0
    phases = {p["phase"]: p for p in inc["phases"]}
    assert list(phases) == ["before", "apply + side segment", "rebuild", "after"]
    for name in ("before", "apply + side segment", "after"):
        assert phases[name]["queries"] > 0, name
        assert phases[name]["max_s"] >= phases[name]["p99_s"] >= phases[name]["p50_s"] > 0
    node = matcher_doc["node_rss"]
    assert node["size"] == 40000
    assert node["multi_indexed"]
    assert node["max_rss"] >= node["rss_after"] > node["index_bytes"] > 40000 * 96


@pytest.mark.slow
def test_report_renders_the_matcher_tables_and_aims(
    matcher_doc: dict[str, Any], tmp_path: Path
) -> None:
    saved = tmp_path / "json"
    saved.mkdir()
    (saved / "matcher.json").write_text(json.dumps(matcher_doc))
    (saved / "machine.json").write_text(json.dumps(report.machine()))
    page = tmp_path / "benchmarks.md"
    assert report.main(["--from-json", str(saved), "--only", "matcher", "--out", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# Benchmarks")
    for heading in (
        "## Machine and versions",
        "## Against the aims",
        "## Matcher: PDQ at 100k, 1M and 10M hashes, against the peers",
        "### Clustered, 40k hashes",
        "### Following a delta under query load",
        "### The node's resident memory at 10M",
    ):
        assert heading in text, heading
    for name in matcher_bench.METHODS.values():
        assert f"| {name} |" in text, name
    assert "| CPU |" in text
    assert "| OpenSSL |" in text
    assert "| threatexchange |" in text
    assert "matcher: +2,100 visible on 40k" in text
    # Every table row has as many cells as its header.
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if lines:
            widths = {line.count(" | ") for line in lines}
            assert len(widths) == 1, block
