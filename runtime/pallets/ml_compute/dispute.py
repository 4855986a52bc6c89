"""Disputes: a challenge with a bond, then bisection over the steps of the challenged segment
down to one step, which the runtime recomputes itself (referee.py).

    challenge    anyone but the solver, with a bond, within the challenge window
    reveal       the solver proves the segment's start and end hashes against its commitment
    bisect       the solver posts its state hash at the midpoint the runtime computes
    answer       the challenger agrees (the fight moves to the upper half) or disagrees (lower)
    referee      one step left: anyone submits its pre-state and batch; the runtime replays it

Each move has a deadline in blocks; the party whose move it is loses when it passes (at the
last step the solver, who holds the burden of proving its claimed post-state). The runtime
computes every midpoint, so no party can stretch the game: a segment of n steps takes
⌈log2 n⌉ bisection rounds, plus the reveal and the referee.

The loser's stake (the solver's lock) or bond (the challenger's) is slashed: `reward_percent`
to the winner, the rest burned, because one attacker can play both sides. A verifier that
attested the segment proven wrong is slashed too.
"""

from __future__ import annotations

from typing import Any

from runtime.context import BlockContext
from runtime.pallets.balances import currency
from runtime.pallets.ml_compute import events, storage
from runtime.pallets.ml_compute.agenda import apply_schedule, get_config
from runtime.pallets.ml_compute.errors import ERRORS
from runtime.pallets.ml_compute.events import REASONS
from runtime.pallets.ml_compute.jobs import apply_reject, compute_checkpoint_step, get_job, put_job
from runtime.pallets.ml_compute.stakes import apply_slash_reserved, apply_slash_stake, get_worker
from runtime.pallets.ml_compute.verification import is_drawn_for, validate_checkpoint_proof

# --- reads ---------------------------------------------------------------------------------------


def get_dispute(ctx: BlockContext, job_id: int) -> dict[str, Any]:
    dispute = storage.Disputes.get(ctx.state, job_id)
    if dispute is None:
        raise ERRORS("NoDispute", f"job {job_id} has no open dispute")
    return dispute


def validate_move(ctx: BlockContext, dispute: dict[str, Any], who: bytes | None, mover: bytes, phase: str) -> None:
    """Verify that the dispute waits for this move, from this party, before its deadline."""
    if dispute["phase"][0] != phase:
        raise ERRORS("WrongPhase", f"the dispute waits for {dispute['phase'][0]}, not {phase}")
    if who is not None and who != mover:
        raise ERRORS("NotYourMove", f"{phase} is the other party's move")
    if ctx.block_number > dispute["deadline"]:
        raise ERRORS("MoveTooLate", f"the move was due by block {dispute['deadline']}")


def apply_next_phase(ctx: BlockContext, dispute: dict[str, Any]) -> None:
    """One step left: the referee; else the solver posts the runtime's midpoint. A fresh deadline."""
    if dispute["hi_step"] - dispute["lo_step"] == 1:
        dispute["phase"] = ("AwaitReferee", None)
    else:
        dispute["phase"] = ("AwaitMidpoint", None)
        dispute["mid_step"] = (dispute["lo_step"] + dispute["hi_step"]) // 2
    dispute["mid_hash"] = None
    dispute["deadline"] = apply_schedule(ctx, ctx.block_number + get_config(ctx).move_window, ("Dispute", dispute["job"]))
    storage.Disputes.insert(ctx.state, dispute["job"], dispute)


# --- moves ---------------------------------------------------------------------------------------


def apply_challenge(ctx: BlockContext, who: bytes, job_id: int, segment: int, claimed_end_hash: bytes, bond: int) -> None:
    job = get_job(ctx, job_id)
    status = job["status"][0]
    # Verify that the job is in its challenge window with no dispute open.
    if status == "Disputed":
        raise ERRORS("DisputeInProgress", "the job already has an open dispute")
    if status != "Verifying":
        raise ERRORS("ChallengeWindowClosed" if status in ("Settled", "Rejected") else "NotVerifying", f"the job is {status}")
    if ctx.block_number >= job["challenge_end"]:
        raise ERRORS("ChallengeWindowClosed", f"challenges closed at block {job['challenge_end']}")
    if who == job["solver"]:
        raise ERRORS("SolverCannotChallenge", "the solver cannot challenge its own job")
    n_segments = job["commitment"]["n_checkpoints"] - 1
    if not 0 <= segment < n_segments:
        raise ERRORS("SegmentOutOfRange", f"segment {segment} outside 0..{n_segments - 1}")
    min_bond = max(get_config(ctx).min_challenge_bond, ctx.params.existential_deposit)
    if bond < min_bond:
        raise ERRORS("BondTooLow", f"a challenge bonds at least {min_bond}")
    currency.reserve(ctx, who, bond)  # Balances.InsufficientBalance
    by_verifier = is_drawn_for(job, who, segment)
    dispute = {
        "job": job_id, "segment": segment, "challenger": who, "bond": bond, "by_verifier": by_verifier,
        "claimed_end_hash": claimed_end_hash, "phase": ("AwaitReveal", None), "deadline": 0,
        "lo_step": compute_checkpoint_step(job, segment), "lo_hash": bytes(32),
        "hi_step": compute_checkpoint_step(job, segment + 1), "hi_hash": bytes(32),
        "mid_step": 0, "mid_hash": None, "rounds": 0, "opened_at": ctx.block_number,
    }
    dispute["deadline"] = apply_schedule(ctx, ctx.block_number + get_config(ctx).move_window, ("Dispute", job_id))
    storage.Disputes.insert(ctx.state, job_id, dispute)
    job["status"] = ("Disputed", None)
    job["disputes"] += 1
    put_job(ctx, job_id, job)
    events.deposit(ctx, "Challenged", {"job": job_id, "segment": segment, "challenger": who, "bond": bond,
                                       "by_verifier": by_verifier})


def apply_reveal(ctx: BlockContext, who: bytes, job_id: int, segment: int, start_hash: bytes,
                 start_proof: list[bytes], end_hash: bytes, end_proof: list[bytes]) -> None:
    dispute = get_dispute(ctx, job_id)
    job = get_job(ctx, job_id)
    validate_move(ctx, dispute, who, job["solver"], "AwaitReveal")
    if segment != dispute["segment"]:
        raise ERRORS("SegmentOutOfRange", f"the dispute is over segment {dispute['segment']}, not {segment}")
    validate_checkpoint_proof(job, segment, start_hash, start_proof)
    validate_checkpoint_proof(job, segment + 1, end_hash, end_proof)
    dispute["rounds"] += 1
    dispute["lo_hash"], dispute["hi_hash"] = start_hash, end_hash
    events.deposit(ctx, "SegmentRevealed", {"job": job_id, "lo_step": dispute["lo_step"], "hi_step": dispute["hi_step"]})
    # The commitment's own ends are checked without a game.
    if segment == 0 and start_hash != compute_initial_hash(job):
        apply_solver_lost(ctx, job_id, job, dispute, "initial_state")
    elif segment == job["commitment"]["n_checkpoints"] - 2 and end_hash != job["commitment"]["final_state_hash"]:
        apply_solver_lost(ctx, job_id, job, dispute, "final_state")
    elif end_hash == dispute["claimed_end_hash"]:
        apply_challenger_lost(ctx, job_id, job, dispute, "no_disagreement")
    else:
        apply_next_phase(ctx, dispute)


def apply_bisect(ctx: BlockContext, who: bytes, job_id: int, mid_hash: bytes) -> None:
    dispute = get_dispute(ctx, job_id)
    job = get_job(ctx, job_id)
    validate_move(ctx, dispute, who, job["solver"], "AwaitMidpoint")
    dispute["mid_hash"] = mid_hash
    dispute["phase"] = ("AwaitAnswer", None)
    dispute["deadline"] = apply_schedule(ctx, ctx.block_number + get_config(ctx).move_window, ("Dispute", job_id))
    storage.Disputes.insert(ctx.state, job_id, dispute)
    events.deposit(ctx, "MidpointPosted", {"job": job_id, "step": dispute["mid_step"], "state_hash": mid_hash})


def apply_answer(ctx: BlockContext, who: bytes, job_id: int, agree: bool) -> None:
    dispute = get_dispute(ctx, job_id)
    validate_move(ctx, dispute, who, dispute["challenger"], "AwaitAnswer")
    if agree:
        dispute["lo_step"], dispute["lo_hash"] = dispute["mid_step"], dispute["mid_hash"]
    else:
        dispute["hi_step"], dispute["hi_hash"] = dispute["mid_step"], dispute["mid_hash"]
    dispute["rounds"] += 1
    events.deposit(ctx, "MidpointAnswered", {"job": job_id, "step": dispute["mid_step"], "agree": agree})
    apply_next_phase(ctx, dispute)


def on_dispute_deadline(ctx: BlockContext, job_id: int) -> None:
    """The party whose move it was let its deadline pass and loses."""
    dispute = storage.Disputes.get(ctx.state, job_id)
    if dispute is None or dispute["deadline"] != ctx.block_number:
        return
    job = storage.Jobs.get(ctx.state, job_id)
    if dispute["phase"][0] == "AwaitAnswer":
        apply_challenger_lost(ctx, job_id, job, dispute, "timeout")
    else:
        apply_solver_lost(ctx, job_id, job, dispute, "timeout")


def compute_initial_hash(job: dict[str, Any]) -> bytes:
    """Checkpoint 0 as the runtime computes it from the job's seed (loads the engine)."""
    from runtime.pallets.ml_compute.referee import compute_initial_state_hash

    return compute_initial_state_hash(job)


# --- outcomes ------------------------------------------------------------------------------------


def apply_solver_lost(ctx: BlockContext, job_id: int, job: dict[str, Any], dispute: dict[str, Any], reason: str) -> None:
    """Slash the solver's lock and the segment's attesters, part to the challenger; return the
    challenger's bond; reject the job."""
    config = get_config(ctx)
    challenger, segment = dispute["challenger"], dispute["segment"]
    slashed, reward = apply_slash_stake(ctx, "Solver", job["solver"], job["solver_lock"], challenger,
                                        config.reward_percent)
    for att in job["attestations"]:
        if att["segment"] != segment:
            continue
        worker = get_worker(ctx, "Verifier", att["verifier"])
        if worker is None:
            continue
        amount, extra = apply_slash_stake(ctx, "Verifier", att["verifier"], worker["stake"] * config.verifier_slash_percent // 100,
                                          challenger, config.reward_percent)
        slashed, reward = slashed + amount, reward + extra
        events.deposit(ctx, "VerifierSlashed", {"job": job_id, "verifier": att["verifier"], "amount": amount})
    currency.unreserve(ctx, challenger, dispute["bond"])
    storage.Disputes.remove(ctx.state, job_id)
    events.deposit(ctx, "DisputeResolved", {"job": job_id, "winner": ("Challenger", None), "slashed": slashed,
                                            "reward": reward, "rounds": dispute["rounds"], "reason": REASONS[reason]})
    apply_reject(ctx, job_id, job, segment)


def apply_challenger_lost(ctx: BlockContext, job_id: int, job: dict[str, Any], dispute: dict[str, Any], reason: str) -> None:
    """Slash the challenger's bond, part to the solver; the job returns to verification, its
    challenge window open for at least one more move window."""
    config = get_config(ctx)
    slashed, reward = apply_slash_reserved(ctx, dispute["challenger"], dispute["bond"], job["solver"], config.reward_percent)
    storage.Disputes.remove(ctx.state, job_id)
    events.deposit(ctx, "DisputeResolved", {"job": job_id, "winner": ("Solver", None), "slashed": slashed,
                                            "reward": reward, "rounds": dispute["rounds"], "reason": REASONS[reason]})
    now = ctx.block_number
    job["challenge_end"] = max(job["challenge_end"], now + config.move_window)
    job["challenge_end"] = job["timer"] = apply_schedule(ctx, job["challenge_end"], ("Job", job_id))
    job["status"] = ("Verifying", None)
    put_job(ctx, job_id, job)
