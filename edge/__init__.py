"""The edge shared by hub, node and audit: what their HTTP and CLI sides have in common (ADR 17).

Not rules (those are ``protocol``, pure: no clock, no I/O) and not a role (hub,
node, audit): the small pieces each edge would otherwise keep its own copy of.
``edge`` imports ``protocol`` at most, never hub, node or audit; ``protocol``
never imports ``edge``.

- ``edge.ratelimit``: ``RateLimiter`` (token buckets by key, with a clock and an
  HMAC secret) and ``TrustedProxies`` (who is believed in ``X-Forwarded-For``).
- ``edge.toml``: ``dumps``, the writer of the flat ``hub.toml`` and ``node.toml``.

The ack transport's header names and refusal statuses are not here: PROTOCOL.md
§10.6 specifies them, so they are protocol facts (``protocol.ack``).
"""
