"""Threads of a CPU run when --threads is not given: one per core that other work leaves free, chosen at the
start of a new run, recorded in config.json and kept on resume (a seeded result depends on the thread
count). Why this default: docs/benchmarks.md, "Sharing the cores"."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import finish, run
from rnnlab.training import machine
from rnnlab.training.machine import available_cores

TINY = ["--model", "rnn", "--hidden-size", "8", "--train-limit", "640", "--test-limit", "100", "--epochs", "1",
        "--quiet"]
BUSY = "import time\nend = time.time() + 5\nwhile time.time() < end:\n    pass\n"


@pytest.fixture
def restore_threads():
    """An in-process run sets torch's threads for the whole process: put them back after."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def threads_of(run_dir) -> tuple[int, int]:
    """(threads in config.json, threads the run recorded in metrics.json)."""
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return config["threads"], metrics["environment"]["threads"]


def test_busy_cores_sees_a_spinning_process():
    if not sys.platform.startswith("linux"):
        assert machine.busy_cores(0.05) is None  # no /proc/stat: torch's own thread count is used
        return
    spinner = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        time.sleep(0.3)  # past its start-up
        busy = machine.busy_cores(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert 0.7 <= busy <= available_cores() + 0.1, busy


@pytest.mark.parametrize("busy,expected", [(0.0, min(machine.TORCH_THREADS, available_cores())),
                                           (available_cores() - 1.0, 1), (available_cores() + 3.0, 1)])
def test_a_new_run_takes_the_cores_left_free_and_records_them(tmp_path, mnist_dir, capsys, monkeypatch,
                                                              restore_threads, busy, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(machine, "busy_cores", lambda seconds=0.25: busy)
    code, _, err = run(capsys, "train", *TINY, "--data-dir", mnist_dir, "--out", tmp_path / "run")
    assert code == 0, err
    assert threads_of(tmp_path / "run") == (expected, expected)


def test_an_explicit_choice_is_never_second_guessed(tmp_path, mnist_dir, capsys, monkeypatch, restore_threads):
    def unexpected(seconds=0.25):
        raise AssertionError("the load was measured although the thread count was given")

    monkeypatch.setattr(machine, "busy_cores", unexpected)
    code, _, err = run(capsys, "train", *TINY, "--threads", "1", "--data-dir", mnist_dir, "--out", tmp_path / "given")
    assert code == 0 and threads_of(tmp_path / "given") == (1, 1), err
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the standard variable: torch's own choice, left alone
    code, _, err = run(capsys, "train", *TINY, "--data-dir", mnist_dir, "--out", tmp_path / "omp")
    assert code == 0, err
    assert json.loads((tmp_path / "omp" / "config.json").read_text())["threads"] is None


def test_resume_keeps_the_recorded_threads_whatever_the_load(tmp_path, mnist_dir, capsys, monkeypatch,
                                                             restore_threads):
    run_dir = tmp_path / "run"
    args = [*TINY, "--train-limit", "6400", "--epochs", "2", "--checkpoint-every", "5"]
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "train", *args, "--data-dir", str(mnist_dir), "--out",
                             str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (run_dir / "checkpoint.pt").exists() and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    assert finish(proc)[0] == 143

    def unexpected(seconds=0.25):
        raise AssertionError("the load was measured on resume")

    monkeypatch.setattr(machine, "busy_cores", unexpected)
    code, out, err = run(capsys, "train", "--resume", run_dir)
    assert code == 0 and "resuming at" in out, err
    chosen, used = threads_of(run_dir)
    assert chosen == used and 1 <= chosen <= available_cores()
