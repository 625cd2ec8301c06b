"""The hub's web pages: the public submission page and the operators' dashboard.

``setup(app)`` adds them to the hub's HTTP app (``hub.app.create_app`` calls it).
The pages are server-rendered Jinja2 templates (``templates/``, autoescaped) with
a little JavaScript from ``static/``; the dashboard, one page per section
(``templates/dashboard/``), reads fully without it. The
submission page hashes in the browser with ``static/hashing/`` and sends only
the hash. ``pages`` documents the routes, the roles, sessions and CSRF.
"""

from hub.web.pages import (
    PAGE_ROUTE_PREFIX,
    READ_ROLES,
    WRITE_ROLES,
    dashboard_view,
    group_case,
    setup,
)

__all__ = [
    "PAGE_ROUTE_PREFIX",
    "READ_ROLES",
    "WRITE_ROLES",
    "dashboard_view",
    "group_case",
    "setup",
]
