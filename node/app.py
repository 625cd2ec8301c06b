"""The node's daemon: the match API for the platform, the sync schedule, metrics.

``create_app(home)`` builds the aiohttp application (the aiohttp-demos factory
pattern): routes in one place below, typed ``web.AppKey``s, one cleanup context per
resource — the ``Node`` (its SQLite store and match indexes), an aiohttp
``ClientSession`` for the hub and the webhook, and the ``NodeScheduler``.
``run(home)`` serves it with ``web.run_app``, which shuts down cleanly on SIGTERM.
``node/openapi.yaml`` documents every route; a test keeps the two in step.

**The API is the platform's, on its own network.** Every route but ``/healthz``
and the status page needs ``Authorization: Bearer <token>`` with the token in the
home's ``api-token`` file (compared in constant time); the default address is
127.0.0.1.

- ``POST /v1/match``: an upload's bytes (an image type: PDQ, pHash, MD5, SHA-256
  of the picture; ``video/*``, ``audio/*``, ``application/octet-stream``: MD5 and
  SHA-256 of the bytes) or JSON hashes → every listed hash it matches, each a match
  event with an id.
- ``POST /v1/matches/{match_id}/outcome``: what the platform did about a match.
- ``POST /v1/content``: register content the platform hosts (hashes or the file),
  answered with what it matches now; later deltas that list it raise a webhook.
- ``GET /v1/status``, ``GET /v1/matches``, ``/metrics``, ``/openapi.yaml``.
- ``/status/``: the status page for people (``node.web``), with a login of its own:
  the API token typed once into a form, then a cookie session and a CSRF token on
  every POST. Its errors are HTML pages; the session cookie opens no API route.

**Hardening.** A body over ``max_upload_bytes`` is refused with 413 before it is
read in full; a content type the node cannot hash is 415; a picture that is a
decompression bomb or fails to decode is 400, as is malformed JSON or a hash of
the wrong width or type; a match id never issued is 404. Nothing is stored for a
refused request. Pictures are hashed on a worker thread (they never touch the
database); everything that reads or writes the store runs on the event loop's
thread, which owns the SQLite connection.

**Errors** have one shape, made by ``error_response``, whatever raised them
(``ApiError``, aiohttp's ``HTTPException`` — its headers such as ``Allow`` kept —
or a bug, answered 500 without internals)::

    {"error": {"status": 415, "code": "unsupported_media_type", "message": "…"}}

A write the node's disk refuses (full, or an I/O error: ``node.store.storage_error``)
is 507 ``insufficient_storage``: SQLite rolled the transaction back, so no match
event, counter or registration of that request is stored (and no match is answered
that was not recorded); the same request succeeds once there is room (ADR 0016).

A 401 carries ``WWW-Authenticate: Bearer realm="hashhub-node"``.

**The schedule** (``NodeScheduler``, APScheduler 3.11's ``AsyncIOScheduler``):

- ``sync``: one update (docs/design.md §4.2) at start, then every ``max(policy
  min_poll_interval, poll_interval)`` seconds plus up to ``poll_jitter``; after a
  failed or rejected update the wait doubles per failure up to ``max_backoff`` (never
  below the policy minimum). Each update that applied something is followed by
  its acks and webhooks at once.
- ``outbox``: every few seconds, send due acks (in ``seq`` order) and deliver due
  webhooks; both outboxes are durable and retried with back-off by ``Node``.
- ``ack``: every ``ack_interval`` seconds, one fresh ack per list with the totals.
- ``stale``: every minute, the stale alarm: a list whose last verified checkpoint
  is older than the root's ``max_checkpoint_age`` is logged (once, when it turns
  stale), flagged in ``/v1/status`` and in the ``hashhub_node_list_stale`` gauge.
  The node keeps enforcing the last good list all the while. The same job (and
  every update) reloads the match indexes when another process — ``hashhub-node
  sync`` run beside the daemon — applied a version the daemon has not indexed.

Every job runs with ``max_instances=1``, ``coalesce=True`` and
``misfire_grace_time=None``. Stopping pauses the scheduler, lets a running job
finish (APScheduler's own ``shutdown`` would cancel it mid-update), then shuts down.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import hdrs, web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.aiohttp import make_aiohttp_handler

from node.config import NodeConfig
from node.errors import NodeError
from node.imaging import ImageRejected
from node.limits import (
    LIMITS,
    REALM,
    ClientAccessLogger,
    MalformedCredentialError,
    NodeLimits,
    bearer_token,
    is_the_api_token,
    limits_middleware,
)
from node.service import (
    OUTCOMES,
    MatchResult,
    Node,
    deliver_webhooks,
    flush_acks,
    run_sync,
    utcnow,
)
from node.store import storage_error
from node.sync import ListOutcome
from node.web import PAGE_PREFIX, is_page_request, status_pages
from protocol.lists import HASH_TYPES

__all__ = [
    "CONFIG",
    "FILE_TYPES",
    "IMAGE_TYPES",
    "METRICS",
    "NODE",
    "SCHEDULER",
    "SESSION",
    "ApiError",
    "NodeMetrics",
    "NodeScheduler",
    "create_app",
    "error_response",
    "next_poll_delay",
    "run",
]

log = logging.getLogger("hashhub.node")

IMAGE_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"}
)
"""Content types hashed as pictures (PDQ, pHash, MD5, SHA-256)."""
FILE_TYPES = frozenset({"application/octet-stream"})
"""Content types (besides ``video/*`` and ``audio/*``) hashed as files (MD5, SHA-256)."""
JSON_BODY_BYTES = 256 * 1024
MAX_QUERY_HASHES = 256
MAX_LIMIT = 1000
OUTBOX_INTERVAL = 5
STALE_CHECK_INTERVAL = 60

_MATCH_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX = re.compile(r"[0-9a-fA-F]*")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- errors -----------------------------------------------------------------------------


class ApiError(NodeError):
    """A request the API refuses: its HTTP status, a machine-readable code, a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The one JSON error shape of every error this service answers."""
    response = web.json_response(
        {"error": {"status": status, "code": code, "message": message}},
        status=status,
        headers=headers,
    )
    response.headers[hdrs.CACHE_CONTROL] = "no-store"
    return response


_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
_DROPPED_HEADERS = {"content-type", "content-length", "content-encoding"}


def _code_for(exc: web.HTTPException) -> str:
    code = _CODES.get(exc.status)
    return code or re.sub(r"[^a-z0-9]+", "_", exc.reason.lower()).strip("_") or "error"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        headers: dict[str, str] = {}
        if e.status == 401:
            sent = hdrs.AUTHORIZATION in request.headers
            headers[hdrs.WWW_AUTHENTICATE] = REALM + (', error="invalid_token"' if sent else "")
        return error_response(e.status, e.code, str(e), headers)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        default = f"{e.status}: {e.reason}"
        message = e.text if e.text and e.text != default else e.reason
        response = error_response(e.status, _code_for(e), message)
        for key, value in e.headers.items():  # Allow, WWW-Authenticate, …
            if key.lower() not in _DROPPED_HEADERS:
                response.headers.add(key, value)
        return response
    except Exception as e:
        fault = storage_error(e) if isinstance(e, sqlite3.Error) else None
        if fault is not None:
            log.error("%s %s: %s; nothing recorded", request.method, request.path, fault)
            return error_response(
                507,
                "insufficient_storage",
                f"the node could not store this request ({fault}); nothing was recorded: "
                "retry once its operator has freed disk space",
            )
        log.exception("unhandled error answering %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; the node's log has the details")


# -- metrics ----------------------------------------------------------------------------


class NodeMetrics:
    """The node's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "hashhub_node_http_requests",
            "API requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.syncs = Counter(
            "hashhub_node_syncs",
            "List updates, by list and outcome (updated, current, rejected, failed).",
            ["list", "outcome"],
            registry=r,
        )
        self.list_version = Gauge(
            "hashhub_node_list_version", "The applied version of each list.", ["list"], registry=r
        )
        self.list_hashes = Gauge(
            "hashhub_node_list_hashes", "Hashes in each applied list.", ["list"], registry=r
        )
        self.list_stale = Gauge(
            "hashhub_node_list_stale",
            "1 when a list's last verified checkpoint is older than the root's maximum age.",
            ["list"],
            registry=r,
        )
        self.stale = Gauge("hashhub_node_stale", "1 when any subscribed list is stale.", registry=r)
        self.sync_failures = Gauge(
            "hashhub_node_sync_consecutive_failures",
            "Update runs in a row that failed or were rejected (0 after a success).",
            registry=r,
        )
        self.checked = Counter(
            "hashhub_node_checks",
            "Uploads and hash queries checked through the API, by kind (image, file, hashes).",
            ["kind"],
            registry=r,
        )
        self.matches = Counter(
            "hashhub_node_matches",
            "Match events, by list and source (upload, registry).",
            ["list", "source"],
            registry=r,
        )
        self.acks_pending = Gauge(
            "hashhub_node_acks_pending", "Acks waiting for the hub's confirmation.", registry=r
        )
        self.acks_sent = Counter(
            "hashhub_node_acks_sent",
            "Ack deliveries, by result (confirmed, failed).",
            ["result"],
            registry=r,
        )
        self.webhooks_pending = Gauge(
            "hashhub_node_webhooks_pending", "Webhook calls not yet delivered.", registry=r
        )
        self.webhooks_sent = Counter(
            "hashhub_node_webhooks_sent",
            "Webhook deliveries, by result (delivered, failed).",
            ["result"],
            registry=r,
        )
        self.open_matches = Gauge(
            "hashhub_node_matches_awaiting_outcome",
            "Match events the platform has not reported an outcome for.",
            registry=r,
        )

    def refresh(self, status: Mapping[str, Any]) -> None:
        """Set the gauges from ``Node.status()``."""
        for entry in status["lists"]:
            self.list_version.labels(entry["list"]).set(entry["version"])
            self.list_hashes.labels(entry["list"]).set(entry["count"])
            self.list_stale.labels(entry["list"]).set(1 if entry["stale"] else 0)
        self.stale.set(1 if status["stale"] else 0)
        self.acks_pending.set(status["acks_pending"])
        self.webhooks_pending.set(status["webhooks_pending"])
        self.open_matches.set(status["matches_awaiting_outcome"])


# -- the schedule -----------------------------------------------------------------------


def next_poll_delay(interval: int, failures: int, max_backoff: int) -> int:
    """Seconds until the next update: ``interval`` after a success, doubling per failure.

    The back-off is capped at ``max_backoff`` but never shorter than ``interval``
    (which already includes the policy minimum).
    """
    if failures <= 0:
        return interval
    backoff: int = interval << min(failures - 1, 32)
    return max(interval, min(max_backoff, backoff))


class NodeScheduler:
    """Runs the sync, outbox, ack and stale-alarm jobs of one node on the running loop.

    Args:
        node: the node (used from the event loop's thread only).
        session: the HTTP client session for the hub and the webhook.
        metrics: where outcomes are counted.
        outbox_interval: seconds between sends of due acks and webhooks.
        stale_interval: seconds between stale checks.
    """

    def __init__(
        self,
        node: Node,
        session: aiohttp.ClientSession,
        metrics: NodeMetrics,
        *,
        outbox_interval: int = OUTBOX_INTERVAL,
        stale_interval: int = STALE_CHECK_INTERVAL,
    ) -> None:
        self.node = node
        self.session = session
        self.metrics = metrics
        self.outbox_interval = outbox_interval
        self.stale_interval = stale_interval
        self.failures = 0
        self.last_run: datetime | None = None
        self.last_outcomes: list[ListOutcome] = []
        self.stale_lists: set[str] = set()
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._running: set[asyncio.Task[Any]] = set()
        self._outbox_lock = asyncio.Lock()

    # -- settings ----------------------------------------------------------------------

    def poll_interval(self) -> int:
        """``max(policy min_poll_interval, configured poll_interval)``, in seconds."""
        root = self.node.newest_root()
        policy_minimum = root.policy.min_poll_interval if root is not None else 0
        return max(policy_minimum, self.node.config.poll_interval, 1)

    def _sync_trigger(self) -> IntervalTrigger:
        delay = next_poll_delay(self.poll_interval(), self.failures, self.node.config.max_backoff)
        return IntervalTrigger(seconds=delay, jitter=self.node.config.poll_jitter, timezone=UTC)

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def jobs(self) -> list[Any]:
        """The scheduled APScheduler ``Job``s, by id."""
        return sorted(self._scheduler.get_jobs(), key=lambda job: job.id)

    def snapshot(self) -> dict[str, Any]:
        """The schedule's state, for ``/v1/status``."""
        sync_job = self._scheduler.get_job("sync")
        next_run = getattr(sync_job, "next_run_time", None)
        return {
            "running": self.running,
            "poll_interval": self.poll_interval(),
            "consecutive_failures": self.failures,
            "last_run": self.last_run.isoformat() if self.last_run else None,
            "next_run": next_run.astimezone(UTC).isoformat() if next_run else None,
            "last_outcomes": {o.list_id: o.status for o in self.last_outcomes},
            "stale_lists": sorted(self.stale_lists),
        }

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Add the jobs and start; needs a running event loop. The first update runs now."""
        config = self.node.config
        common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        jobs: list[tuple[str, IntervalTrigger, Callable[[], Awaitable[object]], bool]] = [
            ("sync", self._sync_trigger(), self.sync, True),
            (
                "outbox",
                IntervalTrigger(seconds=self.outbox_interval, timezone=UTC),
                self.flush,
                False,
            ),
            (
                "stale",
                IntervalTrigger(seconds=self.stale_interval, timezone=UTC),
                self.check_stale,
                False,
            ),
        ]
        if config.ack_interval > 0:  # 0: acks only after each applied version
            jobs.append(
                ("ack", IntervalTrigger(seconds=config.ack_interval, timezone=UTC), self.ack, False)
            )
        for name, trigger, job, at_once in jobs:
            extra = {"next_run_time": datetime.now(UTC)} if at_once else {}
            self._scheduler.add_job(
                self._guarded,
                trigger,
                args=[name, job],
                id=name,
                name=f"hashhub-node {name}",
                **common,
                **extra,
            )
        self._scheduler.start()
        log.info(
            "scheduler started: sync every %ss (+ up to %ss), acks every %ss",
            self.poll_interval(),
            config.poll_jitter,
            config.ack_interval,
        )

    async def stop(self) -> None:
        """Pause, let a job that is running finish, then shut the scheduler down."""
        if not self._scheduler.running:
            return
        self._scheduler.pause()
        await asyncio.sleep(0)  # a job handed to the executor just now starts on this turn
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        self._scheduler.shutdown(wait=False)
        while self._scheduler.running:  # AsyncIOScheduler shuts down in a loop callback
            await asyncio.sleep(0)
        log.info("scheduler stopped")

    async def _guarded(self, name: str, job: Callable[[], Awaitable[object]]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await job()
        except Exception:
            log.exception("scheduled %s job failed", name)
        finally:
            if task is not None:
                self._running.discard(task)

    # -- jobs --------------------------------------------------------------------------

    async def sync(self) -> list[ListOutcome]:
        """One update of every list, then acks and webhooks, back-off and the stale check."""
        self.last_run = datetime.now(UTC)
        try:
            if not self.node.token:
                log.warning("no hub token yet: run 'hashhub-node token set' after enrolment")
                outcomes = [
                    ListOutcome(list_id, "failed", 0, 0, "no hub token")
                    for list_id in self.node.config.lists
                ]
            else:
                outcomes = await run_sync(self.node, self.session)
                self.follow_store()
        except Exception:
            self.failures += 1
            self._after_sync()
            raise
        self.last_outcomes = outcomes
        ok = all(o.status in ("updated", "current") for o in outcomes)
        self.failures = 0 if ok else self.failures + 1
        for o in outcomes:
            self.metrics.syncs.labels(o.list_id, o.status).inc()
            if o.status == "updated":
                log.info("%s: applied version %d (was %d)", o.list_id, o.to_version, o.from_version)
            elif o.status in ("rejected", "failed"):
                log.warning("%s: update %s: %s", o.list_id, o.status, o.error)
        self._after_sync()
        if any(o.status == "updated" for o in outcomes):
            await self.flush()
        return outcomes

    def _after_sync(self) -> None:
        self.metrics.sync_failures.set(self.failures)
        if self._scheduler.running and self._scheduler.get_job("sync") is not None:
            self._scheduler.reschedule_job("sync", trigger=self._sync_trigger())
        self.check_stale_now()

    async def flush(self) -> None:
        """Send due acks and deliver due webhooks (one flush at a time)."""
        async with self._outbox_lock:
            if self.node.token:
                confirmed, failed = await flush_acks(self.node, self.session)
                self.metrics.acks_sent.labels("confirmed").inc(confirmed)
                self.metrics.acks_sent.labels("failed").inc(failed)
            if self.node.config.webhook_url:
                delivered, failed = await deliver_webhooks(self.node, self.session)
                self.metrics.webhooks_sent.labels("delivered").inc(delivered)
                self.metrics.webhooks_sent.labels("failed").inc(failed)
        self.metrics.refresh(self.node.status())

    async def ack(self) -> None:
        """Sign one ack per applied list with the current totals, then send."""
        self.node.enqueue_acks()
        await self.flush()

    async def check_stale(self) -> None:
        self.follow_store()
        self.check_stale_now()

    def follow_store(self) -> list[str]:
        """Reload the match indexes if another process (``hashhub-node sync``) applied updates.

        Returns the lists whose stored version differed from the indexed one.
        """
        stored = {
            row["id"]: json.loads(row["trust"])["version"]
            for row in self.node.store.db.query("SELECT id, trust FROM lists")
        }
        behind = [
            list_id
            for list_id in self.node.config.lists
            if stored.get(list_id, 0) != self.node.versions.get(list_id, 0)
        ]
        if behind:
            self.node.load_indexes()
            log.info("reloaded the indexes of %s from the store", ", ".join(behind))
        return behind

    def check_stale_now(self) -> set[str]:
        """Raise (or clear) the stale alarm; returns the lists that are stale now."""
        status = self.node.status()
        self.metrics.refresh(status)
        stale = {entry["list"] for entry in status["lists"] if entry["stale"]}
        for entry in status["lists"]:
            if entry["list"] not in stale - self.stale_lists:
                continue
            if entry["version"] == 0:
                log.warning(
                    "STALE: %s has no verified version yet (last error %s)",
                    entry["list"],
                    entry["last_error"],
                )
            else:
                log.warning(
                    "STALE: %s has no verified checkpoint newer than the root's maximum age "
                    "(last checkpoint %s, last success %s, last error %s); "
                    "still enforcing version %d",
                    entry["list"],
                    entry["checkpoint_time"],
                    entry["last_success"],
                    entry["last_error"],
                    entry["version"],
                )
        for list_id in self.stale_lists - stale:
            log.info("%s is fresh again", list_id)
        self.stale_lists = stale
        return stale


# -- app keys ---------------------------------------------------------------------------

CONFIG = web.AppKey("config", NodeConfig)
NODE = web.AppKey("node", Node)
SESSION = web.AppKey("session", aiohttp.ClientSession)
SCHEDULER = web.AppKey("scheduler", NodeScheduler)
METRICS = web.AppKey("metrics", NodeMetrics)
_OPENAPI = web.AppKey("openapi", bytes)


# -- middlewares ------------------------------------------------------------------------


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    request.app[METRICS].requests.labels(route, request.method, str(response.status)).inc()
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route but ``/healthz`` needs the local API token.

    The status pages check the same token once, at their own login form, and then
    a session cookie of their own (``node.web``); that cookie opens no API route.
    """
    if request.match_info.handler is not healthz and not is_page_request(request):
        header = request.headers.get(hdrs.AUTHORIZATION)
        if header is None:
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <the api-token file>")
        try:
            token = bearer_token(header)
        except MalformedCredentialError as e:
            raise ApiError(401, "unauthorized", str(e)) from None
        if token is None or not is_the_api_token(token, request.app[NODE].api_token):
            raise ApiError(401, "unauthorized", "wrong API token")
    return await handler(request)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


# -- request reading --------------------------------------------------------------------


async def _read_body(request: web.Request, cap: int) -> bytes:
    """The request body, refusing (413) anything over ``cap`` bytes without reading it all."""
    declared = request.content_length
    if declared is not None and declared > cap:
        raise ApiError(413, "payload_too_large", f"the body is {declared} bytes; the cap is {cap}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise ApiError(413, "payload_too_large", f"the body exceeds the cap of {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_object(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    data = await _read_body(request, JSON_BODY_BYTES)
    try:
        value = json.loads(data.decode("utf-8"))
    # ValueError: besides UnicodeDecodeError and JSONDecodeError, an integer of more
    # digits than int() reads (4300), which would otherwise answer 500.
    except (ValueError, RecursionError) as e:
        raise _invalid(f"the body is not JSON: {e}") from e
    if not isinstance(value, dict):
        raise _invalid("the body must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise _invalid(f"unknown field(s) {unknown}")
    return value


def _hash_queries(value: object) -> dict[str, list[bytes]]:
    """``[{"type": "pdq", "hash": "<hex>"}, …]`` → ``{type: [bytes, …]}``, strictly."""
    if not isinstance(value, list) or not value:
        raise _invalid('\'hashes\' must be a non-empty list of {"type", "hash"} objects')
    if len(value) > MAX_QUERY_HASHES:
        raise _invalid(f"at most {MAX_QUERY_HASHES} hashes per request")
    queries: dict[str, list[bytes]] = {}
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"type", "hash"}:
            raise _invalid(f"hashes[{i}] must be an object with exactly 'type' and 'hash'")
        type_name, text = item["type"], item["hash"]
        kind = HASH_TYPES.get(type_name) if isinstance(type_name, str) else None
        if kind is None:
            raise _invalid(f"hashes[{i}]: unknown hash type; one of {sorted(HASH_TYPES)}")
        if not isinstance(text, str) or len(text) != 2 * kind.length or not _HEX.fullmatch(text):
            raise _invalid(f"hashes[{i}]: a {kind.name} hash is {2 * kind.length} hex digits")
        queries.setdefault(kind.name, []).append(bytes.fromhex(text))
    return queries


def _known_query(request: web.Request, *names: str) -> None:
    """Refuse a query parameter the route does not take.

    A misspelt parameter ignored silently changes the answer without a word: with
    ``?dihedal=1`` the rotations of a picture would not be checked. It is a 400
    naming the parameter instead.
    """
    unknown = sorted(set(request.query) - set(names))
    if unknown:
        raise _invalid(
            f"unknown query parameter {unknown[0][:64]!r}; this route takes {', '.join(names)}"
        )


def _flag(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise _invalid(f"{name} must be 1 or 0")


def _check_content_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 256 or not value.isprintable():
        raise _invalid("a content id is 1-256 printable characters")
    return value


_REJECTED = {
    "too_large": (413, "payload_too_large"),
    "decompression_bomb": (400, "decompression_bomb"),
    "corrupt": (400, "corrupt_image"),
    "unsupported": (415, "unsupported_media_type"),
}


async def _upload_queries(request: web.Request) -> tuple[str, dict[str, list[bytes]]]:
    """The hashes of an uploaded file by its content type: ``("image"|"file", queries)``."""
    node = request.app[NODE]
    content_type = request.content_type
    major = content_type.partition("/")[0]
    if content_type in IMAGE_TYPES:
        kind = "image"
    elif content_type in FILE_TYPES or major in ("video", "audio"):
        kind = "file"
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"cannot hash {content_type[:80]!r}: send an image ({', '.join(sorted(IMAGE_TYPES))}),"
            " video/*, audio/*, application/octet-stream, or application/json hashes",
        )
    dihedral = _flag(request, "dihedral")
    data = await _read_body(request, request.app[CONFIG].max_upload_bytes)
    if not data:
        raise _invalid("the body is empty")
    if kind == "file":
        return kind, node.file_queries(data)
    try:
        queries = await asyncio.to_thread(node.image_queries, data, dihedral=dihedral)
    except ImageRejected as e:
        status, code = _REJECTED[e.reason]
        raise ApiError(status, code, str(e)) from e
    return kind, queries


def _hex_queries(queries: Mapping[str, list[bytes]]) -> dict[str, list[str]]:
    return {type_name: [h.hex() for h in hashes] for type_name, hashes in sorted(queries.items())}


def _count_matches(app: web.Application, results: list[MatchResult], source: str) -> None:
    for result in results:
        app[METRICS].matches.labels(result.list_id, source).inc()


# -- handlers ---------------------------------------------------------------------------


async def post_match(request: web.Request) -> web.StreamResponse:
    """Match an upload (its bytes) or hashes (JSON) against every subscribed list."""
    node = request.app[NODE]
    _known_query(request, "dihedral")
    if request.content_type == "application/json":
        body = await _json_object(request, {"hashes"})
        kind, queries = "hashes", _hash_queries(body.get("hashes"))
    else:
        kind, queries = await _upload_queries(request)
    results = node.match_hashes(queries, one_item=kind != "hashes")
    request.app[METRICS].checked.labels(kind).inc()
    _count_matches(request.app, results, "upload")
    return web.json_response(
        {"matches": [r.to_dict() for r in results], "hashes": _hex_queries(queries)}
    )


async def post_outcome(request: web.Request) -> web.StreamResponse:
    """Record what the platform did about a match."""
    match_id = request.match_info["match_id"]
    if not _MATCH_ID.fullmatch(match_id):
        raise ApiError(404, "not_found", f"no match {match_id[:64]!r}")
    body = await _json_object(request, {"outcome"})
    outcome = body.get("outcome")
    if outcome not in OUTCOMES:
        raise _invalid(f"'outcome' must be one of {', '.join(OUTCOMES)}")
    try:
        recorded = request.app[NODE].record_outcome(match_id, outcome)
    except KeyError as e:
        raise ApiError(404, "not_found", f"no match {match_id}") from e
    except ValueError as e:
        raise ApiError(409, "conflict", str(e)) from e
    return web.json_response(recorded)


async def post_content(request: web.Request) -> web.StreamResponse:
    """Register content the platform hosts; answer with what it matches now."""
    node = request.app[NODE]
    _known_query(request, "content_id", "dihedral")
    if request.content_type == "application/json":
        if "content_id" in request.query:
            raise _invalid("give the content id in the JSON body, not in the query")
        body = await _json_object(request, {"content_id", "hashes"})
        content_id = _check_content_id(body.get("content_id"))
        kind, queries = "hashes", _hash_queries(body.get("hashes"))
    else:
        content_id = _check_content_id(request.query.get("content_id"))
        kind, queries = await _upload_queries(request)
    # One transaction: a registration is stored with its matches or not at all.
    with node.store.db.atomic():
        try:
            registered = node.register_content(content_id, queries)
        except NodeError as e:
            raise _invalid(str(e)) from e
        results = node.match_hashes(queries, content_id=content_id, one_item=kind != "hashes")
    request.app[METRICS].checked.labels(kind).inc()
    _count_matches(request.app, results, "registry")
    return web.json_response(
        {
            "content_id": content_id,
            "registered": registered,
            "matches": [r.to_dict() for r in results],
            "hashes": _hex_queries(queries),
        },
        status=201,
    )


async def get_status(request: web.Request) -> web.StreamResponse:
    """The node's status (``Node.status()``) and its schedule's."""
    status = request.app[NODE].status()
    scheduler = request.app.get(SCHEDULER)
    status["schedule"] = scheduler.snapshot() if scheduler is not None else None
    request.app[METRICS].refresh(status)
    return web.json_response(status)


async def get_matches(request: web.Request) -> web.StreamResponse:
    """Recent match events, newest first (``?open=1``: those without an outcome)."""
    _known_query(request, "open", "limit")
    open_only = bool(_flag(request, "open"))
    raw = request.query.get("limit", "50")
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise _invalid(f"limit must be an integer from 1 to {MAX_LIMIT}")
    matches = request.app[NODE].recent_matches(int(raw), open_only=open_only)
    return web.json_response({"matches": matches})


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


def _metrics_handler(registry: CollectorRegistry) -> Handler:
    export = make_aiohttp_handler(registry)

    async def metrics(request: web.Request) -> web.StreamResponse:
        request.app[METRICS].refresh(request.app[NODE].status())
        return await export(request)

    return metrics


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.Response(body=request.app[_OPENAPI], content_type="application/yaml")


# -- the app ----------------------------------------------------------------------------


def _node_context(
    home: Path, now: Callable[[], datetime]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def node_context(app: web.Application) -> AsyncIterator[None]:
        node = Node.open(home, now=now)
        app[NODE] = node
        try:
            app[METRICS].refresh(node.status())
            yield
        finally:
            node.close()

    return node_context


async def _session_context(app: web.Application) -> AsyncIterator[None]:
    tls = app[CONFIG].ssl_context(app[NODE].home)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
        app[SESSION] = session
        yield


async def _scheduler_context(app: web.Application) -> AsyncIterator[None]:
    scheduler = NodeScheduler(app[NODE], app[SESSION], app[METRICS])
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
    """Build the node's HTTP app for the node in ``home``.

    Args:
        home: the node's home directory (``node.toml``, database, key, secret files).
        now: the clock every trust decision uses (default: the system clock, UTC).
        schedule: run the sync, outbox, ack and stale jobs (tests turn it off to
            drive updates by hand).

    Raises:
        NodeConfigError: ``home`` holds no readable node configuration.
    """
    config = NodeConfig.load(home)
    app = web.Application(
        middlewares=[metrics_middleware, error_middleware, limits_middleware, auth_middleware],
        client_max_size=config.max_upload_bytes,
    )
    app[CONFIG] = config
    app[LIMITS] = NodeLimits.from_config(config, NODE)
    app[METRICS] = NodeMetrics()
    app[_OPENAPI] = importlib.resources.files("node").joinpath("openapi.yaml").read_bytes()
    app.cleanup_ctx.append(_node_context(home, now or utcnow))
    app.cleanup_ctx.append(_session_context)
    if schedule:
        app.cleanup_ctx.append(_scheduler_context)
    app.on_response_prepare.append(_security_headers)

    app.router.add_post("/v1/match", post_match)
    app.router.add_post("/v1/matches/{match_id}/outcome", post_outcome)
    app.router.add_post("/v1/content", post_content)
    app.router.add_get("/v1/status", get_status, allow_head=False)
    app.router.add_get("/v1/matches", get_matches, allow_head=False)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/metrics", _metrics_handler(app[METRICS].registry), allow_head=False)
    app.router.add_get("/openapi.yaml", openapi, allow_head=False)
    app.add_subapp(PAGE_PREFIX, status_pages(NODE, SCHEDULER, secure_cookies=config.secure_cookies))
    return app


ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tfs'
"""Method, path, status, size, time: never headers, so never the API token."""


def run(home: Path, host: str | None = None, port: int | None = None) -> None:
    """Serve the node in ``home`` until SIGINT or SIGTERM (defaults from node.toml)."""
    config = NodeConfig.load(home)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    web.run_app(
        create_app(home),
        host=host or config.api_host,
        port=config.api_port if port is None else port,
        access_log_class=ClientAccessLogger,
        access_log_format=ACCESS_LOG_FORMAT,
    )
