"""The collaboration config: which hub, which root of trust, which lists.

python-threatexchange builds its ``config collab edit hashhub`` flags from these
fields and stores the config as JSON (HMA in its database), so the fields are plain
JSON types. This module must not use ``from __future__ import annotations``: the
pytx CLI reads ``field.type`` as a live type to make its flags, and it recognises
``typing.Optional[str]`` but not ``str | None``.

The config is checked when an exchange is made from it (``check``), not when it is
loaded: pytx lists every stored collaboration, and one bad config must not hide the
others.
"""

import re
import typing as t
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults

from hashhub_tx.errors import BridgeConfigError
from protocol.errors import InvalidListIdError
from protocol.lists import validate_list_id

__all__ = ["API_NAME", "HashhubCollabConfig"]

API_NAME = "hashhub"
"""The exchange's name in python-threatexchange (``collab.api``); never changes."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class _RequiredFields:
    hub_url: str = field(
        metadata={"help": "the hashhub hub's base URL (http or https)", "metavar": "URL"}
    )
    pinned_root_sha256: str = field(
        metadata={
            "help": "SHA-256 (64 lowercase hex digits) of the hub's root/1.json, from the "
            "hub operator over a channel you trust: every signature is checked from it",
            "metavar": "SHA256",
        }
    )


@dataclass
class HashhubCollabConfig(CollaborationConfigWithDefaults, _RequiredFields):
    """A subscription to lists of one hashhub hub.

    Attributes:
        hub_url: the hub (checkpoints come from here first; files too if no mirror has them).
        pinned_root_sha256: the SHA-256 of root version 1, the root of all trust.
        list_ids: the lists to follow; empty follows every list of the newest root
            whose hash type python-threatexchange can match (pdq, md5, sha256).
        mirrors: untrusted copies of the hub's published tree, tried first for
            immutable files; what they serve is verified like the hub's.
        token: the bearer token of an enrolled node allowed to read the lists
            (not needed for public lists); sent to the hub only, never to mirrors.
    """

    api: str = field(init=False, default=API_NAME)
    list_ids: list[str] = field(
        default_factory=list,
        metadata={
            "help": "comma-separated list ids to follow (default: every pdq, md5 and "
            "sha256 list the hub declares)",
            "metavar": "ID[,ID...]",
        },
    )
    mirrors: list[str] = field(
        default_factory=list,
        metadata={
            "help": "comma-separated base URLs of untrusted mirrors of the published tree",
            "metavar": "URL[,URL...]",
        },
    )
    token: t.Optional[str] = field(  # noqa: UP045 (the pytx CLI needs typing.Optional)
        default=None,
        metadata={
            "help": "bearer token of an enrolled node (only for lists that are not public)",
            "metavar": "TOKEN",
        },
    )

    def check(self) -> None:
        """Raise ``BridgeConfigError`` unless every field can be used as it is."""
        for url in [self.hub_url, *self.mirrors]:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise BridgeConfigError(f"collab {self.name}: {url!r} is not an http(s) URL")
            if parts.query or parts.fragment:
                raise BridgeConfigError(f"collab {self.name}: {url!r} has a query or fragment")
        if not _HEX64.fullmatch(self.pinned_root_sha256):
            raise BridgeConfigError(
                f"collab {self.name}: pinned_root_sha256 must be 64 lowercase hex digits"
            )
        for list_id in self.list_ids:
            try:
                validate_list_id(list_id)
            except InvalidListIdError as e:
                raise BridgeConfigError(f"collab {self.name}: {e}") from e
        if len(set(self.list_ids)) != len(self.list_ids):
            raise BridgeConfigError(f"collab {self.name}: a list id is named twice")
        if self.token is not None and (not self.token or any(c.isspace() for c in self.token)):
            raise BridgeConfigError(f"collab {self.name}: the token is empty or has spaces")
