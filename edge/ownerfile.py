"""Files only their owner reads: one secret line, mode 0600, never a row.

A token a hub was enrolled with, an exchange's API keys, a node's hub token: each is
a file its owner alone can read, written so that there is no instant at which it
exists with wider permissions (created 0600, not chmod-ed after writing).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_secret"]


def write_secret(path: Path, value: str) -> None:
    """Create (or replace) a 0600 file holding one secret line."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT
