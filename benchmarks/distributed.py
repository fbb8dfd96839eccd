"""One process against torchrun with K processes on the same machine: time, accuracy, weights.

    python benchmarks/distributed.py --model lstm --epochs 1 --nproc 2

Each configuration runs `rnnlab train` in its own process tree (alternating, `--repeats` times) with
the same global batch and seed. One process uses all `--threads` threads; each of the K processes gets
threads/K, so both use the same cores. Prints train seconds (from metrics.json), the ratio, test
accuracy and the largest weight difference between the two runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"


def run(out: Path, args, nproc: int) -> dict:
    common = ["train", "--model", args.model, "--epochs", str(args.epochs), "--data-dir", str(args.data_dir),
              "--out", str(out), "--quiet", "--seed", str(args.seed)]
    if args.train_limit:
        common += ["--train-limit", str(args.train_limit)]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, args.threads // nproc)), "GLOO_SOCKET_IFNAME": "lo"}
    if nproc == 1:
        cmd = [sys.executable, "-m", "rnnlab", *common]
    else:
        cmd = [str(Path(sys.executable).parent / "torchrun"), "--standalone", f"--nproc_per_node={nproc}",
               "-m", "rnnlab", *common]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="lstm")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = p.parse_args()
    times = {1: [], args.nproc: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            order = (1, args.nproc) if r % 2 == 0 else (args.nproc, 1)
            for nproc in order:
                out = Path(tmp) / f"r{r}-p{nproc}"
                metrics = run(out, args, nproc)
                times[nproc].append(metrics["train_seconds"])
                print(f"repeat {r + 1}, {nproc} process(es): train {metrics['train_seconds']:.1f} s, "
                      f"test {100 * metrics['test_accuracy']:.2f}%", flush=True)
        one = torch.load(Path(tmp) / "r0-p1" / "model.pt", weights_only=True)["state_dict"]
        many = torch.load(Path(tmp) / f"r0-p{args.nproc}" / "model.pt", weights_only=True)["state_dict"]
        diff = max((one[k] - many[k]).abs().max().item() for k in one)
    t1, tk = statistics.median(times[1]), statistics.median(times[args.nproc])
    print("\n| processes | threads each | median train s | ratio to 1 process |\n|---|---:|---:|---:|")
    print(f"| 1 | {args.threads} | {t1:.1f} | 1.00 |")
    print(f"| {args.nproc} (torchrun, gloo) | {max(1, args.threads // args.nproc)} | {tk:.1f} | {tk / t1:.2f} |")
    print(f"\nmax |w_{args.nproc}proc - w_1proc| after {args.epochs} epoch(s): {diff:.3g}")


if __name__ == "__main__":
    main()
