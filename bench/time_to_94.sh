#!/usr/bin/env bash
# Time to accuracy on Fashion-MNIST: trains the candidate fast recipe on Debian's dataset-fashion-mnist (all 60k training
# images unless VALIDATION_FRACTION is set), exports OUTDIR/model.onnx with test-time flips inside the graph, then scores
# that file with ONNX Runtime (`resnet evaluate`) on the official 10k test split. Prints the wall time from process start
# to the written ONNX file (data loading included; the build before it is not timed) and the test accuracy.
# Usage: bench/time_to_94.sh OUTDIR [SEED]      `resnet train` arguments in TRAIN_ARGS override the recipe's settings
# (e.g. TRAIN_ARGS="--arch resnet14 --epochs 7"); RECIPE names another recipe than fast; NO_TEST=1 skips the test split
# (for choosing settings on the validation split, VALIDATION_FRACTION=0.1).
# Needs: apt-get install dataset-fashion-mnist (a benchmark, never needed by the README's commands).
set -euo pipefail
out=${1:?usage: bench/time_to_94.sh OUTDIR [SEED]}
seed=${2:-0}
data=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
[ -f "$data/t10k-images-idx3-ubyte.gz" ] || { echo "Fashion-MNIST not found in $data: apt-get install dataset-fashion-mnist (or set FASHION_MNIST)." >&2; exit 2; }
cd "$(dirname "$0")/.."
dotnet build src/ResNet.ML.Cli -c Release -v q -nologo >/dev/null
resnet=(dotnet src/ResNet.ML.Cli/bin/Release/net10.0/resnet.dll)
# The recipe is the library's (TrainingRecipes.Fast; bench/BENCHMARKS.md "Time to 94 %" says how it was chosen).
recipe=(--recipe "${RECIPE:-fast}")
start=$(date +%s.%N)
# shellcheck disable=SC2086
"${resnet[@]}" train --data "$data" "${recipe[@]}" --seed "$seed" --validation-fraction "${VALIDATION_FRACTION:-0}" \
  --output "$out" --overwrite --plain ${TRAIN_ARGS:-}
end=$(date +%s.%N)
wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
if [ -n "${NO_TEST:-}" ]; then echo "time_to_94: seed $seed, wall ${wall} s from start to model.onnx (test split not looked at)"; exit 0; fi
"${resnet[@]}" evaluate --model "$out/model.onnx" --data "$data" --split Test --plain | tee "$out/test-evaluation.txt"
echo "time_to_94: seed $seed, wall ${wall} s from start to model.onnx, test accuracy (ONNX Runtime): $(grep -o -m1 '[0-9.]* *%' "$out/test-evaluation.txt" | head -1)"
