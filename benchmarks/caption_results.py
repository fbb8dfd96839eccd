"""The captioning figures of docs/captioning.md, measured on this machine: one command, resumable.

    python benchmarks/caption_results.py --data-dir ../shared/data/mnist --out runs/caption-results

Trains, into OUT (a run folder each; a finished one is kept, a started one is resumed):
  lstm/        the PyTorch captioner with the nn.LSTM decoder, the default settings (`rnnlab caption train`)
  rnn/         the same with a vanilla nn.RNN decoder (same seed, pictures, steps)
  numpy-lstm/  CS231n's CaptioningRNN (LSTM) in NumPy, on the frozen features of lstm/'s encoder
then `rnnlab caption report` over the three (greedy, and beam search of --beam-size), and writes
OUT/results.json and OUT/results.md: every score, by caption length, training times, the CPU, threads
and load averages (this machine is shared: the load says how much of it the runs had).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def train(name: str, settings: dict, out: Path, log) -> dict:
    """One run into out/name: trained, resumed, or left as it is when finished."""
    from rnnlab.caption.config import CaptionConfig
    from rnnlab.caption.train import train_caption

    run_dir = out / name
    log(f"== {name} ==  (load average {os.getloadavg()[0]:.1f})")
    if (run_dir / "config.json").is_file():
        result = train_caption(None, run_dir, resume=True, log=log)
    else:
        result = train_caption(CaptionConfig(**settings), run_dir, log=log)
    return result.metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA if DEFAULT_DATA.is_dir() else "data"))
    parser.add_argument("--out", default="runs/caption-results")
    parser.add_argument("--beam-size", type=int, default=3)
    parser.add_argument("--numpy-epochs", type=int, default=2, help="epochs of the NumPy CaptioningRNN")
    parser.add_argument("--quick", action="store_true", help="a few hundred steps each: check the script runs")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import torch

    from rnnlab.caption.report import score_runs, table_lines

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = lambda message: print(message, flush=True)  # noqa: E731
    common = {"data_dir": args.data_dir}
    if args.quick:
        common.update(epochs=1, epoch_size=6400, test_size=300)
    load_before = os.getloadavg()
    started = time.time()
    metrics = {"lstm": train("lstm", {**common, "decoder": "lstm"}, out, log),
               "rnn": train("rnn", {**common, "decoder": "rnn"}, out, log)}
    numpy_settings = {**common, "decoder": "lstm", "backend": "numpy", "features_from": str(out / "lstm"),
                      "epochs": 1 if args.quick else args.numpy_epochs}
    metrics["numpy-lstm"] = train("numpy-lstm", numpy_settings, out, log)
    load_after = os.getloadavg()

    results = score_runs([out / name for name in metrics], args.data_dir, args.beam_size, log)
    lines = table_lines(results)
    for line in lines:
        log(line)
    machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
               "python": sys.version.split()[0], "load_average_before": load_before, "load_average_after": load_after,
               "wall_seconds": time.time() - started}
    summary = {"machine": machine, "runs": {
        name: {"train_seconds": metrics[name]["train_seconds"], "threads": metrics[name]["threads"],
               "load_average_at_end": metrics[name]["load_average"], "greedy": results[name]["greedy"],
               **({"beam": results[name]["beam"]} if "beam" in results[name] else {})}
        for name in metrics}}
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "results.md").write_text(
        f"CPU: {machine['cpu']}, {machine['cores']} cores; torch {machine['torch']}; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after\n\n" + "\n".join(lines) + "\n")
    log(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
