"""What ``hashhub`` says to an operator meeting it for the first time, through the real CLI.

Each test reads a command's output or help as an operator would: the folder a
second ``init`` refuses is named as a folder, ``node enrol`` prints a hub URL the
platform can paste into ``hashhub-node init`` (or says how to give it one),
every option explains itself in ``--help``, ``token list`` is a table like the
other lists, and ``init`` names its folder with ``--home`` like every other
command and like ``hashhub-node init``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from hub.cli import main
from node.cli import main as node_main
from protocol import SigningKey
from protocol.keyfile import write_public_key
from tests.hub.test_cli import Operator, pinned_sha256, printed_token


@pytest.fixture
def operator(tmp_path: Path) -> Operator:
    """A hub made by ``hashhub init`` in a folder named ``hub``, with one list."""
    op = Operator(tmp_path / "hub")
    op.pinned = pinned_sha256(op.init())
    op.ok("list", "create", "tid-md5", "--type", "md5")
    return op


@pytest.fixture
def node_pem(tmp_path: Path) -> Path:
    path = tmp_path / "node.pub.pem"
    write_public_key(path, SigningKey.generate().public)
    return path


def one_line_error(result: Result) -> str:
    """The message of a refused command: exit 1, nothing on stdout, one line on stderr."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.removeprefix("Error: ").rstrip("\n")


# -- a second init names the folder ------------------------------------------------------------


def test_a_second_init_names_the_folder_that_holds_a_hub(operator: Operator) -> None:
    home = operator.home
    for argv in (["init", str(home)], ["init", "--home", str(home)]):
        message = one_line_error(CliRunner().invoke(main, [*argv, "--name", "hub.other"]))
        assert message == (
            f"folder {str(home)!r} already holds a hub ({home / 'hub.toml'}); "
            "choose another folder or remove that hub first"
        )
    assert 'name = "hub.test"' in (home / "hub.toml").read_text(encoding="utf-8")


# -- node enrol prints the hub's URL ---------------------------------------------------------


def enrol(op: Operator, node: str, pem: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = op.run(
        "node", "enrol", node, "--public-key", str(pem), "--lists", "tid-md5", *args, env=env
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def printed_url(output: str) -> str:
    match = re.search(r"^  hub URL {10}(.+)$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def set_public_url(home: Path, url: str) -> None:
    """Edit ``hub.toml`` as an operator would: the line ``init`` wrote, given a value."""
    path = home / "hub.toml"
    text = path.read_text(encoding="utf-8")
    assert 'public_url = ""\n' in text
    path.write_text(text.replace('public_url = ""', f'public_url = "{url}"'), encoding="utf-8")


def test_enrol_without_a_known_url_says_how_to_give_one(
    operator: Operator, node_pem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HASHHUB_PUBLIC_URL", raising=False)
    out = enrol(operator, "platform-a", node_pem)
    assert printed_url(out) == "unknown: set public_url in hub.toml, or pass --url"
    assert "hashhub serve, or your proxy" not in out
    assert operator.pinned in out


@pytest.mark.parametrize("where", ["option", "file", "variable"])
def test_enrol_prints_the_public_url_from_the_option_the_file_or_the_variable(
    operator: Operator, node_pem: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each wins over the next (the option over the file, the variable over the file),
    and the trailing slash goes, as the node drops it too."""
    monkeypatch.delenv("HASHHUB_PUBLIC_URL", raising=False)
    args: list[str] = []
    env: dict[str, str] = {}
    if where == "file":
        set_public_url(operator.home, "https://hashes.example.org/")
    else:
        set_public_url(operator.home, "https://stale.example.org")
    if where == "option":
        args = ["--url", "https://hashes.example.org/"]
    elif where == "variable":
        env = {"HASHHUB_PUBLIC_URL": "https://hashes.example.org"}
    out = enrol(operator, "platform-a", node_pem, *args, env=env)
    assert printed_url(out) == "https://hashes.example.org"


@pytest.mark.parametrize(
    "url",
    [
        "hashes.example.org",
        "ftp://hashes.example.org",
        "https://",
        "https://h.org/?a=1",
        "https://h.org/#x",
        "https://h.org/a b",
        "https://h.org/$(id)",
    ],
)
def test_enrol_refuses_a_url_a_node_could_not_take_and_enrols_nothing(
    operator: Operator, node_pem: Path, url: str
) -> None:
    message = one_line_error(
        operator.run(
            "node", "enrol", "p", "--public-key", str(node_pem), "--lists", "tid-md5", "--url", url
        )
    )
    assert message.startswith(f"--url: {url!r} is not a base URL")
    set_public_url(operator.home, url.replace('"', ""))
    message = one_line_error(
        operator.run("node", "enrol", "p", "--public-key", str(node_pem), "--lists", "tid-md5")
    )
    assert message.startswith("public_url (in hub.toml or HASHHUB_PUBLIC_URL): ")
    assert json.loads(operator.ok("node", "list", "--json")) == []


def test_what_enrol_prints_pastes_into_hashhub_node_init(
    operator: Operator, node_pem: Path, tmp_path: Path
) -> None:
    """The three values, copied from the lines as printed, are what ``hashhub-node init``
    takes: the URL for --hub, the SHA-256 for --pin and the token for --token."""
    out = enrol(operator, "platform-a", node_pem, "--url", "https://hashes.example.org/hub/")
    url = printed_url(out)
    [pin] = re.findall(r"^  root v1 SHA-256  (\S+)$", out, re.MULTILINE)
    [token] = re.findall(r"^  node token {7}(\S+)$", out, re.MULTILINE)
    assert (pin, token) == (operator.pinned, printed_token(out, "hhn"))
    assert "hashhub-node init --hub URL --pin SHA256" in out
    home = tmp_path / "node"
    argv = ["init", "--home", str(home), "--node-id", "platform-a", "--lists", "tid-md5"]
    result = CliRunner().invoke(node_main, [*argv, "--hub", url, "--pin", pin, "--token", token])
    assert result.exit_code == 0, result.output
    config = tomllib.loads((home / "node.toml").read_text(encoding="utf-8"))
    assert (config["hub_url"], config["pinned_root_sha256"]) == (url, pin)
    assert (home / "hub-token").read_text(encoding="utf-8").strip() == token


# -- every option has a help text ------------------------------------------------------------


def commands(group: click.Group, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, group
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, f"{path} {name}")
        else:
            yield f"{path} {name}", command


def test_every_command_and_every_option_has_a_help_text() -> None:
    missing = []
    for path, command in commands(main, "hashhub"):
        ctx = click.Context(command, info_name=path)
        if not (command.help or "").strip():
            missing.append(path)
        for param in command.get_params(ctx):
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append(f"{path} {'/'.join(param.opts)}")
    assert not missing, f"no help text: {missing}"


# -- token list is a table ------------------------------------------------------------------


def test_token_list_is_a_table_with_a_header_and_json_is_unchanged(operator: Operator) -> None:
    operator.ok("token", "create", "--role", "viewer", "--name", "dashboard")
    operator.ok("token", "revoke", "dashboard")
    lines = operator.ok("token", "list").splitlines()
    assert re.fullmatch(r"NAME\s+ROLE\s+CREATED\s+REVOKED", lines[0]), lines
    assert re.fullmatch(r"admin\s+admin\s+\S+Z\s+-", lines[1]), lines
    assert re.fullmatch(r"dashboard\s+viewer\s+\S+Z\s+\S+Z", lines[2]), lines
    assert lines[0].index("ROLE") == lines[1].index("admin", 1) == lines[2].index("viewer")
    rows = json.loads(operator.ok("token", "list", "--json"))
    assert [sorted(row) for row in rows] == 2 * [
        ["created", "fingerprint", "name", "revoked", "role"]
    ]
    assert [(row["name"], row["role"], row["revoked"] is None) for row in rows] == [
        ("admin", "admin", True),
        ("dashboard", "viewer", False),
    ]


# -- init takes --home like every other command -----------------------------------------------


def test_init_takes_the_folder_as_home_or_as_dir(tmp_path: Path) -> None:
    runner = CliRunner()
    for argv, folder in (
        (["init", "--home", str(tmp_path / "a")], tmp_path / "a"),
        (["init", str(tmp_path / "b")], tmp_path / "b"),
    ):
        result = runner.invoke(main, [*argv, "--name", "hub.test"])
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith(f"Created hub 'hub.test' in {folder}\n")
        assert runner.invoke(main, ["status", "--home", str(folder)]).exit_code == 0


def test_init_refuses_dir_and_home_at_once_and_creates_nothing(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    result = CliRunner().invoke(main, ["init", str(a), "--home", str(b), "--name", "hub.test"])
    assert one_line_error(result) == (
        f"give the hub's folder once: 'hashhub init {a}' or 'hashhub init --home {b}', not both"
    )
    assert not a.exists()
    assert not b.exists()


def test_init_dir_wins_over_hashhub_home_and_neither_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HASHHUB_HOME", str(tmp_path / "from-env"))
    result = CliRunner().invoke(main, ["init", str(tmp_path / "typed"), "--name", "hub.test"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "typed" / "hub.toml").exists()
    assert not (tmp_path / "from-env").exists()
    monkeypatch.delenv("HASHHUB_HOME")
    result = CliRunner().invoke(main, ["init", "--name", "hub.test"])
    assert result.exit_code == 2
    assert "name the hub's folder: 'hashhub init --home DIR'" in result.stderr


def test_init_help_names_both_ways_to_give_the_folder() -> None:
    result = CliRunner().invoke(main, ["init", "--help"], prog_name="hashhub")
    assert result.stdout.startswith("Usage: hashhub init [OPTIONS] [DIR]\n")
    assert "Create a hub in --home DIR (or DIR)." in result.stdout
    assert re.search(r"--home DIRECTORY\s+The folder to create the hub in", result.stdout)
