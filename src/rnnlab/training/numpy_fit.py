"""Train the lab's LSTM classifier in plain NumPy (`--backend numpy`), and hand it to the torch code.

The batches are the torch trainer's: `SequenceBatches` over the same normalised sequences, with the
same seeded shuffle, converted with `.numpy()`; the epoch records and log lines are `fit`'s. There
is no checkpoint: a stop signal ends the run with nothing saved, and such runs cannot be resumed.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from rnnlab.config import Config
from rnnlab.data import Dataset, SequenceBatches, sequence_inputs
from rnnlab.models import new_model
from rnnlab.models.numpy_lstm import Adam, NumpyLSTMClassifier, blas_threads
from rnnlab.models.scratch_lstm import sheet_to_torch_weights
from rnnlab.training.fit import StopSignals, TrainingInterrupted, check_finite, epoch_line, epoch_record
from rnnlab.training.flops import train_flops_per_sample

INPUT_SIZE = 28  # the rows view: 28 steps of 28 pixels


def fit_numpy(config: Config, dataset: Dataset, log: Callable[[str], None] = print, threads: int | None = 1,
              stop: StopSignals | None = None) -> tuple[NumpyLSTMClassifier, list[dict]]:
    """Train a `NumpyLSTMClassifier` for `config.epochs` epochs on `dataset.train` (rows view).

    Uses config.batch_size, lr (Adam), hidden_size, num_layers, seed (initialisation and shuffle) and forget_bias;
    NumPy's BLAS runs on `threads` threads (None: its default). Returns the trained classifier and the
    epoch records (`fit`'s `epoch_record`); `as_torch_model` hands the weights to the torch code.
    """
    stop = stop or StopSignals()
    images, labels = dataset.train.images, dataset.train.labels
    batches = SequenceBatches(sequence_inputs(config, images), labels, config.batch_size, shuffle=True,
                              seed=config.seed)
    classifier = new_classifier(config)
    optimizer = Adam(classifier.params, lr=config.lr)
    flops = train_flops_per_sample("lstm", 28, INPUT_SIZE, config.hidden_size, config.num_layers)
    epochs = []
    with blas_threads(threads):
        for epoch in range(config.epochs):
            started = time.perf_counter()
            loss_sum, correct, steps = 0.0, 0, 0
            for x, y in batches.epoch(epoch):
                y = y.numpy()
                loss, grads, logits = classifier.loss_and_grads(x.numpy(), y, return_logits=True)
                check_finite(-1 if np.isfinite(loss) else steps, epoch, None)
                optimizer.step(grads)
                loss_sum += loss
                correct += int((logits.argmax(axis=1) == y).sum())
                steps += 1
                if stop.signum:
                    raise TrainingInterrupted(stop.signum, None)
            record = epoch_record(epoch, loss_sum / steps, correct / len(labels), time.perf_counter() - started,
                                  len(labels), flops, None)
            epochs.append(record)
            log(epoch_line(record, config.epochs, None, backend=", numpy"))
    return classifier, epochs


def new_classifier(config: Config) -> NumpyLSTMClassifier:
    """The NumPy classifier of `config`, initialised from its seed; `forget_bias` is added to each layer's
    forget-gate bias as `add_forget_bias` does for the torch LSTMs (b (4H,) is i, f, o, g)."""
    classifier = NumpyLSTMClassifier(INPUT_SIZE, config.hidden_size, config.num_layers, num_classes=10,
                                     seed=config.seed, dtype=np.float32)
    H = config.hidden_size
    for k in range(config.num_layers if config.forget_bias else 0):  # 0: NumPy's seeded init, bit for bit
        classifier.params[f"b{k}"][H : 2 * H] += np.float32(config.forget_bias)
    return classifier


def as_torch_model(config: Config, classifier: NumpyLSTMClassifier) -> nn.Module:
    """The torch model of `config` (an nn.LSTM classifier) holding the NumPy classifier's weights."""
    model = new_model(config)
    model.load_state_dict(numpy_to_state_dict(classifier))
    return model


def numpy_to_state_dict(classifier: NumpyLSTMClassifier) -> dict[str, torch.Tensor]:
    """A state_dict for `build_model("lstm", 28, H, L)`: the sheet's layers in nn.LSTM's names and layout.

    weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k} from Wx{k}, Wh{k}, b{k} (`sheet_to_torch_weights`),
    bias_hh_l{k} = 0; fc.weight = W_fcᵀ, fc.bias = b_fc. All float32.
    """
    p = {name: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for name, a in classifier.params.items()}
    state = {}
    for k in range(classifier.num_layers):
        w_ih, w_hh, b_ih = sheet_to_torch_weights(p[f"Wx{k}"], p[f"Wh{k}"], p[f"b{k}"])
        state[f"recurrent.weight_ih_l{k}"] = w_ih.contiguous()
        state[f"recurrent.weight_hh_l{k}"] = w_hh.contiguous()
        state[f"recurrent.bias_ih_l{k}"] = b_ih.contiguous()
        state[f"recurrent.bias_hh_l{k}"] = torch.zeros_like(b_ih)
    state["fc.weight"] = p["W_fc"].t().contiguous()
    state["fc.bias"] = p["b_fc"]
    return state
