"""Speed-only tricks for `ScratchLSTM` on the CPU, kept apart from the readable model.

Nothing here changes what is computed, only how fast (tests compare ScratchLSTM with nn.LSTM to 1e-5):

* Products go to oneDNN's GEMM through `torch.ops.mkldnn._linear_pointwise`, the GEMM nn.LSTM itself
  uses on the CPU. On some CPUs (AMD EPYC) `torch.mm`'s MKL sgemm runs at half its speed. The op is
  private: where it is missing, or for float64, bfloat16 and CUDA tensors, plain `torch.addmm` runs.
* tanh is evaluated as 2σ(2z) - 1: ATen's CPU tanh is several times slower than its sigmoid.
"""

from __future__ import annotations

import torch

_HAS_ONEDNN_LINEAR = (
    torch.backends.mkldnn.is_available()
    and hasattr(torch.ops, "mkldnn")
    and hasattr(torch.ops.mkldnn, "_linear_pointwise")
)


def onednn_ok(t: torch.Tensor) -> bool:
    """Whether products on `t` go to oneDNN's GEMM (CPU float32)."""
    return _HAS_ONEDNN_LINEAR and t.device.type == "cpu" and t.dtype == torch.float32


def prepare_weight(w: torch.Tensor, onednn: bool) -> torch.Tensor:
    """`w` (out, K) prepared once for repeated products: a oneDNN tensor, or `w` itself."""
    return w.contiguous().to_mkldnn() if onednn else w


def linear(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, onednn: bool) -> torch.Tensor:
    """x (M, K) @ w.T + bias, with w given as (out, K) (any strides, or prepared by `prepare_weight`)."""
    if onednn:
        return torch.ops.mkldnn._linear_pointwise(x, w, bias, "none", [], "")
    return torch.addmm(bias, x, w.t()) if bias is not None else torch.mm(x, w.t())


def linear_add(x: torch.Tensor, other: torch.Tensor, w: torch.Tensor, onednn: bool) -> torch.Tensor:
    """other + x @ w.T (a new tensor), with w given as (out, K)."""
    if onednn:
        return torch.ops.mkldnn._linear_pointwise.binary(x, other, w, None, "add")
    return torch.addmm(other, x, w.t())


def tanh_(t: torch.Tensor) -> torch.Tensor:
    """tanh in place, as 2σ(2t) - 1."""
    return t.mul_(2).sigmoid_().mul_(2).sub_(1)
