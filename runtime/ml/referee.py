"""The referee's replay of one disputed training step, hardened for the runtime.

The pre-state must hash to the state both parties accepted, decode as a state of the job's
model at the disputed step, and the batch must be the one the job's seed fixes for that step,
each sample Merkle-proven against the data set's root; then the step runs on a network built
for this call alone, so no workspace buffer shared through `build_network`'s cache (a solver's
or a verifier's run earlier in the same process) can reach the result. Every rejection is one
of runtime.ml.errors' named errors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from runtime.ml.data import ProvenBatch, get_batch_indices, verify_proven_batch
from runtime.ml.engine import apply_train_step_, build_network, get_backend, init_state
from runtime.ml.errors import BatchMismatchError, StateDecodeError
from runtime.ml.job import TrainingJob, validate_job
from runtime.ml.models import get_model
from runtime.ml.state import compute_state_hash, decode_state_checked


def build_fresh_network(spec, batch_size: int, backend: str):  # type: ignore[no-untyped-def]
    """A network of its own (the cache's function unwrapped): its workspaces are new."""
    build = getattr(build_network, "__wrapped__", build_network)
    return build(spec, batch_size, backend)


def decode_batch(job: TrainingJob, step: int, n_samples: int, images: bytes, labels: bytes,
                 proofs: Sequence[Sequence[bytes]]) -> ProvenBatch:
    """The batch of `step` as the referee receives it: B·sample bytes of images, B label bytes."""
    spec = get_model(job.model_id)
    batch = job.hyper.batch_size
    sample_bytes = int(np.prod(spec.input_shape))
    if len(images) != batch * sample_bytes or len(labels) != batch:
        raise BatchMismatchError(f"step {step}: expected {batch} samples of {sample_bytes} bytes and {batch} labels")
    indices = tuple(int(i) for i in get_batch_indices(job.seed, step, n_samples, batch))
    image_tensor = torch.frombuffer(bytearray(images), dtype=torch.uint8).reshape(batch, sample_bytes)
    label_tensor = torch.frombuffer(bytearray(labels), dtype=torch.uint8).to(torch.int64)
    return ProvenBatch(step, indices, image_tensor, label_tensor, tuple(tuple(p) for p in proofs))


def replay_disputed_step(job: TrainingJob, n_samples: int, step: int, pre_state: bytes, pre_hash: bytes,
                         images: bytes, labels: bytes, proofs: Sequence[Sequence[bytes]]) -> bytes:
    """The hash of the state after step `step` from the proven pre-state and batch.

    Raises StateHashMismatchError (bytes not the agreed state), StateDecodeError (not a state
    of the job's model at `step`), BatchMismatchError or MerkleProofError (not the step's batch).
    """
    validate_job(job)
    state = decode_state_checked(pre_state, pre_hash)
    if state.model.model_id != job.model_id:
        raise StateDecodeError(f"the pre-state is of model {state.model.name}, the job trains {job.model_id}")
    if state.step != step:
        raise StateDecodeError(f"the pre-state is at step {state.step}, the disputed step is {step}")
    batch = decode_batch(job, step, n_samples, images, labels, proofs)
    verify_proven_batch(batch, job.dataset_id, n_samples, job.seed, job.hyper.batch_size)
    net = build_fresh_network(state.model, job.hyper.batch_size, get_backend(state.params.device))
    apply_train_step_(state, batch.images, batch.labels, job.hyper, net)
    return compute_state_hash(state)


def compute_initial_state_hash(job: TrainingJob) -> bytes:
    """The hash of checkpoint 0: the model's seeded initial weights, zero momentum, step 0."""
    validate_job(job)
    return compute_state_hash(init_state(get_model(job.model_id), job.seed))
