"""The ``node.store`` package (``NodeStore`` and its table groups) owns every SQL
statement of the node.

The rest of ``node/`` says what it wants in the domain (``store.acks.due(now)``,
``store.matches.record(...)``, ``store.acks.confirmed(seq, ...)``) and never touches
the database connection: a test scans the source so that the rule holds.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

NODE = Path(__file__).resolve().parents[2] / "node"
STORE = NODE / "store"
"""The store package: every module under it may hold SQL."""

SQL = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b"
    r"|\bDELETE\s+FROM\b|\b(CREATE|DROP|ALTER)\s+(TABLE|INDEX|TRIGGER|VIEW)\b|\bPRAGMA\b"
    r"|\bBEGIN\s+(IMMEDIATE|EXCLUSIVE|DEFERRED)\b"
)
"""SQL in a string literal (upper case, as the node writes it)."""
DATABASE_ATTRIBUTES = frozenset({"db", "conn"})
"""The store's connection: only the store itself may reach it."""
DATABASE_CALLS = frozenset({"execute", "executemany", "executescript", "query"})


def sql_in(path: Path) -> list[str]:
    """Where ``path`` holds SQL or reaches for a database connection, as ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in DATABASE_ATTRIBUTES:
            found.append(f"{node.lineno}: .{node.attr}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in DATABASE_CALLS
        ):
            found.append(f"{node.lineno}: .{node.func.attr}(...)")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL.search(node.value)
        ):
            found.append(f"{node.lineno}: {node.value[:60]!r}")
    return found


def test_only_the_store_holds_sql() -> None:
    offenders = {
        str(path.relative_to(NODE.parent)): hits
        for path in sorted(NODE.rglob("*.py"))
        if STORE not in path.parents and (hits := sql_in(path))
    }
    assert offenders == {}, "SQL belongs in node/store/ (NodeStore and its table groups)"


def test_the_scan_sees_the_stores_sql() -> None:
    """The rule is not vacuous: the same scan finds the statements the store holds."""
    hits = [hit for path in sorted(STORE.rglob("*.py")) for hit in sql_in(path)]
    assert sum("SELECT" in hit for hit in hits) > 10
    assert any(".db" in hit for hit in hits)
    assert any("INSERT" in hit for hit in hits)
    assert any("UPDATE" in hit for hit in hits)
    assert any("DELETE" in hit for hit in hits)
