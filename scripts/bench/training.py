"""Benchmark: the exact engine against native float32 torch on MNIST, same run, same machine.

For each model, native float32 (nn.Module + torch.optim.SGD) and the exact engine train the same
job (same initial weights, same batches, same steps) in lockstep: step t of one, then step t
of the other, each timed on its own, so background load falls on both alike. Batch fetching is
timed apart and counted in neither. The exact run is then repeated with the other thread count
to compare final hashes. Prints one JSON object per model.

    .venv/bin/python scripts/bench/training.py [--models mlp,cnn] [--mlp-epochs 5] [--cnn-epochs 2]
        [--threads 1] [--mlp-lr 0.02] [--cnn-lr 0.05] [--default-allocator]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from gensyn_node.ml.datasets import load_mnist
from gensyn_node.ml.tuning import configure_allocator
from runtime.hashing import blake2_256
from runtime.ml.data import get_batch
from runtime.ml.engine import apply_train_step_, compute_accuracy, get_backend
from runtime.ml.job import TrainingJob, hyper_from_floats
from runtime.ml.models import get_model
from runtime.ml.native import build_native, compute_native_accuracy, to_native_input
from runtime.ml.segments import initial_state, run_segment
from runtime.ml.state import compute_state_hash, encode_state


def run_lockstep(job: TrainingJob, splits) -> dict:
    """Native and exact training of `job`, interleaved step by step; returns times and models."""
    spec = get_model(job.model_id)
    module, opt = build_native(job)
    loss_fn = torch.nn.CrossEntropyLoss()
    state = initial_state(job)
    native_s = exact_s = data_s = 0.0
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
        data_s += t1 - t0
        native_s += t2 - t1
        exact_s += t3 - t2
    return {"native_s": native_s, "exact_s": exact_s, "data_s": data_s, "module": module, "state": state}


def measure_checkpoint_hash_ms(state) -> float:
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        blake2_256(encode_state(state))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def bench_model(name: str, epochs: float, splits, threads: int, seed: str, lr: float) -> dict:
    spec = get_model(name)
    batch = 64
    steps = int(epochs * (len(splits.train) // batch))
    hyper = hyper_from_floats(lr, 0.9, 0.0, batch)
    job = TrainingJob(spec.model_id, splits.spec.dataset_id, blake2_256(seed.encode()), hyper, steps, steps)
    torch.set_num_threads(threads)
    run = run_lockstep(job, splits)
    state = run["state"]
    hash_main = compute_state_hash(state).hex()
    other = 2 if threads == 1 else 1
    torch.set_num_threads(other)
    t0 = time.perf_counter()
    state_other = run_segment(initial_state(job), job, splits.train, 0, steps)
    other_s = time.perf_counter() - t0
    hash_other = compute_state_hash(state_other).hex()
    torch.set_num_threads(threads)
    hashes = {threads: hash_main, other: hash_other}
    native_acc = compute_native_accuracy(run["module"], spec, splits.test.images, splits.test.labels)
    exact_acc = compute_accuracy(state, splits.test.images, splits.test.labels)
    return {
        "model": name,
        "native_s": round(run["native_s"], 3),
        "exact_s": round(run["exact_s"], 3),
        "ratio": round(run["exact_s"] / run["native_s"], 3),
        "native_test_acc": round(native_acc, 4),
        "exact_test_acc": round(exact_acc, 4),
        "hash_1_thread": hashes[1],
        "hash_2_threads": hashes[2],
        "checkpoint_hash_ms": round(measure_checkpoint_hash_ms(state), 3),
        "hashes_equal": hashes[1] == hashes[2],
        "steps": steps,
        "epochs": epochs,
        "batch_size": batch,
        "lr": hyper.lr_q16 / 65536,
        "momentum": hyper.momentum_q16 / 65536,
        "timed_threads": threads,
        "exact_s_other_threads": round(other_s, 3),
        "data_s": round(run["data_s"], 3),
        "backend": get_backend("cpu"),
        "device": "cpu",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--mlp-epochs", type=float, default=5.0)
    parser.add_argument("--cnn-epochs", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the timed run")
    parser.add_argument("--seed", default="bench")
    parser.add_argument("--mlp-lr", type=float, default=0.02)
    parser.add_argument("--cnn-lr", type=float, default=0.05)
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc malloc's thresholds alone (see gensyn_node/ml/tuning.py)")
    args = parser.parse_args()
    allocator = "glibc default" if args.default_allocator or not configure_allocator() else "glibc tuned"
    splits = load_mnist()
    for name in args.models.split(","):
        epochs = args.mlp_epochs if name == "mlp" else args.cnn_epochs
        lr = args.mlp_lr if name == "mlp" else args.cnn_lr
        result = bench_model(name, epochs, splits, args.threads, args.seed, lr)
        result["allocator"] = allocator
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
