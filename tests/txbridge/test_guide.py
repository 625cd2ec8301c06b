"""The python-threatexchange and HMA guide, run: its shell blocks against a real hub.

``docs/threatexchange.md`` shows commands and what they print. A guide like that
rots silently (a renamed flag, a changed message), so this test runs it:

- every fenced ``sh`` block, in order, each in ``bash -euo pipefail`` with standard
  error folded into standard output and, on standard input, what the reader would
  paste (the token the operator's command printed, once it has), in a fresh
  ``HOME`` (pytx keeps its state in ``~/.threatexchange``), with the real
  ``threatexchange``, ``hashhub-node`` and ``hashhub`` commands, against a real hub
  on loopback (``HubApp``) whose home is ``HASHHUB_HOME`` for the operator's command;
- the output of each block must be the ``text`` block right after it. The values
  the reader gets from elsewhere are the guide's examples, swapped for the real ones
  in the commands and back in the output: the hub's URL, its pin, the token the
  operator's command prints. Only times and key ids are masked;
- then the hub must hold the bridge's acks, verified with the node's public key,
  with the outcome the guide labelled;
- the table of collaboration fields must name the config's fields, and the HMA
  snippet must parse and import the bridge's exchange.

``pip install`` is the one command not run (it would need a package index): a
``pip`` on the test's ``PATH`` accepts exactly ``pip install 'hashhub[tx]'``, and the
test checks that the ``tx`` extra exists and brings ``threatexchange``.
"""

from __future__ import annotations

import ast
import asyncio
import difflib
import os
import re
import shutil
import sys
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults

from hashhub_tx import HashhubCollabConfig
from protocol import verify_ack
from protocol.keyfile import load_public_key
from tests.node.fixtures_sync import HUB_NAME, HubApp
from tests.txbridge.conftest import MD5_LIST, ORIGINAL, PDQ_LIST, pdq_of

PROJECT = Path(__file__).resolve().parents[2]
GUIDE = PROJECT / "docs" / "threatexchange.md"
BIN = Path(sys.executable).parent
EXAMPLE_URL = "https://hub.example.org"
EXAMPLE_PIN = "4f3a0f4e2b8f7d7a1c6e5b9d0a3c2e1f4b6d8a0c2e4f6a8b0d2f4e6a8c0e2f4a"
EXAMPLE_TOKEN = "hhn_2vQ9xYtK4mB7cL0pR3sW8eN5uJ1hF6gD9aZ2kX4wT7y"
NODE_ID = "tx-bridge"
BLOCK_TIMEOUT = 180.0

_FENCE = re.compile(r"^```(\S*)\s*$")
_MASKS = [
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?"), "<time>"),
    (re.compile(r"(?<=key id )[0-9a-f]{64}|(?<=\(key )[0-9a-f]{64}"), "<key id>"),
]
_PIP = """#!/bin/sh
# pip install is not run here; only the exact command the guide shows is accepted.
[ "$#" -eq 2 ] && [ "$1" = install ] && [ "$2" = 'hashhub[tx]' ] && exit 0
echo "unexpected: pip $*" >&2
exit 1
"""


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int


def fenced_blocks(text: str) -> list[Block]:
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end] != "```":
            end += 1
        assert end < len(lines), f"{GUIDE.name}: unclosed block at line {i + 1}"
        content = "\n".join(lines[i + 1 : end])
        blocks.append(Block(opening.group(1), content + "\n" if content else "", i + 1))
        i = end + 1
    return blocks


def shell_blocks(text: str) -> list[tuple[Block, str | None]]:
    """Every ``sh`` block with the ``text`` block right after it (its output), if any."""
    blocks = fenced_blocks(text)
    out = []
    for n, block in enumerate(blocks):
        if block.language != "sh":
            continue
        after = blocks[n + 1] if n + 1 < len(blocks) else None
        out.append((block, after.text if after is not None and after.language == "text" else None))
    return out


_INDEX_BUILT = re.compile(
    r"(?:Building index for \S+ with \d+ signals\.\.\.\nIndex for \S+ ready\n)+"
)


def mask(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    # pytx builds one index per signal type in the order of a set, which changes from
    # run to run (string hashing is seeded per process): the pairs are compared sorted.
    return _INDEX_BUILT.sub(lambda m: "".join(sorted(_pairs(m.group(0)))), text)


def _pairs(run: str) -> list[str]:
    lines = run.splitlines(keepends=True)
    return ["".join(lines[i : i + 2]) for i in range(0, len(lines), 2)]


def environment(home: Path, hub: HubApp, shims: Path) -> dict[str, str]:
    """A clean environment: nothing of pytx's, the node's or the hub's from outside."""
    keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ", "TMPDIR")}
    return {
        **keep,
        "HOME": str(home),
        "PATH": os.pathsep.join([str(shims), str(BIN), "/usr/bin", "/bin"]),
        "PYTHONPATH": str(PROJECT),
        "HASHHUB_HOME": str(hub.home),
        "COLUMNS": "80",
    }


async def run_block(script: str, cwd: Path, env: dict[str, str], stdin: bytes) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        script,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(stdin), BLOCK_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.slow
async def test_the_guide_runs_as_written(tmp_path: Path, hub: HubApp) -> None:
    home = tmp_path / "home"
    home.mkdir()
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "pip").write_text(_PIP)
    (shims / "pip").chmod(0o755)
    shutil.copy(ORIGINAL, home / "upload.jpg")
    env = environment(home, hub, shims)
    swaps = {EXAMPLE_URL: hub.url, EXAMPLE_PIN: hub.pinned()}

    blocks = shell_blocks(GUIDE.read_text(encoding="utf-8"))
    assert len(blocks) >= 10, "the guide's commands were not found"
    for block, shown in blocks:
        script = block.text
        for example, real in swaps.items():
            script = script.replace(example, real)
        # What the reader types or pastes: the token the operator sent, once it exists.
        pasted = (swaps[EXAMPLE_TOKEN] + "\n").encode() if EXAMPLE_TOKEN in swaps else b""
        status, output = await run_block(script, home, env, pasted)
        token = re.search(r"^  node token\s+(hhn_\S+)$", output, flags=re.MULTILINE)
        if token is not None:
            swaps[EXAMPLE_TOKEN] = token.group(1)
        for example, real in swaps.items():
            output = output.replace(real, example)
        where = f"{GUIDE.name} line {block.line}"
        assert status == 0, f"{where} failed ({status}):\n{block.text}\n{output}"
        if shown is None:
            continue
        got = mask(output)
        want = mask(shown)
        assert got == want, f"{where}: the output is not the guide's:\n" + "".join(
            difflib.unified_diff(
                want.splitlines(keepends=True), got.splitlines(keepends=True), "guide", "run"
            )
        )

    # What the guide did reached the hub: acks signed by the bridge's node key.
    key = load_public_key(home / "bridge-node" / "node.pub.pem")
    acks = [
        verify_ack(a.bytes, a.sig, node_key=key, origin_prefix=HUB_NAME) for a in hub.acks(NODE_ID)
    ]
    assert {a.list_id for a in acks} == {PDQ_LIST, MD5_LIST}
    last = [a for a in acks if a.list_id == PDQ_LIST][-1]
    assert last.counts.blocked == 1
    assert last.counts.hashes == {pdq_of(ORIGINAL).hex(): {"matched": 1, "blocked": 1}}


def test_the_guide_names_every_field_of_the_collaboration() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(--[a-z0-9-]+)` \| `([a-z0-9_]+)` \|", text, flags=re.MULTILINE)
    common = {f.name for f in fields(CollaborationConfigWithDefaults)}
    settable = [f.name for f in fields(HashhubCollabConfig) if f.init and f.name not in common]
    assert [field for _, field in rows] == settable
    assert all(flag == "--" + field.replace("_", "-") for flag, field in rows)


def test_the_guides_hma_configuration_names_what_exists() -> None:
    import hashhub_tx

    blocks = fenced_blocks(GUIDE.read_text(encoding="utf-8"))
    (python,) = [b for b in blocks if b.language == "python"]
    tree = ast.parse(python.text)
    imported = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert ("hashhub_tx", "HashhubSignalExchangeAPI") in imported
    assert hashhub_tx.HashhubSignalExchangeAPI.get_name() == "hashhub"
    (example,) = [b for b in blocks if b.language == "json"]
    assert '"api": "hashhub"' in example.text


def test_the_install_command_names_an_extra_that_brings_threatexchange() -> None:
    config = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    extra = config["project"]["optional-dependencies"]["tx"]
    assert any(req.startswith("threatexchange") for req in extra)
    assert "pip install 'hashhub[tx]'" in GUIDE.read_text(encoding="utf-8")


def test_index_lines_compare_in_any_order_and_nothing_else_does() -> None:
    pdq = "Building index for pdq with 3 signals...\nIndex for pdq ready\n"
    md5 = "Building index for video_md5 with 5 signals...\nIndex for video_md5 ready\n"
    head = "Rebuilding match indices...\n"
    assert mask(head + pdq + md5) == mask(head + md5 + pdq)
    assert mask("a\nb\n") != mask("b\na\n")
