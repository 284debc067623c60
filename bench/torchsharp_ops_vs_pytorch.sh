#!/usr/bin/env bash
# Why the TorchSharp backend trains slower than PyTorch 1.13 on the same ResNet-20: times each operator of the step
# (3x3 convolutions at every shape, training-mode batch norm, ReLU, the residual add; forward and forward + backward)
# and the step's phases, on libtorch 2.10 through TorchSharp 0.107 (bench/TorchSharpOps) and on PyTorch 1.13
# (bench/torchsharp_ops_peer.py), alternately, ROUNDS times. Prints every JSON line, then a table: per operator the
# median milliseconds of each side, weighted by how many the network holds, and the ratio (TorchSharp / PyTorch).
# Usage: bench/torchsharp_ops_vs_pytorch.sh [batch] [threads] [size] [channels] [rounds]   (defaults: 128 2 28 1 3)
# Both sides spin their OpenMP threads (OMP_WAIT_POLICY=ACTIVE, libgomp's default) unless the caller sets it.
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-128}; threads=${2:-2}; size=${3:-28}; channels=${4:-1}; rounds=${5:-3}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-ACTIVE}
dotnet build bench/TorchSharpOps -c Release -v q -nologo >/dev/null
args=(--batch "$batch" --threads "$threads" --size "$size" --channels "$channels" --reps 7 --iters 10)
# The raw lines stay in OUT when it is given (a folder), else in a temporary folder removed at the end.
if [ -n "${OUT:-}" ]; then out=$OUT; mkdir -p "$out"; else out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; fi
for ((i = 1; i <= rounds; i++)); do
  dotnet bench/TorchSharpOps/bin/Release/net10.0/TorchSharpOps.dll "${args[@]}" | tee "$out/ts$i.jsonl" | sed "s/^/round $i torchsharp: /"
  /usr/bin/python3 bench/torchsharp_ops_peer.py "${args[@]}" | tee "$out/pt$i.jsonl" | sed "s/^/round $i pytorch:   /"
done
/usr/bin/python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(side):
    rows = {}
    for i in range(1, rounds + 1):
        for line in open(f"{out}/{side}{i}.jsonl"):
            r = json.loads(line); key = (r.get("op") or "phase", r.get("shape") or r["phase"])
            rows.setdefault(key, []).append(r)
    return rows
ts, pt = load("ts"), load("pt")
med = lambda rs, k: statistics.median(r[k] for r in rs)
print("\n| operator | shape | count | fwd ms TorchSharp / PyTorch | fwd+bwd ms TorchSharp / PyTorch | x count, ms | ratio |")
print("|---|---|---|---|---|---|---|")
tot_ts = tot_pt = 0.0
for key, rs in ts.items():
    if key[0] == "phase": continue
    n = rs[0]["count"]; a, b = med(rs, "fwd_bwd_ms") * n, med(pt[key], "fwd_bwd_ms") * n
    tot_ts += a; tot_pt += b
    print(f"| {key[0]} | {key[1]} | {n} | {med(rs, 'fwd_ms'):.2f} / {med(pt[key], 'fwd_ms'):.2f} | "
          f"{med(rs, 'fwd_bwd_ms'):.2f} / {med(pt[key], 'fwd_bwd_ms'):.2f} | {a:.1f} / {b:.1f} | {a / b:.2f} |")
print(f"| all operators | | | | | {tot_ts:.1f} / {tot_pt:.1f} | {tot_ts / tot_pt:.2f} |")
print("\n| phase of the step | ms TorchSharp / PyTorch | ratio |")
print("|---|---|---|")
for key, rs in ts.items():
    if key[0] != "phase": continue
    a = med(rs, "ms")
    if key not in pt: print(f"| {key[1]} | {a:.1f} / (no peer) | |"); continue
    b = med(pt[key], "ms")
    print(f"| {key[1]} | {a:.1f} / {b:.1f} | {a / b:.2f} |")
PY
