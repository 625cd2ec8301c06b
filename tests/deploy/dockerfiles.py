"""Reading the deploy files the way the tools read them: Dockerfiles and .dockerignore.

No container engine runs where the tests run, so the images are checked from their
definitions. ``parse_dockerfile`` splits a Dockerfile into stages of instructions
(continuation lines joined, comments and parser directives dropped, JSON-form
arguments decoded). ``DockerIgnore`` applies .dockerignore rules as Docker's builder
does: patterns are relative to the context root, ``*`` and ``?`` never cross a ``/``,
``**`` matches any number of directories, a pattern that matches a directory matches
everything under it, ``!`` re-includes, and the last matching pattern decides.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DockerIgnore", "Instruction", "Stage", "parse_dockerfile"]


@dataclass(frozen=True)
class Instruction:
    """One instruction: ``COPY --from=build /wheels /wheels`` → ("COPY", flags, args)."""

    keyword: str
    flags: dict[str, str]
    args: list[str]
    raw: str


@dataclass
class Stage:
    """The instructions from one ``FROM`` up to the next."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def _logical_lines(text: str) -> Iterator[str]:
    """Lines with comments removed and ``\\``-continuations joined."""
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            continue  # comments (and parser directives such as 'syntax=')
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        if pending.strip():
            yield pending.strip()
        pending = ""
    if pending.strip():
        yield pending.strip()


def _split(keyword: str, rest: str) -> tuple[dict[str, str], list[str]]:
    """Leading ``--flag=value`` words, then the arguments (JSON form or shell words).

    For ``HEALTHCHECK`` the arguments are ``CMD`` and the checked command.
    """
    flags: dict[str, str] = {}
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags[name] = value
        rest = rest.lstrip()
    if keyword == "HEALTHCHECK" and rest.upper().startswith("CMD"):
        return flags, ["CMD", *_split("CMD", rest[3:].strip())[1]]
    if rest.startswith("["):
        return flags, [str(a) for a in json.loads(rest)]
    return flags, shlex.split(rest)


def parse_dockerfile(path: Path) -> list[Stage]:
    """The stages of the Dockerfile at ``path``, in order."""
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        flags, args = _split(keyword, rest.strip())
        if keyword == "FROM":
            name = args[2] if len(args) == 3 and args[1].upper() == "AS" else None
            stages.append(Stage(args[0], name))
            continue
        if keyword == "ARG" and not stages:
            continue  # an ARG before the first FROM parameterises the FROM lines
        assert stages, f"{path}: {keyword} before any FROM"
        stages[-1].instructions.append(Instruction(keyword, flags, args, line))
    return stages


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


@dataclass(frozen=True)
class DockerIgnore:
    """The rules of one .dockerignore file."""

    rules: tuple[tuple[bool, re.Pattern[str]], ...]
    """(excludes, pattern) in file order."""

    @classmethod
    def load(cls, path: Path) -> DockerIgnore:
        rules = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            rules.append((not negated, _pattern_regex(pattern)))
        return cls(tuple(rules))

    def excludes(self, relative: str) -> bool:
        """Whether the file or directory at ``relative`` stays out of the build context."""
        parts = relative.strip("/").split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for excludes, regex in self.rules:
            if any(regex.fullmatch(p) for p in prefixes):
                excluded = excludes
        return excluded

    def context(self, root: Path) -> list[str]:
        """Every file of ``root`` that a build would send, as relative POSIX paths.

        A directory is not walked when it is excluded and no re-inclusion could reach
        inside it (Docker's builder does the same), so a large ``.venv`` costs nothing.
        """
        negations = [regex.pattern for excludes, regex in self.rules if not excludes]
        found: list[str] = []
        for directory, dirs, files in os.walk(root):
            base = Path(directory).relative_to(root).as_posix()
            prefix = "" if base == "." else base + "/"
            dirs[:] = [
                d
                for d in dirs
                if not self.excludes(prefix + d)
                or any(n.startswith(re.escape(prefix + d)) for n in negations)
            ]
            found.extend(prefix + f for f in files if not self.excludes(prefix + f))
        return sorted(found)
