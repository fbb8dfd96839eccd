"""The picture of `rnnlab serve` in the README (docs/serve.png): the page with a real MNIST 7 drawn on it.

    .venv/bin/rnnlab compare --models rnn,lstm --data-dir /work/shared/data/mnist --out runs/lab-serve --threads 1
    .venv/bin/python scripts/serve_screenshot.py runs/lab-serve/rnn runs/lab-serve/lstm \\
        --data-dir /work/shared/data/mnist --out docs/serve.png

Starts `rnnlab serve RUN...` on a free loopback port, opens it in headless Chromium (Playwright driving the
system's Chromium: nothing is downloaded), draws MNIST test digit 0 (a 7) with the mouse stroke by stroke,
waits until every model has read it and the LSTM's gates are drawn, moves the slider to row 14 (mid-reading:
the answers are still changing) and writes a full-page screenshot in 256 colours (the page is flat colours;
the PNG stays under 300 KB). `--phone` takes it at a phone's size instead (390×844, touch).
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

CELL = 10  # pad pixels per MNIST pixel: the 280×280 pad is the 28×28 image scaled ×10
MAX_BYTES = 300_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Screenshot rnnlab serve with an MNIST test digit drawn on it.")
    parser.add_argument("runs", nargs="+", help="run folders, as for `rnnlab serve`")
    parser.add_argument("--out", type=Path, default=Path("docs/serve.png"))
    parser.add_argument("--data-dir", default="data", help="folder with MNIST's IDX files (default: data)")
    parser.add_argument("--digit", type=int, default=0, help="index of the MNIST test digit (default: 0, a 7)")
    parser.add_argument("--row", type=int, default=14, help="the slider's row in the picture (default: 14)")
    parser.add_argument("--phone", action="store_true",
                        help="a phone's viewport (390×844, touch) instead of 1280×900")
    return parser.parse_args(argv)


def strokes_of(digit, threshold: int = 128) -> list[tuple[int, int, int]]:
    """The digit's ink as horizontal strokes: (row, first column, last column) of each run above `threshold`."""
    strokes = []
    for row, pixels in enumerate(digit.tolist()):
        ink = [value > threshold for value in pixels] + [False]
        starts = [c for c in range(len(pixels)) if ink[c] and (c == 0 or not ink[c - 1])]
        strokes += [(row, start, ink.index(False, start) - 1) for start in starts]
    return strokes


@contextmanager
def serving(runs: list[str]):
    """`rnnlab serve RUNS` on 127.0.0.1 and a free port, as a child process; yields its URL."""
    process = subprocess.Popen([sys.executable, "-m", "rnnlab", "serve", *runs, "--host", "127.0.0.1", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = []
        for line in process.stdout:  # it prints "open http://127.0.0.1:PORT/" once it listens
            printed.append(line)
            found = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
            if found:
                # keep reading what it prints, so that a full pipe never stalls it
                threading.Thread(target=process.stdout.read, daemon=True).start()
                yield found.group(1)
                break
        else:
            raise SystemExit("rnnlab serve did not start:\n" + "".join(printed))
    finally:
        process.terminate()
        process.wait(timeout=30)


def draw(page, strokes) -> None:
    """Each stroke as a mouse drag across the pad, as a hand would draw it."""
    box = page.locator("#pad").bounding_box()
    for row, first, last in strokes:
        y = box["y"] + (row + 0.5) * CELL
        page.mouse.move(box["x"] + (first + 0.5) * CELL, y)
        page.mouse.down()
        page.mouse.move(box["x"] + (last + 0.5) * CELL, y + 0.01, steps=3)
        page.mouse.up()


def screenshot(url: str, strokes, row: int, phone: bool) -> bytes:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Chromium: apt-get install -y chromium (or `make browser`)")
    viewport = dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True) if phone else \
        dict(viewport={"width": 1280, "height": 900})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_context(**viewport).new_page()
        page.goto(url)
        page.wait_for_function("document.body.dataset.state === 'idle'")
        draw(page, strokes)
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=120_000)  # gates included
        page.locator("#t").fill(str(row))
        page.dispatch_event("#t", "input")
        png = page.screenshot(full_page=True)
        browser.close()
    return png


def save(png: bytes, path: Path) -> int:
    """The screenshot as a 256-colour PNG at `path`; its size in bytes."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    return path.stat().st_size


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from rnnlab.data import load_splits

    digit = load_splits("mnist", Path(args.data_dir), announce=lambda _: None).test.images[args.digit].numpy()
    with serving(args.runs) as url:
        png = screenshot(url, strokes_of(digit), args.row, args.phone)
    size = save(png, args.out)
    print(f"{args.out}: {size:,} bytes")
    if size > MAX_BYTES:
        raise SystemExit(f"{args.out} is {size:,} bytes, over {MAX_BYTES:,}: the README should stay light")


if __name__ == "__main__":
    main()
