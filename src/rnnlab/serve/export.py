"""`rnnlab serve RUN... --export DIR`: the page as a static folder that reads digits in the browser.

The folder works from `file://` (opened from disk, no server) and from any static host (GitHub Pages,
`python -m http.server`). A page opened from disk may load scripts but may not fetch files, so every
file the page needs is a script:

    index.html, app.js, reader.js, style.css   the page (the same as `rnnlab serve`'s) and the in-browser reader
    models/manifest.json                       what the models are: settings, class names, test accuracy, the
                                               layout of their weights and each weight file's SHA-256
    models/manifest.js                         the same JSON, as a script (`window.RNNLAB_EXPORT = ...`)
    models/<name>.js                           one model's weights: float32 little-endian bytes, base64-encoded in
                                               a script (`rnnlabWeights("<name>", "...")`); the page checks their
                                               SHA-256 against the manifest and says plainly if a file is damaged

Every weight is written in the layout reader.js computes with (`weight_tensors`). The folder is written
beside DIR under a temporary name and renamed into place only when complete: a mistake or a crash leaves
no half-written export.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from rnnlab.data.batches import view_permutation
from rnnlab.errors import RnnlabError
from rnnlab.report.introspect import lstm_weights, recurrent_of
from rnnlab.serve.catalog import ServedModel

STATIC = Path(__file__).resolve().parent / "static"
PAGE_FILES = ("app.js", "reader.js", "style.css")
FORMAT = 1  # the manifest's format: reader.js refuses another


def weight_tensors(served: ServedModel) -> list[tuple[str, np.ndarray]]:
    """The model's weights as reader.js reads them: per layer k `Wx{k}` (D, G·H), `Wh{k}` (H, G·H), `bx{k}`,
    `bh{k}` (G·H,) with G gate blocks (rnn: 1; gru: r, z, n; LSTMs: i, f, o, g, one bias `bx{k}` summed and
    `bh{k}` zero as `lstm_gate_trace` has them), then the head `W` (H, C) and `b` (C,); all float32."""
    model = served.model
    recurrent = recurrent_of(model)
    tensors = []
    if served.lstm:
        for k, (Wx, Wh, b) in enumerate(lstm_weights(model)):
            tensors += [(f"Wx{k}", Wx), (f"Wh{k}", Wh), (f"bx{k}", b), (f"bh{k}", torch.zeros_like(b))]
    else:
        for k in range(recurrent.num_layers):
            tensors += [(f"Wx{k}", getattr(recurrent, f"weight_ih_l{k}").t()),
                        (f"Wh{k}", getattr(recurrent, f"weight_hh_l{k}").t()),
                        (f"bx{k}", getattr(recurrent, f"bias_ih_l{k}")), (f"bh{k}", getattr(recurrent, f"bias_hh_l{k}"))]
    tensors += [("W", model.fc.weight.t()), ("b", model.fc.bias)]
    return [(name, np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4")) for name, t in tensors]


def check_computable(served: ServedModel) -> None:
    """The page computes unidirectional rnn (tanh), gru and LSTMs with biases, read row by row; else one line."""
    recurrent = recurrent_of(served.model)
    kind = served.config.model
    why = None
    if served.steps % 28:
        why = f"it reads {served.steps} steps, which do not end on the picture's rows"
    elif kind in ("rnn", "gru"):
        expected = nn.RNN if kind == "rnn" else nn.GRU
        if type(recurrent) is not expected or recurrent.bidirectional or not recurrent.bias \
                or getattr(recurrent, "nonlinearity", "tanh") != "tanh" or not recurrent.batch_first:
            why = f"its recurrent layer ({type(recurrent).__name__}) is not the {kind} the page computes"
    elif not served.lstm:
        why = f"its model ({kind}) is not one the page computes"
    if why is None and not isinstance(getattr(served.model, "fc", None), nn.Linear):
        why = "it has no linear head (fc) on the last hidden state"
    if why:
        raise RnnlabError(f"{served.run_dir}: the page cannot compute this model in the browser: {why}; export "
                          "runs of --model rnn, gru, lstm or scratch-lstm (see rnnlab train --help)")


def file_names(models: list[ServedModel]) -> list[str]:
    """A weight file name per model: its name made safe for a URL and a file system, unique."""
    names = []
    for k, served in enumerate(models):
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", served.name).strip("-") or "model"
        names.append(f"{name}-{k + 1}.js" if f"{name}.js" in names else f"{name}.js")
    return names


def model_entry(served: ServedModel, file: str) -> tuple[dict, bytes]:
    """The manifest's entry for one model and its weight bytes (float32, little-endian, tensors one after another)."""
    tensors = weight_tensors(served)
    layout, offset = [], 0
    for name, values in tensors:
        layout.append({"name": name, "shape": list(values.shape), "offset": offset})
        offset += values.size
    data = b"".join(values.tobytes() for _, values in tensors)
    info = served.describe()
    info["run_dir"] = served.run_dir.name  # a published page names the run, not a path on this machine
    info.update(input_size=int(tensors[0][1].shape[0]), steps_per_row=served.steps_per_row,
                permutation=view_permutation(served.config.seed).tolist() if served.config.view == "permuted" else None,
                weights={"file": file, "dtype": "float32", "byte_order": "little", "bytes": len(data),
                         "sha256": hashlib.sha256(data).hexdigest(), "tensors": layout})
    return info, data


def export_page(models: list[ServedModel]) -> dict[str, bytes]:
    """Every file of the export (relative path → bytes) for `models`, nothing written yet."""
    for served in models:
        check_computable(served)
    entries, files = [], {}
    for served, file in zip(models, file_names(models)):
        entry, data = model_entry(served, file)
        entries.append(entry)
        encoded = base64.b64encode(data).decode("ascii")
        files[f"models/{file}"] = f'rnnlabWeights({json.dumps(served.name)}, "{encoded}");\n'.encode()
    manifest = {"format": FORMAT, "models": entries}
    text = json.dumps(manifest, separators=(",", ":"))
    files["models/manifest.json"] = (text + "\n").encode()
    files["models/manifest.js"] = f"window.RNNLAB_EXPORT = {text};\n".encode()
    files["index.html"] = exported_index().encode()
    for name in PAGE_FILES:
        files[name] = (STATIC / name).read_bytes()
    return files


def exported_index() -> str:
    """static/index.html with relative paths and the manifest's script before the page's."""
    page = (STATIC / "index.html").read_text()
    marker = '<script src="/static/reader.js" defer></script>'
    if marker not in page or "/static/" not in page:
        raise AssertionError("static/index.html changed: update exported_index")
    page = page.replace(marker, '<script src="models/manifest.js" defer></script>\n' + marker)
    return page.replace("/static/", "")


def check_target(out: Path, force: bool, runs: list[Path] = ()) -> None:
    """Refuse (one line) a file as DIR, a folder that is not empty unless `force`, and (even with `force`) a folder
    holding the current folder or a run being exported: replacing it would delete them."""
    if out.exists() and not out.is_dir():
        raise RnnlabError(f"--export {out}: is a file; give a folder for the page (a new one, or an empty one)")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise RnnlabError(f"--export {out}: the folder is not empty; give a new folder, or add --force to replace "
                          "its contents")
    if out.is_dir():
        inside = [p for p in (Path.cwd(), *runs) if p.resolve().is_relative_to(out.resolve())]
        if inside:
            raise RnnlabError(f"--export {out}: the folder holds {inside[0]}, which replacing it would delete; give "
                              "a folder of its own for the page")


def write_export(models: list[ServedModel], out: Path, *, force: bool = False) -> dict[str, bytes]:
    """Write the export into `out` as a whole (a temporary folder beside it, renamed into place)."""
    out = Path(out)
    check_target(out, force, [m.run_dir for m in models])
    files = export_page(models)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's folder is private; a published page is not
    try:
        for relative, data in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        old = None
        if out.exists():
            old = out.parent / f"{staging.name}.old"
            out.rename(old)
        staging.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return files


def export_command(models: list[ServedModel], out: str, force: bool, log: Callable[[str], None]) -> int:
    files = write_export(models, Path(out), force=force)
    total = sum(len(data) for data in files.values())
    weights = sum(len(data) for name, data in files.items() if name.startswith("models/"))
    log(f"wrote {out}: {len(files)} files, {total / 1e6:.2f} MB ({weights / 1e6:.2f} MB of models: "
        f"{', '.join(m.name for m in models)})")
    log(f"open {Path(out).resolve() / 'index.html'} in a browser (no server needed), or publish the folder "
        "(GitHub Pages: see the README)")
    return 0
