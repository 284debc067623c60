"""PyTorch peer for fine-tuning throughput: the network dnn-resnet18 maps onto (torchvision's ResNet with BasicBlock and
blocks [2,2,2,3], a 10-class head), every layer training, SGD momentum 0.9, synthetic batches, measured the same way as
`resnet benchmark`. Weights do not change the speed, so they are random here.
Usage: /usr/bin/python3 pytorch_finetune_peer.py --size 224 --batch 32 --threads 2 --steps 10 [--channels 3]
Prints one JSON line."""
import argparse, json, resource, time, torch, torch.nn.functional as F
from torchvision.models.resnet import ResNet, BasicBlock

ap = argparse.ArgumentParser()
ap.add_argument('--size', type=int, default=224); ap.add_argument('--batch', type=int, default=32)
ap.add_argument('--threads', type=int, default=2); ap.add_argument('--steps', type=int, default=10)
ap.add_argument('--channels', type=int, default=3)
a = ap.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
m = ResNet(BasicBlock, [2, 2, 2, 3], num_classes=10)
if a.channels != 3:
    m.conv1 = torch.nn.Conv2d(a.channels, 64, 7, 2, 3, bias=False)
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
x = torch.randn(a.batch, a.channels, a.size, a.size); y = torch.randint(0, 10, (a.batch,))
m.train()
def step():
    opt.zero_grad(set_to_none=True); F.cross_entropy(m(x), y).backward(); opt.step()
for _ in range(2): step()
t = time.perf_counter()
for _ in range(a.steps): step()
train = a.steps * a.batch / (time.perf_counter() - t)
m.eval()
with torch.no_grad():
    for _ in range(2): m(x)
    t = time.perf_counter()
    for _ in range(a.steps): m(x)
    infer = a.steps * a.batch / (time.perf_counter() - t)
print(json.dumps({"peer": "pytorch " + torch.__version__, "arch": "resnet18 blocks=2,2,2,3", "size": a.size, "batch": a.batch,
                  "threads": a.threads, "params": sum(p.numel() for p in m.parameters()),
                  "train_images_per_sec": round(train, 2), "infer_images_per_sec": round(infer, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
