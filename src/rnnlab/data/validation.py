"""A validation set held out of the training set, for choosing settings without looking at the test set."""

from __future__ import annotations

from dataclasses import replace

from rnnlab.data.sources import Dataset, Split
from rnnlab.errors import RnnlabError


def hold_out(dataset: Dataset, fraction: float) -> tuple[Dataset, Split | None]:
    """`dataset` with the last `fraction` of its training images moved into a validation split.

    The last images, not a random draw: every seed then trains and validates on the same images, so
    validation accuracies of different seeds and settings are comparable (MNIST's last 10,000 training
    images are the customary validation set). `fraction` 0 returns the dataset unchanged and None.
    """
    if not fraction:
        return dataset, None
    n = len(dataset.train.labels)
    held = max(1, round(n * fraction))
    if held >= n:
        raise RnnlabError(f"--val-split {fraction} leaves none of the {n} training images to train on; "
                          "use a smaller fraction or more images")
    train = Split(dataset.train.images[: n - held], dataset.train.labels[: n - held])
    validation = Split(dataset.train.images[n - held :], dataset.train.labels[n - held :])
    return replace(dataset, train=train), validation
