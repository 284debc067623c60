"""Splits Debian's Fashion-MNIST training set (dataset-fashion-mnist) into two IDX folders, OUT/train (54,000 images)
and OUT/holdout (6,000: 600 per class, chosen by numpy's default_rng(SEED)), so that recipe choices (test-time
augmentation, say) can be scored on held-out images with `resnet evaluate` while the official test split stays unseen.
Both folders get a classes.txt. Usage: /usr/bin/python3 bench/data/fashion_mnist_holdout.py OUT [SEED]"""
import gzip, os, struct, sys
import numpy as np

out = sys.argv[1]; seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
src = os.environ.get('FASHION_MNIST', '/usr/share/datasets/fashion-mnist')
with gzip.open(os.path.join(src, 'train-images-idx3-ubyte.gz')) as f:
    magic, n, h, w = struct.unpack('>IIII', f.read(16)); images = np.frombuffer(f.read(), np.uint8).reshape(n, h, w)
with gzip.open(os.path.join(src, 'train-labels-idx1-ubyte.gz')) as f:
    struct.unpack('>II', f.read(8)); labels = np.frombuffer(f.read(), np.uint8)
rng = np.random.default_rng(seed)
held = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), 600, replace=False) for c in range(10)]))
mask = np.zeros(len(labels), bool); mask[held] = True
names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
for part, keep in (('train', ~mask), ('holdout', mask)):
    d = os.path.join(out, part); os.makedirs(d, exist_ok=True)
    x, y = images[keep], labels[keep]
    with open(os.path.join(d, 'train-images-idx3-ubyte'), 'wb') as f: f.write(struct.pack('>IIII', 0x803, len(x), h, w)); f.write(x.tobytes())
    with open(os.path.join(d, 'train-labels-idx1-ubyte'), 'wb') as f: f.write(struct.pack('>II', 0x801, len(y))); f.write(y.tobytes())
    with open(os.path.join(d, 'classes.txt'), 'w') as f: f.write('\n'.join(names) + '\n')
    print(part, len(y), np.bincount(y).tolist())
