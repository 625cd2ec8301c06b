"""What every hub service shares: the home, the configuration, one connection, the clock.

One object rather than four arguments, so that a test that swaps the clock or sets
``fault_hook`` on the hub reaches every service at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from edge.clock import utcnow
from hub.config import HubConfig
from protocol import format_time

__all__ = ["HubContext", "utcnow"]


@dataclass
class HubContext:
    """One hub's home directory, configuration, database connection and clock."""

    home: Path
    config: HubConfig
    db: sqlite_utils.Database
    now: Callable[[], datetime] = utcnow
    fault_hook: Callable[[str], None] | None = None
    """Called with the name of each step of a publish, so tests can crash between any two."""

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> dict[str, Any] | None:
        """The first row of ``sql`` as a dict, or None."""
        rows = list(self.db.query(sql, params))
        return rows[0] if rows else None

    def log(self, action: str, who: str, detail: dict[str, Any]) -> None:
        """One line of the action log, in the caller's transaction."""
        self.db.table("actions").insert(
            {
                "at": format_time(self.now()),
                "who": who,
                "action": action,
                "detail": json.dumps(detail, sort_keys=True),
            }
        )

    def fault(self, step: str) -> None:
        """Name a step of a publish to ``fault_hook`` (tests crash the hub there)."""
        if self.fault_hook is not None:
            self.fault_hook(step)
