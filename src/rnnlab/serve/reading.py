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
from rnnlab.report.introspect import lstm_gate_trace
from rnnlab.report.predict import classify, top_k
from rnnlab.serve.catalog import ServedModel

TRACED = ("i", "f", "o", "g", "c")  # what the page draws; h = o·tanh(c) follows from them
# Rounding keeps the JSON short and is far below what the page or the checks can see: probabilities to
# 1e-8 (the tests compare with `predict` at 1e-6), gates to 1e-7 (rebuilding h from them over 28 steps
# stays within ~1e-6 of the model's own h).
PROBABILITY_DECIMALS, GATE_DECIMALS = 8, 7


def read_digits(served: ServedModel, digits: np.ndarray, gates: list[bool] | bool = False) -> list[dict]:
    """What one model makes of each of N digits, read as one batch.

    digits: (N, 28, 28) uint8 in MNIST's form; `gates`: for each digit (or all) whether to add the LSTM's
    gates. Returns N dicts: `name`, `model`, `answer` (class index), `label` (its name), `top3`
    ([{class, label, probability}]), `probabilities` (28, C) after each row (for pixel views: after each
    row's last pixel), `steps` T, and `gates`: None, or (asked for, and an LSTM) one dict per layer of
    `i, f, o, g, c`, each (T, H).
    """
    digits = np.asarray(digits, dtype=np.uint8)
    wanted = [gates] * len(digits) if isinstance(gates, bool) else list(gates)
    probabilities = classify(served.model, served.config, digits)  # (N, T, C)
    traces: dict[int, list[dict]] = {}
    traced = [k for k, want in enumerate(wanted) if want] if served.lstm else []
    if traced:
        x = sequence_inputs(served.config, torch.as_tensor(digits[traced]))  # (n, T, D)
        layers = lstm_gate_trace(served.model, x)  # per layer: (n, T, H) arrays
        for row, k in enumerate(traced):
            traces[k] = [{name: np.round(layer[name][row], GATE_DECIMALS) for name in TRACED} for layer in layers]
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
        })
    return readings


def read_digit(served: ServedModel, digit: np.ndarray, *, gates: bool = False) -> dict:
    """`read_digits` for one (28, 28) digit."""
    return read_digits(served, np.asarray(digit)[None], gates)[0]
