"""``POST /v1/content``: content the platform hosts, registered and matched now.

Apart from ``match`` because a registration is stored and outlives the request:
a later delta that lists its hashes raises a webhook (``node.registry``). It
reads an upload and answers as ``match`` does, with the same helpers.
"""

from __future__ import annotations

from aiohttp import web

from node.api.keys import METRICS, NODE
from node.api.match import count_matches, hex_queries, upload_queries
from node.api.requests import check_content_id, hash_queries, invalid, json_object, known_query
from node.errors import InvalidContentError

__all__ = ["post_content"]


async def post_content(request: web.Request) -> web.StreamResponse:
    """Register content the platform hosts; answer with what it matches now."""
    node = request.app[NODE]
    known_query(request, "content_id", "dihedral")
    if request.content_type == "application/json":
        if "content_id" in request.query:
            raise invalid("give the content id in the JSON body, not in the query")
        body = await json_object(request, {"content_id", "hashes"})
        content_id = check_content_id(body.get("content_id"))
        kind, queries = "hashes", hash_queries(body.get("hashes"))
    else:
        content_id = check_content_id(request.query.get("content_id"))
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
