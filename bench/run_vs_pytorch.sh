#!/usr/bin/env bash
# Runs the ResNet.ML engine benchmark and PyTorch (Debian's python3-torch, same model, batch, threads, SGD momentum)
# alternately in the same run, prints every JSON line and the median of the per-pair ratios (ours / PyTorch, > 1 = ours
# faster). Pairs are interleaved so that a change in the machine's load hits both sides alike.
# TORCHSHARP=1 adds the TorchSharp backend (libtorch 2.10 through `resnet benchmark --backend torchsharp --device cpu`,
# the trainer's own step: same model, batch, threads, SGD momentum) to every pair, as a third column.
# Usage: bench/run_vs_pytorch.sh [arch] [batch] [threads] [steps] [pairs]     (defaults: resnet20 128 2 20 3)
# Extra arguments for both sides (e.g. "--size 28 --channels 1") can be given in BENCH_ARGS. BASELINE=path/to/an/older/
# ResNet.ML.Bench.dll adds that build to every pair (before/after of an engine change, beside PyTorch in the same run).
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-resnet20}; batch=${2:-128}; threads=${3:-2}; steps=${4:-20}; pairs=${5:-3}
extra=${BENCH_ARGS:-}
peer=../shared/bench/pytorch_peer.py
[ -f "$peer" ] || peer=/work/shared/bench/pytorch_peer.py
dotnet build bench/ResNet.ML.Bench -c Release -v q -nologo >/dev/null
[ -n "${TORCHSHARP:-}" ] && dotnet build src/ResNet.ML.Cli -c Release -v q -nologo >/dev/null
lines=()
base=()
tsharp=()
for ((i = 1; i <= pairs; i++)); do
  if [ -n "${BASELINE:-}" ]; then
    # shellcheck disable=SC2086
    old=$(dotnet "$BASELINE" --arch "$arch" --batch "$batch" --threads "$threads" --steps "$steps" $extra)
    echo "pair $i baseline: $old"
    base+=("$old")
  fi
  # shellcheck disable=SC2086
  ours=$(dotnet bench/ResNet.ML.Bench/bin/Release/net10.0/ResNet.ML.Bench.dll --arch "$arch" --batch "$batch" --threads "$threads" --steps "$steps" $extra)
  # shellcheck disable=SC2086
  torch=$(/usr/bin/python3 "$peer" --arch "$arch" --batch "$batch" --threads "$threads" --steps "$steps" $extra)
  if [ -n "${TORCHSHARP:-}" ]; then
    # The CLI names the image size --image-size; BENCH_ARGS uses the bench's --size.
    # shellcheck disable=SC2086
    ts=$(dotnet src/ResNet.ML.Cli/bin/Release/net10.0/resnet.dll benchmark --backend torchsharp --device cpu --json --arch "$arch" \
      --batch-size "$batch" --threads "$threads" --steps "$steps" ${extra//--size/--image-size})
    echo "pair $i torchsharp: $ts"
    tsharp+=("$ts")
  fi
  echo "pair $i ours:    $ours"
  echo "pair $i pytorch: $torch"
  lines+=("$ours" "$torch")
done
/usr/bin/python3 - "${#base[@]}" "${base[@]}" "${#tsharp[@]}" "${tsharp[@]}" "${lines[@]}" <<'PY'
import json, statistics, sys
nb = int(sys.argv[1])
baseline = [json.loads(s) for s in sys.argv[2:2 + nb]]
nt = int(sys.argv[2 + nb])
tsharp = [json.loads(s) for s in sys.argv[3 + nb:3 + nb + nt]]
rows = [json.loads(s) for s in sys.argv[3 + nb + nt:]]
pairs = list(zip(rows[0::2], rows[1::2]))
def med(key, side): return round(statistics.median(p[side][key] for p in pairs), 1)
def ratio(key): return round(statistics.median(o[key] / t[key] for o, t in pairs), 2)
print(json.dumps({"pairs": len(pairs),
                  "ours_train_median": med("train_images_per_sec", 0), "pytorch_train_median": med("train_images_per_sec", 1),
                  "train_ratio": ratio("train_images_per_sec"),
                  "train_ratio_range": [round(min(o["train_images_per_sec"] / t["train_images_per_sec"] for o, t in pairs), 2),
                                        round(max(o["train_images_per_sec"] / t["train_images_per_sec"] for o, t in pairs), 2)],
                  "infer_ratio": ratio("infer_images_per_sec"), "peak_rss_ratio": ratio("peak_rss_mb")}))
if baseline:
    print(json.dumps({"baseline_train_median": round(statistics.median(b["train_images_per_sec"] for b in baseline), 1),
                      "baseline_train_ratio_vs_pytorch": round(statistics.median(b["train_images_per_sec"] / t["train_images_per_sec"] for b, (_, t) in zip(baseline, pairs)), 2),
                      "new_over_baseline_train": round(statistics.median(o["train_images_per_sec"] / b["train_images_per_sec"] for b, (o, _) in zip(baseline, pairs)), 2),
                      "new_over_baseline_infer": round(statistics.median(o["infer_images_per_sec"] / b["infer_images_per_sec"] for b, (o, _) in zip(baseline, pairs)), 2)}))
if tsharp:
    print(json.dumps({"torchsharp_train_median": round(statistics.median(t["train_images_per_sec"] for t in tsharp), 1),
                      "torchsharp_infer_median": round(statistics.median(t["infer_images_per_sec"] for t in tsharp), 1),
                      "torchsharp_over_pytorch_train": round(statistics.median(s["train_images_per_sec"] / t["train_images_per_sec"] for s, (_, t) in zip(tsharp, pairs)), 2),
                      "ours_over_torchsharp_train": round(statistics.median(o["train_images_per_sec"] / s["train_images_per_sec"] for s, (o, _) in zip(tsharp, pairs)), 2),
                      "torchsharp_peak_rss_mb_median": round(statistics.median(t["peak_rss_mb"] for t in tsharp), 1)}))
PY
