"""The fused C loops against the torch chains they replace: the same bits, including ties."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from gensyn_node.ml.kernels import load_kernels
from runtime.ml.engine import apply_sgd_, write_on_grid
from runtime.ml.fixed import Fx
from runtime.ml.job import HYPER_FRAC_BITS, HyperParams
from runtime.ml.layers import col2im_nhwc
from runtime.ml.models import MASTER_BOUND_BITS
from runtime.ml.state import TrainState

BOUND = float(1 << MASTER_BOUND_BITS)

pytestmark = pytest.mark.skipif(load_kernels() is None, reason="no C compiler: the engine runs the torch chain")


def _grid_values(n: int, seed: int, bits: int = MASTER_BOUND_BITS) -> torch.Tensor:
    """Master grid integers (float64) with many exact ties after a power-of-two scaling."""
    gen = torch.Generator().manual_seed(seed)
    v = torch.randint(-(1 << bits), (1 << bits) + 1, (n,), generator=gen, dtype=torch.int64)
    v[: n // 4] = (v[: n // 4] >> 20) << 20 | (1 << 19)  # x.5 after scaling by 2^-20
    return v.to(torch.float64)


def test_abs_max_and_quantize_match_torch():
    k = load_kernels()
    w = _grid_values(10_001, 1)
    assert k.abs_max(w) == float(w.abs().max())
    assert k.abs_max(w[:0]) == 0.0
    for dtype, scale in ((torch.float32, 2.0**-20), (torch.int8, 2.0**-30)):
        out = k.quantize(w, scale, torch.empty(w.shape, dtype=dtype))
        assert torch.equal(out, torch.mul(w, scale).round_().to(dtype))
    x = _grid_values(9_999, 2, bits=24).to(torch.float32)
    assert k.abs_max(x) == float(x.abs().max())
    assert torch.equal(k.scale_round_(x.clone(), 2.0**-9), x.mul(2.0**-9).round_())


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32])
def test_col2im_matches_torch(dtype):
    gen = torch.Generator().manual_seed(3)
    shape = (3, 9, 7, 5)
    cols = torch.randint(-(1 << 22), 1 << 22, (3 * 7 * 5, 3 * 3 * 5), generator=gen).to(dtype)
    out = torch.empty(shape, dtype=torch.float64)
    expected = col2im_nhwc(cols.to(torch.float64), shape, 3)
    assert torch.equal(load_kernels().col2im(cols, shape, 3, out), expected)


@pytest.mark.parametrize("src_dtype,e,bits", [(torch.float32, -40, 20), (torch.int32, -20, 30),
                                              (torch.float64, 0, None), (torch.float32, 4, 23)])
@pytest.mark.parametrize("wd_q16", [0, 3277])
def test_sgd_matches_write_on_grid_then_apply_sgd(src_dtype, e, bits, wd_q16):
    """Rounded and clamped gradients, weight decay, momentum and weight clamps all acting."""
    n = 4_099
    gen = torch.Generator().manual_seed(4)
    limit = (1 << (bits or 30)) - 1
    g = torch.randint(-limit, limit + 1, (n,), generator=gen).to(src_dtype)
    w, m = _grid_values(n, 5), _grid_values(n, 6)
    w[:8], m[:8] = BOUND, -BOUND
    hyper = HyperParams(lr_q16=50_000, momentum_q16=60_000, weight_decay_q16=wd_q16, batch_size=32)
    ref = TrainState(None, 0, w.clone(), m.clone())  # type: ignore[arg-type]
    grad = torch.empty(n, dtype=torch.float64)
    bound = write_on_grid(grad, Fx(g, e, bits))
    apply_sgd_(ref, grad, hyper, bound)

    from runtime.ml.engine import plan_grid_write

    plan = plan_grid_write(Fx(g, e, bits))
    scale = 2.0**-HYPER_FRAC_BITS
    wd = wd_q16 * scale
    grad_bound = plan.bound + (wd * BOUND + 1.0 if wd else 0.0)
    mu = hyper.momentum_q16 * scale
    load_kernels().sgd(w, m, g, plan.scale, plan.round, plan.clamp, wd, mu, hyper.lr_q16 * scale,
                      grad_bound + mu * BOUND > BOUND, BOUND)
    assert torch.equal(w, ref.params) and torch.equal(m, ref.momentum)


HASH_SCRIPT = """
import json, sys, torch
from gensyn_node.ml.accel import provide_host_accel
from gensyn_node.ml.datasets import load_mnist, make_subset
from runtime.ml.data import get_batch
from runtime.ml.engine import apply_train_step_, build_network
from runtime.ml.job import HyperParams, TrainingJob
from runtime.ml.accel import get_kernels
from runtime.ml.models import get_model
from runtime.ml.segments import initial_state
from runtime.ml.state import compute_state_hash
if sys.argv[1] == "host":
    provide_host_accel()  # else the runtime alone: plain torch chains
torch.set_num_threads(1)
subset = make_subset(load_mnist().train, 512, seed=7)
out = {"kernels": get_kernels() is not None}
for name, steps in (("mlp", 6), ("cnn", 2)):
    hyper = HyperParams(batch_size=64, weight_decay_q16=655)
    job = TrainingJob(get_model(name).model_id, subset.root, b"\\x05" * 32, hyper, steps, steps)
    net = build_network(get_model(name), 64, "float")
    state = initial_state(job)
    for step in range(steps):
        images, labels = get_batch(subset, job.seed, step, 64)
        apply_train_step_(state, images, labels, job.hyper, net)
    out[name] = compute_state_hash(state).hex()
print(json.dumps(out))
"""


def test_training_gives_the_same_hash_with_and_without_the_kernels():
    """With the host's accelerations, and with the runtime alone (nothing provided: the torch
    chains), one hash."""
    results = []
    env = dict(os.environ)
    env.pop("GENSYN_NO_KERNELS", None)
    for mode in ("host", "runtime-only"):
        proc = subprocess.run([sys.executable, "-c", HASH_SCRIPT, mode], capture_output=True, text=True,
                              timeout=240, check=True, env=env)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert [r.pop("kernels") for r in results] == [True, False]
    assert results[0] == results[1]


@pytest.mark.parametrize("dtype", [torch.int8, torch.float32])
@pytest.mark.parametrize("c", [1, 5])
def test_im2col_matches_the_strided_copy(dtype, c):
    gen = torch.Generator().manual_seed(7)
    x = torch.randint(-127, 128, (3, 9, 7, c), generator=gen).to(dtype)
    k = 3
    expected = torch.empty((3 * 7 * 5, k * k * c), dtype=dtype)
    if c == 1:
        expected.view(3, 7, 5, k, k).copy_(x[..., 0].unfold(1, k, 1).unfold(2, k, 1))
    else:
        s = x.stride()
        expected.view(3, 7, 5, k, k, c).copy_(x.as_strided((3, 7, 5, k, k, c), (s[0], s[1], s[2], s[1], s[2], s[3])))
    out = torch.full(expected.shape, 99, dtype=dtype)
    assert torch.equal(load_kernels().im2col(x, k, out), expected)


def test_split_int8_matches_torch_including_ties():
    """hi = round-half-even(t/128): t = 64 + 128j are exact ties."""
    gen = torch.Generator().manual_seed(8)
    t = torch.randint(-(1 << 13) + 1, 1 << 13, (10_007,), generator=gen).to(torch.float32)
    t[:200] = (torch.arange(-100, 100) * 128 + 64).to(torch.float32).clamp_(-8191, 8191)
    hi8, lo8 = torch.empty(t.shape, dtype=torch.int8), torch.empty(t.shape, dtype=torch.int8)
    load_kernels().split_int8(t, hi8, lo8)
    hi = torch.mul(t, 2.0**-7).round_()
    assert torch.equal(hi8, hi.to(torch.int8))
    assert torch.equal(lo8, torch.add(t, hi, alpha=-128).to(torch.int8))
    assert torch.equal(hi8.to(torch.float32) * 128 + lo8.to(torch.float32), t)


def test_join_halves_matches_torch():
    gen = torch.Generator().manual_seed(9)
    hi = torch.randint(-(1 << 23), 1 << 23, (4_099,), generator=gen, dtype=torch.int32)
    lo = torch.randint(-(1 << 30), 1 << 30, (4_099,), generator=gen, dtype=torch.int32)
    expected = hi.clone().mul_(128).add_(lo)
    assert torch.equal(load_kernels().join_halves_(hi, lo), expected)
