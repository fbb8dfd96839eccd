"""rnnlab as a Python user installs it: build the wheel, make a new venv, `pip install` the wheel there with the
dependencies pyproject.toml declares and nothing else (requirements.txt is not read).

    python scripts/fresh_install.py VENV [--torch-from PYTHON]

torch and its CUDA libraries weigh ~4.4 GB: `--torch-from` lends the new venv the torch and torchvision already
installed for PYTHON (this project's .venv), with exactly their own dependency closure, through a .pth file, so
they are not unpacked again. pip sees them as installed and brings every other declared dependency itself; a
package that only requirements.txt or a test tool provides (psutil, once) is therefore missing, as for a user.
Prints the venv's `rnnlab` path.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LENT = ("torch", "torchvision")

# Run by the interpreter that lends torch: {distribution: [its top-level files and folders]} for the closure
# of LENT's requirements (with the extras they ask for), from installed metadata.
CLOSURE = r"""
import importlib.metadata as md, json, sys
from packaging.requirements import Requirement
found, todo = {}, [(name, ()) for name in sys.argv[1:]]
while todo:
    name, extras = todo.pop()
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    key = dist.metadata["Name"].lower()
    if key in found and not extras:
        continue
    found.setdefault(key, sorted({str(f).split("/")[0] for f in dist.files or [] if not str(f).startswith("..")}))
    for line in dist.requires or []:
        req = Requirement(line)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            todo.append((req.name, tuple(req.extras)))
print(json.dumps({"site": md.distribution(sys.argv[1]).locate_file(""), "files": found}, default=str))
"""


def build_wheel(out: Path) -> Path:
    """The wheel of the project's declared files (src, pyproject.toml, README.md), built in a copy."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "rnnlab"
        shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, source / name)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "--wheel-dir", str(out), str(source)], check=True)
    return next(out.glob("rnnlab-*.whl"))


def lend_torch(venv: Path, lender: str) -> None:
    """Link the lender's torch closure into one folder and put it on the new venv's path with a .pth file."""
    found = json.loads(subprocess.run([lender, "-c", CLOSURE, *LENT], check=True, capture_output=True,
                                      text=True).stdout)
    site, shelf = Path(found["site"]), venv / "lent-torch"
    shelf.mkdir()
    for names in found["files"].values():
        for name in names:
            if (site / name).exists() and not (shelf / name).exists():
                (shelf / name).symlink_to(site / name)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path("
                              "'purelib'))"], check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "rnnlab-lent-torch.pth").write_text(f"{shelf}\n")


def fresh_install(venv: Path, torch_from: str | None = None) -> Path:
    """A new venv at `venv` with rnnlab's wheel and its declared dependencies; the path of its `rnnlab`."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if torch_from:
        lend_torch(venv, torch_from)
    wheel = build_wheel(venv / "wheel")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], check=True)
    return venv / "bin" / "rnnlab"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("venv", type=Path, help="the new venv's folder (must not exist)")
    parser.add_argument("--torch-from", metavar="PYTHON", help="an interpreter whose torch and torchvision to lend")
    args = parser.parse_args()
    if args.venv.exists():
        parser.error(f"{args.venv} exists; give a new folder")
    print(fresh_install(args.venv, args.torch_from))
    return 0


if __name__ == "__main__":
    sys.exit(main())
