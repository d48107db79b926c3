"""RFC 9162 tree hashes and proofs: the Certificate Transparency reference vectors, hand-computed
small trees, and exhaustive round trips (every index, every pair of sizes up to 33). The standalone
bundle verifier (its own copy of the checks, shipped in every export) runs the same round trips."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from authz.audit import bundle_verifier, merkle
from authz.audit.merkle import MemoryTree, leaf_hash, node_hash

# The CT / RFC 6962 reference leaves (certificate-transparency merkle_test, transparency-dev/merkle).
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
TREE = MemoryTree([leaf_hash(d) for d in LEAVES])


def h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


def test_empty_tree_is_the_hash_of_the_empty_string() -> None:
    assert merkle.root(0, TREE.get) == hashlib.sha256(b"").digest()


@pytest.mark.requirement("rfc9162:merkle-tree-hash")
@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_reference_vectors(size: int) -> None:
    assert TREE.root(size).hex() == ROOTS[size - 1]


def test_hand_computed_three_leaf_tree() -> None:
    """MTH(d0, d1, d2) = H(1 || H(1 || H(0||d0) || H(0||d1)) || H(0||d2)) (RFC 9162 §2.1.1: split at k=2)."""
    a, b, c = (hashlib.sha256(b"\x00" + x).digest() for x in (b"a", b"b", b"c"))
    expected = hashlib.sha256(b"\x01" + hashlib.sha256(b"\x01" + a + b).digest() + c).digest()
    tree = MemoryTree([a, b, c])
    assert tree.root() == expected
    assert merkle.inclusion_proof(2, 3, tree.get) == [hashlib.sha256(b"\x01" + a + b).digest()]
    assert merkle.inclusion_proof(0, 3, tree.get) == [b, c]
    assert merkle.consistency_proof(2, 3, tree.get) == [c]  # old size 2 is a power of two: only the new part


@pytest.mark.requirement("rfc9162:inclusion-proof")
@pytest.mark.requirement("rfc9162:consistency-proof")
def test_reference_inclusion_and_consistency_proofs() -> None:
    root8 = TREE.root(8)
    p5 = merkle.inclusion_proof(5, 8, TREE.get)
    assert p5 == h(
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    )
    assert merkle.verify_inclusion(TREE.get(0, 5), 5, 8, p5, root8)
    c38 = merkle.consistency_proof(3, 8, TREE.get)
    assert c38 == h(
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    )
    assert merkle.verify_consistency(3, 8, TREE.root(3), root8, c38)
    c25 = merkle.consistency_proof(2, 5, TREE.get)
    assert c25 == h(
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    )


@pytest.mark.parametrize("check", [merkle, bundle_verifier], ids=["merkle", "bundle_verifier"])
def test_every_proof_round_trips_and_every_mutation_fails(check: Any) -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(33)]
    tree = MemoryTree(leaves)
    assert check.verify_consistency(0, 5, b"", tree.root(5), []) and not check.verify_consistency(6, 5, b"", b"", [])
    for n in range(1, 34):
        rn = tree.root(n)
        for m in range(n):
            proof = merkle.inclusion_proof(m, n, tree.get)
            assert check.verify_inclusion(leaves[m], m, n, proof, rn)
            assert not check.verify_inclusion(leaves[m], m, m, proof, rn)  # index beyond the size
            if n < 33:
                assert not check.verify_inclusion(leaves[m], m, n + 1, proof, tree.root(n + 1))
            if proof:
                bad = [*proof[:-1], node_hash(proof[-1], proof[-1])]
                assert not check.verify_inclusion(leaves[m], m, n, bad, rn)
                assert not check.verify_inclusion(leaves[m], m, n, proof[:-1], rn)
            other = leaves[(m + 1) % n] if n > 1 else leaf_hash(b"other")
            assert not check.verify_inclusion(other, m, n, proof, rn)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, n, tree.get)
            assert check.verify_consistency(m, n, tree.root(m), rn, proof)
            if m < n:
                assert not check.verify_consistency(m, n, leaf_hash(b"forged"), rn, proof)
                assert not check.verify_consistency(m, n, tree.root(m), leaf_hash(b"forged"), proof)
                assert not check.verify_consistency(m, n, tree.root(m), rn, proof[:-1])
                assert not check.verify_consistency(m, n, tree.root(m), rn, [*proof, rn])  # one hash too many


def test_extend_stores_exactly_the_complete_subtrees() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(21)]
    stored: dict[tuple[int, int], bytes] = {}
    size = 0
    for batch in (leaves[:1], leaves[1:6], leaves[6:7], leaves[7:16], leaves[16:]):
        for level, idx, value in merkle.extend(size, batch, lambda lv, ix: stored[(lv, ix)]):
            stored[(level, idx)] = value
        size += len(batch)
        assert merkle.root(size, lambda lv, ix: stored[(lv, ix)]) == MemoryTree(leaves[:size]).root()
    full = MemoryTree(leaves)
    assert stored == {(lv, ix): v for lv, row in enumerate(full.levels) for ix, v in enumerate(row)}


def test_frontier_is_the_binary_decomposition() -> None:
    assert merkle.frontier(0) == []
    assert merkle.frontier(13) == [(3, 0), (2, 2), (0, 12)]


def test_a_range_and_its_boundary_give_the_root() -> None:
    leaves = [leaf_hash(str(i).encode()) for i in range(37)]
    tree = MemoryTree(leaves)
    for size in (1, 2, 7, 8, 20, 37):
        for start in range(size):
            for end in range(start + 1, size + 1):
                nodes = merkle.range_boundary(start, end, size)
                assert len(nodes) <= 2 * size.bit_length()
                boundary = {n: tree.get(*n) for n in nodes}
                assert merkle.root_from_range(start, leaves[start:end], size, boundary) == tree.root(size)
                named = {f"{level}/{index}": value for (level, index), value in boundary.items()}
                assert bundle_verifier.root_from_range(start, leaves[start:end], size, named) == tree.root(size)
    nodes = merkle.range_boundary(3, 9, 20)
    forged = [*leaves[3:5], leaf_hash(b"forged"), *leaves[6:9]]
    assert merkle.root_from_range(3, forged, 20, {n: tree.get(*n) for n in nodes}) != tree.root(20)
