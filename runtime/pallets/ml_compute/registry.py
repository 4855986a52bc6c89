"""The on-chain registries of model architectures and data sets, and what a model costs the
referee: the bytes of its input (pre-state and proven batch) and the weight of its one step.

The architectures' facts (spec hash, parameter count, state size, multiply-accumulates) are
constants of the runtime's code, checked against `runtime.ml.models` by the tests, so that the
node can read the registry, size referee calls and price them without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.context import BlockContext
from runtime.extrinsic import MAX_EXTRINSIC_BYTES
from runtime.pallets.ml_compute import events, storage
from runtime.pallets.ml_compute.errors import ERRORS
from runtime.pallets.ml_compute.types import MAX_BATCH, MAX_NAME_LEN

# Room in the referee's extrinsic for everything but the pre-state and the batch (signature,
# extensions, call header, length prefixes).
REFEREE_OVERHEAD_BYTES = 4096
HASH_BYTES = 32

# Weights in Substrate's ref_time units (10^12 per second), from scripts/bench/ml_pallet.py on
# the 2-core machine (process CPU time, under load from other work; margin about 2x): an exact
# step cost 47 ms of CPU for the MLP and 518 ms for the CNN at batch 64, 1.2 and 2.5 ns per
# multiply-accumulate. Re-measure on a quiet machine before lowering them.
REFEREE_BASE_WEIGHT = 20_000_000_000  # 20 ms: a fresh network plan, decoding, the step's setup
STATE_WEIGHT_PER_BYTE = 10_000  # hashing and decoding the pre-state: 10 ns a byte
MAC_WEIGHT = 5_000  # 5 ns per multiply-accumulate of a training step (forward + two backward)
SAMPLE_PROOF_WEIGHT = 10_000_000  # 10 µs per Merkle proof node of a sample
STEP_MACS_FACTOR = 3  # a training step: the forward product and two backward ones


@dataclass(frozen=True, slots=True)
class ArchitectureFacts:
    model_id: int
    name: str
    spec_hash: bytes
    n_params: int
    macs_per_sample: int  # of one forward pass
    state_bytes: int  # encode_state's length


# From runtime.ml.models (tests/runtime/test_ml_registry.py recomputes every field).
ARCHITECTURE_FACTS: dict[int, ArchitectureFacts] = {
    1: ArchitectureFacts(1, "mlp", bytes.fromhex("a5059362910fe8011b1ec287278472b54fe6397d06e0a0d1aa165338bd76d9d3"), 203530, 203264, 3256546),
    2: ArchitectureFacts(2, "cnn", bytes.fromhex("7567d4ddc5b6292e6099754b8e8ec38b4cca97f18c9de00d5b0e600a90e56301"), 18378, 1054720, 294112),
}
# MNIST as runtime.ml.data registers it: the root of its 60,000 training samples.
MNIST_ROOT = bytes.fromhex("7f5ec93fd2d024cc57325cc8487d47992c5782cf3ec152a3e833f0d19b4ebff3")
MNIST_SAMPLES = 60000
MNIST_INFO: dict[str, Any] = {"name": b"mnist", "n_samples": MNIST_SAMPLES, "sample_bytes": 784, "n_classes": 10}


def compute_proof_depth(n_samples: int) -> int:
    """Sibling hashes in a sample's Merkle proof: ⌈log2 n⌉ at most."""
    return max(n_samples - 1, 0).bit_length()


def compute_referee_input_bytes(state_bytes: int, sample_bytes: int, n_samples: int, batch: int) -> int:
    """The referee call's size: the pre-state, then per sample its image, label and proof."""
    per_sample = sample_bytes + 1 + 1 + HASH_BYTES * compute_proof_depth(n_samples)
    return REFEREE_OVERHEAD_BYTES + state_bytes + batch * per_sample


def compute_referee_limit_bytes(ctx: BlockContext) -> int:
    """The largest extrinsic a block takes."""
    return min(MAX_EXTRINSIC_BYTES, ctx.params.max_block_length)


def compute_referee_weight(state_bytes: int, macs_per_sample: int, batch: int, proof_depth: int) -> int:
    """The referee's weight: decoding and hashing the pre-state, the step's products, the
    samples' proofs; a constant for the rest."""
    return (REFEREE_BASE_WEIGHT + STATE_WEIGHT_PER_BYTE * state_bytes
            + MAC_WEIGHT * STEP_MACS_FACTOR * macs_per_sample * batch
            + SAMPLE_PROOF_WEIGHT * batch * (proof_depth + 1))


# `state_bytes` is measured at step 0; the header's msgpack step grows by up to 8 bytes with the
# step count (1 byte at step 0, 2 from step 128, ... 9 for a 64-bit step).
STEP_HEADER_GROWTH = 8


def find_architecture_by_state_bytes(n_bytes: int) -> ArchitectureFacts | None:
    """The architecture whose encoded state has this length at some step (each model's differs
    by far more than the step's few header bytes)."""
    for facts in ARCHITECTURE_FACTS.values():
        if facts.state_bytes <= n_bytes <= facts.state_bytes + STEP_HEADER_GROWTH:
            return facts
    return None


def is_refereeable(ctx: BlockContext, state_bytes: int, macs_per_sample: int, dataset: dict, batch: int) -> bool:
    """Whether the referee's input for this model, data set and batch fits a block's length
    and its step a block's weight."""
    size = compute_referee_input_bytes(state_bytes, dataset["sample_bytes"], dataset["n_samples"], batch)
    weight = compute_referee_weight(state_bytes, macs_per_sample, batch, compute_proof_depth(dataset["n_samples"]))
    return size <= compute_referee_limit_bytes(ctx) and weight <= ctx.params.max_block_weight


def compute_max_batch(ctx: BlockContext, state_bytes: int, macs_per_sample: int, dataset: dict) -> int:
    """The largest power-of-two batch the referee can judge in one block (0: none)."""
    batch = MAX_BATCH
    while batch and not is_refereeable(ctx, state_bytes, macs_per_sample, dataset, batch):
        batch //= 2
    return batch


def validate_architecture(ctx: BlockContext, facts: ArchitectureFacts) -> None:
    """Verify that the referee can judge this model: its input at batch 1 fits a block and its
    step's weight at batch 1 fits a block's weight."""
    mnist_like = {"sample_bytes": MNIST_INFO["sample_bytes"], "n_samples": MNIST_INFO["n_samples"]}
    if not is_refereeable(ctx, facts.state_bytes, facts.macs_per_sample, mnist_like, 1):
        raise ERRORS("ModelTooLarge", f"{facts.name}: a {facts.state_bytes}-byte pre-state and one sample's step "
                                      "do not fit a block's length and weight")


def apply_register_architecture(ctx: BlockContext, facts: ArchitectureFacts) -> None:
    if storage.Architectures.contains(ctx.state, facts.model_id):
        raise ERRORS("AlreadyRegisteredModel", f"model {facts.model_id} is registered")
    validate_architecture(ctx, facts)
    mnist_like = {"sample_bytes": MNIST_INFO["sample_bytes"], "n_samples": MNIST_INFO["n_samples"]}
    storage.Architectures.insert(ctx.state, facts.model_id, {
        "name": facts.name.encode(), "spec_hash": facts.spec_hash, "n_params": facts.n_params,
        "macs_per_sample": facts.macs_per_sample, "state_bytes": facts.state_bytes,
        "max_batch": compute_max_batch(ctx, facts.state_bytes, facts.macs_per_sample, mnist_like),
    })
    events.deposit(ctx, "ArchitectureRegistered", {"model": facts.model_id, "state_bytes": facts.state_bytes})


def validate_dataset(root: bytes, info: dict) -> None:
    """Verify that a data set's description is in bounds."""
    if len(info["name"]) > MAX_NAME_LEN or not 1 <= info["n_samples"] < 1 << 31:
        raise ERRORS("InvalidDataset", "a data set needs a short name and 1..2^31 samples")
    if not 1 <= info["sample_bytes"] <= 1 << 16 or not 2 <= info["n_classes"] <= 256:
        raise ERRORS("InvalidDataset", "samples of 1..65536 bytes and 2..256 classes")


def apply_register_dataset(ctx: BlockContext, root: bytes, info: dict) -> None:
    if storage.Datasets.contains(ctx.state, root):
        raise ERRORS("AlreadyRegisteredModel", f"data set {root.hex()[:16]}… is registered")
    validate_dataset(root, info)
    storage.Datasets.insert(ctx.state, root, info)
    events.deposit(ctx, "DatasetRegistered", {"dataset": root, "n_samples": info["n_samples"]})
