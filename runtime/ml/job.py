"""A training job as the chain records it: model, dataset, seed, hyper-parameters, steps.

Hyper-parameters are integers in units of 2^-16 (no floats in consensus values): a learning
rate of 0.0625 is `lr_q16 = 4096`. Validation here is what `submit_job` runs before escrow, so a
job that could break the exactness bound never starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.codec import canonical
from runtime.hashing import blake2_256
from runtime.ml.errors import ExactnessBoundError, HyperParameterError, StepRangeError
from runtime.ml.fixed import F64_EXACT_BITS
from runtime.ml.models import MASTER_BOUND_BITS, get_model

HYPER_FRAC_BITS = 16
ONE_Q16 = 1 << HYPER_FRAC_BITS
MAX_BATCH_BITS = 10
MAX_WEIGHT_DECAY_Q16 = 1 << 12  # 1/16
# The step counter and the data schedule's epoch are 64-bit fields of the state and the batch
# key; 2^48 steps keeps both far inside them. Magnitudes do not grow with the step count: every
# master value is clamped to 2^36 grid steps after every update (see engine.apply_sgd_).
MAX_STEPS = 1 << 48
SEED_BYTES = 32


@dataclass(frozen=True, slots=True)
class HyperParams:
    """SGD with momentum: m ← mu·m + (g + wd·w); w ← w − lr·m (torch.optim.SGD's rule)."""

    lr_q16: int = 3277  # ~0.05
    momentum_q16: int = 58982  # ~0.9
    weight_decay_q16: int = 0
    batch_size: int = 64

    @property
    def batch_bits(self) -> int:
        return self.batch_size.bit_length() - 1

    def canonical(self) -> list:
        return [self.lr_q16, self.momentum_q16, self.weight_decay_q16, self.batch_size]


@dataclass(frozen=True, slots=True)
class TrainingJob:
    """Everything that fixes a run bit for bit. `dataset_id` is the dataset's Merkle root."""

    model_id: int
    dataset_id: bytes
    seed: bytes
    hyper: HyperParams
    steps: int
    checkpoint_every: int

    def canonical(self) -> list:
        return [
            self.model_id,
            self.dataset_id,
            self.seed,
            self.hyper.canonical(),
            self.steps,
            self.checkpoint_every,
        ]

    @property
    def job_hash(self) -> bytes:
        return blake2_256(canonical.encode(self.canonical()))

    @property
    def n_checkpoints(self) -> int:
        """Checkpoints 0 (initial state) .. n, the last one after the final step."""
        return -(-self.steps // self.checkpoint_every) + 1

    def get_checkpoint_step(self, index: int) -> int:
        if not 0 <= index < self.n_checkpoints:
            raise StepRangeError(f"checkpoint {index} outside 0..{self.n_checkpoints - 1}")
        return min(index * self.checkpoint_every, self.steps)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_hyper(hyper: HyperParams) -> None:
    """Raises HyperParameterError or ExactnessBoundError for hyper-parameters out of range."""
    for name in ("lr_q16", "momentum_q16", "weight_decay_q16", "batch_size"):
        if not _is_int(getattr(hyper, name)):
            raise HyperParameterError(f"{name} must be an integer")
    # Verify that lr·m stays exact: lr has 16 fractional bits and |m| <= 2^36 grid steps, so
    # lr <= 1 keeps the product below 2^(17+36) = 2^53.
    if hyper.lr_q16 > ONE_Q16:
        raise ExactnessBoundError(f"learning rate {hyper.lr_q16}/2^16 > 1 breaks the 2^53 bound")
    if MASTER_BOUND_BITS + HYPER_FRAC_BITS + 1 > F64_EXACT_BITS:
        raise ExactnessBoundError("master bound too large for exact hyper-parameter products")
    if hyper.lr_q16 <= 0:
        raise HyperParameterError(f"learning rate must be positive, got {hyper.lr_q16}/2^16")
    if not 0 <= hyper.momentum_q16 < ONE_Q16:
        raise HyperParameterError(f"momentum {hyper.momentum_q16}/2^16 outside [0, 1)")
    if not 0 <= hyper.weight_decay_q16 <= MAX_WEIGHT_DECAY_Q16:
        raise HyperParameterError(f"weight decay {hyper.weight_decay_q16}/2^16 outside [0, 1/16]")
    b = hyper.batch_size
    if b <= 0 or b & (b - 1) or b > 1 << MAX_BATCH_BITS:
        raise HyperParameterError(f"batch size {b} is not a power of two in 1..{1 << MAX_BATCH_BITS}")


def validate_job(job: TrainingJob) -> None:
    """Verify that a job is well formed; the dataset is checked against its registry elsewhere."""
    get_model(job.model_id)
    validate_hyper(job.hyper)
    if not isinstance(job.seed, bytes) or len(job.seed) != SEED_BYTES:
        raise HyperParameterError(f"seed must be {SEED_BYTES} bytes")
    if not isinstance(job.dataset_id, bytes) or len(job.dataset_id) != 32:
        raise HyperParameterError("dataset id must be a 32-byte Merkle root")
    if not _is_int(job.steps) or job.steps <= 0:
        raise HyperParameterError(f"step count must be a positive integer, got {job.steps!r}")
    if job.steps > MAX_STEPS:
        raise ExactnessBoundError(f"step count {job.steps} exceeds the 2^48 the state can count")
    if not _is_int(job.checkpoint_every) or not 0 < job.checkpoint_every <= job.steps:
        raise HyperParameterError(f"checkpoint interval {job.checkpoint_every!r} outside 1..{job.steps}")


def hyper_from_floats(lr: float, momentum: float, weight_decay: float, batch_size: int) -> HyperParams:
    """Nearest q16 hyper-parameters to float ones (for the CLI; the chain only sees integers)."""
    return HyperParams(
        lr_q16=round(lr * ONE_Q16),
        momentum_q16=round(momentum * ONE_Q16),
        weight_decay_q16=round(weight_decay * ONE_Q16),
        batch_size=batch_size,
    )
