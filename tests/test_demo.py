"""``make demo`` keeps working: a hub and a node, a match, a takedown, a webhook, an audit."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import demo, protocol_walkthrough


@pytest.mark.slow
async def test_demo_shows_a_match_a_counted_takedown_and_a_retroactive_webhook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await demo.main(tmp_path / "demo-out", serve=False) == 0
    printed = capsys.readouterr().out
    assert "re-encoded, resized copy: 1 match(es)" in printed
    assert "unrelated picture: 0 match(es)" in printed
    assert "'actioned': 1" in printed
    assert "platform received: content post-4711" in printed
    assert "HMAC valid: True" in printed
    # The auditor's two commands ran against the live hub and found nothing wrong.
    assert printed.count("     result: OK") == 2
    assert "3 verified, from node(s) platform-demo" in printed


def test_protocol_walkthrough_verifies_and_catches_a_flipped_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert protocol_walkthrough.main() == 0
    printed = capsys.readouterr().out
    assert "replay from empty gives the same state: True" in printed
    assert "rejected: SignatureError" in printed
