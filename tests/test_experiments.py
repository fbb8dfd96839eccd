"""Several seeds: processes give the same runs as one at a time, statistics as scipy computes them by hand,
`summarize` merges folders into the summary one comparison gives, and a killed comparison resumes only
what is missing. Small real data (a few hundred images, hidden size 8, one epoch), every run seeded."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

import held_runs
from conftest import REPO, finish
from rnnlab.errors import RnnlabError
from rnnlab.stats import (BOOTSTRAP_SEED, RESAMPLES, compare_models, describe, paired_difference,
                          probability_of_improvement, sentence)
from rnnlab.training.machine import available_cores

TINY = ["--hidden-size", "8", "--train-limit", "300", "--test-limit", "200", "--epochs", "1", "--quiet"]
THREADS = max(1, available_cores() // 2)  # what --jobs 2 gives each run
STATISTICS = ("seeds", "test_accuracies", "n", "std", "min", "max", "ci95", "versus", "test_accuracy", "parameters")


def rnnlab(*argv) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rnnlab", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def ok(*argv) -> str:
    code, out, err = finish(rnnlab(*argv))
    assert code == 0, err
    return out


def outcome(run_dir: Path):
    """Everything a run computed: its weights and its per-epoch and test figures."""
    weights = torch.load(run_dir / "model.pt", weights_only=True)["state_dict"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    figures = [(e["train_loss"], e["train_accuracy"]) for e in metrics["epochs"]]
    return weights, figures + [metrics["test_accuracy"], metrics["per_class_accuracy"]]


@pytest.fixture
def restore_threads():
    """In-process runs with --threads N set torch's threads for the whole process: put them back after."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def in_process(capsys, *argv) -> str:
    from conftest import run

    code, text, err = run(capsys, *argv)
    assert code == 0, err
    return text


def assert_same(a: Path, b: Path) -> None:
    (wa, fa), (wb, fb) = outcome(a), outcome(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), f"{a} and {b} differ"
    assert fa == fb


@pytest.fixture(scope="module")
def seeds_0_2(tmp_path_factory, mnist_dir):
    """rnn and lstm with seeds 0-2 in 2 processes: the comparison the other tests measure against."""
    out = tmp_path_factory.mktemp("jobs") / "all"
    text = ok("compare", "--models", "rnn,lstm", "--seeds", "0-2", "--jobs", "2", *TINY, "--no-report",
              "--data-dir", mnist_dir, "--out", out)
    return out, text


def test_seeds_in_two_processes_equal_single_seed_runs(seeds_0_2, tmp_path, mnist_dir, capsys, restore_threads):
    out, text = seeds_0_2
    assert "6 runs in 2 processes" in text
    for seed in range(3):
        for model in ("rnn", "lstm"):
            single = tmp_path / f"{model}-{seed}"
            in_process(capsys, "train", "--model", model, "--seed", seed, "--threads", THREADS, *TINY, "--data-dir",
                       mnist_dir, "--out", single)
            assert_same(out / f"{model}-seed{seed}", single)
            assert json.loads((out / f"{model}-seed{seed}" / "config.json").read_text())["threads"] == THREADS
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rnn"]["seeds"] == [0, 1, 2] and summary["lstm"]["n"] == 3
    assert "lstm" in summary["rnn"]["versus"] and summary["rnn"]["versus"]["lstm"]["sentence"] in text
    assert "±" in text


def test_statistics_match_a_hand_computation_with_scipy():
    lstm = {0: 0.9890, 1: 0.9874, 2: 0.9902, 3: 0.9881, 4: 0.9895}
    rnn = {0: 0.9528, 1: 0.9490, 2: 0.9571, 3: 0.9402, 4: 0.9533}
    values = np.array(list(lstm.values()))
    expected = scipy_stats.bootstrap((values,), np.mean, n_resamples=RESAMPLES, method="percentile",
                                     confidence_level=0.95, rng=np.random.default_rng(BOOTSTRAP_SEED))
    described = describe(values)
    assert described["mean"] == pytest.approx(values.mean(), abs=1e-15)
    assert described["std"] == pytest.approx(values.std(ddof=1), abs=1e-15)
    assert described["ci95"] == pytest.approx([expected.confidence_interval.low, expected.confidence_interval.high],
                                              abs=1e-15)
    differences = np.array([lstm[s] - rnn[s] for s in range(5)])
    by_hand = scipy_stats.bootstrap((differences,), np.mean, n_resamples=RESAMPLES, method="percentile",
                                    rng=np.random.default_rng(BOOTSTRAP_SEED)).confidence_interval
    pair = paired_difference(lstm, rnn)
    assert pair["difference"] == pytest.approx(differences.mean(), abs=1e-15)
    assert pair["ci95"] == pytest.approx([by_hand.low, by_hand.high], abs=1e-15)
    u = scipy_stats.mannwhitneyu(list(lstm.values()), list(rnn.values())).statistic
    assert pair["probability_of_improvement"] == pytest.approx(u / 25) == 1.0
    assert probability_of_improvement([1, 2], [2, 0]) == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    line = sentence("lstm", "rnn", pair)
    assert line == (f"lstm beats rnn by {100 * differences.mean():.2f} points (95% CI {100 * by_hand.low:.2f} to "
                    f"{100 * by_hand.high:.2f}), in 5 of 5 seeds")
    assert sentence("rnn", "lstm", paired_difference(rnn, lstm)) == line  # the same words from either side
    close = paired_difference({0: 0.95, 1: 0.96, 2: 0.94}, {0: 0.955, 1: 0.95, 2: 0.945})
    assert "cannot be told apart" in sentence("a", "b", close) and "rough with 3 seeds" in sentence("a", "b", close)
    one = compare_models({"lstm": {0: 0.99}, "rnn": {0: 0.95}})
    assert one["lstm"]["ci95"] is None and one["lstm"]["std"] is None
    assert "no interval can be given" in one["lstm"]["versus"]["rnn"]["sentence"]


def test_summarize_merges_folders_into_the_summary_of_one_comparison(seeds_0_2, tmp_path, mnist_dir, capsys,
                                                                     restore_threads):
    from conftest import run

    out, _ = seeds_0_2
    common = ["--models", "rnn,lstm", "--jobs", "1", "--threads", THREADS, *TINY, "--no-report", "--data-dir", mnist_dir]
    in_process(capsys, "compare", "--seeds", "0-1", *common, "--out", tmp_path / "machine-a")
    in_process(capsys, "compare", "--seeds", "2", *common, "--out", tmp_path / "machine-b")
    assert (tmp_path / "machine-b" / "lstm" / "metrics.json").is_file()  # one seed: the lab's own layout
    code, text, err = run(capsys, "summarize", tmp_path / "machine-a", tmp_path / "machine-b", "--out",
                          tmp_path / "merged", "--no-report")
    assert code == 0, err
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    whole = json.loads((out / "summary.json").read_text())
    assert list(merged) == list(whole) == ["rnn", "lstm"]
    for model in whole:
        assert {k: merged[model][k] for k in STATISTICS} == {k: whole[model][k] for k in STATISTICS}
    assert merged["lstm"]["versus"]["rnn"]["sentence"] in text

    # The same seed twice, and runs of other settings, are refused in one line; --varies names the difference.
    code, _, err = run(capsys, "summarize", tmp_path / "machine-a", out, "--out", tmp_path / "twice", "--no-report")
    assert code == 2 and "seed 0 is there twice" in err
    in_process(capsys, "train", "--model", "rnn", "--seed", "0", *TINY, "--lr", "0.01", "--data-dir", mnist_dir,
               "--out", tmp_path / "other" / "rnn-lr")
    code, _, err = run(capsys, "summarize", tmp_path / "machine-a", tmp_path / "other", "--out", tmp_path / "m2",
                       "--no-report")
    assert code == 2 and "--lr" in err and "--varies lr" in err
    code, text, err = run(capsys, "summarize", tmp_path / "machine-a", tmp_path / "other", "--varies", "lr",
                          "--out", tmp_path / "m3", "--no-report")
    assert code == 0, err
    assert set(json.loads((tmp_path / "m3" / "summary.json").read_text())) == {"rnn (lr 0.001)", "lstm (lr 0.001)",
                                                                              "rnn (lr 0.01)"}
    code, _, err = run(capsys, "summarize", tmp_path / "machine-b", "--out", tmp_path / "machine-a", "--no-report")
    assert code == 2 and "would replace" in err  # a comparison's own summary is never overwritten


def test_a_killed_comparison_resumes_only_what_is_missing(tmp_path, mnist_dir):
    """Seeds 2 and 3 are held (tests/held_runs.py) until the comparison's parent has been SIGKILLed, so the
    kill lands mid-comparison whatever the CPU's speed; its workers then stop on their own and start nothing."""
    args = ["--models", "rnn", "--seeds", "0-3", "--jobs", "2", "--hidden-size", "16", "--train-limit",
            "2000", "--test-limit", "200", "--epochs", "2", "--checkpoint-every", "5", "--quiet", "--no-report",
            "--data-dir", mnist_dir]
    ok("compare", *args, "--out", tmp_path / "whole")
    cut, gate = tmp_path / "cut", tmp_path / "gate"
    proc = subprocess.Popen(held_runs.command("held", [*args, "--out", cut]), cwd=Path(__file__).parent, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "RNNLAB_TEST_GATE": str(gate)})
    while not list(cut.glob("*/metrics.json")) and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)  # the parent only: its workers notice, checkpoint and stop on their own
    proc.communicate(timeout=60)
    gate.touch()  # let the held runs go: their workers' parent is gone
    for lock in cut.glob(".*.lock"):  # wait for the workers to let go of every run
        with open(lock) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
    done = {p.parent.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in cut.glob("*/metrics.json")}
    assert set(done) <= {"rnn-seed0", "rnn-seed1"} and done, f"finished after the kill: {sorted(done)}"
    code, text, err = finish(rnnlab("compare", "--resume", cut, "--quiet", "--no-report"))
    assert code == 0, err
    assert f"{len(done)} of 4 runs finished; training the other {4 - len(done)}" in text
    for name, (mtime, content) in done.items():  # finished runs were not touched
        path = cut / name / "metrics.json"
        assert (path.stat().st_mtime_ns, path.read_bytes()) == (mtime, content)
    for seed in range(4):
        assert_same(cut / f"rnn-seed{seed}", tmp_path / "whole" / f"rnn-seed{seed}")
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert json.loads((cut / "summary.json").read_text())["rnn"]["ci95"] == whole["rnn"]["ci95"]


@pytest.mark.parametrize("text,seeds", [("0-4", [0, 1, 2, 3, 4]), ("0,3,7", [0, 3, 7]), ("2-3, 9", [2, 3, 9])])
def test_seed_lists(text, seeds):
    from rnnlab.experiments import parse_seeds

    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "4-2", "1,1", "-1", "0-"])
def test_bad_seed_lists_are_refused(text):
    from rnnlab.experiments import parse_seeds

    with pytest.raises(RnnlabError):
        parse_seeds(text)


def test_workers_of_a_parent_that_dies_stop_by_themselves():
    """A worker whose parent is gone sends itself SIGTERM (then a training run checkpoints and stops)."""
    code = ("import os, signal, sys, threading, time\n"
            "from rnnlab.training.jobs import _watch_parent\n"
            "signal.signal(signal.SIGTERM, lambda *a: (print('stopped', flush=True), os._exit(0)))\n"
            "if os.fork() == 0:\n"
            "    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()\n"
            "    time.sleep(30)\n"
            "    os._exit(1)\n"
            "os._exit(0)\n")
    # The output pipe closes when the forked worker exits too, so run() returns once the worker has stopped.
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "stopped\n", result.stderr


def _record(task, stop) -> None:
    Path(task).write_text("ran")


@pytest.mark.parametrize("parent_alive", [True, False])
def test_a_worker_whose_parent_is_gone_starts_no_new_run(tmp_path, parent_alive):
    """The worker loop, in a process of its own: a task waiting in the queue runs only while the parent lives."""
    import multiprocessing

    from rnnlab.training.jobs import _worker

    context = multiprocessing.get_context("spawn")
    tasks, results = context.Queue(), context.Queue()
    tasks.put((0, str(tmp_path / "task-0")))
    tasks.put(None)
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process id that is nobody's parent any more
    worker = context.Process(target=_worker, args=(_record, tasks, results, 1, os.getpid() if parent_alive else gone.pid))
    worker.start()
    worker.join(timeout=120)
    # An orphan may also be ended by its own SIGTERM (the watch of its parent) before its loop starts.
    assert worker.exitcode == 0 or (not parent_alive and worker.exitcode == -signal.SIGTERM), worker.exitcode
    assert (tmp_path / "task-0").exists() == parent_alive
    assert (results.get(timeout=10)[0] == "done") if parent_alive else results.empty()


@pytest.mark.parametrize("how", ["too large, one process", "too large, two processes", "a module missing"])
def test_a_compare_that_fails_at_the_start_leaves_nothing(tmp_path, mnist_dir, how):
    """The same command given again meets the same error, not a folder that blocks it, and no lock file is left."""
    out = tmp_path / "lab"
    args = ["--models", "rnn", "--data-dir", mnist_dir, "--quiet", "--no-report", "--out", out]
    if how == "a module missing":
        argv, expected = held_runs.command("crashing", args), "No module named 'psutil'"
    else:
        seeds = ["--seeds", "0-1", "--jobs", "2"] if how.endswith("two processes") else []
        argv = [sys.executable, "-m", "rnnlab", "compare", *args, "--hidden-size", "200000", *seeds]
        expected = "needs about"
    for attempt in range(2):
        result = subprocess.run(argv, cwd=Path(__file__).parent, capture_output=True, text=True, timeout=300)
        assert result.returncode != 0 and expected in result.stderr, result.stderr
        assert "already holds" not in result.stderr
        assert not out.exists(), sorted(p.name for p in out.iterdir())


def test_the_report_shows_every_seed_and_what_the_difference_means(seeds_0_2, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from rnnlab.report.html import Page
    from rnnlab.report.seeds import add_seed_section

    out, _ = seeds_0_2
    summary = json.loads((out / "summary.json").read_text())
    page = Page("seeds")
    add_seed_section(page, summary, tmp_path)
    html = page.render()
    for name in ("seeds_strip.png", "seeds_curves.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG" and name in html
    assert summary["rnn"]["versus"]["lstm"]["sentence"] in html
    assert all(f"{100 * r['test_accuracy']:.2f}%" in html for row in summary.values() for r in row["runs"])
    assert html.count(str(out / "lstm-seed")) == 3
    single = Page("one seed")
    add_seed_section(single, {"rnn": {**summary["rnn"], "n": 1}}, tmp_path)
    assert single.parts == []  # one seed: nothing to say about seeds


def test_results_page_is_written_from_the_runs(seeds_0_2, tmp_path, mnist_dir):
    """benchmarks/results.py (`make results`) writes docs/results.md from finished runs: its lab table holds
    the comparison's own statistics, unfinished and unmeasured rows say so, and nothing is run with
    --write-only. Here the lab folder is the 3-seed comparison above, where the page asks for 5."""
    import statistics

    out = tmp_path / "runs"
    shutil.copytree(seeds_0_2[0], out / "mnist-lab")
    page = tmp_path / "results.md"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "results.py"), "--write-only", "--data-dir",
                           str(mnist_dir), "--out", str(out), "--doc", str(page), "--fashion-dir", str(tmp_path),
                           "--kmnist-dir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    lab = text.split("## The lab on MNIST")[1].split("\n## ")[0]
    summary = json.loads((out / "mnist-lab" / "summary.json").read_text())
    for name, row in summary.items():
        low, high = (f"{100 * x:.2f}" for x in row["ci95"])
        minutes = statistics.median(r["train_seconds"] for r in row["runs"]) / 60
        assert (f"| {name} | 3 | {100 * row['test_accuracy']:.2f} ± {100 * row['std']:.2f}% | {low} – {high}% | "
                f"{100 * row['min']:.2f} – {100 * row['max']:.2f}% | {minutes:.1f} min") in lab
    assert "partial: rnn: 3 of 5 seeds; lstm: 3 of 5 seeds" in lab
    assert summary["rnn"]["versus"]["lstm"]["sentence"] in lab or summary["lstm"]["versus"]["rnn"]["sentence"] in lab
    assert "**Not measured: no Fashion-MNIST data offline here**" in text
    assert text.count("not measured yet") >= 2  # the tuned candidates
    assert "The NumPy LSTM" in text and "**Not measured yet.**" in text
    assert sorted(p.name for p in out.iterdir()) == ["mnist-lab"]  # --write-only ran nothing


def test_summarize_refuses_a_setting_that_does_not_vary_and_leaves_nothing_when_the_report_fails(
        seeds_0_2, tmp_path, capsys):
    """Found by a hostile tester: `--varies hidden_size` over runs that all have hidden size 8 was accepted,
    and a report that could not be written (here: --data-dir is a file) left summary.json behind."""
    from conftest import run

    code, _, err = run(capsys, "summarize", seeds_0_2[0], "--varies", "hidden_size", "--no-report",
                       "--out", tmp_path / "a")
    assert code == 2 and err.count("\n") == 1 and "every run has hidden_size 8" in err, err
    a_file = tmp_path / "afile"
    a_file.write_text("")
    code, _, err = run(capsys, "summarize", seeds_0_2[0], "--data-dir", a_file, "--out", tmp_path / "b")
    assert code == 2 and err.count("\n") == 1 and "is a file" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
