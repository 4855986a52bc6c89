"""Sampled verification: after the commit, randomness the solver could not know draws the
verifiers (by stake) and the distinct segments they re-run; each drawn verifier attests its
segments' end hashes (proven against the commitment) within the attest window and is paid per
attestation at settlement. A drawn verifier that finds a mismatch challenges instead."""

from __future__ import annotations

from typing import Any

from runtime.context import BlockContext
from runtime.merkle import MerkleProofError, hash_leaf, verify_merkle_proof
from runtime.pallets.ml_compute import events, storage
from runtime.pallets.ml_compute.agenda import apply_schedule, get_config
from runtime.pallets.ml_compute.draws import compute_draw_seed, draw_segments, draw_weighted
from runtime.pallets.ml_compute.errors import ERRORS
from runtime.pallets.ml_compute.jobs import get_job, put_job
from runtime.pallets.ml_compute.stakes import apply_open, get_active_set, get_worker


def on_verifier_draw_due(ctx: BlockContext, job_id: int, job: dict[str, Any]) -> None:
    """Draw up to `verifiers` verifiers by stake (never the solver or the submitter) and
    k = min(segments, verifiers · per-verifier) distinct segments, dealt round robin."""
    config = get_config(ctx)
    spec = job["verification"]
    n_segments = job["commitment"]["n_checkpoints"] - 1
    seed = compute_draw_seed(ctx, b"verify", job_id)
    candidates = []
    for who in get_active_set(ctx, "Verifier"):
        worker = get_worker(ctx, "Verifier", who)
        if worker is not None and who not in (job["solver"], job["submitter"]):
            candidates.append((who, worker["stake"]))
    chosen = draw_weighted(seed, candidates, spec["verifiers"])
    duties: list[dict[str, Any]] = [{"verifier": v, "segments": []} for v in chosen]
    if chosen:
        sample = draw_segments(seed, n_segments, spec["verifiers"] * spec["segments"])
        for i, segment in enumerate(sample):
            duties[i % len(chosen)]["segments"].append(segment)
        for duty in duties:
            duty["segments"].sort()
            apply_open(ctx, "Verifier", duty["verifier"], +1)
    now = ctx.block_number
    job["duties"] = duties
    job["attest_end"] = now + config.attest_window
    job["challenge_end"] = job["timer"] = apply_schedule(ctx, now + config.challenge_window, ("Job", job_id))
    job["status"] = ("Verifying", None)
    put_job(ctx, job_id, job)
    events.deposit(ctx, "VerifiersDrawn", {"job": job_id, "duties": duties, "attest_end": job["attest_end"],
                                           "challenge_end": job["challenge_end"]})


def is_drawn_for(job: dict[str, Any], who: bytes, segment: int) -> bool:
    return any(d["verifier"] == who and segment in d["segments"] for d in job["duties"])


def validate_checkpoint_proof(job: dict[str, Any], index: int, state_hash: bytes, proof: list[bytes]) -> None:
    """Verify that `state_hash` is checkpoint `index` of the job's commitment."""
    c = job["commitment"]
    try:
        verify_merkle_proof(c["checkpoint_root"], hash_leaf(state_hash), index, c["n_checkpoints"], proof)
    except MerkleProofError as exc:
        raise ERRORS("InvalidCheckpointProof", f"checkpoint {index}: {exc}") from None


def validate_attest_duty(ctx: BlockContext, job: dict[str, Any], who: bytes, segment: int) -> None:
    """Verify that the job is being verified, its attest window is open, and `who` was drawn for
    `segment` and has not attested it yet (an attestation, or a report that it cannot make one)."""
    if job["status"][0] not in ("Verifying", "Disputed"):
        raise ERRORS("NotVerifying", f"the job is {job['status'][0]}")
    if ctx.block_number > job["attest_end"]:
        raise ERRORS("AttestWindowClosed", f"attestations closed at block {job['attest_end']}")
    if not is_drawn_for(job, who, segment):
        raise ERRORS("NotDrawnForSegment", f"the caller was not drawn for segment {segment}")
    if any(a["verifier"] == who and a["segment"] == segment for a in job["attestations"]):
        raise ERRORS("AlreadyAttested", f"segment {segment} is attested")


def apply_attest(ctx: BlockContext, who: bytes, job_id: int, segment: int, end_state_hash: bytes,
                 proof: list[bytes]) -> None:
    job = get_job(ctx, job_id)
    validate_attest_duty(ctx, job, who, segment)
    validate_checkpoint_proof(job, segment + 1, end_state_hash, proof)
    job["attestations"] = job["attestations"] + [{"verifier": who, "segment": segment}]
    put_job(ctx, job_id, job)
    events.deposit(ctx, "Attested", {"job": job_id, "verifier": who, "segment": segment})


def is_verifier_registered(ctx: BlockContext, who: bytes) -> bool:
    return storage.Verifiers.contains(ctx.state, who)
