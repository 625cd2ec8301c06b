"""``hashhub-audit verify``: a clean hub verifies; every tampering fails naming file and rule.

The hub is the hub tests' real one (``tests/hub/conftest.py``): root keys 2 of 3,
three lists, ``LIST`` at version 2 with a snapshot at v2. Its published tree is
audited by URL (the real app on loopback) and as exported folders, which the
tests then tamper with one file at a time, as a hostile mirror or a dishonest
copy would.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit.cli import EXIT_FAILED, EXIT_INCOMPLETE
from hub.core import Hub
from hub.intake import Intake
from protocol import (
    DeltaHeader,
    SigningKey,
    body_path,
    canonicalize,
    checkpoint_path,
    format_time,
    header_path,
    sig_path,
    sign_bytes,
    snapshot_path,
)
from tests.audit.support import (
    Outcome,
    audit,
    audit_async,
    base_url,
    export,
    load_role_key,
    pin_of,
    rewrite,
)
from tests.hub.conftest import HUB_NAME, LIST, OTHER_LIST, PUBLIC_LIST, Client, md5
from tests.node.fixtures_sync import Clock
from tests.node.hostile import Endless, HostileServer, Tamper, Trickle, flip_byte


def verify(tree: Path | str, pin: str, witness: Path, *more: str) -> Outcome:
    return audit("verify", tree, "--root-sha256", pin, "--witness", witness, "--json", *more)


def witnessed_lists(witness: Path, pin: str) -> dict[str, int]:
    """List id → tree size, as the witness file recorded them."""
    if not witness.exists():
        return {}
    hubs = json.loads(witness.read_text())["hubs"]
    return {k: v["trust"]["version"] for k, v in hubs.get(pin, {}).get("lists", {}).items()}


@pytest.fixture
def tree(hub_home: Path, tmp_path: Path) -> Path:
    return export(hub_home, tmp_path / "tree")


@pytest.fixture
def pin(hub_home: Path) -> str:
    return pin_of(hub_home)


def body_of(tree: Path, version: int) -> str:
    header = DeltaHeader.from_bytes((tree / header_path(LIST, version)).read_bytes())
    return body_path(LIST, header.body.sha256)


# -- a clean hub ----------------------------------------------------------------------


def test_a_clean_export_verifies_and_is_remembered(tree: Path, pin: str, tmp_path: Path) -> None:
    witness = tmp_path / "witness.json"
    first = verify(tree, pin, witness)
    assert first.code == 0, first.stdout
    report = first.json()
    assert report["ok"] is True
    assert report["hub"] == HUB_NAME
    assert first.list_status() == {
        LIST: "verified",
        OTHER_LIST: "verified",
        PUBLIC_LIST: "verified",
    }
    listed = {lst["list"]: lst for lst in report["lists"]}
    assert listed[LIST]["size"] == 2
    assert listed[LIST]["state"]["count"] == 5, "md5 0..4, then 'late' in and 0 out"
    assert listed[LIST]["snapshots_checked"] == [2]
    assert witnessed_lists(witness, pin) == {LIST: 2, OTHER_LIST: 1, PUBLIC_LIST: 1}

    again = audit("verify", tree, "--root", tree / "root/1.json", "--witness", witness)
    assert again.code == 0, again.stdout
    assert "seen before" in again.stdout
    assert again.stdout.rstrip().endswith("result: OK")


async def test_a_clean_hub_verifies_by_url_with_a_token(
    client: Client, pin: str, role_tokens: dict[str, str], tmp_path: Path
) -> None:
    witness = tmp_path / "witness.json"
    out = await audit_async(
        "verify", base_url(client), "--root-sha256", pin, "--witness", witness, "--json",
        env={"HASHHUB_AUDIT_TOKEN": role_tokens["auditor"]},
    )  # fmt: skip
    assert out.code == 0, out.stdout
    assert out.list_status() == {LIST: "verified", OTHER_LIST: "verified", PUBLIC_LIST: "verified"}


async def test_private_lists_without_a_token_are_reported_unchecked(
    client: Client, pin: str, tmp_path: Path
) -> None:
    out = await audit_async(
        "verify", base_url(client), "--root-sha256", pin, "--witness", tmp_path / "w.json",
        "--json",
    )  # fmt: skip
    assert out.code == EXIT_INCOMPLETE, out.stdout
    assert out.list_status() == {
        LIST: "incomplete",
        OTHER_LIST: "incomplete",
        PUBLIC_LIST: "verified",
    }
    (finding, *_) = [f for f in out.findings() if f["file"] == checkpoint_path(LIST)]
    assert finding["rule"] == "FetchError"
    assert "HTTP 401" in finding["message"]


def test_a_wrong_pin_fails_on_root_v1(tree: Path, tmp_path: Path) -> None:
    out = verify(tree, "ab" * 32, tmp_path / "w.json")
    assert out.code == EXIT_FAILED
    (finding,) = out.findings()
    assert (finding["file"], finding["rule"]) == ("root/1.json", "SignatureError")
    assert out.json()["lists"] == [], "nothing is checked against an anchor that failed"


async def test_a_mirror_that_tampers_with_a_body_fails_naming_its_url(
    hub_home: Path, tree: Path, pin: str, tmp_path: Path
) -> None:
    path = body_of(tree, 2)
    mirror = await HostileServer.serving(hub_home).start()
    try:
        mirror.on(re.escape(path), Tamper(flip_byte))
        out = await audit_async(
            "verify", mirror.url, "--root-sha256", pin, "--witness", tmp_path / "w.json", "--json"
        )
    finally:
        await mirror.close()
    assert out.code == EXIT_FAILED, out.stdout
    (finding,) = out.findings()
    assert (finding["file"], finding["rule"]) == (path, "ConsistencyError")
    assert finding["location"] == f"{mirror.url}/{path}"


@pytest.mark.parametrize("announced", [None, 10**12], ids=["endless", "lying-length"])
async def test_endless_data_from_a_mirror_is_cut_at_the_cap(
    hub_home: Path, pin: str, tmp_path: Path, announced: int | None
) -> None:
    mirror = await HostileServer.serving(hub_home).start()
    try:
        mirror.on(f"/{re.escape(checkpoint_path(LIST))}$", Endless(content_length=announced))
        out = await audit_async(
            "verify", mirror.url, "--root-sha256", pin, "--witness", tmp_path / "w.json", "--json"
        )
    finally:
        await mirror.close()
    assert out.code == EXIT_FAILED, out.stdout
    (finding,) = out.findings()
    assert (finding["file"], finding["rule"]) == (checkpoint_path(LIST), "LimitError")
    assert "16384" in finding["message"], "the checkpoint cap of PROTOCOL.md §11"
    assert mirror.streamed < 64 * 1024 * 1024, "the auditor hung up soon after the cap"


async def test_a_mirror_that_drips_bytes_is_given_up_at_the_deadline(
    hub_home: Path, pin: str, tmp_path: Path
) -> None:
    mirror = await HostileServer.serving(hub_home).start()
    try:
        mirror.on(f"/{re.escape(checkpoint_path(LIST))}$", Trickle(0.2))
        started = time.monotonic()
        out = await audit_async(
            "verify", mirror.url, "--root-sha256", pin, "--witness", tmp_path / "w.json",
            "--timeout", "1", "--json",
        )  # fmt: skip
        took = time.monotonic() - started
    finally:
        await mirror.close()
    assert out.code == EXIT_INCOMPLETE, out.stdout
    (finding,) = out.findings()
    assert (finding["file"], finding["rule"]) == (checkpoint_path(LIST), "FetchError")
    assert "within 1.0 s" in finding["message"]
    assert took < 10, "hundreds of bytes at 5 bytes a second would take about a minute"
    assert out.list_status()[LIST] == "incomplete"


# -- one tampered file each -------------------------------------------------------------


def flip_body(tree: Path, home: Path) -> tuple[str, str]:
    path = body_of(tree, 2)
    rewrite(tree, path, flip_byte((tree / path).read_bytes(), -2))
    return path, "ConsistencyError"


def resign_with_a_stranger(tree: Path, home: Path) -> tuple[str, str]:
    path = header_path(LIST, 2)
    data = (tree / path).read_bytes()
    rewrite(tree, sig_path(path), sign_bytes(data, [SigningKey.generate()]).to_bytes())
    return path, "SignatureError"


def drop_a_version(tree: Path, home: Path) -> tuple[str, str]:
    path = header_path(LIST, 2)
    (tree / path).unlink()
    (tree / sig_path(path)).unlink()
    return path, "MissingFileError"


def delete_the_checkpoint(tree: Path, home: Path) -> tuple[str, str]:
    """A copy that hides a whole list: its deltas, bodies and snapshot are all still there."""
    path = checkpoint_path(LIST)
    (tree / path).unlink()
    assert (tree / header_path(LIST, 2)).exists()
    return path, "MissingFileError"


def delete_a_due_snapshot(tree: Path, home: Path) -> tuple[str, str]:
    """v2 is a multiple of the snapshot_every of the root header v2 names."""
    path = snapshot_path(LIST, 2)
    (tree / path).unlink()
    return path, "MissingFileError"


def rewrite_history_with_the_real_delta_key(tree: Path, home: Path) -> tuple[str, str]:
    """v1 re-signed by the hub's own delta key, one day earlier: validly signed, another log."""
    path = header_path(LIST, 1)
    header = DeltaHeader.from_bytes((tree / path).read_bytes())
    value = header.to_dict()
    value["created"] = format_time(header.created - timedelta(days=1))
    data = canonicalize(value)
    rewrite(tree, path, data)
    rewrite(tree, sig_path(path), sign_bytes(data, [load_role_key(home, "delta")]).to_bytes())
    return header_path(LIST, 2), "ConsistencyError"  # v2's prev no longer links


def flip_snapshot(tree: Path, home: Path) -> tuple[str, str]:
    path = snapshot_path(LIST, 2)
    rewrite(tree, path, flip_byte((tree / path).read_bytes(), 0))
    return path, "ConsistencyError"


@pytest.mark.parametrize(
    "tamper",
    [
        flip_body,
        resign_with_a_stranger,
        drop_a_version,
        delete_the_checkpoint,
        delete_a_due_snapshot,
        rewrite_history_with_the_real_delta_key,
        flip_snapshot,
    ],
)
def test_a_tampered_export_fails_naming_the_file_and_the_rule(
    tree: Path, pin: str, hub_home: Path, tmp_path: Path, tamper: object
) -> None:
    assert callable(tamper)
    file, rule = tamper(tree, hub_home)
    witness = tmp_path / "witness.json"
    out = verify(tree, pin, witness)
    assert out.code == EXIT_FAILED, out.stdout
    (finding,) = out.findings()
    assert (finding["file"], finding["rule"]) == (file, rule), finding
    assert finding["location"] == str(tree / file)
    assert finding["section"].startswith("PROTOCOL.md §")
    assert out.list_status() == {LIST: "failed", OTHER_LIST: "verified", PUBLIC_LIST: "verified"}
    assert witnessed_lists(witness, pin) == {OTHER_LIST: 1, PUBLIC_LIST: 1}, (
        "a list that failed is not recorded as seen"
    )
    readable = audit("verify", tree, "--root-sha256", pin, "--witness", witness)
    assert readable.code == EXIT_FAILED
    assert f"{tree / file}: {rule} (PROTOCOL.md §" in readable.stdout
    assert "result: FAILED (1 failed check)" in readable.stdout


# -- against the witness file: shrink and fork ------------------------------------------


def small_hub(home: Path, *, now: Clock | None = None) -> Hub:
    hub = Hub.init(home, HUB_NAME, root_keys=1, root_threshold=1, now=now or Clock())
    hub.roots.create_list(LIST, "md5", snapshot_every=10)
    return hub


def publish(hub: Hub, *labels: object) -> None:
    hub.lists.stage(LIST, adds=[Intake(md5(label)) for label in labels])
    hub.publishing.publish([LIST])


def test_a_list_with_no_versions_verifies_at_size_0_and_fails_without_its_checkpoint(
    tmp_path: Path,
) -> None:
    """A declared list has a checkpoint from its creation (PROTOCOL.md §11.1); a copy
    without it is not "nothing published yet" but a list hidden from the auditor."""
    hub = small_hub(tmp_path / "hub")
    tree = tmp_path / "tree"
    try:
        hub.files.export(tree)
        pin = hub.keys.root_sha256(1)
    finally:
        hub.close()
    witness = tmp_path / "witness.json"
    first = verify(tree, pin, witness)
    assert first.code == 0, first.stdout
    (listed,) = first.json()["lists"]
    assert (listed["status"], listed["size"], listed["versions"]) == ("verified", 0, [])
    assert witnessed_lists(witness, pin) == {LIST: 0}

    (tree / checkpoint_path(LIST)).unlink()
    out = verify(tree, pin, witness)

    assert out.code == EXIT_FAILED, out.stdout
    (finding,) = out.findings()
    assert (finding["file"], finding["rule"], finding["section"]) == (
        checkpoint_path(LIST),
        "MissingFileError",
        "PROTOCOL.md §11.1",
    )
    assert finding["message"] == (
        f"{checkpoint_path(LIST)}: found at no source, though root v2 declares list {LIST}, "
        "and an earlier run verified its size 0"
    )
    readable = audit("verify", tree, "--root-sha256", pin, "--witness", witness)
    assert "not published yet" not in readable.stdout
    assert readable.stdout.rstrip().endswith("result: FAILED (1 failed check)")


def test_a_checkpoint_that_shrank_since_the_last_run_fails(tmp_path: Path) -> None:
    hub = small_hub(tmp_path / "hub")
    try:
        publish(hub, "a")
        hub.files.export(tmp_path / "at-v1")
        publish(hub, "b")
        hub.files.export(tmp_path / "at-v2")
        pin = hub.keys.root_sha256(1)
    finally:
        hub.close()
    witness = tmp_path / "witness.json"
    assert verify(tmp_path / "at-v2", pin, witness).code == 0
    recorded = witness.read_bytes()

    out = verify(tmp_path / "at-v1", pin, witness)
    assert out.code == EXIT_FAILED, out.stdout
    (finding,) = out.findings()
    assert (finding["file"], finding["rule"]) == (checkpoint_path(LIST), "RollbackError")
    assert "witness" in finding["section"]
    assert "size 1 is below the trusted 2" in finding["message"]
    assert witness.read_bytes() == recorded, "a failed run never moves the witness"


@pytest.mark.parametrize(("fork_versions", "rule"), [(1, "EquivocationError"), (2, "ProofError")])
def test_a_history_forked_since_the_last_run_fails(
    tmp_path: Path, fork_versions: int, rule: str
) -> None:
    """The hub (or a thief of its keys) publishes another v2 after the auditor saw one."""
    hub = small_hub(tmp_path / "hub")
    try:
        publish(hub, "a")
        pin = hub.keys.root_sha256(1)
    finally:
        hub.close()
    shutil.copytree(tmp_path / "hub", tmp_path / "fork")
    hub = Hub.open(tmp_path / "hub", now=Clock())
    try:
        publish(hub, "b")
        hub.files.export(tmp_path / "seen")
    finally:
        hub.close()
    fork = Hub.open(tmp_path / "fork", now=Clock())
    try:
        for n in range(fork_versions):
            publish(fork, f"other-{n}")
        fork.files.export(tmp_path / "forked")
    finally:
        fork.close()
    witness = tmp_path / "witness.json"
    assert verify(tmp_path / "seen", pin, witness).code == 0

    out = verify(tmp_path / "forked", pin, witness)
    assert out.code == EXIT_FAILED, out.stdout
    (finding,) = out.findings()
    assert (finding["file"], finding["rule"]) == (checkpoint_path(LIST), rule)
    assert "witness" in finding["section"]
    assert witnessed_lists(witness, pin) == {LIST: 2}


# -- expiry ------------------------------------------------------------------------------


def test_a_stale_checkpoint_timestamp_fails(tmp_path: Path) -> None:
    """Published two days ago and never re-stamped: older than max_checkpoint_age (1 day)."""
    clock = Clock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=2))
    hub = small_hub(tmp_path / "hub", now=clock)
    try:
        publish(hub, "a")
        hub.files.export(tmp_path / "tree")
        pin = hub.keys.root_sha256(1)
    finally:
        hub.close()
    out = verify(tmp_path / "tree", pin, tmp_path / "w.json")
    assert out.code == EXIT_FAILED, out.stdout
    (finding,) = out.findings()
    assert (finding["file"], finding["rule"]) == (checkpoint_path(LIST), "FreezeError")
    assert "older than the maximum age" in finding["message"]


def test_an_expired_root_fails(tree: Path, pin: str, tmp_path: Path) -> None:
    out = verify(tree, pin, tmp_path / "w.json", "--at", "2099-01-01T00:00:00Z")
    assert out.code == EXIT_FAILED
    (finding,) = out.findings()
    newest = out.json()["roots"][-1]
    assert (finding["file"], finding["rule"]) == (f"root/{newest}.json", "ExpiredError")


# -- the user's mistakes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify", "{tree}"], "give the trust anchor"),
        (["verify", "{tmp}/nowhere", "--root-sha256", "{pin}"], "no such folder"),
        (["verify", "ftp://example.test/", "--root-sha256", "{pin}"], "only http(s) URLs"),
        (["verify", "{tree}", "--root-sha256", "xyz"], "64 hex digits"),
        (["verify", "{tree}", "--root-sha256", "{pin}", "--at", "tomorrow"], "--at"),
        (["verify", "{tree}", "--root", "{tmp}/missing.json"], "missing.json"),
    ],
)
def test_mistakes_are_one_line_and_exit_1(
    tree: Path, pin: str, tmp_path: Path, args: list[str], message: str
) -> None:
    filled = [a.format(tree=tree, tmp=tmp_path, pin=pin) for a in args]
    out = audit(*filled, "--witness", tmp_path / "w.json")
    assert out.code == 1
    assert out.stdout == ""
    assert out.stderr.startswith("Error: ")
    assert message in out.stderr
    assert out.stderr.count("\n") == 1
    assert not (tmp_path / "w.json").exists()


def test_a_damaged_witness_file_is_a_mistake_not_a_pass(
    tree: Path, pin: str, tmp_path: Path
) -> None:
    witness = tmp_path / "w.json"
    witness.write_text('{"format": "something else"}')
    out = verify(tree, pin, witness)
    assert out.code == 1
    assert "not a witness file" in out.stderr
    assert witness.read_text() == '{"format": "something else"}', "left as it was"
