"""Where each re-published or contributed record came from: a version's provenance.

A version of an entries list that adds a record of source kind ``hub`` or
``member`` names a provenance document proving each one's origin (PROTOCOL.md
§7.5). The hub has the proof on record already, and this module only gathers it:

- a ``member`` record's entry was made by accepting a contribution, whose bytes and
  sidecar the ``contributions`` table keeps with the entry it made (the first
  accepted, by when it was received, when several made one entry);
- an ``exchange`` record's entry was taken from an exchange's record
  (``exchange_origins``): the record as read and when it was fetched;
- a ``hub`` record's entry was re-published from an upstream record
  (``upstream_origins``): the line, the version that added it, and the header with
  its inclusion proof at the size this hub trusts now
  (``UpstreamStore.proofs``, one reading of the leaves per upstream list).

Publishing refuses a version whose origin is not on record (``Unprocessable``):
a record claiming an origin nobody can check is what §7.5 exists to stop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from hub.errors import Unprocessable
from hub.services.context import HubContext
from hub.services.upstream_store import UpstreamStore
from protocol import Entry
from protocol.provenance import (
    ORIGIN_KINDS,
    ExchangeOrigin,
    MemberOrigin,
    Provenance,
    UpstreamOrigin,
)

__all__ = ["Origins"]


class Origins:
    """Reads the origins on record (``contributions``, ``upstream_origins``)."""

    def __init__(self, ctx: HubContext) -> None:
        self.ctx = ctx

    def provenance(self, list_id: str, adds: Sequence[Entry]) -> Callable[[int], Provenance] | None:
        """The provenance of a version of ``list_id`` adding ``adds`` (given the
        version's number), or None when it adds no record that claims an origin.

        Raises:
            Unprocessable: a record's origin is not on record.
        """
        sourced = [e for e in adds if e.source_kind in ORIGIN_KINDS]
        if not sourced:
            return None
        origins: dict[str, MemberOrigin | UpstreamOrigin | ExchangeOrigin] = {}
        upstream: list[Entry] = []
        exchange: list[Entry] = []
        for entry in sourced:
            if entry.source_kind == "member":
                origins[entry.entry_id] = self._member(entry)
            elif entry.source_kind == "exchange":
                exchange.append(entry)
            else:
                upstream.append(entry)
        origins.update(self._upstream(list_id, upstream))
        origins.update(self._exchange(list_id, exchange))
        return lambda version: Provenance(list_id, version, dict(origins))

    def _member(self, entry: Entry) -> MemberOrigin:
        row = self.ctx.one(
            "SELECT bytes, sig FROM contributions WHERE entry_id = ? AND status = 'accepted' "
            "ORDER BY received, node, seq LIMIT 1",
            [entry.entry_id],
        )
        if row is None:
            raise Unprocessable(
                f"entry {entry.entry_id} has source {entry.source} but no accepted "
                "contribution made it: nothing proves its origin (PROTOCOL.md §7.5)"
            )
        return MemberOrigin(bytes(row["bytes"]), bytes(row["sig"]))

    def _upstream(self, list_id: str, entries: Sequence[Entry]) -> dict[str, UpstreamOrigin]:
        """The origin of each re-published record, the proofs read per upstream list."""
        rows = {
            str(r["entry_id"]): r
            for r in self.ctx.db.query(
                "SELECT * FROM upstream_origins WHERE list_id = ? "
                "AND entry_id IN (SELECT value FROM json_each(?))",
                [list_id, json.dumps([e.entry_id for e in entries])],
            )
        }
        found: dict[str, dict[str, Any]] = {}
        for entry in entries:
            row = rows.get(entry.entry_id)
            if row is None or f"hub:{row['upstream']}" != entry.source:
                raise Unprocessable(
                    f"entry {entry.entry_id} has source {entry.source} but no record of that "
                    "upstream on file: nothing proves its origin (PROTOCOL.md §7.5)"
                )
            found[entry.entry_id] = row
        by_list: dict[tuple[str, str], list[int]] = {}
        for row in found.values():
            key = (str(row["upstream"]), str(row["upstream_list"]))
            by_list.setdefault(key, []).append(int(row["version"]))
        proofs = {
            key: UpstreamStore(self.ctx, key[0]).proofs(key[1], versions)
            for key, versions in by_list.items()
        }
        origins = {}
        for entry_id, row in found.items():
            upstream, upstream_list = str(row["upstream"]), str(row["upstream_list"])
            proof = proofs[(upstream, upstream_list)][int(row["version"])]
            origins[entry_id] = UpstreamOrigin(
                hub=upstream,
                list_id=upstream_list,
                record=bytes(row["line"]),
                header=proof.header,
                size=proof.size,
                root=proof.root,
                proof=proof.proof,
                version=int(row["version"]),
            )
        return origins

    def _exchange(self, list_id: str, entries: Sequence[Entry]) -> dict[str, ExchangeOrigin]:
        """The origin of each record taken from an exchange: the record as read."""
        if not entries:
            return {}
        rows = {
            str(r["entry_id"]): r
            for r in self.ctx.db.query(
                "SELECT * FROM exchange_origins WHERE list_id = ? "
                "AND entry_id IN (SELECT value FROM json_each(?))",
                [list_id, json.dumps([e.entry_id for e in entries])],
            )
        }
        origins = {}
        for entry in entries:
            row = rows.get(entry.entry_id)
            if row is None or f"exchange:{row['exchange']}" != entry.source:
                raise Unprocessable(
                    f"entry {entry.entry_id} has source {entry.source} but no record of that "
                    "exchange on file: nothing proves its origin (PROTOCOL.md §7.5)"
                )
            origins[entry.entry_id] = ExchangeOrigin(
                exchange=str(row["exchange"]),
                api=str(row["api"]),
                hash_hex=str(row["hash"]),
                fetched=str(row["fetched"]),
                record=json.loads(row["record"]),
            )
        return origins
