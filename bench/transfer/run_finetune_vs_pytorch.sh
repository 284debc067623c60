#!/usr/bin/env bash
# Fine-tuning throughput of the network dnn-resnet18 maps onto (resnet18 blocks=2,2,2,3, every layer training, SGD
# momentum) at 224 and 96 pixels: `resnet benchmark` (managed engine) and PyTorch 1.13 (pytorch_finetune_peer.py, the
# same torchvision-layout network) alternately in one run, then the median of the per-pair ratios (> 1 = ours faster).
# Usage: bench/transfer/run_finetune_vs_pytorch.sh [sizes] [batch] [threads] [steps] [pairs]   (defaults: "224 96" 32 2 10 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=${1:-"224 96"}; batch=${2:-32}; threads=${3:-2}; steps=${4:-10}; pairs=${5:-3}
dotnet build src/ResNet.ML.Cli -c Release -v q -nologo >/dev/null
for size in $sizes; do
  lines=()
  for ((i = 1; i <= pairs; i++)); do
    ours=$(dotnet src/ResNet.ML.Cli/bin/Release/net10.0/resnet.dll benchmark --json --arch "resnet18 blocks=2,2,2,3" \
      --image-size "$size" --channels 3 --batch-size "$batch" --threads "$threads" --steps "$steps")
    torch=$(/usr/bin/python3 bench/transfer/pytorch_finetune_peer.py --size "$size" --batch "$batch" --threads "$threads" --steps "$steps")
    echo "size $size pair $i ours:    $ours"
    echo "size $size pair $i pytorch: $torch"
    lines+=("$ours" "$torch")
  done
  /usr/bin/python3 - "$size" "${lines[@]}" <<'PY'
import json, statistics, sys
rows = [json.loads(s) for s in sys.argv[2:]]
pairs = list(zip(rows[0::2], rows[1::2]))
r = lambda k: [o[k] / t[k] for o, t in pairs]
print(json.dumps({"size": int(sys.argv[1]), "pairs": len(pairs),
                  "ours_train_median": statistics.median(o["train_images_per_sec"] for o, _ in pairs),
                  "pytorch_train_median": statistics.median(t["train_images_per_sec"] for _, t in pairs),
                  "train_ratio": round(statistics.median(r("train_images_per_sec")), 2),
                  "train_ratio_range": [round(min(r("train_images_per_sec")), 2), round(max(r("train_images_per_sec")), 2)],
                  "infer_ratio": round(statistics.median(r("infer_images_per_sec")), 2),
                  "peak_rss_ratio": round(statistics.median(r("peak_rss_mb")), 2)}))
PY
done
