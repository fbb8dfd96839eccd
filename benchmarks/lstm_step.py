"""Time one training step of the lab's LSTM classifier: nn.LSTM vs ScratchLSTM vs the NumPy reference.

A step is forward, backward and Adam for a 2-layer LSTM (128 hidden) + Linear(128, 10) head with
cross-entropy on a batch of 64 rows-view MNIST-shaped inputs (28 steps of 28 features). The three
implementations are timed interleaved in pairs with nn.LSTM (round-robin step by step, the order
swapping every repeat), so a busy machine slows both alike; the figure of merit is the median over
steps of the per-step time ratio. nn.LSTM's medians pool both phases.

    python benchmarks/lstm_step.py --steps 30 --repeats 5 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn


def build(kind: str, input_size: int, hidden: int, layers: int, seed: int):
    """(step function) for kind in {torch, scratch, numpy}; the same initial weights for all three."""
    from rnnlab.models.registry import build_model
    from rnnlab.models.scratch_lstm import from_torch_lstm

    torch.manual_seed(seed)
    model = build_model("lstm", input_size, hidden, layers)
    if kind == "scratch":
        model.recurrent = from_torch_lstm(model.recurrent)
    if kind in ("torch", "scratch"):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(x: torch.Tensor, y: torch.Tensor, xn, yn) -> float:
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.item()

        return step

    from rnnlab.models.numpy_lstm import Adam, NumpyLSTMClassifier

    classifier = NumpyLSTMClassifier(input_size, hidden, layers, 10, seed=seed, dtype=np.float32)
    adam = Adam(classifier.params, lr=1e-3)

    def step(x, y, xn: np.ndarray, yn: np.ndarray) -> float:
        loss, grads = classifier.loss_and_grads(xn, yn)
        adam.step(grads)
        return loss

    return step


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per implementation per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of interleaved timing")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=1, help="torch (and NumPy BLAS) threads")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy reference")
    args = parser.parse_args(argv)

    from rnnlab.models.numpy_lstm import blas_threads
    from rnnlab.training.machine import keep_freed_memory

    keep_freed_memory()  # what the rnnlab command does at its entry point

    torch.set_num_threads(args.threads)
    T = D = 28
    kinds = ["torch", "scratch"] + ([] if args.no_numpy else ["numpy"])
    steps = {k: build(k, D, args.hidden, args.layers, seed=0) for k in kinds}
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, T, D, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    xn, yn = x.numpy(), y.numpy()
    times: dict[str, list[float]] = {k: [] for k in kinds}
    ratios: dict[str, list[float]] = {k: [] for k in kinds if k != "torch"}

    def interleave(pair: list[str]) -> None:
        """Time `pair` (nn.LSTM and one other) round-robin, the order swapping every repeat."""
        for _ in range(args.warmup):
            for k in pair:
                steps[k](x, y, xn, yn)
        for r in range(args.repeats):
            order = pair if r % 2 == 0 else pair[::-1]
            for _ in range(args.steps):
                this = {}
                for k in order:
                    started = time.perf_counter()
                    steps[k](x, y, xn, yn)
                    this[k] = time.perf_counter() - started
                    times[k].append(this[k])
                ratios[pair[1]].append(this[pair[1]] / this["torch"])

    with blas_threads(args.threads):
        # Phase 1: nn.LSTM vs ScratchLSTM. Phase 2: nn.LSTM vs the NumPy reference (kept apart, so
        # that NumPy's very different memory traffic does not disturb the main comparison).
        for other in kinds[1:]:
            interleave(["torch", other])

    names = {"torch": "nn.LSTM", "scratch": "ScratchLSTM", "numpy": "NumPy reference"}
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, {T} steps x {D} inputs, "
          f"{args.hidden} hidden, {args.layers} layers; {args.repeats} x {args.steps} interleaved steps each")
    print()
    print("| implementation | median step (ms) | min step (ms) | median ratio to nn.LSTM |")
    print("|---|---|---|---|")
    for k in kinds:
        ratio = "1.00" if k == "torch" else f"{statistics.median(ratios[k]):.3f}"
        print(f"| {names[k]} | {1e3 * statistics.median(times[k]):.2f} | {1e3 * min(times[k]):.2f} | {ratio} |")
    result = {f"median_ms_{k}": 1e3 * statistics.median(v) for k, v in times.items()}
    result["ratio_scratch"] = statistics.median(ratios["scratch"])
    print()
    print(f"ScratchLSTM / nn.LSTM median ratio: {result['ratio_scratch']:.3f}")
    if "numpy" in ratios:
        result["ratio_numpy"] = statistics.median(ratios["numpy"])
        print(f"NumPy / nn.LSTM median ratio: {result['ratio_numpy']:.3f}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
