"""The published tree: every file the hub serves, kept in SQLite (ADR 8).

Immutable files (roots, deltas, headers, snapshots) are written once and never
with other bytes; checkpoints are the only files rewritten. ``export`` writes the
tree out for a mirror in publication order.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hub.errors import Conflict
from hub.services.context import HubContext
from protocol import format_time

__all__ = ["PublishedFiles"]


class PublishedFiles:
    """The ``files`` table: path → bytes, immutable or not."""

    def __init__(self, ctx: HubContext) -> None:
        self.ctx = ctx

    def put(self, path: str, data: bytes, *, immutable: bool = True) -> None:
        """Store ``data`` at ``path``; an immutable file is never given other bytes.

        Raises:
            Conflict: ``path`` is published and immutable with other bytes.
        """
        db, now = self.ctx.db, format_time(self.ctx.now())
        existing = self.ctx.one("SELECT bytes, immutable FROM files WHERE path = ?", [path])
        if existing is not None:
            if existing["immutable"]:
                if existing["bytes"] != data:
                    raise Conflict(f"{path} is published and immutable; refusing other bytes")
                return
            db.execute(
                "UPDATE files SET bytes = ?, sha256 = ?, created = ? WHERE path = ?",
                [data, hashlib.sha256(data).hexdigest(), now, path],
            )
            return
        db.table("files").insert(
            {
                "path": path,
                "bytes": data,
                "sha256": hashlib.sha256(data).hexdigest(),
                "immutable": int(immutable),
                "created": now,
            }
        )

    def get(self, path: str) -> tuple[bytes, bool] | None:
        """The published file at ``path`` and whether it is immutable, or None."""
        row = self.ctx.one("SELECT bytes, immutable FROM files WHERE path = ?", [path])
        return (bytes(row["bytes"]), bool(row["immutable"])) if row else None

    def export(self, target: Path, *, public_only: bool = False) -> int:
        """Write the published tree under ``target`` in publication order; never rewrite.

        ``public_only`` leaves out the files of lists that are not public: a mirror
        serves without tokens, so one reachable from outside must not hold them.
        The root files are always written (every list's nodes need them).
        """
        db = self.ctx.db
        private = (
            {r["id"] for r in db.query("SELECT id FROM lists WHERE public = 0")}
            if public_only
            else set()
        )
        n = 0
        rows = db.query("SELECT path, bytes, immutable FROM files ORDER BY immutable DESC, rowid")
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
