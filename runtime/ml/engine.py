"""The exact engine's step: forward, fixed-point loss, backward, SGD with momentum on the grid.

This is the one function the solver runs millions of times, the verifier re-runs for a
segment, and the runtime's referee runs once for a disputed step: `apply_train_step_`. Its
result depends only on (pre-state, batch, hyper-parameters): every operation is exact or rounds
onto a fixed grid with round-half-even, so the state's hash is the same on any thread count,
BLAS, CPU or GPU.

Optimizer bounds (grid 2^-32, every master value |v| <= 2^36 grid steps = 16.0, hyper-parameters
with 16 fractional bits): wd·w, mu·m and lr·m are products of a <= 2^36 integer and a 16-bit
(<= 2^16 for lr <= 1) one, below 2^53, so exact in float64 before their rounding; the sums
g + wd·w and mu·m + g stay below 2^38. Clamping every master value after every step keeps these
bounds for any number of steps.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from runtime.ml.errors import HyperParameterError
from runtime.ml.fixed import Fx, pow2
from runtime.ml.job import HYPER_FRAC_BITS, HyperParams, validate_hyper
from runtime.ml.layers import (
    Bits,
    ConvLayer,
    FlattenLayer,
    Layer,
    LinearLayer,
    MaxPoolLayer,
    ReluLayer,
)
from runtime.ml.models import (
    MASTER_BOUND_BITS,
    MASTER_FRAC_BITS,
    Conv,
    Flatten,
    Linear,
    MaxPool2,
    ModelSpec,
    Relu,
    get_param_layout,
    init_params,
)
from runtime.ml.softmax import compute_loss_gradient, compute_metrics
from runtime.ml.state import TrainState

INPUT_FRAC_BITS = 8  # a uint8 pixel p is the value p / 256
MASTER_BOUND = float(1 << MASTER_BOUND_BITS)


@dataclass(frozen=True, slots=True)
class StepMetrics:
    """Display values of one step (never hashed): summed loss and number of correct labels."""

    loss_sum: torch.Tensor
    correct: torch.Tensor
    count: int


@dataclass(slots=True)
class Network:
    spec: ModelSpec
    batch_size: int
    layers: list[Layer]
    grad_slices: list[slice]  # where each parameter gradient goes in the flat gradient


@functools.lru_cache(maxsize=32)
def build_network(spec: ModelSpec, batch_size: int) -> Network:
    """Layer objects with their exact-product plans; raises ExactnessBoundError if none exists."""
    bits = Bits(spec.act_bits, spec.weight_bits, spec.grad_bits)
    layout = iter(get_param_layout(spec))
    layers: list[Layer] = []
    slices: list[slice] = []
    shape = spec.input_shape
    for layer in spec.layers:
        if isinstance(layer, (Linear, Conv)):
            w, b = next(layout), next(layout)
            ws, bs = slice(w.offset, w.offset + w.numel), slice(b.offset, b.offset + b.numel)
            slices += [ws, bs]
            if isinstance(layer, Linear):
                layers.append(LinearLayer(layer.in_features, layer.out_features, bits, batch_size, ws, bs))
                shape = (layer.out_features,)
            else:
                conv = ConvLayer(layer.in_channels, layer.out_channels, layer.kernel, (shape[1], shape[2]),
                                 bits, batch_size, ws, bs)
                layers.append(conv)
                shape = (layer.out_channels, *conv.out_hw)
        elif isinstance(layer, MaxPool2):
            layers.append(MaxPoolLayer())
            shape = (shape[0], shape[1] // 2, shape[2] // 2)
        elif isinstance(layer, Relu):
            layers.append(ReluLayer())
        elif isinstance(layer, Flatten):
            layers.append(FlattenLayer())
            shape = (math.prod(shape),)
    return Network(spec, batch_size, layers, slices)


def init_state(spec: ModelSpec, seed: bytes, device: torch.device | str = "cpu") -> TrainState:
    params = init_params(spec, seed).to(device)
    return TrainState(spec, 0, params, torch.zeros_like(params))


def to_input(spec: ModelSpec, images: torch.Tensor) -> Fx:
    """uint8 images (B, ...) -> the model's input as mantissas with exponent -8."""
    return Fx(images.to(torch.float32).view(images.shape[0], *spec.input_shape), -INPUT_FRAC_BITS)


def forward(net: Network, params: torch.Tensor, x: Fx, caches: list[list]) -> Fx:
    for layer, cache in zip(net.layers, caches, strict=True):
        x = layer.forward(x, params, cache)
    return x


def backward(net: Network, g: Fx, caches: list[list], grad: torch.Tensor) -> None:
    """Back-propagates `g` and writes every parameter gradient onto the 2^-32 grid in `grad`."""
    slot = len(net.grad_slices)
    for i in range(len(net.layers) - 1, -1, -1):
        need_dx = i > 0
        dx, grads = net.layers[i].backward(g, caches[i], need_dx)
        for pg in reversed(grads):
            slot -= 1
            view = grad[net.grad_slices[slot]].view(pg.m.shape)
            torch.mul(pg.m, pow2(pg.e + MASTER_FRAC_BITS), out=view)
        if dx is not None:
            g = dx


def apply_sgd_(state: TrainState, grad: torch.Tensor, hyper: HyperParams) -> None:
    """In place: torch.optim.SGD's momentum rule, each product rounded to the 2^-32 grid."""
    w, m = state.params, state.momentum
    grad.round_().clamp_(-MASTER_BOUND, MASTER_BOUND)
    if hyper.weight_decay_q16:
        grad.add_(torch.mul(w, hyper.weight_decay_q16 * pow2(-HYPER_FRAC_BITS)).round_())
    # From a zero buffer the first step gives m = g, as torch.optim.SGD's first step does.
    m.mul_(hyper.momentum_q16 * pow2(-HYPER_FRAC_BITS)).round_().add_(grad).clamp_(-MASTER_BOUND, MASTER_BOUND)
    w.sub_(torch.mul(m, hyper.lr_q16 * pow2(-HYPER_FRAC_BITS)).round_()).clamp_(-MASTER_BOUND, MASTER_BOUND)


def apply_train_step_(state: TrainState, images: torch.Tensor, labels: torch.Tensor,
                      hyper: HyperParams, net: Network | None = None) -> StepMetrics:
    """One exact training step on a batch, in place on `state` (step += 1).

    `net` defaults to the planned network; any other exact plan gives the same bits.
    """
    batch = images.shape[0]
    if batch != hyper.batch_size:
        raise HyperParameterError(f"batch of {batch} samples, job says {hyper.batch_size}")
    if net is None:
        net = build_network(state.model, batch)
    caches: list[list] = [[] for _ in net.layers]
    logits = forward(net, state.params, to_input(state.model, images), caches)
    g, p = compute_loss_gradient(logits, labels, hyper.batch_bits)
    loss_sum, correct = compute_metrics(logits, p, labels)
    grad = torch.empty_like(state.params)
    backward(net, g, caches, grad)
    apply_sgd_(state, grad, hyper)
    state.step += 1
    return StepMetrics(loss_sum, correct, batch)


def train_step(state: TrainState, images: torch.Tensor, labels: torch.Tensor,
               hyper: HyperParams) -> tuple[TrainState, StepMetrics]:
    """The pure form of `apply_train_step_`: returns a new state, leaves `state` alone."""
    validate_hyper(hyper)
    new = state.clone()
    return new, apply_train_step_(new, images, labels, hyper)


def predict(state: TrainState, images: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    """Predicted labels (int64) of uint8 images with the exact forward pass."""
    out = []
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk]
        net = build_network(state.model, part.shape[0])
        logits = forward(net, state.params, to_input(state.model, part), [[] for _ in net.layers])
        out.append(logits.m.argmax(dim=1))
    return torch.cat(out)


def compute_accuracy(state: TrainState, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of correct predictions (a display value)."""
    if images.shape[0] == 0:
        return 0.0
    return float((predict(state, images) == labels.to(torch.int64)).sum().item()) / images.shape[0]
