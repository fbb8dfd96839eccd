"""What logging the gradient norm (issue 20) costs per training step: `rnnlab train` of this tree against the
same command of an earlier commit (default: the one before the norm was logged), alternated in one invocation.

Each side is a fresh process with one thread; the figure is the median epoch time (metrics.json's `seconds`:
the training loop itself, log steps included) over every epoch of every round, and after / before. Then the
cost of one log step's additions alone (this tree's src must be importable: run it with PYTHONPATH=src).

    python benchmarks/grad_norm_overhead.py [--before COMMIT] [--rounds 3] [--data-dir ../shared/data/mnist]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = {  # name → training options; a small model makes a per-step cost as visible as it can be
    "lstm 128, --log-every 50 (the sheet's)": ["--model", "lstm", "--hidden-size", "128", "--train-limit", "6400"],
    "rnn 8, --log-every 1 (worst case)": ["--model", "rnn", "--hidden-size", "8", "--train-limit", "12800",
                                          "--log-every", "1"],
}


def epoch_seconds(src: Path, options: list[str], data_dir: str, out: Path) -> list[float]:
    command = [sys.executable, "-m", "rnnlab", "train", *options, "--epochs", "5", "--test-limit", "100", "--threads",
               "1", "--quiet", "--data-dir", data_dir, "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(src)})
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return [e["seconds"] for e in json.loads((out / "metrics.json").read_text())["epochs"]]


def per_log_step_cost(repeats: int = 2000) -> str:
    """What one log step adds, timed alone in this process: the norm read back, and the row of steps.csv."""
    import torch

    from rnnlab.models import build_model
    from rnnlab.training.logs import ExperimentLog

    torch.set_num_threads(1)
    model = build_model("rnn", 28, 8, 1)
    torch.nn.functional.cross_entropy(model(torch.randn(64, 28, 28)), torch.randint(0, 10, (64,))).backward()
    started = time.perf_counter()
    for _ in range(repeats):
        float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None]))
    norm = (time.perf_counter() - started) / repeats
    with tempfile.TemporaryDirectory() as tmp:
        log = ExperimentLog(Path(tmp), steps_per_epoch=repeats)
        started = time.perf_counter()
        for step in range(1, repeats + 1):
            log.step(step, 2.3, 0.1, 0.001, 0.5)
        row = (time.perf_counter() - started) / repeats
    return f"one log step, timed alone: the norm {1e6 * norm:.0f} µs (rnn 8), the steps.csv row {1e6 * row:.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="591015f", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before, "src"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        sides = {"before": before / "src", "after": REPO / "src"}
        for case, (name, options) in enumerate(CASES.items()):
            times: dict[str, list[float]] = {side: [] for side in sides}
            for r in range(args.rounds):  # alternated, so a change of load falls on both sides
                for side, src in sides.items():
                    times[side] += epoch_seconds(src, options, args.data_dir, Path(tmp) / f"{case}-{side}-{r}")
            medians = {side: statistics.median(t) for side, t in times.items()}
            print(f"{name}: median epoch before {medians['before']:.3f} s, after {medians['after']:.3f} s, "
                  f"after/before {medians['after'] / medians['before']:.3f} ({len(times['after'])} epochs each)")
    print(per_log_step_cost())
    print("load average (1, 5, 15 min):", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
