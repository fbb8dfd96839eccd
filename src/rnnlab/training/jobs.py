"""Independent runs in separate processes sharing the cores: `run_jobs(function, tasks, jobs, threads)`.

Each of `jobs` worker processes (spawned: a fresh interpreter, no forked torch state) sets its torch
threads, then takes tasks from a shared queue and calls `function(task, stop)` on each, where `stop` is
the worker's entered `StopSignals`. The parent forwards SIGINT/SIGTERM to the workers exactly once each
(the workers are in their own process group, so a terminal's Ctrl-C reaches only the parent); a worker
stops at its next step with a checkpoint, takes no further task, and the parent raises
`TrainingInterrupted`. A worker whose parent dies (even by SIGKILL) stops the same way by itself, and starts
no new run: on Linux the kernel sends it SIGTERM as the parent dies; elsewhere a watch notices within 0.5 s.
Each task's outcome comes back as a small tuple: nothing but plain values crosses the processes.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from typing import Callable

from rnnlab.errors import RnnlabError
from rnnlab.training.fit import StopSignals, TrainingInterrupted


def _watch_parent(parent: int) -> None:
    """Stop this worker (SIGTERM to itself: checkpoint, then exit) when its parent process is gone."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def _stop_with_parent(parent: int) -> None:
    """SIGTERM to this worker when its parent dies: from the kernel at that moment where it can (Linux's
    PR_SET_PDEATHSIG), and from a watch in any case (other systems; a parent gone before the call)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _worker(function, tasks, results, threads: int, parent: int) -> None:
    os.setpgrp()  # out of the terminal's process group: signals come from the parent, once
    _stop_with_parent(parent)
    import torch

    from rnnlab.training.machine import keep_freed_memory

    torch.set_num_threads(threads)
    keep_freed_memory()
    with StopSignals() as stop:
        while not stop.signum:
            task = tasks.get()
            if task is None or stop.signum or os.getppid() != parent:  # nobody to report to: start no new run
                break
            index, payload = task
            try:
                function(payload, stop)
                results.put(("done", index, None))
            except TrainingInterrupted as exc:
                results.put(("interrupted", index, (exc.signum, exc.checkpoint)))
                break
            except RnnlabError as exc:
                results.put(("error", index, str(exc)))
            except BaseException:  # a bug: its traceback, for the parent to raise
                results.put(("crashed", index, traceback.format_exc()))
                break


def run_jobs(function: Callable, tasks: list, jobs: int, threads: int) -> None:
    """Run `function(task, stop)` for every task in `jobs` processes of `threads` torch threads each.

    `function` must be importable by name (a module-level function) and `tasks` plain values. Returns
    when all are done; raises `TrainingInterrupted` after a signal (with the workers' last checkpoint),
    `RnnlabError` when some tasks failed with a user error (the others still ran), RuntimeError for a bug.
    """
    context = multiprocessing.get_context("spawn")
    task_queue, results = context.Queue(), context.Queue()
    for index, task in enumerate(tasks):
        task_queue.put((index, task))
    jobs = max(1, min(jobs, len(tasks)))
    for _ in range(jobs):
        task_queue.put(None)
    workers = [context.Process(target=_worker, args=(function, task_queue, results, threads, os.getpid()))
               for _ in range(jobs)]
    received: list[int] = []

    def forward(signum, frame):
        received.append(signum)
        for worker in workers:
            if worker.pid is not None and worker.is_alive():
                os.kill(worker.pid, signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    outcomes: dict[int, tuple] = {}
    try:
        for worker in workers:
            worker.start()
        while len(outcomes) < len(tasks):
            try:
                kind, index, detail = results.get(timeout=0.2)
            except queue.Empty:
                if not any(worker.is_alive() for worker in workers):
                    break
                continue
            outcomes[index] = (kind, detail)
        for worker in workers:
            worker.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _raise_for(outcomes, tasks, received)


def _raise_for(outcomes: dict, tasks: list, received: list) -> None:
    crashed = [detail for kind, detail in outcomes.values() if kind == "crashed"]
    if crashed:
        raise RuntimeError("a training process failed:\n" + crashed[0])
    interrupted = [detail for kind, detail in outcomes.values() if kind == "interrupted"]
    if interrupted or received:
        signum, checkpoint = interrupted[0] if interrupted else (received[0], None)
        raise TrainingInterrupted(signum, checkpoint)
    errors = [detail for kind, detail in outcomes.values() if kind == "error"]
    for message in errors:
        print(f"rnnlab: error: {message}", file=sys.stderr, flush=True)
    if errors:
        raise RnnlabError(f"{len(errors)} of {len(tasks)} runs failed (each is named above)")
    if len(outcomes) < len(tasks):
        raise RuntimeError(f"the training processes ended with {len(tasks) - len(outcomes)} of {len(tasks)} runs "
                           "not done (a process was killed?)")
