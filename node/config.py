"""The node's configuration: ``node.toml`` in its home directory, the environment, secret files.

Secrets (the node's private key, its hub token, the match-API token, the webhook
secret) live in separate files of mode 0600 next to the configuration, never in
it, so the configuration can be shown, diffed and backed up freely.

Each setting but the two fixed at enrolment can also be set by the environment
variable ``HASHHUB_NODE_<SETTING>`` (``HASHHUB_NODE_API_PORT``,
``HASHHUB_NODE_MIRRORS``), so a container takes its settings from its
environment. A variable wins over the file, the file over the default. Values
are parsed with the setting's type (lists comma-separated, booleans
``true``/``false``/``1``/``0``); a bad one is an error naming the variable.
``node_id`` and ``pinned_root_sha256`` have no variable: the hub enrolled this
node's key under that id, and the pin is the trust anchor every sync re-checks
the hub's roots against, so it stays in the file ``init`` wrote, where a change
to it can be seen, and a variable pointing the node at another hub and a fresh
database cannot bring a root the operator never pinned. Variables are read on
every load and never written back to ``node.toml``; a secret is never a setting,
so no variable holds one.
"""

from __future__ import annotations

import os
import re
import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from edge import toml
from edge.ownerfile import write_secret
from node.errors import NodeConfigError
from node.hubs import HubSettings, followed_hubs, hubs_toml, parse_hub_tables

__all__ = [
    "CONFIG_NAME",
    "ENV_PREFIX",
    "INIT_ONLY",
    "NodeConfig",
    "env_variable",
    "hubs_of",
    "load_followed",
    "read_secret",
    "rewrite_hubs",
    "write_secret",
]

CONFIG_NAME = "node.toml"

ENV_PREFIX = "HASHHUB_NODE_"
"""Prefix of the variable that overrides a setting: ``HASHHUB_NODE_`` + the name in capitals."""

INIT_ONLY = frozenset({"node_id", "pinned_root_sha256"})
"""Settings fixed at ``init`` that no variable overrides."""

_INT = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def env_variable(setting: str) -> str:
    """The variable that overrides ``setting`` (``api_port``: ``HASHHUB_NODE_API_PORT``)."""
    return ENV_PREFIX + setting.upper()


@dataclass(frozen=True)
class NodeConfig:
    """Settings of one node.

    Attributes:
        node_id: the id the hub enrolled this node under (the ``default`` hub's, and
            the id of a ``[[hubs]]`` table that names none).
        hub_url: the hub's base URL (checkpoints and acks go here): the hub named
            ``default`` (``node.hubs``); "" in a file of ``[[hubs]]`` tables only.
        mirrors: base URLs tried first for immutable files (untrusted).
        lists: the lists this node subscribes to (from the ``default`` hub).
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
        ca_file: a PEM file of the certificate authorities trusted for the hub's,
            the mirrors' and the webhook's https (relative to the home directory;
            "": the system's). Pins a private CA without trusting it system-wide.
        secure_cookies: ``auto``: the status page's session cookie is ``Secure`` when
            the page was served over https, as the connection or a trusted proxy's
            ``X-Forwarded-Proto`` says; ``always``: always ``Secure``.
        rate_burst, rate_per_hour: API requests without a token, per client address
            (how many at once, how many an hour after that; 0: no limit).
        credential_rate_burst, credential_rate_per_hour: requests with the API token,
            from whatever address (0, the default: no limit, since that token is the
            platform's own upload path, which must not be turned away by its node).
        auth_failure_burst, auth_failure_per_hour: wrong API tokens per client address;
            past them every wrong token is refused unchecked (0: no limit).
        trusted_proxies: addresses or CIDR blocks of reverse proxies whose
            ``X-Forwarded-For`` names the client (empty: believe nobody).
        replica: this node's name in the platform's fleet, carried by the match ids
            it issues and its answers' ``Hashhub-Replica`` header ("": none, bare
            UUID match ids). Checked where the node opens (``node.fleet``).
        content_shard: ``i/n``: register only the content ids of shard ``i`` of ``n``
            (``node.fleet.shard_of``; "": all content).
        quarantine_matches_per_hour: N of the quarantine rule (``node.policy``): a
            listed hash with more match events than this in the last hour, and more
            than ``quarantine_factor`` times its hourly average of the week before,
            is held for review instead of blocked (0: never held).
        quarantine_factor: K of that rule.
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
    ca_file: str = ""
    secure_cookies: str = "auto"
    rate_burst: int = 600
    rate_per_hour: int = 36_000
    credential_rate_burst: int = 0
    credential_rate_per_hour: int = 0
    auth_failure_burst: int = 10
    auth_failure_per_hour: int = 600
    trusted_proxies: tuple[str, ...] = ()
    replica: str = ""
    content_shard: str = ""
    quarantine_matches_per_hour: int = 100
    quarantine_factor: float = 10.0

    def __post_init__(self) -> None:
        timeout = self.fetch_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(f"fetch_timeout must be a number of seconds, not {timeout!r}")
        if not 0 < timeout <= 3600:
            raise TypeError(f"fetch_timeout must be from 0 to 3600 seconds, not {timeout}")
        if (
            isinstance(self.quarantine_matches_per_hour, bool)
            or self.quarantine_matches_per_hour < 0
        ):
            raise TypeError(
                "quarantine_matches_per_hour must be 0 (off) or more, "
                f"not {self.quarantine_matches_per_hour!r}"
            )
        factor = self.quarantine_factor
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor < 1:
            raise TypeError(f"quarantine_factor must be a number of at least 1, not {factor!r}")

    def ssl_context(self, home: Path) -> ssl.SSLContext | bool:
        """How the node checks the hub's, the mirrors' and the webhook's certificates.

        ``True`` (the system's authorities) unless ``ca_file`` names a PEM bundle;
        then only the authorities in it are trusted, so a hub behind a private CA
        is reached without adding that CA to the whole machine.

        Raises:
            NodeConfigError: ``ca_file`` is missing or holds no certificate.
        """
        if not self.ca_file:
            return True
        path = home / self.ca_file
        try:
            return ssl.create_default_context(cafile=str(path))
        except (OSError, ssl.SSLError) as e:
            raise NodeConfigError(f"ca_file {path}: not a PEM file of certificates ({e})") from e

    def to_toml(self, hubs: tuple[HubSettings, ...] = ()) -> str:
        """This configuration as ``node.toml`` text that ``load`` reads back identically,
        followed by ``hubs`` as ``[[hubs]]`` tables (``node.hubs``).

        Raises:
            NodeConfigError: a value TOML cannot hold (``edge.toml``), such as a
                string with a lone surrogate.
        """
        return toml.dumps_config(
            self,
            file=CONFIG_NAME,
            comment="hashhub node configuration (see docs/participant-guide.md)",
            error=NodeConfigError,
        ) + hubs_toml(hubs)

    @classmethod
    def load(cls, home: Path, environ: Mapping[str, str] | None = None) -> NodeConfig:
        """Read ``node.toml`` in ``home``, then apply the ``HASHHUB_NODE_*`` variables over it.

        Args:
            home: the node's home directory.
            environ: the variables to apply (default: this process's environment).

        Raises:
            NodeConfigError: no ``node.toml``, a malformed, missing or unknown setting
                in it, a bad ``[[hubs]]`` table, or a variable whose value is not a
                valid value of its setting.
        """
        return load_followed(home, environ)[0]

    @classmethod
    def _load(
        cls, home: Path, environ: Mapping[str, str] | None
    ) -> tuple[NodeConfig, tuple[HubSettings, ...]]:
        path = home / CONFIG_NAME
        raw = toml.read_settings(
            path,
            [*(f.name for f in fields(cls)), "hubs"],
            error=NodeConfigError,
            not_home="not a node home (run 'hashhub-node init')",
        )
        tables = raw.pop("hubs", None)
        top_level = ("hub_url", "lists", "pinned_root_sha256")
        if tables is not None and not any(key in raw for key in top_level):
            # [[hubs]] tables only: no hub named default
            raw |= {"hub_url": "", "lists": [], "pinned_root_sha256": ""}
        toml.require_settings(cls, raw, path, NodeConfigError)
        types = get_type_hints(cls)
        for key, value in raw.items():
            if types[key] == tuple[str, ...]:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise NodeConfigError(f"{path}: {key} must be a list of strings")
                raw[key] = tuple(value)
            elif not _is_a(value, types[key]):
                raise NodeConfigError(f"{path}: {key} must be {_KIND[types[key]]}")
        try:
            config = cls(**raw)
        except TypeError as e:
            raise NodeConfigError(f"{path}: {e}") from e
        for variable, setting, value in _from_environment(
            os.environ if environ is None else environ, types
        ):
            try:  # one at a time, so a value the constructor refuses names its variable
                config = replace(config, **{setting: value})
            except TypeError as e:
                raise NodeConfigError(f"{variable}: {e}") from e
        hubs: tuple[HubSettings, ...] = ()
        if tables is not None:
            hubs = parse_hub_tables(
                tables, path, node_id=config.node_id, poll_interval=config.poll_interval
            )
            followed_hubs(config, hubs, str(path))  # two of one name, a bad default one
        return config, hubs


def load_followed(
    home: Path, environ: Mapping[str, str] | None = None
) -> tuple[NodeConfig, tuple[HubSettings, ...]]:
    """``NodeConfig.load``, with the ``[[hubs]]`` tables of the file as they are written
    (``node.hubs.HubSettings``; the top-level hub is not among them): what
    ``hub add`` and ``hub remove`` rewrite.

    Raises:
        NodeConfigError: as ``NodeConfig.load``.
    """
    return NodeConfig._load(home, environ)


def rewrite_hubs(home: Path, config: NodeConfig, tables: tuple[HubSettings, ...]) -> None:
    """Write ``node.toml`` again as ``config`` (as the file holds it, no variable applied:
    ``load_followed(home, {})``) followed by ``tables``, after checking the hubs it
    names; atomically, so that a running node, which reads it again when it changes
    (``Node.follow_config``), reads the old file or the new one, never half of one.

    Raises:
        NodeConfigError: the hubs break a rule (``node.hubs``): nothing is written.
    """
    followed_hubs(config, tables)
    text = config.to_toml(tables)
    path = home / CONFIG_NAME
    staged = path.with_name(CONFIG_NAME + ".new")
    staged.write_text(text, encoding="utf-8")
    os.replace(staged, path)


def hubs_of(home: Path, config: NodeConfig) -> tuple[HubSettings, ...]:
    """Every hub ``config`` follows, in order: the top-level one (``default``) and the
    ``[[hubs]]`` tables of ``node.toml`` in ``home`` (none when there is no file yet).

    Raises:
        NodeConfigError: two hubs of one name, a bad table, or no hub at all.
    """
    tables: tuple[HubSettings, ...] = ()
    if (home / CONFIG_NAME).exists():
        tables = load_followed(home, {})[1]
    return followed_hubs(config, tables)


_KIND: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    tuple[str, ...]: "a list of strings",
}


def _is_a(value: object, kind: Any) -> bool:
    """Whether a TOML value is of a setting's type (a boolean is no number here)."""
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def _from_environment(
    environ: Mapping[str, str], types: Mapping[str, Any]
) -> list[tuple[str, str, Any]]:
    """``(variable, setting, value)`` for each ``HASHHUB_NODE_*`` variable set, parsed by type."""
    found: list[tuple[str, str, Any]] = []
    for setting, variable, text in toml.overriding_variables(
        NodeConfig, environ, env_variable, INIT_ONLY
    ):
        kind = types[setting]
        value: Any
        if kind is int and _INT.fullmatch(text.strip()):
            value = int(text)
        elif kind is float and _NUMBER.fullmatch(text.strip()):
            value = float(text)
        elif kind is bool and text.strip().lower() in _BOOLEANS:
            value = _BOOLEANS[text.strip().lower()]
        elif kind is str:
            value = text
        elif kind == tuple[str, ...]:
            items = [item.strip() for item in text.split(",")] if text.strip() else []
            if "" in items:
                raise NodeConfigError(f"{variable}: {setting} has an empty item in {text!r}")
            value = tuple(items)
        elif kind in _KIND:
            raise NodeConfigError(f"{variable}: {setting} must be {_KIND[kind]}, not {text!r}")
        else:  # a new setting of another type needs its parser here first
            raise TypeError(f"{variable}: the loader has no parser for {kind!r}")
        found.append((variable, setting, value))
    return found


def read_secret(path: Path) -> str:
    """Read a secret file, refusing one that group or others can read."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as e:
        raise NodeConfigError(f"{path}: missing") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise NodeConfigError(f"{path}: permissions {stat.filemode(mode)} too open; chmod 600")
    return path.read_text(encoding="utf-8").strip()
