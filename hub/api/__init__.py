"""The hub's API routes, one module per route group; ``hub.app.create_app`` wires them.

A new route goes in the module of its group — ``tree`` (the published tree),
``acks`` (``POST /v1/acks``), ``admin_lists``, ``admin_access`` or
``admin_records`` (the operator API, each route one ``AdminRoute`` line in
``admin.ADMIN_ROUTES`` with the roles it admits), ``health`` (health, readiness,
the spec) — or in a new module for a new group, and gets its line in
``create_app``'s route table and its entry in ``hub/openapi.yaml``. What every
group reads a request with is ``requests``; what runs around every route is
``middlewares``. None of them imports ``hub.app``, and the pages (``hub.web``)
import none of them: what both use is in ``hub.appkeys``, ``hub.http``,
``hub.caches`` and ``hub.metrics``.
"""
