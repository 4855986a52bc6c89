"""The host's side of runtime/ml/accel.py: what it measures and builds on this machine for the
exact engine, installed once per process that trains or referees (the node, the workers, the
ML commands, the benchmarks).

- The fused C loops (gensyn_node/ml/kernels.py), compiled once per machine into the cache.
- The CPU's product route, chosen by timing: int8 products (torch._int_mm, exact in int32) where
  they beat float32 ones of the same shape by FAST_INT8_SPEEDUP, exact float32 products
  elsewhere. Flags alone do not decide it: on CPUs without int8 dot-product instructions
  oneDNN's int8 kernel is ~40x slower than float32 (an AVX2 EPYC here: 177 ms against 4 ms for
  the MLP's first layer), and on some with them no faster (the AMX machine of issue 11).
Both only change speed; every route gives the same bits. `provide_host_accel()` registers the
probe with the runtime; it runs on the engine's first use in the process.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from runtime.ml import accel

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

FAST_INT8_SPEEDUP = 2.0  # int8 must beat float32 by this much to pay for its splits and casts


def _best_seconds(fn: Callable[[], torch.Tensor], runs: int = 3) -> float:
    fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


@functools.cache
def int8_products_pay() -> bool:
    """Whether torch._int_mm runs FAST_INT8_SPEEDUP times faster than a float32 product of the
    MLP's first layer (64x784 by 784x256) on this CPU, best of a few runs of each."""
    import torch

    if not hasattr(torch, "_int_mm"):
        return False
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-127, 128, (64, 784), generator=gen, dtype=torch.int8)
    b = torch.randint(-127, 128, (784, 256), generator=gen, dtype=torch.int8)
    af, bf = a.to(torch.float32), b.to(torch.float32)
    t_int8 = _best_seconds(lambda: torch._int_mm(a, b))
    t_f32 = _best_seconds(lambda: torch.mm(af, bf))
    return t_int8 * FAST_INT8_SPEEDUP <= t_f32


def detect() -> accel.Accel:
    """This machine's accelerations (compiles the C loops on the first run on a machine)."""
    from gensyn_node.ml.kernels import load_kernels

    found = accel.Accel(kernels=load_kernels(), cpu_backend=accel.INT8 if int8_products_pay() else accel.FLOAT)
    log.info("event=accel_detected kernels=%s cpu_backend=%s", found.kernels is not None, found.cpu_backend)
    return found


def provide_host_accel() -> None:
    """Let the runtime's exact engine use this machine's accelerations from its first use on."""
    accel.provide(detect)
