"""How fast the exported page reads in the browser (issue 21): Playwright driving Debian's chromium, headless.

    python benchmarks/page_in_browser.py runs/lab-x/rnn runs/lab-x/lstm --data-dir ../shared/data/mnist

1. `rnnlab serve RUN... --export` into a temporary folder (its size is printed).
2. One in-browser reading: the export opened from disk, `RnnlabReader.read(model, image, {gates, saliency})` on
   `--digits` real MNIST test digits, each model alone, timed with performance.now() inside the page; also the
   forward pass alone and the preprocessing of a drawing on the 280×280 pad. Median, p90 and best, in ms.
3. Load and first answer from disk: `--loads` times, a new browser context opens index.html from file://; as soon
   as the models are loaded (checksums verified) a 7 is put on the pad as strokes (by a script set before the page
   loads) and read. The page's own clock (milliseconds since navigation started) gives "page parsed", "models
   ready" and "answer shown" (every card drawn); Python's gives the wall time from page.goto to the answer on screen,
   Playwright's polling included.

Prints the machine (lscpu's model name, cores), chromium's version and the load average before and after.
Nothing is asserted: tests never time things; this is where the goals (one reading with gates and saliency of
the lab's LSTM ≤ 20 ms; load and first answer ≤ 1 s) are measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"

TIME_READINGS = """([name, digits, options]) => {
  const model = state.local.find((m) => m.entry.name === name);
  const times = [];
  for (const d of digits) {
    const image = Uint8Array.from(d.flat());
    const start = performance.now();
    RnnlabReader.read(model, image, options);
    times.push(performance.now() - start);
  }
  return times; }"""

TIME_PREPROCESSING = """(count) => {
  const {data, width, height} = padContext.getImageData(0, 0, pad.width, pad.height);
  const gray = new Float64Array(width * height);
  for (let k = 0; k < gray.length; k++) gray[k] = data[4 * k] / 255;
  const times = [];
  for (let k = 0; k < count; k++) {
    const start = performance.now();
    RnnlabReader.toMnist(gray, width, height);
    times.push(performance.now() - start);
  }
  return times; }"""

TIME_SHA256 = """async ([size, native]) => {
  const bytes = new Uint8Array(size).map((_, k) => (k * 2654435761) >>> 24), times = [];
  for (let k = 0; k < 10; k++) {
    const start = performance.now();
    if (native) await crypto.subtle.digest("SHA-256", bytes); else RnnlabReader.sha256(bytes);
    times.push(performance.now() - start);
  }
  return times; }"""

# Strokes of a 7 put straight on the pad (no pointer events: what is timed is loading and reading, not a hand).
SEVEN = "[[{x: 70, y: 70}, {x: 210, y: 70}], [{x: 210, y: 70}, {x: 130, y: 230}]]"
DRAW_A_SEVEN = f"""() => {{ state.strokes = {SEVEN}; redrawPad(); readNow(true); }}"""

# For the load timing: the 7 goes on the pad the moment the page has its models (set before the page's own scripts
# run, so that no round trip to Playwright sits between "models ready" and the drawing).
SEVEN_WHEN_READY = f"""document.addEventListener("DOMContentLoaded", () => {{
  new MutationObserver((_, observer) => {{
    if (document.body.dataset.state !== "idle") return;
    observer.disconnect();
    window.sevenPutAt = performance.now();
    state.strokes = {SEVEN};
    redrawPad();
    readNow(true);
  }}).observe(document.body, {{attributes: true, attributeFilter: ["data-state"]}});
}});"""


def lscpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "lscpu not available"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    keep = ("Model name", "CPU(s)", "Thread(s) per core", "Hypervisor vendor")
    return "; ".join(f"{k}: {fields[k].strip()}" for k in keep if k in fields)


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("Debian's chromium is needed: apt-get install -y chromium")


def stats(times: list[float]) -> str:
    values = np.array(times)
    return f"median {np.median(values):6.2f} ms   p90 {np.percentile(values, 90):6.2f} ms   best {values.min():6.2f} ms"


def export(runs: list[str], out: Path) -> int:
    result = subprocess.run([sys.executable, "-m", "rnnlab", "serve", *runs, "--export", str(out)],
                            capture_output=True, text=True)
    if result.returncode:
        sys.exit(result.stderr.strip())
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def time_readings(browser, url: str, digits: list, names: list[str]) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    page.wait_for_function("document.body.dataset.state === 'idle'")
    biggest = max(names, key=lambda n: page.evaluate(f"state.local.find((m) => m.entry.name === {n!r}).entry.parameters"))
    first = page.evaluate(TIME_READINGS, [biggest, digits[:3], {"gates": True, "saliency": True}])
    print(f"  {biggest:>6} the first 3 readings after loading (JIT not warm yet): "
          + ", ".join(f"{t:.1f} ms" for t in first))
    for name in names:  # warm-up: V8 optimises a function after it has run a while, as on a page in use
        page.evaluate(TIME_READINGS, [name, digits[:30], {"gates": True, "saliency": True}])
    for name in names:
        for label, options in (("gates and saliency", {"gates": True, "saliency": True}),
                               ("forward only", {"gates": False, "saliency": False})):
            times = page.evaluate(TIME_READINGS, [name, digits, options])
            print(f"  {name:>6} {label:<19} {stats(times)}   ({len(times)} digits)")
    page.evaluate(DRAW_A_SEVEN)
    print(f"  preprocessing of the 280×280 pad  {stats(page.evaluate(TIME_PREPROCESSING, 50))}   (50 times)")
    size = max(page.evaluate("state.local.map((m) => m.entry.weights.bytes)"))
    print(f"  SHA-256 of {size:,} bytes: reader.js's {stats(page.evaluate(TIME_SHA256, [size, False]))}")
    print(f"  {'':>{len(f'{size:,}') + 17}}crypto.subtle {stats(page.evaluate(TIME_SHA256, [size, True]))}   (10 times)")
    page.close()


def time_loads(browser, url: str, loads: int) -> None:
    import time

    parsed, ready, put, answered, walls = [], [], [], [], []
    for _ in range(loads):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(SEVEN_WHEN_READY)
        page = context.new_page()
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_function("document.body.dataset.state === 'ready'")
        walls.append(1000 * (time.perf_counter() - start))
        parsed.append(page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"))
        ready.append(page.evaluate("state.modelsReadyAt"))
        put.append(page.evaluate("window.sevenPutAt"))
        answered.append(page.evaluate("state.firstAnswerAt"))
        context.close()
    print(f"  page parsed (page clock)     {stats(parsed)}")
    print(f"  models ready (page clock)    {stats(ready)}   (weights decoded, SHA-256 checked)")
    print(f"  answer shown (page clock)    {stats(answered)}   (a 7 put on the pad at 'ready'; every card drawn)")
    print(f"  of which the first reading   {stats([a - p for a, p in zip(answered, put)])}   (cold JIT)")
    print(f"  page.goto → answer (wall)    {stats(walls)}   ({loads} fresh contexts; Playwright's polling included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (the lab's: runs/lab-.../rnn runs/lab-.../lstm)")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA), help="MNIST IDX folder (test digits to read)")
    parser.add_argument("--digits", type=int, default=100, help="test digits read per model")
    parser.add_argument("--loads", type=int, default=10, help="fresh page loads timed")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from rnnlab.data import load_splits

    mnist = load_splits("mnist", Path(args.data_dir))
    digits = [mnist.test.images[k].numpy().tolist() for k in range(args.digits)]
    print(f"machine: {lscpu()}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="rnnlab-page-bench-") as folder:
        out = Path(folder) / "export"
        size = export(args.runs, out)
        print(f"export of {', '.join(args.runs)}: {size:,} bytes")
        url = (out / "index.html").as_uri()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium(), headless=True)
            print(f"chromium {browser.version} (headless), one page")
            names = [p.stem for p in sorted((out / "models").glob("*.js")) if p.stem != "manifest"]
            print("one in-browser reading (RnnlabReader.read):")
            time_readings(browser, url, digits, names)
            print("export loaded from disk and a first drawing read:")
            time_loads(browser, url, args.loads)
            browser.close()
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
