"""The video hashing bench runs end to end on small clips, and the report renders from it.

These tests keep ``bench/video_hash_bench.py`` and the report's video hashing section
working; they make no claim about speed. They check what the page rests on: each
edit of each source clip matched its source by PROTOCOL.md §6.4 while its MD5 did
not, the unrelated video matched neither way, and the speed rows count the frames
the clips hold.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench import report, video_hash_bench
from bench.video_hash_bench import EDITS, SPEED_CLIPS, UNRELATED
from protocol.video import share_counts

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="needs ffmpeg"
)

QUICK = video_hash_bench.QUICK


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert video_hash_bench.main(["--quick", "--json"]) == 0
    return dict(json.loads(out.getvalue()))


@pytest.mark.slow
def test_every_edit_matches_its_source_and_md5_none(doc: dict[str, Any]) -> None:
    robustness = doc["robustness"]
    assert doc["config"]["seconds"] == QUICK.seconds
    assert set(robustness["clips"]) == {"pictures", "pattern"}
    for clip in robustness["clips"].values():
        assert clip["frames"] == QUICK.seconds  # one frame a second
        assert clip["good"] >= 3
    rows = robustness["rows"]
    assert [(r["clip"], r["edit"]) for r in rows] == [
        (clip, edit) for clip in ("pictures", "pattern") for edit in [*EDITS, UNRELATED]
    ]
    for row in rows:
        assert row["md5_matched"] is False, row
        shares = (tuple(row["query_share"]), tuple(row["listed_share"]))
        assert row["matched"] == any(share_counts(s) for s in shares), row
        if row["unrelated"]:
            assert row["matched"] is False, row
            assert row["query_share"][0] == 0, row
            assert row["median_distance"] > 31, row
        else:
            assert row["matched"] is True, row
            assert row["median_distance"] <= 31, row
            assert row["worst_distance"] >= row["median_distance"]
    trimmed = [r for r in rows if r["edit"] == "10 % trimmed off each end"]
    assert [r["frames"] for r in trimmed] == [QUICK.seconds - 4] * 2  # 2 s off each end
    assert robustness["summary"] == {
        "edits": 2 * len(EDITS),
        "edits_matched": 2 * len(EDITS),
        "md5_matched": 0,
        "unrelated": 2,
        "unrelated_matched": 0,
    }
    assert doc["met"]["robustness"] is True


@pytest.mark.slow
def test_speed_rows_count_the_clips_frames(doc: dict[str, Any]) -> None:
    speed = doc["speed"]
    seconds = doc["config"]["speed_seconds"]
    assert [(r["clip"], r["method"]) for r in speed["rows"]] == [
        (clip, method) for clip in SPEED_CLIPS for method in ("ours", "bare")
    ]
    for row in speed["rows"]:
        assert row["frames_hashed"] == seconds, row
        assert row["decoded_frames"] == seconds * video_hash_bench.SPEED_RATE, row
        assert len(row["runs_s"]) == QUICK.repeats
        assert row["best_s"] == min(row["runs_s"]) > 0
        assert row["realtime"] == pytest.approx(seconds / row["best_s"])
        assert row["decoded_per_s"] == pytest.approx(row["decoded_frames"] / row["best_s"])
    assert {r["codec"] for r in speed["rows"]} == {"h264", "vp9"}
    by = {(r["clip"], r["method"]): r for r in speed["rows"]}
    for clip, ratio in speed["ratios"].items():
        assert ratio == pytest.approx(by[clip, "ours"]["best_s"] / by[clip, "bare"]["best_s"])
    assert doc["met"]["realtime"] is (by["1080p-h264", "ours"]["realtime"] > 1)


@pytest.mark.slow
def test_report_renders_the_video_hashing_section(doc: dict[str, Any], tmp_path: Path) -> None:
    saved = tmp_path / "json"
    saved.mkdir()
    (saved / "video-hash.json").write_text(json.dumps(doc))
    (saved / "machine.json").write_text(json.dumps(report.machine()))
    page = tmp_path / "benchmarks.md"
    assert report.main(["--from-json", str(saved), "--only", "video-hash", "--out", str(page)]) == 0
    text = page.read_text()
    assert "## Video hashing: robustness against edits and speed" in text
    for edit in [*EDITS, UNRELATED]:
        assert f"| {edit} |" in text, edit
    assert f"| video: {2 * len(EDITS)} edits of two {QUICK.seconds} s clips matched" in text
    assert f"vPDQ {2 * len(EDITS)} of {2 * len(EDITS)}; MD5 0 of {2 * len(EDITS) + 2}" in text
    assert "| every edit matches, MD5 matches none | met |" in text
    assert "faster than real time" in text
    assert "bench/video_hash_bench.py" in text.split("## Reproduce")[1]
    for block in text.split("\n\n"):
        lines = [line for line in block.splitlines() if line.startswith("|")]
        if lines:
            widths = {line.count(" | ") for line in lines}
            assert len(widths) == 1, block
