"""A job's life outside disputes: submit (bounty reserved), cancel, the solver draw, commit,
missed deadlines and reassignment, settlement, refunds and the pay-out of a rejected job.

Every call checks its origin, then every condition, and only then writes; every timer step
runs from `on_initialize` (hooks.py) and cannot fail on bad input, only skip.
"""

from __future__ import annotations

from typing import Any

from runtime.context import BlockContext
from runtime.hashing import blake2_256
from runtime.pallets.balances import currency
from runtime.pallets.ml_compute import events, storage
from runtime.pallets.ml_compute.agenda import apply_schedule, get_config
from runtime.pallets.ml_compute.draws import compute_draw_seed, compute_min_solver_stake, draw_weighted
from runtime.pallets.ml_compute.errors import ERRORS
from runtime.pallets.ml_compute.registry import compute_referee_input_bytes, is_refereeable
from runtime.pallets.ml_compute.stakes import apply_open, apply_slash_stake, get_active_set, get_worker
from runtime.pallets.ml_compute.types import MAX_BATCH

# The engine's hyper-parameter bounds (runtime.ml.job.validate_hyper; the tests hold both to
# the same answers), checked here without loading torch into the node.
ONE_Q16 = 1 << 16
MAX_WEIGHT_DECAY_Q16 = 1 << 12


# --- reads ---------------------------------------------------------------------------------------


def get_job(ctx: BlockContext, job_id: int) -> dict[str, Any]:
    job = storage.Jobs.get(ctx.state, job_id)
    if job is None:
        raise ERRORS("JobNotFound", f"no job {job_id}")
    return job


def put_job(ctx: BlockContext, job_id: int, job: dict[str, Any]) -> None:
    storage.Jobs.insert(ctx.state, job_id, job)


def compute_n_checkpoints(steps: int, every: int) -> int:
    """Checkpoints 0 (the initial state) .. n (after the last step), as runtime.ml.job counts."""
    return -(-steps // every) + 1


def compute_checkpoint_step(job: dict[str, Any], index: int) -> int:
    return min(index * job["checkpoint_every"], job["steps"])


def get_job_min_stake(ctx: BlockContext, job: dict[str, Any]) -> int:
    v = job["verification"]
    n_segments = compute_n_checkpoints(job["steps"], job["checkpoint_every"]) - 1
    return compute_min_solver_stake(job["bounty"], n_segments, v["verifiers"], v["segments"],
                                    get_config(ctx).min_solver_stake)


def is_valid_hyper(hyper: dict[str, int]) -> bool:
    """The engine's bounds: 0 < lr <= 1, 0 <= momentum < 1, 0 <= wd <= 1/16, batch a power of two."""
    b = hyper["batch_size"]
    return (0 < hyper["lr_q16"] <= ONE_Q16 and 0 <= hyper["momentum_q16"] < ONE_Q16
            and 0 <= hyper["weight_decay_q16"] <= MAX_WEIGHT_DECAY_Q16
            and 0 < b <= MAX_BATCH and b & (b - 1) == 0)


# --- submit and cancel ---------------------------------------------------------------------------


def validate_job_request(ctx: BlockContext, model: int, dataset: bytes, hyper: dict[str, int], steps: int,
                         checkpoint_every: int, bounty: int, verification: dict[str, int], deadline: int) -> None:
    """Verify that a job can run and be judged: registered model and data set, every parameter
    within its bound, fees within the bounty, the referee's input within a block."""
    config = get_config(ctx)
    arch = storage.Architectures.get(ctx.state, model)
    if arch is None:
        raise ERRORS("UnknownModel", f"no architecture {model}")
    info = storage.Datasets.get(ctx.state, dataset)
    if info is None:
        raise ERRORS("UnknownDataset", f"no data set {dataset.hex()[:16]}…")
    if not is_valid_hyper(hyper) or hyper["batch_size"] > info["n_samples"]:
        raise ERRORS("InvalidJob", f"hyper-parameters out of bounds: {hyper}")
    if not 1 <= steps <= config.max_steps or not 1 <= checkpoint_every <= steps:
        raise ERRORS("InvalidJob", f"steps 1..={config.max_steps}, checkpoint interval 1..=steps")
    n_segments = compute_n_checkpoints(steps, checkpoint_every) - 1
    if n_segments > config.max_checkpoints:
        raise ERRORS("InvalidJob", f"{n_segments} segments, at most {config.max_checkpoints}")
    if not 1 <= deadline <= config.max_deadline:
        raise ERRORS("InvalidJob", f"deadline 1..={config.max_deadline} blocks")
    if not 1 <= verification["verifiers"] <= config.max_verifiers or not 1 <= verification["segments"] <= config.max_segments:
        raise ERRORS("InvalidJob", f"1..={config.max_verifiers} verifiers of 1..={config.max_segments} segments")
    if bounty < ctx.params.existential_deposit:
        raise ERRORS("BountyTooLow", "a bounty is at least the existential deposit")
    attestations = min(n_segments, verification["verifiers"] * verification["segments"])
    if verification["fee"] * attestations > bounty:
        raise ERRORS("FeesExceedBounty", f"{attestations} attestations at {verification['fee']} exceed the bounty")
    batch = hyper["batch_size"]
    if not is_refereeable(ctx, arch["state_bytes"], arch["macs_per_sample"], info, batch):
        size = compute_referee_input_bytes(arch["state_bytes"], info["sample_bytes"], info["n_samples"], batch)
        raise ERRORS("RefereeInputTooLarge", f"the referee's {size}-byte input or its step does not fit a block")


def apply_submit(ctx: BlockContext, who: bytes, model: int, dataset: bytes, hyper: dict[str, int], steps: int,
                 checkpoint_every: int, bounty: int, verification: dict[str, int], deadline: int) -> int:
    validate_job_request(ctx, model, dataset, hyper, steps, checkpoint_every, bounty, verification, deadline)
    config = get_config(ctx)
    currency.reserve(ctx, who, bounty)  # Balances.InsufficientBalance
    job_id = storage.NextJobId.get(ctx.state)
    storage.NextJobId.put(ctx.state, job_id + 1)
    now = ctx.block_number
    job = {
        "submitter": who, "model": model, "dataset": dataset, "hyper": hyper, "steps": steps,
        "checkpoint_every": checkpoint_every, "bounty": bounty, "verification": verification,
        "deadline": deadline, "submitted_at": now, "status": ("Pending", None), "timer": 0,
        "expires_at": now + config.pending_timeout, "attempts": 0, "tried": [], "seed": None,
        "solver": None, "solver_lock": 0, "commit_by": 0, "commitment": None, "duties": [],
        "attestations": [], "attest_end": 0, "challenge_end": 0, "disputes": 0, "withheld": [],
    }
    job["timer"] = apply_schedule(ctx, now + config.assign_delay, ("Job", job_id))
    put_job(ctx, job_id, job)
    events.deposit(ctx, "JobSubmitted", {"job": job_id, "submitter": who, "model": model, "bounty": bounty,
                                         "min_solver_stake": get_job_min_stake(ctx, job)})
    return job_id


def apply_cancel(ctx: BlockContext, who: bytes, job_id: int) -> None:
    job = get_job(ctx, job_id)
    if job["submitter"] != who:
        raise ERRORS("NotSubmitter", "only the submitter cancels a job")
    if job["status"][0] != "Pending":
        raise ERRORS("JobNotPending", f"the job is {job['status'][0]}")
    currency.unreserve(ctx, who, job["bounty"])
    job["status"], job["timer"] = ("Cancelled", None), 0
    put_job(ctx, job_id, job)
    events.deposit(ctx, "JobCancelled", {"job": job_id})


# --- assignment and deadlines --------------------------------------------------------------------


def find_solver_candidates(ctx: BlockContext, job: dict[str, Any], min_stake: int) -> list[tuple[bytes, int]]:
    """Registered solvers whose unlocked stake covers the job, other than the submitter and
    the solvers that already missed this job's deadline; weighted by stake."""
    out = []
    for who in get_active_set(ctx, "Solver"):
        worker = get_worker(ctx, "Solver", who)
        if worker is None or who == job["submitter"] or who in job["tried"]:
            continue
        if worker["stake"] - worker["locked"] >= min_stake:
            out.append((who, worker["stake"]))
    return out


def on_assignment_due(ctx: BlockContext, job_id: int, job: dict[str, Any]) -> None:
    """Draw the solver from randomness the submitter could not know; the draw fixes the seed."""
    min_stake = get_job_min_stake(ctx, job)
    seed = compute_draw_seed(ctx, b"assign", job_id, job["attempts"])
    picked = draw_weighted(seed, find_solver_candidates(ctx, job, min_stake), 1)
    if not picked:
        if ctx.block_number >= job["expires_at"]:
            apply_refund(ctx, job_id, job)
        else:
            job["timer"] = apply_schedule(ctx, ctx.block_number + 1, ("Job", job_id))
            put_job(ctx, job_id, job)
        return
    solver = picked[0]
    apply_open(ctx, "Solver", solver, +1, min_stake)
    job["seed"] = blake2_256(b"ml/data-seed" + seed)
    job["solver"], job["solver_lock"] = solver, min_stake
    job["commit_by"] = job["timer"] = apply_schedule(ctx, ctx.block_number + job["deadline"], ("Job", job_id))
    job["status"] = ("Assigned", None)
    put_job(ctx, job_id, job)
    events.deposit(ctx, "JobAssigned", {"job": job_id, "solver": solver, "seed": job["seed"],
                                        "commit_by": job["commit_by"]})


def on_commit_missed(ctx: BlockContext, job_id: int, job: dict[str, Any]) -> None:
    """The solver missed its deadline: burn part of its lock, and reassign (or refund)."""
    config = get_config(ctx)
    solver, lock = job["solver"], job["solver_lock"]
    penalty, _ = apply_slash_stake(ctx, "Solver", solver, lock * config.miss_penalty_percent // 100, None, 0)
    apply_open(ctx, "Solver", solver, -1, -lock)
    events.deposit(ctx, "SolverTimedOut", {"job": job_id, "solver": solver, "penalty": penalty})
    job["attempts"] += 1
    job["tried"] = job["tried"] + [solver]
    job["solver"], job["solver_lock"], job["seed"], job["commit_by"] = None, 0, None, 0
    if job["attempts"] >= config.max_attempts:
        apply_refund(ctx, job_id, job)
        return
    job["status"] = ("Pending", None)
    job["expires_at"] = ctx.block_number + config.pending_timeout
    job["timer"] = apply_schedule(ctx, ctx.block_number + config.assign_delay, ("Job", job_id))
    put_job(ctx, job_id, job)


def apply_refund(ctx: BlockContext, job_id: int, job: dict[str, Any]) -> None:
    amount = currency.unreserve(ctx, job["submitter"], job["bounty"])
    job["status"], job["timer"] = ("Refunded", None), 0
    put_job(ctx, job_id, job)
    events.deposit(ctx, "JobRefunded", {"job": job_id, "amount": amount})


# --- commit --------------------------------------------------------------------------------------


def apply_commit(ctx: BlockContext, who: bytes, job_id: int, checkpoint_root: bytes, final_state_hash: bytes,
                 n_checkpoints: int, metrics: dict[str, int]) -> None:
    job = get_job(ctx, job_id)
    status = job["status"][0]
    # Verify that the job is assigned, to the caller, and not committed yet.
    if status in ("Pending", "Cancelled", "Refunded"):
        raise ERRORS("JobNotAssigned", f"the job is {status}")
    if job["solver"] != who:
        raise ERRORS("NotAssignedSolver", "the job is not assigned to the caller")
    if status != "Assigned":
        raise ERRORS("AlreadyCommitted", f"the job is {status}")
    expected = compute_n_checkpoints(job["steps"], job["checkpoint_every"])
    if n_checkpoints != expected:
        raise ERRORS("WrongCheckpointCount", f"{n_checkpoints} checkpoints, the job has {expected}")
    job["commitment"] = {"checkpoint_root": checkpoint_root, "final_state_hash": final_state_hash,
                         "n_checkpoints": n_checkpoints, "metrics": metrics, "block": ctx.block_number}
    job["status"] = ("Committed", None)
    job["timer"] = apply_schedule(ctx, ctx.block_number + get_config(ctx).verify_delay, ("Job", job_id))
    put_job(ctx, job_id, job)
    events.deposit(ctx, "JobCommitted", {"job": job_id, "solver": who, "checkpoint_root": checkpoint_root,
                                         "final_state_hash": final_state_hash})


# --- settlement ----------------------------------------------------------------------------------


def apply_pay_fees(ctx: BlockContext, job_id: int, job: dict[str, Any], skip_segment: int | None = None) -> int:
    """Pay each attestation's fee out of the escrow (except those of `skip_segment`)."""
    fee, paid = job["verification"]["fee"], 0
    for att in job["attestations"]:
        if att["segment"] == skip_segment or not fee:
            continue
        moved = currency.repatriate_reserved(ctx, job["submitter"], att["verifier"], fee)
        paid += moved
        events.deposit(ctx, "FeePaid", {"job": job_id, "verifier": att["verifier"], "amount": moved})
    return paid


def apply_release_duties(ctx: BlockContext, job: dict[str, Any]) -> None:
    for duty in job["duties"]:
        apply_open(ctx, "Verifier", duty["verifier"], -1)


def on_settlement_due(ctx: BlockContext, job_id: int, job: dict[str, Any]) -> None:
    """After the challenge window with no dispute open: fees to the verifiers, the rest of the
    bounty to the solver, its stake unlocked, the trained model final."""
    fees = apply_pay_fees(ctx, job_id, job)
    solver = job["solver"]
    paid = currency.repatriate_reserved(ctx, job["submitter"], solver, job["bounty"] - fees)
    apply_open(ctx, "Solver", solver, -1, -job["solver_lock"])
    apply_release_duties(ctx, job)
    c = job["commitment"]
    storage.TrainedModels.insert(ctx.state, job_id, {
        "job": job_id, "model": job["model"], "dataset": job["dataset"], "solver": solver,
        "state_hash": c["final_state_hash"], "checkpoint_root": c["checkpoint_root"],
        "n_checkpoints": c["n_checkpoints"], "metrics": c["metrics"], "settled_at": ctx.block_number})
    job["status"], job["timer"] = ("Settled", None), 0
    put_job(ctx, job_id, job)
    storage.PublishedCheckpoints.remove(ctx.state, job_id)
    events.deposit(ctx, "JobSettled", {"job": job_id, "solver": solver, "paid": paid, "fees": fees})


def apply_reject(ctx: BlockContext, job_id: int, job: dict[str, Any], wrong_segment: int) -> None:
    """The solver was proven wrong (and slashed by the caller): fees for the attestations not
    proven wrong, the rest of the escrow back to the submitter."""
    fees = apply_pay_fees(ctx, job_id, job, skip_segment=wrong_segment)
    refunded = currency.unreserve(ctx, job["submitter"], job["bounty"] - fees)
    apply_open(ctx, "Solver", job["solver"], -1, -job["solver_lock"])
    apply_release_duties(ctx, job)
    job["status"], job["timer"] = ("Rejected", None), 0
    put_job(ctx, job_id, job)
    storage.PublishedCheckpoints.remove(ctx.state, job_id)
    events.deposit(ctx, "JobRejected", {"job": job_id, "refunded": refunded, "fees": fees})
