"""Why a student's function is probably wrong: known mistakes, tested one by one against its output.

Each known mistake is the reference with that one mistake made (`lstm_step_variant(order="ifgo")`,
`lstm_backward_variant(carry_dc=False)`, ...). A wrong function whose outputs equal one of those,
to the checker's tolerance, gets that mistake's hint. A gradient that equals the reference's
transposed, or scaled by the batch size N (or T, or -1), is named as such. Nothing matched: the
outputs that are right and wrong still say where to look.
"""

from __future__ import annotations

import itertools
from typing import Callable

import numpy as np

from rnnlab.models import numpy_lstm, numpy_rnn
from rnnlab.models.numpy_lstm import sigmoid

GATES = "ifog"  # the lab's order of the 4H columns


def rel_error(x, y, floor: float = 1e-8) -> float:
    """CS231n's relative error: max |x - y| / max(floor, |x| + |y|) (inf when the shapes differ)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        return float("inf")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(floor, np.abs(x) + np.abs(y))))


def reference_error(got, want) -> float:
    """`rel_error` against the reference, an entry a million times smaller than the largest compared in
    absolute terms (two float64 implementations differ there by round-off that no mistake looks like)."""
    scale = float(np.max(np.abs(want))) if np.size(want) else 0.0
    return rel_error(got, want, floor=max(1e-8, 1e-6 * scale))


def numerical_error(analytic, numerical) -> float:
    """`rel_error` against a numerical gradient, whose round-off (about 1e-12 of the function's size) would
    swamp the relative error of its tiniest entries: an entry 1e4 times smaller than the largest is
    compared in absolute terms instead."""
    scale = float(np.max(np.abs(numerical))) if np.size(numerical) else 0.0
    return rel_error(analytic, numerical, floor=max(1e-8, 1e-4 * scale))


# ----------------------------------------------------------------------------------------------
# The forward pass, with one mistake
# ----------------------------------------------------------------------------------------------


def lstm_step_variant(x, prev_h, prev_c, Wx, Wh, b, order=GATES, cell_tanh=True, g_sigmoid=False, forget="prev"):
    """One LSTM step as a student might write it: next_h, next_c (N, H).

    order: which gate each H-column block of a is read as ("ifgo": PyTorch's); cell_tanh: h = o tanh(c)
    or o c; g_sigmoid: g = σ(a_g) instead of tanh; forget: the cell state in f ⊙ (…): "prev" c_{t-1},
    "zero" (c_t before it is computed: zeros), "self" (c_t = i ⊙ g already, then f ⊙ c_t + i ⊙ g).
    """
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    block = {gate: a[:, k * H : (k + 1) * H] for k, gate in enumerate(order)}
    i, f, o = sigmoid(block["i"]), sigmoid(block["f"]), sigmoid(block["o"])
    g = sigmoid(block["g"]) if g_sigmoid else np.tanh(block["g"])
    c = {"prev": f * prev_c + i * g, "zero": i * g, "self": f * (i * g) + i * g}[forget]
    return o * (np.tanh(c) if cell_tanh else c), c


def lstm_sequence_variant(x, h0, Wx, Wh, b, use_h0=True, **mistake):
    """`lstm_forward`'s h (N, T, H), built from `lstm_step_variant` with `mistake`."""
    N, T, _ = x.shape
    h = np.empty((N, T, h0.shape[1]))
    prev_h, prev_c = (h0 if use_h0 else np.zeros_like(h0)), np.zeros_like(h0)
    for t in range(T):
        prev_h, prev_c = lstm_step_variant(x[:, t], prev_h, prev_c, Wx, Wh, b, **mistake)
        h[:, t] = prev_h
    return h


def rnn_step_variant(x, prev_h, Wx, Wh, b, activation=np.tanh):
    return activation(x @ Wx + prev_h @ Wh + b)


def rnn_sequence_variant(x, h0, Wx, Wh, b, use_h0=True, activation=np.tanh):
    N, T, _ = x.shape
    h = np.empty((N, T, h0.shape[1]))
    prev_h = h0 if use_h0 else np.zeros_like(h0)
    for t in range(T):
        prev_h = h[:, t] = rnn_step_variant(x[:, t], prev_h, Wx, Wh, b, activation)
    return h


def gate_order_text(order: str) -> str:
    names = ", ".join(order)
    if order == "ifgo":
        what = "PyTorch's nn.LSTM order i, f, g, o"
    else:
        swapped = [f"{GATES[k]}" for k in range(4) if order[k] != GATES[k]]
        what = f"{' and '.join(swapped)} swapped" if len(swapped) == 2 else f"the order {names}"
    return (f"the gates are read from a's column blocks in the order {names} ({what}); the lab's order is "
            f"i, f, o, g: i = σ(a[:, :H]), f = σ(a[:, H:2H]), o = σ(a[:, 2H:3H]), g = tanh(a[:, 3H:])")


FORGET_TEXT = ("the forget term uses c_t instead of c_{t-1}: c_t = f ⊙ c_{t-1} + i ⊙ g needs the previous "
               "cell state (prev_c), not the one being computed (and, over a sequence, each step's c_t must be "
               "carried to the next step)")


def lstm_forward_mistakes(sequence: bool) -> list[tuple[dict, str]]:
    mistakes = [(dict(order="".join(p)), gate_order_text("".join(p)))
                for p in itertools.permutations(GATES) if "".join(p) != GATES]
    mistakes += [
        (dict(cell_tanh=False), "h_t = o ⊙ c_t: the tanh on the cell is missing; h_t = o ⊙ tanh(c_t)"),
        (dict(g_sigmoid=True), "g uses σ: the candidate g is the one gate with tanh, g = tanh(a[:, 3H:]); "
                               "i, f and o use σ"),
        (dict(forget="zero"), FORGET_TEXT),
        (dict(forget="self"), FORGET_TEXT),
    ]
    if sequence:
        mistakes.append((dict(use_h0=False), "h0 is not used: the first step's previous hidden state is h0 "
                                             "(only the cell state starts at zero)"))
    return mistakes


def relu(a):
    return np.maximum(a, 0.0)


RNN_FORWARD_MISTAKES = [
    (dict(activation=lambda a: a), "the tanh is missing: h_t = tanh(x_t Wx + h_{t-1} Wh + b)"),
    (dict(activation=sigmoid), "σ instead of tanh: the vanilla RNN's nonlinearity is tanh"),
    (dict(activation=relu), "ReLU instead of tanh: the vanilla RNN's nonlinearity is tanh"),
]


def forward_variants(name: str, args: dict) -> list[tuple[list, str]]:
    """(outputs, hint) for each known mistake of the forward function `name` on `args`."""
    values = list(args.values())
    if name == "lstm_step_forward":
        return [(list(lstm_step_variant(*values, **m)), hint) for m, hint in lstm_forward_mistakes(False)]
    if name == "lstm_forward":
        return [([lstm_sequence_variant(*values, **m)], hint) for m, hint in lstm_forward_mistakes(True)]
    if name == "rnn_step_forward":
        return [([rnn_step_variant(*values, **m)], hint) for m, hint in RNN_FORWARD_MISTAKES]
    if name == "rnn_forward":
        mistakes = RNN_FORWARD_MISTAKES + [(dict(use_h0=False), "h0 is not used: the first step's previous "
                                                                 "hidden state is h0")]
        return [([rnn_sequence_variant(*values, **m)], hint) for m, hint in mistakes]
    return []


# ----------------------------------------------------------------------------------------------
# The backward pass, with one mistake (on the reference's cache)
# ----------------------------------------------------------------------------------------------

DC_TEXT = ("dc from the next step is not added: c_t reaches the loss through h_t and through c_{t+1}, so "
           "dc = dnext_c + dnext_h ⊙ o ⊙ (1 - tanh(c_t)^2)")
DC_SEQUENCE_TEXT = ("dc from the next step is not added: the cell state's gradient must be carried from step t+1 "
                    "back to step t (dprev_c of one step is dnext_c of the one before), and lstm_step_backward "
                    "must add dnext_c to dc")
DH_TEXT = ("dh from the upstream and from the next step are not summed: h_t feeds the layer above (dh[:, t]) "
           "and step t+1 (dprev_h of step t+1), so the step's dnext_h is dh[:, t] + dprev_h")


def lstm_step_backward_variant(dnext_h, dnext_c, step_cache, carry_dc=True, tanh_prime=True, da_order=GATES,
                               dWh_from_next=False):
    """`lstm_step_backward` on the reference's step cache, with one mistake."""
    x, prev_h, Wx, Wh, (i, f, o, g, prev_c, next_c, tanh_c) = step_cache
    dc = (dnext_c if carry_dc else 0.0) + dnext_h * o * ((1.0 - tanh_c * tanh_c) if tanh_prime else 1.0)
    blocks = {"i": dc * g * i * (1 - i), "f": dc * prev_c * f * (1 - f), "o": dnext_h * tanh_c * o * (1 - o),
              "g": dc * i * (1 - g * g)}
    da = np.concatenate([blocks[gate] for gate in da_order], axis=1)
    next_h = o * tanh_c
    return [da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, (next_h if dWh_from_next else prev_h).T @ da, da.sum(axis=0)]


def lstm_backward_variant(dh, cache, carry_dc=True, dh_mode="sum"):
    """`lstm_backward` on the reference's sequence cache, with one mistake.

    dh_mode: "sum" (right: dh[:, t] + dprev_h), "upstream" (dh[:, t] only), "next" (dprev_h only after the last step).
    """
    x, h0, Wx, Wh, h, cell_caches = cache
    N, T, D = x.shape
    dx = np.empty_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[1])
    dprev_h, dprev_c = np.zeros_like(h0), np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        prev_h = h0 if t == 0 else h[:, t - 1]
        dnext_h = {"sum": dh[:, t] + dprev_h, "upstream": dh[:, t],
                   "next": dh[:, t] if t == T - 1 else dprev_h}[dh_mode]
        dnext_c = dprev_c if carry_dc else np.zeros_like(dprev_c)
        grads = lstm_step_backward_variant(dnext_h, dnext_c, (x[:, t], prev_h, Wx, Wh, cell_caches[t]))
        dx[:, t], dprev_h, dprev_c = grads[:3]
        dWx, dWh, db = dWx + grads[3], dWh + grads[4], db + grads[5]
    return [dx, dprev_h, dWx, dWh, db]


def rnn_step_backward_variant(dnext_h, cache, square=True):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1.0 - (next_h * next_h if square else next_h))
    return [da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)]


def rnn_backward_variant(dh, cache, dh_mode="sum"):
    N, T, H = dh.shape
    dx = np.empty((N, T, cache[0][0].shape[1]))
    dWx, dWh, db = np.zeros_like(cache[0][2]), np.zeros_like(cache[0][3]), np.zeros(H)
    dprev_h = np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        dnext_h = {"sum": dh[:, t] + dprev_h, "upstream": dh[:, t],
                   "next": dh[:, t] if t == T - 1 else dprev_h}[dh_mode]
        dx[:, t], dprev_h, gWx, gWh, gb = numpy_rnn.rnn_step_backward(dnext_h, cache[t])
        dWx, dWh, db = dWx + gWx, dWh + gWh, db + gb
    return [dx, dprev_h, dWx, dWh, db]


def backward_variants(name: str, upstream: dict, forward_args: dict) -> list[tuple[list, str]]:
    """(outputs, hint) for each known mistake of the backward function `name` (on the reference's cache)."""
    up = list(upstream.values())
    fa = list(forward_args.values())
    if name == "lstm_step_backward":
        _, _, cache = numpy_lstm.lstm_step_forward(*fa)
        mistakes = [(dict(carry_dc=False), DC_TEXT),
                    (dict(tanh_prime=False), "dc misses tanh'(c_t): through h_t = o ⊙ tanh(c_t), dc gets "
                                             "dnext_h ⊙ o ⊙ (1 - tanh(c_t)^2)"),
                    (dict(dWh_from_next=True), "dWh uses next_h: it is h_{t-1}ᵀ da, with prev_h (the input of "
                                               "the step), as dWx is xᵀ da")]
        mistakes += [(dict(da_order="".join(p)), f"the gate gradients are put together in the order "
                                                 f"{', '.join(p)}: da's column blocks must follow the gates' "
                                                 f"order i, f, o, g, as a's do")
                     for p in itertools.permutations(GATES) if "".join(p) != GATES]
        return [(lstm_step_backward_variant(*up, cache, **m), hint) for m, hint in mistakes]
    if name == "lstm_backward":
        _, cache = numpy_lstm.lstm_forward(*fa)
        mistakes = [(dict(dh_mode="upstream"), DH_TEXT), (dict(dh_mode="next"), DH_TEXT),
                    (dict(carry_dc=False), DC_SEQUENCE_TEXT)]
        return [(lstm_backward_variant(*up, cache, **m), hint) for m, hint in mistakes]
    if name == "rnn_step_backward":
        _, cache = numpy_rnn.rnn_step_forward(*fa)
        return [(rnn_step_backward_variant(*up, cache, square=False),
                 "uses 1 - tanh(a) for the derivative of tanh: it is 1 - tanh(a)^2 = 1 - next_h^2")]
    if name == "rnn_backward":
        _, cache = numpy_rnn.rnn_forward(*fa)
        return [(rnn_backward_variant(*up, cache, dh_mode=m), DH_TEXT) for m in ("upstream", "next")]
    return []


# ----------------------------------------------------------------------------------------------
# Putting it together
# ----------------------------------------------------------------------------------------------


def matching_variant(got: list, variants: list[tuple[list, str]], tol: float) -> str | None:
    for outputs, hint in variants:
        if len(outputs) == len(got) and all(g is not None and rel_error(g, v) <= tol for g, v in zip(got, outputs)):
            return hint
    return None


def output_transform_hint(names: list[str], got: list, want: list, dims: dict, tol: float) -> str | None:
    """A wrong output that is the right one transposed, or scaled by N, T or -1, or all zeros."""
    N, T = dims["N"], dims.get("T")
    scales = [(1 / N, f"divided by N = {N} (the batch size)"), (N, f"multiplied by N = {N} (the batch size)")]
    if T:
        scales += [(1 / T, f"divided by T = {T} (the number of steps)"),
                   (T, f"multiplied by T = {T} (the number of steps)")]
    scales.append((-1.0, "with the wrong sign"))
    found: dict[str, list[str]] = {}
    for name, g, w in zip(names, got, want):
        if g is None or rel_error(g, w) <= tol:
            continue
        g, w = np.asarray(g, dtype=np.float64), np.asarray(w, dtype=np.float64)
        if w.ndim == 2 and g.shape == w.T.shape and rel_error(g, w.T) <= tol:
            found.setdefault("transposed", []).append(name)
            continue
        for scale, text in scales:
            if g.shape == w.shape and rel_error(g, scale * w) <= tol:
                found.setdefault(text, []).append(name)
                break
        else:
            if g.shape == w.shape and not np.any(g) and np.any(w):
                found.setdefault("all zeros", []).append(name)
    if not found:
        return None
    hints = []
    for what, items in found.items():
        if what == "transposed":
            hints.append(f"{', '.join(items)} {'is' if len(items) == 1 else 'are'} transposed: a weight's "
                         f"gradient has the weight's shape, dWx = xᵀ da is (D, N)·(N, ·) like Wx, "
                         f"dWh = h_{{t-1}}ᵀ da like Wh")
        elif what == "all zeros":
            hints.append(f"{', '.join(items)} {'is' if len(items) == 1 else 'are'} all zeros: not computed, or "
                         f"a buffer never filled?")
        elif "batch size" in what:
            hints.append(f"{', '.join(items)} {'is' if len(items) == 1 else 'are'} the right gradient {what}: a "
                         f"backward pass sums over the batch (.sum(axis=0), not .mean); the 1/N of a mean loss "
                         f"is already in the upstream gradient")
        elif "steps" in what:
            hints.append(f"{', '.join(items)} {'is' if len(items) == 1 else 'are'} the right gradient {what}: "
                         f"the weights' gradients are summed over the time steps")
        else:
            hints.append(f"{', '.join(items)} {'has' if len(items) == 1 else 'have'} the right size {what}")
    return "; ".join(hints)


def exception_hint(function: str, kind: str, message: str) -> str | None:
    """A hint from the exception the student's function raised."""
    width = "4H" if function.startswith("lstm") else "H"
    if kind == "ValueError" and ("matmul" in message or "aligned" in message or "mismatch" in message):
        return (f"a matrix product whose shapes do not fit: x (N, D) @ Wx (D, {width}) and prev_h (N, H) @ Wh "
                f"(H, {width}); backward: dx = da @ Wx.T, dWx = x.T @ da. Is a weight transposed?")
    if kind == "ValueError" and "broadcast" in message:
        return ("shapes that do not broadcast: print the shapes of the operands; b is "
                f"({width},), added to (N, {width}); gates are (N, H)")
    if kind in ("ValueError", "TypeError") and "unpack" in message:
        return ("a tuple unpacked into the wrong number of names: is the cache the backward unpacks the one its "
                "forward built, and does every function return what its docstring says?")
    if kind == "TypeError" and "NoneType" in message:
        return "something is None: a function without `return`?"
    if kind == "IndexError":
        return "an index out of range: x is (N, T, D), so step t is x[:, t]; h is (N, T, H)"
    if kind == "NameError":
        return "a name used before it is defined (a variable from another function, or a missing import?)"
    return None


def shape_hint(function: str, output: str, got: tuple, want: tuple, dims: dict) -> str:
    N, H = dims["N"], dims["H"]
    text = f"{output} has shape {got}, expected {want}"
    if function.startswith("lstm") and got == (N, 4 * H):
        return text + ": that is a, all four gates' activations (N, 4H); split it into i, f, o, g (N, H) each"
    if len(want) == 3 and got == (want[1], want[0], want[2]):
        return text + ": time first; h is (N, T, H), batch first (h[:, t] is step t)"
    if len(want) == 3 and got == (want[0], want[2]):
        return text + ": only the last step; h holds every step's hidden state, (N, T, H)"
    if len(want) == 2 and got == want[::-1]:
        return text + ": transposed"
    return text


def locate(function: str, names: list[str], errors: list[float], tol: float) -> str | None:
    """With no known mistake matched: which outputs are right, which wrong, and where that points."""
    wrong = [n for n, e in zip(names, errors) if e > tol]
    right = [n for n, e in zip(names, errors) if e <= tol]
    if not right or not wrong:
        return None
    if function == "lstm_step_forward" and right == ["next_c"]:
        return "next_c is right (so are i, f and g): look at next_h = o ⊙ tanh(next_c), and o = σ(a[:, 2H:3H])"
    if set(right) >= {"dx", "dprev_h"} or set(right) >= {"dx", "dh0"}:
        return (f"{', '.join(right)} right, so da is: look at how {', '.join(wrong)} "
                f"{'is' if len(wrong) == 1 else 'are'} formed from it "
                f"(dWx = xᵀ da, dWh = h_{{t-1}}ᵀ da, db = Σ da)")
    return f"right: {', '.join(right)}; wrong: {', '.join(wrong)}"


def diagnose(function: str, kind: str, names: list[str], got: list, want: list, args: dict, upstream: dict,
             dims: dict, tol: float) -> str | None:
    """The hint for a function whose outputs `got` differ from the reference's `want` (same shapes)."""
    variants: Callable[[], list] = (lambda: forward_variants(function, args)) if kind == "forward" else (
        lambda: backward_variants(function, upstream, args))
    return (matching_variant(got, variants(), tol)
            or output_transform_hint(names, got, want, dims, tol)
            or locate(function, names, [rel_error(g, w) for g, w in zip(got, want)], tol))
