"""Segments, checkpoints and the solver's commitment; the referee's one-step replay.

A job's checkpoint i is the state after min(i·k, steps) steps (checkpoint 0 is the initial
state), segment i runs checkpoint i to i+1. The solver commits to the Merkle root over its
checkpoint hashes (leaf = blake2b-256(0x00 ‖ hash)); a verifier re-runs a segment from the
committed start state and compares the end hash bit for bit; in a dispute the runtime replays
the single contested step from a proven pre-state and a Merkle-proven batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from runtime.hashing import blake2_256
from runtime.merkle import hash_leaf
from runtime.ml.data import (
    Dataset,
    ProvenBatch,
    compute_merkle_levels,
    compute_merkle_root,
    get_batch,
    get_dataset_spec,
    get_merkle_proof,
    verify_merkle_proof,
    verify_proven_batch,
)
from runtime.ml.engine import StepMetrics, apply_train_step_, build_network, init_state
from runtime.ml.errors import BatchMismatchError, StepRangeError
from runtime.ml.job import TrainingJob, validate_job
from runtime.ml.models import get_model
from runtime.ml.state import TrainState, decode_state_checked, encode_state

StepCallback = Callable[[int, StepMetrics], None]
# run_segment's signature: (state, job, dataset, first_step, n_steps, on_step) -> end state.
SegmentRunner = Callable[[TrainState, TrainingJob, Dataset, int, int, StepCallback | None], TrainState]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    index: int
    step: int
    data: bytes
    state_hash: bytes


def initial_state(job: TrainingJob, device: torch.device | str = "cpu") -> TrainState:
    """Checkpoint 0 of a job: the model's seeded initial weights, zero momentum, step 0."""
    validate_job(job)
    return init_state(get_model(job.model_id), job.seed, device)


def _validate_dataset(job: TrainingJob, dataset: Dataset) -> None:
    if dataset.root != job.dataset_id:
        raise BatchMismatchError("the data set's Merkle root is not the job's dataset id")


def run_segment(state: TrainState, job: TrainingJob, dataset: Dataset, first_step: int, n_steps: int,
                on_step: StepCallback | None = None, backend: str | None = None) -> TrainState:
    """Steps first_step .. first_step+n_steps-1 of `job` from `state`; returns a new state.
    `backend` forces the product backend (default: the device's); it never changes the bits."""
    validate_job(job)
    _validate_dataset(job, dataset)
    if state.model.model_id != job.model_id:
        raise StepRangeError(f"state is of model {state.model.name}, job trains model {job.model_id}")
    if state.step != first_step:
        raise StepRangeError(f"state is at step {state.step}, segment starts at {first_step}")
    if n_steps < 0 or first_step + n_steps > job.steps:
        raise StepRangeError(f"steps {first_step}..{first_step + n_steps} outside the job's {job.steps}")
    out = state.clone()
    device = out.params.device
    net = None if backend is None else build_network(out.model, job.hyper.batch_size, backend)
    for step in range(first_step, first_step + n_steps):
        images, labels = get_batch(dataset, job.seed, step, job.hyper.batch_size)
        metrics = apply_train_step_(out, images.to(device), labels.to(device), job.hyper, net)
        if on_step is not None:
            on_step(step, metrics)
    return out


def iter_checkpoints(job: TrainingJob, dataset: Dataset, state: TrainState | None = None,
                     on_step: StepCallback | None = None, device: torch.device | str = "cpu",
                     run: SegmentRunner | None = None) -> Iterator[Checkpoint]:
    """Trains the whole job (or the rest of it from `state`, which must sit on a checkpoint),
    yielding every checkpoint from the starting one on. `run` replaces `run_segment` (the
    solver's test-only cheat modes use it)."""
    run = run or run_segment
    validate_job(job)
    _validate_dataset(job, dataset)
    current = initial_state(job, device) if state is None else state.clone()
    if current.step % job.checkpoint_every and current.step != job.steps:
        raise StepRangeError(f"step {current.step} is not a checkpoint of the job")
    index = -(-current.step // job.checkpoint_every)
    while True:
        data = encode_state(current)
        yield Checkpoint(index, current.step, data, blake2_256(data))
        if current.step >= job.steps:
            return
        n = min(job.checkpoint_every, job.steps - current.step)
        current = run(current, job, dataset, current.step, n, on_step)
        index += 1


def compute_commitment_leaves(hashes: list[bytes]) -> list[bytes]:
    return [hash_leaf(h) for h in hashes]


def compute_commitment(hashes: list[bytes]) -> bytes:
    """The solver's commitment: the Merkle root over its checkpoint hashes, in order."""
    return compute_merkle_root(compute_commitment_leaves(hashes))


def get_checkpoint_proof(hashes: list[bytes], index: int) -> list[bytes]:
    return get_merkle_proof(compute_merkle_levels(compute_commitment_leaves(hashes)), index)


def verify_checkpoint_proof(commitment: bytes, state_hash: bytes, index: int, n_checkpoints: int,
                            proof: list[bytes]) -> None:
    """Verify that `state_hash` is checkpoint `index` of `commitment`; raises MerkleProofError."""
    verify_merkle_proof(commitment, hash_leaf(state_hash), index, n_checkpoints, proof)


def run_checkpoint_segment(start: TrainState, job: TrainingJob, dataset: Dataset, index: int) -> TrainState:
    """Segment `index`: from checkpoint `index` (the state `start`) to checkpoint index+1."""
    first = job.get_checkpoint_step(index)
    last = job.get_checkpoint_step(index + 1)
    return run_segment(start, job, dataset, first, last - first)


def verify_segment(start: bytes, job: TrainingJob, dataset: Dataset, index: int, hashes: list[bytes]) -> bool:
    """A verifier's check of segment `index`: the start bytes must hash to committed checkpoint
    `index` (else StateHashMismatchError); returns whether re-running the segment ends on the
    committed checkpoint index+1."""
    if not 0 <= index < len(hashes) - 1:
        raise StepRangeError(f"segment {index} outside 0..{len(hashes) - 2}")
    state = decode_state_checked(start, hashes[index])
    end = run_checkpoint_segment(state, job, dataset, index)
    return blake2_256(encode_state(end)) == hashes[index + 1]


def replay_step(pre_state: TrainState, batch: ProvenBatch, job: TrainingJob,
                n_samples: int | None = None) -> TrainState:
    """The referee's step: verifies the batch against the job's seed and data set id, then
    applies one exact step to a copy of `pre_state`. `n_samples` defaults to the registry's."""
    validate_job(job)
    if pre_state.step != batch.step:
        raise StepRangeError(f"pre-state is at step {pre_state.step}, batch is of step {batch.step}")
    if not 0 <= batch.step < job.steps:
        raise StepRangeError(f"step {batch.step} outside the job's {job.steps}")
    if pre_state.model.model_id != job.model_id:
        raise StepRangeError("pre-state is not of the job's model")
    if n_samples is None:
        n_samples = get_dataset_spec(job.dataset_id).n_train
    verify_proven_batch(batch, job.dataset_id, n_samples, job.seed, job.hyper.batch_size)
    post = pre_state.clone()
    device = post.params.device
    apply_train_step_(post, batch.images.to(device), batch.labels.to(device), job.hyper)
    return post
