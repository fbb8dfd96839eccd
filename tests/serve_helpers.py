"""Shared by the `rnnlab serve` tests: small trained runs (trained once per test session), pictures of
real MNIST test digits, and `rnnlab serve` started as a real process on a free loopback port."""

from __future__ import annotations

import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

# Fast on two busy cores (~15 s together, one torch thread) and good enough to read real digits: the LSTM
# has two layers (so gates are checked per layer) and reads ~89% of the test set right; the RNN ~60%.
SETTINGS = {
    "rnn": dict(model="rnn", hidden_size=64, num_layers=1, lr=5e-3),
    "lstm": dict(model="lstm", hidden_size=48, num_layers=2, lr=5e-3),
}
COMMON = dict(epochs=1, train_limit=20000, test_limit=1000, batch_size=128, seed=0)


def trained_runs(tmp_path_factory, mnist_dir: Path) -> dict[str, Path]:
    """{"rnn": run folder, "lstm": run folder}, trained once per session, laid out as `make run` does
    (`<base>/lab/rnn`, `<base>/lab/lstm`). Another test module asking again gets the same folders."""
    from rnnlab.config import Config
    from rnnlab.data import load_data
    from rnnlab.lab import train
    from rnnlab.runs import write_json

    base = tmp_path_factory.getbasetemp() / "serve-runs" / "lab"
    done = base / "trained.json"
    if done.is_file():
        return {name: Path(path) for name, path in json.loads(done.read_text()).items()}
    base.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches on a shared 2-core machine: a second spinning thread only slows
    try:
        configs = {name: Config(**values, **COMMON, data_dir=str(mnist_dir)) for name, values in SETTINGS.items()}
        dataset = load_data(configs["lstm"], announce=lambda _: None)
        runs = {}
        for name, config in configs.items():
            torch.manual_seed(0)
            result = train(config, base / name, dataset=dataset, log=lambda _: None, quiet=True)
            runs[name] = result.run_dir
        assert result.metrics["test_accuracy"] > 0.8, result.metrics  # the LSTM, trained last
    finally:
        torch.set_num_threads(threads)
    write_json(base / "comparison.json", {"models": list(runs), "settings": COMMON})
    done.write_text(json.dumps({name: str(path) for name, path in runs.items()}))
    return runs


def mnist_digits(mnist, count: int = 10) -> list[tuple[np.ndarray, int]]:
    """The first `count` MNIST test digits (28, 28) uint8 and their labels (test digit 0 is a 7)."""
    return [(mnist.test.images[k].numpy(), int(mnist.test.labels[k])) for k in range(count)]


def paper_png(digit: np.ndarray, size=(200, 200)) -> bytes:
    """An MNIST digit as a user's picture: dark ink on white paper, scaled up, as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(255 - digit).resize(size, Image.Resampling.BICUBIC).save(buffer, "PNG")
    return buffer.getvalue()


def canvas_png(digit: np.ndarray) -> bytes:
    """An MNIST digit as the page's pad sends it: white on black, 280×280, opaque RGBA PNG."""
    buffer = io.BytesIO()
    Image.fromarray(digit).resize((280, 280), Image.Resampling.BICUBIC).convert("RGBA").save(buffer, "PNG")
    return buffer.getvalue()


def strokes_of(digit: np.ndarray, threshold: int = 128) -> list[tuple[int, int, int]]:
    """The digit's ink as horizontal strokes: (row, first column, last column) of each run of pixels
    above `threshold`. Drawn with a thick pen at 10 pad pixels per MNIST pixel they redraw the digit."""
    strokes = []
    for row in range(digit.shape[0]):
        ink = digit[row] > threshold
        column = 0
        while column < ink.size:
            if ink[column]:
                start = column
                while column < ink.size and ink[column]:
                    column += 1
                strokes.append((row, start, column - 1))
            column += 1
    return strokes


class Server:
    """`rnnlab serve ARGS --port 0` as a child process; `url` is read from the line it prints."""

    def __init__(self, args: list[str], *, cwd: Path, python: str = sys.executable, command: list[str] | None = None,
                 timeout: float = 120.0):
        argv = (command or [python, "-m", "rnnlab"]) + ["serve", *map(str, args), "--host", "127.0.0.1", "--port", "0"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self.url = self._wait_for_url(timeout)

    def _wait_for_url(self, timeout: float) -> str:
        deadline, buffer = time.monotonic() + timeout, b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffer += chunk
                *done, buffer = buffer.split(b"\n")
                for line in done:
                    self.lines.append(line.decode())
                    found = re.search(r"open (http://127\.0\.0\.1:\d+/)", line.decode())
                    if found:
                        return found.group(1)
            elif self.process.poll() is not None:
                break
        self.stop()
        raise AssertionError("rnnlab serve did not start:\n" + "\n".join(self.lines) + buffer.decode())

    def stop(self, how: int = signal.SIGTERM) -> int:
        """Stop it (SIGTERM, or SIGINT as Ctrl-C does); its exit code. What it printed is in `lines`."""
        if self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout and not self.process.stdout.closed:
            self.lines += self.process.stdout.read().decode(errors="replace").splitlines()
            self.process.stdout.close()
        return self.process.returncode
