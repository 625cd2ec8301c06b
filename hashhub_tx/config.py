"""The collaboration config: which hub, which root of trust, which lists, which node identity.

python-threatexchange builds its ``config collab edit hashhub`` flags from these
fields and stores the config as JSON (HMA in its database), so the fields are plain
JSON types. This module must not use ``from __future__ import annotations``: the
pytx CLI reads ``field.type`` as a live type to make its flags, and it recognises
``typing.Optional[str]`` but not ``str | None``.

Each field's type is a checked string (``HubUrl``, ``RootPin``, ``ListId``,
``NodeHome``): the pytx CLI calls a field's type on every flag value, so a bad
value is refused by ``config collab edit`` with its reason, before anything is
stored. Loading a stored config does not call them (any ``str`` is accepted as
one, see ``_CheckedStr``): pytx lists every stored collaboration, and one bad
config must not hide the others. Such a config is refused when it is used
(``check``): that fetch fails with the reason, the other collaborations go on.

No field holds a secret: the config is a plain file (mode 0644 under
``~/.threatexchange``) or a database row. The hub token and the signing key live
in a node home (``node_home``) in files of mode 0600, refused when wider.
"""

import argparse
import re
import typing as t
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults

from hashhub_tx.errors import BridgeConfigError
from protocol.errors import InvalidListIdError
from protocol.lists import validate_list_id

__all__ = ["API_NAME", "HashhubCollabConfig", "HubUrl", "ListId", "NodeHome", "RootPin"]

API_NAME = "hashhub"
"""The exchange's name in python-threatexchange (``collab.api``); never changes."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


class _CheckedStrMeta(type):
    """Any ``str`` counts as an instance, so a stored config loads without the check.

    pytx loads a stored config with ``dacite``, which insists that each value is an
    instance of its field's type; the check belongs to the moment a value is given
    (the CLI flag) and to the moment it is used (``check``), not to loading.
    """

    def __instancecheck__(cls, value: object) -> bool:
        return isinstance(value, str)


class _CheckedStr(str, metaclass=_CheckedStrMeta):
    """A string whose constructor refuses a bad value with the reason, for argparse.

    ``argparse.ArgumentTypeError`` is the one exception whose message argparse prints
    as it is (a ``ValueError`` becomes "invalid value").
    """

    def __new__(cls, value: str) -> "_CheckedStr":
        problem = cls.problem(value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return super().__new__(cls, cls.normal(value))

    @staticmethod
    def problem(value: str) -> t.Optional[str]:  # noqa: UP045 (this module avoids X | None)
        """Why ``value`` cannot be used, or None."""
        return None

    @staticmethod
    def normal(value: str) -> str:
        return value


class HubUrl(_CheckedStr):
    """An http(s) base URL without query or fragment (the hub's, or a mirror's)."""

    @staticmethod
    def problem(value: str) -> t.Optional[str]:  # noqa: UP045
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return f"{value!r} is not an http(s) URL (such as https://hub.example.org)"
        if parts.query or parts.fragment:
            return f"{value!r} has a query or fragment; give the hub's base URL"
        return None

    @staticmethod
    def normal(value: str) -> str:
        return value.rstrip("/")


class RootPin(_CheckedStr):
    """The SHA-256 of root/1.json: 64 lowercase hex digits."""

    @staticmethod
    def problem(value: str) -> t.Optional[str]:  # noqa: UP045
        if not _HEX64.fullmatch(value):
            return (
                f"{value[:80]!r} is not a SHA-256: the pin is 64 lowercase hex digits "
                "(sha256sum of the hub's root/1.json, from the hub operator)"
            )
        return None


class ListId(_CheckedStr):
    """A hashhub list id."""

    @staticmethod
    def problem(value: str) -> t.Optional[str]:  # noqa: UP045
        try:
            validate_list_id(value)
        except InvalidListIdError as e:
            return str(e)
        return None


class NodeHome(_CheckedStr):
    """A hashhub node home (``hashhub-node init``): its identity signs the acks."""

    @staticmethod
    def problem(value: str) -> t.Optional[str]:  # noqa: UP045
        if not value:
            return "the node home is empty"
        if not (Path(value).expanduser() / "node.toml").is_file():
            return f"{value!r} holds no node.toml: make it with 'hashhub-node init --home DIR'"
        return None

    @staticmethod
    def normal(value: str) -> str:
        return str(Path(value).expanduser().resolve())


@dataclass
class HashhubCollabConfig(CollaborationConfigWithDefaults):
    """A subscription to lists of one hashhub hub.

    Every field has a default so that ``config collab edit NAME --disable`` (or any
    edit of one field) does not demand the others; ``check`` refuses an empty
    ``hub_url`` or ``pinned_root_sha256`` when the collaboration is used.

    Attributes:
        hub_url: the hub (checkpoints come from here first; files too if no mirror
            has them; acks go here only).
        pinned_root_sha256: the SHA-256 of root version 1, the root of all trust.
        list_ids: the lists to follow; empty follows every list of the newest root
            whose hash type python-threatexchange can match (pdq, md5, sha256).
        mirrors: untrusted copies of the hub's published tree, tried first for
            immutable files; what they serve is verified like the hub's.
        node_home: a node home the hub operator enrolled: its hub token (mode 0600)
            reads lists that are not public, its key signs acks. None: public
            lists only, and no acks.
    """

    api: str = field(init=False, default=API_NAME)
    hub_url: HubUrl = field(
        default=t.cast(HubUrl, ""),
        metadata={"help": "the hashhub hub's base URL (http or https)", "metavar": "URL"},
    )
    pinned_root_sha256: RootPin = field(
        default=t.cast(RootPin, ""),
        metadata={
            "help": "SHA-256 (64 lowercase hex digits) of the hub's root/1.json, from the "
            "hub operator over a channel you trust: every signature is checked from it",
            "metavar": "SHA256",
        },
    )
    list_ids: list[ListId] = field(
        default_factory=list,
        metadata={
            "help": "comma-separated list ids to follow (default: every pdq, md5 and "
            "sha256 list the hub declares)",
            "metavar": "ID[,ID...]",
        },
    )
    mirrors: list[HubUrl] = field(
        default_factory=list,
        metadata={
            "help": "comma-separated base URLs of untrusted mirrors of the published tree",
            "metavar": "URL[,URL...]",
        },
    )
    node_home: t.Optional[NodeHome] = field(  # noqa: UP045 (the pytx CLI needs typing.Optional)
        default=None,
        metadata={
            "help": "a node home made by 'hashhub-node init' and enrolled at the hub: its "
            "token (mode 0600) reads lists that are not public, its key signs acks",
            "metavar": "DIR",
        },
    )

    def check(self) -> None:
        """Raise ``BridgeConfigError`` unless every field can be used as it is."""
        if not self.hub_url:
            raise BridgeConfigError(f"collab {self.name}: no hub URL (--hub-url)")
        if not self.pinned_root_sha256:
            raise BridgeConfigError(f"collab {self.name}: no pinned root (--pinned-root-sha256)")
        checks: list[tuple[type[_CheckedStr], str]] = [
            (HubUrl, self.hub_url),
            (RootPin, self.pinned_root_sha256),
            *((HubUrl, url) for url in self.mirrors),
            *((ListId, list_id) for list_id in self.list_ids),
        ]
        if self.node_home is not None:
            checks.append((NodeHome, self.node_home))
        for kind, value in checks:
            if not isinstance(value, str):
                raise BridgeConfigError(f"collab {self.name}: {value!r} is not a string")
            problem = kind.problem(value)
            if problem is not None:
                raise BridgeConfigError(f"collab {self.name}: {problem}")
        if len(set(self.list_ids)) != len(self.list_ids):
            raise BridgeConfigError(f"collab {self.name}: a list id is named twice")
