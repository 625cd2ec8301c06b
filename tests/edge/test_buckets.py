"""``edge.ratelimit.Buckets``: the three buckets both roles build from their settings."""

from __future__ import annotations

import dataclasses

from edge.ratelimit import Buckets
from hub.config import HubConfig
from node.config import NodeConfig


def test_each_role_gets_its_three_buckets_from_its_own_settings() -> None:
    hub = dataclasses.replace(
        HubConfig(name="hub.test"), rate_burst=3, credential_rate_burst=5, auth_failure_burst=2
    )
    buckets = Buckets.from_settings(hub, clock=lambda: 0.0)
    assert buckets.anonymous is not None
    assert buckets.credential is not None
    assert buckets.failures is not None
    assert (buckets.anonymous.burst, buckets.credential.burst, buckets.failures.burst) == (3, 5, 2)
    assert [buckets.anonymous.take("a") for _ in range(4)][:3] == [0, 0, 0]
    assert buckets.anonymous.take("a") > 0, "the fourth request of a burst of 3 waits"


def test_a_zero_turns_one_bucket_off_and_leaves_the_others() -> None:
    node = dataclasses.replace(
        _node_config(), rate_burst=0, credential_rate_burst=10, credential_rate_per_hour=60
    )
    buckets = Buckets.from_settings(node)
    assert buckets.anonymous is None
    assert buckets.credential is not None
    assert buckets.failures is not None


def test_the_nodes_api_token_has_no_bucket_by_default() -> None:
    """Its own upload path: the node's defaults limit everything but the API token."""
    buckets = Buckets.from_settings(_node_config())
    assert buckets.credential is None
    assert buckets.anonymous is not None
    assert buckets.failures is not None


def _node_config() -> NodeConfig:
    """A node configuration with every required setting filled in."""
    return NodeConfig(
        node_id="platform-a",
        hub_url="http://127.0.0.1:1",
        lists=("tid-md5",),
        pinned_root_sha256="0" * 64,
    )
