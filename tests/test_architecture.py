"""The package's shape: layers import downward only, no one but the CLI reaches the orchestrator, files stay small.

    config, errors  <  data  <  models  <  training  <  runs, lab, stats, experiments, summaries  <  report, serve, exercise, caption  <  cli

read from the source with `ast` (every import, including those inside functions).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rnnlab"
LAYERS = {"config": 0, "errors": 0, "data": 1, "models": 2, "training": 3, "runs": 4, "lab": 4, "stats": 4, "experiments": 4, "summaries": 4,
          "report": 5, "serve": 5, "exercise": 5, "caption": 5, "cli": 6, "__main__": 6, "__init__": 0, "startup": 6}
MAX_LINES = 300
LONGER = {  # file → why it may be longer
    "exercise/check.py": "one flow: the child-process protocol, the per-function comparison, the table, the JSON",
    "exercise/hints.py": "one small diagnosis per known student mistake, kept together as a readable list",
    "exercise/skeleton.py": "mostly the student's text: docstrings with every shape and equation",
}


def modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def part_of(path: Path) -> str:
    """The top-level part of rnnlab a file belongs to: `data` for data/idx.py, `lab` for lab.py."""
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def imported_parts(path: Path) -> set[str]:
    """The rnnlab parts a file imports (`from rnnlab.data import x` → data; `import rnnlab.lab` → lab)."""
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            if node.module == "rnnlab":  # from rnnlab import lab (a submodule), or __version__ (a name)
                names |= {f"rnnlab.{a.name}" for a in node.names if (SRC / f"{a.name}.py").exists() or (SRC / a.name).is_dir()}
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            raise AssertionError(f"{path}: relative import; write `from rnnlab... import ...`")
    return {name.split(".")[1] for name in names if name.startswith("rnnlab.")} | ({"__init__"} if "rnnlab" in names else set())


def test_every_part_has_a_layer():
    assert {part_of(p) for p in modules()} <= set(LAYERS)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_go_downward_only(path):
    mine = part_of(path)
    for part in imported_parts(path) - {mine}:
        assert part in LAYERS, f"{path.name} imports an unknown part rnnlab.{part}"
        if part == "lab":
            assert mine in ("cli", "__main__"), f"{path.relative_to(SRC)} imports rnnlab.lab: only the CLI may"
        assert LAYERS[part] <= LAYERS[mine], (f"{path.relative_to(SRC)} ({mine}, layer {LAYERS[mine]}) imports "
                                              f"rnnlab.{part} (layer {LAYERS[part]}), a layer above it")


def test_the_checker_sees_a_violation(tmp_path):
    """The check above can fail: an upward import is found, also inside a function."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from rnnlab.lab import train\n")
    assert imported_parts(bad) == {"lab"}


def test_files_stay_small():
    assert len((SRC / "lab.py").read_text().splitlines()) <= 200
    for path in modules():
        lines = len(path.read_text().splitlines())
        name = str(path.relative_to(SRC))
        assert lines <= MAX_LINES or name in LONGER, f"{name} has {lines} lines (at most {MAX_LINES})"
