"""``docs/reliability.md`` names files, tests and settings that exist.

The page reports figures with the command that printed them. A command that
names a test file, a bench or a test which was since renamed would report a
figure nobody can reproduce, so every such reference is checked here: each
``tests/…`` or ``bench/…`` path exists (a glob must match at least one file),
each ``path::test`` is a test function of that file, and each ``HASHHUB_…``
variable the page tells the reader to set is read from the environment
(``os.environ.get``, ``os.environ[…]``, ``os.getenv``) by a file the same
paragraph names: the test or bench whose run the setting changes. A mention in
a comment or a docstring does not count.
"""

from __future__ import annotations

import ast
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


def _paragraphs_setting(variable: str) -> list[str]:
    """The page's paragraphs (a table counts as one) that tell the reader to set ``variable``."""
    return [p for p in re.split(r"\n\s*\n", TEXT) if f"{variable}=" in p]


def _environment_reads(path: Path) -> set[str]:
    """The variable names ``path`` reads from the environment, by its syntax tree."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            environ_get = (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and isinstance(func.value, ast.Attribute)
                and func.value.attr == "environ"
            )
            getenv = isinstance(func, ast.Attribute) and func.attr == "getenv"
            if environ_get or getenv:
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and (
            isinstance(node.value, ast.Attribute) and node.value.attr == "environ"
        ):
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
    return names


def test_environment_reads_are_found_and_mentions_are_not() -> None:
    """The reader above sees ``os.environ.get``, not a name in a docstring or comment."""
    assert "HASHHUB_FUZZ_EXAMPLES" in _environment_reads(
        PROJECT / "tests/reliability/test_openapi_fuzz.py"
    )
    assert _environment_reads(Path(__file__)) == set(), "this file only mentions variables"


@pytest.mark.parametrize("variable", VARIABLES)
def test_every_variable_the_page_names_is_read(variable: str) -> None:
    paragraphs = _paragraphs_setting(variable)
    assert paragraphs, variable
    named = sorted({path for p in paragraphs for path in _PATH.findall(p)})
    assert named, f"docs/reliability.md sets {variable} without naming the file it changes"
    readers = [
        path
        for path in named
        for found in PROJECT.glob(path)
        if variable in _environment_reads(found)
    ]
    assert readers, (
        f"docs/reliability.md tells the reader to set {variable} for {', '.join(named)}; "
        "none of them reads it from the environment"
    )
