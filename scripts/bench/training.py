"""Benchmark: the exact engine against native float32 torch on MNIST, same run, same machine.

For each model, native float32 (nn.Module + torch.optim.SGD) and the exact engine train the same
job (same initial weights, same batches, same steps) in lockstep: step t of one, then step t
of the other, each timed on its own, so background load falls on both alike. Batch fetching is
timed apart and counted in neither. The exact run is then repeated with the other thread count
to compare final hashes. Each side is timed twice: wall clock, and the thread's CPU time, which
a machine shared with other work inflates much less (the ratios of both are printed).

Then a breakdown, so that a slow machine shows where it is slow: both engines run
--profile-steps more steps (batches fetched beforehand, alternating in rounds of ten) under the
torch profiler, which gives per-step ms, the top operations by self CPU time, and the peak of
the memory each engine allocates during its steps (tensors alive beforehand, such as the
parameters, are reported apart as state_mb). Time spent outside torch operations (the fused C
loops of gensyn_node/ml/kernels.py, Python) is `outside_ops_ms`. Prints one JSON object per model.

    .venv/bin/python scripts/bench/training.py [--models mlp,cnn] [--mlp-epochs 5] [--cnn-epochs 2]
        [--threads 1] [--mlp-lr 0.02] [--cnn-lr 0.05] [--profile-steps 200] [--default-allocator]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from gensyn_node.ml.accel import provide_host_accel
from gensyn_node.ml.datasets import load_mnist
from gensyn_node.ml.tuning import configure_allocator
from runtime.hashing import blake2_256
from runtime.ml.accel import get_kernels
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
    wall = {"native": 0.0, "exact": 0.0}
    cpu = {"native": 0.0, "exact": 0.0}
    data_s = 0.0

    def native_step(images, labels) -> None:
        loss = loss_fn(module(to_native_input(spec, images)), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def exact_step(images, labels) -> None:
        apply_train_step_(state, images, labels, job.hyper)

    for step in range(job.steps):
        t0 = time.perf_counter()
        images, labels = get_batch(splits.train, job.seed, step, job.hyper.batch_size)
        data_s += time.perf_counter() - t0
        for side, fn in (("native", native_step), ("exact", exact_step)):
            w0, c0 = time.perf_counter(), time.thread_time()
            fn(images, labels)
            wall[side] += time.perf_counter() - w0
            cpu[side] += time.thread_time() - c0
    return {"native_s": wall["native"], "exact_s": wall["exact"], "native_cpu_s": cpu["native"],
            "exact_cpu_s": cpu["exact"], "data_s": data_s, "module": module, "state": state,
            "steps_fns": (native_step, exact_step)}


def profile_engines(run: dict, job: TrainingJob, splits, steps: int, top: int = 8) -> dict:
    """Both engines under the torch profiler for `steps` more steps each, in alternating rounds
    of ten; returns per-step ms, top operations and peak step memory per engine."""
    batches = [get_batch(splits.train, job.seed, i, job.hyper.batch_size) for i in range(steps)]
    out = {}
    for side, fn in zip(("native", "exact"), run["steps_fns"], strict=True):
        out[side] = {"events": [], "ms": 0.0}
    for start in range(0, steps, 10):
        for side, fn in zip(("native", "exact"), run["steps_fns"], strict=True):
            with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
                t0 = time.perf_counter()
                for images, labels in batches[start : start + 10]:
                    fn(images, labels)
                out[side]["ms"] += (time.perf_counter() - t0) * 1000
            out[side]["events"].append(prof.events())
    result = {}
    for side, rec in out.items():
        per_op: dict[str, list[float]] = {}
        peak = 0
        self_us = 0.0
        for events in rec["events"]:
            live = 0
            for e in sorted(events, key=lambda e: e.time_range.start):
                live += e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage
                peak = max(peak, live)
                if e.name == "[memory]" or e.name.startswith("Optimizer.") or "#" in e.name:
                    continue
                entry = per_op.setdefault(e.name, [0.0, 0])
                entry[0] += e.self_cpu_time_total
                entry[1] += 1
                self_us += e.self_cpu_time_total
        ranked = sorted(per_op.items(), key=lambda kv: -kv[1][0])[:top]
        step_ms = rec["ms"] / steps
        result[side] = {
            "profiled_ms_per_step": round(step_ms, 3),
            "outside_ops_ms": round(max(0.0, step_ms - self_us / 1000 / steps), 3),
            "peak_step_mb": round(peak / 2**20, 2),
            "top_ops": [{"op": name, "ms_per_step": round(us / 1000 / steps, 3), "calls_per_step": round(n / steps, 1)}
                        for name, (us, n) in ranked],
        }
    return result


def measure_checkpoint_hash_ms(state) -> float:
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        blake2_256(encode_state(state))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def bench_model(name: str, epochs: float, splits, threads: int, seed: str, lr: float,
                profile_steps: int) -> dict:
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
    breakdown = profile_engines(run, job, splits, profile_steps) if profile_steps else {}
    module = run["module"]
    native_state_mb = sum(p.numel() * p.element_size() * 3 for p in module.parameters()) / 2**20  # w, grad, buf
    return {
        "model": name,
        "native_s": round(run["native_s"], 3),
        "exact_s": round(run["exact_s"], 3),
        "ratio": round(run["exact_s"] / run["native_s"], 3),
        "native_ms_per_step": round(run["native_s"] / steps * 1000, 3),
        "exact_ms_per_step": round(run["exact_s"] / steps * 1000, 3),
        "native_cpu_s": round(run["native_cpu_s"], 3),
        "exact_cpu_s": round(run["exact_cpu_s"], 3),
        "cpu_ratio": round(run["exact_cpu_s"] / run["native_cpu_s"], 3),
        "native_state_mb": round(native_state_mb, 2),
        "exact_state_mb": round((state.params.numel() + state.momentum.numel()) * 8 / 2**20, 2),
        "breakdown": breakdown,
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
        "fused_kernels": get_kernels() is not None,
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
    parser.add_argument("--profile-steps", type=int, default=200, help="steps of each engine profiled (0: none)")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc malloc's thresholds alone (see gensyn_node/ml/tuning.py)")
    args = parser.parse_args()
    provide_host_accel()
    allocator = "glibc default" if args.default_allocator or not configure_allocator() else "glibc tuned"
    splits = load_mnist()
    for name in args.models.split(","):
        epochs = args.mlp_epochs if name == "mlp" else args.cnn_epochs
        lr = args.mlp_lr if name == "mlp" else args.cnn_lr
        result = bench_model(name, epochs, splits, args.threads, args.seed, lr, args.profile_steps)
        result["allocator"] = allocator
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
