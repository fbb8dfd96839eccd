"""rnnlab as a Python user installs it: the wheel, `pip install`ed into a new venv with the dependencies that
pyproject.toml declares and nothing else (scripts/fresh_install.py; torch and torchvision are lent from this
venv rather than unpacked again). Every command family then runs there, from a folder outside the repo, on
small real data: train, compare --seeds, evaluate, predict, report, summarize, show, serve, exercise, caption."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from serve_helpers import Server, paper_png

sys.path.insert(0, str(REPO / "scripts"))
from fresh_install import fresh_install  # noqa: E402

TINY = ["--hidden-size", "8", "--train-limit", "300", "--test-limit", "200", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def user(tmp_path_factory, mnist_dir):
    """(the fresh venv's `rnnlab`, a working folder outside the repo)."""
    base = tmp_path_factory.mktemp("pip-user")
    rnnlab = fresh_install(base / "venv", torch_from=sys.executable)
    work = base / "work"
    work.mkdir()
    return rnnlab, work


def ok(user, *argv, timeout: float = 600) -> str:
    rnnlab, work = user
    result = subprocess.run([str(rnnlab), *map(str, argv)], cwd=work, capture_output=True, text=True,
                            timeout=timeout, env={"PATH": "/usr/bin:/bin", "HOME": str(work)})
    assert result.returncode == 0, f"rnnlab {' '.join(map(str, argv))}:\n{result.stderr[-3000:]}"
    return result.stdout


def test_only_the_declared_dependencies_are_there(user):
    """The venv is what pip made of the wheel: no test tools, no requirements.txt extras."""
    rnnlab, _ = user
    python = rnnlab.parent / "python"
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                            check=True).stdout
    names = {entry["name"].lower() for entry in json.loads(listed)}
    assert {"rnnlab", "psutil", "scipy", "threadpoolctl", "fastapi"} <= names
    assert not names & {"pytest", "playwright", "hypothesis", "tensorboard"}
    where = subprocess.run([str(python), "-c", "import rnnlab; print(rnnlab.__file__)"], capture_output=True,
                           text=True, check=True).stdout
    assert str(REPO) not in where  # the installed copy, not the checkout


def test_train_evaluate_predict_report_show(user, mnist_dir, mnist):
    _, work = user
    text = ok(user, "train", "--model", "lstm", "--data-dir", mnist_dir, "--out", "run", *TINY)
    assert "test accuracy" in text.lower()
    assert "test accuracy" in ok(user, "evaluate", "run", "--data-dir", mnist_dir).lower()
    digit, label = mnist.test.images[0].numpy(), int(mnist.test.labels[0])
    (work / "digit.png").write_bytes(paper_png(digit))
    assert "digit.png" in ok(user, "predict", "run", "digit.png")
    ok(user, "report", "run", "--data-dir", mnist_dir)
    assert list(work.rglob("report.html"))
    ok(user, "show", "--data-dir", mnist_dir, "--out", "batch.png")
    assert Image.open(work / "batch.png").size[0] > 100


def test_compare_two_seeds_then_summarize(user, mnist_dir):
    _, work = user
    ok(user, "compare", "--models", "rnn,lstm", "--seeds", "0-1", "--data-dir", mnist_dir, "--out", "lab", *TINY)
    summary = json.loads((work / "lab" / "summary.json").read_text())
    assert summary["rnn"]["seeds"] == [0, 1] and len(summary["lstm"]["test_accuracies"]) == 2
    ok(user, "summarize", "lab", "--out", "merged")
    assert json.loads((work / "merged" / "summary.json").read_text())["rnn"]["test_accuracies"] == \
        summary["rnn"]["test_accuracies"]


def get(url: str, data: bytes | None = None, headers: dict | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers or {}), timeout=60) as answer:
        assert answer.status == 200
        return answer.read()


def test_serve_answers_and_reads_a_digit(user, mnist_dir, mnist):
    """The page's files are package data of the wheel; /healthz answers; a picture is read row by row."""
    rnnlab, work = user
    ok(user, "train", "--model", "rnn", "--data-dir", mnist_dir, "--out", "served", *TINY)
    server = Server([work / "served"], cwd=work, command=[str(rnnlab)])
    try:
        get(server.url + "healthz")
        assert '<canvas id="pad"' in get(server.url).decode()
        for static in (REPO / "src" / "rnnlab" / "serve" / "static").iterdir():
            assert get(f"{server.url}static/{static.name}") == static.read_bytes(), static.name
        reading = json.loads(get(server.url + "api/read", paper_png(mnist.test.images[0].numpy()),
                                 {"Content-Type": "image/png"}))
        probabilities = np.asarray(reading["models"][0]["probabilities"])
        assert probabilities.shape == (28, 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    finally:
        code = server.stop(signal.SIGINT)  # Ctrl-C, the normal way to stop it
    assert code == 0, server.lines


def test_exercise_reference_checks(user, mnist):
    """The teacher's path: the reference written out, then checked (trained on 1,000 real digits: seconds)."""
    from idx_files import write_dataset

    _, work = user
    small = write_dataset(work / "small-mnist", mnist.train.images[:1000].numpy(), mnist.train.labels[:1000].numpy(),
                          mnist.test.images[:300].numpy(), mnist.test.labels[:300].numpy())
    ok(user, "exercise", "new", "class", "--solution")
    text = ok(user, "exercise", "check", work / "class" / "my_lstm.py", "--data-dir", small)
    assert "score: 8/8 functions passed" in text and "training check: passed" in text


def test_caption_train_and_sample(user, mnist_dir, mnist):
    _, work = user
    ok(user, "caption", "train", "--dry-run", "--data-dir", mnist_dir, "--out", "captioner",
       "--decoder", "rnn", "--hidden-size", "16", "--encoder-hidden", "16")
    digits = [mnist.test.images[k].numpy() for k in range(3)]
    Image.fromarray(255 - np.pad(np.concatenate(digits, axis=1), 10)).resize((340, 96)).save(work / "three.png")
    assert "three.png:" in ok(user, "caption", "sample", "captioner", "three.png")
