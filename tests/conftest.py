"""Shared test fixtures. Real-data tests read MNIST from ../shared/data/mnist (beside the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("RNNLAB_MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_report_header(config):
    where = MNIST_DIR if MNIST_DIR.is_dir() else f"{MNIST_DIR} (ABSENT: real-data tests will fail)"
    return f"rnnlab real MNIST: {where}"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not MNIST_DIR.is_dir():
        pytest.fail(f"real MNIST is absent: expected the four IDX files in {MNIST_DIR} (set RNNLAB_MNIST_DIR)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """The full real MNIST, loaded and validated once per test session."""
    from rnnlab.data import load_splits

    return load_splits("mnist", mnist_dir)


@pytest.fixture(scope="module")
def one_thread():
    """One torch/BLAS thread for a module: small problems only lose from a second (spinning) thread on a shared CPU."""
    from rnnlab.models.numpy_lstm import blas_threads

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with blas_threads(1):
        yield
    torch.set_num_threads(before)
