"""The gradient norm before clipping (issue 20, exploding gradients): logged at every log step in steps.csv and
TensorBoard, summarised per epoch in metrics.csv, equal to the norm measured independently, unchanged by a
kill and resume, and plotted in the report."""

from __future__ import annotations

import csv
import json
import math
import random
import shutil
import signal
import statistics
import time

import pytest
import torch

from conftest import finish, run
from rnnlab.config import Config
from rnnlab.errors import CheckpointError
from rnnlab.training.logs import STEPS_CSV, read_steps
from test_resume import checkpoint_writes, rnnlab

TINY = dict(model="rnn", hidden_size=8, train_limit=640, test_limit=200, epochs=2, log_every=2, threads=1, seed=0)
TINY_ARGS = ["--model", "rnn", "--hidden-size", "8", "--train-limit", "640", "--test-limit", "200", "--epochs", "2",
             "--log-every", "2", "--threads", "1", "--quiet"]


def hooked_train(run_dir, mnist_dir, clip_by_hand: float = 0.0, **changes):
    """`lab.train` in this process, with a hook on every weight that measures each training step's gradient as
    backward leaves it (before any clipping), in float64: ([norm of step 1, 2, ...], the RunResult).
    `clip_by_hand` > 0 clips the gradients just before each Adam step, outside rnnlab."""
    import rnnlab.lab

    squares: list[list[torch.Tensor]] = []  # per training step, each weight's squared gradient norm

    def initial_model(config):
        model = real_initial_model(config)
        model.register_forward_pre_hook(lambda module, args: squares.append([]) if module.training else None)
        for p in model.parameters():
            p.register_post_accumulate_grad_hook(lambda p: squares[-1].append(p.grad.double().square().sum()))
        return model

    def make_optimizer(model, config, device):
        def clip(*_):
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_by_hand)

        optimizer = real_make_optimizer(model, config, device)
        if clip_by_hand:
            optimizer.register_step_pre_hook(clip)
        return optimizer

    real_initial_model, real_make_optimizer = rnnlab.lab.initial_model, rnnlab.lab.make_optimizer
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rnnlab.lab, "initial_model", initial_model)
        patch.setattr(rnnlab.lab, "make_optimizer", make_optimizer)
        result = rnnlab.lab.train(Config(**{**TINY, **changes}, data_dir=str(mnist_dir)), run_dir, quiet=True,
                                  log=lambda _: None)
    return [math.sqrt(sum(s).item()) for s in squares], result


@pytest.fixture(scope="module")
def plain(tmp_path_factory, mnist_dir, one_thread):
    run_dir = tmp_path_factory.mktemp("grad") / "run"
    norms, result = hooked_train(run_dir, mnist_dir)
    return run_dir, norms, result


def test_the_logged_norm_is_the_gradients_norm_at_that_step(plain):
    run_dir, norms, _ = plain
    rows = read_steps(run_dir / STEPS_CSV)
    assert len(norms) == 20  # 640 images in batches of 64, 2 epochs: every step was seen by the hooks
    assert [r["global_step"] for r in rows] == list(range(2, 21, 2))  # every 2nd step, each epoch's last
    assert [r["epoch"] for r in rows] == [1] * 5 + [2] * 5
    for row in rows:
        assert row["grad_norm"] == pytest.approx(norms[row["global_step"] - 1], rel=1e-6)
    assert all(0.05 < r["grad_norm"] < 5 for r in rows) and len({r["grad_norm"] for r in rows}) == len(rows)


def test_metrics_csv_keeps_one_row_per_epoch_with_its_median_and_largest_norm(plain):
    run_dir, _, _ = plain
    rows = read_steps(run_dir / STEPS_CSV)
    with open(run_dir / "metrics.csv") as handle:
        epochs = list(csv.DictReader(handle))
    records = json.loads((run_dir / "metrics.json").read_text())["epochs"]
    assert [e["epoch"] for e in epochs] == ["1", "2"]
    for csv_row, record in zip(epochs, records):
        norms = [r["grad_norm"] for r in rows if r["epoch"] == record["epoch"]]
        assert len(norms) == 5
        assert float(csv_row["grad_norm_median"]) == record["grad_norm_median"] == statistics.median(norms)
        assert float(csv_row["grad_norm_max"]) == record["grad_norm_max"] == max(norms)
    assert rows[-1]["loss"] == records[-1]["train_loss"]  # the last logged step's running loss is the epoch's


def test_tensorboard_has_one_grad_norm_point_per_logged_step_only_when_asked(plain, tmp_path, capsys, mnist_dir):
    from tensorboard.backend.event_processing import event_accumulator

    assert not list(plain[0].rglob("events.out.tfevents.*"))  # no --tensorboard: no events
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", *TINY_ARGS, "--tensorboard", "--data-dir", mnist_dir, "--out", out)
    assert code == 0, err
    events = event_accumulator.EventAccumulator(str(out))
    events.Reload()
    rows = read_steps(out / STEPS_CSV)
    points = events.Scalars("train/grad_norm")
    assert [p.step for p in points] == [r["global_step"] for r in rows]
    assert [p.value for p in points] == pytest.approx([r["grad_norm"] for r in rows], rel=1e-6)
    assert rows == read_steps(plain[0] / STEPS_CSV)  # the same seeded run, in another process


def test_clipping_logs_the_norm_before_it_and_trains_as_clipping_by_hand(tmp_path, mnist_dir, one_thread):
    norms, clipped = hooked_train(tmp_path / "clipped", mnist_dir, clip_grad=0.5)
    rows = read_steps(tmp_path / "clipped" / STEPS_CSV)
    assert max(r["grad_norm"] for r in rows) > 0.6  # above the cap: logged before clipping
    for row in rows:
        assert row["grad_norm"] == pytest.approx(norms[row["global_step"] - 1], rel=1e-6)
    _, by_hand = hooked_train(tmp_path / "by-hand", mnist_dir, clip_by_hand=0.5)
    mine, theirs = clipped.model.state_dict(), by_hand.model.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert read_steps(tmp_path / "by-hand" / STEPS_CSV) == rows  # the same norms, read before the same clipping
    _, unclipped = hooked_train(tmp_path / "unclipped", mnist_dir)
    assert not torch.equal(unclipped.model.state_dict()["fc.weight"], mine["fc.weight"])  # the cap did bite


RESUME_ARGS = ["--model", "lstm", "--hidden-size", "24", "--train-limit", "4096", "--test-limit", "200", "--epochs", "2",
               "--log-every", "2", "--checkpoint-every", "5", "--threads", "1", "--quiet", "--seed", "3"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, mnist_dir):
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    code, _, err = finish(rnnlab("train", *RESUME_ARGS, "--data-dir", mnist_dir, "--out", run_dir))
    assert code == 0, err
    return run_dir


def same_logs(run_dir, reference) -> None:
    assert (run_dir / STEPS_CSV).read_bytes() == (reference / STEPS_CSV).read_bytes()
    epochs = [json.loads((d / "metrics.json").read_text())["epochs"] for d in (run_dir, reference)]
    strip = [[{k: v for k, v in e.items() if k not in ("seconds", "gflops", "peak_fraction")} for e in run]
             for run in epochs]
    assert strip[0] == strip[1] and all("grad_norm_median" in e for e in epochs[0])


def logged_past_the_checkpoint(run_dir) -> bool:
    """Whether the killed run logged steps after its checkpoint's, which the resume must drop."""
    progress = torch.load(run_dir / "checkpoint.pt", weights_only=True)["progress"]
    return read_steps(run_dir / STEPS_CSV)[-1]["global_step"] > progress["epoch"] * 64 + progress["step"]


@pytest.mark.parametrize("nth_write", [3, 16])
def test_a_crash_in_a_checkpoint_write_resumes_to_the_same_steps_csv(tmp_path, mnist_dir, uninterrupted, nth_write):
    """Writes are config.json, then checkpoints (and metrics.csv at each epoch's end): the run dies while writing the
    checkpoint of step 10 (epoch 1) or of step 69 (epoch 2's 5th), after logging steps past the one before it."""
    run_dir = tmp_path / "run"
    code, _, _ = finish(rnnlab("train", *RESUME_ARGS, "--data-dir", mnist_dir, "--out", run_dir,
                               env={"RNNLAB_TEST_CRASH_IN_WRITE": str(nth_write)}))
    assert code == -signal.SIGKILL
    assert logged_past_the_checkpoint(run_dir)
    code, _, err = finish(rnnlab("train", "--resume", run_dir, "--quiet"))
    assert code == 0, err
    same_logs(run_dir, uninterrupted)


def test_sigkill_at_random_checkpoints_then_resume_gives_the_same_steps_csv(tmp_path, mnist_dir, uninterrupted):
    rng = random.Random(20)
    kills = 0
    for trial in range(3):
        run_dir = tmp_path / f"run{trial}"
        proc = rnnlab("train", *RESUME_ARGS, "--data-dir", mnist_dir, "--out", run_dir)
        checkpoint_writes(run_dir, proc, rng.randrange(1, 24))  # the run writes about 27
        time.sleep(rng.uniform(0, 0.01))
        if proc.poll() is None and not (run_dir / "model.pt").exists():
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
        code, _, err = finish(rnnlab("train", "--resume", run_dir, "--quiet"))
        assert code == 0, err
        same_logs(run_dir, uninterrupted)
    assert kills >= 2, "the runs finished before they could be killed"


def test_the_report_plots_the_norms_and_names_a_run_without_them(plain, tmp_path, mnist_dir):
    from rnnlab.report import write_report

    older = tmp_path / "older"
    shutil.copytree(plain[0], older)
    (older / STEPS_CSV).unlink()  # as a run made before steps.csv existed
    report = write_report([plain[0], older], tmp_path / "report", data_dir=str(mnist_dir), log=lambda _: None)
    page = report.read_text()
    assert '<h2 id="grad-norm">Gradient norm during training</h2>' in page and 'src="grad_norm.png"' in page
    assert (tmp_path / "report" / "grad_norm.png").stat().st_size > 10_000
    assert "No gradient norms for rnn (older): the run folder has no steps.csv" in page


def test_resuming_with_a_damaged_steps_csv_is_one_line(tmp_path, capsys, mnist_dir):
    run_dir = tmp_path / "run"
    code, _, _ = finish(rnnlab("train", *TINY_ARGS, "--checkpoint-every", "3", "--data-dir", mnist_dir, "--out", run_dir,
                               env={"RNNLAB_TEST_CRASH_IN_WRITE": "3"}))  # in the checkpoint of step 6
    assert code == -signal.SIGKILL
    (run_dir / STEPS_CSV).write_text("edited by hand\n")
    code, _, err = run(capsys, "train", "--resume", run_dir, "--quiet")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and f"{run_dir / STEPS_CSV} is not a table" in lines[0], err


def test_a_torn_last_row_is_left_out_and_other_damage_is_named(tmp_path):
    path = tmp_path / STEPS_CSV
    path.write_text("epoch,global_step,loss,accuracy,lr,grad_norm\n1,2,2.3,0.1,0.001,0.7\n1,4,2.2,0.1,0.0")
    assert read_steps(path) == [{"epoch": 1, "global_step": 2, "loss": 2.3, "accuracy": 0.1, "lr": 0.001,
                                 "grad_norm": 0.7}]
    path.write_text("epoch,global_step,loss,acc")
    assert read_steps(path) == []
    path.write_text("epoch,global_step,loss,accuracy,lr,grad_norm\n1,2,2.3,oops,0.001,0.7\n")
    with pytest.raises(CheckpointError, match="steps.csv is not a table"):
        read_steps(path)
