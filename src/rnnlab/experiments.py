"""Many runs trained together: `run_comparison` (models × seeds, or × sequence lengths in a sweep), what `compare` does.

Every model × seed is its own run folder: `OUT/<model>` with one seed (as the lab always had),
`OUT/<model>-seed<k>` with several, `OUT/<model>-steps<T>-seed<k>` in a sweep over sequence lengths
(`compare --steps 28,56,112`). `comparison.json` (models, settings, seeds, lengths) is written first, so
`--resume` knows what to finish; a run is resumed, started or skipped as its folder says, under a lock
so that two processes never train one folder. With `jobs` > 1 the runs go to separate processes
(`rnnlab.training.jobs`), each with cores / jobs threads, recorded in its config (a seeded result depends
on the thread count). The train function is handed in by the orchestrator (`rnnlab.lab.compare`).
`summary.json` keeps per model the seeds' accuracies and their statistics (`rnnlab.stats`): it is
`rnnlab.summaries.summarize_runs`' work, written the same way by a comparison and by `summarize`.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path
from typing import Callable

from rnnlab.config import STEPS, Config, flag, model_configs
from rnnlab.data import load_data
from rnnlab.errors import RnnlabError, WriteFailed
from rnnlab.runs import (CHECKPOINT, COMPARISON, CONFIG, METRICS, SUMMARY, check_run_dir, claim_run_dir, default_run_dir,
                         format_summary, run_lock, write_json)
from rnnlab.summaries import comparison_runs, finished, read_comparison, summarize_runs
from rnnlab.training.distributed import barrier, init_distributed, launched_by_torchrun, resolve_device
from rnnlab.training.fit import StopSignals, TrainingInterrupted
from rnnlab.training.jobs import run_jobs
from rnnlab.training.logs import require_tensorboard
from rnnlab.training.machine import available_cores

# docs/benchmarks.md, "compare --jobs": on a 2-core CPU two runs side by side with one thread each finish
# sooner than the same runs one after the other with two threads each: by 5-11% on a quiet machine for
# whole epochs, by 28-42% under load (short runs, where each process's start-up counts, lose 9-13%).
PREFER_PROCESSES = True


DEFAULT_MODELS = ("rnn", "lstm")  # what `compare` trains when no models are named
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


def parse_lengths(text: str) -> list[int]:
    """compare's --steps: `112` → [112]; `28,56,112,196` → a sweep over those sequence lengths."""
    try:
        lengths = [int(part) for part in text.split(",")]
    except ValueError:
        raise RnnlabError(f"--steps {text!r}: give a sequence length such as 28, or several like 28,56,112,196 "
                          "(divisors of 784)") from None
    if len(set(lengths)) != len(lengths):
        raise RnnlabError(f"--steps {text!r} names a length twice")
    for length in lengths:
        if length not in STEPS:
            raise RnnlabError(f"--steps {length} does not cut a picture's 784 pixels into equal steps: give divisors "
                              f"of 784: {', '.join(map(str, STEPS))}")
    return lengths


def default_jobs(device: str, runs: int) -> int:
    """Processes for `runs` runs when --jobs is not given: one per core on a CPU, one on a GPU or under torchrun."""
    if not PREFER_PROCESSES or launched_by_torchrun() or resolve_device(device).type != "cpu":
        return 1
    return max(1, min(available_cores(), runs))


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
                   jobs: int | None = None, lengths: list[int] | None = None, log: Callable[[str], None] = print,
                   quiet: bool = False) -> dict:
    """Train every model with every seed (and sequence length, in a sweep: `lengths`) under the same settings
    (what `compare` does); write summary.json."""
    with StopSignals() as stop:  # from the start: a signal while the folder is set up is caught too
        if resume:
            models, settings, seeds, lengths = _saved_plan(Path(out), overrides or {}, models, seeds, lengths)
        models = list(DEFAULT_MODELS) if models is None else models
        settings = dict(settings or {})
        if seeds is not None and "seed" in settings:
            raise RnnlabError("give --seed or --seeds, not both")
        seeds = seeds if seeds is not None else [settings.pop("seed", Config.seed)]
        if lengths is not None and len(lengths) == 1:  # one length is a setting like any other, not a sweep
            settings["steps"], lengths = lengths[0], None
        configs = {(m, t, s): c for s in seeds for t in (lengths or [None]) for m, c in model_configs(
            models, {**settings, "seed": s, **({"steps": t} if t else {})}).items()}
        first = next(iter(configs.values()))
        require_tensorboard(first.tensorboard)  # once, here, before the folder: not once per run, after it
        ctx = init_distributed(resolve_device(first.device))
        out = Path(out) if out is not None else default_run_dir("compare")
        runs = comparison_runs(out, models, seeds, lengths)
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
                claim_run_dir(out, COMPARISON, {"models": models, "settings": settings, "seeds": seeds,
                                                **({"lengths": lengths} if lengths else {})})
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
        summary = summarize_runs(list(runs.values()), "steps" if lengths else None)
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
        length = f", {config.steps} steps" if "-steps" in run_dir.name else ""  # a sweep over lengths
        log(f"== {config.model}{length}, seed {config.seed} ==")
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


def _saved_plan(out: Path, overrides: dict, models: list[str] | None, seeds: list[int] | None,
                lengths: list[int] | None) -> tuple:
    """--resume: the comparison's own models, settings, seeds and lengths; given models, seeds or lengths must be
    its own."""
    saved_models, settings, saved_seeds, saved_lengths = read_comparison(out)
    for name, value in overrides.items():
        if settings.get(name, getattr(Config, name, None)) != value:
            raise RnnlabError(f"{out} was started with other settings than {flag(name)} {value}: "
                              f"--resume continues a comparison with its own settings; leave out {flag(name)}")
    for option, given, saved in (("--models", models, saved_models), ("--seeds", seeds, saved_seeds),
                                 ("--steps", lengths, saved_lengths)):
        if given is not None and given != (saved or [settings.get("steps", Config.steps)]):
            raise RnnlabError(f"{out} was started with {option} {','.join(map(str, saved or ['its default']))}: "
                              f"--resume finishes a comparison with its own; leave out {option}")
    return saved_models, settings, saved_seeds, saved_lengths


def _silent(message: str) -> None:
    pass

