"""The public pages leave no trace of who used them: no address, no time, no case.

Once ``hashhub serve`` wrote ``aiohttp.access 127.0.0.1 "GET /submit
HTTP/1.1" 200 …`` with the time for every visit to the submission page, and the
same for ``POST /submit`` and the case page; an address and a second-exact time
next to the day a case was created can tie a person to a report.

Here the installed ``hashhub serve`` runs as a subprocess with every logger at
DEBUG (a ``sitecustomize`` on its ``PYTHONPATH`` configures logging before the
command starts, so ``hub.app.run`` keeps it) and its output written to a file.
People reach it directly from 127.0.0.3 and through a trusted "proxy" at
127.0.0.2 that forwards for 198.51.100.23; they open every public page and its
static files, submit a picture's and a video's hash, run into the submit
bucket's 429 and a refused form, look their cases up (and try a case number in
the URL). A request to ``/healthz`` from 127.0.0.4 shows the access log works.

Then: no log line names any of those people's addresses, a case number (plain
or grouped), a submitted hash or even a public page's path; no table but
``submissions`` holds a case number or a hash, and no table an address; no file
in the hub's home or beside it holds an address; and the case row holds the day
it arrived, not the time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

import hub.web.pages
from hub.app import ACCESS_LOG_FORMAT, create_app
from hub.limits import ClientAccessLogger
from hub.privacy import is_public_page
from tests.web.hub_support import case_number, init_web_hub

HASHHUB = Path(sys.executable).with_name("hashhub")
DIRECT = "127.0.0.3"
PROXY = "127.0.0.2"
FORWARDED = "198.51.100.23"
CONTROL = "127.0.0.4"
PEOPLE = (DIRECT, PROXY, FORWARDED)
START_DEADLINE = 30.0
DEBUG_LOGGING = """\
import logging

logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    log: Path
    home: Path


@contextmanager
def hashhub_serve(tmp_path: Path) -> Iterator[Served]:
    """``hashhub serve`` on a free port, every logger at DEBUG, its output in a file."""
    home = tmp_path / "hub"
    init_web_hub(home)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(DEBUG_LOGGING, encoding="utf-8")
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "HASHHUB_HOME": str(home),
        "HASHHUB_HOST": "127.0.0.1",
        "HASHHUB_PORT": str(port),
        "HASHHUB_TRUSTED_PROXIES": PROXY,
        "HASHHUB_WEB_RATE_BURST": "3",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(HASHHUB), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield Served(f"http://127.0.0.1:{port}", log, home)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text(encoding="utf-8", errors="replace")


@asynccontextmanager
async def person(
    local: str, headers: dict[str, str] | None = None
) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(local_addr=(local, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        yield session


async def wait_until_up(served: Served) -> None:
    deadline = time.monotonic() + START_DEADLINE
    async with person(CONTROL) as session:
        while True:
            try:
                async with session.get(f"{served.url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            log = served.log.read_text(encoding="utf-8", errors="replace")
            assert time.monotonic() < deadline, f"hashhub serve did not come up:\n{log}"
            await asyncio.sleep(0.1)


@dataclass
class Trail:
    """What the people of the run sent and were given: none of it may be kept."""

    cases: list[str] = field(default_factory=list)  # as shown: grouped
    hashes: list[bytes] = field(default_factory=list)

    def words(self) -> dict[str, str]:
        found = {f"address {a}": a for a in PEOPLE}
        for case in self.cases:
            found[f"case {case}"] = case
            found[f"case {case} ungrouped"] = case.replace("-", "")
        for value in self.hashes:
            found[f"hash {value.hex()}"] = value.hex()
            found[f"hash {value.hex()} upper"] = value.hex().upper()
        return found


async def visit(session: aiohttp.ClientSession, url: str, trail: Trail) -> None:
    """One person's visit: every public page, two submissions, their cases looked up."""
    for path in (
        "/",
        "/submit",
        "/case",
        "/static/hub.css",
        "/static/hashhub.css",
        "/static/submit.js",
        "/static/hashing/pdq.js",
        "/static/hashing/md5.js",
    ):
        async with session.get(f"{url}{path}") as response:
            assert response.status == 200, path
            await response.read()
    picture, video = secrets.token_bytes(32), secrets.token_bytes(16)
    for form in (
        {"type": "pdq", "hash": picture.hex(), "quality": "90"},
        {"type": "md5", "hash": video.hex()},
    ):
        async with session.post(f"{url}/submit", data=form) as response:
            page = await response.text()
            assert response.status == 200, page
            trail.cases.append(case_number(page))
    trail.hashes += [picture, video]
    mine = trail.cases[-2:]
    for case in (mine[0], mine[1].replace("-", "")):
        async with session.post(f"{url}/case", data={"case": case}) as response:
            page = await response.text()
            assert response.status == 200, page
            assert "waiting for review" in page
    # A case number pasted into the URL, a refused form, and the submit bucket's 429.
    async with session.get(f"{url}/case/{mine[0]}") as response:
        assert response.status == 404
    async with session.post(f"{url}/submit", data={"type": "md5", "hash": "zz"}) as response:
        assert response.status == 400
    async with session.post(f"{url}/submit", data={"type": "md5", "hash": "ab" * 16}) as response:
        assert response.status == 429
        assert "Retry-After" in response.headers


def tables(database: Path) -> dict[str, list[str]]:
    """Every row of every table, each row as the text of its values (bytes as hex)."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        names = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        dump: dict[str, list[str]] = {}
        for name in names:
            rows = connection.execute(f'SELECT * FROM "{name}"').fetchall()
            dump[name] = [
                " ".join(v.hex() if isinstance(v, bytes) else str(v) for v in row) for row in rows
            ]
        return dump
    finally:
        connection.close()


async def test_the_public_pages_leave_no_address_and_no_case_in_any_log_table_or_file(
    tmp_path: Path,
) -> None:
    trail = Trail()
    with hashhub_serve(tmp_path) as served:
        await wait_until_up(served)
        async with person(DIRECT) as session:
            await visit(session, served.url, trail)
        async with person(PROXY, {"X-Forwarded-For": FORWARDED}) as session:
            await visit(session, served.url, trail)
        async with person(CONTROL) as session, session.get(f"{served.url}/healthz") as response:
            assert response.status == 200
    assert len(trail.cases) == 4

    # -- the log ------------------------------------------------------------------------
    log = served.log.read_text(encoding="utf-8", errors="replace").splitlines()
    # The log is really at DEBUG and the access log really writes: the control line.
    assert any(" DEBUG " in line for line in log), log
    assert any(
        "aiohttp.access" in line and CONTROL in line and "/healthz" in line for line in log
    ), log
    words = trail.words()
    found = [f"{what} in: {line}" for line in log for what, word in words.items() if word in line]
    assert not found, "\n".join(found)
    public = [line for line in log if re.search(r"/(submit|case|static)\b", line)]
    assert not public, "\n".join(public)

    # -- the database -------------------------------------------------------------------
    dump = tables(served.home / "hub.db")
    for table, rows in dump.items():
        for row in rows:
            for what, word in words.items():
                if table == "submissions" and not what.startswith("address"):
                    continue  # the case itself
                assert word.lower() not in row.lower(), f"{what} in table {table}: {row}"
    connection = sqlite3.connect(f"file:{served.home / 'hub.db'}?mode=ro", uri=True)
    try:
        received = [r[0] for r in connection.execute("SELECT received FROM submissions")]
    finally:
        connection.close()
    assert len(received) == 4
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", day) for day in received), received

    # -- the disk -----------------------------------------------------------------------
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for address in PEOPLE:
            assert address.encode() not in data, f"{address} in {path}"


async def test_a_bug_on_a_public_page_is_logged_without_what_the_person_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The traceback of a bug on ``POST /submit`` keeps its frames, not its message.

    A fault is injected where the handler has just stored the case: grouping the
    case number for the answer raises an error whose message holds the number, as
    a careless ``raise ValueError(f"... {value}")`` would.
    """
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "hub"
    init_web_hub(home)

    def broken(case: str) -> str:
        raise ValueError(f"cannot group {case}")

    monkeypatch.setattr(hub.web.pages, "group_case", broken)
    value = secrets.token_bytes(16)
    server = TestServer(create_app(home, schedule=False), host="127.0.0.1")
    # As ``hub.app.run`` serves it: the access log is the hub's own.
    await server.start_server(
        access_log_class=ClientAccessLogger, access_log_format=ACCESS_LOG_FORMAT
    )
    async with TestClient(server) as client:
        response = await client.post("/submit", data={"type": "md5", "hash": value.hex()})
        assert response.status == 500
        assert "Something went wrong on our side" in await response.text()
    connection = sqlite3.connect(home / "hub.db")
    try:
        [(case,)] = connection.execute("SELECT case_number FROM submissions").fetchall()
    finally:
        connection.close()
    records = [r for r in caplog.records if r.name == "hashhub.http"]
    assert len(records) == 1
    formatted = logging.Formatter("%(name)s %(levelname)s %(message)s").format(records[0])
    assert records[0].levelno == logging.ERROR
    assert "unhandled error answering POST /submit" in formatted
    assert "ValueError" in formatted  # the type and the frames are kept
    assert "in broken" in formatted
    everything = "\n".join(
        logging.Formatter("%(message)s").format(r) + repr(r.args) for r in caplog.records
    )
    for word in (case, value.hex(), "127.0.0.1"):
        assert word not in everything, word


def test_the_unlogged_paths_are_the_public_pages_and_nothing_else(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    init_web_hub(home)
    app = create_app(home, schedule=False)
    public = {
        "page:home",
        "page:submit",
        "page:case",
        "page:withdraw",
        "page:static",
        "page:stylesheet",
    }
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or info.get("prefix", "")
        names = {route.name for route in resource}
        assert is_public_page(str(path)) == bool(names & public), (path, names)
    for path in ("//submit", "/case/1a2b-3c4d", "/static/hashing/pdq.js", "/", "///"):
        assert is_public_page(path), path
    for path in ("/login", "/dashboard", "/healthz", "/lists/x/checkpoint", "/submitted"):
        assert not is_public_page(path), path
