"""PyTorch peer of ResNet.ML's "fast" recipe (TrainingRecipes.Fast) on Fashion-MNIST, for bench/time_to_94_pytorch.sh:
the same recipe, on the same data and machine, so our wall time can stand beside PyTorch's.

Usage: /usr/bin/python3 bench/time_to_94_pytorch.py --out OUTDIR [--seed 0] [--threads 2] [--epochs 8] [--limit N]
       [--data /usr/share/datasets/fashion-mnist] [--no-onnx]
Prints one line per epoch and a final JSON line (wall seconds, test accuracy with and without flips, ...).

The recipe, as ResNet.ML's code has it (paths under src/ResNet.ML/):
- resnet14 = the paper's CIFAR ResNet 6n+2 with n = 2 (Models/ResNetPresets.cs, TryGet): 3x3/1 stem conv (16) + BN +
  ReLU, three stages of 2 basic blocks at widths 16/32/64 (stride 2 in the first block of stages 2 and 3), global
  average pool, linear head; no conv biases. Shortcut option A where shapes change (ShortcutKind.ZeroPad): x[:, :, ::2, ::2]
  with the new channels zero-padded (out-in)/2 before and the rest after (Layers/Shortcuts.cs, ZeroPadShortcut).
  BN eps 1e-5, momentum 0.1, unbiased running variance (Layers/BatchNorm2d.cs), as PyTorch's.
- Initialization (Training/Initialization/Initializer.cs): convs Kaiming-normal fan-out, ReLU gain; BN weight 1, bias 0;
  linear weight and bias uniform in +-1/sqrt(fan_in); no zero-init of the last BN of a block.
- 8 epochs, batch 128, every epoch reshuffled (Data/BatchLoader.cs, EpochOrder), last partial batch kept
  (BatchLoaderOptions.DropLast false; ImageClassifierTrainer stepsPerEpoch = ceil(N / batch)): 469 steps an epoch on 60k.
- SGD as torch.optim.SGD (Training/Optimizers/Sgd.cs): momentum 0.9 (constant: nothing cycles it), Nesterov, dampening 0,
  weight decay 5e-4 coupled (added to the gradient, L2), on conv and linear weights only -- not on BN parameters nor
  the head's bias (TrainingSetup.Optimizer passes decayAllParameters: false; Optimizer.Step uses Parameter.IsWeight).
- One-cycle learning rate stepped per iteration (Training/Schedules/LearningRateSchedule.cs, OneCycleSchedule):
  PyTorch's OneCycleLR closed form, cosine annealing, two phases, max 0.2, pct_start 0.3, div 25, final div 1e4,
  peak at step 0.3*T - 1, end at T - 1 -- but with momentum NOT cycled (PyTorch's default cycle_momentum=True would),
  so this script sets the rate itself each step and leaves momentum at 0.9.
- Loss: cross-entropy with label smoothing 0.1 as nn.CrossEntropyLoss(label_smoothing=0.1), batch mean
  (Training/Loss/SoftmaxCrossEntropy.cs).
- Augmentation Augmentation.CifarPaper with Padding 2 (Data/Transforms/Augmentation.cs, SampleTransform.cs): per image,
  a window offset drawn uniformly from {-2..2} on each axis independently (zero padding in source units, i.e. black
  pixels, normalized afterwards), then a left-right flip with probability 1/2 (drawn per image, not alternating).
- Normalization: pixels x 1/255, then (x - mean) / std with the mean and population std of all training pixels
  (Data/Transforms/Normalization.cs, Compute; ImageClassifierTrainer.ComputeNormalization), applied to each batch.
- Evaluation: the ONNX graph averages the *logits* (weights 1/2, 1/2) of each image and its left-right mirror, then
  softmax/argmax (Onnx/GraphBuilder.cs, WithTestTimeViews + MeanOverViews); BN in inference mode.
- Timing (bench/time_to_94.sh): from process start (data loading included) to the written model.onnx.

Where this peer knowingly differs from ResNet.ML:
- Random streams: the initial weights, the epoch shuffles and the augmentation draws come from torch's generator
  seeded with --seed, not from ResNet.ML's Rng derived from (seed, epoch, batch); same distributions, other samples.
  The per-image crop offsets and flips are drawn for the whole batch at once (vectorised gather), which draws from
  the same distribution as ResNet.ML's per-image loop; "flip after crop" and "crop of the flipped image" give the same
  distribution because the offsets are symmetric.
- Augmentation runs on the training thread between steps (one gather per batch, ~2 ms of a ~130 ms step), where
  ResNet.ML prepares batches on a read-ahead worker thread beside its 2 compute threads.
- Arithmetic: PyTorch's kernels (oneDNN/ATen, float32) sum in other orders than ResNet.ML's managed engine; the
  schedule's rate is computed in double and used as PyTorch's float learning rate.
- Timed region: ends when this script's model.onnx is written (torch.onnx.export of the trained net with the
  preprocessing and the flip averaging inside the graph, opset 17, as ours; --no-onnx ends it after the last step).
  (PyTorch's exporter folds the eval-mode BNs into the convolutions, as ours does by default.) `resnet train` also
  writes model.safetensors, metrics.json and a training-curves SVG inside its timed region; this script writes none.
- Test accuracy is computed here with the PyTorch model (same graph as the exported one), not by ONNX Runtime
  (`resnet evaluate`), which is not installed for /usr/bin/python3; it is outside the timed region, as ours is.
- --limit N trains on the first N training images (normalization statistics from those N, as ours would compute
  them from the training set it is given); ResNet.ML has no such option (smoke tests only).
"""
import time

_T_SCRIPT = time.time()   # before importing torch: process start for a run without the wrapper's PEER_START

import argparse, gzip, json, math, os, sys, warnings
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
ap.add_argument('--out', required=True, help='folder for model.onnx')
ap.add_argument('--seed', type=int, default=0)
ap.add_argument('--threads', type=int, default=2)
ap.add_argument('--epochs', type=int, default=8)
ap.add_argument('--limit', type=int, default=0, help='train on the first N training images only (smoke tests)')
ap.add_argument('--data', default=os.environ.get('FASHION_MNIST', '/usr/share/datasets/fashion-mnist'))
ap.add_argument('--no-onnx', action='store_true', help='end the timed region after the last step, without exporting')
a = ap.parse_args()
# The wrapper passes its own start time (date +%s.%N before launching python), as time_to_94.sh times `resnet train`.
t_start = float(os.environ['PEER_START']) if os.environ.get('PEER_START') else _T_SCRIPT
torch.set_num_threads(a.threads)
warnings.filterwarnings('ignore', category=UserWarning, module=r'torch\.onnx')   # the exporter's constant-folding notes
torch.manual_seed(a.seed)
load_start = os.getloadavg()[0]   # PyTorch's OpenMP threads slow down far more than ours on a busy machine: record it

# ---- the recipe (TrainingRecipes.Fast) ------------------------------------------------------------------------------
BATCH, MAX_LR, MOMENTUM, WEIGHT_DECAY, SMOOTHING, PAD = 128, 0.2, 0.9, 5e-4, 0.1, 2
PCT_START, DIV, FINAL_DIV = 0.3, 25.0, 1e4


def read_idx(path, magic, header):
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    if int.from_bytes(raw[:4], 'big') != magic:
        sys.exit(f'{path}: not an IDX file with magic 0x{magic:08X}')
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(header)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * header).reshape(dims)


def load(split):
    x = read_idx(os.path.join(a.data, f'{split}-images-idx3-ubyte.gz'), 0x803, 3)
    y = read_idx(os.path.join(a.data, f'{split}-labels-idx1-ubyte.gz'), 0x801, 1)
    return torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64))   # uint8 [N,1,28,28], int64 [N]


# ---- the model: resnet14, option A ----------------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(s, i, o, stride):
        super().__init__()
        s.conv1 = nn.Conv2d(i, o, 3, stride, 1, bias=False); s.bn1 = nn.BatchNorm2d(o)
        s.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.bn2 = nn.BatchNorm2d(o)
        s.stride, s.pad = stride, o - i
        s.option_a = stride != 1 or i != o

    def forward(s, x):
        r = x
        if s.option_a:   # ZeroPadShortcut: subsample, then (out-in)/2 zero channels before and the rest after
            r = F.pad(x[:, :, ::s.stride, ::s.stride], (0, 0, 0, 0, s.pad // 2, s.pad - s.pad // 2))
        return F.relu(s.bn2(s.conv2(F.relu(s.bn1(s.conv1(x))))) + r)


class CifarResNet(nn.Module):
    def __init__(s, n, channels=1, classes=10):
        super().__init__()
        s.conv1 = nn.Conv2d(channels, 16, 3, 1, 1, bias=False); s.bn1 = nn.BatchNorm2d(16)
        blocks, i = [], 16
        for o, stride in [(16, 1), (32, 2), (64, 2)]:
            for b in range(n):
                blocks.append(Block(i, o, stride if b == 0 else 1)); i = o
        s.layers = nn.Sequential(*blocks)
        s.fc = nn.Linear(64, classes)
        for m in s.modules():   # Initializer.Initialize: torchvision's scheme
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight); nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1 / math.sqrt(m.in_features)
                nn.init.uniform_(m.weight, -bound, bound); nn.init.uniform_(m.bias, -bound, bound)

    def forward(s, x):
        x = s.layers(F.relu(s.bn1(s.conv1(x))))
        return s.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Exported(nn.Module):
    """What our model.onnx holds: raw pixels in, x*scale - mean, / std, the image and its mirror as one batch, the mean
    of the two logits, then logits / probabilities / predicted_label."""
    def __init__(s, net, scale, mean, std):
        super().__init__()
        s.net = net
        s.register_buffer('scale', torch.tensor(scale)); s.register_buffer('mean', torch.tensor([mean]).view(1, 1, 1, 1))
        s.register_buffer('std', torch.tensor([std]).view(1, 1, 1, 1))

    def forward(s, x):
        x = (x * s.scale - s.mean) / s.std
        logits = s.net(torch.cat([x, x.flip(3)], 0)).view(2, -1, s.net.fc.out_features)
        logits = 0.5 * logits[0] + 0.5 * logits[1]
        return logits, F.softmax(logits, 1), logits.argmax(1)


def one_cycle(step, total):
    """OneCycleSchedule.At: PyTorch's OneCycleLR closed form (two phases, cosine)."""
    initial = MAX_LR / DIV; low = initial / FINAL_DIV
    peak, end = PCT_START * total - 1, total - 1
    t = min(step, end)
    anneal = lambda start, stop, pct: stop + (start - stop) / 2 * (math.cos(math.pi * pct) + 1)
    return anneal(initial, MAX_LR, t / peak) if t <= peak else anneal(MAX_LR, low, (t - peak) / (end - peak))


def augment(xb_uint8, gen):
    """Pad 2 + random 28x28 crop + random flip, per image, vectorised: one gather from the zero-padded batch."""
    n, _, h, w = xb_uint8.shape
    wp = w + 2 * PAD
    padded = F.pad(xb_uint8, (PAD, PAD, PAD, PAD)).view(n, -1)   # zeros in source units (black), as SampleTransform pads
    oy = torch.randint(0, 2 * PAD + 1, (n,), generator=gen)   # window origin in the padded image = offset + PAD,
    ox = torch.randint(0, 2 * PAD + 1, (n,), generator=gen)   # offset uniform in {-PAD..PAD} on each axis
    flip = torch.randint(0, 2, (n,), generator=gen).bool()    # p = 1/2 per image
    cols = torch.arange(w).expand(n, w)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + ox[:, None]   # flip after crop: out[x] = crop[w-1-x]
    rows = (oy[:, None] + torch.arange(h)) * wp
    return padded.gather(1, (rows[:, :, None] + cols[:, None, :]).view(n, -1)).view(n, 1, h, w)


def main():
    # ---- data (inside the timed region, as ours) ----
    train_x, train_y = load('train')
    if a.limit > 0:
        train_x, train_y = train_x[:a.limit], train_y[:a.limit]
    n_train = len(train_y)
    scale = 1.0 / 255
    px = train_x.to(torch.float64) * scale   # Normalization.Compute: mean and population std in double
    mean = px.mean().item(); std = max(math.sqrt(max((px * px).mean().item() - mean * mean, 0.0)), 1e-6)
    del px
    mul, add = float(np.float32(scale) / np.float32(std)), float(-np.float32(mean) / np.float32(std))   # Normalization.Affine

    net = CifarResNet(2)
    decay = [p for name, p in net.named_parameters() if name.endswith('weight') and p.dim() > 1]   # conv + linear weights
    rest = [p for name, p in net.named_parameters() if not (name.endswith('weight') and p.dim() > 1)]   # BN, fc.bias
    opt = torch.optim.SGD([{'params': decay, 'weight_decay': WEIGHT_DECAY}, {'params': rest, 'weight_decay': 0.0}],
                          lr=MAX_LR / DIV, momentum=MOMENTUM, nesterov=True, dampening=0)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=SMOOTHING)
    gen = torch.Generator().manual_seed(a.seed + 1)   # shuffles and augmentation (the init used the global generator)

    steps_per_epoch = (n_train + BATCH - 1) // BATCH   # last partial batch kept
    total = max(steps_per_epoch * a.epochs, 2)
    step = 0
    print(f'pytorch {torch.__version__}, {a.threads} threads: resnet14 (option A, {sum(p.numel() for p in net.parameters())} parameters), '
          f'{n_train} training images, {steps_per_epoch} steps an epoch, {a.epochs} epochs, normalization mean {mean:.4f} std {std:.4f}; '
          f'{time.time() - t_start:.1f} s to here', flush=True)
    for epoch in range(a.epochs):
        net.train()
        t_epoch = time.perf_counter()
        order = torch.randperm(n_train, generator=gen)
        loss_sum, correct = 0.0, 0
        for b in range(steps_per_epoch):
            idx = order[b * BATCH:(b + 1) * BATCH]
            xb = augment(train_x[idx], gen).float().mul_(mul).add_(add)
            yb = train_y[idx]
            lr = one_cycle(step, total)
            for g in opt.param_groups: g['lr'] = lr
            logits = net(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
        seconds = time.perf_counter() - t_epoch
        print(f'epoch {epoch + 1}/{a.epochs}: train loss {loss_sum / n_train:.4f}, train accuracy {100 * correct / n_train:.2f} %, '
              f'lr {lr:.5f}, {n_train / seconds:.1f} img/s, {seconds:.1f} s', flush=True)

    net.eval()
    exported = Exported(net, scale, mean, std).eval()
    onnx_path = None
    if not a.no_onnx:
        os.makedirs(a.out, exist_ok=True)
        onnx_path = os.path.join(a.out, 'model.onnx')
        with torch.no_grad():
            torch.onnx.export(exported, torch.zeros(1, 1, 28, 28), onnx_path, opset_version=17,
                              input_names=['input'], output_names=['logits', 'probabilities', 'predicted_label'],
                              dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}, 'probabilities': {0: 'batch'},
                                            'predicted_label': {0: 'batch'}})
    wall = time.time() - t_start   # the end of the timed region
    load_end = os.getloadavg()[0]

    # ---- the 10k test split, once, outside the timed region ----
    test_x, test_y = load('t10k')
    right_flip = right_plain = 0
    with torch.no_grad():
        for i in range(0, len(test_y), 500):
            x = test_x[i:i + 500].float()
            logits, _, predicted = exported(x)
            right_flip += (predicted == test_y[i:i + 500]).sum().item()
            right_plain += (net(x * mul + add).argmax(1) == test_y[i:i + 500]).sum().item()
    print(json.dumps({'peer': 'pytorch ' + torch.__version__, 'recipe': 'fast', 'arch': 'resnet14', 'seed': a.seed,
                      'threads': a.threads, 'epochs': a.epochs, 'train_images': n_train,
                      'wall_seconds': round(wall, 1), 'timed_to': 'model.onnx written' if onnx_path else 'end of training',
                      'test_accuracy_flips': round(100 * right_flip / len(test_y), 2),
                      'test_accuracy_no_flips': round(100 * right_plain / len(test_y), 2),
                      'onnx': onnx_path, 'load_avg_start': round(load_start, 2), 'load_avg_end': round(load_end, 2)}), flush=True)


if __name__ == '__main__':
    main()
