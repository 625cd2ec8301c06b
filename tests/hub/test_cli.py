"""The ``hashhub`` command: a whole operator session, and every user mistake it must explain.

Most tests drive the click command in process (``CliRunner``); a few run the
installed ``hashhub`` script as a subprocess, as an operator would. What the
session publishes is checked the way a node checks it: root v1 pinned by the
SHA-256 that ``init`` printed, then the protocol's trust rules over the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from hub.cli import main
from hub.core import Hub, utcnow
from protocol import AppliedVersion, Counts, SigningKey, sign_ack
from protocol.keyfile import write_private_key, write_public_key
from tests.hub.node_view import NodeView, from_folder, from_hub

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operator-guide.md"
SCRIPT = Path(sys.executable).parent / "hashhub"


def md5(label: object) -> str:
    return hashlib.md5(str(label).encode(), usedforsecurity=False).hexdigest()


def pdq(label: object) -> str:
    return hashlib.sha256(str(label).encode()).hexdigest()


class Operator:
    """Runs ``hashhub`` commands against one home directory and checks they succeed."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.runner = CliRunner()
        self.pinned = ""  # root v1's SHA-256 as init printed it

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return self.runner.invoke(main, [*args, "--home", str(self.home)], env=env)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def init(self, *args: str) -> str:
        result = self.runner.invoke(main, ["init", str(self.home), "--name", "hub.test", *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    def open(self) -> Hub:
        return Hub.open(self.home)


def pinned_sha256(init_output: str) -> str:
    match = re.search(r"Root v1 SHA-256.*\n\s+([0-9a-f]{64})\n", init_output)
    assert match, init_output
    return match.group(1)


def printed_token(output: str, prefix: str) -> str:
    match = re.search(rf"\b({prefix}_[A-Za-z0-9_-]{{43}})\b", output)
    assert match, output
    return match.group(1)


@pytest.fixture
def operator(tmp_path: Path) -> Operator:
    """A hub made by ``hashhub init`` with an md5 list and a pdq list, nothing published."""
    op = Operator(tmp_path / "hub")
    op.pinned = pinned_sha256(op.init())
    op.ok("list", "create", "tid-md5", "--type", "md5", "--label", "tid")
    op.ok("list", "create", "tid-pdq", "--type", "pdq", "--label", "tid", "--snapshot-every", "2")
    return op


@pytest.fixture
def node_pem(tmp_path: Path) -> Path:
    path = tmp_path / "node.pub.pem"
    write_public_key(path, SigningKey.generate().public)
    return path


# -- a whole session --------------------------------------------------------------------------


def test_init_prints_the_pin_the_key_locations_and_an_admin_token(tmp_path: Path) -> None:
    op = Operator(tmp_path / "hub")
    out = op.init("--root-keys", "5", "--root-threshold", "3", "--port", "9000")
    sha = pinned_sha256(out)
    hub = op.open()
    try:
        published = hub.files.get("root/1.json")
        assert published is not None
        assert sha == hashlib.sha256(published[0]).hexdigest()
        root = hub.keys.root()
        assert (len(root.roles["root"].keyids), root.roles["root"].threshold) == (5, 3)
        assert hub.config.port == 9000
        principal = hub.access.authenticate(printed_token(out, "hho"))
        assert (principal.kind, principal.role) == ("operator", "admin")
    finally:
        hub.close()
    assert f"configuration  {op.home / 'hub.toml'}" in out
    assert f"private keys   {op.home / 'keys'}" in out
    keys = sorted((op.home / "keys").iterdir())
    assert len(keys) == 8
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in keys)


def test_a_whole_operator_session_publishes_what_a_node_accepts(
    operator: Operator, tmp_path: Path, node_pem: Path
) -> None:
    op = operator
    out = op.ok("add", "tid-md5", md5(1), md5(2), md5(3), "--source", "ncmec", "--category", "A1")
    assert "Staged 3 addition(s) to tid-md5" in out
    batch = tmp_path / "batch.ndjson"
    batch.write_text(
        "".join(f'{{"hash": "{pdq(i)}", "quality": {60 + i}}}\n' for i in range(4)),
        encoding="utf-8",
    )
    assert "Staged 4 addition(s) to tid-pdq from" in op.ok("import", "tid-pdq", str(batch))
    out = op.ok("publish")
    assert "tid-md5: v1  +3 -0  3 hashes" in out
    assert "tid-pdq: v1  +4 -0  4 hashes" in out
    op.ok("remove", "tid-md5", md5(1))
    op.ok("add", "tid-pdq", pdq("more"), "--quality", "90")
    out = op.ok("publish", "tid-md5", "tid-pdq")
    assert "tid-md5: v2  +0 -1  2 hashes" in out
    assert "tid-pdq: v2  +1 -0  5 hashes, snapshot written" in out
    assert op.ok("publish") == "Nothing staged; no new version.\n"

    report = json.loads(op.ok("status", "--json"))
    assert [(e["id"], e["version"], e["count"], e["staged"]) for e in report["lists"]] == [
        ("tid-md5", 2, 2, 0),
        ("tid-pdq", 2, 5, 0),
    ]

    out = op.ok("node", "enrol", "platform-a", "--public-key", str(node_pem), "--lists", "tid-md5")
    assert op.pinned in out
    token = printed_token(out, "hhn")
    [listed] = json.loads(op.ok("node", "list", "--json"))
    assert (listed["id"], listed["lists"]) == ("platform-a", ["tid-md5"])
    hub = op.open()
    try:
        assert hub.access.authenticate(token).lists == frozenset({"tid-md5"})
    finally:
        hub.close()

    public = tmp_path / "public"
    assert "to " + str(public) in op.ok("export", str(public))
    node = NodeView(from_folder(public), op.pinned)
    assert set(node.update("tid-md5", now=utcnow())) == {bytes.fromhex(md5(i)) for i in (2, 3)}
    state, base = node.bootstrap("tid-pdq", now=utcnow())
    assert base == 2
    assert len(state) == 5
    assert bytes.fromhex(pdq("more")) in state

    log = json.loads(op.ok("log", "--json", "--limit", "100"))
    assert [a["action"] for a in reversed(log)][:4] == ["init", "token.create"] + 2 * [
        "list.create"
    ]
    [who] = {a["who"] for a in log if a["action"] != "init"}
    assert who.startswith("cli")


def test_list_show_summarises_every_list_and_details_one(operator: Operator) -> None:
    operator.ok("add", "tid-md5", md5(1))
    summary = operator.ok("list", "show")
    assert re.search(r"tid-md5\s+md5\s+0\s+0\s+1\s+no\s+tid", summary), summary
    detail = json.loads(operator.ok("list", "show", "tid-pdq", "--json"))
    assert (detail["max_distance"], detail["snapshot_every"]) == (31, 2)


def test_status_shows_node_lag_counts_and_flagged_hashes(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HASHHUB_FLAG_MIN_NODES", "1")  # one node's reports may flag here
    operator.ok("add", "tid-md5", *(md5(i) for i in range(4)))
    operator.ok("publish")
    key = SigningKey.generate()
    hub = operator.open()
    try:
        token = hub.access.enrol_node("platform-a", key.public, ["tid-md5"])
        head = hub.lists.head("tid-md5")
        bad = md5(0)
        data, sig = sign_ack(
            key=key,
            node="platform-a",
            list_id="tid-md5",
            seq=1,
            sent=hub.now(),
            origin=hub.keys.root().origin("tid-md5"),
            applied=AppliedVersion(1, head.compact.root(), head.state.digest()),
            counts=Counts(
                checked=100,
                matched=7,
                false_positive=4,
                hashes={bad: {"matched": 5, "false_positive": 4}},
            ),
        )
        hub.acks.receive(hub.access.authenticate(token), data, sig)
    finally:
        hub.close()
    operator.ok("add", "tid-md5", md5("new"))
    operator.ok("publish")
    out = operator.ok("status")
    # NODES 1, PLATFORMS 1: the node is its own platform.
    assert re.search(r"tid-md5\s+md5\s+2\s+5\s+0\s+1\s+1\s+7\s+4", out), out
    assert "tid-md5: platforms (0 of 1 applied v2)" in out, out
    assert re.search(r"platform-a\s+no\s+0 of 1\s+100\s+7\s+0\s+0\s+4", out), out
    assert re.search(r"platform-a\s+1\s+1\s+\S+Z\s+100\s+7\s+0\s+0\s+4", out), out
    assert re.search(rf"{bad}\s+5\s+4\s+false positives", out), out


def test_refresh_reissues_every_declared_lists_checkpoint(operator: Operator) -> None:
    """tid-md5 at v1 and tid-pdq with no versions: a declared list's checkpoint (size 0
    before its first version) is re-issued like any other (PROTOCOL.md §11.1)."""
    operator.ok("add", "tid-md5", md5(1))
    operator.ok("publish")
    assert operator.ok("refresh") == "Re-issued the checkpoint of 2 list(s).\n"


def test_token_create_prints_a_token_with_that_role(operator: Operator) -> None:
    out = operator.ok("token", "create", "--role", "viewer", "--name", "dashboard")
    hub = operator.open()
    try:
        principal = hub.access.authenticate(printed_token(out, "hho"))
    finally:
        hub.close()
    assert (principal.role, principal.subject) == ("viewer", "dashboard")


def test_node_revoke_stops_the_token(operator: Operator, node_pem: Path) -> None:
    out = operator.ok(
        "node", "enrol", "platform-a", "--public-key", str(node_pem), "--lists", "tid-md5,tid-pdq"
    )
    assert operator.ok("node", "revoke", "platform-a") == "Revoked node platform-a.\n"
    hub = operator.open()
    try:
        with pytest.raises(Exception, match="unknown or revoked"):
            hub.access.authenticate(printed_token(out, "hhn"))
    finally:
        hub.close()
    assert re.search(
        r"platform-a\s+platform-a\s+\S{16}\s+tid-md5,tid-pdq\s+\S+Z\s+revoked \S+Z",
        operator.ok("node", "list"),
    )


def test_a_delta_key_rotation_keeps_publishing_verifiable_from_root_v1(
    operator: Operator, tmp_path: Path
) -> None:
    op = operator
    op.ok("add", "tid-md5", md5(1))
    op.ok("publish")
    hub = op.open()
    node = NodeView(from_hub(hub), op.pinned)
    node.update("tid-md5", now=utcnow())
    hub.close()
    out = op.ok("key", "rotate", "delta")
    assert "Rotated the delta role in root v4" in out
    assert "tid-md5 v2" in out
    op.ok("add", "tid-md5", md5(2))
    op.ok("publish")
    keys = json.loads(op.ok("key", "list", "--json"))
    delta = [k for k in keys if k["role"] == "delta"]
    assert sorted((k["in_root"], bool(k["retired"])) for k in delta) == [
        (False, True),
        (True, False),
    ]
    hub = op.open()
    try:
        node.fetch = from_hub(hub)
        assert node.update("tid-md5", now=utcnow()) == hub.lists.state("tid-md5")
    finally:
        hub.close()
    public = tmp_path / "public"
    op.ok("export", str(public))
    fresh = NodeView(from_folder(public), op.pinned)
    assert len(fresh.update("tid-md5", now=utcnow())) == 2


@pytest.mark.parametrize("role", ["root", "checkpoint", "timestamp"])
def test_rotating_any_role_prints_the_new_root(operator: Operator, role: str) -> None:
    out = operator.ok("key", "rotate", role)
    assert f"Rotated the {role} role in root v4" in out
    listed = operator.ok("key", "list")
    assert len(re.findall(rf"\b{role}\s+no\s+\S+Z\s+\S+Z\s+here", listed)) >= 1


def test_hashhub_home_comes_from_the_environment(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"HASHHUB_HOME": str(tmp_path / "env-hub")}
    result = runner.invoke(main, ["init", "--name", "hub.env"], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["status"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("hub hub.env  root v1")


# -- mistakes ------------------------------------------------------------------------------------

MISTAKES = [
    pytest.param(["add", "nope", md5(1)], "no list 'nope'", id="unknown-list"),
    pytest.param(["publish", "nope"], "no list 'nope'", id="publish-unknown-list"),
    pytest.param(["list", "show", "nope"], "no list 'nope'", id="show-unknown-list"),
    pytest.param(["add", "tid-md5", "zz" * 16], "is not a md5 hash", id="bad-hash"),
    pytest.param(["remove", "tid-md5", "not-hex"], "is not a md5 hash", id="bad-remove"),
    pytest.param(["add", "tid-md5", md5(1)[:30]], "(32 hex digits)", id="wrong-width"),
    pytest.param(["add", "tid-pdq", md5(1)], "(64 hex digits)", id="md5-into-pdq"),
    pytest.param(["add", "tid-pdq", pdq(1), "--quality", "49"], "PDQ quality 49 is below 50"),
    pytest.param(["add", "tid-md5", md5(1), "--quality", "101"], "from 0 to 100", id="quality"),
    pytest.param(["list", "create", "x", "--type", "sha1"], "unknown hash type", id="bad-type"),
    pytest.param(["list", "create", "tid-md5", "--type", "md5"], "already exists", id="exists"),
    pytest.param(["list", "create", "Bad/Id", "--type", "md5"], "list id", id="bad-list-id"),
    pytest.param(
        ["list", "create", "x", "--type", "pdq", "--max-distance", "999"],
        "max_distance 999 out of range",
        id="max-distance",
    ),
    pytest.param(["import", "tid-md5", "{missing}"], "No such file", id="import-missing"),
    pytest.param(["import", "tid-md5", "{garbage}"], "line 1:", id="import-garbage"),
    pytest.param(
        ["node", "enrol", "n1", "--public-key", "{pem}", "--lists", "tid-md5,nope"],
        "no list 'nope'",
        id="bad-lists",
    ),
    pytest.param(
        ["node", "enrol", "n1", "--public-key", "{pem}", "--lists", " , "],
        "--lists names no list",
        id="empty-lists",
    ),
    pytest.param(
        ["node", "enrol", "Bad Node", "--public-key", "{pem}", "--lists", "tid-md5"],
        "invalid node id",
        id="bad-node-id",
    ),
    pytest.param(
        ["node", "enrol", "n1", "--public-key", "{garbage}", "--lists", "tid-md5"],
        "public key",
        id="unreadable-key",
    ),
    pytest.param(
        ["node", "enrol", "n1", "--public-key", "{private}", "--lists", "tid-md5"],
        "public key",
        id="private-key-as-public",
    ),
    pytest.param(
        ["node", "enrol", "n1", "--public-key", "{missing}", "--lists", "tid-md5"],
        "no such key file",
        id="missing-key",
    ),
    pytest.param(["node", "revoke", "ghost"], "no enrolled node 'ghost'", id="revoke-unknown"),
    pytest.param(
        ["token", "create", "--role", "king", "--name", "x"], "unknown operator role", id="role"
    ),
    pytest.param(["key", "rotate", "king"], "unknown role 'king'", id="rotate-unknown-role"),
    pytest.param(["init", "{home}", "--name", "hub.test"], "already holds a hub", id="init-twice"),
    pytest.param(["status", "--home", "{nowhere}"], "not a hub home", id="missing-home"),
]


@pytest.mark.parametrize(("args", "message"), MISTAKES)
def test_a_user_mistake_is_one_clear_line_and_exit_status_1(
    operator: Operator, tmp_path: Path, node_pem: Path, args: list[str], message: str
) -> None:
    (tmp_path / "garbage").write_bytes(b"\x00not a key, not hashes\n")
    write_private_key(tmp_path / "private.pem", SigningKey.generate())
    places = {
        "{missing}": str(tmp_path / "missing"),
        "{garbage}": str(tmp_path / "garbage"),
        "{pem}": str(node_pem),
        "{private}": str(tmp_path / "private.pem"),
        "{home}": str(operator.home),
        "{nowhere}": str(tmp_path / "nowhere"),
    }
    hub = operator.open()
    actions = hub.db.table("actions").count
    hub.close()
    argv = [places.get(a, a) for a in args]
    if argv[0] != "init" and "--home" not in argv:
        argv += ["--home", str(operator.home)]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    hub = operator.open()
    try:
        assert hub.db.table("actions").count == actions
        assert hub.db.table("staged").count == 0
    finally:
        hub.close()


DEGENERATE_ADDS = [
    pytest.param(
        ["add", "tid-pdq", pdq(1), "0" * 64, "--quality", "100"],
        "PDQ hash has 0 of 256 bits set; a hash from the reference hasher has about 128",
        id="pdq-all-zero-quality-100",
    ),
    pytest.param(["add", "tid-pdq", "F" * 64], "PDQ hash has 256 of 256 bits set", id="pdq-ones"),
    pytest.param(["add", "tid-md5", md5(1), "0" * 32], "MD5 hash is all zeros", id="md5-zero"),
    pytest.param(
        ["add", "tid-md5", hashlib.md5(b"", usedforsecurity=False).hexdigest()],
        "is the digest of an empty file",
        id="md5-empty-file",
    ),
]


@pytest.mark.parametrize(("args", "message"), DEGENERATE_ADDS)
def test_add_refuses_a_degenerate_hash_with_one_line_and_stages_nothing(
    operator: Operator, args: list[str], message: str
) -> None:
    result = operator.run(*args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert result.stderr.rstrip().endswith("refused as degenerate")
    hub = operator.open()
    try:
        assert hub.db.table("staged").count == 0
    finally:
        hub.close()


def test_import_refuses_a_file_with_one_degenerate_hash_naming_its_line(
    operator: Operator, tmp_path: Path
) -> None:
    batch = tmp_path / "batch.txt"
    batch.write_text(f"{pdq(1)}\n# the next one is a blank picture's\n{'0' * 64}\n{pdq(2)}\n")
    result = operator.run("import", "tid-pdq", str(batch))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {batch}: line 3: PDQ hash has 0 of 256 bits set")
    assert result.stderr.rstrip().endswith("refused as degenerate; nothing was staged")
    hub = operator.open()
    try:
        assert hub.db.table("staged").count == 0
    finally:
        hub.close()


def test_a_signing_key_file_others_can_read_is_refused(operator: Operator) -> None:
    operator.ok("add", "tid-md5", md5(1))
    hub = operator.open()
    keys = hub.keys.records()
    delta = next(k for k in keys if k.role == "delta")
    hub.close()
    [path] = (operator.home / "keys").glob(f"delta-{delta.keyid[:16]}.key")
    path.chmod(0o644)
    result = operator.run("publish")
    assert result.exit_code == 1
    assert "too open; run chmod 600" in result.stderr
    assert "Traceback" not in result.output
    hub = operator.open()
    try:
        assert hub.lists.row("tid-md5")["version"] == 0
        assert hub.lists.staged_count("tid-md5") == 1
    finally:
        hub.close()


def test_init_refuses_a_threshold_above_the_number_of_root_keys(tmp_path: Path) -> None:
    args = ["init", str(tmp_path / "h"), "--name", "hub.test", "--root-keys", "1"]
    result = CliRunner().invoke(main, [*args, "--root-threshold", "2"])
    assert result.exit_code == 1
    assert "root threshold must be between 1 and the number of root keys" in result.stderr
    assert not (tmp_path / "h" / "hub.toml").exists()


def test_init_refuses_a_bad_hub_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path / "h"), "--name", "Not A Name"])
    assert result.exit_code == 1
    assert "hub name 'Not A Name' must match" in result.stderr
    assert not (tmp_path / "h" / "hub.toml").exists()


def test_export_refuses_to_overwrite_a_changed_file(operator: Operator, tmp_path: Path) -> None:
    operator.ok("add", "tid-md5", md5(1))
    operator.ok("publish")
    public = tmp_path / "public"
    operator.ok("export", str(public))
    (public / "root" / "1.json").write_text("{}")
    result = operator.run("export", str(public))
    assert result.exit_code == 1
    assert "exists with other bytes; refusing to overwrite" in result.stderr


def test_export_public_only_leaves_out_private_lists(operator: Operator, tmp_path: Path) -> None:
    operator.ok("list", "create", "open-md5", "--type", "md5", "--public")
    operator.ok("add", "tid-md5", md5(1))
    operator.ok("add", "open-md5", md5(2))
    operator.ok("publish")
    everything, mirror = tmp_path / "everything", tmp_path / "mirror"
    operator.ok("export", str(everything))
    operator.ok("export", "--public-only", str(mirror))
    assert sorted(p.name for p in (everything / "lists").iterdir()) == [
        "open-md5",
        "tid-md5",
        "tid-pdq",  # nothing published: its size-0 checkpoint only
    ]
    assert [p.name for p in (everything / "lists" / "tid-pdq").iterdir()] == ["checkpoint"]
    assert sorted(p.name for p in (mirror / "lists").iterdir()) == ["open-md5"]
    assert sorted(p.name for p in (mirror / "root").iterdir()) == sorted(
        p.name for p in (everything / "root").iterdir()
    )
    for path in (mirror / "lists" / "open-md5").rglob("*"):
        if path.is_file():
            rel = path.relative_to(mirror)
            assert path.read_bytes() == (everything / rel).read_bytes()


@pytest.mark.parametrize(
    "args",
    [["add"], ["list", "create", "x"], ["frobnicate"], ["status", "--bogus"], ["status"]],
    ids=["missing-args", "missing-type", "unknown-command", "unknown-option", "no-home"],
)
def test_usage_errors_exit_with_status_2(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HASHHUB_HOME", raising=False)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# -- the installed script ------------------------------------------------------------------------


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_the_installed_script_runs_a_session_and_reports_mistakes(tmp_path: Path) -> None:
    assert SCRIPT.exists(), "reinstall: pip install -e '.[node,dev]'"
    home = str(tmp_path / "hub")
    done = run_script("init", home, "--name", "hub.test")
    assert done.returncode == 0, done.stderr
    env = {"HASHHUB_HOME": home}
    assert run_script("list", "create", "l", "--type", "md5", env=env).returncode == 0
    assert run_script("add", "l", md5(1), env=env).returncode == 0
    done = run_script("publish", env=env)
    assert done.stdout == "l: v1  +1 -0  1 hashes\n"
    mistake = run_script("add", "l", "xyz", env=env)
    assert mistake.returncode == 1
    assert mistake.stderr == "Error: 'xyz' is not a md5 hash (32 hex digits)\n"
    usage = run_script("add", env=env)
    assert usage.returncode == 2
    assert "Traceback" not in usage.stderr + mistake.stderr
    assert run_script("--version").stdout.startswith("hashhub, version ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, token: str | None = None) -> bytes:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return bytes(response.read())


@pytest.fixture
def served(operator: Operator) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [str(SCRIPT), "serve", "--home", str(operator.home), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            get(base + "/healthz")
            break
        except (urllib.error.URLError, ConnectionError):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "hashhub serve did not come up"
            time.sleep(0.1)
    yield base, process
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_serve_answers_on_its_port_and_stops_cleanly_on_sigterm(
    operator: Operator, served: tuple[str, subprocess.Popen[str]], node_pem: Path
) -> None:
    base, process = served
    operator.ok("add", "tid-md5", md5(1))
    operator.ok("publish")
    out = operator.ok("node", "enrol", "p", "--public-key", str(node_pem), "--lists", "tid-md5")
    root1 = get(base + "/root/1.json")
    assert hashlib.sha256(root1).hexdigest() == operator.pinned
    assert get(base + "/lists/tid-md5/checkpoint", printed_token(out, "hhn")).startswith(
        b"hub.test/lists/tid-md5\n1\n"
    )
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_serve_on_a_port_in_use_is_a_clear_error(operator: Operator) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = operator.run("serve", "--port", port)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.output


# -- the guide documents the command ---------------------------------------------------------------


def _commands(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from _commands(command, path)


def test_the_operator_guide_documents_every_command_and_option() -> None:
    guide = DOCS.read_text(encoding="utf-8")
    missing = []
    for path, command in _commands(main, "hashhub"):
        if not isinstance(command, click.Group) and path not in guide:
            missing.append(path)
        for param in command.params:
            for opt in getattr(param, "opts", []):
                documented = re.search(rf"{re.escape(opt)}\b", guide)
                if opt.startswith("--") and opt != "--help" and not documented:
                    missing.append(f"{path} {opt}")
    assert not missing, f"not in {DOCS.name}: {missing}"
    assert "HASHHUB_HOME" in guide
