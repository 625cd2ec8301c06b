"""A person withdraws a case: from the submission page's code to a published ``withdrawn``.

The real hub app on loopback with a real SQLite file: the submission page shows the
withdrawal code once, the case page takes it back, and what the next publish puts
out is read as a node reads it (``tests.hub.node_view.follow_entries``, the
protocol's verifier from root v1). Every refusal is checked to change nothing.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.app import create_app
from hub.core import Hub, utcnow
from hub.web.pages import FORM_BYTES, WITHDRAW_BURST
from tests.hub.conftest import opened
from tests.hub.node_view import EntriesVersion, follow_entries, from_hub
from tests.web.hub_support import (
    MD5_LIST,
    Client,
    OperatorSession,
    case_number,
    init_web_hub,
    operator_token,
)
from tests.web.test_hub_pages import MD5_HEX, assert_html_error, rows

ENTRIES_MD5 = "ncii-md5"
ENTRIES_PDQ = "ncii-pdq"
_CODE = re.compile(r'id="withdrawal-code">([A-Z2-7-]+)<')
OTHER_MD5 = "fedcba9876543210" * 2


def make_home(home: Path, **settings: Any) -> Path:
    """A web hub (``init_web_hub``'s hashes lists) with the entries collection ``ncii``."""
    init_web_hub(home, **settings)
    hub = Hub.open(home)
    try:
        hub.roots.create_list(ENTRIES_MD5, "md5", label="ncii", list_format="entries")
        hub.roots.create_list(ENTRIES_PDQ, "pdq", label="ncii", list_format="entries")
    finally:
        hub.close()
    return home


@pytest.fixture(scope="module")
def automatic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_home(tmp_path_factory.mktemp("automatic") / "hub")


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_home(tmp_path_factory.mktemp("review") / "hub", withdrawal="review")


@pytest.fixture
def home(tmp_path: Path, automatic: Path) -> Path:
    return Path(shutil.copytree(automatic, tmp_path / "hub"))


@pytest.fixture
def review_home(tmp_path: Path, reviewed: Path) -> Path:
    return Path(shutil.copytree(reviewed, tmp_path / "hub"))


@pytest.fixture
async def client(home: Path) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(home, schedule=False), host="127.0.0.1")) as c:
        yield c


@pytest.fixture
async def review_client(review_home: Path) -> AsyncIterator[Client]:
    app = create_app(review_home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def submitted(client: Client, value: str = MD5_HEX) -> tuple[str, str]:
    """Submit a video's MD5 as the page does: the case number and the withdrawal code shown."""
    response = await client.post("/submit", data={"type": "md5", "hash": value})
    page = await response.text()
    assert response.status == 200, page
    found = _CODE.search(page)
    assert found is not None, page
    return case_number(page).replace("-", ""), found.group(1)


async def withdraw(client: Client, case: str, code: str) -> tuple[int, str]:
    response = await client.post("/case/withdraw", data={"case": case, "code": code})
    return response.status, await response.text()


async def look_up(client: Client, case: str) -> str:
    response = await client.post("/case", data={"case": case})
    page = await response.text()
    assert response.status == 200, page
    return page


async def accept(session: OperatorSession, case: str, list_id: str = ENTRIES_MD5) -> None:
    response = await session.post(
        f"/dashboard/cases/{case}/review",
        decision="accept",
        list=list_id,
        category="ncii",
        classification="confirmed",
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/dashboard/review?notice=accepted"


async def publish(session: OperatorSession) -> None:
    response = await session.post("/dashboard/publish", list=ENTRIES_MD5)
    assert response.status == 303, await response.text()


def state(home: Path) -> tuple[list[tuple[Any, ...]], int, int]:
    """What a withdrawal may change: each case's withdrawal columns, the action log's
    length, and the entries retracted."""
    cases = [
        (r["case_number"], r["status"], r["withdrawal"], r["entry_id"])
        for r in rows(home, "submissions")
    ]
    retracted = sum(1 for r in rows(home, "entry_items") if r["retracted"] is not None)
    return cases, len(rows(home, "actions")), retracted


def followed(home: Path) -> list[EntriesVersion]:
    """The entries list ``ENTRIES_MD5`` as a node reads it, from root v1."""
    with opened(home) as hub:
        return follow_entries(
            from_hub(hub), ENTRIES_MD5, pinned_sha256=hub.keys.root_sha256(1), now=utcnow()
        )


def actions(home: Path, name: str) -> list[dict[str, Any]]:
    return [a for a in rows(home, "actions") if a["action"] == name]


# -- the code -------------------------------------------------------------------------------


async def test_the_code_is_shown_once_and_only_its_sha256_is_stored(
    client: Client, home: Path
) -> None:
    case, code = await submitted(client)
    assert re.fullmatch(r"([A-Z2-7]{4}-){7}[A-Z2-7]{4}", code)  # 160 bits in base32
    other_case, other_code = await submitted(client, OTHER_MD5)
    assert other_code != code
    assert other_case != case
    [stored, _] = rows(home, "submissions")
    plain = code.replace("-", "")
    assert bytes(stored["withdrawal_code"]) == hashlib.sha256(plain.encode()).digest()
    # Neither form of the code is anywhere in the database files, WAL included.
    for path in home.glob("hub.db*"):
        data = path.read_bytes()
        for form in (code, plain, code.lower(), plain.lower()):
            assert form.encode() not in data, f"the code is in {path.name}"
    # The case page never shows it again.
    page = await look_up(client, case)
    assert plain not in page.replace("-", "")
    assert 'action="/case/withdraw"' in page
    assert 'name="code"' in page


# -- automatic withdrawal -------------------------------------------------------------------


async def test_an_accepted_entry_is_withdrawn_at_once_and_published_as_withdrawn(
    client: Client, home: Path
) -> None:
    case, code = await submitted(client)
    session = await OperatorSession.login(client, operator_token(home, "publisher", "pat"))
    await accept(session, case)
    [item] = rows(home, "entry_items")
    assert (item["source"], item["category"], item["classification"]) == (
        "submission",
        "ncii",
        "confirmed",
    )
    # The hash went in every list of the collection of its type: the md5 one only.
    assert [(r["list_id"], bytes(r["hash"]).hex()) for r in rows(home, "entry_hashes")] == [
        (ENTRIES_MD5, MD5_HEX)
    ]
    await publish(session)
    page = await look_up(client, case)
    assert "since version 1" in page
    assert "Withdraw this case" in page

    # A spaced, lower-case, dash-less copy of the code is the same code.
    status, page = await withdraw(client, case, code.replace("-", " ").lower())
    assert status == 200, page
    assert "This case is withdrawn." in page
    assert f'it will be removed from list\n  <span class="mono">{ENTRIES_MD5}</span>' in page
    assert "Withdraw this case" not in page
    await publish(session)
    page = await look_up(client, case)
    assert "Withdrawn — removed from list" in page
    assert "in version 2." in page

    # A node following the list from root v1 sees the record added, then removed as withdrawn.
    versions = followed(home)
    assert [v.version for v in versions] == [1, 2]
    [added] = versions[0].body.adds
    assert (added.hash.hex(), added.entry_id, added.source_kind, added.source_ref) == (
        MD5_HEX,
        item["id"],
        "submission",
        None,
    )
    [removal] = versions[1].body.removes
    assert (removal.entry.entry_id, removal.reason) == (item["id"], "withdrawn")
    assert len(versions[1].state) == 0

    [withdrawal] = actions(home, "case.withdraw")
    assert case in withdrawal["detail"]
    assert "withdrawn" in withdrawal["detail"]
    [retraction] = actions(home, "entry.retract")
    assert item["id"] in retraction["detail"]
    assert "withdrawn" in retraction["detail"]
    # A second try is refused and changes nothing.
    before = state(home)
    status, page = await withdraw(client, case, code)
    assert_html_error(status, page, 409)
    assert "already withdrawn" in page
    assert state(home) == before


async def test_a_case_withdrawn_before_review_leaves_the_queue_and_is_never_listed(
    client: Client, home: Path
) -> None:
    case, code = await submitted(client)
    status, page = await withdraw(client, case, code)
    assert status == 200, page
    assert "Withdrawn before review. Its hash will never be listed." in page
    session = await OperatorSession.login(client, operator_token(home, "publisher", "pat"))
    queue = await (await client.get("/dashboard/review")).text()
    assert f'id="case-{case}"' not in queue
    assert "No cases waiting." in queue
    before = state(home)
    response = await session.post(
        f"/dashboard/cases/{case}/review",
        decision="accept",
        list=ENTRIES_MD5,
        category="ncii",
        classification="confirmed",
    )
    assert_html_error(response.status, await response.text(), 409)
    assert state(home) == before
    assert rows(home, "entry_items") == []
    with opened(home) as hub:
        assert hub.cases.with_status("received") == []
        assert hub.publishing.publish() == []  # nothing was staged
        assert len(hub.entries.state(ENTRIES_MD5)) == 0


async def test_an_entry_withdrawn_before_its_first_publish_is_never_published(
    client: Client, home: Path
) -> None:
    case, code = await submitted(client)
    session = await OperatorSession.login(client, operator_token(home, "publisher", "pat"))
    await accept(session, case)
    assert "it will be in the next version" in await look_up(client, case)
    status, page = await withdraw(client, case, code)
    assert status == 200, page
    assert "Withdrawn — it will never be published in list" in page
    [item] = rows(home, "entry_items")
    assert item["retracted"] == "withdrawn"
    await publish(session)
    with opened(home) as hub:
        assert hub.db.table("entry_records").count == 0
        assert hub.entries.pending_count(ENTRIES_MD5) == 0
    assert "Withdrawn — it will never be published in list" in await look_up(client, case)


# -- refusals -------------------------------------------------------------------------------


async def test_a_wrong_code_or_a_wrong_case_gets_one_answer_and_changes_nothing(
    client: Client, home: Path
) -> None:
    case, code = await submitted(client)
    other_case, other_code = await submitted(client, OTHER_MD5)
    before = state(home)
    answers = []
    for tried_case, tried_code in (
        (case, other_code),  # another case's code
        (case, "A" * 32),  # a well-formed code that is no one's
        ("ab" * 16, code),  # no such case
        (case, "not a code at all"),
    ):
        status, page = await withdraw(client, tried_case, tried_code)
        assert_html_error(status, page, 403)
        assert "That case number and withdrawal code do not match." in page
        answers.append(page)
    assert len(set(answers)) == 1  # nothing tells which part was wrong
    assert state(home) == before
    assert "Withdraw this case" in await look_up(client, case)
    status, page = await withdraw(client, other_case, other_code)
    assert status == 200, page


async def test_unreadable_and_oversize_withdrawal_forms_are_refused(
    client: Client, home: Path
) -> None:
    case, code = await submitted(client)
    before = state(home)
    form = "application/x-www-form-urlencoded"
    bad_utf8 = f"case={case}&code=".encode() + b"\xff\xfe"
    response = await client.post("/case/withdraw", data=bad_utf8, headers={"Content-Type": form})
    assert_html_error(response.status, await response.text(), 400)
    huge = f"case={case}&code={'A' * FORM_BYTES}".encode()
    response = await client.post("/case/withdraw", data=huge, headers={"Content-Type": form})
    assert_html_error(response.status, await response.text(), 413)
    response = await client.post("/case/withdraw", data={"case": case, "code": code, "extra": "x"})
    assert_html_error(response.status, await response.text(), 400)
    response = await client.post("/case/withdraw", data={"case": case, "code": "A" * 81})
    assert_html_error(response.status, await response.text(), 400)
    assert state(home) == before


async def test_attempts_past_the_cases_allowance_are_429_even_with_the_right_code(
    client: Client, home: Path
) -> None:
    case, code = await submitted(client)
    other_case, other_code = await submitted(client, OTHER_MD5)
    for _ in range(WITHDRAW_BURST):
        status, page = await withdraw(client, case, "A" * 32)
        assert_html_error(status, page, 403)
    before = state(home)
    response = await client.post("/case/withdraw", data={"case": case, "code": code})
    page = await response.text()
    assert_html_error(response.status, page, 429)
    assert "Too many attempts to withdraw this case" in page
    assert int(response.headers["Retry-After"]) > 0
    assert state(home) == before
    # Another case has an allowance of its own.
    status, page = await withdraw(client, other_case, other_code)
    assert status == 200, page


async def test_a_rejected_case_has_nothing_to_withdraw(client: Client, home: Path) -> None:
    case, code = await submitted(client)
    session = await OperatorSession.login(client, operator_token(home, "publisher", "pat"))
    response = await session.post(f"/dashboard/cases/{case}/review", decision="reject")
    assert response.status == 303
    page = await look_up(client, case)
    assert "Withdraw this case" not in page
    before = state(home)
    status, page = await withdraw(client, case, code)
    assert_html_error(status, page, 409)
    assert "nothing to withdraw" in page
    assert state(home) == before


async def test_a_case_in_a_hashes_list_says_withdrawal_is_for_entries_lists(
    client: Client, home: Path
) -> None:
    case, code = await submitted(client)
    session = await OperatorSession.login(client, operator_token(home, "publisher", "pat"))
    # The dashboard's form sends its terms with every list; a hashes list ignores them.
    await accept(session, case, MD5_LIST)
    page = await look_up(client, case)
    assert "Withdrawal on this page applies to cases accepted into entries lists." in page
    assert 'action="/case/withdraw"' not in page
    before = state(home)
    status, page = await withdraw(client, case, code)
    assert_html_error(status, page, 409)
    assert "Withdrawal applies to entries lists only" in page
    assert state(home) == before


# -- the review policy ----------------------------------------------------------------------


async def test_under_review_a_withdrawal_waits_for_an_operator_who_approves_or_refuses(
    review_client: Client, review_home: Path
) -> None:
    client, home = review_client, review_home
    first, first_code = await submitted(client)
    second, second_code = await submitted(client, OTHER_MD5)
    session = await OperatorSession.login(client, operator_token(home, "publisher", "pat"))
    await accept(session, first)
    await accept(session, second)
    await publish(session)

    for case, code in ((first, first_code), (second, second_code)):
        status, page = await withdraw(client, case, code)
        assert status == 200, page
        assert "It waits for review." in page
        assert "Withdrawal requested — waiting for review" in page
    assert all(r["retracted"] is None for r in rows(home, "entry_items"))
    queue = await (await client.get("/dashboard/review")).text()
    assert f'id="withdrawal-{first}"' in queue
    assert f'id="withdrawal-{second}"' in queue
    assert "2 waiting for review" in queue

    response = await session.post(f"/dashboard/cases/{first}/withdrawal", decision="approve")
    assert response.headers["Location"] == "/dashboard/review?notice=withdrawn"
    response = await session.post(f"/dashboard/cases/{second}/withdrawal", decision="refuse")
    assert response.headers["Location"] == "/dashboard/review?notice=refused"
    queue = await (await client.get(response.headers["Location"])).text()
    assert "Withdrawal refused: the entry stays listed" in queue
    assert "No withdrawals waiting." in queue

    await publish(session)
    assert "Withdrawn — removed from list" in await look_up(client, first)
    refused = await look_up(client, second)
    assert "Withdrawal refused" in refused
    assert "Withdraw this case" not in refused
    versions = followed(home)
    [removal] = versions[-1].body.removes
    assert removal.reason == "withdrawn"
    assert removal.entry.hash.hex() == MD5_HEX
    assert len(versions[-1].state) == 1  # the refused one stays
    assert [len(actions(home, a)) for a in ("case.withdraw", "case.withdrawal.approve")] == [2, 1]
    assert len(actions(home, "case.withdrawal.refuse")) == 1
    # A decided withdrawal is not decided again.
    response = await session.post(f"/dashboard/cases/{second}/withdrawal", decision="approve")
    assert_html_error(response.status, await response.text(), 409)


async def test_a_reader_may_not_decide_a_withdrawal(
    review_client: Client, review_home: Path
) -> None:
    case, code = await submitted(review_client)
    publisher = await OperatorSession.login(
        review_client, operator_token(review_home, "publisher", "pat")
    )
    await accept(publisher, case)
    await withdraw(review_client, case, code)
    viewer = await OperatorSession.login(review_client, operator_token(review_home, "viewer"))
    page = await (await review_client.get("/dashboard/review")).text()
    assert f'id="withdrawal-{case}"' in page
    assert f'action="/dashboard/cases/{case}/withdrawal"' not in page  # no form for a reader
    response = await viewer.post(f"/dashboard/cases/{case}/withdrawal", decision="approve")
    assert_html_error(response.status, await response.text(), 403)
    assert rows(review_home, "submissions")[0]["withdrawal"] == "requested"
