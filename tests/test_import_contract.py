"""The import contract between hashhub's packages, checked on the AST of every module.

``protocol`` is the ground floor and imports nothing of ours; ``edge``, the plumbing the
roles share (ADR 17), stands on ``protocol`` alone and never on a role; ``follow``, the
follower every role that follows a hub shares (ADR 20), stands on ``protocol`` and
``edge`` and never on a role; ``hub`` and ``node`` are two edges that never import each
other; the auditor trusts neither edge's code, nor the follower's; and
no module of the project imports itself back through others (no cycles; ``KNOWN_CYCLES``
is empty and may only stay so).

Every import counts, wherever it is written: at the top, inside a function (a lazy
import still ties the two modules together) and under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

KNOWN_CYCLES: list[frozenset[str]] = []


def project_packages(repo: Path = REPO) -> list[str]:
    """The wheel's packages (pyproject.toml), then the scripts, benchmarks and tests."""
    config = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return [*shipped, "scripts", "bench", "tests"]


def shipped_packages() -> list[str]:
    return [p for p in project_packages() if p not in ("scripts", "bench", "tests")]


def project_modules(repo: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name → file, for every module of ``packages`` under ``repo``."""
    modules = {}
    for package in packages:
        for path in sorted((repo / package).rglob("*.py")):
            parts = list(path.relative_to(repo).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _imported(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, modules: Mapping[str, Path]
) -> list[str]:
    """The dotted names an import statement in ``module`` loads, relative ones resolved."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        if not is_package:
            parts.pop()
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    # ``from package import name`` imports the submodule ``package.name`` if there is one.
    return [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
        for alias in node.names
    ]


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module → the project modules it imports (a name counts as its nearest module)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for target in _imported(name, is_package, node, modules):
                parts = target.split(".")
                while parts and ".".join(parts) not in modules:
                    parts.pop()
                if parts and ".".join(parts) != name:
                    graph[name].add(".".join(parts))
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            vertex, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                    break
                if target in on_stack:
                    low[vertex] = min(low[vertex], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[vertex])
                if low[vertex] == index[vertex]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == vertex:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(project_modules(REPO, project_packages()))


def _edges_between(
    graph: Mapping[str, set[str]], sources: Iterable[str], targets: Iterable[str]
) -> list[str]:
    """``a -> b`` for every import from a module of ``sources`` into one of ``targets``."""
    source_set, target_set = set(sources), set(targets)
    return sorted(
        f"{module} -> {target}"
        for module, imported in graph.items()
        if module.split(".")[0] in source_set
        for target in imported
        if target.split(".")[0] in target_set
    )


def test_the_graph_covers_the_project(graph: dict[str, set[str]]) -> None:
    """The checks below read real edges: every package is in the graph and imports something."""
    for package in project_packages():
        assert package in graph, package
    assert "protocol.ack" in graph["hub.services.acks"]
    assert "hub.services.publishing" in graph["hub.core"]
    assert "follow" in graph["hashhub_tx.exchange"]
    assert "follow" in graph["node.sync"]
    assert "follow.errors" in graph["node.errors"]
    assert "protocol" in graph["tests.protocol.test_public_surface"]
    assert "edge.ratelimit" in graph["hub.limits"]
    assert "edge.ratelimit" in graph["node.limits"]


def test_protocol_imports_nothing_of_ours(graph: dict[str, set[str]]) -> None:
    ours = [p for p in project_packages() if p != "protocol"]
    assert _edges_between(graph, ["protocol"], ours) == []


def test_edge_imports_only_protocol_of_ours(graph: dict[str, set[str]]) -> None:
    """The shared plumbing stands under the roles: it never imports hub, node or audit."""
    others = [p for p in project_packages() if p not in ("edge", "protocol")]
    assert _edges_between(graph, ["edge"], others) == []


def test_follow_imports_only_protocol_and_edge_of_ours(graph: dict[str, set[str]]) -> None:
    """The follower stands under the roles that follow a hub (node, hub, the bridge):
    importing one of them would tie the others to it, and the hub may not import the
    node."""
    others = [p for p in project_packages() if p not in ("follow", "edge", "protocol")]
    assert _edges_between(graph, ["follow"], others) == []


def test_protocol_and_edge_never_import_follow(graph: dict[str, set[str]]) -> None:
    assert _edges_between(graph, ["protocol", "edge"], ["follow"]) == []


def test_protocol_never_imports_edge(graph: dict[str, set[str]]) -> None:
    assert _edges_between(graph, ["protocol"], ["edge"]) == []


def test_hub_and_node_never_import_each_other(graph: dict[str, set[str]]) -> None:
    assert _edges_between(graph, ["hub"], ["node"]) == []
    assert _edges_between(graph, ["node"], ["hub"]) == []


def test_the_auditor_imports_neither_hub_nor_node(graph: dict[str, set[str]]) -> None:
    """It checks what a hub published with the rules alone, never with the hub's own code."""
    assert _edges_between(graph, ["audit"], ["hub", "node"]) == []


def test_the_auditor_imports_no_follower(graph: dict[str, set[str]]) -> None:
    """The follower decides with the rules too, but it is what the auditor checks up on:
    a fault in it must not hide from the one reader that does not run it."""
    assert _edges_between(graph, ["audit"], ["follow"]) == []


def test_shipped_packages_import_no_scripts_benchmarks_or_tests(
    graph: dict[str, set[str]],
) -> None:
    assert _edges_between(graph, shipped_packages(), ["scripts", "bench", "tests"]) == []


def test_no_import_cycles_but_the_known_ones(graph: dict[str, set[str]]) -> None:
    found = set(cycles(graph))
    new = [sorted(c) for c in found if not any(c <= known for known in KNOWN_CYCLES)]
    assert new == [], "new import cycle(s): break them (see the module docstring)"
    gone = [sorted(k) for k in KNOWN_CYCLES if k not in found]
    assert gone == [], (
        "known cycle(s) changed or gone: set KNOWN_CYCLES to what remains "
        f"({sorted(sorted(c) for c in found)})"
    )


def test_the_checks_see_lazy_relative_and_type_checking_imports(tmp_path: Path) -> None:
    """The graph builder on a small tree: every spelling of an import becomes an edge."""
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f() -> None:\n    from pkg import b\n",
        "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import c\n",
        "pkg/c.py": "import pkg.a\nfrom .d import thing\n",
        "pkg/d.py": "import os\nthing = 1\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    built = import_graph(project_modules(tmp_path, ["pkg"]))
    assert built == {
        "pkg": set(),
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.c"},
        "pkg.c": {"pkg.a", "pkg.d"},
        "pkg.d": set(),
    }
    assert cycles(built) == [frozenset({"pkg.a", "pkg.b", "pkg.c"})]
