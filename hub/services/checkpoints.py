"""Each list's checkpoint: the one published file that is signed afresh.

A checkpoint commits to the list's log and carries the timestamp role's
co-signature (PROTOCOL.md §6); nodes refuse one older than ``max_checkpoint_age``,
so the hub re-signs every list's checkpoint on a schedule, after each publish and
after every root change.
"""

from __future__ import annotations

import logging
from datetime import datetime

from hub.services.context import HubContext
from hub.services.files import PublishedFiles
from hub.services.keys import Keys
from hub.services.lists import Lists
from protocol import ProtocolError, Publisher, Root, format_time
from protocol.checkpoint import SignedCheckpoint, cosignature_time
from protocol.root import ROLE_NAMES

__all__ = ["Checkpoints"]

log = logging.getLogger("hashhub.hub")


class Checkpoints:
    """Signs and re-signs ``lists/<id>/checkpoint``."""

    def __init__(self, ctx: HubContext, keys: Keys, files: PublishedFiles, lists: Lists) -> None:
        self.ctx = ctx
        self.keys = keys
        self.files = files
        self.lists = lists

    def publisher(self, root: Root) -> Publisher:
        """A publisher holding this machine's online keys of ``root``."""
        return Publisher(root, {r: self.keys.signers(r, root) for r in ROLE_NAMES if r != "root"})

    def refresh(self, who: str = "scheduler") -> int:
        """Re-issue every published checkpoint with a fresh timestamp co-signature."""
        with self.ctx.db.atomic():
            n = self.refresh_all(self.keys.root())
            if n:
                self.ctx.log("checkpoint.refresh", who, {"lists": n})
        return n

    def refresh_all(self, root: Root) -> int:
        """Re-issue the checkpoint of every list ``root`` declares, those of size 0 too.

        A list declared before hubs published size-0 checkpoints gets its first one
        here, at the first refresh after an upgrade (PROTOCOL.md §11.1).
        """
        publisher = self.publisher(root)
        n = 0
        for row in self.ctx.db.query("SELECT id FROM lists ORDER BY id"):
            if row["id"] in root.lists:
                self.refresh_one(row["id"], publisher)
                n += 1
        return n

    def refresh_one(self, list_id: str, publisher: Publisher) -> None:
        """Sign ``list_id``'s current checkpoint afresh (its head; size 0 before v1)."""
        self.files.put(
            f"lists/{list_id}/checkpoint",
            publisher.refresh(self.lists.head(list_id), self.signing_time(list_id, publisher.root)),
            immutable=False,
        )

    def signing_time(self, list_id: str, root: Root) -> datetime:
        """The time to co-sign ``list_id``'s next checkpoint: now, never before the last.

        Nodes refuse a checkpoint co-signed before the one they trust (a rollback of
        time). If this machine's clock went back, signing with it would stall every
        node until the clock passed the old time again; the last co-signature's time
        is used instead, and the jump is logged.
        """
        now = self.ctx.now()
        found = self.files.get(f"lists/{list_id}/checkpoint")
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
