"""What the host lends the exact engine for speed, and nothing else: fused loops for the CPU's
elementwise chains and the product route of CPU tensors.

The runtime does no I/O and reads no clock, so it cannot compile a C library or time a product
itself; the node does both (gensyn_node/ml/accel.py). A process that may train or referee
registers the node's probe here at start (`provide`), and it runs on the engine's first use, so
a node that never meets an ML job never imports torch for it. Neither part can change a result: the fused loops
compute the torch chains' exact values (tests/ml/test_kernels.py) and the int8 and float32
product routes give the same integers (tests/ml/test_engine.py). A process that installs
nothing runs the torch chains and exact float32 products: the same bits, slower.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

INT8 = "int8"
FLOAT = "float"


class Kernels(Protocol):
    """Fused loops over contiguous CPU tensors, each equal to a chain of torch operations."""

    def abs_max(self, x: torch.Tensor) -> float:
        """max |x_i| of a float64 or float32 tensor (0 when empty)."""

    def scale_round_(self, x: torch.Tensor, scale: float) -> torch.Tensor:
        """x <- rint(x * scale) in place, float32."""

    def col2im(self, cols: torch.Tensor, shape: tuple[int, int, int, int], k: int, out: torch.Tensor) -> torch.Tensor:
        """layers.col2im_nhwc into a float64 `out` of `shape`, from float32 or int32 cols."""

    def quantize(self, x: torch.Tensor, scale: float, out: torch.Tensor) -> torch.Tensor:
        """out <- rint(x * scale), float64 to float32 or int8."""

    def im2col(self, x: torch.Tensor, k: int, out: torch.Tensor) -> torch.Tensor:
        """layers.im2col_nhwc of an int8 or float32 (b, h, w, c) tensor into `out`."""

    def split_int8(self, t: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor) -> None:
        """fixed.split_int8 of a float32 tensor into int8 hi and lo."""

    def join_halves_(self, hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
        """hi <- 128*hi + lo in place, int32 (a split product's halves rejoined)."""

    def sgd(self, w: torch.Tensor, m: torch.Tensor, src: torch.Tensor, scale: float, round_g: bool,
            clamp_g: bool, wd: float, mu: float, lr: float, clamp_m: bool, bound: float) -> None:
        """One parameter tensor's optimizer step in place (engine.apply_gradients_)."""


@dataclass(frozen=True, slots=True)
class Accel:
    kernels: Kernels | None = None
    cpu_backend: str = FLOAT  # INT8 where the host measured int8 products to pay


_provider: Callable[[], Accel] | None = None
_installed: Accel | None = None


def provide(probe: Callable[[], Accel] | None) -> None:
    """Register the host's probe, called once on the engine's first use (None: plain torch)."""
    global _provider, _installed
    _provider, _installed = probe, None


def installed() -> Accel:
    global _installed
    if _installed is None:
        found = _provider() if _provider is not None else Accel()
        if found.cpu_backend not in (INT8, FLOAT):
            raise ValueError(f"unknown product backend {found.cpu_backend!r}")
        _installed = found
    return _installed


def get_kernels() -> Kernels | None:
    return installed().kernels


def is_usable(*tensors: torch.Tensor) -> bool:
    """Whether the fused loops can take these tensors (CPU, contiguous, no autograd)."""
    return all(t.device.type == "cpu" and t.is_contiguous() and not t.requires_grad for t in tensors)
