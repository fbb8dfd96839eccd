"""Train the lab's LSTM classifier in plain NumPy (`--backend numpy`), and hand it to the torch code.

The batches are the torch trainer's: `SequenceBatches` over the same normalised sequences, with the
same seeded shuffle, converted with `.numpy()`.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from rnnlab.config import Config
from rnnlab.data import Dataset, SequenceBatches, to_sequences
from rnnlab.models.numpy_lstm import Adam, NumpyLSTMClassifier, blas_threads
from rnnlab.training.flops import train_flops_per_sample

INPUT_SIZE = 28  # the rows view: 28 steps of 28 pixels


def fit_numpy(config: Config, dataset: Dataset, log: Callable[[str], None] = print, threads: int | None = 1):
    """Train a `NumpyLSTMClassifier` for `config.epochs` epochs on `dataset.train` (rows view).

    Uses config.batch_size, lr (Adam), hidden_size, num_layers, seed (initialisation and
    shuffle) and train_limit; NumPy's BLAS runs on `threads` threads (None: its default).
    Returns (classifier, epochs), `epochs` a list of
    `{"epoch": k (1-based), "train_loss": mean batch loss, "train_accuracy": fraction, "seconds": s,
    "gflops": achieved GFLOP/s}` (the torch trainer's records).
    """
    images, labels = dataset.train.images, dataset.train.labels
    if config.train_limit is not None:
        images, labels = images[: config.train_limit], labels[: config.train_limit]
    batches = SequenceBatches(to_sequences(images, "rows"), labels, config.batch_size, shuffle=True, seed=config.seed)
    classifier = NumpyLSTMClassifier(INPUT_SIZE, config.hidden_size, config.num_layers, num_classes=10,
                                     seed=config.seed, dtype=np.float32)
    optimizer = Adam(classifier.params, lr=config.lr)
    flops = train_flops_per_sample("lstm", 28, INPUT_SIZE, config.hidden_size, config.num_layers)
    with blas_threads(threads):
        epochs = [_run_epoch(classifier, optimizer, batches, epoch, config.epochs, len(labels), flops, log)
                  for epoch in range(config.epochs)]
    return classifier, epochs


def _run_epoch(classifier: NumpyLSTMClassifier, optimizer: Adam, batches: SequenceBatches, epoch: int,
               total_epochs: int, n: int, flops_per_sample: int, log: Callable[[str], None]) -> dict:
    """One epoch (0-based `epoch`) of training; its record."""
    started = time.perf_counter()
    loss_sum, correct, steps = 0.0, 0, 0
    for x, y in batches.epoch(epoch):
        y = y.numpy()
        loss, grads, logits = classifier.loss_and_grads(x.numpy(), y, return_logits=True)
        if not np.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss} at epoch {epoch + 1}, step {steps + 1}")
        optimizer.step(grads)
        loss_sum += loss
        correct += int((logits.argmax(axis=1) == y).sum())
        steps += 1
    seconds = time.perf_counter() - started
    record = {"epoch": epoch + 1, "train_loss": loss_sum / steps, "train_accuracy": correct / n, "seconds": seconds,
              "gflops": flops_per_sample * n / seconds / 1e9}
    log(f"Epoch [{epoch + 1}/{total_epochs}], Loss: {record['train_loss']:.4f}, "
        f"Accuracy: {100 * record['train_accuracy']:.2f}%  ({seconds:.1f} s, {record['gflops']:.1f} GFLOP/s, numpy)")
    return record


def evaluate_numpy(classifier: NumpyLSTMClassifier, images: torch.Tensor, labels: torch.Tensor,
                   batch_size: int = 1000, threads: int | None = 1) -> float:
    """Accuracy (fraction) of `classifier` on uint8 images (N, 28, 28) with labels (N,)."""
    inputs = to_sequences(images, "rows").numpy()
    labels = labels.numpy()
    correct = 0
    with blas_threads(threads):
        for start in range(0, len(labels), batch_size):
            predicted = classifier.predict(inputs[start : start + batch_size])
            correct += int((predicted == labels[start : start + batch_size]).sum())
    return correct / len(labels)


def numpy_to_state_dict(classifier: NumpyLSTMClassifier) -> dict[str, torch.Tensor]:
    """A state_dict for `build_model("lstm", 28, H, L)`: nn.LSTM names and gate order (i, f, g, o).

    weight_ih_l{k} = Wx{k}[:, i,f,g,o]ᵀ, weight_hh_l{k} = Wh{k}[:, i,f,g,o]ᵀ, bias_ih_l{k} = b{k}[i,f,g,o],
    bias_hh_l{k} = 0; fc.weight = W_fcᵀ, fc.bias = b_fc. All float32.
    """
    H = classifier.hidden_size
    order = np.concatenate([np.arange(0, 2 * H), np.arange(3 * H, 4 * H), np.arange(2 * H, 3 * H)])  # i,f,o,g → i,f,g,o

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    p = classifier.params
    state = {}
    for k in range(classifier.num_layers):
        state[f"recurrent.weight_ih_l{k}"] = tensor(p[f"Wx{k}"][:, order].T)
        state[f"recurrent.weight_hh_l{k}"] = tensor(p[f"Wh{k}"][:, order].T)
        state[f"recurrent.bias_ih_l{k}"] = tensor(p[f"b{k}"][order])
        state[f"recurrent.bias_hh_l{k}"] = torch.zeros(4 * H)
    state["fc.weight"] = tensor(p["W_fc"].T)
    state["fc.bias"] = tensor(p["b_fc"])
    return state
