"""Publishing a list's staged changes as one signed version (PROTOCOL.md §7).

Publishing one version is one SQLite transaction: the body, header, signature,
snapshot and checkpoint files, the list's new head, the entries it adds and
removes, the staged rows it consumes and the action-log line. A crash at any
point leaves the previous version or the new one, never half (the context's
``fault_hook`` lets tests crash it between each pair of steps).

An ``entries`` list publishes its pending entries (``hub.services.entries``) with
``Publisher.publish_entries``. A publish run first retracts, as ``expired``, every
entry whose ``expires`` has come, and publishes every list of the collection of
each entries list it publishes, all in one transaction, so an entry leaves all
its lists at once or none of them.
Then it opens and withdraws disputes (``hub.services.disputes``), and every version
of an entries list carries its opinion summary (PROTOCOL.md §10.7), built in the
version's transaction from the acks stored by then; a run that publishes every
list also makes a version that changes no record of an entries list whose
platforms said something new since its last summary, so what they say is
published with the next run, not with the next change of the list. A version adding
records re-published from an upstream or accepted from a member names their
provenance (PROTOCOL.md §7.5, ``hub.services.origins``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from hub.errors import Unprocessable
from hub.services.checkpoints import Checkpoints
from hub.services.context import HubContext
from hub.services.disputes import Disputes
from hub.services.entries import Entries
from hub.services.files import PublishedFiles
from hub.services.frames import Frames
from hub.services.keys import Keys
from hub.services.lists import Lists
from hub.services.origins import Origins
from protocol import (
    HASH_TYPES,
    DeltaHeader,
    Entry,
    EntryOpinions,
    EntryState,
    ListHead,
    ListState,
    OpinionSummary,
    Publication,
    Removal,
    format_time,
    header_opinions,
    header_path,
    opinions_path,
)
from protocol.entries import record_limit

__all__ = ["PublishResult", "Publishing"]

_ORIGIN_OVERHEAD = 256
"""Bytes an origin of the provenance adds beyond its record line, at most: its entry
id, kind, hub, list and version, with JSON's punctuation."""


@dataclass(frozen=True)
class PublishResult:
    """What one publish of one list made."""

    list: str
    version: int
    adds: int
    removes: int
    count: int
    state_sha256: str
    snapshot: bool
    hash_type: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _said(entries: Mapping[str, EntryOpinions]) -> dict[str, Any]:
    """What a summary says of its entries, without when its disputes were dated: a
    dispute's time is the summary's own for a dispute not yet recorded, so two
    summaries of the same positions compare equal."""
    return {
        entry_id: (
            dict(said.confirmed),
            dict(said.disputed),
            None if said.dispute is None else (said.dispute.state, said.dispute.by),
        )
        for entry_id, said in entries.items()
    }


@dataclass(frozen=True)
class _Changes:
    """The net effect of a list's staged rows on its head: what a version would carry."""

    adds: list[bytes]
    removes: list[bytes]
    rows: dict[bytes, dict[str, Any]]
    """The last staged row of each hash (its provenance, for ``entries``)."""
    last_staged: int
    """The id of the last staged row read: the rows up to it are consumed."""


class Publishing:
    """Turns staged rows into published versions."""

    def __init__(
        self,
        ctx: HubContext,
        keys: Keys,
        files: PublishedFiles,
        lists: Lists,
        checkpoints: Checkpoints,
        entries: Entries,
        disputes: Disputes,
        origins: Origins,
        frames: Frames,
    ) -> None:
        self.ctx = ctx
        self.keys = keys
        self.files = files
        self.lists = lists
        self.checkpoints = checkpoints
        self.entries = entries
        self.disputes = disputes
        self.origins = origins
        self.frames = frames

    def publish(
        self, list_ids: Sequence[str] | None = None, who: str = "operator"
    ) -> list[PublishResult]:
        """Publish the staged changes of each list (all lists with staged rows by default),
        after retracting the entries that have expired, and with each entries list its
        whole collection, in one transaction."""
        for list_id in list_ids or ():
            self.lists.spec(list_id)  # every named list exists before anything changes
        self.entries.expire(self.ctx.now(), who)
        self.disputes.refresh(self.ctx.now(), self.keys.root().policy.disputes_at, who)
        every = list_ids is None
        if list_ids is None:
            list_ids = [
                r["list_id"] for r in self.ctx.db.query("SELECT DISTINCT list_id FROM staged")
            ] + self.entries.pending_lists()
        wanted = set(list_ids)
        root = self.keys.root()
        for list_id in list(wanted):
            if list_id in root.lists:
                wanted.update(self.entries.siblings(list_id))
        if every:  # and each entries list whose platforms said something new
            wanted.update(lid for lid, spec in root.lists.items() if spec.entries)
        results = []
        done: set[str] = set()
        for list_id in sorted(wanted):
            if list_id in done:
                continue
            if list_id in root.lists and root.lists[list_id].entries:
                # A collection's lists in one transaction: an entry leaves all of its
                # lists, or none, even if the run stops between two of them.
                collection = sorted({list_id, *self.entries.siblings(list_id)} & wanted)
                with self.ctx.db.atomic():
                    for member in collection:
                        results += self._publish_entries(member, who)
                done.update(collection)
            else:
                result = self._publish_one(list_id, who)
                if result is not None:
                    results.append(result)
        return results

    def _publish_entries(self, list_id: str, who: str) -> list[PublishResult]:
        """Publish ``list_id``'s pending entries, as one version or, when they are more
        than a version may carry (``_per_version``), as several, each its own
        transaction inside the caller's (``_publish_entry_version``)."""
        results: list[PublishResult] = []
        while True:
            result = self._publish_entry_version(list_id, who)
            if result is None:
                return results
            results.append(result)
            if not self.entries.pending_count(list_id):
                return results

    def _per_version(self, list_id: str) -> int:
        """Pending entries one version takes at most: its body and its provenance must
        each stay under the root's ``max_body_bytes`` (PROTOCOL.md §7.5, §11), so a
        million entries carried over from an upstream are published as several
        versions a node can read, not one it must refuse. Each entry costs at most a
        removal and an addition in the body, and a record line and its origin's
        fixed members in the provenance (an upstream's header and proof are written
        once per upstream version). ``max_entries_per_version`` may ask for fewer."""
        kind = HASH_TYPES[self.lists.spec(list_id).hash_type]
        per_entry = 2 * (record_limit(kind) + 16) + _ORIGIN_OVERHEAD
        most = max(1, self.keys.root().policy.max_body_bytes // per_entry)
        wanted = self.ctx.config.max_entries_per_version
        return min(most, wanted) if wanted > 0 else most

    def _publish_entry_version(self, list_id: str, who: str) -> PublishResult | None:
        """Publish up to ``_per_version`` of ``list_id``'s pending entries as one
        version, in one transaction (read inside it, as ``_publish_one`` does). With
        none, a version that changes no record is still made when what the platforms
        say of its entries moved since the last summary: the summary travels only with
        a version (PROTOCOL.md §10.7)."""
        with self.ctx.db.atomic():
            spec = self.lists.spec(list_id)
            removes: list[Removal] = []
            adds: list[Entry] = []
            through: str | None = None
            if self.entries.pending_count(list_id):
                removes, adds, through = self.entries.changes(list_id, self._per_version(list_id))
                if not removes and not adds:
                    self.entries.consume(list_id, through)
                    if self.entries.pending_count(list_id):
                        return self._publish_entry_version(list_id, who)
            head = self.entries.head(list_id)
            root = self.keys.root()

            def opinions(version: int, created: datetime, state: EntryState) -> OpinionSummary:
                return self.disputes.summary(
                    list_id, version, created, state, root.policy.disputes_at, who
                )

            if not removes and not adds and not self._opinions_moved(head, opinions):
                return None
            self._check_records(list_id, head)

            publication = self.checkpoints.publisher(root).publish_entries(
                head,
                removes=removes,
                adds=adds,
                now=self.checkpoints.signing_time(list_id, root),
                opinions=opinions,
                provenance=self.origins.provenance(list_id, adds),
                frames=self._frames(spec.hash_type, adds),
            )
            self._store_entries(list_id, publication, removes, adds, who, through)
        return PublishResult(
            list=list_id,
            version=publication.head.version,
            adds=len(adds),
            removes=len(removes),
            count=publication.header.result_state.count,
            state_sha256=publication.header.result_state.sha256,
            snapshot=any("/snapshot/" in p for p in publication.files),
            hash_type=spec.hash_type,
        )

    def _frames(self, hash_type: str, adds: Sequence[Entry]) -> dict[bytes, bytes] | None:
        """For a list of a frames type (``vpdq``), the frames of each record added, by
        hash: the publisher writes each as a file before the body (PROTOCOL.md §12) and
        refuses the version if the hub holds a record's hash without its frames."""
        if not HASH_TYPES[hash_type].frames:
            return None
        return self.frames.of(entry.hash for entry in adds)

    def _opinions_moved(
        self,
        head: ListHead[EntryState],
        opinions: Callable[[int, datetime, EntryState], OpinionSummary],
    ) -> bool:
        """Whether the summary of a version made now would say something else of the
        list's entries (a voice, a dispute) than the last one published says. A list
        with no version yet has nothing to speak of."""
        if head.version == 0:
            return False
        now = self.ctx.now()
        fresh = opinions(head.version + 1, max(now, head.last_created or now), head.state)
        header = self.files.get(header_path(head.list_id, head.version))
        ref = header_opinions(DeltaHeader.from_bytes(header[0])) if header else None
        last = self.files.get(opinions_path(head.list_id, ref.sha256)) if ref else None
        before = OpinionSummary.from_bytes(last[0]).entries if last else {}
        return _said(fresh.entries) != _said(before)

    def _check_records(self, list_id: str, head: ListHead[EntryState]) -> None:
        """The records the hub keeps are the state its last version signed, or it
        publishes nothing: a version built on other records would not verify."""
        last = self.ctx.one(
            "SELECT result_count, result_sha256 FROM log_roots WHERE list_id = ? AND size = ?",
            [list_id, head.version],
        )
        digest = head.state.digest()
        if last is not None and (last["result_count"], last["result_sha256"]) != (
            digest.count,
            digest.sha256,
        ):
            raise Unprocessable(
                f"list {list_id}: the hub's records differ from v{head.version}'s signed state; "
                "restore the database from a backup"
            )

    def _store_entries(
        self,
        list_id: str,
        publication: Publication[Any],
        removes: list[Removal],
        adds: list[Entry],
        who: str,
        through: str | None,
    ) -> None:
        """Keep a signed version of an entries list: files, head, records, in that order;
        the pending entries it published (up to ``through``) are consumed."""
        self._keep(
            publication,
            record=lambda: self.entries.record(list_id, publication.head.version, removes, adds),
            consume=lambda: self.entries.consume(list_id, through) if through else None,
            detail={
                "adds": len(adds),
                "removes": len(removes),
                "reasons": sorted({r.reason for r in removes}),
            },
            who=who,
        )

    def _keep(
        self,
        publication: Publication[Any],
        *,
        record: Callable[[], None],
        consume: Callable[[], None],
        detail: dict[str, Any],
        who: str,
    ) -> None:
        """Keep a signed version of any list, in the order a crash test walks (the
        context's ``fault`` between each step): its files, the list's head, what it
        changed (``record``), the staged rows it consumed (``consume``), the log line."""
        list_id = publication.head.list_id
        self._put_files(publication)
        self.ctx.fault("head")
        self._move_head(list_id, publication)
        self.ctx.fault("entries")
        record()
        self.ctx.fault("staged")
        consume()
        self.ctx.log(
            "publish", who, {"list": list_id, "version": publication.head.version} | detail
        )
        self.ctx.fault("commit")

    def _put_files(self, publication: Publication[Any]) -> None:
        for step, (path, data) in enumerate(publication.files.items()):
            self.ctx.fault(f"file {step}: {path}")
            self.files.put(path, data, immutable=not path.endswith("/checkpoint"))

    def _publish_one(self, list_id: str, who: str) -> PublishResult | None:
        """Publish ``list_id``'s staged changes as one version, in one transaction.

        What it builds on (root, head, staged rows) is read inside the transaction,
        which takes the write lock first (``edge.database``): a publish that waited for
        another process's publish builds on that one's version, not on what it read
        before waiting. Staged rows that change nothing are consumed without a version.
        """
        with self.ctx.db.atomic():
            spec = self.lists.spec(list_id)
            head = self.lists.head(list_id)
            changes = self._changes(head)
            if changes is None:
                return None
            if not changes.adds and not changes.removes:
                self._consume(list_id, changes)
                return None
            root = self.keys.root()
            publication = self.checkpoints.publisher(root).publish(
                head,
                removes=changes.removes,
                adds=changes.adds,
                now=self.checkpoints.signing_time(list_id, root),
            )
            self._store(list_id, publication, changes, who)
        new = publication.head
        self.lists.remember(list_id, new.version, new.state)
        return PublishResult(
            list=list_id,
            version=new.version,
            adds=len(changes.adds),
            removes=len(changes.removes),
            count=publication.header.result_state.count,
            state_sha256=publication.header.result_state.sha256,
            snapshot=any("/snapshot/" in p for p in publication.files),
            hash_type=spec.hash_type,
        )

    def _changes(self, head: ListHead[ListState]) -> _Changes | None:
        """The staged rows' net change to ``head``; None when nothing is staged.

        The last staged operation on a hash wins; only real changes are published
        (adding a listed hash or removing an unlisted one changes nothing).
        """
        staged = list(
            self.ctx.db.query("SELECT * FROM staged WHERE list_id = ? ORDER BY id", [head.list_id])
        )
        if not staged:
            return None
        final: dict[bytes, dict[str, Any]] = {row["hash"]: row for row in staged}
        candidates = list(final)
        present = dict(zip(candidates, head.state.contains_many(candidates), strict=True))
        return _Changes(
            adds=[h for h in candidates if final[h]["op"] == "add" and not present[h]],
            removes=[h for h in candidates if final[h]["op"] == "remove" and present[h]],
            rows=final,
            last_staged=staged[-1]["id"],
        )

    def _store(
        self, list_id: str, publication: Publication[ListState], changes: _Changes, who: str
    ) -> None:
        """Keep a signed version: its files, the list's head, its entries, in that order."""
        self._keep(
            publication,
            record=lambda: self._record_entries(list_id, publication.head.version, changes),
            consume=lambda: self._consume(list_id, changes),
            detail={"adds": len(changes.adds), "removes": len(changes.removes)},
            who=who,
        )

    def _move_head(self, list_id: str, publication: Publication[Any]) -> None:
        """The list's new head, and its log root for checking acks against (``log_roots``)."""
        new, header = publication.head, publication.header
        self.ctx.db.execute(
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
        self.ctx.db.table("log_roots").insert(
            {
                "list_id": list_id,
                "size": new.version,
                "root": new.compact.root(),
                "result_count": header.result_state.count,
                "result_sha256": header.result_state.sha256,
            }
        )

    def _record_entries(self, list_id: str, version: int, changes: _Changes) -> None:
        """Mark removed entries and insert added ones with their staged provenance."""
        conn, final = self.ctx.db.conn, changes.rows
        conn.executemany(
            "UPDATE entries SET removed_version = ? "
            "WHERE list_id = ? AND hash = ? AND removed_version IS NULL",
            [(version, list_id, h) for h in changes.removes],
        )
        conn.executemany(
            "INSERT INTO entries (list_id, hash, added_version, quality, source, category, "
            "submission_id, who, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    list_id,
                    h,
                    version,
                    final[h]["quality"],
                    final[h]["source"],
                    final[h]["category"],
                    final[h]["submission_id"],
                    final[h]["who"],
                    final[h]["created"],
                )
                for h in sorted(changes.adds)  # index order: appends, not random B-tree inserts
            ),
        )

    def _consume(self, list_id: str, changes: _Changes) -> None:
        """Delete the staged rows this publish read (rows staged since stay)."""
        self.ctx.db.execute(
            "DELETE FROM staged WHERE list_id = ? AND id <= ?", [list_id, changes.last_staged]
        )
