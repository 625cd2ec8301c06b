"""Accepting a case into an entries list, and deciding withdrawals, from the CLI and the API.

``hashhub case accept --category --classification`` and ``POST
/v1/admin/cases/{case}/accept`` make an entry of source ``submission`` (no ref: the
record never names the case); ``hashhub case withdrawals`` / ``withdraw`` and
``/v1/admin/withdrawals`` decide what the ``review`` policy holds back. The
person's own request goes through ``Cases.withdraw`` with the code the submission
returned, as the case page does. Every refusal is checked to change nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import create_app
from hub.config import HubConfig
from hub.errors import Conflict, Forbidden
from hub.services.cases import NewCase, withdrawal_digest
from tests.hub.conftest import LIST, Client, bearer, md5, opened
from tests.hub.test_case_review import cli_who
from tests.hub.test_cli import Operator, pinned_sha256

ENTRIES_MD5 = "ncii-md5"


def open_case(home: Path, label: str) -> NewCase:
    with opened(home) as hub:
        return hub.cases.open_case("md5", md5(label), None)


def snapshot(home: Path) -> tuple[list[tuple[Any, ...]], int, int, int]:
    """What a decision may change: the cases, the action log, entries and pending rows."""
    with opened(home) as hub:
        cases = [
            (r["case_number"], r["status"], r["withdrawal"], r["entry_id"])
            for r in hub.db.query("SELECT * FROM submissions ORDER BY rowid")
        ]
        return (
            cases,
            hub.db.table("actions").count,
            hub.db.table("entry_items").count,
            hub.db.table("entry_pending").count,
        )


def set_policy(home: Path, policy: str) -> None:
    path = home / "hub.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace('withdrawal = "automatic"', f'withdrawal = "{policy}"'), encoding="utf-8"
    )
    assert HubConfig.load(home).withdrawal == policy


# -- the command line -----------------------------------------------------------------------


@pytest.fixture
def op(tmp_path: Path) -> Operator:
    """A hub made by ``hashhub init`` with a hashes list and the entries collection ``ncii``."""
    operator = Operator(tmp_path / "hub")
    operator.pinned = pinned_sha256(operator.init())
    operator.ok("list", "create", "tid-md5", "--type", "md5", "--label", "tid")
    operator.ok("list", "create", ENTRIES_MD5, "--type", "md5", "--label", "ncii",
                "--format", "entries")  # fmt: skip
    operator.ok("list", "create", "ncii-pdq", "--type", "pdq", "--label", "ncii",
                "--format", "entries")  # fmt: skip
    return operator


def test_init_writes_the_automatic_policy(op: Operator) -> None:
    assert 'withdrawal = "automatic"' in (op.home / "hub.toml").read_text(encoding="utf-8")


def test_case_accept_into_an_entries_list_makes_a_submission_entry(op: Operator) -> None:
    new = open_case(op.home, "video")
    out = op.ok("case", "accept", new.case, "--list", ENTRIES_MD5,
                "--category", "ncii", "--classification", "confirmed")  # fmt: skip
    assert out == (
        f"Accepted case {new.case} into {ENTRIES_MD5}: an entry is staged; "
        "'hashhub publish' releases it.\n"
    )
    with opened(op.home) as hub:
        [item] = list(hub.db.query("SELECT * FROM entry_items"))
        [row] = list(hub.db.query("SELECT entry_id FROM submissions"))
        [action] = hub.reports.actions(1)
    assert item["source"] == "submission"  # no ref: the record never names the case
    assert new.case not in json.dumps(item)
    assert row["entry_id"] == item["id"]
    assert (action.action, action.who) == ("case.accept", cli_who())
    shown = op.ok("case", "show", new.case)
    assert "withdrawal         -" in shown
    assert "withdrawable       yes" in shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((ENTRIES_MD5,), "needs a category and a classification"),
        ((ENTRIES_MD5, "--category", "ncii"), "needs a category and a classification"),
        ((ENTRIES_MD5, "--category", "spam", "--classification", "confirmed"), "spam"),
        (("tid-md5", "--category", "ncii", "--classification", "confirmed"), "bare hashes"),
        (("ncii-pdq", "--category", "ncii", "--classification", "confirmed"), "pdq hashes"),
    ],
)
def test_a_bad_accept_is_one_line_and_changes_nothing(
    op: Operator, args: tuple[str, ...], message: str
) -> None:
    new = open_case(op.home, "video")
    before = snapshot(op.home)
    result = op.run("case", "accept", new.case, "--list", *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(op.home) == before


def test_withdrawals_wait_under_review_and_the_cli_decides_them(op: Operator) -> None:
    set_policy(op.home, "review")
    first, second = open_case(op.home, "one"), open_case(op.home, "two")
    for new in (first, second):
        op.ok("case", "accept", new.case, "--list", ENTRIES_MD5,
              "--category", "ncii", "--classification", "confirmed")  # fmt: skip
    assert op.ok("case", "withdrawals") == "No withdrawal waits for review.\n"
    with opened(op.home) as hub:
        for new in (first, second):
            assert hub.cases.withdraw(new.case, new.withdrawal_code).withdrawal == "requested"
    listed = op.ok("case", "withdrawals").splitlines()
    assert listed[0].split() == ["CASE", "LIST", "TYPE", "HASH"]
    assert [line.split()[0] for line in listed[1:]] == [first.case, second.case]
    assert [c["case"] for c in json.loads(op.ok("case", "withdrawals", "--json"))] == [
        first.case,
        second.case,
    ]
    assert op.ok("case", "withdrawals", "--limit", "1").splitlines()[-1] == (
        "More withdrawals than these 1; raise --limit to see them."
    )

    out = op.ok("case", "withdraw", first.case, "--approve")
    assert "approved: its entry is retracted as withdrawn" in out
    out = op.ok("case", "withdraw", second.case, "--refuse")
    assert out == f"Withdrawal of case {second.case} refused: its entry stays listed.\n"
    assert op.ok("case", "withdrawals") == "No withdrawal waits for review.\n"
    with opened(op.home) as hub:
        retracted = {
            r["case_number"]: r["retracted"]
            for r in hub.db.query(
                "SELECT s.case_number, i.retracted FROM submissions s "
                "JOIN entry_items i ON i.id = s.entry_id"
            )
        }
        assert hub.cases.review_record(first.case).withdrawal == "withdrawn"
        assert hub.cases.review_record(second.case).withdrawal == "refused"
        decided = [a.action for a in hub.reports.actions(2)]
    assert retracted == {first.case: "withdrawn", second.case: None}
    assert decided == ["case.withdrawal.refuse", "case.withdrawal.approve"]

    before = snapshot(op.home)
    result = op.run("case", "withdraw", first.case, "--refuse")
    assert result.exit_code == 1
    assert "no withdrawal of case" in result.stderr
    result = op.run("case", "withdraw", first.case)
    assert result.exit_code == 2
    assert "give --approve or --refuse" in result.output
    assert snapshot(op.home) == before


def test_the_person_must_hold_the_code(op: Operator) -> None:
    new = open_case(op.home, "video")
    other = open_case(op.home, "other")
    before = snapshot(op.home)
    with opened(op.home) as hub:
        for case, code in (
            (new.case, other.withdrawal_code),
            ("ab" * 16, new.withdrawal_code),
            (new.case, ""),
            (new.case, "é" * 32),
        ):
            with pytest.raises(Forbidden) as refused:
                hub.cases.withdraw(case, code)
            assert str(refused.value) == "That case number and withdrawal code do not match."
    assert snapshot(op.home) == before
    assert withdrawal_digest(new.withdrawal_code.lower().replace("-", "")) == withdrawal_digest(
        new.withdrawal_code
    )
    with opened(op.home) as hub:
        assert hub.cases.withdraw(new.case, new.withdrawal_code).withdrawal == "withdrawn"
        with pytest.raises(Conflict):
            hub.cases.review(
                new.case,
                accept=True,
                list_id=ENTRIES_MD5,
                category="ncii",
                classification="confirmed",
            )


# -- the operator API -----------------------------------------------------------------------


@pytest.fixture
async def entries_client(hub_home: Path) -> AsyncIterator[Client]:
    """The conftest hub with an entries list ``ncii-md5``, under the ``review`` policy."""
    with opened(hub_home) as hub:
        hub.roots.create_list(ENTRIES_MD5, "md5", label="ncii", list_format="entries")
    set_policy(hub_home, "review")
    app = create_app(hub_home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client


async def test_the_api_accepts_into_an_entries_list_and_decides_withdrawals(
    entries_client: Client, hub_home: Path, role_tokens: dict[str, str]
) -> None:
    client = entries_client
    publisher = bearer(role_tokens["publisher"])
    new = open_case(hub_home, "video")
    before = snapshot(hub_home)
    for body, code in (
        ({"list": ENTRIES_MD5}, 400),  # an entries list needs the terms
        ({"list": LIST, "category": "ncii", "classification": "confirmed"}, 400),
        ({"list": ENTRIES_MD5, "category": 7, "classification": "confirmed"}, 400),
        ({"list": ENTRIES_MD5, "category": "ncii", "classification": "x", "y": 1}, 400),
    ):
        response = await client.post(
            f"/v1/admin/cases/{new.case}/accept", json=body, headers=publisher
        )
        refused = await response.json()
        assert response.status == code, refused
        assert refused["error"]["status"] == code
    assert snapshot(hub_home) == before

    response = await client.post(
        f"/v1/admin/cases/{new.case}/accept",
        json={"list": ENTRIES_MD5, "category": "ncii", "classification": "severe"},
        headers=publisher,
    )
    record = await response.json()
    assert response.status == 200, record
    assert (record["status"], record["list"], record["withdrawal"], record["withdrawable"]) == (
        "accepted",
        ENTRIES_MD5,
        None,
        True,
    )
    with opened(hub_home) as hub:
        assert hub.cases.withdraw(new.case, new.withdrawal_code).withdrawal == "requested"

    viewer = bearer(role_tokens["viewer"])
    response = await client.get("/v1/admin/withdrawals", headers=viewer)
    page = await response.json()
    assert response.status == 200, page
    assert [c["case"] for c in page["cases"]] == [new.case]
    assert page["next"] is None
    response = await client.post(
        f"/v1/admin/withdrawals/{new.case}", json={"decision": "approve"}, headers=viewer
    )
    assert response.status == 403
    response = await client.post(
        f"/v1/admin/withdrawals/{new.case}", json={"decision": "maybe"}, headers=publisher
    )
    assert response.status == 400
    assert "approve or refuse" in (await response.json())["error"]["message"]

    response = await client.post(
        f"/v1/admin/withdrawals/{new.case}", json={"decision": "approve"}, headers=publisher
    )
    record = await response.json()
    assert response.status == 200, record
    assert (record["withdrawal"], record["withdrawable"]) == ("withdrawn", False)
    with opened(hub_home) as hub:
        [item] = list(hub.db.query("SELECT * FROM entry_items"))
        [last] = hub.reports.actions(1)
    assert item["retracted"] == "withdrawn"
    assert (last.action, last.who) == ("case.withdrawal.approve", "test-publisher")
    response = await client.post(
        f"/v1/admin/withdrawals/{new.case}", json={"decision": "refuse"}, headers=publisher
    )
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "conflict"
