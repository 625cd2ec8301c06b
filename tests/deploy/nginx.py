"""A real nginx on loopback serving a ``hashhub export`` tree with the shipped mirror config.

``NginxMirror.start(tree, workdir)`` runs Debian's nginx in the foreground (``daemon
off``) with everything it writes — pid file, error log, access log, temp paths — in
``workdir``, on a free port of 127.0.0.1. The server block is ``docker/nginx/mirror.conf``
itself, the file the compose stack mounts, with only its ``listen`` port and ``root``
replaced, so the tests exercise the configuration that ships. The access log records
method, URI and status of every request, which is how a test proves what the mirror
served (``served``).

``export_tree`` runs the ``hashhub export`` command, as the compose stack's export
service does.

``LoadBalancer.start(upstreams, workdir)`` runs the same nginx as a platform's load
balancer in front of its node replicas: one ``upstream`` of the given loopback
ports, round robin, each answer naming the replica that gave it in ``UPSTREAM_HEADER``
(nginx's ``$upstream_addr``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "MIRROR_CONF",
    "UPSTREAM_HEADER",
    "LoadBalancer",
    "NginxMirror",
    "Request",
    "balancer_block",
    "export_tree",
    "launch_nginx",
    "nginx_binary",
]

REPO = Path(__file__).resolve().parents[2]
MIRROR_CONF = REPO / "docker" / "nginx" / "mirror.conf"
HASHHUB = Path(sys.executable).with_name("hashhub")
START_DEADLINE = 10.0
DEBIAN_NGINX = "/usr/sbin/nginx"
UPSTREAM_HEADER = "X-Upstream"
"""The balancer's answer header naming the replica (``127.0.0.1:PORT``) that answered."""


def nginx_binary() -> str:
    """The nginx program; a failure (not a skip) when it is missing."""
    found = shutil.which("nginx")
    if found is None and os.access(DEBIAN_NGINX, os.X_OK):
        found = DEBIAN_NGINX  # in /usr/sbin, not on every user's PATH
    if found is None:
        pytest.fail("nginx is not installed: `make system-deps` installs it")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_block(tree: Path, port: int) -> str:
    """``mirror.conf`` listening on 127.0.0.1:``port`` with ``tree`` as its root."""
    text = MIRROR_CONF.read_text(encoding="utf-8")
    text, listens = re.subn(r"(?m)^(\s*)listen\s+8080;", rf"\g<1>listen 127.0.0.1:{port};", text)
    text, roots = re.subn(
        r"(?m)^(\s*)root\s+/srv/hashhub-mirror;", lambda m: f"{m[1]}root {tree};", text
    )
    assert (listens, roots) == (1, 1), "mirror.conf no longer has one 'listen 8080' and one root"
    return text


def main_config(workdir: Path) -> str:
    """The main context around the server block: every path nginx writes is in ``workdir``.

    The master process of an nginx started by root hands requests to workers running
    as ``nobody``, which could not read a test's private temp directory: as root the
    workers run as root too. As another user there is no ``user`` directive at all.
    """
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {name}_temp_path {workdir / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} notice;
events {{
    worker_connections 64;
}}
http {{
    log_format mirror '$request_method $request_uri $status $body_bytes_sent';
    access_log {workdir / "access.log"} mirror;
{temp}
    include {workdir / "mirror.conf"};
}}
"""


async def _nginx_answers(port: int) -> bool:
    """Whether nginx (not some other program that has the port) answers HTTP there."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        writer.write(b"HEAD / HTTP/1.0\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(4096), 1.0)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return b"\r\nServer: nginx\r\n" in answer


@dataclass(frozen=True)
class Request:
    """One line of the mirror's access log."""

    method: str
    path: str
    status: int
    size: int


def launch_nginx(workdir: Path, *, stderr: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """Start nginx on ``workdir/nginx.conf`` (``main_config``), logging to ``workdir``."""
    (workdir / "nginx.conf").write_text(main_config(workdir), encoding="utf-8")
    return subprocess.Popen(
        [
            nginx_binary(),
            "-p",
            str(workdir),
            "-e",
            str(workdir / "error.log"),
            "-c",
            str(workdir / "nginx.conf"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


@dataclass
class NginxMirror:
    """A running nginx serving ``tree`` at ``url`` (see the module docstring)."""

    tree: Path
    workdir: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, tree: Path, workdir: Path) -> NginxMirror:
        """Start nginx on a free port; another try on another port if that one was taken."""
        workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            mirror = await cls._launch(tree, workdir, free_port())
            if mirror is not None:
                return mirror
        pytest.fail("nginx found no free port in three tries")

    @classmethod
    async def _launch(cls, tree: Path, workdir: Path, port: int) -> NginxMirror | None:
        (workdir / "mirror.conf").write_text(server_block(tree, port), encoding="utf-8")
        process = launch_nginx(workdir, stderr=subprocess.PIPE)
        error_log = workdir / "error.log"
        mirror = cls(tree, workdir, port, process)
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                log = error_log.read_text() if error_log.exists() else ""
                mirror.stop()
                if "Address already in use" in stderr + log:
                    return None
                pytest.fail(f"nginx exited with {process.returncode}: {stderr}{log}")
            if await _nginx_answers(port):
                return mirror
            if time.monotonic() > deadline:
                mirror.stop()
                pytest.fail(f"nginx did not answer on port {port} within {START_DEADLINE} s")
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown (SIGTERM to the master, which stops its worker)."""
        stop_nginx(self.process)

    def served(self) -> list[Request]:
        """Every request nginx has logged so far, oldest first."""
        path = self.workdir / "access.log"
        if not path.exists():
            return []
        requests = []
        for line in path.read_text(encoding="utf-8").splitlines():
            method, uri, status, size = line.split(" ")
            requests.append(Request(method, uri.lstrip("/"), int(status), int(size)))
        return requests


async def export_tree(hub_home: Path, tree: Path) -> str:
    """Run ``hashhub export TREE --home HUB_HOME``; returns what it printed."""
    process = await asyncio.create_subprocess_exec(
        str(HASHHUB),
        "export",
        str(tree),
        "--home",
        str(hub_home),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


def balancer_block(port: int, upstreams: Sequence[int]) -> str:
    """A server block on 127.0.0.1:``port`` spreading requests over ``upstreams``, round robin.

    Written as a platform would put its node replicas behind nginx: no retry on
    another replica (``proxy_next_upstream off``), so an answer comes from the one
    replica it names, and the request's ``Authorization`` passes through unchanged.
    """
    servers = "\n".join(f"    server 127.0.0.1:{upstream};" for upstream in upstreams)
    return f"""upstream hashhub_fleet {{
{servers}
}}
server {{
    listen 127.0.0.1:{port};
    server_tokens off;
    client_max_body_size 20m;
    location / {{
        proxy_pass http://hashhub_fleet;
        proxy_next_upstream off;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        add_header {UPSTREAM_HEADER} $upstream_addr always;
    }}
}}
"""


@dataclass
class LoadBalancer:
    """A running nginx balancing over node replicas at ``url`` (see the module docstring)."""

    workdir: Path
    port: int
    upstreams: tuple[int, ...]
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    async def start(cls, upstreams: Sequence[int], workdir: Path) -> LoadBalancer:
        """Start nginx on a free port; another try on another port if that one was taken."""
        workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            port = free_port()
            # ``main_config`` includes ``mirror.conf``: here that file is the balancer's block.
            (workdir / "mirror.conf").write_text(balancer_block(port, upstreams), encoding="utf-8")
            balancer = cls(
                workdir, port, tuple(upstreams), launch_nginx(workdir, stderr=subprocess.PIPE)
            )
            try:
                if await _started(balancer.process, port, workdir):
                    return balancer
            except BaseException:
                balancer.stop()  # pytest.fail included: no nginx outlives its test
                raise
            balancer.stop()
        pytest.fail("nginx found no free port in three tries")

    def stop(self) -> None:
        """Fast shutdown (SIGTERM to the master, which stops its worker)."""
        stop_nginx(self.process)


def stop_nginx(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to nginx's master (which stops its workers); killed after 5 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr is not None:
        process.stderr.close()


async def _started(process: subprocess.Popen[bytes], port: int, workdir: Path) -> bool:
    """Whether nginx answers on ``port``; ``False`` if the port was taken, a failure otherwise."""
    error_log = workdir / "error.log"
    deadline = time.monotonic() + START_DEADLINE
    while True:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            log = error_log.read_text() if error_log.exists() else ""
            if "Address already in use" in stderr + log:
                return False
            pytest.fail(f"nginx exited with {process.returncode}: {stderr}{log}")
        if await _nginx_answers(port):
            return True
        if time.monotonic() > deadline:
            pytest.fail(f"nginx did not answer on port {port} within {START_DEADLINE} s")
        await asyncio.sleep(0.05)
