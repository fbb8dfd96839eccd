"""How long `rnnlab gradients` takes: the whole command, as a user runs it (Python and torch start-up, data,
both weights of every run, the JSON and the picture), on the runs given, for 256 test images by default.

The issue's goal: the lab's two 5-epoch runs (rnn and lstm, 28 steps) in at most 10 s on this CPU. Each repeat
is a fresh `python -m rnnlab gradients` process; the figure is the median wall time, printed with the load
average before and after (as `uptime` shows it), since a busy machine stretches it. Outputs go to a temporary
folder (or `--out`), never into the runs.

    python benchmarks/gradients.py runs/lab-serve/rnn runs/lab-serve/lstm
    python benchmarks/gradients.py RUN_DIR... --images 256 --repeats 3 --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def load_average() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def time_command(run_dirs: list[str], images: int, out: Path, threads: int | None, echo: bool) -> float:
    """Wall seconds of one `rnnlab gradients` process; `echo` prints its output, a failure stops the benchmark."""
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "rnnlab", "gradients", *run_dirs, "--images", str(images),
                             "--out", str(out)], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"rnnlab gradients failed ({result.returncode}): {result.stderr.strip()}")
    if echo:
        print(result.stdout.strip())
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished run folders")
    parser.add_argument("--images", type=int, default=256, help="test images (default: 256)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes timed (default: 3)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the command (default: as set)")
    parser.add_argument("--out", default=None, help="folder for gradients.json/.png (default: a temporary one)")
    args = parser.parse_args(argv)

    before = load_average()
    with tempfile.TemporaryDirectory(prefix="rnnlab-gradients-") as scratch:
        out = Path(args.out) if args.out else Path(scratch)
        times = [time_command(args.run_dirs, args.images, out, args.threads, echo=k == 0) for k in range(args.repeats)]
    print(f"rnnlab gradients, {len(args.run_dirs)} runs, {args.images} images: median {statistics.median(times):.2f} s "
          f"over {len(times)} processes ({', '.join(f'{t:.2f}' for t in times)} s); "
          f"threads {args.threads or os.environ.get('OMP_NUM_THREADS', 'torch default')}; "
          f"load average {before} before, {load_average()} after")


if __name__ == "__main__":
    main()
