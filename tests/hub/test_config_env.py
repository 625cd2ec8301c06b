"""The hub's settings from the environment: ``HASHHUB_<SETTING>`` over ``hub.toml``.

A container keeps ``hub.toml`` as ``init`` wrote it and sets what differs per
deployment in its environment. These tests hold the loader to its rules: a
variable wins over the file and the file over the default, each value is parsed
with its setting's type, and a bad value is one clear error naming the variable
(exit status 1 from the command line) instead of a default quietly left in force.
The last test runs the installed ``hashhub serve`` with nothing but variables and
checks that the running server listens where they say and enforces the cap they
set. (Every documented variable is set once in ``tests/test_configuration_doc.py``.)
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.config import CONFIG_NAME, HubConfig
from hub.errors import InvalidRequest
from tests.hub.test_cli import SCRIPT, Operator, free_port, printed_token


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A hub made by ``hashhub init`` (real keys, real database)."""
    operator = Operator(tmp_path / "hub")
    operator.init()
    return operator.home


def rewrite(home: Path, **settings: int | None) -> None:
    """Change (an int) or drop (None) lines of ``hub.toml``, as an operator's editor would."""
    path = home / CONFIG_NAME
    lines = [ln for ln in path.read_text().splitlines() if ln.split(" = ")[0] not in settings]
    lines += [f"{key} = {value}" for key, value in settings.items() if value is not None]
    path.write_text("\n".join(lines) + "\n")


def test_a_variable_wins_over_the_file_and_the_file_over_the_default(home: Path) -> None:
    rewrite(home, publish_interval=120, port=None)
    before = (home / CONFIG_NAME).read_bytes()

    from_file = HubConfig.load(home, {})
    assert (from_file.publish_interval, from_file.port) == (120, 8470)

    overridden = HubConfig.load(home, {"HASHHUB_PUBLISH_INTERVAL": "45", "HASHHUB_PORT": "9000"})
    assert (overridden.publish_interval, overridden.port) == (45, 9000)
    assert (home / CONFIG_NAME).read_bytes() == before, "a variable was written to hub.toml"


def test_the_process_environment_is_read_when_none_is_given(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HASHHUB_WEB_RATE_BURST", "3")
    monkeypatch.setenv("HASHHUB_HOST", "0.0.0.0")
    config = HubConfig.load(home)
    assert (config.web_rate_burst, config.host) == (3, "0.0.0.0")


def test_an_integer_variable_takes_surrounding_spaces_and_a_sign(home: Path) -> None:
    assert HubConfig.load(home, {"HASHHUB_TIMESTAMP_INTERVAL": " 0 "}).timestamp_interval == 0
    assert HubConfig.load(home, {"HASHHUB_SNAPSHOT_EVERY": "-1"}).snapshot_every == -1


@pytest.mark.parametrize("text", ["8.5", "84a0", "0x10", "1_000", "", " ", "5m", "84\n70"])
def test_a_malformed_integer_is_an_error_naming_the_variable(home: Path, text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        HubConfig.load(home, {"HASHHUB_PORT": text})
    message = str(caught.value)
    assert message == f"HASHHUB_PORT: port must be an integer, not {text!r}"
    assert "\n" not in message


def test_a_file_without_the_hub_name_is_an_error_not_a_crash(home: Path) -> None:
    path = home / CONFIG_NAME
    path.write_text("".join(ln for ln in path.read_text().splitlines(True) if "name" not in ln))
    with pytest.raises(InvalidRequest, match=r"missing setting\(s\) \['name'\]"):
        HubConfig.load(home, {})


def test_a_wrong_type_in_the_file_is_named_in_words(home: Path) -> None:
    (home / CONFIG_NAME).write_text('name = "hub.test"\nport = "8470"\n')
    with pytest.raises(InvalidRequest, match=r"hub\.toml: port must be an integer$"):
        HubConfig.load(home, {})


HOSTILE_STRINGS = [
    'say "hi"',
    "C:\\hashhub\\hub.db",
    "two\nlines",
    "tab\there",
    "bell\x07 del\x7f",
    "naïve café 東京 🙂",
    "trailing backslash\\",
]


@pytest.mark.parametrize("text", HOSTILE_STRINGS)
def test_to_toml_writes_any_string_so_that_it_reads_back(tmp_path: Path, text: str) -> None:
    """``init`` writes ``hub.toml`` with ``to_toml``: every string escaped (edge.toml)."""
    config = HubConfig(name=text, database=text, trusted_proxies=text, secure_cookies=text)
    assert tomllib.loads(config.to_toml()) == asdict(config)
    (tmp_path / CONFIG_NAME).write_text(config.to_toml(), encoding="utf-8")
    assert HubConfig.load(tmp_path, {}) == config


def test_to_toml_refuses_a_string_utf8_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match=r"^hub\.toml: name: a lone surrogate"):
        HubConfig(name="bad \udcff byte").to_toml()


def test_a_bad_variable_is_one_line_and_exit_status_1(home: Path) -> None:
    result = CliRunner().invoke(
        main, ["status", "--home", str(home)], env={"HASHHUB_PUBLISH_INTERVAL": "5m"}
    )
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "Error: HASHHUB_PUBLISH_INTERVAL: publish_interval must be an integer, not '5m'\n"
    )
    assert result.stdout == ""


def _post(url: str, token: str, body: bytes) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_serve_listens_and_caps_bodies_as_the_environment_says(tmp_path: Path) -> None:
    operator = Operator(tmp_path / "hub")
    admin_token = printed_token(operator.init(), "hho")
    port = free_port()
    env = {
        **os.environ,
        "HASHHUB_HOME": str(operator.home),
        "HASHHUB_HOST": "127.0.0.1",
        "HASHHUB_PORT": str(port),
        "HASHHUB_MAX_ACK_BYTES": "64",
    }
    process = subprocess.Popen(
        [str(SCRIPT), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
                    assert response.status == 200
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "hashhub serve did not come up"
                time.sleep(0.1)

        small = json.dumps({"id": "tid-md5", "hash_type": "md5"}).encode()
        assert len(small) <= 64
        status, _ = _post(base + "/v1/admin/lists", admin_token, small)
        assert status == 201

        large = json.dumps({"id": "tid-sha256", "hash_type": "sha256", "label": "x" * 64}).encode()
        status, error = _post(base + "/v1/admin/lists", admin_token, large)
        assert status == 413
        assert "64" in json.dumps(error), error
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
