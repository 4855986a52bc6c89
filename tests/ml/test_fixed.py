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
    exact_batched_sum_matmul,
    exact_matmul,
    plan_chunk,
    requantize,
)
from runtime.ml.layers import ConvLayer, LinearLayer
from runtime.ml.models import CNN, MLP


def _worst_case(shape: tuple[int, ...], bits: int, gen: torch.Generator) -> torch.Tensor:
    """Mantissas at the bound, random signs: every partial sum can reach K·2^a·2^b."""
    signs = torch.randint(0, 2, shape, generator=gen).mul(2).sub(1)
    return (signs * (1 << bits)).to(torch.float32)


def _layer_products(layer, batch: int) -> list[tuple[str, int, int, int, int, int]]:
    """(name, K, a_bits, b_bits, terms summed in one float32 product, chunk) of a layer."""
    b = layer.bits
    if isinstance(layer, LinearLayer):
        return [
            ("fwd", layer.in_f, b.act, b.weight, 1, layer.fwd_chunk),
            ("dw", batch, b.grad, b.act, 1, layer.dw_chunk),
            ("dx", layer.out_f, b.grad, b.weight, 1, layer.dx_chunk),
        ]
    positions = layer.out_hw[0] * layer.out_hw[1]
    return [
        ("fwd", layer.cin * layer.k * layer.k, b.act, b.weight, 1, layer.fwd_chunk),
        ("dw", positions, b.grad, b.act, batch, layer.dw_chunk),
        ("dx", layer.cout, b.grad, b.weight, 1, layer.dx_chunk),
    ]


@pytest.mark.parametrize("spec", [MLP, CNN], ids=["mlp", "cnn"])
@pytest.mark.parametrize("batch", [32, 64, 128])
def test_exactness_bound_per_layer(spec, batch):
    """Every product of every layer obeys K·2^a·2^b <= 2^24 per float32 product (or chunk) and
    <= 2^53 over everything summed in float64; the bias fits the remaining headroom."""
    net = build_network(spec, batch)
    gemm_layers = [layer for layer in net.layers if isinstance(layer, (LinearLayer, ConvLayer))]
    assert gemm_layers
    for layer in gemm_layers:
        for name, k, a, b, batch_terms, chunk in _layer_products(layer, batch):
            per_term = 1 << (a + b)
            if chunk == 0:
                assert batch_terms * k * per_term <= F64_EXACT, name
            else:
                assert k % chunk == 0, name
                assert chunk * per_term <= F32_EXACT, (name, k, chunk)
                assert batch_terms * k * per_term <= F64_EXACT, name
        fwd_k = _layer_products(layer, batch)[0][1]
        limit = F32_EXACT if layer.fwd_chunk == fwd_k else F64_EXACT
        assert fwd_k * (1 << (layer.bits.act + layer.bits.weight)) + layer.bias_bound <= limit


def test_mlp_first_layer_bound_figures():
    """The figures quoted in runtime/ml/layers.py: 784·2^14 fits 2^24 in one product."""
    net = build_network(MLP, 64)
    first = net.layers[0]
    assert first.fwd_chunk == 784 and 784 * 2**14 <= 2**24
    conv1 = build_network(CNN, 64).layers[0]
    assert conv1.dw_chunk == 96  # 576 positions: 6 chunks of 96, 96·2^17 <= 2^24


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


def test_batched_sum_matches_float64():
    gen = torch.Generator().manual_seed(3)
    a = _worst_case((64, 16, 576), 10, gen)
    b = _worst_case((64, 576, 25), 7, gen)
    reference = torch.einsum("bmk,bkn->mn", a.double(), b.double())
    for chunk in (96, 64, 32, 0):
        assert torch.equal(exact_batched_sum_matmul(a, b, chunk), reference), chunk


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=40), st.integers(1, 12), st.integers(-40, 40))
def test_requantize_bounds_and_rounding(values, bits, exponent):
    """Mantissas end up <= 2^bits, the value moves by at most half a grid step, and a tensor
    that already fits is not touched."""
    m = torch.tensor(values, dtype=torch.float64)
    out = requantize(Fx(m.clone(), exponent), bits)
    assert out.m.dtype == torch.float32
    assert out.m.abs().max().item() <= 2**bits
    shift = out.e - exponent
    assert shift >= 0
    error = (out.m.double() * 2.0**shift - m).abs().max().item()
    assert error <= 2.0 ** (shift - 1)
    if max(abs(v) for v in values) <= 2**bits:
        assert shift == 0 and torch.equal(out.m.double(), m)


def test_round_half_even():
    out = requantize(Fx(torch.tensor([1.0, 3.0, 5.0, -1.0, -3.0, 63.0]), 0), 5)
    assert out.e == 1
    assert out.m.tolist() == [0.0, 2.0, 2.0, -0.0, -2.0, 32.0]
