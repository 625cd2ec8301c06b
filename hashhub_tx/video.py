"""A ``vpdq`` record as python-threatexchange's ``VPDQSignal``, and back.

A ``vpdq`` record's hash is the SHA-256 of the video's frames (PROTOCOL.md §6.3):
useless to pytx, which matches a video by its frames. So the signal string of a
``vpdq`` record is pytx's own JSON of the frames (``vpdq_util.vpdq_to_json``): a list
of ``"<pdq hex>,<quality>,<seconds>"``, one per frame, in the record's order, which
``VPDQSignal.compare_hash`` and pytx's ``VPDQIndex`` read.

pytx writes a frame's time with three significant digits (``1.23e+02`` for 123.4 s),
so the JSON keeps the frames' hashes and qualities exactly and their times only to
that precision; matching (§6.4, and pytx's matcher) does not read times. Going back
(``frames_of_signal``), a time in seconds becomes the nearest millisecond (half to
even), the frames are sorted by time, and two frames at one time are refused: a JSON
that names them cannot be one video's frames. A quality outside 0–100 is refused by
pytx's own reader (``VpdqCompactFeature.assert_valid``), before it could be clipped.
Frames read back from a long video's JSON can therefore differ from the listed ones in
their times, and so hash to another record: the record's own hash (``frames_digest``)
is what names it.
"""

from __future__ import annotations

import itertools
import json

from threatexchange.extensions.vpdq.vpdq_util import (
    VpdqCompactFeature,
    json_to_vpdq,
    vpdq_to_json,
)

from protocol.errors import ProtocolError
from protocol.video import Frame, decode_frames, frames_digest

__all__ = ["frames_of_signal", "record_of_signal", "signal_of_frames"]


def signal_of_frames(data: bytes) -> str:
    """The ``VPDQSignal`` string of a record's frames file (its one encoding, §6.3).

    Raises:
        MalformedError, LimitError: ``data`` is not a video's frames.
    """
    return vpdq_to_json(
        [
            VpdqCompactFeature(frame.pdq.hex(), frame.quality, frame.millis / 1000)
            for frame in decode_frames(data)
        ]
    )


def frames_of_signal(signal: str) -> list[Frame]:
    """The frames a ``VPDQSignal`` string names: times to the nearest millisecond,
    sorted by time.

    Raises:
        ValueError: not pytx's vPDQ JSON (a quality outside 0–100 among them), no
            frame, a time out of range, or two frames at one millisecond.
    """
    try:
        features = json_to_vpdq(signal)
    except (ValueError, TypeError, AttributeError, json.JSONDecodeError) as e:
        raise ValueError(f"not a vPDQ signal (python-threatexchange's JSON of frames): {e}") from e
    if not features:
        raise ValueError("a vPDQ signal with no frame")
    try:
        frames = sorted(
            Frame(round(f.timestamp * 1000), bytes.fromhex(f.pdq_hex), f.quality) for f in features
        )
    except (ProtocolError, ValueError, OverflowError) as e:
        raise ValueError(f"a vPDQ signal's frame is out of range: {e}") from e
    for before, after in itertools.pairwise(frames):
        if before.millis == after.millis:
            raise ValueError(
                f"a vPDQ signal has two frames at {after.millis} ms: one video's frames "
                "are at distinct times"
            )
    return frames


def record_of_signal(signal: str) -> bytes:
    """The ``vpdq`` record hash of the frames a ``VPDQSignal`` string names.

    Raises:
        ValueError: as ``frames_of_signal``, or more frames than a video holds.
    """
    frames = frames_of_signal(signal)
    try:
        return frames_digest(frames)
    except ProtocolError as e:
        raise ValueError(f"a vPDQ signal that is not a video's frames: {e}") from e
