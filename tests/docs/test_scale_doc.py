"""docs/scale.md names what exists, quotes the benchmark page as it reads, and is linked.

The page works out, from measurements, what the project needs beyond one machine.
It stays honest only while what it builds on holds, so each check here reads the
page and fails when one of these drifts from it:

- every ``hashhub`` and ``hashhub-node`` command it names (in code spans and
  console lines) is a real command, with the options it gives;
- every project file it names exists, and every link (with its anchor) reaches a
  file and a heading;
- every figure it quotes from docs/benchmarks.md is still printed there, on the
  line the page names; a re-run bench that changes one asks for the page to follow;
- the defaults and index constants its arithmetic starts from are the code's;
- README.md and docs/design.md link to it.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
import pytest

from hub.cli import main as hub_main
from hub.config import HubConfig
from node import content_index, multiindex, segments
from node.cli import main as node_main
from node.config import NodeConfig

PROJECT = Path(__file__).resolve().parents[2]
DOCS = PROJECT / "docs"
PAGE = DOCS / "scale.md"
BENCHMARKS = DOCS / "benchmarks.md"
QUOTED_SECTION = "## Figures quoted from the benchmarks page"

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"`([^`]+)`")
_PROGRAM = re.compile(r"(?<![\w./-])(hashhub-node|hashhub)(?![\w.-])")
_FILE = re.compile(
    r"(?<![\w./-])((?:audit|bench|docker|docs|edge|hub|node|protocol|scripts|tests)/"
    r"[\w./-]*\.(?:c|conf|md|py|toml|yaml))(?![\w-])"
)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_QUOTED_ROW = re.compile(r"^\| `(.+?)` \| `(.+?)` \|", re.MULTILINE)
_NUMBER = re.compile(r"\d[\d,.]*")


def page() -> str:
    return PAGE.read_text(encoding="utf-8")


def body() -> str:
    """The page above the table of quoted figures."""
    text = page()
    assert QUOTED_SECTION in text, "the page lost its table of quoted figures"
    return text.split(QUOTED_SECTION)[0]


def command_texts(text: str) -> list[str]:
    """Each command line the page names: code spans in prose, ``$`` lines in blocks."""
    commands = [
        line[2:]
        for block in _FENCE.findall(text)
        for line in block.splitlines()
        if line.startswith("$ ")
    ]
    prose = _FENCE.sub("", text)
    commands += [" ".join(span.split()) for span in _SPAN.findall(prose)]
    return [c for c in commands if _PROGRAM.search(c)]


def resolve(program: click.Group, words: list[str], said: str) -> click.Command:
    """The command ``words`` names under ``program``, its options checked."""
    command: click.Command = program
    rest = list(words)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in command.commands, f"{said!r}: {name!r} is no command of {command.name}"
        command = command.commands[name]
    if isinstance(command, click.Group):
        assert command is program, f"{said!r} names a group, not a command"
        assert not rest, f"{said!r} names a group, not a command"
        return command
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in rest:
        if word in ("|", "&&", ";", ">", "2>"):
            break
        if word.startswith("--"):
            option = word.split("=", 1)[0]
            assert option in options | {"--help"}, f"{said!r}: {option} is no option of it"
    return command


def test_every_command_the_page_names_is_a_real_command_with_its_options() -> None:
    named = command_texts(page())
    assert any("hashhub-node content import" in c for c in named)
    assert any(c.startswith("hashhub init") for c in named)
    programs = {"hashhub": hub_main, "hashhub-node": node_main}
    for text in named:
        for match in _PROGRAM.finditer(text):
            words = text[match.end() :].split()
            program = programs[match.group(1)]
            assert isinstance(program, click.Group)
            if words:
                resolve(program, words, text)


def test_a_misspelt_command_or_option_is_caught() -> None:
    """The check itself can fail: a command that is not there, an option it lacks."""
    with pytest.raises(AssertionError, match="no command"):
        resolve(node_main, ["content", "imports"], "hashhub-node content imports")
    with pytest.raises(AssertionError, match="no option"):
        resolve(node_main, ["run", "--replicas", "4"], "hashhub-node run --replicas 4")


def test_every_project_file_the_page_names_exists() -> None:
    named = set(_FILE.findall(page()))
    assert {"node/segments.py", "node/content_index.py", "node/multiindex.py"} <= named
    missing = sorted(p for p in named if not (PROJECT / p).is_file())
    assert not missing, f"docs/scale.md names files that do not exist: {missing}"


def anchors(path: Path) -> set[str]:
    """The heading anchors of a Markdown file, as GitHub makes them."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_link_reaches_a_file_and_its_heading() -> None:
    links = _LINK.findall(page())
    assert links
    for link in links:
        target, _, anchor = link.partition("#")
        path = (DOCS / target).resolve() if target else PAGE
        assert path.is_file(), f"docs/scale.md links to {target}, which is not there"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"docs/scale.md links to {link}: no such heading"


def test_every_quoted_figure_is_still_on_the_benchmark_page_line_it_names() -> None:
    rows = _QUOTED_ROW.findall(page().split(QUOTED_SECTION)[1])
    assert len(rows) >= 15
    lines = BENCHMARKS.read_text(encoding="utf-8").splitlines()
    above = body()
    stale = [
        f"{label!r}: {figure!r}"
        for label, figure in rows
        if not any(label in line and figure in line for line in lines)
    ]
    assert not stale, (
        "docs/benchmarks.md no longer prints these figures on the lines docs/scale.md "
        "names; update the page from the new figures:\n" + "\n".join(stale)
    )
    for label, figure in rows:
        number = _NUMBER.search(figure)
        assert number is not None, f"the quoted {figure!r} ({label}) holds no figure"
        assert number.group() in above, f"the quoted {figure!r} ({label}) is used nowhere"


def default(config: type, name: str) -> object:
    return next(f.default for f in dataclasses.fields(config) if f.name == name)


def test_the_settings_and_constants_the_arithmetic_starts_from_are_the_codes() -> None:
    text = page()
    configuration = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for name in (
        "poll_interval",
        "poll_jitter",
        "ack_interval",
        "content_shard",
        "mirrors",
        "publish_interval",
        "min_poll_interval",
    ):
        assert f"`{name}" in text, name
        assert f"| `{name}` |" in configuration, name
    assert default(NodeConfig, "poll_interval") == 300
    assert default(NodeConfig, "poll_jitter") == 30
    assert default(NodeConfig, "ack_interval") == 3600
    assert default(HubConfig, "publish_interval") == 300
    assert default(HubConfig, "min_poll_interval") == 60
    # The page says these in words; the code must still hold them.
    assert segments.MULTI_INDEX_COMPACT_FRACTION == 64
    assert "sixty-fourth" in text
    assert content_index.MERGE_FRACTION == 16
    assert "sixteenth" in text
    assert f"{content_index.MERGE_MIN:,}" in text
    assert f"`WIDE_MIN` = {multiindex.WIDE_MIN:,}" in text
    wide = multiindex.WIDE_SLOT_BITS
    assert f"{4 * len(wide)} slots of {wide[0]}, {wide[1]} and {wide[2]} bits" in text
    entries = 4 * sum((1 << bits) + 1 for bits in wide)
    assert f"{entries:,} entries of 4 bytes" in text
    assert f"{entries * 4:,}" in text
    assert f"n up to {(1 << 32) // (4 * len(wide)):,}" in text


def test_the_page_is_linked_from_the_readme_and_the_design() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert "](docs/scale.md)" in readme
    design = (DOCS / "design.md").read_text(encoding="utf-8")
    assert "](scale.md)" in design
