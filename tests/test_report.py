"""report.html from a short real run: every picture written and referenced, the row-by-row answers are
the model's own, the gate heatmaps rebuild the model's h, and the page opens in headless Chromium with
every image loaded."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image

from rnnlab.config import Config
from rnnlab.errors import RnnlabError
from rnnlab.report import introspect

MODELS = ["rnn", "lstm"]
FIGURES = {"learning_curves.png", "sample_batch.png", "reading.png", "accuracy_per_row.png", "confusion-rnn.png",
           "confusion-lstm.png", "misclassified-rnn.png", "misclassified-lstm.png", "gates-lstm.png", "grad_norm.png",
           "gradients.png"}


def small_settings(mnist_dir, **changes) -> dict:
    values = dict(data_dir=str(mnist_dir), epochs=1, train_limit=2000, test_limit=500, hidden_size=32,
                  batch_size=32, lr=5e-3, seed=0)
    values.update(changes)
    return values


def small_config(mnist_dir, **changes) -> Config:
    return Config(**small_settings(mnist_dir, **changes))


@pytest.fixture(scope="module")
def lab(tmp_path_factory, mnist_dir):
    """`compare` rnn and lstm on 2,000 real images for one epoch, then `write_report` into the same folder."""
    from rnnlab.lab import compare
    from rnnlab.report import write_report

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("report") / "lab"
    summary = compare(MODELS, small_settings(mnist_dir), out, log=lambda _: None, quiet=True)
    started = time.perf_counter()
    report = write_report([out / m for m in MODELS], out, data_dir=str(mnist_dir), log=lambda _: None)
    return out, report, summary, time.perf_counter() - started


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.other, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs.get("src"))
        for key in ("href", "src"):
            if key in attrs and tag != "img":
                self.other.append(attrs[key])


def test_every_figure_is_written_and_referenced(lab):
    out, report, summary, seconds = lab
    assert report == out / "report.html"
    for name in FIGURES:
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width >= 300 and image.height >= 200, name
            assert np.asarray(image.convert("L")).std() > 5, f"{name} is a blank picture"
    parser = Links()
    page = report.read_text(encoding="utf-8")
    parser.feed(page)
    assert set(parser.images) == FIGURES  # all written pictures are shown, nothing else is referenced
    for src in parser.images:
        assert not src.startswith(("/", "http:", "https:", "file:", "//")) and (out / src).is_file()
    # the one other reference: the draw pad beside the report (issue 21), shown in an iframe and linked
    assert parser.other == ["draw-a-digit/index.html"] * 2 and (out / "draw-a-digit" / "index.html").is_file()
    assert "script" not in parser.tags and "link" not in parser.tags
    for model, row in summary.items():  # the summary table carries each run's numbers
        assert f"<td>{model}</td><td>{100 * row['test_accuracy']:.2f}%</td><td>{row['parameters']:,}</td>" in page
    assert "reproduces the model&#x27;s own output" in page and "does NOT" not in page
    print(f"write_report took {seconds:.1f} s")  # speed is measured in benchmarks/, never asserted


def test_the_gradient_section_says_what_rnnlab_gradients_computes(lab, mnist):
    """The section's decays are those of `run_gradients` on the same 256 test images, in both phases."""
    from rnnlab.data import sequence_inputs
    from rnnlab.report.gradients import run_gradients
    from rnnlab.runs import load_run

    out, report, _, _ = lab
    page = report.read_text(encoding="utf-8")
    assert 'id="gradients"' in page and "vanishing gradient" in page
    for model in MODELS:
        run = load_run(out / model)
        x = sequence_inputs(run.config, mnist.test.images[:256])
        decays = {phase: curves["decay"]["x"] for phase, curves in
                  run_gradients(run.config, run.model, x, mnist.test.labels[:256]).items()}
        assert (f"{decays['initial']:.1f} decades for {model} at the start and {decays['trained']:.1f} after "
                "training") in page


def test_answers_row_by_row_are_the_models_own(lab, mnist):
    from rnnlab.data import sequence_inputs
    from rnnlab.runs import load_run

    out = lab[0]
    config = load_run(out / "lstm").config
    x = sequence_inputs(config, mnist.test.images[:500])
    labels = mnist.test.labels[:500]
    for name in MODELS:
        run = load_run(out / name)
        probabilities = introspect.probabilities_per_step(run.model, x[:64])
        assert probabilities.shape == (64, 28, 10)
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
        with torch.inference_mode():
            final = run.model(x[:64]).softmax(dim=1).numpy()
        np.testing.assert_allclose(probabilities[:, -1], final, atol=1e-6)
        single = introspect.probabilities_per_step(run.model, x[5])
        np.testing.assert_allclose(single, probabilities[5], atol=1e-6)
        scores = introspect.scores_per_step(run.model, x, labels, batch_size=128)
        assert scores["accuracy"] == pytest.approx(run.metrics["test_accuracy"], abs=1e-12)
        assert scores["accuracy_per_step"][-1] == pytest.approx(run.metrics["test_accuracy"], abs=1e-12)
        assert int(scores["confusion"].sum()) == 500
        # after the first row (blank in every MNIST digit) the model can only guess one class for all
        first_row = scores["accuracy_per_step"][0]
        assert first_row == pytest.approx(float((labels == int(scores_first_guess(run.model, x[:1]))).float().mean()))
    lstm_curve = introspect.scores_per_step(load_run(out / "lstm").model, x, labels)["accuracy_per_step"]
    assert lstm_curve[-1] > lstm_curve[0] + 0.3  # reading more rows helps


def scores_first_guess(model, x):
    return introspect.probabilities_per_step(model, x)[0, 0].argmax()


def test_gate_trace_rebuilds_the_lstm(lab, mnist):
    from rnnlab.data import sequence_inputs
    from rnnlab.runs import load_run

    run = load_run(lab[0] / "lstm")
    x = sequence_inputs(run.config, mnist.test.images[:8])
    trace = introspect.lstm_gate_trace(run.model, x)
    assert len(trace) == 2 and all(layer[k].shape == (8, 28, 32) for layer in trace for k in "ifogch")
    for layer in trace:
        for gate in "ifo":
            assert layer[gate].min() >= 0 and layer[gate].max() <= 1
        assert np.abs(layer["g"]).max() <= 1
    assert introspect.gate_trace_error(run.model, x, trace) < 1e-5
    with torch.inference_mode():
        output, (h_n, c_n) = run.model.recurrent(x)
    c, h = introspect.recompute_hidden(trace[-1])
    np.testing.assert_allclose(h, output.numpy(), atol=1e-5)
    np.testing.assert_allclose(c[:, -1], c_n[-1].numpy(), atol=1e-5)
    # the check has teeth: the gates in the wrong order (nn.LSTM's i, f, g, o read as i, f, o, g) do not rebuild h
    swapped = [dict(layer, o=layer["g"], g=layer["o"]) for layer in trace]
    assert introspect.gate_trace_error(run.model, x, swapped) > 1e-2
    with pytest.raises(introspect.NotAnLSTM):
        introspect.lstm_gate_trace(load_run(lab[0] / "rnn").model, x)


def test_gate_trace_of_scratch_lstm(lab, mnist, tmp_path, mnist_dir):
    """The same weights as ScratchLSTM (Wx, Wh, b; order i, f, o, g) give the same trace; a scratch-lstm run
    gets its heatmaps in a report."""
    from rnnlab.data import sequence_inputs
    from rnnlab.lab import train
    from rnnlab.runs import load_run
    from rnnlab.models.recurrent import RecurrentClassifier
    from rnnlab.models.scratch_lstm import from_torch_lstm
    from rnnlab.report import write_report

    run = load_run(lab[0] / "lstm")
    scratch = RecurrentClassifier(from_torch_lstm(run.model.recurrent), 32)
    scratch.fc.load_state_dict(run.model.fc.state_dict())
    x = sequence_inputs(run.config, mnist.test.images[:4])
    ours, theirs = introspect.lstm_gate_trace(scratch, x), introspect.lstm_gate_trace(run.model, x)
    for a, b in zip(ours, theirs):
        for key in "ifogch":
            np.testing.assert_allclose(a[key], b[key], atol=1e-6)
    assert introspect.gate_trace_error(scratch, x, ours) < 1e-5

    torch.manual_seed(0)
    result = train(small_config(mnist_dir, model="scratch-lstm", train_limit=640, test_limit=200, hidden_size=16),
                   tmp_path / "scratch", log=lambda _: None, quiet=True)
    assert introspect.gate_trace_error(result.model, x) < 1e-5
    report = write_report([tmp_path / "scratch"], tmp_path / "report", log=lambda _: None)
    page = report.read_text()
    assert (tmp_path / "report" / "gates-scratch-lstm.png").stat().st_size > 10_000
    assert 'src="gates-scratch-lstm.png"' in page and "reproduces the model&#x27;s own output" in page


def test_report_mistakes_are_one_line(tmp_path, capsys):
    from rnnlab.cli import main
    from rnnlab.report import write_report

    with pytest.raises(RnnlabError, match="no run folders"):
        write_report([], tmp_path)
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not an rnnlab run folder" in err and "Traceback" not in err
    assert not (tmp_path / "r" / "report.html").exists()


# --- `rnnlab report FOLDER...`: which runs, and where the page goes --------------------------------

TINY = ["--hidden-size", "8", "--train-limit", "300", "--test-limit", "200", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, mnist_dir):
    """runs/a and runs/b (rnn, seeds 0 and 1) and the comparison runs/cmp (rnn, lstm; no report of its own), each
    on 300 real training images for one epoch."""
    from conftest import exit_code

    runs = tmp_path_factory.mktemp("tiny") / "runs"
    data = ["--data-dir", str(mnist_dir)]
    for name, seed in (("a", 0), ("b", 1)):
        assert exit_code(["train", "--model", "rnn", "--seed", seed, "--out", runs / name, *TINY, *data]) == 0
    assert exit_code(["compare", "--models", "rnn,lstm", "--no-report", "--out", runs / "cmp", *TINY, *data]) == 0
    return runs


def report_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("report: "))


def test_report_of_one_run_goes_in_its_own_folder(tiny_runs, capsys):
    """Two runs reported one after the other keep their own pages (they used to share runs/report.html)."""
    from conftest import run

    pages = {}
    for name in ("a", "b"):
        code, out, err = run(capsys, "report", tiny_runs / name)
        assert code == 0, err
        assert report_line(out) == f"report: {tiny_runs / name / 'report.html'}"
        pages[name] = (tiny_runs / name / "report.html").read_text()
        assert f"Runs: {tiny_runs / name}." in pages[name]
    assert (tiny_runs / "a" / "report.html").read_text() == pages["a"]  # b's report did not touch a's
    assert not (tiny_runs / "report.html").exists()
    code, out, err = run(capsys, "evaluate", tiny_runs / "a")  # the pictures beside it leave the run usable
    assert code == 0 and "Test Accuracy" in out, err


def test_report_of_a_comparison_folder_draws_its_runs_there(tiny_runs, capsys):
    from conftest import run

    folder = tiny_runs / "cmp"
    code, out, err = run(capsys, "report", folder)
    assert code == 0, err
    assert report_line(out) == f"report: {folder / 'report.html'}"
    page = (folder / "report.html").read_text()
    for model in ("rnn", "lstm"):  # every run of the comparison, with its own numbers
        accuracy = json.loads((folder / model / "metrics.json").read_text())["test_accuracy"]
        assert f"<td>{model}</td><td>{100 * accuracy:.2f}%</td>" in page
    assert (folder / "gates-lstm.png").is_file() and (folder / "confusion-rnn.png").is_file()


def test_report_of_several_folders_goes_in_their_common_parent(tiny_runs, tmp_path, capsys):
    from conftest import run

    code, out, err = run(capsys, "report", tiny_runs / "a", tiny_runs / "b")
    assert code == 0, err
    assert report_line(out) == f"report: {tiny_runs / 'report.html'}"
    page = (tiny_runs / "report.html").read_text()
    assert "<td>rnn (a)</td>" in page and "<td>rnn (b)</td>" in page

    # a folder that holds runs (not a comparison): its finished runs, an unfinished one named and left out
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_runs / "a", mixed / "a")
    shutil.copytree(tiny_runs / "b", mixed / "half")
    (mixed / "half" / "metrics.json").unlink()
    (mixed / "half" / "model.pt").unlink()
    code, out, err = run(capsys, "report", mixed)
    assert code == 0, err
    assert f"{mixed / 'half'}: not finished, left out" in out
    assert report_line(out) == f"report: {mixed / 'report.html'}"
    page = (mixed / "report.html").read_text()
    assert f"Runs: {mixed / 'a'}." in page and "half" not in page

    code, out, err = run(capsys, "report", tiny_runs / "a", tmp_path / "nowhere", "--out", tmp_path / "r")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "is not a folder" in err
    assert not (tmp_path / "r").exists()


# --- the page in a real browser -------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--remote-debugging-pipe"]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is needed to check report.html and is not installed: "
                "apt-get update && apt-get install -y chromium (Debian's package; .ci/run installs it)")


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3: commands in, fd 4: replies out)."""

    def __init__(self, executable: str, profile: str):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def plumb():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.process = subprocess.Popen([executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, preexec_fn=plumb, close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.next_id, self.buffer, self.events = 0, b"", []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.from_chrome], [], [], max(0.0, remaining))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, timeout: float = 60, **params) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)


IMAGES_SCRIPT = ("JSON.stringify(Array.from(document.images).map(i => ({src: i.getAttribute('src'), "
                 "complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})))")


def test_report_opens_in_headless_chromium(lab, tmp_path):
    out, report = lab[0], lab[1]
    executable = chromium_path()
    with tempfile.TemporaryDirectory(prefix="rnnlab-chromium-") as profile:
        browser = DevTools(executable, profile)
        try:
            target = browser.call("Target.createTarget", url="about:blank")["targetId"]
            session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            browser.call("Page.enable", session)
            browser.call("Network.enable", session)
            browser.call("Emulation.setDeviceMetricsOverride", session, width=1280, height=900,
                         deviceScaleFactor=1, mobile=False)
            browser.call("Page.navigate", session, url=report.resolve().as_uri())
            browser.wait_for("Page.loadEventFired")
            images = json.loads(browser.call("Runtime.evaluate", session, expression=IMAGES_SCRIPT,
                                             returnByValue=True)["result"]["value"])
            shot = browser.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)
        finally:
            browser.close()
    assert {i["src"] for i in images} == FIGURES
    missing = [i["src"] for i in images if not (i["complete"] and i["width"] > 0)]
    assert not missing, f"images that did not load in Chromium: {missing}"
    for image in images:  # the browser decoded the very files we wrote
        with Image.open(out / image["src"]) as png:
            assert (image["width"], image["height"]) == png.size
    requested = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert requested and all(url.startswith("file://") for url in requested), requested  # nothing from the network
    screenshot = tmp_path / "report.png"
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    with Image.open(screenshot) as picture:
        assert picture.width == 1280 and picture.height > 900  # the whole long page, not just the viewport
        assert np.asarray(picture.convert("L")).std() > 10
