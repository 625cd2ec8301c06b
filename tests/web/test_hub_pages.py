"""The hub's HTML pages over HTTP (no browser): every input rule, login, CSRF, roles, limits.

The real hub app on loopback with a real hub home; each rule is one test, and each
refusal also checks that nothing was stored.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import create_app
from hub.core import Hub, utcnow
from hub.intake import Intake
from hub.web.limits import RateLimiter
from hub.web.pages import LOGIN_COOKIE, SECTIONS, SESSION_COOKIE, SUBMIT_FORM_BYTES
from protocol import Counts, SigningKey
from tests.hub.conftest import Follower, ack_headers
from tests.web.hub_support import (
    MD5_LIST,
    PDQ_LIST,
    PLACEHOLDER_MD5,
    Client,
    OperatorSession,
    case_number,
    form_token,
    init_web_hub,
    operator_token,
    self_signed_tls,
)

PDQ_HEX = "f" * 32 + "0" * 32
MD5_HEX = "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One hub initialised per module (keys, lists, a publish), copied for each test."""
    path = tmp_path_factory.mktemp("template") / "hub"
    init_web_hub(path)
    return path


@pytest.fixture
def home(tmp_path: Path, initialised: Path) -> Path:
    return Path(shutil.copytree(initialised, tmp_path / "hub"))


@pytest.fixture
async def client(home: Path) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as c:
        yield c


def rows(home: Path, table: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(home / "hub.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        conn.close()


def version_of(home: Path, list_id: str) -> int:
    [row] = [r for r in rows(home, "lists") if r["id"] == list_id]
    return int(row["version"])


async def submit(client: Client, **fields: str) -> tuple[int, str]:
    response = await client.post("/submit", data=fields)
    return response.status, await response.text()


def assert_html_error(status: int, text: str, expected: int) -> None:
    assert status == expected, text
    assert text.lstrip().startswith("<!doctype html>")
    assert f"Error {expected}" in text


# -- the submission page ------------------------------------------------------------------


async def test_the_submission_page_can_never_send_the_file(client: Client) -> None:
    response = await client.get("/submit")
    assert response.status == 200
    page = await response.text()
    [file_input] = re.findall(r"<input[^>]*type=\"file\"[^>]*>", page)
    assert "name=" not in file_input
    form = re.search(r'<form method="post" action="/submit".*?</form>', page, re.S)
    assert form is not None
    assert 'type="file"' not in form.group(0)
    assert "enctype" not in form.group(0)  # urlencoded: a form that cannot carry a file
    assert set(re.findall(r'name="([^"]+)"', form.group(0))) == {"type", "hash", "quality"}
    scripts = ("pdq.js", "vpdq.js", "md5.js")
    for script in (*(f"/static/hashing/{name}" for name in scripts), "/static/submit.js"):
        assert f'src="{script}"' in page
        assert (await client.get(script)).status == 200
    assert "never leaves this device" in page


async def test_a_picture_hash_gets_a_128_bit_case_number_and_nothing_else_is_stored(
    client: Client, home: Path
) -> None:
    status, page = await submit(client, type="pdq", hash=PDQ_HEX.upper(), quality="87")
    assert status == 200, page
    shown = case_number(page)
    assert re.fullmatch(r"([0-9a-f]{4}-){7}[0-9a-f]{4}", shown)
    [stored] = rows(home, "submissions")
    assert stored["case_number"] == shown.replace("-", "")
    assert (stored["hash_type"], bytes(stored["hash"]).hex(), stored["quality"]) == (
        "pdq",
        PDQ_HEX,
        87,
    )
    assert stored["status"] == "received"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", stored["received"])  # the day, not the second
    assert set(stored) == {
        "case_number",
        "hash_type",
        "hash",
        "quality",
        "status",
        "received",
        "reviewed",
        "reviewer",
        "list_id",
        "withdrawal_code",  # the SHA-256 of a random code, never the code (m008)
        "entry_id",
        "withdrawal",
        "withdrawal_requested",
        "withdrawal_decided",
    }


async def test_a_video_hash_is_an_md5_without_quality(client: Client, home: Path) -> None:
    status, page = await submit(client, type="md5", hash=MD5_HEX, quality="")
    assert status == 200, page
    [stored] = rows(home, "submissions")
    assert (stored["hash_type"], stored["quality"]) == ("md5", None)


async def test_two_submissions_get_unrelated_case_numbers(client: Client) -> None:
    numbers = {case_number((await submit(client, type="md5", hash=MD5_HEX))[1]) for _ in range(3)}
    assert len(numbers) == 3


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"type": "pdq", "hash": "zz" * 32, "quality": "90"}, "not a pdq hash"),
        ({"type": "pdq", "hash": PDQ_HEX[:-2], "quality": "90"}, "not a pdq hash"),
        ({"type": "md5", "hash": PDQ_HEX}, "not a md5 hash"),
        ({"type": "sha256", "hash": PDQ_HEX}, "choose a picture"),
        ({"type": "phash", "hash": "ab" * 8}, "choose a picture"),
        ({"hash": PDQ_HEX, "quality": "90"}, "choose a picture"),
        ({"type": "pdq", "hash": PDQ_HEX}, "quality is a whole number"),
        ({"type": "pdq", "hash": PDQ_HEX, "quality": "101"}, "quality is a whole number"),
        ({"type": "pdq", "hash": PDQ_HEX, "quality": "-1"}, "quality is a whole number"),
        ({"type": "pdq", "hash": PDQ_HEX, "quality": "49"}, "below 50"),
        ({"type": "md5", "hash": MD5_HEX, "quality": "80"}, "has no quality"),
        ({"type": "md5", "hash": MD5_HEX, "name": "Alice"}, "unexpected form field"),
        ({"type": "md5", "hash": MD5_HEX, "email": "a@example.org"}, "unexpected form field"),
    ],
    ids=[
        "not-hex",
        "short-pdq",
        "pdq-width-as-md5",
        "sha256-type",
        "phash-type",
        "no-type",
        "pdq-without-quality",
        "quality-over-100",
        "negative-quality",
        "low-quality",
        "md5-with-quality",
        "a-name",
        "an-email",
    ],
)
async def test_a_bad_submission_is_a_400_page_and_nothing_is_stored(
    client: Client, home: Path, fields: dict[str, str], expected: str
) -> None:
    status, page = await submit(client, **fields)
    assert_html_error(status, page, 400)
    assert expected in page
    assert rows(home, "submissions") == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"type": "pdq", "hash": "0" * 64, "quality": "100"},
            "PDQ hash has 0 of 256 bits set; a hash from the reference hasher has about 128",
        ),
        ({"type": "pdq", "hash": "f" * 64, "quality": "100"}, "PDQ hash has 256 of 256 bits set"),
        ({"type": "pdq", "hash": "01" * 32, "quality": "100"}, "PDQ hash has 32 of 256 bits set"),
        ({"type": "pdq", "hash": "0" * 64, "quality": "10"}, "PDQ hash has 0 of 256 bits set"),
        ({"type": "md5", "hash": "0" * 32}, "MD5 hash is all zeros"),
        ({"type": "md5", "hash": "d41d8cd98f00b204e9800998ecf8427e"}, "digest of an empty file"),
    ],
    ids=[
        "pdq-zero-q100",
        "pdq-ones-q100",
        "pdq-32-bits-q100",
        "pdq-zero-q10",
        "md5-zero",
        "md5-empty",
    ],
)
async def test_a_degenerate_hash_is_refused_whatever_quality_the_browser_claims(
    client: Client, home: Path, fields: dict[str, str], expected: str
) -> None:
    """The quality is the browser's claim; the hub checks the hash itself whatever it says."""
    status, page = await submit(client, **fields)
    assert_html_error(status, page, 400)
    assert expected in page
    assert "refused as degenerate" in page
    assert rows(home, "submissions") == []


async def test_a_field_sent_twice_is_refused(client: Client, home: Path) -> None:
    body = f"type=md5&hash={MD5_HEX}&hash={'1' * 32}"
    response = await client.post(
        "/submit", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_html_error(response.status, await response.text(), 400)
    assert rows(home, "submissions") == []


async def test_a_file_upload_is_refused_unread(client: Client, home: Path) -> None:
    picture = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "pdq"
    data = next(picture.rglob("*.jpg")).read_bytes()[:4000]
    boundary = "hashhubtest"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="type"\r\n\r\npdq\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = await client.post(
        "/submit",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_html_error(response.status, await response.text(), 415)
    assert rows(home, "submissions") == []


async def test_an_oversize_form_is_a_413_page(client: Client, home: Path) -> None:
    body = f"type=md5&hash={MD5_HEX}&quality=" + "0" * SUBMIT_FORM_BYTES
    response = await client.post(
        "/submit", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    page = await response.text()
    assert_html_error(response.status, page, 413)
    assert "a video is sent as at most 3600 frames" in page
    assert rows(home, "submissions") == []


async def test_a_post_from_another_site_is_refused(client: Client, home: Path) -> None:
    response = await client.post(
        "/submit",
        data={"type": "md5", "hash": MD5_HEX},
        headers={"Origin": "https://elsewhere.example"},
    )
    assert_html_error(response.status, await response.text(), 403)
    assert rows(home, "submissions") == []


async def test_submissions_past_the_burst_are_429_with_retry_after(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    init_web_hub(home, web_rate_burst=2, web_rate_per_hour=60)
    app = create_app(home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for _ in range(2):
            assert (await submit(client, type="md5", hash=MD5_HEX))[0] == 200
        response = await client.post("/submit", data={"type": "md5", "hash": MD5_HEX})
        assert_html_error(response.status, await response.text(), 429)
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        lookup = await client.post("/case", data={"case": "0" * 32})
        assert lookup.status == 404  # case lookup has an allowance of its own
    assert len(rows(home, "submissions")) == 2


def test_the_bucket_refills_at_its_rate_and_keeps_clients_apart() -> None:
    now = [0.0]
    limiter = RateLimiter(burst=2, per_hour=3600, clock=lambda: now[0])  # one a second
    assert [limiter.take("a"), limiter.take("a")] == [0, 0]
    assert limiter.take("a") == 1
    assert limiter.take("b") == 0  # another address has its own bucket
    now[0] += 1.0
    assert limiter.take("a") == 0
    assert limiter.take("a") == 1
    now[0] += 10.0
    assert [limiter.take("a"), limiter.take("a"), limiter.take("a")] == [0, 0, 1]  # capped


def test_the_bucket_table_stays_bounded() -> None:
    limiter = RateLimiter(burst=1, per_hour=1, max_clients=3, clock=lambda: 0.0)
    for i in range(10):
        assert limiter.take(f"client-{i}") == 0
    assert len(limiter._buckets) <= 3


# -- case lookup --------------------------------------------------------------------------


async def test_a_case_is_found_by_its_number_typed_any_way(client: Client) -> None:
    shown = case_number((await submit(client, type="md5", hash=MD5_HEX))[1])
    for typed in (shown, shown.upper(), shown.replace("-", ""), shown.replace("-", " ")):
        response = await client.post("/case", data={"case": typed})
        page = await response.text()
        assert response.status == 200, page
        assert "Received — waiting for review." in page
    lookup_form = await (await client.get("/case")).text()
    assert 'method="post" action="/case"' in lookup_form  # the number never goes in a URL


async def test_an_unknown_case_is_a_404_page(client: Client) -> None:
    response = await client.post("/case", data={"case": "ab" * 16})
    page = await response.text()
    assert_html_error(response.status, page, 404)
    assert "no case has that number" in page


async def test_a_malformed_case_number_is_a_400_page(client: Client) -> None:
    response = await client.post("/case", data={"case": "../../etc/passwd"})
    assert_html_error(response.status, await response.text(), 400)


# -- login and sessions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/dashboard"),
        *[("GET", f"/dashboard/{name}") for name, _ in SECTIONS],
        ("POST", "/dashboard/publish"),
        ("POST", f"/dashboard/cases/{'ab' * 16}/review"),
        ("POST", "/logout"),
    ],
)
async def test_not_logged_in_redirects_to_the_login_page(
    client: Client, home: Path, method: str, path: str
) -> None:
    response = await client.request(method, path, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login"
    assert version_of(home, PDQ_LIST) == 1


async def test_login_sets_a_strict_httponly_session_cookie_kept_hashed(
    client: Client, home: Path
) -> None:
    page = await client.get("/login")
    nonce = form_token(await page.text())
    response = await client.post(
        "/login",
        data={"token": operator_token(home, "viewer"), "csrf": nonce},
        allow_redirects=False,
    )
    assert response.status == 303
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert not cookie["secure"]  # served over plain http here; over https it is Secure
    [session] = rows(home, "web_sessions")
    assert cookie.value not in session.values()  # only its SHA-256 is stored
    assert rows(home, "actions")[-1]["action"] == "web.login"


async def test_over_https_the_session_cookie_is_secure(tmp_path: Path, home: Path) -> None:
    server = TestServer(create_app(home, schedule=False), host="127.0.0.1")
    await server.start_server(ssl=self_signed_tls(tmp_path))
    async with TestClient(server, connector=aiohttp.TCPConnector(ssl=False)) as client:
        assert str(client.make_url("/")).startswith("https://")
        page = await client.get("/login")
        assert page.cookies[LOGIN_COOKIE]["secure"] is True
        response = await client.post(
            "/login",
            data={"token": operator_token(home, "viewer"), "csrf": form_token(await page.text())},
            allow_redirects=False,
        )
        assert response.status == 303
        assert response.cookies[SESSION_COOKIE]["secure"] is True


@pytest.mark.parametrize("token", ["hho_not-a-token", ""])
async def test_a_wrong_token_is_refused_without_a_session(
    client: Client, home: Path, token: str
) -> None:
    page = await client.get("/login")
    response = await client.post(
        "/login", data={"token": token, "csrf": form_token(await page.text())}
    )
    assert response.status == 401
    assert SESSION_COOKIE not in response.cookies
    assert rows(home, "web_sessions") == []
    assert (await client.get("/dashboard", allow_redirects=False)).status == 303


async def test_a_node_token_does_not_open_the_dashboard(client: Client, home: Path) -> None:
    hub = Hub.open(home)
    try:
        node_token = hub.access.enrol_node("platform-a", SigningKey.generate().public, [PDQ_LIST])
    finally:
        hub.close()
    page = await client.get("/login")
    response = await client.post(
        "/login", data={"token": node_token, "csrf": form_token(await page.text())}
    )
    assert response.status == 401
    assert rows(home, "web_sessions") == []


@pytest.mark.parametrize("nonce", [None, "forged"])
async def test_a_login_without_the_forms_nonce_is_403(
    client: Client, home: Path, nonce: str | None
) -> None:
    await client.get("/login")  # sets the nonce cookie
    data = {"token": operator_token(home, "admin")}
    if nonce is not None:
        data["csrf"] = nonce
    response = await client.post("/login", data=data)
    assert_html_error(response.status, await response.text(), 403)
    assert rows(home, "web_sessions") == []


async def test_a_login_from_a_page_that_set_no_nonce_cookie_is_403(
    client: Client, home: Path
) -> None:
    page = await client.get("/login")
    nonce = form_token(await page.text())
    client.session.cookie_jar.clear(lambda cookie: cookie.key == LOGIN_COOKIE)
    response = await client.post(
        "/login", data={"token": operator_token(home, "admin"), "csrf": nonce}
    )
    assert_html_error(response.status, await response.text(), 403)


async def test_logout_ends_the_session(client: Client, home: Path) -> None:
    session = await OperatorSession.login(client, operator_token(home, "viewer"))
    response = await session.post("/logout")
    assert response.status == 303
    assert rows(home, "web_sessions") == []
    assert (await client.get("/dashboard", allow_redirects=False)).status == 303
    assert rows(home, "actions")[-1]["action"] == "web.logout"


async def test_revoking_the_token_ends_its_sessions(client: Client, home: Path) -> None:
    await OperatorSession.login(client, operator_token(home, "viewer", "carol"))
    hub = Hub.open(home)
    try:
        hub.access.revoke_operator_tokens("carol")
    finally:
        hub.close()
    response = await client.get("/dashboard", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login"


async def test_an_expired_session_is_logged_out(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    init_web_hub(home, web_session_seconds=60)
    clock = [utcnow()]
    app = create_app(home, schedule=False, now=lambda: clock[0])
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        await OperatorSession.login(client, operator_token(home, "viewer"))
        clock[0] += timedelta(seconds=61)
        response = await client.get("/dashboard", allow_redirects=False)
        assert response.status == 303


# -- CSRF and roles -----------------------------------------------------------------------


@pytest.mark.parametrize("csrf", [None, "", "wrong-token"])
async def test_a_dashboard_post_without_the_right_csrf_token_is_403(
    client: Client, home: Path, csrf: str | None
) -> None:
    session = await OperatorSession.login(client, operator_token(home, "admin"))
    hub = Hub.open(home)
    try:
        hub.lists.stage(MD5_LIST, adds=[Intake(bytes.fromhex(MD5_HEX))])
    finally:
        hub.close()
    data = {"list": MD5_LIST} if csrf is None else {"list": MD5_LIST, "csrf": csrf}
    response = await client.post("/dashboard/publish", data=data, allow_redirects=False)
    assert_html_error(response.status, await response.text(), 403)
    assert "security token" in await response.text()
    assert version_of(home, MD5_LIST) == 1
    assert (await session.post("/dashboard/publish", list=MD5_LIST)).status == 303
    assert version_of(home, MD5_LIST) == 2  # the same form with the session's token works


async def test_another_sessions_csrf_token_is_refused(client: Client, home: Path) -> None:
    first = await OperatorSession.login(client, operator_token(home, "admin", "ann"))
    await OperatorSession.login(client, operator_token(home, "admin", "bob"))  # new cookie
    response = await first.post("/dashboard/publish")
    assert response.status == 403


async def test_a_viewer_reads_the_dashboard_but_may_not_publish_or_review(
    client: Client, home: Path
) -> None:
    shown = case_number((await submit(client, type="md5", hash=MD5_HEX))[1])
    session = await OperatorSession.login(client, operator_token(home, "viewer"))
    page = await (await client.get("/dashboard/review")).text()
    assert f'<span class="token case">{shown}</span>' in page  # the queue is visible
    assert "/review" not in page.replace('href="/dashboard/review"', "")  # but no decision
    assert "<form" not in page[page.index('id="queue"') :]
    lists = await (await client.get("/dashboard/lists")).text()
    assert 'id="staged"' in lists
    assert 'action="/dashboard/publish"' not in lists  # nor publishing
    published = await session.post("/dashboard/publish")
    assert_html_error(published.status, await published.text(), 403)
    reviewed = await session.post(
        f"/dashboard/cases/{shown.replace('-', '')}/review", decision="reject"
    )
    assert_html_error(reviewed.status, await reviewed.text(), 403)
    [case] = rows(home, "submissions")
    assert case["status"] == "received"


async def test_a_publisher_publishes_staged_changes_from_the_dashboard(
    client: Client, home: Path
) -> None:
    session = await OperatorSession.login(client, operator_token(home, "publisher", "pat"))
    nothing = await session.post("/dashboard/publish", list="")
    assert nothing.headers["Location"] == "/dashboard/lists?notice=nothing"
    hub = Hub.open(home)
    try:
        hub.lists.stage(MD5_LIST, adds=[Intake(bytes.fromhex(MD5_HEX))])
    finally:
        hub.close()
    page = await (await client.get("/dashboard/lists")).text()
    staged = page[page.index('id="staged"') :]
    assert f'<span class="token hash">{MD5_HEX}</span>' in staged  # listed, whole
    assert 'action="/dashboard/publish"' in staged
    response = await session.post("/dashboard/publish", list=MD5_LIST)
    assert response.headers["Location"] == "/dashboard/lists?notice=published"
    back = await (await client.get(response.headers["Location"])).text()
    assert '<p class="notice" role="status">Published.</p>' in back
    assert f'<tr id="list-{MD5_LIST}">' in back
    assert "Nothing staged." in back
    assert version_of(home, MD5_LIST) == 2
    publish = [a for a in rows(home, "actions") if a["action"] == "publish"][-1]
    assert publish["who"] == "pat"
    unknown = await session.post("/dashboard/publish", list="no-such-list")
    assert_html_error(unknown.status, await unknown.text(), 404)


# -- reviewing cases ----------------------------------------------------------------------


async def test_accepting_a_case_stages_its_hash_with_the_case_as_provenance(
    client: Client, home: Path
) -> None:
    shown = case_number((await submit(client, type="pdq", hash=PDQ_HEX, quality="70"))[1])
    number = shown.replace("-", "")
    session = await OperatorSession.login(client, operator_token(home, "publisher", "pat"))
    response = await session.post(
        f"/dashboard/cases/{number}/review", decision="accept", list=PDQ_LIST
    )
    assert response.headers["Location"] == "/dashboard/review?notice=accepted"
    back = await (await client.get(response.headers["Location"])).text()
    assert "Case accepted: its hash is staged" in back
    assert 'aria-current="page">Review' in back  # back in the review section
    assert f'id="case-{number}"' not in back  # no longer waiting
    [staged] = rows(home, "staged")
    assert (staged["list_id"], bytes(staged["hash"]).hex(), staged["quality"]) == (
        PDQ_LIST,
        PDQ_HEX,
        70,
    )
    assert (staged["source"], staged["submission_id"], staged["who"]) == (
        "submission",
        number,
        "pat",
    )
    review = [a for a in rows(home, "actions") if a["action"] == "case.accept"]
    assert len(review) == 1
    assert number in review[0]["detail"]
    looked_up = await (await client.post("/case", data={"case": shown})).text()
    assert "it will be in the next version" in looked_up
    await session.post("/dashboard/publish", list=PDQ_LIST)
    looked_up = await (await client.post("/case", data={"case": shown})).text()
    assert "since version 2" in looked_up


async def test_rejecting_a_case_is_logged_and_shown_to_the_submitter(
    client: Client, home: Path
) -> None:
    shown = case_number((await submit(client, type="md5", hash=MD5_HEX))[1])
    session = await OperatorSession.login(client, operator_token(home, "admin", "root"))
    response = await session.post(
        f"/dashboard/cases/{shown.replace('-', '')}/review", decision="reject"
    )
    assert response.headers["Location"] == "/dashboard/review?notice=rejected"
    assert rows(home, "staged") == []
    assert [a["action"] for a in rows(home, "actions")][-1] == "case.reject"
    page = await (await client.post("/case", data={"case": shown})).text()
    assert "Not accepted" in page


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"decision": "accept", "list": MD5_LIST}, 400),  # a pdq case into an md5 list
        ({"decision": "accept"}, 400),  # no list
        ({"decision": "maybe"}, 400),
        ({"decision": "accept", "list": "no-such-list"}, 404),
    ],
    ids=["wrong-type-list", "no-list", "bad-decision", "unknown-list"],
)
async def test_a_bad_review_is_an_error_page_and_changes_nothing(
    client: Client, home: Path, fields: dict[str, str], status: int
) -> None:
    shown = case_number((await submit(client, type="pdq", hash=PDQ_HEX, quality="70"))[1])
    session = await OperatorSession.login(client, operator_token(home, "publisher"))
    response = await session.post(f"/dashboard/cases/{shown.replace('-', '')}/review", **fields)
    assert_html_error(response.status, await response.text(), status)
    assert rows(home, "staged") == []
    assert rows(home, "submissions")[0]["status"] == "received"


async def test_a_degenerate_case_from_before_the_rule_cannot_be_accepted_but_can_be_rejected(
    client: Client, home: Path
) -> None:
    number = "ab" * 16
    conn = sqlite3.connect(home / "hub.db")
    with conn:  # a case stored by a hub from before the rule
        conn.execute(
            "INSERT INTO submissions (case_number, hash_type, hash, quality, status, received) "
            "VALUES (?, 'pdq', ?, 100, 'received', '2030-01-01')",
            [number, bytes(32)],
        )
    conn.close()
    session = await OperatorSession.login(client, operator_token(home, "publisher"))
    path = f"/dashboard/cases/{number}/review"
    response = await session.post(path, decision="accept", list=PDQ_LIST)
    page = await response.text()
    assert_html_error(response.status, page, 400)
    assert "PDQ hash has 0 of 256 bits set" in page
    assert rows(home, "staged") == []
    assert rows(home, "submissions")[0]["status"] == "received"
    assert (await session.post(path, decision="reject")).status == 303
    assert rows(home, "submissions")[0]["status"] == "rejected"


async def test_a_case_is_reviewed_once(client: Client, home: Path) -> None:
    shown = case_number((await submit(client, type="md5", hash=MD5_HEX))[1])
    session = await OperatorSession.login(client, operator_token(home, "publisher"))
    path = f"/dashboard/cases/{shown.replace('-', '')}/review"
    assert (await session.post(path, decision="accept", list=MD5_LIST)).status == 303
    again = await session.post(path, decision="reject")
    assert_html_error(again.status, await again.text(), 409)
    assert rows(home, "submissions")[0]["status"] == "accepted"
    assert len(rows(home, "staged")) == 1


@pytest.mark.parametrize("case", ["ab" * 16, "not-a-case", "zz" * 16])
async def test_reviewing_an_unknown_case_is_a_404_page(
    client: Client, home: Path, case: str
) -> None:
    session = await OperatorSession.login(client, operator_token(home, "publisher"))
    response = await session.post(f"/dashboard/cases/{case}/review", decision="reject")
    assert_html_error(response.status, await response.text(), 404)


# -- what every page carries --------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/submit", "/case", "/login", "/dashboard", *[f"/dashboard/{name}" for name, _ in SECTIONS]],
)
async def test_every_page_has_the_security_headers(client: Client, home: Path, path: str) -> None:
    await OperatorSession.login(client, operator_token(home, "viewer"))
    response = await client.get(path)
    assert response.status == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "same-origin"
    page = await response.text()
    assert "<script>" not in page
    assert " style=" not in page
    assert "<style" not in page
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers either


async def test_the_json_api_keeps_its_error_shape_beside_the_pages(client: Client) -> None:
    response = await client.get("/v1/admin/status")
    assert response.status == 401
    assert response.content_type == "application/json"
    assert (await response.json())["error"]["code"] == "unauthorized"


async def test_page_text_is_escaped(client: Client, home: Path) -> None:
    response = await client.post("/case", data={"case": "<script>alert(1)</script>"})
    page = await response.text()
    assert "<script>alert" not in page


# -- the dashboard's contents -------------------------------------------------------------


async def test_the_dashboard_shows_nodes_stale_in_red_and_takedowns_from_acks(
    client: Client, home: Path
) -> None:
    key = SigningKey.generate()
    hub = Hub.open(home)
    try:
        token = hub.access.enrol_node("platform-a", key.public, [MD5_LIST])
        hub.access.enrol_node("platform-quiet", SigningKey.generate().public, [MD5_LIST])
        pinned = hub.keys.root_sha256(1)
    finally:
        hub.close()
    follower = Follower(client, pinned, token)
    await follower.update(MD5_LIST)
    for seq, (actioned, blocked) in enumerate([(1, 0), (3, 2)], start=1):
        data, sig = await follower.ack(
            key,
            MD5_LIST,
            seq,
            counts=Counts(checked=10, matched=5, actioned=actioned, blocked=blocked),
        )
        response = await client.post("/v1/acks", data=data, headers=ack_headers(token, sig))
        assert response.status == 200, await response.text()

    await OperatorSession.login(client, operator_token(home, "auditor"))
    page = await (await client.get("/dashboard/nodes")).text()
    node_rows = {
        name: (css, rest)
        for name, css, rest in re.findall(
            rf'<tr id="node-(platform-[a-z]+)-{MD5_LIST}" class="([^"]*)">(.*?)</tr>', page, re.S
        )
    }
    assert node_rows["platform-a"][0] == ""
    assert '<td class="state">ok</td>' in node_rows["platform-a"][1]
    assert node_rows["platform-quiet"][0] == "stale"
    assert '<td class="token last-ack">never</td>' in node_rows["platform-quiet"][1]
    assert '<td class="state">stale</td>' in node_rows["platform-quiet"][1]
    for name in ("platform-a", "platform-quiet"):  # one body of rows per node
        assert f'<tbody class="node" id="node-{name}">' in page
    assert '<span class="count alert">1</span>' in page  # the navigation counts the stale node
    overview = await (await client.get("/dashboard")).text()
    tile = overview[overview.index('id="tile-nodes"') : overview.index('id="tile-counts"')]
    assert '<p class="figure alert">2</p>' in tile
    assert "of 2 platforms; 1 stale on 1 list subscription." in tile  # each its own platform
    counts = await (await client.get("/dashboard/counts")).text()
    assert f"<title>{MD5_LIST}: 5</title></circle>" in counts  # the chart marks the total
    assert re.search(rf'<span class="mono">{MD5_LIST}</span>: 5</li>', counts)  # 3 + 2
    assert "5</p>" in overview[overview.index('id="tile-counts"') :]


async def test_per_hash_counts_show_the_flagged_hash_first(client: Client, home: Path) -> None:
    key = SigningKey.generate()
    busy, bad = MD5_HEX, PLACEHOLDER_MD5.hex()
    hub = Hub.open(home)
    try:
        hub.lists.stage(MD5_LIST, adds=[Intake(bytes.fromhex(busy))])
        hub.publishing.publish([MD5_LIST])
        token = hub.access.enrol_node("platform-a", key.public, [MD5_LIST])
        key_b = SigningKey.generate()
        token_b = hub.access.enrol_node("platform-b", key_b.public, [MD5_LIST])
        pinned = hub.keys.root_sha256(1)
    finally:
        hub.close()
    # A hash is flagged on reports from flag_min_nodes (2) nodes, each enough on its own.
    reports = [
        (
            "platform-a",
            key,
            token,
            {busy: {"matched": 40}, bad: {"matched": 3, "false_positive": 3}},
        ),
        ("platform-b", key_b, token_b, {bad: {"matched": 3, "false_positive": 3}}),
    ]
    for node_id, node_key, node_token, per_hash in reports:
        follower = Follower(client, pinned, node_token)
        await follower.update(MD5_LIST)
        counts = Counts(matched=sum(c["matched"] for c in per_hash.values()), hashes=per_hash)
        data, sig = await follower.ack(node_key, MD5_LIST, 1, node=node_id, counts=counts)
        response = await client.post("/v1/acks", data=data, headers=ack_headers(node_token, sig))
        assert response.status == 200, await response.text()

    await OperatorSession.login(client, operator_token(home, "viewer"))
    page = await (await client.get("/dashboard/counts")).text()
    section = page[page.index('id="hashes"') :]
    section = section[section.index(MD5_LIST) :]
    order = re.findall(r'<tr class="([^"]*)">\s*<td class="token hash">([0-9a-f]+)</td>', section)
    assert order[:2] == [("flagged", bad), ("", busy)]  # fewer matches, but flagged: first
    assert "false positives" in section


async def test_a_bug_behind_a_page_is_a_500_page_without_internals(
    client: Client, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = await OperatorSession.login(client, operator_token(home, "admin"))
    hub = Hub.open(home)
    try:
        hub.lists.stage(MD5_LIST, adds=[Intake(bytes.fromhex(MD5_HEX))])
    finally:
        hub.close()
    delta_key = next((home / "keys").glob("delta-*.key"))
    shutil.move(delta_key, home / "away.key")  # publishing now fails in a way no input causes
    response = await session.post("/dashboard/publish", list=MD5_LIST)
    page = await response.text()
    assert_html_error(response.status, page, 500)
    for leak in ("Traceback", "delta", "key", str(home)):
        assert leak not in page
    assert any(r.exc_info for r in caplog.records if r.name == "hashhub.http")
    assert version_of(home, MD5_LIST) == 1


async def test_the_takedown_history_carries_a_node_counter_reset_forward(
    client: Client, home: Path
) -> None:
    key = SigningKey.generate()
    hub = Hub.open(home)
    try:
        token = hub.access.enrol_node("platform-a", key.public, [MD5_LIST])
        pinned = hub.keys.root_sha256(1)
    finally:
        hub.close()
    follower = Follower(client, pinned, token)
    await follower.update(MD5_LIST)
    for seq, actioned in enumerate([5, 2, 3], start=1):  # the node lost its counters after 5
        data, sig = await follower.ack(key, MD5_LIST, seq, counts=Counts(actioned=actioned))
        response = await client.post("/v1/acks", data=data, headers=ack_headers(token, sig))
        assert response.status == 200, await response.text()
    hub = Hub.open(home)
    try:
        assert [total for _, total in hub.ledger.count_history(MD5_LIST)] == [5, 7, 8]
        assert hub.ledger.count_history(PDQ_LIST) == []
    finally:
        hub.close()
