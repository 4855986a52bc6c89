"""The referee call: the runtime recomputes the one disputed step with the exact engine and
compares it with the solver's claim. Torch is imported here, at the first referee, so a node
that never judges a dispute never loads it.
"""

from __future__ import annotations

from typing import Any

from runtime.context import BlockContext
from runtime.pallets.ml_compute import events, storage
from runtime.pallets.ml_compute.dispute import (
    apply_challenger_lost,
    apply_solver_lost,
    get_dispute,
    validate_move,
)
from runtime.pallets.ml_compute.errors import ERRORS
from runtime.pallets.ml_compute.jobs import get_job


def build_training_job(job: dict[str, Any]) -> Any:
    """The engine's TrainingJob of an assigned job."""
    from runtime.ml.job import HyperParams, TrainingJob

    h = job["hyper"]
    hyper = HyperParams(lr_q16=h["lr_q16"], momentum_q16=h["momentum_q16"], weight_decay_q16=h["weight_decay_q16"],
                        batch_size=h["batch_size"])
    return TrainingJob(job["model"], job["dataset"], job["seed"], hyper, job["steps"], job["checkpoint_every"])


def compute_initial_state_hash(job: dict[str, Any]) -> bytes:
    from runtime.ml import referee

    return referee.compute_initial_state_hash(build_training_job(job))


def compute_referee_post_hash(ctx: BlockContext, job: dict[str, Any], dispute: dict[str, Any], pre_state: bytes,
                              images: bytes, labels: bytes, proofs: list[list[bytes]]) -> bytes:
    """The post-state hash of the disputed step; a mismatching input raises a named error."""
    from runtime.ml import errors, referee

    info = storage.Datasets.get(ctx.state, job["dataset"])
    try:
        return referee.replay_disputed_step(build_training_job(job), info["n_samples"], dispute["lo_step"], pre_state,
                                            dispute["lo_hash"], images, labels, proofs)
    except errors.StateHashMismatchError as exc:
        raise ERRORS("PreStateMismatch", str(exc)) from None
    except errors.StateDecodeError as exc:
        raise ERRORS("PreStateInvalid", str(exc)) from None
    except errors.MerkleProofError as exc:
        raise ERRORS("BatchProofInvalid", str(exc)) from None
    except errors.MlError as exc:
        raise ERRORS("BatchMismatch", str(exc)) from None


def apply_referee(ctx: BlockContext, who: bytes, job_id: int, pre_state: bytes, images: bytes, labels: bytes,
                  proofs: list[list[bytes]]) -> None:
    dispute = get_dispute(ctx, job_id)
    validate_move(ctx, dispute, None, who, "AwaitReferee")
    job = get_job(ctx, job_id)
    post_hash = compute_referee_post_hash(ctx, job, dispute, pre_state, images, labels, proofs)
    solver_correct = post_hash == dispute["hi_hash"]
    dispute["rounds"] += 1
    events.deposit(ctx, "StepRefereed", {"job": job_id, "step": dispute["lo_step"], "post_hash": post_hash,
                                         "solver_correct": solver_correct})
    if solver_correct:
        apply_challenger_lost(ctx, job_id, job, dispute, "referee")
    else:
        apply_solver_lost(ctx, job_id, job, dispute, "referee")
