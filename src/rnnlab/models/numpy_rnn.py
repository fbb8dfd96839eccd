"""The vanilla RNN in plain NumPy: CS231n assignment 3's `rnn_layers.py` interface, tanh nonlinearity.

Shapes (CS231n notation): N batch, T time steps, D input features, H hidden units.

    Wx (D, H), Wh (H, H), b (H,)
    h_t = tanh(x_t Wx + h_{t-1} Wh + b)

`rnn_step_forward`/`rnn_step_backward` are one step; `rnn_forward`/`rnn_backward` run that same step
over a sequence, keeping a list of the per-step caches. Every function keeps the dtype of its inputs.
This is the reference the exercise (`rnnlab exercise`) checks a student's RNN against.
"""

from __future__ import annotations

import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One vanilla-RNN step: next_h = tanh(x Wx + prev_h Wh + b).

    Inputs: x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,).
    Returns next_h (N, H) and `cache` for `rnn_step_backward`: (x, prev_h, Wx, Wh, next_h).
    """
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    """Backward pass of one vanilla-RNN step.

    Inputs: dnext_h (N, H), the upstream gradient of next_h; `cache` from `rnn_step_forward`.
    Returns dx (N, D), dprev_h (N, H), dWx (D, H), dWh (H, H), db (H,).
    """
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1.0 - next_h * next_h)  # tanh'(a) = 1 - tanh(a)^2, (N, H)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    """Vanilla RNN over a whole sequence, starting from h0.

    Inputs: x (N, T, D), h0 (N, H), Wx (D, H), Wh (H, H), b (H,).
    Returns h (N, T, H), the hidden state of every step, and `cache` for `rnn_backward`:
    a list of T `rnn_step_forward` caches, one per step.
    """
    N, T, _ = x.shape
    H = h0.shape[1]
    h = np.empty((N, T, H), dtype=np.result_type(x, h0, Wx, Wh, b))
    prev_h, cache = h0, []
    for t in range(T):
        prev_h, step_cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        h[:, t] = prev_h
        cache.append(step_cache)
    return h, cache


def rnn_backward(dh, cache):
    """Backward pass of `rnn_forward`.

    Inputs: dh (N, T, H), upstream gradients of every hidden state (from the layer above, not through
    time); `cache` from `rnn_forward`.
    Returns dx (N, T, D), dh0 (N, H), dWx (D, H), dWh (H, H), db (H,).
    """
    N, T, H = dh.shape
    x0, _, Wx, Wh, _ = cache[0]
    D = x0.shape[1]
    dx = np.empty((N, T, D), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H, dtype=dh.dtype)
    dprev_h = np.zeros((N, H), dtype=dh.dtype)
    for t in range(T - 1, -1, -1):
        # h_t feeds the layer above (dh[:, t]) and the next step (dprev_h): its gradient is the sum.
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, cache[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db
