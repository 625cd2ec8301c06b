"""The operator API on lists: declaring them, staging and importing hashes, publishing, counts.

Apart from the other operator routes because these carry the large bodies (a
stage or an import of up to ``ADMIN_BODY_BYTES``, parsed on a worker thread so
the event loop keeps answering nodes) and change what the hub publishes; their
roles are in ``hub.api.admin.ADMIN_ROUTES``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from hub.api.requests import Fields, check_list_id, json_object
from hub.appkeys import CONFIG, HUB, METRICS
from hub.core import Hub, Principal
from hub.errors import IntakeError, InvalidRequest
from hub.http import after_publish, invalidate_caches, read_body
from hub.intake import Intake, make_intake, parse_hash, parse_import
from hub.services.publishing import PublishResult

__all__ = [
    "ADMIN_BODY_BYTES",
    "admin_counts",
    "admin_create_list",
    "admin_import",
    "admin_lists",
    "admin_publish",
    "admin_stage",
]

ADMIN_BODY_BYTES = 64 * 1024 * 1024
"""Cap on a stage or import request body; bigger imports go through the CLI."""


async def admin_lists(request: web.Request, principal: Principal) -> web.StreamResponse:
    summaries = await request.app[HUB].call(lambda hub: hub.lists.summaries())
    return web.json_response({"lists": [s.to_dict() for s in summaries]})


async def admin_create_list(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = Fields(
        await json_object(request, request.app[CONFIG].max_ack_bytes),
        {"id", "hash_type", "max_distance", "label", "snapshot_every", "public", "format"},
    )
    list_id = check_list_id(body.text("id", max_len=64))
    hash_type = body.text("hash_type", max_len=16)
    max_distance = body.integer("max_distance", minimum=0, maximum=256)
    label = body.text("label", default="", max_len=128)
    snapshot_every = body.integer("snapshot_every", minimum=1, maximum=1_000_000)
    public = body.boolean("public", default=False)
    list_format = body.text("format", default="hashes", max_len=32)
    root = await request.app[HUB].call(
        lambda hub: hub.roots.create_list(
            list_id,
            hash_type,
            max_distance=max_distance,
            label=label,
            snapshot_every=snapshot_every,
            public=public,
            list_format=list_format,
            who=principal.subject,
        )
    )
    invalidate_caches(request.app)
    request.app[METRICS].list_version.labels(list_id).set(0)
    return web.json_response({"list": list_id, "root_version": root.version}, status=201)


async def _hash_type(request: web.Request, list_id: str) -> str:
    return await request.app[HUB].call(lambda hub: hub.lists.spec(list_id).hash_type)


def _stage_items(type_name: str, value: dict[str, Any]) -> tuple[list[Intake], list[bytes]]:
    body = Fields(value, {"adds", "removes"})
    raw_adds = value.get("adds", [])
    if not isinstance(raw_adds, list):
        raise InvalidRequest("'adds' must be a list of objects")
    adds = []
    for i, item in enumerate(raw_adds):
        if not isinstance(item, dict):
            raise InvalidRequest(f"adds[{i}] must be an object with a 'hash'")
        unknown = sorted(set(item) - {"hash", "quality", "category", "source", "submission_id"})
        if unknown:
            raise InvalidRequest(f"adds[{i}]: unknown field(s) {unknown}")
        try:
            adds.append(make_intake(type_name, item))
        except IntakeError as e:
            raise InvalidRequest(f"adds[{i}]: {e}") from e
    removes = []
    for i, text in enumerate(body.strings("removes", required=False)):
        try:
            removes.append(parse_hash(text, type_name))
        except IntakeError as e:
            raise InvalidRequest(f"removes[{i}]: {e}") from e
    if not adds and not removes:
        raise InvalidRequest("nothing to stage: give 'adds' or 'removes'")
    return adds, removes


async def admin_stage(request: web.Request, principal: Principal) -> web.StreamResponse:
    list_id = check_list_id(request.match_info["list_id"])
    type_name = await _hash_type(request, list_id)
    value = await json_object(request, ADMIN_BODY_BYTES)
    loop = asyncio.get_running_loop()
    adds, removes = await loop.run_in_executor(None, _stage_items, type_name, value)
    n = await request.app[HUB].call(
        lambda hub: hub.lists.stage(list_id, adds=adds, removes=removes, who=principal.subject)
    )
    return web.json_response({"list": list_id, "staged": n})


async def admin_import(request: web.Request, principal: Principal) -> web.StreamResponse:
    list_id = check_list_id(request.match_info["list_id"])
    type_name = await _hash_type(request, list_id)
    data = await read_body(request, ADMIN_BODY_BYTES)
    loop = asyncio.get_running_loop()
    adds = await loop.run_in_executor(None, parse_import, data, type_name)
    n = await request.app[HUB].call(
        lambda hub: hub.lists.stage(list_id, adds=adds, who=principal.subject)
    )
    return web.json_response({"list": list_id, "staged": n})


async def admin_publish(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = Fields(await json_object(request, 64 * 1024, optional=True), {"lists"})
    wanted = body.strings("lists", required=False)
    if "lists" in body.value and not wanted:
        # An empty selection is not "everything": a client whose filter came out
        # empty must not publish every list.
        raise InvalidRequest("'lists' names no list; leave it out to publish every list")
    list_ids = [check_list_id(v) for v in wanted] or None

    def publish(hub: Hub) -> list[PublishResult]:
        for list_id in list_ids or ():
            hub.lists.spec(list_id)  # every named list exists before any is published
        return hub.publishing.publish(list_ids, who=principal.subject)

    results = await request.app[HUB].call(publish)
    after_publish(request.app, results, "api")
    return web.json_response({"published": [r.to_dict() for r in results]})


async def admin_counts(request: web.Request, principal: Principal) -> web.StreamResponse:
    list_id = check_list_id(request.match_info["list_id"])

    def counts(hub: Hub) -> dict[str, Any]:
        status = hub.reports.list_status(list_id)
        return {
            "list": list_id,
            "version": status.version,
            "platforms_applied": status.platforms_applied,
            "platforms": [p.to_dict() for p in status.platforms],
            "hashes": hub.ledger.hash_counts(list_id),
            "withheld": hub.ledger.hash_withheld(list_id),
            "flagged": [f.to_dict() for f in hub.ledger.flagged_hashes(list_id)],
        }

    return web.json_response(await request.app[HUB].call(counts))
