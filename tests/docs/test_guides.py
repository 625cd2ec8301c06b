"""The guides, followed word for word: their commands run, their output compared.

A reader types a guide's commands in an empty folder and expects what it
shows. These tests do the same, in a clean temporary home with nothing of the
caller's environment but the project's commands on ``PATH``:

- the operator guide's ``console`` blocks, in order, in one ``bash`` session,
  ``hashhub serve`` started in the background as its block says and stopped at
  the end; then the auditor guide's ``console`` blocks, which run
  ``hashhub-audit`` against that hub (its URL, and the folder it exported);
  then the participant guide's, which make platform-a's node, have the operator
  enrol it on that hub, and run its daemon and a webhook receiver in the
  background as their blocks say. The auditor's come before the participant's
  because they check the hub as the operator guide leaves it: no node has
  acknowledged anything yet;
- every command must exit as the guide implies and print what the guide shows
  under it, random values (times, keys, tokens, signatures, case numbers)
  masked on both sides; a value the guide shows in two places must be one value
  of the run in both.

How a guide marks a block that starts a server, a listing in random order or a
block that cannot run here (installing the project) is described in
``guide_runner``, which does the work. The auditor guide's ``sh`` blocks are run
by ``test_auditor_guide.py`` against a repository of its own.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from tests.docs import guide_runner
from tests.docs.guide_runner import Block, GuideRun

DOCS = Path(__file__).resolve().parents[2] / "docs"
OPERATOR = "operator-guide.md"
PARTICIPANT = "participant-guide.md"
AUDITOR = "auditor-guide.md"
RUN_IN_ORDER = (OPERATOR, AUDITOR, PARTICIPANT)
"""The guides whose blocks run, one after the other, on one machine."""

PORTS = {
    8470: "the operator guide's hub",
    8471: "the participant guide's node",
    18900: "its webhook receiver",
}

HUB_URL = "http://127.0.0.1:8470"
LISTS = ("ncii-pdq", "ncii-md5")


def _blocks(name: str) -> list[Block]:
    return guide_runner.blocks((DOCS / name).read_text(encoding="utf-8"))


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- the convention is kept ------------------------------------------------------------


@pytest.mark.parametrize("name", [OPERATOR, PARTICIPANT, AUDITOR])
def test_every_directive_is_known_and_every_skip_says_why(name: str) -> None:
    text = (DOCS / name).read_text(encoding="utf-8")
    for directive in re.findall(r"<!--\s*guide-test:\s*(.*?)\s*-->", text):
        if directive.startswith("skip"):
            assert directive.removeprefix("skip").strip(" :"), f"{name}: a skip without a reason"
        elif directive.startswith("background"):
            assert directive.removeprefix("background").strip().startswith("http"), directive
        else:
            assert directive == "any order", f"{name}: unknown directive {directive!r}"
    found = _blocks(name)
    skipped = [b for b in found if b.directive.startswith("skip")]
    assert len(skipped) <= 2, f"{name}: more skipped blocks than the install step needs"


def test_the_guides_tell_one_story() -> None:
    """One hub, one set of lists; platform-a's node made and enrolled in the participant
    guide, platform-b and platform-c enrolled with OpenSSL keys in the operator guide,
    platform-c changed and revoked.

    Each node id is enrolled once: a second enrolment of one id is refused by the hub,
    so two guides enrolling the same node could not run one after the other.
    """
    operator, participant, auditor = (
        (DOCS / name).read_text(encoding="utf-8") for name in (OPERATOR, PARTICIPANT, AUDITOR)
    )
    for name, text in ((OPERATOR, operator), (PARTICIPANT, participant), (AUDITOR, auditor)):
        assert HUB_URL in text, f"{name} does not name the hub at {HUB_URL}"
        for list_id in LISTS:
            if name != AUDITOR or list_id == "ncii-md5":
                assert list_id in text, f"{name} does not name {list_id}"
        assert "tid-" not in text, f"{name} names a list of another story"
        assert "node revoke platform-a" not in text, f"{name} revokes the participant's node"
    assert "$ hashhub node enrol platform-a" not in operator
    assert "$ hashhub node enrol platform-b" in operator
    assert "$ hashhub node enrol platform-c" in operator
    assert "$ hashhub node revoke platform-c" in operator
    for change in ("grant", "ungrant", "suspend", "resume", "token", "rekey"):
        assert f"$ hashhub node {change} platform-c" in operator, change
    assert "--node-id platform-a" in participant
    assert "$ hashhub node enrol platform-a --public-key node/node.pub.pem" in participant
    assert "$ hashhub node rekey platform-a --public-key node/node.pub.pem" in participant
    commands = [line for line in participant.splitlines() if line.startswith("$ ")]
    for other in ("platform-b", "platform-c"):
        assert not [c for c in commands if other in c], f"{PARTICIPANT} acts on {other}"
    assert "hashhub-audit verify http" in auditor
    assert re.search(r"^hashhub-audit verify \. ", auditor, re.MULTILINE)


def test_the_operator_guide_installs_before_it_runs_a_command() -> None:
    text = (DOCS / OPERATOR).read_text(encoding="utf-8")
    install = text.index("pip install")
    first = text.index("$ hashhub ")
    assert install < first
    assert text.index("$ mkdir -m 700 offline") < text.index("$ mv hub/keys/root-* offline/")


# -- the runner notices a guide that drifted ---------------------------------------------


def _run(tmp_path: Path, guide: str) -> list[str]:
    blocks = guide_runner.blocks(guide)
    run = GuideRun(tmp_path, guide_runner.typed_values(blocks))
    try:
        run.run_blocks("guide", blocks)
    finally:
        run.close()
    return [p.message for p in run.problems]


def test_the_runner_passes_a_guide_that_shows_what_runs(tmp_path: Path) -> None:
    guide = (
        "```console\n"
        "$ printf 'token hho_%s\\n' abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\n"
        "token hho_4ZjaBehc0sd7P56cEFkBKXiJu14O7nxTPWHYaZkRAX4\n"
        "$ echo hho_4ZjaBehc0sd7P56cEFkBKXiJu14O7nxTPWHYaZkRAX4 | cut -c1-8\n"
        "hho_abcd\n"
        "$ false\n"
        "$ echo $?\n"
        "1\n"
        "$ ls missing\n"
        "Error: shown, so a failure is expected\n"
        "```\n"
    )
    problems = _run(tmp_path, guide)
    # The token was learned and typed back as the run's; only the last output differs.
    assert len(problems) == 1, problems
    assert "ls missing" in problems[0]


@pytest.mark.parametrize(
    ("guide", "complaint"),
    [
        ("```console\n$ echo version 2\nversion 1\n```\n", "printed:\nversion 2"),
        ("```console\n$ false\n```\n", "exited 1"),
        ("```console\n$ echo hho_4ZjaBehc0sd7P56cEFkBKXiJu14O7nxTPWHYaZkRAX4\n```\n", "types"),
        (
            "```console\n"
            "$ openssl rand -hex 8; openssl rand -hex 8\n"
            "0123456789abcdef\n0123456789abcdef\n"
            "```\n",
            "for two values of the run",
        ),
        ("<!-- guide-test: skip -->\n```console\n$ true\n```\n", "without a reason"),
    ],
)
def test_the_runner_fails_a_guide_that_drifted(tmp_path: Path, guide: str, complaint: str) -> None:
    problems = _run(tmp_path, guide)
    assert any(complaint in p for p in problems), problems


def test_a_server_s_own_redirection_holds(tmp_path: Path) -> None:
    """A receiver whose guide sends its output to a file: a later block shows that file."""
    port = _free_port()
    guide = (
        f"<!-- guide-test: background http://127.0.0.1:{port}/ -->\n"
        "```console\n"
        f"$ python3 -u -m http.server --bind 127.0.0.1 {port} >served.log 2>&1\n"
        "```\n"
        "```console\n"
        f"$ curl -s -o /dev/null http://127.0.0.1:{port}/missing\n"
        "$ grep -c 'GET /missing' served.log\n"
        "1\n"
        "```\n"
    )
    assert _run(tmp_path, guide) == []


# -- the guides, run ------------------------------------------------------------------


@pytest.mark.slow
def test_the_guides_run_as_written(tmp_path: Path) -> None:
    for port, what in PORTS.items():
        if not _port_free(port):
            pytest.fail(f"port {port}, where {what} listens, is in use")
    guides = {name: _blocks(name) for name in RUN_IN_ORDER}
    # A fence renamed by mistake would quietly leave commands out of the run.
    assert sum(len(b.commands) for b in guides[OPERATOR]) >= 70
    assert sum(len(b.commands) for b in guides[AUDITOR]) >= 3
    assert sum(len(b.commands) for b in guides[PARTICIPANT]) >= 60
    run = GuideRun(tmp_path, guide_runner.typed_values([b for g in guides.values() for b in g]))
    try:
        for name, blocks in guides.items():
            run.run_blocks(name, blocks)
    finally:
        run.close()
    assert run.servers == 3, "the hub, the node's daemon and the webhook receiver, once each"
    report = "\n\n".join(f"{p.where}:\n{p.message}" for p in run.problems)
    assert not run.problems, f"{len(run.problems)} difference(s) from the guides:\n\n{report}"
    for port, what in PORTS.items():
        assert _port_free(port), f"{what}, started by a guide, is still running"
