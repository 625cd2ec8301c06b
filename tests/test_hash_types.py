"""Every place that names hash types agrees with the registry (``protocol.hashtypes``).

A hash type is declared once, in its module of ``protocol/hashtypes/``. What the
edges offer, check, store and compute is derived from ``HASH_TYPES`` at run time,
and what cannot be (a YAML document, PROTOCOL.md's table, the committed vectors) is
held to it here. ``registry_disagreements`` is also what
``tests/test_adding_a_hash_type.py`` runs after registering a type of its own, to
show which documents the guide (docs/hash-types.md) says to touch by hand.
"""

from __future__ import annotations

import importlib.resources
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

import hub.cli
import node.cli
from hub.intake import make_intake
from hub.store import migrations, open_database
from hub.web.pages import submission_choices
from node.imaging import hash_image
from node.matching import Matching
from protocol import HASH_TYPES
from protocol.hashes import MIN_PDQ_QUALITY
from protocol.hashtypes import TYPES, submission_types
from tests.node.conftest import ORIGINAL

REPO = Path(__file__).resolve().parent.parent
VECTORS = REPO / "docs" / "vectors" / "cases"


def _enums(value: Any, where: str = "") -> Iterator[tuple[str, list[Any]]]:
    """Every ``enum`` of an OpenAPI document, with where it sits."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "enum" and isinstance(item, list):
                yield where, item
            else:
                yield from _enums(item, f"{where}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _enums(item, f"{where}/{i}")


def openapi(package: str) -> dict[str, Any]:
    text = importlib.resources.files(package).joinpath("openapi.yaml").read_text(encoding="utf-8")
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def hash_type_enums(doc: dict[str, Any]) -> dict[str, list[Any]]:
    """The enums that name hash types: those holding any name the registry knows, or
    any shipped name (so an enum still listing a type no longer registered is found)."""
    known = set(HASH_TYPES) | {kind.name for kind in TYPES}
    return {where: values for where, values in _enums(doc) if known & set(values)}


def protocol_table() -> dict[str, tuple[int, str, int]]:
    """PROTOCOL.md §6.1's rows: name → (width, matching, default max_distance)."""
    text = (REPO / "PROTOCOL.md").read_text(encoding="utf-8")
    section = text.split("### 6.1 Hash types", 1)[1].split("### 6.2", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9]+)` \| (\d+) \| ([^|]+?) \| (\d+) \|$", section, re.M)
    return {name: (int(width), matching, int(distance)) for name, width, matching, distance in rows}


CASE_SCHEMAS = ("/components/schemas/Case/", "/components/schemas/CaseRecord/")
"""Where the hub's document describes a public submission (``Cases``)."""


def registry_disagreements() -> list[str]:
    """What, outside the code, does not list exactly the registered types."""
    wanted = list(HASH_TYPES)
    problems = []
    for package in ("hub", "node"):
        enums = hash_type_enums(openapi(package))
        if not enums:
            problems.append(f"{package}/openapi.yaml: no hash type enum found")
        for where, values in enums.items():
            # A case is a public submission: its type is one the public page takes.
            names = list(submission_types()) if where.startswith(CASE_SCHEMAS) else wanted
            if values != names:
                problems.append(f"{package}/openapi.yaml {where}: {values} is not {names}")
    description = openapi("node")["info"]["description"]
    for name, kind in HASH_TYPES.items():
        if not re.search(rf"\b{name} {2 * kind.length}\b", description):
            problems.append(f"node/openapi.yaml: the description gives no width for {name}")
    table = protocol_table()
    expected = {
        name: (
            kind.length,
            "by frames, §6.3 and §6.4"
            if kind.frames
            else "Hamming distance ≤ `max_distance`"
            if kind.perceptual
            else "exact",
            kind.default_max_distance,
        )
        for name, kind in HASH_TYPES.items()
    }
    if table != expected:
        problems.append(f"PROTOCOL.md §6.1: {table} is not {expected}")
    for name, kind in HASH_TYPES.items():
        # A list of frames holds entries only: its body is an entries body, its root the
        # one declaration a verifier must refuse otherwise.
        shown = (
            (f"entries-body-{name}", f"neg-root-{name}-hashes")
            if kind.frames
            else (f"body-{name}", f"neg-body-{name}-width")
        )
        for case in shown:
            if not (VECTORS / f"{case}.json").is_file():
                problems.append(f"docs/vectors: no {case}.json (scripts/make_vectors.py)")
    return problems


def test_the_documents_and_vectors_list_exactly_the_registered_types() -> None:
    assert registry_disagreements() == []


def test_the_registry_is_the_shipped_types_in_order() -> None:
    assert list(HASH_TYPES) == ["pdq", "phash", "md5", "sha256", "vpdq"]
    assert tuple(HASH_TYPES.values()) == TYPES
    assert submission_types() == {"pdq": "image", "md5": "video", "vpdq": "video"}


def test_the_cli_choices_are_the_registry() -> None:
    match = node.cli.main.commands["match"]
    option = next(p for p in match.params if p.name == "type_name")
    assert isinstance(option.type, click.Choice)
    assert list(option.type.choices) == sorted(HASH_TYPES)
    group = hub.cli.main.commands["list"]
    assert isinstance(group, click.Group)
    create = group.commands["create"]
    help_text = next(p for p in create.params if p.name == "hash_type").help or ""
    assert help_text == f"Hash type: {'|'.join(sorted(HASH_TYPES))}."


def test_the_database_knows_the_registered_types_and_takes_cases_of_the_submittable(
    tmp_path: Path,
) -> None:
    db = open_database(tmp_path / "hub.db")
    rows = set(db.execute("SELECT name, length, submitted_as FROM hash_types").fetchall())
    assert rows == {(k.name, k.length, k.submitted_as) for k in HASH_TYPES.values()}
    for i, kind in enumerate(HASH_TYPES.values()):
        insert = (
            "INSERT INTO submissions (case_number, hash_type, hash, received) "
            f"VALUES ('case-{i}', '{kind.name}', zeroblob({kind.length}), '2026-01-01')"
        )
        if kind.submitted_as is None:
            with pytest.raises(sqlite3.IntegrityError, match="not a hash type the public page"):
                db.execute(insert)
        else:
            db.execute(insert)
    with pytest.raises(sqlite3.IntegrityError, match="not a hash type the public page"):
        db.execute("UPDATE submissions SET hash_type = 'sha256'")
    db.close()


def test_an_old_database_keeps_its_cases_and_loses_the_fixed_check(tmp_path: Path) -> None:
    """A database made before the types were a table: m002's CHECK named pdq and md5."""
    path = tmp_path / "hub.db"
    old = sqlite3.connect(path, isolation_level=None)
    from sqlite_utils import Database

    migrations.apply(Database(old), stop_before="m004_known_hash_types")
    old.execute(
        "INSERT INTO submissions (case_number, hash_type, hash, quality, received) "
        "VALUES ('old', 'pdq', zeroblob(32), 90, '2026-01-01')"
    )
    old.close()
    db = open_database(path)
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'submissions'").fetchone()[0]
    assert "IN ('pdq', 'md5')" not in sql
    assert db.execute("SELECT case_number, quality FROM submissions").fetchall() == [("old", 90)]
    assert {r[0] for r in db.execute("SELECT name FROM hash_types")} == set(HASH_TYPES)
    db.close()


def test_the_intake_applies_each_types_quality_floor() -> None:
    for name, kind in HASH_TYPES.items():
        value = (bytes(range(1, kind.length + 1)) * 2)[: kind.length]
        if name in ("pdq", "phash"):  # a perceptual hash must have about half its bits set
            value = bytes([0b01010101]) * kind.length
        if kind.min_quality is None:
            assert make_intake(name, {"hash": value.hex(), "quality": 0}).quality == 0
        else:
            floor = kind.min_quality
            assert make_intake(name, {"hash": value.hex(), "quality": floor}).quality == floor
            with pytest.raises(Exception, match=f"quality {floor - 1} is below {floor}"):
                make_intake(name, {"hash": value.hex(), "quality": floor - 1})
    assert HASH_TYPES["pdq"].min_quality == MIN_PDQ_QUALITY


def test_the_submission_page_offers_the_submittable_types() -> None:
    """One choice per thing submitted, its types tried in order: every submittable type
    is one choice's, a video's frames before the digest of its file."""
    choices = submission_choices()
    offered = {name: c["media"] for c in choices for name in c["types"]}
    assert offered == submission_types()
    assert len(choices) == len(set(submission_types().values()))
    [video] = [c for c in choices if c["media"] == "video"]
    assert video["types"] == ["vpdq", "md5"]
    for c in choices:
        for name in c["types"]:
            assert (REPO / "hub" / "web" / "static" / "hashing" / f"{name}.js").is_file()


def test_a_node_computes_every_type_that_has_a_hasher() -> None:
    data = ORIGINAL.read_bytes()
    computed = {name for name, kind in HASH_TYPES.items() if kind.of_picture or kind.of_bytes}
    assert set(hash_image(data).by_type()) == computed
    from_bytes = {name for name, kind in HASH_TYPES.items() if kind.of_bytes}
    assert set(Matching.file_queries(data)) == from_bytes
    for name, values in Matching.file_queries(data).items():
        assert [len(v) for v in values] == [HASH_TYPES[name].length]


def test_the_bridge_signals_are_the_registrys() -> None:
    pytest.importorskip("threatexchange")
    from hashhub_tx import SIGNAL_TYPES

    assert set(SIGNAL_TYPES) == {n for n, k in HASH_TYPES.items() if k.signal is not None}
    for name, signal in SIGNAL_TYPES.items():
        assert f"{signal.__module__}:{signal.__name__}" == HASH_TYPES[name].signal
