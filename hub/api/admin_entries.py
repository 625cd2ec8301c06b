"""The operator API on entries lists: the vocabulary, and staging, changing, retracting
and reading entries.

The same service calls as ``hashhub vocabulary`` and ``hashhub entry``
(``hub.services.entries``), so the same rules: every value checked against the
root's vocabulary when staged, nothing staged on a refusal. The roles are those of
staging hashes (``hub.api.admin.ADMIN_ROUTES``): a publisher stages, every
operator reads, and only ``admin`` adds a term (a root change, like declaring a
list).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from hub.api.admin_lists import ADMIN_BODY_BYTES
from hub.api.requests import Fields, check_list_id, json_object, known_query, query_limit
from hub.appkeys import HUB
from hub.core import Hub, Principal
from hub.errors import InvalidRequest
from hub.http import read_body
from hub.services.entries import EntryView, draft_from_json, parse_entry_lines
from protocol.entries import ENTRY_ID_PATTERN
from protocol.video import MAX_FRAMES_BYTES

__all__ = [
    "ENTRY_BODY_BYTES",
    "NEW_ENTRY_BODY_BYTES",
    "admin_add_entry",
    "admin_add_term",
    "admin_change_entry",
    "admin_entries",
    "admin_import_entries",
    "admin_retract_entry",
    "admin_vocabulary",
]

ENTRY_BODY_BYTES = 16 * 1024
"""Cap on one entry's body: a few lists and hashes and four short terms."""

NEW_ENTRY_BODY_BYTES = ENTRY_BODY_BYTES + 4 * MAX_FRAMES_BYTES
"""Cap on a new entry's body: a video's hash is its frames as hex, up to
2,664,000 digits for the longest video (36,000 frames), so room for two such (a
collection with two ``vpdq`` lists) besides the rest; past it, a 413. Every other
entry body keeps ``ENTRY_BODY_BYTES``."""


def check_entry_id(value: str) -> str:
    """An entry id as ``protocol.entries.ENTRY_ID_PATTERN`` spells it; else a 400."""
    if not ENTRY_ID_PATTERN.fullmatch(value):
        raise InvalidRequest(f"an entry id matches {ENTRY_ID_PATTERN.pattern}")
    return value


async def admin_vocabulary(request: web.Request, principal: Principal) -> web.StreamResponse:
    root = await request.app[HUB].call(lambda hub: hub.keys.root())
    vocabulary = None if root.vocabulary is None else root.vocabulary.to_dict()
    return web.json_response({"vocabulary": vocabulary, "root_version": root.version})


async def admin_add_term(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = Fields(await json_object(request, ENTRY_BODY_BYTES), {"group", "term"})
    group = body.text("group", max_len=32)
    term = body.text("term", max_len=64)
    root = await request.app[HUB].call(
        lambda hub: hub.roots.add_term(group, term, who=principal.subject)
    )
    assert root.vocabulary is not None
    return web.json_response(
        {"vocabulary": root.vocabulary.to_dict(), "root_version": root.version}, status=201
    )


async def admin_add_entry(request: web.Request, principal: Principal) -> web.StreamResponse:
    draft = draft_from_json(await json_object(request, NEW_ENTRY_BODY_BYTES))
    view = await request.app[HUB].call(lambda hub: hub.entries.add(draft, who=principal.subject))
    return web.json_response(view.to_dict(), status=201)


async def admin_import_entries(request: web.Request, principal: Principal) -> web.StreamResponse:
    data = await read_body(request, ADMIN_BODY_BYTES)
    loop = asyncio.get_running_loop()
    drafts = await loop.run_in_executor(None, parse_entry_lines, data)
    views = await request.app[HUB].call(
        lambda hub: hub.entries.add_many(drafts, who=principal.subject)
    )
    return web.json_response({"staged": len(views), "entries": [v.entry for v in views]})


async def admin_entries(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Entries, oldest first: one (``?entry=``), those of one list (``?list=``), or all;
    each with its newest dispute (``hub.services.disputes``), or null."""
    known_query(request, "list", "entry", "limit")
    raw_list, raw_entry = request.query.get("list"), request.query.get("entry")
    list_id = None if raw_list is None else check_list_id(raw_list)
    entry_id = None if raw_entry is None else check_entry_id(raw_entry)
    limit = query_limit(request)

    def entries(hub: Hub) -> list[EntryView]:
        if entry_id is not None:
            view = hub.entries.show(entry_id)
            return (
                [view] if list_id is None or any(i["list"] == list_id for i in view.lists) else []
            )
        return hub.entries.listed(list_id, limit)

    def with_disputes(hub: Hub) -> list[dict[str, Any]]:
        views = entries(hub)
        disputes = hub.disputes.newest([view.entry for view in views])
        return [
            view.to_dict()
            | {"dispute": disputes[view.entry].to_dict() if view.entry in disputes else None}
            for view in views
        ]

    return web.json_response({"entries": await request.app[HUB].call(with_disputes)})


def _entry_of(body: Fields) -> str:
    return check_entry_id(body.text("entry", max_len=64))


async def admin_change_entry(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = Fields(
        await json_object(request, ENTRY_BODY_BYTES),
        {"entry", "category", "classification", "source", "expires"},
    )
    entry_id = _entry_of(body)
    given = {name: body.text(name, max_len=256) for name in sorted(body.value) if name != "entry"}

    def change(hub: Hub) -> EntryView:
        return hub.entries.change(
            entry_id,
            category=given.get("category"),
            classification=given.get("classification"),
            source=given.get("source"),
            expires=given.get("expires"),
            who=principal.subject,
        )

    view = await request.app[HUB].call(change)
    return web.json_response(view.to_dict())


async def admin_retract_entry(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = Fields(await json_object(request, ENTRY_BODY_BYTES), {"entry", "reason"})
    entry_id = _entry_of(body)
    reason = body.text("reason", max_len=32)
    view = await request.app[HUB].call(
        lambda hub: hub.entries.retract(entry_id, reason, who=principal.subject)
    )
    return web.json_response(view.to_dict())
