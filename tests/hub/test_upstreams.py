"""The hubs a hub declares it re-publishes from (PROTOCOL.md §5.6), through ``hashhub upstream``.

Each declaration is a new root version signed by the root role, which a verifier pinned
to root v1 walks to and reads the upstream's pin from; a refused one changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hub.core import utcnow
from protocol import Upstream
from tests.hub.node_view import from_hub, trusted_hub
from tests.hub.test_cli import Operator, pinned_sha256

PIN = hashlib.sha256(b"root/1.json of helpline.example").hexdigest()


@pytest.fixture
def op(tmp_path: Path) -> Operator:
    operator = Operator(tmp_path / "hub")
    operator.pinned = pinned_sha256(operator.init())
    return operator


def newest_root_version(op: Operator) -> int:
    hub = op.open()
    try:
        return hub.keys.root().version
    finally:
        hub.close()


def walked(op: Operator) -> dict[str, Upstream]:
    """What a verifier pinned to root v1 reads of the upstreams, root by root."""
    hub = op.open()
    try:
        return dict(
            trusted_hub(from_hub(hub), pinned_sha256=op.pinned, now=utcnow()).root.upstreams
        )
    finally:
        hub.close()


def test_an_upstream_is_declared_changed_and_dropped_each_in_a_new_root(op: Operator) -> None:
    assert op.ok("upstream", "list") == "Root v1 declares no upstream.\n"
    out = op.ok(
        "upstream", "add", "helpline.example", "https://helpline.example", "--root-sha256", PIN
    )
    assert out == "Declared upstream helpline.example (https://helpline.example/) in root v2.\n"
    assert walked(op) == {"helpline.example": Upstream(PIN, "https://helpline.example/")}
    assert op.ok("upstream", "list") == f"helpline.example  https://helpline.example/  root {PIN}\n"
    assert json.loads(op.ok("upstream", "list", "--json")) == {
        "helpline.example": {"root_sha256": PIN, "url": "https://helpline.example/"}
    }

    again = op.run(
        "upstream", "add", "helpline.example", "https://helpline.example/", "--root-sha256", PIN
    )
    assert again.exit_code == 1
    assert "already declared so in root v2" in again.output
    moved = op.ok(
        "upstream", "add", "helpline.example", "https://mirror.helpline.example/tree",
        "--root-sha256", PIN.upper(),
    )  # fmt: skip
    assert "in root v3" in moved
    assert walked(op)["helpline.example"] == Upstream(PIN, "https://mirror.helpline.example/tree/")

    dropped = op.ok("upstream", "remove", "helpline.example")
    assert dropped == "Upstream helpline.example is no longer declared, from root v4 on.\n"
    assert walked(op) == {}
    missing = op.run("upstream", "remove", "helpline.example")
    assert missing.exit_code == 1
    assert "declares no upstream 'helpline.example'" in missing.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["hub.test", "https://x.example", "--root-sha256", PIN], "declares itself an upstream"),
        (["Helpline.Example", "https://x.example", "--root-sha256", PIN], "hub name"),
        (["x.example", "https://x.example", "--root-sha256", PIN[:63]], "root_sha256"),
        (["x.example", "ftp://x.example", "--root-sha256", PIN], "http(s) URL"),
        (["x.example", "https://x.example", "--root-sha256", "ü" * 64], "root_sha256"),
    ],
)
def test_a_refused_declaration_changes_nothing(op: Operator, args: list[str], says: str) -> None:
    result = op.run("upstream", "add", *args)
    assert result.exit_code == 1, result.output
    assert says in result.output
    assert "Traceback" not in result.output
    assert newest_root_version(op) == 1
