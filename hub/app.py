"""The hub's HTTP service: the published tree, acks, the operator API, health and metrics.

``create_app(home)`` builds the aiohttp application (the aiohttp-demos factory
pattern): routes in one place below, typed ``web.AppKey``s (``hub/appkeys.py``), one
cleanup context per resource (the database thread, the scheduler). What the routes
and the pages share lives beside it: ``hub/http.py`` (``read_body``, ``after_publish``),
``hub/caches.py`` and ``hub/metrics.py``. ``run(home)`` serves it with
``web.run_app``, which shuts down cleanly on SIGTERM. ``hub/openapi.yaml`` documents
every API route; a test keeps the two in step. The HTML pages for people (public
submission, case lookup, the operators' dashboard) are added by ``hub.web.setup``
and documented in ``hub/web/pages.py``.

The published tree (PROTOCOL.md §11) is served from ``PublishedFiles.get`` exactly as it was
signed. Every path segment is checked before it is used — list ids by
``validate_list_id``, versions as integers, body addresses as 64 lowercase hex
digits — and the file path is then built by ``protocol.layout``, so ``..``, ``/``
or ``%2e`` never reach the database. Root files are public; a list's files are
public when the list is, and otherwise need a bearer token that may read the list
(``Access.may_read_list``): 401 without one, 403 for a node not granted the list.

Caching. Immutable files get ``max-age`` of a year and ``immutable``; a checkpoint
gets a few seconds. ETags are the SHA-256 of the file's bytes; ``If-None-Match``
answers 304. Delta bodies are gzipped for clients that accept it, and then carry
the ETag as a weak validator (as nginx does), since the encoded bytes differ.
Files of private lists are ``private`` so a shared cache never hands them to
someone else. In memory, immutable files are kept in a bounded LRU (they never
change) and checkpoints and read-permission verdicts for at most a second; any
change made through this app (a publish, a re-signed checkpoint, a revoked node)
clears both at once, so the app never serves what it has itself replaced; a
change made beside it (``hashhub publish`` in another process) is served within
a second.

Errors. Every error response, from a ``HubError``, an aiohttp ``HTTPException``
(its headers such as ``WWW-Authenticate`` and ``Allow`` kept) or a bug, has one
shape, made by ``error_response`` (``edge.http``, as the node's are)::

    {"error": {"status": 404, "code": "not_found", "message": "…"}}

A bug is logged with its traceback and answered 500 without internals. Requests
are logged by aiohttp's access log (method, path, status, size, time): bearer
tokens travel only in the ``Authorization`` header and key material only in
bodies, and neither is ever logged. (A request aiohttp's HTTP parser refuses
before any route sees it — a header line over 8 KiB, a malformed request line —
gets aiohttp's own plain-text 400, without this shape or ``nosniff``: the only
hook is a private class of aiohttp's server, and ``docs/security.md`` says why
that is left so.)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hashlib
import importlib.resources
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web
from prometheus_client.aiohttp import make_aiohttp_handler

from edge.http import code_for, error_response
from edge.http import error_middleware as edge_error_middleware
from hub.appkeys import ACCESS_CACHE, CONFIG, FILE_CACHE, HUB, METRICS, SCHEDULER
from hub.caches import MEMORY_TTL, AccessCache, PublishedCache, _Published, _Verdict
from hub.config import HubConfig
from hub.core import ACK_PAGE_BYTES, OPERATOR_ROLES, AckReceipt, Hub, Principal, utcnow
from hub.errors import (
    HTTP_CODES,
    Forbidden,
    HubError,
    IntakeError,
    InvalidRequest,
    NotFound,
    Unauthorized,
)
from hub.http import Handler, after_publish, invalidate_caches, read_body
from hub.intake import Intake, make_intake, parse_hash, parse_import
from hub.jsonbody import parse_json_body
from hub.limits import (
    LIMITS,
    ClientAccessLogger,
    HubLimits,
    limits_middleware,
)
from hub.metrics import HubMetrics
from hub.scheduler import HubScheduler
from hub.services.publishing import PublishResult
from hub.store import DatabaseOwner
from protocol import (
    ProtocolError,
    PublicKey,
    SignatureSidecar,
    body_path,
    checkpoint_path,
    header_path,
    root_path,
    sig_path,
    snapshot_path,
    validate_list_id,
)
from protocol.ack import ACK_LAST_SEQ_HEADER, ACK_SIGNATURE_HEADER, NODE_ID_PATTERN
from protocol.authshape import MalformedCredentialError, bearer_token
from protocol.root import ROLE_NAMES

__all__ = [
    "ACCESS_CACHE",
    "ADMIN_ROUTES",
    "CONFIG",
    "FILE_CACHE",
    "HUB",
    "LAST_SEQ_HEADER",
    "MEMORY_TTL",
    "METRICS",
    "SCHEDULER",
    "SIGNATURE_HEADER",
    "AccessCache",
    "AdminRoute",
    "Handler",
    "HubMetrics",
    "PublishedCache",
    "after_publish",
    "create_app",
    "error_response",
    "read_body",
    "run",
]

log = logging.getLogger("hashhub.http")

SIGNATURE_HEADER = ACK_SIGNATURE_HEADER
"""Header carrying an ack's signature sidecar (``protocol.ACK_SIGNATURE_HEADER``)."""
LAST_SEQ_HEADER = ACK_LAST_SEQ_HEADER
"""On a 409 ``seq_conflict``: the node's last accepted ``seq`` (``protocol.ACK_LAST_SEQ_HEADER``),
so it can re-sign above it."""
IMMUTABLE_MAX_AGE = 31_536_000
CHECKPOINT_MAX_AGE = 5
ADMIN_BODY_BYTES = 64 * 1024 * 1024
"""Cap on a stage or import request body; bigger imports go through the CLI."""
MAX_SIGNATURE_HEADER = 4096
MAX_VERSION = 2**53 - 1
MAX_LIMIT = 1000
READY_TIMEOUT = 5.0

_VERSION = re.compile(r"[1-9][0-9]{0,15}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SUBJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")
_REALM = 'Bearer realm="hashhub"'

# -- app keys (the shared ones are in hub.appkeys) ------------------------------------

_OPENAPI = web.AppKey("openapi", bytes)


# -- errors -----------------------------------------------------------------------------


def _code_for(exc: web.HTTPException) -> str:
    """The same code a ``HubError`` of that status has; else the reason, snake_cased."""
    return code_for(exc, HTTP_CODES)


error_middleware = edge_error_middleware(realm=_REALM, codes=HTTP_CODES, log=log, service="hub")


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[METRICS].requests.labels(route, request.method, str(response.status)).inc()
    return response


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


# -- request helpers --------------------------------------------------------------------


def _bearer(request: web.Request) -> str | None:
    """The bearer token of the request, None without one; a malformed header is a 401.

    The shape is checked by ``protocol.authshape`` before anything encodes the
    token (the limits middleware has already answered a malformed one).
    """
    try:
        return bearer_token(request.headers.get(hdrs.AUTHORIZATION))
    except MalformedCredentialError as e:
        raise Unauthorized(str(e)) from None


def _list_id(value: str) -> str:
    try:
        return validate_list_id(value)
    except ProtocolError as e:
        raise InvalidRequest(str(e)) from e


def _version(value: str) -> int:
    if not _VERSION.fullmatch(value) or int(value) > MAX_VERSION:
        raise InvalidRequest("a version is a decimal integer from 1 to 2^53-1")
    return int(value)


def _sha256(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise InvalidRequest("a body address is 64 lowercase hex digits")
    return value


def _require_json(request: web.Request) -> None:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(
            text=f"the body must be application/json, not {request.content_type[:80]!r}"
        )


async def _json_object(request: web.Request, cap: int, *, optional: bool = False) -> dict[str, Any]:
    """A JSON object body of at most ``cap`` bytes (``optional``: an empty body is ``{}``)."""
    if optional and not request.body_exists:
        return {}
    _require_json(request)
    data = await read_body(request, cap)
    if optional and not data.strip():
        return {}
    try:
        value = await parse_json_body(data)  # a large body: off the event loop, in pieces
    # ValueError: besides UnicodeDecodeError and JSONDecodeError, an integer of more
    # digits than int() reads (4300), which would otherwise answer 500.
    except (ValueError, RecursionError) as e:
        raise InvalidRequest(f"the body is not JSON: {e}") from e
    if not isinstance(value, dict):
        raise InvalidRequest("the body must be a JSON object")
    return value


class _Fields:
    """Strict reading of a JSON object's fields: exact types, unknown keys refused."""

    def __init__(self, value: dict[str, Any], allowed: set[str]) -> None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise InvalidRequest(f"unknown field(s) {unknown}")
        self.value = value

    def text(self, name: str, *, default: str | None = None, max_len: int = 256) -> str:
        value = self.value.get(name, default)
        if not isinstance(value, str) or len(value) > max_len:
            raise InvalidRequest(f"{name!r} must be a string of at most {max_len} characters")
        return value

    def integer(self, name: str, *, minimum: int, maximum: int) -> int | None:
        value = self.value.get(name)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not (minimum <= value <= maximum)
        ):
            raise InvalidRequest(f"{name!r} must be an integer from {minimum} to {maximum}")
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.value.get(name, default)
        if not isinstance(value, bool):
            raise InvalidRequest(f"{name!r} must be true or false")
        return value

    def strings(self, name: str, *, required: bool = True) -> list[str]:
        """A list of strings; an optional one may be left out, but a ``null`` is refused."""
        if name not in self.value and not required:
            return []
        value = self.value.get(name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRequest(f"{name!r} must be a list of strings")
        return value


def _known_query(request: web.Request, *names: str) -> None:
    """Refuse a query parameter the route does not take.

    A misspelt parameter (``?limt=5``, ``?nod=…``) ignored silently would answer a
    question the operator did not ask; it is a 400 naming the parameter instead.
    """
    unknown = sorted(set(request.query) - set(names))
    if unknown:
        raise InvalidRequest(
            f"unknown query parameter {unknown[0][:64]!r}; this route takes {', '.join(names)}"
        )


def _query_limit(request: web.Request) -> int:
    raw = request.query.get("limit", "100")
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _optional_query(request: web.Request, name: str, check: Callable[[str], object]) -> str | None:
    value = request.query.get(name)
    if value is not None:
        check(value)
    return value


def _node_id(value: str) -> str:
    if not NODE_ID_PATTERN.fullmatch(value) or ".." in value:
        raise InvalidRequest("a node id matches [a-z0-9][a-z0-9._-]{0,63}")
    return value


def _list_versions(hub: Hub) -> dict[str, int]:
    return {list_id: int(hub.lists.row(list_id)["version"]) for list_id in hub.keys.root().lists}


async def _refresh_gauges(app: web.Application) -> None:
    versions = await app[HUB].call(_list_versions)
    for list_id, version in versions.items():
        app[METRICS].list_version.labels(list_id).set(version)


# -- the published tree -----------------------------------------------------------------


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
        token = _bearer(request)
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


def _tree_handler(build_path: Callable[[Mapping[str, str]], str], *, listed: bool) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        match = request.match_info
        list_id = _list_id(match["list_id"]) if listed else None
        return await _serve_file(request, build_path(match), list_id)

    return handler


TREE_ROUTES: tuple[tuple[str, Callable[[Mapping[str, str]], str], bool], ...] = (
    ("/root/{version}.json", lambda m: root_path(_version(m["version"])), False),
    ("/root/{version}.json.sig", lambda m: sig_path(root_path(_version(m["version"]))), False),
    ("/lists/{list_id}/checkpoint", lambda m: checkpoint_path(m["list_id"]), True),
    (
        "/lists/{list_id}/delta/{version}.json",
        lambda m: header_path(m["list_id"], _version(m["version"])),
        True,
    ),
    (
        "/lists/{list_id}/delta/{version}.json.sig",
        lambda m: sig_path(header_path(m["list_id"], _version(m["version"]))),
        True,
    ),
    (
        "/lists/{list_id}/body/{sha256}.txt",
        lambda m: body_path(m["list_id"], _sha256(m["sha256"])),
        True,
    ),
    (
        "/lists/{list_id}/snapshot/{version}.bin",
        lambda m: snapshot_path(m["list_id"], _version(m["version"])),
        True,
    ),
)
"""(route, how to build the file path from the checked segments, whether it is a list's)."""


# -- acks -------------------------------------------------------------------------------


def _signature(request: web.Request) -> bytes:
    raw = request.headers.get(SIGNATURE_HEADER)
    if raw is None:
        raise InvalidRequest(f"the ack's signature sidecar goes, base64, in {SIGNATURE_HEADER}")
    if len(raw) > MAX_SIGNATURE_HEADER:
        raise InvalidRequest(f"{SIGNATURE_HEADER} is over {MAX_SIGNATURE_HEADER} characters")
    try:
        sig = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidRequest(f"{SIGNATURE_HEADER} is not base64") from e
    try:
        SignatureSidecar.from_bytes(sig)
    except ProtocolError as e:
        raise InvalidRequest(f"{SIGNATURE_HEADER} is not a signature sidecar: {e}") from e
    return sig


async def post_ack(request: web.Request) -> web.StreamResponse:
    """Receive a node's signed ack (PROTOCOL.md §10.6)."""
    app = request.app
    try:
        token = _bearer(request)
        if token is None:
            raise Unauthorized("acks are sent with the node's bearer token")
        # The body is read (capped) before the token is checked so that one trip to the
        # database thread does both; a bad body is still reported after a bad token.
        body_error: Exception | None = None
        data = sig = b""
        try:
            _require_json(request)
            data = await read_body(request, app[CONFIG].max_ack_bytes)
            sig = _signature(request)
        except (HubError, web.HTTPException) as e:
            body_error = e

        receipt = await app[ACKS].submit(token, data, sig, body_error)
    except HubError as e:
        app[METRICS].acks_refused.labels(e.code).inc()
        raise
    except web.HTTPException as e:
        app[METRICS].acks_refused.labels(_code_for(e)).inc()
        raise
    app[METRICS].acks_accepted.labels(str(receipt.duplicate).lower()).inc()
    return web.json_response(
        {
            "accepted": True,
            "node": receipt.node,
            "list": receipt.list_id,
            "seq": receipt.seq,
            "duplicate": receipt.duplicate,
        }
    )


# -- the operator API -------------------------------------------------------------------

AdminHandler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class AdminRoute:
    """One operator route: who may call it besides ``admin`` (empty: admin only)."""

    method: str
    path: str
    roles: tuple[str, ...]
    handler: AdminHandler


def _admin_handler(route: AdminRoute) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        token = _bearer(request)
        if token is None:
            raise Unauthorized("the operator API needs an operator bearer token")
        principal = await request.app[HUB].call(lambda hub: hub.access.authenticate(token))
        principal.require(*route.roles)
        response = await route.handler(request, principal)
        response.headers[hdrs.CACHE_CONTROL] = "no-store"
        return response

    return handler


async def admin_status(request: web.Request, principal: Principal) -> web.StreamResponse:
    return web.json_response(await request.app[HUB].call(lambda hub: hub.reports.status()))


async def admin_lists(request: web.Request, principal: Principal) -> web.StreamResponse:
    summaries = await request.app[HUB].call(lambda hub: hub.lists.summaries())
    return web.json_response({"lists": [s.to_dict() for s in summaries]})


async def admin_create_list(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = _Fields(
        await _json_object(request, request.app[CONFIG].max_ack_bytes),
        {"id", "hash_type", "max_distance", "label", "snapshot_every", "public"},
    )
    list_id = _list_id(body.text("id", max_len=64))
    hash_type = body.text("hash_type", max_len=16)
    max_distance = body.integer("max_distance", minimum=0, maximum=256)
    label = body.text("label", default="", max_len=128)
    snapshot_every = body.integer("snapshot_every", minimum=1, maximum=1_000_000)
    public = body.boolean("public", default=False)
    root = await request.app[HUB].call(
        lambda hub: hub.roots.create_list(
            list_id,
            hash_type,
            max_distance=max_distance,
            label=label,
            snapshot_every=snapshot_every,
            public=public,
            who=principal.subject,
        )
    )
    invalidate_caches(request.app)
    request.app[METRICS].list_version.labels(list_id).set(0)
    return web.json_response({"list": list_id, "root_version": root.version}, status=201)


async def _hash_type(request: web.Request, list_id: str) -> str:
    return await request.app[HUB].call(lambda hub: hub.lists.spec(list_id).hash_type)


def _stage_items(type_name: str, value: dict[str, Any]) -> tuple[list[Intake], list[bytes]]:
    body = _Fields(value, {"adds", "removes"})
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
    list_id = _list_id(request.match_info["list_id"])
    type_name = await _hash_type(request, list_id)
    value = await _json_object(request, ADMIN_BODY_BYTES)
    loop = asyncio.get_running_loop()
    adds, removes = await loop.run_in_executor(None, _stage_items, type_name, value)
    n = await request.app[HUB].call(
        lambda hub: hub.lists.stage(list_id, adds=adds, removes=removes, who=principal.subject)
    )
    return web.json_response({"list": list_id, "staged": n})


async def admin_import(request: web.Request, principal: Principal) -> web.StreamResponse:
    list_id = _list_id(request.match_info["list_id"])
    type_name = await _hash_type(request, list_id)
    data = await read_body(request, ADMIN_BODY_BYTES)
    loop = asyncio.get_running_loop()
    adds = await loop.run_in_executor(None, parse_import, data, type_name)
    n = await request.app[HUB].call(
        lambda hub: hub.lists.stage(list_id, adds=adds, who=principal.subject)
    )
    return web.json_response({"list": list_id, "staged": n})


async def admin_publish(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = _Fields(await _json_object(request, 64 * 1024, optional=True), {"lists"})
    wanted = body.strings("lists", required=False)
    if "lists" in body.value and not wanted:
        # An empty selection is not "everything": a client whose filter came out
        # empty must not publish every list.
        raise InvalidRequest("'lists' names no list; leave it out to publish every list")
    list_ids = [_list_id(v) for v in wanted] or None

    def publish(hub: Hub) -> list[PublishResult]:
        for list_id in list_ids or ():
            hub.lists.spec(list_id)  # every named list exists before any is published
        return hub.publishing.publish(list_ids, who=principal.subject)

    results = await request.app[HUB].call(publish)
    after_publish(request.app, results, "api")
    return web.json_response({"published": [r.to_dict() for r in results]})


async def admin_counts(request: web.Request, principal: Principal) -> web.StreamResponse:
    list_id = _list_id(request.match_info["list_id"])

    def counts(hub: Hub) -> dict[str, Any]:
        hub.lists.spec(list_id)
        return {
            "list": list_id,
            "hashes": hub.ledger.hash_counts(list_id),
            "withheld": hub.ledger.hash_withheld(list_id),
            "flagged": hub.ledger.flagged_hashes(list_id),
        }

    return web.json_response(await request.app[HUB].call(counts))


async def admin_nodes(request: web.Request, principal: Principal) -> web.StreamResponse:
    return web.json_response(
        {
            "nodes": await request.app[HUB].call(
                lambda hub: [n.to_dict() for n in hub.access.nodes()]
            )
        }
    )


def _public_key(text: str) -> PublicKey:
    """An Ed25519 public key given as SubjectPublicKeyInfo PEM or 64 hex digits."""
    try:
        if _HEX_KEY.fullmatch(text.strip()):
            return PublicKey(bytes.fromhex(text.strip()))
        return PublicKey.from_pem(text.encode("ascii"))
    except (ProtocolError, UnicodeEncodeError) as e:
        raise InvalidRequest(f"'public_key' is not an Ed25519 public key (PEM or hex): {e}") from e


async def admin_enrol(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = _Fields(
        await _json_object(request, request.app[CONFIG].max_ack_bytes),
        {"id", "public_key", "lists"},
    )
    node_id = _node_id(body.text("id", max_len=64))
    key = _public_key(body.text("public_key", max_len=4096))
    lists = [_list_id(v) for v in body.strings("lists")]
    token = await request.app[HUB].call(
        lambda hub: hub.access.enrol_node(node_id, key, lists, who=principal.subject)
    )
    invalidate_caches(request.app)
    return web.json_response(
        {"node": node_id, "keyid": key.keyid, "lists": sorted(set(lists)), "token": token},
        status=201,
    )


async def admin_revoke(request: web.Request, principal: Principal) -> web.StreamResponse:
    node_id = _node_id(request.match_info["node_id"])
    await request.app[HUB].call(lambda hub: hub.access.revoke_node(node_id, who=principal.subject))
    invalidate_caches(request.app)
    return web.json_response({"node": node_id, "revoked": True})


async def admin_keys(request: web.Request, principal: Principal) -> web.StreamResponse:
    return web.json_response(
        {"keys": await request.app[HUB].call(lambda hub: [k.to_dict() for k in hub.keys.records()])}
    )


async def admin_rotate(request: web.Request, principal: Principal) -> web.StreamResponse:
    role = request.match_info["role"]
    if role not in ROLE_NAMES:
        raise InvalidRequest(f"unknown role; roles are {', '.join(ROLE_NAMES)}")
    root = await request.app[HUB].call(
        lambda hub: hub.roots.rotate_key(role, who=principal.subject)
    )
    invalidate_caches(request.app)
    return web.json_response({"role": role, "root_version": root.version})


async def admin_create_token(request: web.Request, principal: Principal) -> web.StreamResponse:
    body = _Fields(await _json_object(request, 64 * 1024), {"role", "subject"})
    role = body.text("role", max_len=16)
    if role not in OPERATOR_ROLES:
        raise InvalidRequest(f"'role' must be one of {', '.join(OPERATOR_ROLES)}")
    subject = body.text("subject", max_len=64)
    if not _SUBJECT.fullmatch(subject):
        raise InvalidRequest("'subject' matches [A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
    token = await request.app[HUB].call(
        lambda hub: hub.access.create_operator_token(role, subject, who=principal.subject)
    )
    return web.json_response({"role": role, "subject": subject, "token": token}, status=201)


async def admin_actions(request: web.Request, principal: Principal) -> web.StreamResponse:
    _known_query(request, "limit")
    limit = _query_limit(request)
    return web.json_response(
        {"actions": await request.app[HUB].call(lambda hub: hub.reports.actions(limit))}
    )


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _query_before(request: web.Request, what: str) -> int | None:
    raw_before = request.query.get("before")
    if raw_before is not None and not re.fullmatch(r"[1-9][0-9]{0,17}", raw_before):
        raise InvalidRequest(f"before must be a positive integer (an {what} id)")
    return None if raw_before is None else int(raw_before)


def _page(key: str, rows: list[dict[str, Any]], more: bool) -> dict[str, Any]:
    """One page, newest first: ``next`` is the ``before`` of the next page (null: no more).

    A page ends at ``limit`` rows or, past its first row, at ``ACK_PAGE_BYTES`` of
    ack bytes, whichever comes first, so ``next`` is how a reader knows to go on.
    """
    for row in rows:
        row["bytes"], row["sig"] = _b64(row["bytes"]), _b64(row["sig"])
    return {key: rows, "next": rows[-1]["id"] if rows and more else None}


async def admin_evidence(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Evidence kept from nodes, newest first, paged like ``/v1/admin/acks``; the cap."""
    _known_query(request, "node", "limit", "before")
    node = _optional_query(request, "node", _node_id)
    limit = _query_limit(request)
    before = _query_before(request, "evidence")

    def page(hub: Hub) -> dict[str, Any]:
        rows = hub.evidence.items(
            include_bytes=True, node=node, limit=limit, before=before, max_bytes=ACK_PAGE_BYTES
        )
        more = bool(rows) and hub.evidence.older_rows("evidence", rows[-1]["id"], node=node)
        dropped = hub.evidence.dropped()
        return {
            **_page("evidence", rows, more),
            "cap": hub.config.max_evidence_per_node,
            "dropped": {n: d for n, d in dropped.items() if node is None or n == node},
        }

    return web.json_response(await request.app[HUB].call(page))


async def admin_acks(request: web.Request, principal: Principal) -> web.StreamResponse:
    _known_query(request, "node", "list", "limit", "before")
    node = _optional_query(request, "node", _node_id)
    list_id = _optional_query(request, "list", _list_id)
    limit = _query_limit(request)
    before = _query_before(request, "ack")

    def page(hub: Hub) -> dict[str, Any]:
        rows = hub.evidence.acks(
            node=node, list_id=list_id, limit=limit, before=before, max_bytes=ACK_PAGE_BYTES
        )
        more = bool(rows) and hub.evidence.older_rows(
            "acks", rows[-1]["id"], node=node, list_id=list_id
        )
        return _page("acks", rows, more)

    return web.json_response(await request.app[HUB].call(page))


ADMIN_ROUTES: tuple[AdminRoute, ...] = (
    AdminRoute("GET", "/v1/admin/status", ("viewer", "auditor"), admin_status),
    AdminRoute("GET", "/v1/admin/lists", ("viewer", "auditor"), admin_lists),
    AdminRoute("POST", "/v1/admin/lists", (), admin_create_list),
    AdminRoute("GET", "/v1/admin/lists/{list_id}/counts", ("viewer", "auditor"), admin_counts),
    AdminRoute("POST", "/v1/admin/lists/{list_id}/stage", ("publisher",), admin_stage),
    AdminRoute("POST", "/v1/admin/lists/{list_id}/import", ("publisher",), admin_import),
    AdminRoute("POST", "/v1/admin/publish", ("publisher",), admin_publish),
    AdminRoute("GET", "/v1/admin/nodes", ("viewer", "auditor"), admin_nodes),
    AdminRoute("POST", "/v1/admin/nodes", (), admin_enrol),
    AdminRoute("DELETE", "/v1/admin/nodes/{node_id}", (), admin_revoke),
    AdminRoute("GET", "/v1/admin/keys", ("viewer", "auditor"), admin_keys),
    AdminRoute("POST", "/v1/admin/keys/{role}/rotate", (), admin_rotate),
    AdminRoute("POST", "/v1/admin/tokens", (), admin_create_token),
    AdminRoute("GET", "/v1/admin/actions", ("viewer", "auditor"), admin_actions),
    AdminRoute("GET", "/v1/admin/evidence", ("auditor",), admin_evidence),
    AdminRoute("GET", "/v1/admin/acks", ("auditor",), admin_acks),
)
"""Every operator route. ``admin`` may call all; ``roles`` names who else may.
``hashhub export`` has no route: it writes files on the hub's own machine."""


# -- health, metrics, OpenAPI -----------------------------------------------------------


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    try:
        version = await asyncio.wait_for(
            request.app[HUB].call(lambda hub: hub.keys.root().version), READY_TIMEOUT
        )
    except Exception as e:
        log.warning("not ready: %s", type(e).__name__)
        raise web.HTTPServiceUnavailable(text="the database or the root does not answer") from e
    return web.json_response({"status": "ready", "root_version": version})


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.Response(body=request.app[_OPENAPI], content_type="application/yaml")


# -- the app ----------------------------------------------------------------------------


def _receive_batch(
    hub: Hub, items: list[tuple[str, bytes, bytes, Exception | None]]
) -> list[AckReceipt | Exception]:
    """One batch of acks on the database thread (``AckIntake.receive_batch``)."""
    return hub.acks.receive_batch(items)


class AckBatcher:
    """Sends acks to the database thread in batches: one trip and one commit for many.

    Each ack is still verified and stored on its own (``AckIntake.receive_batch``); a node
    gets exactly the answer it would get alone. Under no load a batch is one ack, so
    nothing waits for company.
    """

    MAX_BATCH = 64

    def __init__(self, owner: DatabaseOwner[Hub]) -> None:
        self._owner = owner
        self._queue: asyncio.Queue[
            tuple[str, bytes, bytes, Exception | None, asyncio.Future[AckReceipt]]
        ] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hashhub-ack-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(
        self, token: str, data: bytes, sig: bytes, request_error: Exception | None
    ) -> AckReceipt:
        future: asyncio.Future[AckReceipt] = asyncio.get_running_loop().create_future()
        await self._queue.put((token, data, sig, request_error, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            items = [(token, data, sig, err) for token, data, sig, err, _ in batch]
            try:
                results = await self._owner.call(functools.partial(_receive_batch, items=items))
            except Exception as e:  # a bug: every ack of the batch gets the 500
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (*_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


ACKS = web.AppKey("acks", AckBatcher)


async def _ack_context(app: web.Application) -> AsyncIterator[None]:
    batcher = AckBatcher(app[HUB])
    app[ACKS] = batcher
    batcher.start()
    try:
        yield
    finally:
        await batcher.stop()


def _database_context(
    home: Path, now: Callable[[], datetime]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def database(app: web.Application) -> AsyncIterator[None]:
        owner = DatabaseOwner(lambda: Hub.open(home, now=now))
        app[HUB] = owner
        try:
            await _refresh_gauges(app)
            yield
        finally:
            owner.close(lambda hub: hub.close())

    return database


async def _scheduler_context(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    metrics = app[METRICS]

    def refreshed(n: int) -> None:
        invalidate_caches(app)
        metrics.checkpoint_refreshes.inc(n)

    scheduler = HubScheduler(
        app[HUB],
        publish_interval=config.publish_interval,
        timestamp_interval=config.timestamp_interval,
        on_published=lambda results: after_publish(app, results, "scheduler"),
        on_refreshed=refreshed,
        on_failed=lambda job: metrics.job_failures.labels(job).inc(),
    )
    app[SCHEDULER] = scheduler
    scheduler.start()
    try:
        yield
    finally:
        await scheduler.stop()


def create_app(
    home: Path,
    *,
    now: Callable[[], datetime] | None = None,
    schedule: bool = True,
) -> web.Application:
    """Build the hub's HTTP app for the hub in ``home``.

    Args:
        home: the hub's home directory (``hub.toml``, database, keys).
        now: the clock the hub signs with (default: the system clock, UTC).
        schedule: run the publish and timestamp jobs (tests turn it off to
            drive publishing by hand).

    Raises:
        InvalidRequest: ``home`` holds no readable hub configuration.
    """
    config = HubConfig.load(home)
    app = web.Application(
        middlewares=[metrics_middleware, error_middleware, limits_middleware],
        client_max_size=config.max_ack_bytes,
    )
    app[CONFIG] = config
    app[LIMITS] = HubLimits.from_config(config, HUB)
    app[METRICS] = HubMetrics()
    app[FILE_CACHE] = PublishedCache()
    app[ACCESS_CACHE] = AccessCache()
    app[_OPENAPI] = importlib.resources.files("hub").joinpath("openapi.yaml").read_bytes()
    app.cleanup_ctx.append(_database_context(home, now or utcnow))
    app.cleanup_ctx.append(_ack_context)
    if schedule:
        app.cleanup_ctx.append(_scheduler_context)
    app.on_response_prepare.append(_security_headers)

    for path, build, listed in TREE_ROUTES:
        app.router.add_get(path, _tree_handler(build, listed=listed))
    app.router.add_post("/v1/acks", post_ack)
    for route in ADMIN_ROUTES:
        app.router.add_route(route.method, route.path, _admin_handler(route))
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    app.router.add_get("/metrics", make_aiohttp_handler(app[METRICS].registry), allow_head=False)
    app.router.add_get("/openapi.yaml", openapi, allow_head=False)

    # The HTML pages import this module's keys and functions, so they are imported here,
    # once this module is complete.
    from hub import web as pages

    pages.setup(app)
    return app


ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs'
"""Method, path, status, size, time: never headers, so never a bearer token."""


def run(home: Path, host: str | None = None, port: int | None = None) -> None:
    """Serve the hub in ``home`` until SIGINT or SIGTERM (host and port default to hub.toml)."""
    config = HubConfig.load(home)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per run otherwise
    web.run_app(
        create_app(home),
        host=host or config.host,
        port=config.port if port is None else port,
        access_log_class=ClientAccessLogger,
        access_log_format=ACCESS_LOG_FORMAT,
    )
