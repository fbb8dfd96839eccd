"""The report's draw pad: `rnnlab serve --export`'s page, with the report's models, beside report.html.

report.html itself stays a page without scripts; the pad lives in `draw-a-digit/` next to it (the page, reader.js
and the models' weights, as `rnnlab serve RUN... --export` writes them) and is shown in an iframe, so that it
works from disk with no server and no network. Models the page cannot compute (a reading that does not end on
the picture's rows) are left out, and the report says so.
"""

from __future__ import annotations

import re
from pathlib import Path

from rnnlab.errors import RnnlabError
from rnnlab.report.html import Page
from rnnlab.report.introspect import is_lstm

FOLDER = "draw-a-digit"


def add_draw_pad_section(page: Page, names: list[str], runs, out: Path) -> None:
    """Write `out/draw-a-digit/` for the runs the page can compute, and the section showing it."""
    from rnnlab.serve.catalog import ServedModel
    from rnnlab.serve.export import check_computable, write_export

    served, left_out = [], []
    for name, run in zip(names, runs):
        model = ServedModel(name=re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "model", model=run.model,
                            config=run.config, run_dir=Path(run.run_dir), metrics=run.metrics, lstm=is_lstm(run.model))
        try:
            check_computable(model)
        except RnnlabError:
            left_out.append(name)
            continue
        served.append(model)
    page.heading("Draw a digit", anchor="draw")
    if not served:
        page.paragraph("None of these models reads the picture row by row, so there is no draw pad.")
        return
    write_export(served, out / FOLDER, force=True)
    page.paragraph("Draw a digit (mouse, pen or finger) and watch these models read it row by row, with the LSTMs' "
                   "gates and the rows that mattered. It runs in your browser from the models' weights in "
                   f"{FOLDER}/: no server, no network.")
    page.parts.append(f'<iframe src="{FOLDER}/index.html" title="draw a digit" loading="eager" '
                      'style="width: 100%; height: 1400px; border: 1px solid #ddd; border-radius: 6px;"></iframe>')
    page.parts.append(f'<p class="note"><a href="{FOLDER}/index.html">Open the draw pad on its own page</a>.</p>')
    if left_out:
        page.paragraph(f"Left out of the pad: {', '.join(left_out)} (its reading does not end on the picture's rows).",
                       cls="note")
