"""The auditor's witness file: what it verified on earlier runs, to hold the hub to it.

A single run can only check that a copy of the published tree is internally
sound. Whether the hub *rewrote* history since the auditor last looked, or shows
an older tree than before, needs memory: the witness file keeps, per hub (keyed
by the SHA-256 of its pinned root v1) and per list, the ``protocol.ListTrust``
of the last fully verified run — tree size, compact range, last leaf, state,
and the accepted checkpoint note byte for byte.

On the next run the trust rules judge the new checkpoint against that record
(``TrustedHub.begin_update``: a smaller size or an older co-signature time is
``RollbackError``, the same size with another root is ``EquivocationError``),
and a larger tree must be an append-only extension of the witnessed one (an RFC
9162 consistency proof, built from the newly verified log). A record only
advances after a list verified without a finding, so a bad run never moves it.

The file is JSON, written atomically (a temporary file, then a rename), and
lives in the user's state directory unless ``--witness`` says otherwise.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from protocol import ListTrust, ProtocolError, format_time

__all__ = ["WITNESS_FORMAT", "Witness", "WitnessError", "default_witness_path"]

WITNESS_FORMAT = "hashhub.audit-witness.v1"


class WitnessError(Exception):
    """The witness file cannot be read or written (the user's file, not the hub's fault)."""


def default_witness_path() -> Path:
    """``$XDG_STATE_HOME/hashhub/audit-witness.json`` (``~/.local/state`` by default)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hashhub" / "audit-witness.json"


@dataclass
class Witness:
    """The checkpoints a previous run verified, per hub and list."""

    path: Path
    hubs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Witness:
        """Read ``path``; a file that does not exist yet is an empty witness."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as e:
            raise WitnessError(f"{path}: not a readable witness file ({e})") from e
        if not isinstance(raw, dict) or raw.get("format") != WITNESS_FORMAT:
            raise WitnessError(f"{path}: not a witness file (format {WITNESS_FORMAT} expected)")
        hubs = raw.get("hubs")
        if not isinstance(hubs, dict):
            raise WitnessError(f"{path}: 'hubs' must be an object")
        return cls(path, hubs)

    def trust(self, pin: str, list_id: str) -> ListTrust | None:
        """The last verified record of ``list_id`` at the hub pinned by ``pin``, if any."""
        entry = self.hubs.get(pin, {}).get("lists", {}).get(list_id)
        if entry is None:
            return None
        try:
            return ListTrust.from_dict(entry["trust"])
        except (ProtocolError, KeyError, TypeError) as e:
            raise WitnessError(f"{self.path}: record of list {list_id} is damaged ({e})") from e

    def seen(self, pin: str, list_id: str) -> str | None:
        """When that record was made."""
        entry = self.hubs.get(pin, {}).get("lists", {}).get(list_id)
        return None if entry is None else str(entry.get("seen"))

    def record(self, pin: str, hub_name: str, trust: ListTrust, seen: datetime) -> None:
        hub = self.hubs.setdefault(pin, {"name": hub_name, "lists": {}})
        hub["name"] = hub_name
        hub.setdefault("lists", {})[trust.list_id] = {
            "trust": trust.to_dict(),
            "seen": format_time(seen),
        }

    def save(self) -> None:
        """Write atomically, readable by the user only (it says which hubs they audit)."""
        body = json.dumps({"format": WITNESS_FORMAT, "hubs": self.hubs}, indent=2, sort_keys=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body + "\n")
            tmp.replace(self.path)
        except OSError as e:
            raise WitnessError(f"{self.path}: cannot write the witness file ({e})") from e
