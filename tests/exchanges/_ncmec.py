"""The NCMEC-shaped exchange: its entries and its hash sharing ``v2`` endpoints."""

from __future__ import annotations

import base64
import contextlib
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from tests.exchanges._loopback import LoopbackExchange, int_param, to_seconds, utcnow

_NCMEC_NAMESPACE = "https://hashsharing.ncmec.org/hashsharing/v2"
_NCMEC_TIME = "%Y-%m-%dT%H:%M:%SZ"
_NCMEC_TIME_MS = "%Y-%m-%dT%H:%M:%S.%fZ"


def _ncmec_time(seconds: int, *, millis: bool = False) -> str:
    when = datetime.fromtimestamp(seconds, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z" if millis else _NCMEC_TIME)


def _parse_ncmec_time(raw: str) -> int:
    """NCMEC's ``Z`` times, with or without milliseconds, read as UTC (as ``Z`` says)."""
    for form in (_NCMEC_TIME, _NCMEC_TIME_MS):
        with contextlib.suppress(ValueError):
            return int(datetime.strptime(raw, form).replace(tzinfo=UTC).timestamp())
    raise ValueError(f"{raw!r} is not a time like 2017-10-20T00:00:00Z")


@dataclass
class NCMECEntry:
    """One member's entry (an image or a video and its fingerprints), as it is now."""

    member_id: int
    id: str
    kind: str
    classification: str | None
    fingerprints: dict[str, str]
    deleted: bool
    timestamp: int
    sequence: int

    def to_xml(self, member_name: str) -> ET.Element:
        """``<image>``/``<video>``, or ``<deletedImage>``/``<deletedVideo>`` once deleted."""
        tag = f"deleted{self.kind[:1].upper()}{self.kind[1:]}" if self.deleted else self.kind
        element = ET.Element(tag)
        ET.SubElement(element, "member", id=str(self.member_id)).text = member_name
        ET.SubElement(element, "timestamp").text = _ncmec_time(self.timestamp)
        ET.SubElement(element, "id").text = self.id
        if self.deleted:
            return element
        if self.classification is not None:
            ET.SubElement(element, "classification").text = self.classification
        prints = ET.SubElement(element, "fingerprints")
        for name, value in self.fingerprints.items():
            ET.SubElement(prints, name).text = value
        return element


class NCMECServer(LoopbackExchange):
    """NCMEC's hash sharing ``v2`` API: ``status`` and ``entries``, behind basic auth.

    ``entries?from=&to=`` lists the entries whose latest change falls in ``[from, to)``
    (so consecutive ranges share nothing), in the order they changed, not by time
    within a page; a ``paging/next`` URL, relative to the environment's base as NCMEC
    gives it, carries ``start``, ``size`` and ``max`` for the next page.
    """

    GARBLED_BODY = b'<?xml version="1.0"?><queryResult><images count="2"><image><id>'
    CONTENT_TYPE = "application/xml"
    URL_PREFIX = "/hashsharing"

    def __init__(
        self,
        *,
        user: str = "test-user",
        password: str = "test-password",
        member_id: int = 1,
        member_name: str = "Test Member",
        page_size: int = 1000,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(now)
        if page_size < 1:
            raise ValueError(f"page_size {page_size}: need at least 1")
        self.user = user
        self.password = password
        self.member_id = member_id
        self.page_size = page_size
        self.member_names: dict[int, str] = {member_id: member_name}
        self.entries: dict[tuple[int, str], NCMECEntry] = {}

    # What a test does to the exchange's data.

    def add_image(
        self,
        member_id: int,
        id: str,
        *,
        md5: str | None = None,
        sha1: str | None = None,
        pdq: str | None = None,
        pdna: str | None = None,
        classification: str | None = None,
        timestamp: datetime | None = None,
    ) -> NCMECEntry:
        """A member adds (or changes) an image entry."""
        prints = {"md5": md5, "sha1": sha1, "pdq": pdq, "pdna": pdna}
        return self.add_entry("image", member_id, id, prints, classification, timestamp)

    def add_video(
        self,
        member_id: int,
        id: str,
        *,
        md5: str | None = None,
        sha1: str | None = None,
        classification: str | None = None,
        timestamp: datetime | None = None,
    ) -> NCMECEntry:
        """A member adds (or changes) a video entry."""
        prints = {"md5": md5, "sha1": sha1}
        return self.add_entry("video", member_id, id, prints, classification, timestamp)

    def add_entry(
        self,
        kind: str,
        member_id: int,
        id: str,
        fingerprints: Mapping[str, str | None],
        classification: str | None = None,
        timestamp: datetime | None = None,
    ) -> NCMECEntry:
        """Any entry, unchecked: a hostile test serves a kind NCMEC has not got this way."""
        entry = NCMECEntry(
            member_id=member_id,
            id=id,
            kind=kind,
            classification=classification,
            fingerprints={k: v for k, v in fingerprints.items() if v is not None},
            deleted=False,
            timestamp=self._stamp(timestamp),
            sequence=self._next_sequence(),
        )
        self.entries[(member_id, id)] = entry
        return entry

    def delete(self, member_id: int, id: str, *, timestamp: datetime | None = None) -> NCMECEntry:
        """The member deletes its entry: from now on it is served as a tombstone."""
        entry = self.entries.get((member_id, id))
        if entry is None:
            raise KeyError(f"member {member_id} has no entry {id!r}")
        entry.deleted = True
        entry.fingerprints = {}
        entry.classification = None
        entry.timestamp = self._stamp(timestamp)
        entry.sequence = self._next_sequence()
        return entry

    def _stamp(self, timestamp: datetime | None) -> int:
        return self._now_seconds() if timestamp is None else to_seconds(timestamp)

    # The HTTP side.

    def _routes(self) -> Iterable[web.RouteDef]:
        return [
            web.get(f"{self.URL_PREFIX}/v2/status", self._status),
            web.get(f"{self.URL_PREFIX}/v2/entries", self._entries),
        ]

    def _error(self, status: int, message: str) -> web.Response:
        root = ET.Element("error", xmlns=_NCMEC_NAMESPACE)
        ET.SubElement(root, "status").text = str(status)
        ET.SubElement(root, "message").text = message
        headers = {"WWW-Authenticate": 'Basic realm="hashsharing"'} if status == 401 else None
        return web.Response(
            status=status, body=_xml_bytes(root), content_type=self.CONTENT_TYPE, headers=headers
        )

    def _refusal(self, request: web.Request) -> web.Response | None:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True).decode("utf-8")
        except ValueError:
            given = ""
        user, colon, password = given.partition(":")
        if scheme.lower() != "basic" or not colon:
            return self._error(401, "basic authentication is required")
        if not (
            secrets.compare_digest(user, self.user)
            and secrets.compare_digest(password, self.password)
        ):
            return self._error(401, "wrong user or password")
        return None

    def _xml(self, root: ET.Element) -> web.Response:
        return web.Response(body=_xml_bytes(root), content_type=self.CONTENT_TYPE)

    async def _status(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        root = ET.Element("status", xmlns=_NCMEC_NAMESPACE)
        ET.SubElement(root, "ipAddress").text = request.remote or "127.0.0.1"
        ET.SubElement(root, "username").text = self.user
        ET.SubElement(root, "member", id=str(self.member_id)).text = self.member_names[
            self.member_id
        ]
        return self._xml(root)

    async def _entries(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            start_time = _parse_ncmec_time(request.query.get("from", ""))
            end_time = _parse_ncmec_time(
                request.query.get("to") or _ncmec_time(self._now_seconds())
            )
            start = int_param(request.query, "start", minimum=1, default=1)
            size = int_param(request.query, "size", minimum=1, default=self.page_size)
        except ValueError as e:
            return self._error(400, str(e))
        in_range = sorted(
            (e for e in self.entries.values() if start_time <= e.timestamp < end_time),
            key=lambda e: e.sequence,
        )
        page = in_range[start - 1 : start - 1 + size]
        root = ET.Element("queryResult", xmlns=_NCMEC_NAMESPACE)
        for container, videos in (("images", False), ("videos", True)):
            members = [e for e in page if (e.kind == "video") == videos]
            if not members:
                continue
            group = ET.SubElement(
                root,
                container,
                count=str(len(members)),
                maxTimestamp=_ncmec_time(max(e.timestamp for e in members)),
            )
            group.extend(e.to_xml(self._member_name(e.member_id)) for e in members)
        if start - 1 + size < len(in_range):
            query = {
                "from": _ncmec_time(start_time, millis=True),
                "to": _ncmec_time(end_time, millis=True),
                "start": start + size,
                "size": size,
                "max": len(in_range),
            }
            paging = ET.SubElement(root, "paging")
            ET.SubElement(paging, "next").text = f"/v2/entries?{urlencode(query)}"
        return self._xml(root)

    def _member_name(self, member_id: int) -> str:
        return self.member_names.get(member_id, f"Member {member_id}")


def _xml_bytes(root: ET.Element) -> bytes:
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document
