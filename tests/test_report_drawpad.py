"""report.html's draw pad (issue 21): the report of the lab's two runs, opened from disk in Chromium (Playwright,
Debian's chromium), holds the page of `rnnlab serve --export` with the runs' models, and it reads a drawn 7 with no
server and no network."""

from __future__ import annotations

import pytest
from page_helpers import CELL, chromium_path
from serve_helpers import strokes_of, trained_runs

from rnnlab.report.drawpad import FOLDER
from rnnlab.report.page import write_report

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements.txt")


def test_the_reports_draw_pad_reads_a_digit_from_disk(tmp_path_factory, mnist_dir, mnist, tmp_path):
    runs = trained_runs(tmp_path_factory, mnist_dir)
    report = write_report([runs["rnn"], runs["lstm"]], tmp_path / "report", str(mnist_dir), log=lambda _: None)
    text = report.read_text()
    assert "<script" not in text, "report.html itself stays without scripts"
    assert f'<iframe src="{FOLDER}/index.html"' in text
    assert {p.name for p in (report.parent / FOLDER / "models").iterdir()} == {"manifest.json", "manifest.js",
                                                                             "rnn.js", "lstm.js"}
    seven = mnist.test.images[0].numpy()
    assert int(mnist.test.labels[0]) == 7
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        outside, problems = [], []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("file://", "data:")) else None)
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(report.as_uri())
        pad_page = page.frame_locator("iframe")
        pad_page.locator("body[data-state='idle']").wait_for(timeout=60_000)
        page.locator("#draw").scroll_into_view_if_needed()
        box = pad_page.locator("#pad").bounding_box()
        for row, first, last in strokes_of(seven):
            y = box["y"] + (row + 0.5) * CELL * box["height"] / 280
            page.mouse.move(box["x"] + (first + 0.5) * CELL * box["width"] / 280, y)
            page.mouse.down()
            page.mouse.move(box["x"] + (last + 0.5) * CELL * box["width"] / 280, y + 0.01, steps=3)
            page.mouse.up()
        pad_page.locator("body[data-state='ready']").wait_for(timeout=60_000)
        assert pad_page.locator('.model[data-name="lstm"] .answer-digit').inner_text() == "7"
        assert pad_page.locator(".model").count() == 2
        browser.close()
    assert not outside and not problems, (outside, problems)
