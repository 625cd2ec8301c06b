"""The threat matrix in ``docs/security.md`` names tests that exist.

Each row of the matrix is an attack, the defence, and the tests that prove the
defence (as ``tests/…/file.py::test_name``). A matrix that names a test which
was renamed or deleted claims a proof nobody runs any more, so these tests read
the document and check every reference against the test files' syntax trees,
and that every row names at least one test.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
SECURITY = PROJECT / "docs" / "security.md"

_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^\]`]*\])?`")


@cache
def _matrix_text() -> str:
    return SECURITY.read_text(encoding="utf-8")


def _references(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _REFERENCE.finditer(text)]


def _matrix_rows(text: str) -> list[str]:
    """Body rows of every matrix table: the tables whose header has a "proved by" column."""
    rows: list[str] = []
    in_matrix = False
    for line in text.splitlines():
        if not line.startswith("|"):
            in_matrix = False
            continue
        if set(line.replace("|", "").strip()) <= set("-: "):
            continue  # the rule under a header
        if "| proved by |" in line:
            in_matrix = True
        elif in_matrix:
            rows.append(line)
    return rows


@cache
def _test_functions(path: str) -> frozenset[str]:
    """Names of the test functions defined at the top level of ``path``."""
    tree = ast.parse((PROJECT / path).read_text(encoding="utf-8"), filename=path)
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


def test_the_matrix_names_tests() -> None:
    references = _references(_matrix_text())
    assert len(references) >= 100, "the threat matrix should cite the tests that prove it"


@pytest.mark.parametrize("reference", sorted(set(_references(_matrix_text()))), ids="::".join)
def test_every_cited_test_exists(reference: tuple[str, str]) -> None:
    path, name = reference
    assert (PROJECT / path).is_file(), f"docs/security.md cites {path}, which does not exist"
    assert name in _test_functions(path), (
        f"docs/security.md cites {path}::{name}, but {path} defines no such test"
    )


def test_every_row_of_the_matrix_cites_a_test() -> None:
    rows = _matrix_rows(_matrix_text())
    assert len(rows) >= 60
    bare = [row[:100] for row in rows if not _REFERENCE.search(row)]
    assert not bare, f"rows without a test: {bare}"


def test_the_reference_pattern_rejects_what_is_not_a_test_reference() -> None:
    """The checks above would pass vacuously if the pattern matched nothing or anything."""
    text = (
        "`tests/protocol/test_threats.py::test_rejects_tampered_header_byte` "
        "`tests/node/test_sync.py::test_x[param-1]` `hub/core.py::Hub` tests/a.py::test_b"
    )
    assert _references(text) == [
        ("tests/protocol/test_threats.py", "test_rejects_tampered_header_byte"),
        ("tests/node/test_sync.py", "test_x"),
    ]
