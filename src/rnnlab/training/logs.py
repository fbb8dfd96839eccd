"""Experiment logs of a run: `metrics.csv` and `steps.csv` always, TensorBoard event files when asked (`--tensorboard`).

metrics.csv has one row per finished epoch with the values of metrics.json's `epochs` (the test
accuracy on the row of the epoch after which it was measured, the last); it is rewritten whole from
those records after every epoch, so a resumed run still has exactly one row per epoch. steps.csv has one
row per logged step (running loss and accuracy, lr, the gradients' global L2 norm before clipping); it is
appended to, not rewritten (that would cost the whole file and an fsync at every log step), and a resumed
run drops its rows past the checkpoint's step, which are logged again: it ends as an uninterrupted run's.
Each epoch's record gets the median and the largest of its logged norms. TensorBoard gets the running
values at every logged step (`train/...`, by global step) and every epoch's record (`epoch/...`, by
epoch number), read back by TensorBoard's own `event_accumulator`.
"""

from __future__ import annotations

import csv
import errno
import io
import statistics
from pathlib import Path

from rnnlab.errors import CheckpointError, RnnlabError, WriteFailed
from rnnlab.training.checkpoint import atomic_write_bytes

METRICS_CSV = "metrics.csv"
STEPS_CSV = "steps.csv"
CSV_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_accuracy", "test_accuracy", "seconds", "gflops", "lr",
               "grad_norm_median", "grad_norm_max")
EPOCH_TAGS = CSV_COLUMNS[1:]
STEP_COLUMNS = ("epoch", "global_step", "loss", "accuracy", "lr", "grad_norm")


def write_metrics_csv(path: Path, epochs: list[dict], test_accuracy: float | None = None) -> Path:
    """One row per epoch record (columns `CSV_COLUMNS`; a value not measured is left empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for k, record in enumerate(epochs):
        row = dict(record)
        if test_accuracy is not None and k == len(epochs) - 1:
            row["test_accuracy"] = test_accuracy
        writer.writerow(["" if row.get(c) is None else repr(row[c]) if isinstance(row[c], float) else row[c]
                         for c in CSV_COLUMNS])
    atomic_write_bytes(Path(path), buffer.getvalue().encode())
    return Path(path)


def _step_lines(rows: list[dict]) -> str:
    return "".join(",".join(repr(row[c]) for c in STEP_COLUMNS) + "\n" for row in rows)


def read_steps(path: Path) -> list[dict]:
    """steps.csv's rows as numbers. A last line without its newline (a write cut short by a kill) is left out;
    any other damage is one CheckpointError naming the file."""
    try:
        lines = Path(path).read_text().split("\n")  # the last item: "" after a whole last row
        if len(lines) == 1:  # killed before even the header was written whole
            return []
        if lines[0] != ",".join(STEP_COLUMNS):
            raise ValueError
        kinds = [int, int] + [float] * (len(STEP_COLUMNS) - 2)  # epoch and global_step count, the rest measure
        return [{c: kind(v) for c, kind, v in zip(STEP_COLUMNS, kinds, line.split(","), strict=True)}
                for line in lines[1:-1]]
    except (OSError, UnicodeDecodeError, ValueError):
        raise CheckpointError(f"{path} is not a table of {', '.join(STEP_COLUMNS)}; it was damaged or edited "
                              "(remove it to go on without the per-step log)") from None


def tensorboard_dir(setting: str | None, run_dir: Path) -> Path | None:
    """Where a run's event files go: None (off), the run folder itself (""), or DIR/<run folder name>."""
    if setting is None:
        return None
    return Path(run_dir) if setting == "" else Path(setting) / Path(run_dir).name


def require_tensorboard(setting: str | None) -> None:
    """With --tensorboard, refuse at once (before any folder is made) when its package is not installed."""
    if setting is None:
        return
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise RnnlabError("--tensorboard needs the tensorboard package: pip install 'rnnlab[tensorboard]' "
                          "(or pip install tensorboard), or leave out --tensorboard") from None


class ExperimentLog:
    """metrics.csv and steps.csv in `run_dir`, and TensorBoard events in `events_dir` (None: no TensorBoard).

    `progress`: where a resumed run starts (None: a new one), whose finished epochs metrics.csv keeps and whose
    step steps.csv is cut back to. `steps_per_epoch` numbers steps.csv's epochs.
    """

    def __init__(self, run_dir: Path, events_dir: Path | None = None, progress=None, steps_per_epoch: int = 0):
        self.run_dir = Path(run_dir)
        self.steps_per_epoch = steps_per_epoch
        self.epochs = list(progress.epochs) if progress is not None else []
        self.norms: list[float] = []  # the gradient norms logged in the epoch under way
        self.steps_started = False  # steps.csv is this run's: a new run starts it, a resumed one cuts it back
        if progress is not None and (self.run_dir / STEPS_CSV).is_file():  # else begun before steps.csv existed
            self._cut_steps(progress.epoch * steps_per_epoch + progress.step, progress.epoch + 1)
        self.writer = None
        if events_dir is not None:
            require_tensorboard(str(events_dir))
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(events_dir))

    def _cut_steps(self, global_step: int, epoch: int) -> None:
        """Keep steps.csv's rows up to the checkpoint's step; the epoch under way's norms count towards its record."""
        kept = [row for row in read_steps(self.run_dir / STEPS_CSV) if row["global_step"] <= global_step]
        atomic_write_bytes(self.run_dir / STEPS_CSV, (",".join(STEP_COLUMNS) + "\n" + _step_lines(kept)).encode())
        self.norms = [row["grad_norm"] for row in kept if row["epoch"] == epoch]
        self.steps_started = True

    def step(self, global_step: int, loss: float, accuracy: float, lr: float, grad_norm: float) -> None:
        row = dict(zip(STEP_COLUMNS, ((global_step - 1) // self.steps_per_epoch + 1, global_step, loss, accuracy, lr,
                                      grad_norm)))
        text = ("" if self.steps_started else ",".join(STEP_COLUMNS) + "\n") + _step_lines([row])
        try:  # one write of a whole line, flushed at once: a killed run keeps every row it logged
            with open(self.run_dir / STEPS_CSV, "a" if self.steps_started else "w") as handle:
                handle.write(text)
        except OSError as exc:  # a row cut short is left out when the file is read back
            raise WriteFailed(f"cannot write {self.run_dir / STEPS_CSV}: {exc.strerror or exc}",
                              exc.errno in (errno.ENOSPC, errno.EDQUOT)) from None
        self.steps_started = True
        self.norms.append(grad_norm)
        if self.writer is not None:
            for tag, value in (("loss", loss), ("accuracy", accuracy), ("lr", lr), ("grad_norm", grad_norm)):
                self.writer.add_scalar(f"train/{tag}", value, global_step)

    def epoch(self, record: dict) -> None:
        """After each epoch: its logged norms' median and largest go into its record (and from there into
        metrics.json), then metrics.csv so far and the epoch's values as TensorBoard points."""
        if self.norms:
            record.update(grad_norm_median=statistics.median(self.norms), grad_norm_max=max(self.norms))
            self.norms = []
        self.epochs.append(record)
        write_metrics_csv(self.run_dir / METRICS_CSV, self.epochs)
        self._points(record)

    def finish(self, epochs: list[dict], test_accuracy: float) -> None:
        """The run is evaluated: the test accuracy goes on the last epoch's row and point."""
        write_metrics_csv(self.run_dir / METRICS_CSV, epochs, test_accuracy)
        if epochs:
            self._points({"epoch": epochs[-1]["epoch"], "test_accuracy": test_accuracy})
        self.close()

    def _points(self, record: dict) -> None:
        if self.writer is not None:
            for tag in EPOCH_TAGS:
                if record.get(tag) is not None:
                    self.writer.add_scalar(f"epoch/{tag}", record[tag], record["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
