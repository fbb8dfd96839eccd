"""Every command end to end on small real data, the offline fallback, and user errors → exit 2."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import exit_code, run

SMALL = ["--train-limit", "2000", "--batch-size", "32", "--lr", "0.005", "--test-limit", "500", "--epochs", "2", "--quiet", "--hidden-size", "32"]


def test_train_then_evaluate(tmp_path, capsys, mnist_dir):
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, "train", "--model", "gru", "--data-dir", mnist_dir, "--out", out, *SMALL)
    assert code == 0
    assert "Epoch [2/2], Loss:" in stdout and "Test Accuracy:" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert metrics["model"] == "gru" and metrics["dataset"] == "mnist"
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert set(metrics["epochs"][0]) >= {"epoch", "train_loss", "train_accuracy", "seconds"}
    assert 0.6 < metrics["test_accuracy"] <= 1.0 and metrics["train_seconds"] > 0
    assert config["hidden_size"] == 32 and config["num_layers"] == 2 and config["lr"] == 0.005
    saved = torch.load(out / "model.pt", weights_only=True)
    assert saved["config"]["model"] == "gru" and "fc.weight" in saved["state_dict"]

    code, stdout, _ = run(capsys, "evaluate", out, "--data-dir", mnist_dir)
    assert code == 0
    assert f"Test Accuracy: {100 * metrics['test_accuracy']:.2f}%" in stdout
    assert stdout.count("class ") == 10


def test_same_seed_same_metrics(tmp_path, capsys, mnist_dir):
    metrics = []
    for name in ("a", "b"):
        assert run(capsys, "train", "--model", "lstm", "--data-dir", mnist_dir, "--out", tmp_path / name, *SMALL)[0] == 0
        metrics.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    strip = lambda m: [(e["train_loss"], e["train_accuracy"]) for e in m["epochs"]] + [m["test_accuracy"]]
    assert strip(metrics[0]) == strip(metrics[1])
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_compare_writes_summary_and_runs(tmp_path, capsys, mnist_dir):
    out = tmp_path / "cmp"
    code, stdout, _ = run(capsys, "compare", "--models", "rnn,lstm", "--data-dir", mnist_dir, "--out", out,
                          "--no-report", *SMALL)
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"rnn", "lstm"}
    for name in ("rnn", "lstm"):
        metrics = json.loads((out / name / "metrics.json").read_text())
        assert summary[name]["test_accuracy"] == metrics["test_accuracy"]
        assert summary[name]["train_seconds"] == metrics["train_seconds"]
    assert "rnn" in stdout and "lstm" in stdout and "test accuracy" in stdout
    assert json.loads((out / "rnn" / "config.json").read_text())["num_layers"] == 1


def test_show_writes_png(tmp_path, capsys, mnist_dir):
    out = tmp_path / "batch.png"
    assert run(capsys, "show", "--data-dir", mnist_dir, "--out", out)[0] == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


def test_views_pixels_and_permuted_train(tmp_path, capsys, mnist_dir):
    for view in ("pixels", "permuted"):
        code, _, _ = run(capsys, "train", "--model", "rnn", "--view", view, "--data-dir", mnist_dir,
                         "--out", tmp_path / view, "--train-limit", "128", "--test-limit", "100",
                         "--epochs", "1", "--quiet", "--hidden-size", "8")
        assert code == 0
        assert json.loads((tmp_path / view / "config.json").read_text())["view"] == view


def test_python_dash_m_and_console_script(tmp_path):
    for cmd in ([sys.executable, "-m", "rnnlab", "--help"], [str(__import__("shutil").which("rnnlab") or
                                                               __import__("pathlib").Path(sys.executable).parent / "rnnlab"), "train", "--help"]):
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "usage: rnnlab" in result.stdout


USER_ERRORS = [
    (["train", "--model", "transformer"], "invalid choice"),
    (["train", "--epochs", "0"], "positive"),
    (["train", "--epochs", "-3"], "positive"),
    (["train", "--batch-size", "0"], "positive"),
    (["train", "--hidden-size", "-1"], "positive"),
    (["train", "--lr", "0"], "positive number"),
    (["train", "--lr", "abc"], "invalid float value"),
    (["train", "--dataset", "cifar"], "invalid choice"),
    (["train", "--dropout", "1.5"], "dropout"),
    (["train", "--backend", "numpy", "--model", "gru"], "numpy"),
    (["compare", "--models", "rnn,bert"], "unknown model 'bert'"),
    (["evaluate", "{tmp}/nothing-here"], "no such file"),
    (["train", "--resume", "{tmp}"], "not an rnnlab run folder"),
    (["train", "--data-dir", "{tmp}/afile"], "is a file"),
    (["bogus"], "invalid choice"),
]


@pytest.mark.parametrize("argv,message", USER_ERRORS, ids=[" ".join(a) for a, _ in USER_ERRORS])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "afile").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    code = exit_code([a.replace("{tmp}", str(tmp_path)) for a in argv])
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1, err
    assert message in lines[0] and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
