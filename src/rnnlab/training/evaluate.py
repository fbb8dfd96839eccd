"""Test-set evaluation: large batches under `torch.inference_mode()`, summed across ranks."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from rnnlab.training.distributed import SINGLE, DistContext, all_reduce_sum


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CPU and CUDA when asked; fp32 (no autocast) otherwise."""
    if precision == "bf16" and device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class Evaluation:
    accuracy: float  # fraction of the whole test set
    confusion: torch.Tensor  # (C, C) int64, rows = true class, columns = predicted
    predictions: torch.Tensor | None  # (N,) int64, in test-set order (single process only)
    confidences: torch.Tensor | None  # (N,) probability of the predicted class

    @property
    def per_class_accuracy(self) -> list[float]:
        totals = self.confusion.sum(dim=1).clamp(min=1)
        return (self.confusion.diagonal() / totals).tolist()


@torch.inference_mode()
def evaluate(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 1000,
             precision: str = "fp32", num_classes: int = 10, ctx: DistContext = SINGLE) -> Evaluation:
    """Accuracy of `model` on `inputs (N, T, D)` / `labels (N,)`, each image counted once.

    Under data parallelism each rank scores `inputs[rank::world_size]` and the confusion counts are
    summed with `all_reduce`, so the accuracy is over the whole test set.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    mine = slice(ctx.rank, None, ctx.world_size)
    inputs, labels = inputs[mine], labels[mine]
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    predictions, confidences = [], []
    for start in range(0, len(labels), batch_size):
        x = inputs[start : start + batch_size].to(device)
        y = labels[start : start + batch_size].to(device)
        with autocast(device, precision):
            logits = model(x)
        probabilities = logits.float().softmax(dim=1)
        confidence, predicted = probabilities.max(dim=1)
        confusion += torch.bincount(y * num_classes + predicted, minlength=num_classes * num_classes)
        predictions.append(predicted.cpu())
        confidences.append(confidence.cpu())
    all_reduce_sum(confusion, ctx)
    model.train(was_training)
    confusion = confusion.reshape(num_classes, num_classes).cpu()
    accuracy = confusion.diagonal().sum().item() / max(1, confusion.sum().item())
    single = not ctx.is_distributed
    return Evaluation(
        accuracy,
        confusion,
        torch.cat(predictions) if single and predictions else None,
        torch.cat(confidences) if single and confidences else None,
    )
