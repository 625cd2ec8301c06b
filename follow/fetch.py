"""Downloads of published files: capped, deadlined, mirrors first.

What ``Fetcher`` returns is bytes, never trusted: every caller hands them to
``protocol``'s trust rules. It only makes sure that nothing is read past a cap
(``protocol.Limits`` and the sizes the signed headers promise), that no answer takes
longer than its deadline, and that a source's failure (a 404, a refusal, bytes of
another SHA-256) is told apart from the others, so the update can say who is at
fault (``follow.errors``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections.abc import Sequence

import aiohttp

from follow.errors import FetchError, HubAccessError, NotPublishedError
from protocol import ConsistencyError, LimitError, Limits, MissingFileError

__all__ = ["Fetcher", "cannot_connect"]

_CHUNK = 64 * 1024


class Fetcher:
    """Downloads published files with caps and deadlines, from mirrors and the hub.

    Immutable files are tried on each mirror first, then on the hub; the
    checkpoint (the one mutable file) on the hub first, mirrors as fallback.
    Mirrors are not trusted for anything: what they serve is verified like the
    hub's. Only requests to the hub carry the follower's token.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        hub_url: str,
        *,
        mirrors: Sequence[str] = (),
        token: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.session = session
        self.hub_url = hub_url.rstrip("/")
        self.mirrors = [m.rstrip("/") for m in mirrors]
        self.token = token
        self.limits = limits or Limits()
        self.requested: list[str] = []
        self.rejected: list[str] = []
        """URLs whose bytes failed verification (kept for evidence)."""

    async def fetch(
        self,
        path: str,
        cap: int,
        *,
        immutable: bool = True,
        sha256: str | None = None,
        hub_only: bool = False,
    ) -> bytes:
        """Return the bytes at ``path`` from the first source that has them.

        With ``sha256`` (bodies and snapshots, whose digests the signed headers give)
        a source whose bytes hash otherwise is passed over like a failed one, so one
        bad mirror cannot hold a follower back while the hub serves the right bytes.
        ``hub_only`` skips the mirrors (a retry after a mirror's bytes were rejected).

        Raises:
            NotPublishedError: every source answered 404.
            LimitError: the last source tried sent more than ``cap`` bytes (an answer
                over its cap counts as that source's failure: the next one is tried).
            ConsistencyError: every source that answered sent bytes of another SHA-256.
            FetchError: every source failed otherwise.
        """
        if hub_only:
            sources = [self.hub_url]
        elif immutable:
            sources = [*self.mirrors, self.hub_url]
        else:
            sources = [self.hub_url, *self.mirrors]
        missing = 0
        last: Exception | None = None
        denied: HubAccessError | None = None
        for base in sources:
            try:
                data = await self._get(base, path, cap)
                if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
                    self.rejected.append(f"{base}/{path}")
                    last = ConsistencyError(f"{base}/{path}: SHA-256 is not the signed one")
                    continue
                return data
            except NotPublishedError as e:
                missing += 1
                last = e
            except HubAccessError as e:
                denied = last = e
            except LimitError as e:
                # More than the cap (for bodies and snapshots the signed length) is a
                # source breaking the protocol, not a network fault: on record.
                self.rejected.append(f"{base}/{path} (over {cap} bytes)")
                last = e
            except FetchError as e:
                last = e
        if missing == len(sources):
            raise NotPublishedError(f"{path}: not published")
        if denied is not None:
            # The hub refusing the token says more than a mirror lacking the file.
            raise denied
        assert last is not None
        raise last

    async def fetch_promised(
        self,
        path: str,
        cap: int,
        promise: str,
        *,
        immutable: bool = True,
        sha256: str | None = None,
        hub_only: bool = False,
    ) -> bytes:
        """``fetch`` a file that signed data promises exists (PROTOCOL.md §11.1).

        Every source tried first, as ``fetch`` does; only when every one of them
        answered 404 is the file missing, and that is the publisher's fault (or a
        withholding copy's), not "nothing to do": ``MissingFileError``, which a sync
        records as evidence. ``promise`` says which signed data refers to the file.

        Raises:
            MissingFileError: every source answered 404.
            (and whatever else ``fetch`` raises)
        """
        try:
            return await self.fetch(
                path, cap, immutable=immutable, sha256=sha256, hub_only=hub_only
            )
        except NotPublishedError as e:
            raise MissingFileError(path, promise) from e

    async def _get(self, base: str, path: str, cap: int) -> bytes:
        url = f"{base}/{path}"
        self.requested.append(url)
        headers = {}
        if base == self.hub_url and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            async with asyncio.timeout(self.limits.fetch_timeout):
                async with self.session.get(url, headers=headers, allow_redirects=False) as resp:
                    if resp.status == 404:
                        raise NotPublishedError(f"{url}: 404")
                    if resp.status in (401, 403) and base == self.hub_url:
                        said, code = await _refusal(resp)
                        raise HubAccessError(f"{url}: {said}", resp.status, code)
                    if resp.status != 200:
                        raise FetchError(f"{url}: {(await _refusal(resp))[0]}")
                    # Content-Length counts encoded bytes: a gzipped body may be longer
                    # than its cap when it is tiny. Decoded bytes are counted below.
                    encoded = resp.headers.get("Content-Encoding", "identity") != "identity"
                    if not encoded and (resp.content_length or 0) > cap:
                        raise LimitError(f"{url}: {resp.content_length} bytes, cap {cap}")
                    parts: list[bytes] = []
                    total = 0
                    while chunk := await resp.content.read(_CHUNK):
                        total += len(chunk)
                        if total > cap:
                            raise LimitError(f"{url}: more than the cap of {cap} bytes")
                        parts.append(chunk)
                    return b"".join(parts)
        except TimeoutError as e:
            raise FetchError(
                f"{url}: no complete answer within {self.limits.fetch_timeout} s"
            ) from e
        except aiohttp.ClientConnectorError as e:
            if isinstance(e, aiohttp.ClientSSLError):  # a TLS failure says its own reason
                raise FetchError(f"{url}: TLS failed: {e}") from e
            raise FetchError(cannot_connect(base, e)) from e
        except aiohttp.ClientError as e:
            raise FetchError(f"{url}: {e or type(e).__name__}") from e


def cannot_connect(base: str, error: aiohttp.ClientConnectorError) -> str:
    """``cannot connect to <base>: <reason>``, the reason as the operating system says
    it (``connection refused``, ``name or service not known``) rather than the client
    library's ``Cannot connect to host … ssl:default [Connect call failed …]``: what
    an operator has to check is the URL, the host, or whether the server is up."""
    os_error = error.os_error
    if os_error.errno is not None and os_error.errno > 0:
        reason = os.strerror(os_error.errno)
    else:
        reason = str(os_error.strerror or os_error)
    return f"cannot connect to {base}: {reason.lower()}"


_REFUSAL_BYTES = 4096
"""How much of an error answer is read for its message."""
_REFUSAL_CHARS = 200
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


async def _refusal(resp: aiohttp.ClientResponse) -> tuple[str, str]:
    """``HTTP <status>`` with the message of the answer's JSON error shape if it has
    one, and that error's ``code`` (``""`` without one).

    So that an operator reads the hub's own reason (``401 unauthorized: node is
    revoked``) rather than a bare status, and the follower can tell a suspension
    (``node_suspended``) from a list it may not read. The answer may come from a
    mirror or anyone on the path: only a small prefix is read, and only its visible
    ASCII is kept, cut short.
    """
    status = f"HTTP {resp.status}"
    try:
        error = json.loads(await resp.content.read(_REFUSAL_BYTES))["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError, aiohttp.ClientError):
        return status, ""
    said = _UNPRINTABLE.sub(" ", f"{code}: {message}").strip()[:_REFUSAL_CHARS]
    return (f"{status} {said}" if said else status), code
