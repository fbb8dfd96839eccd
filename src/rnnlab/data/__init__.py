"""Data: IDX files → validated uint8 tensors → normalised sequence batches in memory."""

from rnnlab.data.batches import SequenceBatches, epoch_permutation, to_sequences, view_permutation
from rnnlab.data.idx import load_idx_images, load_idx_labels, load_idx_pair, read_idx
from rnnlab.data.sources import Dataset, Split, load_splits

__all__ = [
    "Dataset",
    "SequenceBatches",
    "Split",
    "epoch_permutation",
    "load_idx_images",
    "load_idx_labels",
    "load_idx_pair",
    "load_splits",
    "read_idx",
    "to_sequences",
    "view_permutation",
]
