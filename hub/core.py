"""The hub: its services over one home directory, configuration and database.

``Hub`` is the composition root. It opens (or creates) a hub and builds the
services in ``hub.services``, each owning its own tables, and hands them out:
``hub.keys`` (keys and roots), ``hub.lists`` (declarations, heads, staging),
``hub.roots`` (new lists, key rotation, vocabulary terms), ``hub.entries`` (the
entries of ``entries`` lists), ``hub.disputes`` (disputes of entries and the
opinion summaries), ``hub.publishing`` (versions),
``hub.checkpoints``, ``hub.files`` (the published tree), ``hub.access`` (nodes
and tokens), ``hub.sessions`` (dashboard logins), ``hub.acks``, ``hub.ledger``
(counts), ``hub.evidence``, ``hub.reports`` and ``hub.cases`` (public
submissions) and ``hub.contributions`` (members' candidate entries). The CLI
calls them directly; the HTTP app sends each call to the database thread
(``edge.database.DatabaseThread``). Signing is done by ``protocol.Publisher`` and
``protocol.root_files``; the services decide *what* to publish and store the
result atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from hub.config import CONFIG_NAME, HubConfig
from hub.errors import Conflict, InvalidRequest
from hub.services.access import OPERATOR_ROLES, Access, Principal
from hub.services.acks import AckIntake, AckReceipt
from hub.services.cases import CASE_STATUSES, Cases
from hub.services.checkpoints import Checkpoints
from hub.services.context import HubContext, utcnow
from hub.services.contributions import Contributions
from hub.services.disputes import Disputes
from hub.services.entries import DEFAULT_VOCABULARY, Entries
from hub.services.evidence import ACK_PAGE_BYTES, Evidence
from hub.services.exchanges import Exchanges
from hub.services.files import PublishedFiles
from hub.services.frames import Frames
from hub.services.keys import Keys
from hub.services.ledger import Ledger
from hub.services.lists import Lists
from hub.services.origins import Origins
from hub.services.publishing import Publishing
from hub.services.reports import Reports
from hub.services.roots import RootChanges
from hub.services.sessions import WebSession, WebSessions
from hub.services.upstreams import Upstreams
from hub.store import open_database
from protocol import ProtocolError, Role, Root, Vocabulary, root_files
from protocol.root import validate_hub_name

__all__ = [
    "ACK_PAGE_BYTES",
    "CASE_STATUSES",
    "OPERATOR_ROLES",
    "AckReceipt",
    "Hub",
    "Principal",
    "WebSession",
    "utcnow",
]


class Hub:
    """One hub: its home directory, configuration, database and services."""

    def __init__(
        self,
        home: Path,
        config: HubConfig,
        db: sqlite_utils.Database,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ctx = HubContext(home, config, db, now)
        self.files = PublishedFiles(self.ctx)
        self.frames = Frames(self.ctx)
        self.keys = Keys(self.ctx, self.files)
        self.lists = Lists(self.ctx, self.keys)
        self.checkpoints = Checkpoints(self.ctx, self.keys, self.files, self.lists)
        self.entries = Entries(self.ctx, self.keys, self.lists, self.frames)
        self.roots = RootChanges(self.ctx, self.keys, self.lists, self.checkpoints)
        self.disputes = Disputes(self.ctx, self.entries)
        self.origins = Origins(self.ctx)
        self.publishing = Publishing(
            self.ctx,
            self.keys,
            self.files,
            self.lists,
            self.checkpoints,
            self.entries,
            self.disputes,
            self.origins,
            self.frames,
        )
        self.access = Access(self.ctx, self.lists)
        self.sessions = WebSessions(self.ctx, self.access)
        self.ledger = Ledger(self.ctx, self.lists)
        self.evidence = Evidence(self.ctx)
        self.acks = AckIntake(
            self.ctx, self.keys, self.lists, self.access, self.ledger, self.evidence, self.disputes
        )
        self.reports = Reports(self.ctx, self.keys, self.lists, self.access, self.ledger)
        self.cases = Cases(self.ctx, self.lists, self.entries, self.frames)
        self.contributions = Contributions(self.ctx, self.keys, self.access, self.entries)
        self.upstreams = Upstreams(self.ctx, self.keys, self.entries)
        self.exchanges = Exchanges(self.ctx, self.keys, self.entries)

    # The context's parts, for callers that need the hub's home, settings or clock.

    @property
    def home(self) -> Path:
        return self.ctx.home

    @property
    def config(self) -> HubConfig:
        return self.ctx.config

    @property
    def db(self) -> sqlite_utils.Database:
        return self.ctx.db

    def now(self) -> datetime:
        """The hub's clock (tests pass their own to ``open``/``init``)."""
        return self.ctx.now()

    @property
    def fault_hook(self) -> Callable[[str], None] | None:
        """Called with each step of a publish; tests set it to crash the hub between two."""
        return self.ctx.fault_hook

    @fault_hook.setter
    def fault_hook(self, hook: Callable[[str], None] | None) -> None:
        self.ctx.fault_hook = hook

    @classmethod
    def open(cls, home: Path, *, now: Callable[[], datetime] = utcnow) -> Hub:
        """Open the hub in ``home`` (its configuration file names the database)."""
        config = HubConfig.load(home)
        return cls(home, config, open_database(home / config.database), now)

    @classmethod
    def init(
        cls,
        home: Path,
        name: str,
        *,
        root_keys: int = 3,
        root_threshold: int = 2,
        vocabulary: Vocabulary | None = DEFAULT_VOCABULARY,
        now: Callable[[], datetime] = utcnow,
        **settings: Any,
    ) -> Hub:
        """Create a hub: config, keys for every role, database, root v1 (with
        ``vocabulary``, the terms its entries lists may use; None: none yet)."""
        if (home / CONFIG_NAME).exists():
            # The folder is quoted and called a folder: a hub's home is often named
            # "hub", and "hub already holds a hub" reads as nonsense.
            raise Conflict(
                f"folder {str(home)!r} already holds a hub ({home / CONFIG_NAME}); "
                "choose another folder or remove that hub first"
            )
        if not 1 <= root_threshold <= root_keys:
            raise InvalidRequest("root threshold must be between 1 and the number of root keys")
        home.mkdir(parents=True, exist_ok=True)
        (home / "keys").mkdir(mode=0o700, exist_ok=True)
        config = HubConfig(name=name, **settings)
        try:
            validate_hub_name(name)
        except ProtocolError as e:
            raise InvalidRequest(str(e)) from e
        (home / CONFIG_NAME).write_text(config.to_toml(), encoding="utf-8")
        hub = cls(home, config, open_database(home / config.database), now)
        counts = {"root": root_keys, "delta": 1, "checkpoint": 1, "timestamp": 1}
        with hub.db.atomic():
            keys = {role: [hub.keys.new_key(role) for _ in range(n)] for role, n in counts.items()}
            root = Root(
                version=1,
                name=name,
                expires=now() + timedelta(days=config.root_expiry_days),
                keys={k.keyid: k.public for ks in keys.values() for k in ks},
                roles={
                    role: Role(tuple(k.keyid for k in ks), root_threshold if role == "root" else 1)
                    for role, ks in keys.items()
                },
                policy=hub.keys.policy(),
                vocabulary=vocabulary,
            )
            hub.keys.store_root(root, root_files(root, keys["root"]))
            hub.ctx.log("init", "hub", {"name": name, "root_keys": root_keys})
        return hub

    def close(self) -> None:
        self.db.close()
