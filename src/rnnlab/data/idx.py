"""Read and validate IDX files (the format MNIST, Fashion-MNIST and KMNIST ship in), gzipped or raw.

An IDX file is: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions,
each dimension as a big-endian int32, then the values. Every check here raises `DataError` with the
file's name and what is wrong; nothing else escapes for any input bytes.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from rnnlab.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an uncompressed IDX file of unsigned bytes into a uint8 array."""
    if len(raw) == 0:
        raise DataError(f"{name}: the file is empty; expected an IDX file")
    if len(raw) < 4:
        raise DataError(f"{name}: only {len(raw)} bytes, too short for an IDX header")
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{name}: bad magic number {raw[:4].hex()}; this is not an IDX file")
    if raw[2] != UBYTE:
        raise DataError(f"{name}: IDX type code 0x{raw[2]:02x} is not 0x08 (unsigned byte)")
    ndim = raw[3]
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated header ({len(raw)} bytes, {ndim} dimensions need {header})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(raw) - header
    if actual != expected:
        how = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(
            f"{name}: {how}: header says shape {shape} = {expected} bytes of data, file holds {actual}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (`.gz` or raw, told apart by content) into a uint8 array."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not raw:
        raise DataError(f"{path}: the file is empty; expected an IDX file (.gz or raw)")
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    elif path.suffix == ".gz":
        raise DataError(f"{path}: named .gz but is not gzip data")
    return parse_idx(raw, str(path))


def load_idx_images(path: str | Path) -> torch.Tensor:
    """Images as a uint8 tensor `(N, 28, 28)`."""
    array = read_idx(path)
    if array.ndim != 3:
        raise DataError(f"{path}: image file must have 3 dimensions (N, rows, cols), has shape {array.shape}")
    if array.shape[1:] != (28, 28):
        raise DataError(f"{path}: images must be 28x28, are {array.shape[1]}x{array.shape[2]}")
    return torch.from_numpy(array.copy())


def load_idx_labels(path: str | Path, num_classes: int = 10) -> torch.Tensor:
    """Labels as an int64 tensor `(N,)`, each in `[0, num_classes)`."""
    array = read_idx(path)
    if array.ndim != 1:
        raise DataError(f"{path}: label file must have 1 dimension, has shape {array.shape}")
    if array.size and int(array.max()) >= num_classes:
        bad = int(np.argmax(array >= num_classes))
        raise DataError(f"{path}: label {int(array[bad])} at index {bad} is outside 0-{num_classes - 1}")
    return torch.from_numpy(array.astype(np.int64))


def load_idx_pair(images_path: str | Path, labels_path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One split: images `(N, 28, 28)` uint8 and labels `(N,)` int64, checked to agree in count."""
    images = load_idx_images(images_path)
    labels = load_idx_labels(labels_path)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if len(images) == 0:
        raise DataError(f"{images_path}: holds no images")
    return images, labels
