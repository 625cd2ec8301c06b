"""Reviewing public submissions without a browser: ``hashhub case`` and ``/v1/admin/cases``.

Both go through ``Cases.review``, as the dashboard's form does, so the rules are
the dashboard's: the same roles, a case reviewed once, into a list of its hash
type, never a degenerate hash, and each decision in the action log under who made
it. Every refusal is checked to change nothing: no staged row, no case status,
no line in the action log.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hub.api.admin import ADMIN_ROUTES
from hub.api.admin_cases import CASE_BODY_BYTES
from hub.services.cases import CASE_STATUSES, CaseRecord, CaseView
from hub.web.pages import READ_ROLES, WRITE_ROLES, group_case
from protocol.hashtypes import submission_types
from tests.hub.conftest import (
    LIST,
    PUBLIC_LIST,
    Client,
    bearer,
    md5,
    opened,
)
from tests.hub.test_cli import Operator
from tests.hub.test_openapi import document

DEGENERATE = "ab" * 16
"""A case stored before the degenerate-hash rule: an all-zero MD5."""


def submit(home: Path, *labels: str) -> list[str]:
    """Submit one MD5 case per label, as the public page does; their numbers in order."""
    with opened(home) as hub:
        return [hub.cases.submit("md5", md5(label), None) for label in labels]


def store_degenerate_case(home: Path) -> None:
    conn = sqlite3.connect(home / "hub.db")
    with conn:
        conn.execute(
            "INSERT INTO submissions (case_number, hash_type, hash, quality, status, received) "
            "VALUES (?, 'md5', ?, NULL, 'received', '2030-01-01')",
            [DEGENERATE, bytes(16)],
        )
    conn.close()


def state(home: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str]], int]:
    """What a review changes: the staged rows, every case's status, the action log's length."""
    with opened(home) as hub:
        staged = [dict(row) for row in hub.db.query("SELECT * FROM staged ORDER BY id")]
        cases = [
            (row["case_number"], row["status"])
            for row in hub.db.query("SELECT * FROM submissions ORDER BY rowid")
        ]
        return staged, cases, hub.db.table("actions").count


def grouped(case: str) -> str:
    """The number as the case page shows it to the person, in groups of four."""
    return group_case(case)


def cli_who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


# -- the command line ------------------------------------------------------------------------


def test_case_list_shows_the_queue_oldest_first_and_says_when_more_wait(hub_home: Path) -> None:
    first, second, third = submit(hub_home, "a", "b", "c")
    op = Operator(hub_home)
    out = op.ok("case", "list")
    lines = out.splitlines()
    assert lines[0].split() == ["CASE", "RECEIVED", "TYPE", "QUALITY", "HASH"]
    assert [line.split()[0] for line in lines[1:]] == [first, second, third]
    assert md5("a").hex() in lines[1]
    short = op.ok("case", "list", "--limit", "2").splitlines()
    assert [line.split()[0] for line in short[1:3]] == [first, second]
    assert short[3] == "More received cases than these 2; raise --limit to see them."
    listed = json.loads(op.ok("case", "list", "--json"))
    assert [c["case"] for c in listed] == [first, second, third]
    assert listed[0] == {
        "case": first,
        "hash_type": "md5",
        "hash": md5("a").hex(),
        "quality": None,
        "status": "received",
        "received": listed[0]["received"],
        "reviewed": None,
        "reviewer": None,
        "list": None,
    }
    assert op.ok("case", "list", "--status", "rejected") == "No rejected cases.\n"


def test_case_list_of_an_empty_queue_says_so(hub_home: Path) -> None:
    assert Operator(hub_home).ok("case", "list") == "No case waits for review.\n"
    assert json.loads(Operator(hub_home).ok("case", "list", "--json")) == []


def test_case_accept_stages_the_hash_logs_it_and_show_names_the_reviewer(hub_home: Path) -> None:
    (case,) = submit(hub_home, "video")
    op = Operator(hub_home)
    # The number as the person read it off their case page: grouped, in capitals.
    out = op.ok("case", "accept", grouped(case).upper(), "--list", LIST)
    assert out == (
        f"Accepted case {case} into {LIST}: its hash is staged; 'hashhub publish' releases it.\n"
    )
    staged, cases, _ = state(hub_home)
    [row] = staged
    assert (row["list_id"], bytes(row["hash"]), row["op"]) == (LIST, md5("video"), "add")
    assert (row["source"], row["submission_id"], row["who"]) == ("submission", case, cli_who())
    assert cases == [(case, "accepted")]
    with opened(hub_home) as hub:
        [last] = hub.reports.actions(1)
    assert (last.action, last.who, last.detail) == (
        "case.accept",
        cli_who(),
        {"case": case, "list": LIST},
    )
    shown = json.loads(op.ok("case", "show", case, "--json"))
    assert (shown["status"], shown["reviewer"], shown["list"]) == ("accepted", cli_who(), LIST)
    assert shown["published_version"] is None
    text = op.ok("case", "show", case)
    assert f"reviewer           {cli_who()}" in text
    assert f"list               {LIST}" in text
    assert "published version  -" in text
    accepted = op.ok("case", "list", "--status", "accepted").splitlines()
    assert accepted[0].split()[-3:] == ["REVIEWED", "BY", "LIST"]
    assert accepted[1].split()[-2:] == [cli_who(), LIST]
    op.ok("publish", LIST)
    assert json.loads(op.ok("case", "show", case, "--json"))["published_version"] == 3


def test_case_reject_stages_nothing_and_is_logged(hub_home: Path) -> None:
    (case,) = submit(hub_home, "video")
    op = Operator(hub_home)
    assert op.ok("case", "reject", case) == f"Rejected case {case}.\n"
    staged, cases, _ = state(hub_home)
    assert (staged, cases) == ([], [(case, "rejected")])
    with opened(hub_home) as hub:
        [last] = hub.reports.actions(1)
    assert (last.action, last.who, last.detail) == ("case.reject", cli_who(), {"case": case})
    assert op.ok("case", "list") == "No case waits for review.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("case", "show", "0" * 32), "Error: no case has that number"),
        (("case", "accept", "0" * 32, "--list", LIST), "Error: no case has that number"),
        (("case", "reject", "0" * 32), "Error: no case has that number"),
        (("case", "show", "not-a-case"), "is not a case number: 32 hex digits"),
        (("case", "reject", "ab" * 15), "is not a case number: 32 hex digits"),
        (("case", "accept", "zz" * 16, "--list", LIST), "is not a case number: 32 hex digits"),
        (("case", "accept", "{case}", "--list", PUBLIC_LIST), "list open-sha256 holds sha256"),
        (("case", "accept", "{case}", "--list", "no-such-list"), "no-such-list"),
        (("case", "accept", "{reviewed}", "--list", LIST), "was already rejected"),
        (("case", "reject", "{reviewed}"), "was already rejected"),
        (("case", "accept", DEGENERATE, "--list", LIST), "refused as degenerate"),
    ],
    ids=[
        "show-unknown",
        "accept-unknown",
        "reject-unknown",
        "not-hex",
        "too-short",
        "not-hex-digits",
        "list-of-another-type",
        "unknown-list",
        "accept-reviewed",
        "reject-reviewed",
        "degenerate",
    ],
)
def test_case_mistakes_are_one_line_exit_1_and_change_nothing(
    hub_home: Path, args: tuple[str, ...], message: str
) -> None:
    case, reviewed = submit(hub_home, "waiting", "reviewed")
    with opened(hub_home) as hub:
        hub.cases.review(reviewed, accept=False, who="someone")
    store_degenerate_case(hub_home)
    before = state(hub_home)
    filled = [a.format(case=case, reviewed=reviewed) for a in args]
    result = Operator(hub_home).run(*filled)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert state(hub_home) == before


def test_a_degenerate_case_can_still_be_rejected_from_the_cli(hub_home: Path) -> None:
    store_degenerate_case(hub_home)
    Operator(hub_home).ok("case", "reject", DEGENERATE)
    assert state(hub_home)[1] == [(DEGENERATE, "rejected")]


@pytest.mark.parametrize(
    "args",
    [
        ("case", "list", "--status", "pending"),
        ("case", "list", "--limit", "0"),
        ("case", "accept", "0" * 32),  # no --list
        ("case", "show"),
    ],
    ids=["unknown-status", "zero-limit", "accept-without-list", "no-case"],
)
def test_case_usage_errors_exit_2(hub_home: Path, args: tuple[str, ...]) -> None:
    submit(hub_home, "waiting")
    before = state(hub_home)
    result = Operator(hub_home).run(*args)
    assert result.exit_code == 2, result.output
    assert state(hub_home) == before


# -- the operator API ------------------------------------------------------------------------


async def answer(response: Any) -> tuple[int, Any]:
    return response.status, json.loads(await response.read())


def assert_refused(status: int, body: Any, expected: int, code: str | None = None) -> None:
    """The one error shape, with the expected status (and code)."""
    assert status == expected, body
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == expected
    if code is not None:
        assert body["error"]["code"] == code, body


async def test_the_api_pages_the_queue_oldest_first(
    client: Client, hub_home: Path, role_tokens: dict[str, str]
) -> None:
    numbers = submit(hub_home, "a", "b", "c", "d", "e")
    viewer = bearer(role_tokens["viewer"])
    status, body = await answer(await client.get("/v1/admin/cases", headers=viewer))
    assert status == 200
    assert [c["case"] for c in body["cases"]] == numbers
    assert body["next"] is None
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        query = {"limit": "2", **({"after": after} if after else {})}
        response = await client.get("/v1/admin/cases", params=query, headers=viewer)
        assert response.headers["Cache-Control"] == "no-store"
        status, page = await answer(response)
        assert status == 200, page
        seen += [c["case"] for c in page["cases"]]
        pages += 1
        if pages == 1:
            # A case reviewed between two pages still marks where the next one starts.
            with opened(hub_home) as hub:
                hub.cases.review(numbers[1], accept=False, who="someone")
        after = page["next"]
        if after is None:
            break
    assert (seen, pages) == (numbers, 3)
    status, body = await answer(
        await client.get("/v1/admin/cases", params={"status": "rejected"}, headers=viewer)
    )
    assert [(c["case"], c["reviewer"]) for c in body["cases"]] == [(numbers[1], "someone")]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "pending"}, 400),
        ({"status": "RECEIVED"}, 400),
        ({"limit": "0"}, 400),
        ({"limit": "1001"}, 400),
        ({"limit": "ten"}, 400),
        ({"after": "not-a-case"}, 400),
        ({"after": "AB" * 16}, 400),
        ({"after": "0" * 32}, 404),
        ({"statuss": "received"}, 400),
    ],
    ids=[
        "unknown-status",
        "status-in-capitals",
        "zero-limit",
        "limit-too-large",
        "limit-not-a-number",
        "after-malformed",
        "after-in-capitals",
        "after-unknown",
        "unknown-parameter",
    ],
)
async def test_the_queue_refuses_a_bad_query(
    client: Client, hub_home: Path, admin_token: str, query: dict[str, str], expected: int
) -> None:
    submit(hub_home, "a")
    response = await client.get("/v1/admin/cases", params=query, headers=bearer(admin_token))
    assert_refused(*await answer(response), expected)


async def test_accept_through_the_api_stages_the_hash_and_the_case_page_shows_the_version(
    client: Client, hub_home: Path, role_tokens: dict[str, str]
) -> None:
    (case,) = submit(hub_home, "video")
    publisher = bearer(role_tokens["publisher"])
    response = await client.post(
        f"/v1/admin/cases/{case}/accept", json={"list": LIST}, headers=publisher
    )
    assert response.headers["Cache-Control"] == "no-store"
    status, record = await answer(response)
    assert status == 200, record
    assert (record["case"], record["status"], record["list"]) == (case, "accepted", LIST)
    assert record["reviewer"] == "test-publisher"
    assert record["published_version"] is None
    staged, _, _ = state(hub_home)
    [row] = staged
    assert (row["source"], row["submission_id"], row["who"]) == (
        "submission",
        case,
        "test-publisher",
    )
    with opened(hub_home) as hub:
        [last] = hub.reports.actions(1)
    assert (last.action, last.who) == ("case.accept", "test-publisher")
    # The person's case page, before and after the publish.
    page = await (await client.post("/case", data={"case": grouped(case)})).text()
    assert "it will be in the next version" in page
    assert "test-publisher" not in page
    published = await client.post("/v1/admin/publish", json={"lists": [LIST]}, headers=publisher)
    assert published.status == 200, await published.text()
    page = await (await client.post("/case", data={"case": grouped(case)})).text()
    assert "since version 3" in page
    assert "test-publisher" not in page
    status, record = await answer(
        await client.get(f"/v1/admin/cases/{case}", headers=bearer(role_tokens["viewer"]))
    )
    assert (status, record["published_version"], record["reviewer"]) == (200, 3, "test-publisher")


async def test_reject_through_the_api_is_logged_and_stages_nothing(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    first, second = submit(hub_home, "one", "two")
    # Without a body, and with an empty JSON object.
    for case, body in ((first, None), (second, b"{}")):
        typed = {"Content-Type": "application/json"} if body else {}
        response = await client.post(
            f"/v1/admin/cases/{case}/reject", data=body, headers={**bearer(admin_token), **typed}
        )
        status, record = await answer(response)
        assert status == 200, record
        assert (record["status"], record["reviewer"], record["list"]) == (
            "rejected",
            "test-admin",
            None,
        )
    staged, cases, _ = state(hub_home)
    assert (staged, cases) == ([], [(first, "rejected"), (second, "rejected")])
    with opened(hub_home) as hub:
        assert [a.action for a in hub.reports.actions(2)] == ["case.reject", "case.reject"]


async def test_one_case_shows_the_operators_view(
    client: Client, hub_home: Path, role_tokens: dict[str, str]
) -> None:
    (case,) = submit(hub_home, "video")
    status, record = await answer(
        await client.get(f"/v1/admin/cases/{case}", headers=bearer(role_tokens["auditor"]))
    )
    assert status == 200
    with opened(hub_home) as hub:
        assert record == hub.cases.review_record(case).to_dict()
    assert record["reviewer"] is None
    assert record["status"] == "received"


# -- who may: the dashboard's roles ----------------------------------------------------------


def test_the_case_routes_admit_the_roles_the_dashboard_admits() -> None:
    rights = {(r.method, r.path): r.roles for r in ADMIN_ROUTES if "/cases" in r.path}
    assert set(rights) == {
        ("GET", "/v1/admin/cases"),
        ("GET", "/v1/admin/cases/{case}"),
        ("POST", "/v1/admin/cases/{case}/accept"),
        ("POST", "/v1/admin/cases/{case}/reject"),
    }
    for (method, _), roles in rights.items():
        wanted = READ_ROLES if method == "GET" else WRITE_ROLES
        assert set(roles) == set(wanted)


@pytest.mark.parametrize("role", ["admin", "publisher", "viewer", "auditor", "node", "none"])
async def test_each_principal_reads_and_reviews_as_the_dashboard_lets_it(
    client: Client, hub_home: Path, role_tokens: dict[str, str], node_token: str, role: str
) -> None:
    first, second = submit(hub_home, "one", "two")
    token = {**role_tokens, "node": node_token}.get(role)
    headers = bearer(token) if token else {}
    readers = ("admin", "publisher", "viewer", "auditor")
    reviewers = ("admin", "publisher")
    refusal = 401 if role == "none" else 403
    for path in ("/v1/admin/cases", f"/v1/admin/cases/{first}"):
        status, body = await answer(await client.get(path, headers=headers))
        if role in readers:
            assert status == 200, body
        else:
            assert_refused(status, body, refusal)
    before = state(hub_home)
    accepted = await answer(
        await client.post(f"/v1/admin/cases/{first}/accept", json={"list": LIST}, headers=headers)
    )
    rejected = await answer(await client.post(f"/v1/admin/cases/{second}/reject", headers=headers))
    if role in reviewers:
        assert (accepted[0], rejected[0]) == (200, 200)
        assert state(hub_home)[1] == [(first, "accepted"), (second, "rejected")]
    else:
        assert_refused(*accepted, refusal)
        assert_refused(*rejected, refusal)
        assert state(hub_home) == before


# -- what a review refuses -------------------------------------------------------------------

CASE_PATHS = ["/v1/admin/cases/{}", "/v1/admin/cases/{}/accept", "/v1/admin/cases/{}/reject"]


@pytest.mark.parametrize("path", CASE_PATHS)
@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("0" * 32, 404),  # well-formed, never issued
        ("AB" * 16, 400),  # capitals: the API takes the number exactly as issued
        ("abcd-" * 7 + "abcd", 400),  # grouped, as the case page shows it
        ("ab" * 15, 400),
        ("ab" * 17, 400),
        ("zz" * 16, 400),
        ("ab" * 8 + ".." + "ab" * 7, 400),
    ],
    ids=["unknown", "capitals", "grouped", "short", "long", "not-hex", "dots"],
)
async def test_a_case_number_is_checked_before_any_lookup(
    client: Client, hub_home: Path, admin_token: str, path: str, number: str, expected: int
) -> None:
    submit(hub_home, "waiting")
    before = state(hub_home)
    url = path.format(number)
    headers = bearer(admin_token)
    if url.endswith("/accept"):
        response = await client.post(url, json={"list": LIST}, headers=headers)
    elif url.endswith("/reject"):
        response = await client.post(url, headers=headers)
    else:
        response = await client.get(url, headers=headers)
    assert_refused(*await answer(response), expected)
    assert state(hub_home) == before


@pytest.mark.parametrize(
    ("body", "expected", "message"),
    [
        ({"list": PUBLIC_LIST}, 400, "list open-sha256 holds sha256 hashes"),
        ({"list": "no-such-list"}, 404, "no-such-list"),
        ({"list": "../x"}, 400, "list"),
        ({"list": "x" * 65}, 400, "'list'"),
        ({"list": 7}, 400, "'list'"),
        ({"list": None}, 400, "'list'"),
        ({}, 400, "'list'"),
        ({"list": LIST, "reason": "x"}, 400, "unknown field"),
        ([LIST], 400, "JSON object"),
    ],
    ids=[
        "list-of-another-type",
        "unknown-list",
        "malformed-list",
        "list-too-long",
        "list-not-a-string",
        "list-null",
        "no-list",
        "unknown-field",
        "not-an-object",
    ],
)
async def test_a_bad_accept_is_refused_and_changes_nothing(
    client: Client, hub_home: Path, admin_token: str, body: Any, expected: int, message: str
) -> None:
    (case,) = submit(hub_home, "waiting")
    before = state(hub_home)
    response = await client.post(
        f"/v1/admin/cases/{case}/accept", json=body, headers=bearer(admin_token)
    )
    status, error = await answer(response)
    assert_refused(status, error, expected)
    assert message in error["error"]["message"]
    assert state(hub_home) == before


async def test_a_degenerate_case_is_not_accepted_through_the_api_but_can_be_rejected(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    store_degenerate_case(hub_home)
    before = state(hub_home)
    headers = bearer(admin_token)
    status, error = await answer(
        await client.post(
            f"/v1/admin/cases/{DEGENERATE}/accept", json={"list": LIST}, headers=headers
        )
    )
    assert_refused(status, error, 400, "invalid_request")
    assert "refused as degenerate" in error["error"]["message"]
    assert state(hub_home) == before
    rejected = await client.post(f"/v1/admin/cases/{DEGENERATE}/reject", headers=headers)
    assert rejected.status == 200
    assert state(hub_home)[1] == [(DEGENERATE, "rejected")]


async def test_a_case_is_reviewed_once_through_the_api(
    client: Client, hub_home: Path, admin_token: str
) -> None:
    (case,) = submit(hub_home, "video")
    headers = bearer(admin_token)
    accept = f"/v1/admin/cases/{case}/accept"
    assert (await client.post(accept, json={"list": LIST}, headers=headers)).status == 200
    after_first = state(hub_home)
    for path, body in ((accept, {"list": LIST}), (f"/v1/admin/cases/{case}/reject", {})):
        status, error = await answer(await client.post(path, json=body, headers=headers))
        assert_refused(status, error, 409, "conflict")
        assert "was already accepted" in error["error"]["message"]
    assert state(hub_home) == after_first
    assert len(after_first[0]) == 1


@pytest.mark.parametrize("action", ["accept", "reject"])
@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        (b'{"list": "\xff\xfe"}', "application/json", 400),
        (b"\xff\xfe\xfd", "application/json", 400),
        (b'{"list": "' + b"a" * CASE_BODY_BYTES + b'"}', "application/json", 413),
        (b"list=tid-md5", "application/x-www-form-urlencoded", 415),
        (b'{"list": "tid-md5"', "application/json", 400),
        (b'{"reason": "x"}', "application/json", 400),
    ],
    ids=["non-utf8-string", "non-utf8", "oversized", "a-form", "truncated", "unknown-field"],
)
async def test_a_malformed_body_is_refused_and_changes_nothing(
    client: Client,
    hub_home: Path,
    admin_token: str,
    action: str,
    data: bytes,
    content_type: str,
    expected: int,
) -> None:
    (case,) = submit(hub_home, "waiting")
    before = state(hub_home)
    response = await client.post(
        f"/v1/admin/cases/{case}/{action}",
        data=data,
        headers={**bearer(admin_token), "Content-Type": content_type},
    )
    assert_refused(*await answer(response), expected)
    assert state(hub_home) == before


# -- the records and the document ------------------------------------------------------------


def test_the_persons_view_never_carries_the_reviewer() -> None:
    person = {f for f in CaseView.__dataclass_fields__}
    operator = {f for f in CaseRecord.__dataclass_fields__}
    assert "reviewer" not in person
    assert operator == person | {"reviewer"}


def test_the_document_names_the_statuses_and_types_the_code_takes() -> None:
    doc = document()
    schemas = doc["components"]["schemas"]
    for name in ("Case", "CaseRecord"):
        properties = schemas[name]["properties"]
        assert properties["status"]["enum"] == list(CASE_STATUSES)
        assert set(properties["hash_type"]["enum"]) == set(submission_types())
        assert set(schemas[name]["required"]) == set(properties)
    assert set(schemas["CaseRecord"]["properties"]) == set(CaseRecord.__dataclass_fields__)
    query = doc["paths"]["/v1/admin/cases"]["get"]["parameters"]
    [status] = [p for p in query if p.get("name") == "status"]
    assert status["schema"]["enum"] == list(CASE_STATUSES)
    assert schemas["AcceptCase"]["additionalProperties"] is False
    assert schemas["RejectCase"]["additionalProperties"] is False
