"""The install step that compiles the multi-index kernel (hatchling's build hook).

``pyproject.toml`` names this file as a custom build hook, so every wheel and every
editable install compiles ``multiindex_kernel.c`` into ``_multiindex_kernel.so``: a
plain shared library that ``node.multiindex_kernel`` loads with ctypes (no Python
headers needed, only a C compiler). It lives in the ``node`` package's directory
because that is what the container images copy into their build stage; it is left
out of the wheel, and nothing imports it at run time.

A machine without a compiler still installs: the hook warns and the multi-index
answers through numpy. Flags are portable: ``-O3`` everywhere, ``-mpopcnt`` only on
x86-64 (aarch64 has a population count without asking). ``CC`` chooses the compiler.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import (  # type: ignore[import-not-found, unused-ignore]
    BuildHookInterface,
)

SOURCE = Path("node") / "multiindex_kernel.c"
LIBRARY = Path("node") / "_multiindex_kernel.so"
"""The library's place in the tree and in the wheel (``node.multiindex_kernel.LIBRARY``)."""


def compile_command(source: Path, output: Path) -> list[str]:
    """The compiler call that builds the library from ``source`` into ``output``."""
    cc = shlex.split(os.environ.get("CC", "cc"))
    flags = ["-O3", "-std=c99", "-shared", "-fPIC", "-Wall"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        flags.append("-mpopcnt")
    return [*cc, *flags, "-o", str(output), str(source)]


def compile_kernel(root: Path) -> str | None:
    """Build the library under ``root``; None when done, else why it was not.

    Written beside the final path and renamed onto it, so that a process that has the
    old library loaded keeps its copy and no one loads a half-written file.
    """
    target = root / LIBRARY
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / LIBRARY.name
        try:
            out = subprocess.run(  # noqa: S603 - the compiler on our own source, no shell
                compile_command(root / SOURCE, built),
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
        except (OSError, subprocess.SubprocessError) as e:
            return f"no C compiler ({e})"
        if out.returncode != 0:
            return f"the compiler failed: {out.stderr.strip()[-1000:]}"
        os.replace(built, target)
    return None


class KernelBuildHook(BuildHookInterface):  # type: ignore[misc, unused-ignore]
    """Compiles the kernel for wheels and editable installs; sdists carry the source."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        why = compile_kernel(root)
        if why is not None:
            self.app.display_warning(
                f"multi-index kernel not built, the node will match with numpy: {why}"
            )
            return
        self.app.display_info(f"multi-index kernel built: {LIBRARY}")
        if version != "editable":
            # A regular wheel carries the library (it is ignored by git, hence not
            # picked up on its own) and so is specific to this platform.
            build_data["force_include"][str(root / LIBRARY)] = str(LIBRARY)
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
