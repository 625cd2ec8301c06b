"""The node's configuration: ``node.toml`` in its home directory, plus secret files.

Secrets (the node's private key, its hub token, the match-API token, the webhook
secret) live in separate files of mode 0600 next to the configuration, never in
it, so the configuration can be shown, diffed and backed up freely.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from node.errors import NodeConfigError

__all__ = ["CONFIG_NAME", "NodeConfig", "read_secret", "write_secret"]

CONFIG_NAME = "node.toml"


@dataclass(frozen=True)
class NodeConfig:
    """Settings of one node.

    Attributes:
        node_id: the id the hub enrolled this node under.
        hub_url: the hub's base URL (checkpoints and acks go here).
        mirrors: base URLs tried first for immutable files (untrusted).
        lists: the lists this node subscribes to.
        pinned_root_sha256: SHA-256 of root v1, as given by the hub operator.
        database: the SQLite file, relative to the home directory.
        api_host, api_port: where ``hashhub-node run`` serves the match API.
        webhook_url: where retroactive matches are delivered ("" disables).
        poll_interval: seconds between polls (the root's ``min_poll_interval`` if larger).
        poll_jitter: up to this many seconds added to each poll interval.
        max_backoff: cap in seconds on the back-off after failures.
        ack_interval: seconds between scheduled acks (besides one after each apply; 0: none).
        snapshot_lag: resynchronise from a snapshot when this many versions behind.
        max_upload_bytes: cap on an image sent to the match API.
        dihedral: also query the 8 rotations/flips of PDQ hashes of images.
        fetch_timeout: seconds allowed for one download, start to end (a source that
            drips bytes is cut off here and the next source tried).
    """

    node_id: str
    hub_url: str
    lists: tuple[str, ...]
    pinned_root_sha256: str
    mirrors: tuple[str, ...] = ()
    database: str = "node.db"
    api_host: str = "127.0.0.1"
    api_port: int = 8471
    webhook_url: str = ""
    poll_interval: int = 300
    poll_jitter: int = 30
    max_backoff: int = 3600
    ack_interval: int = 3600
    snapshot_lag: int = 1000
    max_upload_bytes: int = 20 * 1024 * 1024
    dihedral: bool = False
    fetch_timeout: float = 30.0

    def __post_init__(self) -> None:
        timeout = self.fetch_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(f"fetch_timeout must be a number of seconds, not {timeout!r}")
        if not 0 < timeout <= 3600:
            raise TypeError(f"fetch_timeout must be from 0 to 3600 seconds, not {timeout}")

    def to_toml(self) -> str:
        lines = ["# hashhub node configuration (see docs/participant-guide.md)"]
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                lines.append(f"{f.name} = {'true' if value else 'false'}")
            elif isinstance(value, str):
                lines.append(f"{f.name} = {json.dumps(value)}")
            elif isinstance(value, tuple):
                items = ", ".join(json.dumps(v) for v in value)
                lines.append(f"{f.name} = [{items}]")
            else:
                lines.append(f"{f.name} = {value}")
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, home: Path) -> NodeConfig:
        path = home / CONFIG_NAME
        try:
            raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise NodeConfigError(f"{path}: not a node home (run 'hashhub-node init')") from e
        except tomllib.TOMLDecodeError as e:
            raise NodeConfigError(f"{path}: {e}") from e
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise NodeConfigError(f"{path}: unknown setting(s) {unknown}")
        for key in ("lists", "mirrors"):
            if key in raw:
                if not isinstance(raw[key], list) or not all(isinstance(v, str) for v in raw[key]):
                    raise NodeConfigError(f"{path}: {key} must be a list of strings")
                raw[key] = tuple(raw[key])
        try:
            return cls(**raw)
        except TypeError as e:
            raise NodeConfigError(f"{path}: {e}") from e


def write_secret(path: Path, value: str) -> None:
    """Create a 0600 file holding one secret line."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)


def read_secret(path: Path) -> str:
    """Read a secret file, refusing one that group or others can read."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as e:
        raise NodeConfigError(f"{path}: missing") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise NodeConfigError(f"{path}: permissions {stat.filemode(mode)} too open; chmod 600")
    return path.read_text(encoding="utf-8").strip()
