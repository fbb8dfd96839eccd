"""`rnnlab caption train|sample|report`: argument parsing only; each command calls one function.

`add_caption_commands(subparsers, Parser)` adds the `caption` command to rnnlab's parser and
`run_caption(args, log)` runs it. The training options are generated from `CaptionConfig`'s fields
(their defaults and help live there); an option the user did not give is absent here.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Callable

from rnnlab.caption.config import TYPES, CaptionConfig
from rnnlab.config import flag
from rnnlab.errors import RnnlabError


def add_caption_commands(subparsers, Parser) -> None:
    """Add `caption` with its three actions to rnnlab's subparsers (`Parser`: rnnlab's one-line-error parser)."""
    p = subparsers.add_parser("caption", help="image captioning: an LSTM writes the digits it reads "
                                              "(CS231n's captioning model)")
    actions = p.add_subparsers(dest="action", required=True, parser_class=Parser)

    q = actions.add_parser("train", help="train a captioner into a run folder")
    q.add_argument("--out", default=None, help="run folder (default: runs/<time>-caption-<decoder>)")
    q.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run in RUN_DIR from its checkpoint, with its own settings")
    q.add_argument("--dry-run", action="store_true", help="one epoch of 2 batches, 200 test pictures: check it runs")
    defaults = CaptionConfig()
    for f in dataclasses.fields(CaptionConfig):
        default = getattr(defaults, f.name)
        q.add_argument(flag(f.name), dest=f.name, type=TYPES[f.type], choices=f.metadata["choices"],
                       default=argparse.SUPPRESS,
                       help=f.metadata["help"] + (f" (default: {default})" if default is not None else ""))

    q = actions.add_parser("sample", help="caption your own pictures of a few digits written side by side")
    q.add_argument("run", metavar="RUN_DIR")
    q.add_argument("images", nargs="+", metavar="IMAGE")
    q.add_argument("--beam-size", type=int, default=1, help="beam search with this many beams (default: 1, greedy)")
    q.add_argument("--out", default=None, metavar="OUT_PNG", help="also draw the pictures as the model saw them")

    q = actions.add_parser("report", help="captions of test pictures, exact match, per-word accuracy, BLEU-4, "
                                          "by caption length, runs side by side")
    q.add_argument("runs", nargs="+", metavar="RUN_DIR")
    q.add_argument("--out", default=None, help="folder for the report (default: the parent of the first run)")
    q.add_argument("--data-dir", default=None, help="where the test data is (default: the runs' own)")
    q.add_argument("--beam-size", type=int, default=1, help="also score beam search with this many beams")


def given_settings(args) -> dict:
    """The CaptionConfig fields given on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(CaptionConfig) if hasattr(args, f.name)}


def run_caption(args, log: Callable[[str], None] = print) -> int:
    """Run `rnnlab caption <action>`; a mistake raises `RnnlabError` (the CLI prints it, exit code 2)."""
    if args.action == "train":
        from rnnlab.training.fit import TrainingInterrupted

        try:
            return _train(args, log)
        except TrainingInterrupted as exc:  # the hint names the command that resumes: `caption train`
            exc.command = "caption train"
            raise
    _file_backend()
    if args.action == "sample":
        from rnnlab.caption.sample import sample_command

        return sample_command(args.run, args.images, beam_size=args.beam_size, out=args.out, log=log)
    from rnnlab.caption.report import report_command

    return report_command(args.runs, out=args.out, data_dir=args.data_dir, beam_size=args.beam_size, log=log)


def _train(args, log: Callable[[str], None]) -> int:
    """`rnnlab caption train`: a new run, or `--resume` of one."""
    from rnnlab.caption.train import train_caption

    settings = given_settings(args)
    if args.dry_run:
        settings.update(epochs=1, epoch_size=2 * settings.get("batch_size", CaptionConfig.batch_size),
                        test_size=200)
    if args.resume is not None:
        if args.out is not None:
            raise RnnlabError("--resume continues the run in its own folder; leave out --out")
        if not args.resume.strip():
            raise RnnlabError("--resume is empty: give the run folder to continue")
        train_caption(None, args.resume, resume=True, overrides=settings, log=log)
    else:
        if args.out is not None and not args.out.strip():
            raise RnnlabError("--out is empty: give a folder for the run")
        train_caption(CaptionConfig(**settings), args.out, log=log)
    return 0


def _file_backend() -> None:
    """matplotlib draws to files here (the CLI has no screen)."""
    import matplotlib

    matplotlib.use("Agg")
