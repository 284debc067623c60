#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU, CUDA 12 drivers and the .NET 10 SDK; run from a clone as is:
#   bench/gpu_check.sh [epochs] [arch]          (defaults: 3 resnet20)
# 1. builds the CLI against the CUDA build of libtorch (-p:LibTorch=cuda: libtorch-cuda-12.8-linux-x64 instead of
#    libtorch-cpu-linux-x64; several GB of download),
# 2. trains on CUDA through TorchSharp (`resnet train --backend torchsharp --device cuda`) on the built-in
#    Fashion-MNIST subset and exports model.onnx,
# 3. scores the exported model with ONNX Runtime's CUDA execution provider (Microsoft.ML.OnnxRuntime.Gpu, no CPU
#    fallback) and with the CPU provider, and checks that both agree.
# NOT RUN HERE: the machine this was written on has no GPU and its NuGet registry does not serve the CUDA packages,
# so this script has never been executed end to end. Every step stops the script with the tool's own message.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-3}; arch=${2:-resnet20}
work=$(mktemp -d -t resnet-gpu-check-XXXXXX)
echo "working in $work"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "nvidia-smi not found (continuing)"

dotnet publish src/ResNet.ML.Cli -c Release -p:LibTorch=cuda -o "$work/cli" -v q -nologo
# The default restore (CPU libtorch) comes back with the next ordinary build; this one only wrote obj/ and $work.

"$work/cli/resnet" train --backend torchsharp --device cuda --epochs "$epochs" --arch "$arch" -o "$work/run"
test -s "$work/run/model.onnx"

mkdir -p "$work/score"
cat > "$work/score/score.cs" <<CS
#:package Microsoft.ML.OnnxRuntime.Gpu@1.31.0
#:project $(pwd)/src/ResNet.ML/ResNet.ML.csproj
using ResNet.ML.Data;
using ResNet.ML.Onnx;
var data = FashionMnist.LoadIdx("$(pwd)/data/fashion-mnist-subset");
int n = Math.Min(data.Count, 2048), sample = data.Channels * data.Height * data.Width;
var pixels = new float[n * sample];
for (int i = 0; i < n; i++) data.ReadPixels(i, pixels.AsSpan(i * sample, sample));
var labels = Enumerable.Range(0, n).Select(data.GetLabel).ToArray();
using var gpu = OnnxPredictor.Load("$work/run/model.onnx", new OnnxPredictorOptions { UseGpu = true, AllowCpuFallback = false });
using var cpu = OnnxPredictor.Load("$work/run/model.onnx");
var g = gpu.Score(pixels); var c = cpu.Score(pixels);
double maxDiff = 0; int correct = 0, agree = 0;
for (int i = 0; i < n; i++)
{
    var pg = g.ProbabilitiesOf(i); var pc = c.ProbabilitiesOf(i);
    int ag = 0, ac = 0;
    for (int k = 0; k < pg.Length; k++) { maxDiff = Math.Max(maxDiff, Math.Abs(pg[k] - pc[k])); if (pg[k] > pg[ag]) ag = k; if (pc[k] > pc[ac]) ac = k; }
    if (ag == labels[i]) correct++;
    if (ag == ac) agree++;
}
Console.WriteLine(\$"ORT {gpu.ExecutionProvider} vs {cpu.ExecutionProvider}: {n} images (training subset, seen in training), accuracy {(double)correct / n:P2}, top-1 agreement {(double)agree / n:P2}, max |probability difference| {maxDiff:E2}");
if (maxDiff > 1e-3 || agree < n * 0.999) { Console.Error.WriteLine("CUDA and CPU scores disagree."); return 1; }
return 0;
CS
# Outside the repository, so the repository's central package management does not apply to the script itself.
(cd "$work/score" && dotnet run score.cs)
echo "GPU check passed: trained on CUDA, exported $work/run/model.onnx, scored with ORT CUDA."
