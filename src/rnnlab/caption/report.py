"""`rnnlab caption report RUN...`: test pictures with generated and true captions, and the scores.

For each finished run: greedy captions of its test set (and beam-search ones with --beam-size > 1),
exact match, per-word accuracy and BLEU-4 (`rnnlab.caption.metrics`), each by caption length; the runs
side by side, so that RNN and LSTM decoders trained alike can be compared on longer and shorter strings.
Written into OUT: `caption_report.json` (every figure), `caption_report.html` (tables and pictures),
`captions-<run>.png` and `by_length.png`. Runs that share a test set (same data and test seed) are
scored on the same pictures.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from rnnlab.errors import RnnlabError

EXAMPLES = 12


def _names(runs: list[Path]) -> list[str]:
    """Short unique names for the runs: the folder names, numbered when two are alike."""
    names, seen = [], {}
    for run in runs:
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", run.resolve().name) or "run"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return names


def score_runs(runs: list[Path], data_dir: str | None = None, beam_size: int = 1,
               log: Callable[[str], None] = print) -> dict:
    """{name: {"run", "decoder", "backend", "greedy": scores, "beam": scores (beam_size > 1),
    "captions": generated strings, "truth": true strings}} for each run folder."""
    from rnnlab.caption.metrics import caption_strings, score_captions
    from rnnlab.caption.train import load_captioner

    runs, results, tasks = [Path(r) for r in runs], {}, {}
    for name, run in zip(_names(runs), runs):
        trainer, captioned = load_captioner(run, data_dir=data_dir, log=log, need_data=False)
        config = captioned.config
        key = (config.data, data_dir or config.data_dir, config.test_seed, config.test_size, config.seed
               if config.data == "coco" else 0)
        if key not in tasks:  # runs that share a test set load it once
            from rnnlab.caption.train import load_task

            tasks[key] = load_task(config, log)
        task = tasks[key]
        generated = trainer.caption(task.test_inputs)
        row = {"run": str(run), "decoder": config.decoder, "backend": config.backend, "data": config.data,
               "train_seconds": captioned.metrics.get("train_seconds"), "greedy": score_captions(generated, task),
               "captions": caption_strings(generated, task.idx_to_word),
               "truth": [" ".join(refs[0]) for refs in task.test_references]}
        if beam_size > 1 and config.backend == "torch":  # CS231n's sample() is greedy only
            row["beam"] = score_captions(trainer.caption(task.test_inputs, beam_size=beam_size), task)
            row["beam_size"] = beam_size
        row["pictures"] = task.test_inputs[:EXAMPLES] if config.data == "digits" else None
        results[name] = row
    return results


def report_command(runs: list[str], out: str | None = None, data_dir: str | None = None, beam_size: int = 1,
                   log: Callable[[str], None] = print) -> int:
    """Score `runs`, print one table, and write the report files into `out` (default: the first run's parent)."""
    from rnnlab.caption.figures import save_accuracy_by_length, save_captioned_pictures
    from rnnlab.report.html import Page
    from rnnlab.runs import write_json

    if not runs:
        raise RnnlabError("no runs given: name one or more folders that rnnlab caption train wrote")
    if beam_size < 1:
        raise RnnlabError(f"--beam-size must be 1 (greedy) or more, got {beam_size}")
    run_dirs = [Path(r) for r in runs]
    folder = Path(out) if out is not None else run_dirs[0].parent
    if folder.exists() and not folder.is_dir():
        raise RnnlabError(f"--out {folder} is a file; give a folder for the report")
    if not folder.is_dir():
        raise RnnlabError(f"--out {folder}: no such folder; create it first")
    results = score_runs(run_dirs, data_dir, beam_size, log)
    for line in table_lines(results):
        log(line)

    page = Page("rnnlab caption report")
    page.heading("Scores on the test set")
    page.table(*summary_table(results))
    page.heading("By caption length")
    page.table(*length_table(results))
    digit_runs = {n: r["greedy"] for n, r in results.items() if r["data"] == "digits"}
    if digit_runs:
        save_accuracy_by_length(digit_runs, folder / "by_length.png")
        page.add_figure("by_length.png", "exact match by the number of digits in the picture, one line per run")
    for name, row in results.items():
        if row["pictures"] is not None:
            file_name = f"captions-{name}.png"
            n = len(row["pictures"])
            save_captioned_pictures(row["pictures"], row["captions"][:n], row["truth"][:n], folder / file_name)
            page.heading(f"{name}: the first test pictures", level=3)
            page.add_figure(file_name, "generated caption above (green: right, red: wrong), true one below")
    saved = {n: {k: v for k, v in r.items() if k != "pictures"} for n, r in results.items()}
    write_json(folder / "caption_report.json", saved)
    log(f"report: {page.write(folder / 'caption_report.html')}")
    return 0


def summary_table(results: dict) -> tuple[list[str], list[list]]:
    header = ["run", "decoder", "backend", "exact match", "per-word", "BLEU-4", "train s"]
    rows = []
    for name, r in results.items():
        for how in ("greedy", "beam"):
            if how not in r:
                continue
            s = r[how]
            label = name if how == "greedy" else f"{name} (beam {r['beam_size']})"
            seconds = f"{r['train_seconds']:.0f}" if r.get("train_seconds") is not None else ""
            rows.append([label, r["decoder"], r["backend"], f"{100 * s['exact_match']:.1f}%",
                         f"{100 * s['per_word_accuracy']:.2f}%", f"{s['bleu4']:.3f}", seconds])
    return header, rows


def length_table(results: dict) -> tuple[list[str], list[list]]:
    lengths = sorted({n for r in results.values() for n in r["greedy"]["by_length"]}, key=int)
    header = ["run"] + [f"length {n}: exact / per-word" for n in lengths]
    rows = []
    for name, r in results.items():
        cells = []
        for n in lengths:
            s = r["greedy"]["by_length"].get(n)
            cells.append(f"{100 * s['exact_match']:.1f}% / {100 * s['per_word_accuracy']:.1f}%" if s else "")
        rows.append([name, *cells])
    return header, rows


def table_lines(results: dict) -> list[str]:
    """The two tables as aligned text lines for the terminal."""
    lines = []
    for header, rows in (summary_table(results), length_table(results)):
        widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
        for row in [header, *rows]:
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        lines.append("")
    return lines[:-1]
