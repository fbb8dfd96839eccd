"""Batches from memory: a whole split is normalised once, then each batch is one index operation.

The sheet's DataLoader turned every image into a PIL image and back; here a split of uint8 images
`(N, 28, 28)` becomes one float tensor in the chosen sequence view, and an epoch is a seeded
permutation of it. Every process of a data-parallel run draws the same permutation and takes its
own share of each global batch, so K processes see exactly the batches one process would.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from rnnlab.config import PIXELS, STEPS, VIEW_STEPS, VIEWS

MEAN, STD = 0.5, 0.5  # the sheet's Normalize((0.5,), (0.5,)) on pixels scaled to [0, 1]


def view_permutation(seed: int) -> torch.Tensor:
    """The fixed pixel order of the `permuted` view, `(784,)`, a function of the seed alone."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(PIXELS, generator=generator)


def to_sequences(images: torch.Tensor, view: str = "rows", permutation: torch.Tensor | None = None,
                 steps: int | None = None) -> torch.Tensor:
    """uint8 images `(N, 28, 28)` → normalised float32 sequences `(N, T, D)`, T = `steps`, D = 784 / T.

    The view is the order of the pixels: rows and pixels row-major, permuted in the fixed shuffled order
    `permutation` `(784,)`; that order is then cut into T equal steps (default: the view's own length, 28
    for rows, one row a step as the sheet reads it, and 784 for pixels and permuted).
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}")
    steps = VIEW_STEPS[view] if steps is None else steps
    if steps not in STEPS:
        raise ValueError(f"{steps} steps do not divide the {PIXELS} pixels evenly")
    flat = ((images.float() / 255.0 - MEAN) / STD).reshape(-1, PIXELS)
    if view == "permuted":
        if permutation is None:
            raise ValueError("the permuted view needs its permutation")
        flat = flat[:, permutation]
    return flat.reshape(-1, steps, PIXELS // steps).contiguous()


def input_shape(view: str, steps: int | None = None) -> tuple[int, int]:
    """(steps T, features D) of a sequence view cut into `steps` (default: the view's own length)."""
    steps = VIEW_STEPS[view] if steps is None else steps
    return steps, PIXELS // steps


def sequence_inputs(config, images: torch.Tensor) -> torch.Tensor:
    """uint8 images `(N, 28, 28)` → the model inputs `(N, T, D)` of a run's `config` (its view, steps and seed)."""
    permutation = view_permutation(config.seed) if config.view == "permuted" else None
    return to_sequences(images, config.view, permutation, config.steps)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of epoch `epoch`: a function of (seed, epoch) only, so a resumed run redraws it."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint32)
    generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randperm(n, generator=generator)


class SequenceBatches:
    """Iterate over `(x (B, T, D), y (B,))` batches of one split, held in memory on `device`.

    `shuffle`: a new seeded order each epoch (`epoch_permutation`); otherwise the split's order.
    `rank`/`world_size`: this process takes `global_batch[rank::world_size]` of each global batch.
    """

    def __init__(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
    ):
        if len(inputs) != len(labels):
            raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
        self.inputs = inputs.to(device)
        self.labels = labels.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        """Number of global batches in an epoch (the last one may be short)."""
        return -(-len(self.labels) // self.batch_size)

    def global_indices(self, epoch: int) -> torch.Tensor:
        n = len(self.labels)
        return epoch_permutation(n, self.seed, epoch) if self.shuffle else torch.arange(n)

    def epoch(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of `epoch`, from global batch number `start` on (for resuming mid-epoch)."""
        order = self.global_indices(epoch).to(self.labels.device)
        for b in range(start, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size][self.rank :: self.world_size]
            yield self.inputs[idx], self.labels[idx]

    def __iter__(self):
        return self.epoch(0)
