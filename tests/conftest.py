"""Shared fixtures and helpers.

Real MNIST is found, in order, at `$RNNLAB_DATA`, `../shared/data/mnist` (beside the repo) or `./data`;
failing those, torchvision downloads it into `./data` when a network is there. With no data at all the
suite stops at once with one line saying how to provide it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
HOW = ("set RNNLAB_DATA to a folder holding the four MNIST IDX files (.gz or raw), put them in "
       "../shared/data/mnist or ./data, or run once with a network (torchvision downloads them into ./data)")

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def find_mnist() -> tuple[Path | None, str]:
    """The folder holding MNIST's four IDX files, and a line saying where it came from (or why none)."""
    from rnnlab.data.sources import find_idx_folder, torchvision_download

    given = os.environ.get("RNNLAB_DATA")
    if given:
        folder = find_idx_folder(Path(given), "mnist")
        return (folder, f"$RNNLAB_DATA={given}") if folder else (None, f"RNNLAB_DATA={given} holds no MNIST IDX files")
    for candidate in (REPO.parent / "shared" / "data" / "mnist", REPO / "data"):
        folder = find_idx_folder(candidate, "mnist")
        if folder:
            return folder, str(candidate)
    try:
        torchvision_download(REPO / "data", "mnist")
    except Exception as exc:  # offline: say so below, in one line
        return None, f"no MNIST found and the download failed ({type(exc).__name__})"
    return find_idx_folder(REPO / "data", "mnist"), "downloaded into ./data"


MNIST_DIR, MNIST_SOURCE = None, ""


def pytest_configure(config):
    global MNIST_DIR, MNIST_SOURCE
    MNIST_DIR, MNIST_SOURCE = find_mnist()
    if MNIST_DIR is None:  # stop before collecting anything, with one line ("ERROR: ...", exit code 4)
        raise pytest.UsageError(f"rnnlab tests need real MNIST: {MNIST_SOURCE}; {HOW}")


def pytest_report_header(config):
    return f"rnnlab real MNIST: {MNIST_DIR} ({MNIST_SOURCE})"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """The full real MNIST, loaded and validated once per test session."""
    from rnnlab.data import load_splits

    return load_splits("mnist", mnist_dir)


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def find_debian_fashion() -> Path | None:
    """The folder of Debian's `dataset-fashion-mnist` (its four IDX .gz files): where `dpkg -L` says, else the
    package's standard path; None when it is not installed."""
    from rnnlab.data.sources import find_idx_folder

    try:
        listed = subprocess.run(["dpkg", "-L", "dataset-fashion-mnist"], capture_output=True, text=True,
                                timeout=30).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):  # not a Debian system
        listed = []
    folders = [Path(line).parent for line in listed if line.endswith("t10k-labels-idx1-ubyte.gz")]
    return next((f for f in [*folders, DEBIAN_FASHION] if find_idx_folder(f, "fashion-mnist")), None)


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """Debian's Fashion-MNIST folder, read in place; the test is skipped (in one line) without it."""
    folder = find_debian_fashion()
    if folder is None:
        pytest.skip("Debian's Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist")
    return folder


@pytest.fixture(scope="module")
def one_thread():
    """One torch/BLAS thread for a module: small problems only lose from a second (spinning) thread on a shared CPU."""
    from rnnlab.models.numpy_lstm import blas_threads

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with blas_threads(1):
        yield
    torch.set_num_threads(before)


# Helpers the test modules import (`from conftest import run, exit_code, finish`).


def exit_code(argv) -> int:
    """The CLI's exit code, whether argparse exits or `main` returns."""
    from rnnlab.cli import main

    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def run(capsys, *argv) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit code, stdout, stderr)."""
    code = exit_code(argv)
    out, err = capsys.readouterr()
    return code, out, err


def finish(proc: subprocess.Popen, timeout: float = 420) -> tuple[int, str, str]:
    """Wait for a CLI subprocess: (exit code, stdout, stderr)."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err
