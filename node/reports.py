"""Read-only views of the node's store for people: open matches and what was rejected.

The command line (``hashhub-node matches``, ``hashhub-node evidence``) prints
these; they only read, so a reviewer can look as often as they like without
changing what the node counts or sends. Every text that came from outside (a
content id, an error message that quotes published data) passes through
``printable`` before it reaches a terminal: one evidence row must stay one line,
and must not be able to recolour, move or erase the lines around it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from node.store import NodeStore
from node.store.matches import event_shares

__all__ = ["EVIDENCE_SOURCES", "evidence", "failures", "match_events", "printable"]

EVIDENCE_SOURCES = {
    "LocalCorruption": "local store",
    "AckRefused": "hub (ack)",
    "AckRenumbered": "hub (ack)",
    "RejectedSource": "mirror",
}
"""Where the bytes of each kind of evidence came from; any other kind is a rejected
update, whose bytes came from the hub or its mirrors (``update``)."""


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on escaped (``\\n``,
    ``\\x1b``, ``\\u202e``, undecodable bytes as ``\\udcff``); other text as is."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def match_events(store: NodeStore, limit: int, *, open_only: bool) -> list[dict[str, Any]]:
    """The newest match events (``open_only``: those awaiting an outcome), as JSON values."""
    return [
        {
            "match_id": r["id"],
            "created": r["created"],
            "hub": r["hub"],
            "list": r["list_id"],
            "hash_type": r["hash_type"],
            "hash": bytes(r["hash"]).hex(),
            "query": bytes(r["query"]).hex(),
            "distance": r["distance"],
            "version": r["version"],
            "source": r["source"],
            "content_id": r["content_id"],
            "outcome": r["outcome"],
            "outcome_at": r["outcome_at"],
        }
        | event_shares(r["shares"])
        for r in store.matches.listing(limit, open_only=open_only)
    ]


def evidence(store: NodeStore) -> list[dict[str, Any]]:
    """Every evidence row, newest first, with the source its bytes came from."""
    return [
        {
            "id": r["id"],
            "created": r["created"],
            "hub": r["hub"],
            "list": r["list_id"],
            "kind": r["kind"],
            "source": EVIDENCE_SOURCES.get(r["kind"], "update"),
            "message": r["message"],
            "bytes_kept": r["has_bytes"],
        }
        for r in reversed(store.evidence())
    ]


def failures(stores: Iterable[NodeStore]) -> list[dict[str, Any]]:
    """Each list whose last update attempt failed or was rejected, with the error: of
    each store view's hub (``NodeStore.view``: the node's followed hubs).

    A failure that was no protocol rejection (the network, a deadline, a full disk)
    keeps no evidence row: this, the list's last error, is all that records it.
    """
    return [
        {
            "hub": store.hub,
            "list": r["id"],
            "last_attempt": r["last_attempt"],
            "last_success": r["last_success"],
            "error": r["last_error"],
        }
        for store in stores
        for r in store.list_rows()
        if r["last_error"]
    ]
