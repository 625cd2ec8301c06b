"""docs/hash-types.md, followed for a made-up type: BLAKE2s of a file's bytes.

The guide says a new type is one module declaring a ``HashType``, registered in
``protocol/hashtypes/__init__.py``. Here the module is this file and the type is
registered only for the test (it does not ship): the ``blake2s`` fixture registers
it and takes it out again, so every other test sees the shipped registry. With it
registered, the real code takes it end to end with no other change — a hub
declares, stages and publishes a list of it, a node verifies the update, computes
the hash of an upload and matches it — and the only places still to edit by hand
are those the guide lists (the OpenAPI enums, PROTOCOL.md §6.1, the vectors), which
``tests/test_hash_types.py`` reports.

BLAKE2s is 32 bytes, like SHA-256: a width the wire and the matcher already take
(the guide says what a new width needs too).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from hub.app import create_app as create_hub_app
from hub.core import Hub
from hub.intake import Intake, parse_hash
from hub.store import open_database
from node.cli import _hash_argument
from node.imaging import file_hashes, hash_image
from node.matcher import ListIndex
from node.service import Node, run_sync
from protocol import HASH_TYPES, DeltaBody, ListSpec
from protocol.hashes import degenerate_reason
from protocol.hashtypes import TYPES, HashType, register, submission_types
from tests.node.conftest import ORIGINAL, HubServer, init_node_home
from tests.test_hash_types import registry_disagreements

LIST_ID = "demo-blake2s"


# -- the module the guide says to write (protocol/hashtypes/blake2s.py) -------------------


def of_bytes(data: bytes) -> bytes:
    """BLAKE2s-256 of the bytes as uploaded (32 bytes)."""
    return hashlib.blake2s(data).digest()


BLAKE2S = HashType("blake2s", 32, False, 0, label="BLAKE2s", of_bytes=of_bytes)

# -------------------------------------------------------------------------------------------


@pytest.fixture
def blake2s() -> Iterator[HashType]:
    """Registered as ``TYPES`` registers the shipped types; removed again afterwards."""
    register(BLAKE2S)
    try:
        yield BLAKE2S
    finally:
        del HASH_TYPES[BLAKE2S.name]
    assert tuple(HASH_TYPES.values()) == TYPES


def test_the_registry_refuses_a_second_type_of_one_name_and_a_width_the_matcher_cannot_pack(
    blake2s: HashType,
) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(HashType("blake2s", 16, False, 0))
    with pytest.raises(ValueError, match="multiple of 8"):
        HashType("sha1", 20, False, 0)


def test_the_protocol_takes_it(blake2s: HashType) -> None:
    value = of_bytes(b"a file")
    spec = ListSpec(LIST_ID, "blake2s", 0, label="demo")
    assert spec.hash_length == 32
    body = DeltaBody.build("blake2s", [], [value])
    assert body.to_bytes().startswith(b"hashhub.body.v1 blake2s\n")
    assert DeltaBody.from_bytes(body.to_bytes(), "blake2s") == body
    assert degenerate_reason("blake2s", value) is None
    assert "all zeros" in (degenerate_reason("blake2s", bytes(32)) or "")


async def test_a_real_hub_publishes_it_and_a_real_node_verifies_and_matches_it(
    blake2s: HashType, tmp_path: Path
) -> None:
    upload = ORIGINAL.read_bytes()
    listed = of_bytes(upload)
    home = tmp_path / "hub"
    hub = Hub.init(home, "hub.test", root_keys=1, root_threshold=1, publish_interval=0)
    try:
        root = hub.roots.create_list(LIST_ID, "blake2s", label="demo")
        assert root.lists[LIST_ID].max_distance == 0  # the type's default
        hub.lists.stage(LIST_ID, adds=[Intake(parse_hash(listed.hex().upper(), "blake2s"))])
        hub.publishing.publish()
        admin_token = hub.access.create_operator_token("admin", "tests")
    finally:
        hub.close()

    app = create_hub_app(home, schedule=False)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        server = HubServer(home, f"http://{host}:{port}", app, admin_token)
        node_home = init_node_home(tmp_path / "node", server, lists=(LIST_ID,))
        node = Node.open(node_home)
        try:
            async with aiohttp.ClientSession() as session:
                outcomes = await run_sync(node, session)
            assert [(o.list_id, o.status, o.to_version) for o in outcomes] == [
                (LIST_ID, "updated", 1)
            ]
            # An upload's hashes include the new type's, computed by its own function.
            queries = node.matching.file_queries(upload)
            assert queries["blake2s"] == [listed]
            assert hash_image(upload).by_type()["blake2s"] == listed
            found = node.matching.match_hashes(queries, one_item=True)
            assert [(m.list_id, m.hash_type, m.hash, m.distance) for m in found] == [
                (LIST_ID, "blake2s", listed, 0)
            ]
        finally:
            node.close()
    finally:
        await runner.cleanup()


def test_the_edges_derive_it(blake2s: HashType, tmp_path: Path) -> None:
    value = of_bytes(b"another file")
    # The node's matcher and its hex-hash argument.
    index = ListIndex.from_snapshot("blake2s", 0, value)
    assert [[m.hash for m in hits] for hits in index.match([value])] == [[value]]
    assert _hash_argument(value.hex(), "blake2s") == ("blake2s", value)
    assert file_hashes(b"another file")["blake2s"] == value
    # The hub's database knows it; the public page does not take it (no submitted_as).
    db = open_database(tmp_path / "hub.db")
    assert ("blake2s", 32, None) in db.execute("SELECT * FROM hash_types").fetchall()
    with pytest.raises(sqlite3.IntegrityError, match="not a hash type the public page"):
        db.execute(
            "INSERT INTO submissions (case_number, hash_type, hash, received) "
            "VALUES ('c', 'blake2s', ?, '2026-01-01')",
            [value],
        )
    db.close()
    assert "blake2s" not in submission_types()
    # What is kept by hand is reported until it is edited: exactly what the guide lists.
    problems = registry_disagreements()
    assert any(p.startswith("hub/openapi.yaml") and "blake2s" not in p[:40] for p in problems)
    assert any(p.startswith("node/openapi.yaml") for p in problems)
    assert any(p.startswith("PROTOCOL.md §6.1") for p in problems)
    assert "docs/vectors: no body-blake2s.json (scripts/make_vectors.py)" in problems
    assert all(p.split(" ")[0].rstrip(":") in _HAND_KEPT for p in problems), problems


_HAND_KEPT = {"hub/openapi.yaml", "node/openapi.yaml", "PROTOCOL.md", "docs/vectors"}


def test_a_submittable_type_is_taken_by_an_existing_database(tmp_path: Path) -> None:
    """A registry that grows does not leave an old database refusing the new type."""
    path = tmp_path / "hub.db"
    open_database(path).close()  # made while the type was unknown
    kind = HashType("blake2s", 32, False, 0, submitted_as="video", of_bytes=of_bytes)
    register(kind)
    try:
        db = open_database(path)
        db.execute(
            "INSERT INTO submissions (case_number, hash_type, hash, received) "
            "VALUES ('c', 'blake2s', zeroblob(32), '2026-01-01')"
        )
        db.close()
    finally:
        del HASH_TYPES[kind.name]
    db = open_database(path)  # and one that shrinks stops taking it
    assert "blake2s" not in {r[0] for r in db.execute("SELECT name FROM hash_types")}
    db.close()
