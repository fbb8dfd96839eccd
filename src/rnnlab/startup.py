"""The first second of a command: Ctrl-C while rnnlab and torch load is held back until they have loaded.

Raised there, the KeyboardInterrupt can land inside NumPy's C start-up, which torch's own C code swallows: torch
goes on without NumPy, and a later import fails with a long traceback (an ImportError or a RecursionError)
instead of the one line and exit code 130 that the README promises. So the entry point loads torch with SIGINT
only noted, and raises the KeyboardInterrupt once torch is whole. `main` is the `rnnlab` command and `python -m
rnnlab`: it holds Ctrl-C while the CLI itself is imported too, so only the interpreter's own start is left
(where SIGINT still ends Python silently). Light on purpose: nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading


@contextlib.contextmanager
def interrupts_held():
    """SIGINT in the block is only noted; it becomes a KeyboardInterrupt at the block's end."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    came: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: came.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if came:
        raise KeyboardInterrupt


def main() -> int:
    """The `rnnlab` command: `rnnlab.cli.main`, imported with Ctrl-C held back."""
    try:
        with interrupts_held():
            from rnnlab.cli import main as cli_main
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a SIGINT noted late must not end the exit as -2
        print("rnnlab: interrupted", file=sys.stderr, flush=True)
        return 130
    return cli_main()
