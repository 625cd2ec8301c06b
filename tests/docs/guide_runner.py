"""Run a guide's ``console`` blocks word for word and compare what they print.

The convention the guides follow, and this module reads:

- A fenced ``console`` block is a terminal session: a line starting with ``$ ``
  is a command (a line ending in ``\\`` continues it on the next line, and a
  here-document ``<<'EOF'`` takes the lines up to ``EOF``), and the
  lines up to the next command are what it prints, standard error included.
- Commands run in order in one ``bash`` session, so a variable, ``export`` or
  ``cd`` of one block holds in the next, as in the reader's terminal.
- A command must exit 0, unless what the guide shows under it starts with
  ``Error:`` or the next command is ``echo $?`` (which then shows the status).
- An HTML comment on the line right before a block changes how it runs:
  ``<!-- guide-test: background URL -->``: the block's one command starts a
  server; it runs in the background exactly as written (output it sends to a
  file of its own goes there, for a later block to show), the run waits until
  ``URL`` answers, checks that every line the guide shows under it is among the
  lines the server has printed by then, and stops the server at the end.
  ``<!-- guide-test: any order -->``: each command's lines are compared as a set
  (a listing sorted by a random key id).
  ``<!-- guide-test: skip: REASON -->``: the block does not run (installing, a
  service manager); the reason is required.
- Other blocks (``toml``, ``nginx``, ``json``, ``text``...) are not commands.
- Values that are random on every run — times and dates, tokens, key ids and
  the root's SHA-256, signatures, match ids, the user name in ``cli:<user>`` —
  are masked on both sides by ``MASKS``. A masked value the guide shows is
  remembered with the one the run printed in its place, and later commands use
  the printed one: the reader, too, types the token they were given, not the
  guide's.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

_FENCE = re.compile(r"^```(\S*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*guide-test:\s*(.*?)\s*-->$")
_MARK = "@@guide-test-status"
_HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?")

MASKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("time", re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:\d\d)?")),
    ("date", re.compile(r"\b\d{4}-\d\d-\d\d\b")),
    ("token", re.compile(r"\bhh[a-z]_[A-Za-z0-9_-]{20,}")),
    ("uuid", re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")),
    ("hex", re.compile(r"\b(?:[0-9a-f]{64}|[0-9a-f]{32}|[0-9a-f]{16})\b")),
    ("base64", re.compile(r"(?=[A-Za-z0-9+/]*[g-zA-Z+/])[A-Za-z0-9+/]{40,}={0,2}")),
    ("user", re.compile(r"(?<=cli:)[a-z_][a-z0-9_.-]*")),
)
"""What is random on every run. Hex of 16, 32 or 64 digits is a key id, a root
SHA-256 or a case number, unless a command of the guide typed it first (a
listed hash): that is compared as it is."""

_NAMED = ("token", "uuid", "hex")
"""Random values that name something (a key, a token, a case): the same thing
must be shown as the same value throughout, and a command may type them."""

_HEX = re.compile(r"\b(?:[0-9a-f]{64}|[0-9a-f]{32}|[0-9a-f]{16})\b")


@dataclass(frozen=True)
class Command:
    text: str
    shown: list[str]
    line: int


@dataclass(frozen=True)
class Block:
    heading: str
    line: int
    commands: list[Command]
    directive: str = ""


def blocks(text: str) -> list[Block]:
    """The ``console`` blocks of a guide, with the directive right above each."""
    found: list[Block] = []
    lines = text.splitlines()
    heading = ""
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            if lines[i].startswith("#"):
                heading = lines[i].lstrip("#").strip()
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise AssertionError(f"unclosed code block at line {i + 1}")
        if opening.group(1) == "console":
            before = lines[i - 1] if i > 0 else ""
            directive = m.group(1) if (m := _DIRECTIVE.match(before.strip())) else ""
            found.append(Block(heading, i + 1, _commands(lines[i + 1 : end], i + 2), directive))
        i = end + 1
    return found


def _commands(lines: list[str], first: int) -> list[Command]:
    commands: list[Command] = []
    n = 0
    while n < len(lines):
        line = lines[n]
        if not line.startswith("$ "):
            if not commands:
                raise AssertionError(f"line {first + n}: output before the first '$ ' command")
            commands[-1].shown.append(line)
            n += 1
            continue
        start = n
        text = line[2:]
        while text.endswith("\\") and n + 1 < len(lines):
            n += 1
            text += "\n" + lines[n]
        if heredoc := _HEREDOC.search(text):
            while n + 1 < len(lines):
                n += 1
                text += "\n" + lines[n]
                if lines[n] == heredoc.group(1):
                    break
        commands.append(Command(text, [], first + start))
        n += 1
    return commands


def _grouped(case_number: str) -> str:
    return "-".join(case_number[i : i + 4] for i in range(0, 32, 4))


@dataclass
class Masker:
    """Masks random values, and remembers which value the run printed for the guide's."""

    typed: set[str]
    learned: dict[str, str] = field(default_factory=dict)

    def _spans(self, text: str) -> list[tuple[int, int, str]]:
        spans: list[tuple[int, int, str]] = []
        for kind, pattern in MASKS:
            for m in pattern.finditer(text):
                if m.group(0) in self.typed:
                    continue
                if any(s < m.end() and m.start() < e for s, e, _ in spans):
                    continue
                spans.append((m.start(), m.end(), kind))
        return sorted(spans)

    def mask(self, text: str, kinds: tuple[str, ...] = ()) -> tuple[str, list[str]]:
        """``text`` with its random values masked, and those of ``kinds`` in order."""
        out, values, at = [], [], 0
        for start, end, kind in self._spans(text):
            out.append(text[at:start] + "<random>")
            if kind in kinds:
                values.append(text[start:end])
            at = end
        out.append(text[at:])
        return "".join(out), values

    def learn(self, shown: str, printed: str) -> list[str]:
        """Pair the guide's random values with the run's; say where the guide contradicts itself."""
        shown_masked, shown_values = self.mask(shown, _NAMED)
        printed_masked, printed_values = self.mask(printed, _NAMED)
        if shown_masked != printed_masked:
            return []
        clashes = []
        for guide_value, run_value in zip(shown_values, printed_values, strict=True):
            earlier = self.learned.setdefault(guide_value, run_value)
            twin = next((g for g, r in self.learned.items() if r == run_value), guide_value)
            if earlier != run_value or twin != guide_value:
                clashes.append(
                    f"the guide shows {guide_value!r} where the run printed {run_value!r}, "
                    f"which it paired with {twin!r} before"
                    if twin != guide_value
                    else f"the guide shows {guide_value!r} for two values of the run"
                )
            if re.fullmatch(r"[0-9a-f]{32}", guide_value):  # a case number, as its page groups it
                self.learned.setdefault(_grouped(guide_value), _grouped(run_value))
        return clashes

    def unknown(self, command: str) -> list[str]:
        """Random-looking values a command types that no earlier output showed."""
        _, values = self.mask(command, _NAMED)
        grouped = re.findall(r"\b[0-9a-f]{4}(?:-[0-9a-f]{4}){7}\b", command)
        return [v for v in [*values, *grouped] if v not in self.learned]

    def substitute(self, command: str) -> str:
        for guide_value in sorted(self.learned, key=len, reverse=True):
            command = command.replace(guide_value, self.learned[guide_value])
        return command


def typed_values(guide_blocks: list[Block]) -> set[str]:
    """Hex values a command types before any output shows them: hashes the reader lists.

    A value an earlier command printed (a key id, a root SHA-256) stays random
    when a later command types it.
    """
    printed: set[str] = set()
    typed: set[str] = set()
    for block in guide_blocks:
        for command in block.commands:
            typed.update(set(_HEX.findall(command.text)) - printed)
            printed.update(_HEX.findall("\n".join(command.shown)))
    return typed


class Shell:
    """One ``bash`` session, fed one command at a time, as a reader's terminal is."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.run("exec 2>&1")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, command: str, timeout: float = 60) -> tuple[int, str]:
        assert self.process.stdin is not None
        # The status is printed after the command, then set again for an ``echo $?``.
        self.process.stdin.write(
            f"{command}\n_guide_status=$?; printf '\\n{_MARK} %s\\n' \"$_guide_status\"; "
            "(exit $_guide_status)\n"
        )
        self.process.stdin.flush()
        printed: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no end after {timeout} s of: {command}") from None
            if line is None:
                raise AssertionError(f"the shell ended during: {command}\n{''.join(printed)}")
            if line.startswith(_MARK):
                text = "".join(printed)
                return int(line.split()[1]), text.rstrip("\n")
            printed.append(line)
            if time.monotonic() > deadline:
                raise AssertionError(f"no end after {timeout} s of: {command}")

    def close(self) -> None:
        """End the session and every process it started (servers in the background)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # The shell is gone; its servers may still be shutting down (and holding
        # their ports): wait for the whole group, then kill what is left.
        deadline = time.monotonic() + 10
        while _group_alive(self.process.pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
            time.sleep(0.05)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running (zombies aside)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # killpg also reaches zombies: a process still running has a state other than Z.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def environment(home: Path) -> dict[str, str]:
    """A clean environment: the project's commands on PATH, nothing of the caller's."""
    tools = str(Path(sys.executable).parent)
    return {
        "PATH": f"{tools}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "COLUMNS": "80",
        "PYTHONUNBUFFERED": "1",  # a server's lines reach its log as it prints them
    }


def _answers(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.1)
    return False


@dataclass
class Mismatch:
    where: str
    message: str
    printed: str | None = None
    """What the command printed, when it ran as the guide says but printed otherwise."""


class GuideRun:
    """Runs guides' blocks in one shell, recording each difference from the guide."""

    def __init__(self, home: Path, typed: set[str]) -> None:
        self.home = home
        self.shell = Shell(home, environment(home))
        self.masker = Masker(typed)
        self.problems: list[Mismatch] = []
        self.servers = 0

    def close(self) -> None:
        self.shell.close()

    def run_blocks(self, name: str, guide_blocks: list[Block]) -> None:
        for block in guide_blocks:
            where = f"{name}:{block.line} ({block.heading})"
            if block.directive.startswith("skip"):
                reason = block.directive.removeprefix("skip").strip(" :")
                if not reason:
                    self.problems.append(Mismatch(where, "a skipped block without a reason"))
                continue
            if block.directive.startswith("background"):
                self._background(where, block)
                continue
            if block.directive not in ("", "any order"):
                self.problems.append(Mismatch(where, f"unknown directive {block.directive!r}"))
                continue
            for n, command in enumerate(block.commands):
                following = block.commands[n + 1].text if n + 1 < len(block.commands) else ""
                self._one(f"{name}:{command.line}", command, following, block.directive)

    def _one(self, where: str, command: Command, following: str, directive: str) -> None:
        if unknown := self.masker.unknown(command.text):
            self.problems.append(
                Mismatch(where, f"$ {command.text}\ntypes {unknown}, which no output before shows")
            )
        status, printed = self.shell.run(self.masker.substitute(command.text))
        shown = "\n".join(command.shown)
        failing_allowed = shown.startswith("Error:") or following == "echo $?"
        if status != 0 and not failing_allowed:
            self.problems.append(
                Mismatch(where, f"$ {command.text}\nexited {status}, printing:\n{printed}")
            )
            return
        clashes: list[str] = []
        if directive == "any order":
            same = sorted(self.masker.mask(line)[0] for line in shown.splitlines()) == sorted(
                self.masker.mask(line)[0] for line in printed.splitlines()
            )
            if same:
                masks = [self.masker.mask(line)[0] for line in shown.splitlines()]
                for line in shown.splitlines():
                    masked = self.masker.mask(line)[0]
                    if masks.count(masked) > 1:
                        continue  # rows alike but for their random values: no pairing
                    twin = next(p for p in printed.splitlines() if self.masker.mask(p)[0] == masked)
                    clashes += self.masker.learn(line, twin)
        else:
            same = self.masker.mask(shown)[0] == self.masker.mask(printed)[0]
            if same:
                clashes += self.masker.learn(shown, printed)
        for clash in clashes:
            self.problems.append(Mismatch(where, f"$ {command.text}\n{clash}"))
        if not same:
            self.problems.append(
                Mismatch(
                    where,
                    f"$ {command.text}\nprinted:\n{printed}\nthe guide shows:\n{shown}",
                    printed,
                )
            )

    def _background(self, where: str, block: Block) -> None:
        url = block.directive.removeprefix("background").strip()
        if len(block.commands) != 1 or not url:
            self.problems.append(Mismatch(where, "a background block needs one command and a URL"))
            return
        (command,) = block.commands
        self.servers += 1
        log = self.home / f".guide-server-{self.servers}.log"
        # In braces, so that a redirection the command makes of its own output holds.
        self.shell.run(f"{{ {self.masker.substitute(command.text)}\n}} >{log} 2>&1 &")
        if not _answers(url, 30):
            self.problems.append(
                Mismatch(where, f"{url} did not answer:\n{log.read_text(encoding='utf-8')}")
            )
            return
        time.sleep(0.3)
        lines = log.read_text(encoding="utf-8").split("\n")
        printed = {self.masker.mask(line)[0] for line in lines}
        missing = [line for line in command.shown if self.masker.mask(line)[0] not in printed]
        if missing:
            self.problems.append(
                Mismatch(where, f"the server did not print {missing}; it printed:\n{printed}")
            )
