"""The NumPy captioning layers and CS231n's CaptioningRNN: published values, gradients, sampling, learning.

Gradients are checked in float64 against central differences (step 1e-5): the relative error of each
gradient array, ||a - b|| / (||a|| + ||b||), must be ≤ 1e-7. Why the whole array and not CS231n's
largest entry-wise |a - b| / (|a| + |b|): a difference quotient carries a rounding error of about
1e-16·|loss| / h ≈ 1e-11 whatever the entry, so an entry of 1e-7 (the LSTM's Wx has some) would show
a relative error of 1e-4 with a correct gradient. The whole-array error is not blind to one wrong entry
either: any entry off by more than 1e-7 of the array's norm fails it.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.models.numpy_captioning import CaptioningRNN
from rnnlab.models.numpy_layers import (temporal_affine_backward, temporal_affine_forward, temporal_softmax_loss,
                                        word_embedding_backward, word_embedding_forward)

TOLERANCE = 1e-7


def rel_error(x, y) -> float:
    """||x - y|| / (||x|| + ||y||) over the whole array (0 when both are 0)."""
    scale = np.linalg.norm(x) + np.linalg.norm(y)
    return float(np.linalg.norm(x - y) / scale) if scale > 0 else 0.0


def numerical_gradient_array(f, x, dout, h=1e-5):
    """d(sum(f(x) * dout))/dx by central differences, one entry of x at a time (x is changed in place, restored)."""
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        old = x[index]
        x[index] = old + h
        plus = np.array(f(x), copy=True)
        x[index] = old - h
        minus = np.array(f(x), copy=True)
        x[index] = old
        grad[index] = np.sum((plus - minus) * dout) / (2 * h)
    return grad


def numerical_gradient(f, x, h=1e-5):
    """Gradient of the scalar f() with respect to x by central differences."""
    return numerical_gradient_array(lambda _: f(), x, np.ones(()), h)


# ---------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------


def test_word_embedding_forward_matches_cs231n():
    N, T, V, D = 2, 4, 5, 3
    x = np.asarray([[0, 3, 1, 2], [2, 1, 0, 3]])
    W = np.linspace(0, 1, num=V * D).reshape(V, D)
    out, _ = word_embedding_forward(x, W)
    expected = np.asarray([
        [[0.0, 0.07142857, 0.14285714], [0.64285714, 0.71428571, 0.78571429],
         [0.21428571, 0.28571429, 0.35714286], [0.42857143, 0.5, 0.57142857]],
        [[0.42857143, 0.5, 0.57142857], [0.21428571, 0.28571429, 0.35714286],
         [0.0, 0.07142857, 0.14285714], [0.64285714, 0.71428571, 0.78571429]]])
    assert out.shape == (N, T, D)
    assert rel_error(out, expected) < 1e-7


def test_word_embedding_backward_gradient():
    rng = np.random.default_rng(0)
    N, T, V, D = 50, 3, 5, 6
    x = rng.integers(V, size=(N, T))  # 150 indices over 5 words: every word repeats
    W = rng.standard_normal((V, D))
    out, cache = word_embedding_forward(x, W)
    dout = rng.standard_normal(out.shape)
    dW = word_embedding_backward(dout, cache)
    dW_num = numerical_gradient_array(lambda W: word_embedding_forward(x, W)[0], W, dout)
    assert dW.dtype == np.float64 and rel_error(dW, dW_num) < TOLERANCE


def test_temporal_affine_gradients():
    rng = np.random.default_rng(1)
    N, T, D, M = 2, 3, 4, 5
    x, w, b = rng.standard_normal((N, T, D)), rng.standard_normal((D, M)), rng.standard_normal(M)
    out, cache = temporal_affine_forward(x, w, b)
    assert out.shape == (N, T, M)
    np.testing.assert_allclose(out[1, 2], x[1, 2] @ w + b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = temporal_affine_backward(dout, cache)
    assert rel_error(dx, numerical_gradient_array(lambda x: temporal_affine_forward(x, w, b)[0], x, dout)) < TOLERANCE
    assert rel_error(dw, numerical_gradient_array(lambda w: temporal_affine_forward(x, w, b)[0], w, dout)) < TOLERANCE
    assert rel_error(db, numerical_gradient_array(lambda b: temporal_affine_forward(x, w, b)[0], b, dout)) < TOLERANCE


@pytest.mark.parametrize("N,T,V,p,expected", [(100, 1, 10, 1.0, 2.3), (100, 10, 10, 1.0, 23.0),
                                              (5000, 10, 10, 0.1, 2.3)])
def test_temporal_softmax_loss_sanity(N, T, V, p, expected):
    """CS231n's check: small random scores give log(V) per unmasked step, summed over time."""
    rng = np.random.default_rng(2)
    x = 0.001 * rng.standard_normal((N, T, V))
    y = rng.integers(V, size=(N, T))
    mask = rng.random((N, T)) <= p
    loss, _ = temporal_softmax_loss(x, y, mask)
    assert loss == pytest.approx(expected, abs=0.1)


def test_temporal_softmax_loss_gradient_and_mask():
    rng = np.random.default_rng(3)
    N, T, V = 7, 8, 9
    x = rng.standard_normal((N, T, V))
    y = rng.integers(V, size=(N, T))
    mask = rng.random((N, T)) > 0.5
    loss, dx = temporal_softmax_loss(x, y, mask)
    dx_num = numerical_gradient(lambda: temporal_softmax_loss(x, y, mask)[0], x)
    assert rel_error(dx, dx_num) < TOLERANCE
    assert not dx[~mask].any()  # masked steps get no gradient
    x[~mask] += 100.0  # and their scores do not change the loss
    assert temporal_softmax_loss(x, y, mask)[0] == pytest.approx(loss, rel=1e-12)


# ---------------------------------------------------------------------------------------------------
# CaptioningRNN
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell_type,low,high,expected", [("rnn", -1.5, 0.3, 9.83235591003),
                                                         ("lstm", -0.5, 1.7, 9.82445935443)])
def test_captioning_loss_matches_cs231n(cell_type, low, high, expected):
    """The assignment's own check: all weights set to a linspace, the published loss to 1e-10."""
    N, D, W, H, T = 10, 20, 30, 40, 13
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    V = len(word_to_idx)
    model = CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type,
                          dtype=np.float64)
    assert set(model.params) == {"W_embed", "W_proj", "b_proj", "Wx", "Wh", "b", "W_vocab", "b_vocab"}
    for k, v in model.params.items():
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)
    features = np.linspace(low, high, num=N * D).reshape(N, D)
    captions = (np.arange(N * T) % V).reshape(N, T)
    loss, grads = model.loss(features, captions)
    assert abs(loss - expected) < 1e-10
    assert all(grads[k].shape == v.shape for k, v in model.params.items())


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_captioning_loss_gradients(cell_type):
    """Every parameter's gradient against central differences (the assignment's set-up, float64)."""
    np.random.seed(231)
    batch_size, timesteps, input_dim, wordvec_dim, hidden_dim = 2, 3, 4, 5, 6
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    captions = np.random.randint(len(word_to_idx), size=(batch_size, timesteps))
    features = np.random.randn(batch_size, input_dim)
    model = CaptioningRNN(word_to_idx, input_dim=input_dim, wordvec_dim=wordvec_dim, hidden_dim=hidden_dim,
                          cell_type=cell_type, dtype=np.float64)
    loss, grads = model.loss(features, captions)
    for name, param in model.params.items():
        numeric = numerical_gradient(lambda: model.loss(features, captions)[0], param)
        assert rel_error(numeric, grads[name]) < TOLERANCE, name


def digit_words():
    words = ["<NULL>", "<START>", "<END>", "<UNK>", "zero", "one", "two", "three", "four"]
    return {w: i for i, w in enumerate(words)}


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_sample_stops_at_end_and_pads_with_null(cell_type):
    word_to_idx = digit_words()
    model = CaptioningRNN(word_to_idx, input_dim=3, wordvec_dim=4, hidden_dim=5, cell_type=cell_type,
                          dtype=np.float64, seed=0)
    end = word_to_idx["<END>"]
    # Rig the output layer: whatever the state, <END> wins from the third step on. Before that the
    # scores follow the hidden state; a large bias on "two" makes the first word "two".
    model.params["W_vocab"][:] = 0.0
    model.params["b_vocab"][:] = 0.0
    model.params["b_vocab"][word_to_idx["two"]] = 10.0
    features = np.random.default_rng(0).standard_normal((4, 3))
    captions = model.sample(features, max_length=6)
    assert captions.shape == (4, 6) and captions.dtype.kind == "i"
    assert (captions == word_to_idx["two"]).all()  # no <END> ever scores best: all steps are words

    model.params["b_vocab"][end] = 20.0
    captions = model.sample(features, max_length=6)
    assert (captions[:, 0] == end).all() and (captions[:, 1:] == word_to_idx["<NULL>"]).all()


def test_sample_pads_each_caption_after_its_own_end():
    """Captions of different lengths in one batch: each stops at its own <END>, <NULL> after it.

    A rigged vanilla RNN: h_t = tanh(2 h_{t-1}) in its first unit, h0 = the first feature; <END> scores
    10·h_t[0] and "one" a constant 1. A zero feature never ends, a large one ends at once, a small one
    grows (0.02, 0.04, 0.08, 0.16) and ends at the fourth word.
    """
    word_to_idx = digit_words()
    model = CaptioningRNN(word_to_idx, input_dim=2, wordvec_dim=3, hidden_dim=4, cell_type="rnn",
                          dtype=np.float64, seed=1)
    for name in model.params:
        model.params[name][:] = 0.0
    end, one, null = word_to_idx["<END>"], word_to_idx["one"], word_to_idx["<NULL>"]
    model.params["W_proj"][0, 0] = 1.0
    model.params["Wh"][0, 0] = 2.0
    model.params["W_vocab"][0, end] = 10.0
    model.params["b_vocab"][one] = 1.0
    captions = model.sample(np.array([[0.0, 0.0], [1.0, 0.0], [0.01, 0.0]]), max_length=6)
    assert captions.tolist() == [[one] * 6, [end] + [null] * 5, [one, one, one, end, null, null]]


@pytest.mark.parametrize("cell_type", ["rnn", "lstm"])
def test_captioning_rnn_overfits_a_small_set(cell_type):
    """The course's 'overfit a small data set' check, on made-up features: the loss falls near zero and
    greedy sampling then writes the training captions back."""
    from rnnlab.models.numpy_lstm import Adam

    rng = np.random.default_rng(4)
    word_to_idx = digit_words()
    N, D = 8, 6
    features = rng.standard_normal((N, D))
    lengths = rng.integers(1, 4, size=N)
    captions = np.zeros((N, 5), dtype=np.int64)
    for i, n in enumerate(lengths):
        captions[i, : n + 2] = [1, *rng.integers(4, 9, size=n), 2]
    model = CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=16, hidden_dim=32, cell_type=cell_type,
                          dtype=np.float64, seed=0)
    optimizer = Adam(model.params, lr=1e-2)
    first = model.loss(features, captions)[0]
    for _ in range(300):
        loss, grads = model.loss(features, captions)
        optimizer.step(grads)
    assert loss < 0.05 * first
    np.testing.assert_array_equal(model.sample(features, max_length=4), captions[:, 1:])
