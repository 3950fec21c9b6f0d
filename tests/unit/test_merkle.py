"""Properties of the RFC 9162 Merkle tree: roots match a naive reference, proofs verify, tampering fails."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import merkle
from gateway.core.errors import LimitExceeded, ProofInvalid


def naive_root(leaf_hashes: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, written as the recursive definition (the reference, not fast)."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    split = 1
    while split * 2 < len(leaf_hashes):
        split *= 2
    left, right = naive_root(leaf_hashes[:split]), naive_root(leaf_hashes[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaves(count: int) -> list[bytes]:
    return [merkle.leaf_hash(f"leaf {i}".encode()) for i in range(count)]


def flip(data: bytes, byte: int, bit: int) -> bytes:
    mutable = bytearray(data)
    mutable[byte % len(mutable)] ^= 1 << bit
    return bytes(mutable)


TREE = merkle.MerkleTree(leaves(300))


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert merkle.node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    # a node can never pose as a leaf of the same bytes
    assert merkle.leaf_hash(b"a" * 32 + b"b" * 32) != merkle.node_hash(b"a" * 32, b"b" * 32)


def test_known_root_of_rfc6962_test_tree() -> None:
    # the 8-leaf tree of the RFC 6962 / transparency-dev test data (its root is a widely published constant)
    data = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ]
    tree = merkle.MerkleTree(merkle.leaf_hash(d) for d in data)
    assert tree.root().hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert tree.root(1).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


def test_empty_tree() -> None:
    tree = merkle.MerkleTree()
    assert tree.size == 0
    assert tree.root() == merkle.EMPTY_ROOT == merkle.root_from_leaf_hashes([])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=70))
def test_root_matches_naive_reference_at_every_size(data: list[bytes]) -> None:
    hashes = [merkle.leaf_hash(d) for d in data]
    tree = merkle.MerkleTree()
    frontier = merkle.TreeFrontier()
    for size, leaf in enumerate(hashes, start=1):
        tree.append(leaf)
        frontier.append(leaf)
        assert frontier.root() == naive_root(hashes[:size])
    for size in range(len(hashes) + 1):
        assert tree.root(size) == naive_root(hashes[:size])
    assert merkle.root_from_leaf_hashes(hashes) == naive_root(hashes)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_inclusion_proofs_verify_and_any_bit_flip_fails(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, TREE.size), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = TREE.inclusion_proof(index, size)
    root = TREE.root(size)
    leaf = TREE.leaf(index)
    merkle.verify_inclusion(leaf, index, size, proof, root)

    byte, bit = data.draw(st.integers(0, 31), label="byte"), data.draw(st.integers(0, 7), label="bit")
    with pytest.raises(ProofInvalid):
        merkle.verify_inclusion(flip(leaf, byte, bit), index, size, proof, root)
    with pytest.raises(ProofInvalid):
        merkle.verify_inclusion(leaf, index, size, proof, flip(root, byte, bit))
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1), label="which")
        tampered = list(proof)
        tampered[which] = flip(tampered[which], byte, bit)
        with pytest.raises(ProofInvalid):
            merkle.verify_inclusion(leaf, index, size, tampered, root)
        with pytest.raises(ProofInvalid):
            merkle.verify_inclusion(leaf, index, size, proof[:-1], root)
    with pytest.raises(ProofInvalid):
        merkle.verify_inclusion(leaf, index, size, [*proof, root], root)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_consistency_proofs_verify_and_tampering_fails(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(1, TREE.size), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    proof = TREE.consistency_proof(size1, size2)
    root1, root2 = TREE.root(size1), TREE.root(size2)
    merkle.verify_consistency(size1, size2, proof, root1, root2)
    if size1 == size2:
        assert proof == []
        return
    byte, bit = data.draw(st.integers(0, 31), label="byte"), data.draw(st.integers(0, 7), label="bit")
    with pytest.raises(ProofInvalid):
        merkle.verify_consistency(size1, size2, proof, flip(root1, byte, bit), root2)
    with pytest.raises(ProofInvalid):
        merkle.verify_consistency(size1, size2, proof, root1, flip(root2, byte, bit))
    which = data.draw(st.integers(0, len(proof) - 1), label="which")
    tampered = list(proof)
    tampered[which] = flip(tampered[which], byte, bit)
    with pytest.raises(ProofInvalid):
        merkle.verify_consistency(size1, size2, tampered, root1, root2)


def test_exhaustive_small_trees() -> None:
    hashes = leaves(40)
    tree = merkle.MerkleTree(hashes)
    for size in range(1, 41):
        root = tree.root(size)
        for index in range(size):
            merkle.verify_inclusion(hashes[index], index, size, tree.inclusion_proof(index, size), root)
        for size1 in range(1, size + 1):
            proof = tree.consistency_proof(size1, size)
            merkle.verify_consistency(size1, size, proof, tree.root(size1), root)


def test_proofs_are_logarithmic_for_a_big_tree() -> None:
    big = merkle.MerkleTree(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(20_001))
    assert len(big.inclusion_proof(12_345)) <= 15
    assert len(big.consistency_proof(9_999)) <= 2 * 15
    merkle.verify_inclusion(big.leaf(20_000), 20_000, big.size, big.inclusion_proof(20_000), big.root())


@pytest.mark.parametrize(
    ("index", "size", "field"),
    [(-1, 3, "index"), (3, 3, "index"), (0, 0, "index"), (0, -1, "tree_size"), (0, 2**64, "tree_size")],
)
def test_inclusion_rejects_bad_positions(index: int, size: int, field: str) -> None:
    with pytest.raises(ProofInvalid) as caught:
        merkle.verify_inclusion(b"\x00" * 32, index, size, [], b"\x00" * 32)
    assert caught.value.field == field
    assert caught.value.code == "PROOF_INVALID"


def test_limits_on_proof_length_and_hash_sizes() -> None:
    with pytest.raises(LimitExceeded):
        merkle.verify_inclusion(b"\x00" * 32, 0, 2, [b"\x00" * 32] * 65, b"\x00" * 32)
    with pytest.raises(ProofInvalid) as caught:
        merkle.verify_inclusion(b"\x00" * 32, 0, 2, [b"\x00" * 31], b"\x00" * 32)
    assert caught.value.field == "proof[0]"
    with pytest.raises(ProofInvalid):
        merkle.MerkleTree().append(b"short")


def test_consistency_rejects_degenerate_sizes() -> None:
    root = TREE.root(5)
    with pytest.raises(ProofInvalid):
        merkle.verify_consistency(0, 5, [], merkle.EMPTY_ROOT, root)
    with pytest.raises(ProofInvalid):
        merkle.verify_consistency(6, 5, [], root, root)
    with pytest.raises(ProofInvalid):
        merkle.verify_consistency(5, 5, [root], root, root)
    with pytest.raises(ProofInvalid):
        merkle.verify_consistency(3, 5, [], TREE.root(3), root)
    with pytest.raises(ProofInvalid):
        TREE.consistency_proof(0, 5)
    with pytest.raises(ProofInvalid):
        TREE.root(TREE.size + 1)
