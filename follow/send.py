"""Sending a signed document to a hub: an ack (PROTOCOL.md §10.6) as its follower does.

A follower that acknowledges what it applied (the threatexchange bridge, a hub
following an upstream) posts each ack with its bearer token and the sidecar in the
``Hashhub-Signature`` header, and reads back what the hub said: the status, the
``Hashhub-Last-Seq`` it holds (for a 409, a number never believed beyond the
caller's own bound) and the error's code and message, in one line. What to do with
the answer — drop, renumber, keep for later — is the caller's: a node queues and a
bridge files them differently.
"""

from __future__ import annotations

import base64
import json

import aiohttp

from protocol import ACK_LAST_SEQ_HEADER, ACK_SIGNATURE_HEADER

__all__ = ["Answer", "post_ack"]

Answer = tuple[int, int | None, str]
"""(HTTP status, the ``Hashhub-Last-Seq`` the hub sent or None, what it said)."""


async def post_ack(
    session: aiohttp.ClientSession, hub_url: str, token: str | None, data: bytes, sig: bytes
) -> Answer:
    """POST one signed ack to ``hub_url``'s ``/v1/acks``; the hub's answer.

    Raises:
        aiohttp.ClientError, TimeoutError: the hub could not be reached or answered
            nothing in 30 s (the ack is the caller's to send again).
    """
    headers = {
        ACK_SIGNATURE_HEADER: base64.b64encode(sig).decode("ascii"),
        "Content-Type": "application/json",
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with session.post(
        f"{hub_url.rstrip('/')}/v1/acks",
        data=data,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=30),
    ) as resp:
        text = await resp.text()
        raw = resp.headers.get(ACK_LAST_SEQ_HEADER, "")
        last_seq = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
        try:
            error = json.loads(text)["error"]
            said = f"{error['code']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            said = text[:300]
        return resp.status, last_seq, said[:300]
