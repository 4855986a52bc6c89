"""Milestone 4: the referee is hardened. A crafted state with INT64_MIN no longer passes the
magnitude bound (np.abs wraps at -2^63); the referee gives the same bits whatever ran before it
in the process, though build_network's cache shares workspace buffers between runs; and each
mismatching input is a named error (tests/ml_compute/test_disputes.py drives those through the
pallet)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from runtime.hashing import blake2_256
from runtime.ml.data import build_proven_batch
from runtime.ml.errors import BatchMismatchError, MerkleProofError, StateDecodeError, StateHashMismatchError
from runtime.ml.job import HyperParams, TrainingJob
from runtime.ml.models import MASTER_BOUND_BITS
from runtime.ml.referee import replay_disputed_step
from runtime.ml.segments import initial_state, run_segment
from runtime.ml.state import decode_state, decode_state_checked, encode_state

ROOT = Path(__file__).resolve().parents[2]
INT64_MIN = -(1 << 63)


def _with_value(data: bytes, index: int, value: int) -> bytes:
    header_len = int.from_bytes(data[:4], "little")
    body = np.frombuffer(data[4 + header_len:], dtype="<i8").copy()
    body[index] = value
    return data[:4 + header_len] + body.tobytes()


def job_of(subset, model: int = 1, batch: int = 8, seed: bytes = b"\x03" * 32) -> TrainingJob:
    return TrainingJob(model, subset.root, seed, HyperParams(batch_size=batch), 6, 3)


def test_int64_min_is_outside_the_master_bound(subset):
    data = encode_state(initial_state(job_of(subset)))
    assert int(np.abs(np.array([INT64_MIN], dtype=np.int64)).max()) < 0  # the hole: abs wraps
    crafted = _with_value(data, 5, INT64_MIN)
    with pytest.raises(StateDecodeError, match="master bound"):
        decode_state(crafted)
    with pytest.raises(StateDecodeError, match="master bound"):
        decode_state_checked(crafted, blake2_256(crafted))
    bound = 1 << MASTER_BOUND_BITS
    for ok in (bound, -bound):
        decode_state(_with_value(data, 0, ok))
    for bad in (bound + 1, -bound - 1, (1 << 63) - 1):
        with pytest.raises(StateDecodeError):
            decode_state(_with_value(data, 0, bad))


def _referee_inputs(subset, levels, job: TrainingJob, step: int):
    state = initial_state(job)
    if step:
        state = run_segment(state, job, subset, 0, step)
    pre = encode_state(state)
    batch = build_proven_batch(subset, levels, job.seed, step, job.hyper.batch_size)
    return pre, batch.images.numpy().tobytes(), bytes(batch.labels.tolist()), [list(p) for p in batch.proofs]


def test_referee_names_each_mismatch(subset, levels):
    job = job_of(subset)
    pre, images, labels, proofs = _referee_inputs(subset, levels, job, 2)
    n = len(subset)
    with pytest.raises(StateHashMismatchError):
        replay_disputed_step(job, n, 2, pre, bytes(32), images, labels, proofs)
    with pytest.raises(StateDecodeError, match="step"):
        replay_disputed_step(job, n, 3, pre, blake2_256(pre), images, labels, proofs)
    with pytest.raises(MerkleProofError):
        replay_disputed_step(job, n, 2, pre, blake2_256(pre), images[::-1], labels, proofs)
    with pytest.raises(BatchMismatchError):
        replay_disputed_step(job, n, 2, pre, blake2_256(pre), images, labels + b"\x00", proofs)
    cnn_pre = encode_state(initial_state(job_of(subset, model=2)))
    with pytest.raises(StateDecodeError, match="model"):
        replay_disputed_step(job, n, 0, cnn_pre, blake2_256(cnn_pre), images, labels, proofs)


REFEREE_SCRIPT = """
import json, sys
import torch
from gensyn_node.ml.datasets import load_mnist, make_subset
from runtime.hashing import blake2_256
from tests.ml_compute.actors import get_levels
from tests.ml_compute.test_referee_hardening import _referee_inputs, job_of
from runtime.ml.referee import replay_disputed_step
torch.set_num_threads(1)
subset = make_subset(load_mnist().train, 256, seed=11)
levels = get_levels(subset)
out = {}
for model in (1, 2):
    job = job_of(subset, model=model)
    pre, images, labels, proofs = _referee_inputs(subset, levels, job, 2)
    out[model] = replay_disputed_step(job, len(subset), 2, pre, blake2_256(pre), images, labels, proofs).hex()
print(json.dumps(out))
"""


def test_referee_gives_the_same_bits_whatever_ran_before(subset, levels):
    fresh = subprocess.run([sys.executable, "-c", REFEREE_SCRIPT], cwd=ROOT, capture_output=True, text=True,
                           timeout=300, check=True)
    expected = {int(k): v for k, v in json.loads(fresh.stdout.strip().splitlines()[-1]).items()}
    # Other work in this process first: other jobs at the same and other batch sizes (sharing
    # build_network's cached networks and their workspaces), the other model, another default dtype.
    for model, batch in ((1, 8), (2, 8), (1, 16), (2, 32)):
        other = job_of(subset, model=model, batch=batch, seed=bytes([model, batch]) * 16)
        run_segment(initial_state(other), other, subset, 0, 2)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for model in (1, 2):
            job = job_of(subset, model=model)
            pre, images, labels, proofs = _referee_inputs(subset, levels, job, 2)
            for _ in range(2):
                got = replay_disputed_step(job, len(subset), 2, pre, blake2_256(pre), images, labels, proofs)
                assert got.hex() == expected[model]
                # A solver's run in between, on the cached network of the same shape.
                run_segment(initial_state(job), job, subset, 0, 1)
    finally:
        torch.set_default_dtype(before)
