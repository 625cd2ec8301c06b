"""A hub taking entries from hash exchanges: StopNCII- and NCMEC-shaped feeds.

Real servers on loopback speak each exchange's API (``tests.exchanges.servers``) and
the hub reads them with python-threatexchange's own clients (``hub.exchange_apis``).
Every record taken becomes an entry of source ``exchange:<name>``, published with a
provenance document whose origin names the record as read (PROTOCOL.md §5.7, §7.5),
checked here by the protocol's rules against what a node verifies; a person's
withdrawal at the exchange leaves the list as ``withdrawn`` within one run, a deletion
as ``upstream``. A fetch that fails changes nothing and resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from threatexchange.exchanges.clients.stopncii.api import StopNCIIEndpoint

from hub.app import create_app
from hub.appkeys import SCHEDULER
from hub.bridging import BridgeReport, bridge_exchanges
from hub.core import Hub, utcnow
from hub.following import in_place
from protocol import DeltaHeader, EntriesBody, Entry, body_path, header_path, provenance_path
from protocol.lists import hash_type
from protocol.provenance import ExchangeOrigin, Provenance, header_provenance, verify_provenance
from tests.audit.support import audit, export
from tests.exchanges.servers import NCMECServer, StopNCIIServer
from tests.hub.conftest import opened
from tests.hub.node_view import follow_entries, from_hub, trusted_hub
from tests.hub.test_cli import Operator
from tests.hub.test_scheduler import eventually

PDQ, MD5 = "ncii-pdq", "ncii-md5"


def pdq(n: object) -> str:
    return hashlib.sha256(f"pdq {n}".encode()).hexdigest()


def md5(n: object) -> str:
    return hashlib.md5(f"md5 {n}".encode()).hexdigest()


def make_hub(home: Path) -> str:
    """A hub with one ``ncii`` collection (PDQ and MD5); its root v1 SHA-256."""
    hub = Hub.init(
        home, "helpline.example", root_keys=1, root_threshold=1, publish_interval=0,
        timestamp_interval=0,
    )  # fmt: skip
    try:
        hub.roots.create_list(PDQ, "pdq", label="ncii", list_format="entries")
        hub.roots.create_list(MD5, "md5", label="ncii", list_format="entries")
        return hub.keys.root_sha256(1)
    finally:
        hub.close()


def stopncii_credentials(server: StopNCIIServer) -> str:
    return f"{server.function_keys[StopNCIIEndpoint.FetchHashes]},{server.subscription_key}"


def read_exchange(operator: Operator, server: StopNCIIServer | NCMECServer, api: str) -> None:
    operator.ok(
        "exchange", "add", api, "--api", api, "--url", server.url, "--into", PDQ, "--into", MD5,
        "--category", "ncii",
    )  # fmt: skip
    secret = operator.home.parent / f"{api}.credentials"
    credentials = (
        stopncii_credentials(server)
        if isinstance(server, StopNCIIServer)
        else f"{server.user}:{server.password}"
    )
    secret.write_text(credentials + "\n")
    operator.ok("exchange", "credentials", api, str(secret))


async def sync(home: Path, *names: str) -> list[BridgeReport]:
    with opened(home) as hub:
        return await bridge_exchanges(in_place(hub), names=list(names) or None, who="tests")


def records(home: Path, pin: str, list_id: str) -> dict[str, Entry]:
    """The list's records as a node verifies them from nothing, by hash hex."""
    with opened(home) as hub:
        versions = follow_entries(from_hub(hub), list_id, pinned_sha256=pin, now=utcnow())
    state = versions[-1].state if versions else None
    return {e.hash.hex(): e for e in (state.entries() if state else [])}


def removals(home: Path, pin: str, list_id: str) -> dict[str, str]:
    """Every record a version of the list removed, by hash hex: its reason."""
    with opened(home) as hub:
        versions = follow_entries(from_hub(hub), list_id, pinned_sha256=pin, now=utcnow())
    return {r.entry.hash.hex(): r.reason for v in versions for r in v.body.removes}


def provenance(home: Path, pin: str, list_id: str) -> dict[str, ExchangeOrigin]:
    """Every exchange origin the list's versions name, each version's document checked
    by §7.5's rules against the root that signed it and the version's body."""
    found: dict[str, ExchangeOrigin] = {}
    with opened(home) as hub:
        trusted = trusted_hub(from_hub(hub), pinned_sha256=pin, now=utcnow())
        version = 1
        while (got := hub.files.get(header_path(list_id, version))) is not None:
            header = DeltaHeader.from_bytes(got[0])
            version += 1
            ref = header_provenance(header)
            if ref is None:
                continue
            data = hub.files.get(provenance_path(list_id, ref.sha256))
            body = hub.files.get(body_path(list_id, header.body.sha256))
            assert data is not None
            assert body is not None
            root = trusted.root_at(header.root_version)
            kind = hash_type(root.lists[list_id].hash_type)
            doc: Provenance = verify_provenance(
                header, data[0], root, EntriesBody.from_bytes(body[0], kind.name), kind
            )
            for origin in doc.origins.values():
                assert isinstance(origin, ExchangeOrigin)
                found[origin.hash_hex] = origin
    return found


@pytest.fixture
def operator(tmp_path: Path) -> Operator:
    op = Operator(tmp_path / "hub")
    op.pinned = make_hub(op.home)
    return op


async def test_a_stopncii_feed_becomes_entries_with_provenance_and_its_withdrawals_leave(
    operator: Operator,
) -> None:
    home, pin = operator.home, operator.pinned
    async with StopNCIIServer() as server:
        server.add("ImagePDQ", pdq(1), case_number="case-a")
        server.add("ImagePDQ", pdq(1), case_number="case-b")  # a second person, one hash
        server.add("ImagePDQ", pdq(2).upper())  # StopNCII's hex in upper case
        server.add("VideoMD5", md5(3))
        server.feedback("ImagePDQ", pdq(2).upper(), "Blocked", source="platform-a")
        server.add("VideoTMK", "ab" * 128)  # a type this hub does not take
        server.add("ImagePDQ", "not-a-pdq-hash")  # malformed: skipped, said why
        read_exchange(operator, server, "stopncii")

        (report,) = await sync(home)
        assert report.problems == []
        assert report.bridged.records == 5  # one record per hash, whatever its cases
        assert len(report.bridged.added) == 3
        assert len(report.bridged.skipped) == 2, report.bridged.skipped
        assert {r.list for r in report.published} == {PDQ, MD5}

        listed = records(home, pin, PDQ)
        assert set(listed) == {pdq(1), pdq(2)}
        assert set(records(home, pin, MD5)) == {md5(3)}
        for entry in [*listed.values(), *records(home, pin, MD5).values()]:
            assert entry.source == "exchange:stopncii"
            assert (entry.category, entry.classification) == ("ncii", "unconfirmed")
        origins = {**provenance(home, pin, PDQ), **provenance(home, pin, MD5)}
        assert set(origins) == {pdq(1), pdq(2), md5(3)}
        first = origins[pdq(1)]
        assert (first.exchange, first.api) == ("stopncii", "stopncii")
        # The record as read, less the case numbers: a provenance document is public.
        assert first.record["cases"] == 2
        assert first.record["hashStatus"] == "Active"
        assert "caseNumbers" not in first.record
        assert "case-a" not in repr(first.record)
        # Feedback as counts by value: bounded, whatever the number of platforms.
        assert origins[pdq(2)].record["feedback"] == {"Blocked": 1}
        assert "platform-a" not in repr(origins[pdq(2)].record)

        # Nothing new: the next run reads from its checkpoint and publishes nothing.
        asked = len(server.served)
        (again,) = await sync(home)
        assert again.bridged.added == []
        assert again.published == []
        starts = [r.query.get("startTimestamp") for r in server.served[asked:]]
        assert starts
        assert all(s is not None and int(s) > 10 for s in starts), starts

        server.withdraw("ImagePDQ", pdq(1))
        server.delete("VideoMD5", md5(3))
        (gone,) = await sync(home)
        assert len(gone.bridged.retracted) == 2
        assert set(records(home, pin, PDQ)) == {pdq(2)}
        assert records(home, pin, MD5) == {}
        assert removals(home, pin, PDQ) == {pdq(1): "withdrawn"}
        assert removals(home, pin, MD5) == {md5(3): "upstream"}


async def test_an_ncmec_entry_is_one_entry_with_a_hash_in_each_list(operator: Operator) -> None:
    home, pin = operator.home, operator.pinned
    past = utcnow() - timedelta(minutes=10)  # pytx reads NCMEC up to five seconds ago
    async with NCMECServer(page_size=2) as server:
        server.add_image(7, "img-1", md5=md5(1), pdq=pdq(1), classification="A1", timestamp=past)
        server.add_image(7, "img-2", pdq=pdq(2), timestamp=past)
        server.add_video(8, "vid-1", md5=md5(3), timestamp=past)
        server.add_image(8, "img-9", sha1="aa" * 20, timestamp=past)  # no hash this hub takes
        server.add_image(9, "img-3", md5=md5(4), timestamp=past)
        read_exchange(operator, server, "ncmec")

        (report,) = await sync(home)
        assert report.problems == []
        assert report.pages >= 3  # five entries, two to a page
        assert len(report.bridged.added) == 4
        assert [s.split(":")[0] for s in report.bridged.skipped] == ["8-img-9"]
        listed_pdq, listed_md5 = records(home, pin, PDQ), records(home, pin, MD5)
        assert set(listed_pdq) == {pdq(1), pdq(2)}
        assert set(listed_md5) == {md5(1), md5(3), md5(4)}
        # img-1's two fingerprints are one entry, its hash in each list of the collection.
        assert listed_pdq[pdq(1)].entry_id == listed_md5[md5(1)].entry_id
        assert listed_pdq[pdq(1)].source == "exchange:ncmec"
        origins = provenance(home, pin, PDQ)
        assert origins[pdq(1)].record["member_id"] == 7
        assert origins[pdq(1)].record["classification"] == "A1"
        assert origins[pdq(1)].record["fingerprints"] == {"md5": md5(1), "pdq": pdq(1)}

        # NCMEC stamps a deletion when it is made, and pytx reads up to five seconds
        # before its own clock: stamped just after the checkpoint, seen two seconds on.
        with opened(home) as hub:
            (status,) = hub.exchanges.status()
        resumed = datetime.fromtimestamp(status["checkpoint"]["get_entries_max_ts"] + 1, UTC)
        server.delete(7, "img-1", timestamp=resumed)
        await asyncio.sleep(2.1)
        (gone,) = await sync(home)
        assert gone.problems == []
        assert gone.bridged.retracted == [listed_pdq[pdq(1)].entry_id]
        assert set(records(home, pin, PDQ)) == {pdq(2)}
        assert set(records(home, pin, MD5)) == {md5(3), md5(4)}
        assert removals(home, pin, PDQ) == {pdq(1): "upstream"}
        assert removals(home, pin, MD5) == {md5(1): "upstream"}


async def test_ncmec_is_read_only_in_utc(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytx writes NCMEC's time range in local time marked ``Z``: elsewhere than UTC it
    would miss hours of updates, so the hub refuses to read and says why."""
    async with NCMECServer() as server:
        server.add_image(7, "img-1", pdq=pdq(1), timestamp=utcnow() - timedelta(minutes=10))
        read_exchange(operator, server, "ncmec")
        monkeypatch.setenv("TZ", "HST10")  # a POSIX zone: no zone file needed
        time.tzset()
        try:
            (report,) = await sync(operator.home)
        finally:
            monkeypatch.undo()
            time.tzset()
        assert report.bridged.records == 0
        assert server.served == []  # nothing asked for in the wrong hours
        (problem,) = report.problems
        assert "LocalTimeError" in problem
        assert "TZ=UTC" in problem
        (again,) = await sync(operator.home)
        assert again.problems == []
        assert len(again.bridged.added) == 1


async def test_a_failed_fetch_takes_nothing_and_the_next_run_resumes(operator: Operator) -> None:
    home, pin = operator.home, operator.pinned
    async with StopNCIIServer() as server:
        server.add("ImagePDQ", pdq(1))
        read_exchange(operator, server, "stopncii")
        server.garble_next(1)
        (report,) = await sync(home)
        assert report.bridged.added == []
        assert report.published == []
        assert len(report.problems) == 1
        assert "stopncii" in report.problems[0]
        with opened(home) as hub:
            (status,) = hub.exchanges.status()
            assert hub.files.get(header_path(PDQ, 1)) is None  # nothing published
        assert status["last_error"]
        assert status["last_failure"]
        assert status["checkpoint"] == {}
        result = operator.run("exchange", "status")
        assert result.exit_code == 0
        assert "last error:" in result.stdout

        (again,) = await sync(home)
        assert again.problems == []
        assert len(again.bridged.added) == 1
        assert set(records(home, pin, PDQ)) == {pdq(1)}
        with opened(home) as hub:
            (status,) = hub.exchanges.status()
        assert status["last_error"] is None
        assert status["records"] == {"active": 1, "withdrawn": 0, "deleted": 0}


async def test_wrong_credentials_are_a_problem_and_change_nothing(operator: Operator) -> None:
    async with StopNCIIServer() as server:
        server.add("ImagePDQ", pdq(1))
        read_exchange(operator, server, "stopncii")
        secret = operator.home.parent / "wrong"
        secret.write_text("wrong-key,wrong-subscription\n")
        operator.ok("exchange", "credentials", "stopncii", str(secret))
        # The command line, on a thread of its own: the exchange serves on this loop.
        result = await asyncio.to_thread(operator.run, "exchange", "sync")
        assert result.exit_code == 1
        assert "401" in result.stderr, result.stderr
        with opened(operator.home) as hub:
            assert hub.exchanges.status()[0]["records"]["active"] == 0


async def test_an_entry_retracted_here_is_not_taken_again(operator: Operator) -> None:
    home, pin = operator.home, operator.pinned
    async with StopNCIIServer() as server:
        server.add("ImagePDQ", pdq(1))
        read_exchange(operator, server, "stopncii")
        (report,) = await sync(home)
        (entry_id,) = report.bridged.added
        operator.ok("entry", "retract", entry_id, "--reason", "retracted")
        operator.ok("publish")
        server.feedback("ImagePDQ", pdq(1), "Blocked", source="platform-a")  # touched again
        (again,) = await sync(home)
        assert again.bridged.added == []
        assert again.bridged.skipped == [f"ImagePDQ:{pdq(1)}: its entry {entry_id} was "
                                         "retracted here"]  # fmt: skip
        assert records(home, pin, PDQ) == {}


async def test_a_running_hub_reads_its_exchanges_on_its_own(operator: Operator) -> None:
    """The scheduler's ``upstreams`` job reads the exchanges after the upstream hubs."""
    with opened(operator.home) as hub:
        config = replace(hub.config, upstream_interval=1)
    (operator.home / "hub.toml").write_text(config.to_toml())
    async with StopNCIIServer() as server:
        server.add("ImagePDQ", pdq(1))
        read_exchange(operator, server, "stopncii")
        app = create_app(operator.home)
        async with TestServer(app):
            assert "upstreams" in app[SCHEDULER].job_ids()

            async def listed() -> bool:
                return set(records(operator.home, operator.pinned, PDQ)) == {pdq(1)}

            await eventually(listed, "the scheduler read the exchange and published")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--api", "threatexchange"], "'threatexchange' is not one of"),
        (["--url", "ftp://exchange.example"], "the URL is http:// or https://"),
        (["--into", "no-such-list"], "no-such-list"),
        (["--category", "spam"], "category 'spam' is not in the vocabulary"),
        (["--classification", "odd"], "classification 'odd' is not in the vocabulary"),
        (["--name", "Bad Name"], "exchange name"),
    ],
)
def test_adding_an_exchange_refuses_what_cannot_be_read(
    operator: Operator, args: list[str], message: str
) -> None:
    given = {
        "--name": "stopncii", "--api": "stopncii", "--url": "http://127.0.0.1:9/v1",
        "--into": PDQ, "--category": "ncii", "--classification": "unconfirmed",
    }  # fmt: skip
    given.update(dict(zip(args[::2], args[1::2], strict=True)))
    name = given.pop("--name")
    flat = [x for k, v in given.items() for x in (k, v)]
    result = operator.run("exchange", "add", name, *flat)
    assert result.exit_code != 0
    assert message in result.output, result.output
    with opened(operator.home) as hub:
        assert hub.exchanges.status() == []


def test_two_lists_of_one_type_and_a_type_the_api_lacks_are_refused(operator: Operator) -> None:
    with opened(operator.home) as hub:
        hub.roots.create_list("other-pdq", "pdq", label="other", list_format="entries")
        hub.roots.create_list("other-md5", "md5", label="other", list_format="entries")
        hub.roots.create_list("ncii-sha", "sha256", label="ncii", list_format="entries")
    base = ["exchange", "add", "x", "--api", "ncmec", "--url", "http://127.0.0.1:9",
            "--category", "ncii"]  # fmt: skip
    result = operator.run(*base, "--into", PDQ, "--into", "other-pdq")
    assert result.exit_code != 0
    assert "both hold pdq" in result.output
    result = operator.run(*base, "--into", PDQ, "--into", "other-md5")
    assert result.exit_code != 0
    assert "other-md5 and ncii-pdq are not of one collection" in result.output
    result = operator.run(*base, "--into", "ncii-sha")
    assert result.exit_code != 0
    assert "ncii-sha holds sha256: ncmec gives pdq, md5" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("only-one-part", "stopncii credentials are fetch_function_key,subscription_key"),
        ("a,b,c", "stopncii credentials are"),
        ("", "one line of printable ASCII"),
        ("k\u00e9y,sub", "one line of printable ASCII"),
    ],
)
def test_credentials_in_the_wrong_form_are_refused(
    operator: Operator, text: str, message: str
) -> None:
    operator.ok(
        "exchange", "add", "stopncii", "--api", "stopncii", "--url", "http://127.0.0.1:9/v1",
        "--into", PDQ, "--category", "ncii",
    )  # fmt: skip
    secret = operator.home.parent / "secret"
    secret.write_text(text)
    result = operator.run("exchange", "credentials", "stopncii", str(secret))
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert not (operator.home / "exchanges" / "stopncii" / "credentials").exists()


def test_credentials_are_a_file_only_the_hub_reads(operator: Operator) -> None:
    operator.ok(
        "exchange", "add", "nc", "--api", "ncmec", "--url", "http://127.0.0.1:9",
        "--into", PDQ, "--category", "ncii",
    )  # fmt: skip
    secret = operator.home.parent / "secret"
    secret.write_text("user:password\n")
    operator.ok("exchange", "credentials", "nc", str(secret))
    kept = operator.home / "exchanges" / "nc" / "credentials"
    assert kept.stat().st_mode & 0o777 == 0o600
    assert kept.read_text() == "user:password\n"
    with opened(operator.home) as hub:
        assert "password" not in repr(hub.exchanges.status())
    result = operator.run("exchange", "sync", "nc")
    assert result.exit_code == 1  # nothing listens at port 9
    operator.ok("exchange", "remove", "nc")
    assert not kept.exists()
    assert operator.ok("exchange", "status") == "This hub reads no exchange.\n"


def test_a_sync_without_credentials_says_what_to_do(operator: Operator) -> None:
    operator.ok(
        "exchange", "add", "nc", "--api", "ncmec", "--url", "http://127.0.0.1:9",
        "--into", MD5, "--category", "ncii",
    )  # fmt: skip
    result = operator.run("exchange", "sync")
    assert result.exit_code == 1
    assert "no credentials for exchange nc yet: 'hashhub exchange credentials nc FILE'" in (
        result.stderr
    )


def test_an_exchange_source_is_never_set_by_hand(operator: Operator) -> None:
    result = operator.run(
        "entry", "add", "--list", PDQ, "--hash", pdq(1), "--category", "ncii",
        "--classification", "confirmed", "--source", "exchange:stopncii",
    )  # fmt: skip
    assert result.exit_code != 0
    assert "a source of kind exchange is the hub's own" in result.output


async def test_the_auditor_counts_exchange_origins_as_the_hubs_own_word(
    operator: Operator, tmp_path: Path
) -> None:
    """``hashhub-audit verify`` checks each exchange origin by §7.5's rules, and reports
    how many records each exchange's origins vouch for — nothing signs them."""
    async with StopNCIIServer() as server:
        server.add("ImagePDQ", pdq(1))
        server.add("ImagePDQ", pdq(2))
        server.add("VideoMD5", md5(3))
        read_exchange(operator, server, "stopncii")
        await sync(operator.home)
    tree = export(operator.home, tmp_path / "tree")
    out = audit(
        "verify", tree, "--root-sha256", operator.pinned, "--witness",
        tmp_path / "witness.json", "--json",
    )  # fmt: skip
    assert out.code == 0, out.stdout + out.stderr
    assert out.findings() == []
    lists = {lst["list"]: lst for lst in out.json()["lists"]}
    assert lists[PDQ]["provenance"]["exchange_attested"] == {"stopncii": 2}
    assert lists[MD5]["provenance"]["exchange_attested"] == {"stopncii": 1}
    assert lists[PDQ]["provenance"]["origins_checked"] == {}
    told = audit("verify", tree, "--root-sha256", operator.pinned, "--witness",
                 tmp_path / "witness.json")  # fmt: skip
    assert told.code == 0, told.stdout + told.stderr
    assert (
        "provenance attested by this hub alone (an exchange signs nothing): "
        "2 from exchange stopncii" in told.stdout
    )
