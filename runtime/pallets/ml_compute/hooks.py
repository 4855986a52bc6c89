"""ML-compute's `on_initialize`: build the pallet's storage on the first block of a chain that
upgraded into it (Substrate's storage-version-gated migration), then run the timers due in
this block: solver draws, commit deadlines, verifier draws, settlements, dispute move
deadlines, unavailability report deadlines, unbonding ends. A timer step never fails the block: one that cannot run is rolled
back alone."""

from __future__ import annotations

from runtime.context import BlockContext
from runtime.frame import DispatchError
from runtime.pallets.ml_compute import storage
from runtime.pallets.ml_compute.agenda import take_due
from runtime.pallets.ml_compute.availability import on_withheld_due
from runtime.pallets.ml_compute.dispute import on_dispute_deadline
from runtime.pallets.ml_compute.genesis import apply_build
from runtime.pallets.ml_compute.jobs import on_assignment_due, on_commit_missed, on_settlement_due
from runtime.pallets.ml_compute.stakes import on_unbond_due
from runtime.pallets.ml_compute.types import MlConfig
from runtime.pallets.ml_compute.verification import on_verifier_draw_due


def on_job_timer(ctx: BlockContext, job_id: int) -> None:
    job = storage.Jobs.get(ctx.state, job_id)
    if job is None or job["timer"] != ctx.block_number:
        return  # superseded
    status = job["status"][0]
    if status == "Pending":
        on_assignment_due(ctx, job_id, job)
    elif status == "Assigned":
        on_commit_missed(ctx, job_id, job)
    elif status == "Committed":
        on_verifier_draw_due(ctx, job_id, job)
    elif status == "Verifying":
        on_settlement_due(ctx, job_id, job)


def run_item(ctx: BlockContext, item: tuple) -> None:
    kind, payload = item
    if kind == "Job":
        on_job_timer(ctx, payload)
    elif kind == "Dispute":
        on_dispute_deadline(ctx, payload)
    elif kind == "Withheld":
        on_withheld_due(ctx, payload)
    else:
        (role, _), who = payload
        on_unbond_due(ctx, role, who)


def on_initialize(ctx: BlockContext) -> None:
    if storage.StorageVersion.get(ctx.state) is None:
        apply_build(ctx, MlConfig(), [])
    for item in take_due(ctx):
        ctx.start_layer()
        try:
            run_item(ctx, item)
        except DispatchError:
            ctx.rollback_layer()
        else:
            ctx.commit_layer()
