"""``make demo-federation`` keeps telling its story: every step it narrates happens.

Three hubs (a helpline taking public submissions, a hotline, a regional hub following
selected lists of both) and three platforms (one following the helpline and the
hotline with one node, one following the regional hub, one contributing), all real
apps on loopback with real keys and SQLite files (``scripts/demo_federation.py``).
Each assertion below is one step the story tells.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import demo_federation as story
from scripts.demo_federation import HELPLINE, HOTLINE, REGIONAL

NCII_PDQ, NCII_MD5 = story.NCII_PDQ, story.NCII_MD5
REG_PDQ, REG_MD5 = story.REG_PDQ, story.REG_MD5


@pytest.mark.slow
async def test_a_federation_from_submission_and_contribution_to_withdrawal_and_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    told = await story.main(tmp_path / "federation")
    printed = capsys.readouterr().out

    # The regional hub follows both upstreams and carries each one's selected entry
    # over; then the contribution; then the withdrawal, as a retraction.
    nothing = {"added": 0, "changed": 0, "retracted": 0}
    assert told.carried == [
        {HELPLINE: {**nothing, "added": 1}, HOTLINE: {**nothing, "added": 1}},
        {HELPLINE: {**nothing, "added": 1}, HOTLINE: nothing},
        {HELPLINE: {**nothing, "retracted": 1}, HOTLINE: nothing},
    ]
    assert "regional.example published regional-pdq v1 (+1 -0), with the provenance of each" in (
        printed
    )

    # platform-a follows two hubs with one node: each match names the hub.
    assert told.matches["platform-a: submitted (listed)"] == [("default", NCII_PDQ, "submission")]
    assert told.matches["platform-a: listed (listed)"] == [
        ("hotline", story.CSAM_PDQ, "import:analysts")
    ]
    # platform-b gets both through the regional hub, whose records name the origin.
    assert told.matches["platform-b: submitted (listed)"] == [
        ("default", REG_PDQ, f"hub:{HELPLINE}")
    ]
    assert told.matches["platform-b: listed (listed)"] == [("default", REG_PDQ, f"hub:{HOTLINE}")]

    # platform-c's contribution: only hashes, reviewed and accepted on the helpline,
    # reaching platform-a directly and platform-b through the regional hub.
    assert "platform-c: contribution 1 signed (md5, pdq, phash, sha256)" in printed
    assert "platform-c: contribution 1: delivered — HTTP 200: received" in printed
    assert told.contribution.startswith("contribution 1: accepted, entry e-")
    assert told.matches["platform-a: contributed (contributed)"] == [
        ("default", NCII_MD5, "member:platform-c"),
        ("default", NCII_PDQ, "member:platform-c"),
    ]
    assert told.matches["platform-b: contributed (contributed)"] == [
        ("default", REG_MD5, f"hub:{HELPLINE}"),
        ("default", REG_PDQ, f"hub:{HELPLINE}"),
    ]

    # The person's withdrawal on the helpline reaches both platforms; the hotline's
    # entry stands.
    assert told.matches["platform-a: submitted (withdrawn)"] == []
    assert told.matches["platform-b: submitted (withdrawn)"] == []
    assert told.matches["platform-b: listed (withdrawn)"] == [
        ("default", REG_PDQ, f"hub:{HOTLINE}")
    ]

    # The auditor verifies the regional hub's chain back to both origins, each from
    # the pin the regional root declares, and the contribution under its node's key.
    regional = told.audits["regional"]
    assert (regional["exit"], regional["findings"]) == (0, [])
    report = regional["report"]
    assert {u["name"]: u["status"] for u in report["upstreams"]} == {
        HELPLINE: "verified",
        HOTLINE: "verified",
    }
    assert {lst["list"]: lst["provenance"]["origins_checked"] for lst in report["lists"]} == {
        REG_PDQ: {"hub": 3},
        REG_MD5: {"hub": 1},
    }
    helpline = told.audits["helpline"]
    assert (helpline["exit"], helpline["findings"]) == (0, [])
    assert {
        lst["list"]: lst["provenance"]["origins_checked"] for lst in helpline["report"]["lists"]
    } == {NCII_PDQ: {"member": 1}, NCII_MD5: {"member": 1}}

    # The tampered copy: the regional hub's own signatures and a self-consistent
    # proof, caught only by the hotline's log.
    tampered = told.audits["tampered"]
    assert tampered["exit"] != 0
    (finding,) = tampered["findings"]
    assert finding["rule"] == "ForgedOrigin"
    assert (
        f"entry e-never-published (v5) claims {HOTLINE}'s {story.CSAM_PDQ} v1"
        in (finding["message"])
    )
    assert "this is a bug" not in printed
    assert REGIONAL in printed
