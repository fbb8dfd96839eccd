"""Read and validate IDX files (the format MNIST, Fashion-MNIST and KMNIST ship in), gzipped or raw.

An IDX file is: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions,
each dimension as a big-endian int32, then the values. Every check here raises `DataError` with the
file's name and what is wrong; nothing else escapes for any input bytes.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from rnnlab.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08


# Data is read in steps of this size, so that a header announcing more than the file holds never makes us
# allocate the announced size up front.
READ_STEP = 1 << 20


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an uncompressed IDX file of unsigned bytes into a uint8 array."""
    return read_idx_stream(io.BytesIO(raw), name)


def read_idx_stream(stream: BinaryIO, name: str) -> np.ndarray:
    """Read one IDX file from `stream` (raw bytes, or a `GzipFile` that decompresses as it is read).

    The header comes first; then at most the size it announces plus one byte is read, so a file (or a
    gzip bomb) holding more than announced is refused after one extra byte, never inflated whole.
    """
    magic = stream.read(4)
    if len(magic) == 0:
        raise DataError(f"{name}: the file is empty; expected an IDX file")
    if len(magic) < 4:
        raise DataError(f"{name}: only {len(magic)} bytes, too short for an IDX header")
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(f"{name}: bad magic number {magic.hex()}; this is not an IDX file")
    if magic[2] != UBYTE:
        raise DataError(f"{name}: IDX type code 0x{magic[2]:02x} is not 0x08 (unsigned byte)")
    ndim = magic[3]
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions")
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{name}: truncated header ({4 + len(dims)} bytes, {ndim} dimensions need {4 + 4 * ndim})")
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    expected = math.prod(shape)  # a Python int: 255 dimensions of up to 2^32 each cannot overflow it
    data = read_at_most(stream, expected + 1)
    if len(data) < expected:
        raise DataError(
            f"{name}: truncated: header says shape {shape} = {expected} bytes of data, file holds {len(data)}"
        )
    if len(data) > expected:
        raise DataError(
            f"{name}: has trailing bytes: header says shape {shape} = {expected} bytes of data, file holds more"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def read_at_most(stream: BinaryIO, limit: int) -> bytearray:
    """Up to `limit` bytes of `stream`, read in `READ_STEP` pieces: memory follows what is really there,
    not what a header claims, and the growing bytearray avoids a second full-size copy at the end."""
    data = bytearray()
    while len(data) < limit:
        piece = stream.read(min(READ_STEP, limit - len(data)))
        if not piece:
            break
        data += piece
    return data


def unpacks_to(packed: Path, raw: Path) -> bool:
    """Whether `packed` (a `.gz`) holds exactly the bytes of `raw`: a raw copy beside it must not be other data.

    First, with no inflating, the gzip trailer (CRC-32 and size of the data) against `raw`; only when those
    disagree (other data, or a file of several gzip members, whose trailer covers the last one alone) are
    the two compared in full, inflating at most one byte more than `raw` holds. Unreadable data: False.
    """
    try:
        with open(packed, "rb") as file:
            if file.read(2) != GZIP_MAGIC:
                return False
            file.seek(-8, io.SEEK_END)
            crc, size = int.from_bytes(file.read(4), "little"), int.from_bytes(file.read(4), "little")
        with open(raw, "rb") as plain:
            if size == raw.stat().st_size % (1 << 32) and crc == _crc32(plain):
                return True
            plain.seek(0)
            with gzip.GzipFile(packed, "rb") as unpacked:
                while True:
                    piece = plain.read(READ_STEP)
                    if piece != read_at_most(unpacked, len(piece) or 1):
                        return False
                    if not piece:
                        return True
    except (OSError, EOFError, zlib.error):  # gzip.BadGzipFile is an OSError
        return False


def _crc32(stream: BinaryIO) -> int:
    crc = 0
    while piece := stream.read(READ_STEP):
        crc = zlib.crc32(piece, crc)
    return crc


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (`.gz` or raw, told apart by content) into a uint8 array.

    Gzip data is decompressed while it is read, and only as far as the IDX header says it reaches (see
    `read_idx_stream`), so a small `.gz` that inflates to gigabytes costs no more memory than a valid file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as file:
            head = file.read(2)
            file.seek(0)
            if head != GZIP_MAGIC:
                if head and path.suffix == ".gz":
                    raise DataError(f"{path}: named .gz but is not gzip data")
                return read_idx_stream(file, str(path))
            try:
                with gzip.GzipFile(fileobj=file, mode="rb") as unpacked:
                    return read_idx_stream(unpacked, str(path))
            except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
                raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None


def load_idx_images(path: str | Path) -> torch.Tensor:
    """Images as a uint8 tensor `(N, 28, 28)`."""
    array = read_idx(path)
    if array.ndim != 3:
        raise DataError(f"{path}: image file must have 3 dimensions (N, rows, cols), has shape {array.shape}")
    if array.shape[1:] != (28, 28):
        raise DataError(f"{path}: images must be 28x28, are {array.shape[1]}x{array.shape[2]}")
    return torch.from_numpy(array)  # no copy: `read_idx` returns a writable array over its own buffer


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
