"""The simulator hub of the hostile-repository suite, and the node it is aimed at.

After python-tuf's ``tests/repository_simulator.py`` and the tuf-conformance suite's
simulator server, but with every part real and over HTTP on loopback:

- ``SimulatorHub.start``: a real hub (``hub.core.Hub`` in a test's directory: real
  Ed25519 keys, root keys 2 of 3, real SQLite) with two md5 lists published at
  version 1, served by its real app (``hub.app.create_app``) on 127.0.0.1. Nodes do
  not talk to it directly: they know ``front`` as their hub, a ``JournalServer`` (the
  hostile server of ``tests/node/hostile.py``) that forwards every request, acks
  included, to the real hub until a test bends it into one attack. ``mirror()``
  starts an untrusted mirror serving the hub's published tree.
- ``journal``: one log, shared by the front and every mirror, of which server was
  asked for which path, in arrival order, so a test can say what the node fetched
  and what it never asked for.
- Forgeries: what an attacker holding some of the hub's keys (or none) can sign —
  a checkpoint for any size and root hash, a header chained onto the real log,
  a root N+1 signed by any set of keys.
- ``serve_from(home)``: the front serves another hub's tree instead (a fork of this
  hub that rewrote its history).
- ``add_entries_list()``: a third list, ``ENTRIES``, of entries (md5 hashes with their
  metadata) at version 1, for a hub following this one (a hub re-publishes entries
  lists only). Not made by ``start``: it adds a root version, and the cases above
  count roots.

``NodeUnderTest`` is a node made as a participant makes one — ``hashhub-node init``
pinned to the hub's root v1, its key enrolled at the hub, ``hashhub-node token set``
— that syncs through the command line (``hashhub-node sync``, whose exit status is
the outcome: 0 ok, 3 rejected, 4 failed), or through ``node.service``'s API with an
injected clock or other limits where the command line cannot take them.

``StoreDump`` is the full before/after picture of a node: every table of its
SQLite store (the state blob and the trust row included) and every other file in
its home, so "nothing changed" is checked on everything the node keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from aiohttp import web
from click.testing import CliRunner

from follow import ListOutcome
from hub.core import Hub, utcnow
from hub.services.entries import EntryDraft
from node.cli import main as node_cli
from node.config import CONFIG_NAME, NodeConfig
from node.service import Node
from protocol import (
    Checkpoint,
    DeltaBody,
    DeltaHeader,
    Limits,
    Role,
    Root,
    SignedCheckpoint,
    SigningKey,
    body_path,
    checkpoint_path,
    cosign,
    header_path,
    root_files,
    root_path,
    sig_path,
    sign_bytes,
    sign_note,
)
from tests.node.fixtures_sync import Clock, HubApp, md5, sync_once
from tests.node.hostile import HostileServer

__all__ = [
    "ENTRIES",
    "ENTRIES_FIRST",
    "ENTRY_CATEGORY",
    "FIRST",
    "HUB_NAME",
    "LIST",
    "LISTS",
    "MAX_AGE",
    "NODE_ID",
    "OTHER",
    "OTHER_FIRST",
    "JournalServer",
    "LyingLength",
    "NodeUnderTest",
    "SimulatorHub",
    "StoreDump",
    "SyncRun",
    "md5",
    "publish_entries",
]

HUB_NAME = "hub.test"
LIST = "tid-md5"
"""The list most attacks aim at (md5, a snapshot every 2 versions)."""
OTHER = "tid-md5-b"
"""A second md5 list: its fate shows an attack on one list leaves the others alone."""
LISTS = (LIST, OTHER)
FIRST = [md5(i) for i in range(5)]
"""What version 1 of ``LIST`` holds."""
OTHER_FIRST = [md5(f"b{i}") for i in range(3)]
"""What version 1 of ``OTHER`` holds."""
ENTRIES = "tid-entries"
"""An entries list (``add_entries_list``): what a hub following this one reads."""
ENTRIES_FIRST = [md5(f"e{i}") for i in range(3)]
"""What version 1 of ``ENTRIES`` holds."""
ENTRY_CATEGORY = "ncii"
"""The category of every ``ENTRIES`` entry (what a following hub's selection takes)."""
MAX_AGE = 3600
"""The hub's policy: a checkpoint co-signed longer ago than this is stale."""
NODE_ID = "platform-a"


# -- the servers ------------------------------------------------------------------------


@dataclass(frozen=True)
class LyingLength:
    """Announce a ``Content-Length`` ``shift`` bytes off the length of the real answer.

    ``shift > 0``: the whole answer, then the connection closes short of the
    announced length. ``shift < 0``: the announced bytes, then, a moment later, the
    rest of the answer past them (a client that believes the header stops early).
    """

    shift: int


@dataclass
class JournalServer(HostileServer):
    """A hostile server that also writes every request into a journal shared with others.

    Besides the behaviours of ``HostileServer``, ``lie(path, LyingLength(...))`` makes
    the answers to matching paths announce a false ``Content-Length``.
    """

    name: str = "hub"
    journal: list[tuple[str, str]] = field(default_factory=list)
    lies: list[tuple[str, LyingLength]] = field(default_factory=list)

    def lie(self, path: str, behaviour: LyingLength) -> JournalServer:
        """Answer request paths matching the regex ``path`` with a false length."""
        self.lies.append((path, behaviour))
        return self

    def behave(self) -> None:
        super().behave()
        self.lies.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.journal.append((self.name, request.path))
        lie = next(
            (b for p, b in self.lies if request.method == "GET" and re.search(p, request.path)),
            None,
        )
        if lie is None:
            return await super()._handle(request)
        self.requests.append(f"{request.method} {request.path}")
        answer = await self._answer(request, b"")
        return await self._lie(request, answer.body, lie.shift)

    async def _lie(self, request: web.Request, body: bytes, shift: int) -> web.StreamResponse:
        announced = len(body) + shift
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {announced}\r\nConnection: close\r\n\r\n"
        ).encode()
        transport = request.transport
        assert transport is not None
        if shift >= 0:
            transport.write(head + body)
        else:
            transport.write(head + body[:announced])
            await asyncio.sleep(0.05)  # the client has its "whole" answer; the rest trails
            transport.write(body[announced:])
        self.streamed += len(body)
        transport.close()
        raise asyncio.CancelledError  # the answer went out by hand: aiohttp sends nothing more


# -- the hub ----------------------------------------------------------------------------


@dataclass
class SimulatorHub:
    """A real hub behind a front that each test bends (see the module docstring)."""

    origin: HubApp
    front: JournalServer
    journal: list[tuple[str, str]]
    _others: list[HostileServer] = field(default_factory=list)

    @classmethod
    async def start(cls, home: Path, *, clock: Clock | None = None) -> SimulatorHub:
        """Create the hub in ``home``, publish version 1 of both lists, serve it and its front."""
        clock = clock or Clock()
        hub = Hub.init(
            home,
            HUB_NAME,
            root_keys=3,
            root_threshold=2,
            publish_interval=0,
            timestamp_interval=0,
            max_checkpoint_age=MAX_AGE,
            now=clock,
        )
        hub.close()
        origin = HubApp(home, clock)
        origin.create_list(LIST, "md5", snapshot_every=2)
        origin.create_list(OTHER, "md5")
        origin.publish(LIST, adds=FIRST)
        origin.publish(OTHER, adds=OTHER_FIRST)
        await origin.start()
        journal: list[tuple[str, str]] = []
        # HostileServer's constructors build ``cls(...)``: a JournalServer here.
        front = cast(JournalServer, JournalServer.proxy(origin.url))
        front.name, front.journal = "hub", journal
        await front.start()
        return cls(origin, front, journal)

    async def close(self) -> None:
        for server in [self.front, *self._others]:
            await server.close()
        await self.origin.stop()

    async def mirror(self, name: str = "mirror") -> JournalServer:
        """Start an untrusted mirror serving this hub's published tree."""
        server = cast(JournalServer, JournalServer.serving(self.origin.home))
        server.name, server.journal = name, self.journal
        self._others.append(server)
        await server.start()
        return server

    def serve_from(self, home: Path) -> None:
        """From now on the front serves the published tree of the hub in ``home``."""
        other = HostileServer.serving(home)
        self._others.append(other)
        self.front.source = other.source

    # -- what was asked ----------------------------------------------------------------

    def paths(self, server: str = "hub") -> list[str]:
        """The paths ``server`` was asked for, in order."""
        return [path for name, path in self.journal if name == server]

    def asked(self, path: str) -> list[str]:
        """The servers asked for exactly ``path`` (no leading slash), in order."""
        return [name for name, asked in self.journal if asked == "/" + path]

    # -- the real hub's view ----------------------------------------------------------

    def file(self, path: str) -> bytes:
        """What the real hub publishes at ``path``."""
        return self.origin.file(path)

    def state(self, list_id: str) -> bytes:
        """The real hub's current state of a list, as snapshot bytes."""
        with self.origin.opened() as hub:
            return hub.lists.state(list_id).to_bytes()

    def root(self) -> Root:
        with self.origin.opened() as hub:
            return hub.keys.root()

    def signers(self, role: str) -> list[SigningKey]:
        """The hub's private keys for ``role`` (what a thief of that role would hold)."""
        with self.origin.opened() as hub:
            return hub.keys.signers(role)

    # -- forgeries ----------------------------------------------------------------------

    def checkpoint(
        self,
        list_id: str,
        size: int,
        root_hash: bytes,
        *,
        at: datetime,
        checkpoint_keys: Sequence[SigningKey] | None = None,
        timestamp_keys: Sequence[SigningKey] | None = None,
    ) -> bytes:
        """A checkpoint note for any size and root hash, co-signed at ``at``.

        Signed by the hub's own checkpoint and timestamp keys unless others are given.
        """
        root = self.root()
        note = Checkpoint(root.origin(list_id), size, root_hash)
        cp_keys = self.signers("checkpoint") if checkpoint_keys is None else checkpoint_keys
        ts_keys = self.signers("timestamp") if timestamp_keys is None else timestamp_keys
        lines = [sign_note(note, key, note.origin) for key in cp_keys]
        lines += [cosign(note, key, root.timestamp_name, at) for key in ts_keys]
        return SignedCheckpoint(note, tuple(lines)).to_bytes()

    def planted_version(
        self, list_id: str, adds: Sequence[bytes], *, sign_with: Sequence[SigningKey]
    ) -> dict[str, bytes]:
        """The files of a next version the hub never published, chained onto its real log.

        The header (signed by ``sign_with``), its body, and a checkpoint over the
        extended log signed by the hub's real checkpoint and timestamp keys: what a
        thief of the hub's online keys, without the delta key, would serve.
        """
        with self.origin.opened() as hub:
            head = hub.lists.head(list_id)
            root = hub.keys.root()
        body = DeltaBody.build(root.list_spec(list_id).hash_type, [], list(adds))
        created = self.origin.clock()
        header = DeltaHeader(
            list_id=list_id,
            version=head.version + 1,
            prev=head.last_leaf,
            root_version=root.version,
            created=created,
            body=body.ref(),
            base_state=head.state.digest(),
            result_state=head.state.apply([], body.adds).digest(),
        )
        data = header.to_bytes()
        compact = head.compact.copy()
        compact.append(header.leaf_hash)
        path = header_path(list_id, header.version)
        return {
            path: data,
            sig_path(path): sign_bytes(data, sign_with).to_bytes(),
            body_path(list_id, header.body.sha256): body.to_bytes(),
            checkpoint_path(list_id): self.checkpoint(
                list_id, header.version, compact.root(), at=created
            ),
        }

    def next_root(
        self,
        *,
        new_root_keys: Sequence[SigningKey],
        threshold: int,
        sign_with: Sequence[SigningKey],
    ) -> dict[str, bytes]:
        """Root N+1 whose root role is ``new_root_keys`` (``threshold`` of them), signed by
        ``sign_with``: ``{root/<N+1>.json: bytes, root/<N+1>.json.sig: bytes}``."""
        old = self.root()
        keys = {k: v for k, v in old.keys.items() if k not in old.roles["root"].keyids}
        keys.update({k.keyid: k.public for k in new_root_keys})
        roles = dict(old.roles)
        roles["root"] = Role(tuple(k.keyid for k in new_root_keys), threshold)
        new = replace(old, version=old.version + 1, keys=keys, roles=roles)
        files = root_files(new, sign_with)
        assert set(files) == {root_path(new.version), sig_path(root_path(new.version))}
        return files

    # -- honest publishing ------------------------------------------------------------------

    def publish(
        self, list_id: str, adds: Sequence[bytes] = (), removes: Sequence[bytes] = ()
    ) -> int:
        """Publish the next version of a list at the real hub; returns it."""
        return self.origin.publish(list_id, adds=adds, removes=removes)

    def add_entries_list(self) -> int:
        """Declare ``ENTRIES`` (md5, entries) and publish its version 1 with an entry for
        each of ``ENTRIES_FIRST``; returns the root version that declared it."""
        with self.origin.opened() as hub:
            root = hub.roots.create_list(ENTRIES, "md5", label="entries", list_format="entries")
        publish_entries(self.origin, ENTRIES_FIRST)
        return root.version


def publish_entries(hub: HubApp, adds: Sequence[bytes]) -> int:
    """Add an entry to ``ENTRIES`` for each of ``adds`` at ``hub`` (the simulator's real
    hub or a fork of it) and publish them as its next version; returns that version."""
    with hub.opened() as opened:
        opened.entries.add_many(
            [
                EntryDraft(((ENTRIES, h.hex()),), ENTRY_CATEGORY, "confirmed", "import:sim")
                for h in adds
            ]
        )
        (result,) = opened.publishing.publish([ENTRIES])
        return int(result.version)


# -- the node ---------------------------------------------------------------------------


def _invoke(args: Sequence[str]) -> Any:
    return CliRunner().invoke(node_cli, list(args))


@dataclass(frozen=True)
class SyncRun:
    """One ``hashhub-node sync``: its exit status and what it printed."""

    exit_code: int
    output: str

    def line(self, list_id: str) -> str:
        """The line ``sync`` printed about ``list_id``."""
        found = [ln for ln in self.output.splitlines() if ln.startswith(f"{list_id}: ")]
        assert len(found) == 1, self.output
        return found[0]


@dataclass
class NodeUnderTest:
    """A participant's node in ``home``, enrolled at a ``SimulatorHub`` (module docstring)."""

    home: Path
    sim: SimulatorHub

    @classmethod
    async def enrol(
        cls, home: Path, sim: SimulatorHub, *, mirrors: Sequence[str] = ()
    ) -> NodeUnderTest:
        """``hashhub-node init`` pinned to root v1, enrolment at the hub, ``token set``."""
        args = [
            "init",
            "--hub",
            sim.front.url,
            "--node-id",
            NODE_ID,
            "--lists",
            ",".join(LISTS),
            "--pin",
            sim.origin.pinned(),
            "--home",
            str(home),
        ]
        for mirror in mirrors:
            args += ["--mirror", mirror]
        result = await asyncio.to_thread(_invoke, args)
        assert result.exit_code == 0, result.output
        token = sim.origin.enrol(NODE_ID, home / "node.pub.pem", LISTS)
        result = await asyncio.to_thread(_invoke, ["token", "set", token, "--home", str(home)])
        assert result.exit_code == 0, result.output
        return cls(home, sim)

    def configure(self, **settings: Any) -> None:
        """Change settings in ``node.toml``, as the platform's operator would."""
        config = replace(NodeConfig.load(self.home), **settings)
        (self.home / CONFIG_NAME).write_text(config.to_toml(), encoding="utf-8")

    async def sync(self) -> SyncRun:
        """``hashhub-node sync`` on a worker thread (the servers answer on this loop)."""
        result = await asyncio.to_thread(_invoke, ["sync", "--home", str(self.home)])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"sync crashed: {result.output}") from result.exception
        return SyncRun(result.exit_code, result.output)

    async def flush_acks(self) -> None:
        """``hashhub-node acks flush``: deliver what an API-driven sync left in the outbox."""
        result = await asyncio.to_thread(_invoke, ["acks", "flush", "--home", str(self.home)])
        assert result.exit_code == 0, result.output

    async def sync_with(
        self, *, now: datetime | None = None, limits: Limits | None = None
    ) -> list[ListOutcome]:
        """One update through ``node.service`` with an injected clock and/or other limits.

        The command line takes neither; it maps the outcomes to its exit status
        (any "rejected" → 3, else any "failed" → 4, else 0).
        """
        with self.opened(now=now) as node:
            outcomes, _ = await sync_once(node, limits=limits)
        return outcomes

    @contextlib.contextmanager
    def opened(self, *, now: datetime | None = None) -> Iterator[Node]:
        """The node, opened with its clock fixed at ``now`` (default: the system clock)."""
        node = Node.open(self.home, now=(lambda: now) if now is not None else utcnow)
        try:
            yield node
        finally:
            node.close()

    def dump(self) -> StoreDump:
        return StoreDump.of(self.home)

    def enforces(self, *hashes: bytes) -> list[bool]:
        """For each hash: would the node flag it now (does its match index hold it)?"""
        with self.opened() as node:
            return [bool(node.matching.match_hashes({"md5": [h]})) for h in hashes]


# -- the store, before and after -----------------------------------------------------------

NODE_TABLES = (
    "roots",
    "lists",
    "evidence",
    "match_events",
    "counters",
    "ack_outbox",
    "acks_confirmed",
    "webhook_outbox",
    "content",
)
ATTEMPT_COLUMNS = ("last_attempt", "last_error")
"""The ``lists`` columns a failed attempt writes on purpose: when, and why."""
DATABASE_FILES = ("node.db", "node.db-wal", "node.db-shm")

Row = tuple[tuple[str, Any], ...]


def read_home(
    home: Path, database: Sequence[str], tables: Sequence[str] | None, *, evidence: str
) -> tuple[dict[str, tuple[Row, ...]], dict[str, str]]:
    """Every row of ``tables`` (None: every table) of the SQLite database ``database[0]``
    in ``home``, and the SHA-256 of every other file there (the database's own files,
    ``database``, left out). The ``evidence`` table keeps its order (ids grow); the
    others are compared as sets."""
    conn = sqlite3.connect(f"file:{home / database[0]}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        every = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        names = (
            list(tables) if tables is not None else [str(r["name"]) for r in conn.execute(every)]
        )
        found = {}
        for table in names:
            order = " ORDER BY rowid" if table == evidence else ""
            rows = [
                tuple((k, r[k]) for k in r.keys())  # noqa: SIM118 (sqlite3.Row)
                for r in conn.execute(f'SELECT * FROM "{table}"{order}')
            ]
            found[table] = tuple(rows if table == evidence else sorted(rows, key=repr))
    finally:
        conn.close()
    files = {
        p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and p.name not in database
    }
    return found, files


@dataclass(frozen=True)
class StoreDump:
    """Every row of every table of a node's store, and a digest of every other file."""

    tables: dict[str, tuple[Row, ...]]
    files: dict[str, str]

    @classmethod
    def of(cls, home: Path) -> StoreDump:
        return cls(*read_home(home, DATABASE_FILES, NODE_TABLES, evidence="evidence"))

    # -- reading ------------------------------------------------------------------------

    def list_row(self, list_id: str) -> dict[str, Any]:
        for row in self.tables["lists"]:
            values = dict(row)
            if values["id"] == list_id:
                return values
        raise KeyError(list_id)

    def version(self, list_id: str) -> int:
        return int(json.loads(self.list_row(list_id)["trust"])["version"])

    def state(self, list_id: str) -> bytes:
        return bytes(self.list_row(list_id)["state"])

    def roots(self) -> list[int]:
        return [dict(row)["version"] for row in self.tables["roots"]]

    def evidence(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.tables["evidence"]]

    # -- comparing ----------------------------------------------------------------------

    def unchanged_since(
        self, before: StoreDump, *, new_evidence: int, current: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Assert that nothing the node keeps changed since ``before`` but what a failed
        attempt records — ``lists.last_attempt``/``last_error`` and ``new_evidence``
        appended evidence rows — and, for the ``current`` lists (found up to date in the
        same run), ``last_success`` and the refreshed checkpoint in their trust row
        (their version, compact range and state stay). Returns the new evidence rows.
        """

        def without_attempt(rows: tuple[Row, ...]) -> list[Row]:
            out = []
            for row in rows:
                values = dict(row)
                skip: tuple[str, ...] = ATTEMPT_COLUMNS
                kept: list[tuple[str, str]] = []
                if values["id"] in current:
                    skip += ("last_success", "trust")
                    trust = json.loads(values["trust"])
                    kept = [
                        (f"trust.{k}", json.dumps(v, sort_keys=True))
                        for k, v in sorted(trust.items())
                        if k not in ("checkpoint", "checkpoint_time")
                    ]
                out.append(tuple((k, v) for k, v in row if k not in skip) + tuple(kept))
            return out

        for table in NODE_TABLES:
            if table == "lists":
                assert without_attempt(self.tables[table]) == without_attempt(
                    before.tables[table]
                ), "the lists table (state, digest or trust row) changed"
            elif table != "evidence":
                assert self.tables[table] == before.tables[table], f"table {table} changed"
        kept = len(before.tables["evidence"])
        assert self.tables["evidence"][:kept] == before.tables["evidence"], "evidence was altered"
        added = self.evidence()[kept:]
        assert len(added) == new_evidence, added
        assert self.files == before.files, "a file in the node's home changed"
        return added
