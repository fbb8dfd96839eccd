"""Which rows mattered (issue 21): `/api/read?saliency=1` gives, per model, ‖∂ log p(answer) / ∂ row r‖ for the 28
rows of the picture, from torch autograd. Checked against finite differences of the model itself, not against
another gradient: moving row r's inputs by ε along its own gradient direction changes log p(answer) by ε·‖g_r‖."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from serve_helpers import mnist_digits, trained_runs

from rnnlab.data import sequence_inputs
from rnnlab.serve import create_app, load_models
from rnnlab.serve.reading import row_saliency


@pytest.fixture(scope="module")
def models(tmp_path_factory, mnist_dir):
    runs = trained_runs(tmp_path_factory, mnist_dir)
    return load_models([runs["rnn"], runs["lstm"]])


def log_p(served, x: torch.Tensor, answer: int) -> float:
    with torch.no_grad():
        return float(served.float64()(x).log_softmax(dim=-1)[0, answer])


@pytest.mark.parametrize("index", [0, 1, 2])
def test_saliency_is_the_slope_of_log_p_along_each_row(models, mnist, index):
    digit, _ = mnist_digits(mnist, 3)[index]
    for served in models:
        x = sequence_inputs(served.config, torch.as_tensor(digit[None])).double()  # rows view: step r is row r
        answer = int(served.float64()(x).argmax())
        rows = row_saliency(served, digit[None], np.array([answer]))[0]
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(served.float64()(x).log_softmax(dim=-1)[0, answer], x)
        for r in (3, 10, 20, 27):
            direction = torch.zeros_like(x)
            direction[0, r] = grad[0, r] / grad[0, r].norm()
            eps = 1e-4
            slope = (log_p(served, x.detach() + eps * direction, answer)
                     - log_p(served, x.detach() - eps * direction, answer)) / (2 * eps)
            assert slope == pytest.approx(rows[r], rel=1e-5, abs=1e-12), (served.name, r)
        assert rows.shape == (28,) and (rows >= 0).all() and rows.max() > 0


def test_the_api_gives_saliency_only_when_asked(models, mnist):
    digit, _ = mnist_digits(mnist, 1)[0]
    with TestClient(create_app(models)) as client:
        plain = client.post("/api/read", json={"pixels": digit.tolist()}).json()
        asked = client.post("/api/read?saliency=1", json={"pixels": digit.tolist()}).json()
    assert all(m["saliency"] is None for m in plain["models"])
    for served, reading in zip(models, asked["models"]):
        expected = row_saliency(served, digit[None], np.array([reading["answer"]]))[0]
        assert np.array(reading["saliency"]) == pytest.approx(expected, rel=1e-12)
    assert [m["probabilities"] for m in plain["models"]] == [m["probabilities"] for m in asked["models"]]
