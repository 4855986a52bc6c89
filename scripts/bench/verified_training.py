"""Benchmark: what verified training costs against plain float32 training, for one MNIST job.

Native float32 (nn.Module + torch.optim.SGD) and the solver's exact engine train the same job
in lockstep (step t of one, then step t of the other, each timed on its own, so background
load falls on both alike; batch fetching is timed apart and counted in neither). At every
checkpoint the solver's state is encoded and hashed, then uploaded to a real `--dev` node
process as the solver daemon uploads it, raw bytes to `PUT /checkpoint/0x<hash>` (the whole
round trip is counted: the node's hashing, state check and synced LevelDB write are compute the
protocol spends). Then the
sampling policy runs for real: each of `--verifiers` verifiers draws `--segments-per-verifier`
distinct segments, fetches each start checkpoint from the node, re-runs it and compares hashes.
The dispute path is measured too: the bisection's re-execution (both parties re-run the
disputed segment once, hashing every step's state to answer midpoint queries) and the runtime
referee's replay of one step from a Merkle-proven batch.

    .venv/bin/python scripts/bench/verified_training.py [--model mlp] [--steps 2000]
        [--segments 10] [--verifiers 2] [--segments-per-verifier 1] [--threads 1]

Prints one JSON object: the parts in seconds, `overhead_ratio` (honest job: everything the
protocol computes / native training), `overhead_ratio_disputed` (with one dispute played to
the referee), `detection_probability` of a solver that fakes exactly one segment, and the
stake multiple (stake / bounty) above which such fraud loses money in expectation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gensyn_node.cli.jobs import DEFAULT_SEGMENTS
from gensyn_node.ml.accel import provide_host_accel
from gensyn_node.ml.datasets import load_mnist
from gensyn_node.ml.remote import NodeBlobs
from gensyn_node.ml.tuning import configure_allocator
from runtime.hashing import blake2_256
from runtime.ml.data import build_proven_batch, compute_leaves, compute_merkle_levels, get_batch
from runtime.ml.engine import apply_train_step_
from runtime.ml.job import TrainingJob, hyper_from_floats
from runtime.ml.models import get_model
from runtime.ml.native import build_native, to_native_input
from runtime.ml.segments import initial_state, replay_step, run_checkpoint_segment, run_segment
from runtime.ml.state import compute_state_hash, decode_state_checked, encode_state

ROOT = Path(__file__).resolve().parents[2]


def compute_detection_probability(n_segments: int, verifiers: int, per_verifier: int) -> float:
    """P(at least one verifier samples the one faked segment): each verifier draws `per_verifier`
    distinct segments uniformly, independently of the others."""
    miss_one = 1.0 - min(per_verifier, n_segments) / n_segments
    return 1.0 - miss_one**verifiers


def start_node(base: str) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "gensyn_node.cli", "run", "--dev", "--base-path", base,
                             "--rpc-port", str(port), "--no-prometheus"], cwd=ROOT, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    for line in proc.stderr:
        if "gensyn-node: ready" in line:
            return proc, f"http://127.0.0.1:{port}"
    raise SystemExit("the node did not start")


def train_and_commit(job: TrainingJob, splits, blobs: NodeBlobs) -> dict:
    """Native and exact training in lockstep; every exact checkpoint hashed and uploaded."""
    spec = get_model(job.model_id)
    module, opt = build_native(job)
    loss_fn = torch.nn.CrossEntropyLoss()
    state = initial_state(job)
    t = {"native_s": 0.0, "exact_s": 0.0, "data_s": 0.0, "hash_s": 0.0, "upload_s": 0.0}
    hashes: list[bytes] = []

    def checkpoint() -> None:
        t0 = time.perf_counter()
        data = encode_state(state)
        hashes.append(blake2_256(data))
        t1 = time.perf_counter()
        blobs.put(data, job.job_hash, len(hashes) - 1, blob_hash=hashes[-1])
        t["hash_s"] += t1 - t0
        t["upload_s"] += time.perf_counter() - t1

    checkpoint()
    for step in range(job.steps):
        t0 = time.perf_counter()
        images, labels = get_batch(splits.train, job.seed, step, job.hyper.batch_size)
        t1 = time.perf_counter()
        loss = loss_fn(module(to_native_input(spec, images)), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        apply_train_step_(state, images, labels, job.hyper)
        t3 = time.perf_counter()
        t["data_s"] += t1 - t0
        t["native_s"] += t2 - t1
        t["exact_s"] += t3 - t2
        if (step + 1) % job.checkpoint_every == 0 or step + 1 == job.steps:
            checkpoint()
    return {**t, "hashes": hashes}


def run_verifiers(job: TrainingJob, splits, blobs: NodeBlobs, hashes: list[bytes], verifiers: int,
                  per_verifier: int, seed: int) -> dict:
    """Each verifier's sampled segments, fetched from the node and re-run for real."""
    n_segments = len(hashes) - 1
    rng = random.Random(seed)
    fetch_s = rerun_s = 0.0
    segments_run = 0
    for _ in range(verifiers):
        for segment in rng.sample(range(n_segments), min(per_verifier, n_segments)):
            t0 = time.perf_counter()
            data = blobs.get(hashes[segment])
            if data is None:
                raise SystemExit(f"the node lost checkpoint {segment}")
            start = decode_state_checked(data, hashes[segment])
            t1 = time.perf_counter()
            end = run_checkpoint_segment(start, job, splits.train, segment)
            if compute_state_hash(end) != hashes[segment + 1]:
                raise SystemExit(f"segment {segment} did not reproduce: the engine is not exact")
            fetch_s += t1 - t0
            rerun_s += time.perf_counter() - t1
            segments_run += 1
    return {"verify_fetch_s": fetch_s, "verify_rerun_s": rerun_s, "segments_verified": segments_run}


def measure_dispute(job: TrainingJob, splits, hashes: list[bytes], segment: int) -> dict:
    """One dispute over `segment`: the bisection's re-execution (one party's re-run of the segment
    with every step's state hashed, done by both sides) and the referee's one-step replay."""
    first = job.get_checkpoint_step(segment)
    n = job.get_checkpoint_step(segment + 1) - first
    levels = compute_merkle_levels(compute_leaves(splits.train.images.numpy(), splits.train.labels.numpy()))
    state = initial_state(job) if segment == 0 else None
    if state is None:
        state = run_segment(initial_state(job), job, splits.train, 0, first)
    t0 = time.perf_counter()
    step_hashes = []
    walk = state.clone()
    for step in range(first, first + n):
        walk = run_segment(walk, job, splits.train, step, 1)
        step_hashes.append(compute_state_hash(walk))
    bisect_one_party_s = time.perf_counter() - t0
    if step_hashes[-1] != hashes[segment + 1]:
        raise SystemExit("the bisection re-run disagrees with the commitment")
    contested = first + n // 2
    pre = run_segment(state, job, splits.train, first, contested - first)
    batch = build_proven_batch(splits.train, levels, job.seed, contested, job.hyper.batch_size)
    t1 = time.perf_counter()
    replay_step(pre, batch, job, len(splits.train))
    referee_s = time.perf_counter() - t1
    return {"bisection_s": 2 * bisect_one_party_s, "referee_s": referee_s,
            "dispute_rounds": math.ceil(math.log2(max(n, 2)))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--segments", type=int, default=DEFAULT_SEGMENTS,
                        help="segments per job (checkpoints - 1); default: the job CLI's")
    parser.add_argument("--verifiers", type=int, default=2, help="verifiers drawn per job")
    parser.add_argument("--segments-per-verifier", type=int, default=1, help="segments each verifier re-runs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the verifiers' draw")
    args = parser.parse_args()
    provide_host_accel()
    configure_allocator()
    torch.set_num_threads(args.threads)
    splits = load_mnist()
    spec = get_model(args.model)
    every = -(-args.steps // args.segments)
    job = TrainingJob(spec.model_id, splits.spec.dataset_id, blake2_256(b"bench-verified"),
                      hyper_from_floats(args.lr, 0.9, 0.0, args.batch_size), args.steps, every)
    n_segments = job.n_checkpoints - 1
    with tempfile.TemporaryDirectory(prefix="gensyn-bench-") as base:
        proc, url = start_node(base)
        blobs = NodeBlobs(url)
        try:
            blobs.put(encode_state(initial_state(job)))  # the node's first state check imports torch: not ours
            train = train_and_commit(job, splits, blobs)
            verify = run_verifiers(job, splits, blobs, train["hashes"], args.verifiers,
                                   args.segments_per_verifier, args.seed)
        finally:
            blobs.close()
            proc.terminate()
            proc.wait(30)
    dispute = measure_dispute(job, splits, train["hashes"], n_segments // 2)
    native = train["native_s"]
    honest = train["exact_s"] + train["hash_s"] + train["upload_s"] + verify["verify_fetch_s"] + verify["verify_rerun_s"]
    disputed = honest + dispute["bisection_s"] + dispute["referee_s"]
    p = compute_detection_probability(n_segments, args.verifiers, args.segments_per_verifier)
    print(json.dumps({
        "model": spec.name,
        "steps": job.steps,
        "segments": n_segments,
        "checkpoint_every": every,
        "batch_size": job.hyper.batch_size,
        "policy": {"verifiers": args.verifiers, "segments_per_verifier": args.segments_per_verifier},
        "native_s": round(native, 3),
        "parts_s": {
            "solver_exact_training": round(train["exact_s"], 3),
            "checkpoint_hashing": round(train["hash_s"], 3),
            "checkpoint_upload": round(train["upload_s"], 3),
            "verifier_fetch": round(verify["verify_fetch_s"], 3),
            "verifier_reexecution": round(verify["verify_rerun_s"], 3),
            "dispute_bisection": round(dispute["bisection_s"], 3),
            "dispute_referee": round(dispute["referee_s"], 4),
        },
        "protocol_s": round(honest, 3),
        "overhead_ratio": round(honest / native, 3),
        "overhead_ratio_disputed": round(disputed / native, 3),
        "exact_ratio": round(train["exact_s"] / native, 3),
        "detection_probability": round(p, 4),
        "stake_multiple": round(1 / p, 2),
        "stake_multiple_is": "minimum solver stake / bounty: a one-segment fraud gains at most the bounty and "
                             "is caught with detection_probability",
        "dispute_rounds": dispute["dispute_rounds"],
        "checkpoint_bytes": len(encode_state(initial_state(job))),
        "segments_verified": verify["segments_verified"],
        "data_s": round(train["data_s"], 3),
        "threads": args.threads,
        "baseline": "native float32 training of the same job, same batches, in lockstep in the same run",
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
