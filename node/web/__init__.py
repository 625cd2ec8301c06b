"""The node's status page, served by the node itself (see ``node.web.pages``).

Mounted by ``node.app.create_app`` at ``PAGE_PREFIX``; ``is_page_request`` tells
the API's token check to leave these routes to their own cookie login.
"""

from node.web.pages import (
    CONTENT_SECURITY_POLICY,
    PAGE_PREFIX,
    SESSION_COOKIE,
    is_page_request,
    status_pages,
)
from node.web.sessions import LoginThrottle, SessionStore

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "PAGE_PREFIX",
    "SESSION_COOKIE",
    "LoginThrottle",
    "SessionStore",
    "is_page_request",
    "status_pages",
]
