"""Binary Merkle trees (extrinsics roots, checkpoint and dataset commitments): every proof
verifies at its own position and nowhere else, and any change to leaf, proof, index or count fails."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.block import compute_extrinsics_root
from runtime.hashing import blake2_256
from runtime.merkle import (
    EMPTY_MERKLE_ROOT,
    MerkleProofError,
    hash_leaf,
    merkle_proof,
    merkle_root,
    verify_merkle_proof,
)

LEAVES = st.lists(st.binary(max_size=8), min_size=1, max_size=17).map(lambda items: [hash_leaf(x) for x in items])


def test_merkle_root_small_trees():
    a, b, c = (hash_leaf(x) for x in (b"a", b"b", b"c"))
    pair = blake2_256(b"\x01" + a + b)
    assert merkle_root([]) == EMPTY_MERKLE_ROOT
    assert merkle_root([a]) == a
    assert merkle_root([a, b]) == pair
    assert merkle_root([a, b, c]) == blake2_256(b"\x01" + pair + c)  # the odd node is promoted


def test_leaf_and_inner_node_are_domain_separated():
    a, b = hash_leaf(b"a"), hash_leaf(b"b")
    assert hash_leaf(a + b) != merkle_root([a, b])
    assert hash_leaf(b"") != blake2_256(b"")


def test_extrinsics_root_depends_on_order_and_content():
    xts = [b"\x04\x01", b"\x04\x02", b"\x04\x03"]
    root = compute_extrinsics_root(xts)
    assert compute_extrinsics_root(list(reversed(xts))) != root
    assert compute_extrinsics_root(xts[:2]) != root
    assert compute_extrinsics_root(xts + [b""]) != root
    assert compute_extrinsics_root([]) == EMPTY_MERKLE_ROOT


@settings(deadline=None)
@given(LEAVES, st.data())
def test_merkle_proof_verifies_only_at_its_position(leaves, data):
    """For the true leaf count (the root does not commit to it: the verifier must know it), a
    proof verifies at its own index and at no other index holding a different leaf."""
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    root = merkle_root(leaves)
    proof = merkle_proof(leaves, index)
    verify_merkle_proof(root, leaves[index], index, len(leaves), proof)
    for other_index in range(len(leaves)):
        if leaves[other_index] == leaves[index]:
            continue  # the same leaf really is there too
        with pytest.raises(MerkleProofError):
            verify_merkle_proof(root, leaves[index], other_index, len(leaves), proof)


@settings(deadline=None)
@given(LEAVES, st.data())
def test_merkle_proof_tampering_rejected(leaves, data):
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    root = merkle_root(leaves)
    proof = merkle_proof(leaves, index)
    with pytest.raises(MerkleProofError):
        verify_merkle_proof(root, hash_leaf(b"forged"), index, len(leaves), proof)
    with pytest.raises(MerkleProofError):
        verify_merkle_proof(blake2_256(root), leaves[index], index, len(leaves), proof)
    with pytest.raises(MerkleProofError):
        verify_merkle_proof(root, leaves[index], index, len(leaves), proof + [root])
    if proof:
        with pytest.raises(MerkleProofError):
            verify_merkle_proof(root, leaves[index], index, len(leaves), proof[:-1])
        flipped = bytes([proof[0][0] ^ 1]) + proof[0][1:]
        with pytest.raises(MerkleProofError):
            verify_merkle_proof(root, leaves[index], index, len(leaves), [flipped] + proof[1:])


@pytest.mark.parametrize("index, count", [(-1, 3), (3, 3), (0, 0)])
def test_merkle_proof_index_out_of_range_rejected(index, count):
    leaves = [hash_leaf(bytes([i])) for i in range(3)]
    with pytest.raises(MerkleProofError):
        verify_merkle_proof(merkle_root(leaves), leaves[0], index, count, [])
    with pytest.raises(IndexError):
        merkle_proof(leaves, 3)
