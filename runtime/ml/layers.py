"""Layers of the exact engine: forward and backward of linear, conv, max-pool, ReLU, flatten.

Quantization-aware training on exact grids: each linear/conv layer rounds its input to
act_bits-bit mantissas, its master weights to weight_bits-bit mantissas, and the gradient it
sends back to grad_bits-bit mantissas, each with a per-tensor power-of-two scale taken from the
tensor's exact max; gradients pass the rounding unchanged (straight-through). Images and
feature maps are NHWC, so a convolution is one row-major patch copy and one matrix product.

Two backends compute the same integers. "int8" (CPU): 7-bit operands are int8 and products run
in torch._int_mm with int32 accumulators (VNNI); a 10-bit gradient is split into two int8
halves (128·hi + lo). "float": operands are integer-valued float32 and products are exact
float32 GEMMs, split into chunks summed in float64 where K is too large (DESIGN.md §9).

Per-layer exactness bound, with a = w = 7 bits (|m| <= 127), g = 10 bits (|m| <= 1023), B = 64.
int8 backend: every int32 accumulator stays below 2^31 - 1 = 2147483647:
  MLP  linear 784->256 fwd  K=784: 784·127·127 = 12.6M (< 2^24 too, so its float32 copy is exact)
       dW  K=64 halves: 64·64·127 = 520K; whole 64·1023·127 = 8.3M;  dX of 256->10: K=10
  CNN  conv 1->16 fwd K=25: 403K;  dW K=B·576=36864 halves: 36864·64·127 = 300M < 2^31,
       whole 4.8G > 2^31, so the halves are combined in float64;
       conv 16->32 fwd K=400: 6.5M;  dW K=B·64=4096: whole 4096·1023·127 = 532M;
       dX K=32: 4.2M per column entry; col2im adds <= 25 of them: 104M (int32);
       linear 512->10 fwd K=512: 8.3M;  dW K=64: 8.3M;  dX K=10: 1.3M
float backend: every float32 product obeys K·2^a·2^b <= 2^24 per product or per chunk, and
the chunk sums are in float64 (<= 2^53); col2im is done in float64.
Biases are rounded onto the product's grid and clamped to the headroom left below 2^24, so
the biased pre-activation is exact in float32. `build_network` checks all of this from the spec
and raises ExactnessBoundError where a bound cannot hold; tests/ml/test_fixed.py re-checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from runtime.ml.accel import FLOAT, INT8, get_kernels, is_usable
from runtime.ml.errors import ExactnessBoundError
from runtime.ml.fixed import (
    F32_EXACT,
    F64_EXACT,
    INT8_BITS,
    INT32_MAX,
    QUANTIZE_TYPES,
    Fx,
    Split,
    Workspace,
    check_int8_product,
    compute_shift,
    exact_matmul,
    get_abs_max,
    int8_product,
    max_mantissa,
    plan_chunk,
    pow2,
    requantize,
    split_int8,
)
from runtime.ml.models import MASTER_FRAC_BITS


@dataclass(frozen=True, slots=True)
class Bits:
    act: int
    weight: int
    grad: int


@dataclass(frozen=True, slots=True)
class Product:
    """One planned exact product: inner dimension, operand bits, backend, float chunk."""

    k: int
    a_bits: int
    b_bits: int
    backend: str
    chunk: int

    @property
    def bound(self) -> int:
        """max |result entry|: K·(2^a - 1)·(2^b - 1)."""
        return self.k * max_mantissa(self.a_bits) * max_mantissa(self.b_bits)

    @property
    def is_single_float(self) -> bool:
        """One float32 product, exact as it stands (no chunks, no float64)."""
        return self.backend == FLOAT and self.chunk == self.k

    def run(self, a: torch.Tensor | Split, b: torch.Tensor | Split, ws: Workspace | None = None,
            key: str = "") -> torch.Tensor:
        if self.backend == INT8:
            return int8_product(a, b, self.a_bits, self.b_bits, ws, key)
        return exact_matmul(_as_float32(a), _as_float32(b), self.chunk)


def _as_float32(x: torch.Tensor | Split) -> torch.Tensor:
    """An operand as integer-valued float32 (a split one rejoined: 128·hi + lo, exact)."""
    if isinstance(x, Split):
        return x.hi.to(torch.float32).mul_(1 << INT8_BITS).add_(x.lo.to(torch.float32))
    return x.to(torch.float32)


def grad_operand(gm: torch.Tensor, bits: int, backend: str, ws: Workspace | None = None) -> torch.Tensor | Split:
    """A gradient as a product operand: split once into int8 halves on the int8 backend (and
    shared by the weight-gradient and input-gradient products)."""
    return split_int8(gm, ws) if backend == INT8 and bits > INT8_BITS else gm


def sum_rows(gm: torch.Tensor, groups: int) -> torch.Tensor:
    """Column sums of an integer-valued float32 (rows, C) matrix (a bias gradient), exact:
    rows are summed in `groups` blocks in float32 (each block <= 2^24 by the caller's bound),
    then the block sums in float64."""
    return gm.view(groups, -1, gm.shape[-1]).sum(1).sum(0, dtype=torch.float64)


def plan_product(k: int, a_bits: int, b_bits: int, backend: str) -> Product:
    """Checks the exactness bound of a product and returns its plan. An int8 product whose
    int32 accumulators could overflow (a very long K) runs as an exact float product instead."""
    if backend == INT8:
        try:
            check_int8_product(k, a_bits, b_bits)
            return Product(k, a_bits, b_bits, backend, k)
        except ExactnessBoundError:
            pass
    return Product(k, a_bits, b_bits, FLOAT, plan_chunk(k, a_bits, b_bits))


def operand_dtype(backend: str) -> torch.dtype:
    return torch.int8 if backend == INT8 else torch.float32


def quantize_master(w: torch.Tensor, bits: int, dtype: torch.dtype) -> Fx:
    """Master grid integers (float64, value w·2^-32) -> mantissas with |m| <= 2^bits - 1.
    On CPU in two fused passes (max, then scale-round-convert); the torch chain elsewhere."""
    kernels = get_kernels() if w.dtype == torch.float64 and dtype in QUANTIZE_TYPES and is_usable(w) else None
    if kernels is not None:
        s = compute_shift(kernels.abs_max(w), bits)
        out = kernels.quantize(w, pow2(-s), torch.empty(w.shape, dtype=dtype))
        return Fx(out, s - MASTER_FRAC_BITS, bits)
    s = compute_shift(get_abs_max(w), bits)
    m = torch.mul(w, pow2(-s)).round_() if s else w
    return Fx(m.to(dtype), s - MASTER_FRAC_BITS, bits)


def quantize_bias(b: torch.Tensor, e_acc: int, bound: int, dtype: torch.dtype) -> torch.Tensor:
    """Master bias onto the product's grid 2^e_acc, clamped to the headroom `bound`.

    On CPU the rounded value goes to float32 before the clamp: the same result, because the
    conversion is monotonic and the bound (an integer below 2^24) is a float32, so a value past
    the bound converts to one at or past it."""
    scale = pow2(-MASTER_FRAC_BITS - e_acc)
    kernels = get_kernels() if dtype == torch.float32 and b.dtype == torch.float64 and is_usable(b) else None
    if kernels is not None and bound < F32_EXACT:
        return kernels.quantize(b, scale, torch.empty(b.shape, dtype=dtype)).clamp_(-bound, bound)
    return torch.mul(b, scale).round_().clamp_(-bound, bound).to(dtype)


def _output_plan(fwd: Product) -> tuple[torch.dtype, int]:
    """(dtype of the biased pre-activation, bias headroom) for a forward product."""
    limit = F32_EXACT if fwd.bound < F32_EXACT and (fwd.backend == INT8 or fwd.chunk == fwd.k) else F64_EXACT
    if fwd.backend == INT8 and limit == F64_EXACT:
        limit = INT32_MAX + 1
    if fwd.bound >= limit:
        raise ExactnessBoundError(f"forward product bound {fwd.bound} leaves no room for a bias")
    return (torch.float32 if limit == F32_EXACT else torch.float64), limit - 1 - fwd.bound


def _biased(y: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """y + b exactly: |y| <= bound and |b| <= headroom, so the sum stays exactly representable."""
    return (y if y.dtype == dtype else y.to(dtype)).add_(b)


class LinearLayer:
    """y = x W^T + b with W (out, in)."""

    def __init__(self, in_f: int, out_f: int, bits: Bits, batch: int, backend: str,
                 w_slice: slice, b_slice: slice):
        self.in_f, self.out_f, self.bits, self.backend = in_f, out_f, bits, backend
        self.w_slice, self.b_slice = w_slice, b_slice
        self.fwd = plan_product(in_f, bits.act, bits.weight, backend)
        # batch 0: a network for inference only, with no backward plans
        self.dw = plan_product(batch, bits.grad, bits.act, backend) if batch else None
        self.dx = plan_product(out_f, bits.grad, bits.weight, backend)
        self.out_dtype, self.bias_bound = _output_plan(self.fwd)

    def forward(self, x: Fx, params: torch.Tensor, cache: list) -> Fx:
        dtype = operand_dtype(self.backend)
        xq = requantize(Fx(x.m.reshape(x.m.shape[0], self.in_f), x.e, x.bits), self.bits.act, dtype)
        wq = quantize_master(params[self.w_slice].view(self.out_f, self.in_f), self.bits.weight, dtype)
        e = xq.e + wq.e
        b = quantize_bias(params[self.b_slice], e, self.bias_bound, self.out_dtype)
        cache.append((xq, wq))
        if self.fwd.is_single_float and self.out_dtype == torch.float32:
            # the bias inside the product: every partial sum stays below bound + headroom < 2^24
            return Fx(torch.addmm(b, xq.m, wq.m.t()), e)
        return Fx(_biased(self.fwd.run(xq.m, wq.m.t()), b, self.out_dtype), e)

    def backward(self, g: Fx, cache: list, need_dx: bool) -> tuple[Fx | None, list[Fx]]:
        xq, wq = cache.pop()
        if self.dw is None:
            raise ExactnessBoundError("a forward-only network has no backward pass")
        gq = requantize(g, self.bits.grad)
        ga = grad_operand(gq.m, self.bits.grad, self.backend)
        dw = self.dw.run(ga.t(), xq.m)
        db = gq.m.sum(0, dtype=torch.float64)
        dx = None
        if need_dx:
            dx = requantize(Fx(self.dx.run(ga, wq.m), gq.e + wq.e), self.bits.grad)
        db_bits = (gq.m.shape[0] * max_mantissa(self.bits.grad)).bit_length()
        return dx, [Fx(dw, gq.e + xq.e, self.dw.bound.bit_length()), Fx(db, gq.e, db_bits)]


def im2col_nhwc(x: torch.Tensor, k: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """(B, H, W, C) -> (B·Ho·Wo, k·k·C) patches, columns ordered (kh, kw, c): a pure copy."""
    b, h, w, c = x.shape
    ho, wo = h - k + 1, w - k + 1
    if out is None:
        out = torch.empty((b * ho * wo, k * k * c), dtype=x.dtype, device=x.device)
    kernels = get_kernels() if x.dtype in (torch.int8, torch.float32) and is_usable(x, out) else None
    if kernels is not None:  # one copy per patch row instead of a strided gather
        return kernels.im2col(x, k, out)
    if c == 1:  # without the unit channel dim the copy's inner loop runs along a kernel row
        out.view(b, ho, wo, k, k).copy_(x[..., 0].unfold(1, k, 1).unfold(2, k, 1))
    else:
        s = x.stride()
        out.view(b, ho, wo, k, k, c).copy_(x.as_strided((b, ho, wo, k, k, c), (s[0], s[1], s[2], s[1], s[2], s[3])))
    return out


def col2im_nhwc(cols: torch.Tensor, shape: tuple[int, int, int, int], k: int,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """Adjoint of `im2col_nhwc`: adds each patch entry back to its pixel (int32 or float64)."""
    b, h, w, c = shape
    ho, wo = h - k + 1, w - k + 1
    v = cols.view(b, ho, wo, k, k, c)
    out = torch.zeros(shape, dtype=cols.dtype, device=cols.device) if out is None else out.zero_()
    for i in range(k):
        for j in range(k):
            out[:, i : i + ho, j : j + wo, :] += v[:, :, :, i, j, :]
    return out


class ConvLayer:
    """Valid 2-D convolution, stride 1, NHWC, as patches @ W^T; W (out, in·k·k) as torch's."""

    def __init__(self, cin: int, cout: int, k: int, in_hw: tuple[int, int], bits: Bits, batch: int,
                 backend: str, w_slice: slice, b_slice: slice):
        self.cin, self.cout, self.k, self.bits, self.backend = cin, cout, k, bits, backend
        self.in_hw = in_hw
        self.out_hw = (in_hw[0] - k + 1, in_hw[1] - k + 1)
        if min(self.out_hw) <= 0:
            raise ExactnessBoundError(f"kernel {k} larger than input {in_hw}")
        self.w_slice, self.b_slice = w_slice, b_slice
        kk = cin * k * k
        positions = self.out_hw[0] * self.out_hw[1]
        self.fwd = plan_product(kk, bits.act, bits.weight, backend)
        self.dw = plan_product(batch * positions, bits.grad, bits.act, backend) if batch else None
        self.dx = plan_product(cout, bits.grad, bits.weight, backend)
        # col2im adds up to k·k entries of the dX product: int32 on the int8 backend, float64 else
        limit = INT32_MAX if backend == INT8 else F64_EXACT
        if k * k * self.dx.bound > limit:
            raise ExactnessBoundError("conv input gradient would overflow its accumulator")
        if positions * max_mantissa(bits.grad) > F32_EXACT:  # float32 per-sample bias-gradient sums
            raise ExactnessBoundError("conv bias gradient would not be exact in float32")
        self.out_dtype, self.bias_bound = _output_plan(self.fwd)
        self.ws = Workspace()

    def _weights(self, params: torch.Tensor) -> Fx:
        """Quantized weights with columns in the patches' (kh, kw, c) order."""
        wq = quantize_master(params[self.w_slice], self.bits.weight, operand_dtype(self.backend))
        k = self.k
        m = wq.m.view(self.cout, self.cin, k, k).permute(0, 2, 3, 1).reshape(self.cout, -1)
        return Fx(m, wq.e, wq.bits)

    def forward(self, x: Fx, params: torch.Tensor, cache: list) -> Fx:
        xq = requantize(x, self.bits.act, operand_dtype(self.backend))
        bsz, c = xq.m.shape[0], xq.m.shape[3]
        rows, cols_n = bsz * self.out_hw[0] * self.out_hw[1], self.k * self.k * c
        cols = im2col_nhwc(xq.m, self.k, self.ws.get("cols", (rows, cols_n), xq.m.dtype, xq.m.device))
        wq = self._weights(params)
        e = xq.e + wq.e
        b = quantize_bias(params[self.b_slice], e, self.bias_bound, self.out_dtype)
        acc = self.fwd.run(cols, wq.m.t(), self.ws, "fwd")
        y = self.ws.get("y", tuple(acc.shape), self.out_dtype, acc.device)
        y = (y.copy_(acc) if acc.data_ptr() != y.data_ptr() else y).add_(b)
        cache.append((cols, wq, xq.e, xq.m.shape))
        return Fx(y.view(xq.m.shape[0], *self.out_hw, self.cout), e)

    def backward(self, g: Fx, cache: list, need_dx: bool) -> tuple[Fx | None, list[Fx]]:
        cols, wq, e_x, in_shape = cache.pop()
        if self.dw is None:
            raise ExactnessBoundError("a forward-only network has no backward pass")
        gq = requantize(g, self.bits.grad)
        g2 = gq.m.reshape(-1, self.cout)
        ga = grad_operand(g2, self.bits.grad, self.backend, self.ws)
        k = self.k
        dw = self.dw.run(ga.t(), cols).view(self.cout, k, k, self.cin).permute(0, 3, 1, 2)
        db = sum_rows(g2, in_shape[0])  # per sample: L·(2^g - 1) <= 2^24
        dx = None
        if need_dx:
            dcols = self.dx.run(ga, wq.m, self.ws, "dx")
            kernels = get_kernels() if dcols.dtype in (torch.float32, torch.int32) and is_usable(dcols) else None
            if kernels is not None:  # one pass, float64 sums, no conversion of the patches
                folded = kernels.col2im(dcols, tuple(in_shape), k,
                                        self.ws.get("fold", tuple(in_shape), torch.float64, dcols.device))
            else:
                if dcols.dtype != torch.int32:
                    dcols = dcols.to(torch.float64)
                folded = col2im_nhwc(dcols, tuple(in_shape), k, self.ws.get("fold", tuple(in_shape), dcols.dtype,
                                                                             dcols.device))
            dx = requantize(Fx(folded, gq.e + wq.e), self.bits.grad)
        db_bits = (g2.shape[0] * max_mantissa(self.bits.grad)).bit_length()
        return dx, [Fx(dw, gq.e + e_x, self.dw.bound.bit_length()), Fx(db, gq.e, db_bits)]


class MaxPoolLayer:
    """2x2 max-pool, stride 2, NHWC (torch's channels-last kernels). Ties go to the first
    position in row-major window order (the kernels' strict `>` scan; tests/ml check it), so
    the gradient's route is a function of the values alone; windows do not overlap, so the
    backward pass only moves values and is exact."""

    def forward(self, x: Fx, params: torch.Tensor, cache: list) -> Fx:
        xc = x.m.permute(0, 3, 1, 2)  # NCHW view of NHWC memory: channels-last
        y, idx = F.max_pool2d(xc, 2, return_indices=True)
        cache.append((xc, idx))
        return Fx(y.permute(0, 2, 3, 1), x.e, x.bits)

    def backward(self, g: Fx, cache: list, need_dx: bool) -> tuple[Fx | None, list[Fx]]:
        xc, idx = cache.pop()
        gc = g.m.to(xc.dtype).permute(0, 3, 1, 2)
        gi = torch.ops.aten.max_pool2d_with_indices_backward(gc, xc, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)
        return Fx(gi.permute(0, 2, 3, 1), g.e, g.bits), []


class ReluLayer:
    """max(x, 0); the backward mask is sign(max(x, 0)) in {0, 1}, a multiply being 40x faster
    than a boolean masked_fill on CPU."""

    def forward(self, x: Fx, params: torch.Tensor, cache: list) -> Fx:
        y = x.m.clamp_min_(0)
        cache.append(torch.sign(y))
        return Fx(y, x.e, x.bits)

    def backward(self, g: Fx, cache: list, need_dx: bool) -> tuple[Fx | None, list[Fx]]:
        return Fx(g.m.mul_(cache.pop()), g.e, g.bits), []


class FlattenLayer:
    """NHWC feature maps -> vectors in torch's (C, H, W) order, so weights match nn.Linear's."""

    def forward(self, x: Fx, params: torch.Tensor, cache: list) -> Fx:
        cache.append(x.m.shape)
        return Fx(x.m.permute(0, 3, 1, 2).reshape(x.m.shape[0], -1), x.e, x.bits)

    def backward(self, g: Fx, cache: list, need_dx: bool) -> tuple[Fx | None, list[Fx]]:
        b, h, w, c = cache.pop()
        return Fx(g.m.view(b, c, h, w).permute(0, 2, 3, 1).contiguous(), g.e, g.bits), []


Layer = LinearLayer | ConvLayer | MaxPoolLayer | ReluLayer | FlattenLayer
