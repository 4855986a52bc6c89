"""Reproducibility across devices: train the same job on CPU and, when present, on CUDA, and
print both final state hashes (they must be equal). One JSON object per model.

The CPU runs int8 products (torch._int_mm); CUDA runs exact float32 products (TF32 or not):
different kernels, the same integers, so the same hash. The CPU also runs the float backend,
CUDA's arithmetic, as a cross-check where no GPU is at hand.

    .venv/bin/python scripts/bench/repro_gpu.py [--steps 200] [--models mlp,cnn]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gensyn_node.ml.accel import provide_host_accel
from gensyn_node.ml.datasets import load_mnist
from runtime.hashing import blake2_256
from runtime.ml.engine import get_backend
from runtime.ml.job import HyperParams, TrainingJob
from runtime.ml.models import get_model
from runtime.ml.segments import initial_state, run_segment
from runtime.ml.state import compute_state_hash


def train_hash(job: TrainingJob, splits, device: str, backend: str | None = None) -> tuple[str, float]:
    started = time.perf_counter()
    state = run_segment(initial_state(job, device), job, splits.train, 0, job.steps, backend=backend)
    if device == "cuda":
        torch.cuda.synchronize()
    return compute_state_hash(state).hex(), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--models", default="mlp,cnn")
    args = parser.parse_args()
    provide_host_accel()
    splits = load_mnist()
    cuda = torch.cuda.is_available()
    for name in args.models.split(","):
        spec = get_model(name)
        job = TrainingJob(spec.model_id, splits.spec.dataset_id, blake2_256(b"repro-gpu"), HyperParams(),
                          args.steps, args.steps)
        cpu_hash, cpu_s = train_hash(job, splits, "cpu")
        cpu_float_hash, _ = train_hash(job, splits, "cpu", backend="float")
        result = {"model": name, "steps": args.steps, "cpu": cpu_hash, "cpu_backend": get_backend("cpu"),
                  "cpu_s": round(cpu_s, 3), "cpu_float_backend": cpu_float_hash,
                  "cpu_backends_equal": cpu_float_hash == cpu_hash}
        if cuda:
            cuda_hash, cuda_s = train_hash(job, splits, "cuda")
            result.update({"cuda": cuda_hash, "cuda_backend": get_backend("cuda"), "cuda_s": round(cuda_s, 3),
                           "cuda_device": torch.cuda.get_device_name(0), "equal": cuda_hash == cpu_hash})
        else:
            result.update({"cuda": None, "cuda_status": "unavailable"})
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
