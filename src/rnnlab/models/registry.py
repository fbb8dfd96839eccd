"""Model names → modules. The one place that knows which class each `--model` is."""

from __future__ import annotations

import torch
from torch import nn

from rnnlab.data import input_shape
from rnnlab.models.recurrent import RecurrentClassifier


def build_model(name: str, input_size: int = 28, hidden_size: int = 128, num_layers: int = 2,
                dropout: float = 0.0, num_classes: int = 10, forget_bias: float = 0.0) -> RecurrentClassifier:
    """The classifier called `name` (rnn, lstm, gru, scratch-lstm) for inputs of `input_size` features.

    `forget_bias` (LSTMs only) is added to each layer's forget-gate bias after PyTorch's init (`add_forget_bias`).
    """
    dropout = dropout if num_layers > 1 else 0.0  # PyTorch applies dropout between layers only
    if name == "rnn":
        recurrent = nn.RNN(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
    elif name == "lstm":
        recurrent = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
    elif name == "gru":
        recurrent = nn.GRU(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
    elif name == "scratch-lstm":
        from rnnlab.models.scratch_lstm import ScratchLSTM

        recurrent = ScratchLSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
    else:
        raise ValueError(f"unknown model {name!r}")
    if forget_bias:  # 0 leaves PyTorch's init bit for bit, as every run before --forget-bias had it
        if name not in ("lstm", "scratch-lstm"):
            raise ValueError(f"{name} has no forget gate to bias")
        add_forget_bias(recurrent, forget_bias)
    return RecurrentClassifier(recurrent, hidden_size, num_classes)


@torch.no_grad()
def add_forget_bias(lstm: nn.Module, value: float) -> None:
    """Add `value` to the forget gate's bias in every layer of an `nn.LSTM` or `ScratchLSTM`, in place.

    Both keep the forget gate in the second of their four gate blocks (nn.LSTM: i, f, g, o; the sheet's:
    i, f, o, g). nn.LSTM's gates see bias_ih + bias_hh: only bias_ih moves, so their sum moves by `value`
    and the gate's bias starts at `value` on average, with PyTorch's spread around it. Nothing else
    changes, and no random number is drawn: the other weights are those of the same seed without it.
    """
    H = lstm.hidden_size
    if isinstance(lstm, nn.LSTM):
        biases = [getattr(lstm, f"bias_ih_l{k}") for k in range(lstm.num_layers)]
    else:  # ScratchLSTM: one bias b (4H,) per layer
        biases = [layer.b for layer in lstm.layers]
    for bias in biases:
        bias[H : 2 * H] += value


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def new_model(config) -> RecurrentClassifier:
    """A freshly initialised model of a run's `config` (its model, view and steps, size, depth, dropout and
    forget bias)."""
    steps, features = input_shape(config.view, config.steps)
    return build_model(config.model, features, config.hidden_size, config.num_layers, config.dropout,
                       forget_bias=config.forget_bias)
