"""A dihedral match names the variant its distance belongs to; ``match`` says by its
exit status whether anything matched. Through the real CLI and the real API, on a
node synced from the real hub on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from node.api.keys import NODE, SESSION
from node.app import create_app
from node.cli import EXIT_NO_MATCH
from node.matching import DIHEDRAL_TRANSFORMS, DihedralQueries
from node.service import run_sync
from tests.node.conftest import DIHEDRAL, MD5_LIST, PDQ_LIST, HubServer, md5, original_pdq
from tests.node.test_api import bearer
from tests.node.test_cli import GUIDE, invoke, invoke_now, ok

ROTATED = DIHEDRAL / "bridge-2-rotate-90.jpg"


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@pytest.fixture
async def synced(node_home: Path, hub_server: HubServer) -> Path:
    ok(await invoke("sync", "--home", str(node_home)))
    return node_home


async def test_the_cli_names_the_variant_and_its_hash_with_the_distance(synced: Path) -> None:
    home = str(synced)
    answer = json.loads(
        ok(await invoke("match", "--home", home, "--dry-run", "--json", "--dihedral", str(ROTATED)))
    )
    [found] = answer[str(ROTATED)]
    assert found["list"] == PDQ_LIST
    assert found["transform"] in DIHEDRAL_TRANSFORMS
    assert found["transform"] != "original"  # the upright picture is a quarter turn away
    # The distance is the variant's own, not the upright query's.
    assert distance(found["query"], found["hash"]) == found["distance"]
    line = ok(await invoke("match", "--home", home, "--dry-run", "--dihedral", str(ROTATED)))
    assert (
        f"pdq distance {found['distance']}  listed {found['hash']}  "
        f"variant {found['transform']} {found['query']}  not recorded (dry run)"
    ) in line


async def test_without_dihedral_a_match_has_no_variant(synced: Path) -> None:
    answer = json.loads(ok(await invoke("match", "--home", str(synced), "--json", md5(2).hex())))
    [found] = answer[md5(2).hex()]
    assert "transform" not in found
    assert found["query"] == found["hash"] == md5(2).hex()


async def test_the_api_answers_the_variant_with_its_distance(
    node_home: Path, hub_server: HubServer
) -> None:
    app = create_app(node_home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        await run_sync(app[NODE], app[SESSION])
        response = await client.post(
            "/v1/match?dihedral=1",
            data=ROTATED.read_bytes(),
            headers=bearer(node_home) | {"Content-Type": "image/jpeg"},
        )
        assert response.status == 200, await response.text()
        body = await response.json()
    [found] = body["matches"]
    assert found["query"] in body["hashes"]["pdq"]
    assert found["query"] != body["hashes"]["pdq"][0]  # not the upright hash
    assert distance(found["query"], found["hash"]) == found["distance"]
    assert found["transform"] in DIHEDRAL_TRANSFORMS
    assert found["hash"] == original_pdq().hex()


def test_a_symmetric_picture_names_every_turn_of_one_hash() -> None:
    same, other = b"\1" * 32, b"\2" * 32
    queries = DihedralQueries([same, other, same, other, same, same, other, other])
    assert list(queries) == [same, other]
    assert queries.transforms == [
        "original/rotate-180/flip-x/flip-y",
        "rotate-90/rotate-270/flip-diagonal/flip-antidiagonal",
    ]


# -- the exit status of match -----------------------------------------------------------------


async def test_match_exits_0_when_anything_matched_and_6_when_nothing_did(synced: Path) -> None:
    home = str(synced)
    hit, miss = md5(2).hex(), md5("nope").hex()
    assert (await invoke("match", "--home", home, "--dry-run", hit, miss)).exit_code == 0
    nothing = await invoke("match", "--home", home, "--dry-run", miss)
    assert nothing.exit_code == EXIT_NO_MATCH, nothing.output
    assert f"{miss}: no match" in nothing.stdout
    as_json = await invoke("match", "--home", home, "--dry-run", "--json", miss)
    assert as_json.exit_code == EXIT_NO_MATCH
    assert json.loads(as_json.stdout) == {miss: []}
    # A mistake stays a mistake, distinct from "no match".
    assert (await invoke("match", "--home", home, "no-such-file")).exit_code == 1
    assert MD5_LIST in ok(await invoke("match", "--home", home, "--dry-run", hit))


def test_matchs_exit_status_is_documented() -> None:
    help_text = invoke_now("match", "--help").stdout
    assert "0  at least one item matched" in help_text
    assert f"{EXIT_NO_MATCH}  no item matched" in help_text
    assert "exit 0 (matched) or 6 (no match)" in GUIDE.read_text(encoding="utf-8")
