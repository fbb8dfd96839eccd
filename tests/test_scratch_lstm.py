"""ScratchLSTM: the sheet's LSTM with a hand-written backward, checked against gradcheck, nn.LSTM
and the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rnnlab.models.numpy_lstm import lstm_backward, lstm_forward
from rnnlab.models.registry import build_model
from rnnlab.models.scratch_lstm import ScratchLSTM, from_torch_lstm, sheet_to_torch_weights, to_torch_lstm

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


pytestmark = pytest.mark.usefixtures("one_thread")


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float, what: str = "") -> None:
    """max |actual - expected| <= tol * max(1, max |expected|)."""
    assert actual.shape == expected.shape, what
    scale = max(1.0, expected.abs().max().item())
    err = (actual - expected).abs().max().item()
    assert err <= tol * scale, f"{what}: max error {err:.3g} > {tol:g} x {scale:.3g}"


def test_parameters_in_the_sheets_layout():
    lstm = ScratchLSTM(28, 16, num_layers=2)
    names = dict(lstm.named_parameters())
    assert set(names) == {f"layers.{k}.{p}" for k in range(2) for p in ("Wx", "Wh", "b")}
    assert names["layers.0.Wx"].shape == (28, 64) and names["layers.1.Wx"].shape == (16, 64)
    assert names["layers.0.Wh"].shape == (16, 64) and names["layers.0.b"].shape == (64,)
    bound = 1 / 16**0.5
    assert all(p.abs().max() <= bound for p in lstm.parameters())


def test_gradcheck_float64():
    torch.manual_seed(0)
    lstm = ScratchLSTM(3, 4, num_layers=2).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(2, 2, 4, dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in lstm.named_parameters()]

    def f(x, h0, c0, *weights):  # the parameters as inputs, so that gradcheck checks their gradients too
        out, (h, c) = torch.func.functional_call(lstm, dict(zip(names, weights)), (x, (h0, c0)))
        return out, h, c

    weights = tuple(p.detach().clone().requires_grad_() for p in lstm.parameters())
    assert torch.autograd.gradcheck(f, (x, h0, c0, *weights), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_one_layer_and_default_state():
    torch.manual_seed(1)
    lstm = ScratchLSTM(2, 3, num_layers=1, batch_first=False).double()
    x = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)  # (T, N, D)
    assert torch.autograd.gradcheck(lambda x: lstm(x)[0], (x,), eps=1e-6, atol=1e-7)
    assert torch.autograd.gradcheck(lambda x: lstm(x)[1][1], (x,), eps=1e-6, atol=1e-7)


SHAPES = [  # (N, T, D, H, layers)
    (1, 1, 1, 1, 1),
    (3, 5, 4, 6, 1),
    (2, 7, 3, 5, 3),
    (64, 28, 28, 128, 2),
    (5, 2, 16, 8, 2),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,T,D,H,layers", SHAPES)
def test_matches_nn_lstm_after_from_torch_lstm(N, T, D, H, layers, device):
    torch.manual_seed(N * 1000 + T * 100 + D + H + layers)
    ref = nn.LSTM(D, H, layers, batch_first=True).to(device)
    scratch = from_torch_lstm(ref)
    x = torch.randn(N, T, D, device=device)
    h0 = torch.randn(layers, N, H, device=device)
    c0 = torch.randn(layers, N, H, device=device)
    inputs_ref = [t.clone().requires_grad_() for t in (x, h0, c0)]
    inputs_new = [t.clone().requires_grad_() for t in (x, h0, c0)]
    out_r, (h_r, c_r) = ref(inputs_ref[0], (inputs_ref[1], inputs_ref[2]))
    out_s, (h_s, c_s) = scratch(inputs_new[0], (inputs_new[1], inputs_new[2]))
    for a, e, what in ((out_s, out_r, "output"), (h_s, h_r, "h_n"), (c_s, c_r, "c_n")):
        assert_close(a, e, 1e-5, what)
    # a loss that reads every output, with weights of unit total size
    w = [torch.randn_like(t) / t.numel() ** 0.5 for t in (out_r, h_r, c_r)]
    sum((t * wi).sum() for t, wi in zip((out_r, h_r, c_r), w)).backward()
    sum((t * wi).sum() for t, wi in zip((out_s, h_s, c_s), w)).backward()
    for a, e, what in zip(inputs_new, inputs_ref, ("dx", "dh0", "dc0")):
        assert_close(a.grad, e.grad, 1e-5, what)
    for k, layer in enumerate(scratch.layers):
        g_ih, g_hh, g_b = sheet_to_torch_weights(layer.Wx.grad, layer.Wh.grad, layer.b.grad)
        assert_close(g_ih, getattr(ref, f"weight_ih_l{k}").grad, 1e-5, f"weight_ih_l{k}")
        assert_close(g_hh, getattr(ref, f"weight_hh_l{k}").grad, 1e-5, f"weight_hh_l{k}")
        assert_close(g_b, getattr(ref, f"bias_ih_l{k}").grad, 1e-5, f"bias_ih_l{k}")
        assert_close(g_b, getattr(ref, f"bias_hh_l{k}").grad, 1e-5, f"bias_hh_l{k}")


@pytest.mark.parametrize("mkl_is_fast", [True, False], ids=["mkl", "onednn"])
@pytest.mark.parametrize("N,T,D,H,layers", [(3, 5, 4, 6, 1), (64, 28, 28, 128, 2)])
def test_both_cpu_product_paths_match_nn_lstm(N, T, D, H, layers, mkl_is_fast, monkeypatch):
    """`_fast` sends the products to MKL on Intel CPUs and to oneDNN elsewhere: both give nn.LSTM's
    outputs and gradients, whichever CPU runs the test."""
    from rnnlab.models import _fast

    if not mkl_is_fast and not _fast._HAS_ONEDNN_LINEAR:
        pytest.skip("this torch has no oneDNN linear")
    monkeypatch.setattr(_fast, "_MKL_IS_FAST", mkl_is_fast)
    assert _fast.onednn_ok(torch.zeros(1)) is (not mkl_is_fast)
    test_matches_nn_lstm_after_from_torch_lstm(N, T, D, H, layers, "cpu")


def test_classifier_training_steps_match_nn_lstm():
    """The lab's step (logits from hn[-1], cross-entropy, backward, Adam), three times.

    Step one: the same loss and the same gradient of every parameter. Adam's first updates move
    every weight by about lr whatever the size of its gradient, so a gradient of 1e-9 against -1e-9
    flips a step: later steps are compared on what the models compute, loosely."""
    torch.manual_seed(2)
    ref = build_model("lstm", 28, 32, 2)
    new = build_model("scratch-lstm", 28, 32, 2)
    new.recurrent = from_torch_lstm(ref.recurrent)
    new.fc.load_state_dict(ref.fc.state_dict())
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in (ref, new)]
    for step in range(3):
        x, y = torch.randn(16, 28, 28), torch.randint(0, 10, (16,))
        losses = []
        for m, opt in zip((ref, new), opts):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(m(x), y)
            loss.backward()
            losses.append(loss.item())
        assert abs(losses[0] - losses[1]) < (1e-5 if step == 0 else 2e-3)
        if step > 0:
            for opt in opts:
                opt.step()
            continue
        for k, layer in enumerate(new.recurrent.layers):
            g_ih, g_hh, g_b = sheet_to_torch_weights(layer.Wx.grad, layer.Wh.grad, layer.b.grad)
            assert_close(g_ih, getattr(ref.recurrent, f"weight_ih_l{k}").grad, 1e-5, f"weight_ih_l{k}")
            assert_close(g_hh, getattr(ref.recurrent, f"weight_hh_l{k}").grad, 1e-5, f"weight_hh_l{k}")
            assert_close(g_b, getattr(ref.recurrent, f"bias_hh_l{k}").grad, 1e-5, f"bias_l{k}")
        assert_close(new.fc.weight.grad, ref.fc.weight.grad, 1e-5, "fc.weight")
        for opt in opts:
            opt.step()
    x = torch.randn(4, 28, 28)
    assert_close(new(x), ref(x), 1e-2, "logits after three steps")


def test_to_torch_lstm_round_trip():
    torch.manual_seed(3)
    scratch = ScratchLSTM(5, 7, num_layers=3, dropout=0.25)
    lstm = to_torch_lstm(scratch)
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.batch_first, lstm.dropout) == (5, 7, 3, True, 0.25)
    for k in range(3):
        assert torch.count_nonzero(getattr(lstm, f"bias_hh_l{k}")) == 0
    back = from_torch_lstm(lstm)
    for (name, p), q in zip(scratch.named_parameters(), back.parameters()):
        assert torch.equal(p, q), name
    scratch.eval(), lstm.eval()
    x = torch.randn(4, 6, 5)
    (o1, (h1, c1)), (o2, (h2, c2)) = scratch(x), lstm(x)
    assert_close(o1, o2, 1e-5, "output")
    assert_close(h1, h2, 1e-5, "h_n")
    assert_close(c1, c2, 1e-5, "c_n")


def test_gate_order_is_mapped_not_just_transposed():
    torch.manual_seed(4)
    lstm = nn.LSTM(3, 4, 1, batch_first=True)
    scratch = from_torch_lstm(lstm)
    H = 4
    # sheet's o block (columns 2H:3H) is torch's o block (rows 3H:4H); sheet's g is torch's g (rows 2H:3H)
    assert torch.equal(scratch.layers[0].Wx[:, 2 * H : 3 * H], lstm.weight_ih_l0[3 * H :].t())
    assert torch.equal(scratch.layers[0].Wx[:, 3 * H :], lstm.weight_ih_l0[2 * H : 3 * H].t())
    assert torch.allclose(scratch.layers[0].b[3 * H :], lstm.bias_ih_l0[2 * H : 3 * H] + lstm.bias_hh_l0[2 * H : 3 * H])


def test_agrees_with_numpy_reference_float64():
    torch.manual_seed(5)
    N, T, D, H, L = 3, 6, 4, 5, 2
    scratch = ScratchLSTM(D, H, L).double()
    x = torch.randn(N, T, D, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(L, N, H, dtype=torch.float64)
    out, (h_n, _) = scratch(x, (h0, torch.zeros_like(h0)))
    dout = torch.randn_like(out)
    (out * dout).sum().backward()

    layer_in, caches = x.detach().numpy(), []
    for k, layer in enumerate(scratch.layers):
        params = [p.detach().numpy() for p in (layer.Wx, layer.Wh, layer.b)]
        layer_in, cache = lstm_forward(layer_in, h0[k].numpy(), *params)
        caches.append(cache)
    np.testing.assert_allclose(out.detach().numpy(), layer_in, rtol=0, atol=1e-6)
    np.testing.assert_allclose(h_n[-1].detach().numpy(), layer_in[:, -1], rtol=0, atol=1e-6)

    dh = dout.numpy()
    for k in range(L - 1, -1, -1):
        dh, _, dWx, dWh, db = lstm_backward(dh, caches[k])
        layer = scratch.layers[k]
        for mine, ref in ((layer.Wx.grad, dWx), (layer.Wh.grad, dWh), (layer.b.grad, db)):
            np.testing.assert_allclose(mine.numpy(), ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), dh, rtol=0, atol=1e-6)


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(6)
    lstm = ScratchLSTM(4, 8, num_layers=2, dropout=0.5)
    x = torch.randn(5, 6, 4)
    lstm.eval()
    out_eval, _ = lstm(x)
    no_dropout = ScratchLSTM(4, 8, num_layers=2)
    no_dropout.load_state_dict(lstm.state_dict())
    assert torch.equal(out_eval, no_dropout(x)[0])
    lstm.train()
    out_a, _ = lstm(x)
    out_b, _ = lstm(x)
    assert not torch.allclose(out_a, out_eval) and not torch.allclose(out_a, out_b)
    out_a.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in lstm.parameters())
    single = ScratchLSTM(4, 8, num_layers=1, dropout=0.5).train()  # nothing between layers: no dropout
    assert torch.equal(single(x)[0], single(x)[0])


def test_autocast_bfloat16_on_cpu():
    torch.manual_seed(7)
    model = build_model("scratch-lstm", 28, 32, 2)
    x, y = torch.randn(8, 28, 28), torch.randint(0, 10, (8,))
    reference = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, (h_n, c_n) = model.recurrent(x)
        assert out.dtype == torch.bfloat16 and h_n.dtype == torch.bfloat16
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.float(), y)
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in model.parameters())
    assert (logits.float() - reference).abs().max().item() < 0.1


def test_interface_like_nn_lstm():
    torch.manual_seed(8)
    ref = nn.LSTM(3, 5, 2, batch_first=False)
    scratch = from_torch_lstm(ref)
    assert scratch.batch_first is False
    x = torch.randn(4, 2, 3)  # (T, N, D)
    out, (h, c) = scratch(x)
    out_r, (h_r, c_r) = ref(x)
    assert out.shape == (4, 2, 5) and h.shape == c.shape == (2, 2, 5)
    assert_close(out, out_r, 1e-5, "time-major output")
    out_u, (h_u, c_u) = scratch(x[:, 0])  # unbatched (T, D)
    assert out_u.shape == (4, 5) and h_u.shape == (2, 5)
    assert_close(out_u, out_r[:, 0], 1e-5, "unbatched output")
    with pytest.raises(ValueError):
        scratch(x, (torch.zeros(1, 2, 5), torch.zeros(1, 2, 5)))
    model = build_model("scratch-lstm", 28, 16, 2)
    assert isinstance(model.recurrent, ScratchLSTM)
    assert model(torch.randn(3, 28, 28)).shape == (3, 10)
    assert model.logits_per_step(torch.randn(3, 28, 28)).shape == (3, 28, 10)


def test_outputs_and_graphs_survive_other_calls():
    """Buffers are reused between calls only when nothing (outputs, saved graphs) holds them."""
    torch.manual_seed(9)
    lstm = ScratchLSTM(4, 6, 2)
    x1, x2 = torch.randn(3, 5, 4), torch.randn(3, 5, 4)
    lstm(x1)[0].sum().backward()
    fresh = [p.grad.clone() for p in lstm.parameters()]
    lstm.zero_grad()

    out1, (h1, _) = lstm(x1)
    kept, kept_h = out1.detach().clone(), h1.detach().clone()
    lstm(x2)[0].sum().backward()  # another forward and backward while out1's graph is alive
    lstm.zero_grad()
    assert torch.equal(out1, kept) and torch.equal(h1, kept_h)
    out1.sum().backward()
    for a, b in zip(fresh, (p.grad for p in lstm.parameters())):
        assert torch.equal(a, b)


def test_benchmark_script_runs(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lstm_step.py"
    spec = importlib.util.spec_from_file_location("lstm_step", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--steps", "2", "--repeats", "1", "--warmup", "1", "--batch", "8", "--hidden", "16",
                          "--threads", "1"])
    printed = capsys.readouterr().out
    assert "| nn.LSTM" in printed and "ScratchLSTM / nn.LSTM" in printed
    assert result["ratio_scratch"] > 0 and result["ratio_numpy"] > 0


def _benchmark_module(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_version_and_kernel_benchmarks_run(capsys):
    """benchmarks/scratch_versions.py loads ScratchLSTM from git (here: the commit that had the workspace, and
    the working tree), every version computing nn.LSTM's first loss; benchmarks/lstm_kernels.py prints its table."""
    versions = _benchmark_module("scratch_versions")
    if versions.source("501fa1e", "scratch_lstm.py") is None:
        pytest.skip("no git history here")
    result = versions.measure(["501fa1e", "WORKTREE"], tuned=False, threads=1, steps=1, repeats=1)
    losses = result["first_loss"]
    assert losses["501fa1e"] == pytest.approx(losses["nn.LSTM"], abs=1e-5)
    assert losses["WORKTREE"] == pytest.approx(losses["nn.LSTM"], abs=1e-5)
    assert set(result["ratio"]) == {"nn.LSTM", "501fa1e", "WORKTREE"}
    _benchmark_module("lstm_kernels").main(["--calls", "2"])
    assert "torch.tanh" in capsys.readouterr().out


def test_scratch_lstm_learns_real_digits_through_the_cli(tmp_path, mnist_dir):
    """`rnnlab train --model scratch-lstm` (the sheet's 2-layer, 128-unit LSTM on the hand-written backward)
    learns real MNIST in one short epoch (200 steps). Its full-data 5-epoch accuracy over three seeds is a `make results`
    figure (docs/results.md), too long for the suite; exactness against nn.LSTM is asserted above."""
    import json

    from rnnlab.cli import main

    out = tmp_path / "scratch"
    assert main(["train", "--model", "scratch-lstm", "--epochs", "1", "--train-limit", "12800", "--test-limit", "1000",
                 "--data-dir", str(mnist_dir), "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    print("scratch-lstm, 12,800 images, 1 epoch:", metrics["test_accuracy"])
    assert metrics["test_accuracy"] >= 0.75  # chance is 0.10
