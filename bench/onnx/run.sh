#!/usr/bin/env bash
# ONNX inference benchmark: our exported ResNet-20 and ResNet-50 against PyTorch's own ONNX export of the same weights,
# both scored by ONNX Runtime (OnnxPredictor, same session options), same run. Not a test.
# Usage: bench/onnx/run.sh [threads] [min-pairs] [min-seconds-per-model]     (defaults: 2 20 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${1:-2}; pairs=${2:-20}; seconds=${3:-20}
/usr/bin/python3 bench/onnx/make_bench_models.py 2>&1 | grep -v -i warn
dotnet build bench/onnx/OnnxBench -c Release -v q -nologo >/dev/null
dotnet bench/onnx/OnnxBench/bin/Release/net10.0/OnnxBench.dll --dir bench/onnx/out --threads "$threads" --pairs "$pairs" --seconds "$seconds"
