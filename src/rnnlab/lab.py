"""The lab: `train` one model into a run folder, `compare` several under the same settings and seeds.

The orchestrator, read top to bottom: settings → data → model → `fit` → evaluate → files. The CLI, the
notebook and the tests call these two functions; the run folder's format is `rnnlab.runs`'.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from rnnlab.config import Config
from rnnlab.data import Dataset, SequenceBatches, input_shape, load_data, sequence_inputs
from rnnlab.data.validation import hold_out
from rnnlab.errors import CheckpointError, RnnlabError
from rnnlab.models import count_parameters
from rnnlab.experiments import run_comparison
from rnnlab.runs import (CHECKPOINT, CONFIG, METRICS, MODEL, RunResult, check_data_source, check_run_dir,
                         claim_run_dir, default_run_dir, discarded_unless_resumable, load_run, open_for_resume,
                         weights_checksum, write_json)
from rnnlab.training.checkpoint import (CHECKPOINT_FORMAT, MODEL_FORMAT, atomic_save, check_progress,
                                       remove_stale_temporaries)
from rnnlab.training.distributed import (all_gather_objects, barrier, broadcast_object, init_distributed,
                                         initial_model, launched_by_torchrun, resolve_device, seed_everything)
from rnnlab.training.evaluate import evaluate
from rnnlab.training.fit import Checkpointing, StopSignals, fit, resume_fit
from rnnlab.training.flops import matmul_peak_gflops, train_flops_per_sample
from rnnlab.training.logs import ExperimentLog, require_tensorboard, tensorboard_dir
from rnnlab.training.machine import check_memory, environment, free_cores_threads, native_bf16
from rnnlab.training.optim import make_optimizer, make_scheduler


def train(config: Config | None, run_dir: Path | None = None, *, resume: bool = False, overrides: dict | None = None,
          dataset: Dataset | None = None, log: Callable[[str], None] = print, quiet: bool = False,
          stop: StopSignals | None = None) -> RunResult:
    """Train `config.model` into `run_dir` (or, with `resume=True`, continue the run there) and evaluate it.

    Resuming takes the run's own settings; `overrides` (what the user asked for) must agree with them.
    Everything a user can get wrong is checked before the folder is touched. Under torchrun only rank 0
    writes. SIGINT/SIGTERM from the very start end in a checkpoint and `TrainingInterrupted` (`stop`: the
    caller's own, already listening).
    """
    with contextlib.nullcontext(stop) if stop else StopSignals() as stop:
        checkpoint = None
        if resume:
            config, run_id, checkpoint = open_for_resume(run_dir, overrides or {})
            if checkpoint == "finished":
                log(f"{run_dir}: this run is already complete; nothing to resume")
                return load_run(run_dir)
        run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config.model)
        if config.backend == "numpy" and launched_by_torchrun():
            raise RnnlabError("--backend numpy trains in one process; run it without torchrun")
        device = resolve_device(config.device)  # the run's own device, also when resuming
        if not resume and config.threads is None and device.type == "cpu" and not launched_by_torchrun():
            config = dataclasses.replace(config, threads=free_cores_threads())  # recorded: results depend on it
        if config.threads:
            torch.set_num_threads(config.threads)
        check_memory(config)
        require_tensorboard(config.tensorboard)
        if config.precision == "bf16" and not native_bf16(device):
            raise RnnlabError(f"this {device.type.upper()} has no native bf16 (oneDNN finds no AVX-512 BF16 or AMX): "
                              "bf16 would be emulated, many times slower, and the LSTM cannot run; use --precision fp32")
        ctx = init_distributed(device)
        log = log if ctx.is_main else _silent
        if checkpoint is not None and checkpoint.get("world_size", 1) != ctx.world_size:
            raise CheckpointError(f"{run_dir} was trained with {checkpoint['world_size']} processes; "
                                  f"resume it with the same number, not {ctx.world_size}")
        dataset, validation = hold_out(dataset or load_data(config, announce=log), config.val_split)
        if resume:
            check_data_source(run_dir, dataset.source)
        if resume and ctx.is_main:
            remove_stale_temporaries(run_dir)  # left by a write that was killed half-way
        if not resume:
            check_run_dir(run_dir)  # on every rank, so a refused folder stops every process
            run_id = broadcast_object(uuid.uuid4().hex, ctx)
            barrier(ctx)
            if ctx.is_main:  # the claim: of two runs started together into one --out, only one goes on
                claim_run_dir(run_dir, CONFIG, {"run_id": run_id, **config.to_dict(), "data_source": dataset.source})
        barrier(ctx)

        if config.backend == "numpy":
            from rnnlab.training.numpy_fit import as_torch_model, fit_numpy

            seed_everything(config.seed)
            with discarded_unless_resumable(run_dir, not resume, ctx.is_main):  # also a full disk in _finish
                classifier, epochs = fit_numpy(config, dataset, log=log, stop=stop)
                model = as_torch_model(config, classifier)
                return _finish(config, run_dir, run_id, model, epochs, dataset, torch.device("cpu"), log, ctx)

        peak = matmul_peak_gflops(str(device) if device.type == "cuda" else device.type, config.precision)
        model = initial_model(config).to(device)
        optimizer = make_optimizer(model, config, device)
        steps_per_epoch = -(-len(dataset.train.labels) // config.batch_size)
        scheduler = make_scheduler(optimizer, config, steps_per_epoch)
        if checkpoint is not None:
            check_progress(checkpoint, steps_per_epoch, config.epochs, run_dir / CHECKPOINT)
        progress = resume_fit(model, optimizer, checkpoint, ctx, device, scheduler) if checkpoint is not None else None
        if progress is not None:
            log(f"{run_dir}: resuming at epoch {progress.epoch + 1}, step {progress.step}")
        train_model = model
        if ctx.is_distributed:
            device_ids = [device.index] if device.type == "cuda" else None
            train_model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        batches = SequenceBatches(sequence_inputs(config, dataset.train.images), dataset.train.labels,
                                  config.batch_size, shuffle=True, seed=config.seed,
                                  rank=ctx.rank, world_size=ctx.world_size, device=device)
        steps, features = input_shape(config.view, config.steps)
        flops = train_flops_per_sample(config.model, steps, features, config.hidden_size, config.num_layers)
        checkpoints = Checkpointing(run_dir / CHECKPOINT, every=config.checkpoint_every,
                                    header={"format": CHECKPOINT_FORMAT, "run_id": run_id,
                                            "config": config.to_dict(), "world_size": ctx.world_size},
                                    scheduler=scheduler)
        logs = ExperimentLog(run_dir, tensorboard_dir(config.tensorboard, run_dir), progress,
                             len(batches)) if ctx.is_main else None

        def after_epoch(record: dict) -> None:
            if validation is not None:  # every rank: the evaluation is summed across them
                held_out = evaluate(model, sequence_inputs(config, validation.images), validation.labels,
                                    batch_size=config.eval_batch_size, precision=config.precision, ctx=ctx)
                record["val_accuracy"] = held_out.accuracy
                log(f"  validation accuracy {100 * held_out.accuracy:.2f}% ({len(validation.labels):,} held-out images)")
            if logs is not None:
                logs.epoch(record)

        with discarded_unless_resumable(run_dir, not resume, ctx.is_main):  # also a full disk in _finish
            progress = fit(train_model, optimizer, batches, epochs=config.epochs, progress=progress,
                           precision=config.precision, log_every=config.log_every, checkpoints=checkpoints,
                           flops_per_sample=flops, peak_gflops=peak, stop=stop, ctx=ctx, log=log, quiet=quiet,
                           scheduler=scheduler, clip_grad=config.clip_grad, on_log=logs.step if logs else None,
                           after_epoch=after_epoch)
            return _finish(config, run_dir, run_id, model, progress.epochs, dataset, device, log, ctx, logs)


def _finish(config, run_dir, run_id, model, epochs, dataset, device, log, ctx, logs=None) -> RunResult:
    """Evaluate on the test set; rank 0 writes metrics.csv, model.pt and metrics.json (then the run is complete)."""
    started = time.perf_counter()
    evaluation = evaluate(model, sequence_inputs(config, dataset.test.images), dataset.test.labels,
                          batch_size=config.eval_batch_size, precision=config.precision, ctx=ctx)
    eval_seconds = time.perf_counter() - started
    train_seconds = sum(e["seconds"] for e in epochs)
    checksums = all_gather_objects(weights_checksum(model), ctx)
    if len(set(checksums)) != 1:  # DDP keeps replicas equal; if it did not, the run is not to be trusted
        raise RuntimeError(f"data-parallel replicas ended with different weights: {checksums}")
    metrics = {
        "model": config.model, "dataset": config.dataset, "data_source": dataset.source,
        "test_accuracy": evaluation.accuracy, "per_class_accuracy": evaluation.per_class_accuracy,
        "epochs": epochs, "train_seconds": train_seconds, "eval_seconds": eval_seconds,
        "train_images_per_second": len(dataset.train.labels) * len(epochs) / max(train_seconds, 1e-9),
        "parameters": count_parameters(model), "precision": config.precision, "device": str(device),
        "world_size": ctx.world_size, "weights_sha256": checksums[0], "environment": environment(),
        "matmul_peak_gflops": matmul_peak_gflops(str(device) if device.type == "cuda" else device.type, config.precision),
    }
    log(f"Test Accuracy: {100 * evaluation.accuracy:.2f}%  (model {config.model}, {train_seconds:.1f} s training)")
    if ctx.is_main:
        (logs or ExperimentLog(run_dir)).finish(epochs, evaluation.accuracy)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        atomic_save({"format": MODEL_FORMAT, "run_id": run_id, "config": config.to_dict(), "state_dict": state,
                     "test_accuracy": evaluation.accuracy}, run_dir / MODEL)
        write_json(run_dir / METRICS, metrics)
    barrier(ctx)
    return RunResult(run_dir, config, model, metrics, evaluation)


def compare(models: list[str] | None, settings: dict | None, out: Path | None, *, resume: bool = False,
            overrides: dict | None = None, seeds: list[int] | None = None, jobs: int | None = None,
            lengths: list[int] | None = None, log: Callable[[str], None] = print, quiet: bool = False) -> dict:
    """The lab itself: train each model (default: rnn, lstm) under identical settings, for each seed; write
    `summary.json`.

    `settings` are Config values shared by every model (a model left without `num_layers` gets the
    sheet's depth); `seeds` (default: the one of `settings`) gives one run folder per model and seed, and
    summary.json their statistics. `jobs` > 1 trains runs in that many processes (default: one per core on
    a CPU). `lengths` (several sequence lengths) makes it a sweep: one run per model, length and seed. With
    `resume=True` the models, settings, seeds and lengths are read from `out` (pass None) and the missing runs
    are trained or continued; `overrides`, and `models`, `seeds` or `lengths` if given, must agree with the
    saved ones.
    """
    return run_comparison(train, models, settings, out, resume=resume, overrides=overrides, seeds=seeds, jobs=jobs,
                          lengths=lengths, log=log, quiet=quiet)


def _silent(message: str) -> None:
    pass
