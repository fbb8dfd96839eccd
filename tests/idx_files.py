"""Write small IDX files for tests (the format: 0, 0, type 0x08, ndim, big-endian dims, bytes)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool | None = None) -> Path:
    data = idx_bytes(array)
    gz = path.suffix == ".gz" if gz is None else gz
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_dataset(folder: Path, images_train, labels_train, images_test, labels_test, gz: bool = True) -> Path:
    """A folder with the four MNIST-named IDX files."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{ext}", images_train)
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", labels_train)
    write_idx(folder / f"t10k-images-idx3-ubyte{ext}", images_test)
    write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", labels_test)
    return folder


def random_dataset(folder: Path, n_train: int = 200, n_test: int = 100, seed: int = 0, gz: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    return write_dataset(
        folder,
        rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
        rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test), gz=gz,
    )
