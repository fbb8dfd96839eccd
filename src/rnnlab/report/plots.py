"""Pictures of data and runs, drawn with matplotlib and written as PNG files.

Importing this module leaves matplotlib's backend alone (a notebook keeps its own); the CLI chooses
the file backend before it draws.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib.pyplot as plt

from rnnlab.data.batches import epoch_permutation
from rnnlab.data.sources import Dataset
from rnnlab.errors import RnnlabError
from rnnlab.training.checkpoint import atomic_write_bytes


def png_destination(value: str | Path, option: str) -> Path:
    """Where a command may write the PNG the user named with `option`; a mistake is one `RnnlabError`."""
    path = Path(value)
    if not str(value).strip():
        raise RnnlabError(f"{option} is empty: give a file name ending in .png")
    if path.suffix.lower() != ".png":
        raise RnnlabError(f"{option} {value}: the picture is written as PNG; give a file name ending in .png")
    if path.is_dir():
        raise RnnlabError(f"{option} {value} is a folder; give a file name ending in .png")
    if not path.parent.is_dir():
        what = "is a file" if path.parent.exists() else "does not exist"
        raise RnnlabError(f"{option} {value}: the folder {path.parent} {what}; give a file in an existing folder")
    return path


def save_figure(fig, path: Path) -> Path:
    """Write `fig` as a PNG at `path`, atomically (never a half-written picture), and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # for notebooks; the CLI checks its --out folders first
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def montage(images, cols: int, pad: int = 2, fill: int = 128):
    """(N, h, w) images → one (rows·(h+pad)+pad, cols·(w+pad)+pad) picture, tiles row by row.

    One `imshow` of a montage draws far faster than one matplotlib axis per image."""
    import numpy as np

    images = np.asarray(images)
    n, h, w = images.shape
    rows = max(1, math.ceil(n / cols))
    sheet = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), fill, dtype=images.dtype)
    for k in range(n):
        r, c = divmod(k, cols)
        sheet[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = images[k]
    return sheet


def save_grid(images, titles: list[str], path: Path, title: str, *, cols: int = 8, title_color: str = "black",
              cell: float = 1.2) -> Path:
    """Images (N, 28, 28) uint8 in a grid, each with its title above it, drawn as one montage."""
    n = len(images)
    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    lines = max((t.count("\n") + 1 for t in titles), default=1)
    pad = 4 + 7 * lines  # room above each tile for its title
    fig, ax = plt.subplots(figsize=(cell * cols, (cell + 0.15 * lines) * rows + 0.5))
    ax.axis("off")
    if n == 0:
        ax.text(0.5, 0.5, "none", ha="center", va="center")
    else:
        import numpy as np

        h, w = images.shape[1:]
        sheet = montage(np.asarray(images), cols, pad=pad, fill=255)
        ax.imshow(sheet, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        for k, text in enumerate(titles):
            r, c = divmod(k, cols)
            ax.text(pad + c * (w + pad) + w / 2, pad + r * (h + pad) - 1.5, text, ha="center", va="bottom",
                    fontsize=8, color=title_color)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


MAX_SHOWN = 1024  # a 32 × 32 grid; a larger batch is unreadable, and 100,000 images fill the memory


def save_sample_batch(dataset: Dataset, path: Path, *, batch_size: int = 64, seed: int = 0) -> Path:
    """The sheet's "one batch of training images": the first shuffled batch of epoch 1, with labels."""
    if batch_size > MAX_SHOWN:
        raise RnnlabError(f"show draws at most {MAX_SHOWN:,} images (a 32×32 grid), not --batch-size {batch_size:,}; "
                          "give a smaller --batch-size")
    order = epoch_permutation(len(dataset.train.labels), seed, 0)[:batch_size]
    images, labels = dataset.train.images[order], dataset.train.labels[order]
    return save_grid(images.numpy(), [dataset.class_names[int(label)] for label in labels], path,
                     f"one training batch of {dataset.name} ({len(order)} images)")


# --- report figures -------------------------------------------------------------------------------

MODEL_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
CLASS_COLORS = plt.get_cmap("tab10").colors


def model_color(index: int) -> str:
    return MODEL_COLORS[index % len(MODEL_COLORS)]


def save_learning_curves(runs: list[tuple[str, dict]], path: Path) -> Path:
    """Train loss and train accuracy per epoch (lines) and test accuracy (a star at the last epoch, with
    a dashed level), all models on the same axes. `runs` is [(name, metrics.json contents)]."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    all_epochs = set()
    for k, (name, metrics) in enumerate(runs):
        epochs = metrics.get("epochs", [])
        xs = [e["epoch"] for e in epochs]
        all_epochs.update(xs)
        color = model_color(k)
        ax_loss.plot(xs, [e["train_loss"] for e in epochs], "o-", color=color, label=name)
        ax_acc.plot(xs, [100 * e["train_accuracy"] for e in epochs], "o-", color=color, label=f"{name} train")
        if "test_accuracy" in metrics:
            last = xs[-1] if xs else 1
            test = 100 * metrics["test_accuracy"]
            ax_acc.axhline(test, color=color, linestyle="--", linewidth=1, alpha=0.7)
            ax_acc.plot([last], [test], "*", color=color, markersize=14, label=f"{name} test ({test:.2f}%)")
    ax_loss.set(title="training loss", xlabel="epoch", ylabel="mean cross-entropy")
    ax_acc.set(title="accuracy", xlabel="epoch", ylabel="accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if 0 < len(all_epochs) <= 20:
            ax.set_xticks(sorted(all_epochs))
    fig.tight_layout()
    return save_figure(fig, path)


def save_confusion(confusion, class_names: list[str], path: Path, title: str) -> Path:
    """The confusion matrix (rows true class, columns predicted), counts written in the cells."""
    import numpy as np

    matrix = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(5.6, 5))
    ax.imshow(np.log1p(matrix), cmap="Blues")
    threshold = np.log1p(matrix).max() / 2 if matrix.size else 0
    for t in range(matrix.shape[0]):
        for p in range(matrix.shape[1]):
            if matrix[t, p]:
                ax.text(p, t, str(int(matrix[t, p])), ha="center", va="center", fontsize=7,
                        color="white" if np.log1p(matrix[t, p]) > threshold else "black")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=90 if max(map(len, class_names)) > 2 else 0)
    ax.set_yticks(ticks, class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return save_figure(fig, path)


def save_misclassified(images, true, predicted, confidence, class_names: list[str], path: Path, title: str,
                       cols: int = 8) -> Path:
    """A grid of test images, each titled 'true→predicted' and the confidence of the prediction."""
    titles = [f"{class_names[int(t)]}→{class_names[int(p)]}\n{100 * float(c):.0f}%"
              for t, p, c in zip(true, predicted, confidence)]
    return save_grid(images, titles, path, title, cols=cols, title_color="darkred", cell=1.3)


def _row_of_step(step: int, steps: int, view: str) -> float | None:
    """The image row being read at `step` (0-based, of `steps`), for the views that read it top to bottom."""
    if view == "permuted":
        return None
    return ((step + 1) * 784 // steps - 1) // 28  # the row of the step's last pixel


def draw_reading(ax_image, axes_probs, image, probabilities: dict, class_names: list[str], *,
                 label: int | None = None, view: str = "rows") -> None:
    """One image read row by row: the image on `ax_image`, then per model (one axis each) a line per class
    with its probability after each row. The row where the model settles on its final answer is marked
    on the image (a line in the model's colour) and on its curves (a dashed vertical line)."""
    from rnnlab.report.introspect import decision_step

    ax_image.imshow(image, cmap="gray", vmin=0, vmax=255)
    ax_image.set_xticks([])
    ax_image.set_yticks(range(0, 28, 7))
    ax_image.set_ylabel("row")
    ax_image.set_title("image" if label is None else f"true: {class_names[int(label)]}", fontsize=9)
    for k, ((name, probs), ax) in enumerate(zip(probabilities.items(), axes_probs)):
        steps = probs.shape[0]
        xs = range(1, steps + 1)
        for c in range(probs.shape[1]):
            ax.plot(xs, probs[:, c], color=CLASS_COLORS[c % 10], linewidth=1.6 if c == probs[-1].argmax() else 1,
                    label=class_names[c])
        decided = decision_step(probs)
        ax.axvline(decided + 1, color="black", linestyle="--", linewidth=0.8)
        answer = int(probs[-1].argmax())
        ax.set_title(f"{name}: {class_names[answer]} ({100 * probs[-1, answer]:.0f}%), settled at "
                     f"{'row' if steps == 28 else 'step'} {decided + 1}", fontsize=9)
        ax.set(xlim=(1, steps), ylim=(-0.02, 1.02), xlabel="rows read" if steps == 28 else "steps read",
               ylabel="probability")
        ax.grid(alpha=0.3)
        row = _row_of_step(decided, steps, view)
        if row is not None:
            ax_image.axhline(row, color=model_color(k), linewidth=2, alpha=0.9)
            ax_image.annotate(name, (27.5, row), color=model_color(k), fontsize=7, ha="right", va="bottom")
    if axes_probs:
        axes_probs[-1].legend(fontsize=7, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5), title="class")


def save_reading(images, labels, probabilities: list[dict], class_names: list[str], path: Path, *,
                 view: str = "rows", title: str | None = None) -> Path:
    """Several images read row by row, one per line of the figure, models side by side.

    `probabilities[j]` maps model name → (T, C) probabilities for image j."""
    n = len(images)
    models = max(len(p) for p in probabilities) if probabilities else 0
    fig, axes = plt.subplots(n, 1 + models, figsize=(2.4 + 4.2 * models, 2.8 * n), squeeze=False,
                             gridspec_kw={"width_ratios": [0.55] + [1] * models})
    for j in range(n):
        draw_reading(axes[j, 0], list(axes[j, 1:]), images[j], probabilities[j], class_names,
                     label=None if labels is None else labels[j], view=view)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def save_accuracy_per_step(curves: dict, path: Path, title: str = "test accuracy if the model had to answer "
                                                                    "after row t") -> Path:
    """One curve per model: accuracy on the test set when answering after each row (step)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for k, (name, curve) in enumerate(curves.items()):
        xs = range(1, len(curve) + 1)
        ax.plot(xs, [100 * a for a in curve], "-", marker="." if len(curve) <= 60 else None, color=model_color(k),
                label=f"{name} ({100 * curve[-1]:.2f}% after the last)")
    ax.axhline(10, color="gray", linestyle=":", linewidth=1, label="chance (10%)")
    steps = max((len(c) for c in curves.values()), default=28)
    ax.set(xlabel="rows read" if steps == 28 else "steps read", ylabel="test accuracy (%)", title=title, ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def save_gate_heatmaps(inputs, trace: list[dict], path: Path, title: str) -> Path:
    """Inside the LSTM for one input sequence `inputs` (T, D): per layer (a column each), heatmaps
    unit × time of the input gate i, forget gate f, output gate o, block input g, cell state c and hidden
    state h; the input x_t on top."""
    import numpy as np

    layers = len(trace)
    names = [("i", "input gate i", "viridis", (0, 1)), ("f", "forget gate f", "viridis", (0, 1)),
             ("o", "output gate o", "viridis", (0, 1)), ("g", "block input g", "RdBu_r", (-1, 1)),
             ("c", "cell state c", "RdBu_r", None), ("h", "hidden state h", "RdBu_r", (-1, 1))]
    fig, axes = plt.subplots(1 + len(names), layers, figsize=(5.2 * layers, 2.1 * (1 + len(names))),
                             squeeze=False)
    steps = trace[0]["h"].shape[0]
    for k in range(layers):
        ax = axes[0, k]
        if k == 0:
            inputs = np.asarray(inputs, dtype=np.float64).T  # (D, T)
            ax.imshow(inputs, cmap="gray", aspect="auto", extent=(0.5, steps + 0.5, inputs.shape[0] - 0.5, -0.5),
                      interpolation="nearest")
            ax.set(title="layer 1 reads the input x_t (for rows: image row t, drawn as column t)",
                   ylabel="input\nfeature")
        else:
            ax.axis("off")
            ax.text(0.5, 0.5, f"layer {k + 1} reads layer {k}'s hidden state h", ha="center", va="center")
        for r, (key, label, cmap, limits) in enumerate(names, start=1):
            values = trace[k][key].T  # (H, T)
            if limits is None:
                bound = float(np.abs(values).max()) or 1.0
                limits = (-bound, bound)
            ax = axes[r, k]
            shown = ax.imshow(values, cmap=cmap, aspect="auto", vmin=limits[0], vmax=limits[1],
                              extent=(0.5, steps + 0.5, values.shape[0] - 0.5, -0.5), interpolation="nearest")
            ax.set_ylabel(f"{label}\nunit", fontsize=8)
            fig.colorbar(shown, ax=ax, fraction=0.03, pad=0.01)
        axes[-1, k].set_xlabel("row read (time step)")
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
