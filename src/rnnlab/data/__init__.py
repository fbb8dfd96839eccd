"""Data: IDX files → validated uint8 tensors → normalised sequence batches in memory."""

from rnnlab.data.batches import (SequenceBatches, epoch_permutation, input_shape, sequence_inputs, to_sequences,
                                 view_permutation)
from rnnlab.data.idx import load_idx_images, load_idx_labels, load_idx_pair, read_idx
from rnnlab.data.sources import CLASS_NAMES, Dataset, Split, load_data, load_splits

__all__ = [
    "CLASS_NAMES",
    "Dataset",
    "SequenceBatches",
    "Split",
    "epoch_permutation",
    "input_shape",
    "load_idx_images",
    "load_idx_labels",
    "load_data",
    "load_idx_pair",
    "load_splits",
    "read_idx",
    "sequence_inputs",
    "to_sequences",
    "view_permutation",
]
