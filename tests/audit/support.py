"""What the auditor's tests share (also imported by ``tests/conformance``).

- ``audit(*args)``: run ``hashhub-audit`` through click's ``CliRunner``; from an
  async test use ``audit_async``, which runs it in a worker thread so the hub
  served by the test's own event loop keeps answering.
- ``Outcome``: the exit status, the output, and the findings of a ``--json`` run.
- ``export``: ``Hub.export`` of a hub home into a folder (what ``hashhub export``
  writes), and ``tree_path``/``rewrite`` to reach and change one file in it.
- ``load_role_key``: a private key of the hub's from its ``keys/`` folder, for a
  test that forges with the hub's real keys.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from audit.cli import main
from hub.core import Hub
from protocol import SigningKey


@dataclass(frozen=True)
class Outcome:
    """One run of ``hashhub-audit``."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def findings(self) -> list[dict[str, Any]]:
        """Every finding of a ``verify --json`` run (root-level and per list)."""
        report = self.json()
        return [*report["findings"], *(f for lst in report["lists"] for f in lst["findings"])]

    def list_status(self) -> dict[str, str]:
        return {lst["list"]: lst["status"] for lst in self.json()["lists"]}


def audit(*args: str | Path, env: dict[str, str] | None = None) -> Outcome:
    """Run ``hashhub-audit ARGS`` and return what it said."""
    runner = CliRunner()
    result = runner.invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)


async def audit_async(*args: str | Path, env: dict[str, str] | None = None) -> Outcome:
    """``audit`` in a worker thread: the hub under test runs on this test's event loop."""
    return await asyncio.to_thread(audit, *args, env=env)


def export(home: Path, target: Path) -> Path:
    """Write the published tree of the hub in ``home`` under ``target``."""
    hub = Hub.open(home)
    try:
        hub.files.export(target)
    finally:
        hub.close()
    return target


def pin_of(home: Path) -> str:
    """The SHA-256 of the hub's root v1, as its operator hands it to participants."""
    hub = Hub.open(home)
    try:
        return hub.keys.root_sha256(1)
    finally:
        hub.close()


def rewrite(tree: Path, path: str, data: bytes) -> None:
    (tree / path).write_bytes(data)


def load_role_key(home: Path, role: str) -> SigningKey:
    """The hub's current private key of ``role`` (a test forging with the hub's own keys)."""
    hub = Hub.open(home)
    try:
        (key,) = hub.keys.signers(role)
    finally:
        hub.close()
    return key


def base_url(client: Any) -> str:
    """The base URL of an aiohttp ``TestClient``'s real server on loopback."""
    return str(client.make_url("/")).rstrip("/")


def write_pem(path: Path, key: SigningKey) -> Path:
    path.write_bytes(key.public.to_pem())
    return path
