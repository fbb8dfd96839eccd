"""Looking inside a trained classifier: its answer after each row, and the LSTM's gates over time.

* `probabilities_per_step(model, x)`: softmax of `logits_per_step`, the class probabilities the model
  would give if it had to answer after reading t+1 steps (rows); the last step is its real answer.
* `scores_per_step(model, inputs, labels)`: one pass over a test set giving, for every step t, the
  accuracy "if the model had to answer after step t", plus the final probabilities (→ predictions,
  confidences and the confusion matrix of the ordinary evaluation).
* `lstm_gate_trace(model, x)`: the model's own LSTM weights re-run through the lab sheet's equations

      a_t = x_t Wx + h_{t-1} Wh + b      (split i, f, o, g)
      i = σ(a_i)  f = σ(a_f)  o = σ(a_o)  g = tanh(a_g)
      c_t = f ⊙ c_{t-1} + i ⊙ g          h_t = o ⊙ tanh(c_t)

  giving per layer the (T, H) time courses of i, f, o, g, c and h. `nn.LSTM` keeps its weights as
  W_ih (4H, D), W_hh (4H, H), b_ih + b_hh in gate order i, f, g, o; `ScratchLSTM` keeps the sheet's
  Wx (D, 4H), Wh (H, 4H), b (4H,) in order i, f, o, g. `lstm_weights` reads either into the sheet's layout.
* `recompute_hidden(trace)` rebuilds c and h from the gates alone, and `gate_trace_error` says how far
  that is from what the model itself computes (it should be ~1e-7: the heatmaps are the model's).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rnnlab.models.numpy_lstm import lstm_forward
from rnnlab.models.scratch_lstm import from_torch_lstm

GATES = ("i", "f", "o", "g")


class NotAnLSTM(ValueError):
    """The model's recurrent layer is not an LSTM whose weights we know how to read."""


def _as_batch(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    x = torch.as_tensor(x)
    if x.dim() == 2:
        return x.unsqueeze(0), True
    if x.dim() != 3:
        raise ValueError(f"expected a sequence (T, D) or a batch (N, T, D), got shape {tuple(x.shape)}")
    return x, False


@torch.inference_mode()
def probabilities_per_step(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Class probabilities after each step: x (T, D) → (T, C), or (N, T, D) → (N, T, C)."""
    batch, single = _as_batch(x)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    probabilities = model.logits_per_step(batch.to(device)).float().softmax(dim=-1).cpu().numpy()
    model.train(was_training)
    return probabilities[0] if single else probabilities


@torch.inference_mode()
def scores_per_step(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000,
                    num_classes: int = 10) -> dict:
    """One pass over `inputs (N, T, D)`: accuracy after each step and the final answer.

    Returns `accuracy_per_step` (T,), `probabilities` (N, C) after the last step, `predictions` (N,),
    `confidences` (N,), `confusion` (C, C) (rows true, columns predicted) and `accuracy`.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = None
    finals = []
    for start in range(0, len(labels), batch_size):
        x = inputs[start:start + batch_size].to(device)
        y = labels[start:start + batch_size].to(device)
        logits = model.logits_per_step(x).float()  # (B, T, C)
        hits = (logits.argmax(dim=-1) == y[:, None]).sum(dim=0)  # (T,)
        correct = hits if correct is None else correct + hits
        finals.append(logits[:, -1].softmax(dim=-1).cpu())
    model.train(was_training)
    probabilities = torch.cat(finals)
    confidences, predictions = probabilities.max(dim=1)
    y = labels.cpu().long()
    confusion = torch.bincount(y * num_classes + predictions, minlength=num_classes * num_classes)
    confusion = confusion.reshape(num_classes, num_classes)
    return {
        "accuracy_per_step": (correct.double().cpu() / max(1, len(labels))).numpy(),
        "probabilities": probabilities.numpy(),
        "predictions": predictions,
        "confidences": confidences,
        "confusion": confusion,
        "accuracy": confusion.diagonal().sum().item() / max(1, len(labels)),
    }


def decision_step(probabilities: np.ndarray) -> int:
    """The first step from which the answer (argmax) no longer changes: where the model 'has decided'."""
    answers = np.asarray(probabilities).argmax(axis=-1)
    changed = np.nonzero(answers != answers[-1])[0]
    return int(changed[-1] + 1) if len(changed) else 0


def most_confused_pairs(confusion: torch.Tensor | np.ndarray, top: int = 5) -> list[tuple[int, int, int]]:
    """The `top` largest off-diagonal counts as (true, predicted, count), largest first, zeros left out."""
    if isinstance(confusion, torch.Tensor):
        confusion = confusion.cpu().numpy()
    matrix = np.array(confusion, dtype=np.int64)
    np.fill_diagonal(matrix, 0)
    order = np.argsort(-matrix, axis=None, kind="stable")[:top]
    pairs = [(int(k // matrix.shape[1]), int(k % matrix.shape[1])) for k in order]
    return [(t, p, int(matrix[t, p])) for t, p in pairs if matrix[t, p] > 0]


def recurrent_of(model: nn.Module) -> nn.Module:
    return getattr(model, "recurrent", model)


@torch.no_grad()
def lstm_weights(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per layer (Wx (D, 4H), Wh (H, 4H), b (4H,)) in the sheet's gate order i, f, o, g.

    Reads `ScratchLSTM` (`layers[k].Wx/Wh/b`) directly, and `nn.LSTM` through `from_torch_lstm`
    (the one place that maps PyTorch's i, f, g, o and two biases). Anything else raises `NotAnLSTM`.
    """
    recurrent = recurrent_of(model)
    if isinstance(recurrent, nn.LSTM):
        try:
            recurrent = from_torch_lstm(recurrent)
        except ValueError as exc:
            raise NotAnLSTM(str(exc)) from None
    sublayers = getattr(recurrent, "layers", None)
    if sublayers is None or not all(all(hasattr(layer, n) for n in ("Wx", "Wh", "b")) for layer in sublayers):
        raise NotAnLSTM(f"{type(recurrent).__name__} is not an LSTM (nn.LSTM or ScratchLSTM): it has no gates to show")
    if not getattr(recurrent, "batch_first", True):
        raise NotAnLSTM("only batch_first LSTMs can be traced")
    return [(layer.Wx.detach(), layer.Wh.detach(), layer.b.detach()) for layer in sublayers]


def is_lstm(model: nn.Module) -> bool:
    try:
        lstm_weights(model)
    except NotAnLSTM:
        return False
    return True


@torch.no_grad()
def lstm_gate_trace(model: nn.Module, x: torch.Tensor, dtype: torch.dtype = torch.float64) -> list[dict[str, np.ndarray]]:
    """Re-run the model's own LSTM weights through the sheet's equations on x (T, D) or (N, T, D).

    The equations are `numpy_lstm.lstm_forward`'s, the NumPy reference. Returns one dict per layer
    with arrays `i, f, o, g, c, h` of shape (T, H) (or (N, T, H)), computed in `dtype` (float64 by
    default, so the trace is at least as exact as the model).
    """
    batch, single = _as_batch(x)
    np_dtype = torch.empty((), dtype=dtype).numpy().dtype
    inputs = batch.detach().cpu().numpy().astype(np_dtype)
    trace = []
    for Wx, Wh, b in lstm_weights(model):
        Wx, Wh, b = (w.detach().cpu().numpy().astype(np_dtype) for w in (Wx, Wh, b))
        H = Wh.shape[0]
        h, cache = lstm_forward(inputs, np.zeros((inputs.shape[0], H), np_dtype), Wx, Wh, b)
        cells = cache[-1]  # per step: (i, f, o, g, prev_c, next_c, tanh(next_c)), each (N, H)
        record = {name: np.stack([cell[k] for cell in cells], axis=1) for k, name in enumerate(GATES)}
        record["c"] = np.stack([cell[5] for cell in cells], axis=1)
        record["h"] = h
        trace.append({name: np.ascontiguousarray(v[0] if single else v) for name, v in record.items()})
        inputs = h
    return trace


def recompute_hidden(layer: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """c and h rebuilt from the gates alone: c_t = f c_{t-1} + i g, h_t = o tanh(c_t). Time is axis -2."""
    i, f, o, g = (np.asarray(layer[k], dtype=np.float64) for k in GATES)
    c = np.empty_like(i)
    previous = np.zeros_like(i[..., 0, :])
    for t in range(i.shape[-2]):
        previous = f[..., t, :] * previous + i[..., t, :] * g[..., t, :]
        c[..., t, :] = previous
    return c, o * np.tanh(c)


@torch.no_grad()
def gate_trace_error(model: nn.Module, x: torch.Tensor, trace: list[dict[str, np.ndarray]] | None = None) -> float:
    """Largest |difference| between h (and c) rebuilt from the traced gates and the model's own.

    Compared with the model's own forward pass: the top layer's output h_t at every step, and every
    layer's final (h_T, c_T).
    """
    batch, single = _as_batch(x)
    if trace is None:
        trace = lstm_gate_trace(model, batch)
    elif single:
        trace = [{k: v[None] for k, v in layer.items()} for layer in trace]
    recurrent = recurrent_of(model)
    was_training = recurrent.training
    recurrent.eval()
    device = next(recurrent.parameters()).device
    output, (h_n, c_n) = recurrent(batch.to(device))
    recurrent.train(was_training)
    output, h_n, c_n = (t.double().cpu().numpy() for t in (output, h_n, c_n))
    errors = []
    for k, layer in enumerate(trace):
        c, h = recompute_hidden(layer)
        errors += [np.abs(h[:, -1] - h_n[k]).max(), np.abs(c[:, -1] - c_n[k]).max()]
        if k == len(trace) - 1:
            errors.append(np.abs(h - output).max())
    return float(max(errors))
