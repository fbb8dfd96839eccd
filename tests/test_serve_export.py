"""`rnnlab serve RUN... --export DIR` (issue 21): a static folder that reads digits in the browser, with no server.

In Chromium (Playwright, Debian's chromium): the export of the lab's two runs, opened from disk (file://), reads a
drawn 7 as 7 with the LSTM at desktop size and at phone size with touch; the same when the folder is served by
`python -m http.server` on loopback; a damaged or truncated weight file gives one plain line on the page. Without a
browser: the lab's two models fit in 1.5 MB, the manifest's checksums are the weights', and every mistake with
--export is one line and exit code 2 that leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run
from page_helpers import PHONE, StaticServer, chromium_path, draw_with_finger, draw_with_mouse, export, open_export
from serve_helpers import strokes_of, trained_runs

from rnnlab.config import Config
from rnnlab.models.registry import new_model
from rnnlab.serve.catalog import ServedModel
from rnnlab.serve.export import export_page

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements.txt")


@pytest.fixture(scope="module")
def lab(tmp_path_factory, mnist_dir):
    return trained_runs(tmp_path_factory, mnist_dir)


@pytest.fixture(scope="module")
def folder(lab, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "site"
    result = export([lab["rnn"], lab["lstm"]], out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"wrote {out}" in result.stdout
    return out


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def seven(mnist):
    assert int(mnist.test.labels[0]) == 7
    return mnist.test.images[0].numpy()


def read_a_seven(browser, url: str, seven, phone: bool) -> None:
    context = browser.new_context(**PHONE) if phone else browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page, problems, outside = open_export(context, url, 2)
        assert page.locator("#local-note").is_visible() or phone, "the page says it reads in the browser"
        if phone:
            draw_with_finger(context, page, strokes_of(seven))
            assert page.evaluate("window.scrollY") == 0, "drawing scrolled the page"
        else:
            draw_with_mouse(page, strokes_of(seven))
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)
        assert page.locator('.model[data-name="lstm"] .answer-digit').inner_text() == "7"
        assert page.locator('.model[data-name="lstm"] canvas.heatmap[data-drawn="1"]').count() == 10
        assert page.locator('.model[data-name="lstm"] .saliency-bars rect[data-row]').count() == 28
        assert page.locator('.model[data-name="rnn"] .saliency-bars rect[data-row]').count() == 28
        assert "7" in page.locator("#status").inner_text()
    finally:
        context.close()
    assert not problems, problems
    assert not outside, f"the page asked another place: {outside}"


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_the_export_reads_a_drawn_seven_from_disk(browser, folder, seven, phone):
    read_a_seven(browser, (folder / "index.html").as_uri(), seven, phone)


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_the_export_reads_a_drawn_seven_from_a_static_server(browser, folder, seven, phone):
    server = StaticServer(folder)
    try:
        read_a_seven(browser, server.url + "index.html", seven, phone)
    finally:
        server.stop()


def test_an_uploaded_picture_is_read_in_the_browser_as_python_reads_it(browser, folder, mnist, tmp_path):
    """A photo-like picture (dark ink on white paper, 200×200 PNG) uploaded to the export: the page's 28×28 image
    is Python's within 1 grey level, and the LSTM's answer is the server's."""
    from serve_helpers import paper_png

    from rnnlab.report.images import digit_from_bytes

    digit, label = mnist.test.images[1].numpy(), int(mnist.test.labels[1])
    picture = tmp_path / "digit.png"
    picture.write_bytes(paper_png(digit))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page, problems, _ = open_export(context, (folder / "index.html").as_uri(), 2)
        page.set_input_files("#upload", str(picture))
        page.wait_for_function("document.body.dataset.state === 'ready'", timeout=60_000)
        shown = np.array(page.evaluate("state.reading.image"))
        assert np.abs(shown - digit_from_bytes(picture.read_bytes()).astype(int)).max() <= 1
        assert page.locator('.model[data-name="lstm"] .answer-digit').inner_text() == str(label)
    finally:
        context.close()
    assert not problems, problems


@pytest.mark.parametrize("damage", ["flipped", "truncated", "missing"])
def test_a_damaged_weight_file_is_said_in_one_line(browser, folder, tmp_path, damage):
    copy = tmp_path / "site"
    shutil.copytree(folder, copy)
    weights = copy / "models" / "lstm.js"
    text = weights.read_text()
    if damage == "flipped":  # one base64 character changed: the file loads, its checksum does not match
        at = len(text) // 2
        weights.write_text(text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:])
    elif damage == "truncated":  # a download cut short: the script does not even parse
        weights.write_text(text[: len(text) // 3])
    else:
        weights.unlink()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto((copy / "index.html").as_uri())
        page.wait_for_function("document.body.dataset.damaged === '1'", timeout=60_000)
        status = page.locator("#status")
        line = status.inner_text()
        assert "models/lstm.js" in line and ("damaged" in line) and "\n" not in line.strip(), line
        assert "error" in status.get_attribute("class")
        assert page.locator(".model").count() == 1, "the undamaged model still reads"
        assert page.locator('.model[data-name="rnn"]').count() == 1
    finally:
        context.close()


def lab_shaped(kind: str, tmp_path: Path) -> ServedModel:
    config = Config(model=kind)  # the lab's own settings: rnn 1×128, lstm 2×128, rows
    torch.manual_seed(0)
    return ServedModel(name=kind, model=new_model(config), config=config, run_dir=tmp_path / kind,
                       metrics={"test_accuracy": 0.98}, lstm=kind == "lstm")


def test_the_labs_two_models_fit_in_one_and_a_half_megabytes(tmp_path):
    files = export_page([lab_shaped("rnn", tmp_path), lab_shaped("lstm", tmp_path)])
    total = sum(len(data) for data in files.values())
    assert total <= 1_500_000, f"{total:,} bytes"
    print(f"\nthe lab's two models exported: {total:,} bytes in {len(files)} files")


def test_the_manifest_describes_and_checksums_the_weights(folder, lab):
    manifest = json.loads((folder / "models" / "manifest.json").read_text())
    assert (folder / "models" / "manifest.js").read_text() == f"window.RNNLAB_EXPORT = {json.dumps(manifest, separators=(',', ':'))};\n"
    names = [entry["name"] for entry in manifest["models"]]
    assert names == ["rnn", "lstm"]
    metrics = json.loads((lab["lstm"] / "metrics.json").read_text())
    lstm = manifest["models"][1]
    assert lstm["test_accuracy"] == metrics["test_accuracy"] and lstm["classes"] == [str(k) for k in range(10)]
    assert lstm["num_layers"] == 2 and lstm["view"] == "rows" and lstm["run_dir"] == "lstm"
    import base64

    for entry in manifest["models"]:
        text = (folder / "models" / entry["weights"]["file"]).read_text()
        data = base64.b64decode(text.split('"')[3])
        assert len(data) == entry["weights"]["bytes"] == 4 * entry["parameters"]
        assert hashlib.sha256(data).hexdigest() == entry["weights"]["sha256"]
    assert "/static/" not in (folder / "index.html").read_text(), "relative paths: it works from any folder"


def listing(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_export_mistakes_are_one_line_and_leave_nothing_half_written(capsys, lab, tmp_path, mnist_dir):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    code, out, err = run(capsys, "serve", lab["lstm"], "--export", busy)
    assert code == 2 and err.count("\n") == 1 and "not empty" in err and "--force" in err, err
    assert listing(busy) == {"notes.txt": b"mine"}

    a_file = tmp_path / "page.html"
    a_file.write_text("x")
    code, out, err = run(capsys, "serve", lab["lstm"], "--export", a_file)
    assert code == 2 and err.count("\n") == 1 and "is a file" in err, err
    assert a_file.read_text() == "x"

    # a run the page cannot compute: 14 steps of 56 pixels end in the middle of rows
    from rnnlab.data import load_data
    from rnnlab.lab import train

    config = Config(model="lstm", steps=14, hidden_size=8, epochs=1, train_limit=256, test_limit=100,
                    data_dir=str(mnist_dir))
    odd = train(config, tmp_path / "odd", dataset=load_data(config, announce=lambda _: None), log=lambda _: None,
                quiet=True).run_dir
    fresh = tmp_path / "fresh"
    code, out, err = run(capsys, "serve", lab["lstm"], odd, "--export", fresh)
    assert code == 2 and err.count("\n") == 1 and "14 steps" in err, err
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "odd", "page.html"], "no temporary folder left"

    holding_the_run = lab["lstm"].parent  # --force never replaces a folder holding a run it exports (or the cwd)
    before = listing(holding_the_run)
    code, out, err = run(capsys, "serve", lab["lstm"], "--export", holding_the_run, "--force")
    assert code == 2 and err.count("\n") == 1 and "would delete" in err, err
    assert listing(holding_the_run) == before

    code, out, err = run(capsys, "serve", lab["lstm"], "--export", busy, "--force")
    assert code == 0, err
    assert "notes.txt" not in listing(busy) and "models/lstm.js" in listing(busy)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "odd", "page.html"]


def test_weight_file_names_are_safe_and_unique(tmp_path):
    from rnnlab.serve.export import file_names

    models = [lab_shaped("rnn", tmp_path), lab_shaped("rnn", tmp_path), lab_shaped("lstm", tmp_path)]
    models[0].name, models[1].name, models[2].name = "my run/1", "my-run-1", "../lstm"
    assert file_names(models) == ["my-run-1.js", "my-run-1-2.js", "lstm.js"]
