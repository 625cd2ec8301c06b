"""The hub's operations, synchronous, over one database connection.

Everything an operator or a node can ask of the hub is a method here; the CLI
calls them directly and the HTTP app sends them to the database thread
(``store.DatabaseOwner``). Signing is done by ``protocol.Publisher`` and
``protocol.root_files``; this module decides *what* to publish and stores the
result atomically.

Publishing one version of a list is one SQLite transaction: the body, header,
signature, snapshot and checkpoint rows, the list's new head, the entries it
adds and removes, the staged rows it consumes and the action-log line. A crash
at any point leaves the previous version or the new one, never half
(``fault_hook`` lets tests crash it between each pair of steps).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from hub.config import CONFIG_NAME, HubConfig
from hub.errors import (
    Conflict,
    Forbidden,
    HubError,
    InvalidRequest,
    NotFound,
    SeqConflict,
    Unauthorized,
    Unprocessable,
)
from hub.intake import MIN_PDQ_QUALITY, Intake
from hub.store import open_database
from protocol import (
    GENESIS_PREV,
    HASH_TYPES,
    Limits,
    ListHead,
    ListSpec,
    ListState,
    Policy,
    ProtocolError,
    PublicKey,
    Publisher,
    Role,
    Root,
    SigningKey,
    format_time,
    parse_time,
    root_files,
)
from protocol.ack import COUNTER_NAMES, NODE_ID_PATTERN, Ack, verify_ack
from protocol.checkpoint import SignedCheckpoint, cosignature_time
from protocol.counters import MAX_TOTAL, clamp_total, counter_growth, counter_rows
from protocol.hashes import degenerate_reason
from protocol.keyfile import load_private_key, write_private_key
from protocol.lists import validate_list_id
from protocol.merkle import CompactRange
from protocol.root import ROLE_NAMES, validate_hub_name

__all__ = [
    "CASE_STATUSES",
    "OPERATOR_ROLES",
    "SUBMISSION_TYPES",
    "AckReceipt",
    "Hub",
    "Principal",
    "WebSession",
    "utcnow",
]

log = logging.getLogger("hashhub.hub")

OPERATOR_ROLES = ("admin", "publisher", "viewer", "auditor")
"""admin: everything; publisher: stage and publish; viewer: read status; auditor: read acks."""

SUBMISSION_TYPES = {"pdq": "image", "md5": "video"}
"""What the public submission page takes: PDQ of an image, MD5 of a video file."""
CASE_STATUSES = ("received", "accepted", "rejected")

IMMUTABLE = 1


def _without_top(shares: Sequence[Mapping[str, int]], name: str, drop: int) -> dict[str, int]:
    """The sums of ``matched`` and ``false_positive`` without the ``drop`` nodes largest in
    ``name`` (both of their counters taken out), clamped like every total."""
    kept = sorted(shares, key=lambda share: share.get(name, 0), reverse=True)[max(0, drop) :]
    return {
        counter: clamp_total(sum(share.get(counter, 0) for share in kept))
        for counter in ("matched", "false_positive")
    }


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so one SHA-256 is a sufficient one-way store."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a bearer token belongs to."""

    kind: str  # "operator" or "node"
    role: str  # operator role, or "node"
    subject: str  # operator name or node id
    lists: frozenset[str] = frozenset()

    def require(self, *roles: str) -> None:
        if self.kind != "operator" or (self.role != "admin" and self.role not in roles):
            raise Forbidden(
                f"this needs an operator token with role {' or '.join(roles) or 'admin'}"
            )


@dataclass(frozen=True)
class WebSession:
    """An operator's dashboard login: who, the form token every POST must carry, until when."""

    principal: Principal
    csrf: str
    expires: datetime


@dataclass(frozen=True)
class AckReceipt:
    node: str
    list_id: str
    seq: int
    duplicate: bool = False
    evidence_id: int | None = None
    withheld: Mapping[str, int] = field(default_factory=dict)
    """Counter jumps this ack made that were not counted (name: amount), ADR 0010."""


ACK_PAGE_BYTES = 8 * 1024 * 1024
"""Ack or evidence bytes one page of ``/v1/admin/acks`` or ``/v1/admin/evidence`` holds,
at most (a page has at least one row): 1 MiB acks page by eight, not by a thousand."""

_KEY_CHUNK = 500
"""Per-hash keys looked up in the entries table per query (well under SQLite's cap)."""


@dataclass
class _Cached:
    version: int
    state: ListState


@dataclass
class Hub:
    """One hub: its home directory, configuration and database."""

    home: Path
    config: HubConfig
    db: sqlite_utils.Database
    now: Callable[[], datetime] = utcnow
    fault_hook: Callable[[str], None] | None = None
    _states: dict[str, _Cached] = field(default_factory=dict)
    _root_cache: tuple[str, Root] | None = None
    _relaxed_depth: int = 0

    # -- opening --------------------------------------------------------------------

    @classmethod
    def open(cls, home: Path, *, now: Callable[[], datetime] = utcnow) -> Hub:
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
        now: Callable[[], datetime] = utcnow,
        **settings: Any,
    ) -> Hub:
        """Create a hub: config, keys for every role, database, root v1."""
        if (home / CONFIG_NAME).exists():
            raise Conflict(f"{home} already holds a hub")
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
            keys = {role: [hub._new_key(role) for _ in range(n)] for role, n in counts.items()}
            root = Root(
                version=1,
                name=name,
                expires=now() + timedelta(days=config.root_expiry_days),
                keys={k.keyid: k.public for ks in keys.values() for k in ks},
                roles={
                    role: Role(tuple(k.keyid for k in ks), root_threshold if role == "root" else 1)
                    for role, ks in keys.items()
                },
                policy=hub._policy(),
            )
            hub._store_root(root, root_files(root, keys["root"]))
            hub._log("init", "hub", {"name": name, "root_keys": root_keys})
        return hub

    def close(self) -> None:
        self.db.close()

    # -- keys and roots -------------------------------------------------------------

    def _policy(self) -> Policy:
        return Policy(
            max_checkpoint_age=self.config.max_checkpoint_age,
            min_poll_interval=self.config.min_poll_interval,
        )

    def _new_key(self, role: str) -> SigningKey:
        key = SigningKey.generate()
        rel = Path("keys") / f"{role}-{key.keyid[:16]}.key"
        write_private_key(self.home / rel, key)
        self.db.table("keys").insert(
            {
                "keyid": key.keyid,
                "role": role,
                "public": key.public.raw.hex(),
                "path": str(rel),
                "created": format_time(self.now()),
            }
        )
        return key

    def signers(self, role: str, root: Root | None = None) -> list[SigningKey]:
        """The private keys on this machine for ``role`` in ``root`` (default: the newest)."""
        root = root or self.root()
        out = []
        for keyid in root.roles[role].keyids:
            row = self._one("SELECT path FROM keys WHERE keyid = ?", [keyid])
            path = self.home / row["path"] if row else None
            if path is not None and path.exists():
                out.append(load_private_key(path))
        return out

    def root(self) -> Root:
        """The newest root version (parsed once per version; roots never change)."""
        row = self._one("SELECT version, sha256 FROM roots ORDER BY version DESC LIMIT 1", [])
        if row is None:
            raise NotFound("this hub has no root yet")
        cached = self._root_cache
        if cached is None or cached[0] != row["sha256"]:
            data = self._one("SELECT bytes FROM roots WHERE version = ?", [row["version"]])
            assert data is not None
            cached = (row["sha256"], Root.from_bytes(data["bytes"]))
            self._root_cache = cached
        return cached[1]

    def root_sha256(self, version: int = 1) -> str:
        row = self._one("SELECT sha256 FROM roots WHERE version = ?", [version])
        if row is None:
            raise NotFound(f"no root v{version}")
        return str(row["sha256"])

    def _store_root(self, root: Root, files: dict[str, bytes]) -> None:
        path = f"root/{root.version}.json"
        data, sig = files[path], files[path + ".sig"]
        self.db.table("roots").insert(
            {
                "version": root.version,
                "bytes": data,
                "sig": sig,
                "sha256": hashlib.sha256(data).hexdigest(),
                "created": format_time(self.now()),
            }
        )
        self._put_file(path, data)
        self._put_file(path + ".sig", sig)

    def _next_root(self, **changes: Any) -> Root:
        """Root N+1 with ``changes``, each list's ``first_version`` set to its next version.

        Only a root that changes the delta role needs it (PROTOCOL.md §5.3): there it
        retires the removed keys from the next version on. In any other root it binds
        nothing, and setting it anyway keeps older verifiers working, which judged
        every header by every later root's ``first_version`` (before the rule was limited
        to delta rotations): a copied value would make them refuse the versions
        published since. It is never above the next version, so no published version
        is ever retired.
        """
        old = self.root()
        lists = changes.pop("lists", dict(old.lists))
        heads = {r["id"]: r["version"] for r in self.db.query("SELECT id, version FROM lists")}
        lists = {
            lid: replace(spec, first_version=max(spec.first_version, heads.get(lid, 0) + 1))
            for lid, spec in lists.items()
        }
        return replace(
            old,
            version=old.version + 1,
            expires=self.now() + timedelta(days=self.config.root_expiry_days),
            lists=lists,
            policy=self._policy(),
            **changes,
        )

    def _publish_root(self, new: Root) -> Root:
        """Sign root N+1 with the old root role's keys and the new one's, check it, store it.

        No other key signs a root (PROTOCOL.md §12 item 6): the sidecar holds at most the
        two root roles, which the 128-signature cap of a sidecar always fits.
        """
        old = self.root()
        if new.version > 1 + Limits().max_root_walk:
            raise Conflict(
                f"root v{new.version} would be more than {Limits().max_root_walk} roots after "
                "v1, and no verifier pinned at v1 could walk to it (PROTOCOL.md §11)"
            )
        signers = {k.keyid: k for k in self.signers("root", old)}
        signers.update({k.keyid: k for k in self.signers("root", new)})
        for label, root in (("current", old), ("new", new)):
            have = sum(1 for k in root.roles["root"].keyids if k in signers)
            if have < root.roles["root"].threshold:
                raise Forbidden(
                    f"the {label} root role needs {root.roles['root'].threshold} keys; "
                    f"{have} are on this machine"
                )
        files = root_files(new, signers.values())
        path = f"root/{new.version}.json"
        try:
            old.verify_successor(files[path], files[path + ".sig"])
        except ProtocolError as e:
            raise Unprocessable(f"root v{new.version} would not verify: {e}") from e
        self._store_root(new, files)
        return new

    def rotate_key(self, role: str, who: str = "operator") -> Root:
        """Replace every key of ``role`` with one new key, in a new root version.

        A rotated ``delta`` role retires the old key from each list's next version on
        (``first_version``, PROTOCOL.md §12 item 7): nothing needs publishing for that,
        and every published version still verifies under the root it names. Every
        checkpoint is re-signed at once (with rotated ``checkpoint``/``timestamp`` keys
        if those rotated), so nodes that accept the new root accept the checkpoints.
        """
        if role not in ROLE_NAMES:
            raise InvalidRequest(f"unknown role {role!r}; roles are {', '.join(ROLE_NAMES)}")
        old = self.root()
        with self.db.atomic():
            count = len(old.roles[role].keyids) if role == "root" else 1
            new_keys = [self._new_key(role) for _ in range(count)]
            keys = {k: v for k, v in old.keys.items() if k not in old.roles[role].keyids}
            keys.update({k.keyid: k.public for k in new_keys})
            roles = dict(old.roles)
            roles[role] = Role(tuple(k.keyid for k in new_keys), old.roles[role].threshold)
            new = self._publish_root(self._next_root(keys=keys, roles=roles))
            for keyid in old.roles[role].keyids:
                self.db.execute(
                    "UPDATE keys SET retired = ? WHERE keyid = ?", [format_time(self.now()), keyid]
                )
            self._refresh_all(new)
            self._log("key.rotate", who, {"role": role, "root_version": new.version})
        return new

    def keys(self) -> list[dict[str, Any]]:
        root = self.root()
        out = []
        for row in self.db.query("SELECT * FROM keys ORDER BY created, keyid"):
            roles = [r for r, role in root.roles.items() if row["keyid"] in role.keyids]
            out.append(
                {
                    "keyid": row["keyid"],
                    "role": row["role"],
                    "in_root": bool(roles),
                    "created": row["created"],
                    "retired": row["retired"],
                    "private_key_present": (self.home / row["path"]).exists(),
                    "expires": format_time(root.expires) if roles else None,
                }
            )
        return out

    # -- lists ----------------------------------------------------------------------

    def create_list(
        self,
        list_id: str,
        hash_type: str,
        *,
        max_distance: int | None = None,
        label: str = "",
        snapshot_every: int | None = None,
        public: bool = False,
        who: str = "operator",
    ) -> Root:
        """Declare a new list in a new root version."""
        try:
            validate_list_id(list_id)
            kind = HASH_TYPES.get(hash_type)
            if kind is None:
                raise InvalidRequest(
                    f"unknown hash type {hash_type!r}; one of {sorted(HASH_TYPES)}"
                )
            spec = ListSpec(
                list_id,
                hash_type,
                kind.default_max_distance if max_distance is None else max_distance,
                label=label,
                snapshot_every=snapshot_every or self.config.snapshot_every,
            )
        except ProtocolError as e:
            raise InvalidRequest(str(e)) from e
        old = self.root()
        if list_id in old.lists:
            raise Conflict(f"list {list_id} already exists")
        with self.db.atomic():
            new = self._publish_root(self._next_root(lists={**old.lists, list_id: spec}))
            self.db.table("lists").insert(
                {
                    "id": list_id,
                    "hash_type": hash_type,
                    "public": int(public),
                    "version": 0,
                    "compact": "[]",
                    "last_leaf": GENESIS_PREV,
                    "created": format_time(self.now()),
                }
            )
            # A declared list has a checkpoint from the start (PROTOCOL.md §11.1): size 0,
            # the empty tree. Without it, a copy that drops a list's checkpoint would look
            # like a list with nothing published yet, and hide the list from an auditor.
            self._refresh_one(list_id, self._publisher(new))
            self._log("list.create", who, {"list": list_id, "type": hash_type, "root": new.version})
        return new

    def spec(self, list_id: str) -> ListSpec:
        try:
            validate_list_id(list_id)
        except ProtocolError as e:
            raise InvalidRequest(str(e)) from e
        spec = self.root().lists.get(list_id)
        if spec is None:
            raise NotFound(f"no list {list_id!r}")
        return spec

    def list_row(self, list_id: str) -> dict[str, Any]:
        self.spec(list_id)
        row = self._one("SELECT * FROM lists WHERE id = ?", [list_id])
        if row is None:
            raise NotFound(f"no list {list_id!r}")
        return row

    def state(self, list_id: str) -> ListState:
        """The list's current state, from the cache or rebuilt from the entries."""
        row = self.list_row(list_id)
        cached = self._states.get(list_id)
        if cached is not None and cached.version == row["version"]:
            return cached.state
        width = HASH_TYPES[row["hash_type"]].length
        data = b"".join(
            r[0]
            for r in self.db.execute(
                "SELECT hash FROM entries WHERE list_id = ? AND removed_version IS NULL "
                "ORDER BY hash",
                [list_id],
            ).fetchall()
        )
        state = ListState(width, data)
        self._states[list_id] = _Cached(row["version"], state)
        return state

    def head(self, list_id: str) -> ListHead:
        row = self.list_row(list_id)
        hashes = [bytes.fromhex(h) for h in json.loads(row["compact"])]
        return ListHead(
            list_id=list_id,
            state=self.state(list_id),
            version=row["version"],
            compact=CompactRange(row["version"], hashes),
            last_leaf=row["last_leaf"],
            last_created=parse_time(row["last_created"], "list") if row["last_created"] else None,
        )

    # -- staging --------------------------------------------------------------------

    def stage(
        self,
        list_id: str,
        *,
        adds: Iterable[Intake] = (),
        removes: Iterable[bytes] = (),
        who: str = "operator",
    ) -> int:
        """Stage changes for the next publish; returns how many rows were staged.

        Every addition must be a hash of the list's width that is not degenerate
        (``protocol.hashes.degenerate_reason``), however it came in: intake, a
        reviewed case, a script. Removals are checked for width only.

        Raises:
            InvalidRequest: a hash of the wrong width or a degenerate addition;
                nothing is staged.
        """
        spec = self.spec(list_id)
        width = HASH_TYPES[spec.hash_type].length
        created = format_time(self.now())
        rows: list[dict[str, Any]] = [
            {
                "list_id": list_id,
                "op": "add",
                "hash": item.hash,
                "quality": item.quality,
                "source": item.source,
                "category": item.category,
                "submission_id": item.submission_id,
                "who": who,
                "created": created,
            }
            for item in adds
        ]
        rows += [
            {"list_id": list_id, "op": "remove", "hash": h, "who": who, "created": created}
            for h in removes
        ]
        for row in rows:
            value = row["hash"]
            if not isinstance(value, bytes) or len(value) != width:
                raise InvalidRequest(f"a {spec.hash_type} hash is {width} bytes")
            # Additions only: a degenerate entry listed before the rule can still be removed.
            reason = degenerate_reason(spec.hash_type, value) if row["op"] == "add" else None
            if reason is not None:
                raise InvalidRequest(reason)
        if not rows:
            return 0
        columns = ("list_id", "op", "hash", "quality", "source", "category", "submission_id")
        with self.db.atomic():
            self.db.conn.executemany(
                "INSERT INTO staged (list_id, op, hash, quality, source, category, "
                "submission_id, who, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((*(row.get(c) for c in columns), who, created) for row in rows),
            )
            self._log("stage", who, {"list": list_id, "rows": len(rows)})
        return len(rows)

    def staged_count(self, list_id: str) -> int:
        row = self._one("SELECT count(*) AS n FROM staged WHERE list_id = ?", [list_id])
        return int(row["n"]) if row else 0

    # -- publishing -----------------------------------------------------------------

    def _fault(self, step: str) -> None:
        if self.fault_hook is not None:
            self.fault_hook(step)

    def _put_file(self, path: str, data: bytes, *, immutable: bool = True) -> None:
        existing = self._one("SELECT bytes, immutable FROM files WHERE path = ?", [path])
        if existing is not None:
            if existing["immutable"]:
                if existing["bytes"] != data:
                    raise Conflict(f"{path} is published and immutable; refusing other bytes")
                return
            self.db.execute(
                "UPDATE files SET bytes = ?, sha256 = ?, created = ? WHERE path = ?",
                [data, hashlib.sha256(data).hexdigest(), format_time(self.now()), path],
            )
            return
        self.db.table("files").insert(
            {
                "path": path,
                "bytes": data,
                "sha256": hashlib.sha256(data).hexdigest(),
                "immutable": int(immutable),
                "created": format_time(self.now()),
            }
        )

    def publish(
        self, list_ids: Sequence[str] | None = None, who: str = "operator"
    ) -> list[dict[str, Any]]:
        """Publish the staged changes of each list (all lists with staged rows by default)."""
        if list_ids is None:
            list_ids = [r["list_id"] for r in self.db.query("SELECT DISTINCT list_id FROM staged")]
        results = []
        for list_id in sorted(set(list_ids)):
            result = self._publish_one(list_id, who)
            if result is not None:
                results.append(result)
        return results

    def _publish_one(self, list_id: str, who: str) -> dict[str, Any] | None:
        """Publish ``list_id``'s staged changes as one version, in one transaction.

        What it builds on (root, head, staged rows) is read inside the transaction,
        which takes the write lock first (``HubDatabase``): a publish that waited for
        another process's publish builds on that one's version, not on what it read
        before waiting.
        """
        with self.db.atomic():
            return self._publish_locked(list_id, who)

    def _publish_locked(self, list_id: str, who: str) -> dict[str, Any] | None:
        root = self.root()
        spec = self.spec(list_id)
        staged = list(
            self.db.query("SELECT * FROM staged WHERE list_id = ? ORDER BY id", [list_id])
        )
        if not staged:
            return None
        head = self.head(list_id)
        # The last staged operation on a hash wins; only real changes are published.
        final: dict[bytes, dict[str, Any]] = {}
        for row in staged:
            final[row["hash"]] = row
        candidates = list(final)
        present = dict(zip(candidates, head.state.contains_many(candidates), strict=True))
        adds = [h for h in candidates if final[h]["op"] == "add" and not present[h]]
        removes = [h for h in candidates if final[h]["op"] == "remove" and present[h]]
        max_id = staged[-1]["id"]
        now = self._signing_time(list_id, root)
        with self.db.atomic():
            if not adds and not removes:
                self.db.execute(
                    "DELETE FROM staged WHERE list_id = ? AND id <= ?", [list_id, max_id]
                )
                return None
            publisher = Publisher(
                root, {r: self.signers(r, root) for r in ROLE_NAMES if r != "root"}
            )
            publication = publisher.publish(head, removes=removes, adds=adds, now=now)
            header = publication.header
            for step, (path, data) in enumerate(publication.files.items()):
                self._fault(f"file {step}: {path}")
                self._put_file(path, data, immutable=not path.endswith("/checkpoint"))
            self._fault("head")
            new = publication.head
            self.db.execute(
                "UPDATE lists SET version = ?, compact = ?, last_leaf = ?, last_created = ? "
                "WHERE id = ?",
                [
                    new.version,
                    json.dumps([h.hex() for h in new.compact.hashes]),
                    new.last_leaf,
                    format_time(new.last_created) if new.last_created else None,
                    list_id,
                ],
            )
            self.db.table("log_roots").insert(
                {
                    "list_id": list_id,
                    "size": new.version,
                    "root": new.compact.root(),
                    "result_count": header.result_state.count,
                    "result_sha256": header.result_state.sha256,
                }
            )
            self._fault("entries")
            self.db.conn.executemany(
                "UPDATE entries SET removed_version = ? "
                "WHERE list_id = ? AND hash = ? AND removed_version IS NULL",
                [(new.version, list_id, h) for h in removes],
            )
            self.db.conn.executemany(
                "INSERT INTO entries (list_id, hash, added_version, quality, source, category, "
                "submission_id, who, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        list_id,
                        h,
                        new.version,
                        final[h]["quality"],
                        final[h]["source"],
                        final[h]["category"],
                        final[h]["submission_id"],
                        final[h]["who"],
                        final[h]["created"],
                    )
                    for h in sorted(adds)  # index order: appends, not random B-tree inserts
                ),
            )
            self._fault("staged")
            self.db.execute("DELETE FROM staged WHERE list_id = ? AND id <= ?", [list_id, max_id])
            self._log(
                "publish",
                who,
                {
                    "list": list_id,
                    "version": new.version,
                    "adds": len(adds),
                    "removes": len(removes),
                },
            )
            self._fault("commit")
        self._states[list_id] = _Cached(new.version, new.state)
        return {
            "list": list_id,
            "version": new.version,
            "adds": len(adds),
            "removes": len(removes),
            "count": header.result_state.count,
            "state_sha256": header.result_state.sha256,
            "snapshot": any("/snapshot/" in p for p in publication.files),
            "hash_type": spec.hash_type,
        }

    def refresh_checkpoints(self, who: str = "scheduler") -> int:
        """Re-issue every published checkpoint with a fresh timestamp co-signature."""
        with self.db.atomic():
            n = self._refresh_all(self.root())
            if n:
                self._log("checkpoint.refresh", who, {"lists": n})
        return n

    def _publisher(self, root: Root) -> Publisher:
        return Publisher(root, {r: self.signers(r, root) for r in ROLE_NAMES if r != "root"})

    def _refresh_all(self, root: Root) -> int:
        """Re-issue the checkpoint of every list ``root`` declares, those of size 0 too.

        A list declared before hubs published size-0 checkpoints gets its first one
        here, at the first refresh after an upgrade (PROTOCOL.md §11.1).
        """
        publisher = self._publisher(root)
        n = 0
        for row in self.db.query("SELECT id FROM lists ORDER BY id"):
            if row["id"] in root.lists:
                self._refresh_one(row["id"], publisher)
                n += 1
        return n

    def _refresh_one(self, list_id: str, publisher: Publisher) -> None:
        """Sign ``list_id``'s current checkpoint afresh (its head; size 0 before v1)."""
        self._put_file(
            f"lists/{list_id}/checkpoint",
            publisher.refresh(self.head(list_id), self._signing_time(list_id, publisher.root)),
            immutable=False,
        )

    def _signing_time(self, list_id: str, root: Root) -> datetime:
        """The time to co-sign ``list_id``'s next checkpoint: now, never before the last.

        Nodes refuse a checkpoint co-signed before the one they trust (a rollback of
        time). If this machine's clock went back, signing with it would stall every
        node until the clock passed the old time again; the last co-signature's time
        is used instead, and the jump is logged.
        """
        now = self.now()
        found = self.file(f"lists/{list_id}/checkpoint")
        if found is None:
            return now
        try:
            note = SignedCheckpoint.from_bytes(found[0])
            times = [
                cosignature_time(sig) for sig in note.signatures if sig.name == root.timestamp_name
            ]
        except ProtocolError:
            return now
        if not times:
            return now
        last = max(times)
        if last > now:
            log.warning(
                "the clock reads %s, before %s's last co-signature at %s: signing at %s",
                format_time(now),
                list_id,
                format_time(last),
                format_time(last),
            )
            return last
        return now

    # -- published files --------------------------------------------------------------

    def file(self, path: str) -> tuple[bytes, bool] | None:
        """The published file at ``path`` and whether it is immutable, or None."""
        row = self._one("SELECT bytes, immutable FROM files WHERE path = ?", [path])
        return (bytes(row["bytes"]), bool(row["immutable"])) if row else None

    def list_is_public(self, list_id: str) -> bool:
        row = self._one("SELECT public FROM lists WHERE id = ?", [list_id])
        return bool(row and row["public"])

    def export(self, target: Path, *, public_only: bool = False) -> int:
        """Write the published tree under ``target`` in publication order; never rewrite.

        ``public_only`` leaves out the files of lists that are not public: a mirror
        serves without tokens, so one reachable from outside must not hold them.
        The root files are always written (every list's nodes need them).
        """
        private = (
            {r["id"] for r in self.db.query("SELECT id FROM lists WHERE public = 0")}
            if public_only
            else set()
        )
        n = 0
        rows = self.db.query(
            "SELECT path, bytes, immutable FROM files ORDER BY immutable DESC, rowid"
        )
        for row in rows:
            parts = row["path"].split("/")
            if parts[0] == "lists" and len(parts) > 1 and parts[1] in private:
                continue
            path = target / row["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            if row["immutable"] and path.exists():
                if path.read_bytes() != row["bytes"]:
                    raise Conflict(f"{path} exists with other bytes; refusing to overwrite")
                continue
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(row["bytes"])
            tmp.replace(path)
            n += 1
        return n

    # -- nodes and tokens -------------------------------------------------------------

    def enrol_node(
        self, node_id: str, public_key: PublicKey, lists: Sequence[str], who: str = "operator"
    ) -> str:
        """Enrol a platform's node; returns its bearer token (shown once, stored hashed)."""
        if not NODE_ID_PATTERN.fullmatch(node_id) or ".." in node_id:
            raise InvalidRequest(f"invalid node id {node_id!r}: [a-z0-9][a-z0-9._-]{{0,63}}")
        for list_id in lists:
            self.spec(list_id)
        if self._one("SELECT id FROM nodes WHERE id = ?", [node_id]):
            raise Conflict(f"node {node_id} is already enrolled")
        token = "hhn_" + secrets.token_urlsafe(32)
        with self.db.atomic():
            self.db.table("nodes").insert(
                {
                    "id": node_id,
                    "public_key": public_key.raw.hex(),
                    "lists": json.dumps(sorted(set(lists))),
                    "created": format_time(self.now()),
                }
            )
            self._insert_token(token, "node", "node", node_id)
            self._log("node.enrol", who, {"node": node_id, "lists": sorted(set(lists))})
        return token

    def revoke_node(self, node_id: str, who: str = "operator") -> None:
        if not self._one("SELECT id FROM nodes WHERE id = ? AND revoked IS NULL", [node_id]):
            raise NotFound(f"no enrolled node {node_id!r}")
        stamp = format_time(self.now())
        with self.db.atomic():
            self.db.execute("UPDATE nodes SET revoked = ? WHERE id = ?", [stamp, node_id])
            self.db.execute(
                "UPDATE tokens SET revoked = ? WHERE kind = 'node' AND subject = ?",
                [stamp, node_id],
            )
            self._log("node.revoke", who, {"node": node_id})

    def nodes(self) -> list[dict[str, Any]]:
        return [
            {
                "id": r["id"],
                "keyid": PublicKey(bytes.fromhex(r["public_key"])).keyid,
                "public_key": r["public_key"],
                "lists": json.loads(r["lists"]),
                "created": r["created"],
                "revoked": r["revoked"],
                "last_seq": r["last_seq"],
            }
            for r in self.db.query("SELECT * FROM nodes ORDER BY id")
        ]

    def create_operator_token(self, role: str, subject: str, who: str = "operator") -> str:
        if role not in OPERATOR_ROLES:
            raise InvalidRequest(f"unknown operator role {role!r}; one of {OPERATOR_ROLES}")
        token = "hho_" + secrets.token_urlsafe(32)
        with self.db.atomic():
            self._insert_token(token, "operator", role, subject)
            self._log("token.create", who, {"role": role, "subject": subject})
        return token

    def operator_tokens(self) -> list[dict[str, Any]]:
        """Operator tokens by holder and role (never the tokens themselves)."""
        return [
            {
                "name": r["subject"],
                "role": r["role"],
                "created": r["created"],
                "revoked": r["revoked"],
                "fingerprint": r["hash"][:12],
            }
            for r in self.db.query(
                "SELECT * FROM tokens WHERE kind = 'operator' ORDER BY created, subject"
            )
        ]

    def revoke_operator_tokens(self, name: str, who: str = "operator") -> int:
        """Revoke every live operator token held by ``name``; returns how many."""
        with self.db.atomic():
            count = self.db.execute(
                "UPDATE tokens SET revoked = ? "
                "WHERE kind = 'operator' AND subject = ? AND revoked IS NULL",
                [format_time(self.now()), name],
            ).rowcount
            if count == 0:
                raise NotFound(f"no live operator token for {name!r}")
            self._log("token.revoke", who, {"name": name, "tokens": count})
        return int(count)

    def _insert_token(self, token: str, kind: str, role: str, subject: str) -> None:
        self.db.table("tokens").insert(
            {
                "hash": _hash_token(token),
                "kind": kind,
                "role": role,
                "subject": subject,
                "created": format_time(self.now()),
            }
        )

    def authenticate(self, token: str) -> Principal:
        """Resolve a bearer token; unknown or revoked tokens are ``Unauthorized``."""
        digest = _hash_token(token)
        row = self._one("SELECT * FROM tokens WHERE hash = ? AND revoked IS NULL", [digest])
        # The lookup is by a one-way hash, so timing reveals nothing about stored tokens;
        # compare again in constant time anyway, as defence in depth.
        if row is None or not hmac.compare_digest(row["hash"], digest):
            raise Unauthorized("unknown or revoked token")
        if row["kind"] == "node":
            node = self._one("SELECT lists, revoked FROM nodes WHERE id = ?", [row["subject"]])
            if node is None or node["revoked"]:
                raise Unauthorized("node is revoked")
            return Principal("node", "node", row["subject"], frozenset(json.loads(node["lists"])))
        return Principal("operator", row["role"], row["subject"])

    def may_read_list(self, principal: Principal | None, list_id: str) -> bool:
        if self.list_is_public(list_id):
            return True
        if principal is None:
            return False
        if principal.kind == "operator":
            return True
        return list_id in principal.lists

    # -- acks -------------------------------------------------------------------------

    def receive_ack(self, principal: Principal, data: bytes, sig: bytes) -> AckReceipt:
        """Verify and store a node's signed ack (PROTOCOL.md §10.5).

        Order: the signature and co-signature by the enrolled key; the ack names the
        authenticated node and a list it was granted; ``seq`` strictly increases
        (the same ``seq`` with the same bytes is an idempotent retry); the applied
        version exists and its root and state match what the hub published —
        otherwise the ack is stored as evidence of a split view and refused.
        """
        if principal.kind != "node":
            raise Forbidden("acks are sent with a node token")
        node = self._one("SELECT * FROM nodes WHERE id = ?", [principal.subject])
        if node is None or node["revoked"]:
            raise Unauthorized("node is not enrolled")
        key = PublicKey(bytes.fromhex(node["public_key"]))
        root = self.root()
        try:
            ack = verify_ack(data, sig, node_key=key, origin_prefix=root.name)
        except ProtocolError as e:
            # The error class is the spec's name for the rule broken (PROTOCOL.md §10.4),
            # so a node's operator can find it without the hub's log.
            raise Unprocessable(f"ack refused ({type(e).__name__}): {e}") from e
        if ack.node != principal.subject:
            raise Forbidden(f"ack names node {ack.node!r}, token is for {principal.subject!r}")
        if ack.list_id not in principal.lists:
            raise Forbidden(f"node {ack.node} is not granted list {ack.list_id}")
        previous = self._one(
            "SELECT bytes FROM acks WHERE node = ? AND seq = ?", [ack.node, ack.seq]
        )
        if previous is not None:
            if bytes(previous["bytes"]) == data:
                return AckReceipt(ack.node, ack.list_id, ack.seq, duplicate=True)
            raise SeqConflict(
                f"seq {ack.seq} was already used by node {ack.node} with other bytes; "
                f"its last seq is {node['last_seq']}",
                last_seq=node["last_seq"],
            )
        if ack.seq <= node["last_seq"]:
            raise SeqConflict(
                f"seq {ack.seq} is not above node {ack.node}'s last seq {node['last_seq']}",
                last_seq=node["last_seq"],
            )
        log = self._one(
            "SELECT root, result_count, result_sha256 FROM log_roots "
            "WHERE list_id = ? AND size = ?",
            [ack.list_id, ack.applied.version],
        )
        if log is None:
            # A node co-signing a version this hub never published was shown another
            # log (or a longer fork of this one): the ack is evidence of that.
            evidence = self._ack_evidence(
                "unpublished_version",
                ack,
                {
                    "version": ack.applied.version,
                    "cosigned_root": ack.applied.checkpoint_root.hex(),
                },
                data,
                sig,
            )
            raise Unprocessable(
                f"list {ack.list_id} has no published version {ack.applied.version}; "
                f"the ack is {self._evidence_note(evidence, ack.node)}"
            )
        mismatch = []
        if bytes(log["root"]) != ack.applied.checkpoint_root:
            mismatch.append("checkpoint root")
        if (log["result_count"], log["result_sha256"]) != (
            ack.applied.state.count,
            ack.applied.state.sha256,
        ):
            mismatch.append("state")
        if mismatch:
            evidence = self._ack_evidence(
                "split_view" if "checkpoint root" in mismatch else "state_mismatch",
                ack,
                {
                    "version": ack.applied.version,
                    "mismatch": mismatch,
                    "published_root": bytes(log["root"]).hex(),
                    "cosigned_root": ack.applied.checkpoint_root.hex(),
                },
                data,
                sig,
            )
            raise Unprocessable(
                f"ack from {ack.node} co-signs a {' and '.join(mismatch)} the hub never published "
                f"for {ack.list_id} v{ack.applied.version}; "
                f"{self._evidence_note(evidence, ack.node)}"
            )
        self._check_hash_keys(ack)
        with self._relaxed_sync(), self.db.atomic():
            received = format_time(self.now())
            self.db.execute(
                "INSERT INTO acks (node, list_id, seq, bytes, sig, received, sent, version, "
                "checkpoint_root, state_count, state_sha256, counts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    ack.node,
                    ack.list_id,
                    ack.seq,
                    data,
                    sig,
                    received,
                    format_time(ack.sent),
                    ack.applied.version,
                    ack.applied.checkpoint_root,
                    ack.applied.state.count,
                    ack.applied.state.sha256,
                    json.dumps(ack.counts.to_dict(), sort_keys=True),
                ],
            )
            ack_id = self.db.execute("SELECT last_insert_rowid()").fetchone()[0]
            self.db.execute("UPDATE nodes SET last_seq = ? WHERE id = ?", [ack.seq, ack.node])
            held_back = self._count(ack.node, ack.list_id, counter_rows(ack.counts))
            withheld = held_back.pop("", {})
            self._count_point(ack.list_id, received)
            evidence_id = None
            if withheld or held_back:
                detail: dict[str, Any] = {
                    "ack": ack_id,
                    "seq": ack.seq,
                    "withheld": withheld,
                    "max_counter_growth": self.config.max_counter_growth,
                    "counter_window_seconds": self.config.counter_window_seconds,
                }
                if held_back:
                    detail["withheld_hashes"] = held_back
                evidence_id = self._store_evidence(
                    "withheld_counts",
                    ack.node,
                    ack.list_id,
                    detail,
                    digest=hashlib.sha256(data).hexdigest(),
                )
        return AckReceipt(
            ack.node, ack.list_id, ack.seq, evidence_id=evidence_id, withheld=withheld
        )

    def _check_hash_keys(self, ack: Ack) -> None:
        """Refuse per-hash counters for anything but hashes of the list (PROTOCOL.md §10.5).

        A per-hash key must be a hash of the list's width that the list held at the
        acked version or before it (a hash retracted since still collects the false
        positives that got it retracted). Looked up in ``entries`` by (list, hash).

        Raises:
            Unprocessable: a key of another width, or one the list never held.
        """
        keys = sorted(ack.counts.hashes)
        if not keys:
            return
        spec = self.spec(ack.list_id)
        width = HASH_TYPES[spec.hash_type].length
        wrong = [k for k in keys if len(k) != 2 * width]
        if wrong:
            raise Unprocessable(
                f"ack refused: per-hash key {wrong[0]} is not a {spec.hash_type} hash "
                f"({2 * width} hex digits) of list {ack.list_id}; "
                f"{len(wrong)} of {len(keys)} keys are of another width"
            )
        version = ack.applied.version
        held: set[bytes] = set()
        for start in range(0, len(keys), _KEY_CHUNK):
            chunk = [bytes.fromhex(k) for k in keys[start : start + _KEY_CHUNK]]
            marks = ", ".join("?" * len(chunk))  # placeholders only: the keys are parameters
            held.update(
                bytes(r[0])
                for r in self.db.execute(
                    "SELECT DISTINCT hash FROM entries WHERE list_id = ? "  # noqa: S608
                    f"AND added_version <= ? AND hash IN ({marks})",
                    [ack.list_id, version, *chunk],
                ).fetchall()
            )
        missing = [k for k in keys if bytes.fromhex(k) not in held]
        if missing:
            raise Unprocessable(
                f"ack refused: per-hash key {missing[0]} is not a hash list {ack.list_id} "
                f"held at or before version {version} ({len(missing)} of {len(keys)} keys "
                "are not); per-hash counters are for listed hashes only"
            )

    @contextlib.contextmanager
    def _relaxed_sync(self) -> Iterator[None]:
        """Commit without waiting for the disk (SQLite ``synchronous=NORMAL`` in WAL mode).

        Only for storing acks: after a power cut the last confirmed acks may be lost,
        but the database stays consistent and the next ack from each node carries its
        cumulative totals again (ADR 0010). Everything that publishes, enrols or
        changes keys keeps ``synchronous=FULL``: a version served and then lost could
        be re-published differently, which nodes would rightly call equivocation.
        """
        if self._relaxed_depth == 0 and not self.db.conn.in_transaction:
            self.db.execute("PRAGMA synchronous=NORMAL")
        self._relaxed_depth += 1
        try:
            yield
        finally:
            self._relaxed_depth -= 1
            if self._relaxed_depth == 0 and not self.db.conn.in_transaction:
                self.db.execute("PRAGMA synchronous=FULL")

    def receive_acks(
        self, items: Sequence[tuple[str, bytes, bytes, Exception | None]]
    ) -> list[AckReceipt | Exception]:
        """Authenticate and receive a batch of acks in one transaction.

        Each item is ``(bearer token, ack bytes, signature sidecar, request error)``;
        a request error (a bad body found before the token could be checked) is
        reported only after the token passed, so the order of answers is the same as
        for one ack. Each ack is all or nothing on its own (a savepoint); the batch
        commits once, which is what lets a busy hub keep up with many nodes.
        """
        out: list[AckReceipt | Exception] = []
        with self._relaxed_sync(), self.db.atomic():
            for token, data, sig, request_error in items:
                try:
                    principal = self.authenticate(token)
                    if principal.kind != "node":
                        raise Forbidden("acks are sent with a node token, not an operator token")
                    if request_error is not None:
                        out.append(request_error)
                        continue
                    out.append(self.receive_ack(principal, data, sig))
                except HubError as e:
                    out.append(e)
        return out

    def _count(
        self, node: str, list_id: str, rows: Sequence[tuple[str, str, int]]
    ) -> dict[str, dict[str, int]]:
        """Take one ack's cumulative counters ``(hash or '', name, value)`` into the ledger.

        Each counter's growth since the node's last value is what this ack adds
        (``protocol.counter_growth``: the difference, or the whole value after a
        reset). Everything is bounded (ADR 0010):

        - totals, and their sums over nodes in ``counter_totals``, are clamped to
          ``MAX_TOTAL`` (``protocol.clamp_total``), so SQLite's 64-bit arithmetic
          never overflows;
        - each of one node's counters, of the list (hash '') or of one hash, may grow
          by ``max_counter_growth`` per ``counter_window_seconds``: a larger growth
          is withheld, not counted, and returned to be kept as evidence.

        Returns the withheld growth of this ack, ``{hash or '': {name: amount}}``
        (empty when none).
        """
        keys = sorted({hex_hash for hex_hash, _, _ in rows})
        existing: dict[tuple[str, str], tuple[int, int, int, int, int]] = {}
        for r in self.db.execute(
            "SELECT hash, name, last, total, withheld, window_start, window_growth "
            "FROM counters WHERE node = ? AND list_id = ? "
            "AND hash IN (SELECT value FROM json_each(?))",
            [node, list_id, json.dumps(keys)],
        ).fetchall():
            existing[(r[0], r[1])] = (r[2], r[3], r[4], r[5], r[6])
        now = int(self.now().timestamp())
        window = max(1, self.config.counter_window_seconds)
        cap = max(0, self.config.max_counter_growth)
        updates = []
        aggregates = []
        withheld: dict[str, dict[str, int]] = {}
        for hex_hash, name, value in rows:
            last, total, held, window_start, growth = existing.get(
                (hex_hash, name), (0, 0, 0, 0, 0)
            )
            step = counter_growth(last, value)
            counted = step
            if step > 0:
                if now - window_start >= window:
                    window_start, growth = now, 0
                if growth + step > cap:
                    counted = 0
                    held = clamp_total(held + step)
                    withheld.setdefault(hex_hash, {})[name] = step
                else:
                    growth += step
            new_total = clamp_total(total + counted)
            updates.append(
                (node, list_id, hex_hash, name, value, new_total, held, window_start, growth)
            )
            if new_total > total or (hex_hash, name) not in existing:
                # A counter reported as 0 has a row too: the counts answer names it.
                reported = 1 if total == 0 and new_total > 0 else 0
                aggregates.append((list_id, hex_hash, name, new_total - total, reported, MAX_TOTAL))
        self.db.conn.executemany(
            "INSERT INTO counters (node, list_id, hash, name, last, total, withheld, "
            "window_start, window_growth) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (node, list_id, hash, name) DO UPDATE SET last = excluded.last, "
            "total = excluded.total, withheld = excluded.withheld, "
            "window_start = excluded.window_start, window_growth = excluded.window_growth",
            updates,
        )
        self.db.conn.executemany(
            "INSERT INTO counter_totals (list_id, hash, name, total, nodes) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (list_id, hash, name) DO UPDATE SET "
            "total = min(?, total + excluded.total), nodes = nodes + excluded.nodes",
            aggregates,
        )
        return withheld

    def _count_point(self, list_id: str, received: str) -> None:
        """Keep the list's totals after this ack: one point of the dashboard's chart."""
        totals = self._list_totals(list_id)
        self.db.execute(
            "INSERT INTO count_points (list_id, received, checked, matched, actioned, blocked, "
            "false_positive) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [list_id, received, *(totals[name] for name in COUNTER_NAMES)],
        )

    def _list_totals(self, list_id: str) -> dict[str, int]:
        totals = dict.fromkeys(COUNTER_NAMES, 0)
        for r in self.db.query(
            "SELECT name, total FROM counter_totals WHERE list_id = ? AND hash = ''", [list_id]
        ):
            if r["name"] in totals:
                totals[r["name"]] = r["total"]
        return totals

    # -- status -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What the operator sees: lists, nodes per list with lag and counts, flagged hashes.

        Read from maintained tables (``counter_totals``, each node's list counters):
        the work does not grow with the number of acks or per-hash rows, and every
        number is bounded (ADR 0010), so no node can make it fail. Per node,
        ``withheld`` is the growth not counted as an implausible jump.
        """
        root = self.root()
        out: dict[str, Any] = {
            "hub": root.name,
            "root_version": root.version,
            "root_expires": format_time(root.expires),
            "lists": [],
        }
        nodes = {n["id"]: n for n in self.nodes()}
        for row in self.db.query("SELECT * FROM lists ORDER BY id"):
            list_id = row["id"]
            spec = root.lists[list_id]
            count_row = self._one(
                "SELECT count(*) AS n FROM entries WHERE list_id = ? AND removed_version IS NULL",
                [list_id],
            )
            entry: dict[str, Any] = {
                "id": list_id,
                "hash_type": spec.hash_type,
                "label": spec.label,
                "public": bool(row["public"]),
                "version": row["version"],
                "count": count_row["n"] if count_row else 0,
                "staged": self.staged_count(list_id),
                "nodes": [],
                "totals": self._list_totals(list_id),
                "flagged": [],
            }
            for node_id, node in nodes.items():
                if list_id not in node["lists"]:
                    continue
                last = self._one(
                    "SELECT version, received, seq FROM acks WHERE node = ? AND list_id = ? "
                    "ORDER BY seq DESC LIMIT 1",
                    [node_id, list_id],
                )
                counts, withheld = self._totals(node_id, list_id)
                entry["nodes"].append(
                    {
                        "node": node_id,
                        "revoked": node["revoked"],
                        "applied_version": last["version"] if last else None,
                        "lag": row["version"] - last["version"] if last else row["version"],
                        "last_ack": last["received"] if last else None,
                        "counts": counts,
                        "withheld": withheld,
                    }
                )
            entry["flagged"] = self.flagged_hashes(list_id)
            out["lists"].append(entry)
        return out

    def _totals(
        self, node: str, list_id: str, hex_hash: str = ""
    ) -> tuple[dict[str, int], dict[str, int]]:
        """A node's counted totals and withheld growth (only counters it withheld)."""
        counts: dict[str, int] = {}
        withheld: dict[str, int] = {}
        for r in self.db.query(
            "SELECT name, total, withheld FROM counters "
            "WHERE node = ? AND list_id = ? AND hash = ?",
            [node, list_id, hex_hash],
        ):
            counts[r["name"]] = r["total"]
            if r["withheld"]:
                withheld[r["name"]] = r["withheld"]
        return counts, withheld

    def hash_counts(self, list_id: str) -> dict[str, dict[str, int]]:
        """Per-hash cumulative counts for a list, summed over nodes (maintained, bounded)."""
        out: dict[str, dict[str, int]] = {}
        for hex_hash, name, total, _ in self._hash_rows(list_id):
            out.setdefault(hex_hash, {})[name] = total
        return out

    def hash_withheld(self, list_id: str) -> dict[str, dict[str, int]]:
        """Per-hash growth withheld as implausible jumps, summed over nodes (clamped)."""
        out: dict[str, dict[str, int]] = {}
        for hex_hash, name, held in self.db.execute(
            "SELECT hash, name, withheld FROM counters "
            "WHERE list_id = ? AND withheld > 0 AND hash != '' ORDER BY hash, name",
            [list_id],
        ).fetchall():
            counters = out.setdefault(hex_hash, {})
            counters[name] = clamp_total(counters.get(name, 0) + held)
        return out

    def _hash_rows(self, list_id: str) -> list[tuple[str, str, int, int]]:
        """``(hash, counter, total over nodes, nodes that reported it)`` of a list."""
        return [
            (r[0], r[1], r[2], r[3])
            for r in self.db.execute(
                "SELECT hash, name, total, nodes FROM counter_totals "
                "WHERE list_id = ? AND hash != '' ORDER BY hash, name",
                [list_id],
            ).fetchall()
        ]

    def flagged_hashes(self, list_id: str) -> list[dict[str, Any]]:
        """Hashes whose false-positive share or match count stands far out of line.

        Flagged when reviewers rejected at least 3 matches and at least a fifth of
        them (a bad hash), or when a hash matched at least 50 times and more than
        20 times the list's median per-hash matches (a collision-prone hash).
        Either rule must still hold without the ``flag_min_nodes - 1`` nodes that
        contributed most to it (their counts taken out), so no group of fewer
        nodes, however large its numbers, can get a listed hash flagged; ``nodes``
        says how many nodes reported its matches and its false positives.
        Only hashes still in the list are flagged: a retracted one needs no review.
        """
        counts: dict[str, dict[str, int]] = {}
        reporters: dict[str, dict[str, int]] = {}
        for hex_hash, name, total, reporting in self._hash_rows(list_id):
            counts.setdefault(hex_hash, {})[name] = total
            reporters.setdefault(hex_hash, {})[name] = reporting
        listed = self.state(list_id)
        enough = max(1, self.config.flag_min_nodes)
        matched = sorted(c.get("matched", 0) for c in counts.values())
        median = matched[len(matched) // 2] if matched else 0
        flagged: list[dict[str, Any]] = []
        for hex_hash, c in counts.items():
            m, fp = c.get("matched", 0), c.get("false_positive", 0)
            nodes = {
                "matched": reporters[hex_hash].get("matched", 0),
                "false_positive": reporters[hex_hash].get("false_positive", 0),
            }
            bad = fp >= 3 and fp * 5 >= max(m, 1) and nodes["false_positive"] >= enough
            outlying = m >= 50 and m > 20 * max(median, 1) and nodes["matched"] >= enough
            if not (bad or outlying) or bytes.fromhex(hex_hash) not in listed:
                continue
            shares = self._node_shares(list_id, hex_hash)
            reasons = []
            if bad:
                rest = _without_top(shares, "false_positive", enough - 1)
                if rest["false_positive"] >= 3 and rest["false_positive"] * 5 >= max(
                    rest["matched"], 1
                ):
                    reasons.append("false positives")
            if outlying:
                rest = _without_top(shares, "matched", enough - 1)
                if rest["matched"] >= 50 and rest["matched"] > 20 * max(median, 1):
                    reasons.append("matches far above the list's median")
            if reasons:
                flagged.append({"hash": hex_hash, "counts": c, "reasons": reasons, "nodes": nodes})
        flagged.sort(
            key=lambda f: (-f["counts"].get("false_positive", 0), -f["counts"].get("matched", 0))
        )
        return flagged

    def _node_shares(self, list_id: str, hex_hash: str) -> list[dict[str, int]]:
        """Each node's counted ``matched`` and ``false_positive`` for one hash."""
        shares: dict[str, dict[str, int]] = {}
        for node, name, total in self.db.execute(
            "SELECT node, name, total FROM counters WHERE list_id = ? AND hash = ? "
            "AND name IN ('matched', 'false_positive')",
            [list_id, hex_hash],
        ).fetchall():
            shares.setdefault(node, {"matched": 0, "false_positive": 0})[name] = total
        return list(shares.values())

    def actions(self, limit: int = 100) -> list[dict[str, Any]]:
        return [
            {**r, "detail": json.loads(r["detail"])}
            for r in self.db.query("SELECT * FROM actions ORDER BY id DESC LIMIT ?", [limit])
        ]

    def evidence(
        self,
        *,
        include_bytes: bool = False,
        node: str | None = None,
        limit: int | None = None,
        before: int | None = None,
        max_bytes: int | None = None,
    ) -> list[dict[str, Any]]:
        """Evidence rows; with ``include_bytes``, each one's exact ack bytes and signature.

        Without ``limit``, every row oldest first (the CLI); with it, a page newest
        first like ``acks``: rows whose ``id`` is below ``before``, at most ``limit``
        of them and, past the first, at most ``max_bytes`` of kept ack bytes.
        """
        rows: Iterable[dict[str, Any]]
        if limit is None:
            rows = self.db.query(
                "SELECT id, kind, node, list_id, detail, created, sha256, "
                "CASE WHEN :bytes THEN bytes END AS bytes, CASE WHEN :bytes THEN sig END AS sig "
                "FROM evidence WHERE (:node IS NULL OR node = :node) ORDER BY id",
                {"node": node, "bytes": include_bytes},
            )
        else:
            rows = self._page(
                "SELECT id, kind, node, list_id, detail, created, sha256, bytes, sig "
                "FROM evidence WHERE (:node IS NULL OR node = :node) "
                "AND (:before IS NULL OR id < :before) ORDER BY id DESC LIMIT :limit",
                {"node": node, "before": before, "limit": limit},
                max_bytes,
            )
        return [
            {
                "id": r["id"],
                "kind": r["kind"],
                "node": r["node"],
                "list": r["list_id"],
                "detail": json.loads(r["detail"]),
                "created": r["created"],
                "sha256": r["sha256"],
                **(
                    {
                        "bytes": None if r["bytes"] is None else bytes(r["bytes"]),
                        "sig": None if r["sig"] is None else bytes(r["sig"]),
                    }
                    if include_bytes
                    else {}
                ),
            }
            for r in rows
        ]

    def evidence_dropped(self) -> dict[str, dict[str, Any]]:
        """Per node, the distinct evidence items not kept past ``max_evidence_per_node``."""
        return {
            r["node"]: {"dropped": r["dropped"], "first": r["first"], "last": r["last"]}
            for r in self.db.query("SELECT * FROM evidence_dropped ORDER BY node")
        }

    def _page(
        self, sql: str, params: dict[str, Any], max_bytes: int | None
    ) -> list[dict[str, Any]]:
        """The rows of ``sql`` (newest first) up to ``max_bytes`` of ``bytes``, at least one.

        Rows are read one at a time, so a page of big acks stops at the budget
        without reading (or holding) the rest.
        """
        out: list[dict[str, Any]] = []
        size = 0
        for r in self.db.query(sql, params):
            size += len(r["bytes"] or b"") + len(r["sig"] or b"")
            if out and max_bytes is not None and size > max_bytes:
                break
            out.append(r)
        return out

    def older_rows(
        self, table: str, below: int, *, node: str | None = None, list_id: str | None = None
    ) -> bool:
        """Whether ``acks`` or ``evidence`` has a row (of ``node``, ``list_id``) below ``below``."""
        if table not in ("acks", "evidence"):
            raise ValueError(table)
        where = "" if list_id is None else "AND list_id = :list "
        row = self.db.execute(
            f"SELECT 1 FROM {table} WHERE id < :below "  # noqa: S608 (fixed names only)
            f"AND (:node IS NULL OR node = :node) {where}LIMIT 1",
            {"below": below, "node": node, "list": list_id},
        ).fetchone()
        return row is not None

    def acks(
        self,
        *,
        node: str | None = None,
        list_id: str | None = None,
        limit: int = 100,
        before: int | None = None,
        max_bytes: int | None = None,
    ) -> list[dict[str, Any]]:
        """Stored acks, newest first, with their exact bytes and signature sidecar.

        ``before`` pages back: only acks whose ``id`` is below it (the last ``id`` of
        the previous page), so an auditor can read every ack however many there are.
        ``max_bytes`` ends a page early (after its first ack) once the acks' bytes
        pass it, so a page of 1 MiB acks stays a few MiB.
        """
        rows = self._page(
            "SELECT id, node, list_id, seq, version, sent, received, bytes, sig FROM acks "
            "WHERE (:node IS NULL OR node = :node) "
            "AND (:list IS NULL OR list_id = :list) AND (:before IS NULL OR id < :before) "
            "ORDER BY id DESC LIMIT :limit",
            {"node": node, "list": list_id, "limit": limit, "before": before},
            max_bytes,
        )
        return [
            {
                "id": r["id"],
                "node": r["node"],
                "list": r["list_id"],
                "seq": r["seq"],
                "version": r["version"],
                "sent": r["sent"],
                "received": r["received"],
                "bytes": bytes(r["bytes"]),
                "sig": bytes(r["sig"]),
            }
            for r in rows
        ]

    # -- public submissions (cases) ---------------------------------------------------

    def submit_case(self, hash_type: str, value: bytes, quality: int | None) -> str:
        """Store one public submission and return its case number.

        Only what the submission page sends is kept: the hash, its type (``pdq`` for
        an image, ``md5`` for a video file) and, for PDQ, the quality the browser
        computed. The case number is 128 random bits (32 hex digits): it is the
        only key to the case, so it cannot be guessed or counted through.

        The quality is the browser's claim and cannot be checked here: a claim below
        ``MIN_PDQ_QUALITY`` is refused and the claim is kept for the reviewer, but no
        claim lets a degenerate hash in (``protocol.hashes.degenerate_reason`` is
        applied to every submission, whatever quality it carries).

        Raises:
            InvalidRequest: an unknown type, a hash of the wrong width, a degenerate
                hash, a PDQ hash without a quality or below ``MIN_PDQ_QUALITY`` (the
                intake rules).
        """
        kind = HASH_TYPES.get(hash_type)
        if hash_type not in SUBMISSION_TYPES or kind is None:
            raise InvalidRequest(f"a submission is one of {', '.join(SUBMISSION_TYPES)}")
        if len(value) != kind.length:
            raise InvalidRequest(f"a {hash_type} hash is {kind.length} bytes")
        # Whatever quality the browser claims: the hub cannot check a claim, only the hash.
        reason = degenerate_reason(hash_type, value)
        if reason is not None:
            raise InvalidRequest(reason)
        if hash_type == "pdq":
            if quality is None or not 0 <= quality <= 100:
                raise InvalidRequest("a PDQ submission carries its quality, 0 to 100")
            if quality < MIN_PDQ_QUALITY:
                raise InvalidRequest(
                    f"PDQ quality {quality} is below {MIN_PDQ_QUALITY}: the picture has too "
                    "little detail for its hash to match reliably"
                )
        elif quality is not None:
            raise InvalidRequest(f"a {hash_type} submission has no quality")
        case_number = secrets.token_hex(16)
        self.db.table("submissions").insert(
            {
                "case_number": case_number,
                "hash_type": hash_type,
                "hash": value,
                "quality": quality,
                "status": "received",
                "received": self.now().date().isoformat(),
            }
        )
        return case_number

    def case(self, case_number: str) -> dict[str, Any]:
        """One case as the person who submitted it may see it.

        ``published_version`` is the list version that first carried the hash, once
        an accepted case's hash is in a published list (looked up by hash, so a hash
        that was already listed, or published from another case, counts too);
        ``removed_version`` is set if it was taken out again.

        Raises:
            NotFound: no case has that number.
        """
        row = self._one("SELECT * FROM submissions WHERE case_number = ?", [case_number])
        if row is None:
            raise NotFound("no case has that number")
        out: dict[str, Any] = {
            "case": row["case_number"],
            "hash_type": row["hash_type"],
            "hash": bytes(row["hash"]).hex(),
            "quality": row["quality"],
            "status": row["status"],
            "received": row["received"],
            "reviewed": row["reviewed"],
            "list": row["list_id"],
            "published_version": None,
            "removed_version": None,
        }
        if row["status"] == "accepted" and row["list_id"] is not None:
            entry = self._one(
                "SELECT added_version, removed_version FROM entries WHERE list_id = ? "
                "AND hash = ? ORDER BY removed_version IS NOT NULL, id DESC LIMIT 1",
                [row["list_id"], row["hash"]],
            )
            if entry is not None:
                out["published_version"] = entry["added_version"]
                out["removed_version"] = entry["removed_version"]
        return out

    def cases(self, status: str = "received", limit: int = 100) -> list[dict[str, Any]]:
        """Cases with ``status``, oldest first: the operators' review queue by default."""
        if status not in CASE_STATUSES:
            raise InvalidRequest(f"a case status is one of {', '.join(CASE_STATUSES)}")
        return [
            {
                "case": r["case_number"],
                "hash_type": r["hash_type"],
                "hash": bytes(r["hash"]).hex(),
                "quality": r["quality"],
                "status": r["status"],
                "received": r["received"],
                "reviewed": r["reviewed"],
                "reviewer": r["reviewer"],
                "list": r["list_id"],
            }
            for r in self.db.query(
                "SELECT * FROM submissions WHERE status = ? ORDER BY rowid LIMIT ?",
                [status, limit],
            )
        ]

    def review_case(
        self, case_number: str, *, accept: bool, list_id: str | None = None, who: str = "operator"
    ) -> dict[str, Any]:
        """Accept a case into ``list_id``'s staged changes, or reject it; logged either way.

        An accepted hash is staged like any other addition, with provenance source
        ``submission`` and the case number as its submission id, and goes out with
        the list's next publish. A case is reviewed once.

        Raises:
            NotFound: no such case, or no such list.
            Conflict: the case was already reviewed.
            InvalidRequest: no list named for an accept, or a list of another hash type.
        """
        with self.db.atomic():
            row = self._one("SELECT * FROM submissions WHERE case_number = ?", [case_number])
            if row is None:
                raise NotFound("no case has that number")
            if row["status"] != "received":
                raise Conflict(f"case {case_number} was already {row['status']}")
            if accept:
                if list_id is None:
                    raise InvalidRequest("accepting a case needs the list to stage it in")
                spec = self.spec(list_id)
                if spec.hash_type != row["hash_type"]:
                    raise InvalidRequest(
                        f"case {case_number} is a {row['hash_type']} hash; "
                        f"list {list_id} holds {spec.hash_type} hashes"
                    )
                self.stage(
                    list_id,
                    adds=[
                        Intake(
                            bytes(row["hash"]),
                            quality=row["quality"],
                            source="submission",
                            submission_id=case_number,
                        )
                    ],
                    who=who,
                )
            status = "accepted" if accept else "rejected"
            self.db.execute(
                "UPDATE submissions SET status = ?, reviewed = ?, reviewer = ?, list_id = ? "
                "WHERE case_number = ?",
                [status, format_time(self.now()), who, list_id if accept else None, case_number],
            )
            detail = {"case": case_number, **({"list": list_id} if accept else {})}
            self._log(f"case.{'accept' if accept else 'reject'}", who, detail)
        return self.case(case_number)

    # -- dashboard sessions -------------------------------------------------------------

    def open_web_session(self, token: str) -> tuple[str, WebSession]:
        """Log an operator in to the dashboard with their token: a new session.

        Returns the session id (for the operator's cookie only: the database keeps
        its SHA-256) and the session. Sessions last ``web_session_seconds`` and end
        with the token that opened them.

        Raises:
            Unauthorized: an unknown or revoked token.
            Forbidden: a node's token.
        """
        principal = self.authenticate(token)
        if principal.kind != "operator":
            raise Forbidden("the dashboard is for operators; this is a node's token")
        session_id = secrets.token_urlsafe(32)
        now = self.now()
        session = WebSession(
            principal,
            csrf=secrets.token_urlsafe(32),
            expires=now + timedelta(seconds=self.config.web_session_seconds),
        )
        with self.db.atomic():
            self.db.execute("DELETE FROM web_sessions WHERE expires <= ?", [format_time(now)])
            self.db.table("web_sessions").insert(
                {
                    "id_sha256": _hash_token(session_id),
                    "token_hash": _hash_token(token),
                    "csrf": session.csrf,
                    "created": format_time(now),
                    "expires": format_time(session.expires),
                }
            )
            self._log("web.login", principal.subject, {"role": principal.role})
        return session_id, session

    def web_session(self, session_id: str) -> WebSession:
        """The live session with this id, with its token's current role.

        Raises:
            Unauthorized: no such session, an expired one, or its token was revoked.
        """
        row = self._one(
            "SELECT s.csrf, s.expires, t.role, t.subject FROM web_sessions AS s "
            "JOIN tokens AS t ON t.hash = s.token_hash "
            "WHERE s.id_sha256 = ? AND t.kind = 'operator' AND t.revoked IS NULL "
            "AND s.expires > ?",
            [_hash_token(session_id), format_time(self.now())],
        )
        if row is None:
            raise Unauthorized("not logged in, or the session has ended")
        return WebSession(
            Principal("operator", row["role"], row["subject"]),
            csrf=row["csrf"],
            expires=parse_time(row["expires"], "session"),
        )

    def close_web_session(self, session_id: str) -> None:
        """Log out: the session is deleted (an unknown id is a no-op)."""
        session = self._one(
            "SELECT t.subject FROM web_sessions AS s JOIN tokens AS t ON t.hash = s.token_hash "
            "WHERE s.id_sha256 = ?",
            [_hash_token(session_id)],
        )
        if session is None:
            return
        with self.db.atomic():
            self.db.execute(
                "DELETE FROM web_sessions WHERE id_sha256 = ?", [_hash_token(session_id)]
            )
            self._log("web.logout", session["subject"], {})

    # -- what the dashboard shows ------------------------------------------------------

    def staged_changes(self, limit: int = 100) -> list[dict[str, Any]]:
        """Staged rows waiting for the next publish, oldest first, with their provenance."""
        return [
            {
                "list": r["list_id"],
                "op": r["op"],
                "hash": bytes(r["hash"]).hex(),
                "source": r["source"],
                "submission_id": r["submission_id"],
                "who": r["who"],
                "created": r["created"],
            }
            for r in self.db.query("SELECT * FROM staged ORDER BY id LIMIT ?", [limit])
        ]

    def count_history(
        self, list_id: str, names: Sequence[str] = ("actioned", "blocked"), limit: int = 5000
    ) -> list[tuple[str, int]]:
        """A list's counters ``names`` summed over nodes, after each of its last ``limit`` acks.

        Read from ``count_points``, which keeps the list's (bounded) totals as each
        ack was counted: one point ``(received, total)`` per ack, without parsing
        any stored ack.
        """
        wanted = [n for n in COUNTER_NAMES if n in names]
        rows = self.db.execute(
            "SELECT received, checked, matched, actioned, blocked, false_positive "
            "FROM count_points WHERE list_id = ? ORDER BY id DESC LIMIT ?",
            [list_id, limit],
        ).fetchall()
        index = {name: i + 1 for i, name in enumerate(COUNTER_NAMES)}
        return [(r[0], clamp_total(sum(r[index[n]] for n in wanted))) for r in reversed(rows)]

    # -- helpers ----------------------------------------------------------------------

    def _ack_evidence(
        self, kind: str, ack: Ack, detail: dict[str, Any], data: bytes, sig: bytes
    ) -> int | None:
        """Keep a refused ack's exact bytes and sidecar as evidence (``_store_evidence``)."""
        return self._store_evidence(
            kind,
            ack.node,
            ack.list_id,
            detail,
            digest=hashlib.sha256(data).hexdigest(),
            data=data,
            sig=sig,
        )

    def _store_evidence(
        self,
        kind: str,
        node: str,
        list_id: str,
        detail: dict[str, Any],
        *,
        digest: str,
        data: bytes | None = None,
        sig: bytes | None = None,
    ) -> int | None:
        """Keep one evidence item once, within the node's cap; returns its id, or None.

        Identical evidence (same kind and node, same SHA-256 of the ack bytes) is
        stored once: a replay answers with the first row's id and adds no row and no
        log line. A node that already has ``max_evidence_per_node`` items gets no
        more; what it sent past the cap is counted in ``evidence_dropped`` (the first
        drop is logged), so the cap is on record and the hub's storage stays bounded.
        """
        with self.db.atomic():
            same = self._one(
                "SELECT id FROM evidence WHERE node = ? AND sha256 = ? AND kind = ?",
                [node, digest, kind],
            )
            if same is not None:
                return int(same["id"])
            held = self._one("SELECT count(*) AS n FROM evidence WHERE node = ?", [node])
            now = format_time(self.now())
            if held is not None and held["n"] >= self.config.max_evidence_per_node:
                dropped = self._one("SELECT dropped FROM evidence_dropped WHERE node = ?", [node])
                self.db.execute(
                    "INSERT INTO evidence_dropped (node, dropped, first, last) "
                    "VALUES (?, 1, ?, ?) ON CONFLICT (node) DO UPDATE SET "
                    "dropped = dropped + 1, last = excluded.last",
                    [node, now, now],
                )
                if dropped is None:
                    self._log(
                        "evidence.cap",
                        "hub",
                        {"node": node, "cap": self.config.max_evidence_per_node},
                    )
                return None
            evidence = (
                self.db.table("evidence")
                .insert(
                    {
                        "kind": kind,
                        "node": node,
                        "list_id": list_id,
                        "detail": json.dumps(detail),
                        "bytes": data,
                        "sig": sig,
                        "created": now,
                        "sha256": digest,
                    }
                )
                .last_pk
            )
            self._log("evidence", "hub", {"node": node, "list": list_id, "id": evidence})
        assert isinstance(evidence, int)
        return evidence

    def _evidence_note(self, evidence: int | None, node: str) -> str:
        if evidence is not None:
            return f"kept as evidence #{evidence}"
        return (
            f"not kept: node {node} has reached the cap of "
            f"{self.config.max_evidence_per_node} evidence items (the drop is counted)"
        )

    def _one(self, sql: str, params: Sequence[Any]) -> dict[str, Any] | None:
        rows = list(self.db.query(sql, params))
        return rows[0] if rows else None

    def _log(self, action: str, who: str, detail: dict[str, Any]) -> None:
        self.db.table("actions").insert(
            {
                "at": format_time(self.now()),
                "who": who,
                "action": action,
                "detail": json.dumps(detail, sort_keys=True),
            }
        )
