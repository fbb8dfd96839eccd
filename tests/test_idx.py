import gzip
import tracemalloc
import zlib

import numpy as np
import pytest
import torch

from idx_files import idx_bytes, random_dataset, write_idx
from rnnlab.data import load_idx_images, load_idx_labels, load_idx_pair, load_splits, read_idx
from rnnlab.data.sources import find_idx_folder
from rnnlab.errors import DataError

OFFICIAL_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_real_mnist_reads_whole_and_valid(mnist):
    assert mnist.train.images.shape == (60000, 28, 28) and mnist.train.images.dtype == torch.uint8
    assert mnist.test.images.shape == (10000, 28, 28)
    assert torch.bincount(mnist.train.labels).tolist() == OFFICIAL_TRAIN_COUNTS
    # The raw train file's mean pixel, as its provenance note records it.
    assert mnist.train.images.double().mean().item() == pytest.approx(33.318, abs=1e-3)


@pytest.mark.parametrize("gz", [True, False])
def test_gz_and_raw_read_the_same(tmp_path, gz):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / ("x.gz" if gz else "x"), images)
    assert np.array_equal(read_idx(path), images)
    assert torch.equal(load_idx_images(path), torch.from_numpy(images))


def test_folder_gz_and_raw_and_torchvision_layout(tmp_path):
    raw = random_dataset(tmp_path / "raw", gz=False)
    gz = random_dataset(tmp_path / "gz", gz=True)
    layout = random_dataset(tmp_path / "tv" / "MNIST" / "raw")
    a, b = load_splits("mnist", raw), load_splits("mnist", gz)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert find_idx_folder(tmp_path / "tv", "mnist") == layout
    assert len(load_splits("mnist", tmp_path / "tv").train.labels) == 200


def corrupt_cases():
    good_images = idx_bytes(np.zeros((3, 28, 28)))
    yield "empty", b"", "empty"
    yield "bad magic", b"\x12\x34" + good_images[2:], "magic"
    yield "wrong type", good_images[:2] + b"\x0d" + good_images[3:], "type code"
    yield "truncated data", good_images[:-5], "truncated"
    yield "trailing bytes", good_images + b"\x00", "trailing"
    yield "truncated header", good_images[:9], "truncated header"


@pytest.mark.parametrize("name,data,message", list(corrupt_cases()), ids=[c[0] for c in corrupt_cases()])
def test_corrupt_files_name_the_file_and_problem(tmp_path, name, data, message):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message) as info:
        load_idx_images(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_and_fake_gzip(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((50, 28, 28))))
    truncated = tmp_path / "a.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="gzip"):
        read_idx(truncated)
    fake = tmp_path / "b.gz"
    fake.write_bytes(idx_bytes(np.zeros((2, 28, 28))))
    with pytest.raises(DataError, match="not gzip"):
        read_idx(fake)


def test_wrong_dimensions_and_sizes(tmp_path):
    with pytest.raises(DataError, match="3 dimensions"):
        load_idx_images(write_idx(tmp_path / "i", np.zeros((4, 784))))
    with pytest.raises(DataError, match="28x28"):
        load_idx_images(write_idx(tmp_path / "j", np.zeros((4, 32, 32))))
    with pytest.raises(DataError, match="1 dimension"):
        load_idx_labels(write_idx(tmp_path / "k", np.zeros((4, 2))))


def test_label_out_of_range_and_count_mismatch(tmp_path):
    with pytest.raises(DataError, match="label 10 at index 2"):
        load_idx_labels(write_idx(tmp_path / "l", np.array([1, 2, 10, 3])))
    images = write_idx(tmp_path / "i", np.zeros((5, 28, 28)))
    labels = write_idx(tmp_path / "l2", np.array([1, 2, 3]))
    with pytest.raises(DataError, match="5 images but .* 3 labels"):
        load_idx_pair(images, labels)


# --- crafted headers and gzip bombs (issue 11, defects 6 and 7) ---------------------------------------

def cli(capsys, *argv):
    """Run the CLI in-process: (exit code, stdout, the non-empty stderr lines)."""
    from rnnlab.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def overflowing_header() -> bytes:
    """A 3-d header of 2^22 x 2^21 x 2^21 = 2^64 bytes and no data: the product wraps to 0 in int64."""
    return bytes([0, 0, 0x08, 3]) + b"".join((1 << k).to_bytes(4, "big") for k in (22, 21, 21))


def test_header_whose_size_overflows_int64_is_truncated_not_a_crash(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(overflowing_header())
    with pytest.raises(DataError, match="truncated") as info:
        load_idx_images(path)
    assert str(2**64) in str(info.value)  # the announced size, computed exactly


def test_overflowing_header_through_the_cli_is_one_line(tmp_path, capsys):
    data = random_dataset(tmp_path / "d", n_train=20, n_test=10)
    (data / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(overflowing_header()))
    before = sorted(tmp_path.rglob("*"))
    code, _, err = cli(capsys, "show", "--data-dir", data, "--out", tmp_path / "b.png")
    assert code == 2 and len(err) == 1 and "train-images-idx3-ubyte.gz" in err[0] and "truncated" in err[0]
    assert sorted(tmp_path.rglob("*")) == before


def write_gzip_bomb(path, zeros: int, labels: int = 1000):
    """A .gz holding a valid header for `labels` labels and then `zeros` zero bytes, compressed in 1 MiB
    steps so that building it never holds the bomb in memory (zeros compress about 1000:1)."""
    chunk = bytes(1 << 20)
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: a gzip container
    with open(path, "wb") as f:
        f.write(packer.compress(bytes([0, 0, 0x08, 1]) + labels.to_bytes(4, "big")))
        for start in range(0, zeros, len(chunk)):
            f.write(packer.compress(chunk[: zeros - start]))
        f.write(packer.flush())
    return path


def test_gzip_bomb_is_refused_without_inflating_it(tmp_path):
    """A 256 MiB bomb behind a 1,000-label header: refused after reading 1,001 bytes of data.

    Memory is measured with tracemalloc (Python's and zlib's allocations, this call only), not with
    ru_maxrss, which is a process-wide high-water mark that an earlier test may already have raised.
    """
    bomb = write_gzip_bomb(tmp_path / "train-labels-idx1-ubyte.gz", 256 << 20)
    assert bomb.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="trailing") as info:
            load_idx_labels(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(bomb) in str(info.value)
    assert peak < 8 << 20, f"peak {peak / 2**20:.0f} MiB while refusing a 256 MiB bomb"


def test_gzip_bomb_through_the_cli_is_one_line(tmp_path, capsys):
    data = random_dataset(tmp_path / "d", n_train=1000, n_test=10)
    write_gzip_bomb(data / "train-labels-idx1-ubyte.gz", 16 << 20)
    before = sorted(tmp_path.rglob("*"))
    code, _, err = cli(capsys, "show", "--data-dir", data, "--out", tmp_path / "b.png")
    assert code == 2 and len(err) == 1 and "train-labels-idx1-ubyte.gz" in err[0] and "trailing" in err[0]
    assert sorted(tmp_path.rglob("*")) == before


def test_a_complete_gzip_with_a_bad_checksum_is_still_refused(tmp_path):
    """Reading stops one byte past the announced size, which is enough to reach and check the CRC."""
    data = bytearray(gzip.compress(idx_bytes(np.arange(10) % 10)))
    data[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    path = tmp_path / "l.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)
