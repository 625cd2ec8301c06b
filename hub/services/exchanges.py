"""Taking entries from hash exchanges that are not hubs: StopNCII's, NCMEC's.

An exchange signs nothing a verifier could check, so what this hub takes from one is
its own attestation (PROTOCOL.md §5.7): every record it takes becomes an entry of
source ``exchange:<name>`` whose version's provenance names the record as read and
when it was fetched (§7.5, origin kind ``exchange``), so from that version on the hub
cannot say it acted on anything else.

This module is the database half (the network half, python-threatexchange's clients,
is ``hub.bridging``):

- **configuration** (``add``, ``remove``, ``set_credentials``): an exchange's API
  (``stopncii``, ``ncmec``), base URL, the entries list each hash type goes into,
  and the category and classification its entries get — an exchange's records carry
  no terms of this hub's vocabulary. The credentials are a 0600 file
  (``exchanges/<name>/credentials``), never a row.
- **taking a page** (``take``): one page of records, as the API gave it, with the
  checkpoint that resumes after it, in one transaction, so a fetch that fails half
  way resumes exactly where the last page taken ended. A new active record stages an
  entry (its hashes in the lists their types go into); a record the exchange says its
  submitter withdrew retracts the entry as ``withdrawn``, one it deleted as
  ``upstream``; a record whose hashes changed retracts the old entry and stages a
  new one. An entry this hub retracted itself (an operator, a dispute) is never taken
  again from the exchange, or the next fetch would undo the decision.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from edge.ownerfile import write_secret
from hub.errors import Conflict, InvalidRequest, NotFound
from hub.services.context import HubContext
from hub.services.entries import Entries, EntryDraft
from hub.services.keys import Keys
from protocol import ProtocolError, format_time
from protocol.lists import hash_type
from protocol.root import validate_hub_name

__all__ = [
    "EXCHANGE_APIS",
    "Bridged",
    "ExchangeRecord",
    "ExchangeSettings",
    "Exchanges",
]

EXCHANGES_DIR = "exchanges"

EXCHANGE_APIS: Mapping[str, tuple[str, ...]] = {
    "stopncii": ("pdq", "md5"),
    "ncmec": ("pdq", "md5"),
}
"""Each API this hub reads, and the hash types it can take from it: StopNCII's
``ImagePDQ`` and ``VideoMD5``; NCMEC's ``pdq`` and ``md5`` fingerprints."""

RecordState = Literal["active", "withdrawn", "deleted"]
REASONS: Mapping[str, str] = {"withdrawn": "withdrawn", "deleted": "upstream"}
"""The reason an entry is retracted for when its exchange record is in that state
(PROTOCOL.md §5.7 rule 2): the person who submitted it withdrew it; the exchange
deleted it."""

MAX_CREDENTIALS = 1024
_URL = re.compile(r"https?://[^\s]{1,2040}")


@dataclass(frozen=True)
class ExchangeRecord:
    """One record as an exchange gave it, read into what this hub acts on."""

    key: str
    """The exchange's own identity of the record (StopNCII: signal type and hash;
    NCMEC: member and entry id): a later record of the same key replaces it."""
    state: RecordState
    hashes: Mapping[str, str]
    """Hash type → lowercase hex, of the types this hub can take from the API."""
    record: Mapping[str, Any]
    """The record as read, less anything naming a person or a case: it is published
    in the provenance of the version that adds its entry."""


@dataclass(frozen=True)
class ExchangeSettings:
    """What a fetch from one exchange needs."""

    name: str
    api: str
    url: str
    lists: Mapping[str, str]
    """Hash type → this hub's entries list."""
    category: str
    classification: str
    checkpoint: Mapping[str, Any]
    credentials: str | None


@dataclass
class Bridged:
    """What taking one or more pages of an exchange changed."""

    records: int = 0
    added: list[str] = field(default_factory=list)
    retracted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Why records were not taken (no list for their hash, held already, retracted here)."""
    lists: set[str] = field(default_factory=set)
    """This hub's lists whose next publish carries the changes."""

    def merge(self, other: Bridged) -> None:
        self.records += other.records
        self.added += other.added
        self.retracted += other.retracted
        self.skipped += other.skipped
        self.lists |= other.lists

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lists"] = sorted(self.lists)
        return out


class Exchanges:
    """The ``exchanges``, ``exchange_records`` and ``exchange_origins`` tables."""

    def __init__(self, ctx: HubContext, keys: Keys, entries: Entries) -> None:
        self.ctx = ctx
        self.keys = keys
        self.entries = entries

    def _dir(self, name: str) -> Path:
        return self.ctx.home / EXCHANGES_DIR / name

    def _row(self, name: str) -> dict[str, Any]:
        row = self.ctx.one("SELECT * FROM exchanges WHERE name = ?", [name])
        if row is None:
            raise NotFound(
                f"this hub reads no exchange {str(name)[:128]!r}: 'hashhub exchange add "
                f"{str(name)[:128]} --api API --url URL --into LIST'"
            )
        return row

    # -- configuration -----------------------------------------------------------------

    def add(
        self,
        name: str,
        api: str,
        url: str,
        lists: Sequence[str],
        category: str,
        classification: str,
        who: str = "operator",
    ) -> dict[str, Any]:
        """Read the exchange ``name`` at ``url`` through ``api``; each of ``lists`` (this
        hub's entries lists) takes the hashes of its type. Adding it again changes it
        (the checkpoint stays: nothing already read is read again).

        Raises:
            InvalidRequest: a bad name, API, URL or term; a list that is not an entries
                list, or of a hash type the API does not give; two lists of one type;
                a vocabulary without the source kind ``exchange``.
        """
        try:
            validate_hub_name(name)
        except ProtocolError as e:
            raise InvalidRequest(f"exchange name: {e}") from e
        if api not in EXCHANGE_APIS:
            raise InvalidRequest(
                f"{str(api)[:32]!r} is not an exchange API this hub reads: "
                f"one of {', '.join(EXCHANGE_APIS)}"
            )
        if not isinstance(url, str) or not _URL.fullmatch(url):
            raise InvalidRequest("the URL is http:// or https://, one line, at most 2048 long")
        if not lists:
            raise InvalidRequest("name at least one entries list (--into)")
        by_type: dict[str, str] = {}
        for list_id in lists:
            spec = self.entries.entries_spec(list_id)
            if spec.hash_type not in EXCHANGE_APIS[api]:
                raise InvalidRequest(
                    f"{list_id} holds {spec.hash_type}: {api} gives {', '.join(EXCHANGE_APIS[api])}"
                )
            if spec.hash_type in by_type:
                raise InvalidRequest(
                    f"{by_type[spec.hash_type]} and {list_id} both hold {spec.hash_type}: "
                    "one list per hash type"
                )
            by_type[spec.hash_type] = list_id
        collection = set(self.entries.siblings(lists[0]))
        strays = [lid for lid in lists if lid not in collection]
        if strays:
            raise InvalidRequest(
                f"{', '.join(strays)} and {lists[0]} are not of one collection: an entry's "
                "hashes are in the lists of its collection"
            )
        vocabulary = self.entries.vocabulary()
        if "exchange" not in vocabulary.sources:
            raise InvalidRequest(
                "this hub's vocabulary has no source kind 'exchange': "
                "'hashhub vocabulary add sources exchange' first"
            )
        if category not in vocabulary.categories:
            raise InvalidRequest(f"category {str(category)[:64]!r} is not in the vocabulary")
        if classification not in vocabulary.classifications:
            raise InvalidRequest(
                f"classification {str(classification)[:64]!r} is not in the vocabulary"
            )
        with self.ctx.db.atomic():
            self.ctx.db.execute(
                "INSERT INTO exchanges (name, api, url, lists, category, classification, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "api = excluded.api, url = excluded.url, lists = excluded.lists, "
                "category = excluded.category, classification = excluded.classification",
                [name, api, url, json.dumps(by_type, sort_keys=True), category, classification,
                 format_time(self.ctx.now())],
            )  # fmt: skip
            self.ctx.log("exchange.add", who, {"exchange": name, "api": api, "url": url,
                                               "lists": by_type})  # fmt: skip
        self._dir(name).mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.status(name)[0]

    def set_credentials(self, name: str, credentials: str, who: str = "operator") -> None:
        """Keep the exchange's credentials, in python-threatexchange's own form
        (StopNCII: ``fetch_function_key,subscription_key``; NCMEC: ``user:password``)."""
        row = self._row(name)
        credentials = credentials.strip()
        if (
            not credentials
            or len(credentials) > MAX_CREDENTIALS
            or not credentials.isascii()
            or not credentials.isprintable()
        ):
            raise InvalidRequest(
                f"the credentials are one line of printable ASCII, at most {MAX_CREDENTIALS} long"
            )
        separator = "," if row["api"] == "stopncii" else ":"
        parts = credentials.split(separator)
        if len(parts) != 2 or not all(parts):
            form = (
                "fetch_function_key,subscription_key"
                if row["api"] == "stopncii"
                else "user:password"
            )
            raise InvalidRequest(f"{row['api']} credentials are {form}")
        self._dir(name).mkdir(parents=True, exist_ok=True, mode=0o700)
        write_secret(self._dir(name) / "credentials", credentials)
        with self.ctx.db.atomic():
            self.ctx.log("exchange.credentials", who, {"exchange": name})

    def remove(self, name: str, who: str = "operator") -> None:
        """Stop reading ``name``. Its entries stay until retracted by hand (they were
        published with their provenance); its records and checkpoint go, so reading it
        again starts from the beginning and finds its entries held."""
        self._row(name)
        with self.ctx.db.atomic():
            self.ctx.db.execute("DELETE FROM exchanges WHERE name = ?", [name])
            self.ctx.db.execute("DELETE FROM exchange_records WHERE exchange = ?", [name])
            self.ctx.log("exchange.remove", who, {"exchange": name})
        secret = self._dir(name) / "credentials"
        secret.unlink(missing_ok=True)

    def names(self) -> list[str]:
        return [
            str(r["name"]) for r in self.ctx.db.query("SELECT name FROM exchanges ORDER BY name")
        ]

    def settings(self, name: str, *, credentials: bool = True) -> ExchangeSettings:
        """What reading ``name`` needs; its credentials only when asked for (a fetch
        reads them once, not each page it takes)."""
        row = self._row(name)
        secret = self._dir(name) / "credentials"
        return ExchangeSettings(
            name=name,
            api=row["api"],
            url=row["url"],
            lists=json.loads(row["lists"]),
            category=row["category"],
            classification=row["classification"],
            checkpoint=json.loads(row["checkpoint"]),
            credentials=(
                secret.read_text("ascii").strip() if credentials and secret.exists() else None
            ),
        )

    def status(self, name: str | None = None) -> list[dict[str, Any]]:
        """Each exchange: where it is read, into which lists, how many of its records
        stand as entries here, and its last fetch and error."""
        sql, params = "SELECT * FROM exchanges", []
        if name is not None:
            sql, params = sql + " WHERE name = ?", [name]
        out = []
        for row in self.ctx.db.query(sql + " ORDER BY name", params):
            counts = {
                str(r["state"]): int(r["n"])
                for r in self.ctx.db.query(
                    "SELECT state, count(*) AS n FROM exchange_records WHERE exchange = ? "
                    "GROUP BY state",
                    [row["name"]],
                )
            }
            out.append(
                {
                    "exchange": row["name"],
                    "api": row["api"],
                    "url": row["url"],
                    "lists": json.loads(row["lists"]),
                    "category": row["category"],
                    "classification": row["classification"],
                    "credentials": (self._dir(row["name"]) / "credentials").exists(),
                    "records": {s: counts.get(s, 0) for s in ("active", "withdrawn", "deleted")},
                    "checkpoint": json.loads(row["checkpoint"]),
                    "last_fetch": row["last_fetch"],
                    "last_error": row["last_error"],
                    "last_failure": row["last_failure"],
                }
            )
        return out

    def record_failure(self, name: str, error: str) -> None:
        """Keep a failed fetch's error for ``status`` (the pages taken before it stand)."""
        with self.ctx.db.atomic():
            self.ctx.db.execute(
                "UPDATE exchanges SET last_error = ?, last_failure = ? WHERE name = ?",
                [error[:1000], format_time(self.ctx.now()), name],
            )

    # -- taking records ----------------------------------------------------------------

    def take(
        self,
        name: str,
        records: Sequence[ExchangeRecord],
        checkpoint: Mapping[str, Any],
        fetched: datetime,
        who: str = "exchange",
    ) -> Bridged:
        """Take one page of ``name``'s records and the checkpoint after it, in one
        transaction (the module's docstring)."""
        settings = self.settings(name, credentials=False)
        stamp = format_time(fetched)
        bridged = Bridged(records=len(records))
        with self.ctx.db.atomic():
            new: list[tuple[ExchangeRecord, dict[str, str]]] = []
            for record in records:
                self._take_one(settings, record, stamp, who, bridged, new)
            self._add(settings, new, stamp, who, bridged)
            self.ctx.db.execute(
                "UPDATE exchanges SET checkpoint = ?, last_fetch = ?, last_error = NULL "
                "WHERE name = ?",
                [json.dumps(dict(checkpoint), sort_keys=True), stamp, name],
            )
            if bridged.added or bridged.retracted:
                self.ctx.log("exchange.take", who, {"exchange": name, "records": len(records),
                    "added": len(bridged.added), "retracted": len(bridged.retracted)})  # fmt: skip
        return bridged

    def _take_one(
        self,
        settings: ExchangeSettings,
        record: ExchangeRecord,
        stamp: str,
        who: str,
        bridged: Bridged,
        new: list[tuple[ExchangeRecord, dict[str, str]]],
    ) -> None:
        """Act on one record; an active record that needs a new entry goes in ``new``,
        staged with the others of its page (``_add``)."""
        name = settings.name
        held = self.ctx.one(
            "SELECT r.entry_id, r.state, r.hashes, i.retracted FROM exchange_records r "
            "LEFT JOIN entry_items i ON i.id = r.entry_id WHERE r.exchange = ? AND r.key = ?",
            [name, record.key],
        )
        hashes = {t: h for t, h in sorted(record.hashes.items()) if t in settings.lists}
        held = held or {}
        entry_id: str | None = held.get("entry_id")
        standing = entry_id is not None and held["retracted"] is None
        if record.state != "active":
            if standing:
                assert entry_id is not None
                self.entries.retract(entry_id, REASONS[record.state], who)
                bridged.retracted.append(entry_id)
                bridged.lists.update(self._lists_of(entry_id))
        elif standing and json.loads(held["hashes"]) == hashes:
            pass  # the entry stands as it is: nothing for the lists to publish
        elif entry_id is not None and not standing and held["state"] == "active":
            # Retracted here while the exchange still lists it: this hub's decision.
            bridged.skipped.append(f"{record.key}: its entry {entry_id} was retracted here")
        else:
            if standing:
                assert entry_id is not None
                self.entries.retract(entry_id, "upstream", who)  # its hashes changed
                bridged.retracted.append(entry_id)
                bridged.lists.update(self._lists_of(entry_id))
            new.append((record, hashes))
            entry_id = None  # until ``_add`` stages its new entry
        self._keep_record(name, record, hashes, stamp, entry_id)

    def _keep_record(
        self,
        name: str,
        record: ExchangeRecord,
        hashes: Mapping[str, str],
        stamp: str,
        entry_id: str | None,
    ) -> None:
        self.ctx.db.execute(
            "INSERT INTO exchange_records (exchange, key, state, hashes, record, fetched, "
            "entry_id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (exchange, key) DO UPDATE SET "
            "state = excluded.state, hashes = excluded.hashes, record = excluded.record, "
            "fetched = excluded.fetched, entry_id = excluded.entry_id",
            [name, record.key, record.state, json.dumps(dict(hashes), sort_keys=True),
             json.dumps(dict(record.record), sort_keys=True), stamp, entry_id],
        )  # fmt: skip

    def _add(
        self,
        settings: ExchangeSettings,
        new: Sequence[tuple[ExchangeRecord, dict[str, str]]],
        stamp: str,
        who: str,
        bridged: Bridged,
    ) -> None:
        """Stage the entries of a page's new active records in one go, and what their
        provenance will name; a page one of whose drafts is refused (a hash held
        already) is staged one by one, so the others go ahead and the refused one is
        named."""
        wanted: list[tuple[ExchangeRecord, dict[str, str]]] = []
        for record, hashes in new:
            if hashes:
                wanted.append((record, hashes))
            else:
                given = ", ".join(sorted(record.hashes)) or "no hash this hub takes"
                bridged.skipped.append(f"{record.key}: no list of this hub takes {given}")
        drafts = [
            EntryDraft(
                tuple((settings.lists[t], h) for t, h in hashes.items()),
                category=settings.category,
                classification=settings.classification,
                source=f"exchange:{settings.name}",
            )
            for _, hashes in wanted
        ]
        try:
            ids: list[str | None] = list(self.entries.stage_many(drafts, who, sourced=True))
        except (InvalidRequest, Conflict):
            ids = []
            for (record, _), draft in zip(wanted, drafts, strict=True):
                try:
                    ids += self.entries.stage_many([draft], who, sourced=True)
                except (InvalidRequest, Conflict) as e:
                    bridged.skipped.append(f"{record.key}: {e}")
                    ids.append(None)
        origins = []
        for entry_id, (record, hashes) in zip(ids, wanted, strict=True):
            if entry_id is None:
                continue
            self.ctx.db.execute(
                "UPDATE exchange_records SET entry_id = ? WHERE exchange = ? AND key = ?",
                [entry_id, settings.name, record.key],
            )
            text = json.dumps(dict(record.record), sort_keys=True)
            origins += [
                (entry_id, settings.lists[t], settings.name, settings.api, h, stamp, text)
                for t, h in hashes.items()
            ]
            bridged.added.append(entry_id)
            bridged.lists.update(settings.lists[t] for t in hashes)
        self.ctx.db.conn.executemany(
            "INSERT OR REPLACE INTO exchange_origins (entry_id, list_id, exchange, api, hash, "
            "fetched, record) VALUES (?, ?, ?, ?, ?, ?, ?)",
            origins,
        )

    def _lists_of(self, entry_id: str) -> list[str]:
        return [
            str(r["list_id"])
            for r in self.ctx.db.query(
                "SELECT list_id FROM entry_hashes WHERE entry_id = ?", [entry_id]
            )
        ]


def hash_hex(type_name: str, value: str) -> str | None:
    """``value`` as the lowercase hex of a ``type_name`` hash, or None when it is not
    one (wrong width, not hex): an exchange's malformed record is skipped, not taken."""
    width = hash_type(type_name).length
    text = value.strip().lower()
    if len(text) != 2 * width or not re.fullmatch(r"[0-9a-f]+", text):
        return None
    return text
