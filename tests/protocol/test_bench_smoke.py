"""The protocol benchmark runs end to end at the smallest sizes and prints every row."""

from __future__ import annotations

import json
import re

import pytest

from bench.protocol_bench import main

SMALL = ["--sizes", "20000", "--apply-base", "20000", "--apply-changes", "500", "--repeats", "1"]

DIGEST_CASES = (
    "ListState.digest()",
    "StateDigest.of_bytes",
    "hashlib.sha256 (limit)",
    "ListState.from_hashes (unsorted)",
    "ListState.from_snapshot (strict)",
)
UPDATE_PHASES = (
    "verify+apply total",
    "checkpoint + header sigs/checks",
    "body length + SHA-256 + parse",
    "base state digest (check_base)",
    "ListState.apply",
    "result digest + finish",
)


def test_bench_table_prints_machine_digest_and_update_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(SMALL) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("machine: ")
    assert "CPUs" in lines[0]
    for case in DIGEST_CASES:
        assert any(case in line and " 20k " in line for line in lines), case
    assert any("bootstrap:" in line for line in lines)
    for name in ("+500:", "-500 +500:"):
        row = re.compile(rf"update\s+{re.escape(name)}\s")
        for phase in UPDATE_PHASES:
            assert any(row.match(line) and phase in line for line in lines), (name, phase)
    assert sum("aim < 0.5 s" in line for line in lines) == 2


def test_bench_json_reports_rows_with_ratio_against_hashlib(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*SMALL, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["machine"]) >= {"platform", "cpu_count", "python"}
    rows = {(row["section"], row["case"]): row for row in doc["rows"]}
    limit = rows[("digest", "hashlib.sha256 (limit)")]
    ours = rows[("digest", "ListState.digest()")]
    assert limit["pct_of_hashlib"] == 100.0
    assert ours["pct_of_hashlib"] == pytest.approx(100.0 * limit["seconds"] / ours["seconds"])
    assert ours["hashes"] == 20000
    total = rows[("update", "+500: verify+apply total")]
    assert total["hashes"] == 20000
    assert total["seconds"] > 0
    assert rows[("update", "-500 +500: verify+apply total")]["hashes"] == 20500
