"""Every hyperparameter of a run in one dataclass. The defaults are the lab sheet's."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rnnlab.errors import RnnlabError

MODELS = ("rnn", "lstm", "gru", "scratch-lstm")
DATASETS = ("mnist", "fashion-mnist", "kmnist")
VIEWS = ("rows", "pixels", "permuted")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")
BACKENDS = ("torch", "numpy")


@dataclass
class Config:
    model: str = "lstm"
    dataset: str = "mnist"
    data_dir: str = "data"
    view: str = "rows"
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    hidden_size: int = 128
    num_layers: int | None = None  # None: the sheet's choice for the model (1 for rnn, 2 otherwise)
    dropout: float = 0.0
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    backend: str = "torch"
    eval_batch_size: int = 1000
    train_limit: int | None = None  # use only the first N training images (quick runs, tests)
    test_limit: int | None = None
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints; 0 = only at the end of each epoch
    log_every: int = 50  # steps between progress-bar updates (each one is a host sync)

    def __post_init__(self) -> None:
        if self.num_layers is None:
            self.num_layers = 1 if self.model == "rnn" else 2
        self.validate()

    def validate(self) -> None:
        def choose(name: str, value: str, allowed: tuple[str, ...]) -> None:
            if value not in allowed:
                raise RnnlabError(f"unknown {name} {value!r}: choose one of {', '.join(allowed)}")

        choose("model", self.model, MODELS)
        choose("dataset", self.dataset, DATASETS)
        choose("view", self.view, VIEWS)
        choose("device", self.device, DEVICES)
        choose("precision", self.precision, PRECISIONS)
        choose("backend", self.backend, BACKENDS)
        for name in ("epochs", "batch_size", "hidden_size", "num_layers", "eval_batch_size", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise RnnlabError(f"--{name.replace('_', '-')} must be a positive whole number, got {value!r}")
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise RnnlabError(f"--{name.replace('_', '-')} must be a positive whole number, got {value!r}")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise RnnlabError(f"--checkpoint-every must be 0 or more steps, got {self.checkpoint_every!r}")
        if not 0 < self.lr <= 1000:  # Adam's step must stay a finite float32
            raise RnnlabError(f"--lr must be a positive number of at most 1000, got {self.lr!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise RnnlabError(f"--dropout must be in [0, 1), got {self.dropout!r}")
        if self.backend == "numpy" and (self.model != "lstm" or self.view != "rows"):
            raise RnnlabError("--backend numpy trains only --model lstm on --view rows")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RnnlabError(f"unknown config keys {unknown}: this config was not written by this rnnlab")
        return cls(**values)
