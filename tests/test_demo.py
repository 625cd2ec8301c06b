"""``make demo`` keeps telling its story: every step it narrates really happens."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts import demo, protocol_walkthrough


@pytest.mark.slow
async def test_demo_tells_the_whole_story_and_every_step_happens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await demo.main(tmp_path / "demo-out", serve=False) == 0
    printed = capsys.readouterr().out
    # Both platforms took every immutable file from the untrusted mirror.
    assert "the mirror served" in printed
    assert printed.count("ncii-pdq updated v1 → v2") == 2
    # Only a hash was submitted; the case number came back and was published.
    assert re.search(r"case number [0-9a-f]{4}(-[0-9a-f]{4}){7}: no name", printed)
    assert "accepted, in ncii-pdq since version 2" in printed
    # Retroactive takedown by a signed webhook; a copy blocked at upload.
    assert "its content post-4711 is on ncii-pdq v2" in printed
    assert "HMAC signature valid: True" in printed
    assert re.search(r"a resized, re-encoded copy: matches ncii-pdq v2 at distance \d+", printed)
    assert "an unrelated picture: no match, allowed" in printed
    assert "taken down 1, blocked 1" in printed
    # The auditor's two commands found nothing wrong.
    assert printed.count("     result: OK") == 2
    assert "from node(s) photos-example, videos-example" in printed
    assert "this is a bug" not in printed


def test_protocol_walkthrough_verifies_and_catches_a_flipped_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert protocol_walkthrough.main() == 0
    printed = capsys.readouterr().out
    assert "replay from empty gives the same state: True" in printed
    assert "rejected: SignatureError" in printed
