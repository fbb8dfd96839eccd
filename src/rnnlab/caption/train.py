"""`rnnlab caption train`: one captioner into a run folder, resumable like the lab's runs.

Read top to bottom: settings → task (digit strings or COCO) → trainer (torch or NumPy) → steps, each
a batch of the task's training examples (a function of seed, epoch and step, so a resumed run sees the
batches it would have seen) → test-set scores → files. The run folder is the lab's (`rnnlab.runs`):
`config.json`, `checkpoint.pt` (every epoch, every --checkpoint-every steps, and on Ctrl-C/SIGTERM),
then `model.pt` and `metrics.json`. Files are written atomically and read with `weights_only=True`.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from rnnlab.caption.config import CaptionConfig
from rnnlab.caption.metrics import score_captions, summary_line
from rnnlab.errors import CheckpointError, RnnlabError
from rnnlab.runs import CHECKPOINT, CONFIG, METRICS, MODEL, check_run_dir, claim_run_dir, read_json, write_json
from rnnlab.training.checkpoint import atomic_save, capture_rng, remove_stale_temporaries, restore_rng, safe_load
from rnnlab.training.fit import StopSignals, TrainingInterrupted, check_finite

CHECKPOINT_FORMAT, MODEL_FORMAT = "rnnlab-caption-checkpoint", "rnnlab-caption-model"


@dataclass
class CaptionProgress:
    """Where a run stands (all of it goes into the checkpoint)."""

    epoch: int = 0          # the epoch under way (0-based)
    step: int = 0           # steps of it already done
    epochs: list[dict] = field(default_factory=list)  # records of finished epochs
    loss_sum: float = 0.0   # sums over the epoch's steps so far
    correct: int = 0
    words: int = 0
    seconds: float = 0.0    # training time of the epoch so far

    def state(self) -> dict:
        return dict(vars(self))


@dataclass
class CaptionRun:
    run_dir: Path
    config: CaptionConfig
    trainer: object
    task: object
    metrics: dict


@contextlib.contextmanager
def threads(n: int):
    """torch and NumPy's BLAS on `n` threads while training, as before afterwards: on a shared CPU, extra
    spinning threads can make the small steps many times slower."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def load_task(config: CaptionConfig, log: Callable[[str], None] = print):
    """The task a config names: digit strings from MNIST, or CS231n's COCO files."""
    if config.data == "coco":
        from rnnlab.caption.coco import CocoTask

        return CocoTask(config.data_dir, config.seed, config.test_size)
    from rnnlab.caption.digits import DigitTask
    from rnnlab.data import load_splits

    return DigitTask(load_splits("mnist", config.data_dir, announce=log), config.seed, config.test_seed,
                     config.test_size)


def new_trainer(config: CaptionConfig, task, log: Callable[[str], None] = print):
    if config.backend == "torch":
        from rnnlab.caption.trainers import TorchTrainer

        return TorchTrainer(config, task)
    from rnnlab.caption.trainers import NumpyTrainer

    encoder = None
    if config.features_from is not None:
        from rnnlab.caption.trainers import TorchTrainer

        source = load_captioner(config.features_from, task=task)[0]
        encoder = source.model if isinstance(source, TorchTrainer) else None
        if encoder is None or encoder.encoder is None:
            raise RnnlabError(f"--features-from {config.features_from}: that run has no picture encoder "
                              "(it is a NumPy run, or read feature vectors); give a digit-strings torch run")
        log(f"features: the frozen encoder of {config.features_from}")
    return NumpyTrainer(config, task, encoder)


def train_caption(config: CaptionConfig | None, run_dir: Path | None, *, resume: bool = False,
                  overrides: dict | None = None, task=None, log: Callable[[str], None] = print) -> CaptionRun:
    """Train a captioner into `run_dir` (or continue the run there with `resume=True`), then score it."""
    with StopSignals() as stop, contextlib.ExitStack() as scope:
        checkpoint, run_dir = None, Path(run_dir) if run_dir is not None else None
        if resume:
            config, run_id, checkpoint = _saved_run(run_dir, overrides or {})
            if checkpoint == "finished":
                log(f"{run_dir}: this run is already complete; nothing to resume")
                return load_captioner(run_dir, task=task, log=log)[1]
        run_dir = run_dir or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-caption-{config.decoder}"
        scope.enter_context(threads(config.threads))
        if not resume:
            check_run_dir(run_dir)
        task = task or load_task(config, log)
        trainer = new_trainer(config, task, log)  # before the folder: --features-from may be refused
        if not resume:
            run_id = uuid.uuid4().hex
            claim_run_dir(run_dir, CONFIG, {"run_id": run_id, **config.to_dict(), "data_source": task.source})
        else:
            remove_stale_temporaries(run_dir)
        progress = CaptionProgress()
        if checkpoint is not None:
            try:
                trainer.load_state(checkpoint["trainer"])
                progress = CaptionProgress(**checkpoint["progress"])
                restore_rng(checkpoint["rng"])
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise CheckpointError(f"{run_dir / CHECKPOINT} does not fit this run ({type(exc).__name__}); "
                                      "it is damaged or from another run: start a new run") from None
            log(f"{run_dir}: resuming at epoch {progress.epoch + 1}, step {progress.step}")

        def save() -> str:
            atomic_save({"format": CHECKPOINT_FORMAT, "run_id": run_id, "config": config.to_dict(),
                         "trainer": trainer.state(), "progress": progress.state(), "rng": capture_rng()},
                        run_dir / CHECKPOINT)
            return str(run_dir / CHECKPOINT)

        _fit(config, task, trainer, progress, save, stop, log)
        return _finish(config, run_dir, run_id, trainer, task, progress, log)


def _fit(config, task, trainer, progress: CaptionProgress, save, stop: StopSignals, log) -> None:
    """The epochs: each `epoch_size // batch_size` steps (at least one) of one full batch each."""
    # Whole batches only: a last batch of one picture would break the batch normalisation of the features.
    steps, size = max(1, config.epoch_size // config.batch_size), min(config.batch_size, config.epoch_size)
    total, last = steps * config.epochs, None
    while progress.epoch < config.epochs:
        epoch, started = progress.epoch, time.perf_counter()
        for step in range(progress.step, steps):
            inputs, captions = task.train_batch(size, epoch, step)
            loss, correct, words = trainer.train_step(inputs, captions, learning_rate(config, epoch * steps + step,
                                                                                       total))
            check_finite(step if not math.isfinite(loss) else -1, epoch, last)
            progress.loss_sum, progress.correct, progress.words = (progress.loss_sum + loss,
                                                                   progress.correct + correct, progress.words + words)
            progress.step = step + 1
            if progress.step % config.log_every == 0:
                log(f"  epoch {epoch + 1} step {progress.step}/{steps}: loss {progress.loss_sum / progress.step:.4f}")
            every = config.checkpoint_every
            if stop.signum or (every and progress.step % every == 0 and progress.step < steps):
                progress.seconds += time.perf_counter() - started
                started = time.perf_counter()
                last = save()
                if stop.signum:
                    raise TrainingInterrupted(stop.signum, last)
        seconds = progress.seconds + time.perf_counter() - started
        record = {"epoch": epoch + 1, "train_loss": progress.loss_sum / steps, "seconds": seconds}
        if progress.correct:  # the torch trainer counts teacher-forced correct words; NumPy's loss does not
            record["train_word_accuracy"] = progress.correct / max(1, progress.words)
        progress.epochs.append(record)
        progress.epoch, progress.step, progress.seconds = epoch + 1, 0, 0.0
        progress.loss_sum, progress.correct, progress.words = 0.0, 0, 0
        accuracy = f", teacher-forced word accuracy {100 * record['train_word_accuracy']:.2f}%" \
            if "train_word_accuracy" in record else ""
        log(f"Epoch [{epoch + 1}/{config.epochs}], Loss: {record['train_loss']:.4f}{accuracy}  ({seconds:.1f} s)")
        last = save()
        if stop.signum:
            raise TrainingInterrupted(stop.signum, last)


def learning_rate(config, step: int, total: int) -> float:
    """--lr at `step` of `total`: constant, or cosine decay from --lr to 0 (a function of the step alone,
    so a resumed run continues the same schedule)."""
    if config.schedule == "constant":
        return config.lr
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * step / total))


def _finish(config, run_dir: Path, run_id: str, trainer, task, progress: CaptionProgress, log) -> CaptionRun:
    """Greedy captions for the test set, their scores, then model.pt and metrics.json (the run is complete)."""
    started = time.perf_counter()
    scores = score_captions(trainer.caption(task.test_inputs), task)
    train_seconds = sum(e["seconds"] for e in progress.epochs)
    metrics = {"decoder": config.decoder, "backend": config.backend, "data": config.data,
               "data_source": task.source, **scores, "epochs": progress.epochs, "train_seconds": train_seconds,
               "eval_seconds": time.perf_counter() - started, "parameters": trainer.parameter_count(),
               "threads": config.threads, "load_average": list(os.getloadavg())}
    log(f"Test: {summary_line(scores)}  ({config.decoder} decoder, {config.backend}, {train_seconds:.1f} s training)")
    atomic_save({"format": MODEL_FORMAT, "run_id": run_id, "config": config.to_dict(), "weights": trainer.weights(),
                 "word_to_idx": dict(task.word_to_idx), "idx_to_word": list(task.idx_to_word),
                "max_length": task.max_length}, run_dir / MODEL)
    write_json(run_dir / METRICS, metrics)
    return CaptionRun(run_dir, config, trainer, task, metrics)


def _saved_run(run_dir: Path | None, overrides: dict):
    """The settings, id and checkpoint of the run to resume ("finished" when it is complete)."""
    if run_dir is None:
        raise RnnlabError("--resume needs the run folder to continue")
    if not (run_dir / CONFIG).is_file():
        raise CheckpointError(f"{run_dir} is not a caption run folder (no {CONFIG}); give the folder "
                              "rnnlab caption train wrote")
    values = read_json(run_dir / CONFIG, "give the folder rnnlab caption train wrote")
    run_id = values.pop("run_id", None)
    values.pop("data_source", None)
    config = CaptionConfig.from_dict(values, source=str(run_dir / CONFIG))
    for name, value in overrides.items():
        if getattr(config, name) != value:
            option = "--" + name.replace("_", "-")
            raise RnnlabError(f"{run_dir} was started with {option} {getattr(config, name)}, not {value}: "
                              f"--resume continues a run with its own settings; leave out {option}")
    if (run_dir / METRICS).is_file() and (run_dir / MODEL).is_file():
        return config, run_id, "finished"
    if not (run_dir / CHECKPOINT).is_file():
        return config, run_id, None
    checkpoint = safe_load(run_dir / CHECKPOINT, CHECKPOINT_FORMAT)
    if checkpoint.get("run_id") != run_id:
        raise CheckpointError(f"{run_dir / CHECKPOINT} belongs to another run than {run_dir / CONFIG}")
    return config, run_id, checkpoint


@dataclass
class SavedVocabulary:
    """What a saved model needs of its task to write captions (no data): its words and caption length."""

    word_to_idx: dict
    idx_to_word: list
    max_length: int
    feature_dim: int | None = None


def load_captioner(path, task=None, data_dir: str | None = None, log: Callable[[str], None] = print,
                   need_data: bool = True):
    """A finished run's trainer (its model) and `CaptionRun`. The task (and its data) is loaded unless
    given, or unless `need_data=False` (writing captions for new pictures needs only the vocabulary)."""
    path = Path(path)
    if not (path / MODEL).is_file():
        if not (path / CONFIG).is_file():
            raise CheckpointError(f"{path} is not a caption run folder (no {CONFIG} or {MODEL}); give a folder "
                                  "that rnnlab caption train wrote")
        raise CheckpointError(f"{path} holds no {MODEL}: the run has not finished (continue it with --resume)")
    saved = safe_load(path / MODEL, MODEL_FORMAT)
    config = CaptionConfig.from_dict(dict(saved["config"]), source=str(path / MODEL))
    if data_dir is not None:
        config.data_dir = data_dir
    if task is None:
        task = load_task(config, log) if need_data else SavedVocabulary(
            dict(saved["word_to_idx"]), list(saved["idx_to_word"]), int(saved["max_length"]))
    from rnnlab.caption.trainers import NumpyTrainer, TorchTrainer

    kind = NumpyTrainer if saved["weights"]["kind"] == "numpy" else TorchTrainer
    trainer = kind.from_weights(saved["weights"], config, task)
    metrics = read_json(path / METRICS, "the run has not finished, or the file was damaged") \
        if (path / METRICS).is_file() else {}
    return trainer, CaptionRun(path, config, trainer, task, metrics)
