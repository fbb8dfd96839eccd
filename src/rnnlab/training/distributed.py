"""Data-parallel training on PyTorch's own engine: torchrun + DistributedDataParallel.

A plain `rnnlab train` is one process and never touches torch.distributed. Under `torchrun` the
environment names this process's RANK and WORLD_SIZE; `init_distributed` joins the group (gloo on
CPU, nccl on CUDA) and every collective the rest of rnnlab needs is a small helper here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from rnnlab.errors import RnnlabError
from rnnlab.models import new_model


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistContext()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then the CPU; asking for one that is absent is an error.

    Under torchrun each process takes the GPU of its LOCAL_RANK.
    """
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
    }
    if name == "auto":
        name = next(d for d in ("cuda", "mps", "cpu") if available[d])
    if not available[name]:
        raise RnnlabError(f"--device {name} is not available on this machine; use --device auto or cpu")
    if name == "cuda" and launched_by_torchrun():
        torch.cuda.set_device(local_rank())
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy's global generator and torch (every device)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def initial_model(config) -> torch.nn.Module:
    """The model a run of `config` starts from, on the CPU: every generator seeded with `config.seed`, then the
    model built. `lab.train` starts from it and `rnnlab gradients` rebuilds it, so the two cannot drift apart.

    `--backend numpy` starts from the NumPy classifier's own seeded init (`new_classifier`, as `fit_numpy`),
    handed over as the torch model of `config`.
    """
    seed_everything(config.seed)
    if config.backend == "numpy":
        from rnnlab.training.numpy_fit import as_torch_model, new_classifier

        return as_torch_model(config, new_classifier(config))
    return new_model(config)


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed(device: torch.device, timeout_s: float = 120.0) -> DistContext:
    """Join the process group torchrun set up, once per process (a no-op for a single process).

    The backend follows the device the run trains on: nccl for CUDA, gloo otherwise.
    """
    if not launched_by_torchrun():
        return SINGLE
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank())


def all_reduce_sum(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.is_distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj, ctx: DistContext) -> list:
    if not ctx.is_distributed:
        return [obj]
    gathered = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj, ctx: DistContext):
    if not ctx.is_distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.is_distributed:
        dist.barrier()


def shutdown() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
