"""Minor page faults per training step of the lab's LSTM, with and without `keep_freed_memory`.

Why: a CPU training step allocates and frees tens of MB; with glibc's defaults every big buffer is a
fresh mmap whose pages fault in again each step. `rnnlab.training.machine.keep_freed_memory` (called
once by the CLI) makes malloc keep them. Page faults are counted (`getrusage`), not timed, so the
figure does not depend on how busy the machine is. Each configuration runs in its own process,
since the allocator setting is process-wide.

    python benchmarks/page_faults.py [--steps 50]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys


def measure(kind: str, tuned: bool, steps: int) -> float:
    import torch
    from torch import nn

    from rnnlab.models import build_model
    from rnnlab.models.scratch_lstm import from_torch_lstm
    from rnnlab.training.machine import keep_freed_memory

    if tuned:
        keep_freed_memory()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("lstm", 28, 128, 2)
    if kind == "scratch-lstm":
        model.recurrent = from_torch_lstm(model.recurrent)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(64, 28, 28), torch.randint(0, 10, (64,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(10):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--one", nargs=2, metavar=("KIND", "TUNED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(measure(args.one[0], args.one[1] == "1", args.steps))
        return
    print("| model (batch 64, 2×128, 1 thread) | glibc defaults | keep_freed_memory |\n| --- | ---: | ---: |")
    for kind in ("lstm", "scratch-lstm"):
        faults = [float(subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--one", kind, tuned],
                                       capture_output=True, text=True, check=True).stdout) for tuned in ("0", "1")]
        print(f"| {kind} | {faults[0]:,.0f} per step | {faults[1]:,.0f} per step |")


if __name__ == "__main__":
    main()
