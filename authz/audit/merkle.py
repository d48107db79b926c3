"""RFC 9162 Merkle tree hashes, inclusion and consistency proofs, and their verification.

RFC 9162 §2.1.1: "The hash of an empty list is the hash of an empty string: MTH({}) = HASH()". "The
hash of a list with one entry (also known as a leaf hash) is: MTH({d(0)}) = HASH(0x00 || d(0))". For
n > 1, "let k be the largest power of two smaller than n": "MTH(D_n) = HASH(0x01 || MTH(D[0:k]) ||
MTH(D[k:n]))". §2.1.3.1 defines the inclusion proof PATH(m, D_n) and §2.1.4.1 the consistency proof
SUBPROOF(m, D_n, b); §2.1.3.2 and §2.1.4.2 give the verification algorithms implemented here.

Hashes are stored as complete (perfect, aligned) subtrees: node ``(level, index)`` covers leaves
``[index << level, (index + 1) << level)``. Every proof only ever needs such nodes, so a store that
keeps them (``audit_tree_nodes``) answers a proof with O(log n) reads, and the tree can be extended
knowing only its right edge (:func:`frontier`). The standalone bundle verifier carries its own copy
of the two ``verify_*`` functions so it runs without authz installed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

Node = tuple[int, int]  # (level, index)
Getter = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def frontier(size: int) -> list[Node]:
    """The complete subtrees whose fold is the root of a tree of ``size`` leaves, left to right."""
    nodes, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def subtree_hash(start: int, end: int, get: Getter) -> bytes:
    """MTH(D[start:end]) for a range that is either aligned-perfect or a right edge."""
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and start % n == 0:
        return get(n.bit_length() - 1, start // n)
    k = _split(n)
    return node_hash(subtree_hash(start, start + k, get), subtree_hash(start + k, end, get))


def root(size: int, get: Getter) -> bytes:
    return subtree_hash(0, size, get)


def inclusion_proof(index: int, size: int, get: Getter) -> list[bytes]:
    """PATH(m, D_n), RFC 9162 §2.1.3.1 (leaf-to-root order)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")

    def path(m: int, start: int, n: int) -> list[bytes]:
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*path(m, start, k), subtree_hash(start + k, start + n, get)]
        return [*path(m - k, start + k, n - k), subtree_hash(start, start + k, get)]

    return path(index, 0, size)


def consistency_proof(old: int, new: int, get: Getter) -> list[bytes]:
    """PROOF(m, D_n) = SUBPROOF(m, D_n, true), RFC 9162 §2.1.4.1."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    if old in (0, new):
        return []

    def sub(m: int, start: int, n: int, whole: bool) -> list[bytes]:
        if m == n:
            return [] if whole else [subtree_hash(start, start + n, get)]
        k = _split(n)
        if m <= k:
            return [*sub(m, start, k, whole), subtree_hash(start + k, start + n, get)]
        return [*sub(m - k, start + k, n - k, False), subtree_hash(start, start + k, get)]

    return sub(old, 0, new, True)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2 (a proof between equal sizes is empty and the roots match)."""
    if old > new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    if not proof:  # "If consistency_path is an empty array, stop and fail the proof verification."
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # "If first is an exact power of 2, then prepend first_hash"
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


def extend(size: int, leaves: Sequence[bytes], get: Getter) -> list[tuple[int, int, bytes]]:
    """The nodes ``(level, index, hash)`` that appending ``leaves`` to a tree of ``size`` completes.

    Reads only the current right edge (``frontier(size)``) through ``get``.
    """
    edge = {node: get(*node) for node in frontier(size)}
    out: list[tuple[int, int, bytes]] = []
    for i, h in enumerate(leaves, start=size):
        out.append((0, i, h))
        edge[(0, i)] = h
        level, idx = 0, i
        while idx & 1:
            h = node_hash(edge[(level, idx - 1)], h)
            level, idx = level + 1, idx >> 1
            out.append((level, idx, h))
            edge[(level, idx)] = h
    return out


def range_boundary(start: int, end: int, size: int) -> list[Node]:
    """The complete subtrees outside leaves ``[start, end)`` that, with those leaves, give MTH(D_size).

    One set of O(log size) hashes proves the inclusion of every leaf of the range at once (each
    leaf's PATH(m, D_n) is made of these nodes and of subtrees inside the range).
    """
    out: list[Node] = []

    def walk(lo: int, hi: int) -> None:
        n = hi - lo
        if start <= lo and hi <= end:
            return
        if (hi <= start or lo >= end) and n & (n - 1) == 0 and lo % n == 0:
            out.append((n.bit_length() - 1, lo // n))
            return
        k = _split(n)
        walk(lo, lo + k)
        walk(lo + k, hi)

    if 0 <= start < end <= size:
        walk(0, size)
    return out


def root_from_range(start: int, leaves: Sequence[bytes], size: int, boundary: dict[Node, bytes]) -> bytes:
    """MTH(D_size) from the leaves ``[start, start + len(leaves))`` and their :func:`range_boundary`."""
    end = start + len(leaves)

    def mth(lo: int, hi: int) -> bytes:
        n = hi - lo
        if start <= lo and hi <= end:
            return MemoryTree(leaves[lo - start : hi - start]).root()
        if (hi <= start or lo >= end) and n & (n - 1) == 0 and lo % n == 0:
            return boundary[(n.bit_length() - 1, lo // n)]
        k = _split(n)
        return node_hash(mth(lo, lo + k), mth(lo + k, hi))

    return mth(0, size)


class MemoryTree:
    """Every complete subtree of a list of leaf hashes, in memory (exports, verification)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.levels: list[list[bytes]] = [list(leaves)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([node_hash(below[j], below[j + 1]) for j in range(0, len(below) - 1, 2)])

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def get(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        return root(self.size if size is None else size, self.get)
