"""How close to the machine's limit a run is: analytic model FLOPs against a measured matmul peak.

FLOPs are 2 × multiply-adds of the matrix products (element-wise gate arithmetic, the loss and the
optimizer are left out: they are small next to the products, and not matmul work). The counts are
exact for PyTorch's recurrent layers: `tests/test_benchmarks.py` checks them against
`torch.utils.flop_counter.FlopCounterMode` on one training step of rnn, lstm and gru.

The peak is rough: the best rate of a large square matmul at the process's thread count, measured once
per process and thread count, after a warm-up, from several timed runs. On a shared machine a run's
wall time counts every moment another process held one of its cores, so on the CPU the CPU time per
thread sharing the work (see `_best_seconds`) competes with the best wall time: on one 2-core machine
at load average 6, ten processes ranged 49–97 GFLOP/s (2 threads) by the wall clock, 218–285 so.
It is still an estimate, low by up to a quarter on a busy machine: there, at 2 threads, it reads ~270
against ~360 in a quiet moment, because a thread whose partner lost its core spins at the GEMM's
barrier and CPU clocks count the spinning. Read a share of it as good to about 20%.
On the CPU, for float32 it is the better of the two GEMMs PyTorch has there: `torch.mm` (MKL's sgemm)
and oneDNN's, which is the one nn.RNN/nn.LSTM/nn.GRU use; on some CPUs (AMD EPYC) MKL's sgemm runs at a half or less of oneDNN's speed, and a peak taken from `torch.mm` alone can sit
below what the LSTM achieves. bfloat16 runs are compared with the bfloat16 peak. docs/benchmarks.md
has the figures.

`python -m rnnlab.training.flops [--threads N] [--precision fp32|bf16]` prints it.
"""

from __future__ import annotations

import statistics
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


WARMUP_RUNS = 3  # first runs pay for page faults, oneDNN's primitive cache and waking the thread pool
MAX_RUNS = 200
# CPU clocks are only worth reading where they resolve a single ~10 ms run (Linux and macOS do); a clock that
# ticks coarser than it claims (Windows: 15.6 ms) reads 0 for some run, and then the wall clock counts.
CPU_CLOCKS_USABLE = max(time.get_clock_info(name).resolution for name in ("process_time", "thread_time")) <= 1e-4


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _best_seconds(fn, device: str, min_runs: int, budget_s: float, threads: int) -> float:
    """Best time of `fn` after `WARMUP_RUNS` runs: at least `min_runs` runs, more while under `budget_s`.

    On a busy machine every run can lose its cores to other processes for a while: the wall clock
    counts that, CPU clocks do not. So on the CPU the time is the lesser of the best wall time and the
    median CPU time divided among the threads that shared the work. The median, not the least: CPU
    time does not grow when a run waits, and Linux adds a running thread's CPU time only at ticks and
    switches, so a reading can miss a few ms of another thread's work. The threads: the process's CPU
    time per CPU second of the calling thread (which does its share of an OpenMP GEMM), median over
    runs, kept between 1 and `threads`, since a bf16 GEMM, for one, may use fewer threads than allowed.
    """
    for _ in range(WARMUP_RUNS):
        fn()
    _sync(device)
    walls, cpus, owns, spent = [], [], [], 0.0
    while len(walls) < min_runs or (spent < budget_s and len(walls) < MAX_RUNS):
        start, start_cpu, start_own = time.perf_counter(), time.process_time(), time.thread_time()
        fn()
        _sync(device)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
        owns.append(time.thread_time() - start_own)
        spent += walls[-1]
    if device != "cpu" or not CPU_CLOCKS_USABLE or min(owns) <= 0:
        return min(walls)
    sharing = min(threads, max(1.0, statistics.median(cpu / own for cpu, own in zip(cpus, owns))))
    return min(min(walls), statistics.median(cpus) / sharing)


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


def matmul_peak_gflops(device: str = "cpu", dtype: torch.dtype | str = torch.float32, size: int | None = None,
                       min_runs: int = 5, budget_s: float = 0.25) -> float:
    """Rough best GFLOP/s of a square `size`×`size` matmul on `device` in `dtype` with the process's
    current thread count (`torch.get_num_threads()`), measured once per process for each.

    `dtype` may be a torch dtype or a precision name (`fp32`, `bf16`). Default size: 1024 on the CPU
    (at the peak on a few cores, ~10 ms a run on one, so that many runs fit between other processes'
    turns on a busy machine), 8192 on CUDA. On the CPU in float32 both `torch.mm` and oneDNN's GEMM
    are timed and the better one counts. Each GEMM: `WARMUP_RUNS` runs, then the best of at least
    `min_runs` within `budget_s` seconds (see `_best_seconds`); about 0.3–0.8 s in all on a CPU.
    A rough figure: see the module's docstring for how far it moves.
    """
    if isinstance(dtype, str):
        dtype = PRECISION_DTYPES[dtype]
    if size is None:
        size = 8192 if device.startswith("cuda") else 1024
    return _measured_peak(device, dtype, size, min_runs, budget_s, torch.get_num_threads())


@lru_cache(maxsize=None)
def _measured_peak(device: str, dtype: torch.dtype, size: int, min_runs: int, budget_s: float, threads: int) -> float:
    """`matmul_peak_gflops`, cached: `threads` is in the key because a process may change it between runs."""
    # A generator of its own: measuring must not move the global RNG a training run depends on.
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, generator=generator).to(dtype)
    b = torch.randn(size, size, device=device, generator=generator).to(dtype)
    candidates = [lambda: torch.mm(a, b)]
    if device == "cpu" and dtype == torch.float32:
        onednn = _onednn_linear(a, b)
        if onednn is not None:
            candidates.append(onednn)
    best = min(_best_seconds(fn, device, min_runs, budget_s, threads) for fn in candidates)
    return 2 * size**3 / best / 1e9


matmul_peak_gflops.cache_clear = _measured_peak.cache_clear  # tests measure afresh
matmul_peak_gflops.cache_info = _measured_peak.cache_info


def main(argv: list[str] | None = None) -> None:
    """Print the matmul peak as a run measures it (rerun it to see how much it moves)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rnnlab.training.flops", description=main.__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=sorted(PRECISION_DTYPES), default="fp32")
    parser.add_argument("--threads", type=int, help="torch threads (default: PyTorch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = matmul_peak_gflops(args.device, args.precision)
    print(f"matmul peak {peak:.0f} GFLOP/s ({args.device}, {args.precision}, {torch.get_num_threads()} threads; rough)")


if __name__ == "__main__":
    main()
