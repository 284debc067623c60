"""PyTorch 1.13's side of bench/TorchSharpOps: the same ResNet-20 operators, shapes, counts and timing (median over
reps of the mean per call, 2 warm-up calls), and the same step phases on the peer's model (../shared/bench/pytorch_peer.py's
CifarResNet, option A). Prints JSON lines in TorchSharpOps' format.
Usage: /usr/bin/python3 bench/torchsharp_ops_peer.py --batch 128 --threads 2 --size 28 --channels 1 --reps 7 --iters 10"""
import argparse, json, os, sys, time, torch, torch.nn.functional as F

ap = argparse.ArgumentParser()
for k, v in dict(batch=128, threads=2, size=28, channels=1, reps=7, iters=10).items(): ap.add_argument('--' + k, type=int, default=v)
a = ap.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)

def timed(body):
    for _ in range(2): body()
    samples = []
    for _ in range(a.reps):
        t = time.perf_counter()
        for _ in range(a.iters): body()
        samples.append((time.perf_counter() - t) * 1000 / a.iters)
    return sorted(samples)[len(samples) // 2]

def emit(**row): print(json.dumps(row), flush=True)

s1 = a.size; s2 = (s1 + 1) // 2; s3 = (s2 + 1) // 2
# The first pass over the convolutions only warms up (oneDNN's kernel generation, the thread pool, the allocator).
convs = [("stem", a.channels, 16, 1, s1, 1), ("16-16", 16, 16, 1, s1, 6), ("16-32/2", 16, 32, 2, s1, 1),
                                          ("32-32", 32, 32, 1, s2, 5), ("32-64/2", 32, 64, 2, s2, 1), ("64-64", 64, 64, 1, s3, 5)]
for i, (name, cin, cout, stride, hw, count) in enumerate(2 * convs):
    x = torch.randn(a.batch, cin, hw, hw).requires_grad_(cin != a.channels)
    w = (torch.randn(cout, cin, 3, 3) * 0.1).requires_grad_()
    o = (hw + 2 - 3) // stride + 1
    g = torch.randn(a.batch, cout, o, o)
    fwd = timed(lambda: F.conv2d(x, w, None, stride, 1))
    both = timed(lambda: F.conv2d(x, w, None, stride, 1).backward(g))
    if i >= len(convs): emit(op="conv3x3", shape=f"{name}@{hw}", count=count, fwd_ms=round(fwd, 3), fwd_bwd_ms=round(both, 3))
for c, hw, bn, relu, add in [(16, s1, 7, 7, 3), (32, s2, 6, 6, 3), (64, s3, 6, 6, 3)]:
    x = torch.randn(a.batch, c, hw, hw).requires_grad_(); g = torch.randn(a.batch, c, hw, hw)
    gamma = torch.ones(c).requires_grad_(); beta = torch.zeros(c).requires_grad_()
    mean = torch.zeros(c); var = torch.ones(c)
    emit(op="batch_norm", shape=f"{c}@{hw}", count=bn,
         fwd_ms=round(timed(lambda: F.batch_norm(x, mean, var, gamma, beta, training=True)), 3),
         fwd_bwd_ms=round(timed(lambda: F.batch_norm(x, mean, var, gamma, beta, training=True).backward(g)), 3))
    emit(op="relu", shape=f"{c}@{hw}", count=relu, fwd_ms=round(timed(lambda: F.relu(x)), 3),
         fwd_bwd_ms=round(timed(lambda: F.relu(x).backward(g)), 3))
    x2 = torch.randn(a.batch, c, hw, hw).requires_grad_()
    emit(op="add", shape=f"{c}@{hw}", count=add, fwd_ms=round(timed(lambda: x.add(x2)), 3),
         fwd_bwd_ms=round(timed(lambda: x.add(x2).backward(g)), 3))

# The peer's own model and step (imported by running its definitions with a tiny argv, not its timing loop).
peer = os.environ.get('PYTORCH_PEER', os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'bench', 'pytorch_peer.py'))
src = open(peer).read().split('\nm = build(')[0]
ns = {}; argv = sys.argv; sys.argv = [peer, '--channels', str(a.channels), '--threads', str(a.threads)]
exec(compile(src, peer, 'exec'), ns); sys.argv = argv
m = ns['build']('resnet20'); m.train()
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
x = torch.randn(a.batch, a.channels, a.size, a.size); y = torch.arange(a.batch) % 10
# Phases timed inside one loop (the same split as TorchSharpOps).
per_step = []
for i in range(2 + a.reps * a.iters):
    t0 = time.perf_counter(); opt.zero_grad(set_to_none=True); loss = F.cross_entropy(m(x), y)
    t1 = time.perf_counter(); loss.backward()
    t2 = time.perf_counter(); opt.step()
    t3 = time.perf_counter()
    if i >= 2: per_step.append(((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000))
ph = [sorted(p[k] for p in per_step)[len(per_step) // 2] for k in range(3)]
emit(phase="forward+loss", ms=round(ph[0], 2)); emit(phase="backward", ms=round(ph[1], 2))
emit(phase="optimizer step (torch.optim.SGD)", ms=round(ph[2], 2))
emit(phase="step (sum of the phases)", ms=round(sum(ph), 2), images_per_sec=round(a.batch * 1000 / sum(ph), 1))
