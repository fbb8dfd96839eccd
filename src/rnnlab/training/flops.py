"""How close to the machine's limit a run is: analytic model FLOPs against a measured matmul peak.

FLOPs are 2 × multiply-adds of the matrix products (element-wise gate arithmetic, the loss and the
optimizer are left out: they are small next to the products, and not matmul work). The counts are
exact for PyTorch's recurrent layers: `tests/test_benchmarks.py` checks them against
`torch.utils.flop_counter.FlopCounterMode` on one training step of rnn, lstm and gru.

The peak is the best rate of a large square matmul, measured once per process, after a warm-up, as
the best of several timed runs (on a shared machine the best run is the one that had the cores to
itself). On the CPU, for float32 it is the better of the two GEMMs PyTorch has there: `torch.mm`
(MKL's sgemm) and oneDNN's, which is the one nn.RNN/nn.LSTM/nn.GRU use; on some CPUs (AMD EPYC)
MKL's sgemm runs at a half or less of oneDNN's speed, and a peak taken from `torch.mm` alone can sit
below what the LSTM achieves. bfloat16 runs are compared with the bfloat16 peak.
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch

GATES = {"rnn": 1, "gru": 3, "lstm": 4, "scratch-lstm": 4}
PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def forward_flops_per_sample(model: str, steps: int, input_size: int, hidden_size: int,
                             num_layers: int, num_classes: int = 10) -> int:
    """FLOPs of the matrix products in one forward pass over one sequence.

    Each layer, each step: gates × (input→hidden + hidden→hidden) products; the head reads one state.
    """
    gates = GATES[model]
    total = 0
    for layer in range(num_layers):
        d = input_size if layer == 0 else hidden_size
        total += steps * gates * 2 * (d * hidden_size + hidden_size * hidden_size)
    return total + 2 * hidden_size * num_classes


def train_flops_per_sample(model: str, steps: int, input_size: int, hidden_size: int,
                           num_layers: int, num_classes: int = 10) -> int:
    """Forward + backward of one training sample.

    The backward pass repeats every forward product twice (once for the weight gradient, once for the
    gradient of the product's input), except two that nothing needs: the gradient of the first layer's
    input (the images do not require grad) and of each layer's initial state h0 (zeros, no grad).
    """
    gates = GATES[model]
    forward = forward_flops_per_sample(model, steps, input_size, hidden_size, num_layers, num_classes)
    not_needed = steps * gates * 2 * input_size * hidden_size + num_layers * gates * 2 * hidden_size * hidden_size
    return 3 * forward - not_needed


def train_memory_bytes(model: str, steps: int, input_size: int, hidden_size: int, num_layers: int,
                       batch_size: int, num_classes: int = 10) -> int:
    """About the least memory (bytes, float32) one training step needs: the weights with their gradients and
    Adam's two moments (4 copies of the parameters), and the activations kept for the backward pass (gates,
    cell and hidden states of every step and layer) with their gradients."""
    gates = GATES[model]
    parameters = sum(gates * ((input_size if k == 0 else hidden_size) * hidden_size + hidden_size * hidden_size
                              + 2 * hidden_size) for k in range(num_layers)) + (hidden_size + 1) * num_classes
    activations = batch_size * steps * num_layers * (gates + 3) * hidden_size
    return 4 * (4 * parameters + 2 * activations)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _best_seconds(fn, device: str, min_runs: int, budget_s: float) -> float:
    """Best time of `fn` after one warm-up run: at least `min_runs` runs, more while under `budget_s`."""
    fn()
    _sync(device)
    best, spent, runs = float("inf"), 0.0, 0
    while runs < min_runs or (spent < budget_s and runs < 50):
        start = time.perf_counter()
        fn()
        _sync(device)
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best


def _onednn_linear(a: torch.Tensor, b: torch.Tensor):
    """`a @ b` through oneDNN's GEMM (CPU float32), or None where PyTorch lacks it."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return None
    weight = b.t().contiguous().to_mkldnn()
    try:
        torch.ops.mkldnn._linear_pointwise(a[:8], weight, None, "none", [], "")
    except RuntimeError:
        return None
    return lambda: torch.ops.mkldnn._linear_pointwise(a, weight, None, "none", [], "")


@lru_cache(maxsize=None)
def matmul_peak_gflops(device: str = "cpu", dtype: torch.dtype | str = torch.float32, size: int | None = None,
                       min_runs: int = 5, budget_s: float = 0.25) -> float:
    """Best GFLOP/s of a square `size`×`size` matmul on `device` in `dtype`, measured once per process.

    `dtype` may be a torch dtype or a precision name (`fp32`, `bf16`). Default size: 1024 on the CPU
    (at the peak on a few cores, and short enough to time many runs and keep the best on a busy
    machine), 8192 on CUDA. On the CPU in float32 both `torch.mm` and oneDNN's GEMM are timed and the
    better one counts. Each GEMM: one warm-up run, then the best of at least `min_runs` runs within
    `budget_s` seconds; about 0.3–0.8 s in all on a CPU.
    """
    if isinstance(dtype, str):
        dtype = PRECISION_DTYPES[dtype]
    if size is None:
        size = 8192 if device.startswith("cuda") else 1024
    # A generator of its own: measuring must not move the global RNG a training run depends on.
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, generator=generator).to(dtype)
    b = torch.randn(size, size, device=device, generator=generator).to(dtype)
    candidates = [lambda: torch.mm(a, b)]
    if device == "cpu" and dtype == torch.float32:
        onednn = _onednn_linear(a, b)
        if onednn is not None:
            candidates.append(onednn)
    best = min(_best_seconds(fn, device, min_runs, budget_s) for fn in candidates)
    return 2 * size**3 / best / 1e9
