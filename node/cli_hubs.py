"""``hashhub-node hub add|remove|list``: the hubs a node follows, changed in ``node.toml``.

A platform follows several clearinghouses (ADR 20). These commands rewrite the
``[[hubs]]`` tables of ``node.toml`` (``node.config.rewrite_hubs``: checked first,
written atomically) and the hub's token file; a running ``hashhub-node run`` takes
the change up within ``node.scheduler.OUTBOX_INTERVAL`` seconds (it looks at
``node.toml`` on its outbox job): an added hub is polled at once, a removed hub's
lists stop matching at once. A removed hub's evidence, match events and stored lists
stay in the store; adding it again under the same name takes them up again.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import click

from edge import cli as edge_cli
from node import store as node_store
from node.config import NodeConfig, hubs_of, load_followed, rewrite_hubs, write_secret
from node.errors import NodeConfigError
from node.hubs import DEFAULT_HUB, HubSettings, hub_name, parse_hub_tables, token_path

__all__ = ["hub"]

home_option = edge_cli.home_option(
    "HASHHUB_NODE_HOME", "The node's home directory (made by 'hashhub-node init')."
)


def check_token(token: str) -> None:
    """Refuse what cannot be a hub token (before it is written anywhere)."""
    if not token or len(token) > 256 or not all(0x21 <= ord(c) <= 0x7E for c in token):
        raise click.ClickException("a hub token is 1-256 printable characters without spaces")


@click.group()
def hub() -> None:
    """The hubs this node follows (node.toml's [[hubs]]); a running node takes a change up
    within seconds."""


@hub.command(name="list")
@edge_cli.json_option
@home_option
def hub_list(as_json: bool, home: Path) -> None:
    """Every followed hub: its name, URL, the id it enrolled this node under, its lists."""
    with edge_cli.reported(busy_timeout=node_store.BUSY_TIMEOUT):
        hubs = hubs_of(home, NodeConfig.load(home))
    rows = [
        asdict(h)
        | {"lists": list(h.lists), "mirrors": list(h.mirrors)}
        | {"enrolled": token_path(home, h.name).exists()}
        for h in hubs
    ]
    if as_json:
        edge_cli.echo_json({"hubs": rows})
        return
    click.echo(
        edge_cli.table(
            ["HUB", "URL", "NODE ID", "LISTS", "POLL", "TOKEN"],
            [
                [
                    r["name"],
                    r["url"],
                    r["node_id"],
                    ",".join(r["lists"]),
                    r["poll_interval"],
                    "stored" if r["enrolled"] else "none yet",
                ]
                for r in rows
            ],
        )
    )


@hub.command(name="add")
@click.argument("name")
@click.argument("url")
@click.option("--pin", required=True, help="SHA-256 of the hub's root v1, as its operator gave it.")
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file holding the token this hub issued (else later: token set --hub NAME).",
)
@click.option(
    "--node-id", help="The id this hub enrolled the node under (default: node.toml's node_id)."
)
@click.option(
    "--list", "lists", multiple=True, required=True, metavar="LIST", help="A list to follow."
)
@click.option("--mirror", "mirrors", multiple=True, metavar="URL", help="A mirror of the hub.")
@click.option(
    "--poll-interval",
    type=click.IntRange(min=1),
    help="Seconds between polls (default: node.toml's poll_interval).",
)
@home_option
def hub_add(
    name: str,
    url: str,
    pin: str,
    token_file: Path | None,
    node_id: str | None,
    lists: tuple[str, ...],
    mirrors: tuple[str, ...],
    poll_interval: int | None,
    home: Path,
) -> None:
    """Follow one more hub, NAME, at URL (NAME: its alias here, in answers and --hub)."""
    token = token_file.read_text(encoding="utf-8").strip() if token_file is not None else None
    if token is not None:
        check_token(token)
    with edge_cli.reported(busy_timeout=node_store.BUSY_TIMEOUT):
        config, tables = load_followed(home, {})
        added = HubSettings(
            name=hub_name(name),
            url=url,
            pinned_root_sha256=pin,
            node_id=node_id or config.node_id,
            lists=lists,
            mirrors=mirrors,
            poll_interval=poll_interval or config.poll_interval,
        )
        if any(h.name == name for h in hubs_of(home, config)):
            raise NodeConfigError(f"this node already follows a hub named {name!r}")
        rewrite_hubs(home, config, (*tables, _checked(added)))
        if token is not None:
            write_secret(token_path(home, name), token)
    click.echo(f"Following hub {name} at {url.rstrip('/')}: {', '.join(lists)}")
    if token is None:
        click.echo(f"Next: hashhub-node token set --hub {name} TOKEN (once it enrols node.pub.pem)")
    click.echo("A running node takes it up within seconds.")


def _checked(hub: HubSettings) -> HubSettings:
    """``hub`` as ``node.toml`` will read it back (the pin normalised), or the error
    (the rules of a ``[[hubs]]`` table, ``node.hubs``)."""
    table = asdict(hub) | {"lists": list(hub.lists), "mirrors": list(hub.mirrors)}
    (checked,) = parse_hub_tables(
        [table], Path("hub add"), node_id=hub.node_id, poll_interval=hub.poll_interval
    )
    return checked


@hub.command(name="remove")
@click.argument("name")
@home_option
def hub_remove(name: str, home: Path) -> None:
    """Stop following hub NAME: its lists stop matching; its evidence and events stay."""
    with edge_cli.reported(busy_timeout=node_store.BUSY_TIMEOUT):
        config, tables = load_followed(home, {})
        names = [h.name for h in hubs_of(home, config)]
        if name not in names:
            raise NodeConfigError(
                f"no hub named {name[:64]!r}; this node follows {', '.join(names)}"
            )
        if len(names) == 1:
            raise NodeConfigError(f"{name} is the only hub this node follows: a node follows one")
        if name == DEFAULT_HUB and config.hub_url:
            config = replace(config, hub_url="", lists=(), pinned_root_sha256="", mirrors=())
        rewrite_hubs(home, config, tuple(h for h in tables if h.name != name))
        token_path(home, name).unlink(missing_ok=True)
    click.echo(f"No longer following hub {name}; its token file is deleted, its evidence kept.")
    click.echo("A running node stops matching its lists within seconds.")
