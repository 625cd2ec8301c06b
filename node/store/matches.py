"""Hosted content, match events and the counters acks carry.

- ``content``: the platform's registry of hashes of content it hosts, for
  retroactive takedowns.
- ``content_frames``: each registered video's frames (PROTOCOL.md §6.3), by their
  SHA-256, the hash of its ``vpdq`` row in ``content``; a trigger drops them with
  the last such row, and every change moves ``content_frames_generation``.
- ``content_journal``: the perceptual hashes registered since the content index
  (``node.content_index``) last folded them in, one row per registering batch,
  written in the registration's own transaction.
- ``match_events``: what matched (an upload, or registered content when a list
  grew) and what the platform did about it.
- ``counters``: cumulative per list (``hash`` '') and per listed hash, with a
  ``changed`` flag so an ack carries only the per-hash counters that moved.

``node.matching.Matching`` and ``node.registry.ContentRegistry`` decide; this only
stores, as ``NodeStore.matches``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from node.store.tables import Tables
from protocol import format_time
from protocol.lists import HASH_TYPES

__all__ = [
    "ContentRows",
    "MatchSource",
    "MatchTables",
    "Outcome",
    "Shares",
    "event_shares",
    "shares_members",
]

Outcome = Literal["actioned", "blocked", "false_positive", "kept"]
"""What a platform did about a match (``node.matching.OUTCOMES`` lists them)."""

MatchSource = Literal["upload", "registry"]
"""What was matched: an upload, or registered content (the table's CHECK says the same)."""


Shares = tuple[tuple[int, int], tuple[int, int]]
"""A video match's shares (PROTOCOL.md §6.4): ``((q, Q), (l, L))``, the query's and the
listed video's agreeing frames of their distinct good frames."""


def shares_members(shares: Shares | None) -> dict[str, Any]:
    """What a match shows of its shares, wherever it is shown (a match's answer,
    an event, a webhook): ``{"video": {"query_share": [q, Q], "listed_share": [l, L]}}``
    for a video match, nothing for any other, whose answer keeps its shape."""
    if shares is None:
        return {}
    (q, total_q), (listed, total_l) = shares
    return {"video": {"query_share": [q, total_q], "listed_share": [listed, total_l]}}


def event_shares(stored: str | None) -> dict[str, Any]:
    """``shares_members`` of a recorded event's shares, kept as ``[q, Q, l, L]``."""
    if stored is None:
        return {}
    q, total_q, listed, total_l = json.loads(stored)
    return shares_members(((q, total_q), (listed, total_l)))


@dataclass(frozen=True)
class TypedRows:
    """One hash type's rows of a ``ContentRows``: the content ids as one JSON array and
    the hashes, each ``width`` bytes, as one blob, in the same order."""

    ids_json: str
    hashes: list[bytes]
    blob: bytes
    width: int


@dataclass(frozen=True)
class ContentRows:
    """(content id, type, hash) rows of many pieces of content, each once, set out per
    type as ``MatchTables.register_rows`` writes them.

    Made apart from the database (``of``), so that a bulk import sets out its next
    batch on the reading thread while SQLite writes this one: the writing thread is
    then left nothing to do per row.
    """

    rows: list[tuple[str, str, bytes]]
    """Each distinct row once, in the order first given."""
    repeats: int
    """How many rows were left out as repeats of an earlier one."""
    by_type: dict[str, TypedRows]

    @classmethod
    def of(cls, rows: Iterable[tuple[str, str, bytes]]) -> ContentRows:
        """``rows`` set out; raises ``ValueError`` when one type's hashes differ in
        length (the registry's checks refuse such rows before they get here)."""
        given = rows if isinstance(rows, list) else list(rows)
        unique = list(dict.fromkeys(given))
        columns: dict[str, tuple[list[str], list[bytes]]] = {}
        for content_id, type_name, h in unique:
            ids, hashes = columns.setdefault(type_name, ([], []))
            ids.append(content_id)
            hashes.append(h)
        by_type = {}
        for type_name, (ids, hashes) in columns.items():
            width = len(hashes[0])
            if any(len(h) != width for h in hashes):
                raise ValueError(f"{type_name} hashes of different lengths")
            by_type[type_name] = TypedRows(json.dumps(ids), hashes, b"".join(hashes), width)
        return cls(unique, len(given) - len(unique), by_type)


class MatchTables(Tables):
    """The content registry, match events and counters of one node."""

    # -- content registry ------------------------------------------------------------

    def register_content(
        self, content_id: str, hashes: Iterable[tuple[str, bytes]], now: datetime
    ) -> None:
        """Register hashes (type, bytes) of content the platform hosts; known ones stay."""
        self.register_rows([(content_id, type_name, h) for type_name, h in hashes], now)

    def register_rows(
        self, rows: ContentRows | Iterable[tuple[str, str, bytes]], now: datetime
    ) -> dict[str, int]:
        """Register (content id, type, hash) rows of many pieces of content; returns how
        many of each type were new (the rest were registered already and stay as they
        were).

        One statement per type in the caller's transaction (a bulk import's batch):
        the content ids go in as one JSON array and the hashes as one blob, which
        SQLite takes apart itself (``json_each``, ``substr``), so no Python call is
        made per row and the interpreter lock is free while SQLite inserts — a bulk
        import reads its next batch on another core meanwhile. The statement's change
        count says how many rows it inserted, so no lookup precedes the insert.
        """
        batch = rows if isinstance(rows, ContentRows) else ContentRows.of(rows)
        stamp = format_time(now)
        new: dict[str, int] = {}
        with self.db.atomic():
            for type_name, typed in sorted(batch.by_type.items()):
                cursor = self.db.conn.execute(
                    "INSERT OR IGNORE INTO content (content_id, hash_type, hash, registered) "
                    "SELECT j.value, ?, substr(?, j.key * ? + 1, ?), ? FROM json_each(?) AS j",
                    (type_name, typed.blob, typed.width, typed.width, stamp, typed.ids_json),
                )
                new[type_name] = cursor.rowcount
                # Every row's hash goes to the journal, the known ones too: the index
                # keeps each hash once whatever the journal repeats.
                self._journal(type_name, len(typed.hashes), typed.blob)
        return new

    def keep_frames(self, frames: Iterable[tuple[bytes, bytes]]) -> None:
        """Hold registered videos' frames, (SHA-256, encoding) each, in the caller's
        transaction, after their ``vpdq`` rows: frames already held stay as they are
        (the same SHA-256 is the same bytes)."""
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO content_frames (hash, frames) VALUES (?, ?)",
            sorted(frames),
        )

    def frames_generation(self) -> int:
        """A number that moves whenever a registered video's frames are added or
        dropped, by any process (one row's read)."""
        row = self._one("SELECT generation FROM content_frames_generation")
        return 0 if row is None else int(row["generation"])

    def registered_frames(self) -> tuple[int, dict[bytes, bytes]]:
        """Every registered video's frames by their SHA-256, and the generation they
        are of, read together."""
        with self.snapshot():
            generation = self.frames_generation()
            held = {
                bytes(r["hash"]): bytes(r["frames"])
                for r in self.db.query("SELECT hash, frames FROM content_frames")
            }
        return generation, held

    def _journal(self, type_name: str, count: int, hashes: bytes) -> None:
        """Append a perceptual type's registered hashes (``count`` of them, concatenated)
        to the journal as one row, in the caller's transaction (other types have no
        content index)."""
        kind = HASH_TYPES.get(type_name)
        if kind is None or not kind.perceptual or not count:
            return
        self.db.execute(
            "INSERT INTO content_journal (hash_type, count, hashes) VALUES (?, ?, ?)",
            [type_name, count, hashes],
        )

    def widen_cache(self, mebibytes: int) -> None:
        """Let this connection cache ``mebibytes`` of pages (a bulk import's many
        random inserts read each page once instead of once per batch)."""
        self.db.execute(f"PRAGMA cache_size = -{int(mebibytes) * 1024}")

    # -- the content index's journal (``node.content_index``) ---------------------------

    def journal_head(self) -> int:
        """The largest journal ``seq`` ever given (0: none): every entry up to it is
        visible to this connection's reads."""
        row = self._one("SELECT seq FROM sqlite_sequence WHERE name = 'content_journal'")
        return int(row["seq"]) if row else 0

    def journal_size(self, type_name: str, after: int) -> int:
        """How many hashes of one type the journal holds past ``after``."""
        row = self._one(
            "SELECT coalesce(sum(count), 0) AS n FROM content_journal "
            "WHERE hash_type = ? AND seq > ?",
            [type_name, after],
        )
        return int(row["n"]) if row else 0

    def journal_since(self, type_name: str, after: int) -> tuple[int, bytes]:
        """The last ``seq`` read and the concatenated hashes of one type past ``after``
        (each hash perhaps more than once)."""
        last, blobs = after, []
        for r in self.db.query(
            "SELECT seq, hashes FROM content_journal WHERE hash_type = ? AND seq > ? ORDER BY seq",
            [type_name, after],
        ):
            last = int(r["seq"])
            blobs.append(bytes(r["hashes"]))
        return last, b"".join(blobs)

    def drop_journal(self, type_name: str, through: int) -> None:
        """Forget the journal entries of a type a new index generation covers."""
        with self.db.atomic():
            self.db.execute(
                "DELETE FROM content_journal WHERE hash_type = ? AND seq <= ?",
                [type_name, through],
            )

    def registered_hashes(self, type_name: str, chunk: int) -> Iterator[bytes]:
        """Every registered hash of one type in key order, ``chunk`` rows at a time, each
        chunk's hashes concatenated (a hash several pieces of content share comes once
        per piece, next to itself)."""
        cursor = self.db.conn.execute(
            "SELECT hash FROM content WHERE hash_type = ? ORDER BY hash", [type_name]
        )
        while rows := cursor.fetchmany(chunk):
            yield b"".join(r[0] for r in rows)

    def registered_rows(self, rows: Iterable[tuple[str, str, bytes]]) -> list[bool]:
        """For each (content id, type, hash) row, whether it is registered (writes nothing)."""
        sql = "SELECT 1 FROM content WHERE hash_type = ? AND hash = ? AND content_id = ?"
        execute = self.db.conn.execute
        return [
            execute(sql, (type_name, h, content_id)).fetchone() is not None
            for content_id, type_name, h in rows
        ]

    def remove_content(self, items: Iterable[tuple[str, tuple[str, bytes] | None]]) -> list[int]:
        """Remove registered hashes: for each (content id, (type, hash)) that one row, for
        each (content id, None) every hash of that content. Returns the rows each removed.

        Match events of the content stay: they are what was found, and their outcomes.
        """
        execute = self.db.conn.execute
        removed = []
        with self.db.atomic():
            for content_id, one in items:
                if one is None:
                    cursor = execute("DELETE FROM content WHERE content_id = ?", (content_id,))
                else:
                    cursor = execute(
                        "DELETE FROM content WHERE hash_type = ? AND hash = ? AND content_id = ?",
                        (one[0], one[1], content_id),
                    )
                removed.append(cursor.rowcount)
        return removed

    def content_count(self) -> int:
        """How many (content id, type, hash) rows the registry holds."""
        return self._count("SELECT count(*) AS n FROM content")

    def registered_content(self, type_name: str) -> list[tuple[str, bytes]]:
        """Every registered (content id, hash) of one hash type: one Python object per
        item, so the node never reads it for a delta (that is the content index's and
        ``registered_with``'s work); the benchmark's baseline reads it."""
        return [
            (r["content_id"], bytes(r["hash"]))
            for r in self.db.query(
                "SELECT content_id, hash FROM content WHERE hash_type = ?", [type_name]
            )
        ]

    def registered_with(self, type_name: str, hashes: Iterable[bytes]) -> list[tuple[str, bytes]]:
        """The registered (content id, hash) whose hash is one of ``hashes``, by key.

        The primary key of ``content`` leads with (type, hash), so each hash is one
        index lookup: an exact type's retroactive pass costs what the delta adds,
        not what the platform hosts."""
        out: list[tuple[str, bytes]] = []
        for h in hashes:
            out.extend(
                (r["content_id"], bytes(r["hash"]))
                for r in self.db.query(
                    "SELECT content_id, hash FROM content WHERE hash_type = ? AND hash = ?",
                    [type_name, h],
                )
            )
        return out

    def registered_of(
        self, content_id: str, hashes: Iterable[tuple[str, bytes]]
    ) -> set[tuple[str, bytes]]:
        """Which of ``hashes`` (type, bytes) are already registered under ``content_id``.

        One primary-key lookup each (the key leads with the hash), so registering a
        file costs the same however large the registry grows.
        """
        return {
            (type_name, h)
            for type_name, h in hashes
            if self._one(
                "SELECT 1 AS found FROM content "
                "WHERE hash_type = ? AND hash = ? AND content_id = ?",
                [type_name, h, content_id],
            )
        }

    def content_events(self, content_id: str) -> dict[tuple[str, bytes], str]:
        """The first match event of registered content per (list, listed hash) of the
        view's hub, by id."""
        found: dict[tuple[str, bytes], str] = {}
        for r in self.db.query(
            "SELECT id, list_id, hash FROM match_events WHERE hub = ? AND content_id = ? "
            "ORDER BY created, rowid",
            [self.hub, content_id],
        ):
            found.setdefault((r["list_id"], bytes(r["hash"])), r["id"])
        return found

    # -- match events ------------------------------------------------------------------

    def record(
        self,
        match_id: str,
        list_id: str,
        listed: bytes,
        query: bytes,
        distance: int,
        version: int,
        source: MatchSource,
        content_id: str | None,
        now: datetime,
        entry: str | None = None,
        shares: Shares | None = None,
    ) -> None:
        """Store one match event (its counters are the caller's: ``bump_counter``);
        ``entry``: the matched entry's members as JSON, for a list of entries;
        ``shares``: a video match's, kept as ``[q, Q, l, L]``."""
        self.db.table("match_events").insert(
            {
                "id": match_id,
                "hub": self.hub,
                "list_id": list_id,
                "hash": listed,
                "query": query,
                "distance": distance,
                "version": version,
                "source": source,
                "content_id": content_id,
                "created": format_time(now),
                "entry": entry,
                "shares": None if shares is None else json.dumps([*shares[0], *shares[1]]),
            }
        )

    def event(self, match_id: str) -> dict[str, Any] | None:
        """One match event as stored, or None."""
        return self._one("SELECT * FROM match_events WHERE id = ?", [match_id])

    def listing(self, limit: int, *, open_only: bool = False) -> list[dict[str, Any]]:
        """The newest match events first, each with its list's hash type (``hash_type``,
        None for a list the store no longer holds); with ``open_only`` those awaiting an
        outcome. Events of the same instant come newest-recorded first. Every hub's
        events: a match is the platform's, whichever hub listed what it matched."""
        where = "WHERE e.outcome IS NULL " if open_only else ""
        return list(
            self.db.query(
                "SELECT e.*, l.hash_type AS hash_type FROM match_events AS e "  # noqa: S608
                f"LEFT JOIN lists AS l ON l.hub = e.hub AND l.id = e.list_id {where}"
                "ORDER BY e.created DESC, e.rowid DESC LIMIT ?",
                [limit],
            )
        )

    def event_count(self) -> int:
        """How many match events the node has recorded."""
        return self._count("SELECT count(*) AS n FROM match_events")

    def set_outcome(self, match_id: str, outcome: Outcome, now: datetime) -> None:
        """Record what the platform did about a match."""
        self.db.execute(
            "UPDATE match_events SET outcome = ?, outcome_at = ? WHERE id = ?",
            [outcome, format_time(now), match_id],
        )

    # -- the platform's opinions on entries (PROTOCOL.md §10.1) ---------------------------

    def set_opinion(
        self, list_id: str, entry: str, position: str, reason: str | None, now: datetime
    ) -> bool:
        """Take ``position`` on an entry (the newest outcome speaks for the platform);
        marked for the next ack when it differs from the one held. Returns whether it
        changed."""
        held = self._one(
            "SELECT position, reason FROM entry_opinions "
            "WHERE hub = ? AND list_id = ? AND entry = ?",
            [self.hub, list_id, entry],
        )
        if held is not None and (held["position"], held["reason"]) == (position, reason):
            return False
        self.db.execute(
            "INSERT INTO entry_opinions (hub, list_id, entry, position, reason, at, changed) "
            "VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (hub, list_id, entry) DO UPDATE SET "
            "position = excluded.position, reason = excluded.reason, at = excluded.at, "
            "changed = 1",
            [self.hub, list_id, entry, position, reason, format_time(now)],
        )
        return True

    def changed_opinions(self, list_id: str, limit: int) -> dict[str, tuple[str, str | None]]:
        """Up to ``limit`` positions of the list not yet in an ack, by entry id."""
        return {
            r["entry"]: (r["position"], r["reason"])
            for r in self.db.query(
                "SELECT entry, position, reason FROM entry_opinions "
                "WHERE hub = ? AND list_id = ? AND changed = 1 ORDER BY entry LIMIT ?",
                [self.hub, list_id, limit],
            )
        }

    def opinions_sent(self, list_id: str, entries: Iterable[str]) -> None:
        """Positions an ack now carries: no longer changed since the last ack."""
        self.db.conn.executemany(
            "UPDATE entry_opinions SET changed = 0 WHERE hub = ? AND list_id = ? AND entry = ?",
            [(self.hub, list_id, e) for e in entries],
        )

    def awaiting_outcome(self) -> int:
        """How many match events the platform has not yet reported an outcome for."""
        return self._count("SELECT count(*) AS n FROM match_events WHERE outcome IS NULL")

    # -- counters ----------------------------------------------------------------------

    def bump_counter(self, list_id: str, hex_hash: str, name: str, by: int = 1) -> None:
        """Add ``by`` to a cumulative counter (``hex_hash`` '' for the list's total)."""
        self.db.execute(
            "INSERT INTO counters (hub, list_id, hash, name, value, changed) "
            "VALUES (?, ?, ?, ?, ?, 1) "
            "ON CONFLICT(hub, list_id, hash, name) DO UPDATE SET value = value + ?, changed = 1",
            [self.hub, list_id, hex_hash, name, by, by],
        )

    def counters(self, list_id: str) -> list[dict[str, Any]]:
        """The list's counters: rows of ``hash`` ('' for the totals), ``name``, ``value``
        and ``changed``."""
        return list(
            self.db.query(
                "SELECT hash, name, value, changed FROM counters WHERE hub = ? AND list_id = ?",
                [self.hub, list_id],
            )
        )

    def counters_sent(self, list_id: str, hex_hashes: Iterable[str]) -> None:
        """Per-hash counters an ack now carries: no longer changed since the last ack."""
        self.db.conn.executemany(
            "UPDATE counters SET changed = 0 WHERE hub = ? AND list_id = ? AND hash = ?",
            [(self.hub, list_id, h) for h in hex_hashes],
        )
