#!/usr/bin/env bash
# One short check for a machine with an NVIDIA GPU: the lab (RNN + LSTM, 5 epochs) on CUDA in fp32
# and bf16, nn.LSTM vs ScratchLSTM parity and speed on the GPU, one summary table at the end.
#
#   bash scripts/gpu_check.sh [MNIST_DIR] [EPOCHS]
#
# MNIST_DIR holds the four IDX files (default ../shared/data/mnist). Where that folder does not travel
# with the repo, copy the four .gz files into a git-ignored folder of the repo and pass it.
# `python scripts/gpu_check.py --device cpu --epochs 1 --train-limit 640` tries the script on a CPU.
#
# It installs nothing when the machine's python3 already has torch, torchvision, matplotlib and tqdm
# (GPU images usually do); otherwise it makes .venv from requirements.txt. rnnlab runs from src/.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${1:-../shared/data/mnist}
EPOCHS=${2:-5}
PY=python3
if ! $PY -c "import torch, torchvision, matplotlib, tqdm" 2>/dev/null; then
  python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt && PY=.venv/bin/python
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
$PY scripts/gpu_check.py --data-dir "$DATA_DIR" --epochs "$EPOCHS" --out "${OUT:-/tmp}/gpu_check"
