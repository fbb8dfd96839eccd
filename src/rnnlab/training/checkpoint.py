"""Checkpoints: written atomically, read safely, checked before --resume uses them.

Writing: a temporary file in the same folder, fsync, then `os.replace`, so a crash (even SIGKILL in
the middle of a write) leaves the previous checkpoint whole. Reading: `torch.load(weights_only=True)`,
so a file that needs arbitrary pickle (code that would run on load) is refused, never executed.
Everything saved is plain tensors, numbers, strings, lists and dicts for that reason.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import random
import re
import signal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from rnnlab.errors import CheckpointError, WriteFailed

CHECKPOINT_FORMAT = "rnnlab-checkpoint"  # training state, for --resume
MODEL_FORMAT = "rnnlab-model"  # final weights + config, for evaluate/predict/report


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file; mkstemp's 0600 must not survive the rename


def atomic_write_bytes(path: Path, data: bytes, exclusive: bool = False) -> None:
    """Write `data` to `path` so that `path` is always either the old file or the new one, whole.

    A temporary file of its own in the same folder (so two writers never collide), fsync, the usual
    permissions, then `os.replace`. Every file rnnlab writes (json, pt, png, html) goes through here.
    `exclusive`: a claim; `path` must not exist, and FileExistsError says another writer made it first.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            _crash_here_for_tests(handle, data)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        _put_in_place(tmp, path, exclusive)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except FileExistsError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    except OSError as exc:  # a full or read-only disk, a folder that went away: the old file is still whole
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise WriteFailed(f"cannot write {path}: {exc.strerror or exc}", exc.errno in (errno.ENOSPC, errno.EDQUOT)) \
            from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def _put_in_place(tmp: str, path: Path, exclusive: bool) -> None:
    """`os.replace`, or for a claim `os.link`, which fails when `path` exists: of two writers at the same moment
    exactly one succeeds, and its file is whole. Where there are no hard links, creating `path` with O_EXCL
    claims it before the replace (a crash between the two would leave it empty)."""
    if exclusive:
        try:
            os.link(tmp, path)
            os.unlink(tmp)
            return
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
                raise
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    os.replace(tmp, path)


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files that a killed write left in `folder` (only while no one else writes there)."""
    for leftover in Path(folder).glob(".*.tmp"):
        leftover.unlink(missing_ok=True)


_writes = 0


def _crash_here_for_tests(handle, data: bytes) -> None:
    """Test support only: with RNNLAB_TEST_CRASH_IN_WRITE=N the N-th atomic write of this process writes
    half its bytes and SIGKILLs the process, as a power cut would. The crash tests set it; nothing else does."""
    global _writes
    _writes += 1
    if os.environ.get("RNNLAB_TEST_CRASH_IN_WRITE") == str(_writes):
        handle.write(data[: len(data) // 2])
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def atomic_save(obj: dict, path: Path) -> None:
    """`torch.save` that never leaves a half-written file at `path`."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def safe_load(path: str | Path, expected_format: str | tuple[str, ...]) -> dict:
    """Load an rnnlab file with `weights_only=True`; any other file is refused with a clear error."""
    path = Path(path)
    expected = (expected_format,) if isinstance(expected_format, str) else expected_format
    what = " or ".join(expected)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; expected an {what} file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty; expected an {what} file")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic[:2] != b"PK" and magic[:1] != b"\x80":  # torch.save writes a zip archive (old torch: a pickle)
        raise CheckpointError(f"{path}: not a torch file (it does not start like one); expected an {what} file "
                              "such as model.pt or checkpoint.pt")
    try:
        with warnings.catch_warnings():  # torch warns about what it refuses; the refusal below says it in one line
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: refused: it needs arbitrary pickle code to load ({_what_it_runs(exc)}), "
                              "which rnnlab never runs; use a model.pt or checkpoint.pt that rnnlab wrote, or "
                              "train the run again") from None
    except Exception as exc:  # an untrusted file can fail to parse in many ways; none of them is a bug here
        text = str(exc).strip()
        detail = text.splitlines()[0].split(". ")[0].rstrip(".")[:160] if text else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable {what} file, truncated or damaged ({detail}); use an intact "
                              "copy, or train the run again") from None
    if not isinstance(obj, dict) or obj.get("format") not in expected:
        kind = obj.get("format") if isinstance(obj, dict) and "format" in obj else type(obj).__name__
        raise CheckpointError(f"{path}: this is a {kind!r} file, not an {what} file")
    return obj


def check_checkpoint(checkpoint: dict, path: Path) -> dict:
    """The parts of a training checkpoint that --resume reads, checked before any is used."""
    progress, ranks = checkpoint.get("progress"), checkpoint.get("ranks")
    problems = [
        not isinstance(checkpoint.get("model"), dict) and "'model' is not a state dict",
        not isinstance(checkpoint.get("optimizer"), dict) and "'optimizer' is not a state dict",
        not isinstance(progress, dict) and "'progress' is missing",
        not (isinstance(ranks, list) and ranks and all(isinstance(r, dict) for r in ranks)) and "'ranks' is empty",
        not (type(checkpoint.get("world_size", 1)) is int and checkpoint.get("world_size", 1) >= 1)
        and "'world_size' is not a positive whole number",
    ]
    if isinstance(progress, dict):
        problems += [not (type(progress.get(k)) is int and progress.get(k) >= 0) and f"progress '{k}' is not a count"
                     for k in ("epoch", "step")]
        problems.append(not isinstance(progress.get("epochs"), list) and "progress 'epochs' is not a list")
    problem = next((p for p in problems if p), None)
    if problem:
        raise CheckpointError(f"{path}: {problem}; the checkpoint is damaged: start the run again in a new folder")
    return checkpoint


def check_progress(checkpoint: dict, steps_per_epoch: int, epochs: int, path: Path) -> None:
    """The checkpoint's place must be one the run can be at. `check_checkpoint` cannot know an epoch's length
    (it depends on the data and batch size), so a step of 10**9 passed it and a nonsense epoch was logged."""
    progress = checkpoint["progress"]
    epoch, step, finished = progress["epoch"], progress["step"], len(progress["epochs"])
    problem = (epoch > epochs and f"its epoch {epoch + 1} is past the run's {epochs}"
               or finished != epoch and f"it holds {finished} finished epochs at epoch {epoch + 1}"
               or step > steps_per_epoch and f"its step {step} is past the epoch's {steps_per_epoch} steps"
               or epoch == epochs and step and f"its step {step} is past the run's last epoch")
    if problem:
        raise CheckpointError(f"{path}: {problem}; the checkpoint is damaged: start the run again in a new folder")


def check_finite_weights(state: dict, path: Path) -> None:
    """Refuse weights holding NaN or infinity: such a model answers the same class for every input, quietly."""
    bad = {name: int((~torch.isfinite(t)).sum()) for name, t in state.items() if t.is_floating_point()}
    bad = {name: count for name, count in bad.items() if count}
    if bad:
        where = ", ".join(list(bad)[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(f"{path}: its weights are not all finite ({sum(bad.values()):,} NaN or infinite values, "
                              f"in {where}); the run diverged or the file was damaged: train the run again, or use "
                              "an intact copy")


def _what_it_runs(exc: pickle.UnpicklingError) -> str:
    """What a refused file would have called, from torch's long message ("... GLOBAL posix.system ...")."""
    named = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return f"it would call {named.group(1)}" if named else "more than tensors, numbers and text"


def capture_rng() -> dict:
    """Every random state a run touches: torch (CPU, CUDA), NumPy and Python's `random`."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(mt), gauss],
    }


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
