"""The lab sheet's LSTM in plain NumPy: the CS231n assignment-3 functions and a trainable classifier.

Shapes (CS231n notation): N batch, T time steps, D input features, H hidden units.

    Wx (D, 4H), Wh (H, 4H), b (4H,)
    a = x_t Wx + h_{t-1} Wh + b   (N, 4H), split in order i, f, o, g
    i = σ(a_i), f = σ(a_f), o = σ(a_o), g = tanh(a_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

`lstm_step_forward`/`lstm_step_backward` follow the sheet literally, one step at a time.
`lstm_forward`/`lstm_backward` are the fast sequence versions: the input projection of all T steps
is one matrix product, the loop only does the recurrent product and the element-wise update, and
dWx, dWh, db, dx are each one product (or sum) over all steps after the backward loop. They keep
the dtype of their inputs (float32 or float64).

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
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is in requirements.txt
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Numerically stable logistic σ(x) = 1 / (1 + e^-x), written as 0.5·tanh(x/2) + 0.5.

    No exponential is evaluated, so nothing overflows for any finite x (and ±inf give 1 and 0);
    `out` may be `x` itself (in place). Same shape and dtype as `x`.
    """
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


# ----------------------------------------------------------------------------------------------
# One time step (the sheet's functions)
# ----------------------------------------------------------------------------------------------


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step.

    Inputs: x (N, D), prev_h (N, H), prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,).
    Returns next_h (N, H), next_c (N, H) and `cache` for `lstm_step_backward`.
    """
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b  # (N, 4H)
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H : 2 * H])
    o = sigmoid(a[:, 2 * H : 3 * H])
    g = np.tanh(a[:, 3 * H :])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass of one LSTM step.

    Inputs: dnext_h (N, H), dnext_c (N, H) (upstream gradients of next_h and next_c), `cache`.
    Returns dx (N, D), dprev_h (N, H), dprev_c (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,).
    """
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    do = dnext_h * tanh_c
    dc = dnext_c + dnext_h * o * (1.0 - tanh_c * tanh_c)
    di = dc * g
    df = dc * prev_c
    dg = dc * i
    dprev_c = dc * f
    da = np.concatenate([di * i * (1.0 - i), df * f * (1.0 - f), do * o * (1.0 - o), dg * (1.0 - g * g)], axis=1)
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db


# ----------------------------------------------------------------------------------------------
# A whole sequence (fast)
# ----------------------------------------------------------------------------------------------


def lstm_forward(x, h0, Wx, Wh, b, c0=None):
    """LSTM over a whole sequence.

    Inputs: x (N, T, D), h0 (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,), optional c0 (N, H)
    (zeros by default, as in the sheet).
    Returns h (N, T, H), the hidden state of every step, and `cache` for `lstm_backward`
    (the final cell state c_T (N, H) is `cache["c"][-1]`).
    """
    N, T, D = x.shape
    H = h0.shape[1]
    H3 = 3 * H
    dtype = np.result_type(x.dtype, Wx.dtype, Wh.dtype, b.dtype, h0.dtype)
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2), dtype=dtype)  # (T, N, D)
    gates = (x_tm.reshape(T * N, D) @ Wx.astype(dtype, copy=False)).reshape(T, N, 4 * H)  # one product
    gates += b
    Wh = Wh.astype(dtype, copy=False)
    h = np.empty((T + 1, N, H), dtype)  # h[0] = h0, h[t + 1] = h_t
    c = np.empty((T + 1, N, H), dtype)  # c[0] = c0, c[t + 1] = c_t
    tanh_c = np.empty((T, N, H), dtype)
    rec = np.empty((N, 4 * H), dtype)
    ig = np.empty((N, H), dtype)
    h[0] = h0
    c[0] = 0.0 if c0 is None else c0
    for t in range(T):
        a = gates[t]
        np.matmul(h[t], Wh, out=rec)
        a += rec
        sigmoid(a[:, :H3], out=a[:, :H3])  # i, f, o
        np.tanh(a[:, H3:], out=a[:, H3:])  # g
        np.multiply(a[:, H : 2 * H], c[t], out=c[t + 1])
        np.multiply(a[:, :H], a[:, H3:], out=ig)
        c[t + 1] += ig
        np.tanh(c[t + 1], out=tanh_c[t])
        np.multiply(a[:, 2 * H : H3], tanh_c[t], out=h[t + 1])
    cache = {"x": x_tm, "Wx": Wx, "Wh": Wh, "gates": gates, "h": h, "c": c, "tanh_c": tanh_c}
    return h[1:].transpose(1, 0, 2), cache


def lstm_backward(dh, cache):
    """Backward pass of `lstm_forward`.

    Inputs: dh (N, T, H), upstream gradients of every hidden state h; `cache`.
    Returns dx (N, T, D), dh0 (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,).
    (The gradient of c0 is left in `cache["dc0"]`.)
    """
    x, Wx, Wh, gates, h, c, tanh_c = (cache[k] for k in ("x", "Wx", "Wh", "gates", "h", "c", "tanh_c"))
    T, N, D = x.shape
    H = Wh.shape[0]
    H2, H3 = 2 * H, 3 * H
    dtype = gates.dtype
    i, f, o, g = gates[..., :H], gates[..., H:H2], gates[..., H2:H3], gates[..., H3:]
    # Everything that does not depend on the recurrence, for all steps at once:
    #   dc_t = dc_{t+1} ⊙ f_{t+1} + dh_t ⊙ K_t,      K = o ⊙ (1 - tanh(c_t)^2)
    #   da = [dc ⊙ g ⊙ i(1-i), dc ⊙ c_{t-1} ⊙ f(1-f), dh ⊙ tanh(c_t) ⊙ o(1-o), dc ⊙ i ⊙ (1-g^2)]
    #      = [dc, dc, dh, dc] ⊙ Q
    K = o * (1.0 - tanh_c * tanh_c)
    Q = np.empty_like(gates)
    sig = gates[..., :H3]
    np.multiply(sig, 1.0 - sig, out=Q[..., :H3])
    Q[..., :H] *= g
    Q[..., H:H2] *= c[:T]
    Q[..., H2:H3] *= tanh_c
    np.multiply(i, 1.0 - g * g, out=Q[..., H3:])
    Q4 = Q.reshape(T, N, 4, H)

    dh_tm = np.array(dh.transpose(1, 0, 2), dtype=dtype, order="C", copy=True)  # (T, N, H), ours to modify
    dA = np.empty_like(gates)
    dA4 = dA.reshape(T, N, 4, H)
    dc = np.zeros((N, H), dtype)
    dnext_h = np.zeros((N, H), dtype)
    tmp = np.empty((N, H), dtype)
    WhT = Wh.T
    for t in range(T - 1, -1, -1):
        dht = dh_tm[t]
        dht += dnext_h  # total dL/dh_t
        np.multiply(dht, K[t], out=tmp)
        dc += tmp  # total dL/dc_t
        np.multiply(Q4[t], dc[:, None, :], out=dA4[t])
        np.multiply(Q[t, :, H2:H3], dht, out=dA[t, :, H2:H3])  # the o gate reads dh
        dc *= f[t]  # dL/dc_{t-1} through the cell
        np.matmul(dA[t], WhT, out=dnext_h)
    cache["dc0"] = dc
    dA_flat = dA.reshape(T * N, 4 * H)
    # Every parameter gradient, and dx, as one product over all steps.
    dx = (dA_flat @ Wx.T).reshape(T, N, D).transpose(1, 0, 2)
    dWx = x.reshape(T * N, D).T @ dA_flat
    dWh = h[:T].reshape(T * N, H).T @ dA_flat
    db = dA_flat.sum(axis=0)
    return dx, dnext_h, dWx, dWh, db


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
    """

    def __init__(self, input_size: int = 28, hidden_size: int = 128, num_layers: int = 2, num_classes: int = 10,
                 seed: int = 0, dtype=np.float32):
        self.input_size, self.hidden_size = input_size, hidden_size
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
            x, cache = lstm_forward(x, h0, self.params[f"Wx{k}"], self.params[f"Wh{k}"], self.params[f"b{k}"])
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
        N, T = h_last.shape[0], caches[-1]["x"].shape[0]
        dh = np.zeros((N, T, self.hidden_size), self.dtype)
        dh[:, -1, :] = dlogits @ self.params["W_fc"].T
        for k in range(self.num_layers - 1, -1, -1):
            dh, _, grads[f"Wx{k}"], grads[f"Wh{k}"], grads[f"b{k}"] = lstm_backward(dh, caches[k])
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
        step_size = self.lr / (1.0 - b1**self.t)
        sqrt_c2 = np.sqrt(1.0 - b2**self.t)
        for k, p in self.params.items():
            g = grads[k]
            m, v = self.m[k], self.v[k]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            denom = np.sqrt(v)
            denom /= sqrt_c2
            denom += self.eps
            p -= step_size * (m / denom)
