"""The published tree (PROTOCOL.md §11): roots, checkpoints, deltas, bodies, opinion
summaries, provenance documents, videos' frames files, snapshots.

A group of its own because these are the routes every node and mirror polls: read
only, cached, and served from ``PublishedFiles.get`` exactly as they were signed.
Every path segment is checked before it is used — list ids by
``validate_list_id``, versions as integers, body addresses as 64 lowercase hex
digits (``hub.api.requests``) — and the file path is then built by
``protocol.layout``, so ``..``, ``/`` or ``%2e`` never reach the database. Root
files are public; a list's files are public when the list is, and otherwise need a
bearer token that may read the list (``Access.may_read_list``): 401 without one,
403 for a node not granted the list. How the answers are cached, on the wire and
in memory, is in ``hub.app``'s docstring ("Caching").
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping

from aiohttp import hdrs, web

from hub.api.requests import bearer, check_list_id, check_sha256, check_version
from hub.appkeys import ACCESS_CACHE, FILE_CACHE, HUB
from hub.caches import _Published, _Verdict
from hub.core import Hub
from hub.errors import Forbidden, NotFound, Unauthorized
from hub.http import Handler
from protocol import (
    body_path,
    checkpoint_path,
    frames_path,
    header_path,
    opinions_path,
    provenance_path,
    root_path,
    sig_path,
    snapshot_path,
)

__all__ = ["CHECKPOINT_MAX_AGE", "IMMUTABLE_MAX_AGE", "TREE_ROUTES", "tree_handler"]

IMMUTABLE_MAX_AGE = 31_536_000
"""A year: a signed root, header, body or snapshot never changes at its path."""
CHECKPOINT_MAX_AGE = 5
"""A checkpoint is re-signed in place, so a cache keeps it for seconds only."""


def _accepts_gzip(request: web.Request) -> bool:
    for part in request.headers.get(hdrs.ACCEPT_ENCODING, "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue
        q = params.strip().replace(" ", "").lower()
        return not re.fullmatch(r"q=0(\.0{0,3})?", q)
    return False


def _content_type(path: str) -> tuple[str, str | None]:
    if path.endswith((".json", ".sig")):
        return "application/json", None
    if path.endswith(".bin"):
        return "application/octet-stream", None
    return "text/plain", "utf-8"


async def _check_read(request: web.Request, list_id: str) -> bool:
    """Raise unless the request may read ``list_id``; returns whether the list is public.

    A public list is read without looking at credentials at all.
    """
    malformed: Unauthorized | None = None
    try:
        token = bearer(request)
    except Unauthorized as e:
        token, malformed = None, e
    digest = hashlib.sha256(token.encode()).hexdigest() if token else ""
    cache = request.app[ACCESS_CACHE]
    verdict = cache.get((digest, list_id))
    if verdict is None:
        generation = cache.generation

        def decide(hub: Hub) -> _Verdict:
            if hub.lists.is_public(list_id):
                return _Verdict(None, "public")
            if token is None:
                return _Verdict(Unauthorized, f"list {list_id} needs a bearer token")
            try:
                principal = hub.access.authenticate(token)
            except Unauthorized as e:
                return _Verdict(Unauthorized, str(e))
            if not hub.access.may_read_list(principal, list_id):
                return _Verdict(Forbidden, f"this token may not read list {list_id}")
            return _Verdict(None, "granted")

        verdict = await request.app[HUB].call(decide)
        cache.put((digest, list_id), verdict, generation)
    if verdict.error is not None:
        raise malformed or verdict.error(verdict.message)
    return verdict.message == "public"


def _load_file(path: str) -> Callable[[Hub], _Published | None]:
    def load(hub: Hub) -> _Published | None:
        found = hub.files.get(path)
        if found is None:
            return None
        data, immutable = found
        return _Published(data, hashlib.sha256(data).hexdigest(), immutable)

    return load


async def _serve_file(request: web.Request, path: str, list_id: str | None) -> web.Response:
    public = True if list_id is None else await _check_read(request, list_id)
    cache = request.app[FILE_CACHE]
    item = cache.get(path)
    if item is None:
        generation = cache.generation
        item = await request.app[HUB].call(_load_file(path))
        if item is None:
            raise NotFound(f"{path} is not published")
        cache.put(path, item, generation)
    scope = "public" if public else "private"
    headers = {
        hdrs.CACHE_CONTROL: f"{scope}, max-age={IMMUTABLE_MAX_AGE}, immutable"
        if item.immutable
        else f"{scope}, max-age={CHECKPOINT_MAX_AGE}"
    }
    compress = path.endswith(".txt")
    if compress:
        headers[hdrs.VARY] = hdrs.ACCEPT_ENCODING
    gzip = compress and _accepts_gzip(request)
    etag = f'{"W/" if gzip else ""}"{item.sha256}"'
    headers[hdrs.ETAG] = etag
    wanted = request.if_none_match
    if wanted is not None and any(tag.value in (item.sha256, "*") for tag in wanted):
        return web.Response(status=304, headers=headers)
    content_type, charset = _content_type(path)
    response = web.Response(
        body=item.data, headers=headers, content_type=content_type, charset=charset
    )
    if gzip:
        response.enable_compression(web.ContentCoding.gzip)
    return response


def tree_handler(build_path: Callable[[Mapping[str, str]], str], *, listed: bool) -> Handler:
    """The handler of one ``TREE_ROUTES`` row: check the segments, build the path, serve it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        match = request.match_info
        list_id = check_list_id(match["list_id"]) if listed else None
        return await _serve_file(request, build_path(match), list_id)

    return handler


TREE_ROUTES: tuple[tuple[str, Callable[[Mapping[str, str]], str], bool], ...] = (
    ("/root/{version}.json", lambda m: root_path(check_version(m["version"])), False),
    (
        "/root/{version}.json.sig",
        lambda m: sig_path(root_path(check_version(m["version"]))),
        False,
    ),
    ("/lists/{list_id}/checkpoint", lambda m: checkpoint_path(m["list_id"]), True),
    (
        "/lists/{list_id}/delta/{version}.json",
        lambda m: header_path(m["list_id"], check_version(m["version"])),
        True,
    ),
    (
        "/lists/{list_id}/delta/{version}.json.sig",
        lambda m: sig_path(header_path(m["list_id"], check_version(m["version"]))),
        True,
    ),
    (
        "/lists/{list_id}/body/{sha256}.txt",
        lambda m: body_path(m["list_id"], check_sha256(m["sha256"])),
        True,
    ),
    (
        "/lists/{list_id}/opinions/{sha256}.json",
        lambda m: opinions_path(m["list_id"], check_sha256(m["sha256"])),
        True,
    ),
    (
        "/lists/{list_id}/provenance/{sha256}.json",
        lambda m: provenance_path(m["list_id"], check_sha256(m["sha256"])),
        True,
    ),
    (
        "/lists/{list_id}/frames/{sha256}.bin",
        lambda m: frames_path(m["list_id"], check_sha256(m["sha256"])),
        True,
    ),
    (
        "/lists/{list_id}/snapshot/{version}.bin",
        lambda m: snapshot_path(m["list_id"], check_version(m["version"])),
        True,
    ),
)
"""(route, how to build the file path from the checked segments, whether it is a list's)."""
