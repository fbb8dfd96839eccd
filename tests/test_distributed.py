"""torchrun with 2 CPU processes (gloo over loopback) trains what one process trains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from conftest import finish

TORCHRUN = Path(sys.executable).parent / "torchrun"
# 3,200 images / batch 64 = 50 global steps per epoch, 2 epochs = 100 steps. Every process runs one
# thread, so that the one-process reference does its matrix products in the same order.
ARGS = ["--model", "lstm", "--hidden-size", "32", "--train-limit", "3200", "--test-limit", "2000",
        "--epochs", "2", "--checkpoint-every", "10", "--quiet", "--seed", "3"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}


def torchrun(*argv, nproc: int = 2) -> subprocess.Popen:
    cmd = [str(TORCHRUN), "--standalone", f"--nproc_per_node={nproc}", "-m", "rnnlab", *map(str, argv)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)



def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "model.pt", weights_only=True)["state_dict"]


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_dir):
    root = tmp_path_factory.mktemp("ddp")
    code, _, err = finish(subprocess.Popen([sys.executable, "-m", "rnnlab", "train", *ARGS, "--data-dir", mnist_dir,
                                            "--out", root / "one"], stderr=subprocess.PIPE, text=True, env=ENV))
    assert code == 0, err
    code, out, err = finish(torchrun("train", *ARGS, "--data-dir", mnist_dir, "--out", root / "two"))
    assert code == 0, err
    assert out.count("Epoch [1/2]") == 1, "only rank 0 may print"
    return root


def test_two_processes_match_one(runs, mnist_dir):
    one, two = weights(runs / "one"), weights(runs / "two")
    diff = max((one[k] - two[k]).abs().max().item() for k in one)
    print(f"max |w_2proc - w_1proc| after 100 steps: {diff:.3g}")
    assert diff <= 1e-4
    m1, m2 = metrics(runs / "one"), metrics(runs / "two")
    assert m2["world_size"] == 2 and m1["world_size"] == 1
    for e1, e2 in zip(m1["epochs"], m2["epochs"]):
        assert e1["train_loss"] == pytest.approx(e2["train_loss"], abs=1e-4)
        assert e1["train_accuracy"] == pytest.approx(e2["train_accuracy"], abs=2e-3)


def test_ranks_agree_and_reported_accuracy_is_whole_test_set(runs, mnist_dir):
    from rnnlab.runs import evaluate_saved, load_model, weights_checksum

    m2 = metrics(runs / "two")
    model, _ = load_model(runs / "two")
    # Every rank's replica was hashed at the end and all agreed; the saved weights are those weights.
    assert m2["weights_sha256"] == weights_checksum(model)
    _, evaluation = evaluate_saved(runs / "two", data_dir=str(mnist_dir))
    assert int(evaluation.confusion.sum()) == 2000
    assert m2["test_accuracy"] == evaluation.accuracy


def test_killed_rank_stops_the_job_and_resume_completes_it(runs, tmp_path, mnist_dir):
    run_dir = tmp_path / "run"
    proc = torchrun("train", *ARGS, "--data-dir", mnist_dir, "--out", run_dir)
    deadline = time.time() + 300
    while not (run_dir / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True) if "rnnlab" in " ".join(p.cmdline())]
    assert len(workers) == 2 and proc.poll() is None
    workers[1].send_signal(signal.SIGKILL)
    started = time.time()
    code, out, err = finish(proc, timeout=180)  # bounded: no hang
    print(f"job stopped {time.time() - started:.1f} s after the kill")
    assert code != 0
    assert "SIGKILL" in err or "Signal 9" in err, err[-2000:]
    assert not (run_dir / "model.pt").exists()

    code, out, err = finish(torchrun("train", "--resume", run_dir))
    assert code == 0, err
    assert "resuming at epoch" in out
    resumed, uninterrupted = weights(run_dir), weights(runs / "two")
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
    m, ref = metrics(run_dir), metrics(runs / "two")
    assert [(e["train_loss"], e["train_accuracy"]) for e in m["epochs"]] == \
           [(e["train_loss"], e["train_accuracy"]) for e in ref["epochs"]]
    assert m["test_accuracy"] == ref["test_accuracy"]
