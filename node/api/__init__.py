"""The node's API routes, one module per route group; ``node.app.create_app`` wires them.

A new route goes in the module of its group — ``match`` (``POST /v1/match``),
``content`` (``POST /v1/content``), ``matches`` (match events and their
outcomes), ``health`` (what an operator or a supervisor reads about the node) —
or in a new module for a new group, and gets its line in ``create_app``'s route
table and its entry in ``node/openapi.yaml``. What every group reads a request
with is ``requests``; what runs around every route is ``middlewares``; the app's
typed keys are ``keys``. None of them imports ``node.app``, so the app can import
them all.
"""
