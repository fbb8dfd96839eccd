"""ScratchLSTM as it was at several commits, each timed against nn.LSTM in one process (issue 22's bisection).

A training step of the lab's classifier (batch 64, 28 steps x 28 inputs, 2 x 128 LSTM, linear head,
cross-entropy, backward, Adam), as in `benchmarks/lstm_step.py`. nn.LSTM and ScratchLSTM's
`scratch_lstm.py` (with its `_fast.py`, where the commit has one) from each commit given are run
round-robin step by step, the order rotating every repeat, so a busy machine slows all alike; the
figure is the median over steps of each one's step time over nn.LSTM's in the same round.

The allocator setting is process-wide, so each setting runs in its own process: glibc's defaults
(what `benchmarks/lstm_step.py` ran with up to the reshape, 4541d38) and `keep_freed_memory` (what the
rnnlab command, and that benchmark since the reshape, run with).

    python benchmarks/scratch_versions.py [--commits 501fa1e 4541d38 HEAD] [--threads 1] [--steps 30 --repeats 6]

`WORKTREE` in --commits stands for the files as they are in the working tree.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = "src/rnnlab/models"


def source(commit: str, name: str) -> str | None:
    """The text of src/rnnlab/models/NAME at COMMIT (or in the working tree), None where it has none."""
    if commit == "WORKTREE":
        path = ROOT / MODELS / name
        return path.read_text() if path.exists() else None
    done = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{MODELS}/{name}"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def load_version(commit: str, folder: Path):
    """The scratch_lstm module of COMMIT, imported under its own name, with its own _fast module."""
    tag = "v_" + "".join(ch if ch.isalnum() else "_" for ch in commit)
    text = source(commit, "scratch_lstm.py")
    if text is None:
        raise SystemExit(f"{commit} has no {MODELS}/scratch_lstm.py")
    fast = source(commit, "_fast.py")
    if fast is not None:
        (folder / f"{tag}_fast.py").write_text(fast)
        text = text.replace("from rnnlab.models import _fast", f"import {tag}_fast as _fast")
        text = text.replace("from rnnlab.models._fast import", f"from {tag}_fast import")
    path = folder / f"{tag}_scratch_lstm.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(commits: list[str], tuned: bool, threads: int, steps: int, repeats: int) -> dict:
    import torch
    from torch import nn

    from rnnlab.models.registry import build_model
    from rnnlab.training.machine import keep_freed_memory

    if tuned:
        keep_freed_memory()
    torch.set_num_threads(threads)

    def make(convert):
        torch.manual_seed(0)
        model = build_model("lstm", 28, 128, 2)
        if convert is not None:
            model.recurrent = convert(model.recurrent)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(x, y):
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.item()

        return step

    with tempfile.TemporaryDirectory() as folder:
        sys.path.insert(0, folder)
        runs = {"nn.LSTM": make(None)}
        for commit in commits:
            runs[commit] = make(load_version(commit, Path(folder)).from_torch_lstm)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 28, 28, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    first = {name: step(x, y) for name, step in runs.items()}
    for _ in range(4):
        for step in runs.values():
            step(x, y)
    names = list(runs)
    ratios = {name: [] for name in names}
    times = {name: [] for name in names}
    load_before = os.getloadavg()[0]
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for _ in range(steps):
            this = {}
            for name in order:
                started = time.perf_counter()
                runs[name](x, y)
                this[name] = time.perf_counter() - started
                times[name].append(this[name])
            for name in names:
                ratios[name].append(this[name] / this["nn.LSTM"])
    return {"tuned": tuned, "threads": threads, "load": [load_before, os.getloadavg()[0]], "first_loss": first,
            "median_ms": {n: 1e3 * statistics.median(v) for n, v in times.items()},
            "ratio": {n: statistics.median(v) for n, v in ratios.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", nargs="+", default=["501fa1e", "4541d38", "WORKTREE"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per version per repeat")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--one", choices=["0", "1"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.commits, args.one == "1", args.threads, args.steps, args.repeats)))
        return
    import torch

    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{args.threads} thread(s); {args.repeats} x {args.steps} interleaved steps per version")
    print()
    print("| allocator | load average (start → end) | " + " | ".join(f"{c} / nn.LSTM" for c in args.commits)
          + " | nn.LSTM median step (ms) |")
    print("|---|---|" + "---:|" * (len(args.commits) + 1))
    for tuned in ("0", "1"):
        command = [sys.executable, __file__, "--one", tuned, "--threads", str(args.threads), "--steps", str(args.steps),
                   "--repeats", str(args.repeats), "--commits", *args.commits]
        result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        name = "keep_freed_memory" if result["tuned"] else "glibc defaults"
        cells = " | ".join(f"{result['ratio'][c]:.3f}" for c in args.commits)
        load = "{:.1f} → {:.1f}".format(*result["load"])
        print(f"| {name} | {load} | {cells} | {result['median_ms']['nn.LSTM']:.1f} |")


if __name__ == "__main__":
    main()
