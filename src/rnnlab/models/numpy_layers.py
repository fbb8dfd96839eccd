"""The captioning model's other layers in plain NumPy: CS231n assignment 3's `rnn_layers.py` interface.

Shapes (CS231n notation): N batch, T time steps, V vocabulary size, D word-vector (or input) size,
M output size.

* `word_embedding_forward/backward`: word indices (N, T) → vectors (N, T, D) by looking up rows of W (V, D).
* `temporal_affine_forward/backward`: the same affine layer x w + b applied at every time step.
* `temporal_softmax_loss`: softmax cross-entropy at every step, masked, summed over time, averaged over N.

Each forward returns `(out, cache)` and each backward takes `(dout, cache)`, as the LSTM's
(`rnnlab.models.numpy_lstm`) and the vanilla RNN's (`rnnlab.models.numpy_rnn`) do. Every function keeps
the dtype of its inputs.
"""

from __future__ import annotations

import numpy as np


def word_embedding_forward(x, W):
    """Look up the vector of each word.

    Inputs: x (N, T) integer word indices, each in [0, V); W (V, D) one vector per word.
    Returns out (N, T, D) and `cache` (x, W) for `word_embedding_backward`.
    """
    out = W[x]
    return out, (x, W)


def word_embedding_backward(dout, cache):
    """Backward pass of the embedding: only W has a gradient (the indices are not differentiable).

    Inputs: dout (N, T, D), `cache`. Returns dW (V, D).
    """
    x, W = cache
    dW = np.zeros_like(W, dtype=dout.dtype)
    # A word that occurs several times in the batch collects the gradient of every occurrence:
    # np.add.at accumulates repeated indices, where dW[x] += dout would keep only the last one.
    np.add.at(dW, x, dout)
    return dW


def temporal_affine_forward(x, w, b):
    """An affine layer applied at every time step.

    Inputs: x (N, T, D), w (D, M), b (M,). Returns out (N, T, M) and `cache` (x, w, b, out).
    """
    N, T, D = x.shape
    M = b.shape[0]
    # One (N·T, D) × (D, M) product for all steps instead of T small ones.
    out = (x.reshape(N * T, D) @ w + b).reshape(N, T, M)
    return out, (x, w, b, out)


def temporal_affine_backward(dout, cache):
    """Backward pass of `temporal_affine_forward`.

    Inputs: dout (N, T, M), `cache`. Returns dx (N, T, D), dw (D, M), db (M,).
    """
    x, w, b, _ = cache
    N, T, D = x.shape
    M = b.shape[0]
    dout_2d = dout.reshape(N * T, M)
    dx = (dout_2d @ w.T).reshape(N, T, D)
    dw = x.reshape(N * T, D).T @ dout_2d
    db = dout_2d.sum(axis=0)
    return dx, dw, db


def temporal_softmax_loss(x, y, mask, verbose=False):
    """Softmax cross-entropy at every time step, for a vocabulary of V words.

    The loss at the steps where `mask` is False (the <NULL> padding after a caption's end) is ignored.
    The loss is summed over time and averaged over the minibatch, as in CS231n.

    Inputs: x (N, T, V) scores; y (N, T) the correct word indices, each in [0, V); mask (N, T) booleans.
    Returns loss (a float) and dx (N, T, V), the gradient of the loss with respect to x.
    """
    N, T, V = x.shape
    x_flat = x.reshape(N * T, V)
    y_flat = y.reshape(N * T)
    mask_flat = mask.reshape(N * T)

    # Shift by the row maximum before exponentiating: the same probabilities, no overflow.
    shifted = x_flat - np.max(x_flat, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    rows = np.arange(N * T)
    loss = -np.sum(mask_flat * log_probs[rows, y_flat]) / N
    dx_flat = np.exp(log_probs)
    dx_flat[rows, y_flat] -= 1
    dx_flat /= N
    dx_flat *= mask_flat[:, None]
    if verbose:
        print("dx_flat: ", dx_flat.shape)
    return float(loss), dx_flat.reshape(N, T, V)
