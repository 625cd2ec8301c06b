"""The edge shared by hub, node and audit: what their HTTP and CLI sides have in common (ADR 17).

Not rules (those are ``protocol``, pure: no clock, no I/O) and not a role (hub,
node, audit): the small pieces each edge would otherwise keep its own copy of.
``edge`` imports ``protocol`` at most, never hub, node or audit; ``protocol``
never imports ``edge``. What differs between the roles (the errors a command
expects, a realm, a table of error codes, an error class) is passed in, so each
piece has one implementation.

- ``edge.cli``: ``reported`` (a command's expected errors as one line and exit
  status 1), ``opened``, ``home_option``, ``json_option``, ``echo_json``, ``table``.
- ``edge.errors``: ``ApiError`` (an HTTP status, a code, a message) and the one
  JSON error shape, ``error_body``.
- ``edge.http``: ``error_response``, ``error_middleware`` and ``read_body`` (a
  request body refused once it passes its cap).
- ``edge.database``: ``ImmediateDatabase``, whose transactions begin with
  ``BEGIN IMMEDIATE``, and ``connect``.
- ``edge.scheduler``: ``GuardedScheduler``, jobs whose failures are logged and
  reported, and a stop that lets a running job finish.
- ``edge.clock``: ``utcnow``, UTC to the second.
- ``edge.ratelimit``: ``RateLimiter`` (token buckets by key, with a clock and an
  HMAC secret) and ``TrustedProxies`` (who is believed in ``X-Forwarded-For``).
- ``edge.web``: the stylesheet the hub's pages and the node's status page share
  (``static/hashhub.css``), so both look like one product.
- ``edge.toml``: the flat ``hub.toml`` and ``node.toml``: ``dumps`` and
  ``dumps_config`` write them; ``read_settings``, ``require_settings`` and
  ``overriding_variables`` read them and their environment variables.

The ack transport's header names and refusal statuses are not here: PROTOCOL.md
§10.6 specifies them, so they are protocol facts (``protocol.ack``).
"""
