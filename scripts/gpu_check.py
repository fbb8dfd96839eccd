"""The GPU check's body (run through scripts/gpu_check.sh): lab on CUDA in fp32 and bf16, LSTM parity and speed."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnlab.lab import compare
from rnnlab.training.machine import keep_freed_memory, native_bf16
from rnnlab.models.recurrent import RecurrentClassifier
from rnnlab.models.scratch_lstm import from_torch_lstm


def lab(data_dir: str, epochs: int, out: Path, device: str, train_limit: int | None) -> dict:
    rows = {}
    for precision in ("fp32", "bf16"):
        if precision == "bf16" and not native_bf16(torch.device(device)):  # e.g. an AVX2-only CPU: no bf16 LSTM
            for name in ("rnn", "lstm"):
                rows[f"lab {name} bf16"] = ("skipped", f"this {device} has no native bf16")
            continue
        settings = dict(data_dir=data_dir, epochs=epochs, device=device, precision=precision, train_limit=train_limit)
        started = time.perf_counter()
        summary = compare(["rnn", "lstm"], settings, out / precision, quiet=True)
        wall = time.perf_counter() - started
        for name, row in summary.items():
            rows[f"lab {name} {precision}"] = (f"test {100 * row['test_accuracy']:.2f}%",
                                               f"train {row['train_seconds']:.1f} s (lab wall {wall:.1f} s)")
    return rows


def lstm_parity_and_speed(device: str, steps: int = 50, repeats: int = 5) -> dict:
    torch.manual_seed(0)
    reference = torch.nn.LSTM(28, 128, 2, batch_first=True).to(device)
    scratch = from_torch_lstm(reference).to(device)
    x = torch.randn(64, 28, 28, device=device, requires_grad=True)
    out_ref, (h_ref, c_ref) = reference(x)
    out_s, (h_s, c_s) = scratch(x)
    forward_error = max((out_ref - out_s).abs().max().item(), (h_ref - h_s).abs().max().item(),
                        (c_ref - c_s).abs().max().item())
    grad_ref = torch.autograd.grad(out_ref.square().sum(), x)[0]
    grad_s = torch.autograd.grad(out_s.square().sum(), x)[0]
    grad_error = (grad_ref - grad_s).abs().max().item()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step_time(recurrent) -> float:
        model = RecurrentClassifier(recurrent, 128).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        xb, yb = torch.randn(64, 28, 28, device=device), torch.randint(0, 10, (64,), device=device)
        for _ in range(5):
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        sync()
        started = time.perf_counter()
        for _ in range(steps):
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        sync()
        return (time.perf_counter() - started) / steps

    ratios, ref_times, scratch_times = [], [], []
    for _ in range(repeats):  # interleaved
        t_ref, t_s = step_time(torch.nn.LSTM(28, 128, 2, batch_first=True)), step_time(from_torch_lstm(
            torch.nn.LSTM(28, 128, 2, batch_first=True)))
        ref_times.append(t_ref)
        scratch_times.append(t_s)
        ratios.append(t_s / t_ref)
    return {
        "lstm parity (max abs error)": (f"forward {forward_error:.2e}", f"input grad {grad_error:.2e}"),
        "lstm train step (batch 64)": (f"nn.LSTM {1e3 * statistics.median(ref_times):.2f} ms",
                                       f"ScratchLSTM {1e3 * statistics.median(scratch_times):.2f} ms, "
                                       f"median ratio {statistics.median(ratios):.2f}x"),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default="../shared/data/mnist")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("/tmp/gpu_check"))
    p.add_argument("--device", default="cuda", help="cuda (cpu only to try the script itself)")
    p.add_argument("--train-limit", type=int, default=None, help="first N training images (to try the script)")
    args = p.parse_args()
    keep_freed_memory()
    rows = {"device": (torch.cuda.get_device_name() if args.device == "cuda" else "cpu", f"torch {torch.__version__}")}
    rows.update(lstm_parity_and_speed(args.device, steps=50 if args.device == "cuda" else 3, repeats=5 if args.device == "cuda" else 1))
    rows.update(lab(args.data_dir, args.epochs, args.out, args.device, args.train_limit))
    width = max(len(k) for k in rows)
    print("\n| check | result | detail |\n| --- | --- | --- |")
    for key, (a, b) in rows.items():
        print(f"| {key:<{width}} | {a} | {b} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
