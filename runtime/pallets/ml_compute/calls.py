"""ML-compute calls, with stable indices:

    0 submit_job  1 cancel_job  2 register_solver  3 register_verifier  4 unregister
    5 commit  6 attest  7 challenge  8 reveal_segment  9 bisect  10 answer  11 referee
    12 register_architecture (Root)  13 register_dataset (Root)
    14 report_unavailable  15 publish_checkpoint

Each call checks its origin first; the checks and writes are in the module of its step.
Weights are ref_time (10^12 per second); the referee's follows the model's step cost, derived
from the call's own arguments (the pre-state's length names the model), so a block cannot be
filled with more referee work than its weight limit allows.
"""

from __future__ import annotations

from typing import Any

from runtime.codec.scale import H256, Bytes, Vec, boolean, compact_u128, u16, u32, u64
from runtime.context import BlockContext
from runtime.frame import Call, ensure_root, ensure_signed
from runtime.pallets.ml_compute import availability, dispute, jobs, referee, registry, stakes, verification
from runtime.pallets.ml_compute.errors import ERRORS
from runtime.pallets.ml_compute.types import (
    MAX_BATCH,
    MAX_CHECKPOINTS,
    MAX_NAME_LEN,
    HyperParams,
    JobId,
    Metrics,
    ProofPath,
    Role,
    StateBytes,
    VerificationSpec,
)

# From scripts/bench/ml_pallet.py (dispatch times on the loaded 2-core machine: submit_job 176 µs,
# register_solver 91 µs, a Balances transfer 17 µs), with a margin of 2-3x.
SUBMIT_WEIGHT = 500_000_000
SMALL_WEIGHT = 100_000_000
REGISTER_WEIGHT = 300_000_000
COMMIT_WEIGHT = 200_000_000
PROOF_CALL_WEIGHT = 300_000_000  # attest, challenge, bisect, answer: a Merkle proof and a job
# reveal_segment of segment 0 computes the initial state (blake2b over every parameter): 4 µs a
# parameter of the largest model (measured ~3 µs under load on the 2-core machine).
REVEAL_WEIGHT = 300_000_000
INITIAL_STATE_WEIGHT = 4_000_000 * max(f.n_params for f in registry.ARCHITECTURE_FACTS.values())
REGISTRY_WEIGHT = 100_000_000

MAX_BATCH_BYTES = MAX_BATCH * 4096


def submit_job(ctx: BlockContext, origin: Any, model: int, dataset: bytes, hyper: dict[str, int], steps: int,
               checkpoint_every: int, bounty: int, verification: dict[str, int], deadline: int) -> None:
    """Post a training job; the bounty is reserved until the job settles or is refunded.
    `deadline` is the number of blocks an assigned solver has to commit."""
    who = ensure_signed(origin)
    jobs.apply_submit(ctx, who, model, dataset, hyper, steps, checkpoint_every, bounty, verification, deadline)


def cancel_job(ctx: BlockContext, origin: Any, job: int) -> None:
    """Cancel a job that no solver was assigned yet; the bounty is refunded."""
    jobs.apply_cancel(ctx, ensure_signed(origin), job)


def register_solver(ctx: BlockContext, origin: Any, stake: int) -> None:
    """Join the solver draws with `stake` reserved."""
    stakes.apply_register(ctx, ensure_signed(origin), "Solver", stake)


def register_verifier(ctx: BlockContext, origin: Any, stake: int) -> None:
    """Join the verifier draws with `stake` reserved."""
    stakes.apply_register(ctx, ensure_signed(origin), "Verifier", stake)


def unregister(ctx: BlockContext, origin: Any, role: Any) -> None:
    """Leave a role's draws; the stake frees after the unbonding delay."""
    name = role[0] if isinstance(role, tuple) else role
    stakes.apply_unregister(ctx, ensure_signed(origin), name)


def commit(ctx: BlockContext, origin: Any, job: int, checkpoint_root: bytes, final_state_hash: bytes,
           n_checkpoints: int, metrics: dict[str, int]) -> None:
    """The assigned solver commits to the Merkle root of its checkpoint hashes, once."""
    jobs.apply_commit(ctx, ensure_signed(origin), job, checkpoint_root, final_state_hash, n_checkpoints, metrics)


def attest(ctx: BlockContext, origin: Any, job: int, segment: int, end_state_hash: bytes, proof: list[bytes]) -> None:
    """A drawn verifier attests that its re-run of `segment` ended on the committed checkpoint
    (`end_state_hash`, with its Merkle proof against the commitment)."""
    verification.apply_attest(ctx, ensure_signed(origin), job, segment, end_state_hash, proof)


def challenge(ctx: BlockContext, origin: Any, job: int, segment: int, claimed_end_hash: bytes, bond: int) -> None:
    """Dispute `segment`'s end state with a bond (a drawn verifier or any whistleblower)."""
    dispute.apply_challenge(ctx, ensure_signed(origin), job, segment, claimed_end_hash, bond)


def reveal_segment(ctx: BlockContext, origin: Any, job: int, segment: int, start_hash: bytes,
                   start_proof: list[bytes], end_hash: bytes, end_proof: list[bytes]) -> None:
    """The solver's first move: the disputed segment's start and end hashes, proven. `segment`
    repeats the dispute's, so that the call's weight can include segment 0's initial-state check."""
    dispute.apply_reveal(ctx, ensure_signed(origin), job, segment, start_hash, start_proof, end_hash, end_proof)


def compute_reveal_weight(job: int, segment: int, **_proofs: Any) -> int:
    return REVEAL_WEIGHT + (INITIAL_STATE_WEIGHT if segment == 0 else 0)


def bisect(ctx: BlockContext, origin: Any, job: int, mid_hash: bytes) -> None:
    """The solver posts its state hash at the dispute's midpoint step."""
    dispute.apply_bisect(ctx, ensure_signed(origin), job, mid_hash)


def answer(ctx: BlockContext, origin: Any, job: int, agree: bool) -> None:
    """The challenger agrees or disagrees with the solver's midpoint hash."""
    dispute.apply_answer(ctx, ensure_signed(origin), job, agree)


def referee_call(ctx: BlockContext, origin: Any, job: int, pre_state: bytes, images: bytes, labels: bytes,
                 proofs: list[list[bytes]]) -> None:
    """Anyone submits the disputed step's pre-state and batch (images, labels, a Merkle proof
    per sample); the runtime recomputes the step and slashes the side that lied."""
    referee.apply_referee(ctx, ensure_signed(origin), job, pre_state, images, labels, proofs)


def report_unavailable(ctx: BlockContext, origin: Any, job: int, segment: int) -> None:
    """A drawn verifier cannot get `segment`'s start checkpoint (or the job's checkpoint list):
    the solver must publish it on chain before the deadline, or lose its lock."""
    availability.apply_report_unavailable(ctx, ensure_signed(origin), job, segment)


def publish_checkpoint(ctx: BlockContext, origin: Any, job: int, index: int, state: bytes, hashes: list[bytes]) -> None:
    """Publish a checkpoint reported unavailable, with the job's checkpoint hashes (which must
    rebuild its commitment); nodes keep the bytes in their checkpoint stores."""
    availability.apply_publish(ctx, ensure_signed(origin), job, index, state, hashes)


def compute_publish_weight(job: int, index: int, state: bytes, hashes: list[bytes]) -> int:
    """Hashing the bytes (blake2b, ~1 ns a byte measured; 3x margin) and rebuilding the root."""
    return PROOF_CALL_WEIGHT + 3_000 * len(state) + 2_000_000 * len(hashes)


def register_architecture(ctx: BlockContext, origin: Any, model: int) -> None:
    """Enable a model architecture of the runtime's code for jobs (Root)."""
    ensure_root(origin)
    facts = registry.ARCHITECTURE_FACTS.get(model)
    if facts is None:
        raise ERRORS("UnknownModel", f"the runtime has no architecture {model}")
    registry.apply_register_architecture(ctx, facts)


def register_dataset(ctx: BlockContext, origin: Any, root: bytes, name: bytes, n_samples: int, sample_bytes: int,
                     n_classes: int) -> None:
    """Register a data set by the Merkle root of its training samples (Root)."""
    ensure_root(origin)
    registry.apply_register_dataset(ctx, root, {"name": name, "n_samples": n_samples, "sample_bytes": sample_bytes,
                                                "n_classes": n_classes})


def compute_referee_call_weight(job: int, pre_state: bytes, images: bytes, labels: bytes, proofs: list[list[bytes]]) -> int:
    """The referee's weight from its arguments: the model whose state has this length (the
    costliest per byte when none has), the batch's size and its proofs' depth."""
    facts = registry.find_architecture_by_state_bytes(len(pre_state))
    if facts is None:
        per_byte = max(f.macs_per_sample / f.state_bytes for f in registry.ARCHITECTURE_FACTS.values())
        macs = int(per_byte * len(pre_state)) + 1
    else:
        macs = facts.macs_per_sample
    depth = max((len(p) for p in proofs), default=0)
    return registry.compute_referee_weight(len(pre_state), macs, max(len(labels), 1), depth)


_job = ("job", JobId)
CALLS = [
    Call("submit_job", 0, [("model", u32), ("dataset", H256), ("hyper", HyperParams), ("steps", u64),
                           ("checkpoint_every", u64), ("bounty", compact_u128), ("verification", VerificationSpec),
                           ("deadline", u32)], submit_job, SUBMIT_WEIGHT,
         docs="Post a training job with its bounty in escrow."),
    Call("cancel_job", 1, [_job], cancel_job, SMALL_WEIGHT, docs="Cancel a job not yet assigned; the bounty is refunded."),
    Call("register_solver", 2, [("stake", compact_u128)], register_solver, REGISTER_WEIGHT,
         docs="Register as a solver with a stake."),
    Call("register_verifier", 3, [("stake", compact_u128)], register_verifier, REGISTER_WEIGHT,
         docs="Register as a verifier with a stake."),
    Call("unregister", 4, [("role", Role)], unregister, REGISTER_WEIGHT, docs="Leave a role; the stake frees after the unbonding delay."),
    Call("commit", 5, [_job, ("checkpoint_root", H256), ("final_state_hash", H256), ("n_checkpoints", u32),
                       ("metrics", Metrics)], commit, COMMIT_WEIGHT, docs="The assigned solver commits to its checkpoints."),
    Call("attest", 6, [_job, ("segment", u32), ("end_state_hash", H256), ("proof", ProofPath)], attest, PROOF_CALL_WEIGHT,
         docs="A drawn verifier attests a segment's end state."),
    Call("challenge", 7, [_job, ("segment", u32), ("claimed_end_hash", H256), ("bond", compact_u128)], challenge,
         PROOF_CALL_WEIGHT, docs="Challenge a segment with a bond."),
    Call("reveal_segment", 8, [_job, ("segment", u32), ("start_hash", H256), ("start_proof", ProofPath),
                               ("end_hash", H256), ("end_proof", ProofPath)], reveal_segment, compute_reveal_weight,
         docs="The solver reveals the disputed segment's start and end hashes."),
    Call("bisect", 9, [_job, ("mid_hash", H256)], bisect, PROOF_CALL_WEIGHT, docs="The solver posts the midpoint state hash."),
    Call("answer", 10, [_job, ("agree", boolean)], answer, PROOF_CALL_WEIGHT, docs="The challenger answers the midpoint."),
    Call("referee", 11, [_job, ("pre_state", StateBytes), ("images", Bytes(max_len=MAX_BATCH_BYTES)),
                         ("labels", Bytes(max_len=MAX_BATCH)), ("proofs", Vec(ProofPath, max_len=MAX_BATCH))],
         referee_call, compute_referee_call_weight, docs="Recompute the disputed step from a proven pre-state and batch."),
    Call("register_architecture", 12, [("model", u32)], register_architecture, REGISTRY_WEIGHT,
         docs="Enable a model architecture (Root)."),
    Call("register_dataset", 13, [("root", H256), ("name", Bytes(max_len=MAX_NAME_LEN)), ("n_samples", u32),
                                  ("sample_bytes", u32), ("n_classes", u16)], register_dataset, REGISTRY_WEIGHT,
         docs="Register a data set by its Merkle root (Root)."),
    Call("report_unavailable", 14, [_job, ("segment", u32)], report_unavailable, PROOF_CALL_WEIGHT,
         docs="A drawn verifier reports that it cannot get a segment's start checkpoint."),
    Call("publish_checkpoint", 15, [_job, ("index", u32), ("state", StateBytes),
                                    ("hashes", Vec(H256, max_len=MAX_CHECKPOINTS))], publish_checkpoint,
         compute_publish_weight, docs="Publish a checkpoint reported unavailable, with the job's checkpoint list."),
]
