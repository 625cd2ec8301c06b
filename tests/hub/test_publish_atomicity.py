"""Publishing is atomic: a crash at any step leaves the previous version or the new one.

The publish names each of its steps to ``Hub.fault_hook``. These tests first
record the step names of a real publish (on a copy of the hub), then crash the
publish at every one of them, in process and, for a killed process, with
``os._exit`` in a child, and compare everything the hub stores before and after.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.core import Hub, utcnow
from hub.intake import Intake
from tests.hub.node_view import NodeView, from_hub

LIST = "tid-md5"
OTHER = "tid-sha256"


class CrashError(Exception):
    """Stands for the process dying at a publishing step."""


def md5(label: object) -> bytes:
    return hashlib.md5(str(label).encode(), usedforsecurity=False).digest()


def observe(hub: Hub) -> dict[str, Any]:
    """Everything a publish may touch, read back from the database."""
    q = hub.db.query
    return {
        "files": [tuple(r.values()) for r in q("SELECT path, sha256 FROM files ORDER BY path")],
        "heads": [dict(r) for r in q("SELECT * FROM lists ORDER BY id")],
        "log_roots": [dict(r) for r in q("SELECT * FROM log_roots ORDER BY list_id, size")],
        "entries": [dict(r) for r in q("SELECT * FROM entries ORDER BY id")],
        "staged": [dict(r) for r in q("SELECT * FROM staged ORDER BY id")],
        "actions": hub.db.table("actions").count,
    }


def observe_fresh(home: Path) -> dict[str, Any]:
    """The same, through a new connection: what a restarted hub would find on disk."""
    hub = Hub.open(home)
    try:
        return observe(hub)
    finally:
        hub.close()


def crash_at(step: str, occurrence: int = 1) -> Callable[[str], None]:
    seen = 0

    def hook(name: str) -> None:
        nonlocal seen
        if name == step:
            seen += 1
            if seen == occurrence:
                raise CrashError(name)

    return hook


def verify(hub: Hub, list_id: str = LIST) -> None:
    """A node pinned to root v1 accepts everything published and reaches the hub's state."""
    node = NodeView(from_hub(hub), hub.keys.root_sha256(1))
    assert node.update(list_id, now=utcnow()) == hub.lists.state(list_id)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A hub whose list has v1 published and a v2 staged that also writes a snapshot."""
    home = tmp_path / "hub"
    hub = Hub.init(home, "hub.test")
    try:
        hub.roots.create_list(LIST, "md5", snapshot_every=2)
        hub.roots.create_list(OTHER, "sha256")
        hub.lists.stage(LIST, adds=[Intake(md5(i)) for i in range(5)])
        hub.publishing.publish()
        hub.lists.stage(LIST, adds=[Intake(md5(i)) for i in range(5, 8)], removes=[md5(0)])
    finally:
        hub.close()
    return home


@pytest.fixture
def steps(home: Path, tmp_path: Path) -> list[str]:
    """The step names a publish of ``home``'s staged changes passes to the fault hook."""
    copy = tmp_path / "recording"
    shutil.copytree(home, copy)
    hub = Hub.open(copy)
    names: list[str] = []
    hub.fault_hook = names.append
    try:
        [result] = hub.publishing.publish([LIST])
    finally:
        hub.close()
    assert result.snapshot
    return names


@pytest.fixture
def hub(home: Path) -> Iterator[Hub]:
    hub = Hub.open(home)
    yield hub
    hub.close()


def test_the_publish_names_every_step_in_publication_order(steps: list[str]) -> None:
    """Files go out body → header → signature → snapshot → checkpoint (PROTOCOL.md §12)."""
    files = [s for s in steps if s.startswith("file ")]
    assert steps == [*files, "head", "entries", "staged", "commit"]
    patterns = [
        rf"file 0: lists/{LIST}/body/[0-9a-f]{{64}}\.txt",
        rf"file 1: lists/{LIST}/delta/2\.json",
        rf"file 2: lists/{LIST}/delta/2\.json\.sig",
        rf"file 3: lists/{LIST}/snapshot/2\.bin",
        rf"file 4: lists/{LIST}/checkpoint",
    ]
    assert len(files) == len(patterns)
    for name, pattern in zip(files, patterns, strict=True):
        assert re.fullmatch(pattern, name), name


def test_a_crash_at_any_step_leaves_the_hub_exactly_as_before(
    hub: Hub, home: Path, steps: list[str]
) -> None:
    before = observe(hub)
    for step in steps:
        hub.fault_hook = crash_at(step)
        with pytest.raises(CrashError):
            hub.publishing.publish([LIST])
        assert observe(hub) == before, f"crash at {step!r} changed the hub"
        assert observe_fresh(home) == before, f"crash at {step!r} changed the files on disk"
    hub.fault_hook = None
    [result] = hub.publishing.publish([LIST])
    assert (result.version, result.adds, result.removes, result.count) == (2, 3, 1, 7)
    verify(hub)


def test_a_crash_in_the_second_list_keeps_the_first_lists_new_version(hub: Hub) -> None:
    hub.lists.stage(OTHER, adds=[Intake(hashlib.sha256(b"x").digest())])
    other_before = hub.lists.row(OTHER)
    hub.fault_hook = crash_at("head", occurrence=2)  # tid-md5 publishes first, then tid-sha256
    with pytest.raises(CrashError):
        hub.publishing.publish()
    assert hub.lists.row(LIST)["version"] == 2
    assert hub.lists.row(OTHER) == other_before
    assert hub.lists.staged_count(OTHER) == 1
    hub.fault_hook = None
    [result] = hub.publishing.publish()
    assert (result.list, result.version) == (OTHER, 1)
    verify(hub)
    verify(hub, OTHER)


CHILD = """
import os, sys
from pathlib import Path
from hub.core import Hub

home, target, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
hub = Hub.open(home)

def die(step):
    if step.startswith(target):
        os._exit(1)

if mode == "during":
    hub.fault_hook = die
hub.publishing.publish(["tid-md5"])
os._exit(1)  # killed after the commit too: no close, no clean shutdown
"""


def run_child(home: Path, target: str, mode: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(home), target, mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("target", ["file 2:", "file 4:", "head", "entries", "commit"])
def test_a_process_killed_mid_publish_leaves_the_previous_version(
    home: Path, steps: list[str], target: str
) -> None:
    assert any(s.startswith(target) for s in steps)
    before = observe_fresh(home)
    run_child(home, target, "during")
    hub = Hub.open(home)
    try:
        assert observe(hub) == before
        [result] = hub.publishing.publish([LIST])
        assert result.version == 2
        verify(hub)
    finally:
        hub.close()


def test_a_process_killed_after_the_commit_leaves_the_new_version_complete(home: Path) -> None:
    before = observe_fresh(home)
    run_child(home, "", "after")
    hub = Hub.open(home)
    try:
        after = observe(hub)
        assert hub.lists.row(LIST)["version"] == 2
        assert after["staged"] == []
        assert len(after["files"]) == len(before["files"]) + 4  # body, header, sig, snapshot
        assert after["actions"] == before["actions"] + 1
        verify(hub)
    finally:
        hub.close()
