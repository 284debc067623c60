#!/usr/bin/env bash
# bench/torchsharp_malloc_ab.sh SIZE CHANNELS PAIRS: the TorchSharp backend with the malloc thresholds (new default) / without (GLIBC_TUNABLES set to a no-op malloc tunable,
# which the backend respects) / PyTorch 1.13, interleaved; args: size channels pairs
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/ResNet.ML.Cli -c Release -v q -nologo >/dev/null
export OMP_WAIT_POLICY=ACTIVE
size=$1; ch=$2; pairs=$3
for ((i = 1; i <= pairs; i++)); do
  a=$(dotnet src/ResNet.ML.Cli/bin/Release/net10.0/resnet.dll benchmark --backend torchsharp --device cpu --json --arch resnet20 --batch-size 128 --threads 2 --steps 20 --image-size $size --channels $ch)
  b=$(GLIBC_TUNABLES=glibc.malloc.perturb=0 dotnet src/ResNet.ML.Cli/bin/Release/net10.0/resnet.dll benchmark --backend torchsharp --device cpu --json --arch resnet20 --batch-size 128 --threads 2 --steps 20 --image-size $size --channels $ch)
  c=$(/usr/bin/python3 ${PYTORCH_PEER:-../shared/bench/pytorch_peer.py} --arch resnet20 --batch 128 --threads 2 --steps 20 --size $size --channels $ch)
  echo "pair $i tuned:   $a"; echo "pair $i untuned: $b"; echo "pair $i pytorch: $c"
done
