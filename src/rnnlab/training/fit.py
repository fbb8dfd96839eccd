"""The training loop: the sheet's `train()`, made fast, resumable and safe.

One step is the sheet's: forward, cross-entropy, `zero_grad`, backward, Adam. What changed:
- batches come from memory (`SequenceBatches`), not a per-image PIL pipeline;
- loss and accuracy are summed on the device; they and the gradient norm are read at log steps only;
- the state of the run (`Progress`) is checkpointed (`Checkpointing`) so a killed run resumes bit for bit;
- Ctrl-C/SIGTERM finish the step, checkpoint and stop; a loss that is not finite stops the run.
Under torchrun every rank takes the same decisions at the same step: stopping is a vote.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from rnnlab.data.batches import SequenceBatches
from rnnlab.errors import CheckpointError, RnnlabError
from rnnlab.training.checkpoint import atomic_save, capture_rng, restore_rng
from rnnlab.training.distributed import SINGLE, DistContext, all_gather_objects, all_reduce_sum, barrier
from rnnlab.training.evaluate import autocast


@dataclass
class Progress:
    """Where a run stands; everything here goes into the checkpoint."""

    epoch: int = 0  # the epoch under way (0-based)
    step: int = 0  # global batches of it already done
    epochs: list[dict] = field(default_factory=list)  # records of finished epochs
    loss_sum: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.float64))
    correct: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.int64))
    seconds: float = 0.0  # training time of the epoch under way so far

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "epochs": self.epochs,
                "loss_sum": self.loss_sum.cpu(), "correct": self.correct.cpu(), "seconds": self.seconds}

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device) -> "Progress":
        return cls(int(state["epoch"]), int(state["step"]), list(state["epochs"]), state["loss_sum"].to(device),
                   state["correct"].to(device), float(state["seconds"]))

    def running_loss(self) -> float:
        """Mean loss of this process's batches so far in the epoch (each step's loss is its shard's mean)."""
        return self.loss_sum.item() / max(1, self.step)


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM arrived; `checkpoint` is the file written (or None). `exit_code` is 128 + the signal."""

    def __init__(self, signum: int, checkpoint: str | None):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum, self.checkpoint, self.exit_code = signum, checkpoint, 128 + signum
        self.resume_dir: Path | None = None  # what --resume takes, when not the checkpoint's folder (compare)
        self.command: str | None = None  # the command that resumes, when not the CLI's first word ("caption train")

    def resume_hint(self, command: str) -> str:
        if not self.checkpoint and self.resume_dir is None:
            return "no checkpoint was written"
        run_dir = Path(self.checkpoint or ".").parent
        target = self.resume_dir or (run_dir.parent if command == "compare" else run_dir)
        saved = f"checkpoint saved: {self.checkpoint}; " if self.checkpoint else ""
        return f"{saved}resume with: rnnlab {self.command or command} --resume {target}"


class TrainingDiverged(RnnlabError):
    """The loss became NaN or infinite."""


class StopSignals:
    """Turn SIGINT/SIGTERM into a request to stop after the current step (a second one stops at once).

    Used as a context manager around a whole run, so a signal during set-up is caught too. Not entered,
    it never asks to stop (a notebook's Ctrl-C stays an ordinary KeyboardInterrupt).
    """

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


def stop_vote(stop: StopSignals, ctx: DistContext) -> int:
    """The signal to stop on (0: go on), the same on every rank: one rank's signal stops them all."""
    signum = stop.signum or 0
    if ctx.is_distributed:
        requested = torch.tensor(signum)
        torch.distributed.all_reduce(requested, op=torch.distributed.ReduceOp.MAX)
        signum = int(requested)
    return signum


@dataclass
class Checkpointing:
    """Where and how often `fit` saves the run: at every epoch end, every `every` steps, and when stopped.

    `header` identifies the run in the file (format, run id, config, world size). `path=None` saves nothing.
    """

    path: Path | None = None
    every: int = 0
    header: dict = field(default_factory=dict)
    last: str | None = None  # the last checkpoint written
    scheduler: object | None = None  # the lr schedule, whose state is saved with the optimizer's

    def save(self, model: nn.Module, optimizer: torch.optim.Optimizer, progress: Progress, ctx: DistContext) -> str | None:
        if self.path is None:
            return None
        sums = {"loss_sum": progress.loss_sum.cpu(), "correct": progress.correct.cpu()}
        ranks = all_gather_objects({"rng": capture_rng(), "sums": sums}, ctx)  # each rank's RNG and partial sums
        if ctx.is_main:
            model = getattr(model, "module", model)  # DDP's wrapped model
            schedule = {"scheduler": self.scheduler.state_dict()} if self.scheduler is not None else {}
            atomic_save({**self.header, **schedule, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "progress": progress.state_dict(), "ranks": ranks}, self.path)
        barrier(ctx)
        self.last = str(self.path)
        return self.last


def resume_fit(model: nn.Module, optimizer: torch.optim.Optimizer, checkpoint: dict, ctx: DistContext,
               device: torch.device, scheduler=None) -> Progress:
    """Restore model, optimizer, this rank's RNG and partial sums from a checkpoint; return its Progress."""
    try:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:  # created before the optimizer's state was loaded, which holds its lr
            scheduler.load_state_dict(checkpoint["scheduler"])
        mine = checkpoint["ranks"][ctx.rank]
        progress = Progress.from_state_dict({**checkpoint["progress"], **mine["sums"]}, device)
        restore_rng(mine["rng"])
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"the checkpoint does not fit this run ({type(exc).__name__}: {detail}); "
                              "it is damaged or from another run: start a new run") from None
    return progress


def check_finite(first_bad: int, epoch: int, last_checkpoint: str | None) -> None:
    """Stop the run if a step's loss was NaN or infinite (`first_bad` is that step, or -1)."""
    if first_bad >= 0:
        where = f"last good checkpoint: {last_checkpoint}" if last_checkpoint else "no checkpoint yet"
        raise TrainingDiverged(f"the loss stopped being finite (nan or inf) at epoch {epoch + 1}, step "
                               f"{first_bad + 1}: training stopped ({where}); lower --lr (or --weight-decay), or check the data")


def epoch_record(epoch: int, mean_loss: float, accuracy: float, seconds: float, images: int,
                 flops_per_sample: int, peak_gflops: float | None) -> dict:
    """What `metrics.json` keeps of one finished epoch; the share of the matmul peak only when it means something."""
    record = {"epoch": epoch + 1, "train_loss": mean_loss, "train_accuracy": accuracy, "seconds": seconds,
              "gflops": flops_per_sample * images / seconds / 1e9}
    if peak_gflops and record["gflops"] <= peak_gflops:  # above the peak: the peak was emulated, not the machine's
        record["peak_fraction"] = record["gflops"] / peak_gflops
    return record


def epoch_line(record: dict, epochs: int, peak_gflops: float | None, backend: str = "") -> str:
    """The sheet's per-epoch line, with time and speed."""
    speed = f"{record['seconds']:.1f} s, {record['gflops']:.1f} GFLOP/s"
    if "peak_fraction" in record:
        speed += f", {100 * record['peak_fraction']:.0f}% of the ~{peak_gflops:.0f} GFLOP/s matmul peak (rough)"
    return (f"Epoch [{record['epoch']}/{epochs}], Loss: {record['train_loss']:.4f}, "
            f"Accuracy: {100 * record['train_accuracy']:.2f}%  ({speed}{backend})")


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, global_batch: int,
               *, ctx: DistContext = SINGLE, precision: str = "fp32", clip_grad: float = 0.0, scheduler=None,
               norm: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One step of the sheet: forward, cross-entropy, `zero_grad`, backward, (clip), Adam, (schedule).

    Returns the detached loss and logits, and the gradients' global L2 norm before clipping (a device tensor): when
    clipping (clip_grad_norm_ computes it anyway) or asked (`norm`), else None: ordinary steps pay nothing for it.
    """
    # Each rank's loss is its shard's sum over the global batch size, times world_size because DDP averages
    # gradients: the step equals one process on the whole global batch.
    with autocast(x.device, precision):
        logits = model(x)
    loss = F.cross_entropy(logits.float(), y, reduction="sum") * (ctx.world_size / global_batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = None
    if clip_grad:
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    elif norm:  # the same computation as clip_grad_norm_'s, which is get_total_norm then the scaling
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return loss.detach(), logits.detach(), grad_norm


def end_epoch(progress: Progress, seconds: float, images: int, steps: int, lr: float, ctx: DistContext,
              flops_per_sample: int, peak_gflops: float | None) -> dict:
    """Close the epoch under way: its record (sums over every rank) goes into `progress.epochs`, which moves on."""
    totals = all_reduce_sum(torch.stack([progress.loss_sum, progress.correct.to(torch.float64)]), ctx)
    record = epoch_record(progress.epoch, totals[0].item() / ctx.world_size / steps, totals[1].item() / images,
                          seconds, images, flops_per_sample, peak_gflops)
    record["lr"] = lr  # at the end of the epoch
    progress.epochs.append(record)
    progress.epoch, progress.step, progress.seconds = progress.epoch + 1, 0, 0.0
    progress.loss_sum.zero_()
    progress.correct.zero_()
    return record


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, batches: SequenceBatches, *, epochs: int,
        progress: Progress | None = None, precision: str = "fp32", log_every: int = 50,
        checkpoints: Checkpointing | None = None, flops_per_sample: int = 0, peak_gflops: float | None = None,
        stop: StopSignals | None = None, ctx: DistContext = SINGLE, log: Callable[[str], None] = print,
        quiet: bool = False, scheduler=None, clip_grad: float = 0.0,
        on_log: Callable[[int, float, float, float, float], None] | None = None,
        after_epoch: Callable[[dict], None] | None = None) -> Progress:
    """Train `model` for `epochs` epochs from `progress` (a fresh run when None); return the final Progress.

    Each finished epoch appends `epoch_record(...)` to `progress.epochs` and logs the sheet's line.
    `checkpoints` says where and how often to save; `stop` (entered `StopSignals`) ends the run at the
    next step with a checkpoint and `TrainingInterrupted`. `scheduler` is stepped after every batch and
    `clip_grad` (> 0) clips the gradients' global norm; `on_log(global step, loss, accuracy, lr, grad norm before
    clipping)` is called at each log step and `after_epoch(record)` after each epoch, before its checkpoint
    (experiment logs, validation).
    """
    device = next(model.parameters()).device
    progress = progress or Progress(loss_sum=torch.zeros((), dtype=torch.float64, device=device),
                                    correct=torch.zeros((), dtype=torch.int64, device=device))
    checkpoints = checkpoints or Checkpointing()
    stop = stop or StopSignals()
    n, batch_size, steps = len(batches.labels), batches.batch_size, len(batches)
    model.train()
    while progress.epoch < epochs:
        epoch = progress.epoch
        bar = tqdm(total=steps, initial=progress.step, desc=f"epoch {epoch + 1}/{epochs}", unit="step",
                   leave=False, disable=True if (quiet or not ctx.is_main) else None, file=sys.stderr)
        first_bad = torch.full((), -1, dtype=torch.int64, device=device)
        started = time.perf_counter()
        for step, (x, y) in enumerate(batches.epoch(epoch, start=progress.step), start=progress.step):
            at_log = (step + 1) % log_every == 0 or step + 1 == steps
            loss, logits, grad_norm = train_step(model, optimizer, x, y, min(batch_size, n - step * batch_size),
                                                 ctx=ctx, precision=precision, clip_grad=clip_grad, scheduler=scheduler,
                                                 norm=at_log and on_log is not None)
            progress.loss_sum += loss
            progress.correct += (logits.argmax(dim=1) == y).sum()
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
            progress.step = step + 1
            at_checkpoint = bool(checkpoints.every) and progress.step % checkpoints.every == 0 and progress.step < steps
            if not (at_log or at_checkpoint or (not ctx.is_distributed and stop.signum)):
                continue
            check_finite(int(first_bad), epoch, checkpoints.last)  # a host sync, never at every step
            if at_log:
                bar.update(progress.step - bar.n)
                bar.set_postfix(loss=f"{progress.running_loss():.4f}")
                if on_log is not None:  # (global step, running loss, running accuracy, lr, norm) of this shard
                    seen = min(progress.step * batch_size, n) / ctx.world_size
                    on_log(epoch * steps + progress.step, progress.running_loss(), progress.correct.item() / seen,
                           optimizer.param_groups[0]["lr"], float(grad_norm))
            # Under torchrun the ranks vote at log steps only, so that all of them stop at the same step.
            signum = stop_vote(stop, ctx) if (at_log or not ctx.is_distributed) else 0
            if signum or at_checkpoint:
                progress.seconds += time.perf_counter() - started
                started = time.perf_counter()
                checkpoints.save(model, optimizer, progress, ctx)
            if signum:
                raise TrainingInterrupted(signum, checkpoints.last)
        bar.close()
        record = end_epoch(progress, progress.seconds + time.perf_counter() - started, n, steps,
                           optimizer.param_groups[0]["lr"], ctx, flops_per_sample, peak_gflops)
        log(epoch_line(record, epochs, peak_gflops))
        if after_epoch is not None:  # on every rank (a validation pass is collective); may add to the record
            after_epoch(record)
        checkpoints.save(model, optimizer, progress, ctx)
        signum = stop_vote(stop, ctx)  # a vote here too: a signal after the last step's vote must stop every rank
        if signum:
            raise TrainingInterrupted(signum, checkpoints.last)
    return progress
