"""``hashhub-audit verify`` on an export whose root chain has a gap in the middle.

A walk stops at the first ``root/<N+1>.json`` it does not find (PROTOCOL.md §13.1),
so a copy missing one middle root silently hides every root after it: the audit
used to fail later, on whatever check the older root could not satisfy. A folder
can be listed, so the auditor names the missing file instead.
"""

from __future__ import annotations

from pathlib import Path

from audit.cli import EXIT_FAILED
from hub.core import Hub
from hub.intake import Intake
from protocol import root_path, sig_path
from tests.audit.support import audit
from tests.hub.conftest import HUB_NAME, LIST, md5
from tests.node.fixtures_sync import Clock


def test_an_export_missing_a_middle_root_fails_naming_the_file(tmp_path: Path) -> None:
    hub = Hub.init(tmp_path / "hub", HUB_NAME, root_keys=1, root_threshold=1, now=Clock())
    try:
        hub.roots.create_list(LIST, "md5")  # v2
        hub.lists.stage(LIST, adds=[Intake(md5("a"))])
        hub.publishing.publish([LIST])
        hub.roots.rotate_key("checkpoint")  # v3
        hub.roots.rotate_key("delta")  # v4
        hub.roots.create_list("second-md5", "md5")  # v5
        hub.lists.stage(LIST, adds=[Intake(md5("b"))])
        hub.publishing.publish([LIST])
        tree = tmp_path / "tree"
        hub.files.export(tree)
        pin = hub.keys.root_sha256(1)
    finally:
        hub.close()
    witness = tmp_path / "witness.json"
    clean = audit("verify", tree, "--root-sha256", pin, "--witness", witness, "--json")
    assert clean.code == 0, clean.stdout
    assert clean.json()["roots"] == [1, 2, 3, 4, 5]

    (tree / root_path(3)).unlink()
    (tree / sig_path(root_path(3))).unlink()
    out = audit("verify", tree, "--root-sha256", pin, "--witness", witness, "--json")

    assert out.code == EXIT_FAILED, out.stdout
    report = out.json()
    assert report["roots"] == [1, 2]
    gap = report["findings"][0]
    assert (gap["file"], gap["rule"], gap["section"]) == (
        "root/3.json",
        "MissingFileError",
        "PROTOCOL.md §13.1",
    )
    assert gap["location"] == str(tree / "root/3.json")
    assert gap["message"] == (
        "not published, though 2 later root file(s) are (root/4.json … root/5.json): "
        "the root chain has a gap, and the walk ends at v2"
    )
    readable = audit("verify", tree, "--root-sha256", pin, "--witness", tmp_path / "w2.json")
    assert "root/3.json: MissingFileError (PROTOCOL.md §13.1)" in readable.stdout
