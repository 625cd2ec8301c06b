"""The public surface of ``protocol`` is what was meant, and the package stays pure."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import protocol

PROTOCOL_DIR = Path(protocol.__file__).parent
# Imports a pure, synchronous package has no business making (docs/design.md §2.2).
FORBIDDEN_IMPORTS = {
    "aiohttp",
    "asyncio",
    "sqlite3",
    "sqlite_utils",
    "socket",
    "http",
    "urllib",
    "requests",
    "apscheduler",
    "edge",
    "hub",
    "node",
}


def test_every_exported_name_exists_and_is_listed_once() -> None:
    assert len(protocol.__all__) == len(set(protocol.__all__))
    for name in protocol.__all__:
        assert hasattr(protocol, name), name


def test_exported_names_come_from_protocol_modules() -> None:
    for name in protocol.__all__:
        value = getattr(protocol, name)
        module = getattr(value, "__module__", None)
        if module is not None:
            assert module.startswith("protocol."), (name, module)


def test_every_public_module_declares_all() -> None:
    for info in pkgutil.iter_modules([str(PROTOCOL_DIR)]):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"protocol.{info.name}")
        assert hasattr(module, "__all__"), f"protocol.{info.name} has no __all__"
        for name in module.__all__:
            assert hasattr(module, name), f"protocol.{info.name}.{name}"


def test_protocol_imports_no_io_framework_and_neither_edge() -> None:
    offenders = []
    for path in sorted(PROTOCOL_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FORBIDDEN_IMPORTS:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_only_keyfile_touches_the_file_system() -> None:
    io_markers = ("open(", "os.open", "read_bytes", "write_bytes", "os.stat", "os.chmod")
    for path in sorted(PROTOCOL_DIR.glob("*.py")):
        if path.name == "keyfile.py":
            continue
        text = path.read_text(encoding="utf-8")
        found = [m for m in io_markers if m in text]
        assert found == [], f"{path.name} does file I/O: {found}"


def _private_protocol_imports(tree: ast.AST) -> list[str]:
    """``protocol._x`` as any import spells it: ``import``, ``from … import`` or a name."""
    found = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if any(part.startswith("_") for part in node.module.split(".")):
                modules = [node.module]
            else:
                modules = [f"{node.module}.{alias.name}" for alias in node.names]
        for module in modules:
            parts = module.split(".")
            if parts[0] == "protocol" and any(part.startswith("_") for part in parts[1:]):
                found.append(module)
    return found


def test_private_protocol_helpers_are_spelled() -> None:
    """The scan below recognises every spelling of a private import (it cannot pass blind)."""
    source = (
        "import protocol._fields\n"
        "from protocol._fields import parse_time\n"
        "from protocol import _fields, format_time\n"
        "def f() -> None:\n"
        "    from protocol.ack import _private\n"
    )
    assert _private_protocol_imports(ast.parse(source)) == [
        "protocol._fields",
        "protocol._fields",
        "protocol._fields",
        "protocol.ack._private",
    ]


def test_nothing_outside_protocol_imports_its_private_modules() -> None:
    """Other packages use ``protocol``'s public names; only its own tests may reach inside."""
    repo = PROTOCOL_DIR.parent
    offenders = []
    for path in sorted(repo.rglob("*.py")):
        rel = path.relative_to(repo)
        if rel.parts[0].startswith(".") or rel.parts[0] == "protocol":
            continue
        if rel.parts[:2] == ("tests", "protocol"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [f"{rel}: {module}" for module in _private_protocol_imports(tree)]
    assert offenders == [], "import these through `protocol`'s public names instead"
