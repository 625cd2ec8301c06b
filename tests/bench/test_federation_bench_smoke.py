"""The federation bench runs end to end at a tiny size and its section renders.

It makes no claim about speed: it keeps ``bench/federation_bench.py`` (two upstream
``hashhub serve`` processes, a regional hub following both, a node as the baseline)
and the report's federation section working.
"""

from __future__ import annotations

from bench import federation_bench, report


def test_the_federation_bench_runs_and_renders() -> None:
    rows = federation_bench.run(200, 20)
    cases = [r.case for r in rows]
    assert cases[0] == "bootstrap: 2 upstream lists × 200 entries, regional hub"
    assert cases[2] == "delta: 20 new upstream entries to the regional hub's own publish"
    bootstrap = rows[0]
    assert "400 entries re-published with provenance" in bootstrap.note
    assert "a node's sync of the same lists" in bootstrap.note
    assert all(r.value > 0 for r in rows)
    text, aims = report.render_federation({"rows": [r.__dict__ for r in rows]})
    assert "## Federation: a regional hub following two upstream lists" in text
    assert "| bootstrap: 2 upstream lists × 200 entries, regional hub |" in text
    assert aims == []
