"""Training state (parameters, momentum, step) and its canonical bytes and hash.

A checkpoint is these bytes: a canonical-msgpack header (magic, version, model spec hash, step,
parameter count) with a 4-byte little-endian length in front, then every master parameter and
every momentum value as an int64 grid integer, little-endian. `state_hash` is blake2b-256 of
the bytes, so a state's hash never depends on float formats or on the device that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from runtime.codec import canonical
from runtime.codec.errors import CodecError
from runtime.hashing import blake2_256
from runtime.ml.errors import StateDecodeError, StateHashMismatchError
from runtime.ml.models import MASTER_BOUND_BITS, MODELS, ModelSpec, count_params

MAGIC = b"gensyn-train-state"
VERSION = 1
MAX_HEADER_BYTES = 1024


@dataclass(slots=True)
class TrainState:
    """Master parameters and momentum as grid integers (float64, flat), and the step count.

    The engine updates the tensors in place; `clone` before keeping an old state.
    """

    model: ModelSpec
    step: int
    params: torch.Tensor
    momentum: torch.Tensor

    def clone(self) -> TrainState:
        return TrainState(self.model, self.step, self.params.clone(), self.momentum.clone())

    def to(self, device: torch.device | str) -> TrainState:
        return TrainState(self.model, self.step, self.params.to(device), self.momentum.to(device))


def encode_state(state: TrainState) -> bytes:
    """The canonical bytes of a state (see the module docstring)."""
    header = canonical.encode([MAGIC, VERSION, state.model.spec_hash, state.step, state.params.numel()])
    values = torch.cat([state.params, state.momentum]).cpu().to(torch.int64).numpy().astype("<i8", copy=False)
    return len(header).to_bytes(4, "little") + header + values.tobytes()


def compute_state_hash(state: TrainState) -> bytes:
    return blake2_256(encode_state(state))


def decode_state(data: bytes) -> TrainState:
    """Inverse of `encode_state`; raises StateDecodeError on anything but canonical bytes."""
    if len(data) < 4:
        raise StateDecodeError("state shorter than its header length")
    header_len = int.from_bytes(data[:4], "little")
    if header_len > MAX_HEADER_BYTES or 4 + header_len > len(data):
        raise StateDecodeError(f"state header length {header_len} out of range")
    try:
        header = canonical.decode(data[4 : 4 + header_len])
    except CodecError as exc:
        raise StateDecodeError(f"state header does not decode: {exc}") from exc
    if not isinstance(header, list) or len(header) != 5 or header[0] != MAGIC or header[1] != VERSION:
        raise StateDecodeError("not a version-1 training state")
    _, _, spec_hash, step, n_params = header
    model = _find_model(spec_hash)
    if not isinstance(step, int) or step < 0:
        raise StateDecodeError(f"bad step {step!r}")
    if n_params != count_params(model):
        raise StateDecodeError(f"{n_params} parameters, model {model.name} has {count_params(model)}")
    body = data[4 + header_len :]
    if len(body) != 16 * n_params:
        raise StateDecodeError(f"state body is {len(body)} bytes, expected {16 * n_params}")
    values = np.frombuffer(body, dtype="<i8")
    bound = 1 << MASTER_BOUND_BITS
    # Verify that every value is within the master bound. Not with np.abs: on int64 it wraps
    # at -2^63, so INT64_MIN would pass as a negative "magnitude".
    if values.size and (int(values.max()) > bound or int(values.min()) < -bound):
        raise StateDecodeError("state holds a value outside the master bound")
    tensor = torch.from_numpy(values.astype(np.float64))
    return TrainState(model, step, tensor[:n_params].clone(), tensor[n_params:].clone())


def decode_state_checked(data: bytes, expected_hash: bytes) -> TrainState:
    """Decodes a state only if its bytes hash to `expected_hash`; raises StateHashMismatchError."""
    actual = blake2_256(data)
    if actual != expected_hash:
        raise StateHashMismatchError(
            f"state bytes hash to {actual.hex()[:16]}…, expected {expected_hash.hex()[:16]}…"
        )
    return decode_state(data)


def _find_model(spec_hash: object) -> ModelSpec:
    for spec in MODELS.values():
        if spec.spec_hash == spec_hash:
            return spec
    raise StateDecodeError("state names a model spec the registry does not hold")
