"""Reading an exchange through python-threatexchange's own clients, page by page.

Each API is a generator of pages: the records of one page, read into
``ExchangeRecord`` (the key the exchange knows the record by, its state, its hashes
by this hub's type names, the record as read less anything naming a person or a
case), and the checkpoint that resumes after it. The clients are pytx's, pointed at
the exchange's base URL; they are synchronous (``requests``), so ``hub.bridging``
runs a page's fetch on a worker thread.

- **StopNCII** (``StopNCIIAPI.fetch_hashes_iter``, ``base_url_override``): the
  client's records, read here rather than through ``StopNCIISignalExchangeAPI``:
  that exchange compares ``hashValue``, not ``hashStatus``, with ``Withdrawn`` and
  ``Deleted``, so it never hands on a withdrawal, and a person's withdrawal is what
  must reach every platform. ``ImagePDQ`` is ``pdq``, ``VideoMD5`` is ``md5``; the
  case numbers are dropped (each is a person's case), only how many there are kept.
- **NCMEC** (``NCMECSignalExchangeAPI.fetch_iter``, its client pointed at the URL):
  each update is an entry of a member (ESP), with its fingerprints (``pdq``, ``md5``
  — of an image or a video — become one entry here, its hash in each list) or a
  tombstone (``deleted``). pytx writes the time range it asks for in local time
  marked as UTC, so the hub reads NCMEC only when its local time zone is UTC.

A record whose hash is malformed, or of a type this hub does not take from the API,
has no hash here; ``hub.services.exchanges`` skips it and says so. What a record
keeps is small and bounded (counts of cases and of each feedback, the fingerprints
this hub takes, the names of the others, strings cut short): it is published in a
provenance document, whose origins the publisher budgets per entry.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from threatexchange.exchanges.clients.ncmec import hash_api as ncmec
from threatexchange.exchanges.clients.stopncii import api as stopncii
from threatexchange.exchanges.impl.ncmec_api import (
    NCMECCheckpoint,
    NCMECCollabConfig,
    NCMECSignalExchangeAPI,
    _NCMECPagingInfo,
)
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal

from hub.services.exchanges import ExchangeRecord, RecordState, hash_hex

__all__ = ["PAGES", "Page", "ncmec_pages", "stopncii_pages"]

Page = tuple[list[ExchangeRecord], dict[str, Any]]
"""A page's records and the checkpoint after it."""

_STOPNCII_TYPES = {
    stopncii.StopNCIISignalType.ImagePDQ: "pdq",
    stopncii.StopNCIISignalType.VideoMD5: "md5",
}
_STOPNCII_STATES: Mapping[stopncii.StopNCIICaseStatus, RecordState] = {
    stopncii.StopNCIICaseStatus.Withdrawn: "withdrawn",
    stopncii.StopNCIICaseStatus.Deleted: "deleted",
}
_NCMEC_TYPES = {"pdq": "pdq", "md5": "md5"}


def stopncii_pages(url: str, credentials: str, checkpoint: Mapping[str, Any]) -> Iterator[Page]:
    """StopNCII's records modified since the checkpoint's ``update_time``."""
    fetch_key, _, subscription_key = credentials.partition(",")
    client = stopncii.StopNCIIAPI(subscription_key, fetch_key, base_url_override=url.rstrip("/"))
    start = int(checkpoint.get("update_time", stopncii.StopNCIIAPI.DEFAULT_START_TIME))
    for page in client.fetch_hashes_iter(start_timestamp=start):
        records = [_stopncii_record(r) for r in page.hashRecords]
        yield records, {"update_time": page.nextSetTimestamp}


def _stopncii_record(r: stopncii.StopNCIIHashRecord) -> ExchangeRecord:
    type_name = _STOPNCII_TYPES.get(r.signalType)
    hashed = hash_hex(type_name, r.hashValue) if type_name else None
    return ExchangeRecord(
        key=f"{r.signalType.value}:{r.hashValue.strip().lower()[:128]}",
        state=_STOPNCII_STATES.get(r.hashStatus, "active"),
        hashes={type_name: hashed} if type_name and hashed else {},
        record={
            "cases": len(r.caseNumbers),
            "feedback": dict(
                sorted(Counter(f.feedbackValue.value for f in r.CSPFeedbacks).items())
            ),
            "hashStatus": r.hashStatus.value,
            "hashValue": r.hashValue[:128],
            "lastModtimestamp": r.lastModtimestamp,
            "signalType": r.signalType.value,
        },
    )


class _PointedNCMEC(NCMECSignalExchangeAPI):
    """pytx's NCMEC exchange, its client pointed at ``url`` (pytx names its base URLs
    by environment only)."""

    def __init__(self, url: str, user: str, password: str) -> None:
        collab = NCMECCollabConfig(name="hashhub", environment=ncmec.NCMECEnvironment.Industry)
        super().__init__(collab, user, password)
        self._url = url.rstrip("/")

    def get_client(self, environment: ncmec.NCMECEnvironment) -> ncmec.NCMECHashAPI:
        client = super().get_client(environment)
        client._base_url = self._url
        return client


class LocalTimeError(RuntimeError):
    """The process's local time is not UTC: pytx would ask NCMEC for the wrong hours."""


def ncmec_pages(url: str, credentials: str, checkpoint: Mapping[str, Any]) -> Iterator[Page]:
    """NCMEC's entry updates since the checkpoint, a page of its API at a time.

    Raises:
        LocalTimeError: the hub's local time zone is not UTC. pytx writes the range it
            asks NCMEC for in local time marked ``Z`` (``_date_format``), so anywhere
            else it would skip or repeat hours of updates without a word.
    """
    if time.timezone != 0 or (time.daylight and time.altzone != 0):
        raise LocalTimeError(
            "reading NCMEC needs the hub's local time zone to be UTC (run it with TZ=UTC): "
            "python-threatexchange writes the time range it asks for in local time"
        )
    user, _, password = credentials.partition(":")
    exchange = _PointedNCMEC(url, user, password)
    resume = _ncmec_checkpoint(checkpoint)
    for delta in exchange.fetch_iter([PdqSignal, VideoMD5Signal], resume):
        records = [_ncmec_record(k, u) for k, u in sorted(delta.updates.items()) if u is not None]
        yield records, dataclasses.asdict(delta.checkpoint)


def _ncmec_record(key: str, u: ncmec.NCMECEntryUpdate) -> ExchangeRecord:
    hashes = {}
    for fingerprint, value in sorted(u.fingerprints.items()):
        type_name = _NCMEC_TYPES.get(fingerprint.lower())
        hashed = hash_hex(type_name, value) if type_name and value else None
        if type_name and hashed:
            hashes[type_name] = hashed
    return ExchangeRecord(
        key=key[:128],
        state="deleted" if u.deleted else "active",
        hashes=hashes,
        record={
            "classification": (u.classification or "")[:32] or None,
            "deleted": u.deleted,
            "entry_type": u.entry_type.value,
            "fingerprints": {
                t: hashes[_NCMEC_TYPES[t]]
                for t in sorted(_NCMEC_TYPES)
                if _NCMEC_TYPES[t] in hashes
            },
            "other_fingerprints": sorted(
                t[:32] for t in u.fingerprints if t.lower() not in _NCMEC_TYPES
            )[:16],
            "id": u.id[:64],
            "member_id": u.member_id,
        },
    )


def _ncmec_checkpoint(saved: Mapping[str, Any]) -> NCMECCheckpoint | None:
    if "get_entries_max_ts" not in saved:
        return None
    paging = saved.get("paging_info")
    return NCMECCheckpoint(
        get_entries_max_ts=int(saved["get_entries_max_ts"]),
        paging_info=_NCMECPagingInfo(**paging) if paging else None,
    )


PAGES: Mapping[str, Callable[[str, str, Mapping[str, Any]], Iterator[Page]]] = {
    "stopncii": stopncii_pages,
    "ncmec": ncmec_pages,
}
"""Each API's pages, by the name ``hashhub exchange add --api`` takes."""
