"""`gensyn-node train` and `gensyn-node verify-segment`: the exact engine from the command line.

`train` runs a job locally the way a solver would: a progress bar, a checkpoint file every k
steps (the canonical state bytes, named by index), the list of checkpoint hashes and its Merkle
root (the commitment), and a report with the test accuracy. `verify-segment` does a verifier's
work on such a directory: it checks one checkpoint against the committed hashes, re-runs the
segment and compares the end state's hash bit for bit (exit 0 match, 1 mismatch).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gensyn_node.cli.errors import CliError

JOB_FILE = "job.json"
HASHES_FILE = "checkpoints.json"
REPORT_FILE = "report.json"
CHECKPOINT_DIR = "checkpoints"
METRICS_EVERY = 25


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Adds `train` and `verify-segment` to the top-level parser."""
    train = sub.add_parser("train", help="train a model locally with the exact engine")
    train.add_argument("--model", default="mlp", help="registered architecture (mlp, cnn)")
    train.add_argument("--dataset", default="mnist", help="registered data set")
    train.add_argument("--steps", type=int, required=True, help="training steps")
    train.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    train.add_argument("--out", required=True, help="output directory")
    train.add_argument("--seed", default="0", help="job seed (any string; hashed to 32 bytes)")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    train.add_argument("--lr", type=float, default=0.05, help="learning rate (rounded to 1/65536)")
    train.add_argument("--momentum", type=float, default=0.9, help="momentum (rounded to 1/65536)")
    train.add_argument("--weight-decay", type=float, default=0.0, help="weight decay (rounded to 1/65536)")
    train.add_argument("--batch-size", type=int, default=64, help="batch size (a power of two)")
    train.add_argument("--device", default="cpu", help="cpu or cuda")
    train.add_argument("--cache-dir", default=None, help="where decoded data sets are cached")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(handler=run_train)

    verify = sub.add_parser("verify-segment", help="re-run one segment of a training directory")
    verify.add_argument("--dir", required=True, help="directory written by `train`")
    verify.add_argument("--segment", type=int, required=True, help="segment index (checkpoint i -> i+1)")
    verify.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    verify.add_argument("--device", default="cpu", help="cpu or cuda")
    verify.add_argument("--cache-dir", default=None, help="where decoded data sets are cached")
    verify.set_defaults(handler=run_verify_segment)


def _seed_bytes(seed: str) -> bytes:
    from runtime.hashing import blake2_256

    return blake2_256(b"gensyn-cli-seed:" + seed.encode())


def _job_to_json(job) -> dict:
    h = job.hyper
    return {
        "model_id": job.model_id,
        "dataset_id": job.dataset_id.hex(),
        "seed": job.seed.hex(),
        "hyper": {"lr_q16": h.lr_q16, "momentum_q16": h.momentum_q16,
                  "weight_decay_q16": h.weight_decay_q16, "batch_size": h.batch_size},
        "steps": job.steps,
        "checkpoint_every": job.checkpoint_every,
    }


def _job_from_json(data: dict):
    from runtime.ml.job import HyperParams, TrainingJob

    try:
        return TrainingJob(
            model_id=int(data["model_id"]),
            dataset_id=bytes.fromhex(data["dataset_id"]),
            seed=bytes.fromhex(data["seed"]),
            hyper=HyperParams(**{k: int(v) for k, v in data["hyper"].items()}),
            steps=int(data["steps"]),
            checkpoint_every=int(data["checkpoint_every"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CliError(f"bad {JOB_FILE}: {exc}") from exc


def _setup_torch(threads: int | None, device: str):
    import torch

    from gensyn_node.ml.tuning import configure_allocator

    configure_allocator()
    if threads is not None:
        if threads < 1:
            raise CliError("--threads must be at least 1")
        torch.set_num_threads(threads)
    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
        raise CliError(f"device {device!r} is not available")
    return torch


def checkpoint_path(out: Path, index: int) -> Path:
    return out / CHECKPOINT_DIR / f"{index:06d}.ckpt"


def run_train(args: argparse.Namespace) -> int:
    _setup_torch(args.threads, args.device)
    from tqdm import tqdm

    from gensyn_node.ml.datasets import load_dataset
    from runtime.ml.engine import compute_accuracy
    from runtime.ml.errors import MlError
    from runtime.ml.job import TrainingJob, hyper_from_floats, validate_job
    from runtime.ml.models import get_model
    from runtime.ml.segments import compute_commitment, iter_checkpoints
    from runtime.ml.state import decode_state

    out = Path(args.out)
    try:
        spec = get_model(args.model)
        splits = load_dataset(args.dataset, args.cache_dir)
        hyper = hyper_from_floats(args.lr, args.momentum, args.weight_decay, args.batch_size)
        job = TrainingJob(spec.model_id, splits.spec.dataset_id, _seed_bytes(args.seed), hyper,
                          args.steps, args.checkpoint_every)
        validate_job(job)
        (out / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        (out / JOB_FILE).write_text(json.dumps(_job_to_json(job), indent=2) + "\n")
        bar = tqdm(total=job.steps, unit="step", disable=args.no_progress, dynamic_ncols=True)
        window = {"loss": 0.0, "correct": 0, "count": 0, "pending": []}

        def on_step(step: int, metrics) -> None:
            window["pending"].append(metrics)
            bar.update(1)
            if len(window["pending"]) >= METRICS_EVERY or step == job.steps - 1:
                loss = sum(float(m.loss_sum) for m in window["pending"])
                correct = sum(int(m.correct) for m in window["pending"])
                count = sum(m.count for m in window["pending"])
                window["pending"].clear()
                bar.set_postfix(loss=f"{loss / count:.4f}", acc=f"{correct / count:.3f}")

        started = time.perf_counter()
        hashes: list[str] = []
        last = None
        try:
            for cp in iter_checkpoints(job, splits.train, on_step=on_step, device=args.device):
                checkpoint_path(out, cp.index).write_bytes(cp.data)
                hashes.append(cp.state_hash.hex())
                last = cp
        finally:
            bar.close()
        seconds = time.perf_counter() - started
        final = decode_state(last.data).to(args.device)
        accuracy = compute_accuracy(final, splits.test.images.to(args.device), splits.test.labels.to(args.device))
    except MlError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot write to {out}: {exc}") from exc
    commitment = compute_commitment([bytes.fromhex(h) for h in hashes])
    (out / HASHES_FILE).write_text(json.dumps(hashes, indent=2) + "\n")
    report = {
        "model": spec.name,
        "dataset": splits.spec.name,
        "steps": job.steps,
        "checkpoint_every": job.checkpoint_every,
        "test_accuracy": accuracy,
        "state_hash": last.state_hash.hex(),
        "commitment_root": commitment.hex(),
        "train_seconds": round(seconds, 3),
        "steps_per_second": round(job.steps / seconds, 2) if seconds > 0 else None,
    }
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))
    return 0


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc


def run_verify_segment(args: argparse.Namespace) -> int:
    _setup_torch(args.threads, args.device)
    from gensyn_node.ml.datasets import load_dataset
    from runtime.ml.data import get_dataset_spec
    from runtime.ml.errors import MlError
    from runtime.ml.segments import compute_commitment, run_checkpoint_segment
    from runtime.ml.state import compute_state_hash, decode_state_checked

    out = Path(args.dir)
    job = _job_from_json(_read_json(out / JOB_FILE))
    hashes = [bytes.fromhex(h) for h in _read_json(out / HASHES_FILE)]
    report = _read_json(out / REPORT_FILE)
    if compute_commitment(hashes).hex() != report.get("commitment_root"):
        print("mismatch: checkpoint hashes do not match the report's commitment root")
        return 1
    if not 0 <= args.segment < len(hashes) - 1:
        raise CliError(f"segment {args.segment} outside 0..{len(hashes) - 2}")
    try:
        data = checkpoint_path(out, args.segment).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read checkpoint {args.segment}: {exc}") from exc
    try:
        splits = load_dataset(get_dataset_spec(job.dataset_id).name, args.cache_dir)
        start = decode_state_checked(data, hashes[args.segment]).to(args.device)
        started = time.perf_counter()
        end = run_checkpoint_segment(start, job, splits.train, args.segment)
        seconds = time.perf_counter() - started
    except MlError as exc:
        print(f"mismatch: segment {args.segment}: {type(exc).__name__}: {exc}")
        return 1
    got = compute_state_hash(end)
    expected = hashes[args.segment + 1]
    verdict = "match" if got == expected else "mismatch"
    print(json.dumps({"segment": args.segment, "result": verdict, "expected": expected.hex(),
                      "got": got.hex(), "seconds": round(seconds, 3)}))
    return 0 if got == expected else 1
