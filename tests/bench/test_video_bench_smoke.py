"""The video bench runs end to end at a tiny size, and the report renders from it.

These tests keep ``bench/video_bench.py`` and the report's video section working;
they make no claim about speed. They check what the figures rest on: the synthetic
frames drift as the bench says (neighbours near, far frames far), a re-encoded copy
stays within ``REENCODE_FLIPS`` bits a frame, and in a run every copy finds its own
listed video and no unrelated query matches anything, through ours and the peer.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import report, video_bench
from bench.video_bench import DRIFT, REENCODE_FLIPS, make_videos, reencode

TINY = ["--videos", "300", "--frames", "20", "--queries", "6", "--json"]


def _distance(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> int:
    return int(np.bitwise_count(a ^ b).sum())


def test_frames_drift_a_few_bits_a_second_and_copies_stay_near() -> None:
    rng = np.random.default_rng(3)
    hashes, quality = make_videos(40, 30, rng)
    assert hashes.shape == (40, 30, 4)
    assert quality.shape == (40, 30)
    steps = [_distance(v[n], v[n + 1]) for v in hashes for n in range(29)]
    assert max(steps) <= DRIFT
    assert np.mean(steps) > 2
    assert np.median([_distance(v[0], v[29]) for v in hashes]) > 40
    assert 100 < np.median([_distance(hashes[i, 0], hashes[i + 1, 0]) for i in range(39)]) < 156
    low = float((quality < 50).mean())
    assert 0 < low < 0.15
    copy = reencode(hashes[0], rng)
    flips = [_distance(copy[n], hashes[0, n]) for n in range(30)]
    assert max(flips) <= REENCODE_FLIPS
    assert max(flips) > 0


@pytest.fixture(scope="module")
def video_doc() -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert video_bench.main(TINY) == 0
    return dict(json.loads(out.getvalue()))


@pytest.mark.slow
def test_the_copies_match_their_video_and_the_unrelated_queries_nothing(
    video_doc: dict[str, Any],
) -> None:
    assert video_doc["config"]["videos"] == 300
    assert video_doc["listed_frames"] == 300 * 20
    rows = {r["method"]: r for r in video_doc["rows"]}
    assert list(rows) == list(video_bench.METHODS)
    ours = rows["ours"]
    assert ours["build_s"] > 0
    assert ours["index_bytes"] > 300 * 20 * 90  # about 100 bytes a distinct frame
    for kind in ("copy", "unrelated"):
        q = ours["query"][kind]
        assert q["queries"] == 6
        assert q["max_s"] >= q["p99_s"] >= q["median_s"] > 0
    assert ours["query"]["copy"]["matched"] == 6
    assert ours["found"] == 6
    assert ours["query"]["unrelated"]["matched"] == 0
    assert video_doc["met"] is True
    peer = rows["threatexchange"]
    if "not installed" in peer["note"]:
        assert peer["query"] == {}
        return
    asked = peer["query"]["copy"]["queries"]  # fewer when its brute matcher stands in
    assert asked >= 5
    assert peer["query"]["copy"]["matched"] == asked
    assert peer["found"] == asked
    assert peer["query"]["unrelated"]["matched"] == 0
    for kind in ("copy", "unrelated"):
        assert video_doc["ratios"][kind] > 0


@pytest.mark.slow
def test_report_renders_the_video_section(video_doc: dict[str, Any], tmp_path: Path) -> None:
    saved = tmp_path / "json"
    saved.mkdir()
    (saved / "video.json").write_text(json.dumps(video_doc))
    (saved / "machine.json").write_text(json.dumps(report.machine()))
    page = tmp_path / "benchmarks.md"
    assert report.main(["--from-json", str(saved), "--only", "video", "--out", str(page)]) == 0
    text = page.read_text()
    assert "## Video matching" in text
    for name in video_bench.METHODS.values():
        assert f"| {name} |" in text, name
    assert "video: one-minute query against 300 videos" in text
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if lines:
            widths = {line.count(" | ") for line in lines}
            assert len(widths) == 1, block
