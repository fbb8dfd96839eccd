"""Gradients through time: how far back the gradient of the answer reaches, step by step (issue 20).

For a classifier, inputs x (N, T, D) and labels (N,), L_n is image n's cross-entropy of the answer after
the last step. `step_gradients` re-runs the model's own weights one step at a time in float64 (the fused
nn.RNN, nn.LSTM and nn.GRU show no per-step state) and lets autograd give, for each image and step t,

    ‖∂L/∂x_t‖,   for each layer ‖∂L/∂h_t‖,   and for an LSTM for each layer ‖∂L/∂c_t‖,

each the total derivative: through every later step and every layer above. The unrolled logits are checked
against the model's own forward, in float64 too, before any number is used (`UnrollMismatch`).

`gradient_curves` gives per step the median over the images, and each curve's decay in decades,
log10(median at the last step / median at the first step): positive when the gradient fades on its way back
to the first step (vanishes), negative when it grows (explodes). A first step whose median is exactly 0 in
float64 makes the decay infinite, and the curves say so. `run_gradients` does this at the weights a run
started from (rebuilt from its seed by `initial_model`, as `lab.train` built them) and at its trained weights.
"""

from __future__ import annotations

import copy
import math
import random
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rnnlab.report.introspect import is_lstm, lstm_weights
from rnnlab.training.distributed import initial_model

TOLERANCE = 1e-6  # largest |logit difference| allowed between the unrolled forward and the model's own
IMAGE_STEPS = 16384  # images × steps unrolled at once: bounds the memory autograd keeps for long sequences


class UnrollMismatch(RuntimeError):
    """The step-by-step forward does not reproduce the model's own output: its gradients would not be the model's."""


def _rnn_cell(w_ih, w_hh, b_ih, b_hh, activation):
    """nn.RNN: h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)."""
    def step(gx, state):
        return (activation(gx + state[0] @ w_hh.T + b_hh),)
    return (lambda x: x @ w_ih.T + b_ih), step


def _gru_cell(w_ih, w_hh, b_ih, b_hh):
    """nn.GRU (blocks r, z, n): r, z = σ(gx + gh); n = tanh(gx_n + r ⊙ (h W_hnᵀ + b_hn)); h = (1 - z) ⊙ n + z ⊙ h."""
    def step(gx, state):
        h = state[0]
        gh = h @ w_hh.T + b_hh
        x_r, x_z, x_n = gx.chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return ((1 - z) * n + z * h,)
    return (lambda x: x @ w_ih.T + b_ih), step


def _lstm_cell(Wx, Wh, b):
    """The sheet's LSTM (Wx (D, 4H), Wh (H, 4H), b (4H,), blocks i, f, o, g): state (h, c)."""
    H = Wh.shape[0]

    def step(gx, state):
        h, c = state
        a = gx + h @ Wh
        i, f, o = torch.sigmoid(a[:, :3 * H]).chunk(3, dim=1)
        c = f * c + i * torch.tanh(a[:, 3 * H:])
        return o * torch.tanh(c), c
    return (lambda x: x @ Wx + b), step


def _cells(model: nn.Module) -> list[tuple[Callable, Callable, int]]:
    """Per layer (project, step, number of states) from the model's own weights (in the model's dtype).

    `project` maps a layer's input (N, T, D) to its input part of every step at once (N, T, G); `step` maps
    (that part at step t (N, G), state) to the next state, a tuple whose first element is h_t (N, H).
    """
    recurrent = model.recurrent
    if is_lstm(model):  # nn.LSTM or ScratchLSTM, read into the sheet's layout by the one function that does it
        return [(*_lstm_cell(Wx, Wh, b), 2) for Wx, Wh, b in lstm_weights(model)]
    if isinstance(recurrent, (nn.RNN, nn.GRU)) and recurrent.batch_first and not recurrent.bidirectional:
        cells = []
        for k in range(recurrent.num_layers):
            w = [getattr(recurrent, f"{n}_l{k}").detach() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if isinstance(recurrent, nn.GRU):
                cells.append((*_gru_cell(*w), 1))
            else:
                cells.append((*_rnn_cell(*w, torch.tanh if recurrent.nonlinearity == "tanh" else torch.relu), 1))
        return cells
    raise ValueError(f"cannot unroll a {type(recurrent).__name__}: rnnlab unrolls nn.RNN, nn.GRU, nn.LSTM and "
                     "ScratchLSTM (batch_first, one direction)")


def unroll(model: nn.Module, x: torch.Tensor, on_state: Callable | None = None) -> torch.Tensor:
    """The logits (N, C) of `model` on x (N, T, D), computed step by step from its own weights.

    `on_state(layer, t, state)` sees each new state (h_t, or (h_t, c_t)) and returns the one carried on to the
    next step and the layer above: `step_gradients` keeps their gradients, a test can nudge one.
    """
    N = x.shape[0]
    inputs = x
    for k, (project, step, size) in enumerate(_cells(model)):
        gx = project(inputs)  # (N, T, G): the input's part of every step in one product
        state = tuple(x.new_zeros(N, model.recurrent.hidden_size) for _ in range(size))
        outputs = []
        for t in range(gx.shape[1]):
            state = step(gx[:, t], state)
            if on_state is not None:
                state = on_state(k, t, state)
            outputs.append(state[0])
        inputs = torch.stack(outputs, dim=1)  # (N, T, H): the next layer's input
    return model.fc(inputs[:, -1])  # as RecurrentClassifier: the linear layer on the top layer's last h


def float64_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of `model` on the CPU, in eval mode (no dropout), its weights needing no gradient."""
    return copy.deepcopy(model).to("cpu", torch.float64).eval().requires_grad_(False)


def input_and_state_gradients(model64: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """∂L_n/∂x_t and ∂L_n/∂(each state) for x (N, T, D), from the unrolled float64 model `model64`.

    Returns "x" (N, T, D), "states": per layer a list, per state kind (h, then c), of (N, T, H), "loss" (N,)
    and "unroll_error", the largest |difference| from the model's own logits. The images are independent, so
    backpropagating the sum of the losses gives each image's own gradient.
    """
    x = x.detach().to("cpu", torch.float64).requires_grad_(True)
    kept: dict[tuple[int, int], tuple] = {}

    def keep(layer, t, state):
        for s in state:
            s.retain_grad()
        kept[layer, t] = state
        return state

    logits = unroll(model64, x, keep)
    with torch.no_grad():
        error = (logits - model64(x)).abs().max().item()
    if not error <= TOLERANCE:
        raise UnrollMismatch(f"the step-by-step forward differs from the model's own by {error:.3g} "
                             f"(allowed {TOLERANCE:g}): its gradients would not be the model's")
    loss = F.cross_entropy(logits, labels.to("cpu").long(), reduction="none")
    loss.sum().backward()
    layers, T = 1 + max(k for k, _ in kept), x.shape[1]
    states = [[torch.stack([kept[k, t][s].grad for t in range(T)], dim=1) for s in range(len(kept[k, 0]))]
              for k in range(layers)]
    return {"x": x.grad, "states": states, "loss": loss.detach(), "unroll_error": error}


def step_gradients(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """Per image and step the norms ‖∂L/∂x_t‖ "x" (N, T), and per layer ‖∂L/∂h_t‖ "h" and (LSTMs) ‖∂L/∂c_t‖ "c",
    each a list of (N, T) arrays; "loss" (N,) and "unroll_error". In float64, in chunks of images."""
    model64 = float64_copy(model)
    chunk = max(1, IMAGE_STEPS // x.shape[1])
    parts = [input_and_state_gradients(model64, x[i:i + chunk], labels[i:i + chunk])
             for i in range(0, len(x), chunk)]
    kinds = len(parts[0]["states"][0])
    result = {"x": np.concatenate([p["x"].norm(dim=2).numpy() for p in parts]),
              "loss": np.concatenate([p["loss"].numpy() for p in parts]),
              "unroll_error": max(p["unroll_error"] for p in parts)}
    for s, name in enumerate(("h", "c")[:kinds]):
        result[name] = [np.concatenate([p["states"][k][s].norm(dim=2).numpy() for p in parts])
                        for k in range(len(parts[0]["states"]))]
    return result


def decay(curve) -> float:
    """log10(curve[-1] / curve[0]) in decades: > 0 when the gradient is smaller at the first step than at the
    last (vanishing). A first step of exactly 0 gives inf (nan when the last is 0 as well)."""
    first, last = float(curve[0]), float(curve[-1])
    if first == 0 or last == 0:
        return math.nan if first == last else (math.inf if first == 0 else -math.inf)
    return math.log10(last / first)


def gradient_curves(norms: dict) -> dict:
    """`step_gradients`' norms → per step the median over the images: "x" (T,), "h" and "c" per layer (T,) each;
    "decay" of each curve in the same shape ("x": a number, "h"/"c": one per layer); "median_loss"; "unroll_error"."""
    curves = {"x": np.median(norms["x"], axis=0)}
    for name in ("h", "c"):
        if name in norms:
            curves[name] = [np.median(layer, axis=0) for layer in norms[name]]
    decays = {name: decay(v) if name == "x" else [decay(layer) for layer in v] for name, v in curves.items()}
    return {**curves, "decay": decays, "median_loss": float(np.median(norms["loss"])),
            "unroll_error": norms["unroll_error"]}


def starting_model(config) -> nn.Module:
    """The weights the run of `config` started from (`initial_model`), leaving the caller's random generators
    as they were: a notebook that asks for gradients does not have its own random numbers reseeded."""
    saved = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        model = initial_model(config)
    random.setstate(saved[0])
    np.random.set_state(saved[1])
    return model.eval()


def run_gradients(config, trained: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> dict:
    """`gradient_curves` of the run of `config` at its starting weights ("initial") and at `trained`'s ("trained"),
    on inputs x (N, T, D) (the run's own view and steps) and their labels (N,)."""
    return {phase: gradient_curves(step_gradients(model, x, labels))
            for phase, model in (("initial", starting_model(config)), ("trained", trained))}
