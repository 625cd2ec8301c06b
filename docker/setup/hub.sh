#!/bin/sh
# One-shot set-up of the compose stack's hub, with the commands a hub operator types
# (the same steps `make demo` takes): create the hub, declare the demo's lists, publish
# its seed hashes as version 1, and export the published tree for the mirror.
#
# Runs once: a hub already set up is left alone. Nothing secret reaches the log: the
# admin token `hashhub init` prints goes to a 0600 file in the hub's home instead.
#
# Environment (no secrets): HASHHUB_HOME (the hub's home, a volume), HUB_NAME,
# MIRROR_DIR (the exported tree, a volume nginx serves read-only), SEED_DIR (hash files).
set -eu

home="${HASHHUB_HOME:?HASHHUB_HOME names the hub home}"
name="${HUB_NAME:?HUB_NAME names the hub}"
mirror="${MIRROR_DIR:?MIRROR_DIR names the exported tree}"
seed="${SEED_DIR:-/setup/seed}"
done_mark="$home/setup-complete"

if [ -f "$done_mark" ]; then
    echo "hub in $home is set up already; nothing to do"
    exit 0
fi
if [ -f "$home/hub.toml" ]; then
    echo "$home holds a hub whose set-up did not finish; remove the volume and start again" >&2
    exit 1
fi

umask 077
# The output holds the root v1 SHA-256 (public: nodes pin it) and the admin token
# (secret): both are written to files; the log shows everything but the token.
created="$(hashhub init "$home" --name "$name" --host 0.0.0.0 --root-keys 3 --root-threshold 2)"
printf '%s\n' "$created" | awk '/^Admin token/ { exit } { print }'
pin="$(printf '%s\n' "$created" | awk 'found { print $1; exit } /^Root v1 SHA-256/ { found = 1 }')"
token="$(printf '%s\n' "$created" | awk 'found { print $1; exit } /^Admin token/ { found = 1 }')"
if [ -z "$pin" ] || [ -z "$token" ]; then
    echo "could not read the root v1 SHA-256 and the admin token from 'hashhub init'" >&2
    exit 1
fi
printf '%s\n' "$token" > "$home/admin-token"
(umask 022 && printf '%s\n' "$pin" > "$home/root-v1.sha256")
echo "Admin token stored in $home/admin-token (mode 0600)."

hashhub list create ncii-pdq --type pdq --label "NCII pictures"
hashhub list create ncii-md5 --type md5 --label "NCII videos"
hashhub import ncii-pdq "$seed/ncii-pdq.txt"
hashhub import ncii-md5 "$seed/ncii-md5.txt"
hashhub publish
(umask 022 && hashhub export "$mirror")

touch "$done_mark"
echo "hub set up; nodes pin root v1 SHA-256 $pin"
