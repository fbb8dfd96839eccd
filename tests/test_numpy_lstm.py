"""The NumPy LSTM (CS231n interface): gradients by centred finite differences, the classifier, Adam,
the hand-over to the torch model, and training on real MNIST."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch

from rnnlab.config import Config
from rnnlab.models.numpy_lstm import (
    Adam,
    NumpyLSTMClassifier,
    lstm_backward,
    lstm_forward,
    lstm_step_backward,
    lstm_step_forward,
    sigmoid,
    softmax_cross_entropy,
)
from rnnlab.models.registry import build_model
from rnnlab.training.numpy_fit import fit_numpy, numpy_to_state_dict

TOL = 1e-7


pytestmark = pytest.mark.usefixtures("one_thread")


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """CS231n's relative error: max |x - y| / max(1e-8, |x| + |y|)."""
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient_array(f, x: np.ndarray, df: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Centred finite differences of sum(f(x) * df) for every entry of x (x is restored afterwards).

    The five-point centred stencil (f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)) / 12h: its error is
    O(h^4) instead of O(h^2), which is what a 1e-7 relative tolerance on every entry needs.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        values = {}
        for k in (-2, -1, 1, 2):
            x[ix] = old + k * h
            values[k] = np.sum(np.array(f(x), copy=True) * df)
        x[ix] = old
        grad[ix] = (values[-2] - 8 * values[-1] + 8 * values[1] - values[2]) / (12 * h)
        it.iternext()
    return grad


def random_lstm(rng, N, T, D, H, scale=0.4):
    return (rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), scale * rng.standard_normal((D, 4 * H)),
            scale * rng.standard_normal((H, 4 * H)), scale * rng.standard_normal(4 * H))


def test_sigmoid_is_stable_and_exact():
    x = np.array([-1000.0, -40.0, -3.0, 0.0, 2.5, 40.0, 1000.0, -np.inf, np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings
        s = sigmoid(x)
    assert np.all(np.isfinite(s))
    assert s[0] == 0.0 and s[-3] == 1.0 and s[3] == 0.5 and s[-2] == 0.0 and s[-1] == 1.0
    moderate = x[1:6]
    np.testing.assert_allclose(sigmoid(moderate), 1.0 / (1.0 + np.exp(-moderate)), rtol=1e-12, atol=1e-15)
    assert sigmoid(np.zeros(3, np.float32)).dtype == np.float32


def test_step_forward_matches_the_equations():
    rng = np.random.default_rng(1)
    N, D, H = 3, 4, 5
    x, prev_h, prev_c = rng.standard_normal((N, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)
    next_h, next_c, _ = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    a = x @ Wx + prev_h @ Wh + b
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    i, f, o, g = sig(a[:, :H]), sig(a[:, H : 2 * H]), sig(a[:, 2 * H : 3 * H]), np.tanh(a[:, 3 * H :])
    c = f * prev_c + i * g
    np.testing.assert_allclose(next_c, c, rtol=1e-12)
    np.testing.assert_allclose(next_h, o * np.tanh(c), rtol=1e-12)
    assert next_h.shape == next_c.shape == (N, H)


def test_step_backward_numerical_gradients():
    rng = np.random.default_rng(2)
    N, D, H = 4, 5, 6
    x, prev_h, prev_c = rng.standard_normal((N, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    Wx, Wh, b = 0.4 * rng.standard_normal((D, 4 * H)), 0.4 * rng.standard_normal((H, 4 * H)), 0.4 * rng.standard_normal(4 * H)
    dnext_h, dnext_c = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    _, _, cache = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    grads = dict(zip(["x", "prev_h", "prev_c", "Wx", "Wh", "b"], lstm_step_backward(dnext_h, dnext_c, cache)))
    args = {"x": x, "prev_h": prev_h, "prev_c": prev_c, "Wx": Wx, "Wh": Wh, "b": b}

    for name, value in args.items():
        def loss_terms(v, name=name):
            kw = dict(args, **{name: v})
            h, c, _ = lstm_step_forward(kw["x"], kw["prev_h"], kw["prev_c"], kw["Wx"], kw["Wh"], kw["b"])
            return np.concatenate([h, c])

        num = eval_numerical_gradient_array(loss_terms, value.copy(), np.concatenate([dnext_h, dnext_c]))
        assert grads[name].shape == value.shape
        assert rel_error(num, grads[name]) <= TOL, name


def test_sequence_backward_numerical_gradients():
    rng = np.random.default_rng(3)
    N, T, D, H = 2, 4, 3, 5
    x, h0, Wx, Wh, b = random_lstm(rng, N, T, D, H)
    dh = rng.standard_normal((N, T, H))
    h, cache = lstm_forward(x, h0, Wx, Wh, b)
    assert h.shape == (N, T, H)
    dx, dh0, dWx, dWh, db = lstm_backward(dh, cache)
    args = {"x": x, "h0": h0, "Wx": Wx, "Wh": Wh, "b": b}
    analytic = {"x": dx, "h0": dh0, "Wx": dWx, "Wh": dWh, "b": db}
    for name, value in args.items():
        def f(v, name=name):
            kw = dict(args, **{name: v})
            return lstm_forward(kw["x"], kw["h0"], kw["Wx"], kw["Wh"], kw["b"])[0]

        num = eval_numerical_gradient_array(f, value.copy(), dh)
        assert analytic[name].shape == value.shape
        assert rel_error(num, analytic[name]) <= TOL, name


def test_sequence_final_cell_state_is_the_last_step_cache():
    rng = np.random.default_rng(4)
    N, T, D, H = 2, 3, 3, 4
    x, h0, Wx, Wh, b = random_lstm(rng, N, T, D, H)
    h, cache = lstm_forward(x, h0, Wx, Wh, b)
    prev_h, prev_c = h0, np.zeros((N, H))
    for t in range(T):
        prev_h, prev_c, _ = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
    cells = cache[-1]
    assert len(cells) == T
    np.testing.assert_allclose(cells[-1][5], prev_c, rtol=1e-12, atol=1e-14)  # next_c of the last step = c_T
    np.testing.assert_allclose(h[:, -1], prev_h, rtol=1e-12, atol=1e-14)


def test_sequence_equals_step_by_step_and_does_not_touch_dh():
    rng = np.random.default_rng(5)
    N, T, D, H = 3, 5, 4, 6
    x, h0, Wx, Wh, b = random_lstm(rng, N, T, D, H)
    h, cache = lstm_forward(x, h0, Wx, Wh, b)
    prev_h, prev_c, caches = h0, np.zeros((N, H)), []
    for t in range(T):
        prev_h, prev_c, step_cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        caches.append(step_cache)
        np.testing.assert_allclose(h[:, t], prev_h, rtol=1e-12, atol=1e-14)
    dh = rng.standard_normal((N, T, H))
    dh_before = dh.copy()
    dx, dh0, dWx, dWh, db = lstm_backward(dh, cache)
    np.testing.assert_array_equal(dh, dh_before)
    dnext_h, dnext_c = np.zeros((N, H)), np.zeros((N, H))
    sums = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
    for t in reversed(range(T)):
        dxt, dnext_h, dnext_c, gWx, gWh, gb = lstm_step_backward(dh[:, t] + dnext_h, dnext_c, caches[t])
        np.testing.assert_allclose(dx[:, t], dxt, rtol=1e-10, atol=1e-12)
        for s, g in zip(sums, (gWx, gWh, gb)):
            s += g
    for s, g in zip(sums, (dWx, dWh, db)):
        np.testing.assert_allclose(g, s, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh0, dnext_h, rtol=1e-10, atol=1e-12)


def test_float32_stays_float32():
    rng = np.random.default_rng(6)
    x, h0, Wx, Wh, b = (a.astype(np.float32) for a in random_lstm(rng, 2, 3, 4, 5))
    h, cache = lstm_forward(x, h0, Wx, Wh, b)
    grads = lstm_backward(np.ones_like(h), cache)
    assert h.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    h64, _ = lstm_forward(*(a.astype(np.float64) for a in (x, h0, Wx, Wh, b)))
    np.testing.assert_allclose(h, h64, atol=1e-6)


def test_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(7)
    logits, y = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    loss, dlogits = softmax_cross_entropy(logits, y)
    expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y)).item()
    assert abs(loss - expected) < 1e-12
    num = eval_numerical_gradient_array(lambda v: np.array(softmax_cross_entropy(v, y)[0]), logits.copy(), np.array(1.0))
    assert rel_error(num, dlogits) <= TOL


def test_classifier_gradients_numerically():
    rng = np.random.default_rng(8)
    clf = NumpyLSTMClassifier(input_size=3, hidden_size=4, num_layers=2, num_classes=3, seed=1, dtype=np.float64)
    x, y = rng.standard_normal((2, 3, 3)), rng.integers(0, 3, 2)
    _, grads = clf.loss_and_grads(x, y)
    for name, p in clf.params.items():
        def f(v, name=name):
            saved = clf.params[name]
            clf.params[name] = v
            try:
                return np.array(clf.loss_and_grads(x, y)[0])
            finally:
                clf.params[name] = saved

        # a scalar loss of order 1 and gradients down to 1e-5: a wider step keeps round-off below 1e-7
        num = eval_numerical_gradient_array(f, p.copy(), np.array(1.0), h=1e-3)
        assert rel_error(num, grads[name]) <= TOL, name


def test_classifier_init_is_seeded_and_pytorch_like():
    a, b, c = NumpyLSTMClassifier(seed=3), NumpyLSTMClassifier(seed=3), NumpyLSTMClassifier(seed=4)
    assert set(a.params) == {"Wx0", "Wh0", "b0", "Wx1", "Wh1", "b1", "W_fc", "b_fc"}
    assert a.params["Wx0"].shape == (28, 512) and a.params["Wh1"].shape == (128, 512) and a.params["W_fc"].shape == (128, 10)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["Wh0"], c.params["Wh0"])
    bound = 1 / np.sqrt(128)
    for p in a.params.values():
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
    assert np.abs(a.params["Wh0"]).max() > 0.9 * bound


def test_adam_matches_torch():
    rng = np.random.default_rng(9)
    params = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = Adam(params, lr=0.01)
    topt = torch.optim.Adam(tparams.values(), lr=0.01)
    for _ in range(5):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        opt.step(grads)
        for k, p in tparams.items():
            p.grad = torch.from_numpy(grads[k])
        topt.step()
    for k in params:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-10, atol=1e-12)


def test_state_dict_gives_the_same_logits_in_torch():
    clf = NumpyLSTMClassifier(hidden_size=16, num_layers=2, seed=5)
    model = build_model("lstm", 28, 16, 2)
    model.load_state_dict(numpy_to_state_dict(clf))  # strict: every key, every shape
    x = np.random.default_rng(10).standard_normal((7, 28, 28)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, clf.logits(x), atol=1e-5)
    assert np.array_equal(clf.predict(x), logits.argmax(1))


def first_images(dataset, n: int):
    """`dataset` with only its first `n` training images (what `load_data` does for --train-limit)."""
    from dataclasses import replace

    from rnnlab.data import Split

    return replace(dataset, train=Split(dataset.train.images[:n], dataset.train.labels[:n]))


def test_fit_numpy_learns_a_small_subset(mnist):
    config = Config(backend="numpy", epochs=2, hidden_size=32, batch_size=64, lr=3e-3, seed=1)
    mnist = first_images(mnist, 640)
    lines = []
    clf, epochs = fit_numpy(config, mnist, log=lines.append)
    assert [e["epoch"] for e in epochs] == [1, 2] and len(lines) == 2
    assert {"epoch", "train_loss", "train_accuracy", "seconds"} <= set(epochs[0])
    assert epochs[0]["gflops"] > 0
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"] < np.log(10) + 0.1
    assert 0.0 <= epochs[0]["train_accuracy"] <= 1.0 and epochs[0]["seconds"] > 0
    # the same seed gives the same run
    clf2, epochs2 = fit_numpy(config, mnist, log=lambda _: None)
    assert epochs2[1]["train_loss"] == epochs[1]["train_loss"]
    assert np.array_equal(clf.params["Wh1"], clf2.params["Wh1"])


def test_numpy_training_learns_real_mnist(mnist, mnist_dir, tmp_path):
    """The proof that the backward pass trains: `rnnlab train --model lstm --backend numpy` with the sheet's
    settings (2 layers, 128 hidden, Adam lr 1e-3, batch 64), 2 epochs of 10,000 real digits, then the full
    test set: 89.98% when written (chance is 10%), about 25 s here. Two epochs of all 60,000 digits give
    97.93%; that run is a `make results` figure (docs/results.md).
    """
    import json

    from rnnlab.cli import main
    from rnnlab.data import to_sequences
    from rnnlab.runs import load_model

    out = tmp_path / "numpy"
    started = time.perf_counter()
    assert main(["train", "--model", "lstm", "--backend", "numpy", "--epochs", "2", "--train-limit", "10000",
                 "--data-dir", str(mnist_dir), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    print(f"numpy LSTM: test accuracy {metrics['test_accuracy']:.4f}, {time.perf_counter() - started:.1f} s")
    assert metrics["test_accuracy"] >= 0.85
    assert metrics["epochs"][1]["train_loss"] < 0.5 * metrics["epochs"][0]["train_loss"]
    # The saved model is an nn.LSTM classifier holding the NumPy weights; NumPy and torch answer alike.
    model, config = load_model(out)
    assert (config.backend, config.hidden_size, config.num_layers, config.lr) == ("numpy", 128, 2, 1e-3)
    clf, _ = fit_numpy(Config(backend="numpy", epochs=1, hidden_size=16), first_images(mnist, 64), log=lambda _: None)
    small = build_model("lstm", 28, 16, 2)
    small.load_state_dict(numpy_to_state_dict(clf))
    with torch.no_grad():
        torch_predictions = small(to_sequences(mnist.test.images[:2000])).argmax(1)
    numpy_predictions = torch.from_numpy(clf.predict(to_sequences(mnist.test.images[:2000]).numpy()))
    assert (torch_predictions == numpy_predictions).float().mean().item() >= 0.999
