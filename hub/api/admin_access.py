"""The operator API on who the hub trusts: nodes, operator tokens, signing keys.

Apart from the other operator routes because each of these changes a credential
(a node's token, an operator's, a root signed by a new key) and so clears the
app's read-permission and file caches at once: a revoked node is refused on its
next request. Most are ``admin`` only (``hub.api.admin.ADMIN_ROUTES``), and a new
token is shown once, in the answer.
"""

from __future__ import annotations

import re

from aiohttp import web

from hub.api.requests import Fields, check_list_id, check_node_id, json_object, public_key_of
from hub.appkeys import CONFIG, HUB
from hub.core import OPERATOR_ROLES, Hub, Principal
from hub.errors import InvalidRequest
from hub.http import invalidate_caches
from hub.services.access import check_platform_id
from protocol.root import ROLE_NAMES

__all__ = [
    "admin_create_token",
    "admin_enrol",
    "admin_grant",
    "admin_keys",
    "admin_node_token",
    "admin_nodes",
    "admin_platform",
    "admin_rekey",
    "admin_resume",
    "admin_revoke",
    "admin_rotate",
    "admin_suspend",
    "admin_ungrant",
]

_SUBJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


async def admin_nodes(request: web.Request, principal: Principal) -> web.StreamResponse:
    return web.json_response(
        {
            "nodes": await request.app[HUB].call(
                lambda hub: [n.to_dict() for n in hub.access.nodes()]
            )
        }
    )


async def admin_enrol(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Enrol a node: ``{"id", "public_key", "lists", "platform"?}``; its token, once."""
    body = Fields(
        await json_object(request, request.app[CONFIG].max_ack_bytes),
        {"id", "public_key", "lists", "platform"},
    )
    node_id = check_node_id(body.text("id", max_len=64))
    key = public_key_of(body.text("public_key", max_len=4096))
    lists = [check_list_id(v) for v in body.strings("lists")]
    platform = (
        check_platform_id(body.text("platform", max_len=64)) if "platform" in body.value else None
    )

    def enrol(hub: Hub) -> tuple[str, str]:
        token = hub.access.enrol_node(node_id, key, lists, who=principal.subject, platform=platform)
        return token, next(n.platform for n in hub.access.nodes() if n.id == node_id)

    token, serves = await request.app[HUB].call(enrol)
    invalidate_caches(request.app)
    return web.json_response(
        {
            "node": node_id,
            "platform": serves,
            "keyid": key.keyid,
            "lists": sorted(set(lists)),
            "token": token,
        },
        status=201,
    )


async def admin_revoke(request: web.Request, principal: Principal) -> web.StreamResponse:
    node_id = check_node_id(request.match_info["node_id"])
    await request.app[HUB].call(lambda hub: hub.access.revoke_node(node_id, who=principal.subject))
    invalidate_caches(request.app)
    return web.json_response({"node": node_id, "revoked": True})


async def admin_grant(request: web.Request, principal: Principal) -> web.StreamResponse:
    return await _change_lists(request, principal, grant=True)


async def admin_ungrant(request: web.Request, principal: Principal) -> web.StreamResponse:
    return await _change_lists(request, principal, grant=False)


async def _change_lists(
    request: web.Request, principal: Principal, *, grant: bool
) -> web.StreamResponse:
    """Grant or take away lists: ``{"lists": [...]}``; answers the node's lists now."""
    node_id = check_node_id(request.match_info["node_id"])
    body = Fields(await json_object(request, 64 * 1024), {"lists"})
    lists = [check_list_id(v) for v in body.strings("lists")]
    who = principal.subject
    lists_now = await request.app[HUB].call(
        lambda hub: (
            hub.access.grant(node_id, lists, who=who)
            if grant
            else hub.access.ungrant(node_id, lists, who=who)
        )
    )
    invalidate_caches(request.app)
    return web.json_response({"node": node_id, "lists": lists_now})


async def admin_rekey(request: web.Request, principal: Principal) -> web.StreamResponse:
    """A new key for the node from its next seq: ``{"public_key": PEM or hex}``."""
    node_id = check_node_id(request.match_info["node_id"])
    body = Fields(await json_object(request, 64 * 1024), {"public_key"})
    key = public_key_of(body.text("public_key", max_len=4096))
    record = await request.app[HUB].call(
        lambda hub: hub.access.rekey(node_id, key, who=principal.subject)
    )
    invalidate_caches(request.app)
    return web.json_response(
        {"node": node_id, "keyid": record.keyid, "first_seq": record.first_seq}
    )


async def admin_node_token(request: web.Request, principal: Principal) -> web.StreamResponse:
    """A new token for the node; the old one is refused from now on. Shown once."""
    node_id = check_node_id(request.match_info["node_id"])
    token = await request.app[HUB].call(
        lambda hub: hub.access.reissue_token(node_id, who=principal.subject)
    )
    invalidate_caches(request.app)
    return web.json_response({"node": node_id, "token": token}, status=201)


async def admin_suspend(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Refuse the node every request until resumed: ``{"reason": "..."}`` (may be empty)."""
    node_id = check_node_id(request.match_info["node_id"])
    body = Fields(await json_object(request, 64 * 1024), {"reason"})
    reason = body.text("reason", default="", max_len=500)
    await request.app[HUB].call(
        lambda hub: hub.access.suspend(node_id, reason, who=principal.subject)
    )
    invalidate_caches(request.app)
    return web.json_response({"node": node_id, "suspended": True})


async def admin_resume(request: web.Request, principal: Principal) -> web.StreamResponse:
    node_id = check_node_id(request.match_info["node_id"])
    await request.app[HUB].call(lambda hub: hub.access.resume(node_id, who=principal.subject))
    invalidate_caches(request.app)
    return web.json_response({"node": node_id, "suspended": False})


async def admin_platform(request: web.Request, principal: Principal) -> web.StreamResponse:
    """Move the node to another platform: ``{"platform": ID}``; answers both platforms."""
    node_id = check_node_id(request.match_info["node_id"])
    body = Fields(await json_object(request, 64 * 1024), {"platform"})
    platform = check_platform_id(body.text("platform", max_len=64))
    previous = await request.app[HUB].call(
        lambda hub: hub.access.set_platform(node_id, platform, who=principal.subject)
    )
    return web.json_response({"node": node_id, "platform": platform, "previous": previous})


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
    body = Fields(await json_object(request, 64 * 1024), {"role", "subject"})
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
