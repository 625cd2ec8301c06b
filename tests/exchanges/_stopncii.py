"""The StopNCII-shaped exchange: its records and its ``v1`` endpoints."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from aiohttp import web
from threatexchange.exchanges.clients.stopncii.api import (
    StopNCIICaseStatus,
    StopNCIICSPFeedbackValue,
    StopNCIIEndpoint,
    StopNCIISignalType,
)

from tests.exchanges._loopback import LoopbackExchange, int_param, utcnow

_CASE_PRECEDENCE = (
    StopNCIICaseStatus.Active.value,
    StopNCIICaseStatus.Received.value,
    StopNCIICaseStatus.Withdrawn.value,
    StopNCIICaseStatus.Deleted.value,
)


@dataclass
class StopNCIIRecord:
    """The current state of one (signalType, hashValue): StopNCII serves snapshots."""

    signal_type: str
    hash_value: str
    cases: dict[str, str]
    modified: int
    sequence: int
    feedbacks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def hash_status(self) -> str:
        """The aggregate status: live while any case is, else withdrawn, else deleted."""
        for status in _CASE_PRECEDENCE:
            if status in self.cases.values():
                return status
        return StopNCIICaseStatus.Unknown.value

    @property
    def order(self) -> tuple[int, int]:
        return (self.modified, self.sequence)

    def to_json(self) -> dict[str, Any]:
        return {
            "lastModtimestamp": self.modified,
            "signalType": self.signal_type,
            "hashValue": self.hash_value,
            "hashStatus": self.hash_status,
            "caseNumbers": dict(self.cases),
            "CSPFeedbacks": list(self.feedbacks.values()),
        }


@dataclass(frozen=True)
class _StopNCIICursor:
    start: int
    after: tuple[int, int]


def _enum_value(value: StopNCIISignalType | StopNCIICSPFeedbackValue | str) -> str:
    return value if isinstance(value, str) else value.value


class StopNCIIServer(LoopbackExchange):
    """StopNCII's ``v1`` API: ``FetchHashes``, ``SubmitHashes``, ``SubmitFeedback``.

    ``FetchHashes`` returns the records modified at or after ``startTimestamp``, in
    modification order, ``pageSize`` at a time, with an opaque ``nextPageToken`` while
    more remain. ``nextSetTimestamp`` is where to resume if the token is lost: the last
    served record's time mid-stream and the server's clock once the stream is played
    out (every later change is stamped at or after it). Every request needs the
    subscription key and the endpoint's own function key.
    """

    GARBLED_BODY = b"<html><body>The service is unavailable.</body></html>"
    CONTENT_TYPE = "application/json"
    URL_PREFIX = "/v1"
    MAX_PAGE_SIZE: ClassVar[int] = 1000

    def __init__(
        self,
        *,
        subscription_key: str = "test-subscription-key",
        function_keys: Mapping[StopNCIIEndpoint, str] | None = None,
        csp_name: str = "hashhub",
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(now)
        self.subscription_key = subscription_key
        self.function_keys = dict(
            function_keys
            or {endpoint: f"test-{endpoint.value}-key" for endpoint in StopNCIIEndpoint}
        )
        self.csp_name = csp_name
        self.records: dict[tuple[str, str], StopNCIIRecord] = {}
        self.submitted_hashes: list[dict[str, Any]] = []
        self.submitted_feedback: list[dict[str, Any]] = []
        self._cursors: dict[str, _StopNCIICursor] = {}

    # What a test does to the exchange's data.

    def add(
        self,
        signal_type: StopNCIISignalType | str,
        hash_value: str,
        case_number: str = "case-1",
    ) -> StopNCIIRecord:
        """Open ``case_number`` (Active) on a hash; the hash is new or gains a case.

        Neither argument is checked: an unknown signal type or a malformed hash value is
        how a hostile test makes the exchange serve one.
        """
        key = (_enum_value(signal_type), hash_value)
        record = self.records.get(key)
        if record is None:
            record = StopNCIIRecord(key[0], hash_value, {}, 0, 0)
            self.records[key] = record
        record.cases[case_number] = StopNCIICaseStatus.Active.value
        return self._touch(record)

    def withdraw(
        self, signal_type: StopNCIISignalType | str, hash_value: str, case_number: str | None = None
    ) -> StopNCIIRecord:
        """The person behind ``case_number`` (or every case) withdrew it."""
        return self._set_cases(signal_type, hash_value, case_number, StopNCIICaseStatus.Withdrawn)

    def delete(
        self, signal_type: StopNCIISignalType | str, hash_value: str, case_number: str | None = None
    ) -> StopNCIIRecord:
        """StopNCII deleted ``case_number`` (or every case) of a hash."""
        return self._set_cases(signal_type, hash_value, case_number, StopNCIICaseStatus.Deleted)

    def feedback(
        self,
        signal_type: StopNCIISignalType | str,
        hash_value: str,
        value: StopNCIICSPFeedbackValue | str,
        *,
        source: str = "other-csp",
        tags: Iterable[str] = (),
    ) -> StopNCIIRecord:
        """A content service provider's feedback on a hash (replaces its earlier one)."""
        record = self._record(signal_type, hash_value)
        record.feedbacks[source] = {
            "feedbackValue": _enum_value(value),
            "tags": sorted(tags),
            "source": source,
        }
        return self._touch(record)

    def _record(self, signal_type: StopNCIISignalType | str, hash_value: str) -> StopNCIIRecord:
        key = (_enum_value(signal_type), hash_value)
        if key not in self.records:
            raise KeyError(f"no record for {key}: add it first")
        return self.records[key]

    def _set_cases(
        self,
        signal_type: StopNCIISignalType | str,
        hash_value: str,
        case_number: str | None,
        status: StopNCIICaseStatus,
    ) -> StopNCIIRecord:
        record = self._record(signal_type, hash_value)
        if case_number is not None and case_number not in record.cases:
            raise KeyError(f"{hash_value} has no case {case_number!r}")
        for case in [case_number] if case_number is not None else list(record.cases):
            record.cases[case] = status.value
        return self._touch(record)

    def _touch(self, record: StopNCIIRecord) -> StopNCIIRecord:
        record.modified = self._now_seconds()
        record.sequence = self._next_sequence()
        return record

    # The HTTP side.

    def _routes(self) -> Iterable[web.RouteDef]:
        return [
            web.get("/v1/FetchHashes", self._fetch_hashes),
            web.post("/v1/SubmitHashes", self._submit_hashes),
            web.post("/v1/SubmitFeedback", self._submit_feedback),
        ]

    def _error(self, status: int, message: str) -> web.Response:
        return web.json_response({"statusCode": status, "message": message}, status=status)

    def _refusal(self, request: web.Request, endpoint: StopNCIIEndpoint) -> web.Response | None:
        """401 unless both keys are there and right for ``endpoint``."""
        subscription = request.headers.get("Ocp-Apim-Subscription-Key")
        if subscription is None:
            return self._error(401, "Access denied due to missing subscription key.")
        if not secrets.compare_digest(subscription, self.subscription_key):
            return self._error(401, "Access denied due to invalid subscription key.")
        function_key = request.headers.get("x-functions-key", "")
        expected = self.function_keys.get(endpoint, "")
        if not expected or not secrets.compare_digest(function_key, expected):
            return self._error(401, f"Missing or invalid function key for {endpoint.value}.")
        return None

    async def _fetch_hashes(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request, StopNCIIEndpoint.FetchHashes)
        if refusal is not None:
            return refusal
        try:
            start = int_param(request.query, "startTimestamp", minimum=0)
            page_size = int_param(
                request.query, "pageSize", minimum=1, maximum=self.MAX_PAGE_SIZE, default=800
            )
        except ValueError as e:
            return self._error(400, str(e))
        after = (start, 0)
        token = request.query.get("nextPageToken", "")
        if token:
            cursor = self._cursors.get(token)
            if cursor is None or cursor.start != start:
                return self._error(400, "nextPageToken is unknown or was issued for another start")
            after = cursor.after
        stream = sorted(
            (r for r in self.records.values() if r.modified >= start and r.order > after),
            key=lambda r: r.order,
        )
        page, rest = stream[:page_size], stream[page_size:]
        next_token: str | None = None
        if rest:
            next_token = secrets.token_urlsafe(16)
            self._cursors[next_token] = _StopNCIICursor(start, page[-1].order)
            resume_at = page[-1].modified
        else:
            resume_at = max(start, self._now_seconds())
        return web.json_response(
            {
                "count": len(page),
                "nextPageToken": next_token,
                "nextSetTimestamp": resume_at,
                "hasMoreRecords": bool(rest),
                "hashRecords": [r.to_json() for r in page],
            }
        )

    async def _submit_hashes(self, request: web.Request) -> web.Response:
        """Recorded as sent, not served back: what StopNCII does with them is not public."""
        refusal = self._refusal(request, StopNCIIEndpoint.SubmitHashes)
        if refusal is not None:
            return refusal
        records = await self._json_list(request, "hashRecords")
        if isinstance(records, web.Response):
            return records
        self.submitted_hashes.extend(records)
        return web.json_response({"count": len(records)})

    async def _submit_feedback(self, request: web.Request) -> web.Response:
        """Feedback names a hash by value alone (pytx sends no signal type)."""
        refusal = self._refusal(request, StopNCIIEndpoint.SubmitFeedback)
        if refusal is not None:
            return refusal
        feedbacks = await self._json_list(request, "hashFeedbacks")
        if isinstance(feedbacks, web.Response):
            return feedbacks
        known_values = {v.value for v in StopNCIICSPFeedbackValue}
        targets = []
        for item in feedbacks:  # check every item before changing anything
            value, tags = item.get("feedbackValue"), item.get("tags", [])
            if value not in known_values:
                return self._error(400, f"unknown feedbackValue {value!r}")
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                return self._error(400, "tags must be a list of strings")
            matching = [r for r in self.records.values() if r.hash_value == item.get("hashValue")]
            if not matching:
                return self._error(404, f"no hash {item.get('hashValue')!r}")
            targets.append((str(value), tags, matching))
        for value, tags, matching in targets:
            for record in matching:
                self.feedback(
                    record.signal_type, record.hash_value, value, source=self.csp_name, tags=tags
                )
        self.submitted_feedback.extend(feedbacks)
        return web.json_response({"count": len(feedbacks)})

    async def _json_list(
        self, request: web.Request, name: str
    ) -> list[dict[str, Any]] | web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return self._error(400, "the body is not JSON")
        items = body.get(name) if isinstance(body, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            return self._error(400, f"the body needs a list of objects {name!r}")
        return items
