#!/bin/sh
# One-shot set-up of one node of the compose stack, with the commands a platform and
# the hub operator type (the same steps `make demo` takes): the node makes its key and
# pins the hub's root v1, the operator enrols the node's public key, and the node stores
# the token the operator hands back. The node follows the hub for checkpoints and the
# mirror, untrusted, for every immutable file.
#
# Runs once: a node already set up is left alone. The node token goes from `hashhub node
# enrol` straight into the node's 0600 hub-token file through a pipe; it never reaches
# the log, the environment or a command line.
#
# Environment (no secrets): HASHHUB_HOME (the hub's home, for enrolment),
# HASHHUB_NODE_HOME (this node's home, a volume), NODE_ID, HUB_URL, MIRROR_URL, LISTS.
set -eu

: "${HASHHUB_HOME:?HASHHUB_HOME names the hub home}"
node_home="${HASHHUB_NODE_HOME:?HASHHUB_NODE_HOME names the node home}"
node_id="${NODE_ID:?NODE_ID names the node}"
hub_url="${HUB_URL:?HUB_URL is where the node reaches the hub}"
mirror_url="${MIRROR_URL:?MIRROR_URL is where the node reaches the mirror}"
lists="${LISTS:-ncii-pdq,ncii-md5}"

if [ -f "$node_home/hub-token" ]; then
    echo "node in $node_home is set up already; nothing to do"
    exit 0
fi

umask 077
if [ ! -f "$node_home/node.toml" ]; then
    hashhub-node init --hub "$hub_url" --mirror "$mirror_url" --node-id "$node_id" \
        --lists "$lists" --pin "$(cat "$HASHHUB_HOME/root-v1.sha256")" >/dev/null
    echo "node $node_id initialised in $node_home: hub $hub_url, mirror $mirror_url"
fi

# The hub operator's side. Only the line with the token is kept, and it goes to the node.
hashhub node enrol "$node_id" --public-key "$node_home/node.pub.pem" --lists "$lists" \
    | awk '/^  node token / { print $3 }' \
    | hashhub-node token set -
if [ ! -s "$node_home/hub-token" ]; then
    echo "enrolment of $node_id gave no token" >&2
    exit 1
fi
echo "node $node_id enrolled for $lists; its hub token is in $node_home/hub-token"
