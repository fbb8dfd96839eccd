"""The optimizer and the learning-rate schedule of a run, from its Config.

The sheet's recipe is Adam at a constant lr; `--weight-decay` switches to AdamW (decoupled decay) and
`--lr-schedule` adds a schedule stepped after every batch. The schedule's state goes into each checkpoint
(`Checkpointing.scheduler`), so a resumed run takes exactly the steps an uninterrupted one would.
"""

from __future__ import annotations

import torch
from torch import nn


def make_optimizer(model: nn.Module, config, device: torch.device) -> torch.optim.Optimizer:
    """Adam (the sheet's) or, with weight decay, AdamW; fused on CPU/CUDA: one kernel for all parameters."""
    fused = device.type in ("cpu", "cuda")
    if config.weight_decay:
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    return torch.optim.Adam(model.parameters(), lr=config.lr, fused=fused)


def make_scheduler(optimizer: torch.optim.Optimizer, config, steps_per_epoch: int):
    """The `--lr-schedule` over `epochs × steps_per_epoch` steps, or None for the sheet's constant lr.

    cosine: from --lr down to 0 along half a cosine. onecycle: PyTorch's OneCycleLR with --lr as the peak
    (warm-up over the first 30% of the steps from --lr/25, then cosine annealing to --lr/25e4).
    Create it before loading a checkpoint's optimizer state, then load its own state (`resume_fit`).
    """
    total = max(1, config.epochs * steps_per_epoch)
    if config.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if config.lr_schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    return None


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])
