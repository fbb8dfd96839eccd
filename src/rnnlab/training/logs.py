"""Experiment logs of a run: `metrics.csv` always, TensorBoard event files when asked (`--tensorboard`).

metrics.csv has one row per finished epoch with the values of metrics.json's `epochs` (the test
accuracy on the row of the epoch after which it was measured, the last); it is rewritten whole from
those records after every epoch, so a resumed run still has exactly one row per epoch. TensorBoard gets
the running loss and accuracy at every logged step (`train/...`, by global step) and every epoch's
record (`epoch/...`, by epoch number), read back by TensorBoard's own `event_accumulator`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from rnnlab.errors import RnnlabError
from rnnlab.training.checkpoint import atomic_write_bytes

METRICS_CSV = "metrics.csv"
CSV_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_accuracy", "test_accuracy", "seconds", "gflops", "lr")
EPOCH_TAGS = CSV_COLUMNS[1:]


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


def tensorboard_dir(setting: str | None, run_dir: Path) -> Path | None:
    """Where a run's event files go: None (off), the run folder itself (""), or DIR/<run folder name>."""
    if setting is None:
        return None
    return Path(run_dir) if setting == "" else Path(setting) / Path(run_dir).name


class ExperimentLog:
    """metrics.csv in `run_dir`, and TensorBoard events in `events_dir` (None: no TensorBoard).

    `epochs`: the records of the epochs finished before (a resumed run's), which metrics.csv keeps.
    """

    def __init__(self, run_dir: Path, events_dir: Path | None = None, epochs: list[dict] | None = None):
        self.run_dir = Path(run_dir)
        self.epochs = list(epochs or [])
        self.writer = None
        if events_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise RnnlabError("--tensorboard needs the tensorboard package: pip install 'rnnlab[tensorboard]' "
                                  "(or pip install tensorboard), or leave out --tensorboard") from None
            self.writer = SummaryWriter(log_dir=str(events_dir))

    def step(self, global_step: int, loss: float, accuracy: float, lr: float) -> None:
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, global_step)
            self.writer.add_scalar("train/accuracy", accuracy, global_step)
            self.writer.add_scalar("train/lr", lr, global_step)

    def epoch(self, record: dict) -> None:
        """After each epoch: metrics.csv so far, and the epoch's values as TensorBoard points."""
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
