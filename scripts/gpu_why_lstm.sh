#!/usr/bin/env bash
# The 784-step point of docs/results.md's "Why the LSTM" (pixel MNIST, one pixel a step), on a machine with an
# NVIDIA GPU: the sweep's recipe (2 epochs, all 60,000 training images, Adam 1e-3, batch 64, gradient norm
# clipped at 1, LSTM forget-gate bias 1), seeds 0-2, then the summary and the gradient through time.
#
#   bash scripts/gpu_why_lstm.sh [MNIST_DIR] [SECONDS]
#
# MNIST_DIR holds the four IDX files (default ../shared/data/mnist). SECONDS (default: no limit) stops the
# training after that long; run the script again to finish it (the comparison resumes). The results land in
# $OUT/why-lstm-784 (OUT default runs/results). Where torch is not installed, make .venv first (`make install`).
# Further options go to compare (the last of a repeated option wins), into $OUT/$NAME: `NAME=why-lstm-784-1layer
# bash scripts/gpu_why_lstm.sh DIR 0 --num-layers 1 --epochs 5` is the recipe of the published 5-epoch anchor.
# `DEVICE=cpu bash scripts/gpu_why_lstm.sh DIR 60 --train-limit 640 --test-limit 200` tries it on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=${1:-../shared/data/mnist}
LIMIT=${2:-0}
shift $(( $# < 2 ? $# : 2 ))
DEVICE=${DEVICE:-cuda}
RUNS=${OUT:-runs/results}/${NAME:-why-lstm-784}
PY=python3
[ -x .venv/bin/python ] && ! $PY -c "import torch" 2>/dev/null && PY=.venv/bin/python
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
if [ -f "$RUNS/comparison.json" ]; then
  args=(--resume "$RUNS")
else
  args=(--models rnn,lstm,gru --steps 784 --seeds 0-2 --epochs 2 --clip-grad 1 --forget-bias 1 --device "$DEVICE"
        --jobs 3 --data-dir "$DATA_DIR" --out "$RUNS" "$@")
fi
echo "\$ rnnlab compare ${args[*]}"
started=$(date +%s)
timeout -s INT "$LIMIT" $PY -m rnnlab compare "${args[@]}" --quiet --no-report
echo "compare: exit $? after $(( $(date +%s) - started )) s"
rm -rf "$RUNS-summary"
$PY -m rnnlab summarize "$RUNS" --out "$RUNS-summary" --no-report
$PY -c "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'a CPU', '- torch', torch.__version__)" \
  > "$RUNS-summary/machine.txt"
# 64 images, not 256: the float64 unroll of 784 steps runs on the CPU, about a minute per run at 64 images
$PY -m rnnlab gradients "$RUNS"/rnn-seed0 "$RUNS"/lstm-seed0 "$RUNS"/gru-seed0 --images 64 --out "$RUNS-gradients"
