"""The field types of PROTOCOL.md §3.2: times and the unit of a text's length."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from protocol._fields import Fields, format_time, parse_time
from protocol.errors import MalformedError


@pytest.mark.parametrize(
    "text",
    [
        "2016-12-31T23:59:60Z",  # a real leap second: POSIX time has none
        "2026-01-01T00:00:60Z",
        "0000-01-01T00:00:00Z",  # no year 0 in the proleptic Gregorian calendar
        "2026-02-29T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01t00:00:00Z",
        "2026-01-01T00:00:00z",
        "2026-01-01T00:00:00.0Z",
        "2026-01-01T00:00:00+00:00",
        "\u0662026-01-01T00:00:00Z",
    ],
)
def test_times_outside_the_rule_are_malformed(text: str) -> None:
    with pytest.raises(MalformedError, match=r"is not a (valid time|time of the form)"):
        parse_time(text, "t")


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_the_first_and_last_valid_times_round_trip(text: str) -> None:
    assert format_time(parse_time(text, "t")) == text


def test_format_time_writes_four_digit_years() -> None:
    assert format_time(datetime(26, 1, 2, 3, 4, 5, tzinfo=UTC)) == "0026-01-02T03:04:05Z"


def test_text_length_counts_code_points_not_bytes() -> None:
    # 128 code points: 256 UTF-8 bytes ("é") or 512 ("😀"), still within "text ≤ 128".
    for char in ("\u00e9", "\U0001f600"):
        assert Fields({"label": char * 128}, "doc").text("label", max_len=128) == char * 128
        with pytest.raises(MalformedError, match="'label' is longer than 128"):
            Fields({"label": char * 129}, "doc").text("label", max_len=128)
