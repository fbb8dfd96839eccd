"""Many runs and what they say together: `run_comparison` (models × seeds) and `summarize` (any finished runs).

Every model × seed is its own run folder: `OUT/<model>` with one seed (as the lab always had),
`OUT/<model>-seed<k>` with several. `comparison.json` (models, settings, seeds) is written first, so
`--resume` knows what to finish; a run is resumed, started or skipped as its folder says, under a lock
so that two processes never train one folder. With `jobs` > 1 the runs go to separate processes
(`rnnlab.training.jobs`), each with cores / jobs threads, recorded in its config (a seeded result depends
on the thread count). The train function is handed in by the orchestrator (`rnnlab.lab.compare`).
`summary.json` keeps per model the seeds' accuracies and their statistics (`rnnlab.stats`), and is
written the same way by a comparison and by `summarize` over run folders from several machines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shutil
from pathlib import Path
from typing import Callable

from rnnlab.config import Config, flag, model_configs
from rnnlab.data import load_data
from rnnlab.errors import RnnlabError, WriteFailed
from rnnlab.runs import (CHECKPOINT, COMPARISON, CONFIG, METRICS, MODEL, SUMMARY, check_metrics, check_run_dir,
                         claim_run_dir, create_run_dir, default_run_dir, format_summary, read_json, read_run_config,
                         run_lock, write_json)
from rnnlab.stats import compare_models
from rnnlab.training.distributed import barrier, init_distributed, launched_by_torchrun, resolve_device
from rnnlab.training.fit import StopSignals, TrainingInterrupted
from rnnlab.training.jobs import run_jobs
from rnnlab.training.machine import available_cores

# Settings that change how a run is carried out or logged, not what it computes: runs that differ only in
# these are merged. (The thread count can move a seeded result by float rounding, like the machine.)
EXECUTION = ("data_dir", "device", "eval_batch_size", "checkpoint_every", "log_every", "threads", "tensorboard")
PER_MODEL = ("model", "num_layers", "dropout", "forget_bias")  # differ between the models of one comparison by design
# docs/benchmarks.md, "compare --jobs": on a 2-core CPU two runs side by side with one thread each finish
# sooner than the same runs one after the other with two threads each: by 5-11% on a quiet machine for
# whole epochs, by 28-42% under load (short runs, where each process's start-up counts, lose 9-13%).
PREFER_PROCESSES = True


MAX_SEEDS = 1000  # runs per model in one comparison; a typo like 0-99999999 must not expand into memory


def parse_seeds(text: str) -> list[int]:
    """`0-4` → [0, 1, 2, 3, 4]; `0,3,7` → [0, 3, 7]; ranges and lists mix (`0-2,9`)."""
    seeds: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match or (match[2] is not None and int(match[2]) < int(match[1])):
            raise RnnlabError(f"--seeds {text!r}: give seeds like 0-4 or 0,3,7 (whole numbers, ranges low-high)")
        low, high = int(match[1]), int(match[2] or match[1])
        if len(seeds) + high - low + 1 > MAX_SEEDS:
            raise RnnlabError(f"--seeds {text!r} asks for more than {MAX_SEEDS:,} runs per model; give fewer seeds")
        seeds += range(low, high + 1)
    if len(set(seeds)) != len(seeds):
        raise RnnlabError(f"--seeds {text!r} names a seed twice")
    return seeds


def run_dir_for(out: Path, model: str, seed: int, several: bool) -> Path:
    return Path(out) / (f"{model}-seed{seed}" if several else model)


def default_jobs(device: str, runs: int) -> int:
    """Processes for `runs` runs when --jobs is not given: one per core on a CPU, one on a GPU or under torchrun."""
    if not PREFER_PROCESSES or launched_by_torchrun() or resolve_device(device).type != "cpu":
        return 1
    return max(1, min(available_cores(), runs))


def finished(run_dir: Path) -> bool:
    return (run_dir / METRICS).is_file() and (run_dir / MODEL).is_file()


_DATASETS: dict = {}  # per process: the data of the runs it trained, loaded once


def train_one(train: Callable, values: dict, run_dir: Path, *, stop: StopSignals, log: Callable[[str], None],
              quiet: bool, dataset=None) -> None:
    """Start, resume or skip one run of a comparison, as its folder says, holding its lock."""
    with run_lock(run_dir):
        if finished(run_dir):
            return
        resuming = (run_dir / CONFIG).is_file()
        config = Config(**values)
        if dataset is None:
            key = (config.dataset, config.data_dir, config.train_limit, config.test_limit)
            dataset = _DATASETS.get(key) or _DATASETS.setdefault(key, load_data(config, announce=log))
        train(None if resuming else config, run_dir, resume=resuming, dataset=dataset, log=log, quiet=quiet,
              stop=stop)


def _train_task(task: tuple, stop: StopSignals) -> None:
    """One run in a worker process (`run_jobs`): its lines carry the run's name."""
    train, values, run_dir = task
    run_dir = Path(run_dir)
    train_one(train, values, run_dir, stop=stop, log=lambda line: print(f"[{run_dir.name}] {line}", flush=True),
              quiet=True)


def run_comparison(train: Callable, models: list[str] | None, settings: dict | None, out: Path | None, *,
                   resume: bool = False, overrides: dict | None = None, seeds: list[int] | None = None,
                   jobs: int | None = None, log: Callable[[str], None] = print, quiet: bool = False) -> dict:
    """Train every model with every seed under the same settings (what `compare` does); write summary.json."""
    with StopSignals() as stop:  # from the start: a signal while the folder is set up is caught too
        if resume:
            models, settings, saved_seeds = _read_comparison(Path(out), overrides or {})
            if seeds is not None and seeds != saved_seeds:
                raise RnnlabError(f"{out} was started with --seeds {','.join(map(str, saved_seeds))}: --resume "
                                  "finishes a comparison with its own seeds; leave out --seeds")
            seeds = saved_seeds
        settings = dict(settings or {})
        if seeds is not None and "seed" in settings:
            raise RnnlabError("give --seed or --seeds, not both")
        seeds = seeds if seeds is not None else [settings.pop("seed", Config.seed)]
        configs = {(m, s): c for s in seeds for m, c in model_configs(models, {**settings, "seed": s}).items()}
        first = configs[(models[0], seeds[0])]
        ctx = init_distributed(resolve_device(first.device))
        out = Path(out) if out is not None else default_run_dir("compare")
        runs = {key: run_dir_for(out, key[0], key[1], len(seeds) > 1) for key in sorted(
            configs, key=lambda k: (seeds.index(k[1]), models.index(k[0])))}  # seed by seed: pairs finish together
        jobs = jobs or default_jobs(first.device, len(runs))
        if jobs > 1 and ctx.is_distributed:
            raise RnnlabError("--jobs runs separate processes; under torchrun leave it out (or give --jobs 1)")
        if not resume:
            if (out / SUMMARY).exists() or (out / COMPARISON).exists():
                raise RnnlabError(f"{out} already holds a comparison; choose another --out, or continue it with "
                                  f"--resume {out}")
            for run_dir in runs.values():
                check_run_dir(run_dir)
            barrier(ctx)
            if ctx.is_main:  # the claim: of two comparisons started together into one --out, only one goes on
                claim_run_dir(out, COMPARISON, {"models": models, "settings": settings, "seeds": seeds})
        missing = {key: run_dir for key, run_dir in runs.items() if not finished(run_dir)}
        if resume:
            log(f"{out}: {len(runs) - len(missing)} of {len(runs)} runs finished; training the other {len(missing)}")
        try:
            with _removed_if_nothing_kept(out, list(runs.values()), fresh=not resume and ctx.is_main):
                _train_missing(train, {run_dir: configs[key] for key, run_dir in missing.items()}, jobs, stop,
                               log=log if ctx.is_main else _silent, quiet=quiet)
        except TrainingInterrupted as exc:
            exc.resume_dir = out
            raise
        summary = summarize_runs(list(runs.values()))
        if ctx.is_main:
            write_json(out / SUMMARY, summary)
            log(format_summary(summary))
        barrier(ctx)
        return summary


def _train_missing(train: Callable, runs: dict[Path, Config], jobs: int, stop: StopSignals, *,
                   log: Callable[[str], None], quiet: bool) -> None:
    """Train `runs` ({folder: its settings}) one after the other in this process, or in `jobs` processes."""
    if jobs > 1 and len(runs) > 1:
        threads = next(iter(runs.values())).threads or max(1, available_cores() // jobs)
        log(f"{len(runs)} runs in {min(jobs, len(runs))} processes of {threads} thread(s) each")
        run_jobs(_train_task, [(train, {**config.to_dict(), "threads": config.threads or threads}, str(run_dir))
                               for run_dir, config in runs.items()], jobs, threads)
        return
    dataset = load_data(next(iter(runs.values())), announce=log) if runs else None
    for run_dir, config in runs.items():
        log(f"== {config.model}, seed {config.seed} ==")
        train_one(train, config.to_dict(), run_dir, stop=stop, quiet=quiet, log=log, dataset=dataset)


@contextlib.contextmanager
def _removed_if_nothing_kept(out: Path, runs: list[Path], fresh: bool):
    """A new comparison that fails before any run has saved a checkpoint leaves nothing behind: what it wrote
    (comparison.json, run folders with nothing to resume) goes, so the same command can be given again.
    An interrupted one keeps its folder: `--resume` continues it."""
    try:
        yield
    except TrainingInterrupted:
        raise
    except BaseException as exc:
        if fresh and not any((d / CHECKPOINT).exists() or (d / METRICS).exists() for d in runs):
            for run_dir in runs:
                shutil.rmtree(run_dir, ignore_errors=True)
            (out / COMPARISON).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                out.rmdir()  # only if empty: the user's other files in --out stay
        elif isinstance(exc, WriteFailed):  # kept: running the same command again would find the folder taken
            raise exc.resumable(f"rnnlab compare --resume {out}") from None
        raise


def _read_comparison(out: Path, overrides: dict) -> tuple[list, dict, list]:
    saved = read_json(out / COMPARISON, "give the --out of an earlier rnnlab compare")
    models, settings = saved.get("models"), saved.get("settings", {})
    seeds = saved.get("seeds", [settings.get("seed", Config.seed)])
    if not isinstance(models, list) or not isinstance(settings, dict) or not isinstance(seeds, list):
        raise RnnlabError(f"{out / COMPARISON}: not an rnnlab comparison; give the --out of an earlier rnnlab compare")
    for name, value in overrides.items():
        if settings.get(name, getattr(Config, name, None)) != value:
            raise RnnlabError(f"{out} was started with other settings than {flag(name)} {value}: "
                              f"--resume continues a comparison with its own settings; leave out {flag(name)}")
    return models, {k: v for k, v in settings.items() if k != "seed"}, seeds  # the seeds are `seeds`


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
            models, settings, seeds = _read_comparison(folder, {})
            candidates = [run_dir_for(folder, m, s, len(seeds) > 1) for s in seeds for m in models]
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
    compared = compare_models({n: {s: m["test_accuracy"] for s, (m, _) in by_model[n].items()} for n in names})
    summary = {}
    for name in names:
        runs = [(seed, *by_model[name][seed]) for seed in sorted(by_model[name])]
        mean = lambda key: sum(m[key] for _, m, _ in runs) / len(runs)  # noqa: E731
        entry = compared[name]
        summary[name] = {"test_accuracy": entry["mean"], **{k: v for k, v in entry.items() if k != "mean"},
                         "train_seconds": mean("train_seconds"), "parameters": runs[0][1]["parameters"],
                         "train_images_per_second": mean("train_images_per_second"), "run_dir": str(runs[0][2]),
                         "runs": [{"seed": s, "test_accuracy": m["test_accuracy"], "train_seconds": m["train_seconds"],
                                   "epochs": len(m["epochs"]), "run_dir": str(d)} for s, m, d in runs]}
    return summary


def summarize(folders: list[Path], out: Path | None = None, *, varies: str | None = None,
              log: Callable[[str], None] = print) -> tuple[dict, Path]:
    """Merge finished runs from any folders (several machines' comparisons) into OUT/summary.json."""
    summary = summarize_runs(find_runs(folders, log), varies)  # everything checked before a file is written
    out = Path(out) if out is not None else default_run_dir("summary")
    if (out / COMPARISON).exists() or (out / CONFIG).exists():
        raise RnnlabError(f"{out} holds a comparison or a run, whose files a summary would replace; choose another --out")
    create_run_dir(out)
    write_json(out / SUMMARY, summary)
    log(format_summary(summary))
    return summary, out


def _silent(message: str) -> None:
    pass

