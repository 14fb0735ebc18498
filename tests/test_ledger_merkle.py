"""RFC 6962 Merkle functions: known roots, proofs against a reference built from the RFC's
definitions, and rejection of wrong proofs."""

from __future__ import annotations

import hashlib
import random

import pytest

from privacykit.ledger import merkle

# The leaves and roots used by the Certificate Transparency reference tests (RFC 6962).
CT_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _mth(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 §2.1 (recursive), over already-hashed leaves."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) from RFC 6962 §2.1.1."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return _path(m, leaves[:k]) + [_mth(leaves[k:])]
    return _path(m - k, leaves[k:]) + [_mth(leaves[:k])]


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_ct_reference_roots() -> None:
    hashed = [merkle.leaf_hash(leaf) for leaf in CT_LEAVES]
    for size in range(1, 9):
        assert merkle.tree_root(hashed[:size]).hex() == CT_ROOTS[size - 1]
        assert merkle.MerkleTree(hashed).root(size).hex() == CT_ROOTS[size - 1]


def test_empty_tree() -> None:
    assert merkle.tree_root([]) == merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert merkle.MerkleTree().root() == merkle.EMPTY_ROOT


def test_domain_separation() -> None:
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.node_hash(a, b) != merkle.leaf_hash(a + b)


@pytest.mark.parametrize("n", [*range(1, 40), 63, 64, 65, 100, 127, 128, 129, 300])
def test_roots_and_inclusion_proofs_match_the_rfc(n: int) -> None:
    leaves = _leaves(n)
    tree = merkle.MerkleTree(leaves)
    rng = random.Random(n)
    for size in sorted({1, n, rng.randint(1, n)}):
        root = _mth(leaves[:size])
        assert merkle.tree_root(leaves[:size]) == root
        assert tree.root(size) == root
        for index in sorted({0, size - 1, rng.randrange(size)}):
            expected = _path(index, leaves[:size])
            assert tree.inclusion_proof(index, size) == expected
            assert merkle.inclusion_proof(index, leaves[:size]) == expected
            assert merkle.verify_inclusion(index, size, leaves[index], expected, root)


@pytest.mark.parametrize("n", [*range(1, 34), 64, 65, 129, 200])
def test_consistency_proofs(n: int) -> None:
    leaves = _leaves(n)
    tree = merkle.MerkleTree(leaves)
    for old in range(1, n + 1):
        proof = tree.consistency_proof(old, n)
        assert proof == merkle.consistency_proof(old, leaves)
        assert merkle.verify_consistency(old, n, _mth(leaves[:old]), _mth(leaves), proof)


def test_small_and_large_paths_agree() -> None:
    # The plain functions switch to the cached tree above 64 leaves; both give RFC proofs.
    leaves = _leaves(64)
    for index in range(64):
        assert merkle.inclusion_proof(index, leaves) == _path(index, leaves)


def test_wrong_proofs_are_rejected() -> None:
    leaves = _leaves(37)
    tree = merkle.MerkleTree(leaves)
    root = tree.root()
    proof = tree.inclusion_proof(5)
    assert merkle.verify_inclusion(5, 37, leaves[5], proof, root)
    assert not merkle.verify_inclusion(6, 37, leaves[5], proof, root)
    assert not merkle.verify_inclusion(5, 37, leaves[6], proof, root)
    assert not merkle.verify_inclusion(5, 32, leaves[5], proof, root)
    assert not merkle.verify_inclusion(5, 37, leaves[5], proof[:-1], root)
    assert not merkle.verify_inclusion(5, 37, leaves[5], [*proof, proof[0]], root)
    bent = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    assert not merkle.verify_inclusion(5, 37, leaves[5], bent, root)
    assert not merkle.verify_inclusion(37, 37, leaves[5], proof, root)

    cproof = tree.consistency_proof(13, 37)
    old_root = tree.root(13)
    assert merkle.verify_consistency(13, 37, old_root, root, cproof)
    assert not merkle.verify_consistency(13, 37, tree.root(12), root, cproof)
    assert not merkle.verify_consistency(12, 37, old_root, root, cproof)
    assert not merkle.verify_consistency(13, 37, old_root, tree.root(36), cproof)
    assert not merkle.verify_consistency(13, 37, old_root, root, cproof[:-1])
    other = merkle.MerkleTree([*leaves[:12], merkle.leaf_hash(b"forged"), *leaves[13:]])
    assert not merkle.verify_consistency(
        13, 37, old_root, other.root(), other.consistency_proof(13)
    )
    assert merkle.verify_consistency(37, 37, root, root, [])
    assert not merkle.verify_consistency(37, 37, root, root, [root])


def test_tree_rejects_bad_input() -> None:
    tree = merkle.MerkleTree(_leaves(4))
    with pytest.raises(ValueError):
        tree.append(b"short")
    with pytest.raises(ValueError):
        tree.root(5)
    with pytest.raises(ValueError):
        tree.inclusion_proof(4, 4)
    with pytest.raises(ValueError):
        tree.consistency_proof(0, 4)
    with pytest.raises(ValueError):
        merkle.inclusion_proof(0, [])


def test_incremental_tree_matches_batch_root() -> None:
    leaves = _leaves(1000)
    tree = merkle.MerkleTree()
    for i, leaf in enumerate(leaves, 1):
        tree.append(leaf)
        if i in (1, 2, 3, 511, 512, 513, 999, 1000):
            assert tree.root() == merkle.tree_root(leaves[:i])
    assert tree.leaf(999) == leaves[999]
