"""The page's files are package data: a wheel built from the repo holds them, and `rnnlab serve` installed
from that wheel (not editable) in a fresh venv serves the page."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import pytest
import torch
from serve_helpers import REPO, Server

STATIC = ("index.html", "app.js", "style.css")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the repo's sources (building in place would leave build/ in the work tree)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(out)], check=True, timeout=300, capture_output=True)
    wheels = list(out.glob("rnnlab-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_holds_the_page(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for name in STATIC:
        assert f"rnnlab/serve/static/{name}" in names, f"{name} is missing from {wheel.name}"


def test_serve_from_a_non_editable_install_in_a_fresh_venv(wheel, tmp_path, mnist_dir):
    # A run to serve: a tiny RNN (what it answers does not matter here).
    from rnnlab.config import Config
    from rnnlab.lab import train

    run = tmp_path / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(Config(model="rnn", hidden_size=8, epochs=1, train_limit=256, test_limit=64, data_dir=str(mnist_dir)),
              run, log=lambda _: None, quiet=True)
    finally:
        torch.set_num_threads(threads)

    # A fresh venv with the wheel installed as a wheel. Its dependencies (torch, FastAPI, ...) are borrowed from
    # this venv through a .pth line, appended after the fresh venv's own site-packages: so `rnnlab` itself is
    # the installed wheel's, never this checkout's (an editable install's hooks are not run from a .pth path).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                    str(wheel)], check=True, timeout=300, capture_output=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = subprocess.run([str(python), "-c", "import rnnlab.serve; print(rnnlab.serve.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout.strip()
    assert Path(where).is_relative_to(venv), f"rnnlab came from {where}, not from the installed wheel"

    server = Server([run], cwd=tmp_path, command=[str(venv / "bin" / "rnnlab")])
    try:
        page = httpx.get(server.url, timeout=30)
        assert page.status_code == 200 and '<canvas id="pad"' in page.text
        for name in STATIC:
            served = httpx.get(f"{server.url}static/{name}", timeout=30)
            assert served.status_code == 200
            assert served.content == (REPO / "src" / "rnnlab" / "serve" / "static" / name).read_bytes()
        assert httpx.get(server.url + "api/models", timeout=30).json()["models"][0]["run_dir"] == str(run)
    finally:
        server.stop()
