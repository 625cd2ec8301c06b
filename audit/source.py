"""Where the auditor reads a hub's published tree from: a folder, a hub, or a mirror.

The published tree is plain files (``protocol.layout``), so one small interface
covers every copy of it: ``get(path, cap)`` returns the bytes at a tree path, or
``None`` when that copy does not have the file (a folder without it, an HTTP
404). This module does not judge an absence: ``audit.verify`` does, and a file the
signed data promises that a copy lacks fails the audit (``MissingFileError``,
PROTOCOL.md §11.1), while anything that could not be read at all is a
``FetchError`` (incomplete, not failed). Nothing here trusts what it reads;
every byte goes through ``protocol``'s rules afterwards. What this module does
enforce is the reader's side of PROTOCOL.md §11: nothing is read past the cap
(``LimitError``), and every HTTP download has a deadline.

Paths are only ever built by ``protocol.layout`` from checked list ids and
integers; a folder source still refuses any path that would resolve outside the
folder (a symlink planted in a copied tree).

Errors, by who is at fault:

- ``LimitError`` (a ``ProtocolError``): the copy served more than the cap;
- ``FetchError``: the copy could not be read at all (network, HTTP status other
  than 200 and 404, deadline, permissions) — the audit is then incomplete, not
  failed;
- ``SourceError``: the user named something that is not a source.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from protocol import LimitError

__all__ = [
    "FetchError",
    "FolderSource",
    "HttpSource",
    "Source",
    "SourceError",
    "open_source",
]

_CHUNK = 64 * 1024
DEFAULT_DEADLINE = 30.0
"""Seconds allowed for one download, start to end (PROTOCOL.md §11's reference value)."""


class SourceError(Exception):
    """The user named something that is not a published tree (a mistake, not a finding)."""


class FetchError(Exception):
    """A file could not be read from the source at all; nothing can be said about it."""


class Source(Protocol):
    """A copy of the published tree."""

    @property
    def name(self) -> str:
        """How reports refer to this source."""
        ...

    def get(self, path: str, cap: int) -> bytes | None:
        """The bytes at tree path ``path`` (at most ``cap``), or None if this copy lacks it."""
        ...

    def locate(self, path: str) -> str:
        """Where ``path`` lives in this source, for a report (a file path or a URL)."""
        ...


@dataclass(frozen=True)
class FolderSource:
    """A tree written by ``hashhub export`` (or copied from any mirror) on the local disk."""

    root: Path

    @property
    def name(self) -> str:
        return str(self.root)

    def locate(self, path: str) -> str:
        return str(self.root / path)

    def get(self, path: str, cap: int) -> bytes | None:
        base = self.root.resolve()
        target = (self.root / path).resolve()
        if not target.is_relative_to(base):
            raise FetchError(f"{self.locate(path)} resolves outside {base}")
        try:
            with target.open("rb") as f:
                data = f.read(cap + 1)
        except FileNotFoundError:
            return None
        except IsADirectoryError as e:
            raise FetchError(f"{self.locate(path)} is a directory") from e
        except OSError as e:
            raise FetchError(f"{self.locate(path)}: {e.strerror or e}") from e
        if len(data) > cap:
            raise LimitError(f"{path}: more than the cap of {cap} bytes")
        return data

    def snapshot_versions(self, list_id_dir: str) -> list[int]:
        """Versions of the snapshots present in ``lists/<id>/snapshot/`` (a folder can list)."""
        folder = self.root / list_id_dir / "snapshot"
        out = []
        if folder.is_dir():
            for entry in folder.iterdir():
                stem, dot, ext = entry.name.partition(".")
                if dot and ext == "bin" and stem.isdigit() and not stem.startswith("0"):
                    out.append(int(stem))
        return sorted(out)

    def root_versions(self) -> list[int]:
        """Versions of the roots present in ``root/`` (``<N>.json``), so a gap can be seen."""
        folder = self.root / "root"
        out = []
        if folder.is_dir():
            for entry in folder.iterdir():
                stem, dot, ext = entry.name.partition(".")
                if dot and ext == "json" and stem.isdigit() and not stem.startswith("0"):
                    out.append(int(stem))
        return sorted(out)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: a copy answers for itself (as the node's fetcher does)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass(frozen=True)
class HttpSource:
    """A hub or a mirror over HTTP(S). The bearer token, if any, goes to this host only."""

    base_url: str
    token: str | None = None
    deadline: float = DEFAULT_DEADLINE

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise SourceError(f"{self.base_url!r} is not an http(s) URL")
        if parsed.query or parsed.fragment:
            raise SourceError(f"{self.base_url!r}: a base URL has no query or fragment")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @property
    def name(self) -> str:
        return self.base_url

    def locate(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def request(self, path: str, cap: int, *, missing_ok: bool = True) -> tuple[int, bytes] | None:
        """GET ``path`` (a tree path or an API path with its query); None on 404."""
        url = self.locate(path)
        # The scheme was checked in __post_init__: only http(s) gets here.
        req = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})  # noqa: S310
        if self.token:
            # Not copied onto a redirect, should one ever be followed.
            req.add_unredirected_header("Authorization", f"Bearer {self.token}")
        opener = urllib.request.build_opener(_NoRedirect)
        started = time.monotonic()
        try:
            with opener.open(req, timeout=self.deadline) as resp:
                length = resp.headers.get("Content-Length")
                if length is not None and length.isdigit() and int(length) > cap:
                    raise LimitError(f"{path}: announced {length} bytes, cap {cap}")
                parts: list[bytes] = []
                total = 0
                # read1: one receive at a time, so a trickle meets the deadline below
                # (read(n) would wait for n bytes, one slow byte after another).
                while chunk := resp.read1(_CHUNK):
                    total += len(chunk)
                    if total > cap:
                        raise LimitError(f"{path}: more than the cap of {cap} bytes")
                    if time.monotonic() - started > self.deadline:
                        raise FetchError(f"{url}: no complete answer within {self.deadline} s")
                    parts.append(chunk)
                return resp.status, b"".join(parts)
        except urllib.error.HTTPError as e:
            if e.code == 404 and missing_ok:
                return None
            raise FetchError(f"{url}: HTTP {e.code}{_hub_message(e)}") from e
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            reason = getattr(e, "reason", e)
            raise FetchError(f"{url}: {reason}") from e

    def get(self, path: str, cap: int) -> bytes | None:
        answer = self.request(path, cap)
        return None if answer is None else answer[1]


def _hub_message(error: urllib.error.HTTPError) -> str:
    """The hub's one-line JSON error message, if it sent one (``{"error": {"message"…}}``)."""
    try:
        body = json.loads(error.read(16 * 1024) or b"null")
        message = body["error"]["message"]
    except (ValueError, KeyError, TypeError, OSError):
        return ""
    return f": {str(message)[:200]}" if isinstance(message, str) else ""


def open_source(
    text: str, *, token: str | None = None, deadline: float = DEFAULT_DEADLINE
) -> FolderSource | HttpSource:
    """A source from what the user typed: an http(s) URL, or a folder that exists."""
    if text.startswith(("http://", "https://")):
        return HttpSource(text, token, deadline)
    if "://" in text:
        raise SourceError(f"{text!r}: only http(s) URLs and folders are sources")
    folder = Path(text)
    if not folder.is_dir():
        raise SourceError(f"{text}: no such folder (give a folder, or an http(s) URL)")
    return FolderSource(folder)
