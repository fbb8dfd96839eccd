"""The benchmarks' own correctness (no timing asserts): both sides of `benchmarks/lab_vs_sheet.py` see the
same data and start from the same weights, the FLOP counts are right, and the scripts run end to end."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rnnlab.config import Config
from rnnlab.data import to_sequences
from rnnlab.models import new_model
from rnnlab.training.distributed import seed_everything
from rnnlab.models import build_model
from rnnlab.training.flops import forward_flops_per_sample, matmul_peak_gflops, train_flops_per_sample

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
SHEET_MD = REPO / "docs" / "lab-sheet.md"  # the lab sheet rnnlab starts from


@pytest.fixture(scope="module")
def sheet():
    """benchmarks/sheet_lab.py as a module (the faithful baseline)."""
    spec = importlib.util.spec_from_file_location("sheet_lab", BENCH / "sheet_lab.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so that inspect finds the classes' source
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sheet_sets(sheet, mnist_dir, tmp_path_factory):
    return sheet.load_datasets(mnist_dir, train_limit=512, test_limit=None)


def test_sheet_models_are_the_sheets_verbatim(sheet):
    import inspect

    text = SHEET_MD.read_text()
    for cls in (sheet.RNN_Model, sheet.LSTM_Model):
        source = inspect.getsource(cls).strip()
        assert source in text, f"{cls.__name__} differs from the lab sheet's"
    body = inspect.getsource(sheet.train)
    for line in ("inputs = inputs.view(-1, 28, 28)", "running_loss += loss.item()",
                 "correct += (predicted == labels).sum().item()", "optimizer.zero_grad()"):
        assert line in body


def test_same_test_set_images_order_and_normalisation(sheet, sheet_sets, mnist):
    """The sheet's testloader (torchvision + ToTensor + Normalize, batches of 64, no shuffle) yields exactly
    rnnlab's to_sequences of the same test images, in the same order, with the same labels."""
    _, testset = sheet_sets
    loader = torch.utils.data.DataLoader(testset, batch_size=64, shuffle=False)
    xs, ys = zip(*[(x.view(-1, 28, 28), y) for x, y in loader])
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (10_000, 28, 28)
    assert torch.equal(y, mnist.test.labels)
    assert torch.equal(x, to_sequences(mnist.test.images, "rows"))


def test_same_training_images_and_normalisation(sheet_sets, mnist):
    trainset, _ = sheet_sets
    x = torch.stack([trainset[i][0].view(28, 28) for i in range(len(trainset))])
    y = torch.tensor([trainset[i][1] for i in range(len(trainset))])
    assert torch.equal(x, to_sequences(mnist.train.images[:512], "rows"))
    assert torch.equal(y, mnist.train.labels[:512])


@pytest.mark.parametrize("name", ["rnn", "lstm"])
def test_same_seed_gives_the_same_initial_weights_and_outputs(sheet, name):
    """torch.manual_seed(seed) + the sheet's class == rnnlab's seed_everything(seed) + new_model (as train() does)."""
    for seed in (0, 7):
        torch.manual_seed(seed)
        theirs = sheet.SHEET_MODELS[name]()
        seed_everything(seed)
        ours = new_model(Config(model=name))
        a, b = list(theirs.parameters()), list(ours.parameters())
        assert [p.shape for p in a] == [p.shape for p in b]
        assert all(torch.equal(p, q) for p, q in zip(a, b))
        x = torch.randn(5, 28, 28)
        assert torch.equal(theirs(x), ours(x))


def test_both_sides_train_the_same_models_with_the_same_settings():
    config = Config(model="rnn")
    assert (config.batch_size, config.lr, config.hidden_size, config.num_layers, config.epochs) == (64, 1e-3, 128, 1, 5)
    assert Config(model="lstm").num_layers == 2


@pytest.mark.parametrize("name,layers", [("rnn", 1), ("lstm", 2), ("gru", 2)])
def test_flops_match_pytorch_flop_counter(name, layers):
    """The analytic counts equal FlopCounterMode's for one forward and one training step (oneDNN off, so
    that PyTorch's recurrent layers run as countable matrix products)."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = build_model(name, 28, 32, layers)
    x, y = torch.randn(8, 28, 28), torch.randint(0, 10, (8,))
    with torch.backends.mkldnn.flags(enabled=False):
        with FlopCounterMode(display=False) as forward:
            model(x)
        with FlopCounterMode(display=False) as step:
            F.cross_entropy(model(x), y).backward()
    assert forward.get_total_flops() == 8 * forward_flops_per_sample(name, 28, 28, 32, layers)
    assert step.get_total_flops() == 8 * train_flops_per_sample(name, 28, 28, 32, layers)


def test_matmul_peak_is_measured_per_dtype():
    fp32 = matmul_peak_gflops("cpu", "fp32", 256, 2, 0.0)
    bf16 = matmul_peak_gflops("cpu", torch.bfloat16, 256, 2, 0.0)
    assert math.isfinite(fp32) and fp32 > 0
    assert math.isfinite(bf16) and bf16 > 0


def _run(args, timeout):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def test_lab_vs_sheet_end_to_end(mnist_dir, tmp_path):
    result = _run([str(BENCH / "lab_vs_sheet.py"), "--epochs", "1", "--train-limit", "192", "--test-limit", "128",
                   "--threads", "1", "--overhead-steps", "2", "--overhead-rounds", "1", "--data-dir", str(mnist_dir),
                   "--out", str(tmp_path)], timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"side\s+lab wall s\s+start→end s", out)
    assert re.search(r"^sheet\s+\d", out, re.M) and re.search(r"^rnnlab-fp32\s+\d", out, re.M)
    assert "rnnlab-fp32 / sheet: wall-time ratio" in out
    assert "fit()/pure compute" in out
    assert (tmp_path / "results.json").is_file()


def test_inference_benchmark_runs(mnist_dir):
    result = _run([str(BENCH / "inference.py"), "--models", "rnn,lstm", "--batches", "1", "100", "--repeats", "1",
                   "--min-seconds", "0.01", "--threads", "1", "--data-dir", str(mnist_dir)], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^lstm\s+[\d,]+\s+[\d,]+", result.stdout, re.M)


def test_measuring_the_peak_leaves_the_global_rng_alone():
    """A run measures the matmul peak after restoring a checkpoint's RNG: it must not consume it."""
    from rnnlab.training.flops import matmul_peak_gflops

    matmul_peak_gflops.cache_clear()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    matmul_peak_gflops("cpu", "fp32", size=64, min_runs=1, budget_s=0.0)
    assert torch.equal(torch.get_rng_state(), before)
