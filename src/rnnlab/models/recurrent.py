"""The lab's classifiers: a recurrent layer reads the sequence, a linear layer reads its last state."""

from __future__ import annotations

import torch
from torch import nn


class RecurrentClassifier(nn.Module):
    """`recurrent` (an `nn.RNN`/`nn.LSTM`/`nn.GRU`-like module, batch_first) + `nn.Linear` on `hn[-1]`.

    For the sheet's one-layer RNN, `hn[-1]` is the output of the last time step, `out[:, -1, :]`,
    exactly as the sheet writes it; for the LSTM it is the sheet's `hn[-1]`.
    """

    def __init__(self, recurrent: nn.Module, hidden_size: int, num_classes: int = 10):
        super().__init__()
        self.recurrent = recurrent
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x `(N, T, D)` → logits `(N, num_classes)`."""
        _, state = self.recurrent(x)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM returns (h_n, c_n)
        return self.fc(h_n[-1])

    def logits_per_step(self, x: torch.Tensor) -> torch.Tensor:
        """The answer the model would give after each step: `(N, T, num_classes)`.

        The top layer's output at step t is its hidden state after reading t+1 steps, so the last
        step equals `forward(x)`.
        """
        output, _ = self.recurrent(x)
        return self.fc(output)
