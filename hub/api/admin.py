"""The operator API's table: every ``/v1/admin`` route, who may call it, and its guard.

An operator route is one ``AdminRoute`` line in ``ADMIN_ROUTES`` naming the roles
it admits besides ``admin``; ``admin_handler`` wraps every one the same way
(operator bearer token, role check, ``Cache-Control: no-store``), so no handler
can forget either. The table is here and the handlers are in modules by what
they touch — ``admin_lists`` (lists, staging, publishing), ``admin_entries`` (the
vocabulary and the entries of entries lists), ``admin_access``
(nodes, operator tokens, signing keys), ``admin_records`` (status, the action log,
acks and evidence), ``admin_cases`` (the review of public submissions),
``admin_disputes`` (disputes of entries), ``admin_contributions`` (members'
contributions) — so the
whole of who may do what reads in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import hdrs, web

from hub.api.admin_access import (
    admin_create_token,
    admin_enrol,
    admin_grant,
    admin_keys,
    admin_node_token,
    admin_nodes,
    admin_platform,
    admin_rekey,
    admin_resume,
    admin_revoke,
    admin_rotate,
    admin_suspend,
    admin_ungrant,
)
from hub.api.admin_cases import (
    admin_accept_case,
    admin_case,
    admin_cases,
    admin_decide_withdrawal,
    admin_reject_case,
    admin_withdrawals,
)
from hub.api.admin_contributions import (
    admin_contributions,
    admin_decide_contribution,
    admin_trust_platform,
    admin_trusted_platforms,
    admin_untrust_platform,
)
from hub.api.admin_disputes import admin_decide_dispute, admin_disputes
from hub.api.admin_entries import (
    admin_add_entry,
    admin_add_term,
    admin_change_entry,
    admin_entries,
    admin_import_entries,
    admin_retract_entry,
    admin_vocabulary,
)
from hub.api.admin_lists import (
    admin_counts,
    admin_create_list,
    admin_import,
    admin_lists,
    admin_publish,
    admin_stage,
)
from hub.api.admin_records import admin_acks, admin_actions, admin_evidence, admin_status
from hub.api.requests import bearer
from hub.appkeys import HUB
from hub.core import Principal
from hub.errors import Unauthorized
from hub.http import Handler

__all__ = ["ADMIN_ROUTES", "AdminHandler", "AdminRoute", "admin_handler"]

AdminHandler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
"""An operator route's handler: the request and the operator it was authenticated as."""


@dataclass(frozen=True)
class AdminRoute:
    """One operator route: who may call it besides ``admin`` (empty: admin only)."""

    method: str
    path: str
    roles: tuple[str, ...]
    handler: AdminHandler


def admin_handler(route: AdminRoute) -> Handler:
    """The aiohttp handler of ``route``: authenticate, check the role, answer ``no-store``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        token = bearer(request)
        if token is None:
            raise Unauthorized("the operator API needs an operator bearer token")
        principal = await request.app[HUB].call(lambda hub: hub.access.authenticate(token))
        principal.require(*route.roles)
        response = await route.handler(request, principal)
        response.headers[hdrs.CACHE_CONTROL] = "no-store"
        return response

    return handler


ADMIN_ROUTES: tuple[AdminRoute, ...] = (
    AdminRoute("GET", "/v1/admin/status", ("viewer", "auditor"), admin_status),
    AdminRoute("GET", "/v1/admin/lists", ("viewer", "auditor"), admin_lists),
    AdminRoute("POST", "/v1/admin/lists", (), admin_create_list),
    AdminRoute("GET", "/v1/admin/lists/{list_id}/counts", ("viewer", "auditor"), admin_counts),
    AdminRoute("POST", "/v1/admin/lists/{list_id}/stage", ("publisher",), admin_stage),
    AdminRoute("POST", "/v1/admin/lists/{list_id}/import", ("publisher",), admin_import),
    AdminRoute("POST", "/v1/admin/publish", ("publisher",), admin_publish),
    # Entries lists: staged like hashes (a publisher), read by every operator; a new
    # vocabulary term is a root change, as declaring a list is (admin only).
    AdminRoute("GET", "/v1/admin/vocabulary", ("viewer", "auditor", "publisher"), admin_vocabulary),
    AdminRoute("POST", "/v1/admin/vocabulary", (), admin_add_term),
    AdminRoute("GET", "/v1/admin/entries", ("viewer", "auditor", "publisher"), admin_entries),
    AdminRoute("POST", "/v1/admin/entries", ("publisher",), admin_add_entry),
    AdminRoute("POST", "/v1/admin/entries/import", ("publisher",), admin_import_entries),
    AdminRoute("POST", "/v1/admin/entries/change", ("publisher",), admin_change_entry),
    AdminRoute("POST", "/v1/admin/entries/retract", ("publisher",), admin_retract_entry),
    AdminRoute("GET", "/v1/admin/nodes", ("viewer", "auditor"), admin_nodes),
    AdminRoute("POST", "/v1/admin/nodes", (), admin_enrol),
    AdminRoute("DELETE", "/v1/admin/nodes/{node_id}", (), admin_revoke),
    AdminRoute("POST", "/v1/admin/nodes/{node_id}/grant", (), admin_grant),
    AdminRoute("POST", "/v1/admin/nodes/{node_id}/ungrant", (), admin_ungrant),
    AdminRoute("POST", "/v1/admin/nodes/{node_id}/key", (), admin_rekey),
    AdminRoute("POST", "/v1/admin/nodes/{node_id}/token", (), admin_node_token),
    AdminRoute("POST", "/v1/admin/nodes/{node_id}/suspend", (), admin_suspend),
    AdminRoute("POST", "/v1/admin/nodes/{node_id}/resume", (), admin_resume),
    AdminRoute("POST", "/v1/admin/nodes/{node_id}/platform", (), admin_platform),
    AdminRoute("GET", "/v1/admin/keys", ("viewer", "auditor"), admin_keys),
    AdminRoute("POST", "/v1/admin/keys/{role}/rotate", (), admin_rotate),
    AdminRoute("POST", "/v1/admin/tokens", (), admin_create_token),
    AdminRoute("GET", "/v1/admin/actions", ("viewer", "auditor"), admin_actions),
    AdminRoute("GET", "/v1/admin/evidence", ("auditor",), admin_evidence),
    AdminRoute("GET", "/v1/admin/acks", ("auditor",), admin_acks),
    # The review of public submissions: the dashboard's roles (hub.web.pages READ_ROLES,
    # WRITE_ROLES): a publisher reads what it reviews.
    AdminRoute("GET", "/v1/admin/cases", ("viewer", "auditor", "publisher"), admin_cases),
    AdminRoute("GET", "/v1/admin/cases/{case}", ("viewer", "auditor", "publisher"), admin_case),
    AdminRoute("POST", "/v1/admin/cases/{case}/accept", ("publisher",), admin_accept_case),
    AdminRoute("POST", "/v1/admin/cases/{case}/reject", ("publisher",), admin_reject_case),
    AdminRoute(
        "GET", "/v1/admin/withdrawals", ("viewer", "auditor", "publisher"), admin_withdrawals
    ),
    AdminRoute("POST", "/v1/admin/withdrawals/{case}", ("publisher",), admin_decide_withdrawal),
    # Disputes of entries: as the withdrawals, every operator reads, a publisher decides.
    AdminRoute("GET", "/v1/admin/disputes", ("viewer", "auditor", "publisher"), admin_disputes),
    AdminRoute("POST", "/v1/admin/disputes/{entry}", ("publisher",), admin_decide_dispute),
    # Members' contributions: as the withdrawals, every operator reads, a publisher decides.
    AdminRoute(
        "GET", "/v1/admin/contributions", ("viewer", "auditor", "publisher"), admin_contributions
    ),
    AdminRoute(
        "POST", "/v1/admin/contributions/{node}/{seq}", ("publisher",), admin_decide_contribution
    ),
    # Trusting a platform's contributions is a standing policy, as enrolling its node: admin.
    AdminRoute(
        "GET",
        "/v1/admin/contributions/trust",
        ("viewer", "auditor", "publisher"),
        admin_trusted_platforms,
    ),
    AdminRoute("POST", "/v1/admin/contributions/trust", (), admin_trust_platform),
    AdminRoute("DELETE", "/v1/admin/contributions/trust/{platform}", (), admin_untrust_platform),
)
"""Every operator route. ``admin`` may call all; ``roles`` names who else may.
``hashhub export`` has no route: it writes files on the hub's own machine."""
