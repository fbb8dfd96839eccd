"""`rnnlab gradients RUN_DIR...`: how far back each run's gradient reaches, at its start and after training.

For every finished run, `run_gradients` on the first N test images (the run's own view and steps) at the
weights it started from and at its trained weights; then `DIR/gradients.json` (every per-step median, the
decays, N and the run's settings) and `DIR/gradients.png` (‖∂L/∂x_t‖ against the step, log scale, one colour
per run, dashed at the start, solid after training), and one line per run with its decays. Everything a user
can get wrong is checked before a file is written, and a failure while writing leaves neither file.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from rnnlab.config import LSTMS
from rnnlab.data import load_data, sequence_inputs
from rnnlab.errors import RnnlabError
from rnnlab.report.gradients import run_gradients
from rnnlab.runs import COMPARISON, RunResult, load_run, write_json

DEFAULT_IMAGES = 256
GRADIENTS_JSON, GRADIENTS_PNG = "gradients.json", "gradients.png"
WHAT = ("Per step t = 1..T: the median over the first `images` test images of ‖∂L/∂x_t‖ (x), and per layer of "
        "‖∂L/∂h_t‖ (h) and, for an LSTM, ‖∂L/∂c_t‖ (c); L is each image's cross-entropy of the answer after step T, "
        "computed in float64 from the model's own weights unrolled step by step. decay: log10(median at step T / "
        "median at step 1) in decades, positive when the gradient vanishes on its way back to step 1; null when "
        "a median is exactly 0 in float64 (see notes). initial: the weights the run started from (rebuilt from its "
        "seed); trained: its final weights.")


def gradients_command(run_dirs: list[str | Path], images: int | None = None, out: Path | None = None,
                      data_dir: str | None = None, *, log: Callable[[str], None] = print) -> int:
    """Write `out/gradients.json` and `out/gradients.png` for the finished runs in `run_dirs`; return 0 (exit code).

    `images`: the first N test images (default 256, or the whole test set when it is smaller). `out`: default
    the one run folder given, else the runs' common parent (as `rnnlab report` chooses).
    """
    if images is not None and images < 1:
        raise RnnlabError(f"--images must be a number of test images from 1 to the test set's size (10,000 for "
                          f"MNIST), got {images}")
    if any(not str(d).strip() for d in run_dirs):  # Path("") would be the current folder
        raise RnnlabError("RUN_DIR is empty: give a run folder that rnnlab train or compare wrote")
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise RnnlabError("no run folders given: name at least one folder that rnnlab train or compare wrote")
    runs = [_finished_run(d) for d in run_dirs]
    if out is None:
        out = run_dirs[0] if len(run_dirs) == 1 else Path(os.path.commonpath([os.path.abspath(d) for d in run_dirs]))
    if out.exists() and not out.is_dir():
        raise RnnlabError(f"--out {out} is a file; give a folder for gradients.json and gradients.png")
    inputs = _test_inputs(runs, images, data_dir, log)  # every run's data checked before any gradient is computed
    results = [run_gradients(run.config, run.model, x, y) for run, (x, y) in zip(runs, inputs)]
    names = _names(runs)
    document = {"what": WHAT, "runs": [_run_json(name, run, len(y), result)
                                       for name, run, (_, y), result in zip(names, runs, inputs, results)]}
    _write(out, document, names, results)
    for name, run, (_, y), result in zip(names, runs, inputs, results):
        log(f"{name} ({run.run_dir}): ‖∂L/∂x_t‖ from step {run.config.steps} back to step 1 decays "
            f"{_decades(result['initial']['decay']['x'])} → {_decades(result['trained']['decay']['x'])} decades "
            f"(initial → trained weights, median of {len(y):,} test images)")
    log(f"gradients: {out / GRADIENTS_JSON}, {out / GRADIENTS_PNG}")
    return 0


def _finished_run(run_dir: Path) -> RunResult:
    """The finished run in `run_dir`; anything else (not a folder, a comparison, not a run, unfinished) is an error."""
    if not run_dir.is_dir():
        raise RnnlabError(f"{run_dir} is not a folder; give run folders that rnnlab train or compare wrote")
    if (run_dir / COMPARISON).is_file():
        raise RnnlabError(f"{run_dir} is a comparison folder; give its run folders (such as {run_dir / 'rnn'})")
    return load_run(run_dir)


def _test_inputs(runs: list[RunResult], images: int | None, data_dir: str | None, log) -> list:
    """Per run (x (N, T, D), labels (N,)): its first N test images in its own view and steps."""
    datasets, inputs = {}, []
    for run in runs:
        config = replace(run.config, data_dir=data_dir) if data_dir is not None else run.config
        key = (config.dataset, str(config.data_dir), config.train_limit, config.test_limit)
        if key not in datasets:
            datasets[key] = load_data(config, announce=log)
        test = datasets[key].test
        available = len(test.labels)
        if images is not None and images > available:
            raise RnnlabError(f"--images {images}: the test set of {run.run_dir} has {available:,} images; "
                              f"give 1 to {available:,}")
        count = min(DEFAULT_IMAGES, available) if images is None else images
        inputs.append((sequence_inputs(config, test.images[:count]), test.labels[:count]))
    return inputs


def _names(runs: list[RunResult]) -> list[str]:
    """The model's name, with the steps and forget bias where the runs differ in them, then the folder if needed."""
    def name(run: RunResult) -> str:
        parts = [run.config.model]
        if len({r.config.steps for r in runs}) > 1:
            parts.append(f"{run.config.steps} steps")
        if len({r.config.forget_bias for r in runs}) > 1 and run.config.model in LSTMS:
            parts.append(f"forget bias {run.config.forget_bias:g}")
        return ", ".join(parts)

    names = [name(r) for r in runs]
    return [f"{n} ({r.run_dir.name})" if names.count(n) > 1 else n for n, r in zip(names, runs)]


def _decades(value: float) -> str:
    if math.isfinite(value):
        return f"{value:.1f}"
    return "undefined (both ends exactly 0)" if math.isnan(value) else f"{value} (a gradient exactly 0 in float64)"


def _phase_json(curves: dict) -> dict:
    """One phase's curves as JSON: lists of floats, a decay that is not finite as null with a note saying why."""
    notes = []

    def number(value: float, curve: str) -> float | None:
        if math.isfinite(value):
            return value
        notes.append(f"decay of {curve}: {_decades(value)}")
        return None

    document = {name: (curves[name].tolist() if name == "x" else [layer.tolist() for layer in curves[name]])
                for name in ("x", "h", "c") if name in curves}
    decays = curves["decay"]
    document["decay"] = {name: number(v, name) if name == "x" else [number(d, f"{name} layer {k + 1}")
                                                                   for k, d in enumerate(v)]
                         for name, v in decays.items()}
    document.update(median_loss=curves["median_loss"], unroll_error=curves["unroll_error"], notes=notes)
    return document


def _run_json(name: str, run: RunResult, images: int, result: dict) -> dict:
    c = run.config
    return {"name": name, "run_dir": str(run.run_dir), "model": c.model, "dataset": c.dataset, "view": c.view,
            "steps": c.steps, "hidden_size": c.hidden_size, "num_layers": c.num_layers, "forget_bias": c.forget_bias,
            "seed": c.seed, "images": images, **{phase: _phase_json(result[phase]) for phase in ("initial", "trained")}}


def _write(out: Path, document: dict, names: list[str], results: list[dict]) -> None:
    """gradients.png, then gradients.json, each atomically; a failure removes the picture this call wrote (an
    earlier one stays when it was not yet replaced) and `out` if this call made it."""
    created = not out.exists()
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        written.append(save_gradient_plot(names, results, out / GRADIENTS_PNG))
        write_json(out / GRADIENTS_JSON, document)  # last: a gradients.json is there only with its picture
    except BaseException as exc:
        for path in written:
            path.unlink(missing_ok=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        if isinstance(exc, OSError):
            raise RnnlabError(f"cannot write into {out}: {exc.strerror or exc}; choose another --out") from None
        raise


def save_gradient_plot(names: list[str], results: list[dict], path: Path) -> Path:
    """Median ‖∂L/∂x_t‖ against t, log scale: a colour per run, dashed at the starting weights, solid after training."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from rnnlab.report.plots import model_color, save_figure

    fig = Figure(figsize=(8, 4.5))  # not pyplot's: a notebook or the CLI keeps whatever backend it has
    ax = fig.subplots()
    for k, (name, result) in enumerate(zip(names, results)):
        for phase, style in (("initial", "--"), ("trained", "-")):
            curve = np.asarray(result[phase]["x"])
            label = (f"{name}: {_decades(result['initial']['decay']['x'])} → "
                     f"{_decades(result['trained']['decay']['x'])} decades") if phase == "trained" else None
            ax.plot(np.arange(1, len(curve) + 1), curve, style, color=model_color(k), linewidth=1.5, label=label)
    ax.set_yscale("log", nonpositive="mask")  # an exact 0 (only possible far back) is left out, not drawn at -inf
    ax.set(xlabel="step t (the answer is read after the last step)", ylabel="median ‖∂L/∂x_t‖ over the test images",
           title="How far back the gradient of the answer reaches")
    ax.grid(alpha=0.3, which="both")
    styles = [Line2D([], [], color="gray", linestyle="--", label="at the starting weights"),
              Line2D([], [], color="gray", linestyle="-", label="after training")]
    ax.legend(handles=ax.get_legend_handles_labels()[0] + styles, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def add_gradients_section(page, names: list[str], runs: list[RunResult], test_inputs: list, out: Path) -> None:
    """report.html's "gradient through time" section: `save_gradient_plot` of every run on its first
    `DEFAULT_IMAGES` test images (`test_inputs`: per run (x (N, T, D), labels (N,))), and what it shows in words."""
    inputs = [(x[:DEFAULT_IMAGES], y[:DEFAULT_IMAGES]) for x, y in test_inputs]
    results = [run_gradients(run.config, run.model, x, y) for run, (x, y) in zip(runs, inputs)]
    page.heading("How far back the gradient reaches", anchor="gradients")
    page.paragraph(f"Each curve is the median, over the first {len(inputs[0][1]):,} test images, of how much the loss "
                   "of the answer (read after the last step) changes with the input of step t: dashed at the weights "
                   "the run started from, solid after training, on a log scale. A curve that falls steeply towards "
                   "step 1 is a vanishing gradient, the lab sheet's reason for the LSTM: the first rows then barely "
                   "change what the model learns.")
    page.paragraph("From the last step back to the first it falls " + "; ".join(
        f"{_decades(r['initial']['decay']['x'])} decades for {name} at the start and "
        f"{_decades(r['trained']['decay']['x'])} after training" for name, r in zip(names, results)) +
        ". rnnlab gradients writes every number, with each layer's hidden and cell states, to gradients.json.")
    save_gradient_plot(names, results, out / GRADIENTS_PNG)
    page.add_figure(GRADIENTS_PNG, "Median ‖∂L/∂x_t‖ against the step t, from the model's own weights unrolled in "
                    "float64 (as rnnlab gradients computes them).")
