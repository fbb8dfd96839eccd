"""Which models the web page serves: finding the runs, loading each model once, naming them.

`rnnlab serve RUN_DIR_OR_CHECKPOINT ...` serves the runs it is given; with none it serves the newest
finished runs under `runs/`: the newest `compare` folder (what `make run` writes: `runs/lab-<time>/`
with `rnn/` and `lstm/` inside), or the newest single run if that is newer. Every model is loaded
once, here, with `rnnlab.runs.load_model` (`torch.load(weights_only=True)`, as `evaluate` does).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from rnnlab.config import Config
from rnnlab.data import CLASS_NAMES, input_shape
from rnnlab.errors import RnnlabError
from rnnlab.report.introspect import is_lstm
from rnnlab.runs import COMPARISON, CONFIG, METRICS, MODEL, SUMMARY, load_model, read_json

RUNS_ROOT = Path("runs")
NO_RUNS = ("no finished run to serve under runs/: make one with `make run` (the lab: rnn and lstm), or "
           "`rnnlab train --model lstm --epochs 1`, or name a run folder: rnnlab serve RUN_DIR")


@dataclass
class ServedModel:
    """One loaded model and what the page says about it.

    `steps` is the sequence length T the model reads (28 for the `rows` view, 784 for pixel views);
    `steps_per_row` = T / 28, so that "after row t" is step t·steps_per_row.
    """

    name: str
    model: nn.Module
    config: Config
    run_dir: Path
    metrics: dict = field(default_factory=dict)
    lstm: bool = False
    _float64: nn.Module | None = field(default=None, repr=False)

    def float64(self) -> nn.Module:
        """A float64 copy of the model, made once, in eval mode: the saliency's gradients without float32's
        cancellation (d log p / d logits = 1 - p is ~1e-6 for a confident answer, so float32 keeps ~2 digits)."""
        if self._float64 is None:
            self._float64 = copy.deepcopy(self.model).double().eval()
        return self._float64

    @property
    def steps(self) -> int:
        return input_shape(self.config.view, self.config.steps)[0]

    @property
    def steps_per_row(self) -> int:
        return self.steps // 28

    @property
    def class_names(self) -> list[str]:
        return list(CLASS_NAMES[self.config.dataset])

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def describe(self) -> dict:
        """What `GET /api/models` says about this model."""
        accuracy = self.metrics.get("test_accuracy")
        return {"name": self.name, "model": self.config.model, "dataset": self.config.dataset,
                "test_accuracy": accuracy if isinstance(accuracy, (int, float)) else None,
                "parameters": self.parameters, "run_dir": str(self.run_dir), "view": self.config.view,
                "steps": self.steps, "hidden_size": self.config.hidden_size,
                "num_layers": self.config.num_layers, "lstm": self.lstm, "classes": self.class_names}


def _finished(folder: Path) -> bool:
    return (folder / MODEL).is_file() and (folder / METRICS).is_file()


def newest_runs(root: Path = RUNS_ROOT) -> list[Path]:
    """The newest finished runs under `root`: a compare folder's runs together, or one single run.

    A candidate is a finished run folder directly under `root` or one level deeper (a compare folder's
    model); those sharing a compare folder form one group, dated by its newest model.pt.
    """
    if not root.is_dir():
        return []
    groups: dict[Path, list[Path]] = {}
    for folder in sorted(root.iterdir()):
        try:
            if not folder.is_dir():
                continue
            if _finished(folder):
                groups[folder] = [folder]
                continue
            order = _compared_order(folder)
            inner = sorted((sub for sub in folder.iterdir() if sub.is_dir() and _finished(sub)),
                           key=lambda sub: (order.get(sub.name, len(order)), sub.name))
        except OSError:  # a folder we may not read is not a run of ours
            continue
        if inner and ((folder / SUMMARY).is_file() or not (folder / CONFIG).is_file()):
            groups[folder] = inner
    if not groups:
        return []

    def newest(group: list[Path]) -> float:
        return max((run / MODEL).stat().st_mtime for run in group)

    return max(groups.values(), key=newest)


def _compared_order(folder: Path) -> dict[str, int]:
    """A compare folder's models in the order they were compared (rnn before lstm, as the lab has them)."""
    try:
        models = read_json(folder / COMPARISON, "").get("models")
    except RnnlabError:
        return {}
    return {name: k for k, name in enumerate(models)} if isinstance(models, list) else {}


def load_models(paths: list[str | Path]) -> list[ServedModel]:
    """Load each run folder or model.pt once; a folder or file that is not a finished run is an `RnnlabError`."""
    served = []
    for path in map(Path, paths):
        if not path.exists():
            raise RnnlabError(f"{path}: no such run folder or file; give a run folder that rnnlab train or "
                              "compare wrote (or its model.pt)")
        model, config = load_model(path)
        if input_shape(config.view, config.steps)[0] % 28:  # the page plays a reading row by row
            raise RnnlabError(f"{path}: reads {config.steps} steps, which do not end on the picture's rows; the page "
                              "shows a reading row by row: serve runs of --steps 28, 56, 112, 196, 392 or 784")
        run_dir = path if path.is_dir() else path.parent
        metrics = {}
        if (run_dir / METRICS).is_file():  # a bare model.pt copied elsewhere has none: no accuracy to show
            metrics = read_json(run_dir / METRICS, "the run's metrics file is damaged; train the run again")
        served.append(ServedModel(name="", model=model, config=config, run_dir=run_dir, metrics=metrics,
                                  lstm=is_lstm(model)))
    _name(served)
    return served


def _name(served: list[ServedModel]) -> None:
    """Short unique names: the model kind ("rnn", "lstm"), else the run folder's name, else numbered."""
    kinds = [s.config.model for s in served]
    for s in served:
        s.name = s.config.model if kinds.count(s.config.model) == 1 else s.run_dir.name
    names = [s.name for s in served]
    for k, s in enumerate(served):
        if names.count(s.name) > 1:
            s.name = f"{s.name}-{k + 1}"


def resolve(runs: list[str], log) -> list[ServedModel]:
    """The models to serve: those named, or the newest finished runs under runs/ (saying which)."""
    if not runs:
        found = newest_runs()
        if not found:
            raise RnnlabError(NO_RUNS)
        log("serving the newest finished runs under runs/: " + ", ".join(map(str, found)))
        runs = [str(path) for path in found]
    return load_models(runs)
