"""The training loop: the sheet's `train()`, made fast, resumable and safe.

One step is the sheet's: forward, cross-entropy, `zero_grad`, backward, Adam. What changed:
- batches come from memory (`SequenceBatches`), not a per-image PIL pipeline;
- the loss and accuracy are summed on the device and read once per `log_every` steps, not every step;
- the state of the run (`Progress`) is checkpointed so a killed run resumes bit for bit;
- on the CPU, glibc keeps the step's freed buffers for the next step (`keep_freed_memory`);
- Ctrl-C/SIGTERM finish the step, checkpoint and stop; a loss that is not finite stops the run.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from rnnlab.data.batches import SequenceBatches
from rnnlab.errors import RnnlabError
from rnnlab.training.distributed import SINGLE, DistContext, all_reduce_sum
from rnnlab.training.evaluate import autocast


@dataclass
class Progress:
    """Where a run stands; everything here goes into the checkpoint."""

    epoch: int = 0  # the epoch under way (0-based)
    step: int = 0  # global batches of it already done
    epochs: list[dict] = field(default_factory=list)  # metrics of finished epochs
    loss_sum: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.float64))
    correct: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.int64))
    seconds: float = 0.0  # training time of the epoch under way so far

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "epochs": self.epochs,
                "loss_sum": self.loss_sum.cpu(), "correct": self.correct.cpu(), "seconds": self.seconds}

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device) -> "Progress":
        return cls(state["epoch"], state["step"], list(state["epochs"]), state["loss_sum"].to(device),
                   state["correct"].to(device), float(state["seconds"]))


_MALLOC_TUNED = False


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed big blocks for reuse instead of returning them to the kernel.

    A CPU training step of nn.LSTM allocates and frees ~20 MB of buffers. With glibc's defaults each
    big one is a fresh mmap (or the top of the heap is trimmed and grown again), so every page is
    faulted in and zeroed anew: ~5,000 page faults and ~9 ms of kernel time per step on a 2-core EPYC,
    a third of the step. Raising the mmap threshold to its maximum (32 MiB) and the trim threshold
    (what MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ would do at start-up) lets the next step reuse
    the same memory. Results are unchanged; the process keeps its peak heap until it exits.
    Once per process; nothing happens off glibc or when either variable is set. Returns whether it is in effect.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from <malloc.h>
    _MALLOC_TUNED = bool(mallopt(M_TRIM_THRESHOLD, 1 << 30)) & bool(mallopt(M_MMAP_THRESHOLD, 32 << 20))
    return _MALLOC_TUNED


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM arrived; a checkpoint was written. `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int, checkpoint: str | None):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.checkpoint = checkpoint
        self.exit_code = 128 + signum


class TrainingDiverged(RnnlabError):
    """The loss became NaN or infinite."""


class StopSignals:
    """Turn SIGINT/SIGTERM into a request to stop after the current step (a second one stops at once)."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.signum is not None:  # asked twice: stop now
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: SequenceBatches,
    *,
    epochs: int,
    progress: Progress | None = None,
    precision: str = "fp32",
    log_every: int = 50,
    checkpoint_every: int = 0,
    save_checkpoint: Callable[[Progress], str] | None = None,
    train_flops_per_sample: int = 0,
    peak_gflops: float | None = None,
    ctx: DistContext = SINGLE,
    log: Callable[[str], None] = print,
    quiet: bool = False,
) -> Progress:
    """Train `model` for `epochs` epochs from `progress` (a fresh run when None); return the final Progress.

    `save_checkpoint(progress) -> path` is called at the end of every epoch, every `checkpoint_every`
    steps, and on SIGINT/SIGTERM. Each finished epoch appends
    `{epoch, train_loss, train_accuracy, seconds, gflops[, peak_fraction]}` to `progress.epochs` (model
    GFLOP/s, and its share of `peak_gflops`, the measured matmul peak), and `log` prints the sheet's line.
    """
    device = next(model.parameters()).device
    if device.type == "cpu":
        keep_freed_memory()
    progress = progress or Progress(loss_sum=torch.zeros((), dtype=torch.float64, device=device),
                                    correct=torch.zeros((), dtype=torch.int64, device=device))
    n, batch_size, steps = len(batches.labels), batches.batch_size, len(batches)
    last_checkpoint = None
    model.train()
    with StopSignals() as stop:
        while progress.epoch < epochs:
            epoch = progress.epoch
            bar = tqdm(total=steps, initial=progress.step, desc=f"epoch {epoch + 1}/{epochs}", unit="step",
                       leave=False, disable=True if (quiet or not ctx.is_main) else None, file=sys.stderr)
            first_bad = torch.full((), -1, dtype=torch.int64, device=device)
            started = time.perf_counter()
            for step, (x, y) in enumerate(batches.epoch(epoch, start=progress.step), start=progress.step):
                # Each rank's loss is its share of the global batch's sum over the global batch size, times
                # world_size because DDP averages gradients: the step equals one process on the whole batch.
                global_batch = min(batch_size, n - step * batch_size)
                with autocast(device, precision):
                    logits = model(x)
                loss = F.cross_entropy(logits.float(), y, reduction="sum") * (ctx.world_size / global_batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss = loss.detach()
                progress.loss_sum += loss
                progress.correct += (logits.detach().argmax(dim=1) == y).sum()
                first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
                progress.step = step + 1
                done = progress.step == steps
                at_log = progress.step % log_every == 0 or done
                at_checkpoint = bool(checkpoint_every) and progress.step % checkpoint_every == 0 and not done
                if at_log or at_checkpoint or stop.signum:
                    bad = int(first_bad)  # a host sync: once per log interval, and before any checkpoint
                    if bad >= 0:
                        where = f"last good checkpoint: {last_checkpoint}" if last_checkpoint else "no checkpoint yet"
                        raise TrainingDiverged(
                            f"the loss stopped being finite (nan or inf) at epoch {epoch + 1}, step {bad + 1}: "
                            f"training stopped ({where}); lower --lr or check the data"
                        )
                if at_log:
                    bar.update(progress.step - bar.n)
                    bar.set_postfix(loss=f"{progress.loss_sum.item() / progress.step / ctx.world_size:.4f}")
                # A signal stops the run after this step; under torchrun every rank must stop at the same
                # step, so the ranks agree on it at log steps only.
                signum = stop.signum or 0
                if ctx.is_distributed:
                    requested = torch.tensor(signum if at_log else 0)
                    if at_log:
                        torch.distributed.all_reduce(requested, op=torch.distributed.ReduceOp.MAX)
                    signum = int(requested)
                if signum:
                    progress.seconds += time.perf_counter() - started
                    raise TrainingInterrupted(signum, save_checkpoint(progress) if save_checkpoint else None)
                if at_checkpoint and save_checkpoint is not None:
                    progress.seconds += time.perf_counter() - started
                    started = time.perf_counter()
                    last_checkpoint = save_checkpoint(progress)
            bar.close()
            seconds = progress.seconds + time.perf_counter() - started
            totals = torch.stack([progress.loss_sum, progress.correct.to(torch.float64)])
            all_reduce_sum(totals, ctx)
            record = {
                "epoch": epoch + 1,
                "train_loss": totals[0].item() / ctx.world_size / steps,
                "train_accuracy": totals[1].item() / n,
                "seconds": seconds,
                "gflops": train_flops_per_sample * n / seconds / 1e9,
            }
            if peak_gflops:
                record["peak_fraction"] = record["gflops"] / peak_gflops
            progress.epochs.append(record)
            progress.epoch, progress.step, progress.seconds = epoch + 1, 0, 0.0
            progress.loss_sum.zero_()
            progress.correct.zero_()
            log(
                f"Epoch [{epoch + 1}/{epochs}], Loss: {record['train_loss']:.4f}, "
                f"Accuracy: {100 * record['train_accuracy']:.2f}%  ({seconds:.1f} s, {record['gflops']:.1f} GFLOP/s"
                + (f", {100 * record['peak_fraction']:.0f}% of the {peak_gflops:.0f} GFLOP/s matmul peak)"
                   if peak_gflops else ")")
            )
            if save_checkpoint is not None:
                last_checkpoint = save_checkpoint(progress)
            if stop.signum:
                raise TrainingInterrupted(stop.signum, last_checkpoint)
    return progress
