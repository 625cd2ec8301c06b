"""What the hub keeps about the people who use its public pages: nothing that names them.

The public pages — ``/`` (a redirect), ``/submit``, ``/case`` and ``/static/`` (the
scripts and style those pages load), with whatever follows them in the path — serve
people whose intimate images circulate. An address and a second-exact time next to
the day a case was created could tie a person to a report, so for these paths:

- the access log writes no line at all (``hub.limits.ClientAccessLogger`` asks
  ``is_public_page``), at any level;
- the per-address limits keep only an HMAC of the address under a key drawn
  in memory when the limiter is made, and drop it once its bucket is full again
  (``edge.ratelimit.RateLimiter``);
- no log line of the hub names a case number or a submitted hash: a bug on a
  public page is logged with its exceptions' types and stack frames but not their
  messages, which could hold either (``hub.web.pages.page_errors``);
- a case row holds the hash, its type, the PDQ quality, the status and the *day*
  it arrived (``Cases.submit``), nothing about the request.

Counts of requests per route and status still go to ``/metrics``: they name no
one. A reverse proxy in front keeps its own logs: the operator guide's nginx
block turns its access log off for the same paths.
"""

from __future__ import annotations

__all__ = ["PUBLIC_SEGMENTS", "is_public_page"]

PUBLIC_SEGMENTS = frozenset({"", "submit", "case", "static"})
"""First path segments of the public pages ("": ``/`` itself)."""


def is_public_page(path: str) -> bool:
    """Whether ``path`` (decoded, as routed) is one of the public pages or under them.

    Repeated slashes count as one (``//submit`` is ``/submit``), and anything
    under a public page (``/case/1a2b…``, a mistyped link) counts as the page: a
    person may paste a case number into a URL.
    """
    return path.lstrip("/").split("/", 1)[0] in PUBLIC_SEGMENTS
