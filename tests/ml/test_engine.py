"""The exact engine end to end: thread counts, product plans, replay, segments, learning."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from runtime.ml.data import build_proven_batch, compute_leaves, compute_merkle_levels, get_batch
from runtime.ml.engine import apply_train_step_, build_network, compute_accuracy, init_state
from runtime.ml.errors import BatchMismatchError, MerkleProofError, StateHashMismatchError, StepRangeError
from runtime.ml.fixed import Fx
from runtime.ml.job import HyperParams
from runtime.ml.layers import FLOAT, INT8, ConvLayer, LinearLayer, MaxPoolLayer
from runtime.ml.models import get_model
from runtime.ml.segments import (
    compute_commitment,
    get_checkpoint_proof,
    initial_state,
    iter_checkpoints,
    replay_step,
    run_segment,
    verify_checkpoint_proof,
    verify_segment,
)
from runtime.ml.state import compute_state_hash, decode_state

HASH_SCRIPT = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from gensyn_node.ml.datasets import load_mnist, make_subset
from runtime.ml.data import get_batch
from runtime.ml.engine import apply_train_step_, build_network
from runtime.ml.job import HyperParams, TrainingJob
from runtime.ml.models import get_model
from runtime.ml.segments import initial_state
from runtime.ml.state import compute_state_hash
subset = make_subset(load_mnist().train, 512, seed=7)
out = {}
for name, steps in (("mlp", 12), ("cnn", 3)):
    for backend in ("int8", "float"):
        job = TrainingJob(get_model(name).model_id, subset.root, b"\\x05" * 32, HyperParams(batch_size=64), steps, steps)
        net = build_network(get_model(name), 64, backend)
        state = initial_state(job)
        for step in range(steps):
            images, labels = get_batch(subset, job.seed, step, 64)
            apply_train_step_(state, images, labels, job.hyper, net)
        out[name + "-" + backend] = compute_state_hash(state).hex()
out["threads"] = torch.get_num_threads()
print(json.dumps(out))
"""


def test_same_hash_with_one_and_two_threads():
    results = []
    for threads in (1, 2):
        proc = subprocess.run([sys.executable, "-c", HASH_SCRIPT, str(threads)], capture_output=True,
                              text=True, timeout=240, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert [r.pop("threads") for r in results] == [1, 2]
    assert results[0] == results[1]
    assert results[0]["mlp-int8"] == results[0]["mlp-float"]
    assert results[0]["cnn-int8"] == results[0]["cnn-float"]


def _replan(net, plan: str):
    """A copy of a float-backend `net` whose products all run as float64 ("f64") or in the
    finest float32 chunks that divide K ("fine"); both are exact, so the bits must not change."""
    other = copy.copy(net)
    other.layers = []
    for layer in net.layers:
        layer = copy.copy(layer)
        if isinstance(layer, (LinearLayer, ConvLayer)):
            for attr in ("fwd", "dw", "dx"):
                p = getattr(layer, attr)
                if plan == "f64":
                    chunk = 0
                else:
                    chunk = next((c for c in (8, 5, 2) if p.k % c == 0 and c < p.k), p.k) if p.chunk else 0
                setattr(layer, attr, dataclasses.replace(p, chunk=chunk))
        other.layers.append(layer)
    return other


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_backends_plans_and_chunk_orders_give_the_same_state(subset, make_job, model):
    """int8 products, float32 products, float32 in fine chunks and float64 products: one hash."""
    job = make_job(subset, model=model, steps=3, every=3, batch_size=32)
    spec = get_model(model)
    nets = {
        "int8": build_network(spec, 32, INT8),
        "float": build_network(spec, 32, FLOAT),
        "f64": _replan(build_network(spec, 32, FLOAT), "f64"),
        "fine": _replan(build_network(spec, 32, FLOAT), "fine"),
    }
    hashes = {}
    for name, net in nets.items():
        state = initial_state(job)
        for step in range(job.steps):
            images, labels = get_batch(subset, job.seed, step, 32)
            apply_train_step_(state, images, labels, job.hyper, net)
        hashes[name] = compute_state_hash(state)
    assert len(set(hashes.values())) == 1, hashes


def test_max_pool_ties_go_to_the_first_position():
    """The pool's route is defined as the first maximum in row-major window order; check the
    kernels against that definition on data full of ties."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randint(-2, 3, (4, 6, 8, 3), generator=gen).to(torch.float32)  # NHWC
    layer = MaxPoolLayer()
    cache: list = []
    y = layer.forward(Fx(x.clone(), 0), torch.empty(0), cache)
    g = torch.arange(1, 4 * 3 * 4 * 3 + 1, dtype=torch.float32).view(4, 3, 4, 3)
    routed = layer.backward(Fx(g.clone(), 0), cache, True)[0].m
    expected = torch.zeros_like(x)
    for b in range(4):
        for i in range(3):
            for j in range(4):
                for c in range(3):
                    window = [(2 * i + di, 2 * j + dj) for di in (0, 1) for dj in (0, 1)]
                    values = [x[b, p, q, c].item() for p, q in window]
                    first = values.index(max(values))
                    assert y.m[b, i, j, c].item() == max(values)
                    expected[b, window[first][0], window[first][1], c] = g[b, i, j, c]
    assert torch.equal(routed, expected)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_replay_step_equals_the_runs_next_state(subset, make_job, model):
    steps = 6 if model == "mlp" else 3
    job = make_job(subset, model=model, steps=steps, every=1, batch_size=32)
    checkpoints = list(iter_checkpoints(job, subset))
    assert [c.step for c in checkpoints] == list(range(steps + 1))
    levels = compute_merkle_levels(compute_leaves(subset.images.numpy(), subset.labels.numpy()))
    for step in range(steps):
        pre = decode_state(checkpoints[step].data)
        batch = build_proven_batch(subset, levels, job.seed, step, 32)
        post = replay_step(pre, batch, job, n_samples=len(subset))
        assert compute_state_hash(post) == checkpoints[step + 1].state_hash
        assert compute_state_hash(pre) == checkpoints[step].state_hash  # replay leaves pre alone


def test_replay_rejects_bad_batches_and_states(subset, make_job):
    job = make_job(subset, steps=4, every=2, batch_size=32)
    levels = compute_merkle_levels(compute_leaves(subset.images.numpy(), subset.labels.numpy()))
    pre = initial_state(job)
    batch = build_proven_batch(subset, levels, job.seed, 0, 32)
    proofs = list(batch.proofs)
    proofs[0] = tuple(reversed(proofs[0]))
    with pytest.raises(MerkleProofError):
        replay_step(pre, type(batch)(0, batch.indices, batch.images, batch.labels, tuple(proofs)), job,
                    n_samples=len(subset))
    with pytest.raises(StepRangeError):
        replay_step(pre, build_proven_batch(subset, levels, job.seed, 1, 32), job, n_samples=len(subset))
    other_seed = build_proven_batch(subset, levels, b"\x77" * 32, 0, 32)
    with pytest.raises(BatchMismatchError):
        replay_step(pre, other_seed, job, n_samples=len(subset))


def test_segments_compose_and_commitment_proofs(subset, make_job):
    job = make_job(subset, steps=10, every=4, batch_size=32)
    checkpoints = list(iter_checkpoints(job, subset))
    assert [c.step for c in checkpoints] == [0, 4, 8, 10]
    whole = run_segment(initial_state(job), job, subset, 0, 10)
    assert compute_state_hash(whole) == checkpoints[-1].state_hash
    middle = run_segment(decode_state(checkpoints[1].data), job, subset, 4, 4)
    assert compute_state_hash(middle) == checkpoints[2].state_hash
    hashes = [c.state_hash for c in checkpoints]
    root = compute_commitment(hashes)
    for i, h in enumerate(hashes):
        verify_checkpoint_proof(root, h, i, len(hashes), get_checkpoint_proof(hashes, i))
    with pytest.raises(MerkleProofError):
        verify_checkpoint_proof(root, hashes[1], 2, len(hashes), get_checkpoint_proof(hashes, 2))
    resumed = list(iter_checkpoints(job, subset, state=decode_state(checkpoints[2].data)))
    assert [c.state_hash for c in resumed] == hashes[2:]


def test_training_learns_mnist(mnist, make_job):
    """A short run (600 steps of 64 on the MLP) passes 90% on the 10,000 test images."""
    job = make_job(mnist.train, steps=600, every=600, batch_size=64)
    state = run_segment(initial_state(job), job, mnist.train, 0, job.steps)
    accuracy = compute_accuracy(state, mnist.test.images, mnist.test.labels)
    assert accuracy > 0.90, accuracy
    assert torch.isfinite(state.params).all()


def test_verify_segment_accepts_the_run_and_rejects_a_forgery(subset, make_job):
    job = make_job(subset, steps=6, every=3, batch_size=32)
    checkpoints = list(iter_checkpoints(job, subset))
    hashes = [c.state_hash for c in checkpoints]
    assert verify_segment(checkpoints[1].data, job, subset, 1, hashes)
    forged = list(hashes)
    forged[2] = checkpoints[1].state_hash  # claims the segment changed nothing
    assert not verify_segment(checkpoints[1].data, job, subset, 1, forged)
    with pytest.raises(StateHashMismatchError):
        verify_segment(checkpoints[0].data, job, subset, 1, hashes)


@pytest.mark.parametrize("model,batch", [("mlp", 1), ("mlp", 1024), ("cnn", 2), ("cnn", 1024)])
def test_backends_agree_at_extreme_batch_sizes(model, batch):
    """Batch 1 (K = 1 products) and 1024 (a conv weight gradient over 589,824 positions, too
    long for int32 accumulators, so it runs as an exact float product) on both backends. The
    CNN at 1024 takes one step: torch's int8 kernel is ~40x slower than float32 on CPUs without
    int8 dot-product instructions, and one step already runs every product of the network."""
    spec = get_model(model)
    gen = torch.Generator().manual_seed(batch)
    images = torch.randint(0, 256, (batch, 28, 28), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, 10, (batch,), generator=gen)
    hyper = HyperParams(batch_size=batch)
    hashes = set()
    for backend in (INT8, FLOAT):
        state = init_state(spec, b"\x02" * 32)
        for _ in range(1 if (model, batch) == ("cnn", 1024) else 2):
            apply_train_step_(state, images, labels, hyper, build_network(spec, batch, backend))
        hashes.add(compute_state_hash(state))
    assert len(hashes) == 1


def test_malformed_batches_are_rejected(subset, make_job):
    job = make_job(subset, steps=2, every=1, batch_size=32)
    images, labels = get_batch(subset, job.seed, 0, 32)
    state = initial_state(job)
    bad = [
        (images.to(torch.float32), labels),
        (images[:, :27], labels),
        (images, labels.to(torch.int32)),
        (images, labels[:31]),
        (images, torch.where(labels == labels[0], 10, labels)),
        (images, torch.where(labels == labels[0], -1, labels)),
    ]
    for bad_images, bad_labels in bad:
        with pytest.raises(BatchMismatchError):
            apply_train_step_(state, bad_images, bad_labels, job.hyper)
    assert state.step == 0
