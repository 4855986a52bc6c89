"""The exact engine's step: forward, fixed-point loss, backward, SGD with momentum on the grid.

This is the one function the solver runs millions of times, the verifier re-runs for a
segment, and the runtime's referee runs once for a disputed step: `apply_train_step_`. Its
result depends only on (pre-state, batch, hyper-parameters): every operation is exact or rounds
onto a fixed grid with round-half-even, so the state's hash is the same on any thread count,
BLAS, CPU or GPU.

Optimizer bounds, in grid steps of 2^-32 (every master value and the clamped gradient has
|v| <= 2^36 = 16.0; hyper-parameters have 16 fractional bits, lr <= 1, wd <= 1/16): wd·w, mu·m
and lr·m are exact products (<= 36 + 16 = 52 significant bits) on the grid 2^-16 of a step, and
g + wd·w, g + mu·m, w − lr·m have magnitude <= 2^37 on that grid: at most 37 + 16 = 53 bits, so
every fused multiply-add is exact in float64 and only its final round-half-even changes it.
Clamping every master value after every step keeps these bounds for any number of steps.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from runtime.ml import accel
from runtime.ml.accel import get_kernels, is_usable
from runtime.ml.errors import BatchMismatchError, ExactnessBoundError, HyperParameterError
from runtime.ml.fixed import Fx, pow2
from runtime.ml.job import HYPER_FRAC_BITS, HyperParams, validate_hyper
from runtime.ml.layers import (
    FLOAT,
    INT8,
    Bits,
    ConvLayer,
    FlattenLayer,
    Layer,
    LinearLayer,
    MaxPoolLayer,
    ReluLayer,
    operand_dtype,
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
# Gradient dtypes the fused optimizer loop takes, by their C names.
SGD_SOURCE_TYPES = {torch.float32: "float", torch.int32: "int32_t", torch.float64: "double"}


class StepMetrics:
    """Display values of one step (never hashed): summed loss and number of correct labels,
    computed only when read (most steps' are never looked at)."""

    __slots__ = ("_labels", "_logits", "_p", "_values", "count")

    def __init__(self, logits: Fx, p: torch.Tensor, labels: torch.Tensor, count: int):
        self._logits, self._p, self._labels = logits, p, labels
        self._values: tuple[torch.Tensor, torch.Tensor] | None = None
        self.count = count

    def _get(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._values is None:
            self._values = compute_metrics(self._logits, self._p, self._labels)
        return self._values

    @property
    def loss_sum(self) -> torch.Tensor:
        return self._get()[0]

    @property
    def correct(self) -> torch.Tensor:
        return self._get()[1]


@dataclass(slots=True)
class Network:
    spec: ModelSpec
    batch_size: int
    backend: str
    layers: list[Layer]
    grad_slices: list[slice]  # where each parameter gradient goes in the flat gradient


def get_backend(device: torch.device | str) -> str:
    """The product route of a device: on CPU the one the host measured and installed
    (runtime/ml/accel.py: int8 products where they pay), exact float32 products elsewhere. Both
    give the same integers, so the choice never changes a hash, only the speed."""
    if torch.device(device).type == "cpu":
        return accel.installed().cpu_backend
    return FLOAT


@functools.lru_cache(maxsize=32)
def build_network(spec: ModelSpec, batch_size: int, backend: str = FLOAT) -> Network:
    """Layer objects with their exact-product plans; raises ExactnessBoundError if none exists.
    `batch_size` 0 builds a forward-only network (any batch)."""
    if backend not in (INT8, FLOAT):
        raise ExactnessBoundError(f"unknown product backend {backend!r}")
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
                layers.append(LinearLayer(layer.in_features, layer.out_features, bits, batch_size, backend,
                                          ws, bs))
                shape = (layer.out_features,)
            else:
                conv = ConvLayer(layer.in_channels, layer.out_channels, layer.kernel, (shape[1], shape[2]),
                                 bits, batch_size, backend, ws, bs)
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
    return Network(spec, batch_size, backend, layers, slices)


def init_state(spec: ModelSpec, seed: bytes, device: torch.device | str = "cpu") -> TrainState:
    params = init_params(spec, seed).to(device)
    return TrainState(spec, 0, params, torch.zeros_like(params))


def to_input(spec: ModelSpec, images: torch.Tensor, backend: str) -> Fx:
    """uint8 images -> the model's input: a pixel p is the value p/256 and its mantissa is its
    top act_bits bits, p >> (8 - act_bits) (an integer shift: exact by definition). Images go
    NHWC for convolutional models, flat for the others."""
    shift = INPUT_FRAC_BITS - spec.act_bits
    m = images.bitwise_right_shift(shift) if shift > 0 else images
    b = images.shape[0]
    if len(spec.input_shape) == 3:
        c, h, w = spec.input_shape
        m = m.reshape(b, c, h, w).permute(0, 2, 3, 1)
    else:
        m = m.reshape(b, *spec.input_shape)
    return Fx(m.to(operand_dtype(backend)), -spec.act_bits, spec.act_bits)


def forward(net: Network, params: torch.Tensor, x: Fx, caches: list[list]) -> Fx:
    for layer, cache in zip(net.layers, caches, strict=True):
        x = layer.forward(x, params, cache)
    return x


def backward(net: Network, g: Fx, caches: list[list]) -> list[tuple[slice, Fx]]:
    """Back-propagates `g`; returns each parameter gradient with its place in the flat vector."""
    slot = len(net.grad_slices)
    out: list[tuple[slice, Fx]] = []
    for i in range(len(net.layers) - 1, -1, -1):
        dx, grads = net.layers[i].backward(g, caches[i], i > 0)
        for pg in reversed(grads):
            slot -= 1
            out.append((net.grad_slices[slot], pg))
        if dx is not None:
            g = dx
    return out


@dataclass(frozen=True, slots=True)
class GridWrite:
    """How `write_on_grid` puts one gradient onto the master grid: v = x.m · scale, rounded
    (half to even) when the scale is finer than the grid, clamped unless provably in bounds."""

    k: int
    scale: float
    round: bool
    clamp: bool
    bound: float  # bound on |v| after the write


def plan_grid_write(x: Fx) -> GridWrite:
    k = x.e + MASTER_FRAC_BITS
    bound = math.ldexp(float((1 << x.bits) - 1), k) + 1.0 if x.bits is not None else math.inf
    clamp = bound > MASTER_BOUND
    return GridWrite(k, pow2(k), k < 0, clamp, MASTER_BOUND if clamp else bound)


def write_on_grid(view: torch.Tensor, x: Fx) -> float:
    """view ← clamp(round(x · 2^32)), x's value onto the master grid (float64); returns a bound
    on |view|.

    Scaling by a power of two is exact; the one-pass form computes in float32 for float32 or
    int32 mantissas, so it is taken only when they are known to be <= 2^24 and the exponent is
    far from float32's under- and overflow. Values already on the grid (exponent >= -32) need
    no rounding, and values whose known bound is below the master bound need no clamp.
    """
    plan = plan_grid_write(x)
    small = x.m.dtype == torch.float32 or (x.m.dtype == torch.int32 and x.bits is not None and x.bits <= 24)
    if x.m.dtype == torch.float64 or (small and -100 < plan.k < 100):
        torch.mul(x.m, plan.scale, out=view)
    else:
        view.copy_(x.m)
        view.mul_(plan.scale)
    if plan.round:
        view.round_()
    if plan.clamp:
        view.clamp_(-MASTER_BOUND, MASTER_BOUND)
    return plan.bound


def apply_sgd_(state: TrainState, grad: torch.Tensor, hyper: HyperParams,
               grad_bound: float = MASTER_BOUND) -> None:
    """In place, torch.optim.SGD's momentum rule on the 2^-32 grid, for a gradient already
    clamped to the master bound (|g| <= grad_bound <= 2^36):
    g ← round(g + wd·w); m ← clamp(round(g + mu·m)); w ← clamp(round(w − lr·m)).

    Each fused multiply-add is exact before its one rounding (bounds in the module docstring),
    so a fused and an unfused kernel give the same bits. The momentum clamp is skipped only
    when it provably cannot act: |m| <= M before, and |g| + mu·M <= M, give |m| <= M after.
    From a zero buffer the first step gives m = g, as torch.optim.SGD's first step does.
    """
    w, m = state.params, state.momentum
    scale = pow2(-HYPER_FRAC_BITS)
    mu = hyper.momentum_q16 * scale
    if hyper.weight_decay_q16:
        wd = hyper.weight_decay_q16 * scale
        grad.add_(w, alpha=wd).round_()
        grad_bound += wd * MASTER_BOUND + 1.0
    torch.add(grad, m, alpha=mu, out=m).round_()
    if grad_bound + mu * MASTER_BOUND > MASTER_BOUND:
        m.clamp_(-MASTER_BOUND, MASTER_BOUND)
    w.sub_(m, alpha=hyper.lr_q16 * scale).round_().clamp_(-MASTER_BOUND, MASTER_BOUND)


def apply_gradients_(state: TrainState, grads: list[tuple[slice, Fx]], hyper: HyperParams) -> None:
    """Writes the gradients onto the master grid and takes the SGD step (`write_on_grid`, then
    `apply_sgd_`): in one fused pass per parameter tensor on CPU (gensyn_node/ml/kernels.py, lent through runtime/ml/accel.py), else
    as torch operations. The two give the same bits (tests/ml/test_kernels.py)."""
    plans = [plan_grid_write(x) for _, x in grads]
    kernels = get_kernels() if is_usable(state.params, state.momentum) else None
    if kernels is None or state.params.dtype != torch.float64:
        grad = torch.empty_like(state.params)
        for (where, x), plan in zip(grads, plans, strict=True):
            write_on_grid(grad[where].view(x.m.shape), x)
        apply_sgd_(state, grad, hyper, max(plan.bound for plan in plans))
        return
    scale = pow2(-HYPER_FRAC_BITS)
    mu, lr = hyper.momentum_q16 * scale, hyper.lr_q16 * scale
    wd = hyper.weight_decay_q16 * scale
    grad_bound = max(plan.bound for plan in plans)
    if wd:
        grad_bound += wd * MASTER_BOUND + 1.0
    clamp_m = grad_bound + mu * MASTER_BOUND > MASTER_BOUND  # as in apply_sgd_
    for (where, x), plan in zip(grads, plans, strict=True):
        src = x.m if x.m.is_contiguous() else x.m.contiguous()
        if src.dtype not in SGD_SOURCE_TYPES or src.numel() != where.stop - where.start:
            raise ExactnessBoundError(f"gradient of {src.dtype} {tuple(src.shape)} does not fit its parameter")
        kernels.sgd(state.params[where], state.momentum[where], src, plan.scale, plan.round, plan.clamp,
                    wd, mu, lr, clamp_m, MASTER_BOUND)


def validate_batch(spec: ModelSpec, images: torch.Tensor, labels: torch.Tensor) -> None:
    """Verify that a batch is uint8 images of the model's input size with labels in range."""
    if images.dtype != torch.uint8 or images[0].numel() != math.prod(spec.input_shape):
        raise BatchMismatchError(f"images must be uint8 of {spec.input_shape}, got {images.dtype} "
                                 f"{tuple(images.shape)}")
    if labels.dtype != torch.int64 or tuple(labels.shape) != (images.shape[0],):
        raise BatchMismatchError(f"labels must be int64 of shape ({images.shape[0]},)")
    lo, hi = torch.aminmax(labels)
    if int(lo) < 0 or int(hi) >= spec.n_classes:
        raise BatchMismatchError(f"labels outside 0..{spec.n_classes - 1}")


def apply_train_step_(state: TrainState, images: torch.Tensor, labels: torch.Tensor,
                      hyper: HyperParams, net: Network | None = None) -> StepMetrics:
    """One exact training step on a batch, in place on `state` (step += 1).

    `net` defaults to the planned network; any other exact plan gives the same bits.
    """
    batch = images.shape[0]
    if batch != hyper.batch_size:
        raise HyperParameterError(f"batch of {batch} samples, job says {hyper.batch_size}")
    validate_batch(state.model, images, labels)
    if net is None:
        net = build_network(state.model, batch, get_backend(state.params.device))
    caches: list[list] = [[] for _ in net.layers]
    logits = forward(net, state.params, to_input(state.model, images, net.backend), caches)
    g, p = compute_loss_gradient(logits, labels, hyper.batch_bits)
    apply_gradients_(state, backward(net, g, caches), hyper)
    state.step += 1
    return StepMetrics(logits, p, labels, batch)


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
        net = build_network(state.model, 0, get_backend(state.params.device))
        logits = forward(net, state.params, to_input(state.model, part, net.backend), [[] for _ in net.layers])
        out.append(logits.m.argmax(dim=1))
    return torch.cat(out)


def compute_accuracy(state: TrainState, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of correct predictions (a display value)."""
    if images.shape[0] == 0:
        return 0.0
    return float((predict(state, images) == labels.to(torch.int64)).sum().item()) / images.shape[0]
