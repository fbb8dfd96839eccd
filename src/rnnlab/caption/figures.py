"""The captioning report's pictures: captioned test pictures, and accuracy by caption length.

Drawn with matplotlib into PNG files through `rnnlab.report.plots.save_figure` (atomic writes); the
backend is left alone, as everywhere in rnnlab (the CLI picks the file backend).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save_captioned_pictures(pictures: np.ndarray, generated: list[str], truth: list[str] | None, path: Path,
                            cols: int = 3) -> Path:
    """Pictures (N, 28, 112) uint8 with the generated caption above each (green when it equals the true
    one, red when not) and the true caption below; `truth=None` shows the generated caption only."""
    import matplotlib.pyplot as plt

    from rnnlab.report.plots import save_figure

    n = len(pictures)
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 1.45 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(pictures[k], cmap="gray", vmin=0, vmax=255)
        right = truth is None or generated[k] == truth[k]
        ax.set_title(generated[k] or "(nothing)", fontsize=9, color="black" if truth is None else
                     ("#1a7f37" if right else "#cf222e"))
        if truth is not None:
            ax.text(0.5, -0.12, f"true: {truth[k]}", transform=ax.transAxes, ha="center", va="top", fontsize=7,
                    color="#555")
    fig.tight_layout()
    return save_figure(fig, path)


def save_accuracy_by_length(results: dict[str, dict], path: Path, key: str = "exact_match") -> Path:
    """One line per run (name → scores with "by_length"): `key` (exact match or per-word) against the
    number of words in the caption."""
    import matplotlib.pyplot as plt

    from rnnlab.report.plots import save_figure

    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for name, scores in results.items():
        lengths = sorted(scores["by_length"], key=int)
        ax.plot([int(n) for n in lengths], [100 * scores["by_length"][n][key] for n in lengths], marker="o",
                label=name)
    ax.set_xlabel("words in the true caption (digits shown)")
    ax.set_ylabel(f"{key.replace('_', ' ')} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{key.replace('_', ' ')} by caption length", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
