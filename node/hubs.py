"""The hubs a node follows: the ``[[hubs]]`` tables of ``node.toml``.

A platform may follow several clearinghouses at once (a national helpline, a
child-protection hotline, a regional hub: ADR 20, "A node follows several hubs").
Each is one ``HubSettings``: a local ``name`` (the node id's grammar), its ``url``,
the SHA-256 of its root v1 (``pinned_root_sha256``, the trust anchor of every sync
from it), the ``node_id`` it enrolled this node under, the ``lists`` followed from
it, ``mirrors`` and ``poll_interval``. Its token is a secret file of its own
(``token_path``). One node key signs for every hub.

A ``node.toml`` of before (``hub_url``, ``lists``, ``pinned_root_sha256`` at the top,
no ``[[hubs]]``) is one hub named ``default``; the top-level settings are that hub
still when ``[[hubs]]`` tables follow them, so ``hub add`` on such a node only
appends a table. A list is named by the pair (hub, list id): two hubs may list
under the same id, and each keeps its own.

Every rule is checked where the file is read, and a bad table is one error naming
the file, the hub and the rule, before anything runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from edge import toml
from node.errors import NodeConfigError
from node.store.tables import DEFAULT_HUB
from protocol import ProtocolError
from protocol.ack import NODE_ID_PATTERN
from protocol.lists import validate_list_id


class TopLevelHub(Protocol):
    """The settings at the top of ``node.toml`` that make the ``default`` hub (what
    ``node.config.NodeConfig`` has; named here so that this module, which the
    configuration reads, does not import it back)."""

    @property
    def hub_url(self) -> str: ...
    @property
    def pinned_root_sha256(self) -> str: ...
    @property
    def node_id(self) -> str: ...
    @property
    def lists(self) -> tuple[str, ...]: ...
    @property
    def mirrors(self) -> tuple[str, ...]: ...
    @property
    def poll_interval(self) -> int: ...


__all__ = [
    "DEFAULT_HUB",
    "HubSettings",
    "check_hubs",
    "check_pin",
    "followed_hubs",
    "hub_name",
    "hubs_toml",
    "parse_hub_tables",
    "shown_list",
    "token_path",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class HubSettings:
    """One followed hub (one ``[[hubs]]`` table, or the top-level settings).

    Attributes:
        name: the local alias, in match answers, webhooks, the status page and
            ``--hub``: the node id's grammar.
        url: the hub's base URL (checkpoints and acks go here).
        pinned_root_sha256: SHA-256 of the hub's root v1, as its operator gave it.
        node_id: the id this hub enrolled the node's key under (may differ per hub).
        lists: the lists followed from this hub, each once.
        mirrors: base URLs tried first for the hub's immutable files (untrusted).
        poll_interval: seconds between polls of this hub (its root's
            ``min_poll_interval`` if larger).
    """

    name: str
    url: str
    pinned_root_sha256: str
    node_id: str
    lists: tuple[str, ...]
    mirrors: tuple[str, ...] = ()
    poll_interval: int = 300


_REQUIRED = ("name", "url", "pinned_root_sha256", "lists")
_STRINGS = ("name", "url", "pinned_root_sha256", "node_id")
_LISTS = ("lists", "mirrors")


def hub_name(name: str) -> str:
    """``name`` if it is a hub name (the node id's grammar), else a ``NodeConfigError``."""
    if not isinstance(name, str) or not NODE_ID_PATTERN.fullmatch(name) or ".." in name:
        raise NodeConfigError(
            f"hub name {name!r} is not a name: 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_pin(pin: str, where: str) -> str:
    """A pinned root SHA-256, normalised (64 lowercase hex digits)."""
    normal = pin.strip().lower()
    if not _HEX64.fullmatch(normal):
        raise NodeConfigError(f"{where}: pinned_root_sha256 must be 64 hex digits")
    return normal


def _check(hub: HubSettings, where: str) -> HubSettings:
    """One hub's settings, checked (the pin normalised, URLs without a trailing '/')."""
    try:
        hub_name(hub.name)
    except NodeConfigError as e:
        raise NodeConfigError(f"{where}: {e}") from e
    if not NODE_ID_PATTERN.fullmatch(hub.node_id) or ".." in hub.node_id:
        raise NodeConfigError(f"{where}: invalid node id {hub.node_id!r}")
    if not hub.lists:
        raise NodeConfigError(f"{where}: follow at least one list (lists)")
    seen: set[str] = set()
    for list_id in hub.lists:
        try:
            validate_list_id(list_id)
        except ProtocolError as e:
            raise NodeConfigError(f"{where}: {e}") from e
        if list_id in seen:
            raise NodeConfigError(f"{where}: list {list_id!r} is named twice")
        seen.add(list_id)
    for url in (hub.url, *hub.mirrors):
        if not url.startswith(("http://", "https://")):
            raise NodeConfigError(f"{where}: {url!r} is not an http(s) URL")
    if isinstance(hub.poll_interval, bool) or hub.poll_interval < 1:
        raise NodeConfigError(f"{where}: poll_interval must be a positive number of seconds")
    return HubSettings(
        name=hub.name,
        url=hub.url.rstrip("/"),
        pinned_root_sha256=check_pin(hub.pinned_root_sha256, where),
        node_id=hub.node_id,
        lists=hub.lists,
        mirrors=tuple(m.rstrip("/") for m in hub.mirrors),
        poll_interval=hub.poll_interval,
    )


def parse_hub_tables(
    tables: object, path: Path, *, node_id: str, poll_interval: int
) -> tuple[HubSettings, ...]:
    """The ``[[hubs]]`` tables read from ``path``, each checked.

    ``node_id`` and ``poll_interval`` are the top-level ones, which a table that
    leaves them out takes.

    Raises:
        NodeConfigError: ``hubs`` is not an array of tables, or a table has an
            unknown, missing or mistyped setting, a bad name, pin, URL or list id,
            or names a list twice.
    """
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise NodeConfigError(f"{path}: hubs must be [[hubs]] tables")
    known = {f.name for f in fields(HubSettings)}
    hubs = []
    for number, table in enumerate(tables, 1):
        name = table.get("name")
        where = (
            f"{path}: [[hubs]] {name!r}" if isinstance(name, str) else f"{path}: [[hubs]] #{number}"
        )
        unknown = sorted(set(table) - known)
        if unknown:
            raise NodeConfigError(f"{where}: unknown setting(s) {unknown}")
        missing = [key for key in _REQUIRED if key not in table]
        if missing:
            raise NodeConfigError(f"{where}: missing setting(s) {missing}")
        values: dict[str, Any] = {"node_id": node_id, "poll_interval": poll_interval} | table
        for key in _STRINGS:
            if not isinstance(values[key], str):
                raise NodeConfigError(f"{where}: {key} must be a string")
        for key in _LISTS:
            value = values.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise NodeConfigError(f"{where}: {key} must be a list of strings")
            values[key] = tuple(value)
        if isinstance(values["poll_interval"], bool) or not isinstance(
            values["poll_interval"], int
        ):
            raise NodeConfigError(f"{where}: poll_interval must be an integer")
        hubs.append(_check(HubSettings(**values), where))
    return tuple(hubs)


def check_hubs(hubs: Sequence[HubSettings], where: str) -> tuple[HubSettings, ...]:
    """Refuse two hubs of one name, and a node that follows no hub."""
    if not hubs:
        raise NodeConfigError(
            f"{where}: no hub: set hub_url, lists and pinned_root_sha256, or add [[hubs]] tables"
        )
    seen: set[str] = set()
    for hub in hubs:
        if hub.name in seen:
            raise NodeConfigError(f"{where}: two hubs are named {hub.name!r}")
        seen.add(hub.name)
    return tuple(hubs)


def followed_hubs(
    config: TopLevelHub, tables: Sequence[HubSettings], where: str = "node.toml"
) -> tuple[HubSettings, ...]:
    """Every hub the node follows: the top-level one as ``default`` (when ``hub_url``
    is set), then the ``[[hubs]]`` tables, in the file's order.

    Raises:
        NodeConfigError: ``where``: two hubs of one name, no hub, or a bad top-level one.
    """
    hubs: list[HubSettings] = []
    if config.hub_url:
        hubs.append(
            _check(
                HubSettings(
                    name=DEFAULT_HUB,
                    url=config.hub_url,
                    pinned_root_sha256=config.pinned_root_sha256,
                    node_id=config.node_id,
                    lists=config.lists,
                    mirrors=config.mirrors,
                    poll_interval=config.poll_interval,
                ),
                where,
            )
        )
    return check_hubs([*hubs, *tables], where)


def hubs_toml(hubs: Sequence[HubSettings]) -> str:
    """``[[hubs]]`` tables for ``hubs``, to follow the top-level settings in ``node.toml``."""
    parts = []
    for hub in hubs:
        settings: Mapping[str, object] = {f.name: getattr(hub, f.name) for f in fields(hub)}
        try:
            parts.append("\n[[hubs]]\n" + toml.dumps(settings))
        except toml.TomlWriteError as e:
            raise NodeConfigError(f"node.toml: [[hubs]] {hub.name!r}: {e}") from e
    return "".join(parts)


def token_path(home: Path, hub: str) -> Path:
    """The secret file of the token ``hub`` gave this node: ``hub-token`` for the
    ``default`` hub (as before), ``hub-token.<name>`` for another."""
    return home / ("hub-token" if hub == DEFAULT_HUB else f"hub-token.{hub}")


def shown_list(hub: str, list_id: str) -> str:
    """A list as a log line or a message names it: its id for the ``default`` hub
    (as before there were several), else ``hub/list``."""
    return list_id if hub == DEFAULT_HUB else f"{hub}/{list_id}"
