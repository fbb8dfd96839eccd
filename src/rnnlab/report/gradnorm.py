"""The report's section on exploding gradients: how large each model's gradient was during training.

Drawn from each run's steps.csv (`rnnlab.training.logs`): the global L2 norm of the gradients before
clipping at every logged step, one line per model on a log scale, and each --clip-grad cap as a dashed
line. Runs made before steps.csv existed (or with --backend numpy, which logs no steps) are named in one line.
"""

from __future__ import annotations

from pathlib import Path

from rnnlab.report.html import Page
from rnnlab.report.plots import model_color, plt, save_figure
from rnnlab.training.logs import STEPS_CSV, read_steps

FIGURE = "grad_norm.png"


def save_grad_norms(curves: list[tuple[int, str, list[dict], float]], path: Path) -> Path:
    """`curves`: [(colour index, name, steps.csv rows, --clip-grad)]. The index is the model's place among all
    the report's runs, so that it keeps its colour of the other figures even when a run before it has no curve."""
    fig, ax = plt.subplots(figsize=(7, 4))
    caps: dict[float, list[str]] = {}
    for k, name, rows, clip in curves:
        ax.plot([r["global_step"] for r in rows], [r["grad_norm"] for r in rows], "-", color=model_color(k),
                marker="." if len(rows) <= 60 else None, label=name)
        if clip:
            caps.setdefault(clip, []).append(name)
    for clip, names in caps.items():  # one line per cap, however many models share it
        whose = "" if len(names) == len(curves) else f": {', '.join(names)}"
        ax.axhline(clip, color="gray", linestyle="--", linewidth=1.2, label=f"--clip-grad {clip:g}{whose}")
    ax.set_yscale("log")
    ax.xaxis.get_major_locator().set_params(integer=True)  # steps are whole numbers
    ax.set(xlabel="training step", ylabel="gradient norm before clipping", title="gradient norm during training")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def add_grad_norm_section(page: Page, names: list[str], runs, out: Path) -> None:
    """The section of report.html: the plot of every run that has steps.csv, and one line naming those without."""
    page.heading("Gradient norm during training", anchor="grad-norm")
    curves, missing = [], []
    for k, (name, run) in enumerate(zip(names, runs)):
        path = Path(run.run_dir) / STEPS_CSV
        if path.is_file():
            curves.append((k, name, read_steps(path), run.config.clip_grad))
        else:
            missing.append(name)
    if curves:
        page.paragraph("How large each model's gradient was at every logged training step, measured over all its "
                       "weights together before any clipping: a curve that climbs by orders of magnitude is an "
                       "exploding gradient, and a dashed line is a --clip-grad cap, above which the step was scaled "
                       "down to it.")
        save_grad_norms(curves, out / FIGURE)
        page.add_figure(FIGURE, "Global L2 norm of the gradients before clipping at each logged step (log scale), "
                        "as in each run's steps.csv.")
    if missing:
        page.paragraph(f"No gradient norms for {', '.join(missing)}: the run folder has no {STEPS_CSV} (made before "
                       "rnnlab logged them, or with --backend numpy).", cls="note")
