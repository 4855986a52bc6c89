"""Fixed-point softmax cross-entropy: the loss of the exact engine, from exact integer operations.

No library exp, log or float division: logits become base-2 exponents with a fixed-point log2(e),
2^x comes from a 256-entry table built with decimal arithmetic (software, so the same digits on
every machine) and integer shifts, and the normalisation is an integer division (exact: quotient
and remainder are defined, unlike a rounded float quotient). All of it runs in int64, where
every operation is exact; the bounds are in the comments.

Output: the gradient of the mean cross-entropy with respect to the logits, (p - onehot) / B, as
an `Fx` with 16-bit probabilities.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import torch

from runtime.ml.fixed import Fx

PROB_BITS = 16  # probabilities in units of 2^-16
EXP_FRAC_BITS = 8  # base-2 exponents in units of 2^-8 (table index)
TABLE_BITS = 30  # table values 2^(j/256) in units of 2^-30
LOG2E_BITS = 24
LOG2E_Q24 = 24204406  # round(log2(e) · 2^24)
VALUE_FRAC_BITS = 16  # logit differences in units of 2^-16 before the log2(e) product
MIN_DIFF = -(32 << VALUE_FRAC_BITS)  # logits more than 32 below the max contribute e^-32 ~ 0


def _build_exp2_table() -> list[int]:
    """round(2^(j/256) · 2^30) for j in 0..255, computed with 50-digit decimal arithmetic."""
    with localcontext() as ctx:
        ctx.prec = 50
        two = Decimal(2)
        return [
            int((two ** (Decimal(j) / 256) * (1 << TABLE_BITS)).to_integral_value(ROUND_HALF_EVEN))
            for j in range(1 << EXP_FRAC_BITS)
        ]


EXP2_TABLE = _build_exp2_table()
MIN_EXPONENT = (MIN_DIFF * LOG2E_Q24) >> (LOG2E_BITS + VALUE_FRAC_BITS - EXP_FRAC_BITS)  # least u


def _build_exp2_of_exponent() -> list[int]:
    """2^u in units of 2^-30 for every exponent u = -j in [MIN_EXPONENT, 0] (units of 2^-8), by
    the definition: table[u mod 256] >> -floor(u / 256). One lookup then does the whole 2^u."""
    out = []
    for j in range(-MIN_EXPONENT + 1):
        u = -j
        out.append(EXP2_TABLE[u & ((1 << EXP_FRAC_BITS) - 1)] >> -(u >> EXP_FRAC_BITS))
    return out


EXP2_OF_EXPONENT = _build_exp2_of_exponent()
_TABLES: dict[torch.device, torch.Tensor] = {}


def _table(device: torch.device) -> torch.Tensor:
    t = _TABLES.get(device)
    if t is None:
        t = torch.tensor(EXP2_OF_EXPONENT, dtype=torch.int64, device=device)
        _TABLES[device] = t
    return t


def compute_probabilities(logits: Fx) -> torch.Tensor:
    """softmax(logits) in units of 2^-16 (int64, rows sum to ~2^16), from exact operations.

    Bounds: logit mantissas are integers (|m| < 2^53); differences to the row max are <= 0 and
    are brought to units of 2^-16 by a shift and clamped at -32 (|d| <= 2^21); times log2(e) in
    Q24 (< 2^25) that is < 2^46; shifted to units of 2^-8 gives u in [-47·256, 0]; 2^u is
    table[u mod 256] >> -floor(u/256) <= 2^30; a row of 2^32 terms at most sums below 2^62.
    """
    z = logits.m.to(torch.int64)
    d = z - z.amax(dim=1, keepdim=True)
    shift = logits.e + VALUE_FRAC_BITS
    if shift < 0:  # finer than 2^-16: floor to the 2^-16 grid
        d = d.bitwise_right_shift_(-shift) if -shift < 63 else torch.zeros_like(d)
    elif shift <= (-MIN_DIFF).bit_length() - 1:  # coarser: clamp first so the left shift cannot overflow
        d = d.clamp_(min=MIN_DIFF >> shift).bitwise_left_shift_(shift)
    else:  # so coarse that any nonzero difference is below -32
        d = d.clamp_(min=-1).mul_(-MIN_DIFF)
    d = d.clamp_(min=MIN_DIFF)
    u = d.mul_(LOG2E_Q24).bitwise_right_shift_(LOG2E_BITS + VALUE_FRAC_BITS - EXP_FRAC_BITS)
    e = _table(z.device).take(u.neg_())  # 2^u = table[u mod 256] >> -floor(u / 256)
    s = e.sum(dim=1, keepdim=True)  # >= 2^30: the row max contributes table[0]
    # round(e · 2^16 / s), half up, in integers: (2·e·2^16 + s) div 2s, with e · 2^17 <= 2^48
    numerator = e.bitwise_left_shift_(PROB_BITS + 1).add_(s)
    return numerator.div_(s * 2, rounding_mode="floor")


def compute_loss_gradient(logits: Fx, labels: torch.Tensor, batch_bits: int) -> tuple[Fx, torch.Tensor]:
    """(d mean-cross-entropy / d logits, probabilities): (p - onehot(labels)) / 2^batch_bits.

    The gradient mantissas are integers in [-2^16, 2^16] (float32), exponent -16 - batch_bits.
    """
    p = compute_probabilities(logits)
    g = p.to(torch.float32)  # exact: |p| <= 2^16
    g.scatter_add_(1, labels.view(-1, 1), _minus_one(g.shape[0], g.device))
    return Fx(g, -PROB_BITS - batch_bits), p


_MINUS_ONE: dict[tuple[int, torch.device], torch.Tensor] = {}


def _minus_one(rows: int, device: torch.device) -> torch.Tensor:
    """A (rows, 1) column of -1 in units of 2^-16: the one-hot label, subtracted by scatter_add_."""
    t = _MINUS_ONE.get((rows, device))
    if t is None:
        t = torch.full((rows, 1), -float(1 << PROB_BITS), dtype=torch.float32, device=device)
        _MINUS_ONE[(rows, device)] = t
    return t


def compute_metrics(logits: Fx, p: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of cross-entropy, number correct) of a batch, for progress reports only.

    The loss uses a float log and is never hashed or compared: it is a display value.
    """
    rows = torch.arange(p.shape[0], device=p.device)
    p_label = p[rows, labels].clamp(min=1).to(torch.float64)
    loss = (PROB_BITS * 0.6931471805599453 - p_label.log()).sum()
    correct = (logits.m.argmax(dim=1) == labels).sum()
    return loss, correct
