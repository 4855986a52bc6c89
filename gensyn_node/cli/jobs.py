"""`gensyn-node job submit|status|list|model|plot`: a submitter's view of its training jobs on
a node (`--rpc URL`). `submit` signs `MlCompute.submit_job` (bounty in escrow) and prints the
job id; with `--wait` it follows the job to its final status with a live status line. `model`
fetches the settled job's final checkpoint over RPC (checked against the chain's state hash)
and writes a torch file of the native model; `plot` draws test loss and accuracy per committed
checkpoint (each fetched and checked against the commitment). Both also take `--dir` for a
local training directory (gensyn_node/cli/ml.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from gensyn_node.cli.client import parse_amount
from gensyn_node.cli.errors import CliError
from gensyn_node.cli.workers import parse_key

MODELS = {"mlp": 1, "cnn": 2}  # runtime/pallets/ml_compute/registry.py's ids, without torch
WAIT_POLL_S = 0.5
# Segments of a job unless --checkpoint-every says otherwise. What the protocol computes beyond
# the training is verifiers x (1/n) of it in re-runs plus (n + 1) checkpoints encoded, hashed and
# uploaded (about 0.02 of the MLP's native training each, scripts/bench/verified_training.py):
# with the default 2 verifiers the sum is least near n = 9, and 10 segments also catch a
# one-segment fraud more often than 20 do (0.19 against 0.10), so they need half the stake.
DEFAULT_SEGMENTS = 10


def add_commands(job_sub: argparse._SubParsersAction) -> None:
    submit = job_sub.add_parser("submit", help="post a training job with its bounty in escrow")
    submit.add_argument("--model", default="mlp", choices=sorted(MODELS))
    submit.add_argument("--dataset", default="mnist")
    submit.add_argument("--steps", type=int, required=True)
    submit.add_argument("--checkpoint-every", type=int, default=None,
                        help=f"default: 1/{DEFAULT_SEGMENTS} of the steps (see DEFAULT_SEGMENTS)")
    submit.add_argument("--bounty", required=True, help="plancks, or <n>u in whole units")
    submit.add_argument("--lr", type=float, default=0.05)
    submit.add_argument("--momentum", type=float, default=0.9)
    submit.add_argument("--batch-size", type=int, default=64)
    submit.add_argument("--verifiers", type=int, default=2, help="verifiers drawn to check the job")
    submit.add_argument("--segments", type=int, default=1, help="segments each verifier re-runs")
    submit.add_argument("--fee", default="0", help="fee per attestation (plancks or <n>u)")
    submit.add_argument("--deadline", type=int, default=200, help="blocks the assigned solver has to commit")
    submit.add_argument("--from", dest="signer", default="alice", help="submitter: dev name or secret URI")
    submit.add_argument("--wait", action="store_true", help="follow the job to settlement")
    submit.add_argument("--timeout", type=float, default=1800.0, help="--wait gives up after this many seconds")
    _rpc(submit)
    submit.set_defaults(handler=cmd_submit)

    status = job_sub.add_parser("status", help="one job's status, solver, commitment and dispute (JSON)")
    status.add_argument("id", type=int)
    _rpc(status)
    status.set_defaults(handler=cmd_status)

    listing = job_sub.add_parser("list", help="jobs on chain, one line each")
    listing.add_argument("--status", default=None, help="only jobs in this status (Pending, Assigned, ...)")
    _rpc(listing)
    listing.set_defaults(handler=cmd_list)


def add_id_arguments(parser: argparse.ArgumentParser) -> None:
    """`job model` and `job plot`: a job id on chain, or a local --dir."""
    parser.add_argument("id", type=int, nargs="?", default=None, help="job id on chain (with --rpc)")
    parser.add_argument("--dir", default=None, help="a local training directory instead of a job id")
    _rpc(parser)


def _rpc(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rpc", default="http://127.0.0.1:9944", help="the node's JSON-RPC URL")


def _view(url: str, key=None):  # type: ignore[no-untyped-def]
    from gensyn_node.ml.chain import ChainView

    return ChainView(url, key)


def summarize(job: dict[str, Any]) -> dict[str, Any]:
    out = {k: job.get(k) for k in ("id", "status", "submitter", "solver", "model", "steps", "checkpointEvery",
                                   "bounty", "minSolverStake", "commitBy", "attestEnd", "challengeEnd", "disputes")}
    if job.get("commitment"):
        c = job["commitment"]
        out["commitment"] = {"root": c["checkpointRoot"], "final": c["finalStateHash"], "n": c["nCheckpoints"],
                             "test_accuracy": c["metrics"]["testAccuracyPpm"] / 1e6}
    out["attestations"] = len(job.get("attestations", []))
    return out


def cmd_submit(args: argparse.Namespace) -> int:
    from gensyn_node.ml.chain import ChainError
    from gensyn_node.rpc.client import RpcClientException
    from runtime.ml.data import get_dataset_spec
    from runtime.ml.errors import UnknownDatasetError
    from runtime.ml.job import hyper_from_floats

    key = parse_key(args.signer)
    try:
        dataset = get_dataset_spec(args.dataset).dataset_id
    except UnknownDatasetError as exc:
        raise CliError(str(exc)) from None
    every = args.checkpoint_every or max(1, -(-args.steps // DEFAULT_SEGMENTS))
    h = hyper_from_floats(args.lr, args.momentum, 0.0, args.batch_size)
    call = {"model": MODELS[args.model], "dataset": dataset,
            "hyper": {"lr_q16": h.lr_q16, "momentum_q16": h.momentum_q16, "weight_decay_q16": 0,
                      "batch_size": h.batch_size},
            "steps": args.steps, "checkpoint_every": every, "bounty": parse_amount(args.bounty),
            "verification": {"verifiers": args.verifiers, "segments": args.segments, "fee": parse_amount(args.fee)},
            "deadline": args.deadline}
    view = _view(args.rpc, key)
    try:
        start = _next_job_id(view)
        view.send("submit_job", call)
        job = next((j for j in view.list_jobs() if j["id"] >= start and j["submitter"] == view.me), None)
        if job is None:
            raise CliError("submit_job was included but failed in its block (see the node's events): "
                           "check the bounty against the free balance and the job's bounds")
        print(json.dumps({"job": job["id"], "status": job["status"], "bounty": job["bounty"],
                          "min_solver_stake": job["minSolverStake"]}), flush=True)
        if args.wait:
            return wait_for(view, job["id"], args.timeout)
    except (ChainError, RpcClientException) as exc:
        raise CliError(str(exc)) from None
    finally:
        view.close()
    return 0


def _next_job_id(view) -> int:  # type: ignore[no-untyped-def]
    from runtime.pallets.ml_compute import storage as ml

    raw = view.rpc.call("state_getStorage", "0x" + ml.NextJobId.key().hex())
    return 0 if raw is None else ml.NextJobId.value_type.decode(bytes.fromhex(raw[2:]))


def wait_for(view, job_id: int, timeout: float) -> int:  # type: ignore[no-untyped-def]
    """Follow a job to a final status: a line per status change, a live line on a terminal."""
    from gensyn_node.ml.chain import is_final

    live = sys.stderr.isatty()
    last = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = view.get_job(job_id)
        head = view.get_head().number
        if job["status"] != last:
            last = job["status"]
            if live:
                sys.stderr.write("\r\x1b[2K")
            print(f"job {job_id}: {last} at block #{head}", file=sys.stderr, flush=True)
        elif live:
            sys.stderr.write(f"\r\x1b[2Kjob {job_id}: {last}, block #{head}")
            sys.stderr.flush()
        if is_final(job):
            print(json.dumps(summarize(job)), flush=True)
            return 0 if job["status"] == "Settled" else 1
        time.sleep(WAIT_POLL_S)
    raise CliError(f"job {job_id} not final after {timeout:.0f} s (status {last})")


def cmd_status(args: argparse.Namespace) -> int:
    view = _view(args.rpc)
    try:
        job = view.get_job(args.id)
        if job is None:
            raise CliError(f"no job {args.id}")
        out = summarize(job)
        out["dispute"] = view.get_dispute(args.id)
        out["model"] = view.get_model(args.id)
    finally:
        view.close()
    print(json.dumps(out, indent=2))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    view = _view(args.rpc)
    try:
        jobs = view.list_jobs(args.status)
    finally:
        view.close()
    for job in jobs:
        print(f"{job['id']:>5} {job['status']:<10} steps {job['steps']:<7} bounty {job['bounty']:<16} "
              f"solver {job['solver'] or '-'}")
    if not jobs:
        print("no jobs")
    return 0


def fetch_final_state(url: str, job_id: int):  # type: ignore[no-untyped-def]
    """The settled job's final training state from the node, checked against the chain's hash,
    and its data set's name."""
    from gensyn_node.ml.remote import BlobError, NodeBlobs
    from runtime.ml.data import get_dataset_spec
    from runtime.ml.errors import MlError
    from runtime.ml.state import decode_state_checked

    view = _view(url)
    try:
        model = view.get_model(job_id)
        job = view.get_job(job_id)
    finally:
        view.close()
    if model is None:
        raise CliError(f"job {job_id} has no trained model ({'no such job' if job is None else job['status']})")
    state_hash = bytes.fromhex(model["stateHash"][2:])
    blobs = NodeBlobs(url)
    try:
        data = blobs.get(state_hash)
    except BlobError as exc:
        raise CliError(str(exc)) from None
    finally:
        blobs.close()
    if data is None:
        raise CliError(f"the node at {url} does not hold the final checkpoint {model['stateHash']}")
    try:
        return decode_state_checked(data, state_hash), get_dataset_spec(bytes.fromhex(model["dataset"][2:])).name
    except MlError as exc:
        raise CliError(f"final checkpoint: {exc}") from None


def export_job_model(url: str, job_id: int, out: Path, cache_dir: str | None) -> dict[str, Any]:
    from gensyn_node.ml.export import ExportError, export_state

    state, dataset = fetch_final_state(url, job_id)
    try:
        summary = export_state(state, dataset, out, cache_dir)
    except ExportError as exc:
        raise CliError(str(exc)) from None
    summary["job"] = job_id
    return summary


def plot_job(url: str, job_id: int, out: Path, cache_dir: str | None) -> dict[str, Any]:
    from gensyn_node.ml.export import ExportError, compute_checkpoint_curve, plot_checkpoint_curve
    from gensyn_node.ml.remote import BlobError, NodeBlobs
    from runtime.ml.data import get_dataset_spec
    from runtime.ml.errors import MlError
    from runtime.ml.state import decode_state_checked

    view = _view(url)
    try:
        job = view.get_job(job_id)
        if job is None or job.get("commitment") is None:
            raise CliError(f"job {job_id} has no commitment to plot")
        hashes = view.get_job_checkpoints(job)
    finally:
        view.close()
    if hashes is None:
        raise CliError(f"the node at {url} does not hold job {job_id}'s committed checkpoints")
    blobs = NodeBlobs(url)
    states = []
    try:
        for h in hashes:
            data = blobs.get(h)
            if data is None:
                raise CliError(f"checkpoint 0x{h.hex()} is missing from {url}")
            states.append(decode_state_checked(data, h))
    except (BlobError, MlError) as exc:
        raise CliError(str(exc)) from None
    finally:
        blobs.close()
    try:
        curve = compute_checkpoint_curve(states, get_dataset_spec(bytes.fromhex(job["dataset"][2:])).name, cache_dir)
        summary = plot_checkpoint_curve(curve, out, f"job {job_id}: {job['steps']} steps, {job['status']}")
    except ExportError as exc:
        raise CliError(str(exc)) from None
    summary["job"] = job_id
    return summary
