"""The page reading in the browser (issue 21), checked against the server in real Chromium (Playwright, Debian's
chromium through `executable_path`).

Tiny seeded runs of rnn, gru, lstm and scratch-lstm with 1 and 2 layers (and an LSTM on the permuted view, 112
steps of 7 pixels) are exported with `rnnlab serve RUN... --export DIR` and, at the same time, served by
`rnnlab serve` on a loopback port. The exported page, opened from disk, reads 50 MNIST test digits given as
pixels with reader.js; `/api/read?gates=1&saliency=1` reads the same pixels. Probabilities after every row,
the LSTMs' gates i, f, o, g and cell c must agree within 1e-5, the saliency (torch autograd against reader.js's
backward pass) within 1e-4 relative. Ten drawings on the pad must give the 28×28 image Python's preprocessing
gives within 1 grey level.
"""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest
from page_helpers import chromium_path, draw_with_mouse, export, open_export, tiny_runs
from serve_helpers import Server, strokes_of

from rnnlab.report.images import digit_from_bytes

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements.txt")

DIGITS = 50
FIGURES: dict[str, float] = {}  # the largest differences seen, printed at the end (pytest -s)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist_dir):
    return tiny_runs(tmp_path_factory, mnist_dir)


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "export"
    result = export(list(runs.values()), out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    server = Server(list(runs.values()), cwd=tmp_path_factory.mktemp("page-cwd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(exported, runs):
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page, problems, outside = open_export(context, (exported / "index.html").as_uri(), len(runs))
        yield page
        print("\nlargest differences seen:", ", ".join(f"{k} {v:.1e}" for k, v in FIGURES.items()))
        assert not problems, problems
        assert not outside, f"the page asked another place: {outside}"
        browser.close()


def api_readings(server, digits) -> list[dict]:
    with httpx.Client(timeout=120) as client:
        answers = []
        for digit in digits:
            response = client.post(server.url + "api/read?gates=1&saliency=1", json={"pixels": digit.tolist()})
            assert response.status_code == 200, response.text
            answers.append({m["name"]: m for m in response.json()["models"]})
    return answers


def browser_readings(page, name: str, digits) -> list[dict]:
    return page.evaluate("""([name, digits]) => {
        const model = state.local.find((m) => m.entry.name === name);
        return digits.map((d) => RnnlabReader.read(model, Uint8Array.from(d.flat()), {gates: true, saliency: true})); }""",
                         [name, [d.tolist() for d in digits]])


def test_the_browser_reads_50_digits_as_the_server_does(page, server, runs, mnist):
    digits = [mnist.test.images[k].numpy() for k in range(DIGITS)]
    served = api_readings(server, digits)
    names = list(served[0])
    assert len(names) == len(runs) == 9
    kinds = {served[0][n]["model"] for n in names}
    assert kinds == {"rnn", "gru", "lstm", "scratch-lstm"}
    for name in names:
        local = browser_readings(page, name, digits)
        worst = {"probabilities": 0.0, "gates": 0.0, "saliency": 0.0}
        for api, mine in zip((s[name] for s in served), local):
            assert mine["answer"] == api["answer"] and mine["label"] == api["label"]
            assert len(mine["probabilities"]) == 28
            worst["probabilities"] = max(worst["probabilities"],
                                         np.abs(np.array(mine["probabilities"]) - api["probabilities"]).max())
            if api["gates"] is not None:
                assert len(mine["gates"]) == len(api["gates"])
                for layer_api, layer_mine in zip(api["gates"], mine["gates"]):
                    for gate in "ifogc":
                        difference = np.abs(np.array(layer_mine[gate]) - np.array(layer_api[gate])).max()
                        worst["gates"] = max(worst["gates"], difference)
            else:
                assert mine["gates"] is None, f"{name} is not an LSTM: no gates"
            reference = np.array(api["saliency"])
            assert reference.shape == (28,) and reference.max() > 0
            worst["saliency"] = max(worst["saliency"], (np.abs(np.array(mine["saliency"]) - reference) / reference).max())
        assert worst["probabilities"] <= 1e-5, (name, worst)
        assert worst["gates"] <= 1e-5, (name, worst)
        assert worst["saliency"] <= 1e-4, (name, worst)
        FIGURES.update({f"{name} {key}": value for key, value in worst.items()})


def test_the_gates_the_browser_shows_are_the_lstms(page, mnist):
    """The heatmaps drawn from a reading in the browser: two layers of i, f, o, g, c for a two-layer LSTM."""
    draw_with_mouse(page, strokes_of(mnist.test.images[0].numpy()))
    page.wait_for_function("Number(document.body.dataset.readings || 0) >= 1")
    assert page.locator('.model[data-name="lstm-2"] canvas.heatmap[data-drawn="1"]').count() == 10
    assert page.locator('.model[data-name="gru-2"] .gates').is_hidden()
    bars = page.locator('.model[data-name="rnn-1"] .saliency-bars rect[data-row]')
    assert bars.count() == 28
    assert "RNN" in page.locator('.model[data-name="rnn-1"] .saliency-note').inner_text()
    assert "LSTM" in page.locator('.model[data-name="lstm-1"] .saliency-note').inner_text()
    page.click("#clear")


# Ten drawings: MNIST test digits redrawn stroke by stroke at different sizes and places on the pad.
DRAWINGS = [(k, offset, scale) for k, (offset, scale) in enumerate([
    ((0, 0), 1.0), ((40, 10), 0.7), ((10, 20), 0.9), ((60, 60), 0.5), ((0, 0), 1.1),
    ((20, 30), 0.6), ((30, 5), 0.8), ((90, 0), 0.4), ((0, 80), 0.55), ((10, 10), 1.0)])]


@pytest.mark.parametrize("k, offset, scale", DRAWINGS)
def test_a_drawing_becomes_the_image_python_makes(page, mnist, k, offset, scale):
    digit = mnist.test.images[k].numpy()
    if page.locator("#clear").is_enabled():
        page.click("#clear")
    draw_with_mouse(page, strokes_of(digit), offset, scale)
    page.wait_for_function("document.body.dataset.state === 'ready'")
    png = base64.b64decode(page.evaluate("document.querySelector('#pad').toDataURL('image/png')").split(",")[1])
    python = digit_from_bytes(png).astype(int)
    browser = np.array(page.evaluate("Array.from(padImage())")).reshape(28, 28)
    shown = np.array(page.evaluate("state.reading.image"))
    assert (browser == shown).all(), "the page reads the image it computed"
    difference = np.abs(browser - python).max()
    FIGURES[f"drawing {k} grey levels"] = difference
    assert difference <= 1, f"drawing {k}: {difference} grey levels apart ({(browser != python).sum()} pixels differ)"
    assert python.sum() > 0


def test_the_scripts_own_sha256_is_sha256(page):
    """reader.js's SHA-256, used where the browser offers none (a page on plain http): equal to hashlib's at the
    padding's edge cases and on a weight-sized input."""
    import hashlib

    rng = np.random.default_rng(0)
    for size in (0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 853_000):
        data = rng.integers(0, 256, size, dtype=np.uint8)
        mine = page.evaluate("(bytes) => RnnlabReader.sha256(Uint8Array.from(bytes))", data.tolist())
        assert mine == hashlib.sha256(data.tobytes()).hexdigest(), size
