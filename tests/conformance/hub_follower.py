"""A hub following the simulator hub, for the hostile-repository suite.

The simulator's attacks were made for a node; a hub that follows another hub as one
of its nodes (``hub.following``) shares the node's ``follow.Syncer`` but keeps what
it verified in tables of its own and re-publishes it. ``DownstreamHub`` is such a
hub, set up as its operator sets one up (tests/hub/test_following.py): the
simulator hub declared as an upstream in its root (the URL it declares is the
simulator's hostile front, pinned to the real root v1), a node key of its own
enrolled at the simulator, the token kept, and a selection carrying the entries
of ``ENTRIES`` into an entries list of its own, ``DOWN_LIST``.

``HubDump`` is ``StoreDump`` for a hub: every row of every table of its database
and a digest of every other file in its home, before and after, so "nothing
changed" is checked on everything the hub keeps — its published files, staged
entries and roots included. A rejected or failed run may write only
``upstream_lists.last_error``/``last_failure`` and append ``upstream_evidence``
rows (and SQLite's ``sqlite_sequence`` counter that numbers them).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from click.testing import Result

from hub.core import Hub, utcnow
from hub.following import FollowReport, follow_upstream, in_place
from protocol import Limits
from tests.conformance.simulator import (
    ENTRIES,
    ENTRY_CATEGORY,
    HUB_NAME,
    Row,
    SimulatorHub,
    read_home,
)
from tests.hub.conftest import opened
from tests.hub.node_view import follow_entries, from_hub
from tests.hub.test_cli import Operator

__all__ = ["DOWNSTREAM", "DOWN_LIST", "FOLLOWER_ID", "DownstreamHub", "HubDump"]

DOWNSTREAM = "regional.test"
DOWN_LIST = "regional-md5"
"""The downstream's own entries list, into which ``ENTRIES`` is carried."""
FOLLOWER_ID = "regional"
"""The downstream's node id at the simulator hub."""
DATABASE_FILES = ("hub.db", "hub.db-wal", "hub.db-shm")
FAILURE_COLUMNS = ("last_error", "last_failure")
"""The ``upstream_lists`` columns a failed run writes on purpose: why, and when."""


@dataclass
class DownstreamHub:
    """A real hub following the simulator hub through its front (module docstring)."""

    home: Path
    sim: SimulatorHub
    pinned: str
    """The downstream's own root v1 SHA-256 (what its nodes pin)."""

    @classmethod
    def start(cls, home: Path, sim: SimulatorHub) -> DownstreamHub:
        hub = Hub.init(
            home,
            DOWNSTREAM,
            root_keys=1,
            root_threshold=1,
            publish_interval=0,
            timestamp_interval=0,
        )
        try:
            hub.roots.create_list(DOWN_LIST, "md5", label="regional", list_format="entries")
            pinned = hub.keys.root_sha256(1)
            hub.roots.declare_upstream(HUB_NAME, sim.front.url, sim.origin.pinned())
            public = hub.upstreams.follow(HUB_NAME, FOLLOWER_ID, [ENTRIES])
        finally:
            hub.close()
        token = sim.origin.enrol(FOLLOWER_ID, public, [ENTRIES])
        with opened(home) as hub:
            hub.upstreams.set_token(HUB_NAME, token)
            hub.upstreams.select(HUB_NAME, ENTRIES, DOWN_LIST, categories=[ENTRY_CATEGORY])
        return cls(home, sim, pinned)

    async def follow(
        self, *, now: datetime | None = None, limits: Limits | None = None
    ) -> FollowReport:
        """One run of ``follow_upstream`` on the simulator hub, as ``hashhub upstream sync``
        runs it (``now``: the run's clock, default the system's)."""
        with opened(self.home) as hub:
            async with aiohttp.ClientSession() as session:
                return await follow_upstream(
                    in_place(hub), HUB_NAME, session=session, now=now or utcnow(), limits=limits
                )

    async def sync_cli(self) -> Result:
        """``hashhub upstream sync`` on a worker thread (the servers answer on this loop)."""
        return await asyncio.to_thread(Operator(self.home).run, "upstream", "sync")

    def dump(self) -> HubDump:
        return HubDump.of(self.home)

    def held(self) -> set[bytes]:
        """The hashes a node of the downstream verifying ``DOWN_LIST`` from its root v1
        holds: what the downstream has published, checked as its nodes check it."""
        with opened(self.home) as hub:
            versions = follow_entries(
                from_hub(hub), DOWN_LIST, pinned_sha256=self.pinned, now=utcnow()
            )
        return {e.hash for e in versions[-1].state.entries()} if versions else set()

    def upstream_version(self) -> int:
        """The version of ``ENTRIES`` the downstream's store of the upstream holds."""
        with opened(self.home) as hub:
            return hub.upstreams.store(HUB_NAME).applied_version(ENTRIES)


@dataclass(frozen=True)
class HubDump:
    """Every row of every table of a hub's database, and a digest of every other file."""

    tables: dict[str, tuple[Row, ...]]
    files: dict[str, str]

    @classmethod
    def of(cls, home: Path) -> HubDump:
        return cls(*read_home(home, DATABASE_FILES, None, evidence="upstream_evidence"))

    def evidence(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.tables["upstream_evidence"]]

    def upstream_list(self, list_id: str) -> dict[str, Any]:
        for row in self.tables["upstream_lists"]:
            values = dict(row)
            if values["list_id"] == list_id:
                return values
        raise KeyError(list_id)

    def unchanged_since(self, before: HubDump, *, new_evidence: int) -> list[dict[str, Any]]:
        """Assert that nothing the hub keeps changed since ``before`` but what a failed
        run records (the module docstring); returns the new evidence rows."""

        def without_failure(rows: tuple[Row, ...]) -> list[Row]:
            return [tuple((k, v) for k, v in row if k not in FAILURE_COLUMNS) for row in rows]

        assert set(self.tables) == set(before.tables), "a table was made or dropped"
        changed = []
        for table, rows in self.tables.items():
            if table in ("upstream_evidence", "sqlite_sequence"):
                continue
            if table == "upstream_lists":
                rows_now, rows_then = without_failure(rows), without_failure(before.tables[table])
            else:
                rows_now, rows_then = list(rows), list(before.tables[table])
            if rows_now != rows_then:
                changed.append(table)
        assert changed == [], f"tables changed: {changed}"
        kept = len(before.tables["upstream_evidence"])
        assert self.tables["upstream_evidence"][:kept] == before.tables["upstream_evidence"], (
            "evidence was altered"
        )
        added = self.evidence()[kept:]
        assert len(added) == new_evidence, added
        assert self.files == before.files, "a file in the hub's home changed"
        return added
