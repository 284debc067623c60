#!/usr/bin/env bash
# PyTorch's time for ResNet.ML's fast recipe on Fashion-MNIST: runs bench/time_to_94_pytorch.py (PyTorch 1.13, Debian's
# python3-torch, 2 threads) on the same data as bench/time_to_94.sh, and prints the wall time from process start (data
# loading included) to the end of training (its model.onnx written, preprocessing and test-time flips in the graph)
# and the test accuracy with flips averaged as our ONNX graph averages them. The docstring of the .py lists where the
# peer knowingly differs from ResNet.ML.
# Usage: bench/time_to_94_pytorch.sh OUTDIR [SEED]      PEER_ARGS adds arguments to the script (e.g. PEER_ARGS="--epochs 7").
# Needs: apt-get install dataset-fashion-mnist python3-torch (a benchmark, never needed by the README's commands).
set -euo pipefail
out=${1:?usage: bench/time_to_94_pytorch.sh OUTDIR [SEED]}
seed=${2:-0}
data=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
[ -f "$data/t10k-images-idx3-ubyte.gz" ] || { echo "Fashion-MNIST not found in $data: apt-get install dataset-fashion-mnist (or set FASHION_MNIST)." >&2; exit 2; }
cd "$(dirname "$0")/.."
mkdir -p "$out"
# The script's timed region starts here, before the interpreter starts, as time_to_94.sh's starts before `resnet train`.
# shellcheck disable=SC2086
PEER_START=$(date +%s.%N) /usr/bin/python3 bench/time_to_94_pytorch.py --data "$data" --seed "$seed" --out "$out" ${PEER_ARGS:-} \
  | tee "$out/pytorch-peer.txt"
result=$(tail -n 1 "$out/pytorch-peer.txt")
wall=$(/usr/bin/python3 -c 'import json, sys; print(json.loads(sys.argv[1])["wall_seconds"])' "$result")
acc=$(/usr/bin/python3 -c 'import json, sys; print(json.loads(sys.argv[1])["test_accuracy_flips"])' "$result")
echo "time_to_94_pytorch: seed $seed, wall ${wall} s from start to end of training, test accuracy (flips): ${acc} %"
