"""A person's video submitted as its vPDQ frames, on the real app without a browser.

``POST /submit`` with ``type=vpdq`` carries the video's frames (PROTOCOL.md §6.3) as
hex in the ``hash`` field. The hub keeps the frames once (the ``frames`` table) and
the case their SHA-256, the hash of the ``vpdq`` record that will name them. Each
rule broken is a 400 page naming it (a 413 past the form's cap), and nothing is
stored: neither a case nor frames. An accepted case is staged as an entry by its
record hash and its frames file is published beside the record.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from hub.services.cases import SUBMISSION_MAX_FRAMES
from hub.web.pages import SUBMIT_FORM_BYTES
from protocol.layout import frames_path
from protocol.video import FRAME_BYTES, Frame, encode_frames, read_frames_file
from tests.hub.conftest import Client, count_rows, opened
from tests.hub.test_video_entries import frames_of
from tests.web.hub_support import case_number
from tests.web.test_hub_pages import assert_html_error

VIDEO_LIST = "clips-vpdq"


async def submit(client: Client, **fields: str) -> tuple[int, str]:
    response = await client.post("/submit", data=fields)
    return response.status, await response.text()


def stored(home: Path) -> tuple[int, int]:
    """Cases and frames the hub holds."""
    return count_rows(home, "submissions"), count_rows(home, "frames")


def assert_refused(status: int, page: str, home: Path, expected: str, code: int = 400) -> None:
    assert_html_error(status, page, code)
    assert expected in page
    assert stored(home) == (0, 0)


async def test_a_videos_frames_are_kept_and_the_case_holds_their_sha256(
    client: Client, hub_home: Path
) -> None:
    data = encode_frames(frames_of(1))
    status, page = await submit(client, type="vpdq", hash=data.hex().upper(), quality="")
    assert status == 200, page
    assert "fingerprints of your video's frames were sent" in page
    shown = case_number(page).replace("-", "")
    with opened(hub_home) as hub:
        [row] = hub.db.query("SELECT hash_type, hash, quality FROM submissions")
        assert (row["hash_type"], bytes(row["hash"]), row["quality"]) == (
            "vpdq",
            hashlib.sha256(data).digest(),
            None,
        )
        assert hub.frames.get(hashlib.sha256(data).digest()) == data
        assert hub.cases.get(shown).hash == hashlib.sha256(data).hexdigest()
    response = await client.post("/case", data={"case": shown})
    assert response.status == 200
    assert "waiting for review" in await response.text()


async def test_the_same_video_twice_is_two_cases_and_one_copy_of_its_frames(
    client: Client, hub_home: Path
) -> None:
    data = encode_frames(frames_of(2)).hex()
    for _ in range(2):
        assert (await submit(client, type="vpdq", hash=data))[0] == 200
    assert stored(hub_home) == (2, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (encode_frames(frames_of(3)).hex()[:-2], "is not a whole number of frames"),
        (
            (
                Frame(2000, frames_of(3)[0].pdq, 90).to_bytes()
                + Frame(1000, frames_of(3)[1].pdq, 90).to_bytes()
            ).hex(),
            "is not after the one before",
        ),
        (encode_frames(frames_of(3)).hex().replace("5a", "zz", 1), "frames in hex"),
        ("", "frames in hex"),
        (encode_frames(frames_of(3)).hex() + "0", "frames in hex"),
    ],
    ids=["a-partial-frame", "times-not-ascending", "non-hex", "empty", "odd-length"],
)
async def test_malformed_frames_are_a_400_naming_the_rule_and_nothing_is_kept(
    client: Client, hub_home: Path, value: str, expected: str
) -> None:
    status, page = await submit(client, type="vpdq", hash=value)
    assert_refused(status, page, hub_home, expected)


async def test_a_frame_quality_above_100_is_refused(client: Client, hub_home: Path) -> None:
    data = bytearray(encode_frames(frames_of(4)))
    data[32] = 101  # the first frame's quality byte
    status, page = await submit(client, type="vpdq", hash=data.hex())
    assert_refused(status, page, hub_home, "quality is 0 to 100")


async def test_more_frames_than_an_hour_are_refused_with_the_cap(
    client: Client, hub_home: Path
) -> None:
    data = encode_frames(frames_of(5, count=SUBMISSION_MAX_FRAMES + 1))
    assert 2 * len(data) < SUBMIT_FORM_BYTES  # refused by the rule, not by the form's size
    status, page = await submit(client, type="vpdq", hash=data.hex())
    assert_refused(status, page, hub_home, "at most 3600 frames (an hour at one frame a second)")


async def test_an_hour_of_frames_is_taken(client: Client, hub_home: Path) -> None:
    data = encode_frames(frames_of(6, count=SUBMISSION_MAX_FRAMES))
    status, page = await submit(client, type="vpdq", hash=data.hex())
    assert status == 200, page
    assert stored(hub_home) == (1, 1)


async def test_a_body_past_the_forms_cap_is_a_413_that_says_the_video_cap(
    client: Client, hub_home: Path
) -> None:
    frames = SUBMIT_FORM_BYTES // (2 * FRAME_BYTES) + 1
    data = encode_frames(frames_of(7, count=frames))
    status, page = await submit(client, type="vpdq", hash=data.hex())
    assert_refused(status, page, hub_home, "a video is sent as at most 3600 frames", 413)


@pytest.mark.parametrize(
    ("frames", "good"),
    [
        (frames_of(8, count=2), 2),  # too short
        (frames_of(8, count=10, quality=49), 0),  # every frame too flat
        (
            [
                *frames_of(8, count=2),
                *(Frame(f.millis + 2000, f.pdq, 20) for f in frames_of(9, count=5)),
            ],
            2,
        ),
        ([Frame(1000 * n, frames_of(8)[0].pdq, 90) for n in range(6)], 1),  # a still
        (
            [*frames_of(8, count=2), *(Frame(1000 * n, bytes(32), 100) for n in range(2, 6))],
            2,
        ),
    ],
    ids=[
        "two-frames",
        "all-below-quality-50",
        "two-good-of-seven",
        "one-picture-six-times",
        "zero-hashes-claiming-quality-100",
    ],
)
async def test_frames_with_fewer_than_three_good_frames_are_refused(
    client: Client, hub_home: Path, frames: list[Frame], good: int
) -> None:
    """§6.4 rule 6: a side with fewer than 3 distinct frames of quality 50 or more has no
    share that counts, so such a video could never match anything."""
    status, page = await submit(client, type="vpdq", hash=encode_frames(frames).hex())
    assert_refused(status, page, hub_home, f"frames: {good} distinct frames of quality 50")


async def test_a_video_submission_carries_no_quality(client: Client, hub_home: Path) -> None:
    data = encode_frames(frames_of(10)).hex()
    status, page = await submit(client, type="vpdq", hash=data, quality="90")
    assert_refused(status, page, hub_home, "a vpdq hash has no quality")


async def test_a_record_hash_alone_is_not_a_video_submission(
    client: Client, hub_home: Path
) -> None:
    """The page sends frames; a bare 32-byte hash names frames the hub may not hold."""
    status, page = await submit(client, type="vpdq", hash=hashlib.sha256(b"x").hexdigest())
    assert_refused(status, page, hub_home, "is not a whole number of frames")


async def test_an_accepted_video_case_is_published_with_its_frames_file(
    client: Client, hub_home: Path
) -> None:
    data = encode_frames(frames_of(11))
    record = hashlib.sha256(data).digest()
    status, page = await submit(client, type="vpdq", hash=data.hex())
    assert status == 200, page
    shown = case_number(page).replace("-", "")
    with opened(hub_home) as hub:
        hub.roots.create_list(VIDEO_LIST, "vpdq", label="clips", list_format="entries")
        view = hub.cases.review(
            shown, accept=True, list_id=VIDEO_LIST, category="ncii", classification="confirmed"
        )
        assert (view.status, view.list) == ("accepted", VIDEO_LIST)
        [result] = hub.publishing.publish([VIDEO_LIST])
        assert result.version == 1
        found = hub.files.get(frames_path(VIDEO_LIST, record.hex()))
        assert found is not None
        published, immutable = found
        assert immutable
        assert read_frames_file(record, published) == tuple(frames_of(11))
        assert hub.cases.get(shown).published_version == 1
    response = await client.post("/case", data={"case": shown})
    text = await response.text()
    assert re.search(r"Accepted and published", text), text
