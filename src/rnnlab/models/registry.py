"""Model names → modules. The one place that knows which class each `--model` is."""

from __future__ import annotations

from torch import nn

from rnnlab.data import input_shape
from rnnlab.models.recurrent import RecurrentClassifier


def build_model(name: str, input_size: int = 28, hidden_size: int = 128, num_layers: int = 2,
                dropout: float = 0.0, num_classes: int = 10) -> RecurrentClassifier:
    """The classifier called `name` (rnn, lstm, gru, scratch-lstm) for inputs of `input_size` features."""
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
    return RecurrentClassifier(recurrent, hidden_size, num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def new_model(config) -> RecurrentClassifier:
    """A freshly initialised model of a run's `config` (its model, view, size, depth and dropout)."""
    steps, features = input_shape(config.view)
    return build_model(config.model, features, config.hidden_size, config.num_layers, config.dropout)
