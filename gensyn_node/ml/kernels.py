"""Fused CPU loops of the exact engine: the optimizer step and the weight rounding in one pass.

The engine's elementwise work on float64 master values is a chain of torch operations (scale,
round, add, round, subtract, round, clamp), each a full pass over memory; on a machine whose
memory is slow this chain, not the products, is most of the step (issue 11). These C loops do
the same chain element by element in one pass.

They give the same bits as the torch chain because every operation in it is exact except the
explicit roundings (engine.py's bounds: the products and sums fit float64's 53 bits), and an
exact value is the same however it is computed; `rint` rounds half to even as torch's `round_`
does (the default rounding mode, which neither changes). The code is plain C99 compiled without
-ffast-math and with contraction off, so the compiler may not reorder or fuse anything that
rounds. tests/ml/test_kernels.py compares every loop with the torch chain.

The library is compiled once per machine with the system C compiler (cc, or $CC) into the
user's cache; where there is no compiler, or it fails, `load_kernels` returns None and the engine
runs the torch chain (same bits, slower). Nothing here is used for tensors off the CPU. The node
hands the loaded library to the runtime through runtime/ml/accel.py (gensyn_node/ml/accel.py).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from runtime.ml.engine import SGD_SOURCE_TYPES

log = logging.getLogger(__name__)

SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline double clampd(double v, double b) { return v < -b ? -b : (v > b ? b : v); }

/* max |x_i| (0 for n == 0). No NaN or infinity reaches here, which lets gcc vectorize it. */
__attribute__((optimize("finite-math-only", "no-signed-zeros")))
double gs_abs_max_f64(const double *x, int64_t n) {
    double m0 = 0.0, m1 = 0.0, m2 = 0.0, m3 = 0.0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        double a0 = fabs(x[i]), a1 = fabs(x[i + 1]), a2 = fabs(x[i + 2]), a3 = fabs(x[i + 3]);
        m0 = a0 > m0 ? a0 : m0; m1 = a1 > m1 ? a1 : m1;
        m2 = a2 > m2 ? a2 : m2; m3 = a3 > m3 ? a3 : m3;
    }
    for (; i < n; i++) { double a = fabs(x[i]); m0 = a > m0 ? a : m0; }
    m0 = m1 > m0 ? m1 : m0; m2 = m3 > m2 ? m3 : m2;
    return m2 > m0 ? m2 : m0;
}

__attribute__((optimize("finite-math-only", "no-signed-zeros")))
float gs_abs_max_f32(const float *x, int64_t n) {
    float m0 = 0.0f, m1 = 0.0f, m2 = 0.0f, m3 = 0.0f;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float a0 = fabsf(x[i]), a1 = fabsf(x[i + 1]), a2 = fabsf(x[i + 2]), a3 = fabsf(x[i + 3]);
        m0 = a0 > m0 ? a0 : m0; m1 = a1 > m1 ? a1 : m1;
        m2 = a2 > m2 ? a2 : m2; m3 = a3 > m3 ? a3 : m3;
    }
    for (; i < n; i++) { float a = fabsf(x[i]); m0 = a > m0 ? a : m0; }
    m0 = m1 > m0 ? m1 : m0; m2 = m3 > m2 ? m3 : m2;
    return m2 > m0 ? m2 : m0;
}

/* x_i = rint(x_i * scale) in place (float32 integers: the scaled value is exact). */
void gs_scale_round_f32(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = rintf(x[i] * scale);
}

/* out_i = rint(x_i * scale): a power-of-two scale, so only rint rounds. */
void gs_quantize_f64_f32(const double *x, int64_t n, double scale, float *out) {
    for (int64_t i = 0; i < n; i++) out[i] = (float)rint(x[i] * scale);
}

void gs_quantize_f64_i8(const double *x, int64_t n, double scale, int8_t *out) {
    for (int64_t i = 0; i < n; i++) out[i] = (int8_t)rint(x[i] * scale);
}

/* Adjoint of the NHWC patch copy (layers.col2im_nhwc): cols (b, ho, wo, k, k, c) are added
 * back to their pixels of out (b, h, w, c), zeroed first. Integer-valued sums below 2^53 in
 * float64: exact in any order. */
#define COL2IM_LOOP(SRC_T)                                                                   \
    void gs_col2im_##SRC_T(const SRC_T *cols, int64_t b, int64_t h, int64_t w, int64_t c,     \
                           int64_t k, double *out) {                                           \
        int64_t ho = h - k + 1, wo = w - k + 1;                                              \
        for (int64_t i = 0; i < b * h * w * c; i++) out[i] = 0.0;                            \
        for (int64_t n = 0; n < b; n++)                                                      \
            for (int64_t y = 0; y < ho; y++)                                                 \
                for (int64_t x = 0; x < wo; x++) {                                           \
                    const SRC_T *p = cols + ((n * ho + y) * wo + x) * k * k * c;             \
                    for (int64_t i = 0; i < k; i++)                                          \
                        for (int64_t j = 0; j < k; j++) {                                    \
                            double *q = out + ((n * h + y + i) * w + x + j) * c;             \
                            const SRC_T *r = p + (i * k + j) * c;                            \
                            for (int64_t ch = 0; ch < c; ch++) q[ch] += (double)r[ch];       \
                        }                                                                    \
                }                                                                            \
    }
COL2IM_LOOP(float)
COL2IM_LOOP(int32_t)

/* One parameter tensor's optimizer step, in place on w and m (engine.apply_sgd_):
 *   g = src_i * scale, rounded if round_g, clamped to bound if clamp_g (engine.write_on_grid)
 *   g = rint(g + wd * w_i)                  when wd != 0
 *   m_i = rint(g + mu * m_i), clamped if clamp_m
 *   w_i = clamp(rint(w_i - lr * m_i)) */
#define SGD_LOOP(SRC_T)                                                                      \
    void gs_sgd_##SRC_T(double *w, double *m, const SRC_T *src, int64_t n, double scale,      \
                        int32_t round_g, int32_t clamp_g, double wd, double mu, double lr,    \
                        int32_t clamp_m, double bound) {                                       \
        /* flags as selects and infinite bounds, so the loop has no branch and vectorizes */ \
        const double bound_g = clamp_g ? bound : INFINITY, bound_m = clamp_m ? bound : INFINITY; \
        const int use_wd = wd != 0.0;                                                        \
        for (int64_t i = 0; i < n; i++) {                                                    \
            double g = (double)src[i] * scale;                                               \
            double gr = rint(g);                                                             \
            g = round_g ? gr : g;                                                            \
            g = clampd(g, bound_g);                                                          \
            double wi = w[i];                                                                \
            double gd = rint(g + wd * wi);                                                   \
            g = use_wd ? gd : g;                                                             \
            double mi = clampd(rint(g + mu * m[i]), bound_m);                                \
            m[i] = mi;                                                                       \
            w[i] = clampd(rint(wi - lr * mi), bound);                                        \
        }                                                                                    \
    }
SGD_LOOP(float)
SGD_LOOP(int32_t)
SGD_LOOP(double)

/* NHWC patches (layers.im2col_nhwc): out (b, ho, wo, k, k, c). For one patch and kernel row i
 * the k pixels and their c channels are adjacent in x, so each is one copy of k*c values. */
#define IM2COL_LOOP(T, NAME)                                                                 \
    void gs_im2col_##NAME(const T *x, int64_t b, int64_t h, int64_t w, int64_t c, int64_t k,  \
                          T *out) {                                                            \
        int64_t ho = h - k + 1, wo = w - k + 1, run = k * c;                                 \
        for (int64_t n = 0; n < b; n++)                                                      \
            for (int64_t y = 0; y < ho; y++)                                                 \
                for (int64_t x0 = 0; x0 < wo; x0++) {                                        \
                    T *p = out + ((n * ho + y) * wo + x0) * k * run;                         \
                    for (int64_t i = 0; i < k; i++)                                          \
                        memcpy(p + i * run, x + ((n * h + y + i) * w + x0) * c,              \
                               (size_t)run * sizeof(T));                                     \
                }                                                                            \
    }
IM2COL_LOOP(int8_t, i8)
IM2COL_LOOP(float, f32)

/* t = 128*hi + lo for integer-valued float32 |t| <= 2^13 - 1 (fixed.split_int8): hi = rint(t/128)
 * (t/128 is exact, a power-of-two scale), lo = t - 128*hi (exact: small integers). */
void gs_split_f32_i8(const float *t, int64_t n, int8_t *hi, int8_t *lo) {
    for (int64_t i = 0; i < n; i++) {
        float h = rintf(t[i] * 0.0078125f);
        hi[i] = (int8_t)h;
        lo[i] = (int8_t)(t[i] - 128.0f * h);
    }
}

/* hi_i = 128*hi_i + lo_i in place: the halves of a split product rejoined (fixed.int8_product);
 * the caller's bound keeps every value inside int32. */
void gs_join_i32(int32_t *hi, const int32_t *lo, int64_t n) {
    for (int64_t i = 0; i < n; i++) hi[i] = hi[i] * 128 + lo[i];
}
"""

# -ffp-contract=off: no fused multiply-adds (they would be exact here too, but the argument
# above is simpler without them). No -ffast-math: it would let the compiler reassociate.
CFLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared")

_F64, _I64, _I32 = ctypes.c_double, ctypes.c_int64, ctypes.c_int32
_P = ctypes.c_void_p
_SGD_ARGS = [_P, _P, _P, _I64, _F64, _I32, _I32, _F64, _F64, _F64, _I32, _F64]


class CKernels:
    """The loaded library (runtime.ml.accel.Kernels); each method takes contiguous CPU tensors."""

    def __init__(self, lib: ctypes.CDLL):
        self._abs_max = {torch.float64: lib.gs_abs_max_f64, torch.float32: lib.gs_abs_max_f32}
        lib.gs_abs_max_f64.restype, lib.gs_abs_max_f64.argtypes = _F64, [_P, _I64]
        lib.gs_abs_max_f32.restype, lib.gs_abs_max_f32.argtypes = ctypes.c_float, [_P, _I64]
        self._scale_round = lib.gs_scale_round_f32
        self._scale_round.restype, self._scale_round.argtypes = None, [_P, _I64, ctypes.c_float]
        self._col2im = {torch.float32: lib.gs_col2im_float, torch.int32: lib.gs_col2im_int32_t}
        for fn in self._col2im.values():
            fn.restype, fn.argtypes = None, [_P, _I64, _I64, _I64, _I64, _I64, _P]
        self._quantize = {
            torch.float32: lib.gs_quantize_f64_f32,
            torch.int8: lib.gs_quantize_f64_i8,
        }
        for fn in self._quantize.values():
            fn.restype, fn.argtypes = None, [_P, _I64, _F64, _P]
        self._sgd = {dtype: getattr(lib, "gs_sgd_" + name) for dtype, name in SGD_SOURCE_TYPES.items()}
        for fn in self._sgd.values():
            fn.restype, fn.argtypes = None, _SGD_ARGS
        self._im2col = {torch.int8: lib.gs_im2col_i8, torch.float32: lib.gs_im2col_f32}
        for fn in self._im2col.values():
            fn.restype, fn.argtypes = None, [_P, _I64, _I64, _I64, _I64, _I64, _P]
        self._split = lib.gs_split_f32_i8
        self._split.restype, self._split.argtypes = None, [_P, _I64, _P, _P]
        self._join = lib.gs_join_i32
        self._join.restype, self._join.argtypes = None, [_P, _P, _I64]

    def abs_max(self, x: torch.Tensor) -> float:
        return float(self._abs_max[x.dtype](x.data_ptr(), x.numel()))

    def scale_round_(self, x: torch.Tensor, scale: float) -> torch.Tensor:
        """x ← rint(x · scale) in place, float32."""
        self._scale_round(x.data_ptr(), x.numel(), scale)
        return x

    def col2im(self, cols: torch.Tensor, shape: tuple[int, int, int, int], k: int, out: torch.Tensor) -> torch.Tensor:
        """layers.col2im_nhwc into a float64 `out` of `shape`, from float32 or int32 cols."""
        self._col2im[cols.dtype](cols.data_ptr(), *shape, k, out.data_ptr())
        return out

    def im2col(self, x: torch.Tensor, k: int, out: torch.Tensor) -> torch.Tensor:
        """layers.im2col_nhwc of an int8 or float32 (b, h, w, c) tensor into `out`."""
        self._im2col[x.dtype](x.data_ptr(), *x.shape, k, out.data_ptr())
        return out

    def split_int8(self, t: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor) -> None:
        """fixed.split_int8 of a float32 tensor into the int8 tensors hi and lo."""
        self._split(t.data_ptr(), t.numel(), hi.data_ptr(), lo.data_ptr())

    def join_halves_(self, hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
        """hi <- 128*hi + lo in place, int32."""
        self._join(hi.data_ptr(), lo.data_ptr(), hi.numel())
        return hi

    def quantize(self, x: torch.Tensor, scale: float, out: torch.Tensor) -> torch.Tensor:
        self._quantize[out.dtype](x.data_ptr(), x.numel(), scale, out.data_ptr())
        return out

    def sgd(self, w: torch.Tensor, m: torch.Tensor, src: torch.Tensor, scale: float, round_g: bool,
            clamp_g: bool, wd: float, mu: float, lr: float, clamp_m: bool, bound: float) -> None:
        self._sgd[src.dtype](w.data_ptr(), m.data_ptr(), src.data_ptr(), w.numel(), scale, int(round_g),
                             int(clamp_g), wd, mu, lr, int(clamp_m), bound)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gensyn-node" / "kernels"


def _machine_key(cc: str) -> str:
    """What the compiled library depends on: source, flags, compiler and CPU (-march=native)."""
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30,
                                 check=False).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    try:
        cpu = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        cpu = ""
    key = "\n".join([SOURCE, " ".join(CFLAGS), version, cpu, platform.machine()])
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _build(cc: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "kernels.c"
        src.write_text(SOURCE)
        out = Path(tmp) / target.name
        subprocess.run([cc, *CFLAGS, str(src), "-o", str(out), "-lm"], check=True, capture_output=True,
                       timeout=300)
        os.replace(out, target)  # atomic: a concurrent build or load sees a whole file or none


@functools.cache
def load_kernels() -> CKernels | None:
    """The fused loops, compiled on first use; None where they cannot be built or loaded, or
    where GENSYN_NO_KERNELS is set (the torch chain then runs: same bits)."""
    if os.environ.get("GENSYN_NO_KERNELS"):
        return None
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        log.info("event=kernels_unavailable reason=no_c_compiler")
        return None
    target = _cache_dir() / f"exact-{_machine_key(cc)}.so"
    try:
        if not target.exists():
            _build(cc, target)
            log.info("event=kernels_built path=%s", target)
        return CKernels(ctypes.CDLL(str(target)))
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("event=kernels_unavailable reason=%s", type(exc).__name__)
        return None
