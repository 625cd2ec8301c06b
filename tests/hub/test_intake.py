"""Intake: how hashes get in. Every rule, its error's line number, and nothing staged on failure.

An import is parsed whole before anything is staged (``parse_import`` then
``Lists.stage``), so a bad line anywhere leaves the hub's staged set untouched;
each failure case below checks that through a real hub.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub import intake
from hub.cli import main
from hub.core import Hub
from hub.errors import IntakeError, InvalidRequest
from hub.intake import Intake, make_intake, parse_hash, parse_import
from node.imaging import hash_image
from tests.protocol.test_hashes import PDQ_DATA, reference_pdq_hashes

MD5_A = hashlib.md5(b"a", usedforsecurity=False).hexdigest()
MD5_B = hashlib.md5(b"b", usedforsecurity=False).hexdigest()
PDQ = hashlib.sha256(b"an image").hexdigest()  # random bits: about 128 of 256 set, as in a PDQ
MD5_EMPTY = hashlib.md5(b"", usedforsecurity=False).hexdigest()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    hub = Hub.init(tmp_path / "hub", "hub.test")
    hub.roots.create_list("tid-md5", "md5")
    hub.roots.create_list("tid-pdq", "pdq")
    yield hub
    hub.close()


def import_into(hub: Hub, list_id: str, data: bytes) -> int:
    """What ``hashhub import`` and the import endpoint do: parse all, then stage."""
    return hub.lists.stage(list_id, adds=parse_import(data, hub.lists.spec(list_id).hash_type))


# -- accepted formats ---------------------------------------------------------------------


def test_plain_lines_skip_comments_and_blank_lines(hub: Hub) -> None:
    data = f"# from the 2030-01 batch\n\n{MD5_A}\n   \n{MD5_B}  # second\n#{MD5_A}\n".encode()
    items = parse_import(data, "md5")
    assert items == [Intake(bytes.fromhex(MD5_A)), Intake(bytes.fromhex(MD5_B))]
    assert import_into(hub, "tid-md5", data) == 2
    assert hub.lists.staged_count("tid-md5") == 2


def test_a_comment_with_a_comma_does_not_make_a_plain_file_csv() -> None:
    data = f"# videos, batch 2\n{MD5_A}  # first, of two\n{MD5_B}\n".encode()
    assert [i.hash.hex() for i in parse_import(data, "md5")] == [MD5_A, MD5_B]


def test_uppercase_hex_and_crlf_line_ends_are_accepted() -> None:
    data = f"{MD5_A.upper()}\r\n{MD5_B}\r\n".encode()
    assert [i.hash.hex() for i in parse_import(data, "md5")] == [MD5_A, MD5_B]


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    assert len(parse_import(b"\xef\xbb\xbf" + MD5_A.encode(), "md5")) == 1


def test_csv_with_a_header_and_optional_columns_in_any_order() -> None:
    data = (
        "Category, HASH ,quality,source,submission_id\n"
        f'"A1, urgent",{MD5_A},90,ncmec,s-1\n'
        "\n"
        f",{MD5_B},,,\n"
    ).encode()
    first, second = parse_import(data, "md5")
    assert first == Intake(bytes.fromhex(MD5_A), 90, "A1, urgent", "ncmec", "s-1")
    assert second == Intake(bytes.fromhex(MD5_B))


def test_csv_with_only_a_hash_column() -> None:
    assert len(parse_import(f"\nhash\n{MD5_A}\n{MD5_B}\n".encode(), "md5")) == 2


def test_ndjson_with_optional_fields() -> None:
    data = (
        f'{{"hash": "{PDQ}", "quality": 80, "category": "B2", "submission_id": "s-9"}}\n'
        "\n"
        f'{{"hash": "{PDQ.upper()}", "quality": "50", "source": "tid"}}\n'
    ).encode()
    first, second = parse_import(data, "pdq")
    assert first == Intake(bytes.fromhex(PDQ), 80, "B2", None, "s-9")
    assert second == Intake(bytes.fromhex(PDQ), 50, None, "tid", None)


def test_pdq_without_a_quality_is_accepted_and_quality_50_is_the_floor() -> None:
    assert parse_import(f"hash,quality\n{PDQ},50\n{PDQ},\n".encode(), "pdq")[1].quality is None


def test_parse_hash_checks_the_width_of_each_type() -> None:
    assert parse_hash(" " + "AB" * 8 + " ", "phash") == bytes.fromhex("ab" * 8)
    for type_name, digits in (("md5", 32), ("sha256", 64), ("pdq", 64), ("phash", 16)):
        with pytest.raises(IntakeError, match=f"{digits} hex digits"):
            parse_hash("0" * (digits - 2), type_name)


# -- refused, with the line that is at fault, and nothing staged -----------------------------


BAD = [
    pytest.param("md5", f"{MD5_A}\n# c\n{'z' * 32}\n", 3, "is not a md5 hash", id="bad-hex"),
    pytest.param("md5", f"{MD5_A}\n{MD5_B[:30]}\n", 2, "32 hex digits", id="wrong-width"),
    pytest.param("md5", f"{MD5_A}\n{PDQ}\n", 2, "32 hex digits", id="sha256-width-in-md5"),
    pytest.param("md5", f"{MD5_A}\n0x{MD5_B[2:]}\n", 2, "not a md5 hash", id="0x-prefix"),
    pytest.param("pdq", f"hash,quality\n{PDQ},60\n{PDQ},101\n", 3, "0 to 100", id="quality-101"),
    pytest.param("pdq", f"hash,quality\n{PDQ},-1\n", 2, "0 to 100", id="quality-negative"),
    pytest.param("pdq", f"hash,quality\n{PDQ},high\n", 2, "integer", id="quality-word"),
    pytest.param("pdq", f'{{"hash":"{PDQ}","quality":4.5}}\n', 1, "integer", id="quality-float"),
    pytest.param("pdq", f'{{"hash":"{PDQ}","quality":true}}\n', 1, "integer", id="quality-bool"),
    pytest.param("pdq", f"hash,quality\n{PDQ},49\n", 2, "PDQ quality 49 is below 50", id="pdq-49"),
    pytest.param(
        "pdq", f'{{"hash":"{PDQ}"}}\n{{"hash":"{PDQ}","quality":10}}\n', 2, "below 50", id="pdq-10"
    ),
    pytest.param("md5", f"hash,colour\n{MD5_A},red\n", 1, "unknown column", id="csv-unknown"),
    pytest.param("md5", f"hash,hash\n{MD5_A},{MD5_A}\n", 1, "each column once", id="csv-dup-col"),
    pytest.param("md5", "quality,source\n60,x\n", 1, "'hash' column", id="csv-no-hash"),
    pytest.param(
        "md5", f"hash,source\n{MD5_A},x\n{MD5_B}\n", 3, "1 columns, header has 2", id="csv-ragged"
    ),
    pytest.param("md5", f'{{"hash":"{MD5_A}"}}\n[1]\n', 2, "JSON object", id="ndjson-array"),
    pytest.param("md5", f'{{"hash":"{MD5_A}"}}\n"x"\n', 2, "JSON object", id="ndjson-string"),
    pytest.param(
        "md5", f'{{"hash":"{MD5_A}"}}\n{{"hash":"{MD5_B}","v":1}}\n', 2, "unknown field", id="nd-f"
    ),
    pytest.param("md5", f'{{"hash":"{MD5_A}"}}\n{{"hash":\n', 2, "invalid JSON", id="ndjson-bad"),
    pytest.param("md5", '{"hash": 12}\n', 1, "must be a string", id="ndjson-hash-number"),
    pytest.param("md5", '{"quality": 60}\n', 1, "missing 'hash'", id="ndjson-no-hash"),
    pytest.param("md5", f"hash,category\n{MD5_A},a\x07b\n", 2, "printable", id="control-char"),
    pytest.param("md5", f"hash,source\n{MD5_A},{'s' * 257}\n", 2, "256", id="long-text"),
    pytest.param(
        "pdq", f"{PDQ}\n{'0' * 64}\n", 2, "PDQ hash has 0 of 256 bits set", id="pdq-all-zero"
    ),
    pytest.param(
        "pdq",
        f"hash,quality\n{PDQ},90\n{'F' * 64},100\n",
        3,
        "PDQ hash has 256 of 256 bits set",
        id="pdq-all-one-quality-100",
    ),
    pytest.param(
        "pdq", f'{{"hash":"{"01" * 32}","quality":100}}\n', 1, "32 of 256 bits", id="pdq-32-bits"
    ),
    pytest.param("md5", f"{MD5_A}\n{'0' * 32}\n", 2, "MD5 hash is all zeros", id="md5-zero"),
    pytest.param("md5", f"{MD5_A}\n{'f' * 32}\n", 2, "MD5 hash is all ones", id="md5-ones"),
    pytest.param("md5", f"{MD5_A}\n{MD5_EMPTY}\n", 2, "digest of an empty file", id="md5-empty"),
]


@pytest.mark.parametrize(("type_name", "text", "line", "message"), BAD)
def test_a_bad_line_fails_the_whole_import_with_its_line_number(
    hub: Hub, type_name: str, text: str, line: int, message: str
) -> None:
    list_id = f"tid-{type_name}"
    with pytest.raises(IntakeError, match=message) as caught:
        import_into(hub, list_id, text.encode())
    assert caught.value.line == line
    assert str(caught.value).startswith(f"line {line}: ")
    assert hub.lists.staged_count(list_id) == 0


def test_non_utf8_bytes_are_refused_naming_their_line(hub: Hub) -> None:
    data = f"{MD5_A}\n{MD5_B}\n".encode() + b"\xff\xfe" + MD5_A.encode()
    with pytest.raises(IntakeError, match="not UTF-8") as caught:
        import_into(hub, "tid-md5", data)
    assert caught.value.line == 3
    assert hub.lists.staged_count("tid-md5") == 0


@pytest.mark.parametrize("data", [b"", b"\n\n", b"# only a comment\n"], ids=["empty", "blank", "#"])
def test_a_file_without_hashes_is_refused(hub: Hub, data: bytes) -> None:
    with pytest.raises(IntakeError, match="holds no hashes"):
        import_into(hub, "tid-md5", data)
    assert hub.lists.staged_count("tid-md5") == 0


def test_an_import_over_the_line_cap_is_refused(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "MAX_IMPORT_LINES", 3)
    data = "\n".join([MD5_A] * 4).encode()
    with pytest.raises(IntakeError, match="more than 3 hashes") as caught:
        import_into(hub, "tid-md5", data)
    assert caught.value.line == 4
    assert hub.lists.staged_count("tid-md5") == 0


def test_a_hostile_megabyte_line_gets_a_short_message(hub: Hub) -> None:
    data = MD5_A.encode() + b"\n" + b"A" * 1_000_000
    with pytest.raises(IntakeError) as caught:
        import_into(hub, "tid-md5", data)
    assert caught.value.line == 2
    assert len(str(caught.value)) < 200
    assert hub.lists.staged_count("tid-md5") == 0


def test_the_import_command_names_the_file_and_line_and_stages_nothing(
    hub: Hub, tmp_path: Path
) -> None:
    bad = tmp_path / "batch.csv"
    bad.write_text(f"hash,quality\n{PDQ},70\n{PDQ},49\n")
    result = CliRunner().invoke(main, ["import", "tid-pdq", str(bad), "--home", str(hub.home)])
    assert result.exit_code == 1
    assert f"Error: {bad}: line 3: PDQ quality 49 is below 50" in result.output
    assert "Traceback" not in result.output
    assert hub.lists.staged_count("tid-pdq") == 0


# -- degenerate hashes: refused wherever they come in ------------------------------------------


def test_every_reference_pdq_hash_is_taken_in_one_import(hub: Hub) -> None:
    """Meta's reference PDQ hashes (1,480 of them): not one is refused as degenerate."""
    hashes = reference_pdq_hashes()
    data = "".join(f"{h.hex()}\n" for h in hashes).encode()
    assert [item.hash for item in parse_import(data, "pdq")] == list(hashes)
    assert import_into(hub, "tid-pdq", data) == len(hashes)


def test_what_the_node_hasher_makes_of_each_reference_picture_is_taken_in() -> None:
    """Every reference picture the node's PDQ hasher finds good enough is accepted."""
    pictures = sorted(p for p in PDQ_DATA.rglob("*") if p.suffix in {".jpg", ".png"})
    assert len(pictures) == 30
    hashed = [hash_image(p.read_bytes()) for p in pictures]
    good = [h for h in hashed if h.pdq_quality >= 50]
    assert len(good) == 27  # small.jpg, q0003.jpg and q0004.jpg are below 50
    for h in good:
        make_intake("pdq", {"hash": h.pdq.hex(), "quality": h.pdq_quality})
    for h in hashed:
        make_intake("phash", {"hash": h.phash.hex()})


def test_a_sha256_placeholder_or_empty_file_digest_is_refused_naming_its_line() -> None:
    good = hashlib.sha256(b"a video").hexdigest()
    for bad, message in (
        ("0" * 64, "SHA-256 hash is all zeros"),
        (hashlib.sha256(b"").hexdigest(), "digest of an empty file"),
    ):
        with pytest.raises(IntakeError, match=message) as caught:
            parse_import(f"{good}\n{bad}\n".encode(), "sha256")
        assert caught.value.line == 2


def test_staging_a_degenerate_hash_directly_is_refused_and_stages_nothing(hub: Hub) -> None:
    """``Lists.stage`` applies the rule too: no case, script or bridge can go around intake."""
    good = Intake(bytes.fromhex(PDQ), quality=90)
    with pytest.raises(InvalidRequest, match="PDQ hash has 0 of 256 bits set") as caught:
        hub.lists.stage("tid-pdq", adds=[good, Intake(bytes(32), quality=100)])
    assert str(caught.value).endswith("refused as degenerate")
    with pytest.raises(InvalidRequest, match="digest of an empty file"):
        hub.lists.stage("tid-md5", adds=[Intake(bytes.fromhex(MD5_EMPTY))])
    assert hub.lists.staged_count("tid-pdq") == 0
    assert hub.lists.staged_count("tid-md5") == 0


def test_a_degenerate_hash_can_still_be_removed(hub: Hub) -> None:
    """Removals are not judged: an entry listed before the rule can always be retracted."""
    assert hub.lists.stage("tid-pdq", removes=[parse_hash("0" * 64, "pdq")]) == 1
