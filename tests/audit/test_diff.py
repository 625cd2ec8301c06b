"""``hashhub-audit diff``: the net change between two versions, and who signed each change.

The hub tests' real hub publishes ``LIST`` v1 (md5 of 0…4) and v2 (adds "late",
removes 0); here it then rotates its ``delta`` key and publishes v3 (adds "new",
removes "late" and 1), so the changes carry two different signing key ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from audit.cli import EXIT_FAILED
from hub.intake import Intake
from protocol import SigningKey, header_path, sig_path, sign_bytes
from tests.audit.support import Outcome, audit, export, load_role_key, pin_of, rewrite
from tests.hub.conftest import LIST, md5, opened


@dataclass(frozen=True)
class Rotated:
    """The exported tree, the delta key that signed v1–v2, and the one that signed v3."""

    tree: Path
    retired: SigningKey
    current: SigningKey


@pytest.fixture
def rotated(hub_home: Path, tmp_path: Path) -> Rotated:
    retired = load_role_key(hub_home, "delta")
    with opened(hub_home) as hub:
        hub.roots.rotate_key("delta")
        hub.lists.stage(LIST, adds=[Intake(md5("new"))], removes=[md5("late"), md5(1)])
        hub.publishing.publish([LIST])
    current = load_role_key(hub_home, "delta")
    assert retired.keyid != current.keyid
    return Rotated(export(hub_home, tmp_path / "tree"), retired, current)


def diff(tree: Path, home: Path, *args: str) -> Outcome:
    return audit("diff", tree, LIST, *args, "--root-sha256", pin_of(home), "--json")


def test_diff_lists_added_and_removed_hashes_with_the_keys_that_signed_them(
    rotated: Rotated, hub_home: Path
) -> None:
    old, new = rotated.retired.keyid, rotated.current.keyid
    out = diff(rotated.tree, hub_home, "1", "3")
    assert out.code == 0, out.stdout
    result = out.json()
    assert [(c["hash"], c["version"], c["signed_by"]) for c in result["added"]] == [
        (md5("new").hex(), 3, [new])
    ], "'late' came and went between v1 and v3: not in the net change"
    assert sorted(
        (c["hash"], c["version"], c["signed_by"][0]) for c in result["removed"]
    ) == sorted([(md5(0).hex(), 2, old), (md5(1).hex(), 3, new)])
    assert [(v["version"], v["signed_by"]) for v in result["versions"]] == [(2, [old]), (3, [new])]


def test_diff_from_the_empty_list(rotated: Rotated, hub_home: Path) -> None:
    old = rotated.retired.keyid
    out = audit("diff", rotated.tree, LIST, "0", "2", "--root-sha256", pin_of(hub_home))
    assert out.code == 0, out.stdout
    added = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("  +")]
    assert added == sorted(f"+{md5(x).hex()}" for x in (1, 2, 3, 4, "late"))
    assert f"  +{md5('late').hex()}  v2  signed by {old}" in out.stdout
    assert "removed (0):" in out.stdout


def test_diff_refuses_a_log_that_does_not_verify(rotated: Rotated, hub_home: Path) -> None:
    """v3 re-signed with the retired delta key: exactly what the rotation forbids."""
    path = header_path(LIST, 3)
    data = (rotated.tree / path).read_bytes()
    rewrite(rotated.tree, sig_path(path), sign_bytes(data, [rotated.retired]).to_bytes())
    out = diff(rotated.tree, hub_home, "1", "3")
    assert out.code == EXIT_FAILED
    assert "added" not in out.json(), "no diff of an unverified log"
    (listed,) = out.json()["lists"]
    assert [(f["file"], f["rule"]) for f in listed["findings"]] == [(path, "SignatureError")]


@pytest.mark.parametrize(
    ("versions", "message"),
    [(["2", "2"], "must be below"), (["1", "9"], "has 3 version(s), not 9")],
)
def test_diff_of_versions_that_do_not_make_sense_is_a_mistake(
    rotated: Rotated, hub_home: Path, versions: list[str], message: str
) -> None:
    out = diff(rotated.tree, hub_home, *versions)
    assert out.code == 1
    assert message in out.stderr
