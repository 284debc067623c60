#!/usr/bin/env bash
# Runs the ResNet.ML engine benchmark and PyTorch (Debian's python3-torch, same model, batch, threads, SGD momentum)
# one after the other in the same run, and prints both JSON lines and the ratios (ours / PyTorch).
# Usage: bench/run_vs_pytorch.sh [arch] [batch] [threads] [steps]     (defaults: resnet20 128 2 20)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-resnet20}; batch=${2:-128}; threads=${3:-2}; steps=${4:-20}
peer=../shared/bench/pytorch_peer.py
[ -f "$peer" ] || peer=/work/shared/bench/pytorch_peer.py
dotnet build bench/ResNet.ML.Bench -c Release -v q -nologo >/dev/null
ours=$(dotnet bench/ResNet.ML.Bench/bin/Release/net10.0/ResNet.ML.Bench.dll --arch "$arch" --batch "$batch" --threads "$threads" --steps "$steps")
torch=$(/usr/bin/python3 "$peer" --arch "$arch" --batch "$batch" --threads "$threads" --steps "$steps")
echo "ours:    $ours"
echo "pytorch: $torch"
/usr/bin/python3 - "$ours" "$torch" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"train_ratio": round(o["train_images_per_sec"] / t["train_images_per_sec"], 2),
                  "infer_ratio": round(o["infer_images_per_sec"] / t["infer_images_per_sec"], 2),
                  "peak_rss_ratio": round(o["peak_rss_mb"] / t["peak_rss_mb"], 2)}))
PY
