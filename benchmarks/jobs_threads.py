"""compare --jobs: do 2 runs side by side with 1 thread each finish sooner than one after the other with 2?

    python benchmarks/jobs_threads.py --data-dir ../shared/data/mnist [--models rnn,lstm] [--repeats 3]

For each of the lab's models, the same work (seeds 0 and 1, one epoch of the first --train-limit
images, the sheet's settings) is run as `rnnlab compare --jobs 1 --threads C` (one process, all C cores'
threads, runs in turn) and as `--jobs C` (C processes of one thread), interleaved, --repeats times. It
prints the wall-clock seconds (start-up and evaluation included: what a user waits for), their medians and
ratio, and the load average around each measurement (the machine may be shared), as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(models: str, jobs: int, threads: int, args, out: Path) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "rnnlab", "compare", "--models", models, "--seeds", f"0-{args.runs - 1}",
               "--jobs", str(jobs), "--threads", str(threads), "--epochs", "1", "--train-limit", str(args.train_limit),
               "--test-limit", "1000", "--quiet", "--no-report", "--data-dir", args.data_dir, "--out", str(out)]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started, (load + os.getloadavg()[0]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--models", default="rnn,lstm")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=12800)
    parser.add_argument("--runs", type=int, default=2, help="seeds per measurement (default 2)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    variants = [(1, cores), (cores, 1)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            times = {v: [] for v in variants}
            loads = []
            for repeat in range(args.repeats):
                order = variants if repeat % 2 == 0 else variants[::-1]
                for jobs, threads in order:
                    seconds, load = measure(model, jobs, threads, args, Path(tmp) / "out")
                    times[(jobs, threads)].append(seconds)
                    loads.append(load)
                    print(f"{model}: {jobs} job(s) x {threads} thread(s): {seconds:.1f} s (load average {load:.1f})",
                          flush=True)
            base = statistics.median(times[variants[0]])
            for jobs, threads in variants:
                median = statistics.median(times[(jobs, threads)])
                rows.append(f"| {model} | {jobs} × {threads} | {', '.join(f'{t:.1f}' for t in times[(jobs, threads)])} "
                            f"| {median:.1f} | {median / base:.2f} | {min(loads):.1f}–{max(loads):.1f} |")
    print(f"\n{args.runs} runs of 1 epoch × {args.train_limit:,} images each, {cores} cores\n")
    print("| model | jobs × threads | wall seconds (each repeat) | median | ratio to 1 job | load average |")
    print("|---|---|---|---:|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
