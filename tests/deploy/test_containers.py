"""The container images and the compose stack (issue 8 §1), checked without an engine.

No container engine runs where these tests run, so they check what can be checked
without one, each property from the file that decides it:

- ``docker-compose config`` (Debian's ``docker-compose``) accepts ``docker/compose.yaml``;
- the Dockerfiles: a build stage and a clean runtime stage, an unprivileged user, a
  health check that really answers (it is run against a real hub and a real node), no
  secret copied or set, the home directory a volume;
- ``.dockerignore``: the build context holds the package sources and nothing else;
- the compose file: a hub, two nodes, nginx serving the export read-only as the
  nodes' mirror, every home on a named volume, no secret in any environment;
- the set-up services' scripts, run here with the same commands against a real hub
  and a real nginx: the nodes they set up sync, immutable files from nginx.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from hub.core import Hub
from node.app import create_app as create_node_app
from node.config import NodeConfig
from node.imaging import hash_image
from node.service import Node
from protocol import checkpoint_path, header_path
from protocol.layout import root_path
from scripts import demo
from tests.deploy.dockerfiles import DockerIgnore, Stage, parse_dockerfile
from tests.deploy.nginx import NginxMirror
from tests.node.fixtures_sync import Clock, HubApp

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
SETUP = DOCKER / "setup"
BIN = Path(sys.executable).parent

HUB_IMAGE = "docker/hub.Dockerfile"
NODE_IMAGE = "docker/node.Dockerfile"
IMAGES = {  # Dockerfile: (the home's environment variable, the port it serves)
    HUB_IMAGE: ("HASHHUB_HOME", 8470),
    NODE_IMAGE: ("HASHHUB_NODE_HOME", 8471),
}
PDQ_LIST, MD5_LIST = "ncii-pdq", "ncii-md5"
LISTS = (PDQ_LIST, MD5_LIST)
NODE_IDS = ("photos-example", "videos-example")
SOURCES = {"pyproject.toml", "README.md", "protocol", "edge", "follow", "hub", "node", "audit"}
"""What a wheel is built from: the only context paths a Dockerfile may copy."""
SECRETISH = re.compile(r"token|secret|passw|private|credential|(^|_)key($|_)|\.key$|\.pem$", re.I)
TOKEN_VALUE = re.compile(r"\bhh[a-z]_[A-Za-z0-9_-]{16,}|-----BEGIN")
EXPECTED_SERVICES = {
    "setup-hub",
    "setup-node-a",
    "setup-node-b",
    "hub",
    "export",
    "mirror",
    "node-a",
    "node-b",
}


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose is not installed: `make system-deps` installs it")
    return found


def runtime(dockerfile: str) -> Stage:
    return parse_dockerfile(REPO / dockerfile)[-1]


def env_of(stage: Stage) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in instruction.args:
            name, _, value = word.partition("=")
            values[name] = value
    return values


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def dockerfile_of(service: Mapping[str, Any]) -> str | None:
    build = service.get("build")
    return None if build is None else str(build["dockerfile"])


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(str(item).partition("=")[::2] for item in env)
    return {str(k): str(v) for k, v in env.items()}


def seeds(list_id: str) -> list[str]:
    """The hashes the set-up imports into ``list_id``, in file order."""
    text = (SETUP / "seed" / f"{list_id}.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def mounts(service: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Container path → (source, mode) for each short-syntax volume."""
    found = {}
    for spec in service.get("volumes", []):
        source, target, *mode = str(spec).split(":")
        found[target] = (source, mode[0] if mode else "rw")
    return found


# -- docker-compose ---------------------------------------------------------------------


def test_docker_compose_accepts_the_compose_file() -> None:
    result = subprocess.run(
        [docker_compose(), "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == EXPECTED_SERVICES
    assert "mirror-tree:/srv/hashhub-mirror:ro" in resolved["services"]["mirror"]["volumes"]


# -- the images -------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_image_is_built_in_one_stage_and_run_from_a_clean_one(dockerfile: str) -> None:
    stages = parse_dockerfile(REPO / dockerfile)
    assert len(stages) >= 2, "multi-stage: a build stage and a runtime stage"
    build, final = stages[0], stages[-1]
    assert build.name, "the build stage is named, for --from"
    assert "-slim" in build.base, "a slim Python base"
    assert final.base == build.base, "the same base for both stages"
    assert any("pip wheel" in i.raw for i in build.all("RUN")), "the build stage makes wheels"
    # The runtime stage takes the wheels from the build stage, nothing from the context,
    # and installs them from there alone: no compiler, no sources, no index.
    assert not final.all("ADD")
    assert all(i.flags.get("from") == build.name for i in final.all("COPY"))
    installs = [i for i in final.all("RUN") if "pip install" in i.raw]
    assert len(installs) == 1
    assert f"from={build.name}" in installs[0].flags.get("mount", "")
    assert "--no-index" in installs[0].args
    # A runtime library may be installed (the node's FFmpeg, which its video hasher was
    # built against); a compiler or a package to build against may not.
    assert not [
        i for i in final.all("RUN") if re.search(r"\bg\+\+|\bgcc\b|\bcmake\b|-dev\b", i.raw)
    ]


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_image_runs_as_an_unprivileged_user(dockerfile: str) -> None:
    final = runtime(dockerfile)
    users = final.all("USER")
    assert users, "a USER instruction in the runtime stage"
    user = users[-1].args[0].split(":")[0]
    assert user not in ("root", "0")
    assert any(f"useradd --system --uid {user}" in i.raw for i in final.all("RUN"))
    last_user = final.instructions.index(users[-1])
    assert not [i for i in final.instructions[last_user:] if i.keyword == "RUN"]


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_image_keeps_its_home_on_a_volume(dockerfile: str) -> None:
    variable, _ = IMAGES[dockerfile]
    final = runtime(dockerfile)
    home = env_of(final)[variable]
    assert [i.args for i in final.all("VOLUME")] == [[home]]
    # Made in the image, owned by the user and private, so a new volume starts that way.
    assert any(re.search(rf"-o hashhub .*-m 0700 {home}\b", i.raw) for i in final.all("RUN"))


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_image_bakes_in_no_secret(dockerfile: str) -> None:
    for stage in parse_dockerfile(REPO / dockerfile):
        assert not stage.all("ADD"), "ADD can fetch URLs and unpack archives; COPY only"
        for copy in stage.all("COPY"):
            if "from" in copy.flags:
                continue
            *sources, _ = copy.args
            assert set(sources) <= SOURCES, copy.raw
        for instruction in stage.all("ENV") + stage.all("ARG") + stage.all("LABEL"):
            for word in instruction.args:
                name, _, value = word.partition("=")
                assert not SECRETISH.search(name), instruction.raw
                assert not TOKEN_VALUE.search(value), instruction.raw


@pytest.mark.parametrize("dockerfile", IMAGES)
async def test_image_health_check_asks_healthz_and_fails_when_nothing_answers(
    tmp_path: Path, dockerfile: str
) -> None:
    """The HEALTHCHECK command itself, run against the real app on a free port."""
    _, port = IMAGES[dockerfile]
    final = runtime(dockerfile)
    (check,) = final.all("HEALTHCHECK")
    assert check.args[:3] == ["CMD", "python", "-c"]
    script = check.args[3]
    assert f"http://127.0.0.1:{port}/healthz" in script
    assert final.all("EXPOSE")[0].args == [str(port)]
    assert final.all("CMD")[0].args[-2:] == ["--port", str(port)]

    if dockerfile == HUB_IMAGE:
        hub = await HubApp.init(tmp_path / "hub", Clock()).start()
        app_port, stop = hub.port, hub.stop
    else:
        Node.init(
            tmp_path / "node",
            node_id="platform-a",
            hub_url="http://127.0.0.1:9",
            lists=["any-list"],
            pinned_root_sha256="0" * 64,
        ).close()
        runner = web.AppRunner(create_node_app(tmp_path / "node", schedule=False))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        app_port, stop = runner.addresses[0][1], runner.cleanup

    async def health() -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script.replace(f":{port}/", f":{app_port}/")
        )
        return await process.wait()

    assert await health() == 0
    await stop()
    assert await health() != 0


def test_build_context_holds_the_sources_and_nothing_secret() -> None:
    ignore = DockerIgnore.load(REPO / ".dockerignore")
    context = ignore.context(REPO)
    assert {path.split("/")[0] for path in context} == SOURCES
    assert "hub/app.py" in context
    assert "node/openapi.yaml" in context
    for path in (
        ".venv/bin/python",
        ".git/config",
        "demo-out/hub/keys/root-1.key",
        "demo-out/node/hub-token",
        "tests/node/conftest.py",
        "hub/hub.db",
        "hub/hub.db-wal",
        "node/keys/delta-1.key",
        "node/node.pub.pem",
        "node/api-token",
        "node/webhook-secret",
        "audit/.env",
        "hub/__pycache__/app.cpython-311.pyc",
        "docker/compose.yaml",
    ):
        assert ignore.excludes(path), path
    assert not [p for p in context if SECRETISH.search(p.rsplit("/", 1)[-1].split(".")[0])]


# -- the compose stack ------------------------------------------------------------------


def test_compose_runs_a_hub_two_nodes_and_an_nginx_mirror() -> None:
    found = services()
    assert set(found) == EXPECTED_SERVICES
    assert dockerfile_of(found["hub"]) == HUB_IMAGE
    assert "command" not in found["hub"], "the image's CMD: hashhub serve"
    for name in ("node-a", "node-b"):
        assert dockerfile_of(found[name]) == NODE_IMAGE
        assert "command" not in found[name], "the image's CMD: hashhub-node run"
    assert str(found["mirror"]["image"]).split("/")[-1].startswith("nginx")
    # Long-running services publish their ports on loopback only.
    for service in found.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


def test_compose_keeps_every_home_on_a_named_volume() -> None:
    found = services()
    declared = set(compose()["volumes"])
    homes: dict[str, str] = {}
    for name, service in found.items():
        dockerfile = dockerfile_of(service)
        if dockerfile is None:
            continue
        variable, _ = IMAGES[dockerfile]
        home = env_of(runtime(dockerfile))[variable]
        source, mode = mounts(service)[home]
        assert source in declared, f"{name}: {home} is not on a named volume"
        assert mode == "rw"
        homes[name] = source
    assert homes["setup-hub"] == homes["hub"] == homes["export"]
    assert homes["setup-node-a"] == homes["node-a"] != homes["node-b"] == homes["setup-node-b"]
    hub_home = env_of(runtime(HUB_IMAGE))["HASHHUB_HOME"]
    for name in ("setup-node-a", "setup-node-b"):  # enrolment is the hub operator's step
        assert environment(found[name])["HASHHUB_HOME"] == hub_home
        assert mounts(found[name])[hub_home][0] == homes["hub"]


def test_compose_environment_holds_no_secret() -> None:
    for name, service in services().items():
        for key, value in environment(service).items():
            assert not SECRETISH.search(key), f"{name}: {key}"
            assert not TOKEN_VALUE.search(value), f"{name}: {key}"
        assert "env_file" not in service, name
        command = " ".join(map(str, service.get("command", [])))
        assert not re.search(r"--token\b|\btoken set [^-]", command), name


def test_compose_containers_are_hardened() -> None:
    for name, service in services().items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert not service.get("privileged"), name


def test_nginx_serves_the_hubs_export_read_only() -> None:
    found = services()
    conf = (DOCKER / "nginx" / "mirror.conf").read_text(encoding="utf-8")
    root = re.search(r"(?m)^\s*root\s+(\S+);", conf)
    assert root is not None
    tree = root[1]
    mirror = mounts(found["mirror"])
    assert mirror[tree][1] == "ro"
    assert mirror["/etc/nginx/conf.d/default.conf"] == ("./nginx/mirror.conf", "ro")
    # What nginx serves is what `hashhub export` writes, by the set-up and then the
    # export service, into the same volume.
    assert mounts(found["export"])[tree] == (mirror[tree][0], "rw")
    assert f"hashhub export {tree}" in " ".join(map(str, found["export"]["command"]))
    assert environment(found["setup-hub"])["MIRROR_DIR"] == tree
    assert mounts(found["setup-hub"])[tree] == (mirror[tree][0], "rw")


def test_nodes_take_checkpoints_from_the_hub_and_files_from_the_nginx_mirror() -> None:
    found = services()
    conf = (DOCKER / "nginx" / "mirror.conf").read_text(encoding="utf-8")
    listen = re.search(r"(?m)^\s*listen\s+(\d+);", conf)
    assert listen is not None
    _, hub_port = IMAGES[HUB_IMAGE]
    for name in ("setup-node-a", "setup-node-b"):
        env = environment(found[name])
        assert env["HUB_URL"] == f"http://hub:{hub_port}", name
        assert env["MIRROR_URL"] == f"http://mirror:{listen[1]}", name
    ids = {environment(found[n])["NODE_ID"] for n in ("setup-node-a", "setup-node-b")}
    assert len(ids) == 2
    script = (SETUP / "node.sh").read_text(encoding="utf-8")
    assert re.search(r'hashhub-node init --hub "\$hub_url" --mirror "\$mirror_url"', script)


def test_set_up_makes_what_make_demo_makes_first() -> None:
    """The same hub name, lists, first hashes and platforms as scripts/demo.py."""
    found = services()
    assert environment(found["setup-hub"])["HUB_NAME"] == demo.HUB_NAME
    assert (demo.PDQ_LIST, demo.MD5_LIST) == LISTS
    for name in ("setup-node-a", "setup-node-b"):
        assert environment(found[name])["LISTS"] == ",".join(LISTS)
    ids = tuple(environment(found[n])["NODE_ID"] for n in ("setup-node-a", "setup-node-b"))
    assert ids == NODE_IDS == (demo.PHOTOS, demo.VIDEOS)
    pictures = [hash_image(demo.jpeg(demo.picture(seed))).pdq.hex() for seed in range(1, 21)]
    videos = [hashlib.md5(demo.video(seed), usedforsecurity=False).hexdigest() for seed in range(5)]
    for list_id, expected in ((PDQ_LIST, pictures), (MD5_LIST, videos)):
        assert seeds(list_id) == expected, (
            f"docker/setup/seed/{list_id}.txt is not what make demo publishes; its hashes are:\n"
            + "\n".join(expected)
        )


# -- the set-up services' commands, for real --------------------------------------------


async def run_script(script: Path, env: Mapping[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        "sh",
        str(script),
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


def private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.slow
async def test_set_up_commands_make_a_hub_and_nodes_that_sync_through_nginx(
    tmp_path: Path,
) -> None:
    """docker/setup/*.sh as the one-shot services run them, with a real hub and nginx.

    No secret reaches their output (a container's log): the admin and node tokens go to
    0600 files. The nodes they set up sync: roots, headers and signatures from nginx,
    checkpoints from the hub. Run again, the scripts change nothing.
    """
    hub_home, tree = tmp_path / "hub", tmp_path / "tree"
    hub_env = {
        "HASHHUB_HOME": str(hub_home),
        "HUB_NAME": "hub.demo.invalid",
        "MIRROR_DIR": str(tree),
        "SEED_DIR": str(SETUP / "seed"),
    }
    output = await run_script(SETUP / "hub.sh", hub_env)
    admin_token = (hub_home / "admin-token").read_text().strip()
    assert admin_token.startswith("hho_")
    assert admin_token not in output
    assert private(hub_home / "admin-token")
    pin = (hub_home / "root-v1.sha256").read_text().strip()
    assert pin == hashlib.sha256((tree / root_path(1)).read_bytes()).hexdigest()

    hub = await HubApp(hub_home, Clock()).start()
    mirror = await NginxMirror.start(tree, tmp_path / "nginx")
    try:
        for node_id in NODE_IDS:
            home = tmp_path / node_id
            node_env = {
                "HASHHUB_HOME": str(hub_home),
                "HASHHUB_NODE_HOME": str(home),
                "NODE_ID": node_id,
                "HUB_URL": hub.url,
                "MIRROR_URL": mirror.url,
            }
            output = await run_script(SETUP / "node.sh", node_env)
            token = (home / "hub-token").read_text().strip()
            assert token.startswith("hhn_")
            assert token not in output
            assert private(home / "hub-token")
            config = NodeConfig.load(home)
            assert (config.hub_url, config.mirrors) == (hub.url, (mirror.url,))
            assert config.pinned_root_sha256 == pin

            sync = await asyncio.create_subprocess_exec(
                str(BIN / "hashhub-node"),
                "sync",
                "--home",
                str(home),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            said = (await sync.communicate())[0].decode()
            assert sync.returncode == 0, said
            for list_id in LISTS:
                assert f"{list_id}: updated v0 -> v1" in said

        served = {(r.path, r.status) for r in mirror.served()}
        for path in (root_path(1), *(header_path(list_id, 1) for list_id in LISTS)):
            assert (path, 200) in served, path
        assert not [p for p, _ in served if p.endswith("/checkpoint")]
        assert checkpoint_path(PDQ_LIST) not in {p for p, _ in served}

        again = await run_script(SETUP / "hub.sh", hub_env)
        assert "nothing to do" in again
        again = await run_script(SETUP / "node.sh", node_env)
        assert "nothing to do" in again
    finally:
        mirror.stop()
        await hub.stop()
    opened = Hub.open(hub_home)
    try:
        enrolled = {n.id: n.lists for n in opened.access.nodes()}
        versions = {e.id: (e.version, e.count) for e in opened.reports.status().lists}
    finally:
        opened.close()
    assert {k: sorted(v) for k, v in enrolled.items()} == {n: sorted(LISTS) for n in NODE_IDS}
    assert versions == {list_id: (1, len(seeds(list_id))) for list_id in LISTS}
