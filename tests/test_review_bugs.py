"""The bugs a review of the code base found (issue 10), each pinned by a test that failed before its fix."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from conftest import finish, run

REPO = Path(__file__).resolve().parents[1]
TINY = ["--hidden-size", "8", "--epochs", "1", "--train-limit", "256", "--test-limit", "100", "--quiet"]


def test_compare_resume_keeps_every_setting_of_the_comparison(tmp_path, capsys, mnist_dir):
    """Bug 1: `compare --resume` gave models the interrupted comparison had not started the default depth."""
    out = tmp_path / "cmp"
    code, _, err = run(capsys, "compare", "--models", "lstm,gru", "--num-layers", "3", "--data-dir", mnist_dir,
                       "--out", out, "--no-report", *TINY)
    assert code == 0, err
    # As if the comparison had been stopped before gru started: its folder and the summary do not exist yet.
    shutil.rmtree(out / "gru")
    (out / "summary.json").unlink()
    code, _, err = run(capsys, "compare", "--resume", out, "--no-report", "--quiet")
    assert code == 0, err
    for name in ("lstm", "gru"):
        assert json.loads((out / name / "config.json").read_text())["num_layers"] == 3


def test_progress_bar_loss_is_the_mean_loss_under_torchrun():
    """Bug 2: the bar divided each rank's running loss by the world size. A rank's step loss is already the
    mean over its shard (its share of the global sum × world_size / global batch)."""
    from rnnlab.training.fit import Progress

    shard_means = [2.0, 1.5, 1.0]
    progress = Progress(step=3, loss_sum=torch.tensor(sum(shard_means), dtype=torch.float64))
    assert progress.running_loss() == pytest.approx(1.5)


def test_resume_joins_the_process_group_of_the_saved_device(tmp_path, capsys, mnist_dir, monkeypatch):
    """Bug 3: resuming under torchrun chose the backend from the command line's --device (auto → a GPU),
    while training continued on the saved device (cpu)."""
    import rnnlab.lab as lab
    import rnnlab.training.distributed as distributed

    run_dir = tmp_path / "run"
    assert run(capsys, "train", "--model", "rnn", "--device", "cpu", "--data-dir", mnist_dir, "--out", run_dir,
               *TINY)[0] == 0
    (run_dir / "model.pt").unlink()  # unfinished again: --resume must continue it
    (run_dir / "metrics.json").unlink()
    seen = []

    class Joined(Exception):
        pass

    def spy(device, *args, **kwargs):
        seen.append(device)
        raise Joined

    monkeypatch.setattr(distributed.torch.cuda, "is_available", lambda: True)  # a GPU machine, for `auto`
    monkeypatch.setattr(distributed, "init_distributed", spy)
    monkeypatch.setattr(lab, "init_distributed", spy)
    with pytest.raises(Joined):
        run(capsys, "train", "--resume", run_dir)
    assert [d.type for d in seen] == ["cpu"]


def test_explain_title_survives_a_file_name_with_colon_space(tmp_path, capsys, mnist, mnist_dir, monkeypatch):
    """Bug 4: the --explain title was cut out of the printed line at ': ', wrong for such file names."""
    from PIL import Image

    import rnnlab.report.predict as predict

    run_dir = tmp_path / "run"
    assert run(capsys, "train", "--model", "rnn", "--data-dir", mnist_dir, "--out", run_dir, *TINY)[0] == 0
    picture = tmp_path / "my: digit.png"
    Image.fromarray(255 - mnist.test.images[0].numpy()).resize((140, 140)).save(picture)
    titles = []
    monkeypatch.setattr(predict, "write_explanation", lambda *args: titles.append(args[-1]))
    code, out, _ = run(capsys, "predict", run_dir, picture, "--explain", tmp_path / "why.png")
    answer = out.splitlines()[0][len(f"{picture}: "):]
    assert code == 0 and titles == [f"my: digit.png: {answer}"]


def test_numpy_backend_refuses_torchrun(tmp_path, capsys, mnist_dir, monkeypatch):
    """Bug 5: under torchrun every rank trained the NumPy model and wrote model.pt."""
    import rnnlab.lab as lab

    monkeypatch.setattr(lab, "launched_by_torchrun", lambda: True)
    code, _, err = run(capsys, "train", "--backend", "numpy", "--data-dir", mnist_dir, "--out", tmp_path / "n", *TINY)
    assert code == 2 and "without torchrun" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "n").exists()


STOP_SCRIPT = """
import signal, sys
from datetime import timedelta
import torch, torch.distributed as dist
from rnnlab.data import SequenceBatches
from rnnlab.models import build_model
from rnnlab.training.distributed import DistContext
from rnnlab.training.fit import StopSignals, TrainingInterrupted, fit

dist.init_process_group("gloo", timeout=timedelta(seconds=20))
rank = dist.get_rank()


class SignalAfterTheLastVote(StopSignals):
    # The signal reaches rank 1 only after the epoch's last in-loop vote (2 votes: steps 2 and 4).
    reads = 0

    @property
    def signum(self):
        SignalAfterTheLastVote.reads += 1
        return signal.SIGTERM if rank == 1 and SignalAfterTheLastVote.reads > 2 else None

    @signum.setter
    def signum(self, value):
        pass


torch.manual_seed(0)
model = torch.nn.parallel.DistributedDataParallel(build_model("rnn", 28, 8, 1))
x, y = torch.randn(256, 28, 28), torch.randint(0, 10, (256,))
batches = SequenceBatches(x, y, 64, shuffle=True, seed=0, rank=rank, world_size=2)  # 4 global steps
try:
    fit(model, torch.optim.Adam(model.parameters()), batches, epochs=3, log_every=2,
        stop=SignalAfterTheLastVote(), ctx=DistContext(rank, 2), quiet=True, log=lambda _: None)
    print("finished")
except TrainingInterrupted as exc:
    print("interrupted", exc.signum)
"""


def test_a_signal_after_the_last_vote_stops_every_rank(tmp_path):
    """Bug 6: a SIGTERM between the last step's vote and the end-of-epoch check stopped one rank and left the
    other waiting for the collective timeout."""
    script = tmp_path / "stop.py"
    script.write_text(STOP_SCRIPT)
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(29500 + os.getpid() % 1000),
           "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    procs = [subprocess.Popen([sys.executable, str(script)], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    results = [finish(p, timeout=120) for p in procs]
    for code, out, err in results:
        assert code == 0 and out.strip() == f"interrupted {int(signal.SIGTERM)}", err[-1500:]


def test_two_reports_written_at_once_into_one_folder(tmp_path):
    """Bug 7: every report used the same temporary name, so two at once collided."""
    from rnnlab.report.html import Page

    errors = []

    def write(n: int) -> None:
        try:
            for k in range(40):
                Page(f"report {n}-{k}").write(tmp_path / "report.html")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (tmp_path / "report.html").read_text().rstrip().endswith("</html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_dropout_is_never_recorded_for_a_one_layer_model(tmp_path, capsys, mnist_dir):
    """Bug 9: config.json recorded a dropout the one-layer model silently dropped."""
    code, _, err = run(capsys, "train", "--model", "rnn", "--dropout", "0.3", "--data-dir", mnist_dir,
                       "--out", tmp_path / "r", *TINY)
    assert code == 2 and "--num-layers 2" in err and not (tmp_path / "r").exists()
    out = tmp_path / "cmp"
    assert run(capsys, "compare", "--models", "rnn,lstm", "--dropout", "0.3", "--data-dir", mnist_dir,
               "--out", out, "--no-report", *TINY)[0] == 0
    assert json.loads((out / "rnn" / "config.json").read_text())["dropout"] == 0.0
    assert json.loads((out / "lstm" / "config.json").read_text())["dropout"] == 0.3
