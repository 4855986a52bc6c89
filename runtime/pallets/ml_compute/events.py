"""ML-compute events: one for every step of a job's life, so a worker or a UI can follow a job
from the event stream alone."""

from typing import Any

from runtime.codec.scale import H256, Enum, Variant, Vec, boolean, u8, u32, u64
from runtime.context import BlockContext
from runtime.frame import event_enum
from runtime.pallets.indices import ML_COMPUTE
from runtime.pallets.ml_compute.types import JobId, Role, VerifierDuty
from runtime.types import AccountId, Balance, BlockNumber

Side = Enum(("gensyn_runtime", "ml_compute", "Side"), [Variant("Solver", 0), Variant("Challenger", 1)])
_job = ("job", JobId)

EVENTS = event_enum("MlCompute", [
    Variant("JobSubmitted", 0, [_job, ("submitter", AccountId), ("model", u32), ("bounty", Balance),
                                ("min_solver_stake", Balance)], ("A job was posted; its bounty is reserved.",)),
    Variant("JobCancelled", 1, [_job], ("The submitter cancelled a job not yet assigned; the bounty is refunded.",)),
    Variant("Registered", 2, [("who", AccountId), ("role", Role), ("stake", Balance)],
            ("A solver or verifier registered with its stake reserved.",)),
    Variant("Unbonding", 3, [("who", AccountId), ("role", Role), ("until", BlockNumber)],
            ("A solver or verifier left the draws; its stake frees at `until`.",)),
    Variant("Unbonded", 4, [("who", AccountId), ("role", Role), ("amount", Balance)],
            ("An unbonding ended; the stake is free.",)),
    Variant("JobAssigned", 5, [_job, ("solver", AccountId), ("seed", H256), ("commit_by", BlockNumber)],
            ("A solver was drawn; the draw also fixed the job's data seed.",)),
    Variant("SolverTimedOut", 6, [_job, ("solver", AccountId), ("penalty", Balance)],
            ("The solver missed its commit deadline and was penalised.",)),
    Variant("JobCommitted", 7, [_job, ("solver", AccountId), ("checkpoint_root", H256), ("final_state_hash", H256)],
            ("The solver committed to its checkpoints.",)),
    Variant("VerifiersDrawn", 8, [_job, ("duties", Vec(VerifierDuty)), ("attest_end", BlockNumber),
                                  ("challenge_end", BlockNumber)],
            ("Verifiers and the segments each must re-run were drawn.",)),
    Variant("Attested", 9, [_job, ("verifier", AccountId), ("segment", u32)],
            ("A drawn verifier attested that its re-run of a segment matched.",)),
    Variant("Challenged", 10, [_job, ("segment", u32), ("challenger", AccountId), ("bond", Balance),
                               ("by_verifier", boolean)], ("A segment was challenged with a bond.",)),
    Variant("SegmentRevealed", 11, [_job, ("lo_step", u64), ("hi_step", u64)],
            ("The solver revealed the disputed segment's start and end hashes.",)),
    Variant("MidpointPosted", 12, [_job, ("step", u64), ("state_hash", H256)],
            ("The solver posted its state hash at the runtime's midpoint.",)),
    Variant("MidpointAnswered", 13, [_job, ("step", u64), ("agree", boolean)],
            ("The challenger agreed or disagreed with the midpoint.",)),
    Variant("StepRefereed", 14, [_job, ("step", u64), ("post_hash", H256), ("solver_correct", boolean)],
            ("The runtime recomputed the disputed step.",)),
    Variant("DisputeResolved", 15, [_job, ("winner", Side), ("slashed", Balance), ("reward", Balance),
                                    ("rounds", u32), ("reason", u8)],
            ("A dispute ended: the loser's stake or bond was slashed, part to the winner, the rest burned.",)),
    Variant("VerifierSlashed", 16, [_job, ("verifier", AccountId), ("amount", Balance)],
            ("A verifier that attested a segment proven wrong was slashed.",)),
    Variant("JobSettled", 17, [_job, ("solver", AccountId), ("paid", Balance), ("fees", Balance)],
            ("The job settled: bounty to the solver less the verifiers' fees; the model is final.",)),
    Variant("JobRejected", 18, [_job, ("refunded", Balance), ("fees", Balance)],
            ("The solver was proven wrong; the bounty less fees went back to the submitter.",)),
    Variant("JobRefunded", 19, [_job, ("amount", Balance)], ("Nobody finished the job in time; the bounty was refunded.",)),
    Variant("FeePaid", 20, [_job, ("verifier", AccountId), ("amount", Balance)], ("An attestation fee was paid.",)),
    Variant("ArchitectureRegistered", 21, [("model", u32), ("state_bytes", u32)], ("A model architecture was registered.",)),
    Variant("DatasetRegistered", 22, [("dataset", H256), ("n_samples", u32)], ("A data set was registered.",)),
    Variant("CheckpointWithheld", 23, [_job, ("segment", u32), ("reporter", AccountId), ("deadline", BlockNumber)],
            ("A drawn verifier could not get a segment's start checkpoint; the solver must publish it by `deadline`.",)),
    Variant("CheckpointPublished", 24, [_job, ("index", u32), ("state_hash", H256)],
            ("A reported checkpoint was published on chain (with the job's checkpoint list).",)),
    Variant("DataWithheld", 25, [_job, ("segment", u32), ("slashed", Balance), ("reward", Balance)],
            ("The solver did not publish a reported checkpoint in time: slashed, the job rejected.",)),
])

# Why a dispute ended (DisputeResolved.reason).
REASONS = {
    "referee": 0,  # the runtime recomputed the step
    "timeout": 1,  # the party whose move it was missed its deadline
    "initial_state": 2,  # the solver's checkpoint 0 is not the job's initial state
    "final_state": 3,  # the solver's last checkpoint is not its committed final hash
    "no_disagreement": 4,  # the solver's end hash is the one the challenger claimed
}


def deposit(ctx: BlockContext, name: str, payload: Any = None) -> None:
    ctx.deposit_event(ML_COMPUTE, EVENTS, name, payload)
