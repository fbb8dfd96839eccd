"""The `rnnlab exercise` commands' arguments (the CLI adds them; `exercise_command` runs them)."""

from __future__ import annotations


def add_exercise_commands(commands, Parser) -> None:
    """`exercise new DIR [--part] [--solution]` and `exercise check FILE [--json] [--data-dir]` under `commands`."""
    p = commands.add_parser("exercise", help="the lab as an exercise: a skeleton to fill in, and its checker")
    steps = p.add_subparsers(dest="action", required=True, parser_class=Parser)
    q = steps.add_parser("new", help="write a student folder with my_lstm.py to fill in")
    q.add_argument("folder", metavar="DIR")
    q.add_argument("--part", default="all", choices=("rnn", "lstm", "all"), help="what to write (default: all)")
    q.add_argument("--solution", action="store_true",
                   help="write the filled-in reference solution instead of the skeleton (for the teacher)")
    q = steps.add_parser("check", help="check a student's my_lstm.py against the reference, with hints "
                                       "(for honest mistakes: it is not a sandbox for hostile code)",
                         description="Compare a student's file, run in a child process with time and memory limits, "
                                     "with the reference. The limits catch honest mistakes (endless loops, runaway "
                                     "memory); it is NOT a sandbox for hostile code: it runs as you, with your files.")
    q.add_argument("file", metavar="MY_LSTM_PY")
    q.add_argument("--json", metavar="RESULTS_JSON", default=None, help="also write the results for an autograder")
    q.add_argument("--data-dir", default=None, help="MNIST for the training check (default: ./data, else the sample)")
