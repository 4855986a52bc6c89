"""Content addressing: Merkle roots and proofs, and the batch schedule as a function of the seed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from runtime.hashing import blake2_256
from runtime.ml.data import (
    MNIST,
    build_proven_batch,
    compute_leaves,
    compute_merkle_levels,
    compute_merkle_root,
    get_batch_indices,
    get_merkle_proof,
    verify_merkle_proof,
    verify_proven_batch,
)
from runtime.ml.errors import BatchMismatchError, MerkleProofError


def _leaves(n: int) -> list[bytes]:
    return [blake2_256(bytes([i % 256, i // 256])) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 100])
def test_every_proof_verifies_and_a_wrong_one_does_not(n):
    leaves = _leaves(n)
    levels = compute_merkle_levels(leaves)
    root = compute_merkle_root(leaves)
    assert levels[-1] == [root]
    for i in range(n):
        proof = get_merkle_proof(levels, i)
        verify_merkle_proof(root, leaves[i], i, n, proof)
        if n > 1:
            with pytest.raises(MerkleProofError):
                verify_merkle_proof(root, leaves[(i + 1) % n], i, n, proof)
            with pytest.raises(MerkleProofError):
                verify_merkle_proof(root, leaves[i], i, n, proof[:-1])
            with pytest.raises(MerkleProofError):
                verify_merkle_proof(root, leaves[i], i, n, proof + [root])


def test_mnist_matches_registry(mnist):
    assert mnist.train.root == MNIST.dataset_id and len(mnist.train) == MNIST.n_train
    assert len(mnist.test) == MNIST.n_test
    counts = np.bincount(mnist.train.labels.numpy(), minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_root_changes_with_one_pixel(subset):
    images = subset.images.numpy().copy()
    labels = subset.labels.numpy().astype(np.uint8)
    assert compute_merkle_root(compute_leaves(images, labels)) == subset.root
    images[3, 14, 14] ^= 1
    assert compute_merkle_root(compute_leaves(images, labels)) != subset.root


def test_batch_schedule_is_a_pure_function_of_seed_and_step():
    seed = b"\x09" * 32
    a = get_batch_indices(seed, 17, 1000, 32)
    assert np.array_equal(a, get_batch_indices(seed, 17, 1000, 32))
    assert not np.array_equal(a, get_batch_indices(b"\x0a" * 32, 17, 1000, 32))
    epoch = np.concatenate([get_batch_indices(seed, t, 1000, 32) for t in range(31)])
    assert len(set(epoch.tolist())) == 31 * 32  # an epoch draws without replacement
    nxt = np.concatenate([get_batch_indices(seed, t, 1000, 32) for t in range(31, 62)])
    assert not np.array_equal(epoch, nxt)  # each epoch has its own order


def test_proven_batch_verifies(subset):
    levels = compute_merkle_levels(compute_leaves(subset.images.numpy(), subset.labels.numpy()))
    seed = b"\x03" * 32
    batch = build_proven_batch(subset, levels, seed, 5, 16)
    verify_proven_batch(batch, subset.root, len(subset), seed, 16)


def test_bad_batches_are_rejected(subset):
    levels = compute_merkle_levels(compute_leaves(subset.images.numpy(), subset.labels.numpy()))
    seed = b"\x03" * 32
    batch = build_proven_batch(subset, levels, seed, 5, 16)
    tampered = batch.images.clone()
    tampered[0, 10, 10] ^= 0x80
    with pytest.raises(MerkleProofError):
        verify_proven_batch(dataclasses.replace(batch, images=tampered), subset.root, len(subset), seed, 16)
    labels = batch.labels.clone()
    labels[2] = (labels[2] + 1) % 10
    with pytest.raises(MerkleProofError):
        verify_proven_batch(dataclasses.replace(batch, labels=labels), subset.root, len(subset), seed, 16)
    proofs = list(batch.proofs)
    proofs[4] = proofs[5]
    with pytest.raises(MerkleProofError):
        verify_proven_batch(dataclasses.replace(batch, proofs=tuple(proofs)), subset.root, len(subset), seed, 16)
    other = build_proven_batch(subset, levels, seed, 6, 16)  # a valid batch, of another step
    with pytest.raises(BatchMismatchError):
        verify_proven_batch(dataclasses.replace(other, step=5), subset.root, len(subset), seed, 16)
    with pytest.raises(BatchMismatchError):
        verify_proven_batch(dataclasses.replace(batch, images=batch.images.to(torch.float32)),
                            subset.root, len(subset), seed, 16)
