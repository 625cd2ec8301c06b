"""Fixtures for the auditor's tests: the hub tests' real hub, reused as it is.

``hub_home`` (a real hub with the lists ``LIST``, ``OTHER_LIST`` and
``PUBLIC_LIST``), ``client`` (its real HTTP app on 127.0.0.1), ``role_tokens``,
``node_key`` and ``node_token`` come from ``tests/hub/conftest.py``; the functions
the auditor's tests share are in ``tests/audit/support.py``.
"""

from tests.hub.conftest import (  # noqa: F401  (fixtures, found by pytest by name)
    admin_token,
    client,
    hub_app,
    hub_home,
    node_key,
    node_token,
    role_tokens,
)
