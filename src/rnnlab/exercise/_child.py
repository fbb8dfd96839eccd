"""Runs a student's file in its own process, under limits; the parent judges what it returns.

    python -I _child.py functions STUDENT_FILE SCRATCH TIME_LIMIT MEMORY_LIMIT CPU_LIMIT
    python -I _child.py train     STUDENT_FILE SCRATCH TIME_LIMIT MEMORY_LIMIT CPU_LIMIT

The parent starts it by path, from an empty working folder inside SCRATCH. `functions` reads
SCRATCH/plan.json and SCRATCH/inputs.npz, calls each function of the plan in order and appends one
JSON line per event to SCRATCH/results.jsonl, with its outputs (and the numerical gradient of the
forward, for a backward function) in SCRATCH/<name>.npz. It imports nothing but the standard library
and NumPy, so it starts in about a second. `train` imports rnnlab, appends its progress to
SCRATCH/progress.txt (the parent shows it as it comes) and writes SCRATCH/train.json.

The limits are for honest mistakes (a loop that never ends, an allocation that never stops, a file
that grows without end): they are not a sandbox. The file runs as the same user with the same
files, network and environment, and anything it does outside this process is not undone.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import signal
import sys
import traceback
import types

OUTPUT_FILE_LIMIT = 256 << 20  # bytes any one file written here (or by the student's code) may reach
PROGRESS = "progress.txt"  # `train` appends a line to SCRATCH/progress.txt every tenth of its steps


class TimeLimit(BaseException):
    """Raised by the alarm; a BaseException, so that a student's `except Exception:` does not swallow it."""


def set_limits(memory: int, cpu_seconds: int) -> None:
    """Address space, CPU time and file size of this process and everything it starts."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_FILE_LIMIT, OUTPUT_FILE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def on_alarm(signum, frame):
    raise TimeLimit()


def within(seconds: float, call, *args):
    """`call(*args)`, interrupted with TimeLimit after `seconds` of wall-clock time."""
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return call(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def student_frames(exc: BaseException, path: str) -> list[traceback.FrameSummary]:
    same = os.path.realpath(path)
    return [f for f in traceback.extract_tb(exc.__traceback__) if os.path.realpath(f.filename) == same]


def describe(exc: BaseException, path: str, limit: float) -> dict:
    """What went wrong, in the student's terms: a status, one line, and where in their file."""
    frames = student_frames(exc, path)
    where = {"line": frames[-1].lineno, "function": frames[-1].name} if frames else {}
    if isinstance(exc, SyntaxError) and os.path.realpath(exc.filename or "") == os.path.realpath(path):
        return {"status": "error", "kind": "SyntaxError", "message": f"SyntaxError: {exc.msg}",
                "line": exc.lineno, "function": None}
    if isinstance(exc, TimeLimit):
        return {"status": "timeout", "kind": "TimeLimit", "message": f"stopped after {limit:g} s", **where}
    if isinstance(exc, MemoryError):
        return {"status": "memory", "kind": "MemoryError", "message": "ran out of memory", **where}
    if isinstance(exc, SystemExit):
        return {"status": "error", "kind": "SystemExit", "message": f"called exit({exc.code!r})", **where}
    text = str(exc).strip().splitlines()
    return {"status": "error", "kind": type(exc).__name__,
            "message": f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": "), **where}


def load_student(path: str, limit: float) -> tuple[types.ModuleType | None, dict]:
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # the student's own helper modules, beside the file
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        within(limit, spec.loader.exec_module, module)
    except BaseException as exc:  # noqa: BLE001 - everything the file can do wrong is reported
        return None, describe(exc, path, limit)
    return module, {"status": "ok"}


def calls(module: types.ModuleType, name: str) -> list[str]:
    """The module's functions that `name` calls, directly or through others (by the names its code uses)."""
    seen, todo = set(), [name]
    while todo:
        code = getattr(getattr(module, todo.pop(), None), "__code__", None)
        for used in code.co_names if code else ():
            if used not in seen and isinstance(getattr(module, used, None), types.FunctionType):
                seen.add(used)
                todo.append(used)
    return sorted(seen - {name})


class Log:
    def __init__(self, path: str):
        self.handle = open(path, "a", encoding="utf-8")

    def write(self, **event) -> None:
        self.handle.write(json.dumps(event) + "\n")
        self.handle.flush()


def as_items(result, expected: int) -> list:
    if isinstance(result, (tuple, list)) and expected > 1:
        return list(result)
    return [result]


def item_info(item) -> dict:
    import numpy as np

    info = {"type": type(item).__name__}
    if isinstance(item, (np.ndarray, np.generic, float, int)) and not isinstance(item, bool):
        array = np.asarray(item)
        info.update(shape=list(array.shape), dtype=str(array.dtype))
    return info


def numerical_gradients(forward, args: list, wrt: list[int], upstream: list, n_outputs: int, step: float = 1e-4):
    """d/d args[k] of Σ_j sum(output_j · upstream_j) for each k in `wrt`: the five-point centred stencil.

    (f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)) / 12h has an O(h^4) error, far below the checker's tolerance.
    """
    import numpy as np

    def value(values):
        out = as_items(forward(*[v.copy() for v in values]), n_outputs + 1)[:n_outputs]
        return sum(float(np.sum(np.asarray(o, dtype=np.float64) * u)) for o, u in zip(out, upstream))

    grads = {}
    for k in wrt:
        values = list(args)
        x = values[k] = args[k].copy()
        grad = np.zeros_like(x)
        flat, gflat = x.reshape(-1), grad.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            f = {}
            for m in (-2, -1, 1, 2):
                flat[j] = old + m * step
                f[m] = value(values)
            flat[j] = old
            gflat[j] = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * step)
        grads[k] = grad
    return grads


def written_or_not(function, name: str, args: list, path: str, limit: float) -> str:
    """A backward function with no forward cache to run on: "not written" if it raises NotImplementedError at once."""
    try:
        within(limit, function, *args, None)
    except NotImplementedError as exc:
        if describe(exc, path, limit).get("function") == name:
            return "not written"
    except BaseException:  # noqa: BLE001 - anything else: it is written, and needs a cache
        pass
    return "no cache"


def run_functions(path: str, scratch: str, limit: float) -> int:
    import numpy as np

    log = Log(os.path.join(scratch, "results.jsonl"))
    with open(os.path.join(scratch, "plan.json"), encoding="utf-8") as handle:
        plan = json.load(handle)
    with np.load(os.path.join(scratch, "inputs.npz")) as saved:
        inputs = {key: saved[key] for key in saved.files}
    module, status = load_student(path, limit)
    if module is None:
        log.write(event="import", **status)
        return 0
    defined = [step["name"] for step in plan if isinstance(getattr(module, step["name"], None), types.FunctionType)]
    log.write(event="import", status="ok", defined=defined, calls={name: calls(module, name) for name in defined})
    caches = {}
    for step in plan:
        name = step["name"]
        if name not in defined:
            continue
        log.write(event="start", name=name)
        function = getattr(module, name)
        args = [inputs[key].copy() for key in step["args"]]
        if step["kind"] == "backward":
            if step["forward"] not in caches:  # still worth knowing: written yet, or not?
                log.write(event="done", name=name, status=written_or_not(function, name, args, path, limit))
                continue
            args.append(caches[step["forward"]])
        expected = step["returns"]
        try:
            result = within(limit, function, *args)
        except BaseException as exc:  # noqa: BLE001
            info = describe(exc, path, limit)
            if isinstance(exc, NotImplementedError) and info.get("function") == name:
                info["status"] = "not written"
            log.write(event="done", name=name, **info)
            continue
        items = as_items(result, expected)
        arrays = {}
        for k, item in enumerate(items[: step["outputs"]]):
            if "shape" in item_info(item) and np.asarray(item).dtype.kind in "biuf":  # numbers only: no pickles
                arrays[f"out{k}"] = np.asarray(item)
        done = {"event": "done", "name": name, "status": "ok", "returned": len(items),
                "items": [item_info(item) for item in items[: step["outputs"]]]}
        if step["kind"] == "forward" and len(items) == expected:
            caches[name] = items[-1]
        if step["kind"] == "backward" and step.get("numerical"):
            forward = getattr(module, step["forward"])
            forward_args = [inputs[key] for key in step["forward_args"]]
            upstream = [inputs[key] for key in step["args"]]
            try:
                grads = within(limit, numerical_gradients, forward, forward_args, step["wrt"], upstream,
                               len(upstream))
                for k, grad in grads.items():
                    arrays[f"num{k}"] = grad
            except BaseException as exc:  # noqa: BLE001
                done["numerical"] = describe(exc, path, limit)["message"]
        np.savez(os.path.join(scratch, f"{name}.npz"), **arrays)
        log.write(**done)
    return 0


def run_training(path: str, scratch: str, limit: float) -> int:
    import numpy as np

    # the rnnlab this file belongs to (…/rnnlab/exercise/_child.py), installed or not
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from rnnlab.exercise.training import TrainingRecipe, train_and_evaluate

    out = os.path.join(scratch, "train.json")
    module, status = load_student(path, limit)
    if module is None:
        result = status
    else:
        with open(os.path.join(scratch, "recipe.json"), encoding="utf-8") as handle:
            recipe = TrainingRecipe(**json.load(handle))
        with np.load(os.path.join(scratch, "data.npz")) as data:
            arrays = [data[key] for key in ("train_images", "train_labels", "test_images", "test_labels")]
        with open(os.path.join(scratch, PROGRESS), "a", encoding="utf-8") as handle:
            def progress(line: str) -> None:  # the parent shows these lines while it waits
                handle.write(line + "\n")
                handle.flush()

            try:
                result = within(limit, train_and_evaluate, module.lstm_forward, module.lstm_backward, *arrays, recipe,
                                1, progress)
            except BaseException as exc:  # noqa: BLE001
                result = describe(exc, path, limit)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return 0


def main(argv: list[str]) -> int:
    mode, path, scratch, limit, memory, cpu = argv
    set_limits(int(memory), int(cpu))
    signal.signal(signal.SIGALRM, on_alarm)
    run = {"functions": run_functions, "train": run_training}[mode]
    return run(path, scratch, float(limit))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
