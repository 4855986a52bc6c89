"""Data availability: a drawn verifier that cannot get the start checkpoint of its segment (the
solver's node withholds it, or no node it can reach holds the job's checkpoint list) reports it
on chain; the solver must then publish that checkpoint's bytes, with the job's whole checkpoint
list, in an extrinsic, or lose as a cheater would.

    report_unavailable   a verifier drawn for the segment, within the attest window
    publish_checkpoint   anyone (the solver), while the report is open: the list must rebuild
                         the commitment and the bytes must hash to its entry
    deadline             `move_window` blocks after the report; unpublished, the solver's lock
                         is slashed (`reward_percent` to the reporter, the rest burned) and the
                         job rejected

A report moves the attest and challenge windows past its deadline, so the reporter still has an
attest window once the data is on chain, and a job never settles with a report open. The list
stays readable in `PublishedCheckpoints` until the job ends; the bytes are in the block, and a
node keeps them in its checkpoint store when it imports the block (`gensyn_node`).

Why on chain and not a gossip request: whether data was made available is the one thing a
verifier cannot prove to the runtime, so the runtime must see the data itself (Arbitrum's and
Truebit's lesson; DESIGN.md §9). A checkpoint fits in an extrinsic, as the referee's pre-state
does; a lying reporter gains nothing but the publication's fee burned from the solver's time.
"""

from __future__ import annotations

from runtime.context import BlockContext
from runtime.hashing import blake2_256
from runtime.merkle import hash_leaf, merkle_root
from runtime.pallets.ml_compute import events, storage
from runtime.pallets.ml_compute.agenda import apply_schedule, get_config
from runtime.pallets.ml_compute.errors import ERRORS
from runtime.pallets.ml_compute.jobs import apply_reject, get_job, put_job
from runtime.pallets.ml_compute.stakes import apply_slash_stake
from runtime.pallets.ml_compute.types import MAX_WITHHELD
from runtime.pallets.ml_compute.verification import validate_attest_duty


def apply_report_unavailable(ctx: BlockContext, who: bytes, job_id: int, segment: int) -> None:
    job = get_job(ctx, job_id)
    # Verify that the caller owes this segment an attestation it could still make.
    validate_attest_duty(ctx, job, who, segment)
    if any(w["segment"] == segment for w in job["withheld"]):
        raise ERRORS("AlreadyReported", f"segment {segment}'s start checkpoint is already reported")
    if len(job["withheld"]) >= MAX_WITHHELD:
        raise ERRORS("TooManyReports", f"the job has {MAX_WITHHELD} open reports")
    config = get_config(ctx)
    deadline = apply_schedule(ctx, ctx.block_number + config.move_window, ("Withheld", job_id))
    job["withheld"] = job["withheld"] + [{"segment": segment, "reporter": who, "deadline": deadline}]
    # The reporter attests once the data is on chain: its windows reopen past the deadline.
    job["attest_end"] = max(job["attest_end"], deadline + config.attest_window)
    challenge_end = max(job["challenge_end"], job["attest_end"] + config.challenge_window - config.attest_window)
    if job["status"][0] == "Verifying" and challenge_end != job["challenge_end"]:
        job["timer"] = challenge_end = apply_schedule(ctx, challenge_end, ("Job", job_id))
    job["challenge_end"] = challenge_end  # (while disputed, the dispute's end reschedules settlement)
    put_job(ctx, job_id, job)
    events.deposit(ctx, "CheckpointWithheld", {"job": job_id, "segment": segment, "reporter": who,
                                               "deadline": deadline})


def apply_publish(ctx: BlockContext, who: bytes, job_id: int, index: int, state: bytes, hashes: list[bytes]) -> None:
    job = get_job(ctx, job_id)
    if not any(w["segment"] == index for w in job["withheld"]):
        raise ERRORS("NotReported", f"checkpoint {index} of job {job_id} is not reported unavailable")
    commitment = job["commitment"]
    if len(hashes) != commitment["n_checkpoints"] or \
            merkle_root([hash_leaf(h) for h in hashes]) != commitment["checkpoint_root"]:
        raise ERRORS("InvalidCheckpointList", f"{len(hashes)} hashes do not rebuild the commitment")
    if blake2_256(state) != hashes[index]:
        raise ERRORS("CheckpointHashMismatch", f"the bytes do not hash to checkpoint {index}")
    job["withheld"] = [w for w in job["withheld"] if w["segment"] != index]
    put_job(ctx, job_id, job)
    storage.PublishedCheckpoints.insert(ctx.state, job_id, list(hashes))
    events.deposit(ctx, "CheckpointPublished", {"job": job_id, "index": index, "state_hash": hashes[index]})


def on_withheld_due(ctx: BlockContext, job_id: int) -> None:
    """A report's deadline: unpublished, the solver loses (while another dispute is open, the
    check waits for its end, so that one job is never rejected twice)."""
    job = storage.Jobs.get(ctx.state, job_id)
    if job is None or job["status"][0] not in ("Verifying", "Disputed"):
        return
    due = [w for w in job["withheld"] if w["deadline"] == ctx.block_number]
    if not due:
        return  # published in time, or superseded
    if job["status"][0] == "Disputed":
        dispute = storage.Disputes.get(ctx.state, job_id)
        later = apply_schedule(ctx, (dispute["deadline"] if dispute else ctx.block_number) + 1, ("Withheld", job_id))
        job["withheld"] = [{**w, "deadline": later} if w in due else w for w in job["withheld"]]
        put_job(ctx, job_id, job)
        return
    report = due[0]
    slashed, reward = apply_slash_stake(ctx, "Solver", job["solver"], job["solver_lock"], report["reporter"],
                                        get_config(ctx).reward_percent)
    job["withheld"] = []
    events.deposit(ctx, "DataWithheld", {"job": job_id, "segment": report["segment"], "slashed": slashed,
                                         "reward": reward})
    apply_reject(ctx, job_id, job, report["segment"])

