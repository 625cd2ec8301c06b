"""The hub's configuration: one TOML file in the hub's home directory.

Written once by ``hashhub init`` with every setting spelled out, read with the
standard library's ``tomllib``. Unknown keys are an error, so a typo never
silently leaves a default in force.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from hub.errors import InvalidRequest

__all__ = ["CONFIG_NAME", "HubConfig"]

CONFIG_NAME = "hub.toml"


@dataclass(frozen=True)
class HubConfig:
    """Settings of one hub.

    Attributes:
        name: the hub name, prefix of every checkpoint origin (fixed at init).
        database: the SQLite file, relative to the home directory.
        host: address ``hashhub serve`` binds by default.
        port: port ``hashhub serve`` binds by default.
        publish_interval: seconds between scheduled publishes of staged changes (0: off).
        timestamp_interval: seconds between re-issued checkpoint co-signatures (0: off).
        root_expiry_days: how long each new root version is valid.
        max_checkpoint_age: policy: seconds after which a node calls a checkpoint stale.
        min_poll_interval: policy: seconds between a node's polls, at least.
        snapshot_every: default for new lists.
        max_ack_bytes: cap on an ack request body.
        web_session_seconds: how long an operator's dashboard login lasts.
        web_rate_burst: public page posts (submit, case lookup, login) one client
            address may make at once before it must wait.
        web_rate_per_hour: how fast that allowance refills, per hour.
    """

    name: str
    database: str = "hub.db"
    host: str = "127.0.0.1"
    port: int = 8470
    publish_interval: int = 300
    timestamp_interval: int = 3600
    root_expiry_days: int = 365
    max_checkpoint_age: int = 86_400
    min_poll_interval: int = 60
    snapshot_every: int = 100
    max_ack_bytes: int = 1024 * 1024
    web_session_seconds: int = 8 * 3600
    web_rate_burst: int = 10
    web_rate_per_hour: int = 60

    def to_toml(self) -> str:
        lines = ["# hashhub hub configuration (see docs/operator-guide.md)"]
        for f in fields(self):
            value = getattr(self, f.name)
            lines.append(
                f'{f.name} = "{value}"' if isinstance(value, str) else f"{f.name} = {value}"
            )
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, home: Path) -> HubConfig:
        path = home / CONFIG_NAME
        try:
            raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise InvalidRequest(f"{path}: not a hub home (run 'hashhub init' first)") from e
        except tomllib.TOMLDecodeError as e:
            raise InvalidRequest(f"{path}: {e}") from e
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise InvalidRequest(f"{path}: unknown setting(s) {unknown}")
        for key, value in raw.items():
            expected = str if key in ("name", "database", "host") else int
            if not isinstance(value, expected) or isinstance(value, bool):
                raise InvalidRequest(f"{path}: {key} must be {expected.__name__}")
        return cls(**raw)
