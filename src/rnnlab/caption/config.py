"""Every setting of a captioning run in one dataclass: the CLI's options, `config.json`, the one validation.

The defaults are the run that `benchmarks/caption_results.py` measures (docs/captioning.md): digit
strings, an LSTM decoder, 5 epochs of 25,600 fresh pictures, 64 a step, one thread.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rnnlab.config import MAX_SEED, SavedSettings, flag, setting
from rnnlab.errors import RnnlabError

DATA = ("digits", "coco")
DECODERS = ("lstm", "scratch-lstm", "rnn")
BACKENDS = ("torch", "numpy")
SCHEDULES = ("cosine", "constant")
TYPES = {"str": str, "int": int, "float": float, "int | None": int, "str | None": str}


@dataclass
class CaptionConfig(SavedSettings):
    WRITTEN_BY = "rnnlab caption"

    data: str = setting("digits", "digits: 1-4 MNIST digits side by side, captioned with their names (made "
                                  "offline); coco: CS231n's COCO captioning files in --data-dir", DATA)
    data_dir: str = setting("data", "digits: the folder with MNIST's IDX files (as for rnnlab train); coco: the "
                                    "folder of CS231n's coco_captioning files")
    decoder: str = setting("lstm", "the caption writer: nn.LSTM, the lab's scratch LSTM, or a vanilla nn.RNN",
                           DECODERS)
    backend: str = setting("torch", "numpy: CS231n's CaptioningRNN in NumPy (--decoder lstm or rnn), on the "
                                    "features of --features-from (or on raw pixels)", BACKENDS)
    features_from: str | None = setting(None, "numpy backend: a finished torch caption run whose encoder turns "
                                              "pictures into feature vectors (default: the flattened pixels)")
    epochs: int = setting(5, "passes of --epoch-size training examples")
    epoch_size: int = setting(25600, "training examples per epoch, in whole batches (digits: pictures drawn "
                                     "afresh from MNIST's training digits; coco: a seeded sample of the captions)")
    test_size: int = setting(1000, "test pictures (digits: from MNIST's test digits; coco: validation captions)")
    batch_size: int = setting(64, "examples per step")
    lr: float = setting(3e-3, "Adam learning rate (at the start, with --schedule cosine)")
    schedule: str = setting("cosine", "learning rate: cosine decay from --lr to 0 over the run, or constant",
                            SCHEDULES)
    wordvec_dim: int = setting(64, "size of a word vector")
    hidden_size: int = setting(128, "hidden units of the decoder")
    encoder_hidden: int = setting(128, "hidden units per layer of the LSTM that reads each digit slot (digits)")
    encoder_layers: int = setting(1, "layers of that LSTM (digits; the lab's classifier has 2)")
    grad_clip: float = setting(5.0, "clip the gradient's norm to this (0: no clipping)")
    seed: int = setting(0, f"seed of the weights and the training pictures (0 to {MAX_SEED})")
    test_seed: int = setting(0, "seed of the test pictures: the same test set for every run that shares it")
    threads: int = setting(1, "CPU threads for torch and NumPy (on a shared machine one is fastest)")
    checkpoint_every: int = setting(0, "also checkpoint every N steps (0: only at the end of each epoch)")
    log_every: int = setting(50, "steps between progress lines")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every value's type and range; the first problem raises one `RnnlabError`."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not (value is None and f.type.endswith("| None")):
                expected = TYPES[f.type]
                ok = isinstance(value, expected) and not isinstance(value, bool)
                if expected is float:
                    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
                if not ok:
                    raise RnnlabError(f"{flag(f.name)} must be {'a number' if expected is not str else 'a text'}, "
                                      f"got {value!r}")
            choices = f.metadata["choices"]
            if choices and value not in choices:
                raise RnnlabError(f"unknown {flag(f.name)} {value!r}: choose one of {', '.join(choices)}")
        for name in ("epochs", "epoch_size", "test_size", "batch_size", "wordvec_dim", "hidden_size",
                     "encoder_hidden", "encoder_layers", "threads", "log_every"):
            if getattr(self, name) <= 0:
                raise RnnlabError(f"{flag(name)} must be a positive whole number, got {getattr(self, name)!r}")
        if self.batch_size < 2 or self.epoch_size < 2:
            raise RnnlabError("--batch-size and --epoch-size must be 2 or more (the features are normalised over "
                              "the batch)")
        if self.checkpoint_every < 0:
            raise RnnlabError(f"--checkpoint-every must be 0 or more steps, got {self.checkpoint_every!r}")
        for name in ("seed", "test_seed"):
            if not 0 <= getattr(self, name) <= MAX_SEED:
                raise RnnlabError(f"{flag(name)} must be a whole number from 0 to {MAX_SEED}")
        if not 0 < self.lr <= 10.0:
            raise RnnlabError(f"--lr must be a positive number of at most 10, got {self.lr!r}")
        if self.grad_clip < 0:
            raise RnnlabError(f"--grad-clip must be 0 (off) or positive, got {self.grad_clip!r}")
        if not self.data_dir:
            raise RnnlabError("--data-dir is empty: give a folder")
        if self.features_from is not None and self.backend != "numpy":
            raise RnnlabError("--features-from is for --backend numpy (the torch captioner has its own encoder)")
        if self.backend == "numpy" and self.decoder not in ("lstm", "rnn"):
            raise RnnlabError("--backend numpy writes with CS231n's CaptioningRNN: --decoder lstm or rnn")

