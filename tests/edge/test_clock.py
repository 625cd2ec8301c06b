"""``edge.clock.utcnow``: the time every role stores and signs, UTC to the whole second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.clock import utcnow
from protocol import format_time, parse_time


def test_utcnow_is_utc_to_the_second_and_survives_a_round_trip() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    now = utcnow()
    assert now.tzinfo is UTC
    assert now.microsecond == 0
    assert before <= now <= before + timedelta(seconds=2)
    assert parse_time(format_time(now), "now") == now
