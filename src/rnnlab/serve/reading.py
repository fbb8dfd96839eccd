"""Digits read by the served models: the numbers `POST /api/read` answers with.

Everything is computed by the functions `predict` and `report` use: `report.predict.classify` for the
class probabilities after every step, `report.introspect.lstm_gate_trace` for the LSTM's gates. This
module only batches, picks rows, rounds and names things. Arrays stay NumPy arrays: the app writes
them to JSON with orjson, which reads NumPy directly (the gates are ~36,000 numbers for the lab's LSTM).
"""

from __future__ import annotations

import numpy as np
import torch

from rnnlab.data import sequence_inputs
from rnnlab.data.batches import view_permutation
from rnnlab.report.introspect import lstm_gate_trace
from rnnlab.report.predict import classify, top_k
from rnnlab.serve.catalog import ServedModel

TRACED = ("i", "f", "o", "g", "c")  # what the page draws; h = o·tanh(c) follows from them
# Rounding keeps the JSON short and is far below what the page or the checks can see: probabilities to
# 1e-8 (the tests compare with `predict` at 1e-6), gates to 1e-7 (rebuilding h from them over 28 steps
# stays within ~1e-6 of the model's own h).
PROBABILITY_DECIMALS, GATE_DECIMALS = 8, 7


def read_digits(served: ServedModel, digits: np.ndarray, gates: list[bool] | bool = False,
                saliency: list[bool] | bool = False) -> list[dict]:
    """What one model makes of each of N digits, read as one batch.

    digits: (N, 28, 28) uint8 in MNIST's form; `gates`: for each digit (or all) whether to add the LSTM's
    gates. Returns N dicts: `name`, `model`, `answer` (class index), `label` (its name), `top3`
    ([{class, label, probability}]), `probabilities` (28, C) after each row (for pixel views: after each
    row's last pixel), `steps` T, and `gates`: None, or (asked for, and an LSTM) one dict per layer of
    `i, f, o, g, c`, each (T, H); `saliency`: None, or (asked for) ‖∂ log p(answer) / ∂ row r‖ for the
    picture's 28 rows (`row_saliency`).
    """
    digits = np.asarray(digits, dtype=np.uint8)
    wanted = _each(gates, len(digits))
    probabilities = classify(served.model, served.config, digits)  # (N, T, C)
    traces: dict[int, list[dict]] = {}
    traced = [k for k, want in enumerate(wanted) if want] if served.lstm else []
    if traced:
        x = sequence_inputs(served.config, torch.as_tensor(digits[traced]))  # (n, T, D)
        layers = lstm_gate_trace(served.model, x)  # per layer: (n, T, H) arrays
        for row, k in enumerate(traced):
            traces[k] = [{name: np.round(layer[name][row], GATE_DECIMALS) for name in TRACED} for layer in layers]
    salient = [k for k, want in enumerate(_each(saliency, len(digits))) if want]
    rows = dict(zip(salient, row_saliency(served, digits[salient], probabilities[salient, -1].argmax(axis=1)))) \
        if salient else {}
    names = served.class_names
    readings = []
    for k, steps in enumerate(probabilities):
        best = top_k(steps[-1], 3)
        readings.append({
            "name": served.name,
            "model": served.config.model,
            "answer": best[0][0],
            "label": names[best[0][0]],
            "top3": [{"class": c, "label": names[c], "probability": round(p, PROBABILITY_DECIMALS)} for c, p in best],
            "probabilities": np.round(steps[served.steps_per_row - 1::served.steps_per_row].astype(np.float64),
                                      PROBABILITY_DECIMALS),  # (28, C)
            "steps": served.steps,
            "gates": traces.get(k),
            "saliency": rows.get(k),  # 28 numbers, unrounded: a row's gradient may be 1e-9
        })
    return readings


def _each(flag: list[bool] | bool, count: int) -> list[bool]:
    return [flag] * count if isinstance(flag, bool) else list(flag)


def row_saliency(served: ServedModel, digits: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """Which rows mattered, from torch autograd: for each digit (N, 28, 28) uint8 and its answer, the norm of
    ∂ log p(answer) / ∂ (the model's inputs from picture row r), for r = 1..28 → (N, 28) float64.

    Computed in float64 (`ServedModel.float64`, the same weights) from the float32 inputs the model reads
    (`sequence_inputs`); the gradient with respect to those normalised inputs is put back on the picture's pixels (the permuted view's order undone), and summed over each row's 28 pixels.
    """
    config = served.config
    with torch.enable_grad():
        x = sequence_inputs(config, torch.as_tensor(np.asarray(digits, dtype=np.uint8))).double().requires_grad_(True)
        log_p = served.float64()(x).log_softmax(dim=-1)
        chosen = log_p[torch.arange(len(x)), torch.as_tensor(answers, dtype=torch.long)]
        (grad,) = torch.autograd.grad(chosen.sum(), x)
    flat = grad.detach().reshape(len(x), -1)
    if config.view == "permuted":  # input k is pixel permutation[k]
        pixels = torch.empty_like(flat)
        pixels[:, view_permutation(config.seed)] = flat
        flat = pixels
    return flat.reshape(len(x), 28, 28).norm(dim=2).numpy()


def read_digit(served: ServedModel, digit: np.ndarray, *, gates: bool = False, saliency: bool = False) -> dict:
    """`read_digits` for one (28, 28) digit."""
    return read_digits(served, np.asarray(digit)[None], gates, saliency)[0]
