"""The node's update: the follower (``follow``) with the node's own advice.

The fetcher and the verified update are the follower's (``follow.fetch``,
``follow.update``: docs/design.md §4.2), shared with the threatexchange bridge and a
hub following another. What is the node's is what an operator reads when the node
follows a list the hub's root does not declare: the fix is in ``lists`` in
``node.toml``, and the failure is the node's ``NodeConfigError``, like every other
fault of its configuration.
"""

from __future__ import annotations

from follow import FollowerConfigError, Syncer
from node.errors import NodeConfigError
from protocol import TrustedHub

__all__ = ["NodeSyncer"]


class NodeSyncer(Syncer):
    """The node's sync runs against its hub."""

    def undeclared(self, hub: TrustedHub, list_id: str) -> FollowerConfigError:
        return NodeConfigError(
            f"the hub's root v{hub.root.version} does not declare list {list_id!r}: "
            "correct or remove it in lists in node.toml (ask the hub operator for the "
            "ids of the lists this node may follow)"
        )
