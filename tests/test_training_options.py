"""Options beyond the sheet (schedule, clipping, weight decay, validation split) and the experiment logs
(metrics.csv, TensorBoard events read back with TensorBoard's own reader). Defaults stay the sheet's."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import exit_code, finish, run
from rnnlab.config import Config
from rnnlab.training.optim import make_optimizer, make_scheduler

SMALL = ["--model", "rnn", "--hidden-size", "8", "--train-limit", "320", "--test-limit", "100", "--quiet"]


def test_defaults_are_the_sheets_adam_at_a_constant_rate():
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(model, Config(), torch.device("cpu"))
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["weight_decay"] == 0
    assert make_scheduler(optimizer, Config(), 100) is None
    assert type(make_optimizer(model, Config(weight_decay=0.01), torch.device("cpu"))) is torch.optim.AdamW


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_schedules_span_the_whole_run(schedule):
    model = torch.nn.Linear(2, 2)
    config = Config(lr_schedule=schedule, lr=0.01, epochs=2)
    optimizer = make_optimizer(model, config, torch.device("cpu"))
    scheduler = make_scheduler(optimizer, config, 50)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert max(rates) == pytest.approx(0.01, rel=1e-3)
    assert rates[-1] < 0.01 * 1e-2  # annealed to (nearly) zero at the last step of the last epoch
    assert (rates[0] == 0.01) == (schedule == "cosine")  # onecycle warms up from lr/25


def test_metrics_csv_and_tensorboard_hold_each_epoch_of_metrics_json(tmp_path, capsys, mnist_dir):
    from tensorboard.backend.event_processing import event_accumulator

    out = tmp_path / "run"
    code, text, err = run(capsys, "train", *SMALL, "--epochs", "2", "--val-split", "0.25", "--lr-schedule", "cosine",
                          "--clip-grad", "1", "--log-every", "2", "--tensorboard", "--data-dir", mnist_dir, "--out", out)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert "validation accuracy" in text and all("val_accuracy" in e for e in metrics["epochs"])
    assert metrics["train_images_per_second"] == pytest.approx(240 * 2 / metrics["train_seconds"])  # 320 − 80 held out
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    for row, record in zip(rows, metrics["epochs"]):
        for key in ("epoch", "train_loss", "train_accuracy", "val_accuracy", "seconds", "gflops", "lr"):
            assert float(row[key]) == record[key], key
    assert rows[0]["test_accuracy"] == "" and float(rows[1]["test_accuracy"]) == metrics["test_accuracy"]

    events = event_accumulator.EventAccumulator(str(out))
    events.Reload()
    for key in ("train_loss", "train_accuracy", "val_accuracy", "seconds", "gflops", "lr"):
        points = events.Scalars(f"epoch/{key}")
        assert [p.step for p in points] == [1, 2], key
        assert [p.value for p in points] == pytest.approx([e[key] for e in metrics["epochs"]], rel=1e-6, abs=1e-9)
    test = events.Scalars("epoch/test_accuracy")
    assert [(p.step, p.value) for p in test] == [(2, pytest.approx(metrics["test_accuracy"], rel=1e-6))]
    steps = [p.step for p in events.Scalars("train/loss")]
    assert steps == sorted(set(steps)) and len(steps) >= 4  # every 2nd of 4 steps per epoch, and each epoch's last


def test_tensorboard_dir_names_each_run(tmp_path, capsys, mnist_dir):
    code, _, err = run(capsys, "train", *SMALL, "--epochs", "1", "--tensorboard", tmp_path / "tb", "--data-dir",
                       mnist_dir, "--out", tmp_path / "my-run")
    assert code == 0, err
    assert list((tmp_path / "tb" / "my-run").glob("events.out.tfevents.*"))
    assert not list((tmp_path / "my-run").glob("events.out.tfevents.*"))


def rnnlab(*argv) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rnnlab", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_resumed_run_with_schedule_clipping_and_decay_ends_as_an_uninterrupted_one(tmp_path, mnist_dir):
    args = ["train", "--model", "lstm", "--hidden-size", "12", "--dropout", "0.1", "--train-limit", "1280",
            "--test-limit", "200", "--epochs", "2", "--lr-schedule", "onecycle", "--lr", "0.01", "--clip-grad", "0.5",
            "--weight-decay", "0.01", "--checkpoint-every", "3", "--threads", "1", "--quiet", "--data-dir", mnist_dir]
    assert finish(rnnlab(*args, "--out", tmp_path / "whole"))[0] == 0
    proc = rnnlab(*args, "--out", tmp_path / "cut")
    while not (tmp_path / "cut" / "checkpoint.pt").exists() and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc)
    assert code == 143, err
    assert "scheduler" in torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    code, out, err = finish(rnnlab("train", "--resume", tmp_path / "cut", "--quiet"))
    assert code == 0 and "resuming at epoch" in out, err
    whole = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["state_dict"]
    cut = torch.load(tmp_path / "cut" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    strip = lambda m: [(e["train_loss"], e["lr"]) for e in m["epochs"]] + [m["test_accuracy"]]  # noqa: E731
    assert strip(json.loads((tmp_path / "cut" / "metrics.json").read_text())) == \
        strip(json.loads((tmp_path / "whole" / "metrics.json").read_text()))
    with open(tmp_path / "cut" / "metrics.csv") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2"]


MISTAKES = [
    (["train", "--val-split", "0.9"], "--val-split"),
    (["train", "--clip-grad", "-1"], "--clip-grad"),
    (["train", "--lr-schedule", "step"], "invalid choice"),
    (["train", "--backend", "numpy", "--lr-schedule", "cosine"], "numpy"),
    (["train", "--threads", "0"], "--threads"),
    (["compare", "--seeds", "3-1"], "--seeds"),
    (["compare", "--seeds", "0-2", "--seed", "4"], "not both"),
    (["compare", "--jobs", "0"], "--jobs"),
    (["summarize", "{tmp}/nothing"], "not a folder"),
]


@pytest.mark.parametrize("argv,message", MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_mistakes_exit_2_with_one_line(tmp_path, capsys, argv, message):
    code = exit_code([a.replace("{tmp}", str(tmp_path)) for a in argv] + (["--out", str(tmp_path / "o")]
                                                                         if argv[0] == "compare" else []))
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "o").exists()
