"""Binary Merkle trees over blake2b-256: extrinsics roots, checkpoint commitments, dataset ids.

A leaf is blake2b-256(0x00 ‖ data) and an inner node blake2b-256(0x01 ‖ left ‖ right), so a leaf
can never pass for a node; an odd node at the end of a level is carried up unchanged; the root of
no leaves is blake2b-256 of the empty string. The root does not commit to the leaf count: a
verifier takes the count from a trusted place (the dataset registry, the commitment's record).
"""

from __future__ import annotations

from collections.abc import Sequence

from runtime.hashing import blake2_256

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_MERKLE_ROOT = blake2_256(b"")
MAX_PROOF_DEPTH = 64


class MerkleProofError(ValueError):
    """A Merkle proof does not lead from the leaf to the root."""


def hash_leaf(data: bytes) -> bytes:
    return blake2_256(LEAF_PREFIX + data)


def _hash_level(level: Sequence[bytes]) -> list[bytes]:
    up = [blake2_256(NODE_PREFIX + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        up.append(level[-1])
    return up


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root over already-hashed leaves (see `hash_leaf`)."""
    if not leaves:
        return EMPTY_MERKLE_ROOT
    level = list(leaves)
    while len(level) > 1:
        level = _hash_level(level)
    return level[0]


def merkle_levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first: build once, then take many proofs."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        levels.append(_hash_level(levels[-1]))
    return levels


def merkle_proof_from_levels(levels: Sequence[Sequence[bytes]], index: int) -> list[bytes]:
    """Sibling hashes from leaf `index` up; a carried-up odd node contributes no sibling."""
    if not 0 <= index < len(levels[0]):
        raise MerkleProofError(f"leaf {index} outside 0..{len(levels[0]) - 1}")
    proof = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The proof of one leaf (builds the levels; use `merkle_levels` for many proofs)."""
    if not 0 <= index < len(leaves):
        raise IndexError("leaf index out of range")
    return merkle_proof_from_levels(merkle_levels(leaves), index)


def compute_root_from_proof(leaf: bytes, index: int, count: int, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` leads to from `leaf` at `index` in a tree of `count` leaves."""
    if not 0 <= index < count:
        raise MerkleProofError(f"leaf {index} outside 0..{count - 1}")
    if len(proof) > MAX_PROOF_DEPTH:
        raise MerkleProofError("proof too long")
    node, width, used = leaf, count, 0
    while width > 1:
        sibling = index ^ 1
        if sibling < width:
            if used >= len(proof):
                raise MerkleProofError("proof too short")
            other = proof[used]
            node = blake2_256(NODE_PREFIX + other + node) if index & 1 else blake2_256(NODE_PREFIX + node + other)
            used += 1
        index //= 2
        width = (width + 1) // 2
    if used != len(proof):
        raise MerkleProofError("proof has extra hashes")
    return node


def verify_merkle_proof(root: bytes, leaf: bytes, index: int, count: int, proof: Sequence[bytes]) -> None:
    """Verify that `leaf` is leaf `index` of the `count` leaves under `root`; raise otherwise."""
    if compute_root_from_proof(leaf, index, count, proof) != root:
        raise MerkleProofError("proof does not lead to the root")
