#!/usr/bin/env bash
# Alternates two builds of the engine benchmark (A, B) on the same settings and prints the median of the per-pair
# training-throughput ratios B / A: a before/after of an engine change on a machine whose speed swings minute to minute.
# Usage: bench/ab_builds.sh A/ResNet.ML.Bench.dll B/ResNet.ML.Bench.dll [pairs] [extra benchmark arguments...]
# (e.g. copy bench/ResNet.ML.Bench/bin/Release/net10.0 aside before a change, rebuild after it, then compare).
set -euo pipefail
a=$1; b=$2; pairs=${3:-6}; shift 2; [ $# -gt 0 ] && shift
rate() { dotnet "$1" --arch resnet20 --batch 128 --threads 2 --steps 12 "${@:2}" |
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["train_images_per_sec"])'; }
for ((i = 0; i < pairs; i++)); do echo "$(rate "$a" "$@") $(rate "$b" "$@")"; done | /usr/bin/python3 -c '
import statistics, sys
pairs = [tuple(map(float, line.split())) for line in sys.stdin]
ratios = [b / a for a, b in pairs]
print("A train img/s:", [a for a, _ in pairs]); print("B train img/s:", [b for _, b in pairs])
print(f"B / A per pair: median {statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}")'
