"""Named errors of the exact training engine: what a solver, verifier or the referee rejects.

Every validity check of the ML path raises one of these (never an assert), so a caller can tell
a forged checkpoint from a bad batch from a job that was never valid in the first place.
"""

from __future__ import annotations

from runtime import merkle


class MlError(ValueError):
    """Base of every error the exact training engine raises on bad input."""


class UnknownArchitectureError(MlError):
    """A model id or name that the on-chain model registry does not hold."""


class UnknownDatasetError(MlError):
    """A dataset id or name that the dataset registry does not hold."""


class HyperParameterError(MlError):
    """A hyper-parameter outside its allowed range (learning rate, momentum, batch size, ...)."""


class ExactnessBoundError(MlError):
    """A job whose shapes, hyper-parameters or step count could break exact arithmetic."""


class StateDecodeError(MlError):
    """Training-state bytes that do not decode: wrong header, size, model or off-grid values."""


class StateHashMismatchError(MlError):
    """Training-state bytes whose blake2b-256 differs from the hash they were claimed to have."""


class MerkleProofError(MlError, merkle.MerkleProofError):
    """A sample or checkpoint whose Merkle proof does not lead to the committed root."""


class BatchMismatchError(MlError):
    """A batch that is not the one the job's seed fixes for that step."""


class StepRangeError(MlError):
    """A segment or replay asked for steps the state or job does not have."""
