"""The auditor: verify a hub's published history and its nodes' acks from public keys alone.

A thin layer over ``protocol``'s trust rules (docs/design.md §1.3, §2.3): the node runs them
one update at a time, the auditor over the whole history, and neither has a rule
of its own.

- ``audit.source``: where the published tree is read from (a folder, a hub, a
  mirror), with the caps and deadlines of PROTOCOL.md §11;
- ``audit.verify``: every rule of PROTOCOL.md §13 from a pinned root v1, each
  failure a ``Finding`` naming the file, the rule and its section;
- ``audit.provenance``: each provenance document followed to its origin: an
  upstream's record against the upstream's own log (from the pin the root
  declares), its retraction carried over in time, a contribution under its node's
  key;
- ``audit.witness``: the checkpoints earlier runs verified, so a tree that shrank
  or forked since is caught;
- ``audit.acks``: stored acks verified by the nodes' keys, split views, and the
  takedown totals recomputed from the signed acks;
- ``audit.diff``: the net change between two versions of a list and who signed it;
- ``audit.cli``: the ``hashhub-audit`` command.
"""
