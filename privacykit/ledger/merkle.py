"""Merkle tree hashing, inclusion and consistency proofs in the style of RFC 6962 / RFC 9162.

Pure functions over SHA-256 with domain separation (0x00 for leaves, 0x01 for
interior nodes), so that a leaf can never be passed off as a node. Used by the
ledger (roots for checkpoints, proofs for extracts) and by offline bundle
verification, which must not need the ledger at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_consistency",
    "root_from_inclusion",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()
HASH_SIZE = 32


def leaf_hash(data: bytes) -> bytes:
    """MTH of a single entry: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """Root over already-hashed leaves. Iterative (stack of perfect subtrees), O(n) time,
    O(log n) memory, so a million-entry ledger verifies without deep recursion."""
    if not leaves:
        return EMPTY_ROOT
    stack: list[tuple[int, bytes]] = []  # (height, hash) of perfect subtrees, left to right
    for leaf in leaves:
        height, value = 0, leaf
        while stack and stack[-1][0] == height:
            _, left = stack.pop()
            value = node_hash(left, value)
            height += 1
        stack.append((height, value))
    # Fold the remaining (smaller, rightmost) subtrees right to left.
    _, value = stack.pop()
    while stack:
        _, left = stack.pop()
        value = node_hash(left, value)
    return value


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree over ``leaves`` (RFC 6962 §2.1.1)."""
    if len(leaves) > 64:
        # Many proofs over a big tree: the level cache makes each one O(log² n).
        return MerkleTree(leaves).inclusion_proof(index)
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} outside tree of size {n}")
    proof: list[bytes] = []
    lo, hi, m = 0, n, index
    path: list[tuple[int, int, bool]] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if m - lo < k:
            path.append((lo + k, hi, True))  # sibling is the right subtree
            hi = lo + k
        else:
            path.append((lo, lo + k, False))
            lo = lo + k
    for a, b, _ in reversed(path):
        proof.append(tree_root(leaves[a:b]))
    return proof


def root_from_inclusion(index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Recompute the root from a leaf hash and its audit path (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < tree_size:
        raise ValueError("leaf index outside tree")
    fn, sn = index, tree_size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ValueError("proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof too short")
    return r


def verify_inclusion(
    index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    try:
        return root_from_inclusion(index, tree_size, leaf, proof) == root
    except ValueError:
        return False


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Proof that the tree of ``old_size`` leaves is a prefix of the tree over ``leaves``."""
    if len(leaves) > 64:
        return MerkleTree(leaves).consistency_proof(old_size)
    n = len(leaves)
    if not 0 < old_size <= n:
        raise ValueError("old size must be in 1..n")

    def subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        size = hi - lo
        if m == size:
            return [] if complete else [tree_root(leaves[lo:hi])]
        k = _split(size)
        if m <= k:
            return subproof(m, lo, lo + k, complete) + [tree_root(leaves[lo + k : hi])]
        return subproof(m - k, lo + k, hi, False) + [tree_root(leaves[lo : lo + k])]

    return subproof(old_size, 0, n, True)


def root_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> bytes:
    """Check ``proof`` against ``old_root`` and return the new root it implies
    (RFC 9162 §2.1.4.2). Raises ValueError when the proof does not fit."""
    if not 0 < old_size <= new_size:
        raise ValueError("sizes out of order")
    if old_size == new_size:
        if proof:
            raise ValueError("proof must be empty for equal sizes")
        return old_root
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # power of two: old root is the first node
        path.insert(0, old_root)
    if not path:
        raise ValueError("empty proof")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ValueError("proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root:
        raise ValueError("proof does not match the old root")
    return sr


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    try:
        return root_from_consistency(old_size, new_size, old_root, proof) == new_root
    except ValueError:
        return False


class MerkleTree:
    """An append-only RFC 6962 tree that keeps every perfect, aligned subtree hash.

    ``levels[h]`` holds, packed 32 bytes apiece, the roots of the subtrees
    ``[i·2^h, (i+1)·2^h)`` that are complete so far. Appending a leaf costs amortised one
    node hash (the same work as :func:`tree_root`), and afterwards the root of any prefix and
    any inclusion or consistency proof cost O(log² n) instead of rehashing the tree: the
    RFC's recursive split only ever asks for perfect aligned subtrees plus a right edge.
    Memory is about 64 bytes per leaf (a million-entry ledger: ~64 MB).
    """

    __slots__ = ("_levels", "_size")

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        for leaf in leaves:
            self.append(leaf)

    @classmethod
    def from_leaf_bytes(cls, packed: bytes | bytearray) -> MerkleTree:
        """A tree over leaf hashes packed 32 bytes apiece, built level by level: the same
        node hashes as appending one by one, without the per-leaf bookkeeping (verify
        builds a million-entry tree this way)."""
        if len(packed) % HASH_SIZE:
            raise ValueError("packed leaf hashes must be a multiple of 32 bytes")
        tree = cls()
        level = bytes(packed)
        tree._levels = [bytearray(level)]
        tree._size = len(level) // HASH_SIZE
        sha, prefix, pair = hashlib.sha256, b"\x01", 2 * HASH_SIZE
        while len(level) >= pair:
            end = len(level) - len(level) % pair
            level = b"".join(
                [sha(prefix + level[i : i + pair]).digest() for i in range(0, end, pair)]
            )
            tree._levels.append(bytearray(level))
        return tree

    def copy(self) -> MerkleTree:
        """An independent copy (appending to one does not change the other)."""
        tree = MerkleTree()
        tree._levels = [bytearray(level) for level in self._levels]
        tree._size = self._size
        return tree

    def __len__(self) -> int:
        return self._size

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add an already-hashed leaf (see :func:`leaf_hash`)."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        levels = self._levels
        levels[0] += leaf
        self._size += 1
        index, height, value = self._size - 1, 0, leaf
        # Each time the new leaf closes a perfect subtree, store its root one level up.
        while index & 1:
            start = (index - 1) * HASH_SIZE
            value = node_hash(bytes(levels[height][start : start + HASH_SIZE]), value)
            height += 1
            index >>= 1
            if len(levels) == height:
                levels.append(bytearray())
            levels[height] += value

    def leaf(self, index: int) -> bytes:
        if not 0 <= index < self._size:
            raise ValueError(f"leaf index {index} outside tree of size {self._size}")
        return bytes(self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def _perfect(self, height: int, index: int) -> bytes:
        start = index * HASH_SIZE
        return bytes(self._levels[height][start : start + HASH_SIZE])

    def subtree_root(self, lo: int, hi: int) -> bytes:
        """MTH of leaves ``[lo, hi)``, where ``lo`` is aligned as in the RFC's recursion."""
        if not 0 <= lo < hi <= self._size:
            raise ValueError(f"subtree [{lo}, {hi}) outside tree of size {self._size}")
        width = hi - lo
        if width & (width - 1) == 0 and lo % width == 0:
            return self._perfect(width.bit_length() - 1, lo // width)
        k = _split(width)
        return node_hash(self.subtree_root(lo, lo + k), self.subtree_root(lo + k, hi))

    def _check_size(self, tree_size: int | None) -> int:
        n = self._size if tree_size is None else tree_size
        if not 0 <= n <= self._size:
            raise ValueError(f"tree size {n} outside 0..{self._size}")
        return n

    def root(self, tree_size: int | None = None) -> bytes:
        """Root of the first ``tree_size`` leaves (default: all)."""
        n = self._check_size(tree_size)
        return EMPTY_ROOT if n == 0 else self.subtree_root(0, n)

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        """Audit path for leaf ``index`` in the tree of the first ``tree_size`` leaves."""
        n = self._check_size(tree_size)
        if not 0 <= index < n:
            raise ValueError(f"leaf index {index} outside tree of size {n}")
        proof: list[bytes] = []
        lo, hi = 0, n
        while hi - lo > 1:
            k = _split(hi - lo)
            if index - lo < k:
                proof.append(self.subtree_root(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.subtree_root(lo, lo + k))
                lo = lo + k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the first ``old_size`` leaves are a prefix of the first ``new_size``."""
        n = self._check_size(new_size)
        if not 0 < old_size <= n:
            raise ValueError("old size must be in 1..new size")
        proof: list[bytes] = []
        m, lo, hi, complete = old_size, 0, n, True
        # RFC 6962 §2.1.2 SUBPROOF, unrolled; nodes are collected deepest-first at the end.
        while True:
            size = hi - lo
            if m == size:
                if not complete:
                    proof.append(self.subtree_root(lo, hi))
                break
            k = _split(size)
            if m <= k:
                proof.append(self.subtree_root(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self.subtree_root(lo, lo + k))
                m, lo, complete = m - k, lo + k, False
        proof.reverse()
        return proof
