"""Which GEMM `ScratchLSTM`'s products go to on the CPU, kept apart from the readable model.

Nothing here changes what is computed, only how fast (tests compare ScratchLSTM with nn.LSTM to 1e-5).
The model writes its products as `addmm(other, x, W)` (other + x W) and `mm(x, W)`, as torch's functions
of the same names, with W in the sheet's (K, out) layout, and these pick the library:

* On Intel CPUs, plain `torch.addmm`/`torch.mm`, i.e. MKL's sgemm. There MKL is the faster of the two:
  on the AVX-512 Xeon of docs/benchmarks.md the per-step product (64×128 by 128×512) takes 50 µs with
  MKL and 78 µs with oneDNN (`benchmarks/lstm_kernels.py`).
* On other CPUs (AMD EPYC, where MKL's sgemm was measured at half oneDNN's speed), CPU float32 products
  go to oneDNN's GEMM through the private `torch.ops.mkldnn._linear_pointwise`, the GEMM nn.LSTM itself
  uses on the CPU, with the weight reordered once per pass by `prepare_weight`.
* float64, bfloat16 (autocast), CUDA, or a torch without the private op: plain torch everywhere.
"""

from __future__ import annotations

import torch

_HAS_ONEDNN_LINEAR = (
    torch.backends.mkldnn.is_available()
    and hasattr(torch.ops, "mkldnn")
    and hasattr(torch.ops.mkldnn, "_linear_pointwise")
)


def _cpu_vendor() -> str:
    """'GenuineIntel', 'AuthenticAMD', ... from /proc/cpuinfo; '' where that cannot be read (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


# MKL is Intel's own library; elsewhere oneDNN's GEMM is the faster one (see the module docstring).
_MKL_IS_FAST = torch.backends.mkl.is_available() and _cpu_vendor() == "GenuineIntel"


def onednn_ok(t: torch.Tensor) -> bool:
    """Whether products on `t` go to oneDNN's GEMM (CPU float32 on a CPU where MKL is not the faster)."""
    return _HAS_ONEDNN_LINEAR and not _MKL_IS_FAST and t.device.type == "cpu" and t.dtype == torch.float32


def prepare_weight(W: torch.Tensor) -> torch.Tensor:
    """W (K, out), prepared once for repeated products: a oneDNN tensor (out, K) where oneDNN runs, else W
    made contiguous (MKL is slower on a transposed view)."""
    return W.t().contiguous().to_mkldnn() if onednn_ok(W) else W.contiguous()


def _onednn_weight(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor | None:
    """W as oneDNN's linear takes it, (out, K), when this product goes to oneDNN; else None."""
    if W.is_mkldnn:
        return W
    return W.t() if onednn_ok(x) else None


def addmm(other: torch.Tensor, x: torch.Tensor, W: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """other + x W, for x (M, K), W (K, out) (any strides) or `prepare_weight(W)`, and `other` a bias (out,)
    or an (M, out) tensor; written into `out` when given."""
    w = _onednn_weight(x, W)
    if w is None:
        return torch.addmm(other, x, W, out=out)
    if other.dim() == 1:
        result = torch.ops.mkldnn._linear_pointwise(x, w, other, "none", [], "")
    else:
        result = torch.ops.mkldnn._linear_pointwise.binary(x, other, w, None, "add")
    return result if out is None else out.copy_(result)


def mm(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """x W (a new tensor), for x (M, K) and W (K, out) (any strides) or `prepare_weight(W)`."""
    w = _onednn_weight(x, W)
    if w is not None:
        return torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
    return torch.mm(x, W)
