"""The hub's configuration: one TOML file in the hub's home directory, and the environment.

Written once by ``hashhub init`` with every setting spelled out, read with the
standard library's ``tomllib``. Unknown keys are an error, so a typo never
silently leaves a default in force.

Each setting but ``name`` can also be set by the environment variable
``HASHHUB_<SETTING>`` (``HASHHUB_PORT``, ``HASHHUB_PUBLISH_INTERVAL``), so a
container takes its settings from its environment and keeps ``hub.toml`` as
``init`` wrote it. A variable wins over the file, the file over the default; the
value is parsed with the setting's type, and a bad one is an error naming the
variable. ``name`` has no variable: it is written into root v1 at ``init`` and
the hub signs under the root's name, so a variable could only disagree with it.
Variables are read on every load and never written back to ``hub.toml``.
Private keys are never settings (see ``docs/configuration.md``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, get_type_hints

from edge import toml
from hub.errors import InvalidRequest

__all__ = ["CONFIG_NAME", "ENV_PREFIX", "INIT_ONLY", "HubConfig", "env_variable"]

CONFIG_NAME = "hub.toml"

ENV_PREFIX = "HASHHUB_"
"""Prefix of the variable that overrides a setting: ``HASHHUB_`` + the name in capitals."""

INIT_ONLY = frozenset({"name"})
"""Settings fixed at ``init`` that no variable overrides."""

_POLICY_SETTINGS = ("dispute_threshold", "max_withdrawal_delay")
"""Optional root policy settings: 0 leaves them out of the root (its default holds)."""
_INT = re.compile(r"-?[0-9]+")
_KIND: dict[Any, str] = {int: "an integer", str: "a string"}


def env_variable(setting: str) -> str:
    """The environment variable that overrides ``setting`` (``port``: ``HASHHUB_PORT``)."""
    return ENV_PREFIX + setting.upper()


@dataclass(frozen=True)
class HubConfig:
    """Settings of one hub.

    Attributes:
        name: the hub name, prefix of every checkpoint origin (fixed at init).
        database: the SQLite file, relative to the home directory.
        host: address ``hashhub serve`` binds by default.
        port: port ``hashhub serve`` binds by default.
        public_url: the base URL platforms reach the hub at (``https://…``, the
            proxy's address rather than ``host`` and ``port``), which ``hashhub
            node enrol`` prints for ``hashhub-node init --hub``; "" when unknown:
            the hub cannot see its own address behind a proxy, so it never guesses.
        publish_interval: seconds between scheduled publishes of staged changes (0: off).
        timestamp_interval: seconds between re-issued checkpoint co-signatures (0: off).
        upstream_interval: seconds between runs following the upstream hubs this hub
            follows (``hashhub upstream follow``) and reading its exchanges (``hashhub
            exchange add``); 0: off, ``hashhub upstream sync`` and ``hashhub exchange
            sync`` only.
        max_entries_per_version: pending entries one version of an entries list takes
            at most; more are published as several versions in one run (0: as many
            as keep the body and provenance under the root's ``max_body_bytes``).
        root_expiry_days: how long each new root version is valid.
        max_checkpoint_age: policy: seconds after which a node calls a checkpoint stale.
        min_poll_interval: policy: seconds between a node's polls, at least.
        snapshot_every: default for new lists.
        max_ack_bytes: cap on an ack request body.
        max_evidence_per_node: distinct evidence items kept per node (refused acks
            by content hash, withheld counter jumps); past it the hub counts what it
            dropped instead (``evidence_dropped``).
        counter_window_seconds: the interval over which a node's counter growth is capped.
        max_counter_growth: how much one node's counter (checked, matched, …, of the
            list or of one hash) may grow in one window; a larger jump is withheld
            (not counted) and kept as evidence.
        flag_min_nodes: how many nodes a hash's false positives (or its outlying
            matches) must come from before it is flagged for review: the rule must
            hold without the ``flag_min_nodes - 1`` nodes that contributed most.
        web_session_seconds: how long an operator's dashboard login lasts.
        secure_cookies: ``auto``: the pages' cookies are ``Secure`` when the page
            was served over https, as the connection or a trusted proxy's
            ``X-Forwarded-Proto`` says; ``always``: always ``Secure``.
        web_rate_burst: posts of each public page form (submit, case lookup, login:
            a bucket each) one client address may make at once before it must wait.
        web_rate_per_hour: how fast each of those allowances refills, per hour.
        rate_burst, rate_per_hour: every request without a bearer token, per client
            address: how many at once, and how many an hour after that (0: no limit).
        credential_rate_burst, credential_rate_per_hour: every request with a valid
            bearer token, per node or operator, whatever its address (0: no limit).
        auth_failure_burst, auth_failure_per_hour: wrong, unknown or revoked tokens,
            per client address; past them every unproven token is refused (0: no limit).
        trusted_proxies: comma-separated addresses or CIDR blocks of reverse proxies
            whose ``X-Forwarded-For`` names the client ("": believe nobody).
        withdrawal: what a person's withdrawal of an accepted case does:
            ``automatic``, its entry is retracted as ``withdrawn`` at once (out with
            the next publish); ``review``, the request waits for an operator
            (``hashhub case withdrawals``).
        dispute_threshold: root policy: how many distinct platforms disputing an
            entry make it disputed in the opinion summaries (0: not written into the
            root, which then means the protocol's default, 2).
        max_withdrawal_delay: root policy: the longest, in seconds, a withdrawal or
            an expiry may wait for the version that removes it (0: not written, the
            protocol's default of a day).
        contribution_quorum: how many distinct platforms contributing the same hash
            with the same category make the hub accept their contributions together,
            as one entry, without an operator (0: off; at least 2, since one
            platform alone is what ``hashhub contribution trust`` is for).
        contribution_quorum_list: an entries list of the collection such an entry
            goes to (checked against the root when the server starts).
    """

    name: str
    database: str = "hub.db"
    host: str = "127.0.0.1"
    port: int = 8470
    public_url: str = ""
    publish_interval: int = 300
    timestamp_interval: int = 3600
    upstream_interval: int = 300
    max_entries_per_version: int = 0
    root_expiry_days: int = 365
    max_checkpoint_age: int = 86_400
    min_poll_interval: int = 60
    snapshot_every: int = 100
    max_ack_bytes: int = 1024 * 1024
    max_evidence_per_node: int = 100
    counter_window_seconds: int = 3600
    max_counter_growth: int = 1_000_000_000
    flag_min_nodes: int = 2
    web_session_seconds: int = 8 * 3600
    secure_cookies: str = "auto"
    web_rate_burst: int = 10
    web_rate_per_hour: int = 60
    rate_burst: int = 600
    rate_per_hour: int = 36_000
    credential_rate_burst: int = 600
    credential_rate_per_hour: int = 36_000
    auth_failure_burst: int = 10
    auth_failure_per_hour: int = 600
    trusted_proxies: str = ""
    withdrawal: str = "automatic"
    dispute_threshold: int = 0
    max_withdrawal_delay: int = 0
    contribution_quorum: int = 0
    contribution_quorum_list: str = ""

    def __post_init__(self) -> None:
        """Refuse a root policy no root could carry: each is 0 (not set) or at least 1,
        so a typo fails at load rather than at the next root change; and a quorum of
        one platform. Whether ``contribution_quorum_list`` is an entries list is the
        root's to say, checked when the server starts
        (``Contributions.check_policy``)."""
        for name in ("upstream_interval", "max_entries_per_version"):
            if getattr(self, name) < 0:
                raise InvalidRequest(f"{name} must be 0 (off) or at least 1")
        for name in _POLICY_SETTINGS:
            if getattr(self, name) < 0:
                raise InvalidRequest(f"{name} must be 0 (not set) or at least 1")
        if self.contribution_quorum < 0 or self.contribution_quorum == 1:
            raise InvalidRequest(
                "contribution_quorum must be 0 (off) or at least 2 distinct platforms "
                "(trust a single platform with 'hashhub contribution trust')"
            )

    def to_toml(self) -> str:
        """This configuration as ``hub.toml`` text that ``load`` reads back identically.

        Raises:
            InvalidRequest: a value TOML cannot hold (``edge.toml``), such as a
                string with a lone surrogate.
        """
        return toml.dumps_config(
            self,
            file=CONFIG_NAME,
            comment="hashhub hub configuration (see docs/operator-guide.md)",
            error=InvalidRequest,
        )

    @classmethod
    def load(cls, home: Path, environ: Mapping[str, str] | None = None) -> HubConfig:
        """Read ``hub.toml`` in ``home``, then apply the ``HASHHUB_*`` variables over it.

        Args:
            home: the hub's home directory.
            environ: the variables to apply (default: this process's environment).

        Raises:
            InvalidRequest: no ``hub.toml``, a malformed or unknown setting in it, or
                a variable whose value is not of its setting's type.
        """
        path = home / CONFIG_NAME
        raw = toml.read_settings(
            path,
            [f.name for f in fields(cls)],
            error=InvalidRequest,
            not_home="not a hub home (run 'hashhub init' first)",
        )
        types = get_type_hints(cls)
        for key, value in raw.items():
            expected = types[key]
            if not isinstance(value, expected) or isinstance(value, bool):
                raise InvalidRequest(f"{path}: {key} must be {_KIND[expected]}")
        toml.require_settings(cls, raw, path, InvalidRequest)
        config = cls(**raw)
        overrides = _from_environment(os.environ if environ is None else environ, types)
        return replace(config, **overrides) if overrides else config


def _from_environment(environ: Mapping[str, str], types: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the ``HASHHUB_*`` variables in ``environ`` give, parsed by type."""
    overrides: dict[str, Any] = {}
    for setting, variable, text in toml.overriding_variables(
        HubConfig, environ, env_variable, INIT_ONLY
    ):
        kind = types[setting]
        if kind is int:
            if not _INT.fullmatch(text.strip()):
                raise InvalidRequest(f"{variable}: {setting} must be an integer, not {text!r}")
            overrides[setting] = int(text)
        elif kind is str:
            overrides[setting] = text
        else:  # a new setting of another type needs its parser here first
            raise TypeError(f"{variable}: the loader has no parser for {kind!r}")
    return overrides
