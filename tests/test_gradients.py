"""`rnnlab gradients` (issue 20): ‖∂L/∂x_t‖, ‖∂L/∂h_t‖ and ‖∂L/∂c_t‖ per step, from the models' own weights
unrolled in float64, at the weights a run started from and at its trained weights.

The unrolled gradients are checked against autograd on the model's own forward and against finite
differences; the guard is shown to fire on a wrong unroll; the rebuilt starting weights are compared bit
for bit with what training began from; the command is run on tiny real runs, and on bad input.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from conftest import exit_code, run
from rnnlab.config import LSTMS, Config
from rnnlab.models import build_model
from rnnlab.report import gradients
from rnnlab.runs import read_run_config

MODELS = ("rnn", "lstm", "gru", "scratch-lstm")
TINY = ["--hidden-size", "8", "--train-limit", "300", "--test-limit", "300", "--epochs", "1", "--quiet",
        "--threads", "1"]


def tiny_model(name: str, layers: int) -> torch.nn.Module:
    torch.manual_seed(3)
    return build_model(name, 7, 6, layers, forget_bias=1.0 if name in LSTMS else 0.0).eval()


def tiny_batch(n: int = 4, steps: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(11)
    return torch.randn(n, steps, 7, generator=generator), torch.randint(0, 10, (n,), generator=generator)


# --- the numbers are the model's own ---------------------------------------------------------------------


@pytest.mark.parametrize("layers", (1, 2))
@pytest.mark.parametrize("name", MODELS)
def test_input_gradients_equal_autograd_on_the_models_own_forward(name, layers):
    model = tiny_model(name, layers)
    x, y = tiny_batch()
    own = copy.deepcopy(model).double()
    x64 = x.double().requires_grad_(True)
    F.cross_entropy(own(x64), y, reduction="sum").backward()  # images are independent: each gets its own ∂L_n/∂x

    unrolled = gradients.input_and_state_gradients(gradients.float64_copy(model), x, y)
    assert unrolled["x"].dtype == torch.float64
    assert (unrolled["x"] - x64.grad).abs().max() <= 1e-8 * x64.grad.abs().max()
    norms = gradients.step_gradients(model, x, y)
    np.testing.assert_allclose(norms["x"], x64.grad.norm(dim=2).numpy(), rtol=1e-8)
    assert len(norms["h"]) == layers and ("c" in norms) == (name in LSTMS)
    assert norms["x"].shape == norms["h"][-1].shape == (4, 9)


@pytest.mark.parametrize("name", MODELS)
def test_unrolled_forward_reproduces_the_models_output(name):
    model = tiny_model(name, 2)
    x, y = tiny_batch()
    own = gradients.float64_copy(model)
    assert (gradients.unroll(own, x.double()) - own(x.double())).abs().max() <= 1e-6
    assert gradients.step_gradients(model, x, y)["unroll_error"] <= 1e-6


@pytest.mark.parametrize("name", MODELS)
def test_state_gradients_match_central_finite_differences(name):
    """Nudge one unit of h_t of image 0 in the unrolled forward (for the next step and the layer above): the
    loss moves by ∂L/∂h_t."""
    model = tiny_model(name, 2)
    x, y = tiny_batch(n=2, steps=6)
    own = gradients.float64_copy(model)
    grads = gradients.input_and_state_gradients(own, x, y)["states"]
    eps = 1e-6

    def loss(layer, t, unit, delta):
        def nudge(k, s, state):
            if (k, s) != (layer, t):
                return state
            moved = state[0].clone()
            moved[0, unit] += delta
            return (moved, *state[1:])
        return F.cross_entropy(gradients.unroll(own, x.double(), nudge), y, reduction="sum").item()

    for layer, t, unit in [(0, 0, 2), (0, 3, 5), (1, 1, 0), (1, 5, 4)]:
        numeric = (loss(layer, t, unit, eps) - loss(layer, t, unit, -eps)) / (2 * eps)
        exact = grads[layer][0][0, t, unit].item()
        assert abs(numeric - exact) <= 1e-8 + 1e-5 * abs(exact), (layer, t, unit, numeric, exact)


@pytest.mark.parametrize("name", LSTMS)
def test_cell_gradients_follow_backpropagation_through_time(name):
    """∂L/∂c_t = ∂L/∂h_t ⊙ o_t ⊙ (1 - tanh²(c_t)) + ∂L/∂c_(t+1) ⊙ f_(t+1), with the gates of `lstm_gate_trace`
    (the NumPy reference's equations): c_t reaches the loss through h_t and through the next cell."""
    from rnnlab.report.introspect import lstm_gate_trace

    model = tiny_model(name, 2)
    x, y = tiny_batch()
    own = gradients.float64_copy(model)
    grads = gradients.input_and_state_gradients(own, x, y)["states"]
    for layer, trace in zip(grads, lstm_gate_trace(own, x.double())):
        dh, dc = (g.numpy() for g in layer)
        carried = np.zeros_like(dc)
        carried[:, :-1] = dc[:, 1:] * trace["f"][:, 1:]
        np.testing.assert_allclose(dc, dh * trace["o"] * (1 - np.tanh(trace["c"]) ** 2) + carried, rtol=1e-8, atol=1e-15)


def broken_cell(kind: str):
    """A plausible mistake in each unroll: the GRU's b_hn outside r, the LSTM's gates read in nn.LSTM's order
    i, f, g, o instead of the sheet's i, f, o, g, the RNN without its second bias."""
    right = getattr(gradients, f"_{kind}_cell")  # before the test replaces it
    if kind == "gru":
        def cell(w_ih, w_hh, b_ih, b_hh):
            moved = torch.zeros_like(b_hh)
            moved[2 * w_hh.shape[1]:] = b_hh[2 * w_hh.shape[1]:]
            return right(w_ih, w_hh, b_ih + moved, b_hh - moved)
    elif kind == "lstm":
        def cell(Wx, Wh, b):
            H = Wh.shape[0]
            swap = lambda w: torch.cat([w[..., k * H:(k + 1) * H] for k in (0, 1, 3, 2)], dim=-1)
            return right(swap(Wx), swap(Wh), swap(b))
    else:
        def cell(w_ih, w_hh, b_ih, b_hh, activation):
            return right(w_ih, w_hh, b_ih, 0 * b_hh, activation)
    return cell


@pytest.mark.parametrize("kind", ("rnn", "gru", "lstm"))
def test_the_guard_fires_on_a_wrong_unroll(kind, monkeypatch):
    model = tiny_model(kind, 2)
    x, y = tiny_batch()
    monkeypatch.setattr(gradients, f"_{kind}_cell", broken_cell(kind))
    with pytest.raises(gradients.UnrollMismatch, match="differs from the model's own"):
        gradients.step_gradients(model, x, y)


def test_decay_is_positive_when_the_gradient_vanishes_and_says_so_at_zero():
    assert gradients.decay([1e-8, 1e-4, 1.0]) == pytest.approx(8.0)
    assert gradients.decay([1.0, 0.1]) == pytest.approx(-1.0)
    assert gradients.decay([0.0, 1.0]) == math.inf and math.isnan(gradients.decay([0.0, 0.0]))


# --- the weights a run started from --------------------------------------------------------------------


@pytest.mark.parametrize("model, forget_bias, steps", [("rnn", 0.0, 28), ("lstm", 1.0, 56)])
def test_rebuilt_starting_weights_are_the_weights_before_the_first_step(model, forget_bias, steps, tmp_path,
                                                                         monkeypatch, mnist_dir):
    from rnnlab import lab

    seen = {}
    real_fit = lab.fit

    def fit_seeing_the_start(train_model, *args, **kwargs):
        seen.update({k: v.detach().clone() for k, v in train_model.state_dict().items()})
        return real_fit(train_model, *args, **kwargs)

    monkeypatch.setattr(lab, "fit", fit_seeing_the_start)
    config = Config(model=model, forget_bias=forget_bias, steps=steps, hidden_size=8, train_limit=200, test_limit=100,
                    epochs=1, threads=1, data_dir=str(mnist_dir))
    result = lab.train(config, tmp_path / "run", log=lambda _: None, quiet=True)

    rng = torch.get_rng_state(), np.random.get_state()[1].copy()
    rebuilt = gradients.starting_model(read_run_config(tmp_path / "run")[0]).state_dict()
    assert torch.equal(torch.get_rng_state(), rng[0]) and np.array_equal(np.random.get_state()[1], rng[1])
    assert seen.keys() == rebuilt.keys()
    assert all(torch.equal(seen[k], rebuilt[k]) for k in seen)  # bit for bit
    trained = result.model.state_dict()
    assert not all(torch.equal(seen[k], trained[k]) for k in seen)  # it saw the start, not the end


def test_numpy_backend_start_is_rebuilt_too(tmp_path, monkeypatch, mnist_dir):
    """--backend numpy starts from NumPy's own seeded init: what its optimizer is first handed is rebuilt."""
    from types import SimpleNamespace

    from rnnlab import lab
    from rnnlab.training import numpy_fit

    seen = {}
    real_adam = numpy_fit.Adam

    def adam_seeing_the_start(params, **kwargs):
        seen.update({k: v.copy() for k, v in params.items()})
        return real_adam(params, **kwargs)

    monkeypatch.setattr(numpy_fit, "Adam", adam_seeing_the_start)
    config = Config(backend="numpy", model="lstm", forget_bias=1.0, hidden_size=8, train_limit=200, test_limit=100,
                    epochs=1, threads=1, data_dir=str(mnist_dir))
    lab.train(config, tmp_path / "run", log=lambda _: None, quiet=True)
    start = numpy_fit.numpy_to_state_dict(SimpleNamespace(params=seen, num_layers=2))
    rebuilt = gradients.starting_model(read_run_config(tmp_path / "run")[0]).state_dict()
    assert start.keys() == rebuilt.keys() and all(torch.equal(start[k], rebuilt[k]) for k in start)


# --- the command ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_dir):
    """Three tiny finished runs: rnn and lstm at 28 steps, rnn at 112 steps."""
    root = tmp_path_factory.mktemp("gradient-runs")
    found = {}
    for key, model, extra in (("rnn", "rnn", []), ("lstm", "lstm", []), ("rnn112", "rnn", ["--steps", "112"])):
        found[key] = root / key
        argv = ["train", "--model", model, "--out", found[key], *TINY, "--data-dir", mnist_dir, *extra]
        assert exit_code(argv) == 0
    return found


def test_gradients_writes_every_curve_and_the_plot(runs, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, stderr = run(capsys, "gradients", runs["rnn"], runs["lstm"], runs["rnn112"], "--out", out)
    assert code == 0, stderr
    assert (out / "gradients.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    document = json.loads((out / "gradients.json").read_text())
    entries = {entry["run_dir"]: entry for entry in document["runs"]}
    for key, model, steps in (("rnn", "rnn", 28), ("lstm", "lstm", 28), ("rnn112", "rnn", 112)):
        entry = entries[str(runs[key])]
        assert (entry["model"], entry["steps"], entry["images"], entry["seed"]) == (model, steps, 256, 0)
        for phase in ("initial", "trained"):
            curves = entry[phase]
            assert len(curves["x"]) == steps and all(v > 0 for v in curves["x"])
            assert [len(layer) for layer in curves["h"]] == [steps] * entry["num_layers"]
            assert ("c" in curves) == (model == "lstm")
            assert curves["unroll_error"] <= 1e-6
    assert entries[str(runs["rnn112"])]["initial"]["decay"]["x"] > 0  # the untrained RNN's gradient vanishes
    lines = stdout.strip().splitlines()
    assert len(lines) == 4 and all("decades" in line for line in lines[:3])
    assert lines[-1] == f"gradients: {out / 'gradients.json'}, {out / 'gradients.png'}"


def test_gradients_of_one_run_go_into_its_folder(runs, capsys):
    code, stdout, stderr = run(capsys, "gradients", runs["lstm"], "--images", "5")
    assert code == 0, stderr
    entry = json.loads((runs["lstm"] / "gradients.json").read_text())["runs"][0]
    assert entry["images"] == 5 and len(entry["trained"]["c"]) == 2
    assert (runs["lstm"] / "gradients.png").is_file()


def test_bad_input_is_one_line_and_leaves_nothing(runs, tmp_path, capsys, monkeypatch):
    not_a_run = tmp_path / "not-a-run"
    not_a_run.mkdir()
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    for name in ("config.json", "checkpoint.pt"):
        shutil.copy(runs["rnn"] / name, unfinished / name)
    out = tmp_path / "out"
    cases = [([not_a_run], "not an rnnlab run folder"), ([unfinished], "has not finished"),
             ([runs["rnn"], "--images", "0"], "from 1 to"), ([runs["rnn"], "--images", "301"], "give 1 to 300"),
             ([runs["rnn"], ""], "RUN_DIR is empty")]
    for args, words in cases:
        code, stdout, stderr = run(capsys, "gradients", *args, "--out", out)
        assert code == 2 and stderr.startswith("rnnlab: error:") and stderr.count("\n") == 1, (args, stderr)
        assert words in stderr, (args, stderr)
        assert not out.exists()
    code, _, _ = run(capsys, "gradients", unfinished)
    assert code == 2 and sorted(p.name for p in unfinished.iterdir()) == ["checkpoint.pt", "config.json"]

    from rnnlab.report import gradients_command

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gradients_command, "write_json", disk_full)  # the picture is written, then the JSON fails
    code, _, stderr = run(capsys, "gradients", runs["rnn"], "--images", "3", "--out", out)
    assert code == 2 and "No space left on device" in stderr and not out.exists()


def test_benchmark_script_times_the_command(runs, tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gradients.py"
    result = subprocess.run([sys.executable, str(script), runs["rnn"], runs["lstm"], "--images", "8", "--repeats", "1",
                             "--threads", "1", "--out", tmp_path], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "rnnlab gradients, 2 runs, 8 images: median" in result.stdout and "load average" in result.stdout
    assert (tmp_path / "gradients.json").is_file()
