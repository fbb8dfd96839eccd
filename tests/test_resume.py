"""A run killed at any point and resumed ends exactly as the same run never interrupted."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import finish

# 3 epochs × 64 steps with dropout between the two layers (so the RNG state matters), checkpoints
# every 5 steps and at every epoch end. One thread, given: separate runs compared bit for bit must not
# depend on the load at their start (the default thread count does).
ARGS = ["--model", "lstm", "--hidden-size", "24", "--dropout", "0.2", "--train-limit", "4096",
        "--test-limit", "500", "--epochs", "3", "--checkpoint-every", "5", "--quiet", "--seed", "7", "--threads", "1"]


def rnnlab(*argv, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rnnlab", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})



def final_state(run_dir: Path):
    saved = torch.load(run_dir / "model.pt", weights_only=True)["state_dict"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    values = [(e["epoch"], e["train_loss"], e["train_accuracy"]) for e in metrics["epochs"]]
    return saved, values + [metrics["test_accuracy"], metrics["per_class_accuracy"]]


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mnist_dir):
    """The uninterrupted run's final weights and metrics."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    code, _, err = finish(rnnlab("train", *ARGS, "--data-dir", mnist_dir, "--out", run_dir))
    assert code == 0, err
    return final_state(run_dir)


def assert_same_run(run_dir: Path, reference) -> None:
    weights, metrics = final_state(run_dir)
    ref_weights, ref_metrics = reference
    assert weights.keys() == ref_weights.keys()
    for name in weights:
        assert torch.equal(weights[name], ref_weights[name]), f"{name} differs after resume"
    assert metrics == ref_metrics


def checkpoint_writes(run_dir: Path, proc: subprocess.Popen, count: int) -> None:
    """Wait until `count` checkpoints have been written (each write replaces the file: a new inode)."""
    seen, last = 0, None
    while seen < count and proc.poll() is None and not (run_dir / "model.pt").exists():
        try:
            stat = (run_dir / "checkpoint.pt").stat()
            key = (stat.st_ino, stat.st_mtime_ns)
        except FileNotFoundError:
            key = None
        if key is not None and key != last:
            seen, last = seen + 1, key
        time.sleep(0.002)


def test_sigkill_at_random_points_then_resume(tmp_path, mnist_dir, reference):
    """SIGKILL after a random number of checkpoints (the run writes about 40) plus a random fraction of a
    step: in a step, in a checkpoint write, or between them. Kills are paced by the run's own progress, not
    by the clock, so they land inside training on a quiet or a loaded machine alike."""
    rng = random.Random(1234)
    kills, resumed_from = 0, set()
    for trial in range(4):
        run_dir = tmp_path / f"run{trial}"
        proc = rnnlab("train", *ARGS, "--data-dir", mnist_dir, "--out", run_dir)
        checkpoint_writes(run_dir, proc, rng.randrange(1, 36))
        time.sleep(rng.uniform(0, 0.01))
        if proc.poll() is None and not (run_dir / "model.pt").exists():
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
        code, out, err = finish(rnnlab("train", "--resume", run_dir, "--quiet"))
        assert code == 0, err
        resumed_from.add(out.split("resuming at ")[1].splitlines()[0] if "resuming at" in out else "start")
        assert_same_run(run_dir, reference)
    print(f"{kills} kills; resumed: {sorted(resumed_from)}")
    assert kills >= 3, "the runs finished before they could be killed"
    assert len(resumed_from) >= 3, "the kills did not land at different points"


@pytest.mark.parametrize("nth_write", [2, 5])
def test_killed_in_the_middle_of_a_checkpoint_write(tmp_path, mnist_dir, reference, nth_write):
    """Writes 1.. are config.json, then checkpoints: the crash leaves a half-written temporary file."""
    run_dir = tmp_path / "run"
    code, _, _ = finish(rnnlab("train", *ARGS, "--data-dir", mnist_dir, "--out", run_dir,
                               env={"RNNLAB_TEST_CRASH_IN_WRITE": str(nth_write)}))
    assert code == -signal.SIGKILL
    assert list(run_dir.glob(".checkpoint.pt.*.tmp")), "the crash did not happen during a checkpoint write"
    if nth_write > 2:  # an earlier checkpoint is whole and loadable
        torch.load(run_dir / "checkpoint.pt", weights_only=True)
    code, out, err = finish(rnnlab("train", "--resume", run_dir, "--quiet"))
    assert code == 0, err
    assert_same_run(run_dir, reference)


@pytest.mark.parametrize("sig,exit_code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_sigterm_checkpoint_and_say_how_to_resume(tmp_path, mnist_dir, reference, sig, exit_code):
    run_dir = tmp_path / "run"
    proc = rnnlab("train", *ARGS, "--data-dir", mnist_dir, "--out", run_dir)
    while not (run_dir / "checkpoint.pt").exists() and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(sig)
    code, out, err = finish(proc)
    assert code == exit_code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"--resume {run_dir}" in lines[0] and "Traceback" not in err
    code, out, err = finish(rnnlab("train", "--resume", run_dir, "--quiet"))
    assert code == 0, err
    assert "resuming at epoch" in out
    assert_same_run(run_dir, reference)


def test_resume_of_a_finished_run_changes_nothing(tmp_path, mnist_dir):
    run_dir = tmp_path / "run"
    args = ["--model", "rnn", "--hidden-size", "8", "--train-limit", "256", "--test-limit", "100", "--epochs", "1"]
    assert finish(rnnlab("train", *args, "--quiet", "--data-dir", mnist_dir, "--out", run_dir))[0] == 0
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    code, out, _ = finish(rnnlab("train", "--resume", run_dir))
    assert code == 0 and "already complete" in out
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_non_finite_loss_stops_with_epoch_step_and_checkpoint(tmp_path, mnist):
    """A model whose output turns NaN at global step 13 of epoch 1: the run stops there, naming it."""
    from rnnlab.data import SequenceBatches, to_sequences
    from rnnlab.models import build_model
    from rnnlab.training import TrainingDiverged, fit
    from rnnlab.training.fit import Checkpointing

    class Poisoned(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = build_model("rnn", hidden_size=8, num_layers=1)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            out = self.inner(x)
            return out * float("nan") if self.calls == 13 else out

    torch.manual_seed(0)
    model = Poisoned()
    batches = SequenceBatches(to_sequences(mnist.train.images[:1280]), mnist.train.labels[:1280], 64,
                              shuffle=True, seed=0)
    saved = []

    class Recorded(Checkpointing):  # saves nothing, remembers where it would have
        def save(self, model, optimizer, progress, ctx):
            saved.append((progress.epoch, progress.step))
            self.last = str(tmp_path / "checkpoint.pt")
            return self.last

    with pytest.raises(TrainingDiverged) as info:
        fit(model, torch.optim.Adam(model.parameters()), batches, epochs=2, log_every=50,
            checkpoints=Recorded(path=tmp_path / "checkpoint.pt", every=5), quiet=True, log=lambda _: None)
    message = str(info.value)
    assert "nan" in message and "epoch 1, step 13" in message
    assert "last good checkpoint" in message and str(tmp_path / "checkpoint.pt") in message
    # Caught at the checkpoint after it (step 15), before the next log step (50): nothing bad was saved.
    assert saved == [(0, 5), (0, 10)]


def test_compare_interrupted_then_resumed_matches_uninterrupted(tmp_path, mnist_dir):
    args = ["compare", "--models", "rnn,gru", "--hidden-size", "16", "--train-limit", "1024", "--test-limit", "300",
            "--epochs", "3", "--checkpoint-every", "4", "--threads", "1", "--quiet", "--no-report", "--data-dir", mnist_dir]
    assert finish(rnnlab(*args, "--out", tmp_path / "ref"))[0] == 0
    proc = rnnlab(*args, "--out", tmp_path / "cut")
    while not (tmp_path / "cut" / "gru" / "checkpoint.pt").exists() and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc)
    assert code == 143 and f"rnnlab compare --resume {tmp_path / 'cut'}" in err
    # No --data-dir here: the comparison's own settings are used, not the command line's defaults.
    code, _, err = finish(rnnlab("compare", "--resume", tmp_path / "cut", "--quiet", "--no-report"))
    assert code == 0, err
    for name in ("rnn", "gru"):
        assert_same_run(tmp_path / "cut" / name, final_state(tmp_path / "ref" / name))
    ref = json.loads((tmp_path / "ref" / "summary.json").read_text())
    cut = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert {k: v["test_accuracy"] for k, v in ref.items()} == {k: v["test_accuracy"] for k, v in cut.items()}
