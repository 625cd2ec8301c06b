"""``docs/configuration.md`` against the code: every setting, default and variable.

The reference is only useful while it is complete and true, and it rots silently:
a setting added to ``HubConfig`` or ``NodeConfig`` without a row, a default
changed in code but not in the table, a variable renamed. So these tests read
the doc's tables and compare them with ``dataclasses.fields`` of both
configurations, both ways:

- the same settings, in the order ``init`` writes them;
- each type, and each default exactly as ``init`` writes it into the file;
- each variable the one the loader reads, set for real to check it takes effect,
  and no variable for the settings fixed at ``init``;
- every ``HASHHUB_*`` name in the doc is one the code reads (a setting's, or a
  command-line option's ``envvar``), and every option's variable is documented.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints

import click
import pytest

from audit.cli import main as audit_main
from hub import config as hub_config
from hub.cli import main as hub_main
from hub.config import HubConfig
from node import config as node_config
from node.cli import main as node_main
from node.config import NodeConfig

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

TYPE_WORDS: dict[Any, str] = {
    int: "integer",
    float: "number",
    bool: "boolean",
    str: "string",
    tuple[str, ...]: "list of strings",
}
REQUIRED = "required"
NO_VARIABLE = "—"


@dataclass(frozen=True)
class Component:
    """One program's configuration, as the doc and these tests see it."""

    heading: str
    config: type[Any]
    sample: Any
    """A configuration with its required settings filled in (what ``init`` would write)."""
    file_name: str
    prefix: str
    init_only: frozenset[str]
    env_variable: Callable[[str], str]

    def write(self, home: Path) -> Path:
        """A home holding only the configuration file ``init`` would write."""
        home.mkdir(parents=True, exist_ok=True)
        (home / self.file_name).write_text(self.sample.to_toml(), encoding="utf-8")
        return home

    def load(self, home: Path, environ: Mapping[str, str]) -> Any:
        return self.config.load(home, environ)


HUB = Component(
    heading="Hub settings",
    config=HubConfig,
    sample=HubConfig(name="hub.test"),
    file_name=hub_config.CONFIG_NAME,
    prefix=hub_config.ENV_PREFIX,
    init_only=hub_config.INIT_ONLY,
    env_variable=hub_config.env_variable,
)
NODE = Component(
    heading="Node settings",
    config=NodeConfig,
    sample=NodeConfig(
        node_id="platform-a",
        hub_url="http://127.0.0.1:9",
        lists=("tid-md5",),
        pinned_root_sha256="ab" * 32,
    ),
    file_name=node_config.CONFIG_NAME,
    prefix=node_config.ENV_PREFIX,
    init_only=node_config.INIT_ONLY,
    env_variable=node_config.env_variable,
)
COMPONENTS = [pytest.param(HUB, id="hub"), pytest.param(NODE, id="node")]


# -- reading the doc -------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    setting: str
    type: str
    default: str
    variable: str


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _code(cell: str) -> str:
    """A cell's text without the backticks around it (a default keeps its quotes)."""
    return cell[1:-1] if len(cell) >= 2 and cell[0] == cell[-1] == "`" else cell


def table_under(heading: str) -> list[list[str]]:
    """The rows (header and separator left out) of the first table under ``## heading``."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"## {heading}")
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            rows.append(_cells(line))
        elif rows:
            break
    assert len(rows) > 2, f"no table under '## {heading}'"
    return rows[2:]


def documented(component: Component) -> list[Row]:
    return [
        Row(_code(setting), kind, _code(default), _code(variable))
        for setting, kind, default, variable, _meaning in table_under(component.heading)
    ]


def written_defaults(component: Component) -> dict[str, str]:
    """Each setting's value exactly as ``init`` writes it into the file."""
    pairs = (
        line.split(" = ", 1)
        for line in component.sample.to_toml().splitlines()
        if not line.startswith("#")
    )
    return {key: value for key, value in pairs}


def option_variables(group: click.Group) -> set[str]:
    """Every ``envvar`` of every option and argument of a command line, recursively."""
    found: set[str] = set()

    def walk(command: click.Command) -> Iterator[click.Parameter]:
        yield from command.params
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                yield from walk(sub)

    for param in walk(group):
        envvar = param.envvar
        if isinstance(envvar, str):
            found.add(envvar)
        elif envvar:
            found.update(envvar)
    return found


OPTION_VARIABLES = (
    option_variables(hub_main) | option_variables(node_main) | option_variables(audit_main)
)


def setting_variables(component: Component) -> set[str]:
    return {
        component.env_variable(f.name)
        for f in fields(component.config)
        if f.name not in component.init_only
    }


# -- the tables ------------------------------------------------------------------------


@pytest.mark.parametrize("component", COMPONENTS)
def test_the_table_lists_every_setting_in_the_order_init_writes_them(
    component: Component,
) -> None:
    in_code = [f.name for f in fields(component.config)]
    in_doc = [row.setting for row in documented(component)]
    assert sorted(set(in_code) - set(in_doc)) == [], "settings missing from the doc"
    assert sorted(set(in_doc) - set(in_code)) == [], "settings the code does not have"
    assert in_doc == in_code


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_type_and_default_is_the_codes(component: Component) -> None:
    types = get_type_hints(component.config)
    defaults = written_defaults(component)
    by_name = {row.setting: row for row in documented(component)}
    for f in fields(component.config):
        row = by_name[f.name]
        assert row.type == TYPE_WORDS[types[f.name]], f.name
        if f.default is MISSING and f.default_factory is MISSING:
            assert row.default == REQUIRED, f.name
        else:
            assert row.default == defaults[f.name], f.name


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_variable_is_the_one_the_loader_reads(component: Component) -> None:
    for row in documented(component):
        if row.setting in component.init_only:
            assert row.variable == NO_VARIABLE, row.setting
        else:
            assert row.variable == component.env_variable(row.setting), row.setting
            assert row.variable == component.prefix + row.setting.upper()


def _sample_text(kind: Any, default: Any) -> tuple[str, Any]:
    """A variable's text that differs from ``default``, and the value it must give."""
    if kind is bool:
        return ("false", False) if default else ("true", True)
    if kind is int:
        value = (0 if default is MISSING else default) + 7
        return str(value), value
    if kind is float:
        return "2.5", 2.5
    if kind is str:
        return "http://doc-check.example", "http://doc-check.example"
    if kind == tuple[str, ...]:
        return "doc-a, doc-b", ("doc-a", "doc-b")
    raise AssertionError(f"no sample for {kind!r}")


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_documented_variable_takes_effect(component: Component, tmp_path: Path) -> None:
    home = component.write(tmp_path / "home")
    types = get_type_hints(component.config)
    from_file = component.load(home, {})
    checked = 0
    for row in documented(component):
        if row.variable == NO_VARIABLE:
            continue
        f = next(f for f in fields(component.config) if f.name == row.setting)
        text, value = _sample_text(types[f.name], f.default)
        loaded = component.load(home, {row.variable: text})
        assert getattr(loaded, row.setting) == value, row.variable
        for other in fields(component.config):
            if other.name != row.setting:
                assert getattr(loaded, other.name) == getattr(from_file, other.name)
        checked += 1
    assert checked == len(fields(component.config)) - len(component.init_only)


@pytest.mark.parametrize("component", COMPONENTS)
def test_settings_fixed_at_init_ignore_the_environment(
    component: Component, tmp_path: Path
) -> None:
    home = component.write(tmp_path / "home")
    fixed = [row.setting for row in documented(component) if row.variable == NO_VARIABLE]
    assert set(fixed) == component.init_only
    environ = {component.env_variable(name): "changed-by-environment" for name in fixed}
    loaded = component.load(home, environ)
    for name in fixed:
        assert getattr(loaded, name) == getattr(component.sample, name)


# -- every variable named ---------------------------------------------------------------


def test_every_variable_the_doc_names_is_read_by_the_code() -> None:
    known = setting_variables(HUB) | setting_variables(NODE) | OPTION_VARIABLES
    prefixes = {HUB.prefix, NODE.prefix}
    named = set(re.findall(r"\bHASHHUB_[A-Z0-9_]*", DOC.read_text(encoding="utf-8")))
    unknown = sorted(n for n in named if n not in known and n not in prefixes)
    assert unknown == []


def test_every_command_line_variable_is_in_the_other_variables_table() -> None:
    rows = table_under("Other variables")
    assert {_code(variable) for variable, *_ in rows} == OPTION_VARIABLES


def test_the_variable_families_never_meet() -> None:
    hub, node = setting_variables(HUB), setting_variables(NODE)
    assert not hub & node
    assert not (hub | node) & OPTION_VARIABLES
    hub_names = {f.name for f in fields(HubConfig)}
    assert "home" not in hub_names
    assert not {n for n in hub_names if n.startswith(("node_", "audit_"))}
    assert "home" not in {f.name for f in fields(NodeConfig)}
