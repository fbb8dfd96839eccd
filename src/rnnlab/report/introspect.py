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

    Reads `nn.LSTM` (W_ih, W_hh, b_ih + b_hh, order i, f, g, o) and `ScratchLSTM`
    (`layers[k].Wx/Wh/b`, order i, f, o, g). Anything else raises `NotAnLSTM`.
    """
    recurrent = recurrent_of(model)
    if isinstance(recurrent, nn.LSTM):
        if recurrent.bidirectional or getattr(recurrent, "proj_size", 0):
            raise NotAnLSTM("only unidirectional nn.LSTM without projections can be traced")
        if not recurrent.batch_first:
            raise NotAnLSTM("only batch_first nn.LSTM can be traced")
        layers = []
        for k in range(recurrent.num_layers):
            w_ih = getattr(recurrent, f"weight_ih_l{k}").detach()
            w_hh = getattr(recurrent, f"weight_hh_l{k}").detach()
            if recurrent.bias:
                bias = (getattr(recurrent, f"bias_ih_l{k}") + getattr(recurrent, f"bias_hh_l{k}")).detach()
            else:
                bias = torch.zeros(w_ih.shape[0], dtype=w_ih.dtype, device=w_ih.device)
            i, f, g, o = w_ih.chunk(4, 0)
            Wx = torch.cat([i, f, o, g]).t()
            i, f, g, o = w_hh.chunk(4, 0)
            Wh = torch.cat([i, f, o, g]).t()
            i, f, g, o = bias.chunk(4)
            layers.append((Wx, Wh, torch.cat([i, f, o, g])))
        return layers
    sublayers = getattr(recurrent, "layers", None)
    if sublayers is not None and all(all(hasattr(layer, n) for n in ("Wx", "Wh", "b")) for layer in sublayers):
        if not getattr(recurrent, "batch_first", True):
            raise NotAnLSTM("only batch_first ScratchLSTM can be traced")
        return [(layer.Wx.detach(), layer.Wh.detach(), layer.b.detach()) for layer in sublayers]
    raise NotAnLSTM(f"{type(recurrent).__name__} is not an LSTM (nn.LSTM or ScratchLSTM): it has no gates to show")


def is_lstm(model: nn.Module) -> bool:
    try:
        lstm_weights(model)
    except NotAnLSTM:
        return False
    return True


@torch.no_grad()
def lstm_gate_trace(model: nn.Module, x: torch.Tensor, dtype: torch.dtype = torch.float64) -> list[dict[str, np.ndarray]]:
    """Re-run the model's own LSTM weights through the sheet's equations on x (T, D) or (N, T, D).

    Returns one dict per layer with arrays `i, f, o, g, c, h` of shape (T, H) (or (N, T, H)),
    computed in `dtype` (float64 by default, so the trace is at least as exact as the model).
    """
    batch, single = _as_batch(x)
    layers = lstm_weights(model)
    inputs = batch.to(dtype=dtype, device="cpu")
    N, T, _ = inputs.shape
    trace = []
    for Wx, Wh, b in layers:
        Wx, Wh, b = (w.to(dtype=dtype, device="cpu") for w in (Wx, Wh, b))
        H = Wh.shape[0]
        h = inputs.new_zeros(N, H)
        c = inputs.new_zeros(N, H)
        record = {name: inputs.new_empty(N, T, H) for name in ("i", "f", "o", "g", "c", "h")}
        projected = inputs @ Wx + b  # (N, T, 4H)
        for t in range(T):
            a = projected[:, t] + h @ Wh
            i, f, o = torch.sigmoid(a[:, :3 * H]).chunk(3, dim=1)
            g = torch.tanh(a[:, 3 * H:])
            c = f * c + i * g
            h = o * torch.tanh(c)
            for name, value in zip(("i", "f", "o", "g", "c", "h"), (i, f, o, g, c, h)):
                record[name][:, t] = value
        trace.append({name: (v[0] if single else v).numpy() for name, v in record.items()})
        inputs = record["h"]
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
