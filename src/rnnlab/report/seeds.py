"""The report's section on seeds: how much each model's result moves with the seed, and what that allows to say.

Drawn from summary.json's contents (`rnnlab.summaries.summarize_runs`) and each run's metrics.json:
a strip plot of every seed's test accuracy with the mean and its 95% bootstrap interval, learning
curves as the mean over seeds with a band from the lowest to the highest seed, the per-seed table and
the sentence for each pair of models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnlab.report.html import Page
from rnnlab.report.plots import model_color, plt, save_figure
from rnnlab.runs import METRICS, read_json
from rnnlab.stats import mean_std, sentences


def save_seed_strip(summary: dict, path: Path) -> Path:
    """Per model (one column each) every seed's test accuracy as a dot, the mean as a bar, the 95% CI as a line."""
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(summary), 4.2))
    for k, (name, row) in enumerate(summary.items()):
        values = 100 * np.asarray(row["test_accuracies"])
        offsets = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
        ax.plot(k + offsets, values, "o", color=model_color(k), alpha=0.75, label="one seed" if k == 0 else None)
        ax.hlines(100 * row["test_accuracy"], k - 0.25, k + 0.25, color="black", linewidth=2,
                  label="mean" if k == 0 else None)
        if row.get("ci95"):
            low, high = (100 * v for v in row["ci95"])
            ax.vlines(k + 0.3, low, high, color="black", linewidth=1.2, label="95% CI of the mean" if k == 0 else None)
            ax.hlines([low, high], k + 0.26, k + 0.34, color="black", linewidth=1.2)
    ax.set_xticks(range(len(summary)), [f"{n}\n({r['n']} seed{'s' * (r['n'] > 1)})" for n, r in summary.items()])
    ax.set(ylabel="test accuracy (%)", title="test accuracy of every seed", xlim=(-0.6, len(summary) - 0.4))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save_figure(fig, path)


def save_mean_curves(curves: dict[str, list[list[dict]]], path: Path) -> Path:
    """Per model the mean over seeds of the training loss and accuracy (and validation accuracy when there is
    one) per epoch, with a band from the lowest to the highest seed. `curves`: model → each seed's epochs."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for k, (name, runs) in enumerate(curves.items()):
        epochs = min(len(r) for r in runs)
        if epochs == 0:
            continue
        xs = np.arange(1, epochs + 1)
        for ax, key, scale, style in ((ax_loss, "train_loss", 1, "-"), (ax_acc, "train_accuracy", 100, "-"),
                                      (ax_acc, "val_accuracy", 100, "--")):
            if not all(key in r[e] for r in runs for e in range(epochs)):
                continue
            values = scale * np.array([[r[e][key] for e in range(epochs)] for r in runs])
            label = f"{name} ({len(runs)} seeds)" + (" validation" if key == "val_accuracy" else "")
            ax.plot(xs, values.mean(axis=0), style, marker="o", color=model_color(k), label=label)
            ax.fill_between(xs, values.min(axis=0), values.max(axis=0), color=model_color(k), alpha=0.2)
    ax_loss.set(title="training loss: mean over seeds, band min–max", xlabel="epoch", ylabel="mean cross-entropy")
    ax_acc.set(title="accuracy: mean over seeds, band min–max", xlabel="epoch", ylabel="accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def add_seed_section(page: Page, summary: dict, out: Path) -> None:
    """The "Seeds" section of report.html for a summary (nothing when every model has a single seed)."""
    if not summary or all(row.get("n", 1) <= 1 for row in summary.values()):
        return
    page.heading("Seeds: what the differences mean", anchor="seeds")
    for line in sentences(summary):
        page.paragraph(line + ".")
    page.paragraph("Each seed draws other initial weights and another batch order. The interval is a 95% "
                   "percentile bootstrap of the mean over seeds; the comparison of two models is seed by seed "
                   "(paired). With fewer than about five seeds the interval is rough.", cls="note")
    page.table(["model", "seeds", "test accuracy (mean ± std)", "95% CI", "lowest", "highest"],
               [[name, row["n"], mean_std(row["test_accuracy"], row.get("std")),
                 f"{100 * row['ci95'][0]:.2f} to {100 * row['ci95'][1]:.2f}%" if row.get("ci95") else "-",
                 f"{100 * row['min']:.2f}%", f"{100 * row['max']:.2f}%"] for name, row in summary.items()])
    save_seed_strip(summary, out / "seeds_strip.png")
    page.add_figure("seeds_strip.png", "Each dot is one seed's test accuracy; the bar is the mean, the line beside "
                    "it the 95% confidence interval of the mean.")
    curves = {name: [read_json(Path(r["run_dir"]) / METRICS, "the run has not finished")["epochs"]
                     for r in row["runs"]] for name, row in summary.items()}
    save_mean_curves(curves, out / "seeds_curves.png")
    page.add_figure("seeds_curves.png", "Learning curves, mean over the seeds; the shaded band spans the lowest "
                    "to the highest seed at each epoch.")
    page.heading("Every seed", level=3)
    page.table(["model", "seed", "test accuracy", "train time", "epochs", "run folder"],
               [[name, r["seed"], f"{100 * r['test_accuracy']:.2f}%", f"{r['train_seconds']:.1f} s", r["epochs"],
                 r["run_dir"]] for name, row in summary.items() for r in row["runs"]])
