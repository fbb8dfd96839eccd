"""Pictures of data and runs, drawn with matplotlib's file backend (no screen needed)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from rnnlab.data.batches import epoch_permutation  # noqa: E402
from rnnlab.data.sources import Dataset  # noqa: E402


def save_figure(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def save_sample_batch(dataset: Dataset, path: Path, *, batch_size: int = 64, seed: int = 0) -> Path:
    """The sheet's "one batch of training images": the first shuffled batch of epoch 1, with labels."""
    order = epoch_permutation(len(dataset.train.labels), seed, 0)[:batch_size]
    images, labels = dataset.train.images[order], dataset.train.labels[order]
    cols = min(8, len(order))
    rows = math.ceil(len(order) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.35 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels):
        ax.imshow(image.numpy(), cmap="gray", vmin=0, vmax=255)
        ax.set_title(dataset.class_names[int(label)], fontsize=9)
    fig.suptitle(f"one training batch of {dataset.name} ({len(order)} images)")
    return save_figure(fig, path)
