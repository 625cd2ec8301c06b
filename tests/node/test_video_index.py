"""The video index answers exactly as §6.4's rule run against every listed entry.

``protocol.video.match_video`` is the reference (every pair of frames compared);
the index must give the same matched entries with the same shares, whatever the
frames: random or built around a few scenes, at distance exactly 31 and 32,
duplicated, of low quality, entries of one or two good frames, a trimmed clip of an
entry, an upload that contains one. The conformance vectors decide the same way
through the index. Both multi-index engines are run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node import multiindex_kernel
from node.multiindex import select_engine
from node.video_index import VideoIndex, VideoMatchResult, distinct_good_frames
from protocol.video import Frame, decode_frames, match_video
from tests.protocol.test_vectors import case, case_names

ENGINES = ["numpy", *(["kernel"] if multiindex_kernel.KERNEL is not None else [])]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test runs with every built engine, and leaves the default one."""
    select_engine(request.param)
    yield str(request.param)
    select_engine(None)


def frame(value: int, quality: int = 80, millis: int = 0) -> Frame:
    return Frame(millis=millis, pdq=value.to_bytes(32, "big"), quality=quality)


def video(values: Sequence[int], quality: int = 80) -> list[Frame]:
    """Frames one second apart, one per hash value."""
    return [frame(v, quality, 1000 * n) for n, v in enumerate(values)]


def flip(value: int, bits: Sequence[int]) -> int:
    for b in bits:
        value ^= 1 << b
    return value


def brute(
    query: Sequence[Frame], entries: Mapping[str, Sequence[Frame]]
) -> dict[str, tuple[tuple[int, int], tuple[int, int]]]:
    """§6.4 against every entry: the matched ones with their shares."""
    out = {}
    for entry, frames in entries.items():
        result = match_video(query, frames)
        if result.matched:
            out[entry] = (result.query_share, result.listed_share)
    return out


def answered(results: list[VideoMatchResult]) -> dict[str, tuple[tuple[int, int], tuple[int, int]]]:
    return {r.entry: (r.query_share, r.listed_share) for r in results}


def assert_same_as_brute(query: Sequence[Frame], entries: Mapping[str, Sequence[Frame]]) -> None:
    results = VideoIndex.build(entries).match(query)
    assert answered(results) == brute(query, entries)
    assert len({r.entry for r in results}) == len(results)
    shares = [r.best_share for r in results]
    assert shares == sorted(shares, reverse=True)


# -- property: the index equals the brute-force rule ------------------------------------------

SCENE = st.integers(min_value=0, max_value=2**256 - 1)
QUALITY = st.sampled_from([0, 49, 50, 51, 100])
FLIPS = st.sampled_from([0, 1, 2, 14, 15, 16, 17, 30, 31, 32, 33, 60])


@st.composite
def frame_runs(draw: st.DrawFn, scenes: Sequence[int], most: int) -> list[Frame]:
    """Frames near a few scenes: each a scene with 0-60 distinct bits flipped, so
    pairs of frames lie at distances around 31 and 32 and some are duplicates."""
    count = draw(st.integers(min_value=0, max_value=most))
    frames = []
    for n in range(count):
        scene = draw(st.sampled_from(scenes))
        flips = draw(FLIPS)
        bits = draw(st.lists(st.integers(0, 255), min_size=flips, max_size=flips, unique=True))
        frames.append(frame(flip(scene, bits), draw(QUALITY), 1000 * n))
    return frames


@st.composite
def listings(draw: st.DrawFn) -> tuple[list[Frame], dict[str, list[Frame]]]:
    """Entries and a query drawn around shared scenes: the query is an entry, a
    trimmed part of one, an entry with frames around it, or frames of its own."""
    scenes = draw(st.lists(SCENE, min_size=1, max_size=4, unique=True))
    entries = {f"entry-{n}": draw(frame_runs(scenes, 9)) for n in range(draw(st.integers(1, 6)))}
    shape = draw(st.sampled_from(["own", "entry", "trimmed", "containing"]))
    source = draw(st.sampled_from(sorted(entries)))
    own = draw(frame_runs(scenes, 9))
    listed = entries[source]
    if shape == "own":
        picked = own
    elif shape == "entry":
        picked = listed
    elif shape == "trimmed":
        start = draw(st.integers(0, len(listed)))
        picked = listed[start : draw(st.integers(start, len(listed)))]
    else:
        cut = draw(st.integers(0, len(own)))
        picked = own[:cut] + listed + own[cut:]
    query = [frame(int.from_bytes(f.pdq, "big"), f.quality, 1000 * n) for n, f in enumerate(picked)]
    return query, entries


@settings(max_examples=150, deadline=None)
@given(drawn=listings())
def test_index_answers_as_the_rule_against_every_entry(
    drawn: tuple[list[Frame], dict[str, list[Frame]]],
) -> None:
    query, entries = drawn
    assert_same_as_brute(query, entries)


@settings(max_examples=40, deadline=None)
@given(
    entries=st.dictionaries(
        st.text(min_size=1, max_size=4),
        st.lists(st.builds(frame, SCENE, QUALITY), max_size=6),
        max_size=5,
    ),
    query=st.lists(st.builds(frame, SCENE, QUALITY), max_size=6),
)
def test_random_frames_match_nothing_the_rule_does_not_match(
    entries: dict[str, list[Frame]], query: list[Frame]
) -> None:
    """Unrelated random hashes (about 128 bits apart) meet only where they are equal."""
    assert_same_as_brute(query, entries)


# -- the rule's edges, one by one --------------------------------------------------------------


def test_frames_at_distance_31_agree_and_at_32_do_not(engine: str) -> None:
    base = [random.Random(n).getrandbits(256) for n in range(5)]
    at_31 = [flip(v, range(31)) for v in base]
    at_32 = [flip(v, range(32)) for v in base]
    index = VideoIndex.build({"listed": video(base)})
    assert answered(index.match(video(at_31))) == {"listed": ((5, 5), (5, 5))}
    assert index.match(video(at_32)) == []
    # Four of five at 31 is still 4/5; three of five is not.
    assert answered(index.match(video(at_31[:4] + at_32[4:]))) == {"listed": ((4, 5), (4, 5))}
    assert index.match(video(at_31[:3] + at_32[3:])) == []


def test_a_duplicated_frame_counts_once_on_either_side(engine: str) -> None:
    base = [random.Random(10 + n).getrandbits(256) for n in range(4)]
    listed = video([base[0]] * 6 + base[1:])  # 9 frames, 4 distinct
    query = video(base[:3] * 3)  # 9 frames, 3 distinct
    results = VideoIndex.build({"listed": listed}).match(query)
    assert answered(results) == {"listed": ((3, 3), (3, 4))}
    assert answered(results) == brute(query, {"listed": listed})


def test_low_quality_frames_are_left_out_of_both_sides(engine: str) -> None:
    base = [random.Random(20 + n).getrandbits(256) for n in range(5)]
    listed = [*video(base), frame(base[0] ^ 1, 49, 9000)]
    query = [*video(base[:4]), frame(base[4], 49, 9000)]
    results = VideoIndex.build({"listed": listed}).match(query)
    assert answered(results) == {"listed": ((4, 4), (4, 5))}
    assert VideoIndex.build({"listed": video(base, quality=49)}).match(video(base)) == []
    assert VideoIndex.build({"listed": video(base)}).match(video(base, quality=0)) == []


def test_an_entry_of_one_or_two_good_frames_matches_only_by_the_query_share(
    engine: str,
) -> None:
    still = random.Random(30).getrandbits(256)
    near = [flip(still, range(n, n + 3)) for n in (0, 50, 100)]
    entries = {"one": video([still]), "two": video([still, flip(still, range(200, 202))])}
    index = VideoIndex.build(entries)
    # Three query frames all near the still: the query's share counts and is 3/3.
    assert answered(index.match(video(near))) == {
        "one": ((3, 3), (1, 1)),
        "two": ((3, 3), (2, 2)),
    }
    # The listed shares do not count (one and two frames): the query's decided.
    assert [r.best_share for r in index.match(video(near))] == [1, 1]
    # A query of two frames: neither share counts, whatever its value.
    assert index.match(video(near[:2])) == []
    # Four frames, one unrelated: 3/4 is below 4/5 and the listed 1/1 does not count.
    other = random.Random(31).getrandbits(256)
    assert index.match(video([*near, other])) == []
    assert brute(video([*near, other]), entries) == {}


def test_a_trimmed_clip_matches_by_its_own_share_and_an_upload_containing_an_entry_by_the_entrys(
    engine: str,
) -> None:
    rng = random.Random(40)
    film = [rng.getrandbits(256) for _ in range(30)]
    clip = [rng.getrandbits(256) for _ in range(5)]
    entries = {"film": video(film), "clip": video(clip)}
    index = VideoIndex.build(entries)
    trimmed = video([flip(v, rng.sample(range(256), 12)) for v in film[10:20]])
    assert answered(index.match(trimmed)) == {"film": ((10, 10), (10, 30))}
    upload = video([rng.getrandbits(256) for _ in range(8)] + clip + film[:2])
    assert answered(index.match(upload)) == {"clip": ((5, 15), (5, 5))}
    for query in (trimmed, upload):
        assert answered(index.match(query)) == brute(query, entries)


def test_a_frame_shared_by_several_entries_counts_for_each(engine: str) -> None:
    rng = random.Random(50)
    intro = [rng.getrandbits(256) for _ in range(4)]
    entries = {
        "a": video([*intro, rng.getrandbits(256)]),
        "b": video(intro),
        "c": video([rng.getrandbits(256) for _ in range(3)] + intro[:1]),
    }
    index = VideoIndex.build(entries)
    assert index.rows == 4 + 1 + 3
    results = index.match(video(intro))
    assert answered(results) == brute(video(intro), entries)
    assert answered(results) == {"b": ((4, 4), (4, 4)), "a": ((4, 4), (4, 5))}
    assert [r.entry for r in results] == ["a", "b"]  # best share 1 for both: entry order


def test_matches_come_best_share_first() -> None:
    rng = random.Random(60)
    base = [rng.getrandbits(256) for _ in range(10)]
    entries = {
        "mid": video(base[:8] + [rng.getrandbits(256) for _ in range(4)]),
        "long": video(base),
        "short": video(base[:5]),
    }
    query = video([*base[:9], rng.getrandbits(256)])
    results = VideoIndex.build(entries).match(query)
    assert answered(results) == brute(query, entries)
    assert [(r.entry, r.best_share) for r in results] == [
        ("short", Fraction(5, 5)),  # by the listed share
        ("long", Fraction(9, 10)),
        ("mid", Fraction(8, 10)),  # the query's 8/10 beats the listed 8/12
    ]


def test_nothing_to_match_gives_no_results(engine: str) -> None:
    base = [random.Random(70 + n).getrandbits(256) for n in range(4)]
    assert VideoIndex.build({}).match(video(base)) == []
    empty = VideoIndex.build({"dark": video(base, quality=10)})
    assert empty.multi is None
    assert empty.match(video(base)) == []
    assert VideoIndex.build({"listed": video(base)}).match([]) == []


def test_distinct_good_frames_keep_first_occurrence_order() -> None:
    frames = [frame(3), frame(1), frame(3), frame(2, quality=49), frame(1)]
    assert distinct_good_frames(frames) == [(3).to_bytes(32, "big"), (1).to_bytes(32, "big")]


def test_memory_is_about_a_hundred_bytes_a_frame() -> None:
    rng = random.Random(80)
    entries = {f"e{n}": video([rng.getrandbits(256) for _ in range(60)]) for n in range(200)}
    index = VideoIndex.build(entries)
    assert index.rows == 12_000
    assert index.multi is not None
    per_frame = (index.nbytes - index.multi.bounds.nbytes) / index.rows
    assert 108 <= per_frame <= 109  # as the docstring says, with 16-bit slots


# -- the conformance vectors ---------------------------------------------------------------------


@pytest.mark.parametrize("name", case_names(check="video_match"))
def test_conformance_vector_decides_alike_through_the_index(name: str, engine: str) -> None:
    spec = case(name)
    query = decode_frames(bytes.fromhex(spec["input"]["query_hex"]))
    listed = decode_frames(bytes.fromhex(spec["input"]["listed_hex"]))
    want = spec["expected"]
    rng = random.Random(name)
    others = {f"other-{n}": video([rng.getrandbits(256) for _ in range(5)]) for n in range(3)}
    results = VideoIndex.build({**others, "listed": listed}).match(query)
    if want["match"]:
        assert answered(results) == {
            "listed": (tuple(want["query_share"]), tuple(want["listed_share"]))
        }
    else:
        assert results == []
    # The other way round, the listed video as the query: the same outcome.
    swapped = VideoIndex.build({**others, "query": query}).match(listed)
    assert [r.entry for r in swapped] == (["query"] if want["match"] else [])
    assert distinct_good_frames(query)  # every vector has a good frame to probe


def test_frames_alike_in_their_first_words_are_told_apart(engine: str) -> None:
    """A video's frames often differ only in a few bits of one word: every hit must be
    traced to its own row, not to a neighbour that shares the words before."""
    rng = random.Random(90)
    scene = rng.getrandbits(256)
    drifting = [flip(scene, rng.sample(range(0, 64), k)) for k in range(0, 40, 2)]
    entries = {
        "drift": video(drifting),
        "other": video([flip(scene, rng.sample(range(0, 64), 40)) for _ in range(6)]),
        "far": video([flip(scene, rng.sample(range(0, 256), 90)) for _ in range(6)]),
    }
    for query in (video(drifting[:6]), video(drifting[-6:]), video(drifting[::4])):
        assert answered(VideoIndex.build(entries).match(query)) == brute(query, entries)
