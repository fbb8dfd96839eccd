"""The report of a sweep over sequence lengths (`rnnlab compare --steps 28,56,112,196`): why the LSTM.

The lab sheet's reason for the LSTM is that a vanilla RNN's gradient vanishes over long sequences. A sweep
reads the same pictures in T steps of 784/T pixels for several T, so the only thing that changes is how far
back the first pixels lie. Its report shows the two sides of the argument against T:

- the test accuracy of every model, mean over the seeds with its 95% interval, and per length the paired
  difference of each pair of models (`rnnlab.stats`), from summary.json;
- the decay of the gradient at the weights each model starts from (`rnnlab.report.gradients`, in decades
  from the last step back to the first, median over the first 256 test images), before any training: how
  much weaker the first step's signal is than the last's when learning begins.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from rnnlab.data import load_data, sequence_inputs
from rnnlab.report.gradients import decay, starting_model, step_gradients
from rnnlab.report.gradients_command import DEFAULT_IMAGES
from rnnlab.report.html import Page
from rnnlab.report.plots import model_color, save_figure
from rnnlab.runs import read_run_config
from rnnlab.stats import points

ACCURACY_PNG, DECAY_PNG = "sweep_accuracy.png", "sweep_decay.png"


def is_sweep(summary: dict) -> bool:
    """Whether summary.json's contents come from a sweep over sequence lengths (compare --steps 28,56,...)."""
    return any(row.get("varies") == "steps" for row in summary.values())


def by_length(summary: dict) -> dict[int, dict[str, dict]]:
    """{steps: {model: its summary row}}, lengths ascending, models in the summary's order."""
    table: dict[int, dict[str, dict]] = {}
    for row in summary.values():
        table.setdefault(row["value"], {})[row["model"]] = row
    return dict(sorted(table.items()))


def initial_decays(summary: dict, data_dir: str | None = None, images: int = DEFAULT_IMAGES,
                   log: Callable[[str], None] = print) -> dict[int, dict[str, float]]:
    """{steps: {model: decay of the median ‖∂L/∂x_t‖ in decades}} at the weights the first seed's run started from,
    on the first `images` test images read in that many steps."""
    datasets, decays = {}, {}
    for steps, models in by_length(summary).items():
        for model, row in models.items():
            config, _ = read_run_config(Path(row["run_dir"]))
            config = replace(config, data_dir=data_dir) if data_dir is not None else config
            decays.setdefault(steps, {})[model] = decay_at_start(config, images, datasets, log)
    return decays


def decay_at_start(config, images: int = DEFAULT_IMAGES, datasets: dict | None = None,
                   log: Callable[[str], None] = print) -> float:
    """The decay in decades of the median ‖∂L/∂x_t‖ (t = T back to 1) at the weights a run of `config` starts
    from, on the first `images` test images: no run needed (`datasets` caches the loaded test sets)."""
    datasets = {} if datasets is None else datasets
    key = (config.dataset, str(config.data_dir), config.test_limit)
    test = (datasets.get(key) or datasets.setdefault(key, load_data(config, announce=log))).test
    norms = step_gradients(starting_model(config), sequence_inputs(config, test.images[:images]), test.labels[:images])
    return decay(np.median(norms["x"], axis=0))


def save_accuracy_plot(summary: dict, path: Path) -> Path:
    """Test accuracy against the sequence length: per model the mean over seeds, its 95% CI as error bars."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    table = by_length(summary)
    models = list(dict.fromkeys(m for row in table.values() for m in row))
    for k, model in enumerate(models):
        rows = [(steps, row[model]) for steps, row in table.items() if model in row]
        xs = np.array([steps for steps, _ in rows])
        means = np.array([100 * r["test_accuracy"] for _, r in rows])
        cis = np.array([[100 * v for v in (r.get("ci95") or [r["test_accuracy"]] * 2)] for _, r in rows])
        ax.errorbar(xs, means, yerr=[means - cis[:, 0], cis[:, 1] - means], marker="o", capsize=4,
                    color=model_color(k), label=f"{model} ({rows[0][1].get('n', 1)} seeds)")
    _length_axis(ax, table)
    ax.set(ylabel="test accuracy (%)", title="Test accuracy as the sequence grows (mean, 95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def save_decay_plot(decays: dict[int, dict[str, float]], path: Path) -> Path:
    """The decay at the starting weights against the sequence length, one line per model."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    models = list(dict.fromkeys(m for row in decays.values() for m in row))
    for k, model in enumerate(models):
        xs = [steps for steps, row in decays.items() if model in row and math.isfinite(row[model])]
        ax.plot(xs, [decays[steps][model] for steps in xs], marker="o", color=model_color(k), label=model)
    _length_axis(ax, decays)
    ax.set(ylabel="decades from the last step back to the first",
           title="How much the gradient fades before training, as the sequence grows")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def _length_axis(ax, table: dict) -> None:
    ax.set_xscale("log")
    ax.set_xticks(list(table), [f"{t}\n({784 // t} px)" for t in table])
    ax.minorticks_off()
    ax.set_xlabel("sequence length T (steps of 784/T pixels)")
    ax.grid(alpha=0.3)


def pair_rows(summary: dict) -> list[list]:
    """Per length and pair of models (in the order given), the paired difference: mean, 95% CI, seeds won."""
    rows = []
    for steps, models in by_length(summary).items():
        names = list(models)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                pair = summary[_name(summary, a, steps)]["versus"].get(_name(summary, b, steps))
                if pair and pair["n"]:
                    ci = pair.get("ci95")
                    rows.append([steps, f"{b} − {a}", f"{-100 * pair['difference']:+.2f}",
                                 f"{-100 * ci[1]:+.2f} to {-100 * ci[0]:+.2f}" if ci else "-",
                                 f"{pair['losses']} of {pair['n']}"])
    return rows


def _name(summary: dict, model: str, steps: int) -> str:
    return next(name for name, row in summary.items() if row["model"] == model and row["value"] == steps)


def write_sweep_report(summary: dict, out: Path, data_dir: str | None = None, *,
                       log: Callable[[str], None] = print) -> Path:
    """report.html of a sweep over sequence lengths: accuracy and the starting gradient's decay against length."""
    from rnnlab.report.page import _new_files_removed_on_failure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _new_files_removed_on_failure(out):
        decays = initial_decays(summary, data_dir, log=log)
        table = by_length(summary)
        page = Page("rnnlab sweep: " + ", ".join(dict.fromkeys(m for row in table.values() for m in row)) +
                    " at " + ", ".join(f"{t}" for t in table) + " steps")
        add_sweep_section(page, summary, decays, out)
        return page.write(out / "report.html")


def add_sweep_section(page: Page, summary: dict, decays: dict, out: Path) -> None:
    """The sections "Accuracy against sequence length" and "The gradient at the start", with their tables."""
    table = by_length(summary)
    page.heading("Accuracy against sequence length", anchor="sweep")
    page.paragraph("Every run reads the same pictures, cut into T steps of 784/T pixels in row order: only the "
                   "length of the sequence changes. A model whose accuracy falls as T grows cannot carry what it saw "
                   "in the first steps to the answer at the last one.")
    save_accuracy_plot(summary, out / ACCURACY_PNG)
    page.add_figure(ACCURACY_PNG, "Test accuracy against the sequence length (log scale): the mean over the seeds, "
                    "and its 95% bootstrap interval.")
    models = list(dict.fromkeys(m for row in table.values() for m in row))
    page.table(["steps", *[f"{m}: mean ± std (95% CI)" for m in models]],
               [[steps, *[f"{_mean_std(row[m])} ({_ci(row[m])})" if m in row else "-" for m in models]]
                for steps, row in table.items()])
    page.heading("Paired differences at each length", level=3)
    page.table(["steps", "pair", "difference (points)", "95% CI", "seeds ahead"], pair_rows(summary))
    page.heading("The gradient at the start, against sequence length", anchor="sweep-gradients")
    page.paragraph("Before any training, the gradient of the answer's loss with respect to the input of step t "
                   "fades on its way back from the last step to the first. Each point is that fall in decades "
                   "(log10 of the ratio of medians over the first test images), at the weights the run's first "
                   "seed started from. A vanilla RNN's grows steeply with the length; an LSTM's, whose cell "
                   "state is added to rather than multiplied, grows far less: the lab sheet's argument, measured.")
    save_decay_plot(decays, out / DECAY_PNG)
    page.add_figure(DECAY_PNG, "Decay of the median ‖∂L/∂x_t‖ from step T back to step 1 at the starting weights, "
                    "in float64; higher means the first steps barely reach the weights.")
    models = list(dict.fromkeys(m for row in decays.values() for m in row))
    page.table(["steps", *models], [[steps, *[f"{row[m]:.1f}" if m in row else "-" for m in models]]
                                    for steps, row in decays.items()])


def _mean_std(row: dict) -> str:
    std = row.get("std")
    return f"{100 * row['test_accuracy']:.2f}" + (f" ± {100 * std:.2f}%" if std is not None else "%")


def _ci(row: dict) -> str:
    ci = row.get("ci95")
    return f"{points(ci[0])} to {points(ci[1])}" if ci else "-"
