"""The pieces of a ScratchLSTM step that depend on the CPU: which GEMM, and which tanh (issue 22).

For the lab's sizes (batch 64, hidden 128), on one thread, each variant alternated with the others and
timed by the thread's CPU clock (so other processes on the machine move it less): the median per call.

* the per-step product (64×128 by 128×512): MKL (`torch.mm`) against oneDNN
  (`torch.ops.mkldnn._linear_pointwise`, weight prepared once), as `rnnlab.models._fast` chooses;
* tanh on 64×128: `torch.tanh` against the `2σ(2z) − 1` trick ScratchLSTM used before issue 22.

    python benchmarks/lstm_kernels.py [--calls 400]
    ATEN_CPU_CAPABILITY=avx2 python benchmarks/lstm_kernels.py    # ATen's AVX2 kernels on an AVX-512 CPU
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400, help="timed calls per variant")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    h, Wh = torch.randn(64, 128), torch.randn(128, 512) * 0.1
    c, out = torch.randn(64, 128), torch.empty(64, 128)
    variants = {
        "product 64x128 @ 128x512, MKL (torch.mm)": lambda: torch.mm(h, Wh),
        "tanh 64x128, torch.tanh": lambda: torch.tanh(c, out=out),
        "tanh 64x128, 2*sigmoid(2z) - 1": lambda: out.copy_(c).mul_(2).sigmoid_().mul_(2).sub_(1),
    }
    if torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        w = Wh.t().contiguous().to_mkldnn()
        variants["product 64x128 @ 128x512, oneDNN (_linear_pointwise)"] = (
            lambda: torch.ops.mkldnn._linear_pointwise(h, w, None, "none", [], ""))
    times: dict[str, list[float]] = {name: [] for name in variants}
    for f in variants.values():
        for _ in range(50):
            f()
    for _ in range(args.calls):
        for name, f in variants.items():
            started = time.thread_time_ns()
            f()
            times[name].append((time.thread_time_ns() - started) / 1e3)
    print(f"torch {torch.__version__}, ATen kernels {torch.backends.cpu.get_cpu_capability()}, 1 thread, "
          f"load average {os.getloadavg()[0]:.1f}")
    print()
    print("| operation | median µs per call |\n|---|---:|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.1f} |")


if __name__ == "__main__":
    main()
