"""Fixed-point primitives of the exact engine: grids, rounding, and exact matrix products.

Every value the engine computes is an integer mantissa times a power of two. Tensors hold the
integer mantissas (int8, int32, or float32/float64, where integers are exact up to 2^24 and
2^53) and a Python int holds the exponent; that pair is an `Fx`. Rounding back onto a grid is done in place
with round-half-even (`t.mul_(2^-s).round_()`), because out-of-place rounding costs 5x.

The exactness rule (DESIGN.md §9): a matrix product of mantissas bounded by 2^a and 2^b over an
inner dimension K is exact in float32 when K · 2^a · 2^b <= 2^24, because then every product and
every partial sum is an integer of magnitude <= 2^24, which float32 holds exactly; an exact sum
does not depend on the order of its terms, so BLAS blocking, thread count, vector width and GPU
give the same bits. When K is too large the product is split into chunks of K that each satisfy
the bound, the chunks run as one batched float32 product, and the chunk results are added in
float64, exact because K · 2^a · 2^b <= 2^53.

On a CPU with VNNI or AMX the same products run faster as integer arithmetic (`int8_product`):
operands of at most 7 bits are int8, torch._int_mm multiplies them with int32 accumulators (VNNI instructions, ~7x a
float32 GEMM here), and the result is exact while every accumulator stays below 2^31. A 10-bit
gradient is split into two int8 halves (128·hi + lo) and the two products are recombined. Both
routes compute the same integers, so they give the same bits (tests/ml check both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from runtime.ml.accel import get_kernels, is_usable
from runtime.ml.errors import ExactnessBoundError

F32_EXACT_BITS = 24
F64_EXACT_BITS = 53
QUANTIZE_TYPES = (torch.float32, torch.int8)  # operands the fused loops quantize float64 into
F32_EXACT = 1 << F32_EXACT_BITS
F64_EXACT = 1 << F64_EXACT_BITS

# Chunked products whose chunks would hold fewer than this many terms run in float64 instead:
# same bits, fewer tiny matrix products.
MIN_CHUNK = 32
MAX_CHUNKS = 512


@dataclass(slots=True)
class Fx:
    """A fixed-point tensor: value = m · 2^e, with `m` integer-valued (int8, int32, float32 or
    float64). `bits`, when known, bounds the mantissas: |m| <= 2^bits - 1."""

    m: torch.Tensor
    e: int
    bits: int | None = None


def max_mantissa(bits: int) -> int:
    return (1 << bits) - 1


def pow2(k: int) -> float:
    """2^k as an exact float64 (ldexp never rounds for -1074 <= k <= 1023)."""
    return math.ldexp(1.0, max(-1074, min(1023, k)))


def get_abs_max(t: torch.Tensor) -> float:
    """max|t|, exact: min and max never round (aminmax: one pass, 10x faster than an inf-norm)."""
    if t.numel() == 0:
        return 0.0
    lo, hi = torch.aminmax(t)
    return max(-float(lo.item()), float(hi.item()))


def compute_shift(abs_max: float, bits: int) -> int:
    """The least power-of-two shift s >= 0 after which every mantissa of magnitude <= `abs_max`
    rounds (half to even) to magnitude <= 2^bits - 1.

    With abs_max < 2^E (frexp's exponent), s = E - bits leaves values below 2^bits; one more
    bit is needed only if abs_max · 2^-s >= 2^bits - 1/2, which would round up to 2^bits. The
    comparison is exact (a power-of-two scaling and a dyadic constant).
    """
    limit = max_mantissa(bits)
    if abs_max <= limit:
        return 0
    s = math.frexp(abs_max)[1] - bits
    if math.ldexp(abs_max, -s) >= limit + 0.5:
        s += 1
    return s


def requantize(x: Fx, bits: int, dtype: torch.dtype = torch.float32) -> Fx:
    """Rounds `x` onto the coarsest power-of-two grid that keeps |mantissa| <= 2^bits - 1.

    Per-tensor power-of-two scaling (block floating point): the scale comes from max|m|, which
    is exact, so the grid is a pure function of the values. Rounds in place when it can (callers
    pass tensors they own). Returns mantissas of `dtype` (float32 or int8), exact either way.
    """
    if bits > F32_EXACT_BITS or (dtype == torch.int8 and bits > 7):
        raise ExactnessBoundError(f"cannot hold {bits}-bit mantissas in {dtype}")
    if x.bits is not None and x.bits <= bits:
        return Fx(x.m if x.m.dtype == dtype else x.m.to(dtype), x.e, x.bits)
    m = x.m
    kernels = get_kernels() if m.dtype in (torch.float32, torch.float64) and is_usable(m) else None
    if kernels is not None:  # one pass for the max, one to scale and round (in place for float32)
        s = compute_shift(kernels.abs_max(m), bits)
        if s > 0 and m.dtype == torch.float32:
            m = kernels.scale_round_(m, pow2(-s))
        elif s > 0 and dtype in QUANTIZE_TYPES:
            return Fx(kernels.quantize(m, pow2(-s), torch.empty(m.shape, dtype=dtype)), x.e + s, bits)
        elif s > 0:
            m = m.mul_(pow2(-s)).round_()
        return Fx(m if m.dtype == dtype else m.to(dtype), x.e + s, bits)
    s = compute_shift(get_abs_max(m), bits)
    if s > 0:
        if not m.is_floating_point():
            m = m.to(torch.float64)  # int32 mantissas: exact in float64
        m = m.mul_(pow2(-s)).round_()
    return Fx(m if m.dtype == dtype else m.to(dtype), x.e + s, bits)


INT8_BITS = 7
INT32_MAX = (1 << 31) - 1
SPLIT_MAX_BITS = 13


class Workspace:
    """Reusable output buffers of one layer, by name. Large temporaries freed and re-allocated
    every step make glibc return them to the OS and fault them back in (measured: ~2 ms of a
    7.8 ms CNN step); a buffer is reused only by the next step, after this one is done."""

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, key: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        buf = self._buffers.get(key)
        if buf is None or tuple(buf.shape) != tuple(shape) or buf.dtype != dtype or buf.device != device:
            buf = torch.empty(shape, dtype=dtype, device=device)
            self._buffers[key] = buf
        return buf


@dataclass(frozen=True, slots=True)
class Split:
    """An operand of up to 13 bits as two int8 halves: value = 128·hi + lo."""

    hi: torch.Tensor
    lo: torch.Tensor

    def t(self) -> Split:
        return Split(self.hi.t(), self.lo.t())


def split_int8(t: torch.Tensor, ws: Workspace | None = None, key: str = "split") -> Split:
    """t = 128·hi + lo for integer-valued float32 t with |t| <= 2^13 - 1: hi = round(t/128)
    (|hi| <= 64), lo = t - 128·hi (|lo| <= 64), both exact and both int8. On CPU in one fused
    pass; the torch chain elsewhere."""
    kernels = get_kernels() if t.dtype == torch.float32 and is_usable(t) else None
    if kernels is not None:
        shape = tuple(t.shape)
        if ws is None:
            hi8, lo8 = torch.empty(shape, dtype=torch.int8), torch.empty(shape, dtype=torch.int8)
        else:
            hi8, lo8 = ws.get(key + ".h8", shape, torch.int8, t.device), ws.get(key + ".l8", shape, torch.int8, t.device)
        kernels.split_int8(t, hi8, lo8)
        return Split(hi8, lo8)
    if ws is None:
        hi = torch.mul(t, pow2(-INT8_BITS)).round_()
        lo = torch.add(t, hi, alpha=-(1 << INT8_BITS))
        return Split(hi.to(torch.int8), lo.to(torch.int8))
    shape, dev = tuple(t.shape), t.device
    hi = torch.mul(t, pow2(-INT8_BITS), out=ws.get(key + ".hf", shape, torch.float32, dev)).round_()
    lo = torch.add(t, hi, alpha=-(1 << INT8_BITS), out=ws.get(key + ".lf", shape, torch.float32, dev))
    return Split(ws.get(key + ".h8", shape, torch.int8, dev).copy_(hi), ws.get(key + ".l8", shape, torch.int8, dev).copy_(lo))


def check_int8_product(k: int, a_bits: int, b_bits: int) -> None:
    """Raises ExactnessBoundError unless `int8_product` can run this product exactly."""
    if min(a_bits, b_bits) > INT8_BITS or max(a_bits, b_bits) > SPLIT_MAX_BITS:
        raise ExactnessBoundError(f"{a_bits}x{b_bits}-bit operands do not fit int8 products")
    high = max(a_bits, b_bits)
    # the larger operand's halves: |hi| <= 2^(h-7), |lo| <= 64
    part = max(1 << (high - INT8_BITS), 64) if high > INT8_BITS else max_mantissa(high)
    if k * part * max_mantissa(INT8_BITS) > INT32_MAX:
        raise ExactnessBoundError(f"inner dimension {k} overflows int32 accumulators")


def _int_mm(a: torch.Tensor, b: torch.Tensor, ws: Workspace | None, key: str) -> torch.Tensor:
    if ws is None:
        return torch._int_mm(a, b)
    return torch._int_mm(a, b, out=ws.get(key, (a.shape[0], b.shape[1]), torch.int32, a.device))


def int8_product(a: torch.Tensor | Split, b: torch.Tensor | Split, a_bits: int, b_bits: int,
                 ws: Workspace | None = None, key: str = "") -> torch.Tensor:
    """a @ b exactly with int8 operands and int32 accumulation (torch._int_mm, VNNI on CPU).

    Operands of <= 7 bits are int8; one operand may have up to 13 bits as integer-valued
    float32 (or already a `Split`) and is split as 128·hi + lo. Integer sums are exact as long as no accumulator
    passes 2^31 (`check_int8_product`); the halves are combined in int32 when the whole
    product's bound K·(2^a-1)·(2^b-1) fits it, else in float64. Returns int32 or float64.
    """
    if a_bits <= INT8_BITS and b_bits <= INT8_BITS:
        if isinstance(a, Split) or isinstance(b, Split):
            raise ExactnessBoundError("a split operand must have more than 7 bits")
        return _int_mm(a.to(torch.int8), b.to(torch.int8), ws, key)
    if a_bits > INT8_BITS:
        sa = a if isinstance(a, Split) else split_int8(a)
        if isinstance(b, Split):
            raise ExactnessBoundError("only one operand may be split")
        b8 = b.to(torch.int8)
        k = b8.shape[0]
        r_hi, r_lo = _int_mm(sa.hi, b8, ws, key + "hi"), _int_mm(sa.lo, b8, ws, key + "lo")
    else:
        sb = b if isinstance(b, Split) else split_int8(b)
        if isinstance(a, Split):
            raise ExactnessBoundError("only one operand may be split")
        a8 = a.to(torch.int8)
        k = a8.shape[-1]
        r_hi, r_lo = _int_mm(a8, sb.hi, ws, key + "hi"), _int_mm(a8, sb.lo, ws, key + "lo")
    if k * max_mantissa(a_bits) * max_mantissa(b_bits) <= INT32_MAX:
        kernels = get_kernels() if is_usable(r_hi, r_lo) else None
        if kernels is not None:
            return kernels.join_halves_(r_hi, r_lo)
        return r_hi.mul_(1 << INT8_BITS).add_(r_lo)
    return r_hi.to(torch.float64).mul_(1 << INT8_BITS).add_(r_lo)


def plan_chunk(k: int, a_bits: int, b_bits: int, batch: int = 1) -> int:
    """How an exact product over an inner dimension `k` is run.

    Returns `k` when one float32 product is exact, a chunk length c < k when the product must be
    split (c · 2^a · 2^b <= 2^24), or 0 for a float64 product. `batch` independent products of
    length k are summed together in the float64 cases (per-sample weight gradients).
    Raises ExactnessBoundError when even float64 could not hold every partial sum.
    """
    if k <= 0:
        raise ExactnessBoundError(f"empty inner dimension {k}")
    per_term_bits = a_bits + b_bits
    if per_term_bits > F32_EXACT_BITS:
        raise ExactnessBoundError(f"{a_bits}-bit by {b_bits}-bit products do not fit float32")
    if batch * k > F64_EXACT >> per_term_bits:
        raise ExactnessBoundError(
            f"inner dimension {batch}x{k} with {a_bits}+{b_bits}-bit operands exceeds 2^53"
        )
    max_chunk = F32_EXACT >> per_term_bits
    if k <= max_chunk:
        return k
    best = max((c for c in range(1, max_chunk + 1) if k % c == 0), default=1)
    if best < MIN_CHUNK or k // best > MAX_CHUNKS:
        return 0
    return best


def exact_matmul(a: torch.Tensor, b: torch.Tensor, chunk: int, reverse_chunks: bool = False) -> torch.Tensor:
    """a @ b over the last dim of `a` / second-to-last of `b`, exact, for a plan from `plan_chunk`.

    a: (..., M, K) and b: (..., K, N) float32 integer mantissas. chunk == K: one float32 product
    (returns float32). 0 < chunk < K: K split into chunks, one batched float32 product, chunk
    results summed in float64 (returns float64). chunk == 0: float64 product (returns float64).
    `reverse_chunks` sums the chunks in the opposite order, only to show that order is irrelevant.
    """
    k = a.shape[-1]
    if chunk == k:
        return torch.matmul(a, b)
    if chunk == 0:
        return torch.matmul(a.to(torch.float64), b.to(torch.float64))
    n_chunks = k // chunk
    a_c = a.unflatten(-1, (n_chunks, chunk)).movedim(-2, -3)  # (..., nc, M, c)
    b_c = b.unflatten(-2, (n_chunks, chunk))  # (..., nc, c, N)
    parts = torch.matmul(a_c, b_c)  # (..., nc, M, N), each exact in float32
    if reverse_chunks:
        parts = parts.flip(-3)
    return parts.sum(-3, dtype=torch.float64)
