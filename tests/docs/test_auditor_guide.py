"""The auditor's guide, run: its shell blocks against a freshly published repository.

``docs/auditor-guide.md`` promises that an auditor can check a hub's published
files with ``openssl``, ``sha256sum``, ``jq`` and coreutils alone. A guide like
that rots silently (a renamed field, a changed line format), so these tests run
it:

- every fenced ``sh`` block of the guide, in order, in one ``bash -euo
  pipefail``, in a folder exported by a real hub (``hub.core.Hub``: real keys,
  real SQLite, a list with three versions, a snapshot, a ``delta`` key rotation
  and a root key rotation);
- the output of each block must be the ``text`` block printed under it in the
  guide, except the values that come from the run's random keys (signatures,
  note key ids, key bytes), which are masked on both sides;
- after one byte of a root, header, signature, checkpoint, body or snapshot is
  changed, the same commands must fail, and in the section whose check is
  meant to catch that change.

Only ``sh`` blocks are commands here. The guide's ``console`` blocks, which run
``hashhub-audit`` against the running hub of the operator guide, are run by
``test_guides.py`` after that guide, as its reader runs them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.core import Hub
from hub.intake import Intake
from protocol import Checkpoint, SignedCheckpoint, cosign, sign_note

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "auditor-guide.md"

HUB_NAME = "hashes.example.org"
LIST = "ncii-md5"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AUDIT_AT = START + timedelta(hours=4, minutes=25)
"""The guide's ``NOW``: ten minutes after the checkpoint's last time-stamp."""

_MARK = "@@auditor-guide-block"
_FENCE = re.compile(r"^```(\S*)\s*$")
_RANDOM = re.compile(
    r"[A-Za-z0-9+/]{80,}={0,2}"  # signatures and note signature lines (base64)
    r"|(?<=signed by )[0-9a-f]{64}\b"  # key ids, as hashhub-audit names a signer
    r"|(?<=root v1 sha256 )[0-9a-f]{16}…"  # the pin, as hashhub-audit abbreviates it
    r"|\b[0-9a-f]{2}(?::[0-9a-f]{2})+:?"  # key bytes as openssl prints them
    r"|\b[0-9a-f]{8}\b"  # 4-byte note key ids
)


# -- the guide ------------------------------------------------------------------------


@dataclass(frozen=True)
class GuideBlock:
    """One ``sh`` block of the guide, the heading it sits under, and its shown output."""

    heading: str
    script: str
    output: str | None


def guide_blocks(text: str) -> list[GuideBlock]:
    """The guide's ``sh`` blocks in order, each with the ``text`` block right after it."""
    fenced: list[tuple[str, str, str]] = []  # (language, content, heading)
    heading = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        opening = _FENCE.match(line)
        if opening is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            elif line.strip():
                fenced.append(("", "", heading))  # prose between blocks
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end] != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"{GUIDE.name}: unclosed code block at line {i + 1}")
        fenced.append((opening.group(1), "\n".join(lines[i + 1 : end]) + "\n", heading))
        i = end + 1
    blocks = []
    for n, (language, content, where) in enumerate(fenced):
        if language != "sh":
            continue
        after = fenced[n + 1] if n + 1 < len(fenced) else None
        output = after[1] if after is not None and after[0] == "text" else None
        blocks.append(GuideBlock(where, content, output))
    return blocks


def _mask(text: str) -> str:
    return _RANDOM.sub("<random>", text)


# -- the repository the guide is run against ---------------------------------------------


def _md5(label: str) -> bytes:
    return hashlib.md5(label.encode(), usedforsecurity=False).digest()


@dataclass(frozen=True)
class Published:
    """An exported repository, the root v1 SHA-256 an auditor would be given, the hub's home."""

    repo: Path
    pin: str
    home: Path


def publish_repository(base: Path) -> Published:
    """A hub with one list published three times, rotations included, exported to a folder.

    The clock is fixed so that everything not derived from the (random) keys is
    the same on every run: the guide's shown output depends on it.
    """
    clock = [START]

    def now() -> datetime:
        return clock[0]

    def later(**delta: float) -> None:
        clock[0] += timedelta(**delta)

    hub = Hub.init(
        base / "hub",
        HUB_NAME,
        now=now,
        publish_interval=0,
        timestamp_interval=0,
        root_expiry_days=36_500,
    )
    try:
        hub.roots.create_list(LIST, "md5", label="ncii", snapshot_every=2)
        later(minutes=5)
        hub.lists.stage(LIST, adds=[Intake(_md5(f"file-{i}")) for i in range(5)])
        hub.publishing.publish([LIST])
        later(hours=1)
        hub.lists.stage(
            LIST,
            adds=[Intake(_md5(f"file-{i}")) for i in range(5, 8)],
            removes=[_md5("file-0")],
        )
        hub.publishing.publish([LIST])
        later(hours=1)
        hub.roots.rotate_key("delta")
        later(minutes=10)
        hub.lists.stage(
            LIST, adds=[Intake(_md5("file-8")), Intake(_md5("file-9"))], removes=[_md5("file-3")]
        )
        hub.publishing.publish([LIST])
        later(hours=1)
        hub.roots.rotate_key("root")
        later(hours=1)
        hub.checkpoints.refresh()
        repo = base / "repo"
        hub.files.export(repo)
        return Published(repo, hub.keys.root_sha256(1), base / "hub")
    finally:
        hub.close()


# -- running it ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GuideRun:
    returncode: int
    outputs: list[str]
    """What each block printed, for the blocks that ran."""
    stderr: str

    @property
    def failed_block(self) -> int:
        """Index of the block that was running when bash stopped."""
        return len(self.outputs) - 1


def _require_tools() -> None:
    missing = [tool for tool in ("bash", "openssl", "jq") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"the auditor's guide needs {', '.join(missing)} on PATH "
            "(`make system-deps` installs openssl and jq)"
        )


def run_guide(blocks: list[GuideBlock], published: Published, scratch: Path) -> GuideRun:
    """Run the blocks in order in one ``bash -euo pipefail`` inside the repository."""
    _require_tools()
    scratch.mkdir(parents=True, exist_ok=True)
    script = "".join(f"echo '{_MARK} {n}'\n{block.script}" for n, block in enumerate(blocks))
    path = scratch / "guide.sh"
    path.write_text(script, encoding="utf-8")
    env = {
        # hashhub-audit, installed beside the interpreter that runs the tests
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "PIN": published.pin,
        "NOW": str(int(AUDIT_AT.timestamp())),
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", str(path)],
        cwd=published.repo,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outputs: list[str] = []
    for line in result.stdout.splitlines(keepends=True):
        if line.startswith(_MARK):
            outputs.append("")
        elif outputs:
            outputs[-1] += line
        else:
            raise AssertionError(f"output before the first block: {line!r}")
    return GuideRun(result.returncode, outputs, result.stderr)


@pytest.fixture(scope="module")
def blocks() -> list[GuideBlock]:
    return guide_blocks(GUIDE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    return publish_repository(tmp_path_factory.mktemp("auditor-guide"))


def _section_of(blocks: list[GuideBlock], index: int) -> str:
    return blocks[index].heading if 0 <= index < len(blocks) else "(before the first block)"


# -- the guide is well formed ----------------------------------------------------------


def test_every_command_the_guide_shows_is_in_an_sh_block(blocks: list[GuideBlock]) -> None:
    text = GUIDE.read_text(encoding="utf-8")
    languages = {m.group(1) for line in text.splitlines() if (m := _FENCE.match(line))}
    # "" closes a block; json shows a file format; text shows output; console
    # blocks (run by test_guides.py) show hashhub-audit against a running hub.
    assert languages <= {"", "sh", "text", "json", "console"}, languages
    outside_console = re.sub(r"^```console\n.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)
    assert not re.search(r"^\$ ", outside_console, re.MULTILINE), "a '$ command' outside a block"
    assert all(not line.startswith("$ ") for b in blocks for line in b.script.splitlines())
    assert len(blocks) >= 15


def test_the_guide_defines_what_it_uses_and_names_the_list_the_test_publishes(
    blocks: list[GuideBlock],
) -> None:
    first = blocks[0].script
    assert f"LIST={LIST}\n" in first
    assert "PIN=${PIN:?" in first
    assert "NOW=${NOW:-" in first


# -- the documented commands pass on a genuine repository -----------------------------------


@pytest.mark.slow
def test_the_guide_runs_clean_and_prints_what_it_shows(
    blocks: list[GuideBlock], published: Published, tmp_path: Path
) -> None:
    run = run_guide(blocks, published, tmp_path)
    assert run.returncode == 0, (
        f"the guide failed in '{_section_of(blocks, run.failed_block)}' "
        f"(block {run.failed_block}):\n{run.stderr}\n{run.outputs[-1:]}"
    )
    assert len(run.outputs) == len(blocks)
    for n, (block, printed) in enumerate(zip(blocks, run.outputs, strict=True)):
        shown = block.output if block.output is not None else ""
        assert _mask(printed) == _mask(shown), (
            f"block {n} under '{block.heading}' printed\n{printed}\nbut the guide shows\n{shown}"
        )


def test_a_wrong_pin_stops_the_audit_at_the_root_of_trust(
    blocks: list[GuideBlock], published: Published, tmp_path: Path
) -> None:
    other = Published(published.repo, hashlib.sha256(b"another hub").hexdigest(), published.home)
    run = run_guide(blocks, other, tmp_path)
    assert run.returncode != 0
    assert _section_of(blocks, run.failed_block) == "2.1 Root version 1 is the one you were given"
    assert "FAILED" in run.outputs[-1]


# -- one changed byte makes them fail, in the section that is about it ----------------------


def _flip_in(path: Path, old: bytes, new: bytes) -> None:
    """Replace the first occurrence of ``old`` by ``new`` (same length: one byte differs)."""
    data = path.read_bytes()
    assert len(old) == len(new)
    assert sum(a != b for a, b in zip(old, new, strict=True)) == 1
    assert old in data, f"{old!r} not in {path.name}"
    path.write_bytes(data.replace(old, new, 1))


def _flip_last_base64_char(path: Path, line_prefix: str) -> None:
    """Change one base64 character (not the padding) on the line starting with ``line_prefix``."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    n = next(i for i, line in enumerate(lines) if line.startswith(line_prefix))
    line = lines[n].rstrip("=")
    position = len(line) - 10
    swapped = "B" if line[position] == "A" else "A"
    lines[n] = line[:position] + swapped + lines[n][position + 1 :]
    path.write_text("\n".join(lines), encoding="utf-8")


def _flip_sidecar_signature(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    start = text.index('"sig":"') + len('"sig":"') + 5
    swapped = "B" if text[start] == "A" else "A"
    path.write_text(text[:start] + swapped + text[start + 1 :], encoding="utf-8")


def _body(repo: Path, version: int) -> Path:
    header = json.loads((repo / f"lists/{LIST}/delta/{version}.json").read_bytes())
    return repo / f"lists/{LIST}/body/{header['body']['sha256']}.txt"


def _flip_body_hash(repo: Path) -> None:
    body = _body(repo, 2)
    data = body.read_bytes()
    at = data.index(b"\n+") + 5
    body.write_bytes(data[:at] + (b"0" if data[at : at + 1] != b"0" else b"1") + data[at + 1 :])


def _flip_snapshot_byte(repo: Path) -> None:
    snapshot = repo / f"lists/{LIST}/snapshot/2.bin"
    data = bytearray(snapshot.read_bytes())
    data[17] ^= 0x01
    snapshot.write_bytes(bytes(data))


TAMPERING: dict[str, tuple[Callable[[Path], None], str]] = {
    "root v3 content": (
        lambda repo: _flip_in(repo / "root/3.json", b'"threshold":2', b'"threshold":1'),
        "2.4 The root chain: every rotation signed by the keys before it",
    ),
    "checkpoint tree size": (
        lambda repo: _flip_in(repo / f"lists/{LIST}/checkpoint", b"\n3\n", b"\n4\n"),
        "3.1 The checkpoint signature",
    ),
    "checkpoint signature": (
        lambda repo: _flip_last_base64_char(
            repo / f"lists/{LIST}/checkpoint", f"\u2014 {HUB_NAME}/lists/"
        ),
        "3.1 The checkpoint signature",
    ),
    "checkpoint time-stamp": (
        lambda repo: _flip_last_base64_char(
            repo / f"lists/{LIST}/checkpoint", f"\u2014 {HUB_NAME}/timestamp"
        ),
        "3.2 The time-stamp",
    ),
    "header v2 content": (
        lambda repo: _flip_in(
            repo / f"lists/{LIST}/delta/2.json", b'"created":"2026', b'"created":"2027'
        ),
        "4. The headers, their chain, and the Merkle root",
    ),
    "header v3 signature": (
        lambda repo: _flip_sidecar_signature(repo / f"lists/{LIST}/delta/3.json.sig"),
        "4. The headers, their chain, and the Merkle root",
    ),
    "body v2": (_flip_body_hash, "5. The bodies"),
    "snapshot v2": (_flip_snapshot_byte, "6. The snapshots"),
}


@pytest.mark.slow
@pytest.mark.parametrize("change", sorted(TAMPERING))
def test_one_changed_byte_makes_the_documented_commands_fail(
    change: str, blocks: list[GuideBlock], published: Published, tmp_path: Path
) -> None:
    tamper, section = TAMPERING[change]
    copy = Published(tmp_path / "repo", published.pin, published.home)
    shutil.copytree(published.repo, copy.repo)
    tamper(copy.repo)
    run = run_guide(blocks, copy, tmp_path / "scratch")
    assert run.returncode != 0, f"the guide passed a repository with a changed {change}"
    assert _section_of(blocks, run.failed_block) == section, run.stderr


# -- the threshold rule, as the guide applies it ----------------------------------------


def _root_role(repo: Path, version: int) -> list[str]:
    root = json.loads((repo / f"root/{version}.json").read_bytes())
    keyids: list[str] = root["roles"]["root"]["keyids"]
    return keyids


@pytest.mark.slow
def test_one_invalid_root_signature_is_outvoted_when_the_threshold_still_holds(
    blocks: list[GuideBlock], published: Published, tmp_path: Path
) -> None:
    copy = Published(tmp_path / "repo", published.pin, published.home)
    shutil.copytree(published.repo, copy.repo)
    _flip_sidecar_signature(copy.repo / "root/4.json.sig")  # the first entry: one key of six
    run = run_guide(blocks, copy, tmp_path / "scratch")
    assert run.returncode == 0, run.stderr
    chain = blocks.index(next(b for b in blocks if b.heading.startswith("2.4 The root chain")))
    counts = re.findall(r"^root/4\.json: (\d) valid root", run.outputs[chain], re.MULTILINE)
    assert sorted(counts) == ["2", "3"], run.outputs[chain]


def test_a_rotation_signed_by_too_few_old_root_keys_stops_the_root_chain(
    blocks: list[GuideBlock], published: Published, tmp_path: Path
) -> None:
    """Root v4 keeps its three new signatures but only one of root v3's (threshold 2)."""
    copy = Published(tmp_path / "repo", published.pin, published.home)
    shutil.copytree(published.repo, copy.repo)
    old_keys = set(_root_role(copy.repo, 3))
    sidecar = copy.repo / "root/4.json.sig"
    entries = json.loads(sidecar.read_bytes())["signatures"]
    old = [e for e in entries if e["keyid"] in old_keys]
    assert len(old) == 3
    kept = [e for e in entries if e not in old[1:]]
    sidecar.write_text(json.dumps({"signatures": kept}, separators=(",", ":")), encoding="utf-8")
    run = run_guide(blocks, copy, tmp_path / "scratch")
    assert run.returncode != 0
    assert _section_of(blocks, run.failed_block).startswith("2.4 The root chain")
    assert "root/4.json: 1 valid root signature(s) of root v3, threshold 2" in run.outputs[-1]


# -- what only the Merkle check catches ------------------------------------------------------


@pytest.mark.slow
def test_a_checkpoint_signed_with_stolen_online_keys_fails_at_the_merkle_root(
    blocks: list[GuideBlock], published: Published, tmp_path: Path
) -> None:
    """The hub's own checkpoint and timestamp keys sign a root over another history.

    Both signature checks of section 3 pass, as they must; the headers are
    genuine, so section 4 verifies them; only the reproduced Merkle root tells
    the auditor that this checkpoint does not commit to the published headers.
    """
    copy = Published(tmp_path / "repo", published.pin, published.home)
    shutil.copytree(published.repo, copy.repo)
    hub = Hub.open(published.home)
    try:
        (checkpoint_key,) = hub.keys.signers("checkpoint")
        (timestamp_key,) = hub.keys.signers("timestamp")
    finally:
        hub.close()
    path = copy.repo / f"lists/{LIST}/checkpoint"
    genuine = SignedCheckpoint.from_bytes(path.read_bytes()).checkpoint
    forged = Checkpoint(genuine.origin, genuine.size, hashlib.sha256(b"another history").digest())
    note = SignedCheckpoint(
        forged,
        (
            sign_note(forged, checkpoint_key, forged.origin),
            cosign(forged, timestamp_key, f"{HUB_NAME}/timestamp", AUDIT_AT - timedelta(minutes=5)),
        ),
    )
    path.write_bytes(note.to_bytes())
    run = run_guide(blocks, copy, tmp_path / "scratch")
    assert run.returncode != 0
    assert (
        _section_of(blocks, run.failed_block) == "4. The headers, their chain, and the Merkle root"
    )
    reproduced, signed = run.outputs[-1].split()[1::2]
    assert reproduced != signed
    assert signed == hashlib.sha256(b"another history").hexdigest()
