"""Hostile input against both HTTP APIs: every answer is the one the served document allows.

schemathesis reads the OpenAPI document each app serves at ``/openapi.yaml`` and
sends requests made from it to the real apps on loopback (real SQLite, real
Ed25519 keys, real pictures): valid requests (``positive``) and requests that
break the document on purpose (``negative``: wrong types, missing fields,
malformed path segments and bodies). Each operation is sent with the right
credential (the admin token on the operator API, the node token on the tree and
acks, the platform's API token on the node), with another principal's, with none
and with a token never issued. Every answer must

- not be a 5xx,
- have a status, a content type, headers and a body that the document declares
  for the operation,
- and, for a request that breaks the document, be a 4xx refusal.

Each operation runs under a fixed number of examples with derandomized
generation, so a run is the same on every machine; the failures of all
operations are collected and reported together.

State the fuzzer changes: creating lists and tokens, enrolling nodes, staging,
publishing and rotating keys all write to the hub, and the fuzzer is allowed to
do it — those are the paths a hostile operator's client reaches too. None of them
takes the fuzzer's own credentials away, except revoking a node: that operation
runs last, so whatever node id it happens to revoke, no later request depends on
it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from schemathesis import GenerationMode

from hub.app import create_app
from hub.config import CONFIG_NAME, HubConfig
from hub.intake import Intake
from node.config import read_secret
from protocol import SigningKey
from tests.hub.conftest import LIST, NODE_ID, PUBLIC_LIST, bearer, init_hub, opened
from tests.node.fixtures_sync import md5
from tests.reliability.openapi_support import (
    FuzzRun,
    Operation,
    Plan,
    load_document,
    load_served_document,
    operations_of,
)
from tests.web.node_support import match, node_of, start_hub, start_node_site

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
PICTURES = (
    TESTDATA / "pdq" / "bridge-mods" / "aaa-orig.jpg",  # on the node's PDQ list
    TESTDATA / "pdq" / "misc-images" / "small.jpg",
    TESTDATA / "pdq" / "misc-images" / "wee.jpg",
)

MAX_EXAMPLES = int(os.environ.get("HASHHUB_FUZZ_EXAMPLES", "10"))
"""Examples per operation and plan (at most: an operation with few possible inputs
runs out sooner). ``HASHHUB_FUZZ_EXAMPLES=200`` makes a longer hunt."""

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
JSON = "application/json"
WRONG = Plan("wrong", bearer("hhn_" + "never-issued-" * 3), POSITIVE)
"""A well-formed token neither server ever issued."""
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _documented(schema: Any) -> set[str]:
    """Every operation the document declares, as ``METHOD /path``."""
    paths = schema.raw_schema["paths"]
    return {
        f"{method.upper()} {path}"
        for path, item in paths.items()
        for method in item
        if method in METHODS
    }


def _assert_clean(name: str, run: FuzzRun, documented: set[str]) -> None:
    """Every documented operation was sent, and no answer differed from the document."""
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(run.statuses.items()))
    print(
        f"{name}: {len(run.operations)} operations, {run.requests_sent} requests "
        f"({statuses}), {len(run.findings)} findings"
    )
    assert run.operations == documented
    assert not run.findings, f"{len(run.findings)} findings:\n" + "\n".join(
        str(finding) for finding in run.findings
    )


# -- the hub ---------------------------------------------------------------------------------


def _hub_order(operation: Operation) -> tuple[int, str]:
    """Read-only operations first, then those that write; revoking a node last of all."""
    method = operation.method.upper()
    if method == "DELETE":
        return (2, operation.label)
    if method == "POST":
        return (1, operation.label)
    return (0, operation.label)


def _hub_plans(operation: Operation, tokens: Mapping[str, str], body_sha256: str) -> list[Plan]:
    """How each hub operation is sent: as whom, valid or not, at which list."""
    path = operation.path
    if path.startswith("/v1/admin/"):
        admin = bearer(tokens["admin"])
        plans = [
            Plan("admin", admin, POSITIVE),
            Plan("admin", admin, NEGATIVE),
            Plan("none", {}, POSITIVE),
            Plan("node", bearer(tokens["node"]), POSITIVE),
        ]
        if "{list_id}" in path:  # a list that exists, so that the body is what is judged
            plans += [
                Plan("admin", admin, POSITIVE, {"list_id": LIST}),
                Plan("admin", admin, NEGATIVE, {"list_id": LIST}),
            ]
        return plans
    if path == "/v1/acks" or path.startswith("/v1/contributions"):
        node = bearer(tokens["node"])
        return [
            Plan("node", node, POSITIVE),
            Plan("node", node, NEGATIVE),
            Plan("none", {}, POSITIVE),
        ]
    if path.startswith("/lists/"):
        node = bearer(tokens["node"])
        # The published files themselves: the private list as its node and as nobody,
        # the public list as nobody; then anything the document allows, and what it
        # does not.
        published: dict[str, Any] = {"list_id": LIST}
        if "{version}" in path:  # LIST has a snapshot at version 2 only
            published["version"] = "2" if "/snapshot/" in path else "1"
        if "{sha256}" in path:
            published["sha256"] = body_sha256
        public = {**published, "list_id": PUBLIC_LIST}
        if "{sha256}" in path:
            public.pop("sha256")
        return [
            Plan("node", node, POSITIVE, published),
            Plan("none", {}, POSITIVE, published),
            Plan("none", {}, POSITIVE, public),
            Plan("node", node, POSITIVE),
            Plan("node", node, NEGATIVE),
        ]
    if path.startswith("/root/"):
        return [
            Plan("none", {}, POSITIVE, {"version": "1"}),
            Plan("none", {}, POSITIVE),
            Plan("none", {}, NEGATIVE),
        ]
    return [Plan("none", {}, POSITIVE), Plan("none", {}, NEGATIVE)]


def _lift_rate_limits(home: Path) -> None:
    """Let every request reach its handler: the fuzzer sends more than a client's burst.

    With the default limits a few hundred of its requests would be answered 429 by the
    limiter before any handler saw them, and after the wrong-token plans even its valid
    tokens would be, once the limiter forgot them. (The 429 is documented on every
    operation, and the node's run keeps its default limits.)
    """
    config = HubConfig.load(home, environ={})
    lifted = replace(
        config, rate_burst=100_000, credential_rate_burst=100_000, auth_failure_burst=100_000
    )
    (home / CONFIG_NAME).write_text(lifted.to_toml(), encoding="utf-8")


@pytest.mark.slow
async def test_the_hub_answers_every_request_as_its_document_says(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    init_hub(home)
    _lift_rate_limits(home)
    with opened(home) as hub:
        tokens = {
            "admin": hub.access.create_operator_token("admin", "fuzzer"),
            "node": hub.access.enrol_node(NODE_ID, SigningKey.generate().public, [LIST]),
        }
    app = create_app(home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        header = await client.get(f"/lists/{LIST}/delta/1.json", headers=bearer(tokens["node"]))
        assert header.status == 200, await header.text()
        body_sha256 = json.loads(await header.read())["body"]["sha256"]
        base_url = str(client.make_url("")).rstrip("/")

        def fuzz() -> tuple[FuzzRun, set[str]]:
            schema = load_served_document(base_url)
            operations = sorted(operations_of(schema), key=_hub_order)
            run = FuzzRun(base_url, max_examples=MAX_EXAMPLES)
            for operation in operations:
                run.run(operation, [*_hub_plans(operation, tokens, body_sha256), WRONG])
            return run, _documented(schema)

        run, documented = await asyncio.to_thread(fuzz)
    _assert_clean("hub", run, documented)


# -- the node --------------------------------------------------------------------------------


def _node_plans(operation: Operation, api: Mapping[str, str], match_id: str) -> list[Plan]:
    plans = [
        Plan("platform", api, POSITIVE),
        Plan("platform", api, NEGATIVE),
        Plan("none", {}, POSITIVE),
        WRONG,
    ]
    if "{match_id}" in operation.path:
        plans.insert(0, Plan("platform", api, POSITIVE, {"match_id": match_id}))
    if operation.path in ("/v1/match", "/v1/content"):
        # Real pictures: schemathesis cannot make one up (its image bodies are random
        # bytes). The query around each is generated.
        plans[:0] = [
            Plan("platform", api, POSITIVE, body=picture.read_bytes(), media_type="image/jpeg")
            for picture in PICTURES
        ]
    if operation.path == "/v1/content":
        # Random hashes are never of the right width; a registration that succeeds is
        # what checks the 201 answer against the document.
        listed = {"content_id": "photo-1", "hashes": [{"type": "md5", "hash": md5(0).hex()}]}
        plans.insert(0, Plan("platform", api, POSITIVE, body=listed, media_type=JSON))
    return plans


@pytest.mark.slow
async def test_the_node_answers_every_request_as_its_document_says(tmp_path: Path) -> None:
    hub = await start_hub(tmp_path / "hub")
    try:
        client = await start_node_site(tmp_path / "node", hub)
        try:
            api = bearer(read_secret(node_of(client).home / "api-token"))
            match_id = await match(client, 0)
            base_url = str(client.make_url("")).rstrip("/")

            def fuzz() -> tuple[FuzzRun, set[str]]:
                schema = load_served_document(base_url, api)
                run = FuzzRun(base_url, max_examples=MAX_EXAMPLES)
                for operation in operations_of(schema):
                    run.run(operation, _node_plans(operation, api, match_id))
                return run, _documented(schema)

            run, documented = await asyncio.to_thread(fuzz)
        finally:
            await client.close()
    finally:
        await hub.stop()
    _assert_clean("node", run, documented)


# -- the checks can fail -----------------------------------------------------------------------


@pytest.mark.slow
async def test_an_answer_the_document_does_not_allow_is_reported(tmp_path: Path) -> None:
    """Against a document that says less than the server does, the same run reports each
    difference: the checks above are not vacuous.

    The changed document leaves out the 404 of root files, adds a required field to
    the error shape and a required header to the file answer, and calls a root file
    CSV.
    """
    home = tmp_path / "hub"
    init_hub(home)
    app = create_app(home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        served = await client.get("/openapi.yaml")
        document = yaml.safe_load(await served.text())
        root = copy.deepcopy(document["paths"]["/root/{version}.json"])
        del root["get"]["responses"]["404"]
        document["paths"] = {"/root/{version}.json": root}
        error = document["components"]["schemas"]["Error"]["properties"]["error"]
        error["required"] = [*error["required"], "detail"]
        answer = document["components"]["responses"]["JsonFile"]
        answer["headers"]["Hashhub-Never-Sent"] = {"required": True, "schema": {"type": "string"}}
        answer["content"] = {"text/csv": {}}
        base_url = str(client.make_url("")).rstrip("/")

        def fuzz() -> FuzzRun:
            (operation, *_) = operations_of(load_document(document))
            run = FuzzRun(base_url, max_examples=20)
            run.run(operation, [Plan("none", {}, POSITIVE), Plan("none", {}, NEGATIVE)])
            return run

        run = await asyncio.to_thread(fuzz)
    found = {(finding.mode, finding.failure.partition(":")[0]) for finding in run.findings}
    assert ("positive", "Undocumented status code") in found, run.findings
    assert ("negative", "Response violates schema") in found, run.findings
    assert ("positive", "Missing required response headers") in found, run.findings
    assert ("positive", "Undocumented Content-Type") in found, run.findings


# -- what the fuzzer found, held by hand ------------------------------------------------------


async def _refused(response: Any, needle: str) -> None:
    assert response.status == 400, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == "invalid_request"
    assert needle in error["message"], error


async def test_the_hub_refuses_an_unknown_query_parameter_and_an_empty_publish(
    tmp_path: Path,
) -> None:
    """A misspelt query parameter is a 400, not ignored; ``"lists": null`` or ``[]`` in a
    publish is a 400, not "publish every list"; nothing is published by either."""
    home = tmp_path / "hub"
    init_hub(home)
    with opened(home) as hub:
        admin = bearer(hub.access.create_operator_token("admin", "fuzzer"))
        hub.lists.stage(LIST, adds=[Intake(md5("staged"))])
        before = {entry.id: entry.version for entry in hub.reports.status().lists}
    app = create_app(home, schedule=False)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        await _refused(await client.get("/v1/admin/actions?limt=5", headers=admin), "'limt'")
        await _refused(await client.get("/v1/admin/acks?nod=x", headers=admin), "'nod'")
        empty: tuple[dict[str, Any], ...] = ({"lists": None}, {"lists": []})
        for body in empty:
            await _refused(
                await client.post("/v1/admin/publish", json=body, headers=admin), "'lists'"
            )
        stage = f"/v1/admin/lists/{LIST}/stage"
        await _refused(await client.post(stage, json={"removes": None}, headers=admin), "'removes'")
    with opened(home) as hub:
        after = {entry.id: entry.version for entry in hub.reports.status().lists}
    assert after == before


async def test_the_node_refuses_an_unknown_query_parameter(tmp_path: Path) -> None:
    """``?dihedal=1`` would otherwise check an upload without its rotations, silently."""
    hub = await start_hub(tmp_path / "hub")
    try:
        client = await start_node_site(tmp_path / "node", hub)
        try:
            api = bearer(read_secret(node_of(client).home / "api-token"))
            picture = {**api, "Content-Type": "image/jpeg"}
            data = PICTURES[0].read_bytes()
            answer = await client.post("/v1/match?dihedal=1", data=data, headers=picture)
            await _refused(answer, "'dihedal'")
            answer = await client.post(
                "/v1/content?content_id=c-1&dihedal=1", data=data, headers=picture
            )
            await _refused(answer, "'dihedal'")
            await _refused(await client.get("/v1/matches?opn=1", headers=api), "'opn'")
            assert node_of(client).matching.recent_matches() == []
            assert node_of(client).status()["matches_awaiting_outcome"] == 0
        finally:
            await client.close()
    finally:
        await hub.stop()
