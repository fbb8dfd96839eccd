"""report.html for finished runs: `write_report(run_dirs, out)` draws every picture and the page;
`report_folders(folders)` finds the runs first, as `rnnlab report` does.

`write_report(run_dirs, out, data_dir=None)` writes `out/report.html` and the PNGs it shows:
learning curves, a summary table, the gradient norm over training, confusion matrices and the
most-confused pairs, the most confident mistakes, the sheet's sample batch, the models reading chosen
test images row by row, test accuracy if the models had to answer after each row, and the LSTM's gates
over time.
The page is self-contained (relative image paths, inline CSS, no scripts) and opens from disk.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from rnnlab.data import CLASS_NAMES, load_data, sequence_inputs
from rnnlab.errors import RnnlabError
from rnnlab.report.html import Page
from rnnlab.runs import COMPARISON, CONFIG, load_run, read_json

REPORT = "report.html"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "model"


def _unique_names(runs) -> list[str]:
    names = [r.config.model for r in runs]
    return [f"{n} ({r.run_dir.name})" if names.count(n) > 1 else n for n, r in zip(names, runs)]


def choose_examples(labels: torch.Tensor, predictions: list[torch.Tensor], count: int = 4) -> list[int]:
    """Test images to read row by row: the first one, the first that some model gets wrong (preferring one
    the models disagree on), then the first image of each class not shown yet."""
    labels = labels.cpu()
    chosen = [0] if len(labels) else []
    if predictions:
        stacked = torch.stack([p.cpu() for p in predictions])  # (M, N)
        wrong = (stacked != labels).any(dim=0)
        disagree = (stacked != stacked[0]).any(dim=0) & wrong
        for mask in (disagree, wrong):
            hits = torch.nonzero(mask).flatten()
            if len(hits) and len(chosen) < count:
                index = int(hits[0])
                if index not in chosen:
                    chosen.append(index)
                break
    seen = {int(labels[i]) for i in chosen}
    for index in range(len(labels)):
        if len(chosen) >= count:
            break
        if int(labels[index]) not in seen:
            chosen.append(index)
            seen.add(int(labels[index]))
    return chosen


def write_report(run_dirs: list[Path], out: Path, data_dir: str | None = None, *,
                 log: Callable[[str], None] = print, examples: int = 4, mistakes: int = 32,
                 summary: dict | None = None) -> Path:
    """Write `out/report.html` (and its pictures) for finished run folders; return its path.

    The test set of each run is loaded with the run's own config (`data_dir` overrides where the files
    are). Each model reads it once (`logits_per_step`, in batches): the last step gives the ordinary
    evaluation, the others the accuracy after each row.
    """

    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise RnnlabError("no run folders given: name at least one folder that `rnnlab train` or `compare` wrote")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RnnlabError(f"--out {out} is a file; give a folder for report.html")
    runs = [load_run(d) for d in run_dirs]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RnnlabError(f"cannot create the report folder {out}: {exc.strerror or exc}; choose another --out") from None
    with _new_files_removed_on_failure(out):  # a report that fails half-way (a full disk) leaves nothing behind
        return _draw_report(runs, out, data_dir, log, examples, mistakes, summary)


def write_summary_report(summary: dict, out: Path, data_dir: str | None = None, *, log: Callable[[str], None] = print,
                         summary_needs_report: bool = False) -> Path:
    """report.html for a summary over seeds (summary.json's contents): each model's first seed drawn in full, and the
    seeds' statistics. `summary_needs_report` (`rnnlab summarize`): a report that fails (unreadable test data or
    model) takes out/summary.json with it, and `out` if that leaves it empty: no summary is left without its report."""
    from rnnlab.report.sweep import is_sweep, write_sweep_report

    try:
        if is_sweep(summary):  # many lengths: accuracy and gradient against length, not every run drawn in full
            return write_sweep_report(summary, out, data_dir, log=log)
        return write_report([Path(r["run_dir"]) for r in summary.values()], out, data_dir, log=log, summary=summary)
    except RnnlabError:
        if summary_needs_report:
            (out / "summary.json").unlink(missing_ok=True)
            if not any(out.iterdir()):
                out.rmdir()
        raise


def report_folders(folders: list[Path], out: Path | None = None, data_dir: str | None = None, *,
                   log: Callable[[str], None] = print) -> Path:
    """`rnnlab report FOLDER...`: report.html for the finished runs in `folders` (run folders, comparison folders
    or folders holding them, found as `summarize` finds them); return its path.

    Without `out` it goes into the one folder given, or into the common parent of several: never into the
    parent of a single run, where every run's report would overwrite the same runs/report.html.
    """
    from rnnlab.summaries import find_runs, summarize_runs

    folders = [Path(f) for f in folders]
    for folder in folders:  # a folder with no run anywhere in it: say so, rather than "no finished runs"
        if folder.is_dir() and not (folder / COMPARISON).is_file() and next(folder.rglob(CONFIG), None) is None:
            raise RnnlabError(f"{folder} is not an rnnlab run folder (no {CONFIG} in it or below); give run "
                              "folders, comparison folders or folders holding them, as rnnlab train or compare wrote")
    run_dirs = find_runs(folders, log=log)
    if out is None:
        out = folders[0] if len(folders) == 1 else Path(os.path.commonpath([os.path.abspath(f) for f in folders]))
    if any("lengths" in read_json(f / COMPARISON, "") for f in folders if (f / COMPARISON).is_file()):
        return write_summary_report(summarize_runs(run_dirs, "steps"), out, data_dir, log=log)  # a sweep's report
    return write_report(run_dirs, out, data_dir, log=log)


@contextlib.contextmanager
def _new_files_removed_on_failure(folder: Path):
    before = set(folder.iterdir())
    try:
        yield
    except BaseException:
        for path in set(folder.iterdir()) - before:
            if path.is_file():
                path.unlink(missing_ok=True)
        raise


def _summary_section(page: Page, names: list[str], runs, scores: dict, out: Path, summary: dict | None) -> None:
    """The table of the runs, their learning curves and, for a summary over seeds, the seeds' section."""
    from rnnlab.report import plots

    page.heading("Summary", anchor="summary")
    rows = []
    for name, run in zip(names, runs):
        m = run.metrics
        rows.append([name, f"{100 * m.get('test_accuracy', scores[name]['accuracy']):.2f}%",
                     f"{m.get('parameters', sum(p.numel() for p in run.model.parameters())):,}",
                     f"{m.get('train_seconds', float('nan')):.1f} s", f"{m.get('train_images_per_second', float('nan')):,.0f}",
                     len(m.get("epochs", [])), run.config.hidden_size, run.config.num_layers, run.config.view])
    page.table(["model", "test accuracy", "parameters", "train time", "images/s", "epochs", "hidden", "layers",
                "view"], rows)
    plots.save_learning_curves([(n, r.metrics) for n, r in zip(names, runs)], out / "learning_curves.png")
    page.add_figure("learning_curves.png", "Training loss and training accuracy per epoch; the star and dashed "
                    "line give each model's test accuracy after its last epoch.")
    if summary:  # a summary over seeds: the runs above are each model's first seed
        from rnnlab.report.seeds import add_seed_section

        add_seed_section(page, summary, out)


def _draw_report(runs, out: Path, data_dir: str | None, log, examples: int, mistakes: int,
                 summary: dict | None = None) -> Path:
    from rnnlab.report import introspect, plots
    from rnnlab.report.gradients_command import add_gradients_section
    from rnnlab.report.gradnorm import add_grad_norm_section

    names = _unique_names(runs)

    datasets: dict[tuple, object] = {}

    def data_for(config):
        config = replace(config, data_dir=data_dir) if data_dir is not None else config
        key = (config.dataset, str(config.data_dir), config.train_limit, config.test_limit)
        if key not in datasets:
            datasets[key] = load_data(config, announce=log)
        return key, datasets[key]

    page = Page("rnnlab report: " + ", ".join(names))
    scores, keys, inputs_of = {}, {}, {}
    for name, run in zip(names, runs):
        key, dataset = data_for(run.config)
        inputs = sequence_inputs(run.config, dataset.test.images)
        keys[name], inputs_of[name] = key, inputs
        scores[name] = introspect.scores_per_step(run.model, inputs, dataset.test.labels,
                                                  batch_size=run.config.eval_batch_size)
    first_key = keys[names[0]]
    reference = datasets[first_key]
    class_names = CLASS_NAMES[reference.name]

    page.paragraph(f"Runs: {', '.join(str(r.run_dir) for r in runs)}. Test data: {reference.source} "
                   f"({len(reference.test.labels):,} test images).", cls="note")

    _summary_section(page, names, runs, scores, out, summary)
    add_grad_norm_section(page, names, runs, out)
    add_gradients_section(page, names, runs, [(inputs_of[n], datasets[keys[n]].test.labels) for n in names], out)

    # The sheet's batch
    page.heading("One batch of training images", anchor="batch")
    first = runs[0].config
    plots.save_sample_batch(reference, out / "sample_batch.png", batch_size=min(64, first.batch_size), seed=first.seed)
    page.add_figure("sample_batch.png", "The first shuffled training batch of epoch 1, as the sheet shows it.")

    # Confusion and mistakes
    page.heading("Confusion matrices", anchor="confusion")
    figures = []
    for name in names:
        file_name = f"confusion-{_slug(name)}.png"
        plots.save_confusion(scores[name]["confusion"].numpy(), CLASS_NAMES[datasets[keys[name]].name],
                             out / file_name, f"{name}: {100 * scores[name]['accuracy']:.2f}% correct")
        figures.append(page.figure(file_name, f"{name}: rows are the true class, columns the prediction."))
    page.side_by_side(figures)
    page.heading("Most confused pairs", level=3)
    pair_rows = []
    for name in names:
        total = scores[name]["confusion"].sum(dim=1)
        own = CLASS_NAMES[datasets[keys[name]].name]
        for t, p, count in introspect.most_confused_pairs(scores[name]["confusion"], top=5):
            pair_rows.append([name, own[t], own[p], count, f"{100 * count / max(1, int(total[t])):.1f}%"])
    if pair_rows:
        page.table(["model", "true", "predicted as", "images", "of that class"], pair_rows)
    else:
        page.paragraph("No model confused any pair of classes on this test set.")

    page.heading("Misclassified test images", anchor="mistakes")
    page.paragraph("The most confident mistakes first; each title reads true → predicted, confidence.", cls="note")
    for name in names:
        dataset = datasets[keys[name]]
        s = scores[name]
        wrong = torch.nonzero(s["predictions"] != dataset.test.labels.cpu()).flatten()
        wrong = wrong[torch.argsort(s["confidences"][wrong], descending=True, stable=True)][:mistakes]
        file_name = f"misclassified-{_slug(name)}.png"
        plots.save_misclassified(dataset.test.images[wrong].numpy(), dataset.test.labels[wrong], s["predictions"][wrong],
                                 s["confidences"][wrong], CLASS_NAMES[dataset.name], out / file_name,
                                 f"{name}: {int((s['predictions'] != dataset.test.labels.cpu()).sum())} mistakes "
                                 f"of {len(dataset.test.labels):,}")
        page.add_figure(file_name, f"{name}: misclassified test images (up to {mistakes}).")

    # Reading row by row
    page.heading("Reading row by row", anchor="reading")
    page.paragraph("A recurrent network reads the image one row per step, and its classifier can be applied to "
                   "the hidden state after any row: these are the answers it would give if it had to stop there. "
                   "Each curve is one class's probability; the dashed line (and the line on the image, in the "
                   "model's colour) marks the row from which the model no longer changes its answer.")
    readers = [n for n in names if keys[n] == first_key]
    others = [n for n in names if keys[n] != first_key]
    chosen = choose_examples(reference.test.labels, [scores[n]["predictions"] for n in readers], examples)
    per_model = {n: introspect.probabilities_per_step(runs[names.index(n)].model, inputs_of[n][chosen]) for n in readers}
    probabilities = [{n: per_model[n][j] for n in readers} for j in range(len(chosen))]
    plots.save_reading(reference.test.images[chosen].numpy(), reference.test.labels[chosen].tolist(), probabilities,
                       class_names, out / "reading.png", view=first.view)
    page.add_figure("reading.png", f"Test images {', '.join(map(str, chosen))} read row by row, models side by side.")
    plots.save_accuracy_per_step({n: scores[n]["accuracy_per_step"] for n in names}, out / "accuracy_per_row.png")
    page.add_figure("accuracy_per_row.png", "Average over the test set: accuracy if the model had to answer after "
                    "row t. The last point is the model's test accuracy.")
    if others:
        page.paragraph(f"{', '.join(others)} use another test set and are left out of the side-by-side reading.",
                       cls="note")

    # Inside the LSTM
    lstms = [n for n in names if introspect.is_lstm(runs[names.index(n)].model)]
    page.heading("Inside the LSTM", anchor="gates")
    if not lstms:
        page.paragraph("None of these models is an LSTM (lstm or scratch-lstm), so there are no gates to show.")
    else:
        index = chosen[0]
        page.paragraph(f"Test image {index} (true class {class_names[int(reference.test.labels[index])]}), each LSTM's "
                       "own weights re-run through the sheet's equations: a_t = x_t Wx + h_(t-1) Wh + b; "
                       "i, f, o = σ(a); g = tanh(a_g); c_t = f ⊙ c_(t-1) + i ⊙ g; h_t = o ⊙ tanh(c_t). "
                       "Each heatmap is unit × time.")
    for name in lstms:
        run = runs[names.index(name)]
        dataset = datasets[keys[name]]
        index = chosen[0] if keys[name] == first_key else 0
        x = inputs_of[name][index]
        trace = introspect.lstm_gate_trace(run.model, x)
        error = introspect.gate_trace_error(run.model, x, trace)
        file_name = f"gates-{_slug(name)}.png"
        plots.save_gate_heatmaps(x.numpy(), trace, out / file_name,
                                 f"{name}: gates and states over time, test image {index} "
                                 f"(true {CLASS_NAMES[dataset.name][int(dataset.test.labels[index])]})")
        verdict = ("reproduces" if error <= 1e-5 else "does NOT reproduce")
        page.add_figure(file_name, f"{name}: recomputing c and h from these gates {verdict} the model's own "
                        f"output (largest difference {error:.1e}).")
    return page.write(out / REPORT)
