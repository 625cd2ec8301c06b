"""What every ``hashhub`` command group shares: the ``--home`` option and opening the
hub there (a busy database waited for, its errors one line)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from edge import cli as edge_cli
from hub import store as hub_store
from hub.core import Hub

__all__ = ["home_option", "open_hub"]

home_option = edge_cli.home_option(
    "HASHHUB_HOME", "The hub's home directory (made by 'hashhub init')."
)


def open_hub(home: Path) -> AbstractContextManager[Hub]:
    """The hub in ``home``, closed on leaving."""
    return edge_cli.opened(lambda: Hub.open(home), busy_timeout=hub_store.BUSY_TIMEOUT)
