"""The page in a real browser: `rnnlab serve` on a free loopback port, Playwright driving Debian's Chromium
(headless, `executable_path`: no browser download). A 7 from the MNIST test set is drawn with pointer events;
every model must answer, the LSTM must say 7, Play must walk t from 1 to 28 and the LSTM's heatmaps must
appear. The same page at a phone's size, drawn with touch, must not scroll while drawing, and its cards must
follow the pad and Play within the first screen. scripts/serve_screenshot.py, which makes the README's
docs/serve.png, runs end to end.
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import sys

import pytest
from PIL import Image
from serve_helpers import REPO, Server, strokes_of, trained_runs

from rnnlab.report.images import digit_from_bytes

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements.txt")

CELL = 10  # pad pixels per MNIST pixel: the 280×280 pad is the 28×28 image scaled ×10
PHONE = dict(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is needed for the page's browser test and is not installed: "
                "apt-get update && apt-get install -y chromium (Debian's package; `make browser` does it)")


@pytest.fixture(scope="module")
def server(tmp_path_factory, mnist_dir):
    runs = trained_runs(tmp_path_factory, mnist_dir)
    server = Server([runs["rnn"], runs["lstm"]], cwd=tmp_path_factory.mktemp("serve-cwd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def seven(mnist):
    digit, label = mnist.test.images[0].numpy(), int(mnist.test.labels[0])
    assert label == 7
    return digit


def open_page(context, url: str):
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None)
    outside = []
    page.on("request", lambda request: outside.append(request.url) if not request.url.startswith((url, "data:")) else None)
    page.goto(url)
    page.wait_for_function("document.body.dataset.state === 'idle' && document.querySelectorAll('.model').length === 2")
    return page, problems, outside


def draw_with_mouse(page, strokes) -> None:
    box = page.locator("#pad").bounding_box()
    for row, first, last in strokes:
        y = box["y"] + (row + 0.5) * CELL
        page.mouse.move(box["x"] + (first + 0.5) * CELL, y)
        page.mouse.down()
        page.mouse.move(box["x"] + (last + 0.5) * CELL, y + 0.01, steps=3)
        page.mouse.up()


def test_draw_a_seven_and_watch_the_models_read_it(browser, server, seven):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page, problems, outside = open_page(context, server.url)
    try:
        draw_with_mouse(page, strokes_of(seven))
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)  # gates included

        # what the page sends (its padBlob()): its own grayscale PNG of the inked part, read exactly as the whole
        # pad's PNG would be
        sent = base64.b64decode(page.evaluate("""async () => {
            const bytes = new Uint8Array(await (await padBlob()).arrayBuffer());
            let text = ""; for (const b of bytes) text += String.fromCharCode(b); return btoa(text); }"""))
        picture = Image.open(io.BytesIO(sent))
        assert picture.format == "PNG" and picture.mode == "L" and picture.width < 280 and picture.height < 280
        whole = base64.b64decode(page.evaluate("document.querySelector('#pad').toDataURL('image/png')").split(",")[1])
        assert (digit_from_bytes(sent) == digit_from_bytes(whole)).all()
        assert page.evaluate("state.reading.image") == digit_from_bytes(whole).tolist()

        answers = {card.get_attribute("data-name"): card.locator(".answer-digit").inner_text()
                   for card in page.locator(".model").all()}
        assert set(answers) == {"rnn", "lstm"} and all(a in list("0123456789") for a in answers.values()), answers
        assert answers["lstm"] == "7", f"the LSTM read the drawn 7 as {answers['lstm']}"
        assert page.locator('.model[data-name="lstm"] .top3 li').count() == 3

        heatmaps = page.locator('.model[data-name="lstm"] canvas.heatmap[data-drawn="1"]')
        assert heatmaps.count() == 2 * 5, "i, f, o, g, c for each of the LSTM's two layers"
        spread = page.evaluate("""() => Array.from(document.querySelectorAll('.model[data-name="lstm"] canvas.heatmap'))
            .map(c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                        return new Set(Array.from(d.filter((_, k) => k % 4 === 0))).size; })""")
        assert min(spread) > 10, f"heatmaps without content: {spread}"
        assert page.locator('.model[data-name="rnn"] .gates').is_hidden(), "an RNN has no gates to show"
        for name in ("rnn", "lstm"):  # the rows that mattered, from /api/read?saliency=1
            assert page.locator(f'.model[data-name="{name}"] .saliency-bars rect[data-row]').count() == 28

        # Play walks t = 1..28, every view following it
        page.evaluate("""() => { window.seenT = [];
            new MutationObserver(() => { const t = Number(document.querySelector('#t').value);
                                         if (window.seenT[window.seenT.length - 1] !== t) window.seenT.push(t); })
              .observe(document.querySelector('#t-label'), {childList: true, characterData: true, subtree: true}); }""")
        page.click("#play")
        page.wait_for_function("!document.body.dataset.playing && document.querySelector('#t').value === '28'",
                               timeout=30_000)
        assert page.evaluate("window.seenT") == list(range(1, 29))

        # at t = 5 the bars are the probabilities after five rows, as the API gave them
        page.locator("#t").fill("5")
        page.dispatch_event("#t", "input")
        after_five = page.evaluate("() => state.reading.models[1].probabilities[4]")
        shown = page.locator('.model[data-name="lstm"] .bars .value').all_inner_texts()
        assert [float(v.rstrip("%")) for v in shown] == pytest.approx([100 * p for p in after_five], abs=0.051)
        assert page.locator('.model[data-name="lstm"] .after').inner_text() == "after row 5"

        # a wide screen: the explanation open beside the pad, the cards right under the three panels
        box = boxes(page, "#draw-panel", "#seen-panel", "#about", ".model")
        assert page.evaluate("document.querySelector('#about').open"), "room beside the pad: the explanation is open"
        assert box["#about"]["left"] >= box["#seen-panel"]["right"]
        assert box["#about"]["top"] < box["#draw-panel"]["bottom"]
        first_row = max(box[panel]["bottom"] for panel in ("#draw-panel", "#seen-panel", "#about"))
        assert 0 <= box[".model"]["top"] - first_row <= 16, box
    finally:
        context.close()
    assert not problems, problems
    assert not outside, f"the page asked another host: {outside}"


def boxes(page, *selectors: str) -> dict[str, dict[str, float]]:
    """getBoundingClientRect() of the first element each selector finds: top, bottom, left, right in CSS px."""
    return page.evaluate("""selectors => Object.fromEntries(selectors.map(s => {
        const r = document.querySelector(s).getBoundingClientRect();
        return [s, {top: r.top, bottom: r.bottom, left: r.left, right: r.right}]; }))""", list(selectors))


def touch_drag(cdp, points) -> None:
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]})
    for x, y in points[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_drawing_with_a_finger_on_a_phone_does_not_scroll(browser, server, seven):
    context = browser.new_context(**PHONE)
    page, problems, _ = open_page(context, server.url)
    try:
        cdp = context.new_cdp_session(page)
        assert page.evaluate("document.documentElement.scrollHeight") > 844 + 200, "the page must be able to scroll"
        box = page.locator("#pad").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, "the pad fits the phone's width"
        before = page.evaluate("window.scrollY")
        # the 7, stroke by stroke, each finger path also moving up (which would scroll the page)
        for row, first, last in strokes_of(seven):
            y = box["y"] + (row + 0.5) * CELL
            xs = [box["x"] + (first + (last - first) * s / 4 + 0.5) * CELL for s in range(5)]
            touch_drag(cdp, [(x, y - 2 * s) for s, x in enumerate(xs)])
        # and one long upward swipe across the pad
        middle = box["x"] + box["width"] / 2
        touch_drag(cdp, [(middle, box["y"] + box["height"] - 8 - 12 * s) for s in range(20)])
        page.wait_for_timeout(400)
        assert page.evaluate("window.scrollY") == before, "drawing scrolled the page"
        page.wait_for_function("Number(document.body.dataset.readings || 0) >= 1", timeout=60_000)
        answers = page.locator(".model .answer-digit").all_inner_texts()
        assert len(answers) == 2 and all(a in list("0123456789") for a in answers), answers

        # the same swipe outside the pad does scroll: the check above can fail
        lede = page.locator(".lede").bounding_box()
        touch_drag(cdp, [(lede["x"] + 40, lede["y"] + lede["height"] - 4 - 15 * s) for s in range(12)])
        page.wait_for_function("window.scrollY > 0", timeout=10_000)
    finally:
        context.close()
    assert not problems, problems


def test_on_a_phone_the_cards_follow_the_pad_within_the_first_screen(browser, server, seven):
    """Issue 19: the first card sat ~1,200 px under the pad, below the explanation, so Play moved things off-screen.
    Now the cards follow the pad and Play's panel directly, starting within the first screen (844 px), and the
    explanation is folded under them; the lede's link opens it."""
    context = browser.new_context(**PHONE)
    page, problems, _ = open_page(context, server.url)
    try:
        cdp = context.new_cdp_session(page)
        pad = page.locator("#pad").bounding_box()
        for row, first, last in strokes_of(seven):  # drawn, so that the cards hold a reading and the status a line
            y = pad["y"] + (row + 0.5) * CELL
            touch_drag(cdp, [(pad["x"] + (first + 0.5) * CELL, y), (pad["x"] + (last + 0.5) * CELL, y)])
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)
        assert page.evaluate("window.scrollY") == 0
        box = boxes(page, "#draw-panel", "#seen-panel", "#play", ".model", "#about", ".model:last-of-type")
        assert box["#draw-panel"]["bottom"] <= box["#seen-panel"]["top"], "pad first, then what the models read"
        assert box["#play"]["bottom"] <= 844, "Play is on the first screen"
        assert box[".model"]["top"] <= 844, f"the first card starts {box['.model']['top']:.0f} px down"
        assert 0 <= box[".model"]["top"] - box["#seen-panel"]["bottom"] <= 16, "nothing between Play and the cards"
        assert not page.evaluate("document.querySelector('#about').open"), "the explanation is folded on a phone"
        assert box["#about"]["top"] >= box[".model:last-of-type"]["bottom"], "and comes after the cards"
        page.click("#about-link")
        assert page.evaluate("document.querySelector('#about').open")
    finally:
        context.close()
    assert not problems, problems


def test_screenshot_script_draws_the_readme_picture(tmp_path_factory, mnist_dir, tmp_path):
    """scripts/serve_screenshot.py, which makes docs/serve.png, runs end to end on the test's runs."""
    runs = trained_runs(tmp_path_factory, mnist_dir)
    out = tmp_path / "serve.png"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "serve_screenshot.py"), str(runs["rnn"]),
                             str(runs["lstm"]), "--data-dir", str(mnist_dir), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    picture = Image.open(out)
    assert picture.format == "PNG" and picture.width == 1280 and picture.height > 900
    assert out.stat().st_size < 300_000 and f"{out}: " in result.stdout
