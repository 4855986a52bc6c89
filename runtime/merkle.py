"""Binary Merkle trees over blake2b-256 leaves: extrinsics roots, checkpoint commitments,
dataset ids. An odd node is promoted unchanged; leaves and inner nodes are domain-separated so a
leaf can never pass for an inner node."""

from __future__ import annotations

from collections.abc import Sequence

from runtime.hashing import blake2_256

EMPTY_MERKLE_ROOT = blake2_256(b"")


class MerkleProofError(ValueError):
    """A Merkle proof does not lead from the leaf to the root."""


def hash_leaf(data: bytes) -> bytes:
    return blake2_256(b"\x00" + data)


def _hash_pair(left: bytes, right: bytes) -> bytes:
    return blake2_256(b"\x01" + left + right)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root over already-hashed leaves (see `hash_leaf`)."""
    if not leaves:
        return EMPTY_MERKLE_ROOT
    level = list(leaves)
    while len(level) > 1:
        nxt = [_hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Sibling hashes from leaf `index` up to the root (a promoted odd node has no sibling)."""
    if not 0 <= index < len(leaves):
        raise IndexError("leaf index out of range")
    proof, level = [], list(leaves)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        nxt = [_hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level, index = nxt, index // 2
    return proof


def verify_merkle_proof(root: bytes, leaf: bytes, index: int, count: int, proof: Sequence[bytes]) -> None:
    """Verify that `leaf` is leaf `index` of the `count` leaves under `root`; raise otherwise."""
    if not 0 <= index < count:
        raise MerkleProofError("leaf index out of range")
    node, width, used = leaf, count, 0
    while width > 1:
        sibling = index ^ 1
        if sibling < width:
            if used >= len(proof):
                raise MerkleProofError("proof too short")
            other = proof[used]
            used += 1
            node = _hash_pair(node, other) if index % 2 == 0 else _hash_pair(other, node)
        index, width = index // 2, (width + 1) // 2
    if used != len(proof) or node != root:
        raise MerkleProofError("proof does not lead to the root")
