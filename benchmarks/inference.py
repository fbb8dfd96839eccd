"""Inference throughput: images per second of each model at batch 1 and batch 1,000 (CPU by default).

Each model is built as `rnnlab` builds it (the sheet's sizes: hidden 128, 1 layer for rnn, 2 for the
others; `--view rows`), in eval mode under `torch.inference_mode()`, on real MNIST test images
normalised as in training (random inputs when `--data-dir` has no MNIST). Trained or untrained weights
cost the same. For each (model, batch, precision) the figure is the median of `--repeats` timed runs,
each of at least `--min-seconds`, after a warm-up; models are interleaved within each repeat.

    python benchmarks/inference.py                          # rnn, lstm, gru, scratch-lstm; batch 1 and 1000; fp32
    python benchmarks/inference.py --precision fp32 bf16 --threads 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from rnnlab.models import build_model
from rnnlab.training.evaluate import autocast

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MODELS = ("rnn", "lstm", "gru", "scratch-lstm")


def available_models(names) -> list[str]:
    """`names` minus those this rnnlab cannot build (scratch-lstm needs rnnlab.models.scratch_lstm)."""
    out = []
    for name in names:
        try:
            build_model(name, 28, 8, 1)
        except (ImportError, ValueError):
            print(f"skipping {name}: not available in this rnnlab")
            continue
        out.append(name)
    return out


def test_inputs(data_dir: Path, count: int) -> torch.Tensor:
    """`count` normalised test images as (N, 28, 28) rows, repeated as needed."""
    try:
        from rnnlab.data import load_splits, to_sequences

        images = load_splits("mnist", data_dir, announce=lambda _: None).test.images[:count]
        x = to_sequences(images, "rows")
    except Exception as exc:  # noqa: BLE001  (any trouble with the data: time on random inputs instead)
        print(f"no MNIST in {data_dir} ({exc}); timing random inputs")
        x = torch.randn(count, 28, 28)
    if len(x) < count:
        x = x.repeat(-(-count // len(x)), 1, 1)[:count]
    return x.contiguous()


def images_per_second(model, inputs: torch.Tensor, batch: int, precision: str, min_seconds: float) -> float:
    device = torch.device("cpu")
    batches = [inputs[i : i + batch] for i in range(0, len(inputs) - batch + 1, batch)]
    with torch.inference_mode(), autocast(device, precision):
        for x in batches[:3]:  # warm-up
            model(x)
        done, started = 0, time.perf_counter()
        while True:
            for x in batches:
                model(x)
                done += len(x)
                if batch == 1 and done % 64 == 0 and time.perf_counter() - started >= min_seconds:
                    break
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds:
                return done / elapsed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batches", type=int, nargs="+", default=[1, 1000])
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=("fp32", "bf16"))
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--min-seconds", type=float, default=1.0, help="minimum length of one timed run")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = available_models([m.strip() for m in args.models.split(",") if m.strip()])
    inputs = test_inputs(args.data_dir, max(max(args.batches), 1000))
    models = {}
    for name in names:
        torch.manual_seed(args.seed)
        models[name] = build_model(name, 28, 128, 1 if name == "rnn" else 2).eval()
    times: dict[tuple, list[float]] = {}
    for _ in range(args.repeats):
        for batch in args.batches:
            for precision in args.precision:
                for name, model in models.items():
                    rate = images_per_second(model, inputs, batch, precision, args.min_seconds)
                    times.setdefault((name, batch, precision), []).append(rate)
    print(f"threads {torch.get_num_threads()}, torch {torch.__version__}, median of {args.repeats} runs")
    cols = [(b, p) for b in args.batches for p in args.precision]
    print(f"{'model':<14}" + "".join(f"{f'batch {b} {p}':>18}" for b, p in cols) + "   images/s")
    for name in models:
        print(f"{name:<14}" + "".join(f"{statistics.median(times[(name, b, p)]):>18,.0f}" for b, p in cols))
    if args.json:
        rows = [{"model": n, "batch": b, "precision": p, "images_per_second": statistics.median(v), "runs": v}
                for (n, b, p), v in times.items()]
        args.json.write_text(json.dumps({"threads": torch.get_num_threads(), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
