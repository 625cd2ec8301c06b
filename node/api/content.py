"""``POST /v1/content``: content the platform hosts, registered and matched now.

Apart from ``match`` because a registration is stored and outlives the request:
a later delta that lists its hashes raises a webhook (``node.registry``). It
reads an upload and answers as ``match`` does, with the same helpers. A video is
registered by its frames (``vpdq``: their hex in JSON, or a ``video/*`` upload
hashed as ``match`` hashes one when the node follows a video list), never by a bare
64-digit ``vpdq`` hash, which is refused: it could never match. A replica
with a ``content_shard`` registers only its shard's content ids (``node.fleet``).
"""

from __future__ import annotations

from aiohttp import web

from edge.errors import ApiError
from node.api.keys import METRICS, NODE
from node.api.match import count_matches, hex_queries, upload_queries
from node.api.requests import check_content_id, hash_queries, invalid, json_object, known_query
from node.errors import InvalidContentError
from node.service import Node

__all__ = ["post_content"]


def check_shard(node: Node, content_id: str) -> None:
    """Refuse content of another replica's shard (421 ``misdirected_content``, naming
    the shard it belongs to) before anything is read or hashed."""
    shard = node.shard
    if shard is not None and not shard.owns(content_id):
        raise ApiError(
            421,
            "misdirected_content",
            f"content {content_id[:64]!r} belongs to shard {shard.owner(content_id)}, "
            f"not to this replica's shard {shard}: register it there",
        )


async def post_content(request: web.Request) -> web.StreamResponse:
    """Register content the platform hosts; answer with what it matches now."""
    node = request.app[NODE]
    known_query(request, "content_id", "dihedral")
    if request.content_type == "application/json":
        if "content_id" in request.query:
            raise invalid("give the content id in the JSON body, not in the query")
        body = await json_object(request, {"content_id", "hashes"})
        content_id = check_content_id(body.get("content_id"))
        check_shard(node, content_id)
        kind, queries = "hashes", hash_queries(body.get("hashes"), registering=True)
    else:
        content_id = check_content_id(request.query.get("content_id"))
        check_shard(node, content_id)
        kind, queries = await upload_queries(request)
    # One transaction: a registration is stored with its matches or not at all.
    try:
        registered, results = node.registry.register_and_match(
            content_id, queries, one_item=kind != "hashes"
        )
    except InvalidContentError as e:
        raise invalid(str(e)) from e
    request.app[METRICS].checked.labels(kind).inc()
    count_matches(request.app, results, "registry")
    return web.json_response(
        {
            "content_id": content_id,
            "registered": registered,
            "matches": [r.to_dict() for r in results],
            "hashes": hex_queries(queries),
        },
        status=201,
    )
