"""The lab sheet's LSTM in plain NumPy: the CS231n assignment-3 functions and a trainable classifier.

Shapes (CS231n notation): N batch, T time steps, D input features, H hidden units.

    Wx (D, 4H), Wh (H, 4H), b (4H,)
    a = x_t Wx + h_{t-1} Wh + b   (N, 4H), split in order i, f, o, g
    i = σ(a_i), f = σ(a_f), o = σ(a_o), g = tanh(a_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

One derivation: the element-wise part of a step (`lstm_cell_forward`/`lstm_cell_backward`) is written
once; `lstm_step_forward`/`lstm_step_backward` add the step's matrix products, and
`lstm_forward`/`lstm_backward` run the same cell over a sequence with a list of per-step caches. The
initial cell state is zero, as in the sheet. Every function keeps the dtype of its inputs.

`NumpyLSTMClassifier` is the lab's classifier (stacked LSTM + a linear layer on the top layer's
last hidden state) with softmax cross-entropy, and `Adam` is torch.optim.Adam's update rule.
"""

from __future__ import annotations

import contextlib

import numpy as np


def blas_threads(n: int | None = 1):
    """Context manager: NumPy's BLAS (OpenBLAS) limited to `n` threads (None: unchanged).

    The per-step products are small; on a shared machine OpenBLAS's spinning threads can make them
    many times slower, so the NumPy training path runs them on one thread by default.
    """
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic σ(x) = 1 / (1 + e^-x), written as 0.5·tanh(x/2) + 0.5.

    No exponential is evaluated, so nothing overflows for any finite x (and ±inf give 1 and 0).
    """
    return 0.5 * np.tanh(0.5 * x) + 0.5


# ----------------------------------------------------------------------------------------------
# One time step
# ----------------------------------------------------------------------------------------------


def lstm_cell_forward(a, prev_c):
    """The element-wise part of a step: activations a (N, 4H) and prev_c (N, H) → next_h, next_c (N, H).

    The cache is (i, f, o, g, prev_c, next_c, tanh(next_c)), each (N, H), gates already activated.
    """
    H = prev_c.shape[1]
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H : 2 * H])
    o = sigmoid(a[:, 2 * H : 3 * H])
    g = np.tanh(a[:, 3 * H :])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    return next_h, next_c, (i, f, o, g, prev_c, next_c, tanh_c)


def lstm_cell_backward(dnext_h, dnext_c, cell_cache):
    """Backward of `lstm_cell_forward`: upstream dnext_h, dnext_c (N, H) → da (N, 4H), dprev_c (N, H)."""
    i, f, o, g, prev_c, _, tanh_c = cell_cache
    dc = dnext_c + dnext_h * o * (1.0 - tanh_c * tanh_c)  # total gradient of c_t
    di, df, do, dg = dc * g, dc * prev_c, dnext_h * tanh_c, dc * i
    da = np.concatenate([di * i * (1.0 - i), df * f * (1.0 - f), do * o * (1.0 - o), dg * (1.0 - g * g)], axis=1)
    return da, dc * f


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step.

    Inputs: x (N, D), prev_h (N, H), prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,).
    Returns next_h (N, H), next_c (N, H) and `cache` for `lstm_step_backward`.
    """
    a = x @ Wx + prev_h @ Wh + b  # (N, 4H)
    next_h, next_c, cell_cache = lstm_cell_forward(a, prev_c)
    return next_h, next_c, (x, prev_h, Wx, Wh, cell_cache)


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass of one LSTM step.

    Inputs: dnext_h (N, H), dnext_c (N, H) (upstream gradients of next_h and next_c), `cache`.
    Returns dx (N, D), dprev_h (N, H), dprev_c (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,).
    """
    x, prev_h, Wx, Wh, cell_cache = cache
    da, dprev_c = lstm_cell_backward(dnext_h, dnext_c, cell_cache)
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)


# ----------------------------------------------------------------------------------------------
# A whole sequence
# ----------------------------------------------------------------------------------------------


def lstm_forward(x, h0, Wx, Wh, b):
    """LSTM over a whole sequence, starting from h0 and a zero cell state.

    Inputs: x (N, T, D), h0 (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,).
    Returns h (N, T, H), the hidden state of every step, and `cache` for `lstm_backward`:
    (x, h0, Wx, Wh, h, cell_caches) with one `lstm_cell_forward` cache per step.
    """
    N, T, D = x.shape
    H = h0.shape[1]
    # One optimisation over calling lstm_step_forward T times: the input projection x_t Wx + b of all
    # T steps is one matrix product (T small ones are slower), so each step adds only h_{t-1} Wh.
    x_proj = (x.reshape(N * T, D) @ Wx + b).reshape(N, T, 4 * H)
    h = np.empty((N, T, H), dtype=np.result_type(x_proj, h0))
    prev_h, prev_c = h0, np.zeros_like(h0)
    cell_caches = []
    for t in range(T):
        prev_h, prev_c, cell_cache = lstm_cell_forward(x_proj[:, t] + prev_h @ Wh, prev_c)
        h[:, t] = prev_h
        cell_caches.append(cell_cache)
    return h, (x, h0, Wx, Wh, h, cell_caches)


def lstm_backward(dh, cache):
    """Backward pass of `lstm_forward`.

    Inputs: dh (N, T, H), upstream gradients of every hidden state; `cache`.
    Returns dx (N, T, D), dh0 (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,).
    """
    x, h0, Wx, Wh, h, cell_caches = cache
    N, T, D = x.shape
    H = h0.shape[1]
    da = np.empty((N, T, 4 * H), dtype=dh.dtype)
    dprev_h, dprev_c = np.zeros_like(h0), np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        da[:, t], dprev_c = lstm_cell_backward(dh[:, t] + dprev_h, dprev_c, cell_caches[t])
        dprev_h = da[:, t] @ Wh.T
    # The same optimisation as the forward pass: the per-step products of lstm_step_backward that do not
    # feed the recurrence (dx and the weight gradients, summed over steps) are one product each.
    da_all = da.reshape(N * T, 4 * H)
    prev_h = np.concatenate([h0[:, None], h[:, :-1]], axis=1).reshape(N * T, H)  # h_{t-1} of every step
    dx = (da_all @ Wx.T).reshape(N, T, D)
    return dx, dprev_h, x.reshape(N * T, D).T @ da_all, prev_h.T @ da_all, da_all.sum(axis=0)


# ----------------------------------------------------------------------------------------------
# The lab's classifier
# ----------------------------------------------------------------------------------------------


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of `logits` (N, C) against integer labels `y` (N,), and d loss / d logits (N, C)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_z
    N = len(y)
    loss = -float(log_p[np.arange(N), y].mean())
    dlogits = np.exp(log_p)
    dlogits[np.arange(N), y] -= 1.0
    dlogits /= N
    return loss, dlogits


class NumpyLSTMClassifier:
    """Stacked LSTM (the sheet's layout) + linear layer on the top layer's last hidden state.

    `params` holds, for layer k: `Wx{k}` (D_k, 4H), `Wh{k}` (H, 4H), `b{k}` (4H,), gates i, f, o, g;
    and the head `W_fc` (H, C), `b_fc` (C,) (logits = h_T W_fc + b_fc). Initialised as PyTorch does:
    every entry uniform in ±1/sqrt(H), from `np.random.default_rng(seed)`.

    `forward`/`backward` are the layer functions, `lstm_forward`/`lstm_backward` unless given: any pair
    with their interface (a student's, in `rnnlab exercise check`) trains the same classifier; the cache
    is only handed from one to the other.
    """

    def __init__(self, input_size: int = 28, hidden_size: int = 128, num_layers: int = 2, num_classes: int = 10,
                 seed: int = 0, dtype=np.float32, forward=lstm_forward, backward=lstm_backward):
        self.input_size, self.hidden_size = input_size, hidden_size
        self.lstm_forward, self.lstm_backward = forward, backward
        self.num_layers, self.num_classes = num_layers, num_classes
        self.dtype = np.dtype(dtype)
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(hidden_size)

        def uniform(*shape):
            return rng.uniform(-bound, bound, size=shape).astype(self.dtype)

        H = hidden_size
        self.params: dict[str, np.ndarray] = {}
        for k in range(num_layers):
            D = input_size if k == 0 else H
            self.params[f"Wx{k}"] = uniform(D, 4 * H)
            self.params[f"Wh{k}"] = uniform(H, 4 * H)
            self.params[f"b{k}"] = uniform(4 * H)
        self.params["W_fc"] = uniform(H, num_classes)
        self.params["b_fc"] = uniform(num_classes)

    def _forward(self, x: np.ndarray):
        x = np.asarray(x, dtype=self.dtype)
        N = x.shape[0]
        h0 = np.zeros((N, self.hidden_size), self.dtype)
        caches = []
        for k in range(self.num_layers):
            x, cache = self.lstm_forward(x, h0, self.params[f"Wx{k}"], self.params[f"Wh{k}"], self.params[f"b{k}"])
            caches.append(cache)
        h_last = x[:, -1, :]
        logits = h_last @ self.params["W_fc"] + self.params["b_fc"]
        return logits, h_last, caches

    def logits(self, x: np.ndarray) -> np.ndarray:
        """x (N, T, D) → logits (N, C)."""
        return self._forward(x)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """x (N, T, D) → predicted classes (N,)."""
        return self.logits(x).argmax(axis=1)

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, return_logits: bool = False):
        """Mean softmax cross-entropy on (x (N, T, D), y (N,)) and the gradient of every parameter.

        Returns (loss, grads) with grads keyed like `params`, or (loss, grads, logits (N, C)).
        """
        logits, h_last, caches = self._forward(x)
        loss, dlogits = softmax_cross_entropy(logits, np.asarray(y))
        dlogits = dlogits.astype(self.dtype, copy=False)
        grads = {"W_fc": h_last.T @ dlogits, "b_fc": dlogits.sum(axis=0)}
        N, T = np.shape(x)[:2]
        dh = np.zeros((N, T, self.hidden_size), self.dtype)
        dh[:, -1, :] = dlogits @ self.params["W_fc"].T
        for k in range(self.num_layers - 1, -1, -1):
            dh, _, grads[f"Wx{k}"], grads[f"Wh{k}"], grads[f"b{k}"] = self.lstm_backward(dh, caches[k])
        return (loss, grads, logits) if return_logits else (loss, grads)


class Adam:
    """torch.optim.Adam's update (no weight decay) on a dict of NumPy arrays, in place."""

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.betas
        for k, p in self.params.items():
            g = grads[k]
            self.m[k] = b1 * self.m[k] + (1.0 - b1) * g
            self.v[k] = b2 * self.v[k] + (1.0 - b2) * (g * g)
            # torch.optim.Adam's arithmetic, in its order: lr / (1 - b1^t) · m / (sqrt(v) / sqrt(1 - b2^t) + eps)
            denom = np.sqrt(self.v[k]) / np.sqrt(1.0 - b2**self.t) + self.eps
            p -= (self.lr / (1.0 - b1**self.t)) * (self.m[k] / denom)
