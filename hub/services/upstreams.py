"""Following upstream hubs and re-publishing what this hub selects from them.

A hub declares its upstreams in its root (PROTOCOL.md §5.6, ``RootChanges``); this
module is how it follows one (docs/adr/0020-federation-follow-package-and-provenance.md):

- **enrolment**: the upstream enrols this hub as one of its nodes. ``follow`` makes
  the node key this hub signs its acks to that upstream with (a key per upstream,
  ``upstreams/<name>/node.key``) and names the lists it reads; ``set_token`` keeps
  the bearer token the upstream's operator sent back (``upstreams/<name>/token``).
  Both are files of mode 0600, never rows, as the hub's own keys are.
- **selection**: which upstream list feeds which of this hub's entries lists, and
  which categories and classifications it takes (``select``).
- **carrying over** (``carry_over``), after each verified update: every standing
  upstream record a selection takes becomes an entry of this hub, of source
  ``hub:<upstream>`` (one entry per upstream entry, with its hash in each list the
  selections map it to), its origin on record (``upstream_origins``) for the
  provenance of the version that publishes it (``hub.services.origins``); a record
  whose metadata the upstream changed changes the entry; one the upstream removed,
  or that no selection takes any longer, retracts the entry with reason
  ``upstream``. A record of source ``hub:<this hub>`` is this hub's own entry come
  back round, and is never taken (a loop).
- **acks** (``sign_acks``): for each upstream list whose applied version moved, an
  ack signed with this hub's node key there, so the upstream sees that this hub
  applied it, as it sees any node's.

The network half (fetching, verifying, posting the acks) is ``hub.following``'s: a
service only reads and writes the database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.ownerfile import write_secret
from hub.errors import Conflict, InvalidRequest, NotFound
from hub.services.context import HubContext
from hub.services.entries import Entries, EntryDraft
from hub.services.keys import Keys
from hub.services.upstream_store import UpstreamStore
from protocol import (
    AppliedVersion,
    Counts,
    Entry,
    ProtocolError,
    SigningKey,
    format_time,
    sign_ack,
)
from protocol.ack import NODE_ID_PATTERN
from protocol.keyfile import load_private_key, write_private_key, write_public_key
from protocol.lists import LIST_ID_PATTERN, hash_type
from protocol.root import Root

__all__ = ["Carried", "FollowSettings", "SignedAck", "Upstreams"]

UPSTREAMS_DIR = "upstreams"
MAX_FOLLOWED_LISTS = 64
STAGE_CHUNK = 10_000
"""New upstream entries staged per statement batch (``Entries.stage_many``)."""


@dataclass(frozen=True)
class FollowSettings:
    """What following one upstream takes: from the root (its URL and pin) and from
    this hub's records (the node id, the lists, the token)."""

    name: str
    url: str
    pinned_root_sha256: str
    node_id: str
    lists: tuple[str, ...]
    token: str | None
    own_name: str
    """This hub's name: a record of source ``hub:<own_name>`` came back round."""
    own_pin: str = ""
    """This hub's root v1 SHA-256: a hub declaring it is following this hub (a loop
    through several hubs, ``hub.upstream_graph``)."""


@dataclass
class Carried:
    """What one carry-over of an upstream staged."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    retracted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Why records a selection takes were not taken (held already, a loop, a term)."""
    lists: set[str] = field(default_factory=set)
    """This hub's lists whose next publish carries the changes."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lists"] = sorted(self.lists)
        return out


@dataclass(frozen=True)
class SignedAck:
    list_id: str
    seq: int
    version: int
    data: bytes
    sig: bytes


@dataclass(frozen=True)
class _Wanted:
    """One upstream record a selection takes, for one list of this hub."""

    list_id: str
    upstream_list: str
    record: Entry
    line: bytes
    version: int


class Upstreams:
    """The ``upstream_follows`` and ``upstream_selections`` tables, the carry-over into
    entries and the acks to each upstream."""

    def __init__(self, ctx: HubContext, keys: Keys, entries: Entries) -> None:
        self.ctx = ctx
        self.keys = keys
        self.entries = entries

    # -- enrolment and selection ------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.ctx.home / UPSTREAMS_DIR / name

    def _declared(self, name: str) -> Root:
        root = self.keys.root()
        if name not in root.upstreams:
            raise NotFound(
                f"root v{root.version} declares no upstream {name[:128]!r}: declare it first "
                "('hashhub upstream add NAME URL --root-sha256 SHA256')"
            )
        return root

    def _row(self, name: str) -> dict[str, Any]:
        self._declared(name)
        row = self.ctx.one("SELECT * FROM upstream_follows WHERE name = ?", [name])
        if row is None:
            raise NotFound(
                f"this hub does not follow upstream {name}: 'hashhub upstream follow {name} "
                "--node-id ID --list LIST'"
            )
        return row

    def follow(self, name: str, node_id: str, lists: Sequence[str], who: str = "operator") -> Path:
        """Follow the declared upstream ``name`` as its node ``node_id``, reading
        ``lists``; returns the public key file its operator enrols (made once: following
        again keeps the key, so the enrolment stands).

        Raises:
            NotFound: the root declares no such upstream.
            InvalidRequest: a bad node id or list id, no list, a list named twice.
        """
        self._declared(name)
        if not isinstance(node_id, str) or not NODE_ID_PATTERN.fullmatch(node_id):
            raise InvalidRequest(f"{str(node_id)[:80]!r} is not a node id")
        if not lists:
            raise InvalidRequest("follow at least one upstream list (--list)")
        if len(lists) > MAX_FOLLOWED_LISTS:
            raise InvalidRequest(f"follow at most {MAX_FOLLOWED_LISTS} lists of one upstream")
        for list_id in lists:
            if not isinstance(list_id, str) or not LIST_ID_PATTERN.fullmatch(list_id):
                raise InvalidRequest(f"{str(list_id)[:80]!r} is not a list id")
        if len(set(lists)) != len(lists):
            raise InvalidRequest("a list is named twice")
        folder = self._dir(name)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_path, public = folder / "node.key", folder / "node.pub"
        if not key_path.exists():
            key = SigningKey.generate()
            write_private_key(key_path, key)
            write_public_key(public, key.public)
        with self.ctx.db.atomic():
            self.ctx.db.execute(
                "INSERT INTO upstream_follows (name, node_id, lists, created) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET node_id = excluded.node_id, "
                "lists = excluded.lists",
                [name, node_id, json.dumps(sorted(lists)), format_time(self.ctx.now())],
            )
            self.ctx.log("upstream.follow", who, {"upstream": name, "node": node_id,
                                                  "lists": sorted(lists)})  # fmt: skip
        return public

    def set_token(self, name: str, token: str, who: str = "operator") -> None:
        """Keep the bearer token the upstream's operator sent for this hub's node."""
        self._row(name)
        token = token.strip()
        if not token or len(token) > 512 or not token.isascii() or not token.isprintable():
            raise InvalidRequest("the token is one line of printable ASCII, at most 512 long")
        write_secret(self._dir(name) / "token", token)
        with self.ctx.db.atomic():
            self.ctx.log("upstream.token", who, {"upstream": name})

    def unfollow(self, name: str, who: str = "operator") -> None:
        """Stop following ``name``: its selections go; entries carried over stay until
        retracted by hand (they were published with their provenance)."""
        self._row(name)
        with self.ctx.db.atomic():
            self.ctx.db.execute("DELETE FROM upstream_selections WHERE upstream = ?", [name])
            self.ctx.db.execute("DELETE FROM upstream_follows WHERE name = ?", [name])
            self.ctx.log("upstream.unfollow", who, {"upstream": name})

    def select(
        self,
        name: str,
        upstream_list: str,
        list_id: str,
        categories: Sequence[str] = (),
        classifications: Sequence[str] = (),
        who: str = "operator",
    ) -> dict[str, Any]:
        """Re-publish the records of ``upstream_list`` into this hub's entries list
        ``list_id``, those of ``categories`` and ``classifications`` only (none: all).

        Raises:
            NotFound: not followed. InvalidRequest: an upstream list not followed, a
                list of this hub that holds no entries, a term its vocabulary lacks.
        """
        row = self._row(name)
        if upstream_list not in json.loads(row["lists"]):
            raise InvalidRequest(
                f"upstream list {str(upstream_list)[:64]!r} is not one this hub follows of {name}"
            )
        self.entries.entries_spec(list_id)
        vocabulary = self.entries.vocabulary()
        for term in categories:
            if term not in vocabulary.categories:
                raise InvalidRequest(f"category {term[:64]!r} is not in this hub's vocabulary")
        for term in classifications:
            if term not in vocabulary.classifications:
                raise InvalidRequest(
                    f"classification {term[:64]!r} is not in this hub's vocabulary"
                )
        selection = {
            "upstream": name,
            "upstream_list": upstream_list,
            "list_id": list_id,
            "categories": json.dumps(sorted(set(categories))),
            "classifications": json.dumps(sorted(set(classifications))),
        }
        with self.ctx.db.atomic():
            self.ctx.db.table("upstream_selections").upsert(
                selection, pk=("upstream", "upstream_list", "list_id")
            )
            self._selections_changed(name)
            self.ctx.log("upstream.select", who, selection)
        return _selection(selection)

    def unselect(self, name: str, upstream_list: str, list_id: str, who: str = "operator") -> None:
        """Stop re-publishing ``upstream_list`` into ``list_id``: the next carry-over
        retracts what it brought (reason ``upstream``)."""
        self._row(name)
        with self.ctx.db.atomic():
            gone = self.ctx.db.execute(
                "DELETE FROM upstream_selections WHERE upstream = ? AND upstream_list = ? "
                "AND list_id = ?",
                [name, upstream_list, list_id],
            ).rowcount
            if not gone:
                raise NotFound(f"no selection of {name}/{upstream_list} into {list_id}")
            self._selections_changed(name)
            self.ctx.log("upstream.unselect", who, {"upstream": name,
                         "upstream_list": upstream_list, "list_id": list_id})  # fmt: skip

    def _selections_changed(self, name: str) -> None:
        self.ctx.db.execute(
            "UPDATE upstream_follows SET selections_changed = 1 WHERE name = ?", [name]
        )

    def needs_carry(self, name: str) -> bool:
        """Whether a carry-over could change anything: a followed list applied a version
        not yet carried over, or the selections changed since the last one. (Reading
        every standing record of a million-entry list costs seconds: a run that
        applied nothing new skips it.)"""
        row = self.ctx.one("SELECT selections_changed FROM upstream_follows WHERE name = ?", [name])
        if row is None:
            return False
        behind = self.ctx.one(
            "SELECT 1 FROM upstream_lists WHERE upstream = ? AND carried_version != "
            "CAST(json_extract(trust, '$.version') AS INTEGER) LIMIT 1",
            [name],
        )
        return bool(row["selections_changed"]) or behind is not None

    def selections(self, name: str) -> list[dict[str, Any]]:
        return [
            _selection(r)
            for r in self.ctx.db.query(
                "SELECT * FROM upstream_selections WHERE upstream = ? "
                "ORDER BY upstream_list, list_id",
                [name],
            )
        ]

    def followed(self) -> list[str]:
        """The upstreams this hub follows (and its root still declares)."""
        declared = self.keys.root().upstreams
        return [
            r["name"]
            for r in self.ctx.db.query("SELECT name FROM upstream_follows ORDER BY name")
            if r["name"] in declared
        ]

    def settings(self, name: str) -> FollowSettings:
        row = self._row(name)
        root = self._declared(name)
        declared = root.upstreams[name]
        token_path = self._dir(name) / "token"
        token = token_path.read_text("ascii").strip() if token_path.exists() else None
        return FollowSettings(
            name=name,
            url=declared.url,
            pinned_root_sha256=declared.root_sha256,
            node_id=row["node_id"],
            lists=tuple(json.loads(row["lists"])),
            token=token,
            own_name=root.name,
            own_pin=self.keys.root_sha256(1),
        )

    def store(self, name: str) -> UpstreamStore:
        return UpstreamStore(self.ctx, name)

    def status(self) -> list[dict[str, Any]]:
        """Each followed upstream: its lists' applied versions, last errors, selections."""
        out = []
        for row in self.ctx.db.query("SELECT * FROM upstream_follows ORDER BY name"):
            name = row["name"]
            store = self.store(name)
            lists = []
            for list_id in json.loads(row["lists"]):
                state = self.ctx.one(
                    "SELECT applied, acked_version, last_error, last_failure FROM upstream_lists "
                    "WHERE upstream = ? AND list_id = ?",
                    [name, list_id],
                )
                lists.append(
                    {
                        "list": list_id,
                        "version": store.applied_version(list_id),
                        "records": store.count(list_id),
                        "applied": state["applied"] if state else None,
                        "acked_version": state["acked_version"] if state else 0,
                        "last_error": state["last_error"] if state else None,
                        "last_failure": state["last_failure"] if state else None,
                    }
                )
            out.append(
                {
                    "upstream": name,
                    "node": row["node_id"],
                    "token": (self._dir(name) / "token").exists(),
                    "lists": lists,
                    "selections": self.selections(name),
                }
            )
        return out

    # -- carrying over ------------------------------------------------------------------

    def carry_over(self, name: str, who: str = "upstream") -> Carried:
        """Bring this hub's entries in line with what the selections take from ``name``'s
        standing records (the module's docstring), in one transaction."""
        settings = self.settings(name)
        store = self.store(name)
        root = self.keys.root()
        carried = Carried()
        touched = self._touched(name, store)
        wanted = self._wanted(name, settings.own_name, store, root, carried, touched)
        with self.ctx.db.atomic():
            current, kept_out = self._carried_entries(name, touched)
            new: list[tuple[str, dict[str, _Wanted]]] = []
            for upstream_entry, records in sorted(wanted.items()):
                held = current.pop(upstream_entry, None)
                if held is None and upstream_entry in kept_out:
                    carried.skipped.append(f"{upstream_entry}: retracted here")
                elif held is None:
                    new.append((upstream_entry, records))
                else:
                    self._follow_change(name, held, records, who, carried)
            for start in range(0, len(new), STAGE_CHUNK):
                self._add(name, new[start : start + STAGE_CHUNK], who, carried)
            for held in current.values():
                entry_id = next(iter(held.values()))["entry_id"]
                self.entries.retract(entry_id, "upstream", who)
                carried.retracted.append(entry_id)
                carried.lists.update(held)
            self.ctx.db.execute(
                "UPDATE upstream_lists SET carried_version = "
                "CAST(json_extract(trust, '$.version') AS INTEGER) WHERE upstream = ?",
                [name],
            )
            self.ctx.db.execute(
                "UPDATE upstream_follows SET selections_changed = 0 WHERE name = ?", [name]
            )
            if carried.added or carried.changed or carried.retracted:
                self.ctx.log("upstream.carry", who, {"upstream": name, **{
                    k: len(v) for k, v in carried.to_dict().items() if k != "lists"}})  # fmt: skip
        return carried

    def _touched(self, name: str, store: UpstreamStore) -> set[str] | None:
        """The upstream entries a carry-over must look at: those whose records changed
        since the last carry-over; None (all of them) when the selections changed since,
        as they decide what is taken. A run that applied 10,000 new records to a list of
        a million reads those 10,000, not the million."""
        row = self.ctx.one("SELECT selections_changed FROM upstream_follows WHERE name = ?", [name])
        if row is None or row["selections_changed"]:
            return None
        touched: set[str] = set()
        for lst in self.ctx.db.query(
            "SELECT list_id, carried_version FROM upstream_lists WHERE upstream = ?", [name]
        ):
            touched |= store.touched(lst["list_id"], int(lst["carried_version"]))
        return touched

    def _wanted(
        self,
        name: str,
        own: str,
        store: UpstreamStore,
        root: Root,
        carried: Carried,
        touched: set[str] | None,
    ) -> dict[str, dict[str, _Wanted]]:
        """Upstream entry id → this hub's list → the record a selection takes for it
        (of the ``touched`` upstream entries only, unless None)."""
        wanted: dict[str, dict[str, _Wanted]] = {}
        for selection in self.selections(name):
            upstream_list, list_id = selection["upstream_list"], selection["list"]
            spec = root.lists.get(list_id)
            trust = store.trust(upstream_list)
            if spec is None or not spec.entries or trust is None:
                continue
            type_row = self.ctx.one(
                "SELECT hash_type FROM upstream_lists WHERE upstream = ? AND list_id = ?",
                [name, upstream_list],
            )
            assert type_row is not None  # a trusted list has its row
            if type_row["hash_type"] != spec.hash_type:
                carried.skipped.append(
                    f"{name}/{upstream_list} holds {type_row['hash_type']}, "
                    f"{list_id} {spec.hash_type}"
                )
                continue
            kind = hash_type(spec.hash_type)
            categories, classifications = selection["categories"], selection["classifications"]
            for line, version in store.standing(upstream_list, touched):
                record = Entry.from_line(line, kind)
                if record.source_kind == "hub" and record.source_ref == own:
                    carried.skipped.append(f"{record.entry_id}: this hub's own entry (a loop)")
                    continue
                if categories and record.category not in categories:
                    continue
                if classifications and record.classification not in classifications:
                    continue
                wanted.setdefault(record.entry_id, {})[list_id] = _Wanted(
                    list_id, upstream_list, record, line, version
                )
        return wanted

    def _carried_entries(
        self, name: str, touched: set[str] | None = None
    ) -> tuple[dict[str, dict[str, dict[str, Any]]], set[str]]:
        """Upstream entry id → this hub's list → origin row, of standing entries; and
        the upstream entries whose entry here this hub retracted itself (withdrawn,
        disputed, retracted by an operator, expired): those are never carried over
        again, or an operator's retraction would be undone by the next run. An entry
        retracted as ``upstream`` (by a carry-over) is neither. Of the ``touched``
        upstream entries only, unless None."""
        standing: dict[str, dict[str, dict[str, Any]]] = {}
        kept_out: set[str] = set()
        sql = (
            "SELECT o.*, i.retracted FROM upstream_origins o "
            "JOIN entry_items i ON i.id = o.entry_id WHERE o.upstream = ?"
        )
        params: list[Any] = [name]
        if touched is not None:
            sql += " AND o.upstream_entry IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(sorted(touched)))
        for row in self.ctx.db.query(sql, params):
            if row["retracted"] is None:
                standing.setdefault(row["upstream_entry"], {})[row["list_id"]] = row
            elif row["retracted"] != "upstream":
                kept_out.add(row["upstream_entry"])
        return standing, kept_out

    def _add(
        self,
        name: str,
        new: Sequence[tuple[str, dict[str, _Wanted]]],
        who: str,
        carried: Carried,
    ) -> None:
        """Stage an entry for each new upstream entry, a chunk at a time; a chunk one of
        whose drafts is refused (a hash held already, a term this hub lacks) is staged
        one by one, so the others go ahead and the refused one is named."""
        drafts = [self._draft(name, records) for _, records in new]
        try:
            ids = self.entries.stage_many(drafts, who, sourced=True)
        except (InvalidRequest, Conflict):
            ids = []
            for (upstream_entry, _), draft in zip(new, drafts, strict=True):
                try:
                    ids += self.entries.stage_many([draft], who, sourced=True)
                except (InvalidRequest, Conflict) as e:
                    carried.skipped.append(f"{upstream_entry}: {e}")
                    ids.append("")
        origins = []
        for entry_id, (upstream_entry, records) in zip(ids, new, strict=True):
            if not entry_id:
                continue
            origins += [
                (entry_id, w.list_id, name, w.upstream_list, upstream_entry, w.line, w.version)
                for w in records.values()
            ]
            carried.added.append(entry_id)
            carried.lists.update(records)
        self.ctx.db.conn.executemany(_KEEP_ORIGIN, origins)

    def _draft(self, name: str, records: dict[str, _Wanted]) -> EntryDraft:
        first = next(iter(records.values())).record
        expires = first.expires if first.expires and first.expires > self.ctx.now() else None
        return EntryDraft(
            tuple((list_id, w.record.hash.hex()) for list_id, w in sorted(records.items())),
            category=first.category,
            classification=first.classification,
            source=f"hub:{name}",
            expires=format_time(expires) if expires else None,
        )

    def _keep_origin(self, entry_id: str, name: str, upstream_entry: str, w: _Wanted) -> None:
        self.ctx.db.execute(
            _KEEP_ORIGIN,
            [entry_id, w.list_id, name, w.upstream_list, upstream_entry, w.line, w.version],
        )

    def _follow_change(
        self,
        name: str,
        held: dict[str, dict[str, Any]],
        records: dict[str, _Wanted],
        who: str,
        carried: Carried,
    ) -> None:
        """An upstream entry this hub carries already: a change of its category or
        classification changes the entry (a new record, so its origin moves to the
        upstream version that changed it)."""
        entry_id = next(iter(held.values()))["entry_id"]
        first = next(iter(records.values())).record
        moved = [w for list_id, w in records.items() if bytes(held.get(list_id, {}).get(
            "line", w.line)) != w.line]  # fmt: skip
        if not moved:
            return  # the upstream records this entry came from stand unchanged
        for w in moved:
            self._keep_origin(entry_id, name, w.record.entry_id, w)
        item = self.ctx.one("SELECT * FROM entry_items WHERE id = ?", [entry_id])
        assert item is not None
        if (item["category"], item["classification"]) == (first.category, first.classification):
            return
        try:
            self.entries.change(
                entry_id,
                category=first.category,
                classification=first.classification,
                who=who,
            )
        except (InvalidRequest, Conflict) as e:
            carried.skipped.append(f"{entry_id}: {e}")
            return
        carried.changed.append(entry_id)
        carried.lists.update(held)

    # -- acks to the upstream -------------------------------------------------------------

    def sign_acks(self, name: str, now: datetime) -> list[SignedAck]:
        """An ack for each followed list whose applied version has not been acked, under
        this hub's node key there, each with the next ``seq``."""
        settings = self.settings(name)
        key = load_private_key(self._dir(name) / "node.key")
        store = self.store(name)
        roots = store.roots()
        if not roots:
            return []
        upstream_root = Root.from_bytes(roots[-1][0])
        out = []
        with self.ctx.db.atomic():
            row = self.ctx.one("SELECT seq FROM upstream_follows WHERE name = ?", [name])
            seq = int(row["seq"]) if row else 0
            for list_id in settings.lists:
                trust = store.trust(list_id)
                acked = self.ctx.one(
                    "SELECT acked_version FROM upstream_lists WHERE upstream = ? AND list_id = ?",
                    [name, list_id],
                )
                if trust is None or trust.version == 0 or acked is None:
                    continue
                if int(acked["acked_version"]) >= trust.version:
                    continue
                seq += 1
                try:
                    data, sig = sign_ack(
                        key=key,
                        node=settings.node_id,
                        list_id=list_id,
                        seq=seq,
                        sent=now,
                        origin=upstream_root.origin(list_id),
                        applied=AppliedVersion(trust.version, trust.compact.root(), trust.state),
                        counts=Counts(),
                    )
                except ProtocolError as e:  # a list the newest root no longer declares
                    raise InvalidRequest(f"cannot sign an ack to {name} for {list_id}: {e}") from e
                out.append(SignedAck(list_id, seq, trust.version, data, sig))
            self.ctx.db.execute("UPDATE upstream_follows SET seq = ? WHERE name = ?", [seq, name])
        return out

    def acked(self, name: str, list_id: str, version: int) -> None:
        """The upstream confirmed this hub's ack of ``version`` of ``list_id``."""
        with self.ctx.db.atomic():
            self.ctx.db.execute(
                "UPDATE upstream_lists SET acked_version = MAX(acked_version, ?) "
                "WHERE upstream = ? AND list_id = ?",
                [version, name, list_id],
            )

    def renumber(self, name: str, last_seq: int) -> None:
        """The upstream holds acks of this node up to ``last_seq`` (its 409, §10.6): the
        next ack is signed above it."""
        with self.ctx.db.atomic():
            self.ctx.db.execute(
                "UPDATE upstream_follows SET seq = MAX(seq, ?) WHERE name = ?", [last_seq, name]
            )


_KEEP_ORIGIN = (
    "INSERT INTO upstream_origins (entry_id, list_id, upstream, upstream_list, "
    "upstream_entry, line, version) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (entry_id, list_id) DO UPDATE SET line = excluded.line, "
    "version = excluded.version, upstream_list = excluded.upstream_list"
)


def _selection(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "upstream": row["upstream"],
        "upstream_list": row["upstream_list"],
        "list": row["list_id"],
        "categories": json.loads(row["categories"]),
        "classifications": json.loads(row["classifications"]),
    }
