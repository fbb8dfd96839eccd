"""The training check: the lab's NumPy LSTM classifier trained for one epoch with given layer functions.

The same function trains the student's `lstm_forward`/`lstm_backward` (in the child process) and the
reference's (in the checker), on the same images, order and initial weights, so the two accuracies
can be set side by side.

The recipe is tuned for one pass over few images: with the sheet's batch 64 and lr 1e-3, one epoch
of the 4,000 training digits of the offline sample ends at 67% (seed 0); with batch 16, Adam's lr
7e-3 decayed linearly to zero over the epoch, the gradient's norm clipped at 1 and the forget gates'
biases started at 1, it ends at 91.2%, 91.6% and 91.0% for seeds 0, 1, 2. On more than 10,000
training images (full MNIST) the batch is the sheet's 64.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

SMALL_TRAINING_SET = 10_000
PROGRESS_LINES = 10  # per training: a line every tenth of the steps, so a minute-long run is never silent


@dataclass(frozen=True)
class TrainingRecipe:
    epochs: int = 1
    batch_size: int | None = None  # None: 16 up to SMALL_TRAINING_SET training images, else 64
    lr: float = 7e-3
    clip_norm: float = 1.0
    forget_bias: float = 1.0
    hidden_size: int = 128
    num_layers: int = 2
    seed: int = 0

    def batch_for(self, n_train: int) -> int:
        return self.batch_size or (16 if n_train <= SMALL_TRAINING_SET else 64)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self, n_train: int) -> str:
        return (f"{self.epochs} epoch, {self.num_layers} layers of {self.hidden_size}, batch "
                f"{self.batch_for(n_train)}, Adam lr {self.lr:g} decayed to 0, gradient norm clipped at "
                f"{self.clip_norm:g}, forget-gate bias {self.forget_bias:g}, seed {self.seed}")


def train_and_evaluate(forward, backward, train_images, train_labels, test_images, test_labels,
                       recipe: TrainingRecipe = TrainingRecipe(), threads: int | None = 1,
                       progress: Callable[[str], None] | None = None) -> dict:
    """Train `NumpyLSTMClassifier(forward=..., backward=...)` by `recipe`; its accuracy on the test images.

    Images are uint8 `(N, 28, 28)` read as 28 rows of 28 pixels (the lab's view), labels `(N,)`.
    `progress` gets a line ("step 25/250, loss 1.234, 3 s") every tenth of the steps, and one before testing.
    Returns {"status": "ok" | "diverged", "accuracy", "train_loss", "steps", "batch_size", "seconds"}.
    """
    import torch

    from rnnlab.data import SequenceBatches, to_sequences
    from rnnlab.models.numpy_lstm import Adam, NumpyLSTMClassifier, blas_threads

    started = time.perf_counter()
    train_x = to_sequences(torch.as_tensor(np.asarray(train_images)))
    test_x = to_sequences(torch.as_tensor(np.asarray(test_images))).numpy()
    test_y = np.asarray(test_labels)
    batch_size = recipe.batch_for(len(train_x))
    batches = SequenceBatches(train_x, torch.as_tensor(np.asarray(train_labels)), batch_size, shuffle=True,
                              seed=recipe.seed)
    model = NumpyLSTMClassifier(28, recipe.hidden_size, recipe.num_layers, 10, seed=recipe.seed,
                                forward=forward, backward=backward)
    H = recipe.hidden_size
    for k in range(recipe.num_layers):
        model.params[f"b{k}"][H : 2 * H] += recipe.forget_bias  # columns H:2H are the forget gate (i, f, o, g)
    optimizer = Adam(model.params, lr=recipe.lr)
    steps, total = 0, recipe.epochs * len(batches)
    every = max(1, total // PROGRESS_LINES)
    loss_sum = window_sum = 0.0
    with blas_threads(threads):
        for epoch in range(recipe.epochs):
            for x, y in batches.epoch(epoch):
                loss, grads = model.loss_and_grads(x.numpy(), y.numpy())
                if not np.isfinite(loss):
                    return {"status": "diverged", "message": f"the loss became {loss} at step {steps + 1}",
                            "steps": steps, "batch_size": batch_size, "seconds": time.perf_counter() - started}
                norm = np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
                if norm > recipe.clip_norm:
                    grads = {name: g * (recipe.clip_norm / norm) for name, g in grads.items()}
                optimizer.lr = recipe.lr * (1.0 - steps / total)
                optimizer.step(grads)
                loss_sum += loss
                window_sum += loss
                steps += 1
                if progress and (steps % every == 0 or steps == total):
                    done = steps % every or every  # the steps this line's mean loss is over
                    progress(f"step {steps}/{total}, loss {window_sum / done:.3f}, "
                             f"{time.perf_counter() - started:.0f} s")
                    window_sum = 0.0
        if progress:
            progress(f"testing on {len(test_y):,} images")
        predictions = np.concatenate([model.predict(test_x[i : i + 1000]) for i in range(0, len(test_x), 1000)])
    return {"status": "ok", "accuracy": float(np.mean(predictions == test_y)), "train_loss": loss_sum / steps,
            "steps": steps, "batch_size": batch_size, "seconds": time.perf_counter() - started}
