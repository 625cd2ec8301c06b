"""Tests of protocol.counters: growth of a cumulative counter, an ack's rows, the clamp.

The hub's ledger (``hub.services.ledger.Ledger.count``), its migration's chart backfill and the
auditor's ``recompute_totals`` all add counters up with these functions, so the
rule "a value below the last is a reset; the total never goes down" is tested here
once, and the hub and auditor tests check that they apply it.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import protocol
from protocol import MAX_TOTAL, Counts, clamp_total, counter_growth, counter_rows
from protocol.ack import COUNTER_NAMES
from protocol.canonical import MAX_SAFE_INTEGER

HASH_A = "0123456789abcdef" * 2
HASH_B = "fedcba9876543210" * 2


def test_growth_is_the_difference_or_after_a_reset_the_whole_value() -> None:
    assert counter_growth(0, 5) == 5, "a first value counts whole"
    assert counter_growth(5, 8) == 3
    assert counter_growth(8, 8) == 0, "no change adds nothing"
    assert counter_growth(8, 3) == 3, "a value below the last is a reset: all of it is new"
    assert counter_growth(8, 0) == 0, "a reset to zero adds nothing and takes nothing away"


def test_a_sequence_with_resets_adds_up_as_prometheus_counts() -> None:
    last = total = 0
    for value in (5, 8, 3, 10, 0, 4):
        total += counter_growth(last, value)
        last = value
    assert total == 8 + 10 + 4, "each run up to a reset stays counted"


@given(st.lists(st.integers(min_value=0, max_value=MAX_SAFE_INTEGER), max_size=30))
def test_the_total_never_goes_down_and_matches_the_offset_formulation(values: list[int]) -> None:
    last = total = offset = 0
    for value in values:
        before = total
        total += counter_growth(last, value)
        assert total >= before, "a total never goes down"
        assert total >= value, "a total is never below the counter's own value"
        if value < last:  # the offset form: keep the last value of each run before a reset
            offset += last
        last = value
        assert total == value + offset


def test_the_clamp_is_the_json_safe_integer() -> None:
    assert MAX_TOTAL == 2**53 - 1 == MAX_SAFE_INTEGER
    assert clamp_total(5) == 5
    assert clamp_total(MAX_TOTAL) == MAX_TOTAL
    assert clamp_total(MAX_TOTAL + MAX_TOTAL) == MAX_TOTAL


def test_an_acks_counts_flatten_to_rows_the_lists_first_in_counter_order() -> None:
    counts = Counts(
        checked=100,
        matched=4,
        actioned=3,
        blocked=1,
        false_positive=0,
        hashes={HASH_B: {"matched": 2}, HASH_A: {"matched": 1, "actioned": 1}},
    )
    assert counter_rows(counts) == [
        ("", "checked", 100),
        ("", "matched", 4),
        ("", "actioned", 3),
        ("", "blocked", 1),
        ("", "false_positive", 0),
        (HASH_B, "matched", 2),
        (HASH_A, "matched", 1),
        (HASH_A, "actioned", 1),
    ]
    assert [name for hex_hash, name, _ in counter_rows(Counts()) if hex_hash == ""] == list(
        COUNTER_NAMES
    ), "every list counter has a row, zeros too"


def test_the_rules_are_part_of_the_public_surface() -> None:
    for name in ("MAX_TOTAL", "clamp_total", "counter_growth", "counter_rows"):
        assert name in protocol.__all__
