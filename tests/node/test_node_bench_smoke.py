"""The node benchmark runs end to end at its smallest sizes and prints every row."""

from __future__ import annotations

import json

import pytest

from bench.node_bench import main

SMALL = [
    "--sizes",
    "3000",
    "--queries",
    "8",
    "--naive-queries",
    "4",
    "--images",
    "1",
    "--megapixels",
    "0.5",
    "--repeats",
    "1",
]
MATCH_CASES = (
    "ListIndex.from_snapshot",
    "ListIndex.match, batch",
    "ListIndex.match, one per call",
    "naive numpy full scan",
)
HASH_CASES = (
    "hash_image: reduced decode, all 4 hashes",
    "of which PDQ (reference filter, full size)",
)
FIDELITY_CASES = (
    "reference: pdqhash + imagehash, full decode",
    "node: hash_image's decode (short side",
    "before: draft() ≥ 256 px + shrink to 512",
)


def test_bench_table_prints_machine_match_and_hash_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(SMALL) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("machine: ")
    assert "CPUs" in lines[0]
    for case in MATCH_CASES:
        assert any(line.startswith("match") and case in line and " 3k " in line for line in lines)
    assert any("faiss" in line and line.startswith("match") for line in lines)
    for case in HASH_CASES:
        assert any(line.startswith("hash") and case in line for line in lines), case
    for case in FIDELITY_CASES:
        assert any(line.startswith("fidelity") and case in line for line in lines), case
    assert any("aim ≥ 30/s" in line for line in lines)


def test_bench_json_rows_have_rates_and_faiss_is_reported_either_way(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*SMALL, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["machine"]) >= {"platform", "cpu_count", "python", "numpy", "faiss"}
    rows = {(row["section"], row["case"]): row for row in doc["rows"]}
    batch = rows[("match", "ListIndex.match, batch")]
    assert batch["size"] == 3000
    assert batch["count"] == 8
    assert batch["rate"] == pytest.approx(8 / batch["seconds"])
    faiss_rows = [row for (section, case), row in rows.items() if case.startswith("faiss")]
    assert len(faiss_rows) == 1
    if doc["machine"]["faiss"] is None:
        assert faiss_rows[0]["note"] == "faiss not installed"
    else:
        assert faiss_rows[0]["rate"] > 0
    assert rows[("hash", "hash_image: reduced decode, all 4 hashes")]["rate"] > 0


def test_bench_runs_only_the_sections_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*SMALL, "--sections", "match", "--no-faiss", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {row["section"] for row in doc["rows"]} == {"match"}
    assert any(row["note"] == "faiss skipped (--no-faiss)" for row in doc["rows"])
    with pytest.raises(SystemExit):
        main([*SMALL, "--sections", "nope"])


def test_the_registry_section_finds_the_same_hits_both_ways(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*SMALL, "--sections", "registry", "--registry-size", "3000", "--json"]) == 0
    rows = {row["case"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
    first = rows["retroactive pdq +1,000: content index, first pass (now)"]
    before = rows["retroactive pdq +1,000: full scan (before)"]
    assert first["note"].startswith("aim < 1 s, peak RSS < 1,500 MB: met; peak RSS ")
    assert "; 100 hits, the same both ways; " in first["note"]
    assert before["note"].startswith("100 hits, the same both ways; peak RSS ")
    assert rows["import: content import, pdq, --batch 1,000,000"]["count"] == 3000
    key = rows["retroactive md5 +1,000: key lookup (now)"]
    scan = rows["retroactive md5 +1,000: full scan (before)"]
    assert key["note"].startswith("100 hits, the same both ways")
    assert scan["note"] == "100 hits, the same both ways"
    assert rows["import: register_batch, md5"]["count"] == key["size"] == scan["size"]
