"""The lab as plain functions: `train` one model into a run folder, `compare` several, `load_run` one back.

The CLI, the notebook and the tests call these; they call data → models → training, in that order.

A run folder holds `config.json` (every setting), `checkpoint.pt` (training state, for --resume),
and once finished `metrics.json` and `model.pt` (weights + config).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from rnnlab.config import Config
from rnnlab.data import Dataset, SequenceBatches, Split, load_splits, to_sequences, view_permutation
from rnnlab.errors import CheckpointError, RnnlabError
from rnnlab.models import build_model, count_parameters
from rnnlab.training.checkpoint import (CHECKPOINT_FORMAT, MODEL_FORMAT, atomic_save, atomic_write_bytes,
                                        capture_rng, restore_rng, safe_load)
from rnnlab.training.distributed import SINGLE, DistContext, all_gather_objects, barrier, broadcast_object
from rnnlab.training.evaluate import Evaluation, evaluate
from rnnlab.training.fit import Progress, fit
from rnnlab.training.flops import matmul_peak_gflops, train_flops_per_sample

CONFIG, CHECKPOINT, METRICS, MODEL = "config.json", "checkpoint.pt", "metrics.json", "model.pt"
COMPARISON = "comparison.json"  # the models of a `compare`, written first so --resume knows them


def _silent(message: str) -> None:
    pass


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then the CPU; asking for one that is absent is an error."""
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
    }
    if name == "auto":
        name = next(d for d in ("cuda", "mps", "cpu") if available[d])
    if not available[name]:
        raise RnnlabError(f"--device {name} is not available on this machine; use --device auto or cpu")
    if name == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_data(config: Config, announce: Callable[[str], None] = print) -> Dataset:
    """The dataset of `config`, cut to `train_limit`/`test_limit` images when those are set."""
    dataset = load_splits(config.dataset, config.data_dir, announce=announce)

    def cut(split: Split, limit: int | None) -> Split:
        return split if limit is None else Split(split.images[:limit], split.labels[:limit])

    return replace(dataset, train=cut(dataset.train, config.train_limit), test=cut(dataset.test, config.test_limit))


def sequence_inputs(config: Config, images: torch.Tensor) -> torch.Tensor:
    permutation = view_permutation(config.seed) if config.view == "permuted" else None
    return to_sequences(images, config.view, permutation)


def input_shape(view: str) -> tuple[int, int]:
    """(steps T, features D) of a sequence view."""
    return (28, 28) if view == "rows" else (784, 1)


def new_model(config: Config) -> nn.Module:
    steps, features = input_shape(config.view)
    return build_model(config.model, features, config.hidden_size, config.num_layers, config.dropout)


@dataclass
class RunResult:
    run_dir: Path
    config: Config
    model: nn.Module
    metrics: dict
    evaluation: Evaluation | None


def default_run_dir(model: str) -> Path:
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{model}"


def check_run_dir(run_dir: Path) -> None:
    """Refuse a folder that already holds a run (earlier results stay untouched) or that is a file."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RnnlabError(f"--out {run_dir} is a file; give a folder for the run")
    if run_dir.is_dir() and any((run_dir / name).exists() for name in (CONFIG, CHECKPOINT, METRICS, MODEL)):
        raise RnnlabError(f"{run_dir} already holds a run; choose another --out, or continue it with --resume {run_dir}")


def create_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".rnnlab-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RnnlabError(f"cannot write the run folder {run_dir}: {exc.strerror or exc}; choose another --out") from None


def write_json(path: Path, values: dict) -> None:
    atomic_write_bytes(path, (json.dumps(values, indent=2) + "\n").encode())


def read_run_config(run_dir: Path) -> tuple[Config, str]:
    path = run_dir / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not an rnnlab run folder (no {CONFIG}); give the folder a run wrote")
    try:
        values = json.loads(path.read_text())
        run_id = values.pop("run_id")
        values.pop("data_source", None)
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"{path}: not an rnnlab run config ({exc})") from None
    return Config.from_dict(values), run_id


def train(
    config: Config,
    run_dir: Path | None = None,
    *,
    resume: bool = False,
    dataset: Dataset | None = None,
    log: Callable[[str], None] = print,
    quiet: bool = False,
    ctx: DistContext = SINGLE,
) -> RunResult:
    """Train `config.model` into `run_dir` (or continue the run there with `resume=True`) and evaluate it.

    Everything a user can get wrong is checked before the folder is touched, so a mistake leaves
    no partial files. Under torchrun only rank 0 writes.
    """
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config.model)
    log = log if ctx.is_main else _silent  # only rank 0 speaks
    checkpoint = None
    if resume:
        config, run_id = read_run_config(run_dir)
        if (run_dir / METRICS).is_file() and (run_dir / MODEL).is_file():
            log(f"{run_dir}: this run is already complete; nothing to resume")
            return load_run(run_dir)
        if (run_dir / CHECKPOINT).is_file():
            checkpoint = safe_load(run_dir / CHECKPOINT, CHECKPOINT_FORMAT)
            if checkpoint.get("run_id") != run_id:
                raise CheckpointError(f"{run_dir / CHECKPOINT} belongs to another run than {run_dir / CONFIG}; "
                                      "resume the folder the checkpoint came from")
            if checkpoint.get("world_size", 1) != ctx.world_size:
                raise CheckpointError(f"{run_dir} was trained with {checkpoint['world_size']} processes; "
                                      f"resume it with the same number, not {ctx.world_size}")
    else:
        run_id = broadcast_object(uuid.uuid4().hex, ctx)

    device = resolve_device(config.device)
    if dataset is None:
        dataset = load_data(config, announce=log)
    if not resume:
        check_run_dir(run_dir)  # on every rank, so a refused folder stops every process
        barrier(ctx)
        if ctx.is_main:
            create_run_dir(run_dir)
            write_json(run_dir / CONFIG, {"run_id": run_id, **config.to_dict(), "data_source": dataset.source})
    barrier(ctx)

    if config.backend == "numpy":
        return _train_numpy(config, run_dir, run_id, dataset, log)

    peak = matmul_peak_gflops(device.type if device.type != "cuda" else str(device), config.precision)
    seed_everything(config.seed)
    model = new_model(config).to(device)
    # The sheet's Adam; fused: one kernel for all parameters instead of a loop of tiny operators
    # (about 1.5 ms less per step on the CPU, a third of an RNN step). Same algorithm.
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=device.type in ("cpu", "cuda"))
    progress = None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        mine = checkpoint["ranks"][ctx.rank]  # each process restores its own RNG and partial sums
        progress = Progress.from_state_dict({**checkpoint["progress"], **mine["sums"]}, device)
        restore_rng(mine["rng"])
        log(f"{run_dir}: resuming at epoch {progress.epoch + 1}, step {progress.step}")
    train_model = model
    if ctx.is_distributed:
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    batches = SequenceBatches(sequence_inputs(config, dataset.train.images), dataset.train.labels,
                              config.batch_size, shuffle=True, seed=config.seed,
                              rank=ctx.rank, world_size=ctx.world_size, device=device)
    steps, features = input_shape(config.view)
    flops = train_flops_per_sample(config.model, steps, features, config.hidden_size, config.num_layers)

    def save_checkpoint(progress: Progress) -> str:
        sums = {"loss_sum": progress.loss_sum.cpu(), "correct": progress.correct.cpu()}
        ranks = all_gather_objects({"rng": capture_rng(), "sums": sums}, ctx)
        path = run_dir / CHECKPOINT
        if ctx.is_main:
            atomic_save({"format": CHECKPOINT_FORMAT, "run_id": run_id, "config": config.to_dict(),
                         "world_size": ctx.world_size, "model": model.state_dict(),
                         "optimizer": optimizer.state_dict(), "progress": progress.state_dict(),
                         "ranks": ranks}, path)
        barrier(ctx)
        return str(path)

    progress = fit(train_model, optimizer, batches, epochs=config.epochs, progress=progress,
                   precision=config.precision, log_every=config.log_every,
                   checkpoint_every=config.checkpoint_every, save_checkpoint=save_checkpoint,
                   train_flops_per_sample=flops, peak_gflops=peak, ctx=ctx, log=log, quiet=quiet)
    return _finish(config, run_dir, run_id, model, progress.epochs, dataset, device, log, ctx)


def _finish(config, run_dir, run_id, model, epochs, dataset, device, log, ctx=SINGLE) -> RunResult:
    test_inputs = sequence_inputs(config, dataset.test.images)
    started = time.perf_counter()
    evaluation = evaluate(model, test_inputs, dataset.test.labels, batch_size=config.eval_batch_size,
                          precision=config.precision, ctx=ctx)
    eval_seconds = time.perf_counter() - started
    train_seconds = sum(e["seconds"] for e in epochs)
    checksums = all_gather_objects(weights_checksum(model), ctx)
    if len(set(checksums)) != 1:  # DDP keeps replicas equal; if it did not, the run is not to be trusted
        raise RuntimeError(f"data-parallel replicas ended with different weights: {checksums}")
    peak = matmul_peak_gflops(device.type if device.type != "cuda" else str(device), config.precision)
    metrics = {
        "model": config.model,
        "dataset": config.dataset,
        "data_source": dataset.source,
        "test_accuracy": evaluation.accuracy,
        "per_class_accuracy": evaluation.per_class_accuracy,
        "epochs": epochs,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "train_images_per_second": len(dataset.train.labels) * len(epochs) / max(train_seconds, 1e-9),
        "parameters": count_parameters(model),
        "matmul_peak_gflops": peak,
        "precision": config.precision,
        "device": str(device),
        "world_size": ctx.world_size,
        "weights_sha256": checksums[0],
    }
    best = max((e.get("gflops", 0) for e in epochs), default=0)
    log(f"Test Accuracy: {100 * evaluation.accuracy:.2f}%  (model {config.model}, {train_seconds:.1f} s training, "
        f"best epoch {best:.1f} GFLOP/s = {100 * best / peak:.0f}% of this machine's {peak:.0f} GFLOP/s "
        f"{config.precision} matmul peak)")
    if ctx.is_main:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        atomic_save({"format": MODEL_FORMAT, "run_id": run_id, "config": config.to_dict(), "state_dict": state,
                     "test_accuracy": evaluation.accuracy}, run_dir / MODEL)
        write_json(run_dir / METRICS, metrics)
    barrier(ctx)
    return RunResult(run_dir, config, model, metrics, evaluation)


def weights_checksum(model: nn.Module) -> str:
    """SHA-256 of every tensor of the state_dict, in order: equal weights, equal checksum."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _train_numpy(config: Config, run_dir: Path, run_id: str, dataset: Dataset, log) -> RunResult:
    from rnnlab.training.numpy_fit import fit_numpy, numpy_to_state_dict

    seed_everything(config.seed)
    classifier, epochs = fit_numpy(config, dataset, log=log)
    model = build_model("lstm", 28, config.hidden_size, config.num_layers)
    model.load_state_dict(numpy_to_state_dict(classifier))
    return _finish(config, run_dir, run_id, model, epochs, dataset, torch.device("cpu"), log)


def load_model(path: str | Path) -> tuple[nn.Module, Config]:
    """A trained model from `model.pt` (or a run folder holding one), read with `weights_only=True`."""
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL).is_file():
            raise CheckpointError(f"{path} holds no {MODEL}: the run has not finished (continue it with --resume)")
        path = path / MODEL
    saved = safe_load(path, (MODEL_FORMAT, CHECKPOINT_FORMAT))
    try:
        config = Config.from_dict(dict(saved["config"]))
        state = saved["state_dict"] if saved["format"] == MODEL_FORMAT else saved["model"]
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: an incomplete rnnlab file (missing {exc})") from None
    model = new_model(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path}: its weights do not fit a {config.model} model of hidden size "
                              f"{config.hidden_size} and {config.num_layers} layers ({first})") from None
    model.eval()
    return model, config


def load_run(run_dir: Path) -> RunResult:
    model, config = load_model(run_dir)
    try:
        metrics = json.loads((Path(run_dir) / METRICS).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{run_dir}: cannot read {METRICS} ({exc})") from None
    return RunResult(Path(run_dir), config, model, metrics, None)


def evaluate_saved(path: str | Path, data_dir: str | None = None, log: Callable[[str], None] = print) -> tuple[Config, Evaluation]:
    """Test accuracy of a saved model on its own dataset (from `data_dir` if given)."""
    model, config = load_model(path)
    if data_dir is not None:
        config = replace(config, data_dir=data_dir)
    dataset = load_data(config, announce=log)
    evaluation = evaluate(model, sequence_inputs(config, dataset.test.images), dataset.test.labels,
                          batch_size=config.eval_batch_size)
    return config, evaluation


def compare(
    models: list[str] | None,
    config: Config,
    out: Path,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    quiet: bool = False,
    num_layers: int | None = None,
    ctx: DistContext = SINGLE,
) -> dict:
    """The lab itself: train each model under identical settings and seed, write `summary.json`.

    `num_layers=None` gives each model the sheet's depth (1 for rnn, 2 for the others). With
    `resume=True`, `models` and `config` are read from `out` (pass None).
    """
    out = Path(out)
    log = log if ctx.is_main else _silent
    if resume:  # the models and settings are the comparison's own, not the command line's
        try:
            models = json.loads((out / COMPARISON).read_text())["models"]
        except (OSError, ValueError, KeyError, TypeError):
            raise RnnlabError(f"{out} is not a comparison folder (no readable {COMPARISON}); "
                              "give the --out of an earlier rnnlab compare") from None
        saved = [read_run_config(out / name)[0] for name in models if (out / name / CONFIG).is_file()]
        if not saved:
            raise RnnlabError(f"{out} holds no runs of {', '.join(models)} to resume; start it without --resume")
        config, num_layers = saved[0], None
    configs = {name: replace(config, model=name, num_layers=num_layers) for name in models}  # validates names
    if not resume:
        if (out / "summary.json").exists() or (out / COMPARISON).exists():
            raise RnnlabError(f"{out} already holds a comparison; choose another --out, or continue it with --resume {out}")
        for name in models:
            check_run_dir(out / name)
        barrier(ctx)
        if ctx.is_main:
            create_run_dir(out)
            write_json(out / COMPARISON, {"models": models})
    dataset = load_data(config, announce=log)
    results = {}
    for name in models:
        run_dir = out / name
        log(f"== {name} ==")
        resuming = resume and (run_dir / CONFIG).is_file()
        result = train(configs[name], run_dir, resume=resuming, dataset=dataset, log=log, quiet=quiet, ctx=ctx)
        results[name] = result
    summary = {
        name: {
            "test_accuracy": r.metrics["test_accuracy"],
            "train_seconds": r.metrics["train_seconds"],
            "parameters": r.metrics["parameters"],
            "train_images_per_second": r.metrics["train_images_per_second"],
            "run_dir": str(r.run_dir),
        }
        for name, r in results.items()
    }
    if ctx.is_main:
        write_json(out / "summary.json", summary)
        log(format_table(summary))
    return summary


def format_table(summary: dict) -> str:
    lines = [f"{'model':<14}{'test accuracy':>14}{'train time':>12}{'parameters':>12}{'images/s':>10}"]
    for name, row in summary.items():
        lines.append(f"{name:<14}{100 * row['test_accuracy']:>13.2f}%{row['train_seconds']:>11.1f}s"
                     f"{row['parameters']:>12,}{row['train_images_per_second']:>10,.0f}")
    return "\n".join(lines)
