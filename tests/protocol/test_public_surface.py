"""The public surface of ``protocol`` is what was meant, and the package stays pure."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import protocol

PROTOCOL_DIR = Path(protocol.__file__).parent
# Imports a pure, synchronous package has no business making (DESIGN §2).
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
