"""Every bad file or flag a user can hand in: one line, exit code 2, no traceback, nothing left behind."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import exit_code
from idx_files import idx_bytes, random_dataset
from rnnlab.cli import main
from rnnlab.data.idx import parse_idx, read_idx
from rnnlab.errors import DataError

TINY = ["--model", "rnn", "--hidden-size", "8", "--epochs", "1", "--quiet"]


def check_one_line_exit_2(capsys, argv, message: str, untouched: Path) -> None:
    before = {p: p.read_bytes() for p in sorted(untouched.rglob("*")) if p.is_file()}
    code = exit_code(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message.lower() in lines[0].lower(), lines[0]
    after = {p: p.read_bytes() for p in sorted(untouched.rglob("*")) if p.is_file()}
    assert after == before, "a failed command left files behind or changed earlier results"


# --- IDX files: one bad file in an otherwise good dataset folder ------------------------------------

def _replace(folder: Path, name: str, data: bytes) -> None:
    (folder / name).write_bytes(data)


IMAGES = "train-images-idx3-ubyte.gz"
LABELS = "train-labels-idx1-ubyte.gz"
GOOD_IMAGES = idx_bytes(np.zeros((200, 28, 28)))
IDX_CASES = {
    "wrong magic": (IMAGES, gzip.compress(b"\x08\x03" + GOOD_IMAGES[2:]), "magic"),
    "wrong dimension count": (IMAGES, gzip.compress(idx_bytes(np.zeros((200, 784)))), "3 dimensions"),
    "sizes do not match bytes": (IMAGES, gzip.compress(GOOD_IMAGES[:-100]), "truncated"),
    "truncated gzip": (IMAGES, gzip.compress(GOOD_IMAGES)[:-20], "gzip"),
    "empty file": (IMAGES, b"", "empty"),
    "labels outside 0-9": (LABELS, gzip.compress(idx_bytes(np.full(200, 12))), "outside 0-9"),
    "different counts": (LABELS, gzip.compress(idx_bytes(np.zeros(150))), "200 images but"),
    ".gz that is not gzip": (IMAGES, GOOD_IMAGES, "not gzip"),
}


@pytest.mark.parametrize("case", list(IDX_CASES))
def test_bad_idx_files_through_the_cli(tmp_path, capsys, case):
    name, data, message = IDX_CASES[case]
    folder = random_dataset(tmp_path / "data")
    _replace(folder, name, data)
    out = tmp_path / "out"
    check_one_line_exit_2(capsys, ["train", *TINY, "--data-dir", folder, "--out", out], message, tmp_path)
    assert not out.exists()


# --- checkpoints ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_dir):
    """Two small finished runs: an rnn and a gru."""
    root = tmp_path_factory.mktemp("runs")
    for model in ("rnn", "gru"):
        code = exit_code(["train", "--model", model, "--hidden-size", "8", "--epochs", "1", "--quiet",
                          "--train-limit", "256", "--test-limit", "100", "--data-dir", mnist_dir,
                          "--out", root / model])
        assert code == 0
    return root


class Exploit:
    """Unpickling this would create a file: what a malicious checkpoint does."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path, capsys):
    target = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "rnnlab-model", "config": {}, "state_dict": Exploit(target)}, evil)
    # The same file loaded the unsafe way would run the command: the exploit is real.
    probe = tmp_path / "probe"
    torch.save(Exploit(probe), tmp_path / "probe.pt")
    torch.load(tmp_path / "probe.pt", weights_only=False)
    assert probe.exists()

    for argv in (["evaluate", evil], ["predict", evil, tmp_path / "x.png"], ["report", tmp_path]):
        if argv[0] == "report":
            (tmp_path / "config.json").write_text("{}")
            shutil.copy(evil, tmp_path / "model.pt")
        code = exit_code(argv)
        _, err = capsys.readouterr()
        assert code == 2 and "Traceback" not in err, err
        assert not target.exists(), "unpickling ran code"
    code = exit_code(["evaluate", evil])
    _, err = capsys.readouterr()
    assert "refused" in err and "arbitrary pickle" in err


def test_malicious_checkpoint_refusal_names_the_code_and_the_next_step(tmp_path, capsys):
    """Before, the line ended on torch's own text cut mid-sentence ("... Re-running `torch.)"), with no next step."""
    evil = tmp_path / "evil.pt"
    torch.save({"format": "rnnlab-model", "config": {}, "state_dict": Exploit(tmp_path / "pwned")}, evil)
    code = exit_code(["evaluate", evil])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "pwned").exists(), err
    assert f"{os.system.__module__}.system" in err and "PyTorch" not in err and "weights_only" not in err, err
    assert err.strip().endswith("use a model.pt or checkpoint.pt that rnnlab wrote, or train the run again"), err


def test_bad_checkpoints(tmp_path, capsys, trained):
    rnn, gru = trained / "rnn" / "model.pt", trained / "gru" / "model.pt"
    # Another model's weights under this model's config: the shapes do not fit.
    mixed = torch.load(rnn, weights_only=True)
    mixed["state_dict"] = torch.load(gru, weights_only=True)["state_dict"]
    torch.save(mixed, tmp_path / "mixed.pt")
    # Same model, different shape.
    wider = torch.load(rnn, weights_only=True)
    wider["config"]["hidden_size"] = 16
    torch.save(wider, tmp_path / "wider.pt")
    (tmp_path / "truncated.pt").write_bytes(rnn.read_bytes()[: rnn.stat().st_size // 2])
    (tmp_path / "notes.pt").write_text("these are not weights")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    cases = {
        "mixed.pt": "do not fit a rnn model",
        "wider.pt": "hidden size 16",
        "truncated.pt": "truncated or damaged",
        "notes.pt": "not a torch file",
        "other.pt": "not an rnnlab-model",
        "empty.pt": "empty",
    }
    for name, message in cases.items():
        check_one_line_exit_2(capsys, ["evaluate", tmp_path / name], message, tmp_path)


@pytest.mark.parametrize("how", ["all", "one"])
def test_weights_that_are_not_finite_are_refused(how, tmp_path, capsys, trained):
    """Before, a model.pt whose weights were all NaN evaluated silently (to the accuracy of always answering 0)."""
    saved = torch.load(trained / "rnn" / "model.pt", weights_only=True)
    for name, tensor in saved["state_dict"].items():
        if how == "all":
            tensor.fill_(float("nan"))
        elif name.endswith("bias_hh_l0"):
            tensor[3] = float("inf")
    torch.save(saved, tmp_path / "model.pt")
    check_one_line_exit_2(capsys, ["evaluate", tmp_path / "model.pt"], "weights are not all finite", tmp_path)
    check_one_line_exit_2(capsys, ["predict", tmp_path / "model.pt", tmp_path / "x.png"], "train the run again",
                          tmp_path)


def test_resume_refuses_a_folder_of_another_run(tmp_path, capsys, mnist_dir, trained):
    args = ["--model", "rnn", "--hidden-size", "8", "--epochs", "2", "--quiet", "--train-limit", "256",
            "--test-limit", "100", "--data-dir", mnist_dir]
    assert exit_code(["train", *args, "--out", tmp_path / "a"]) == 0
    assert exit_code(["train", *args, "--out", tmp_path / "b"]) == 0
    (tmp_path / "b" / "metrics.json").unlink()  # make b look unfinished
    shutil.copy(tmp_path / "a" / "checkpoint.pt", tmp_path / "b" / "checkpoint.pt")
    check_one_line_exit_2(capsys, ["train", "--resume", tmp_path / "b"], "belongs to another run", tmp_path)
    check_one_line_exit_2(capsys, ["train", *args, "--out", tmp_path / "a"], "already holds a run", tmp_path)


def test_output_folder_not_writable(tmp_path, capsys, mnist_dir):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    check_one_line_exit_2(capsys, ["train", *TINY, "--data-dir", mnist_dir, "--train-limit", "64",
                                   "--out", blocker / "run"], "cannot write the run folder", tmp_path)


# --- the IDX reader under random and mutated bytes -------------------------------------------------

def _valid_idx(draw_shape) -> bytes:
    return idx_bytes(np.arange(int(np.prod(draw_shape)), dtype=np.int64).reshape(draw_shape) % 256)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_parse_idx_random_bytes(data):
    try:
        array = parse_idx(data)
    except DataError:
        return
    assert array.dtype == np.uint8 and array.size == len(data) - 4 - 4 * array.ndim


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    edits=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 400),
    gz=st.booleans(),
)
def test_read_idx_mutated_files(tmp_path_factory, shape, edits, cut, gz):
    data = bytearray(_valid_idx(shape))
    for position, value in edits:
        if position < len(data):
            data[position] = value
    data = bytes(data[: max(cut, 0)] if cut < len(data) else data)
    if gz:
        data = gzip.compress(data)
        if edits:
            data = data[: max(1, len(data) - edits[0][0] % 7)]
    path = tmp_path_factory.mktemp("idx") / ("f.gz" if gz else "f")
    path.write_bytes(data)
    try:
        array = read_idx(path)
    except DataError:
        return
    assert isinstance(array, np.ndarray) and array.dtype == np.uint8
