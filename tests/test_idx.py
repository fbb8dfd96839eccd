import gzip

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
