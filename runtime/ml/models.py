"""Model registry: the architectures a job may name on chain, by id and canonical spec.

A model is a sequence of layers (linear, conv via unfold, 2x2 max-pool, ReLU, flatten) plus the
bit widths of its fixed-point operands. Its canonical spec is canonical msgpack (no floats, no
maps), and its spec hash is blake2b-256 of that, so two nodes agree on a model byte for byte.
Initial weights come from integers derived from blake2b in counter mode: no float RNG, no
library sqrt, the same bits on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from runtime.codec import canonical
from runtime.hashing import blake2_256
from runtime.ml.errors import UnknownArchitectureError

MASTER_FRAC_BITS = 32  # master weights and momentum live on the grid 2^-32
MASTER_BOUND_BITS = 36  # |master value| <= 2^36 grid steps = 16.0


@dataclass(frozen=True, slots=True)
class Linear:
    in_features: int
    out_features: int

    def canonical(self) -> list:
        return ["linear", self.in_features, self.out_features]


@dataclass(frozen=True, slots=True)
class Conv:
    in_channels: int
    out_channels: int
    kernel: int

    def canonical(self) -> list:
        return ["conv", self.in_channels, self.out_channels, self.kernel]


@dataclass(frozen=True, slots=True)
class MaxPool2:
    def canonical(self) -> list:
        return ["maxpool2"]


@dataclass(frozen=True, slots=True)
class Relu:
    def canonical(self) -> list:
        return ["relu"]


@dataclass(frozen=True, slots=True)
class Flatten:
    def canonical(self) -> list:
        return ["flatten"]


LayerSpec = Linear | Conv | MaxPool2 | Relu | Flatten


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """An architecture as the chain knows it. Bits bound the GEMM operands' mantissas: every
    activation entering a product has |m| <= 2^act_bits, every weight 2^weight_bits, every
    back-propagated gradient 2^grad_bits."""

    model_id: int
    name: str
    input_shape: tuple[int, ...]  # per sample, e.g. (784,) or (1, 28, 28)
    n_classes: int
    layers: tuple[LayerSpec, ...]
    act_bits: int = 7
    weight_bits: int = 7
    grad_bits: int = 10

    def canonical(self) -> list:
        return [
            self.model_id,
            self.name,
            list(self.input_shape),
            self.n_classes,
            [layer.canonical() for layer in self.layers],
            self.act_bits,
            self.weight_bits,
            self.grad_bits,
        ]

    def encode(self) -> bytes:
        return canonical.encode(self.canonical())

    @property
    def spec_hash(self) -> bytes:
        return blake2_256(self.encode())


@dataclass(frozen=True, slots=True)
class ParamInfo:
    """One parameter tensor's place in the flat parameter vector."""

    name: str
    shape: tuple[int, ...]
    offset: int
    fan_in: int
    is_bias: bool

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


MLP = ModelSpec(
    model_id=1,
    name="mlp",
    input_shape=(784,),
    n_classes=10,
    layers=(Linear(784, 256), Relu(), Linear(256, 10)),
)

CNN = ModelSpec(
    model_id=2,
    name="cnn",
    input_shape=(1, 28, 28),
    n_classes=10,
    layers=(
        Conv(1, 16, 5),
        MaxPool2(),
        Relu(),
        Conv(16, 32, 5),
        MaxPool2(),
        Relu(),
        Flatten(),
        Linear(512, 10),
    ),
)

MODELS: dict[int, ModelSpec] = {spec.model_id: spec for spec in (MLP, CNN)}


def get_model(key: int | str) -> ModelSpec:
    """The registered model with this id or name; raises UnknownArchitectureError."""
    for spec in MODELS.values():
        if key == spec.model_id or key == spec.name:
            return spec
    raise UnknownArchitectureError(f"no registered architecture {key!r}")


def get_param_layout(spec: ModelSpec) -> list[ParamInfo]:
    """Weights then bias of each linear/conv layer, in layer order, packed without gaps."""
    infos: list[ParamInfo] = []
    offset = 0
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, Linear):
            fan_in, w_shape, out = layer.in_features, (layer.out_features, layer.in_features), layer.out_features
        elif isinstance(layer, Conv):
            fan_in = layer.in_channels * layer.kernel * layer.kernel
            w_shape, out = (layer.out_channels, fan_in), layer.out_channels
        else:
            continue
        infos.append(ParamInfo(f"layer{i}.weight", w_shape, offset, fan_in, False))
        offset += math.prod(w_shape)
        infos.append(ParamInfo(f"layer{i}.bias", (out,), offset, fan_in, True))
        offset += out
    return infos


def count_params(spec: ModelSpec) -> int:
    layout = get_param_layout(spec)
    return layout[-1].offset + layout[-1].numel


def compute_uniform_integers(key: bytes, n: int, bound: int) -> np.ndarray:
    """n integers uniform in [-bound, bound] from blake2b-256(key ‖ counter), 4 per digest.

    The modulo bias is below (2·bound+1)/2^64, negligible for bound < 2^40.
    """
    blocks = (n + 3) // 4
    stream = b"".join(blake2_256(key + i.to_bytes(8, "little")) for i in range(blocks))
    words = np.frombuffer(stream, dtype="<u8")[:n]
    return (words % np.uint64(2 * bound + 1)).astype(np.int64) - bound


def compute_init_bound(fan_in: int) -> int:
    """floor(2^32 / sqrt(fan_in)) grid steps: torch's default Linear/Conv bound, from isqrt."""
    return math.isqrt((1 << (2 * MASTER_FRAC_BITS)) // fan_in)


def init_params(spec: ModelSpec, seed: bytes) -> torch.Tensor:
    """Initial master weights as grid integers (float64, flat): U[-1/sqrt(fan_in), 1/sqrt(fan_in)]
    for weights, zero for biases."""
    layout = get_param_layout(spec)
    flat = np.zeros(count_params(spec), dtype=np.int64)
    for info in layout:
        if info.is_bias:
            continue
        key = b"gensyn-init" + spec.spec_hash + seed + info.name.encode()
        flat[info.offset : info.offset + info.numel] = compute_uniform_integers(
            key, info.numel, compute_init_bound(info.fan_in)
        )
    return torch.from_numpy(flat).to(torch.float64)
