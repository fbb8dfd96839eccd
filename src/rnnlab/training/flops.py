"""How close to the machine's limit a run is: analytic model FLOPs against a measured matmul peak."""

from __future__ import annotations

import time
from functools import lru_cache

import torch

GATES = {"rnn": 1, "gru": 3, "lstm": 4, "scratch-lstm": 4}


def forward_flops_per_sample(model: str, steps: int, input_size: int, hidden_size: int,
                             num_layers: int, num_classes: int = 10) -> int:
    """Multiply-adds ×2 of the matrix products in one forward pass over one sequence.

    Each layer, each step: gates × (input→hidden + hidden→hidden) products; the head reads one state.
    Element-wise gate arithmetic is left out (it is small next to the products, and not matmul work).
    """
    gates = GATES[model]
    total = 0
    for layer in range(num_layers):
        d = input_size if layer == 0 else hidden_size
        total += steps * gates * 2 * (d * hidden_size + hidden_size * hidden_size)
    return total + 2 * hidden_size * num_classes


def train_flops_per_sample(*args, **kwargs) -> int:
    """Forward + backward: the backward pass costs about twice the forward (gradients for inputs and weights)."""
    return 3 * forward_flops_per_sample(*args, **kwargs)


@lru_cache(maxsize=None)
def matmul_peak_gflops(device: str = "cpu", dtype: torch.dtype = torch.float32, size: int = 1024) -> float:
    """Best GFLOP/s of a square matmul on `device`, measured once per process (about 0.1 s on a CPU)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(6):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9
