"""The NumPy vanilla RNN (CS231n interface): the forward against its equation, every gradient against
centred finite differences in float64 (relative error ≤ 1e-7), and the sequence against the step."""

from __future__ import annotations

import numpy as np
import pytest
from test_numpy_lstm import TOL, eval_numerical_gradient_array, rel_error

from rnnlab.models.numpy_rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward

pytestmark = pytest.mark.usefixtures("one_thread")


def random_rnn(rng, N, T, D, H, scale=0.4):
    return (rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), scale * rng.standard_normal((D, H)),
            scale * rng.standard_normal((H, H)), scale * rng.standard_normal(H))


def test_step_forward_matches_the_equation():
    rng = np.random.default_rng(11)
    x, prev_h, Wx, Wh, b = random_rnn(rng, 3, 1, 4, 5)
    next_h, cache = rnn_step_forward(x[:, 0], prev_h, Wx, Wh, b)
    assert next_h.shape == (3, 5)
    np.testing.assert_allclose(next_h, np.tanh(x[:, 0] @ Wx + prev_h @ Wh + b), rtol=1e-14)
    assert len(cache) == 5


def test_step_backward_numerical_gradients():
    rng = np.random.default_rng(12)
    N, D, H = 4, 5, 6
    x, prev_h, Wx, Wh, b = random_rnn(rng, N, 1, D, H)
    args = {"x": x[:, 0], "prev_h": prev_h, "Wx": Wx, "Wh": Wh, "b": b}
    dnext_h = rng.standard_normal((N, H))
    _, cache = rnn_step_forward(*args.values())
    analytic = dict(zip(args, rnn_step_backward(dnext_h, cache)))
    for name, value in args.items():
        def f(v, name=name):
            return rnn_step_forward(*dict(args, **{name: v}).values())[0]

        num = eval_numerical_gradient_array(f, value.copy(), dnext_h)
        assert analytic[name].shape == value.shape
        assert rel_error(num, analytic[name]) <= TOL, name


def test_sequence_backward_numerical_gradients():
    rng = np.random.default_rng(13)
    N, T, D, H = 2, 4, 3, 5
    x, h0, Wx, Wh, b = random_rnn(rng, N, T, D, H)
    args = {"x": x, "h0": h0, "Wx": Wx, "Wh": Wh, "b": b}
    dh = rng.standard_normal((N, T, H))
    h, cache = rnn_forward(*args.values())
    assert h.shape == (N, T, H) and len(cache) == T
    analytic = dict(zip(args, rnn_backward(dh, cache)))
    for name, value in args.items():
        def f(v, name=name):
            return rnn_forward(*dict(args, **{name: v}).values())[0]

        num = eval_numerical_gradient_array(f, value.copy(), dh)
        assert analytic[name].shape == value.shape
        assert rel_error(num, analytic[name]) <= TOL, name


def test_sequence_is_the_step_repeated_and_keeps_dh():
    rng = np.random.default_rng(14)
    N, T, D, H = 3, 5, 4, 6
    x, h0, Wx, Wh, b = random_rnn(rng, N, T, D, H)
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    prev_h = h0
    for t in range(T):
        prev_h, _ = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        np.testing.assert_array_equal(h[:, t], prev_h)
    dh = rng.standard_normal((N, T, H))
    before = dh.copy()
    rnn_backward(dh, cache)
    np.testing.assert_array_equal(dh, before)


def test_float32_stays_float32():
    rng = np.random.default_rng(15)
    x, h0, Wx, Wh, b = (a.astype(np.float32) for a in random_rnn(rng, 2, 3, 4, 5))
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    grads = rnn_backward(np.ones_like(h), cache)
    assert h.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
