"""Issue 22, defects 1-6, each found by a hostile tester: a full disk, Ctrl-C in the first second, two runs into
one folder, a resume on other data, class-sorted limits on the offline sample, and a checkpoint's step beyond its
epoch. Each ends in one line (exit 2, or 130 for Ctrl-C) and never in a folder that blocks the next run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from conftest import finish

TINY = ["--model", "rnn", "--hidden-size", "8", "--epochs", "1", "--train-limit", "128", "--test-limit", "50",
        "--quiet"]
REPO = Path(__file__).resolve().parents[1]
SCRIPT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["rnnlab"]  # module:function
# How the CLI is started: `python -m rnnlab`, and the installed `rnnlab` script, which is these lines (pip's).
ENTRIES = {"python -m rnnlab": [sys.executable, "-m", "rnnlab"],
           "rnnlab script": [sys.executable, "-c", "import re, sys; from {0} import {1}; sys.exit({1}())".format(
               *SCRIPT.split(":"))]}


def stderr_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


# --- defect 2: Ctrl-C during `import torch` ------------------------------------------------------------------

@pytest.mark.parametrize("entry", ENTRIES)
def test_ctrl_c_in_the_first_seconds_is_one_line_and_130(entry, tmp_path, mnist_dir):
    """SIGINT at several moments of the start: in the interpreter's start, in `import torch`, in the data's
    loading, in the first step. Each is one line and exit code 130 (the README's promise), never a traceback;
    from the moment the run listens, it also leaves a checkpoint and says how to resume."""
    outcomes = []
    for k, delay in enumerate((0.1, 0.3, 0.7, 1.2, 2.0, 3.5, 6.0)):
        proc = subprocess.Popen([*ENTRIES[entry], "train", *TINY, "--data-dir", str(mnist_dir),
                                 "--out", str(tmp_path / f"run{k}")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        code, _, err = finish(proc, timeout=180)
        outcomes.append((delay, code, stderr_lines(err)[:1]))
        if code == -signal.SIGINT and not err:  # before Python had its own handler: the default action, silent
            continue
        if code == 0 and not err and (tmp_path / f"run{k}" / "metrics.json").is_file():
            continue  # a quiet machine: the signal came after the last step, and the run finished
        assert code == 130 and len(stderr_lines(err)) == 1 and "Traceback" not in err, (delay, err)
        assert stderr_lines(err)[0].startswith("rnnlab: interrupted"), (delay, err)
    print(outcomes)
