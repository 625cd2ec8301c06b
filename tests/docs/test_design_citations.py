"""Citations of the repository's own documents point at something in the repository.

Code, docs and tests cite documents by path and section — ``PROTOCOL.md §13.4``,
``docs/design.md §4``, ``docs/adr/0004-which-root-signs-a-header.md``, ``ADR 0010``
— and a reader follows them. A citation of a document that is not in the
repository (the founding design used to be kept outside it), or of a section the
document has no heading for, sends the reader nowhere, and nothing else notices.
So these tests read every text file of the repository and fail on:

- a cited ``docs/….md`` or top-level ``NAME.md`` that is not a file of the
  repository, and a relative Markdown link that names no file or folder;
- a citation of the design by its old name instead of ``docs/design.md``;
- a ``FILE.md §N`` (``docs/design.md §3.7``, ``PROTOCOL.md §13.4 step 9``) whose
  section N has no numbered heading in FILE;
- an ``ADR N`` for which ``docs/adr/`` holds no record N.

This file is left out of the scan: its examples are wrong on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
DESIGN = PROJECT / "docs" / "design.md"
ADR_DIR = PROJECT / "docs" / "adr"

TEXT_SUFFIXES = frozenset(
    {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".html", ".js", ".css", ".sh", ".conf"}
)
TEXT_NAMES = frozenset({"Makefile"})
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "build", "dist"})
"""Besides every folder whose name starts with a dot (``.venv``, ``.git``, caches)."""

_DOC_PATH = re.compile(r"(?<![\w./-])(docs/[\w./-]*?[\w-]\.md)(?![\w-])")
"""A document under ``docs/`` named from the top of the repository."""
_TOP_DOC = re.compile(r"(?<![\w./-])([A-Z][A-Z0-9_]*\.md)(?![\w-])")
"""A top-level document: ``PROTOCOL.md``, ``README.md``, ``CHANGELOG.md``."""
_MD_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_OLD_DESIGN = re.compile(r"\bDESIGN(?:\.md\b|\s*§)")
_SECTIONS = re.compile(
    r"(?:`|\]\([^)\s]*\))?"  # a closing backtick, or the target of a Markdown link
    r"(?P<refs>(?:\s*(?:,|and|or)?\s*§\s*\d+[a-z]?(?:\.\d+)*"
    r"(?:\s+steps?\s+\d+(?:\.\d+)*(?:\s*(?:-|–|,|and)\s*\d+(?:\.\d+)*)*)?)+)"
)
"""The run of sections that follows a cited document: ``§3.6, §4 steps 3-6, §7``."""
_SECTION = re.compile(r"§\s*(\d+[a-z]?(?:\.\d+)*)")
_HEADING = re.compile(r"^#{1,6}\s+(\d+[a-z]?(?:\.\d+)*)\.?\s", re.MULTILINE)
_ADR = re.compile(r"\bADR\s+(\d{1,4})\b")


@dataclass(frozen=True)
class Citation:
    """One cited document (a path from the top of the repository), where it is cited."""

    where: str
    line: int
    document: str
    sections: tuple[str, ...]

    def __str__(self) -> str:
        cited = " ".join(f"§{s}" for s in self.sections)
        return f"{self.where}:{self.line}: {self.document} {cited}".rstrip()


def _scanned_files() -> Iterator[Path]:
    me = Path(__file__).resolve()
    for path in sorted(PROJECT.rglob("*")):
        relative = path.relative_to(PROJECT)
        if any(part.startswith(".") or part in SKIPPED_DIRS for part in relative.parts[:-1]):
            continue
        if not path.is_file() or path.resolve() == me:
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES or "Dockerfile" in path.name:
            yield path


@cache
def _texts() -> tuple[tuple[str, str], ...]:
    """(path from the top, text) of every scanned file."""
    out = []
    for path in _scanned_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        out.append((path.relative_to(PROJECT).as_posix(), text))
    return tuple(out)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _sections_after(text: str, end: int) -> tuple[str, ...]:
    run = _SECTIONS.match(text, end)
    return tuple(_SECTION.findall(run.group("refs"))) if run else ()


def citations(where: str, text: str) -> list[Citation]:
    """Every document ``text`` cites, each with the sections that follow it."""
    found = []
    for pattern in (_DOC_PATH, _TOP_DOC):
        for m in pattern.finditer(text):
            found.append(
                Citation(where, _line(text, m.start()), m.group(1), _sections_after(text, m.end()))
            )
    if where.endswith(".md"):
        folder = Path(where).parent
        for m in _MD_LINK.finditer(text):
            target = m.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
                continue  # a URL, a mail address, an anchor in the same page
            path = target.split("#", 1)[0]
            resolved = _normalise(folder / path)
            found.append(
                Citation(where, _line(text, m.start()), resolved, _sections_after(text, m.end()))
            )
    return found


def _normalise(path: Path) -> str:
    parts: list[str] = []
    for part in path.parts:
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def _all_citations() -> list[Citation]:
    return [c for where, text in _texts() for c in citations(where, text)]


@cache
def headings(document: str) -> frozenset[str]:
    """The section numbers that have a heading in ``document`` (``13``, ``13.4``, ``8a``)."""
    return frozenset(_HEADING.findall((PROJECT / document).read_text(encoding="utf-8")))


def _exists(document: str) -> bool:
    return not document.startswith("..") and (PROJECT / document).exists()


# -- the citations -----------------------------------------------------------------


def test_every_cited_document_is_in_the_repository() -> None:
    missing = [str(c) for c in _all_citations() if not _exists(c.document)]
    assert not missing, "cited documents that are not in the repository:\n" + "\n".join(missing)


def test_the_design_is_cited_where_it_is_kept() -> None:
    old = [
        f"{where}:{_line(text, m.start())}: {text[m.start() :].partition(chr(10))[0][:40]}"
        for where, text in _texts()
        for m in _OLD_DESIGN.finditer(text)
    ]
    assert not old, "design citations that do not point into docs/design.md:\n" + "\n".join(old)


def test_every_cited_section_has_a_heading() -> None:
    wrong = [
        f"{c} (no heading §{s} in {c.document})"
        for c in _all_citations()
        if c.sections and c.document.endswith(".md") and _exists(c.document)
        for s in c.sections
        if s not in headings(c.document)
    ]
    assert not wrong, "sections cited that have no heading:\n" + "\n".join(wrong)


def test_every_cited_adr_is_recorded() -> None:
    numbers = {int(p.name[:4]) for p in ADR_DIR.glob("[0-9][0-9][0-9][0-9]-*.md")}
    missing = [
        f"{where}:{_line(text, m.start())}: ADR {m.group(1)}"
        for where, text in _texts()
        for m in _ADR.finditer(text)
        if int(m.group(1)) not in numbers
    ]
    assert not missing, "ADRs cited that docs/adr/ does not hold:\n" + "\n".join(missing)


def test_the_design_numbers_its_sections() -> None:
    numbers = headings("docs/design.md")
    assert {"1", "2", "3", "4", "5", "6", "7", "8"} <= numbers, sorted(numbers)


def test_readme_and_the_decision_records_point_to_the_design() -> None:
    assert "docs/design.md" in (PROJECT / "README.md").read_text(encoding="utf-8")
    first = next(ADR_DIR.glob("0001-*.md")).read_text(encoding="utf-8")
    assert "docs/design.md" in first or "../design.md" in first


# -- the reader itself ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "document", "sections"),
    [
        ("(docs/design.md §3.6, §4 steps 3-6, §7).", "docs/design.md", ("3.6", "4", "7")),
        ("docs/design.md §4 steps 1 and 3, PROTOCOL.md §13.3", "docs/design.md", ("4",)),
        ("PROTOCOL.md §13.4 step 9) says", "PROTOCOL.md", ("13.4",)),
        ("`docs/security.md` §12, each", "docs/security.md", ("12",)),
        ("docs/operator-guide.md §8a", "docs/operator-guide.md", ("8a",)),
        ("see PROTOCOL.md §6.1. Then", "PROTOCOL.md", ("6.1",)),
        ("see docs/adr/0004-which-root-signs-a-header.md.", None, ()),
        ("../shared/PROTOCOL.md and x/docs/a.md are not ours", None, ()),
    ],
)
def test_a_citation_is_read_with_its_sections(
    text: str, document: str | None, sections: tuple[str, ...]
) -> None:
    found = citations("x.py", text)
    if document is None:
        assert [c.document for c in found] == (
            ["docs/adr/0004-which-root-signs-a-header.md"] if "adr" in text else []
        )
        return
    assert (found[0].document, found[0].sections) == (document, sections)


def test_markdown_links_are_resolved_from_the_page() -> None:
    text = "[spec](../PROTOCOL.md) §13 and [ADR 5](adr/0005-x.md#context), [web](https://a.b/c.md)"
    found = citations("docs/page.md", text)
    assert [(c.document, c.sections) for c in found] == [
        ("PROTOCOL.md", ("13",)),
        ("docs/adr/0005-x.md", ()),
    ]


def test_a_design_citation_by_the_old_name_is_caught() -> None:
    assert _OLD_DESIGN.search("the node's update (" + "DESIGN §4)")
    assert _OLD_DESIGN.search("DESIGN" + ".md fixes the architecture")
    assert not _OLD_DESIGN.search("docs/design.md §4")


def test_the_design_document_is_scanned() -> None:
    assert DESIGN.exists()
    assert "docs/design.md" in dict(_texts())
