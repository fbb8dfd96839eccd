"""The length sweep (issue 20): `rnnlab compare --steps 28,56 --seeds 0-1` trains one run per model, length and
seed, resumes like any comparison, summarizes per length (mean ± CI, paired differences of the models at one
length), and its report plots accuracy and the starting gradient's decay against the length. `summarize`
merges sweeps from several folders as it merges seeds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import run
from test_experiments import STATISTICS, ok

SMALL = ["--hidden-size", "16", "--train-limit", "600", "--test-limit", "200", "--epochs", "1", "--quiet",
         "--jobs", "1", "--threads", "1"]
RUNS = [f"{m}-steps{t}-seed{s}" for s in (0, 1) for t in (28, 56) for m in ("rnn", "lstm")]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, mnist_dir) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    ok("compare", "--models", "rnn,lstm", "--steps", "28,56", "--seeds", "0-1", "--forget-bias", "1", *SMALL,
       "--data-dir", mnist_dir, "--out", out)
    return out


def test_a_sweep_is_one_run_per_model_length_and_seed(sweep):
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == sorted(RUNS)
    for name in RUNS:
        config = json.loads((sweep / name / "config.json").read_text())
        model, steps, seed = name.split("-")
        assert (config["model"], config["steps"], config["seed"]) == (model, int(steps[5:]), int(seed[4:]))
        assert config["forget_bias"] == (1.0 if model == "lstm" else 0.0)
        assert (sweep / name / "model.pt").is_file()
    assert json.loads((sweep / "comparison.json").read_text())["lengths"] == [28, 56]


def test_the_summary_holds_each_length_with_paired_differences_within_it(sweep):
    summary = json.loads((sweep / "summary.json").read_text())
    assert list(summary) == ["rnn (steps 28)", "lstm (steps 28)", "rnn (steps 56)", "lstm (steps 56)"]
    for name, row in summary.items():
        assert (row["model"], row["varies"], row["value"]) == (name.split()[0], "steps", int(name[-3:-1]))
        assert row["n"] == 2 and row["seeds"] == [0, 1] and len(row["ci95"]) == 2
        accuracies = [json.loads((sweep / f"{row['model']}-steps{row['value']}-seed{s}" / "metrics.json").read_text())
                      ["test_accuracy"] for s in (0, 1)]
        assert row["test_accuracies"] == accuracies
    # The models at one length are paired seed by seed; a model with itself across lengths; not rnn 28 with lstm 56.
    pair = summary["lstm (steps 56)"]["versus"]["rnn (steps 56)"]
    assert pair["difference"] == pytest.approx(sum(summary["lstm (steps 56)"]["test_accuracies"]) / 2 -
                                               sum(summary["rnn (steps 56)"]["test_accuracies"]) / 2)
    assert "rnn (steps 28)" in summary["rnn (steps 56)"]["versus"]
    assert "rnn (steps 28)" not in summary["lstm (steps 56)"]["versus"]


def test_the_sweep_report_plots_accuracy_and_the_starting_decay_against_length(sweep):
    from rnnlab.report.sweep import initial_decays

    page = (sweep / "report.html").read_text()
    assert "Accuracy against sequence length" in page and "The gradient at the start" in page
    assert 'src="sweep_accuracy.png"' in page and 'src="sweep_decay.png"' in page
    assert (sweep / "sweep_accuracy.png").stat().st_size > 10_000 and (sweep / "sweep_decay.png").stat().st_size > 10_000
    assert "lstm − rnn" in page  # the paired difference at each length
    summary = json.loads((sweep / "summary.json").read_text())
    decays = initial_decays(summary, log=lambda _: None)  # what the report drew, on its first 256 test images
    # The sheet's argument at these seeds: before training the RNN's gradient fades more over 56 steps than over
    # 28, and more than the LSTM's (forget bias 1) at either length.
    assert decays[56]["rnn"] > decays[28]["rnn"] > 0
    assert all(decays[t]["lstm"] < decays[t]["rnn"] for t in (28, 56))
    assert f"<td>{decays[56]['rnn']:.1f}</td>" in page


def test_a_sweep_resumes_only_what_is_missing(sweep, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(sweep, copy)
    for name in ("lstm-steps56-seed1", "rnn-steps28-seed1"):
        shutil.rmtree(copy / name)
    (copy / "summary.json").unlink()
    before = {name: (copy / name / "model.pt").stat().st_mtime_ns for name in RUNS if (copy / name).is_dir()}
    text = ok("compare", "--resume", copy, "--no-report")
    assert "6 of 8 runs finished; training the other 2" in text
    assert all((copy / name / "model.pt").stat().st_mtime_ns == t for name, t in before.items())
    assert set(json.loads((copy / "summary.json").read_text())) == set(json.loads((sweep / "summary.json").read_text()))
    code, _, err = run(capsys, "compare", "--resume", copy, "--steps", "28,112")
    assert code == 2 and "--steps 28,56" in err and len(err.strip().splitlines()) == 1


def test_summarize_merges_sweeps_as_it_merges_seeds(sweep, tmp_path, mnist_dir):
    ok("compare", "--models", "rnn,lstm", "--steps", "28,56", "--seeds", "1", "--forget-bias", "1", *SMALL,
       "--no-report", "--data-dir", mnist_dir, "--out", tmp_path / "b")
    a = tmp_path / "a"
    a.mkdir()
    for name in RUNS[:4]:  # seed 0 of the first sweep
        shutil.copytree(sweep / name, a / name)
    shutil.copy(sweep / "comparison.json", a / "comparison.json")
    ok("summarize", a, tmp_path / "b", "--out", tmp_path / "merged")
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    whole = json.loads((sweep / "summary.json").read_text())
    assert list(merged) == list(whole)
    for name in whole:
        assert {k: merged[name][k] for k in STATISTICS} == {k: whole[name][k] for k in STATISTICS}
    assert "Accuracy against sequence length" in (tmp_path / "merged" / "report.html").read_text()


@pytest.mark.parametrize("steps, says", [("28,30", "does not cut"), ("28,28", "names a length twice"),
                                         ("28;56", "give a sequence length")])
def test_bad_lengths_are_one_line(tmp_path, capsys, mnist_dir, steps, says):
    out = tmp_path / "cmp"
    code, _, err = run(capsys, "compare", "--steps", steps, "--data-dir", mnist_dir, "--out", out)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_one_length_is_a_plain_comparison(tmp_path, mnist_dir):
    out = tmp_path / "cmp"
    ok("compare", "--models", "rnn", "--steps", "56", *SMALL, "--no-report", "--data-dir", mnist_dir, "--out", out)
    assert json.loads((out / "rnn" / "config.json").read_text())["steps"] == 56
    assert "lengths" not in json.loads((out / "comparison.json").read_text())
