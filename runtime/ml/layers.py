"""Layers of the exact engine: forward and backward of linear, conv, max-pool, ReLU, flatten.

Quantization-aware training on exact grids: each linear/conv layer rounds its input to
act_bits-bit mantissas, its master weights to weight_bits-bit mantissas, and the incoming
gradient to grad_bits-bit mantissas, each with a per-tensor power-of-two scale taken from the
tensor's exact max; the gradient passes the rounding unchanged (straight-through). Every matrix
product then runs under a plan from `fixed.plan_chunk` made when the network is built.

Per-layer exactness bound (7-bit activations a, 7-bit weights w, 10-bit gradients g, batch B;
each |mantissa| <= 2^bits). Every product below is exact in float32 iff K·2^(x+y) <= 2^24:
  MLP  linear 784->256 fwd  K=784: 784·2^14 = 12.8M <= 16.8M = 2^24, bias clamped to the rest
       dW  K=B=64: 64·2^17 = 2^23;  db: sum of 64 terms <= 2^10, in float64
       linear 256->10  fwd K=256: 2^22;  dW K=64: 2^23;  dX K=10: 10·2^17 < 2^21
  CNN  conv 1->16 k5 fwd K=25: 2^18.6;  dW per sample K=576 positions: 576·2^17 > 2^24, so
       chunks of 96 (96·2^17 < 2^24) summed in float64: 64·576·2^17 < 2^33 << 2^53
       conv 16->32 k5 fwd K=400: 400·2^14 < 2^23;  dW per sample K=64: 2^23, batch sum float64
       dX  K=32: 2^22 per column entry; col2im adds <= 25 of them in float64 (< 2^27)
       linear 512->10 fwd K=512: 2^23;  dW K=64: 2^23;  dX K=10 < 2^21
`build_network` recomputes these plans from the spec and raises ExactnessBoundError where no
exact plan exists; tests/ml check the figures above against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from runtime.ml.errors import ExactnessBoundError
from runtime.ml.fixed import (
    F32_EXACT,
    F64_EXACT,
    Fx,
    compute_shift,
    exact_batched_sum_matmul,
    exact_matmul,
    get_abs_max,
    plan_chunk,
    pow2,
    requantize,
)
from runtime.ml.models import MASTER_FRAC_BITS


@dataclass(frozen=True, slots=True)
class Bits:
    act: int
    weight: int
    grad: int


def quantize_master(w: torch.Tensor, bits: int) -> Fx:
    """Master grid integers (float64, value w·2^-32) -> float32 mantissas with |m| <= 2^bits."""
    s = compute_shift(get_abs_max(w), bits)
    m = torch.mul(w, pow2(-s)).round_() if s else w
    return Fx(m.to(torch.float32), s - MASTER_FRAC_BITS)


def quantize_bias(b: torch.Tensor, e_acc: int, bound: int, dtype: torch.dtype) -> torch.Tensor:
    """Master bias onto the product's grid 2^e_acc, clamped to the headroom `bound`."""
    return torch.mul(b, pow2(-MASTER_FRAC_BITS - e_acc)).round_().clamp_(-bound, bound).to(dtype)


def _headroom(k: int, bits: int, chunk: int) -> int:
    """What a bias may add to a product of K terms of (bits)-bit size and stay exact."""
    limit = F32_EXACT if chunk == k else F64_EXACT
    room = limit - k * (1 << bits)
    if room < 0:
        raise ExactnessBoundError(f"no headroom for a bias after {k} terms of 2^{bits}")
    return room


class LinearLayer:
    """y = x W^T + b with W (out, in) and the plans for its three products."""

    def __init__(self, in_f: int, out_f: int, bits: Bits, batch: int, w_slice: slice, b_slice: slice):
        self.in_f, self.out_f, self.bits = in_f, out_f, bits
        self.w_slice, self.b_slice = w_slice, b_slice
        self.fwd_chunk = plan_chunk(in_f, bits.act, bits.weight)
        self.dw_chunk = plan_chunk(batch, bits.grad, bits.act)
        self.dx_chunk = plan_chunk(out_f, bits.grad, bits.weight)
        self.bias_bound = _headroom(in_f, bits.act + bits.weight, self.fwd_chunk)

    def forward(self, x: Fx, params: torch.Tensor, cache: list) -> Fx:
        xq = requantize(Fx(x.m.reshape(x.m.shape[0], self.in_f), x.e), self.bits.act)
        wq = quantize_master(params[self.w_slice].view(self.out_f, self.in_f), self.bits.weight)
        e = xq.e + wq.e
        if self.fwd_chunk == self.in_f:
            b = quantize_bias(params[self.b_slice], e, self.bias_bound, torch.float32)
            y = torch.addmm(b, xq.m, wq.m.t())
        else:
            b = quantize_bias(params[self.b_slice], e, self.bias_bound, torch.float64)
            y = exact_matmul(xq.m, wq.m.t(), self.fwd_chunk).add_(b)
        cache.append((xq, wq))
        return Fx(y, e)

    def backward(self, g: Fx, cache: list, need_dx: bool) -> tuple[Fx | None, list[Fx]]:
        xq, wq = cache.pop()
        gq = requantize(g, self.bits.grad)
        dw = exact_matmul(gq.m.t(), xq.m, self.dw_chunk)
        db = gq.m.sum(0, dtype=torch.float64)
        dx = Fx(exact_matmul(gq.m, wq.m, self.dx_chunk), gq.e + wq.e) if need_dx else None
        return dx, [Fx(dw, gq.e + xq.e), Fx(db, gq.e)]


class ConvLayer:
    """Valid 2-D convolution, stride 1, as unfold + exact product; W (out, in·k·k)."""

    def __init__(self, cin: int, cout: int, k: int, in_hw: tuple[int, int], bits: Bits, batch: int,
                 w_slice: slice, b_slice: slice):
        self.cin, self.cout, self.k, self.bits = cin, cout, k, bits
        self.in_hw = in_hw
        self.out_hw = (in_hw[0] - k + 1, in_hw[1] - k + 1)
        if min(self.out_hw) <= 0:
            raise ExactnessBoundError(f"kernel {k} larger than input {in_hw}")
        self.w_slice, self.b_slice = w_slice, b_slice
        kk = cin * k * k
        positions = self.out_hw[0] * self.out_hw[1]
        self.fwd_chunk = plan_chunk(kk, bits.act, bits.weight)
        self.dw_chunk = plan_chunk(positions, bits.grad, bits.act, batch=batch)
        self.dx_chunk = plan_chunk(cout, bits.grad, bits.weight)
        # col2im adds up to k·k column entries, each < cout·2^(g+w): float64 keeps that exact.
        if k * k * cout > F64_EXACT >> (bits.grad + bits.weight):
            raise ExactnessBoundError("conv input gradient would exceed 2^53")
        self.bias_bound = _headroom(kk, bits.act + bits.weight, self.fwd_chunk)

    def forward(self, x: Fx, params: torch.Tensor, cache: list) -> Fx:
        xq = requantize(x, self.bits.act)
        cols = F.unfold(xq.m, self.k)  # (B, cin·k·k, L): a copy, exact
        wq = quantize_master(params[self.w_slice].view(self.cout, -1), self.bits.weight)
        e = xq.e + wq.e
        dtype = torch.float32 if self.fwd_chunk == cols.shape[1] else torch.float64
        b = quantize_bias(params[self.b_slice], e, self.bias_bound, dtype)
        y = exact_matmul(wq.m, cols, self.fwd_chunk).add_(b.view(-1, 1))
        cache.append((cols, wq, xq.e))
        return Fx(y.view(y.shape[0], self.cout, *self.out_hw), e)

    def backward(self, g: Fx, cache: list, need_dx: bool) -> tuple[Fx | None, list[Fx]]:
        cols, wq, e_x = cache.pop()
        gq = requantize(g, self.bits.grad)
        gm = gq.m.view(gq.m.shape[0], self.cout, -1)  # (B, cout, L)
        dw = exact_batched_sum_matmul(gm, cols.transpose(1, 2), self.dw_chunk)
        db = gm.sum((0, 2), dtype=torch.float64)
        dx = None
        if need_dx:
            dcols = exact_matmul(wq.m.t(), gm, self.dx_chunk).to(torch.float64)
            dx = Fx(F.fold(dcols, self.in_hw, self.k), gq.e + wq.e)
        return dx, [Fx(dw, gq.e + e_x), Fx(db, gq.e)]


class MaxPoolLayer:
    """2x2 max-pool, stride 2. Ties go to the first position in row-major window order (the
    kernel's strict `>` scan), so the gradient's route is a function of the values alone."""

    def forward(self, x: Fx, params: torch.Tensor, cache: list) -> Fx:
        y, idx = F.max_pool2d(x.m, 2, return_indices=True)
        cache.append((idx, x.m.shape))
        return Fx(y, x.e)

    def backward(self, g: Fx, cache: list, need_dx: bool) -> tuple[Fx | None, list[Fx]]:
        idx, shape = cache.pop()
        return Fx(F.max_unpool2d(g.m, idx, 2, output_size=shape[-2:]), g.e), []


class ReluLayer:
    def forward(self, x: Fx, params: torch.Tensor, cache: list) -> Fx:
        cache.append(x.m <= 0)
        return Fx(x.m.clamp_min_(0), x.e)

    def backward(self, g: Fx, cache: list, need_dx: bool) -> tuple[Fx | None, list[Fx]]:
        return Fx(g.m.masked_fill_(cache.pop(), 0), g.e), []


class FlattenLayer:
    def forward(self, x: Fx, params: torch.Tensor, cache: list) -> Fx:
        cache.append(x.m.shape)
        return Fx(x.m.reshape(x.m.shape[0], -1), x.e)

    def backward(self, g: Fx, cache: list, need_dx: bool) -> tuple[Fx | None, list[Fx]]:
        return Fx(g.m.reshape(cache.pop()), g.e), []


Layer = LinearLayer | ConvLayer | MaxPoolLayer | ReluLayer | FlattenLayer
