"""What finished runs say together: `find_runs` (in any folders), `summarize_runs` (summary.json's contents: per
model, or per model and value of a setting that varies, the seeds' accuracies and their statistics from
`rnnlab.stats`) and `summarize` (`rnnlab summarize`: runs from several machines' comparisons into one summary).

Runs are merged only when they computed the same thing: their settings may differ in the seed, in how they
were carried out (`EXECUTION`) and, between models, in what makes each model itself (`PER_MODEL`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from rnnlab.config import STEPS, Config, flag
from rnnlab.errors import RnnlabError
from rnnlab.runs import (COMPARISON, CONFIG, METRICS, MODEL, SUMMARY, check_metrics, create_run_dir, default_run_dir,
                         format_summary, read_json, read_run_config, write_json)
from rnnlab.stats import compare_models

# Settings that change how a run is carried out or logged, not what it computes: runs that differ only in
# these are merged. (The thread count can move a seeded result by float rounding, like the machine.)
EXECUTION = ("data_dir", "device", "eval_batch_size", "checkpoint_every", "log_every", "threads", "tensorboard")
PER_MODEL = ("model", "num_layers", "dropout", "forget_bias")  # differ between the models of one comparison by design


def run_dir_for(out: Path, model: str, seed: int, several: bool, steps: int | None = None) -> Path:
    """A comparison's folder for one run: `rnn`, `rnn-seed3`, or in a sweep over lengths `rnn-steps112-seed3`."""
    name = model if steps is None else f"{model}-steps{steps}"
    return Path(out) / (f"{name}-seed{seed}" if several else name)


def comparison_runs(out: Path, models: list[str], seeds: list[int], lengths: list[int] | None) -> dict:
    """{(model, steps or None, seed): run folder} of a comparison, seed by seed, then length, then model: the runs
    of one seed finish together, so a comparison stopped early still pairs its models."""
    several = len(seeds) > 1
    return {(m, t, s): run_dir_for(out, m, s, several, t) for s in seeds for t in (lengths or [None]) for m in models}


def read_comparison(out: Path) -> tuple[list, dict, list, list | None]:
    """A comparison folder's models, shared settings (without the seed), seeds and lengths (None: not a sweep)."""
    saved = read_json(out / COMPARISON, "give the --out of an earlier rnnlab compare")
    models, settings = saved.get("models"), saved.get("settings", {})
    seeds, lengths = saved.get("seeds", [settings.get("seed", Config.seed)]), saved.get("lengths")
    if not isinstance(models, list) or not isinstance(settings, dict) or not isinstance(seeds, list) or not (
            lengths is None or isinstance(lengths, list) and all(t in STEPS for t in lengths)):
        raise RnnlabError(f"{out / COMPARISON}: not an rnnlab comparison; give the --out of an earlier rnnlab compare")
    return models, {k: v for k, v in settings.items() if k != "seed"}, seeds, lengths  # the seeds are `seeds`


def finished(run_dir: Path) -> bool:
    return (run_dir / METRICS).is_file() and (run_dir / MODEL).is_file()


def find_runs(folders: list[Path], log: Callable[[str], None] = print) -> list[Path]:
    """The finished run folders in `folders`: each a run folder, a comparison (its runs in its order) or a
    folder holding either; unfinished runs are named and left out."""
    found: list[Path] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise RnnlabError(f"{folder} is not a folder; give run or comparison folders that rnnlab wrote")
        if (folder / CONFIG).is_file():
            candidates = [folder]
        elif (folder / COMPARISON).is_file():
            models, _, seeds, lengths = read_comparison(folder)
            candidates = list(comparison_runs(folder, models, seeds, lengths).values())
        else:
            candidates = sorted(p.parent for p in folder.rglob(CONFIG))
        for run_dir in candidates:
            if not finished(run_dir):
                log(f"{run_dir}: not finished, left out (finish it with rnnlab compare --resume or train --resume)")
            elif run_dir.resolve() not in {f.resolve() for f in found}:
                found.append(run_dir)
    if not found:
        raise RnnlabError(f"no finished runs in {', '.join(map(str, folders))}; give folders that rnnlab compare or "
                          "train wrote")
    return found


def summarize_runs(run_dirs: list[Path], varies: str | None = None) -> dict:
    """summary.json's contents for finished runs: per model (and value of `varies`) the seeds and statistics.
    With `varies`, models are compared seed by seed where they share the value (at one sequence length, in a
    sweep) and each model with itself across values.

    Runs whose settings differ in anything but the seed, `EXECUTION` and `varies` (and between models, their
    depth and dropout) are refused, naming the setting.
    """
    if varies is not None and varies not in {f.name for f in dataclasses.fields(Config)}:
        raise RnnlabError(f"--varies {varies!r} is not a setting; name one such as lr or hidden_size")
    ignored = {"seed", *EXECUTION, *([varies] if varies else [])}
    records, names = [], {}
    for run_dir in run_dirs:
        config, _ = read_run_config(run_dir)
        metrics = check_metrics(read_json(run_dir / METRICS, "the run has not finished"), run_dir / METRICS)
        name = config.model if varies is None else f"{config.model} ({varies} {getattr(config, varies)})"
        records.append((name, config, metrics, run_dir))
    if varies is not None and len({getattr(config, varies) for _, config, _, _ in records}) < 2:
        raise RnnlabError(f"--varies {varies}: every run has {varies} {getattr(records[0][1], varies)!r}; leave "
                          "--varies out, or add runs where it differs")
    reference = {}
    for name, config, _, run_dir in records:
        values = {k: v for k, v in config.to_dict().items() if k not in ignored}
        for key in (name, None):  # the same model: everything; other models: all but PER_MODEL
            shared = values if key else {k: v for k, v in values.items() if k not in PER_MODEL}
            first, where = reference.setdefault(key, (shared, run_dir))
            differing = [k for k in shared if shared[k] != first.get(k)]
            if differing:
                raise RnnlabError(f"{run_dir} and {where} differ in {', '.join(flag(k) for k in differing)}: "
                                  "summarize runs of the same settings, or name the one that varies with "
                                  f"--varies {differing[0]}")
    by_model: dict[str, dict] = {}
    for name, config, metrics, run_dir in records:
        if config.seed in by_model.setdefault(name, {}):
            raise RnnlabError(f"{name} seed {config.seed} is there twice ({by_model[name][config.seed][1]} and "
                              f"{run_dir}): leave one out")
        by_model[name][config.seed] = (metrics, run_dir)
        names.setdefault(name, None)
    kinds = {name: (config.model, getattr(config, varies) if varies else None) for name, config, _, _ in records}
    compared = compare_models({n: {s: m["test_accuracy"] for s, (m, _) in by_model[n].items()} for n in names},
                              related=lambda a, b: kinds[a][0] == kinds[b][0] or kinds[a][1] == kinds[b][1])
    summary = {}
    for name in names:
        runs = [(seed, *by_model[name][seed]) for seed in sorted(by_model[name])]
        mean = lambda key: sum(m[key] for _, m, _ in runs) / len(runs)  # noqa: E731
        entry = compared[name]
        summary[name] = {"test_accuracy": entry["mean"], **{k: v for k, v in entry.items() if k != "mean"},
                         "train_seconds": mean("train_seconds"), "parameters": runs[0][1]["parameters"],
                         "train_images_per_second": mean("train_images_per_second"), "run_dir": str(runs[0][2]),
                   **({"model": kinds[name][0], "varies": varies, "value": kinds[name][1]} if varies else {}),
                         "runs": [{"seed": s, "test_accuracy": m["test_accuracy"], "train_seconds": m["train_seconds"],
                                   "epochs": len(m["epochs"]), "run_dir": str(d)} for s, m, d in runs]}
    return summary


def summarize(folders: list[Path], out: Path | None = None, *, varies: str | None = None,
              log: Callable[[str], None] = print) -> tuple[dict, Path]:
    """Merge finished runs from any folders (several machines' comparisons) into OUT/summary.json. Runs from a sweep
    over sequence lengths (compare --steps 28,56) are merged as a sweep, as if --varies steps were given."""
    if varies is None and any("lengths" in _comparison_file(Path(f)) for f in folders):
        varies = "steps"
    summary = summarize_runs(find_runs(folders, log), varies)  # everything checked before a file is written
    out = Path(out) if out is not None else default_run_dir("summary")
    if (out / COMPARISON).exists() or (out / CONFIG).exists():
        raise RnnlabError(f"{out} holds a comparison or a run, whose files a summary would replace; choose another --out")
    create_run_dir(out)
    write_json(out / SUMMARY, summary)
    log(format_summary(summary))
    return summary, out


def _comparison_file(folder: Path) -> dict:
    """A folder's comparison.json as written, {} when it has none or it is not one (find_runs says why)."""
    try:
        saved = read_json(folder / COMPARISON, "")
    except RnnlabError:
        return {}
    return saved if isinstance(saved, dict) else {}
