"""`rnnlab predict CHECKPOINT IMAGE... [--explain out.png]`: classify your own pictures of digits.

Each picture is turned into a 28×28 MNIST-style image (`rnnlab.report.images`), read by the model
row by row, and printed as `file: label (top-3 probabilities)`. Every picture is read and checked
before anything is printed or written: one bad picture stops the command with one line and exit
code 2, and no output file. `--explain` draws the row-by-row picture of one image: the 28×28 input
as the model sees it, and each class's probability after each row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from rnnlab.errors import RnnlabError


def classify(model, config, digits: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 → (N, T, C) probabilities after each step (the last step is the answer)."""
    from rnnlab.data import sequence_inputs
    from rnnlab.report.introspect import probabilities_per_step

    inputs = sequence_inputs(config, torch.as_tensor(np.asarray(digits, dtype=np.uint8)))
    return probabilities_per_step(model, inputs)


def top_k(probabilities: np.ndarray, k: int = 3) -> list[tuple[int, float]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(c), float(probabilities[c])) for c in order]


def write_explanation(digit: np.ndarray, probabilities: np.ndarray, class_names: list[str], path: Path,
                      name: str, view: str, title: str) -> Path:
    """The row-by-row picture for one image, written atomically (no partial file on failure)."""
    import matplotlib.pyplot as plt

    from rnnlab.report.plots import draw_reading, save_figure

    fig, (ax_image, ax_probs) = plt.subplots(1, 2, figsize=(9.5, 3.4), gridspec_kw={"width_ratios": [0.55, 1]})
    draw_reading(ax_image, [ax_probs], digit, {name: probabilities}, class_names, view=view)
    ax_image.set_title("as the model sees it (28×28)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)  # atomic: no partial file on failure
    return path


def predict_command(checkpoint: str, images: list[str], explain: str | None = None,
                    log: Callable[[str], None] = print) -> int:
    """Classify `images` with the model in `checkpoint` (run folder or model.pt); print file, label and top 3."""
    from rnnlab.data import CLASS_NAMES
    from rnnlab.report.images import load_digit
    from rnnlab.report.plots import png_destination
    from rnnlab.runs import load_model

    if not images:
        raise RnnlabError("no pictures given: name one or more PNG or JPEG files")
    explain_path = None
    if explain is not None:
        if len(images) != 1:
            raise RnnlabError(f"--explain draws one picture, but {len(images)} were given; give one IMAGE with --explain")
        explain_path = png_destination(explain, "--explain")
    model, config = load_model(checkpoint)
    digits = np.stack([load_digit(image) for image in images])  # every picture checked before any output
    probabilities = classify(model, config, digits)
    class_names = CLASS_NAMES[config.dataset]
    answers = []
    for probs in probabilities:
        best = top_k(probs[-1])
        ranked = ", ".join(f"{class_names[c]} {100 * p:.1f}%" for c, p in best)
        answers.append(f"{class_names[best[0][0]]}  ({ranked})")
    lines = [f"{image}: {answer}" for image, answer in zip(images, answers)]
    if explain_path is not None:
        try:
            write_explanation(digits[0], probabilities[0], class_names, explain_path, config.model, config.view,
                              f"{Path(images[0]).name}: {answers[0]}")
        except OSError as exc:
            raise RnnlabError(f"cannot write --explain {explain}: {exc.strerror or exc}; choose another file") from None
    for line in lines:
        log(line)
    if explain_path is not None:
        log(f"wrote {explain_path}")
    return 0
