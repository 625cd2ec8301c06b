"""``docs/reliability.md`` names files, tests and settings that exist.

The page reports figures with the command that printed them. A command that
names a test file, a bench or a test which was since renamed would report a
figure nobody can reproduce, so every such reference is checked here: each
``tests/…`` or ``bench/…`` path exists (a glob must match at least one file),
each ``path::test`` is a test function of that file, and each ``HASHHUB_…``
variable the page tells the reader to set is read somewhere in the project.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.test_security_matrix import _test_functions

PROJECT = Path(__file__).resolve().parents[2]
PAGE = PROJECT / "docs" / "reliability.md"
TEXT = PAGE.read_text(encoding="utf-8")

_PATH = re.compile(r"\b((?:tests|bench)/[\w/*.-]+\.py)\b")
_TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
_VARIABLE = re.compile(r"\b(HASHHUB_[A-Z_]+)=")

PATHS = sorted(set(_PATH.findall(TEXT)))
TESTS = sorted(set(_TEST.findall(TEXT)))
VARIABLES = sorted(set(_VARIABLE.findall(TEXT)))


def test_the_page_names_what_it_reports() -> None:
    assert len(PATHS) >= 10, PATHS
    assert VARIABLES, "the page names no variable: the pattern no longer reads it"


@pytest.mark.parametrize("path", PATHS)
def test_every_file_the_page_names_exists(path: str) -> None:
    assert list(PROJECT.glob(path)), f"docs/reliability.md names {path}, which matches no file"


@pytest.mark.parametrize(("path", "name"), TESTS)
def test_every_test_the_page_names_exists(path: str, name: str) -> None:
    assert name in _test_functions(path), f"{path} has no test {name}"


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_variable_the_page_names_is_read(variable: str) -> None:
    readers = [
        p
        for folder in ("tests", "bench", "hub", "node")
        for p in (PROJECT / folder).rglob("*.py")
        if variable in p.read_text(encoding="utf-8")
    ]
    assert readers, f"docs/reliability.md tells the reader to set {variable}; nothing reads it"
