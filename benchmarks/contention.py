"""How a training slows down when other work shares the cores, per threading setting.

The measured job is a 1-epoch RNN on 20,000 MNIST images (`rnnlab train`, its own `train_seconds`).
It runs alone, beside a busy loop (one core spinning), and beside a second training (an LSTM started
with the same setting, as `--jobs 2` or a student's second notebook would), for each setting:

- `torch`: torch's own (one OpenMP thread per core; libgomp spins ~300,000 times waiting for work),
  rnnlab's default until this benchmark;
- `1-thread`: OMP_NUM_THREADS=1;
- `passive`: OMP_WAIT_POLICY=PASSIVE (waiting threads sleep at once), one thread per core;
- `spin-N`: GOMP_SPINCOUNT=N (spin N times, then sleep), set before torch is imported, one thread per core;
- `rnnlab`: nothing set, rnnlab's default since: one thread per core left free by other work, measured
  over 0.25 s when the run starts (`rnnlab.training.machine.free_cores_threads`).

Competitors are started and stopped by this script; each measurement is repeated and interleaved
(setting order rotates per repeat), and the table gives medians and the ratio to torch's threads on a quiet machine.

    python benchmarks/contention.py --data-dir ../shared/data/mnist [--repeats 3] [--settings torch,1-thread,...]
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

CORES = str(os.cpu_count() or 1)
SETTINGS = {
    "torch": {"OMP_NUM_THREADS": CORES},
    "1-thread": {"OMP_NUM_THREADS": "1"},
    "passive": {"OMP_NUM_THREADS": CORES, "OMP_WAIT_POLICY": "PASSIVE"},
    "spin-10k": {"OMP_NUM_THREADS": CORES, "GOMP_SPINCOUNT": "10000"},
    "spin-100k": {"OMP_NUM_THREADS": CORES, "GOMP_SPINCOUNT": "100000"},
    "rnnlab": {},
}
CONDITIONS = ("alone", "busy loop", "second training")
BUSY = "import time\nend = time.time() + 3600\nwhile time.time() < end:\n    pass\n"


def env_for(setting: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    return {**env, **SETTINGS[setting]}


def rnnlab(*argv: str, env: dict, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rnnlab", "train", *argv, "--out", str(out), "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def measure(setting: str, condition: str, data_dir: str, folder: Path) -> float:
    """train_seconds of the measured RNN epoch under `condition`, everything started with `setting`."""
    env = env_for(setting)
    competitors = []
    if condition == "busy loop":
        competitors.append(subprocess.Popen([sys.executable, "-c", BUSY]))
    elif condition == "second training":
        competitors.append(rnnlab("--model", "lstm", "--epochs", "50", "--data-dir", data_dir, env=env,
                                  out=folder / f"competitor-{time.monotonic_ns()}"))
    try:
        if competitors:
            time.sleep(3.0)  # the competitor is past its start-up and computing
        out = folder / f"measured-{time.monotonic_ns()}"
        proc = rnnlab("--model", "rnn", "--epochs", "1", "--train-limit", "20000", "--test-limit", "1000",
                      "--data-dir", data_dir, env=env, out=out)
        _, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"the measured run failed: {err[-500:]}")
        return json.loads((out / "metrics.json").read_text())["train_seconds"]
    finally:
        for competitor in competitors:
            competitor.kill()
            competitor.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    args = parser.parse_args(argv)
    settings = args.settings.split(",")
    conditions = args.conditions.split(",")
    times: dict[tuple[str, str], list[float]] = {}
    loads = []
    print(f"contention: {os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="rnnlab-contention-") as folder:
        for r in range(args.repeats):
            order = settings[r % len(settings):] + settings[:r % len(settings)]
            for condition in conditions:
                for setting in order:
                    loads.append(os.getloadavg()[0])
                    seconds = measure(setting, condition, args.data_dir, Path(folder))
                    times.setdefault((setting, condition), []).append(seconds)
                    print(f"  repeat {r + 1} {condition:<16} {setting:<11} {seconds:6.1f} s", flush=True)
    quiet = statistics.median(times[("torch", "alone")]) if ("torch", "alone") in times else None
    print(f"\nmedian train_seconds of the measured RNN epoch (ratio to torch's threads alone); load average during the "
          f"runs {min(loads):.1f}-{max(loads):.1f}\n")
    print("| setting | " + " | ".join(conditions) + " |\n| --- |" + " ---: |" * len(conditions))
    for setting in settings:
        cells = []
        for condition in conditions:
            median = statistics.median(times[(setting, condition)])
            cells.append(f"{median:.1f} s ({median / quiet:.2f}x)" if quiet else f"{median:.1f} s")
        print(f"| {setting} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
