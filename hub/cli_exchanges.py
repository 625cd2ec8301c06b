"""``hashhub exchange add|credentials|remove|status|sync``: hash exchanges this hub reads.

A hub can take entries from a hash exchange that is not a hub — StopNCII's, NCMEC's
— through python-threatexchange's clients (``hub.exchange_apis``), each record an
entry of source ``exchange:<name>`` with the record as read in its version's
provenance (PROTOCOL.md §5.7). The scheduler's ``upstreams`` job reads every
exchange after the upstream hubs; ``sync`` reads them now.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from edge import cli as edge_cli
from hub.bridging import BridgeReport, bridge_exchanges
from hub.cli_plumbing import home_option, open_hub
from hub.core import Hub
from hub.following import in_place
from hub.services.exchanges import EXCHANGE_APIS

__all__ = ["exchange"]


@click.group()
def exchange() -> None:
    """Hash exchanges this hub takes entries from (StopNCII, NCMEC)."""


@exchange.command(name="add")
@click.argument("name", metavar="NAME")
@click.option(
    "--api",
    required=True,
    type=click.Choice(sorted(EXCHANGE_APIS)),
    help="The exchange's API, as python-threatexchange reads it.",
)
@click.option("--url", required=True, help="The exchange API's base URL.")
@click.option(
    "--into",
    "lists",
    multiple=True,
    required=True,
    metavar="ID",
    help="An entries list of this hub; each takes the hashes of its type (repeat).",
)
@click.option("--category", required=True, metavar="TERM", help="The category of its entries.")
@click.option(
    "--classification",
    default="unconfirmed",
    show_default=True,
    metavar="TERM",
    help="The classification of its entries.",
)
@home_option
def exchange_add(
    name: str,
    api: str,
    url: str,
    lists: tuple[str, ...],
    category: str,
    classification: str,
    home: Path,
) -> None:
    """Read the exchange NAME (adding it again changes it; what was read stays read)."""
    with open_hub(home) as hub:
        hub.exchanges.add(
            name, api, url, list(lists), category, classification, who=edge_cli.shell_user()
        )
    click.echo(f"Reading {name} ({api}) at {url} into {', '.join(sorted(lists))}.")
    click.echo(f"then: hashhub exchange credentials {name} FILE")


@exchange.command(name="credentials")
@click.argument("name", metavar="NAME")
@click.argument("path", metavar="FILE")
@home_option
def exchange_credentials(name: str, path: str, home: Path) -> None:
    """Keep NAME's credentials ('-' reads stdin): StopNCII
    'fetch_function_key,subscription_key', NCMEC 'user:password'."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text("utf-8", "replace")
    with open_hub(home) as hub:
        hub.exchanges.set_credentials(name, text, who=edge_cli.shell_user())
    click.echo(f"Kept the credentials for exchange {name}.")


@exchange.command(name="remove")
@click.argument("name", metavar="NAME")
@home_option
def exchange_remove(name: str, home: Path) -> None:
    """Stop reading NAME (its entries stay; retract them by hand if they must go)."""
    with open_hub(home) as hub:
        hub.exchanges.remove(name, who=edge_cli.shell_user())
    click.echo(f"No longer reading {name}.")


@exchange.command(name="status")
@edge_cli.json_option
@home_option
def exchange_status(as_json: bool, home: Path) -> None:
    """Each exchange: where it is read, into which lists, its records, its last error."""
    with open_hub(home) as hub:
        status = hub.exchanges.status()
    if as_json:
        edge_cli.echo_json(status)
        return
    if not status:
        click.echo("This hub reads no exchange.")
    for ex in status:
        credentials = "credentials kept" if ex["credentials"] else "no credentials yet"
        click.echo(f"{ex['exchange']}  {ex['api']}  {ex['url']}  ({credentials})")
        lists = ", ".join(f"{t} -> {lid}" for t, lid in sorted(ex["lists"].items()))
        records = ", ".join(f"{n} {state}" for state, n in ex["records"].items())
        click.echo(f"  {lists}  ({ex['category']}, {ex['classification']})  records: {records}")
        click.echo(f"  last fetch: {ex['last_fetch'] or 'never'}")
        if ex["last_error"]:
            click.echo(f"  last error: {ex['last_error']} ({ex['last_failure']})")


@exchange.command(name="sync")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@edge_cli.json_option
@home_option
def exchange_sync(names: tuple[str, ...], as_json: bool, home: Path) -> None:
    """Read each exchange (or NAMEs) once: take what changed since the last read,
    publish the lists that changed. Exits 1 on any problem."""

    async def run(hub: Hub) -> list[BridgeReport]:
        return await bridge_exchanges(
            in_place(hub), names=list(names) or None, who=edge_cli.shell_user()
        )

    with open_hub(home) as hub:
        reports = asyncio.run(run(hub))
    if as_json:
        edge_cli.echo_json([r.to_dict() for r in reports])
    else:
        for report in reports:
            b = report.bridged
            click.echo(
                f"{report.exchange}: {report.pages} pages, {b.records} records: "
                f"+{len(b.added)} -{len(b.retracted)}"
                + (f" ({len(b.skipped)} skipped)" if b.skipped else "")
            )
            for r in report.published:
                click.echo(f"published {r.list} v{r.version} (+{r.adds} -{r.removes})")
            for problem in report.problems:
                click.echo(f"problem: {problem}", err=True)
    if any(r.problems for r in reports):
        sys.exit(1)
