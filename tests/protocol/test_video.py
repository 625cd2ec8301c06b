"""A video's frames (PROTOCOL.md §6.3) and the vPDQ matching rule (§6.4).

The encoding has one form, so its rules are tested one by one and its round trip by
property. The matching rule is tested rule by rule on small made-up videos, and by
the properties any implementation of it keeps: a video matches itself, swapping the
sides swaps the shares, and frames moved 32 bits away never agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocol import Entry, ListSpec, Publisher, Removal, Role, Root, SigningKey, Vocabulary
from protocol.errors import ConsistencyError, LimitError, MalformedError
from protocol.hashtypes import HASH_TYPES
from protocol.layout import body_path, frames_path
from protocol.publisher import ListHead
from protocol.root import ROLE_NAMES
from protocol.video import (
    FRAME_BYTES,
    MAX_FRAME_DISTANCE,
    MAX_FRAMES,
    MAX_FRAMES_BYTES,
    MIN_FRAMES_FOR_SHARE,
    MIN_QUALITY,
    MIN_SHARE,
    Frame,
    decode_frames,
    encode_frames,
    frames_digest,
    match_video,
    read_frames_file,
    share_counts,
)
from tests.protocol.simulator import fixed_key


def pdq(label: object) -> bytes:
    """A stand-in PDQ hash: unrelated labels give hashes about 128 bits apart."""
    return hashlib.sha256(f"video test frame {label}".encode()).digest()


def moved(hash_: bytes, bits: frozenset[int] | set[int]) -> bytes:
    """``hash_`` with the given bit positions (0 = most significant) inverted."""
    mask = sum(1 << (255 - b) for b in bits)
    return (int.from_bytes(hash_, "big") ^ mask).to_bytes(32, "big")


def video(*hashes: bytes, quality: int = 80) -> list[Frame]:
    """Frames of ``hashes``, one a second, all of ``quality``."""
    return [Frame(n * 1000, h, quality) for n, h in enumerate(hashes)]


def clip(labels: range | list[int], quality: int = 80) -> list[Frame]:
    return video(*(pdq(n) for n in labels), quality=quality)


def frame_bytes(hash_: bytes, quality: int, millis: int) -> bytes:
    return hash_ + bytes([quality]) + millis.to_bytes(4, "big")


# -- §6.3 the encoding -------------------------------------------------------------------

FRAMES = st.lists(
    st.tuples(st.binary(min_size=32, max_size=32), st.integers(0, 100)),
    min_size=1,
    max_size=20,
).flatmap(
    lambda rows: st.lists(
        st.integers(0, 2**32 - 1), min_size=len(rows), max_size=len(rows), unique=True
    ).map(
        lambda times: [
            Frame(millis=t, pdq=h, quality=q) for t, (h, q) in zip(sorted(times), rows, strict=True)
        ]
    )
)


@settings(max_examples=200, deadline=None)
@given(FRAMES)
def test_frames_round_trip_and_their_digest_is_the_sha256_of_the_encoding(
    frames: list[Frame],
) -> None:
    data = encode_frames(frames)
    assert len(data) == FRAME_BYTES * len(frames)
    assert decode_frames(data) == tuple(frames)
    assert frames_digest(frames) == hashlib.sha256(data).digest()


def test_a_frame_is_its_hash_its_quality_and_its_time_big_endian() -> None:
    frame = Frame(millis=0x01020304, pdq=bytes(range(32)), quality=77)
    assert frame.to_bytes() == bytes(range(32)) + b"\x4d\x01\x02\x03\x04"
    assert FRAME_BYTES == 37


def test_rule_1_refuses_a_length_that_is_not_whole_frames() -> None:
    data = encode_frames(clip(range(2)))
    with pytest.raises(MalformedError, match="whole number of frames"):
        decode_frames(data[:-1])
    with pytest.raises(MalformedError, match="whole number of frames"):
        decode_frames(data + b"\x00")


def test_rule_2_refuses_no_frame() -> None:
    with pytest.raises(MalformedError, match="at least one frame"):
        decode_frames(b"")
    with pytest.raises(MalformedError):
        encode_frames([])


def test_rule_3_refuses_more_than_the_cap_before_reading_any_frame() -> None:
    one = frame_bytes(pdq("long"), 80, 0)
    with pytest.raises(LimitError, match="above the cap"):
        decode_frames(one * (MAX_FRAMES + 1))  # every frame at 0 ms: the cap decides first
    cap = b"".join(frame_bytes(pdq("long"), 80, n) for n in range(MAX_FRAMES))
    assert len(decode_frames(cap)) == MAX_FRAMES


def test_rule_4_refuses_a_quality_above_100() -> None:
    good = frame_bytes(pdq(0), 100, 0)
    assert decode_frames(good)[0].quality == 100
    with pytest.raises(MalformedError, match="quality"):
        decode_frames(good + frame_bytes(pdq(1), 101, 1))


@pytest.mark.parametrize("second", [0, 999], ids=["equal", "descending"])
def test_rule_5_refuses_a_time_not_after_the_one_before(second: int) -> None:
    data = frame_bytes(pdq(0), 80, 1000) + frame_bytes(pdq(1), 80, second)
    with pytest.raises(MalformedError, match="not after"):
        decode_frames(data)


def test_two_frames_may_share_a_hash_but_not_a_time() -> None:
    assert len(decode_frames(encode_frames(video(pdq(0), pdq(0))))) == 2
    with pytest.raises(MalformedError):
        encode_frames([Frame(5, pdq(0), 80), Frame(5, pdq(1), 80)])


@pytest.mark.parametrize(
    ("millis", "hash_", "quality"),
    [
        (0, bytes(31), 50),
        (0, bytes(32), -1),
        (0, bytes(32), 101),
        (-1, bytes(32), 50),
        (2**32, bytes(32), 50),
    ],
)
def test_a_frame_outside_the_encoding_cannot_be_made(
    millis: int, hash_: bytes, quality: int
) -> None:
    with pytest.raises(MalformedError):
        Frame(millis=millis, pdq=hash_, quality=quality)


# -- §6.4 matching, rule by rule ---------------------------------------------------------


def test_the_constants_are_the_rule() -> None:
    assert (MIN_QUALITY, MAX_FRAME_DISTANCE, MIN_FRAMES_FOR_SHARE) == (50, 31, 3)
    assert (MIN_SHARE.numerator, MIN_SHARE.denominator) == (4, 5)


def test_rule_1_frames_below_quality_50_are_left_out_on_both_sides() -> None:
    listed = clip(range(5))
    dark = clip(range(100, 105), quality=49)
    query = [Frame(n * 1000, f.pdq, f.quality) for n, f in enumerate(listed + dark)]
    result = match_video(query, listed)
    assert result.query_share == (5, 5)
    assert result.matched
    # a listed frame seen only at quality 49 in the query does not agree
    low_copy = clip(range(5), quality=49)
    assert match_video(low_copy, listed).listed_share == (0, 5)
    assert match_video(clip(range(5), quality=50), listed).listed_share == (5, 5)


def test_rule_2_a_hash_repeated_on_one_side_counts_once() -> None:
    title = [pdq("title")] * 6
    query = video(*title, *(pdq(n) for n in range(4)))
    result = match_video(query, clip(range(10)))
    assert result.query_share == (4, 5)
    assert result.matched


@pytest.mark.parametrize(("bits", "agree"), [(30, True), (31, True), (32, False), (33, False)])
def test_rule_3_frames_agree_up_to_distance_31(bits: int, agree: bool) -> None:
    listed = clip(range(5))
    query = video(*(moved(f.pdq, set(range(bits))) for f in listed))
    result = match_video(query, listed)
    assert result.query_share == ((5 if agree else 0), 5)
    assert result.matched is agree


def test_rules_4_and_5_a_trimmed_clip_matches_by_its_share_a_longer_upload_by_the_listed() -> None:
    film = clip(range(10))
    trimmed = match_video(clip(range(5, 10)), film)
    assert (trimmed.query_share, trimmed.listed_share, trimmed.matched) == ((5, 5), (5, 10), True)
    upload = clip([100, 101, 102, 0, 1, 2, 3, 4, 103, 104, 105, 106])
    containing = match_video(upload, clip(range(5)))
    assert (containing.query_share, containing.listed_share) == ((5, 12), (5, 5))
    assert containing.matched


def test_rule_6_a_side_with_fewer_than_3_distinct_good_frames_has_no_share() -> None:
    film = clip(range(10))
    two = match_video([*clip(range(2)), Frame(9000, pdq("blur"), 10)], film)
    assert (two.query_share, two.matched) == ((2, 2), False)
    assert not match_video(film, clip([3, 4])).matched
    assert match_video(film, clip([3, 4, 5])).matched
    assert not match_video(clip([0]), clip([0, 1])).matched  # no share counts: no match


@pytest.mark.parametrize(
    ("share", "counts"),
    [
        ((4, 5), True),
        ((16, 20), True),
        ((39, 49), False),
        ((3, 4), False),
        ((3, 3), True),
        ((2, 2), False),
        ((0, 0), False),
        ((0, 3), False),
    ],
)
def test_rule_7_a_share_counts_at_four_fifths_in_integers(
    share: tuple[int, int], counts: bool
) -> None:
    assert share_counts(share) is counts


# -- §6.4 matching, properties -----------------------------------------------------------

LABELS = st.lists(st.integers(0, 10_000), min_size=1, max_size=12, unique=True)
QUALITIES = st.integers(0, 100)


@st.composite
def videos(draw: st.DrawFn, pool: list[bytes] | None = None) -> list[Frame]:
    """A video of up to 12 frames, hashes drawn from ``pool`` (or fresh), any quality,
    some moved a few bits."""
    count = draw(st.integers(1, 12))
    frames = []
    for n in range(count):
        base = draw(st.sampled_from(pool)) if pool else pdq(draw(st.integers(0, 10_000)))
        bits = draw(st.sets(st.integers(0, 255), max_size=40))
        frames.append(Frame(n * 1000, moved(base, bits), draw(QUALITIES)))
    return frames


@settings(max_examples=150, deadline=None)
@given(LABELS, st.lists(st.integers(50, 100), min_size=12, max_size=12))
def test_a_video_with_three_good_frames_matches_itself(
    labels: list[int], qualities: list[int]
) -> None:
    assume(len(labels) >= MIN_FRAMES_FOR_SHARE)
    frames = [Frame(n * 1000, pdq(x), qualities[n]) for n, x in enumerate(labels)]
    result = match_video(frames, list(frames))
    assert result.matched
    assert result.query_share == result.listed_share == (len(labels), len(labels))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_swapping_the_sides_swaps_the_shares_and_keeps_the_outcome(data: st.DataObject) -> None:
    pool = [pdq(n) for n in range(6)]
    query = data.draw(videos(pool))
    listed = data.draw(videos(pool))
    forth, back = match_video(query, listed), match_video(listed, query)
    assert (back.query_share, back.listed_share) == (forth.listed_share, forth.query_share)
    assert back.matched is forth.matched
    counting = [
        Fraction(*share)
        for share in (forth.query_share, forth.listed_share)
        if share[1] >= MIN_FRAMES_FOR_SHARE
    ]
    assert forth.matched is (bool(counting) and max(counting) >= MIN_SHARE)


@settings(max_examples=100, deadline=None)
@given(LABELS, st.data())
def test_frames_moved_32_bits_never_agree(labels: list[int], data: st.DataObject) -> None:
    listed = clip(labels)
    hashes = [int.from_bytes(f.pdq, "big") for f in listed]
    # the listed frames lie at least 64 apart, so a frame moved 32 bits is ≥ 32 from all
    assume(all((a ^ b).bit_count() >= 64 for i, a in enumerate(hashes) for b in hashes[i + 1 :]))
    query = video(
        *(
            moved(f.pdq, data.draw(st.sets(st.integers(0, 255), min_size=32, max_size=32)))
            for f in listed
        )
    )
    result = match_video(query, listed)
    assert result.query_share == (0, len(labels))
    assert result.listed_share == (0, len(labels))
    assert not result.matched


# -- §6.5 frames files, and a vpdq list's declaration and publication ---------------------


def test_a_frames_file_is_read_against_the_record_that_names_it() -> None:
    data = encode_frames(clip(range(5)))
    assert read_frames_file(hashlib.sha256(data).digest(), data) == decode_frames(data)


def test_rule_1_a_frames_file_over_the_cap_is_refused_before_it_is_hashed() -> None:
    over = bytes(MAX_FRAMES_BYTES + 1)
    with pytest.raises(LimitError, match="cap of 1332000"):
        read_frames_file(hashlib.sha256(over).digest(), over)
    assert MAX_FRAMES_BYTES == MAX_FRAMES * FRAME_BYTES == 1_332_000


def test_rule_2_a_frames_file_of_other_bytes_is_not_the_records() -> None:
    data = encode_frames(clip(range(5)))
    other = encode_frames(clip(range(4)))
    with pytest.raises(ConsistencyError, match="not the record's hash"):
        read_frames_file(hashlib.sha256(data).digest(), other)


def test_rule_3_a_signed_record_of_bytes_that_are_no_frames_is_malformed() -> None:
    backwards = frame_bytes(pdq(1), 80, 1000) + frame_bytes(pdq(2), 80, 0)
    with pytest.raises(MalformedError, match="not after"):
        read_frames_file(hashlib.sha256(backwards).digest(), backwards)


def _video_root(**spec: object) -> tuple[Root, dict[str, list[SigningKey]]]:
    keys = {role: [fixed_key(f"video/{role}")] for role in ROLE_NAMES}
    fields: dict[str, object] = {"label": "tid", "format": "entries", **spec}
    return Root(
        version=1,
        name="hub.example",
        expires=datetime(2027, 1, 1, tzinfo=UTC),
        keys={k.keyid: k.public for ks in keys.values() for k in ks},
        roles={role: Role(tuple(k.keyid for k in keys[role]), 1) for role in ROLE_NAMES},
        lists={"videos": ListSpec("videos", "vpdq", 0, **fields)},  # type: ignore[arg-type]
        vocabulary=Vocabulary(categories=("csam",), classifications=("a1",), sources=("import",)),
    ), keys


def test_a_vpdq_list_holds_entries_and_matches_by_frames_not_distance() -> None:
    assert HASH_TYPES["vpdq"].frames
    assert not HASH_TYPES["vpdq"].perceptual
    with pytest.raises(MalformedError, match="format is entries"):
        ListSpec("videos", "vpdq", 0)
    with pytest.raises(MalformedError, match="needs max_distance 0"):
        ListSpec("videos", "vpdq", 31, format="entries")


def _video_entry(frames: list[Frame], n: int = 1) -> Entry:
    return Entry(
        hash=frames_digest(frames),
        entry_id=f"video-{n}",
        category="csam",
        classification="a1",
        source_kind="import",
        source_ref=None,
        first_seen=datetime(2026, 6, 1, tzinfo=UTC),
        expires=None,
    )


def test_the_publisher_writes_each_added_records_frames_file_before_the_body() -> None:
    root, keys = _video_root()
    frames = clip(range(6))
    entry = _video_entry(frames)
    head = ListHead.empty_entries(root, "videos")
    now = datetime(2026, 6, 2, tzinfo=UTC)
    publication = Publisher(root, keys).publish_entries(
        head, adds=[entry], now=now, frames={entry.hash: encode_frames(frames)}
    )
    paths = list(publication.files)
    frames_file = frames_path("videos", entry.hash.hex())
    assert publication.files[frames_file] == encode_frames(frames)
    assert paths.index(frames_file) < paths.index(
        body_path("videos", publication.header.body.sha256)
    )
    # A metadata change keeps the record's hash: the next version adds the same file.
    changed = replace(entry, expires=datetime(2027, 6, 1, tzinfo=UTC))
    again = Publisher(root, keys).publish_entries(
        publication.head,
        removes=[Removal(entry, "changed")],
        adds=[changed],
        now=now,
        frames={entry.hash: encode_frames(frames)},
    )
    assert again.files[frames_file] == publication.files[frames_file]


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        ({}, MalformedError, "no frames for the record of entry video-1"),
        ("other", ConsistencyError, "not the record's hash"),
    ],
)
def test_the_publisher_refuses_a_record_without_its_own_frames(
    given: object, error: type[Exception], message: str
) -> None:
    root, keys = _video_root()
    frames = clip(range(6))
    entry = _video_entry(frames)
    supplied = {} if given == {} else {entry.hash: encode_frames(clip(range(7)))}
    with pytest.raises(error, match=message):
        Publisher(root, keys).publish_entries(
            ListHead.empty_entries(root, "videos"),
            adds=[entry],
            now=datetime(2026, 6, 2, tzinfo=UTC),
            frames=supplied,
        )
