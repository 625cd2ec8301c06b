"""Kill real processes at random points and look at what they leave on disk.

A *fork server* (``ForkServer``) is a separate Python process that imports the
hub and node packages once, then for each job forks a worker that runs one real
operation (a node's ``run_sync``, a ``Publishing.publish``, ``AckIntake.receive_batch``, or
the hub's HTTP app serving until told to stop) and sends it SIGKILL after the
delay the test chose. Forking from an idle process that already holds the
imports costs milliseconds, so a hundred kills fit in a test run; the worker is
still its own process, so the kill is a real one: no ``finally``, no ``close``,
no flush of anything the worker had not written.

The fork server's answer for a job is ``exit <code> <seconds>``: code ``-9`` when
the worker was killed, ``0`` when it finished before its delay ran out. Lines a
worker writes itself (``ok <node> <seq>`` for each ack the hub confirmed,
``port <n>`` once the app listens) come through
the same pipe, written with one ``os.write`` each so a kill never leaves half a
line.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SERVER = r"""
import asyncio, base64, json, os, signal, sys, time, traceback
from pathlib import Path

import aiohttp

from hub.core import AckReceipt, Hub
from node.service import Node, run_sync


def say(text):
    os.write(1, (text + "\n").encode())


def sync(home):
    async def main():
        node = Node.open(Path(home))
        async with aiohttp.ClientSession() as session:
            await run_sync(node, session)
        node.close()

    asyncio.run(main())


def publish(home):
    hub = Hub.open(Path(home))
    hub.publishing.publish()
    hub.close()


def acks(home, batches_file):
    hub = Hub.open(Path(home))
    for batch in json.loads(Path(batches_file).read_text()):
        items = [
            (token, base64.b64decode(data), base64.b64decode(sig), None)
            for token, data, sig in batch
        ]
        for answer in hub.acks.receive_batch(items):
            if isinstance(answer, AckReceipt):
                say(f"ok {answer.node} {answer.seq}")
            else:
                say(f"refused {type(answer).__name__}")
    hub.close()


def serve(home):
    # The hub's HTTP app on a free loopback port, until a stop-serving file appears.
    from aiohttp import web

    from hub.app import create_app

    async def main():
        runner = web.AppRunner(create_app(Path(home), schedule=False), handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        say(f"port {runner.addresses[0][1]}")
        stop = Path(home) / "stop-serving"
        while not stop.exists():
            await asyncio.sleep(0.01)
        await runner.cleanup()

    asyncio.run(main())


JOBS = {"sync": sync, "publish": publish, "acks": acks, "serve": serve}

say("ready")
for line in sys.stdin:
    kind, delay, *args = line.split()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            JOBS[kind](*args)
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    deadline = started + float(delay)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.0005)
    say(f"exit {os.waitstatus_to_exitcode(status)} {time.monotonic() - started:.4f}")
"""


@dataclass
class JobResult:
    """How one job ended: ``killed`` or finished, after how long, and what it wrote."""

    code: int
    seconds: float
    lines: list[str] = field(default_factory=list)

    @property
    def killed(self) -> bool:
        return self.code == -9


class ForkServer:
    """The fork server process (see the module docstring), driven from the test's loop."""

    def __init__(self, workdir: Path) -> None:
        self.script = workdir / "fork_server.py"
        self.errors = workdir / "fork_server.err"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> ForkServer:
        self.script.write_text(SERVER, encoding="utf-8")
        with self.errors.open("wb") as errors:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(self.script),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=errors,
            )
        assert await self.line() == "ready", self.errors.read_text()
        return self

    async def line(self) -> str:
        """The next line from the fork server or its worker."""
        assert self.process is not None
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout=120)
        assert raw, f"the fork server died: {self.errors.read_text()}"
        return raw.decode().rstrip("\n")

    async def run(self, kind: str, delay: float, *args: str) -> JobResult:
        """Run one job, killed after ``delay`` seconds unless it finished first."""
        await self.begin(kind, delay, *args)
        return await self.finish()

    async def begin(self, kind: str, delay: float, *args: str) -> None:
        """Start one job; read its lines with ``line`` and its end with ``finish``."""
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(f"{kind} {delay:.6f} {' '.join(args)}\n".encode())
        await self.process.stdin.drain()

    async def finish(self, lines: Sequence[str] = ()) -> JobResult:
        """Wait for the job's end; ``lines`` are those the caller already read."""
        seen = list(lines)
        while not (line := await self.line()).startswith("exit "):
            seen.append(line)
        return self.ended(line, seen)

    def ended(self, line: str, lines: Sequence[str] = ()) -> JobResult:
        """The result an ``exit`` line reports."""
        _, code, seconds = line.split()
        result = JobResult(int(code), float(seconds), list(lines))
        assert result.code in (0, -9), f"the job failed: {self.errors.read_text()}"
        return result

    async def stop(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()
            await asyncio.wait_for(self.process.wait(), timeout=30)
            self.process = None
