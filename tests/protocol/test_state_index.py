"""Bulk lookups and applies give the same answers on both index paths (view and list)."""

from __future__ import annotations

import hashlib

from protocol import ListState


def _h(n: int) -> bytes:
    return hashlib.md5(str(n).encode(), usedforsecurity=False).digest()


STATE = ListState.from_hashes(16, [_h(n) for n in range(0, 3000, 2)])  # 1,500 even n


def test_contains_many_with_few_lookups_matches_membership() -> None:
    probes = [_h(n) for n in range(10)]  # 10 × 30 < 1,500: the buffer-view path
    assert STATE.contains_many(probes) == [n % 2 == 0 for n in range(10)]


def test_contains_many_with_many_lookups_matches_membership() -> None:
    probes = [_h(n) for n in range(200)]  # 200 × 30 > 1,500: the list path
    assert STATE.contains_many(probes) == [n % 2 == 0 for n in range(200)]
    assert STATE.contains_many(probes) == [p in STATE for p in probes]


def test_apply_gives_the_same_state_on_both_paths() -> None:
    model = {_h(n) for n in range(0, 3000, 2)}
    for k in (5, 400):  # below and above the list threshold
        removes = sorted(_h(n) for n in range(0, 2 * k, 2))
        adds = sorted(_h(n) for n in range(1, 2 * k, 2))
        result = STATE.apply(removes, adds)
        assert set(result) == (model - set(removes)) | set(adds)
        assert result == ListState.from_hashes(16, (model - set(removes)) | set(adds))
