"""`rnnlab` on the command line: argument parsing only; each command calls one function of the package.

The training options are generated from `Config`'s fields (name, type, choices, help); their defaults
live there alone, and an option the user did not give is simply absent here (argparse.SUPPRESS).
A mistake a user can make ends with one line on stderr and exit code 2; Ctrl-C/SIGTERM during
training ends with a checkpoint, a line saying how to resume, and exit code 130/143.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path

from rnnlab.config import FIELD_TYPES, Config, flag
from rnnlab.errors import RnnlabError
from rnnlab.startup import interrupts_held


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line instead of argparse's usage block: what was wrong and where to look."""
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def add_config_options(p: argparse.ArgumentParser, names: list[str] | None = None) -> None:
    """One option per Config field (or per field in `names`), typed, with its choices and default in the help."""
    defaults = Config()
    for f in dataclasses.fields(Config):
        if names is not None and f.name not in names:
            continue
        default = getattr(defaults, f.name) if f.default is not None else None  # None: resolved per run, said in help
        help_text = f.metadata["help"] + (f" (default: {default})" if default is not None else "")
        optional_value = {} if f.metadata.get("const") is None else {"nargs": "?", "const": f.metadata["const"]}
        p.add_argument(flag(f.name), dest=f.name, type=FIELD_TYPES[f.type], choices=f.metadata["choices"],
                       default=argparse.SUPPRESS, help=help_text, **optional_value)


def given_settings(args) -> dict:
    """The Config fields the user gave on the command line (absent ones take Config's defaults)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)}


def add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="one epoch on 2 batches and 1,000 test images: check it runs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its checkpoint, with its own settings")


DATA_OPTIONS = ["dataset", "data_dir", "view", "steps"]


def build_parser() -> Parser:
    parser = Parser(prog="rnnlab", description="Learn and compare recurrent networks on MNIST read row by row.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = commands.add_parser("train", help="train one model into a run folder")
    p.add_argument("--out", default=None, help="run folder (default: runs/<time>-<model>)")
    add_config_options(p)
    add_run_options(p)

    p = commands.add_parser("compare", help="the lab: train each model under identical settings, compare them")
    p.add_argument("--models", default=None,
                   help="comma-separated models (default: rnn,lstm; with --resume, the comparison's own)")
    p.add_argument("--out", default=None, help="folder for summary.json and one run folder per model "
                                                "(default: runs/<time>-compare)")
    p.add_argument("--no-report", action="store_true", help="skip report.html and its pictures")
    p.add_argument("--seeds", help="train every model with each seed, e.g. 0-4 or 0,3,7: mean, std, 95%% CIs")
    p.add_argument("--jobs", type=int, help="runs at once, as processes of cores/jobs threads (default: one per "
                                            "core on a CPU, 1 on a GPU)")
    p.add_argument("--steps", dest="lengths", help="sequence length T (as for train), or several, e.g. 28,56,112,196: "
                   "a sweep, one run per model, length and seed, its report plotting accuracy against length")
    add_config_options(p, [f.name for f in dataclasses.fields(Config) if f.name not in ("model", "backend", "steps")])
    add_run_options(p)

    p = commands.add_parser("summarize", help="merge finished runs (from several machines' compare --seeds) into "
                                              "one summary with statistics, and its report")
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="run folders, comparison folders, or folders of them")
    p.add_argument("--out", default=None, help="folder for summary.json and report.html (default: runs/<time>-summary)")
    p.add_argument("--varies", default=None, metavar="SETTING",
                   help="the setting that differs between the runs (e.g. lr): one row per model and value")
    p.add_argument("--no-report", action="store_true", help="skip report.html and its pictures")
    p.add_argument("--data-dir", default=None, help="where the test data is, for the report (default: the runs' own)")

    p = commands.add_parser("evaluate", help="test accuracy (overall and per class) of a saved model")
    p.add_argument("path", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("--data-dir", default=None, help="where the test data is (default: the run's own)")

    p = commands.add_parser("show", help="the sheet's 'one batch of training images' as a PNG grid with labels")
    add_config_options(p, DATA_OPTIONS + ["batch_size", "seed"])
    p.add_argument("--out", default="batch.png", help="PNG file to write (default: batch.png)")

    p = commands.add_parser("report", help="report.html with pictures for finished runs")
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="run folders, comparison folders, or folders of them")
    p.add_argument("--out", default=None, help="folder for report.html (default: the one FOLDER given, else the "
                                                "FOLDERs' common parent)")
    p.add_argument("--data-dir", default=None, help="where the test data is (default: the runs' own)")

    p = commands.add_parser("gradients", help="how far back the answer's gradient reaches: gradients.json and .png")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished run folders")
    p.add_argument("--images", type=int, help="the first N test images (default: 256, or all if fewer)")
    p.add_argument("--out", help="folder for the files (default: the one RUN_DIR given, else their common parent)")
    p.add_argument("--data-dir", help="where the test data is (default: the runs' own)")

    p = commands.add_parser("predict", help="classify images of handwritten digits (PNG/JPEG)")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--explain", metavar="OUT_PNG", help="also write the row-by-row picture (one image only)")

    p = commands.add_parser("serve", help="the web page: draw a digit and watch the models read it row by row")
    p.add_argument("runs", nargs="*", metavar="RUN_DIR_OR_CHECKPOINT", help="models (default: the newest under runs/)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--export", metavar="DIR", help="no server: write the page, reading digits in the browser, to DIR")
    p.add_argument("--force", action="store_true", help="with --export: replace a folder that is not empty")

    from rnnlab.exercise.cli import add_exercise_commands  # argparse only
    add_exercise_commands(commands, Parser)
    from rnnlab.caption.cli import add_caption_commands  # argparse only: no torch imported here
    add_caption_commands(commands, Parser)
    return parser


def nonempty_path(value: str | None, option: str) -> Path | None:
    """A path option as a Path; an empty string is a mistake, not "not given"."""
    if value is None:
        return None
    if not value.strip():
        raise RnnlabError(f"{option} is empty: give a folder or file name")
    return Path(value)


def settings_from_args(args) -> dict:
    """The given Config values, with --dry-run's cuts applied."""
    values = given_settings(args)
    if args.dry_run:
        batch = values.get("batch_size", Config.batch_size)
        values.update(epochs=1, train_limit=2 * batch, test_limit=1000)
    return values


def log(message: str) -> None:
    print(message, flush=True)


def run_train(args) -> int:
    from rnnlab.lab import train

    settings = settings_from_args(args)
    resume = nonempty_path(args.resume, "--resume")
    if resume is not None and args.out is not None:
        raise RnnlabError("--resume continues the run in its own folder; leave out --out")
    train(None if resume else Config(**settings), nonempty_path(args.out, "--out") or resume,
          resume=resume is not None, overrides=settings if resume else None, log=log, quiet=args.quiet)
    return 0


def run_compare(args) -> int:
    from rnnlab.experiments import parse_lengths, parse_seeds
    from rnnlab.lab import compare

    models = None if args.models is None else [m.strip() for m in args.models.split(",") if m.strip()]
    plan = {"seeds": parse_seeds(args.seeds) if args.seeds is not None else None, "jobs": args.jobs, "log": log,
            "lengths": parse_lengths(args.lengths) if args.lengths is not None else None, "quiet": args.quiet}
    if args.jobs is not None and args.jobs < 1:
        raise RnnlabError(f"--jobs must be 1 or more, got {args.jobs}")
    resume, settings = nonempty_path(args.resume, "--resume"), settings_from_args(args)
    if resume is not None and args.out is not None:
        raise RnnlabError("--resume continues the comparison in its own folder; leave out --out")
    summary = (compare(models, None, resume, resume=True, overrides=settings, **plan) if resume is not None else
               compare(models, settings, nonempty_path(args.out, "--out"), **plan))
    if not args.no_report and summary:
        use_file_backend()
        from rnnlab.report import write_summary_report
        log(f"report: {write_summary_report(summary, Path(next(iter(summary.values()))['run_dir']).parent, log=log)}")
    return 0


def run_summarize(args) -> int:
    from rnnlab.summaries import summarize

    folders = [nonempty_path(f, "FOLDER") for f in args.folders]
    summary, out = summarize(folders, nonempty_path(args.out, "--out"), varies=args.varies, log=log)
    if not args.no_report:
        use_file_backend()
        from rnnlab.report import write_summary_report
        log(f"report: {write_summary_report(summary, out, args.data_dir, log=log, summary_needs_report=True)}")
    log(f"summary: {out / 'summary.json'}")
    return 0


def run_evaluate(args) -> int:
    from rnnlab.data import CLASS_NAMES
    from rnnlab.runs import evaluate_saved

    config, evaluation = evaluate_saved(nonempty_path(args.path, "RUN_DIR_OR_CHECKPOINT"), args.data_dir, log=log)
    log(f"Test Accuracy: {100 * evaluation.accuracy:.2f}%  ({config.model} on {config.dataset}, "
        f"{int(evaluation.confusion.sum())} images)")
    for name, accuracy in zip(CLASS_NAMES[config.dataset], evaluation.per_class_accuracy):
        log(f"  class {name:>8}: {100 * accuracy:6.2f}%")
    return 0


def run_show(args) -> int:
    use_file_backend()
    from rnnlab.data import load_data
    from rnnlab.report.plots import png_destination, save_sample_batch

    config = Config(**given_settings(args))
    out = png_destination(args.out, "--out")
    path = save_sample_batch(load_data(config, announce=log), out, batch_size=config.batch_size, seed=config.seed)
    log(f"wrote {path}")
    return 0


def run_report(args) -> int:
    use_file_backend()
    from rnnlab.report import report_folders

    folders = [nonempty_path(f, "FOLDER") for f in args.folders]
    log(f"report: {report_folders(folders, nonempty_path(args.out, '--out'), args.data_dir, log=log)}")
    return 0


def run_gradients(args) -> int:
    from rnnlab.report.gradients_command import gradients_command  # draws on a Figure of its own: no backend needed
    return gradients_command(args.run_dirs, args.images, nonempty_path(args.out, "--out"), args.data_dir, log=log)


def run_predict(args) -> int:
    use_file_backend()
    from rnnlab.report.predict import predict_command

    return predict_command(nonempty_path(args.checkpoint, "RUN_DIR_OR_CHECKPOINT"),
                           [nonempty_path(image, "IMAGE") for image in args.images], explain=args.explain, log=log)


def run_serve(args) -> int:
    from rnnlab.serve import serve_command

    return serve_command(args.runs, host=args.host, port=args.port, log=log, export=args.export, force=args.force)


def run_exercise(args) -> int:
    from rnnlab.exercise import exercise_command
    return exercise_command(args, log=log)


def run_caption_command(args) -> int:
    from rnnlab.caption.cli import run_caption
    return run_caption(args, log=log)


def use_file_backend() -> None:
    """matplotlib draws to files here (the CLI has no screen); a notebook keeps its own backend."""
    import matplotlib

    matplotlib.use("Agg")


COMMANDS = {"train": run_train, "compare": run_compare, "summarize": run_summarize, "evaluate": run_evaluate,
            "show": run_show, "report": run_report, "predict": run_predict, "serve": run_serve, "exercise": run_exercise,
            "caption": run_caption_command, "gradients": run_gradients}


def main(argv: list[str] | None = None) -> int:
    try:
        with interrupts_held():  # Ctrl-C while torch loads: raised once it has (see rnnlab.startup)
            from rnnlab.training.distributed import shutdown
            from rnnlab.training.fit import TrainingInterrupted
            from rnnlab.training.machine import keep_freed_memory
        args = build_parser().parse_args(argv)
        keep_freed_memory()  # process-wide allocator tuning, once, at the entry point
        return COMMANDS[args.command](args)
    except RnnlabError as exc:
        print(f"rnnlab: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a SIGINT noted late must not end the exit as -2
        print("rnnlab: interrupted", file=sys.stderr, flush=True)
        return 130
    except TrainingInterrupted as exc:
        print(f"rnnlab: {exc}; {exc.resume_hint(args.command)}", file=sys.stderr, flush=True)
        return exc.exit_code
    except (MemoryError, RuntimeError) as exc:  # an allocation that failed after all (the size was checked first)
        if not isinstance(exc, MemoryError) and "can't allocate memory" not in str(exc) \
                and type(exc).__name__ != "OutOfMemoryError":
            raise
        print("rnnlab: error: ran out of memory; choose a smaller --hidden-size, --num-layers or --batch-size",
              file=sys.stderr, flush=True)
        return 2
    finally:
        shutdown()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
