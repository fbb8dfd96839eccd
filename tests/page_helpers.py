"""Shared by the tests of the page that reads in the browser (issue 21): tiny trained runs of every model kind
the page computes, an export of them, Chromium through Playwright, and drawing on the pad."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

# One tiny run per model kind and depth (2,000 training images, one epoch, seeded), and a permuted view cut into
# 112 steps of 7 pixels: what the page must compute like the server. Small hidden sizes keep the session short.
KINDS = [(kind, layers) for kind in ("rnn", "gru", "lstm", "scratch-lstm") for layers in (1, 2)]
TINY = dict(epochs=1, train_limit=2000, test_limit=500, batch_size=64, seed=0, hidden_size=32, lr=3e-3)
EXTRA = {"lstm-permuted": dict(model="lstm", num_layers=1, hidden_size=24, view="permuted", steps=112)}

CELL = 10  # pad pixels per MNIST pixel
PHONE = dict(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)


def tiny_runs(tmp_path_factory, mnist_dir: Path) -> dict[str, Path]:
    """{"rnn-1": run folder, ..., "scratch-lstm-2": ..., "lstm-permuted": ...}, trained once per session."""
    from rnnlab.config import Config
    from rnnlab.data import load_data
    from rnnlab.lab import train

    base = tmp_path_factory.getbasetemp() / "page-runs"
    done = base / "trained.json"
    if done.is_file():
        return {name: Path(path) for name, path in json.loads(done.read_text()).items()}
    settings = {f"{kind}-{layers}": dict(model=kind, num_layers=layers) for kind, layers in KINDS}
    settings.update(EXTRA)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs, data = {}, {}
        for name, values in settings.items():
            config = Config(**{**TINY, **values}, data_dir=str(mnist_dir))
            key = (config.view, config.steps)
            if key not in data:
                data[key] = load_data(config, announce=lambda _: None)
            torch.manual_seed(0)
            runs[name] = train(config, base / name, dataset=data[key], log=lambda _: None, quiet=True).run_dir
    finally:
        torch.set_num_threads(threads)
    done.write_text(json.dumps({name: str(path) for name, path in runs.items()}))
    return runs


def export(runs: list[Path], out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`rnnlab serve RUN... --export OUT` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "rnnlab", "serve", *map(str, runs), "--export", str(out), *extra],
                          capture_output=True, text=True, timeout=300)


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is needed and is not installed: apt-get install -y chromium (Debian's package)")


def open_export(context, url: str, models: int):
    """The exported page at `url`, once its models are loaded; (page, problems, requests to other places)."""
    page = context.new_page()
    problems, outside = [], []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    base = url.rsplit("/", 1)[0]
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((base, "data:")) else None)
    page.goto(url)
    page.wait_for_function(f"document.body.dataset.state === 'idle' && document.querySelectorAll('.model').length === {models}",
                           timeout=60_000)
    return page, problems, outside


def draw_with_mouse(page, strokes, offset=(0.0, 0.0), scale: float = 1.0) -> None:
    """Horizontal strokes (row, first column, last column) of a 28×28 digit, drawn on the pad at CELL·scale
    pad pixels per MNIST pixel, shifted by `offset` pad pixels."""
    box = page.locator("#pad").bounding_box()
    size = box["width"] / 280  # CSS pixels per pad pixel
    for row, first, last in strokes:
        y = box["y"] + (offset[1] + (row + 0.5) * CELL * scale) * size
        page.mouse.move(box["x"] + (offset[0] + (first + 0.5) * CELL * scale) * size, y)
        page.mouse.down()
        page.mouse.move(box["x"] + (offset[0] + (last + 0.5) * CELL * scale) * size, y + 0.01, steps=3)
        page.mouse.up()


def touch_drag(cdp, points) -> None:
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]})
    for x, y in points[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def draw_with_finger(context, page, strokes) -> None:
    cdp = context.new_cdp_session(page)
    box = page.locator("#pad").bounding_box()
    size = box["width"] / 280
    for row, first, last in strokes:
        y = box["y"] + (row + 0.5) * CELL * size
        xs = [box["x"] + (first + (last - first) * s / 4 + 0.5) * CELL * size for s in range(5)]
        touch_drag(cdp, [(x, y) for x in xs])


class StaticServer:
    """`python -m http.server` on a free loopback port, serving `folder`; `url` from the line it prints."""

    def __init__(self, folder: Path):
        self.process = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
                                         "--directory", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)  # stderr: one access-log line per request, not read
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and self.process.poll() is None:
            line = self.process.stdout.readline()
            found = re.search(r"port (\d+)", line)
            if found:
                self.url = f"http://127.0.0.1:{found.group(1)}/"
                return
        self.stop()
        raise AssertionError(f"python -m http.server did not start: {line}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process.stdout.close()
