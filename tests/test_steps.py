"""Any sequence length from the same pictures (`--steps T`), and the LSTMs' `--forget-bias B` (issue 20).

One rule for the sequence: `--view` is the order of the 784 pixels (rows and pixels row-major, permuted
shuffled), `--steps T` cuts that order into T steps of 784/T pixels; `pixels` is one pixel a step, so it
takes 784 only. The forget bias is added to the forget gate's bias as PyTorch initialises it.
"""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch
from torch import nn

from conftest import finish, run
from rnnlab.config import STEPS, Config
from rnnlab.data import input_shape, sequence_inputs, to_sequences, view_permutation
from rnnlab.models import build_model, new_model
from test_resume import checkpoint_writes, final_state, rnnlab

TINY = ["--hidden-size", "8", "--train-limit", "300", "--test-limit", "200", "--epochs", "1", "--quiet"]
DIVISORS = "1, 2, 4, 7, 8, 14, 16, 28, 49, 56, 98, 112, 196, 392, 784"


def normalised(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) → the sheet's normalised pixels, flattened row-major: (N, 784)."""
    return ((images.float() / 255 - 0.5) / 0.5).reshape(len(images), 784)


# --- the sequence views ----------------------------------------------------------------------------------


def test_steps_cut_the_row_major_picture():
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    flat = normalised(images)
    assert STEPS == tuple(int(d) for d in DIVISORS.split(", "))
    for steps in STEPS:
        x = to_sequences(images, "rows", steps=steps)
        assert x.shape == (5, steps, 784 // steps) and x.is_contiguous()
        assert torch.equal(x, flat.reshape(5, steps, 784 // steps))
    assert torch.equal(to_sequences(images), to_sequences(images, "rows", steps=28))  # the sheet's, as before
    assert torch.equal(to_sequences(images, "pixels"), to_sequences(images, "rows", steps=784))


def test_permuted_with_steps_is_permute_then_cut():
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    perm = view_permutation(5)
    for steps in (28, 112, 784):
        x = to_sequences(images, "permuted", perm, steps=steps)
        assert torch.equal(x, normalised(images)[:, perm].reshape(4, steps, 784 // steps))
    config = Config(view="permuted", steps=28, seed=5)
    assert torch.equal(sequence_inputs(config, images), to_sequences(images, "permuted", perm, steps=28))


def test_view_and_steps_make_one_rule():
    """Without --steps each view keeps its length; --steps sets it; `pixels` is 784 only; input_shape agrees."""
    assert (Config().view, Config().steps) == ("rows", 28)
    assert Config(view="pixels").steps == 784 and Config(view="permuted").steps == 784
    assert (Config(steps=112).view, Config(steps=112).steps) == ("rows", 112)
    assert Config(view="permuted", steps=28).steps == 28
    assert input_shape("rows", 112) == (112, 7) and input_shape("permuted") == (784, 1) and input_shape("rows") == (28, 28)
    images = torch.zeros(2, 28, 28, dtype=torch.uint8)
    assert sequence_inputs(Config(steps=112), images).shape == (2, 112, 7)
    assert new_model(Config(steps=112, hidden_size=8)).recurrent.input_size == 7


def test_config_json_from_before_steps_and_forget_bias_still_loads(tmp_path, capsys, mnist_dir):
    """Older runs wrote no `steps` or `forget_bias`: they read as the view's length and PyTorch's init, and
    `evaluate` takes such a model.pt."""
    from rnnlab.runs import read_run_config
    from rnnlab.training.checkpoint import MODEL_FORMAT

    for view, steps in (("rows", 28), ("pixels", 784), ("permuted", 784)):
        old = {k: v for k, v in Config(view=view, model="rnn").to_dict().items() if k not in ("steps", "forget_bias")}
        assert Config.from_dict(old).steps == steps and Config.from_dict(old).forget_bias == 0
        run_dir = tmp_path / view
        run_dir.mkdir()
        (run_dir / "config.json").write_text(json.dumps({"run_id": "old", **old, "data_source": "mnist"}))
        assert read_run_config(run_dir)[0].steps == steps
    old = {k: v for k, v in Config(model="rnn", hidden_size=8, test_limit=200).to_dict().items()
           if k not in ("steps", "forget_bias")}
    state = new_model(Config.from_dict(old)).state_dict()
    torch.save({"format": MODEL_FORMAT, "run_id": "old", "config": old, "state_dict": state, "test_accuracy": 0.1},
               tmp_path / "rows" / "model.pt")
    code, out, err = run(capsys, "evaluate", tmp_path / "rows" / "model.pt", "--data-dir", mnist_dir)
    assert code == 0 and "200 images" in out, err


# --- bad input: one line, exit 2, nothing left -------------------------------------------------------------


@pytest.mark.parametrize("argv, says", [
    (["--steps", "27"], DIVISORS),
    (["--steps", "0"], DIVISORS),
    (["--steps", "-1"], DIVISORS),
    (["--steps", str(10**9)], DIVISORS),
    (["--view", "pixels", "--steps", "112"], "--view pixels reads one pixel a step"),
    (["--forget-bias", "nan"], "--forget-bias must be a finite number"),
    (["--forget-bias", "inf"], "--forget-bias must be a finite number"),
    (["--forget-bias=-inf"], "--forget-bias must be a finite number"),
    (["--forget-bias", "-1", "--model", "gru"], "gru has none"),
    (["--model", "rnn", "--forget-bias", "1"], "rnn has none"),
    (["--model", "gru", "--forget-bias", "0.5"], "gru has none"),
    (["--backend", "numpy", "--steps", "112"], "28 steps"),
])
def test_bad_steps_and_forget_bias_are_one_line(tmp_path, capsys, mnist_dir, argv, says):
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", *argv, *TINY, "--data-dir", mnist_dir, "--out", out)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("command", [["compare", "--models", "rnn,lstm", "--no-report", "--jobs", "1"], ["show"]])
def test_other_commands_refuse_bad_steps(tmp_path, capsys, mnist_dir, command):
    out = tmp_path / ("batch.png" if command == ["show"] else "cmp")
    code, _, err = run(capsys, *command, "--steps", "27", "--data-dir", mnist_dir, "--out", out)
    assert code == 2 and DIVISORS in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_compare_without_an_lstm_refuses_a_forget_bias(tmp_path, capsys, mnist_dir):
    out = tmp_path / "cmp"
    code, _, err = run(capsys, "compare", "--models", "rnn,gru", "--forget-bias", "1", "--data-dir", mnist_dir,
                       "--out", out)
    assert code == 2 and "none of rnn, gru has one" in err and not out.exists()


# --- the forget bias -------------------------------------------------------------------------------------


def lstm_biases(model) -> list[torch.Tensor]:
    """Each layer's total bias (4H,) in the model's own gate order (nn.LSTM: i, f, g, o; scratch: i, f, o, g)."""
    recurrent = model.recurrent
    if isinstance(recurrent, nn.LSTM):
        return [getattr(recurrent, f"bias_ih_l{k}") + getattr(recurrent, f"bias_hh_l{k}")
                for k in range(recurrent.num_layers)]
    return [layer.b for layer in recurrent.layers]


@pytest.mark.parametrize("name", ["lstm", "scratch-lstm"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bias", [1.0, 2.5, -1.0])
def test_forget_bias_moves_the_forget_slice_only(name, layers, bias):
    """The forget gate's total bias is PyTorch's seeded init + B; every other number is that init, bit for bit."""
    H = 16
    torch.manual_seed(3)
    plain = build_model(name, 7, H, layers)
    torch.manual_seed(3)
    biased = build_model(name, 7, H, layers, forget_bias=bias)
    plain_state, biased_state = plain.state_dict(), biased.state_dict()
    moved = {f"recurrent.bias_ih_l{k}" for k in range(layers)} | {f"recurrent.layers.{k}.b" for k in range(layers)}
    for key, value in plain_state.items():
        if key not in moved:
            assert torch.equal(biased_state[key], value), key
    for before, after in zip(lstm_biases(plain), lstm_biases(biased)):
        forget = slice(H, 2 * H)  # the second block in both gate orders
        assert torch.allclose(after[forget] - before[forget], torch.full((H,), bias), atol=1e-6)
        rest = torch.cat([after[:H], after[2 * H:]]), torch.cat([before[:H], before[2 * H:]])
        assert torch.equal(*rest)
        assert abs(after[forget].mean().item() - bias) < 2 / H ** 0.5  # it starts at B on average


def test_forget_bias_is_the_same_gate_in_both_lstms():
    """Converted to the scratch LSTM's layout (i, f, o, g), nn.LSTM's moved block is the scratch one's f."""
    from rnnlab.models.scratch_lstm import from_torch_lstm

    torch.manual_seed(0)
    lstm = build_model("lstm", 28, 8, 2, forget_bias=3.0)
    scratch = from_torch_lstm(lstm.recurrent)
    for layer in scratch.layers:
        assert (layer.b[8:16] > 3.0 - 2 * 2 / 8 ** 0.5).all() and (layer.b[:8].abs() < 1).all()
        assert (layer.b[16:].abs() < 1).all()


def test_default_run_starts_from_torchs_seeded_init():
    """Forget bias 0 changes nothing: a default run's first weights are those of nn.LSTM and nn.Linear seeded."""
    from rnnlab.training.distributed import seed_everything

    seed_everything(0)
    model = new_model(Config())
    torch.manual_seed(0)
    lstm, fc = nn.LSTM(28, 128, 2, batch_first=True), nn.Linear(128, 10)
    expected = {**{f"recurrent.{k}": v for k, v in lstm.state_dict().items()},
                **{f"fc.{k}": v for k, v in fc.state_dict().items()}}
    assert model.state_dict().keys() == expected.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())


def test_numpy_backend_adds_the_forget_bias_too():
    from rnnlab.training.numpy_fit import new_classifier

    plain = new_classifier(Config(backend="numpy", hidden_size=8))
    biased = new_classifier(Config(backend="numpy", hidden_size=8, forget_bias=1.0))
    for name, value in plain.params.items():
        if name.startswith("b") and name != "b_fc":
            assert np.allclose(biased.params[name][8:16] - value[8:16], 1.0)
            assert np.array_equal(np.delete(biased.params[name], range(8, 16)), np.delete(value, range(8, 16)))
        else:
            assert np.array_equal(biased.params[name], value), name


def test_compare_keeps_the_forget_bias_for_the_lstms_only():
    from rnnlab.config import model_configs

    configs = model_configs(["rnn", "gru", "lstm", "scratch-lstm"], {"forget_bias": 1.0})
    assert [c.forget_bias for c in configs.values()] == [0.0, 0.0, 1.0, 1.0]


def test_compare_rnn_and_lstm_with_a_forget_bias(tmp_path, mnist_dir):
    code, _, err = finish(rnnlab("compare", "--models", "rnn,lstm", "--forget-bias", "1", "--steps", "56",
                                 "--hidden-size", "8", "--train-limit", "128", "--test-limit", "100", "--epochs", "1",
                                 "--jobs", "1", "--threads", "1", "--no-report", "--quiet", "--data-dir", mnist_dir,
                                 "--out", tmp_path / "cmp"))
    assert code == 0, err
    saved = {m: json.loads((tmp_path / "cmp" / m / "config.json").read_text()) for m in ("rnn", "lstm")}
    assert [(saved[m]["forget_bias"], saved[m]["steps"]) for m in ("rnn", "lstm")] == [(0.0, 56), (1.0, 56)]


# --- a 112-step run, end to end ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run112(tmp_path_factory, mnist_dir):
    run_dir = tmp_path_factory.mktemp("steps") / "run112"
    code, _, err = finish(rnnlab("train", "--model", "lstm", "--steps", "112", *TINY, "--data-dir", mnist_dir,
                                 "--out", run_dir))
    assert code == 0, err
    return run_dir


def test_a_112_step_run_trains_evaluates_and_predicts(run112, mnist, tmp_path, capsys):
    from PIL import Image

    config = json.loads((run112 / "config.json").read_text())
    assert (config["view"], config["steps"], config["forget_bias"]) == ("rows", 112, 0.0)
    weights = torch.load(run112 / "model.pt", weights_only=True)["state_dict"]
    assert weights["recurrent.weight_ih_l0"].shape == (4 * 8, 7)  # 7 pixels a step
    code, out, _ = run(capsys, "evaluate", run112)
    assert code == 0 and "Test Accuracy" in out and "200 images" in out
    picture = tmp_path / "seven.png"
    Image.fromarray(mnist.test.images[0].numpy()).save(picture)
    code, out, err = run(capsys, "predict", run112, picture, "--explain", tmp_path / "why.png")
    assert code == 0, err
    assert out.startswith(f"{picture}: ") and (tmp_path / "why.png").stat().st_size > 0


def test_a_112_step_run_resumes_bit_identically_after_sigkill(tmp_path, mnist_dir):
    """Killed after its third checkpoint write (paced by the run, not the clock), then resumed: the same
    weights and metrics as the run never interrupted."""
    args = ["--model", "lstm", "--steps", "112", "--hidden-size", "8", "--dropout", "0.2", "--train-limit", "2048",
            "--test-limit", "200", "--epochs", "2", "--checkpoint-every", "4", "--seed", "3", "--threads", "1",
            "--quiet", "--data-dir", mnist_dir]
    code, _, err = finish(rnnlab("train", *args, "--out", tmp_path / "reference"))
    assert code == 0, err
    run_dir = tmp_path / "killed"
    proc = rnnlab("train", *args, "--out", run_dir)
    checkpoint_writes(run_dir, proc, 3)
    assert proc.poll() is None and not (run_dir / "model.pt").exists(), "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    code, out, err = finish(rnnlab("train", "--resume", run_dir, "--quiet"))
    assert code == 0, err
    assert "resuming at epoch" in out
    (weights, metrics), (ref_weights, ref_metrics) = final_state(run_dir), final_state(tmp_path / "reference")
    assert weights.keys() == ref_weights.keys()
    assert all(torch.equal(weights[k], ref_weights[k]) for k in weights)
    assert metrics == ref_metrics
    code, _, err = finish(rnnlab("train", "--resume", run_dir, "--steps", "28"))
    assert code == 2 and "--steps 112, not 28" in err  # resume keeps the run's own length
