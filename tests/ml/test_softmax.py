"""The fixed-point softmax cross-entropy: exact table, close to the float softmax, exact grad."""

from __future__ import annotations

import torch

from runtime.ml.fixed import Fx
from runtime.ml.softmax import (
    EXP2_TABLE,
    LOG2E_Q24,
    PROB_BITS,
    TABLE_BITS,
    compute_loss_gradient,
    compute_probabilities,
)


def test_exp2_table_is_correctly_rounded():
    """Each entry is round(2^(j/256)·2^30), checked with integer arithmetic only:
    (t - 1/2)^256 < 2^(256·30 + j) < (t + 1/2)^256, i.e. with doubled values to stay integral."""
    for j in (0, 1, 77, 128, 255):
        t = EXP2_TABLE[j]
        target = 1 << (256 * (TABLE_BITS + 1) + j)  # (2·2^(j/256)·2^30)^256
        assert (2 * t - 1) ** 256 < target < (2 * t + 1) ** 256
    assert EXP2_TABLE[0] == 1 << TABLE_BITS and len(EXP2_TABLE) == 256


def test_log2e_constant():
    assert abs(LOG2E_Q24 / 2**24 - 1.4426950408889634) < 2**-24


def test_probabilities_close_to_float_softmax():
    gen = torch.Generator().manual_seed(0)
    m = torch.randint(-(2**20), 2**20, (200, 10), generator=gen).to(torch.float32)
    for e in (-20, -17, -14):
        p = compute_probabilities(Fx(m.clone(), e)).double() / 2**PROB_BITS
        ref = torch.softmax(m.double() * 2.0**e, dim=1)
        assert (p - ref).abs().max().item() < 3e-3
        assert ((p.sum(1) - 1).abs() <= 10 * 2.0**-PROB_BITS).all()


def test_loss_gradient_rows_and_labels():
    m = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1000.0, 0.0, 0.0, 0.0]])
    g, p = compute_loss_gradient(Fx(m, 0), torch.tensor([2, 0]), batch_bits=1)
    assert g.e == -PROB_BITS - 1
    assert p[0].tolist() == [1 << (PROB_BITS - 2)] * 4
    assert g.m[0].tolist() == [16384.0, 16384.0, 16384.0 - 65536.0, 16384.0]
    assert g.m[1].tolist() == [0.0, 0.0, 0.0, 0.0]  # a confident right answer: no gradient


def test_extreme_logit_scales_stay_in_range():
    """Coarse logit grids (up to 2^40 per mantissa step) must not overflow int64 shifts."""
    m = torch.tensor([[0.0, -1.0, -3.0, 5.0], [2.0**20, 0.0, -(2.0**20), 1.0]])
    for e in (-60, -16, 0, 5, 21, 22, 40):
        p = compute_probabilities(Fx(m.clone(), e))
        assert (p >= 0).all() and (p <= 2**PROB_BITS).all()
        assert ((p.sum(1) - 2**PROB_BITS).abs() <= 4).all()
        ref = torch.softmax(m.double() * 2.0**e, dim=1) * 2**PROB_BITS
        assert (p.double() - ref).abs().max().item() < 2**PROB_BITS * 3e-3
