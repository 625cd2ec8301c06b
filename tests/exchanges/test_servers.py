"""pytx's own clients and exchanges read the loopback StopNCII and NCMEC exchanges.

Each test drives the real python-threatexchange code (blocking, on ``requests``) from a
worker thread, so the test's loop keeps serving. Where pytx surprises (see the
``servers`` module docstring), the test pins what it does today: if pytx changes, the
test says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import pytest
import requests
from threatexchange.exchanges.clients.ncmec.hash_api import (
    NCMECEntryType,
    NCMECEntryUpdate,
)
from threatexchange.exchanges.clients.stopncii.api import (
    FetchHashesResponse,
    StopNCIIAPI,
    StopNCIICaseStatus,
    StopNCIICSPFeedback,
    StopNCIICSPFeedbackValue,
    StopNCIIEndpoint,
    StopNCIIHashRecord,
    StopNCIISignalType,
)
from threatexchange.exchanges.fetch_state import FetchDelta
from threatexchange.exchanges.impl.ncmec_api import NCMECCheckpoint, NCMECSignalExchangeAPI
from threatexchange.exchanges.impl.stop_ncii_api import (
    StopNCIICheckpoint,
    StopNCIISignalExchangeAPI,
    StopNCIISignalMetadata,
)
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal

from tests.exchanges.servers import (
    NCMECServer,
    StopNCIIServer,
    ncmec_client,
    ncmec_credentials,
    ncmec_exchange,
    stopncii_client,
    stopncii_credentials,
    stopncii_exchange,
)
from tests.node.fixtures_sync import Clock

T = TypeVar("T")

PDQ = [f"{i:02x}" * 32 for i in range(1, 8)]
MD5 = [f"{i:02x}" * 16 for i in range(1, 8)]

StopNCIIDelta = FetchDelta[tuple[str, str], StopNCIISignalMetadata, StopNCIICheckpoint]
NCMECDelta = FetchDelta[str, NCMECEntryUpdate, NCMECCheckpoint]


async def blocking(call: Callable[[], T]) -> T:
    """Run a pytx call (blocking I/O) in a worker thread while the servers keep serving."""
    return await asyncio.to_thread(call)


def records_of(pages: list[FetchHashesResponse]) -> dict[str, StopNCIIHashRecord]:
    """StopNCII records by hash value, later pages winning (records are snapshots)."""
    return {r.hashValue: r for page in pages for r in page.hashRecords}


# --- StopNCII ---------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def stopncii(clock: Clock) -> AsyncIterator[StopNCIIServer]:
    async with StopNCIIServer(now=clock) as server:
        yield server


async def stopncii_fetch(
    exchange: StopNCIISignalExchangeAPI, checkpoint: StopNCIICheckpoint | None = None
) -> list[StopNCIIDelta]:
    return await blocking(
        lambda: list(exchange.fetch_iter([PdqSignal, VideoMD5Signal], checkpoint))
    )


async def test_stopncii_client_reads_records_with_cases_and_feedback(
    stopncii: StopNCIIServer, clock: Clock
) -> None:
    stopncii.add(StopNCIISignalType.ImagePDQ, PDQ[0], case_number="case-a")
    stopncii.add(StopNCIISignalType.ImagePDQ, PDQ[0], case_number="case-b")
    stopncii.add(StopNCIISignalType.VideoMD5, MD5[0])
    stopncii.feedback(
        StopNCIISignalType.ImagePDQ,
        PDQ[0],
        StopNCIICSPFeedbackValue.Blocked,
        source="csp-x",
        tags=["reviewed"],
    )
    client = stopncii_client(stopncii)

    page = await blocking(client.fetch_hashes)

    assert (page.count, page.hasMoreRecords, page.nextPageToken) == (2, False, None)
    md5, pdq = page.hashRecords  # in modification order: the feedback changed PDQ[0] last
    assert (pdq.signalType, pdq.hashValue) == (StopNCIISignalType.ImagePDQ, PDQ[0])
    assert pdq.hashStatus is StopNCIICaseStatus.Active
    assert pdq.caseNumbers == {
        "case-a": StopNCIICaseStatus.Active,
        "case-b": StopNCIICaseStatus.Active,
    }
    assert [(f.feedbackValue, f.tags, f.source) for f in pdq.CSPFeedbacks] == [
        (StopNCIICSPFeedbackValue.Blocked, {"reviewed"}, "csp-x")
    ]
    assert pdq.lastModtimestamp == int(clock().timestamp())
    assert (md5.signalType, md5.hashValue, md5.CSPFeedbacks) == (
        StopNCIISignalType.VideoMD5,
        MD5[0],
        [],
    )


async def test_stopncii_pages_in_modification_order_with_an_opaque_token(
    stopncii: StopNCIIServer, clock: Clock
) -> None:
    for value in reversed(PDQ[:5]):  # PDQ[4] changes first, PDQ[0] last
        stopncii.add("ImagePDQ", value)
        clock.advance(1)
    client = stopncii_client(stopncii)

    first = await blocking(lambda: client.fetch_hashes(page_size=2, start_timestamp=10))
    second = await blocking(
        lambda: client.fetch_hashes(
            page_size=2, start_timestamp=10, next_page=first.nextPageToken or ""
        )
    )
    third = await blocking(
        lambda: client.fetch_hashes(
            page_size=2, start_timestamp=10, next_page=second.nextPageToken or ""
        )
    )

    served = [[r.hashValue for r in p.hashRecords] for p in (first, second, third)]
    assert served == [[PDQ[4], PDQ[3]], [PDQ[2], PDQ[1]], [PDQ[0]]]
    assert [p.hasMoreRecords for p in (first, second, third)] == [True, True, False]
    assert first.nextPageToken
    assert first.nextPageToken != second.nextPageToken
    assert third.nextPageToken is None
    # Mid-stream, resume at the last record served; at the end, at the server's clock.
    assert first.nextSetTimestamp == first.hashRecords[-1].lastModtimestamp
    assert third.nextSetTimestamp == int(clock().timestamp())
    sent = [(r.query["pageSize"], r.query.get("nextPageToken")) for r in stopncii.served]
    assert sent == [("2", None), ("2", first.nextPageToken), ("2", second.nextPageToken)]


async def test_stopncii_exchange_made_from_credentials_reads_the_server(
    stopncii: StopNCIIServer,
) -> None:
    stopncii.add("ImagePDQ", PDQ[0])
    exchange = StopNCIISignalExchangeAPI.for_collab(
        stopncii_exchange(stopncii).collab, stopncii_credentials(stopncii)
    )

    deltas = await stopncii_fetch(exchange)

    assert set(deltas[-1].updates) == {("pdq", PDQ[0])}


async def test_stopncii_start_timestamp_is_inclusive(
    stopncii: StopNCIIServer, clock: Clock
) -> None:
    stopncii.add("ImagePDQ", PDQ[0])
    modified = int(clock().timestamp())
    client = stopncii_client(stopncii)

    at = await blocking(lambda: client.fetch_hashes(start_timestamp=modified))
    after = await blocking(lambda: client.fetch_hashes(start_timestamp=modified + 1))

    assert [r.hashValue for r in at.hashRecords] == [PDQ[0]]
    assert (after.count, after.hashRecords) == (0, [])


async def test_stopncii_client_sends_both_keys(stopncii: StopNCIIServer) -> None:
    stopncii.add("ImagePDQ", PDQ[0])

    await blocking(stopncii_client(stopncii).fetch_hashes)

    (request,) = stopncii.served
    assert request.path == "/v1/FetchHashes"
    assert request.headers["Ocp-Apim-Subscription-Key"] == stopncii.subscription_key
    assert (
        request.headers["x-functions-key"] == stopncii.function_keys[StopNCIIEndpoint.FetchHashes]
    )
    assert request.query["startTimestamp"] == str(StopNCIIAPI.DEFAULT_START_TIME)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-functions-key": "test-FetchHashes-key"},
        {"Ocp-Apim-Subscription-Key": "test-subscription-key"},
        {"Ocp-Apim-Subscription-Key": "test-subscription-key", "x-functions-key": "wrong"},
        # A key for another endpoint does not open FetchHashes.
        {
            "Ocp-Apim-Subscription-Key": "test-subscription-key",
            "x-functions-key": "test-SubmitHashes-key",
        },
    ],
)
async def test_stopncii_refuses_fetch_without_both_right_keys(
    stopncii: StopNCIIServer, headers: dict[str, str]
) -> None:
    stopncii.add("ImagePDQ", PDQ[0])
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{stopncii.url}/FetchHashes?startTimestamp=0", headers=headers) as response,
    ):
        body = await response.json()

    assert response.status == 401
    assert body["statusCode"] == 401
    assert "key" in body["message"]
    assert "hashRecords" not in body


async def test_stopncii_client_with_a_wrong_key_raises(stopncii: StopNCIIServer) -> None:
    stopncii.add("ImagePDQ", PDQ[0])
    client = StopNCIIAPI("wrong", "wrong", base_url_override=stopncii.url)

    with pytest.raises(requests.HTTPError, match="401"):
        await blocking(client.fetch_hashes)


@pytest.mark.parametrize(
    "query",
    [
        "pageSize=10",
        "startTimestamp=soon",
        "startTimestamp=0&pageSize=0",
        "startTimestamp=0&pageSize=1001",
        "startTimestamp=0&nextPageToken=made-up",
    ],
)
async def test_stopncii_rejects_bad_fetch_parameters(stopncii: StopNCIIServer, query: str) -> None:
    headers = {
        "Ocp-Apim-Subscription-Key": stopncii.subscription_key,
        "x-functions-key": stopncii.function_keys[StopNCIIEndpoint.FetchHashes],
    }
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{stopncii.url}/FetchHashes?{query}", headers=headers) as response,
    ):
        body = await response.json()

    assert (response.status, body["statusCode"]) == (400, 400)
    assert body["message"]


async def test_stopncii_token_is_only_good_for_its_own_start(stopncii: StopNCIIServer) -> None:
    for value in PDQ[:3]:
        stopncii.add("ImagePDQ", value)
    client = stopncii_client(stopncii)
    first = await blocking(lambda: client.fetch_hashes(page_size=1, start_timestamp=0))

    with pytest.raises(requests.HTTPError, match="400"):
        await blocking(
            lambda: client.fetch_hashes(
                page_size=1, start_timestamp=5, next_page=first.nextPageToken or ""
            )
        )


async def test_stopncii_exchange_reads_more_than_one_page(stopncii: StopNCIIServer) -> None:
    hashes = [f"{i:064x}" for i in range(1, 1002)]  # pytx asks for 800 a page
    for value in hashes:
        stopncii.add("ImagePDQ", value)

    deltas = await stopncii_fetch(stopncii_exchange(stopncii))

    assert [len(d.updates) for d in deltas] == [800, 201]
    fetched = {key for d in deltas for key in d.updates}
    assert fetched == {("pdq", value) for value in hashes}
    assert [r.query.get("nextPageToken") is None for r in stopncii.served] == [True, False]


async def test_stopncii_exchange_resumes_from_its_checkpoint_with_only_newer_records(
    stopncii: StopNCIIServer, clock: Clock
) -> None:
    stopncii.add("ImagePDQ", PDQ[0])
    stopncii.add("VideoMD5", MD5[0])
    clock.advance(60)
    exchange = stopncii_exchange(stopncii)
    first = await stopncii_fetch(exchange)
    checkpoint = first[-1].checkpoint
    assert checkpoint.update_time == int(clock().timestamp())

    clock.advance(60)
    stopncii.add("ImagePDQ", PDQ[1])
    stopncii.feedback("VideoMD5", MD5[0], "NotBlocked", source="csp-y")
    second = await stopncii_fetch(exchange, checkpoint)

    assert {key for d in second for key in d.updates} == {
        ("pdq", PDQ[1]),
        ("video_md5", MD5[0]),
    }
    assert stopncii.served[-1].query["startTimestamp"] == str(checkpoint.update_time)
    md5_metadata = second[-1].updates["video_md5", MD5[0]]
    assert md5_metadata is not None
    assert [f.feedbackValue for f in md5_metadata.feedbacks] == [
        StopNCIICSPFeedbackValue.NotBlocked
    ]


async def test_stopncii_client_sees_withdrawal_and_deletion(
    stopncii: StopNCIIServer, clock: Clock
) -> None:
    for value in PDQ[:3]:
        stopncii.add("ImagePDQ", value, case_number="case-1")
    stopncii.add("ImagePDQ", PDQ[2], case_number="case-2")
    client = stopncii_client(stopncii)
    before = await blocking(lambda: list(client.fetch_hashes_iter()))

    clock.advance(10)
    stopncii.withdraw("ImagePDQ", PDQ[0])
    stopncii.delete("ImagePDQ", PDQ[1])
    stopncii.withdraw("ImagePDQ", PDQ[2], case_number="case-1")  # case-2 still stands
    after = await blocking(
        lambda: list(client.fetch_hashes_iter(start_timestamp=before[-1].nextSetTimestamp))
    )

    records = records_of(after)
    assert {value: r.hashStatus for value, r in records.items()} == {
        PDQ[0]: StopNCIICaseStatus.Withdrawn,
        PDQ[1]: StopNCIICaseStatus.Deleted,
        PDQ[2]: StopNCIICaseStatus.Active,
    }
    assert records[PDQ[2]].caseNumbers == {
        "case-1": StopNCIICaseStatus.Withdrawn,
        "case-2": StopNCIICaseStatus.Active,
    }


async def test_stopncii_exchange_yields_no_tombstone_for_a_withdrawn_hash(
    stopncii: StopNCIIServer, clock: Clock
) -> None:
    """pytx's ``_get_delta_mapping`` tests ``hashValue``, not ``hashStatus``, for Withdrawn.

    So a withdrawn (or deleted) hash comes out of ``fetch_iter`` as live, with
    metadata, and ``naive_convert_to_signal_type`` keeps it: the hub reads the
    client's records (their ``hashStatus``) itself.
    """
    stopncii.add("ImagePDQ", PDQ[0])
    stopncii.add("ImagePDQ", PDQ[1])
    clock.advance(10)
    stopncii.withdraw("ImagePDQ", PDQ[0])
    stopncii.delete("ImagePDQ", PDQ[1])
    exchange = stopncii_exchange(stopncii)

    deltas = await stopncii_fetch(exchange)

    updates = deltas[-1].updates
    assert updates["pdq", PDQ[0]] is not None
    assert updates["pdq", PDQ[1]] is not None
    converted = StopNCIISignalExchangeAPI.naive_convert_to_signal_type(
        [PdqSignal], exchange.collab, updates
    )
    assert set(converted[PdqSignal]) == {PDQ[0], PDQ[1]}


async def test_stopncii_transient_errors_are_retried_by_the_client(
    stopncii: StopNCIIServer,
) -> None:
    stopncii.add("ImagePDQ", PDQ[0])
    stopncii.fail_next(2, status=503)

    page = await blocking(stopncii_client(stopncii).fetch_hashes)

    assert [r.hashValue for r in page.hashRecords] == [PDQ[0]]
    assert [r.status for r in stopncii.served] == [503, 503, 200]


@pytest.mark.slow
async def test_stopncii_persistent_errors_raise(stopncii: StopNCIIServer) -> None:
    stopncii.add("ImagePDQ", PDQ[0])
    stopncii.fail_next(5)

    with pytest.raises(requests.exceptions.RetryError, match="500"):
        await stopncii_fetch(stopncii_exchange(stopncii))
    assert [r.status for r in stopncii.served] == [500] * 5


async def test_stopncii_body_that_is_not_json_raises(stopncii: StopNCIIServer) -> None:
    stopncii.add("ImagePDQ", PDQ[0])
    stopncii.garble_next()

    with pytest.raises(requests.JSONDecodeError):
        await stopncii_fetch(stopncii_exchange(stopncii))


async def test_stopncii_record_of_unknown_signal_type_is_dropped_with_only_a_log(
    stopncii: StopNCIIServer, caplog: pytest.LogCaptureFixture
) -> None:
    """No exception: pytx's client skips a record it cannot parse and logs an error."""
    stopncii.add("ImagePDQ", PDQ[0])
    stopncii.add("AudioHash", "0badc0de")

    with caplog.at_level(logging.ERROR):
        page = await blocking(stopncii_client(stopncii).fetch_hashes)

    assert [r.hashValue for r in page.hashRecords] == [PDQ[0]]
    assert page.count == 2  # the count says two; only one arrives
    assert "AudioHash" in caplog.text


async def test_stopncii_malformed_hash_passes_fetch_and_is_dropped_at_conversion(
    stopncii: StopNCIIServer,
) -> None:
    stopncii.add("ImagePDQ", PDQ[0])
    stopncii.add("ImagePDQ", "not-a-pdq-hash")
    exchange = stopncii_exchange(stopncii)

    deltas = await stopncii_fetch(exchange)

    updates = deltas[-1].updates
    assert set(updates) == {("pdq", PDQ[0]), ("pdq", "not-a-pdq-hash")}
    converted = StopNCIISignalExchangeAPI.naive_convert_to_signal_type(
        [PdqSignal], exchange.collab, updates
    )
    assert set(converted[PdqSignal]) == {PDQ[0]}


async def test_stopncii_feedback_from_the_client_lands_on_the_record(
    stopncii: StopNCIIServer, clock: Clock
) -> None:
    stopncii.add("ImagePDQ", PDQ[0])
    client = stopncii_client(stopncii)
    clock.advance(5)

    await blocking(
        lambda: client.submit_feedback(
            StopNCIISignalType.ImagePDQ, PDQ[0], StopNCIICSPFeedbackValue.Blocked, {"t1"}
        )
    )

    (submission,) = stopncii.submitted_feedback
    assert submission == {"tags": ["t1"], "feedbackValue": "Blocked", "hashValue": PDQ[0]}
    assert (
        stopncii.served[-1].headers["x-functions-key"]
        == stopncii.function_keys[StopNCIIEndpoint.SubmitFeedback]
    )
    (record,) = (await blocking(client.fetch_hashes)).hashRecords
    assert [(f.feedbackValue, f.source) for f in record.CSPFeedbacks] == [
        (StopNCIICSPFeedbackValue.Blocked, stopncii.csp_name)
    ]
    assert record.lastModtimestamp == int(clock().timestamp())


async def test_stopncii_feedback_on_an_unknown_hash_is_refused_and_changes_nothing(
    stopncii: StopNCIIServer,
) -> None:
    stopncii.add("ImagePDQ", PDQ[0])
    client = stopncii_client(stopncii)
    blocked = StopNCIICSPFeedback(StopNCIICSPFeedbackValue.Blocked)
    feedback = {
        (StopNCIISignalType.ImagePDQ, PDQ[0]): blocked,
        (StopNCIISignalType.ImagePDQ, PDQ[1]): blocked,
    }

    with pytest.raises(requests.HTTPError, match="404"):
        await blocking(lambda: client.submit_feedbacks(feedback))

    assert stopncii.records["ImagePDQ", PDQ[0]].feedbacks == {}
    assert stopncii.submitted_feedback == []


@pytest.mark.parametrize(
    "item",
    [
        {"hashValue": PDQ[0], "feedbackValue": "Loved", "tags": []},
        {"hashValue": PDQ[0], "feedbackValue": "Blocked", "tags": "t1"},
    ],
)
async def test_stopncii_rejects_malformed_feedback_and_changes_nothing(
    stopncii: StopNCIIServer, item: dict[str, Any]
) -> None:
    stopncii.add("ImagePDQ", PDQ[0])
    headers = {
        "Ocp-Apim-Subscription-Key": stopncii.subscription_key,
        "x-functions-key": stopncii.function_keys[StopNCIIEndpoint.SubmitFeedback],
    }
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(
            f"{stopncii.url}/SubmitFeedback", json={"count": 1, "hashFeedbacks": [item]}
        ) as response,
    ):
        body = await response.json()

    assert (response.status, body["statusCode"]) == (400, 400)
    assert stopncii.records["ImagePDQ", PDQ[0]].feedbacks == {}
    assert stopncii.submitted_feedback == []


async def test_stopncii_submitted_hash_is_recorded_as_pytx_sends_it(
    stopncii: StopNCIIServer,
) -> None:
    """pytx sends ``str(signal_type)`` as the signalType: the enum's name, not its value."""
    await blocking(
        lambda: stopncii_client(stopncii).submit_hash(StopNCIISignalType.ImagePDQ, PDQ[3])
    )

    (record,) = stopncii.submitted_hashes
    assert record["signalType"] == "StopNCIISignalType.ImagePDQ"
    assert record["hashValue"] == PDQ[3]
    assert record["CSPFeedbacks"] == [{"tags": [], "feedbackValue": "Blocked"}]
    assert stopncii.records == {}


# --- NCMEC ------------------------------------------------------------------------------


@pytest.fixture
def utc_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """pytx formats ``from``/``to`` in local time marked ``Z``: right only in UTC."""
    with local_zone(monkeypatch, "UTC"):
        yield


@contextlib.contextmanager
def local_zone(monkeypatch: pytest.MonkeyPatch, zone: str) -> Iterator[None]:
    """The process's local time zone set to ``zone`` for a while (``time.tzset``)."""
    with monkeypatch.context() as patch:
        patch.setenv("TZ", zone)
        time.tzset()
        try:
            yield
        finally:
            patch.undo()
            time.tzset()


@pytest.fixture
async def ncmec(utc_zone: None) -> AsyncIterator[NCMECServer]:
    async with NCMECServer(page_size=2) as server:
        yield server


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)


async def ncmec_fetch(
    exchange: NCMECSignalExchangeAPI, checkpoint: NCMECCheckpoint | None = None
) -> list[NCMECDelta]:
    return await blocking(
        lambda: list(exchange.fetch_iter([PdqSignal, VideoMD5Signal], checkpoint))
    )


async def reachable_after(checkpoint: NCMECCheckpoint) -> datetime:
    """The checkpoint's time, once pytx's next fetch from it will reach past it.

    pytx fetches up to 5 s before now, so a change stamped at the checkpoint is in the
    next fetch only once a whole second has passed since the last one.
    """
    await asyncio.sleep(max(0.0, checkpoint.get_entries_max_ts + 6 - time.time()))
    return datetime.fromtimestamp(checkpoint.get_entries_max_ts, UTC)


def merged(deltas: list[NCMECDelta]) -> dict[str, NCMECEntryUpdate | None]:
    """The deltas' entries as pytx merges them: a tombstone removes the entry."""
    out: dict[str, NCMECEntryUpdate | None] = {}
    for delta in deltas:
        for key, entry in delta.updates.items():
            out[key] = NCMECSignalExchangeAPI.fetch_value_merge(out.get(key), entry)
    return out


async def test_ncmec_status_names_the_member(ncmec: NCMECServer) -> None:
    status = await blocking(ncmec_client(ncmec).status)

    assert (status.esp_id, status.esp_name) == (1, "Test Member")
    (request,) = ncmec.served
    assert request.path == "/hashsharing/v2/status"
    assert request.headers["Authorization"] == aiohttp.encode_basic_auth(ncmec.user, ncmec.password)


async def test_ncmec_credentials_are_the_servers(ncmec: NCMECServer) -> None:
    credentials = ncmec_credentials(ncmec)
    client = ncmec_client(ncmec)

    assert (credentials.user, credentials.password) == (client.username, client.password)
    assert (await blocking(client.status)).esp_id == ncmec.member_id


async def test_ncmec_client_reads_images_and_videos(ncmec: NCMECServer) -> None:
    when = minutes_ago(10)
    ncmec.add_image(42, "img-1", md5=MD5[0], pdq=PDQ[0], classification="A1", timestamp=when)
    ncmec.add_video(43, "vid-1", md5=MD5[1], classification="B1", timestamp=when)
    start = int(when.timestamp())

    page = await blocking(
        lambda: ncmec_client(ncmec).get_entries(start_timestamp=start, end_timestamp=start + 1)
    )

    image, video = page.updates
    assert (image.id, image.member_id, image.entry_type, image.deleted) == (
        "img-1",
        42,
        NCMECEntryType.image,
        False,
    )
    assert (image.classification, image.fingerprints) == ("A1", {"md5": MD5[0], "pdq": PDQ[0]})
    assert (video.id, video.member_id, video.entry_type) == ("vid-1", 43, NCMECEntryType.video)
    assert video.fingerprints == {"md5": MD5[1]}
    assert (page.max_timestamp, page.next) == (start, "")
    assert ncmec.served[0].query["from"] == when.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_ncmec_range_is_from_inclusive_to_exclusive(ncmec: NCMECServer) -> None:
    when = minutes_ago(10)
    ncmec.add_image(42, "at-start", md5=MD5[0], timestamp=when)
    ncmec.add_image(42, "at-end", md5=MD5[1], timestamp=when + timedelta(seconds=5))
    start = int(when.timestamp())

    page = await blocking(
        lambda: ncmec_client(ncmec).get_entries(start_timestamp=start, end_timestamp=start + 5)
    )

    assert [u.id for u in page.updates] == ["at-start"]


async def test_ncmec_client_pages_through_next_urls(ncmec: NCMECServer) -> None:
    when = minutes_ago(10)
    for i in range(5):
        ncmec.add_image(42, f"img-{i}", pdq=PDQ[i], timestamp=when + timedelta(seconds=i))
    start = int(when.timestamp())

    pages = await blocking(
        lambda: list(
            ncmec_client(ncmec).get_entries_iter(start_timestamp=start, end_timestamp=start + 60)
        )
    )

    assert [[u.id for u in p.updates] for p in pages] == [
        ["img-0", "img-1"],
        ["img-2", "img-3"],
        ["img-4"],
    ]
    info = pages[0].get_next_info()
    assert info is not None
    assert (info.start, info.size, info.max) == (3, 2, 5)
    assert [r.query.get("start") for r in ncmec.served] == [None, "3", "5"]
    assert all(r.path == "/hashsharing/v2/entries" for r in ncmec.served)


async def test_ncmec_exchange_reads_everything_across_pages(ncmec: NCMECServer) -> None:
    when = minutes_ago(30)
    for i in range(5):
        ncmec.add_image(42, f"img-{i}", pdq=PDQ[i], classification="A1", timestamp=when)
    ncmec.add_video(43, "vid-0", md5=MD5[0], timestamp=when + timedelta(minutes=1))
    exchange = ncmec_exchange(ncmec)

    deltas = await ncmec_fetch(exchange)

    entries = merged(deltas)
    assert set(entries) == {f"42-img-{i}" for i in range(5)} | {"43-vid-0"}
    assert any(r.query.get("start") for r in ncmec.served)  # it did page
    converted = NCMECSignalExchangeAPI.naive_convert_to_signal_type(
        [PdqSignal, VideoMD5Signal],
        exchange.collab,
        {k: v for k, v in entries.items() if v is not None},
    )
    assert set(converted[PdqSignal]) == set(PDQ[:5])
    assert converted[PdqSignal][PDQ[0]].member_entries == {42: {"A1"}}
    assert set(converted[VideoMD5Signal]) == {MD5[0]}


async def test_ncmec_exchange_resumes_from_its_checkpoint_with_only_newer_entries(
    ncmec: NCMECServer,
) -> None:
    ncmec.add_image(42, "old", pdq=PDQ[0], timestamp=minutes_ago(30))
    exchange = ncmec_exchange(ncmec)
    first = await ncmec_fetch(exchange)
    checkpoint = first[-1].checkpoint
    assert merged(first).keys() == {"42-old"}
    ncmec.add_image(42, "new", pdq=PDQ[1], timestamp=await reachable_after(checkpoint))
    served_before = len(ncmec.served)

    second = await ncmec_fetch(exchange, checkpoint)

    assert merged(second).keys() == {"42-new"}
    resumed_at = datetime.fromtimestamp(checkpoint.get_entries_max_ts, UTC)
    assert ncmec.served[served_before].query["from"] == resumed_at.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_ncmec_deletion_reaches_the_exchange_as_a_tombstone(ncmec: NCMECServer) -> None:
    ncmec.add_image(42, "img-1", pdq=PDQ[0], classification="A1", timestamp=minutes_ago(30))
    ncmec.add_image(42, "img-2", pdq=PDQ[1], timestamp=minutes_ago(30))
    exchange = ncmec_exchange(ncmec)
    first = await ncmec_fetch(exchange)
    ncmec.delete(42, "img-1", timestamp=await reachable_after(first[-1].checkpoint))

    deltas = await ncmec_fetch(exchange, first[-1].checkpoint)

    (tombstone,) = [e for d in deltas for e in d.updates.values()]
    assert tombstone is not None
    assert (tombstone.id, tombstone.deleted, tombstone.fingerprints) == ("img-1", True, {})
    assert tombstone.entry_type is NCMECEntryType.image
    entries = merged(first)
    entries.update(merged(deltas))
    assert entries == {"42-img-1": None, "42-img-2": entries["42-img-2"]}


async def test_ncmec_refuses_a_wrong_password(ncmec: NCMECServer) -> None:
    ncmec.add_image(42, "img-1", pdq=PDQ[0], timestamp=minutes_ago(30))
    client = ncmec_client(ncmec)
    client.password = "wrong"

    with pytest.raises(requests.HTTPError, match="401"):
        await blocking(client.status)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{ncmec.url}/v2/entries?from=2020-01-01T00:00:00Z") as response,
    ):
        body = await response.read()

    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert b"img-1" not in body
    assert ET.fromstring(body).find("{*}status").text == "401"  # type: ignore[union-attr]


@pytest.mark.parametrize("query", ["", "from=yesterday", "from=2020-01-01T00:00:00Z&start=0"])
async def test_ncmec_rejects_bad_entries_parameters(ncmec: NCMECServer, query: str) -> None:
    auth = {"Authorization": aiohttp.encode_basic_auth(ncmec.user, ncmec.password)}
    async with (
        aiohttp.ClientSession(headers=auth) as session,
        session.get(f"{ncmec.url}/v2/entries?{query}") as response,
    ):
        body = await response.read()

    assert response.status == 400
    assert ET.fromstring(body).find("{*}status").text == "400"  # type: ignore[union-attr]


async def test_ncmec_transient_errors_are_retried_by_the_client(ncmec: NCMECServer) -> None:
    ncmec.fail_next(1, status=502)

    status = await blocking(ncmec_client(ncmec).status)

    assert status.esp_id == ncmec.member_id
    assert [r.status for r in ncmec.served] == [502, 200]


@pytest.mark.slow
async def test_ncmec_persistent_errors_raise(ncmec: NCMECServer) -> None:
    ncmec.add_image(42, "img-1", pdq=PDQ[0], timestamp=minutes_ago(30))
    ncmec.fail_next(5)

    with pytest.raises(requests.exceptions.RetryError, match="500"):
        await ncmec_fetch(ncmec_exchange(ncmec))
    assert [r.status for r in ncmec.served] == [500] * 5


async def test_ncmec_body_that_is_not_xml_raises(ncmec: NCMECServer) -> None:
    ncmec.add_image(42, "img-1", pdq=PDQ[0], timestamp=minutes_ago(30))
    ncmec.garble_next()

    with pytest.raises(ET.ParseError):
        await ncmec_fetch(ncmec_exchange(ncmec))


async def test_ncmec_entry_of_unknown_kind_fails_the_fetch(ncmec: NCMECServer) -> None:
    ncmec.add_image(42, "img-1", pdq=PDQ[0], timestamp=minutes_ago(30))
    ncmec.add_entry("audio", 42, "aud-1", {"md5": MD5[0]}, timestamp=minutes_ago(30))

    with pytest.raises(Exception, match="Failed to parse response") as failure:
        await ncmec_fetch(ncmec_exchange(ncmec))
    assert b"aud-1" in failure.value.args[1]


async def test_ncmec_malformed_fingerprint_is_dropped_at_conversion(
    ncmec: NCMECServer, caplog: pytest.LogCaptureFixture
) -> None:
    ncmec.add_image(42, "good", pdq=PDQ[0], timestamp=minutes_ago(30))
    ncmec.add_image(42, "bad", pdq="not-a-pdq-hash", timestamp=minutes_ago(30))
    exchange = ncmec_exchange(ncmec)

    entries = merged(await ncmec_fetch(exchange))

    assert entries["42-bad"] is not None
    assert entries["42-bad"].fingerprints == {"pdq": "not-a-pdq-hash"}
    with caplog.at_level(logging.WARNING):
        converted = NCMECSignalExchangeAPI.naive_convert_to_signal_type(
            [PdqSignal], exchange.collab, {k: v for k, v in entries.items() if v is not None}
        )
    assert set(converted[PdqSignal]) == {PDQ[0]}
    assert "not-a-pdq-hash" in caplog.text


async def test_ncmec_client_sends_local_time_marked_as_utc(
    ncmec: NCMECServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytx's ``_date_format`` uses ``datetime.fromtimestamp`` (local) with a ``Z``."""
    moment = int(minutes_ago(30).timestamp())
    client = ncmec_client(ncmec)

    with local_zone(monkeypatch, "Etc/GMT-2"):  # POSIX sign: two hours east of UTC
        await blocking(lambda: client.get_entries(start_timestamp=moment, end_timestamp=moment))

    sent = datetime.strptime(ncmec.served[-1].query["from"], "%Y-%m-%dT%H:%M:%SZ")
    assert sent.replace(tzinfo=UTC) - datetime.fromtimestamp(moment, UTC) == timedelta(hours=2)
