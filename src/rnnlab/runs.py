"""The run folder: its file names, creating and checking it, and reading what a run left there.

A run folder holds `config.json` (every setting), `checkpoint.pt` (training state, for --resume),
and once finished `metrics.json` and `model.pt` (weights + config). A `compare` folder holds
`comparison.json` (its models and settings, written first so --resume knows them), `summary.json`
and one run folder per model. Everything here is read back with the file's name in every error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from torch import nn

from rnnlab.config import Config, flag
from rnnlab.data import load_data, sequence_inputs
from rnnlab.errors import CheckpointError, RnnlabError, WriteFailed
from rnnlab.models import new_model
from rnnlab.training.checkpoint import (CHECKPOINT_FORMAT, MODEL_FORMAT, atomic_write_bytes, check_checkpoint,
                                       check_finite_weights, safe_load)
from rnnlab.training.evaluate import Evaluation, evaluate
from rnnlab.training.fit import TrainingDiverged
from rnnlab.training.logs import METRICS_CSV, STEPS_CSV
from rnnlab.training.machine import check_memory

CONFIG, CHECKPOINT, METRICS, MODEL = "config.json", "checkpoint.pt", "metrics.json", "model.pt"
COMPARISON, SUMMARY = "comparison.json", "summary.json"
RUN_FILES = (CONFIG, CHECKPOINT, METRICS, MODEL)


@dataclass
class RunResult:
    run_dir: Path
    config: Config
    model: nn.Module
    metrics: dict
    evaluation: Evaluation | None


def default_run_dir(name: str) -> Path:
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"


def check_run_dir(run_dir: Path) -> None:
    """Refuse a folder that already holds a run (earlier results stay untouched) or that is a file."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RnnlabError(f"--out {run_dir} is a file; give a folder for the run")
    if run_dir.is_dir() and any((run_dir / name).exists() for name in RUN_FILES):
        raise RnnlabError(f"{run_dir} already holds a run; choose another --out, or continue it with --resume {run_dir}")


def create_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".rnnlab-write-test.", dir=run_dir)  # its own: others may probe too
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RnnlabError(f"cannot write the run folder {run_dir}: {exc.strerror or exc}; choose another --out") from None


def claim_run_dir(run_dir: Path, name: str, values: dict) -> None:
    """Create `run_dir` and write its first file `name` (config.json, or a comparison's comparison.json) only if
    no one has: two runs started together into one --out both passed `check_run_dir`, and the folder ended with
    the config.json of one and the model.pt of the other. Of two at once, exactly one claims it."""
    create_run_dir(run_dir)
    try:
        write_json(run_dir / name, values, exclusive=True)
    except FileExistsError:
        kind = "comparison" if name == COMPARISON else "run"
        raise RnnlabError(f"{run_dir} already holds a {kind} (another rnnlab started it just now); choose another "
                          "--out") from None


@contextlib.contextmanager
def discarded_unless_resumable(run_dir: Path, fresh: bool, is_main: bool):
    """A new run that stops before its first checkpoint (its loss no longer finite, a full disk) cannot be
    resumed: remove what it wrote (and its folder, if empty), so the same command can be run again. A run with a
    checkpoint keeps it, and a full disk then says to resume: running again would find the folder taken."""
    try:
        yield
    except (TrainingDiverged, WriteFailed) as exc:
        if not (fresh and is_main and run_dir.is_dir() and not (run_dir / CHECKPOINT).exists()):
            if isinstance(exc, WriteFailed):
                raise exc.resumable(f"rnnlab train --resume {run_dir}") from None
            raise
        for path in run_dir.iterdir():
            if path.name in (CONFIG, METRICS, MODEL, METRICS_CSV, STEPS_CSV) or path.name.startswith(
                    "events.out.tfevents") or (path.name.endswith(".tmp") and path.name.startswith(".")):
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only if empty (and not a mount point): the user's other files in --out stay
        if isinstance(exc, WriteFailed):
            raise WriteFailed(f"{exc.reason}; nothing was kept in {run_dir}", exc.full) from None
        raise TrainingDiverged(f"{exc}; nothing was kept in {run_dir}") from None


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold an exclusive lock for `run_dir` (a file beside it, removed when the holder lets go): a second
    process waits until the first is done."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    path = run_dir.parent / f".{run_dir.name}.lock"
    while True:
        handle = open(path, "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:  # the holder before us may have removed the file we waited on: then lock the new one
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: whoever waits on it sees it gone and starts over
        handle.close()


def write_json(path: Path, values: dict, exclusive: bool = False) -> None:
    atomic_write_bytes(path, (json.dumps(values, indent=2) + "\n").encode(), exclusive=exclusive)


def read_json(path: Path, what: str) -> dict:
    """A JSON object from `path`; anything else is a `CheckpointError` naming the file."""
    try:
        values = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file; {what}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path}: not readable JSON ({exc}); {what}") from None
    if not isinstance(values, dict):
        raise CheckpointError(f"{path}: holds a JSON {type(values).__name__}, not an object; {what}")
    return values


def read_run_config(run_dir: Path) -> tuple[Config, str]:
    """The Config and run id a run folder was started with."""
    path = run_dir / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{run_dir} is not an rnnlab run folder (no {CONFIG}); give the folder a run wrote")
    values = read_json(path, "give the folder a run wrote")
    run_id = values.pop("run_id", None)
    values.pop("data_source", None)
    if not isinstance(run_id, str):
        raise CheckpointError(f"{path}: not an rnnlab run config (no run_id)")
    return Config.from_dict(values, source=str(path)), run_id


def weights_checksum(model: nn.Module) -> str:
    """SHA-256 of every tensor of the state_dict, in order: equal weights, equal checksum."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def load_model(path: str | Path) -> tuple[nn.Module, Config]:
    """A trained model from `model.pt` (or a run folder holding one), read with `weights_only=True`."""
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL).is_file():
            if not (path / CONFIG).is_file():
                raise CheckpointError(f"{path} is not an rnnlab run folder (no {CONFIG} or {MODEL}); "
                                      "give a folder that rnnlab train or compare wrote")
            raise CheckpointError(f"{path} holds no {MODEL}: the run has not finished (continue it with --resume)")
        path = path / MODEL
    saved = safe_load(path, (MODEL_FORMAT, CHECKPOINT_FORMAT))
    key = "state_dict" if saved["format"] == MODEL_FORMAT else "model"
    if not isinstance(saved.get("config"), dict) or not isinstance(saved.get(key), dict):
        raise CheckpointError(f"{path}: an incomplete rnnlab file (its 'config' or '{key}' is missing or not a dict)")
    config = Config.from_dict(dict(saved["config"]), source=str(path))
    check_memory(config, what=f"{path}: its model")
    model = new_model(config)
    try:
        model.load_state_dict(saved[key])
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: its weights do not fit a {config.model} model of hidden size "
                              f"{config.hidden_size} and {config.num_layers} layers ({first[:200]})") from None
    check_finite_weights(model.state_dict(), path)
    model.eval()
    return model, config



def load_run(run_dir: Path) -> RunResult:
    """A finished run: its model, config and metrics."""
    model, config = load_model(run_dir)
    path = Path(run_dir) / METRICS
    metrics = check_metrics(read_json(path, "the run has not finished, or the file was damaged"), path)
    return RunResult(Path(run_dir), config, model, metrics, None)


def check_metrics(metrics: dict, path: Path) -> dict:
    """`metrics` as the report and summaries read them; a damaged or hand-edited file is one CheckpointError."""
    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    accuracy = metrics.get("test_accuracy")
    if not number(accuracy) or not 0 <= accuracy <= 1:
        raise CheckpointError(f"{path}: test_accuracy must be a fraction from 0 to 1, not {accuracy!r}; "
                              "the file was damaged or edited: train the run again")
    epochs = metrics.get("epochs")
    if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
        raise CheckpointError(f"{path}: epochs must be a list of per-epoch records; the file was damaged or edited")
    for k, record in enumerate(epochs, start=1):
        for key in ("epoch", "train_loss", "train_accuracy", "seconds"):
            if not number(record.get(key)):
                raise CheckpointError(f"{path}: epoch {k} has no numeric {key}; the file was damaged or edited")
    for key in ("train_seconds", "parameters", "train_images_per_second"):
        if key in metrics and not number(metrics[key]):
            raise CheckpointError(f"{path}: {key} must be a number, not {metrics[key]!r}")
    return metrics


def evaluate_saved(path: str | Path, data_dir: str | None = None,
                   log: Callable[[str], None] = print) -> tuple[Config, Evaluation]:
    """Test accuracy of a saved model on its own dataset (from `data_dir` if given)."""
    model, config = load_model(path)
    if data_dir is not None:
        config = replace(config, data_dir=data_dir)
    dataset = load_data(config, announce=log)
    evaluation = evaluate(model, sequence_inputs(config, dataset.test.images), dataset.test.labels,
                          batch_size=config.eval_batch_size)
    return config, evaluation


def open_for_resume(run_dir: Path | None, overrides: dict) -> tuple[Config, str, dict | str | None]:
    """The settings, id and checkpoint of the run in `run_dir` to resume ("finished": nothing left to do).

    `overrides` are settings the user gave with --resume; each must agree with the run's own.
    """
    if run_dir is None:
        raise RnnlabError("--resume needs the run folder to continue")
    run_dir = Path(run_dir)
    config, run_id = read_run_config(run_dir)
    for name, value in overrides.items():
        if getattr(config, name) != value:
            raise RnnlabError(f"{run_dir} was started with {flag(name)} {getattr(config, name)}, not {value}: "
                              f"--resume continues a run with its own settings; leave out {flag(name)}")
    if config.backend == "numpy":
        raise RnnlabError(f"{run_dir} was trained with --backend numpy, which keeps no checkpoint to resume "
                          "from; start it again with another --out")
    if (run_dir / METRICS).is_file() and (run_dir / MODEL).is_file():
        return config, run_id, "finished"
    if not (run_dir / CHECKPOINT).is_file():
        return config, run_id, None
    checkpoint = check_checkpoint(safe_load(run_dir / CHECKPOINT, CHECKPOINT_FORMAT), run_dir / CHECKPOINT)
    if checkpoint.get("run_id") != run_id:
        raise CheckpointError(f"{run_dir / CHECKPOINT} belongs to another run than {run_dir / CONFIG}; "
                              "resume the folder the checkpoint came from")
    return config, run_id, checkpoint


def check_data_source(run_dir: Path, source: str) -> None:
    """--resume goes on with the data the run began with (config.json's `data_source`). Without this, a run whose
    data folder was gone went on with MNIST's 5,000-digit sample and finished on it without a word."""
    recorded = read_json(Path(run_dir) / CONFIG, "give the folder a run wrote").get("data_source")
    if isinstance(recorded, str) and recorded != source:  # a run from before data_source was recorded: not known
        raise RnnlabError(f"{run_dir} was trained on {recorded}, but what is there now is {source}: --resume goes "
                          "on with the run's own data; put those files back where they were, or start a new run")


def format_summary(summary: dict) -> str:
    """The terminal's table of summary.json (mean ± std over the seeds, the 95% CI), then one sentence per pair."""
    from rnnlab.stats import mean_std, sentences

    width = max([14] + [len(name) + 2 for name in summary])
    lines = [f"{'model':<{width}}{'seeds':>6}{'test accuracy':>19}{'95% CI':>18}{'train time':>12}{'parameters':>12}"
             f"{'images/s':>10}"]
    for name, row in summary.items():
        ci = row.get("ci95")
        interval = f"{100 * ci[0]:.2f} to {100 * ci[1]:.2f}" if ci else "-"
        lines.append(f"{name:<{width}}{row.get('n', 1):>6}{mean_std(row['test_accuracy'], row.get('std')):>19}"
                     f"{interval:>18}{row['train_seconds']:>11.1f}s{row['parameters']:>12,}"
                     f"{row['train_images_per_second']:>10,.0f}")
    if all("versus" in row for row in summary.values()):
        lines += sentences(summary)
    return "\n".join(lines)
