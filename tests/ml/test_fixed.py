"""Exact products and grids: the per-layer exactness bound, chunk order, rounding."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given, settings

from runtime.ml.engine import build_network
from runtime.ml.errors import ExactnessBoundError
from runtime.ml.fixed import (
    F32_EXACT,
    F64_EXACT,
    Fx,
    exact_matmul,
    int8_product,
    plan_chunk,
    requantize,
)
from runtime.ml.layers import FLOAT, INT8, ConvLayer, LinearLayer
from runtime.ml.models import CNN, MLP


def _worst_case(shape: tuple[int, ...], bits: int, gen: torch.Generator) -> torch.Tensor:
    """Mantissas at the bound, random signs: every partial sum can reach K·2^a·2^b."""
    signs = torch.randint(0, 2, shape, generator=gen).mul(2).sub(1)
    return (signs * (1 << bits)).to(torch.float32)


@pytest.mark.parametrize("spec", [MLP, CNN], ids=["mlp", "cnn"])
@pytest.mark.parametrize("batch", [32, 64, 128, 1024])
@pytest.mark.parametrize("backend", [INT8, FLOAT])
def test_exactness_bound_per_layer(spec, batch, backend):
    """Every product of every layer: on int8, every int32 accumulator (each half of a split
    operand, and the combined result when kept in int32) stays below 2^31; on float, every
    float32 product or chunk obeys K·2^a·2^b <= 2^24 and float64 sums <= 2^53. The bias fits the
    headroom below the pre-activation's exact limit."""
    net = build_network(spec, batch, backend)
    gemm_layers = [layer for layer in net.layers if isinstance(layer, (LinearLayer, ConvLayer))]
    assert len(gemm_layers) == (2 if spec is MLP else 3)
    for layer in gemm_layers:
        for p in (layer.fwd, layer.dw, layer.dx):
            if p.backend == INT8:
                high, low = max(p.a_bits, p.b_bits), min(p.a_bits, p.b_bits)
                assert low <= 7
                halves = max(2 ** (high - 7), 64) if high > 7 else 2**high - 1
                assert p.k * halves * 127 < 2**31, (p, "int32 accumulator")
            elif p.chunk:
                assert p.k % p.chunk == 0 and p.chunk * 2 ** (p.a_bits + p.b_bits) <= F32_EXACT, p
            assert p.bound <= F64_EXACT, p
        limit = F32_EXACT if layer.out_dtype == torch.float32 else F64_EXACT
        assert layer.fwd.bound + layer.bias_bound < limit
        if isinstance(layer, ConvLayer):
            assert layer.k**2 * layer.dx.bound < (2**31 if layer.dx.backend == INT8 else F64_EXACT)
    if backend == INT8 and spec is CNN and batch == 1024:
        assert gemm_layers[0].dw.backend == FLOAT  # 589,824 terms would overflow int32


def test_layer_bound_figures():
    """The figures quoted in runtime/ml/layers.py's docstring."""
    mlp = build_network(MLP, 64, INT8)
    assert mlp.layers[0].fwd.bound == 784 * 127 * 127 < 2**24
    assert mlp.layers[0].dw.bound == 64 * 1023 * 127
    cnn = build_network(CNN, 64, INT8)
    conv1, conv2 = cnn.layers[0], cnn.layers[3]
    assert conv1.dw.k == 64 * 576 and conv1.dw.bound > 2**31 - 1  # combined in float64
    assert conv1.dw.k * 64 * 127 < 2**31  # but each half fits int32
    assert conv2.dx.bound * 25 < 2**31
    assert build_network(CNN, 64, FLOAT).layers[0].fwd.chunk == 25


def test_plan_rejects_unexact_shapes():
    with pytest.raises(ExactnessBoundError):
        plan_chunk(1 << 40, 10, 10)
    with pytest.raises(ExactnessBoundError):
        plan_chunk(16, 13, 12)
    with pytest.raises(ExactnessBoundError):
        plan_chunk(0, 7, 7)


@pytest.mark.parametrize("k", [784, 1000, 4096, 6000])
def test_chunk_plans_and_orders_agree(k):
    """One float32 product, chunks summed forwards or backwards, and float64 give equal bits
    on inputs at the bound, where any inexact partial sum would show."""
    gen = torch.Generator().manual_seed(k)
    a_bits, b_bits = 7, 7
    a = _worst_case((33, k), a_bits, gen)
    b = _worst_case((k, 17), b_bits, gen)
    reference = torch.matmul(a.double(), b.double())
    plans = {plan_chunk(k, a_bits, b_bits), 0}
    plans |= {c for c in (8, 16, 112, k) if k % c == 0 and c * 2 ** (a_bits + b_bits) <= F32_EXACT}
    for chunk in plans:
        for reverse in (False, True):
            out = exact_matmul(a, b, chunk, reverse_chunks=reverse).double()
            assert torch.equal(out, reference), (chunk, reverse)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=40), st.integers(1, 12), st.integers(-40, 40))
def test_requantize_bounds_and_rounding(values, bits, exponent):
    """Mantissas end up <= 2^bits, the value moves by at most half a grid step, and a tensor
    that already fits is not touched."""
    m = torch.tensor(values, dtype=torch.float64)
    out = requantize(Fx(m.clone(), exponent), bits)
    assert out.m.dtype == torch.float32
    assert out.m.abs().max().item() <= 2**bits - 1
    shift = out.e - exponent
    assert shift >= 0
    error = (out.m.double() * 2.0**shift - m).abs().max().item()
    assert error <= 2.0 ** (shift - 1)
    if max(abs(v) for v in values) <= 2**bits - 1:
        assert shift == 0 and torch.equal(out.m.double(), m)


def test_round_half_even():
    out = requantize(Fx(torch.tensor([1.0, 3.0, 5.0, -1.0, -3.0, 61.0]), 0), 5)
    assert out.e == 1
    assert out.m.tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, 30.0]
    # 63/2 = 31.5 would round to 32 > 2^5 - 1: one more bit of shift
    assert requantize(Fx(torch.tensor([63.0]), 0), 5).e == 2


@pytest.mark.parametrize("shape,a_bits,b_bits", [((64, 784, 256), 7, 7), ((256, 64, 784), 10, 7),
                                                  ((16, 36864, 25), 10, 7), ((4096, 32, 400), 10, 7),
                                                  ((33, 100, 17), 7, 13)])
def test_int8_products_are_exact(shape, a_bits, b_bits):
    """int8 products (with a split 10- or 13-bit operand) equal float64 ones at the bound."""
    m, k, n = shape
    gen = torch.Generator().manual_seed(k)
    a = _worst_case((m, k), a_bits, gen).clamp(-(2**a_bits - 1), 2**a_bits - 1)
    b = _worst_case((k, n), b_bits, gen).clamp(-(2**b_bits - 1), 2**b_bits - 1)
    out = int8_product(a if a_bits > 7 else a.to(torch.int8), b if b_bits > 7 else b.to(torch.int8),
                       a_bits, b_bits)
    assert torch.equal(out.double(), torch.matmul(a.double(), b.double()))
