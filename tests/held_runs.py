"""`rnnlab compare` with a stand-in for `rnnlab.lab.train`, put in place in the comparison's process (its worker
processes import it from here by name):
- `held`: a run of seed >= 2 waits until the file named by $RNNLAB_TEST_GATE exists, which the test creates
  once it has killed the comparison's parent, so the kill lands mid-comparison by construction, not by the clock;
- `crashing`: every run fails as the first run failed for a user whose install lacked a module."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import rnnlab.lab

LAB_TRAIN = rnnlab.lab.train  # the real one, kept before `compare` puts a stand-in in its place


def held(config, run_dir, **options):
    if config is not None and config.seed >= 2:
        gate = Path(os.environ["RNNLAB_TEST_GATE"])
        while not gate.exists():
            time.sleep(0.01)
    return LAB_TRAIN(config, run_dir, **options)


def crashing(config, run_dir, **options):
    raise ModuleNotFoundError("No module named 'psutil'")


def compare(train: str, argv: list[str]) -> int:
    """`rnnlab compare ARGV` with the train function named `train` above."""
    from rnnlab.cli import main

    rnnlab.lab.train = getattr(sys.modules[__name__], train)
    try:
        return main(["compare", *argv])
    finally:
        rnnlab.lab.train = LAB_TRAIN


def command(train: str, argv: list) -> list[str]:
    """The command line that runs `compare(train, argv)` in a new Python process (cwd: tests/)."""
    return [sys.executable, "-c", f"import sys, held_runs; sys.exit(held_runs.compare({train!r}, "
                                  f"{list(map(str, argv))!r}))"]
