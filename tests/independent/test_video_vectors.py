"""Every video vector, replayed by the second reader written from PROTOCOL.md §6.3–§6.4.

The case files are found by globbing, so a new ``video-*`` or ``neg-video-*`` case is
tested without touching this file, and a case whose ``check`` this file does not know
fails rather than being skipped. A negative case must raise exactly the §14 class it
names, for the rule of §6.3 it cites.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.independent.video_reader import (
    ProtocolError,
    VideoFrame,
    compare_videos,
    frames_file_path,
    read_frames,
    read_frames_file,
    record_hash,
    write_frames,
)

CASES = Path(__file__).resolve().parents[2] / "docs" / "vectors" / "cases"
CASE_FILES = sorted({*CASES.glob("video-*.json"), *CASES.glob("neg-video-*.json")})


def frames_string(case_input: Mapping[str, Any], prefix: str = "") -> bytes:
    """The case's frames: ``frames_hex``, or ``run``: ``count`` frames of one PDQ hash and
    quality, the n-th at n × ``step_ms`` (as the vectors' README describes it)."""
    run = case_input.get(f"{prefix}run")
    if run is None:
        return bytes.fromhex(case_input[f"{prefix}frames_hex"])
    pdq = bytes.fromhex(run["pdq_hex"])
    return write_frames(
        VideoFrame(pdq, run["quality"], n * run["step_ms"]) for n in range(run["count"])
    )


def check_frames(case: Mapping[str, Any]) -> None:
    data = frames_string(case["input"])
    frames = read_frames(data)
    want = case["expected"]
    assert len(frames) == want["count"]
    assert [
        {"pdq_hex": f.pdq.hex(), "quality": f.quality, "millis": f.time_ms} for f in frames
    ] == want["frames"]
    assert write_frames(frames) == data
    assert record_hash(data).hex() == want["sha256"]


def refuse_frames(case: Mapping[str, Any]) -> None:
    read_frames(frames_string(case["input"], "valid_"))
    with pytest.raises(ProtocolError) as raised:
        read_frames(frames_string(case["input"]))
    assert type(raised.value).__name__ == case["error"], repr(raised.value)
    assert raised.value.rule in case["rules"], repr(raised.value)


def frames_file(case_input: Mapping[str, Any], prefix: str = "") -> bytes:
    """A ``video_frames_file`` case's file: ``file_hex``, or the frames ``run`` describes."""
    if f"{prefix}file_hex" in case_input:
        return bytes.fromhex(case_input[f"{prefix}file_hex"])
    return frames_string(case_input, prefix)


def check_frames_file(case: Mapping[str, Any]) -> None:
    inp, want = case["input"], case["expected"]
    frames = read_frames_file(inp["record"], frames_file(inp))
    assert len(frames) == want["count"]
    assert frames_file_path(inp["list"], inp["record"]) == want["path"]
    assert inp["record"].startswith(want["sha256"] + " ")


def refuse_frames_file(case: Mapping[str, Any]) -> None:
    inp = case["input"]
    read_frames(frames_file(inp, "valid_"))  # a file that reads, of some record
    with pytest.raises(ProtocolError) as raised:
        read_frames_file(inp["record"], frames_file(inp))
    assert type(raised.value).__name__ == case["error"], repr(raised.value)
    assert raised.value.rule in case["rules"], repr(raised.value)


def check_match(case: Mapping[str, Any]) -> None:
    query = read_frames(bytes.fromhex(case["input"]["query_hex"]))
    listed = read_frames(bytes.fromhex(case["input"]["listed_hex"]))
    verdict = compare_videos(query, listed)
    want = case["expected"]
    assert [verdict.query.agreeing, verdict.query.distinct] == want["query_share"]
    assert [verdict.listed.agreeing, verdict.listed.distinct] == want["listed_share"]
    assert verdict.match is want["match"]
    assert compare_videos(listed, query).match is verdict.match


def test_the_video_vectors_are_there() -> None:
    names = {p.stem for p in CASE_FILES}
    assert "video-frames" in names
    assert len([n for n in names if n.startswith("neg-video-frames-")]) >= 6
    assert len([n for n in names if n.startswith("video-match-")]) >= 10
    assert "video-frames-file" in names
    assert len([n for n in names if n.startswith("neg-video-frames-file-")]) >= 4


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_video_case(path: Path) -> None:
    case = json.loads(path.read_text("utf-8"))
    check = case["check"]
    if check == "video_frames":
        if "error" in case:
            refuse_frames(case)
        else:
            check_frames(case)
    elif check == "video_frames_file":
        if "error" in case:
            refuse_frames_file(case)
        else:
            check_frames_file(case)
    elif check == "video_match":
        check_match(case)
    else:
        pytest.fail(f"{path.name}: unknown check {check!r}")


def test_a_record_hash_is_the_sha256_of_the_frames() -> None:
    data = write_frames([VideoFrame(bytes(32), 50, 0), VideoFrame(bytes(32), 50, 1)])
    assert record_hash(data) == hashlib.sha256(data).digest()
