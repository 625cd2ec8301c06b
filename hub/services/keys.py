"""The hub's signing keys and its roots (PROTOCOL.md §5).

Private keys live in files under ``keys/`` (mode 0700); the ``keys`` table says
which role each one has and when it was retired. Roots are stored with their
sidecars and published as ``root/N.json``. Changing what a root declares (a new
list, a rotated role) is ``hub.services.roots``; this module builds, signs and
checks a successor root.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from hub.errors import Conflict, Forbidden, NotFound, Unprocessable
from hub.services.context import HubContext
from hub.services.files import PublishedFiles
from protocol import Limits, Policy, ProtocolError, Root, SigningKey, format_time, root_files
from protocol.keyfile import load_private_key, write_private_key

__all__ = ["KeyRecord", "Keys"]


@dataclass(frozen=True)
class KeyRecord:
    """One key the hub made, as operators see it (never the private key)."""

    keyid: str
    role: str
    in_root: bool
    created: str
    retired: str | None
    private_key_present: bool
    expires: str | None
    """When the root that declares it expires; None for a key no longer in the root."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Keys:
    """The ``keys`` and ``roots`` tables and the key files under ``keys/``."""

    def __init__(self, ctx: HubContext, files: PublishedFiles) -> None:
        self.ctx = ctx
        self.files = files
        self._root_cache: tuple[str, Root] | None = None

    def policy(self) -> Policy:
        """The root policy the configuration asks for (written into each new root).

        ``dispute_threshold`` and ``max_withdrawal_delay`` are written only when set
        (not 0): a root without them keeps the bytes older verifiers read, and means
        the protocol's defaults.
        """
        config = self.ctx.config
        return Policy(
            max_checkpoint_age=config.max_checkpoint_age,
            min_poll_interval=config.min_poll_interval,
            dispute_threshold=config.dispute_threshold or None,
            max_withdrawal_delay=config.max_withdrawal_delay or None,
        )

    def new_key(self, role: str) -> SigningKey:
        """Generate a key for ``role``, write it under ``keys/`` and record it."""
        key = SigningKey.generate()
        rel = Path("keys") / f"{role}-{key.keyid[:16]}.key"
        write_private_key(self.ctx.home / rel, key)
        self.ctx.db.table("keys").insert(
            {
                "keyid": key.keyid,
                "role": role,
                "public": key.public.raw.hex(),
                "path": str(rel),
                "created": format_time(self.ctx.now()),
            }
        )
        return key

    def signers(self, role: str, root: Root | None = None) -> list[SigningKey]:
        """The private keys on this machine for ``role`` in ``root`` (default: the newest)."""
        root = root or self.root()
        out = []
        for keyid in root.roles[role].keyids:
            row = self.ctx.one("SELECT path FROM keys WHERE keyid = ?", [keyid])
            path = self.ctx.home / row["path"] if row else None
            if path is not None and path.exists():
                out.append(load_private_key(path))
        return out

    def root(self) -> Root:
        """The newest root version (parsed once per version; roots never change)."""
        row = self.ctx.one("SELECT version, sha256 FROM roots ORDER BY version DESC LIMIT 1", [])
        if row is None:
            raise NotFound("this hub has no root yet")
        cached = self._root_cache
        if cached is None or cached[0] != row["sha256"]:
            data = self.ctx.one("SELECT bytes FROM roots WHERE version = ?", [row["version"]])
            assert data is not None
            cached = (row["sha256"], Root.from_bytes(data["bytes"]))
            self._root_cache = cached
        return cached[1]

    def root_sha256(self, version: int = 1) -> str:
        """The SHA-256 of root ``version``'s bytes: what nodes and auditors pin (v1)."""
        row = self.ctx.one("SELECT sha256 FROM roots WHERE version = ?", [version])
        if row is None:
            raise NotFound(f"no root v{version}")
        return str(row["sha256"])

    def store_root(self, root: Root, files: dict[str, bytes]) -> None:
        """Keep a signed root and publish it with its sidecar."""
        path = f"root/{root.version}.json"
        data, sig = files[path], files[path + ".sig"]
        self.ctx.db.table("roots").insert(
            {
                "version": root.version,
                "bytes": data,
                "sig": sig,
                "sha256": hashlib.sha256(data).hexdigest(),
                "created": format_time(self.ctx.now()),
            }
        )
        self.files.put(path, data)
        self.files.put(path + ".sig", sig)

    def next_root(self, **changes: Any) -> Root:
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
        heads = {r["id"]: r["version"] for r in self.ctx.db.query("SELECT id, version FROM lists")}
        lists = {
            lid: replace(spec, first_version=max(spec.first_version, heads.get(lid, 0) + 1))
            for lid, spec in lists.items()
        }
        return replace(
            old,
            version=old.version + 1,
            expires=self.ctx.now() + timedelta(days=self.ctx.config.root_expiry_days),
            lists=lists,
            policy=self.policy(),
            **changes,
        )

    def publish_root(self, new: Root) -> Root:
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
        self.store_root(new, files)
        return new

    def retire(self, keyids: tuple[str, ...]) -> None:
        """Mark keys as retired (a rotation replaced them); their files stay for the record."""
        stamp = format_time(self.ctx.now())
        for keyid in keyids:
            self.ctx.db.execute("UPDATE keys SET retired = ? WHERE keyid = ?", [stamp, keyid])

    def records(self) -> list[KeyRecord]:
        """Every key the hub made, oldest first, with whether the newest root declares it."""
        root = self.root()
        out = []
        for row in self.ctx.db.query("SELECT * FROM keys ORDER BY created, keyid"):
            roles = [r for r, role in root.roles.items() if row["keyid"] in role.keyids]
            out.append(
                KeyRecord(
                    keyid=row["keyid"],
                    role=row["role"],
                    in_root=bool(roles),
                    created=row["created"],
                    retired=row["retired"],
                    private_key_present=(self.ctx.home / row["path"]).exists(),
                    expires=format_time(root.expires) if roles else None,
                )
            )
        return out
