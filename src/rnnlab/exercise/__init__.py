"""The lab as an exercise: a skeleton for the student to fill in, and a checker that hints at mistakes.

    rnnlab exercise new DIR [--part rnn|lstm|all] [--solution]   # DIR/my_lstm.py and DIR/README.md, never overwritten
    rnnlab exercise check DIR/my_lstm.py [--json results.json] [--data-dir DIR]

The checker runs the student's file in a separate process with a time limit per function, a memory
limit and a file-size limit, compares every function with the reference (`rnnlab.models.numpy_rnn`,
`rnnlab.models.numpy_lstm`: the solution, in the package), and says per function passed / not
written / wrong, with the relative error and a hint. When the LSTM passes it also trains the lab's
classifier with the student's functions, beside the reference's.

Exit codes: 0 every function passed (and the training check, if it ran), 1 something failed, 2 a
usage error (no such file, a --json path in no folder or one that cannot be written, an existing file
for `new`).

Isolation: a check for honest mistakes, not a sandbox for hostile code. The limits stop an infinite
loop, an endless allocation, a file that grows without end, and a crash from taking the checker down;
the file runs in an empty scratch folder (so relative paths land there, and it is deleted after).
The file still runs as the same user: it can read, change or delete any file that user can (by an
absolute path), open network connections, read the environment, and start processes that outlive
the check if they leave its process group. Run untrusted files in a container or virtual machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rnnlab.errors import RnnlabError
from rnnlab.exercise.check import (CheckReport, FunctionResult, check_file, format_functions, format_report,
                                   format_training, refuse_unwritable, write_json)
from rnnlab.exercise.skeleton import (FUNCTIONS, STUDENT_FILE, reference_solution, replace_function, skeleton_source,
                                      write_student_folder)

__all__ = ["CheckReport", "FUNCTIONS", "FunctionResult", "STUDENT_FILE", "check_file", "exercise_command",
           "format_functions", "format_report", "format_training", "reference_solution", "replace_function", "skeleton_source", "write_json",
           "write_student_folder"]


def exercise_command(args, log: Callable[[str], None] = print) -> int:
    """`rnnlab exercise new|check`: the exit code (0 all passed, 1 some failed); usage errors raise RnnlabError."""
    if args.action == "new":
        solution = getattr(args, "solution", False)
        written = write_student_folder(args.folder, args.part, solution=solution)
        for path in written:
            log(f"wrote {path}")
        if solution:
            log(f"{written[0]} is the reference solution; it passes: rnnlab exercise check {written[0]}")
        else:
            log(f"next: write the functions in {written[0]}, then run: rnnlab exercise check {written[0]}")
        return 0
    if args.action == "check":
        json_path = Path(args.json) if args.json is not None else None
        if json_path is not None and (not str(args.json).strip() or json_path.is_dir()
                                      or not json_path.parent.is_dir()):
            raise RnnlabError(f"--json {args.json!r}: give a file name in an existing folder")
        if json_path is not None:
            refuse_unwritable(json_path)
        data_dir = args.data_dir
        if data_dir is not None and not str(data_dir).strip():
            raise RnnlabError("--data-dir is empty: give a folder")
        # the table as soon as the functions are judged; the training check's progress and its line after it
        report = check_file(args.file, data_dir=data_dir, log=log, on_functions=lambda r: log(format_functions(r)))
        if report.training:
            log(format_training(report))
        if json_path is not None:
            write_json(report, json_path)
            log(f"wrote {json_path}")
        return 0 if report.passed else 1
    raise RnnlabError(f"unknown exercise action {args.action!r}: choose new or check")
