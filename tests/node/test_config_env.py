"""The node's settings from the environment: ``HASHHUB_NODE_<SETTING>`` over ``node.toml``.

A node in a container keeps ``node.toml`` as ``init`` wrote it and takes what
differs per deployment (the hub's URL, the mirrors, the API's address) from its
environment. These tests hold the loader to its rules: a variable wins over the
file and the file over the default; each value is parsed with its setting's type
(integers, numbers, ``true``/``false``/``1``/``0``, strings, comma-separated
lists); a bad value, or one the setting refuses, is one error naming the
variable, and exit status 1 from the command line. The last test runs the
installed ``hashhub-node run`` against a real hub with a ``node.toml`` pointing
nowhere, and only variables making it work. (Every documented variable is set
once in ``tests/test_configuration_doc.py``, and the settings with no variable are
checked there.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.config import CONFIG_NAME, NodeConfig, read_secret
from node.errors import NodeConfigError
from tests.node.conftest import MD5_LIST, ORIGINAL, HubServer, init_node_home
from tests.node.test_cli import SCRIPT, free_port, init_with, invoke_now, mistake, ok


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A node made by ``hashhub-node init`` (real key, secret files), its hub nowhere."""
    path = tmp_path / "node"
    ok(invoke_now(*init_with(path)))
    return path


def rewrite(home: Path, **settings: str | None) -> None:
    """Set (a TOML value) or drop (None) lines of ``node.toml``, as an editor would."""
    path = home / CONFIG_NAME
    lines = [ln for ln in path.read_text().splitlines() if ln.split(" = ")[0] not in settings]
    lines += [f"{key} = {value}" for key, value in settings.items() if value is not None]
    path.write_text("\n".join(lines) + "\n")


def test_a_variable_wins_over_the_file_and_the_file_over_the_default(home: Path) -> None:
    rewrite(home, poll_interval="120", api_port=None)
    before = (home / CONFIG_NAME).read_bytes()

    from_file = NodeConfig.load(home, {})
    assert (from_file.poll_interval, from_file.api_port) == (120, 8471)

    environ = {"HASHHUB_NODE_POLL_INTERVAL": "45", "HASHHUB_NODE_API_PORT": "9001"}
    overridden = NodeConfig.load(home, environ)
    assert (overridden.poll_interval, overridden.api_port) == (45, 9001)
    assert (home / CONFIG_NAME).read_bytes() == before, "a variable was written to node.toml"


def test_the_process_environment_is_read_when_none_is_given(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HASHHUB_NODE_SNAPSHOT_LAG", "5")
    assert NodeConfig.load(home).snapshot_lag == 5


@pytest.mark.parametrize(
    ("setting", "text", "value"),
    [
        ("api_port", " 9001 ", 9001),
        ("fetch_timeout", "2.5", 2.5),
        ("fetch_timeout", "30", 30.0),
        ("dihedral", "true", True),
        ("dihedral", "TRUE", True),
        ("dihedral", "1", True),
        ("dihedral", "False", False),
        ("dihedral", "0", False),
        ("mirrors", "http://a.example, http://b.example", ("http://a.example", "http://b.example")),
        ("mirrors", "", ()),
        ("lists", MD5_LIST, (MD5_LIST,)),
        ("webhook_url", "", ""),
        ("api_host", "0.0.0.0", "0.0.0.0"),
    ],
)
def test_a_value_is_parsed_with_its_settings_type(
    home: Path, setting: str, text: str, value: Any
) -> None:
    loaded = getattr(NodeConfig.load(home, {f"HASHHUB_NODE_{setting.upper()}": text}), setting)
    assert loaded == value
    assert type(loaded) is type(value)


@pytest.mark.parametrize(
    ("setting", "text", "says"),
    [
        ("api_port", "x", "api_port must be an integer, not 'x'"),
        ("api_port", "8471.0", "api_port must be an integer, not '8471.0'"),
        ("fetch_timeout", "fast", "fetch_timeout must be a number, not 'fast'"),
        ("fetch_timeout", "nan", "fetch_timeout must be a number, not 'nan'"),
        ("fetch_timeout", "inf", "fetch_timeout must be a number, not 'inf'"),
        ("fetch_timeout", "1e3", "fetch_timeout must be a number, not '1e3'"),
        ("fetch_timeout", "0", "fetch_timeout must be from 0 to 3600 seconds, not 0.0"),
        ("fetch_timeout", "86400", "fetch_timeout must be from 0 to 3600 seconds, not 86400.0"),
        ("dihedral", "yes", "dihedral must be true or false, not 'yes'"),
        ("mirrors", "http://a.example,,http://b.example", "mirrors has an empty item in"),
        ("lists", ",", "lists has an empty item in ','"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(
    home: Path, setting: str, text: str, says: str
) -> None:
    variable = f"HASHHUB_NODE_{setting.upper()}"
    with pytest.raises(NodeConfigError) as caught:
        NodeConfig.load(home, {variable: text})
    message = str(caught.value)
    assert message.startswith(f"{variable}: {says}"), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('poll_interval = "300"', "node.toml: poll_interval must be an integer"),
        ("dihedral = 1", "node.toml: dihedral must be true or false"),
        ("api_host = 127", "node.toml: api_host must be a string"),
        ("api_port = true", "node.toml: api_port must be an integer"),
    ],
)
def test_a_wrong_type_in_the_file_is_an_error_naming_the_file(
    home: Path, line: str, says: str
) -> None:
    key, value = line.split(" = ")
    rewrite(home, **{key: value})
    with pytest.raises(NodeConfigError, match=says):
        NodeConfig.load(home, {})


def test_a_file_without_a_required_setting_is_an_error_not_a_crash(home: Path) -> None:
    rewrite(home, hub_url=None)
    with pytest.raises(NodeConfigError, match=r"missing setting\(s\) \['hub_url'\]"):
        NodeConfig.load(home, {"HASHHUB_NODE_HUB_URL": "http://127.0.0.1:9"})


HOSTILE_STRINGS = [
    'say "hi"',
    "C:\\hashhub\\node.db",
    "two\nlines",
    "tab\there",
    "bell\x07 del\x7f",
    "naïve café 東京 🙂",
    "trailing backslash\\",
]


@pytest.mark.parametrize("text", HOSTILE_STRINGS)
def test_to_toml_writes_any_string_so_that_it_reads_back(tmp_path: Path, text: str) -> None:
    """``init`` writes ``node.toml`` with ``to_toml``: every string escaped (edge.toml)."""
    config = NodeConfig(
        node_id=text,
        hub_url=text,
        lists=(text, "ncii-md5"),
        pinned_root_sha256=text,
        mirrors=(text, text),
        database=text,
        webhook_url=text,
        ca_file=text,
        trusted_proxies=(text,),
    )
    written = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in asdict(config).items()
    }
    assert tomllib.loads(config.to_toml()) == written
    (tmp_path / CONFIG_NAME).write_text(config.to_toml(), encoding="utf-8")
    assert NodeConfig.load(tmp_path, {}) == config


def test_to_toml_refuses_a_string_utf8_cannot_hold() -> None:
    config = NodeConfig(
        node_id="n", hub_url="https://hub.test", lists=("bad \udcff",), pinned_root_sha256="0"
    )
    with pytest.raises(NodeConfigError, match=r"^node\.toml: lists: a lone surrogate"):
        config.to_toml()


def test_a_bad_variable_is_one_line_and_exit_status_1(home: Path) -> None:
    result = invoke_now("status", "--home", str(home), env={"HASHHUB_NODE_DIHEDRAL": "yes"})
    mistake(result, "HASHHUB_NODE_DIHEDRAL: dihedral must be true or false, not 'yes'")
    assert result.stderr.count("\n") == 1


async def test_the_daemon_runs_on_what_the_environment_says(
    tmp_path: Path, hub_server: HubServer
) -> None:
    """``node.toml`` names a hub that is nowhere; the variables point the daemon at the
    real one, subscribe it to one list of two, move its API and cap its uploads."""
    home = init_node_home(tmp_path / "node", hub_server, hub_url="http://127.0.0.1:9")
    port = free_port()
    environ = {
        "HASHHUB_NODE_HOME": str(home),
        "HASHHUB_NODE_HUB_URL": hub_server.url,
        "HASHHUB_NODE_LISTS": MD5_LIST,
        "HASHHUB_NODE_API_PORT": str(port),
        "HASHHUB_NODE_MAX_UPLOAD_BYTES": "1000",
    }
    upload = ORIGINAL.read_bytes()
    assert len(upload) > 1000
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        "run",
        env={**os.environ, **environ},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        headers = {"Authorization": f"Bearer {read_secret(home / 'api-token')}"}
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{port}"
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                try:
                    async with session.get(base + "/v1/status", headers=headers) as r:
                        status = await r.json()
                    if all(e["version"] == 1 for e in status["lists"]):
                        break
                except aiohttp.ClientConnectionError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, "the daemon never synced"
                await asyncio.sleep(0.2)
            assert [e["list"] for e in status["lists"]] == [MD5_LIST]
            async with session.post(
                base + "/v1/match",
                data=upload,
                headers=headers | {"Content-Type": "image/jpeg"},
            ) as r:
                assert r.status == 413
                assert (await r.json())["error"]["status"] == 413
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
