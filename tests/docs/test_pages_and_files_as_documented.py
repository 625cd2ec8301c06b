"""The documents say what the pages send and what ``init`` makes, and the code does it.

A review found documents that said one thing while the code did another: the hub
pages' docstring promised ``Referrer-Policy: no-referrer`` (``same-origin`` was
sent), the guide ``Cache-Control: no-store`` for every page (the static files
were ``no-cache``), and the participant guide a ``node.db`` of mode 0644 (it is
0600) in a home whose mode it did not state. Each test here reads the value from
the document and checks it against a real answer or a real file:

- every header value a document names for the hub's pages (``Referrer-Policy``,
  ``Cache-Control``) is the one every page answer, static files and error pages
  included, carries; the same for the node's status page;
- every section of the dashboard (``/dashboard/lists`` and the rest) is named in
  the operator guide and in ``hub/web/pages.py``, and every ``/dashboard``
  address they name is one the hub serves;
- the mode of each file in the participant guide's table is the mode of that
  file after a real ``hashhub-node init`` (and ``token set``), the home included.
"""

from __future__ import annotations

import inspect
import re
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

import hub.web.pages
import node.web.pages
from hub.app import create_app
from tests.node.fixtures_sync import HubApp
from tests.web.hub_support import Client, init_web_hub
from tests.web.node_support import start_hub, start_node_site

DOCS = Path(__file__).resolve().parents[2] / "docs"
OPERATOR_GUIDE = DOCS / "operator-guide.md"
PARTICIPANT_GUIDE = DOCS / "participant-guide.md"
ADR_14 = DOCS / "adr" / "0014-web-pages.md"
HASHHUB_NODE = Path(sys.executable).with_name("hashhub-node")

HEADERS = ("Referrer-Policy", "Cache-Control")


def named_values(text: str, header: str) -> set[str]:
    """Every value a text gives ``header`` as ``Header: value`` (code-quoted or not)."""
    return set(re.findall(rf"{header}: ([a-z-]+)", text))


def section(text: str, heading: str) -> str:
    """The part of a Markdown text from ``heading`` to the next heading of its level."""
    start = text.index(heading)
    level = heading.split(" ", 1)[0]
    end = text.find(f"\n{level} ", start + len(heading))
    return text[start : end if end >= 0 else None]


def hub_documents() -> dict[str, str]:
    """What documents the hub's pages: each must name both headers' values."""
    guide = OPERATOR_GUIDE.read_text(encoding="utf-8")
    return {
        "docs/operator-guide.md §8a": section(guide, "## 8a. "),
        "hub/web/pages.py": inspect.getdoc(hub.web.pages) or "",
    }


def node_documents() -> dict[str, str]:
    return {
        "docs/participant-guide.md": PARTICIPANT_GUIDE.read_text(encoding="utf-8"),
        "node/web/pages.py": inspect.getdoc(node.web.pages) or "",
    }


# -- the hub's pages ------------------------------------------------------------------------


@pytest.fixture
async def hub_client(tmp_path: Path) -> AsyncIterator[Client]:
    home = tmp_path / "hub"
    init_web_hub(home)
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as c:
        yield c


HUB_PAGES = [
    ("GET", "/", None),
    ("GET", "/submit", None),
    ("GET", "/case", None),
    ("POST", "/case", {"case": "0" * 32}),  # an error page: no such case
    ("GET", "/login", None),
    ("GET", "/dashboard", None),  # a redirect to the login page
    *[("GET", f"/dashboard/{name}", None) for name, _ in hub.web.pages.SECTIONS],
    ("GET", "/static/hashhub.css", None),
    ("GET", "/static/hub.css", None),
    ("GET", "/static/submit.js", None),
    ("GET", "/static/hashing/pdq.js", None),
    ("GET", "/static/dashboard.js", None),
    ("GET", "/static/no-such-file.js", None),
]


async def hub_answers(client: Client) -> dict[str, dict[str, str]]:
    """The two headers of every kind of page answer, by request."""
    found = {}
    for method, path, form in HUB_PAGES:
        response = await client.request(method, path, data=form, allow_redirects=False)
        await response.read()
        found[f"{method} {path} ({response.status})"] = {
            header: response.headers.get(header, "") for header in HEADERS
        }
    return found


async def test_every_hub_page_answer_carries_the_documented_headers(hub_client: Client) -> None:
    answers = await hub_answers(hub_client)
    for header in HEADERS:
        sent = {values[header] for values in answers.values()}
        assert len(sent) == 1, f"{header} differs between pages: {answers}"
        [value] = sent
        for name, text in hub_documents().items():
            named = named_values(text, header)
            assert named, f"{name} does not say which {header} the pages send"
            assert named == {value}, f"{name} says {header}: {named}; the pages send {value}"
        adr = named_values(ADR_14.read_text(encoding="utf-8"), header)
        assert adr <= {value}, f"ADR 14 says {header}: {adr}; the pages send {value}"
    assert {v["Referrer-Policy"] for v in answers.values()} == {"same-origin"}
    assert {v["Cache-Control"] for v in answers.values()} == {"no-store"}


def test_the_hub_pages_meta_referrer_is_the_header() -> None:
    base = (Path(hub.web.pages.__file__).parent / "templates" / "base.html").read_text()
    assert '<meta name="referrer" content="same-origin">' in base
    assert hub.web.pages._PAGE_HEADERS["Referrer-Policy"] == "same-origin"


def hub_page_paths(home: Path) -> set[str]:
    """The path of every HTML route of a hub (``page:`` routes), as routed."""
    init_web_hub(home)
    paths = set()
    for resource in create_app(home, schedule=False).router.resources():
        names = {route.name or "" for route in resource}
        if any(n.startswith(hub.web.pages.PAGE_ROUTE_PREFIX) for n in names):
            info = resource.get_info()
            paths.add(str(info.get("path") or info.get("formatter") or info.get("prefix", "")))
    return paths


def test_every_dashboard_section_is_documented_and_every_documented_one_exists(
    tmp_path: Path,
) -> None:
    routed = {p for p in hub_page_paths(tmp_path / "hub") if p.startswith("/dashboard")}
    sections = {f"/dashboard/{name}" for name, _ in hub.web.pages.SECTIONS}
    assert sections <= routed
    for name, text in hub_documents().items():
        named = set(re.findall(r"`(?:(?:GET|POST) )?(/dashboard(?:/[a-z{}]+)*)`", text))
        missing = ({"/dashboard"} | sections) - named
        assert not missing, f"{name} does not document {sorted(missing)}"
        unknown = named - routed
        assert not unknown, f"{name} documents {sorted(unknown)}, which the hub does not serve"


def test_no_hub_document_says_static_files_are_no_cache() -> None:
    for name, text in {**hub_documents(), "ADR 14": ADR_14.read_text(encoding="utf-8")}.items():
        assert "no-cache" not in text, name


# -- the node's status page -----------------------------------------------------------------


@pytest.fixture
async def node_client(tmp_path: Path) -> AsyncIterator[Client]:
    hub_app: HubApp = await start_hub(tmp_path / "hub")
    try:
        client = await start_node_site(tmp_path / "node", hub_app, synced=False)
        try:
            yield client
        finally:
            await client.close()
    finally:
        await hub_app.stop()


async def test_every_node_page_answer_carries_the_documented_headers(node_client: Client) -> None:
    answers = {}
    for method, path, form in [
        ("GET", "/status/", None),
        ("GET", "/status/login", None),
        ("POST", "/status/login", {"token": "hhl_wrong"}),
        ("GET", "/status/static/hashhub.css", None),
        ("GET", "/status/static/node.css", None),
        ("GET", "/status/no-such-page", None),
    ]:
        response = await node_client.request(method, path, data=form, allow_redirects=False)
        await response.read()
        answers[f"{method} {path} ({response.status})"] = {
            header: response.headers.get(header, "") for header in HEADERS
        }
    for header in HEADERS:
        sent = {values[header] for values in answers.values()}
        assert len(sent) == 1, f"{header} differs between pages: {answers}"
        [value] = sent
        for name, text in node_documents().items():
            named = named_values(text, header)
            assert named, f"{name} does not say which {header} the status page sends"
            assert named == {value}, f"{name} says {header}: {named}; the page sends {value}"
    assert {v["Referrer-Policy"] for v in answers.values()} == {"no-referrer"}


# -- the node's files -----------------------------------------------------------------------


def documented_modes() -> dict[str, int]:
    """The participant guide's table of what ``init`` made: file name → mode."""
    guide = PARTICIPANT_GUIDE.read_text(encoding="utf-8")
    table = guide[guide.index("| file | mode | is |") :]
    table = table[: table.index("\n\n")]
    rows = re.findall(r"(?m)^\| `([^`]+)` \| (0[0-7]{3}) \|", table)
    assert rows, "the participant guide has no table of file modes"
    return {name: int(mode, 8) for name, mode in rows}


def test_init_makes_every_file_with_the_mode_the_guide_states(tmp_path: Path) -> None:
    home = tmp_path / "node"
    init = subprocess.run(
        [
            str(HASHHUB_NODE),
            "init",
            "--home",
            str(home),
            "--hub",
            "http://127.0.0.1:9",
            "--node-id",
            "platform-a",
            "--lists",
            "tid-md5",
            "--pin",
            "ab" * 32,
        ],
        capture_output=True,
        text=True,
        umask=0o022,  # the usual umask, which the guide's 0644 assumes
        check=False,
    )
    assert init.returncode == 0, init.stderr
    token = subprocess.run(
        [str(HASHHUB_NODE), "token", "set", "-", "--home", str(home)],
        input="hhn_" + "x" * 40 + "\n",
        capture_output=True,
        text=True,
        umask=0o022,
        check=False,
    )
    assert token.returncode == 0, token.stderr

    documented = documented_modes()
    actual = {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in home.iterdir()
        if not path.name.endswith(("-wal", "-shm"))  # SQLite's, with the database's mode
    }
    actual[f"{home.name}/"] = stat.S_IMODE(home.stat().st_mode)
    assert {f"{home.name}/": 0o700, "node.db": 0o600} == {
        k: documented[k] for k in (f"{home.name}/", "node.db")
    }
    assert {k: oct(v) for k, v in actual.items()} == {k: oct(v) for k, v in documented.items()}
    for path in home.iterdir():  # SQLite's own files, if any are left, as private
        if path.name.startswith("node.db-"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
