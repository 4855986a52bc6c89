"""ML-compute's SCALE types, its config (genesis-set, with defaults) and its fixed limits.

Types → constants → containers, as the consensus specs order them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from runtime.codec.scale import (
    H256,
    Bytes,
    Enum,
    Option,
    Struct,
    Tuple,
    Variant,
    Vec,
    boolean,
    text,
    u8,
    u16,
    u32,
    u64,
)
from runtime.types import AccountId, Balance, BlockNumber

# --- fixed limits (part of the runtime's code, as Substrate's `Config` constants) -----------------

PALLET_STORAGE_VERSION = 1
PERCENT = 100
PPM = 1_000_000
MAX_WORKERS = 256  # registered solvers (and, separately, verifiers) that draws walk
MAX_AGENDA_ITEMS = 1024  # timers due in one block
MAX_PROOF_DEPTH = 32
MAX_BATCH = 1024
MAX_NAME_LEN = 32
MAX_CHECKPOINTS = 4097  # a job's checkpoints: the config's max_checkpoints segments, plus one
# The referee's extrinsic carries a whole pre-state: up to the extrinsic limit.
MAX_STATE_BYTES = 4 * 1024 * 1024
MAX_TEXT = 256

JobId = u64
Role = Enum(("gensyn_runtime", "ml_compute", "Role"), [Variant("Solver", 0), Variant("Verifier", 1)])
HyperParams = Struct(("gensyn_runtime", "ml_compute", "HyperParams"), [
    ("lr_q16", u32), ("momentum_q16", u32), ("weight_decay_q16", u32), ("batch_size", u32),
])
VerificationSpec = Struct(("gensyn_runtime", "ml_compute", "VerificationSpec"), [
    ("verifiers", u8), ("segments", u16), ("fee", Balance),
])
Metrics = Struct(("gensyn_runtime", "ml_compute", "Metrics"), [
    ("loss_q16", u64), ("train_accuracy_ppm", u32), ("test_accuracy_ppm", u32),
])
Commitment = Struct(("gensyn_runtime", "ml_compute", "Commitment"), [
    ("checkpoint_root", H256), ("final_state_hash", H256), ("n_checkpoints", u32), ("metrics", Metrics),
    ("block", BlockNumber),
])
JobStatus = Enum(("gensyn_runtime", "ml_compute", "JobStatus"), [
    Variant("Pending", 0, [], ("Waiting for the solver draw.",)),
    Variant("Assigned", 1, [], ("A solver trains; it must commit by `commit_by`.",)),
    Variant("Committed", 2, [], ("Committed; the verifiers are drawn at `timer`.",)),
    Variant("Verifying", 3, [], ("Verifiers attest until `attest_end`; challenges until `challenge_end`.",)),
    Variant("Disputed", 4, [], ("A challenge's bisection game is open.",)),
    Variant("Settled", 5, [], ("Paid out: the trained model is final.",)),
    Variant("Rejected", 6, [], ("The solver was proven wrong and slashed; the bounty's rest refunded.",)),
    Variant("Refunded", 7, [], ("Nobody finished in time; the bounty was refunded.",)),
    Variant("Cancelled", 8, [], ("Cancelled by the submitter before assignment.",)),
])
STATUS_NAMES = [v.name for v in JobStatus.variants]
FINAL_STATUSES = frozenset({"Settled", "Rejected", "Refunded", "Cancelled"})
Attestation = Struct(("gensyn_runtime", "ml_compute", "Attestation"), [("verifier", AccountId), ("segment", u32)])
VerifierDuty = Struct(("gensyn_runtime", "ml_compute", "VerifierDuty"), [
    ("verifier", AccountId), ("segments", Vec(u32, max_len=65535)),
])
Withheld = Struct(("gensyn_runtime", "ml_compute", "Withheld"), [
    ("segment", u32), ("reporter", AccountId), ("deadline", BlockNumber),
])
MAX_WITHHELD = 64
Job = Struct(("gensyn_runtime", "ml_compute", "Job"), [
    ("submitter", AccountId),
    ("model", u32),
    ("dataset", H256),
    ("hyper", HyperParams),
    ("steps", u64),
    ("checkpoint_every", u64),
    ("bounty", Balance),
    ("verification", VerificationSpec),
    ("deadline", BlockNumber),
    ("submitted_at", BlockNumber),
    ("status", JobStatus),
    ("timer", BlockNumber),
    ("expires_at", BlockNumber),
    ("attempts", u8),
    ("tried", Vec(AccountId, max_len=255)),
    ("seed", Option(H256)),
    ("solver", Option(AccountId)),
    ("solver_lock", Balance),
    ("commit_by", BlockNumber),
    ("commitment", Option(Commitment)),
    ("duties", Vec(VerifierDuty, max_len=255)),
    ("attestations", Vec(Attestation, max_len=65535)),
    ("attest_end", BlockNumber),
    ("challenge_end", BlockNumber),
    ("disputes", u32),
    ("withheld", Vec(Withheld, max_len=MAX_WITHHELD)),
])
Worker = Struct(("gensyn_runtime", "ml_compute", "Worker"), [
    ("stake", Balance), ("locked", Balance), ("open", u32), ("unbonding_until", Option(BlockNumber)),
])
DisputePhase = Enum(("gensyn_runtime", "ml_compute", "DisputePhase"), [
    Variant("AwaitReveal", 0, [], ("The solver reveals the segment's start and end hashes with proofs.",)),
    Variant("AwaitMidpoint", 1, [], ("The solver posts its state hash at `mid_step`.",)),
    Variant("AwaitAnswer", 2, [], ("The challenger agrees or disagrees with the midpoint hash.",)),
    Variant("AwaitReferee", 3, [], ("One step is left: anyone submits its pre-state and batch.",)),
])
Dispute = Struct(("gensyn_runtime", "ml_compute", "Dispute"), [
    ("job", JobId),
    ("segment", u32),
    ("challenger", AccountId),
    ("bond", Balance),
    ("by_verifier", boolean),
    ("claimed_end_hash", H256),
    ("phase", DisputePhase),
    ("deadline", BlockNumber),
    ("lo_step", u64),
    ("lo_hash", H256),
    ("hi_step", u64),
    ("hi_hash", H256),
    ("mid_step", u64),
    ("mid_hash", Option(H256)),
    ("rounds", u32),
    ("opened_at", BlockNumber),
])
AgendaItem = Enum(("gensyn_runtime", "ml_compute", "AgendaItem"), [
    Variant("Job", 0, [(None, JobId)]),
    Variant("Dispute", 1, [(None, JobId)]),
    Variant("Unbond", 2, [(None, Tuple(Role, AccountId))]),
    Variant("Withheld", 3, [(None, JobId)]),
])
Architecture = Struct(("gensyn_runtime", "ml_compute", "Architecture"), [
    ("name", Bytes(max_len=MAX_NAME_LEN)),
    ("spec_hash", H256),
    ("n_params", u32),
    ("macs_per_sample", u64),
    ("state_bytes", u32),
    ("max_batch", u32),
])
DatasetInfo = Struct(("gensyn_runtime", "ml_compute", "DatasetInfo"), [
    ("name", Bytes(max_len=MAX_NAME_LEN)),
    ("n_samples", u32),
    ("sample_bytes", u32),
    ("n_classes", u16),
])
TrainedModel = Struct(("gensyn_runtime", "ml_compute", "TrainedModel"), [
    ("job", JobId),
    ("model", u32),
    ("dataset", H256),
    ("solver", AccountId),
    ("state_hash", H256),
    ("checkpoint_root", H256),
    ("n_checkpoints", u32),
    ("metrics", Metrics),
    ("settled_at", BlockNumber),
])
MlConfigType = Struct(("gensyn_runtime", "ml_compute", "MlConfig"), [
    ("assign_delay", u32),
    ("verify_delay", u32),
    ("attest_window", u32),
    ("challenge_window", u32),
    ("move_window", u32),
    ("unbonding_delay", u32),
    ("pending_timeout", u32),
    ("max_attempts", u8),
    ("max_deadline", u32),
    ("max_steps", u64),
    ("max_checkpoints", u32),
    ("max_verifiers", u8),
    ("max_segments", u16),
    ("min_solver_stake", Balance),
    ("min_verifier_stake", Balance),
    ("min_challenge_bond", Balance),
    ("reward_percent", u8),
    ("verifier_slash_percent", u8),
    ("miss_penalty_percent", u8),
])
StateBytes = Bytes(max_len=MAX_STATE_BYTES)
ProofPath = Vec(H256, max_len=MAX_PROOF_DEPTH)
Note = text


@dataclass(frozen=True, slots=True)
class MlConfig:
    """Timers in blocks, bounds, and the economics of disputes (percentages of a slashed amount)."""

    assign_delay: int = 1
    verify_delay: int = 1
    attest_window: int = 20
    challenge_window: int = 30
    move_window: int = 10
    unbonding_delay: int = 20
    pending_timeout: int = 100
    max_attempts: int = 3
    max_deadline: int = 100_000
    max_steps: int = 1_000_000
    max_checkpoints: int = 1024
    max_verifiers: int = 16
    max_segments: int = 64
    min_solver_stake: int = 10**12
    min_verifier_stake: int = 10**12
    min_challenge_bond: int = 10**12
    reward_percent: int = 25
    verifier_slash_percent: int = 50
    miss_penalty_percent: int = 10

    def validate(self) -> None:
        """Verify that the config can run: positive windows, percentages within 0..=100."""
        for name in ("assign_delay", "verify_delay", "attest_window", "challenge_window", "move_window",
                     "pending_timeout", "max_attempts", "max_deadline", "max_steps", "max_checkpoints",
                     "max_verifiers", "max_segments"):
            if getattr(self, name) < 1:
                raise ValueError(f"ml_compute config: {name} must be positive")
        if self.max_checkpoints + 1 > MAX_CHECKPOINTS:
            raise ValueError(f"ml_compute config: max_checkpoints above {MAX_CHECKPOINTS - 1}")
        if self.challenge_window < self.attest_window:
            raise ValueError("ml_compute config: the challenge window must not close before the attest window")
        for name in ("reward_percent", "verifier_slash_percent", "miss_penalty_percent"):
            if not 0 <= getattr(self, name) <= PERCENT:
                raise ValueError(f"ml_compute config: {name} must be within 0..=100")
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"ml_compute config: {f.name} must not be negative")

    def to_scale(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_scale(cls, value: dict[str, Any]) -> MlConfig:
        return cls(**value)
