"""Fashion-MNIST as Debian ships it (issue 19), and datasets told apart by their content.

The three datasets' files share their names and format; Debian's Fashion-MNIST is recompressed, so the .gz bytes
match no published MD5. A folder is recognised by its decompressed test labels: Debian's Fashion folder is refused
as MNIST and accepted as Fashion-MNIST, and MNIST recompressed or unpacked is still MNIST.
"""

import gzip
import json
import subprocess
import sys

import pytest
import torch

from conftest import REPO, finish
from rnnlab.data import load_splits
from rnnlab.data.sources import FILES, dataset_of
from rnnlab.errors import DataError

NAMES = [stem for pair in FILES.values() for stem in pair]
TINY = ["--hidden-size", "8", "--train-limit", "300", "--test-limit", "200", "--epochs", "1", "--threads", "1",
        "--quiet"]
REFUSED_AS_MNIST = "holds the official fashion-mnist files, not mnist's"


def train(*argv) -> tuple[int, str, str]:
    """`python -m rnnlab train ...` as a user runs it: (exit code, stdout, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "train", *map(str, argv), *TINY, "--seed", "0"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return finish(proc)


@pytest.mark.parametrize("dataset", [[], ["--dataset", "mnist"]], ids=["default", "mnist"])
def test_debian_fashion_is_refused_as_mnist(dataset, fashion_dir, tmp_path):
    code, out, err = train(*dataset, "--data-dir", fashion_dir, "--out", tmp_path / "run")
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1, err
    assert REFUSED_AS_MNIST in lines[0] and str(fashion_dir) in lines[0]
    assert "give --dataset fashion-mnist" in lines[0]  # what to do
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_debian_fashion_trains_as_fashion_mnist(fashion_dir, tmp_path):
    code, out, err = train("--dataset", "fashion-mnist", "--data-dir", fashion_dir, "--out", tmp_path / "run")
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["dataset"] == "fashion-mnist" and str(fashion_dir) in metrics["data_source"]
    assert len(metrics["per_class_accuracy"]) == 10 and 0 <= metrics["test_accuracy"] <= 1


def test_debian_fashion_is_the_real_fashion_mnist(fashion_dir):
    """Read in place: 60,000 + 10,000 images, 6,000 + 1,000 per class (Zalando's split), the test set opening
    with an ankle boot, a pullover and two trousers (MNIST's opens 7, 2, 1, 0)."""
    data = load_splits("fashion-mnist", fashion_dir)
    assert data.train.images.shape == (60_000, 28, 28) and data.test.images.shape == (10_000, 28, 28)
    assert torch.bincount(data.train.labels).tolist() == [6_000] * 10
    assert torch.bincount(data.test.labels).tolist() == [1_000] * 10
    assert data.test.labels[:4].tolist() == [9, 2, 1, 1]
    assert data.class_names[9] == "Boot"


def repack(src, dst, how):
    """The four files of `src` written into `dst`: gzip level 1 ("gzip1") or uncompressed ("raw")."""
    dst.mkdir()
    for stem in NAMES:
        with gzip.open(src / f"{stem}.gz", "rb") as file:
            content = file.read()
        if how == "raw":
            (dst / stem).write_bytes(content)
        else:
            (dst / f"{stem}.gz").write_bytes(gzip.compress(content, compresslevel=1, mtime=0))


@pytest.mark.parametrize("how", ["gzip1", "raw"])
def test_recompressed_or_unpacked_mnist_is_still_mnist(how, mnist_dir, mnist, tmp_path):
    folder = tmp_path / how
    repack(mnist_dir, folder, how)
    labels = folder / ("t10k-labels-idx1-ubyte" + (".gz" if how == "gzip1" else ""))
    assert labels.read_bytes() != (mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()  # not the official bytes
    assert dataset_of(labels) == "mnist"
    data = load_splits("mnist", folder)
    assert torch.equal(data.test.labels, mnist.test.labels) and torch.equal(data.train.images, mnist.train.images)
    with pytest.raises(DataError, match="holds the official mnist files, not fashion-mnist's") as info:
        load_splits("fashion-mnist", folder)
    assert "give --dataset mnist" in str(info.value) and "\n" not in str(info.value)


def test_unpacked_fashion_labels_are_fashion_and_a_changed_file_is_nobody(fashion_dir, mnist_dir, tmp_path):
    """The fingerprint is of the content, whatever the packing; one byte more or one label changed is no
    known dataset (such a folder is read as given: the user's own data)."""
    with gzip.open(fashion_dir / "t10k-labels-idx1-ubyte.gz", "rb") as file:
        fashion = file.read()
    (tmp_path / "fashion").write_bytes(fashion)
    assert dataset_of(tmp_path / "fashion") == "fashion-mnist"
    with gzip.open(mnist_dir / "t10k-labels-idx1-ubyte.gz", "rb") as file:
        mnist = file.read()
    (tmp_path / "longer").write_bytes(mnist + b"\x00")
    (tmp_path / "changed").write_bytes(mnist[:-1] + bytes([(mnist[-1] + 1) % 10]))
    assert dataset_of(tmp_path / "longer") is None and dataset_of(tmp_path / "changed") is None


def test_results_page_finds_debian_fashion_by_itself(fashion_dir, mnist_dir, tmp_path):
    """benchmarks/results.py (`make results`) without --fashion-dir reads Debian's folder: its Fashion-MNIST
    section holds the comparison's rows and names that folder; the tuned recipe's row is still to run."""
    out = tmp_path / "runs"
    code, _, err = finish(subprocess.Popen(
        [sys.executable, "-m", "rnnlab", "compare", "--dataset", "fashion-mnist", "--models", "rnn", "--seeds", "0-2",
         "--data-dir", fashion_dir, "--out", out / "fashion-mnist", "--jobs", "1", "--no-report",
         *TINY],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    assert code == 0, err
    page = tmp_path / "results.md"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "results.py"), "--write-only", "--data-dir",
                           str(mnist_dir), "--out", str(out), "--doc", str(page), "--kmnist-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    fashion = page.read_text().split("## Fashion-MNIST")[1].split("\n## ")[0]
    summary = json.loads((out / "fashion-mnist" / "summary.json").read_text())["rnn"]
    assert f"--data-dir {fashion_dir}`" in fashion
    assert f"| rnn | 3 | {100 * summary['test_accuracy']:.2f} ± {100 * summary['std']:.2f}% |" in fashion
    tuned = page.read_text().split("## The tuned recipe (onecycle-3e-3) on Fashion-MNIST")[1].split("\n## ")[0]
    assert "--epochs 20 --lr-schedule onecycle --lr 3e-3 --clip-grad 1" in tuned and "Not measured yet" in tuned
