"""The hub's services: one module per thing the hub keeps, each owning its tables.

``hub.core.Hub`` builds them over one ``HubContext`` (home, configuration, database,
clock) and hands them out as attributes: ``hub.keys``, ``hub.lists``, ``hub.roots``,
``hub.publishing``, ``hub.files``, ``hub.access``, ``hub.sessions``, ``hub.acks``,
``hub.ledger``, ``hub.evidence``, ``hub.reports`` and ``hub.cases``. Services are
synchronous and share the one connection: the HTTP app runs them on the database
thread (``edge.database.DatabaseThread``), the CLI calls them directly. A service may use
the ones below it in that order, never one above (docs/design.md §2.2).
"""
