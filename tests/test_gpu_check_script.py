"""scripts/gpu_check.py, the body of the GPU check, runs end to end (on the CPU here) and prints its table."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_script_on_cpu(tmp_path, mnist_dir):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--device", "cpu", "--epochs", "1",
         "--train-limit", "256", "--data-dir", str(mnist_dir), "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| check | result | detail |" in result.stdout
    rows = json.loads((tmp_path / "gpu_check.json").read_text())
    assert {"lab rnn fp32", "lab lstm fp32", "lab rnn bf16", "lab lstm bf16"} <= set(rows)
    from rnnlab.training.machine import native_bf16

    bf16 = rows["lab lstm bf16"][0]
    assert bf16.startswith("test ") if native_bf16(torch.device("cpu")) else bf16 == "skipped"
    forward_error = float(rows["lstm parity (max abs error)"][0].split()[-1])
    assert forward_error < 1e-5
