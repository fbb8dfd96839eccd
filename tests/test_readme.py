"""The README says what the code is: its project layout names every package and top-level module (and the
functions it names exist where it says), its Commands block shows every command the CLI has (with options
that command accepts), and the figures it shares with docs/results.md are the same."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

from rnnlab.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "rnnlab"
README = (REPO / "README.md").read_text(encoding="utf-8")
RESULTS = (REPO / "docs" / "results.md").read_text(encoding="utf-8")


def section(title: str, readme: str = README) -> str:
    """The text under `## title`, up to the next `## ` heading."""
    start = readme.index(f"\n## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start:end if end != -1 else None]


def first_code_block(text: str) -> str:
    return re.search(r"```\n(.*?)```", text, re.S).group(1)


def layout_entries(readme: str = README) -> dict[str, str]:
    """The layout's entries under src/rnnlab/: name (`data/`, `lab.py`) → its text, continuation lines included."""
    entries, current = {}, None
    for line in first_code_block(section("Project layout", readme)).splitlines():
        head = re.match(r"^  (\S+)\s{2,}(.*)$", line)
        if head:
            current = head.group(1)
            entries[current] = head.group(2)
        elif current and re.match(r"^\s{4,}\S", line):
            entries[current] += " " + line.strip()
        else:
            current = None
    return entries


def wrong_names(entries: dict[str, str]) -> tuple[list[str], int]:
    """What the layout names that is not where it says, and how many functions it names.

    In an entry, `name()` is looked up in the module last named before it (`fit.py (the loop: fit())`), or in the
    entry's own module or package; every `file.py` or `folder/` named in a package's entry must be in it.
    """
    problems, functions = [], 0
    for name, text in entries.items():
        package = name.removesuffix("/") if name.endswith("/") else None
        if package:
            problems += [f"{package}/{file} does not exist"
                         for file in re.findall(r"(?<![\w.])(\w+\.py|\w+/)(?!\w)", text)
                         if not (SRC / package / file).exists()]
        owner = f"rnnlab.{package}" if package else f"rnnlab.{name.removesuffix('.py')}"
        for token in re.finditer(r"(?<![\w.])(\w+\.py)(?!\w)|(?<![\w.])(\w+)\(\)", text):
            if token.group(1):
                module = token.group(1).removesuffix(".py")
                owner = f"rnnlab.{package}.{module}" if package else f"rnnlab.{module}"
                continue
            functions += 1
            if not callable(getattr(importlib.import_module(owner), token.group(2), None)):
                problems.append(f"{owner} has no function {token.group(2)}()")
    return problems, functions


def test_layout_names_every_package_and_top_level_module():
    entries = layout_entries()
    packages = {f"{p.parent.name}/" for p in SRC.glob("*/__init__.py")}
    modules = {p.name for p in SRC.glob("*.py")}
    assert packages and modules
    assert not (packages | modules) - set(entries), "missing from README's Project layout"
    assert not set(entries) - (packages | modules), "README's Project layout names what is not there"
    for name, text in entries.items():
        assert len(text.split()) >= 3, f"{name}: say what it holds"


def test_layout_names_only_files_and_functions_that_exist_where_it_says():
    problems, functions = wrong_names(layout_entries())
    assert problems == [], "README's Project layout"
    assert functions >= 20  # it names the functions to start reading from, and they were all looked up


def test_the_checker_sees_a_misplaced_function_and_file():
    """The lookup can fail: evaluate_saved() is in runs.py, not lab.py (where the old layout put it)."""
    problems, functions = wrong_names({"lab.py": "train(), compare() and evaluate_saved()",
                                       "training/": "fit.py (fit()), trainer.py (the loop)",
                                       "runs.py": "the run folder: evaluate_saved()"})
    assert problems == ["rnnlab.lab has no function evaluate_saved()", "training/trainer.py does not exist"]
    assert functions == 5


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def commands(parser=None, prefix="rnnlab") -> dict[str, argparse.ArgumentParser]:
    """Every command line the CLI has, down to the leaves: "rnnlab train", "rnnlab exercise new", ..."""
    found = {}
    for name, sub in subcommands(parser or build_parser()).items():
        found.update(commands(sub, f"{prefix} {name}") if subcommands(sub) else {f"{prefix} {name}": sub})
    return found


def test_commands_block_shows_every_command_with_options_it_accepts():
    block, cli = first_code_block(section("Commands")), commands()
    lines = {}
    for line in block.splitlines():
        usage = line.split("#")[0]
        command = next((c for c in sorted(cli, key=len, reverse=True) if re.match(rf"{c}(\s|$)", usage)), None)
        if command:
            lines.setdefault(command, []).append(usage)
    assert len(cli) >= 13  # the walk reaches the nested ones (exercise new, caption train, ...)
    assert not set(cli) - set(lines), "missing from README's Commands block"
    for command, usages in lines.items():
        accepted = set(cli[command]._option_string_actions)
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", " ".join(usages)):
            assert flag in accepted, f"README's Commands block: {command} has no {flag}"


def test_commands_block_leaves_out_what_does_not_exist():
    block = first_code_block(section("Commands"))
    named = set(re.findall(r"^rnnlab (\w+)", block, re.M))
    assert named == {c.split()[1] for c in commands()}


def results_row(model: str, text: str) -> list[str]:
    """A model's row of the first table with that model in `text`: mean ± std, CI, lowest – highest."""
    row = re.search(rf"^\| {re.escape(model)}[^|]*\|([^\n]*)$", text, re.M).group(1)
    return [cell.strip() for cell in row.split("|")][1:4]


@pytest.mark.parametrize("model", ["rnn", "lstm"])
def test_readme_table_is_results_md_table(model):
    assert results_row(model, README) == results_row(model, RESULTS)


def test_readme_figures_are_results_md_figures():
    numpy_lstm = re.search(r"Test accuracy \*\*([\d.]+%)\*\* after (\d+) epochs", RESULTS)
    assert numpy_lstm, "docs/results.md's NumPy LSTM figure"
    figure, epochs = numpy_lstm.groups()
    assert re.search(rf"`--backend numpy` \(the same in NumPy, {re.escape(figure)} after\s+{epochs} epochs\)", README)
    sentence = re.search(r"lstm beats rnn by [\d.]+ points \(95% CI [\d.]+ to [\d.]+\), in \d of \d seeds", RESULTS)
    assert sentence and sentence.group(0) in README
    tuned_section = RESULTS[RESULTS.index("## Tuned LSTM"):]  # the MNIST tuned table, not the Fashion lab rows
    tuned = re.search(r"\| lstm \| 3 \| ([\d.]+ ± [\d.]+%)", tuned_section).group(1)
    assert f"reaches {tuned} over 3 seeds" in README
