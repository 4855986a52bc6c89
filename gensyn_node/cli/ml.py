"""`gensyn-node train`, `verify-segment` and `job ...`: the worker cores from the command line.

`train` is the solver core (`gensyn_node/ml/solver.py`) in its own process: a progress bar, every checkpoint
stored in a training directory (`gensyn_node/ml/workdir.py`) and, with `--rpc`, uploaded to a node; run again
on the same directory it resumes from the last stored checkpoint. `--cheat` makes it a
dishonest solver (`gensyn_node/ml/cheats.py`). `verify-segment` is the verifier core (`gensyn_node/ml/verifier.py`): it
checks one segment of such a directory, reading the start checkpoint from the directory or,
with `--rpc`, from a node (exit 0 match, 1 mismatch or unavailable). `job model` and `job plot`
turn a finished directory (or, by job id, a settled job on chain: gensyn_node/cli/jobs.py) into a
torch model file and a loss/accuracy curve (`gensyn_node/ml/export.py`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gensyn_node.cli.errors import CliError
from gensyn_node.ml.workdir import (
    CHECKPOINT_DIR,
    HASHES_FILE,
    JOB_FILE,
    REPORT_FILE,
    TrainingDir,
    WorkDirError,
)

__all__ = ["CHECKPOINT_DIR", "HASHES_FILE", "JOB_FILE", "REPORT_FILE", "add_commands", "checkpoint_path"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Adds `train`, `verify-segment` and `job` to the top-level parser."""
    train = sub.add_parser("train", help="train a job with the exact engine (the solver core)")
    train.add_argument("--model", default="mlp", help="registered architecture (mlp, cnn)")
    train.add_argument("--dataset", default="mnist", help="registered data set")
    train.add_argument("--steps", type=int, required=True, help="training steps")
    train.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    train.add_argument("--out", required=True, help="training directory (resumed if it holds this job)")
    train.add_argument("--seed", default="0", help="job seed (any string; hashed to 32 bytes)")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    train.add_argument("--lr", type=float, default=0.05, help="learning rate (rounded to 1/65536)")
    train.add_argument("--momentum", type=float, default=0.9, help="momentum (rounded to 1/65536)")
    train.add_argument("--weight-decay", type=float, default=0.0, help="weight decay (rounded to 1/65536)")
    train.add_argument("--batch-size", type=int, default=64, help="batch size (a power of two)")
    train.add_argument("--device", default="cpu", help="cpu or cuda")
    train.add_argument("--cache-dir", default=None, help="where decoded data sets are cached")
    train.add_argument("--rpc", default=None, help="node RPC URL to upload every checkpoint to")
    train.add_argument("--cheat", default=None, metavar="MODE",
                       help="dishonest solver for tests and demos: fake-segment[:I], skip-steps[:K], other-data")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(handler=run_train)

    verify = sub.add_parser("verify-segment", help="re-run one segment of a training directory (the verifier core)")
    verify.add_argument("--dir", required=True, help="directory written by `train` (job.json, checkpoints.json)")
    verify.add_argument("--segment", type=_segment_list, required=True, metavar="I[,J...]",
                        help="segment indices (segment i: checkpoint i -> i+1); one verdict line each")
    verify.add_argument("--rpc", default=None, help="fetch the start checkpoint from this node instead")
    verify.add_argument("--cheat", choices=["lazy"], default=None, help="lazy: attest without re-running")
    verify.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    verify.add_argument("--device", default="cpu", help="cpu or cuda")
    verify.add_argument("--cache-dir", default=None, help="where decoded data sets are cached")
    verify.set_defaults(handler=run_verify_segment)

    from gensyn_node.cli import jobs

    job = sub.add_parser("job", help="training jobs on chain: submit, status, list, model, plot")
    job_sub = job.add_subparsers(dest="job_command", metavar="SUBCOMMAND")
    jobs.add_commands(job_sub)
    model = job_sub.add_parser("model", help="write the final weights as a torch state_dict of the native model")
    jobs.add_id_arguments(model)
    model.add_argument("--out", required=True, help="file to write (torch.save)")
    model.add_argument("--cache-dir", default=None, help="where decoded data sets are cached")
    model.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    model.set_defaults(handler=run_job_model)
    plot = job_sub.add_parser("plot", help="draw the loss and accuracy curves as a PNG")
    jobs.add_id_arguments(plot)
    plot.add_argument("--out", required=True, help="PNG file to write")
    plot.add_argument("--cache-dir", default=None, help="where decoded data sets are cached")
    plot.set_defaults(handler=run_job_plot)


def _segment_list(text: str) -> list[int]:
    try:
        segments = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of segment indices: {text!r}") from None
    if len(set(segments)) != len(segments):
        raise argparse.ArgumentTypeError(f"segment listed twice: {text!r}")
    return segments


def checkpoint_path(out: Path, index: int) -> Path:
    return TrainingDir(out).checkpoint_path(index)


def _seed_bytes(seed: str) -> bytes:
    from runtime.hashing import blake2_256

    return blake2_256(b"gensyn-cli-seed:" + seed.encode())


def _setup_torch(threads: int | None, device: str):  # type: ignore[no-untyped-def]
    import torch

    from gensyn_node.ml.accel import provide_host_accel
    from gensyn_node.ml.tuning import configure_allocator

    configure_allocator()
    provide_host_accel()
    if threads is not None:
        if threads < 1:
            raise CliError("--threads must be at least 1")
        torch.set_num_threads(threads)
    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
        raise CliError(f"device {device!r} is not available")
    return torch


def _print_event(name: str, fields: dict[str, Any]) -> None:
    """One line per event on stderr, key=value, so a supervisor (or a test) can follow the run."""
    text = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"solver event={name} {text}", file=sys.stderr, flush=True)


def run_train(args: argparse.Namespace) -> int:
    _setup_torch(args.threads, args.device)
    from gensyn_node.ml.cheats import CheatError, parse_cheat
    from gensyn_node.ml.datasets import load_dataset
    from gensyn_node.ml.remote import BlobError, NodeBlobs
    from gensyn_node.ml.solver import run_solver
    from runtime.ml.engine import compute_accuracy
    from runtime.ml.errors import MlError
    from runtime.ml.job import TrainingJob, hyper_from_floats, validate_job
    from runtime.ml.models import get_model
    from runtime.ml.segments import compute_commitment
    from runtime.ml.state import decode_state

    workdir = TrainingDir(args.out)
    blobs = NodeBlobs(args.rpc) if args.rpc else None
    try:
        spec = get_model(args.model)
        splits = load_dataset(args.dataset, args.cache_dir)
        hyper = hyper_from_floats(args.lr, args.momentum, args.weight_decay, args.batch_size)
        job = TrainingJob(spec.model_id, splits.spec.dataset_id, _seed_bytes(args.seed), hyper,
                          args.steps, args.checkpoint_every)
        validate_job(job)
        cheat = parse_cheat(args.cheat, job) if args.cheat else None
        result = run_solver(job, splits.train, workdir, blobs=blobs, cheat=cheat, progress=not args.no_progress,
                            device=args.device, on_event=_print_event)
        final = decode_state(result.final).to(args.device)
        accuracy = compute_accuracy(final, splits.test.images.to(args.device), splits.test.labels.to(args.device))
    except (MlError, CheatError, WorkDirError, BlobError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        if blobs is not None:
            blobs.close()
    report = {
        "model": spec.name,
        "dataset": splits.spec.name,
        "steps": job.steps,
        "checkpoint_every": job.checkpoint_every,
        "test_accuracy": accuracy,
        "state_hash": result.hashes[-1].hex(),
        "commitment_root": compute_commitment(result.hashes).hex(),
        "job_hash": job.job_hash.hex(),
        "train_seconds": round(result.seconds, 3),
        "resumed_from_step": result.resumed_from_step,
        "uploaded_to": args.rpc,
    }
    if args.cheat:
        report["cheat"] = args.cheat
    try:
        workdir.write_report(report)
    except WorkDirError as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps(report))
    return 0


def run_verify_segment(args: argparse.Namespace) -> int:
    _setup_torch(args.threads, args.device)
    from gensyn_node.ml.datasets import load_dataset
    from gensyn_node.ml.remote import BlobError, NodeBlobs
    from gensyn_node.ml.verifier import MATCH, verify_segment_from
    from runtime.ml.data import get_dataset_spec
    from runtime.ml.errors import MlError
    from runtime.ml.segments import compute_commitment

    workdir = TrainingDir(args.dir)
    try:
        job = workdir.read_job()
        hashes = workdir.read_hashes()
        report = workdir.read_report()
    except WorkDirError as exc:
        raise CliError(str(exc)) from exc
    if compute_commitment(hashes).hex() != report.get("commitment_root"):
        print("mismatch: checkpoint hashes do not match the report's commitment root")
        return 1
    for segment in args.segment:
        if not 0 <= segment < len(hashes) - 1:
            raise CliError(f"segment {segment} outside 0..{len(hashes) - 2}")
    blobs = NodeBlobs(args.rpc) if args.rpc else None
    index_of = {h: i for i, h in enumerate(hashes)}

    def fetch(blob_hash: bytes) -> bytes | None:
        if blobs is not None:
            return blobs.get(blob_hash)
        return workdir.read_checkpoint(index_of[blob_hash])

    all_match = True
    try:
        splits = load_dataset(get_dataset_spec(job.dataset_id).name, args.cache_dir)
        for segment in args.segment:
            verdict = verify_segment_from(fetch, job, splits.train, segment, hashes, device=args.device,
                                          lazy=args.cheat == "lazy")
            print(json.dumps(verdict.to_json()), flush=True)
            all_match = all_match and verdict.result == MATCH
    except (MlError, BlobError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        if blobs is not None:
            blobs.close()
    return 0 if all_match else 1


def _job_source(args: argparse.Namespace) -> None:
    if (args.id is None) == (args.dir is None):
        raise CliError("give a job id (read over --rpc) or --dir (a local training directory), not both")


def run_job_model(args: argparse.Namespace) -> int:
    _job_source(args)
    _setup_torch(args.threads, "cpu")
    from gensyn_node.cli.jobs import export_job_model
    from gensyn_node.ml.export import ExportError, export_model

    try:
        if args.id is not None:
            summary = export_job_model(args.rpc, args.id, Path(args.out), args.cache_dir)
        else:
            summary = export_model(TrainingDir(args.dir), Path(args.out), args.cache_dir)
    except (ExportError, WorkDirError) as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps(summary))
    return 0


def run_job_plot(args: argparse.Namespace) -> int:
    _job_source(args)
    from gensyn_node.cli.jobs import plot_job
    from gensyn_node.ml.export import ExportError, plot_metrics

    try:
        if args.id is not None:
            summary = plot_job(args.rpc, args.id, Path(args.out), args.cache_dir)
        else:
            summary = plot_metrics(TrainingDir(args.dir), Path(args.out))
    except (ExportError, WorkDirError) as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps(summary))
    return 0
