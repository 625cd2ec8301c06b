"""The RFC 6962 / RFC 9162 Merkle tree over leaf hashes: roots, proofs, compact ranges.

Why this module exists: the hub publishes an append-only log, and a node must be able
to check two things without downloading the whole log: that an entry is in the tree
it was promised (inclusion), and that today's tree extends yesterday's (consistency).
Both checks are only as good as their edge rules, so they follow RFC 9162 §2.1
exactly, and are tested against the transparency-dev reference vectors.

The rules:

* Hashes are SHA-256 (``HASH_SIZE`` = 32 bytes) with domain separation, so a leaf can
  never be passed off as an interior node (second-preimage attack):
  ``leaf_hash(d) = SHA-256(0x00 || d)``, ``node_hash(l, r) = SHA-256(0x01 || l || r)``.
* The root of ``n`` leaves is MTH (RFC 9162 §2.1.1): the left subtree holds the largest
  power of two strictly smaller than ``n`` leaves; the empty tree's root is
  ``EMPTY_ROOT = SHA-256("")``.
* Every function here works on *leaf hashes*, not on leaf data: callers hash their
  entries with ``leaf_hash`` once and keep the 32-byte results.
* Bad input and bad proofs are different faults. A hash that is not 32 bytes, a
  negative size, or an index outside the leaves given to a *generator* is
  ``MalformedError``. A well-formed proof that does not verify, including one with an
  element too many or too few, or an index outside the tree it claims, is
  ``ProofError``.
* Consistency (RFC 9162 §2.1.4.2): ``old_size > new_size`` fails. Equal sizes verify
  only with an empty proof and identical roots. ``old_size == 0`` always fails, as in
  the transparency-dev reference vectors: every tree extends the empty tree, so the
  "proof" would prove nothing, and a verifier that has no trusted tree head yet must
  decide explicitly how to trust its first one instead of calling this.
* Everything is iterative (the RFC's own verification algorithms, and a loop over the
  RFC's recursive definitions for proof generation), so sizes up to 2**64 - 1 cannot
  exhaust the stack.

``CompactRange`` keeps only the roots of the perfect subtrees covering ``[0, size)``
(at most 64 hashes), which is enough to append leaves and recompute the root: a node
can rebuild the log's root from the entries it downloads without storing the tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from protocol.errors import MalformedError, ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: int = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""Root of the tree of size 0: SHA-256 of the empty string (RFC 9162 §2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_MAX_SIZE = 2**64 - 1  # RFC 9162 tree heads carry tree sizes as uint64


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------


def _check_hash(value: object, what: str) -> bytes:
    """Return ``value`` if it is a 32-byte ``bytes``; otherwise raise ``MalformedError``.

    Checked up front so that a truncated or padded hash is reported as what it is,
    instead of surfacing later as a mysterious root mismatch.
    """
    if not isinstance(value, bytes):
        raise MalformedError(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise MalformedError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")
    return value


def _check_hashes(values: Sequence[bytes], what: str) -> None:
    for i, value in enumerate(values):
        _check_hash(value, f"{what}[{i}]")


def _check_size(value: object, what: str) -> int:
    """Return ``value`` if it is an int in ``[0, 2**64)``; otherwise raise ``MalformedError``.

    ``bool`` is refused although it is an ``int``: ``True`` as a tree size is a bug.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedError(f"{what} must be an int, got {type(value).__name__}")
    if value < 0:
        raise MalformedError(f"{what} must not be negative, got {value}")
    if value > _MAX_SIZE:
        raise MalformedError(f"{what} must be below 2**64, got {value}")
    return value


def _largest_power_of_two_below(n: int) -> int:
    """The ``k`` of RFC 9162 §2.1.1: the largest power of two strictly smaller than ``n``."""
    return 1 << ((n - 1).bit_length() - 1)


# --------------------------------------------------------------------------------------
# Hashing and roots
# --------------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf's data: ``SHA-256(0x00 || data)``.

    The 0x00 prefix keeps leaf hashes and interior node hashes in separate domains,
    so nobody can present an interior node as a leaf.

    Args:
        data: The leaf's bytes (any length, including empty).

    Returns:
        The 32-byte leaf hash.
    """
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash an interior node: ``SHA-256(0x01 || left || right)``.

    Args:
        left: Hash of the left child (32 bytes; not checked here, for speed).
        right: Hash of the right child (32 bytes; not checked here, for speed).

    Returns:
        The 32-byte node hash.
    """
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _mth(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH of ``leaf_hashes[start:end]`` (already validated), computed level by level.

    Pairing neighbours on each level and promoting an odd last node unchanged builds
    exactly the RFC's tree: the largest-power-of-two split puts every complete pair on
    the left, and the promoted node is the root of the right-most, smaller subtree.
    """
    if start == end:
        return EMPTY_ROOT
    level = list(leaf_hashes[start:end])
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Compute the Merkle Tree Hash (RFC 9162 §2.1.1) of a list of leaf hashes.

    Iterative and linear in the number of leaves, so it is fine for the whole log.

    Args:
        leaf_hashes: The leaf hashes, oldest first, each 32 bytes.

    Returns:
        The 32-byte root; ``EMPTY_ROOT`` for an empty list.

    Raises:
        MalformedError: A leaf hash is not 32 bytes.
    """
    _check_hashes(leaf_hashes, "leaf_hashes")
    return _mth(leaf_hashes, 0, len(leaf_hashes))


# --------------------------------------------------------------------------------------
# Inclusion proofs (RFC 9162 §2.1.3)
# --------------------------------------------------------------------------------------


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Build the audit path ``PATH(index, D[n])`` of RFC 9162 §2.1.3.1.

    The RFC's recursion is walked as a loop: at each step the proof gains the root
    of the half that does *not* contain the leaf. Elements found on the way down are
    the ones nearest the root, so they end up last (the proof runs leaf to root).
    The halves visited are disjoint, so the total work is linear in ``n``.

    Args:
        leaf_hashes: All leaf hashes of the tree, oldest first, each 32 bytes.
        index: Position of the leaf to prove, ``0 <= index < len(leaf_hashes)``.

    Returns:
        The sibling hashes from the leaf up to the root.

    Raises:
        MalformedError: A leaf hash is not 32 bytes, or ``index`` is outside the tree.
    """
    _check_hashes(leaf_hashes, "leaf_hashes")
    _check_size(index, "index")
    n = len(leaf_hashes)
    if index >= n:
        raise MalformedError(f"inclusion proof: index {index} is outside a tree of size {n}")
    top_down: list[bytes] = []
    start, end, m = 0, n, index
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            top_down.append(_mth(leaf_hashes, start + k, end))
            end = start + k
        else:
            top_down.append(_mth(leaf_hashes, start, start + k))
            start += k
            m -= k
    top_down.reverse()
    return top_down


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf number ``index`` of the tree with ``root``.

    Implements RFC 9162 §2.1.3.2 step by step, so an extra or missing proof element
    is caught (the walk must end exactly at the root) rather than tolerated. The proof
    does not authenticate ``tree_size`` by itself (nearby sizes can share a path
    shape), so ``tree_size`` and ``root`` must come from the same signed tree head.

    Args:
        leaf_hash: The 32-byte hash of the leaf (``leaf_hash(data)``).
        index: The leaf's position, counting from 0.
        tree_size: Number of leaves in the tree that ``root`` belongs to.
        proof: The audit path, leaf to root, each element 32 bytes.
        root: The trusted 32-byte root of the tree of ``tree_size`` leaves.

    Raises:
        MalformedError: A hash is not 32 bytes, or a size/index is negative or too big.
        ProofError: ``index >= tree_size``, the proof has the wrong number of elements,
            or it leads to a different root.
    """
    _check_size(index, "index")
    _check_size(tree_size, "tree_size")
    _check_hash(leaf_hash, "leaf_hash")
    _check_hash(root, "root")
    _check_hashes(proof, "proof")
    where = f"inclusion proof for leaf {index} in tree of size {tree_size}"
    if index >= tree_size:
        raise ProofError(f"{where}: index is outside the tree")
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError(f"{where}: proof has more than the expected elements")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"{where}: proof has {len(proof)} elements, too few")
    if r != root:
        raise ProofError(f"{where}: computed root {r.hex()} != expected {root.hex()}")


# --------------------------------------------------------------------------------------
# Consistency proofs (RFC 9162 §2.1.4)
# --------------------------------------------------------------------------------------


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Build ``PROOF(old_size, D[n])`` of RFC 9162 §2.1.4.1, with ``n = len(leaf_hashes)``.

    Walks the RFC's SUBPROOF recursion as a loop. The flag ``b`` of the RFC records
    whether the subtree reached is still the whole old tree: only then may its root
    be left out, because the verifier already has it.

    Args:
        leaf_hashes: All leaf hashes of the new tree, oldest first, each 32 bytes.
        old_size: Size of the earlier tree, ``0 < old_size <= len(leaf_hashes)``.

    Returns:
        The proof; empty when ``old_size == len(leaf_hashes)``.

    Raises:
        MalformedError: A leaf hash is not 32 bytes, or ``old_size`` is 0 (no proof
            from the empty tree exists) or larger than the tree.
    """
    _check_hashes(leaf_hashes, "leaf_hashes")
    _check_size(old_size, "old_size")
    n = len(leaf_hashes)
    if not 0 < old_size <= n:
        raise MalformedError(
            f"consistency proof: old_size {old_size} must be in [1, {n}] for a tree of size {n}"
        )
    top_down: list[bytes] = []
    start, end, m = 0, n, old_size
    whole_old_tree = True
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            top_down.append(_mth(leaf_hashes, start + k, end))
            end = start + k
        else:
            top_down.append(_mth(leaf_hashes, start, start + k))
            start += k
            m -= k
            whole_old_tree = False
    if not whole_old_tree:
        top_down.append(_mth(leaf_hashes, start, end))
    top_down.reverse()
    return top_down


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree with ``new_root`` is an append-only extension of ``old_root``.

    Implements RFC 9162 §2.1.4.2: the proof must rebuild *both* roots, and must be
    used up exactly (no element left over, none missing).

    Args:
        old_size: Size of the tree already trusted; must be at least 1.
        new_size: Size of the newer tree, ``>= old_size``.
        old_root: Trusted 32-byte root at ``old_size``.
        new_root: 32-byte root at ``new_size`` to be checked.
        proof: The consistency proof, each element 32 bytes.

    Raises:
        MalformedError: A hash is not 32 bytes, or a size is negative or too big.
        ProofError: ``old_size > new_size``; ``old_size == 0``; equal sizes with a
            non-empty proof or different roots; or a proof that has the wrong number
            of elements or does not rebuild both roots.
    """
    _check_size(old_size, "old_size")
    _check_size(new_size, "new_size")
    _check_hash(old_root, "old_root")
    _check_hash(new_root, "new_root")
    _check_hashes(proof, "proof")
    where = f"consistency proof from size {old_size} to {new_size}"
    if old_size > new_size:
        raise ProofError(f"{where}: the tree shrank")
    if old_size == 0:
        raise ProofError(f"{where}: a proof from the empty tree proves nothing")
    if old_size == new_size:
        if proof:
            raise ProofError(f"{where}: sizes are equal, so the proof must be empty")
        if old_root != new_root:
            raise ProofError(
                f"{where}: sizes are equal but roots differ: {old_root.hex()} != {new_root.hex()}"
            )
        return
    if not proof:
        raise ProofError(f"{where}: proof is empty")

    fr, sr = _consistency_roots(old_size, new_size, old_root, list(proof), where)
    if fr != old_root:
        raise ProofError(f"{where}: computed old root {fr.hex()} != expected {old_root.hex()}")
    if sr != new_root:
        raise ProofError(f"{where}: computed new root {sr.hex()} != expected {new_root.hex()}")


def _consistency_roots(
    old_size: int, new_size: int, old_root: bytes, proof: list[bytes], where: str
) -> tuple[bytes, bytes]:
    """The old and the new root a consistency proof rebuilds (RFC 9162 §2.1.4.2 steps 1–7).

    Raises ``ProofError`` when the proof has more or fewer elements than the sizes
    call for; whether the roots are the expected ones is the caller's check.
    """
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # old tree is a perfect subtree: its root is implied
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"{where}: proof has more than the expected elements")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"{where}: proof has {len(proof)} elements, too few")
    return fr, sr


# --------------------------------------------------------------------------------------
# Compact ranges
# --------------------------------------------------------------------------------------


class CompactRange:
    """The roots of the perfect subtrees covering leaves [0, size), left to right.

    There is one hash per set bit of ``size`` (``len == popcount(size)``), largest
    subtree first. Lets a verifier that has kept only O(log n) hashes append new
    leaves and recompute the root, so a node can check the log's root against the
    entries it has without storing the whole tree.

    Instances are mutable (``append``/``extend``) and therefore unhashable.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Restore a compact range from its size and subtree roots.

        Args:
            size: Number of leaves covered.
            hashes: Roots of the perfect subtrees, largest first; exactly one per
                set bit of ``size``, each 32 bytes.

        Raises:
            MalformedError: ``size`` is negative or too big, the number of hashes does
                not match ``size``, or a hash is not 32 bytes.
        """
        _check_size(size, "size")
        want = size.bit_count()
        if len(hashes) != want:
            raise MalformedError(
                f"compact range of size {size} needs {want} hashes, got {len(hashes)}"
            )
        _check_hashes(hashes, "hashes")
        self._size = size
        self._hashes = list(hashes)

    @classmethod
    def from_leaf_hashes(cls, leaf_hashes: Sequence[bytes]) -> CompactRange:
        """Build the compact range of a whole list of leaf hashes.

        Args:
            leaf_hashes: The leaf hashes, oldest first, each 32 bytes.

        Returns:
            A compact range of size ``len(leaf_hashes)``.

        Raises:
            MalformedError: A leaf hash is not 32 bytes.
        """
        compact = cls()
        compact.extend(leaf_hashes)
        return compact

    @property
    def size(self) -> int:
        """Number of leaves covered."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """Roots of the perfect subtrees, largest (leftmost) first."""
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf on the right.

        Works like incrementing a binary counter: each trailing 1 bit of ``size`` is a
        subtree of the same height as the carry, and merges with it.

        Args:
            leaf_hash: The new leaf's 32-byte hash.

        Raises:
            MalformedError: ``leaf_hash`` is not 32 bytes, or the range is full.
        """
        _check_hash(leaf_hash, "leaf_hash")
        if self._size >= _MAX_SIZE:
            raise MalformedError(f"compact range is full at size {self._size}")
        carry = leaf_hash
        s = self._size
        while s & 1:
            carry = node_hash(self._hashes.pop(), carry)
            s >>= 1
        self._hashes.append(carry)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaves in order.

        Args:
            leaf_hashes: The new leaf hashes, oldest first, each 32 bytes.

        Raises:
            MalformedError: A leaf hash is not 32 bytes; the leaves before it stay
                appended.
        """
        for h in leaf_hashes:
            self.append(h)

    def root(self) -> bytes:
        """Merkle Tree Hash of all leaves covered.

        Folding the subtree roots from the right reproduces MTH, because MTH's left
        child is always the largest perfect subtree, which is the leftmost hash here.

        Returns:
            The 32-byte root; ``EMPTY_ROOT`` at size 0.
        """
        if not self._hashes:
            return EMPTY_ROOT
        r = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            r = node_hash(h, r)
        return r

    def copy(self) -> CompactRange:
        """Return an independent copy (appending to one does not affect the other)."""
        return CompactRange(self._size, self._hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable

    def __repr__(self) -> str:
        inner = ", ".join(f"bytes.fromhex({h.hex()!r})" for h in self._hashes)
        if len(self._hashes) == 1:
            inner += ","
        return f"CompactRange(size={self._size}, hashes=({inner}))"
